//! `/healthz`: what is wrong, if anything.

use super::FrontEnd;
use crate::state::Generation;

/// What `/healthz` finds wrong; empty means healthy. The audit check is the flag the
/// auditor keeps from its last write (`Auditor::healthy`), the same writes whose result
/// makes the milter and the map server defer while the file cannot be written.
pub fn problems(g: &Generation) -> Vec<String> {
    let mut out: Vec<String> = FrontEnd::ALL
        .iter()
        .filter(|f| !g.metrics.front_end_up(**f))
        .map(|f| format!("{} front-end is down", f.as_str()))
        .collect();
    if !g.auditor.healthy() {
        out.push("the audit log cannot be written".into());
    }
    out
}
