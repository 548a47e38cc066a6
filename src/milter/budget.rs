//! The process-wide bound on message bodies held in memory at once.
//!
//! Each milter session keeps its message body until end of data (footer, DKIM and
//! inbound verification need it whole). Without a bound, N concurrent large messages
//! cost N times their size, several times over. Bytes are taken from one semaphore as
//! chunks arrive and given back when the message is done (the permit lives in the
//! message state); a chunk that does not fit makes the message drop its body and be
//! deferred (451) at end of data. Waiting instead could deadlock: every session holding
//! part of the budget and waiting for more.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Body bytes buffered at once across all milter sessions: 20 concurrent 25 MB messages
/// (a large scan attached, base64 included) fit, with room for smaller mail beside them.
/// A 4xx past it keeps the message at the MTA (NTA 7516: no loss), which retries.
pub const BODY_BUFFER_BUDGET: usize = 640 << 20;

#[derive(Clone)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
}

impl BodyBudget {
    pub fn new(bytes: usize) -> Self {
        Self {
            bytes: Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))),
        }
    }

    /// Adds `n` bytes to what `held` holds. False (and `held` unchanged) when the budget
    /// cannot cover them now.
    pub fn take(&self, held: &mut Option<OwnedSemaphorePermit>, n: usize) -> bool {
        let Ok(n) = u32::try_from(n) else {
            return false;
        };
        if n == 0 {
            return true;
        }
        match self.bytes.clone().try_acquire_many_owned(n) {
            Ok(p) => {
                match held {
                    Some(h) => h.merge(p),
                    None => *held = Some(p),
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Bytes not taken by any message right now (tests wait on it: body chunks get no
    /// reply over the milter protocol, so a client cannot tell when they were taken).
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_pinned() {
        assert_eq!(BODY_BUFFER_BUDGET, 640 * 1024 * 1024);
        const { assert!(BODY_BUFFER_BUDGET >= 20 * 25_000_000 * 4 / 3) };
        // Large messages planned at once, each holding its body twice meanwhile
        // (`decide::plan_message`): at most 4 × 64 MiB on top of the bodies.
        assert_eq!(super::super::MAX_LARGE_PLANS, 4);
    }

    #[test]
    fn bytes_are_taken_until_spent_and_come_back_with_the_message() {
        let b = BodyBudget::new(100);
        let (mut one, mut two) = (None, None);
        assert!(b.take(&mut one, 60));
        assert!(b.take(&mut one, 30));
        assert!(!b.take(&mut two, 20), "only 10 bytes left");
        assert!(two.is_none());
        assert_eq!(b.available(), 10);
        drop(one.take());
        assert_eq!(b.available(), 100);
        assert!(b.take(&mut two, 20));
        assert!(b.take(&mut two, 0));
    }
}
