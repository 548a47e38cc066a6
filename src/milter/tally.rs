//! What `[server] metrics` counts of one message: direction, classification and what
//! the MTA was told. Kept apart from the decision so that counting never touches it.

use indymilter::Status;

use super::decide::Answer;
use super::{Conn, Msg};
use crate::config::Classification;
use crate::message::classify;
use crate::metrics::Outcome;
use crate::state::Generation;

pub(super) struct Tally {
    direction: crate::metrics::Direction,
    classification: Option<Classification>,
    quarantined: bool,
}

impl Tally {
    /// The labels of a message about to be answered with `answer`.
    pub(super) fn of(conn: &Conn, g: &Generation, msg: &Msg, answer: &Answer) -> Self {
        let direction = classify::direction(&g.config, conn.client, msg.auth_user.as_deref());
        let (classification, quarantined) = match answer {
            Answer::Apply(plan) => (
                plan.classification.as_ref().map(|(c, _)| *c),
                plan.quarantine.is_some(),
            ),
            _ => (None, false),
        };
        Self {
            direction: (&direction).into(),
            classification,
            quarantined,
        }
    }

    /// Counts the message once the MTA's answer is `status`.
    pub(super) fn count(self, g: &Generation, status: &Status) {
        let outcome = match status {
            Status::Tempfail => Outcome::Deferred,
            Status::Reject | Status::Discard => Outcome::Rejected,
            _ if self.quarantined => Outcome::Quarantined,
            _ => Outcome::Accepted,
        };
        g.metrics
            .message(self.direction, self.classification, outcome);
    }
}
