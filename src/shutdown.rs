//! Shutdown as every long-running task sees it: a `watch` channel that turns `true` once.
//!
//! Below the daemon and both front-ends, so that each waits for shutdown the same way
//! (the daemon's loop, the map server, the milter) without reaching into the others.

use tokio::sync::watch;

/// Resolves once `shutdown` is true, or its sender is gone (nobody can ask any more, so
/// the task should stop). The `watch::Ref` guard is dropped inside, so the future stays
/// `Send` in `select!`.
pub async fn requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn resolves_on_true_or_when_the_sender_is_gone() {
        let (tx, mut rx) = watch::channel(false);
        tx.send(true).unwrap();
        requested(&mut rx).await;
        let (tx, mut rx) = watch::channel(false);
        drop(tx);
        requested(&mut rx).await;
        let (_tx, mut rx) = watch::channel(false);
        let pending =
            tokio::time::timeout(std::time::Duration::from_secs(3600), requested(&mut rx));
        assert!(pending.await.is_err(), "resolved while shutdown is false");
    }
}
