//! Logging: journald with structured fields when it is there, stderr otherwise.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt};

/// Environment variable with a tracing filter (e.g. `NTA_LOG=debug`).
pub const LOG_ENV: &str = "NTA_LOG";

/// Installs the global subscriber. Returns which backend is in use. Field names go to
/// journald as they are (`QUEUE_ID`, `RCPT_DOMAIN`, …): no `F_` prefix.
pub fn init(default_level: &str) -> &'static str {
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new(default_level));
    let journald = tracing_journald::layer().ok().map(|l| {
        l.with_syslog_identifier("nta7516-milter".into())
            .with_field_prefix(None)
    });
    let backend = if journald.is_some() {
        "journald"
    } else {
        "stderr"
    };
    let stderr = journald.is_none().then(|| {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(journald)
        .with(stderr)
        .try_init();
    backend
}
