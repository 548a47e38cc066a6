//! The LMTP intake (RFC 2033) on `[portal] lmtp`: Postfix's `nta-portal` transport delivers
//! here. Bounded: at most [`MAX_CONNECTIONS`] at once (more get 421 and the MTA retries).

pub mod data;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::BufReader;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::portal::intake::Intake;
use crate::server::listen::Bound;

/// Concurrent LMTP connections; Postfix's default process limit is 100, but the portal's
/// store serialises writers anyway (SQLite) and a few connections keep the queue moving.
pub const MAX_CONNECTIONS: usize = 32;
/// After shutdown, connections in flight get this long to finish their DATA.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Accepts connections until `shutdown`, then waits up to [`SHUTDOWN_GRACE`] for them.
pub async fn serve(
    mut listener: Bound,
    intake: Arc<Intake>,
    host: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = JoinSet::new();
    loop {
        let stream = tokio::select! {
            s = listener.accept() => s,
            _ = crate::daemon::stopped(&mut shutdown) => break,
            // Reap finished sessions so the set does not grow.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "LMTP listener failed");
                break;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            use tokio::io::AsyncWriteExt;
            let _ = stream
                .write_all(b"421 4.3.2 Too many connections, try again later\r\n")
                .await;
            let _ = stream.flush().await;
            continue;
        };
        let intake = intake.clone();
        let host = host.clone();
        let stop = shutdown.clone();
        tasks.spawn(async move {
            let peer = stream.peer();
            let session = session::Session::new(BufReader::new(stream), intake, host);
            if let Err(e) = session.run(stop).await {
                tracing::debug!(%peer, error = %e, "LMTP connection ended");
            }
            drop(permit);
        });
    }
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("LMTP shutdown grace over; unfinished deliveries are retried by the MTA");
    }
}
