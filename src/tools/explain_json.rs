//! `explain --json`: the [`Explanation`] as one JSON document for scripts and monitoring
//! (schema version [`EXPLAIN_VERSION`]; the per-domain `evidence` is the `check --json`
//! result of the domain).

use serde_json::{Value, json};

use super::explain::{Explanation, MapAnswer, Subject};

/// Bumped on any incompatible change of the document.
pub const EXPLAIN_VERSION: u32 = 1;

fn answer(a: &MapAnswer) -> Value {
    json!({ "query": a.query, "reply": a.reply.to_string() })
}

fn subject(s: &Subject) -> Value {
    match s {
        Subject::NotAnAddress => json!({ "kind": "not_an_address" }),
        Subject::OwnDomain { domain, entry } => {
            json!({ "kind": "own_domain", "domain": domain.as_str(), "entry": entry.as_str() })
        }
        Subject::Recipient(d) => json!({ "kind": "recipient", "domain": d.as_str() }),
        Subject::Decided { shown, .. } => json!({ "kind": "decided_without_dns", "domain": shown }),
        Subject::PortalAddress => json!({ "kind": "portal_address" }),
    }
}

pub fn render_json(e: &Explanation) -> Value {
    let verdict = match (&e.verdict, &e.subject) {
        (Some(v), _) | (None, Subject::Decided { verdict: v, .. }) => Some(v),
        _ => None,
    };
    json!({
        "version": EXPLAIN_VERSION,
        "address": e.address,
        "subject": subject(&e.subject),
        "route": answer(&e.route),
        "tls": e.tls.iter().map(answer).collect::<Vec<_>>(),
        "verdict": verdict.map(|v| v.label()),
        "reasons": verdict
            .map(|v| v.reasons().iter().map(|r| json!({ "code": r.code.as_str(), "message": r.message })).collect::<Vec<_>>())
            .unwrap_or_default(),
        "evidence": e.evidence.as_ref().map(|r| serde_json::to_value(r).unwrap_or(Value::Null)),
        "decided_by": e.decided_by,
        "dry_run": e.dry_run,
        "temporary": e.is_temporary(),
    })
}
