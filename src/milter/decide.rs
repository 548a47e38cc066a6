//! The end-of-message decision: direction, the plan (off the event loop for large
//! messages), the inbound verdict, and the audit events that record the decision. The
//! callbacks in `milter/mod.rs` collect the message and apply or refuse what this decides.

use std::sync::Arc;

use crate::audit::Event;
use crate::message::classify::{self, Direction};
use crate::message::inbound;
use crate::message::ownership;
use crate::message::plan::{self, PlanError, Received};
use crate::state::Generation;

use super::transport::REMOTE_SMTP_TRANSPORTS;
use super::{Conn, Msg, headers};

/// What end of data answers the MTA.
pub(super) enum Answer {
    Apply(Box<plan::Plan>),
    /// 451 with (enhanced code, text).
    Tempfail(&'static str, String),
    /// 550 5.7.1 with text.
    Reject(String),
    /// A permanent refusal for a property of the message: (code, enhanced code, text).
    Permanent(&'static str, &'static str, String),
}

impl Answer {
    /// The SMTP reply of a refusal: (code, enhanced code, sanitized text); `None` for
    /// `Apply`.
    pub(super) fn refusal(&self) -> Option<(&'static str, &'static str, String)> {
        let (code, enhanced, text) = match self {
            Answer::Tempfail(enhanced, text) => ("451", *enhanced, text),
            Answer::Reject(text) => ("550", "5.7.1", text),
            Answer::Permanent(code, enhanced, text) => (*code, *enhanced, text),
            Answer::Apply(_) => return None,
        };
        let text = crate::mta::sanitize(&format!("NTA 7516: {text}"), 400);
        Some((code, enhanced, text))
    }
}

/// The deferral while the audit file cannot be written.
pub(super) fn audit_unwritable() -> Answer {
    Answer::Tempfail("4.3.0", "the audit log cannot be written".into())
}

/// Messages with at least this many body bytes are planned (footer, DKIM signature) on
/// tokio's blocking pool instead of the event loop. Re-encoding and hashing a message of
/// tens of megabytes takes a tenth of a second or more, and `serve` runs on one thread:
/// every other session would wait that long. Below this size the hand-over to another
/// thread costs more than the work.
pub const OFF_LOOP_BODY_BYTES: usize = 1 << 20;

/// Large messages (at least [`OFF_LOOP_BODY_BYTES`]) planned at once. Planning is CPU work
/// (locating parts, re-encoding, hashing), and while it runs a message is held twice (the
/// received body beside the parser's copy or the new body); once planned, only the body
/// that leaves is kept. With every large message in flight planning at once that is twice
/// the bodies in memory for no gain in speed on a few cores; a few at a time keep the
/// cores busy and the others at one copy. The others wait their turn: a plan holds nothing
/// another plan waits for, and the MTA's own timeout (Postfix `milter_content_timeout`)
/// bounds the wait.
pub const MAX_LARGE_PLANS: usize = 4;
static LARGE_PLANS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_LARGE_PLANS);

/// `plan::plan`, off the event loop for large messages. A panic while planning becomes
/// a 451, like every other failure.
async fn plan_message(
    g: &Arc<Generation>,
    direction: &Direction,
    msg: &Arc<Msg>,
) -> Result<plan::Plan, PlanError> {
    if msg.received.body.len() < OFF_LOOP_BODY_BYTES {
        return plan::plan(
            &g.plan_context(REMOTE_SMTP_TRANSPORTS),
            direction,
            &msg.received,
        );
    }
    // Never closed, so acquiring fails only if that changes: then plan without a turn.
    // The turn goes with the work, which runs to its end even if the session is gone.
    let turn = LARGE_PLANS.acquire().await.ok();
    let (g, direction, msg) = (g.clone(), direction.clone(), msg.clone());
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        plan::plan(
            &g.plan_context(REMOTE_SMTP_TRANSPORTS),
            &direction,
            &msg.received,
        )
    })
    .await
    .unwrap_or_else(|e| Err(PlanError::Internal(e.to_string())))
}

/// Decides what to do with one message and records the decision in the audit trail.
pub(super) async fn decide(
    conn: &Conn,
    g: &Arc<Generation>,
    msg: &mut Arc<Msg>,
    qid: &str,
) -> Answer {
    let mut trail = Vec::with_capacity(8);
    let answer = judge(conn, g, msg, qid, &mut trail).await;
    // NEN 7513: no processing without a trail. The decision's events share one write
    // (Auditor::record_all); unless all of them are in the audit file, the message waits
    // at the client instead of passing with a hole in its trail.
    if !g.auditor.record_all(trail) {
        return audit_unwritable();
    }
    answer
}

/// The decision itself; every event it makes goes to `trail`, none is written here.
async fn judge(
    conn: &Conn,
    g: &Arc<Generation>,
    msg: &mut Arc<Msg>,
    qid: &str,
    trail: &mut Vec<Event>,
) -> Answer {
    let r = &msg.received;
    let direction = classify::direction(&g.config, conn.client, msg.auth_user.as_deref());
    let message_id = headers::value(&r.headers, "message-id");
    trail.push(Event::MessageReceived {
        direction: (&direction).into(),
        client_address: conn.client.map(|c| c.to_string()).unwrap_or_default(),
        client_name: conn.client_name.clone(),
        helo: conn.helo.clone(),
        tls_version: conn.tls_version.clone(),
        cipher: conn.cipher.clone(),
        sasl_user: msg.auth_user.clone(),
        queue_id: qid.to_string(),
        message_id: message_id.clone(),
        sender: r.sender.clone(),
        recipients: r.rcpts.clone(),
    });
    if let Some(why) = msg.header_limit.overflow() {
        return Answer::Permanent("552", "5.3.4", headers::overflow_text(why));
    }
    if direction.is_outbound() && g.config.outbound.require_own_from {
        let fields = r.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
        if let Err(not_own) = ownership::check_from(&g.config, fields) {
            trail.push(Event::FromNotOwn {
                queue_id: qid.to_string(),
                sasl_user: msg.auth_user.clone(),
                from_domains: not_own.domains(),
            });
            return Answer::Permanent("550", "5.7.1", not_own.to_string());
        }
    }
    let mut plan = match plan_message(g, &direction, msg).await {
        Ok(p) => p,
        Err(e) if e.is_permanent() => {
            return Answer::Permanent("554", e.status_code(), e.to_string());
        }
        Err(e) => return Answer::Tempfail(e.status_code(), e.to_string()),
    };
    if !plan.delete.is_empty() {
        trail.push(Event::HeadersRemoved {
            queue_id: qid.to_string(),
            names: plan.delete.iter().map(|(n, _)| n.clone()).collect(),
            from_trusted_client: direction.is_outbound(),
        });
    }
    if let Some((class, source)) = &plan.classification {
        trail.push(Event::Classified {
            queue_id: qid.to_string(),
            message_id: message_id.clone(),
            classification: (*class).into(),
            by: source.to_string(),
            trusted_client: direction.is_outbound(),
        });
    }
    match &plan.footer {
        Some(Ok(parts)) => trail.push(Event::FooterAdded {
            queue_id: qid.to_string(),
            parts: *parts,
        }),
        Some(Err(reason)) => trail.push(Event::FooterSkipped {
            queue_id: qid.to_string(),
            reason: reason.clone(),
        }),
        None => {}
    }
    if let Some((domain, selector)) = &plan.signed {
        trail.push(Event::Signed {
            queue_id: qid.to_string(),
            domain: domain.clone(),
            selector: selector.clone(),
        });
    }
    let mut inbound_summary = String::new();
    if !direction.is_outbound() {
        // The inbound plan never reads the body, and nothing after verification does: the
        // message to verify is built in the body's buffer instead of beside it (the
        // planning task's reference is gone, so the message is ours alone by now).
        let raw = (!msg.received.body_overflow).then(|| match Arc::get_mut(msg) {
            Some(m) => headers::reconstruct_in_place(&mut m.received),
            None => headers::reconstruct(&msg.received),
        });
        let r = &msg.received;
        let v = verify_inbound(conn, g, r, raw).await;
        inbound_summary = format!(
            "spf={} dkim={} dmarc={} {}",
            v.spf,
            v.dkim,
            v.dmarc,
            v.header_value()
        );
        trail.push(Event::InboundVerified {
            queue_id: qid.to_string(),
            spf: v.spf.clone(),
            dkim: v.dkim.clone(),
            dmarc: v.dmarc.clone(),
            arrived_securely: v.secure,
            reasons: v.reasons.clone(),
        });
        match &v.action {
            inbound::Action::Reject(text) => return Answer::Reject(text.clone()),
            inbound::Action::Tempfail(text) => return Answer::Tempfail("4.7.0", text.clone()),
            inbound::Action::Quarantine(reason) if conn.can_quarantine => {
                trail.push(Event::Quarantined {
                    queue_id: qid.to_string(),
                    reason: reason.clone(),
                });
                plan.notes.push(format!("put on hold: {reason}"));
                plan.quarantine = Some(reason.clone());
            }
            inbound::Action::Quarantine(reason) => {
                tracing::warn!(queue_id = %qid, reason, "DMARC asks for quarantine but the MTA offers no QUARANTINE action; delivering with the verdict header");
            }
            inbound::Action::Deliver => {}
        }
        plan.insert_top.push((
            inbound::HEADER_AUTH_RESULTS.to_string(),
            v.auth_results.clone(),
        ));
        plan.add
            .push((inbound::HEADER_INBOUND.to_string(), v.header_value()));
        if let Some(tag) = &v.subject_tag {
            plan.subject = Some(headers::subject_with_tag(&r.headers, tag));
        }
    }
    let (class, source) = match &plan.classification {
        Some((c, s)) => (c.as_str(), s.to_string()),
        None => ("-", "-".to_string()),
    };
    tracing::info!(
        queue_id = %qid,
        client = %conn.client.map_or(conn.client_name.clone(), |c| c.to_string()),
        sender = %msg.received.sender,
        direction = %direction,
        classification = class,
        classified_by = %source,
        removed_headers = plan.delete.len(),
        notes = %plan.notes.join("; "),
        inbound = %inbound_summary,
        dry_run = g.config.server.dry_run,
        "message processed"
    );
    Answer::Apply(Box::new(plan))
}

/// Verifies `raw`, the message as received (`None`: its body was too large to keep).
async fn verify_inbound(
    conn: &Conn,
    g: &Generation,
    r: &Received,
    raw: Option<Vec<u8>>,
) -> inbound::Verification {
    let Some(raw) = raw else {
        return inbound::degraded(
            &g.config,
            &g.authserv_id,
            "message too large to verify",
            false,
        );
    };
    let transport = inbound::Transport {
        client_ip: conn.client,
        helo: conn.helo.clone(),
        tls_version: conn.tls_version.clone(),
        cipher: conn.cipher.clone(),
    };
    if raw.len() < OFF_LOOP_BODY_BYTES {
        return verify_raw(g, &transport, &r.sender, &raw).await;
    }
    // Hashing tens of megabytes for DKIM takes a tenth of a second or more, and `serve`
    // runs every session on one thread: do it on the blocking pool, as planning is. The
    // DNS lookups it awaits are still driven by the event loop (Handle::block_on on a
    // current-thread runtime relies on the thread running Runtime::block_on for I/O).
    let generation = conn.generation.clone();
    debug_assert!(std::ptr::eq(Arc::as_ptr(&generation), g));
    let sender = r.sender.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        handle.block_on(verify_raw(&generation, &transport, &sender, &raw))
    })
    .await
    .unwrap_or_else(|e| {
        let mut v = inbound::degraded(
            &g.config,
            &g.authserv_id,
            "internal error while verifying",
            true,
        );
        v.action = inbound::Action::Tempfail(format!("internal error while verifying: {e}"));
        v
    })
}

async fn verify_raw(
    g: &Generation,
    transport: &inbound::Transport,
    sender: &str,
    raw: &[u8],
) -> inbound::Verification {
    let auth = g.engine.resolver().message_authenticator();
    inbound::verify(
        &auth,
        &g.engine,
        &g.config,
        &inbound::Request {
            authserv_id: &g.authserv_id,
            transport,
            mail_from: sender,
            raw,
            deadline: g.config.dns.timeout * 2,
        },
    )
    .await
}
