//! The accept loop of the map server and the metrics listener: every connection on its
//! own task, at most a fixed number at once. A connection over the cap is closed at once
//! instead of queued: its client (Postfix, a scraper) retries, and an outsider opening
//! connections cannot make us hold more than the cap.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::listen::Bound;
use super::stream::Stream;

/// The connections of one listener.
pub struct Connections {
    slots: Arc<Semaphore>,
    tasks: JoinSet<()>,
    limit: usize,
}

impl Connections {
    pub fn new(limit: usize) -> Self {
        Connections {
            slots: Arc::new(Semaphore::new(limit)),
            tasks: JoinSet::new(),
            limit,
        }
    }

    /// Accepts and runs `serve` on each connection until `shutdown` is requested (`Ok`)
    /// or the listener breaks (its error: transient errors such as EMFILE are retried
    /// inside [`Bound::accept`], so what reaches here means the socket is dead).
    /// `listener` names it in the log.
    pub async fn run<F, Fut>(
        &mut self,
        bound: &mut Bound,
        shutdown: &mut watch::Receiver<bool>,
        listener: &'static str,
        mut serve: F,
    ) -> io::Result<()>
    where
        F: FnMut(Stream) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        loop {
            tokio::select! {
                _ = crate::shutdown::requested(shutdown) => return Ok(()),
                accepted = bound.accept() => {
                    let stream = accepted?;
                    match self.slots.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let task = serve(stream);
                            self.tasks.spawn(async move {
                                task.await;
                                drop(permit);
                            });
                        }
                        Err(_) => tracing::warn!(
                            listener,
                            peer = %stream.peer(),
                            limit = self.limit,
                            "too many connections, closing one"
                        ),
                    }
                }
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
            }
        }
    }

    /// Waits up to `within` for the connections still running, then cuts the rest off;
    /// returns how many were cut off.
    pub async fn drain(&mut self, within: Duration) -> usize {
        let tasks = &mut self.tasks;
        let finished =
            tokio::time::timeout(within, async { while tasks.join_next().await.is_some() {} })
                .await;
        let left = self.tasks.len();
        if finished.is_err() {
            self.tasks.abort_all();
        }
        left
    }
}
