//! `portal list` and `portal revoke`: the administrator's view of the portal's store.
//! They open the store with the configured key like the portal does (run them as root
//! or as the portal's user), print metadata only, and never touch the portal's audit log
//! (the running portal owns its hash chain): a withdrawal is recorded in the store and
//! the portal writes its `portal_revoked` event at its next periodic pass (within a
//! minute), or at its next start.

use std::process::ExitCode;
use std::sync::Arc;

use super::{ToolExit, tool_config, usage_error};
use crate::portal::crypto::MasterKey;
use crate::portal::store::{MessageSummary, Revoke, Store};

/// `portal revoke`: no stored message matched.
pub const NOT_FOUND: u8 = 1;

/// The store of `[portal]`, opened with its key (root or the portal's user).
pub(super) async fn open(config: Option<&std::path::Path>) -> Result<Store, ExitCode> {
    let config = tool_config(config)?;
    let Some(portal) = config.portal else {
        return Err(usage_error("no [portal] section in the configuration"));
    };
    let key = MasterKey::load(&portal.key_file)
        .map_err(|e| usage_error(format_args!("portal master key: {e}")))?;
    Store::open(&portal.store, Arc::new(key))
        .await
        .map_err(|e| usage_error(format_args!("portal store: {e}")))
}

fn utc(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| "?".into())
}

fn line(m: &MessageSummary) -> String {
    format!(
        "{}  {:<8} {}  until {}  from {}  to {}  {}",
        m.id,
        m.state,
        utc(m.created_at),
        utc(m.expires_at),
        if m.sender.is_empty() { "<>" } else { &m.sender },
        m.recipients.join(","),
        m.header_message_id.as_deref().unwrap_or("-"),
    )
}

/// `portal list`: one line per stored message, newest first.
pub async fn list(config: Option<&std::path::Path>) -> ToolExit {
    let store = open(config).await?;
    let all = store
        .list()
        .await
        .map_err(|e| usage_error(format_args!("portal store: {e}")))?;
    println!("# id  state  received  until  from  to  message-id");
    for m in &all {
        println!("{}", line(m));
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Who withdrew, for the audit event: the administrator and the login that ran it.
fn by() -> String {
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_default();
    let who: String = who
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(32)
        .collect();
    if who.is_empty() {
        "administrator".into()
    } else {
        format!("administrator ({who})")
    }
}

/// `portal revoke KEY`: withdraws every live message KEY names (the portal's id, or the
/// `Message-ID`: one message sent to several portal recipients in separate deliveries
/// is stored more than once).
pub async fn revoke(key: &str, config: Option<&std::path::Path>) -> ToolExit {
    let store = open(config).await?;
    let found = store
        .find(key)
        .await
        .map_err(|e| usage_error(format_args!("portal store: {e}")))?;
    if found.is_empty() {
        eprintln!("nta7516-milter: portal revoke: no stored message {key:?}");
        return Err(ExitCode::from(NOT_FOUND));
    }
    let by = by();
    let mut failed = false;
    for m in &found {
        match store.revoke(&m.id, &by, None).await {
            Ok(Revoke::Withdrawn) => println!(
                "withdrawn {} to {} {} (key destroyed)",
                m.id,
                m.recipients.join(","),
                m.header_message_id.as_deref().unwrap_or("-")
            ),
            Ok(Revoke::AlreadyWithdrawn) => println!("already withdrawn {}", m.id),
            Ok(Revoke::Expired) => println!("already expired {}", m.id),
            Ok(Revoke::Unknown) => println!("gone {}", m.id),
            Err(e) => {
                eprintln!("nta7516-milter: portal revoke {}: {e}", m.id);
                failed = true;
            }
        }
    }
    store.close().await;
    if failed {
        return Err(ExitCode::from(crate::tools::exit::TEMPORARY_OR_USAGE));
    }
    println!(
        "the portal records the withdrawal in its audit log at its next pass (within a minute)"
    );
    Ok(ExitCode::SUCCESS)
}
