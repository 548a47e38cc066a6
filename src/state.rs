//! The running daemon's state: one immutable generation per configuration, swapped as a
//! whole on reload.
//!
//! Every milter connection and every map request takes the current generation once and
//! uses it to the end, so a reload never mixes two configurations in one decision
//! (a new configuration snapshot per connection). A failed reload leaves the old
//! generation in place.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::audit::{AuditError, Auditor};
use crate::config::Config;
use crate::dns::{HickoryResolver, ResolverSetup, SetupError};
use crate::domain::DomainName;
use crate::engine::{CACHE_ENTRIES, Engine, MAX_CONCURRENT_EVALUATIONS};
use crate::message::plan::Context;
use crate::message::portal_mark::MarkKey;
use crate::metrics::Metrics;
use tokio::sync::Semaphore;

pub use crate::message::dkim::DkimSlot;

/// Why a configuration could not be put into service.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Resolver(#[from] SetupError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// What [`check_service`] found, one problem per entry.
    #[error("{}", .0.join("; "))]
    Refused(Vec<String>),
}

pub struct Generation {
    pub config: Arc<Config>,
    pub engine: Arc<Engine<HickoryResolver>>,
    /// The audit trail (NEN 7513). Carried over on reload while `[audit]` is unchanged,
    /// so the hash chain continues in the same writer.
    pub auditor: Arc<Auditor>,
    pub dkim: HashMap<DomainName, DkimSlot>,
    /// Counts reloads, for logs and audit events.
    pub number: u64,
    /// RFC 8601 authserv-id: `[inbound] authserv_id`, else this host's name.
    pub authserv_id: String,
    /// `[portal] mail_key`, loaded: recognises the portal's own mail
    /// (`message::portal_mark`). `None` without a portal, or (tools, tests) when it does
    /// not load; `serve` refuses to start then ([`check_service`]).
    pub portal_mark: Option<Arc<MarkKey>>,
    /// The process's counters for `[server] metrics`: made with the first generation,
    /// handed on to every later one (a reload resets nothing).
    pub metrics: Arc<Metrics>,
}

impl Generation {
    /// Builds a generation as it comes, keys that do not load included (mail from their
    /// domains is then deferred). For tools and tests; `serve` uses
    /// [`Generation::build_checked`].
    pub fn build(config: Config, previous: Option<&Generation>) -> Result<Self, BuildError> {
        let dkim = load_dkim_keys(&config);
        Self::assemble(config, previous, dkim)
    }

    /// What `serve` puts into service, at start and on every reload: refused unless
    /// [`check_service`] passes, the check `check-config` makes. A refused reload leaves
    /// the running generation, and its keys, in force.
    pub fn build_checked(
        config: Config,
        previous: Option<&Generation>,
    ) -> Result<Self, BuildError> {
        let dkim = check_service(&config).map_err(BuildError::Refused)?;
        Self::assemble(config, previous, dkim)
    }

    /// The engine (and its verdict cache) is carried over from `previous` when neither
    /// the DNS settings nor the policy changed; the auditor when `[audit]` did not.
    fn assemble(
        config: Config,
        previous: Option<&Generation>,
        dkim: HashMap<DomainName, DkimSlot>,
    ) -> Result<Self, BuildError> {
        let metrics = previous.map_or_else(Arc::default, |p| p.metrics.clone());
        let engine = match previous {
            Some(p) if p.config.dns == config.dns && p.config.policy == config.policy => {
                p.engine.clone()
            }
            _ => {
                let resolver = HickoryResolver::new(&ResolverSetup::from(&config.dns))?;
                // One bound on evaluations for the whole process, across reloads.
                let slots = previous.map_or_else(
                    || Arc::new(Semaphore::new(MAX_CONCURRENT_EVALUATIONS)),
                    |p| p.engine.slots(),
                );
                Engine::with_metrics(
                    Arc::new(resolver),
                    config.policy.clone(),
                    config.dns.timeout,
                    CACHE_ENTRIES,
                    slots,
                    metrics.clone(),
                )
            }
        };
        let auditor = match previous {
            Some(p) if p.config.audit == config.audit => p.auditor.clone(),
            _ => Arc::new(Auditor::open(config.audit.file.as_deref())?),
        };
        let authserv_id = crate::message::hygiene::authserv_id(&config);
        let portal_mark = config
            .portal
            .as_ref()
            .and_then(|p| MarkKey::load(&p.mail_key).ok())
            .map(Arc::new);
        Ok(Self {
            auditor,
            authserv_id,
            portal_mark,
            config: Arc::new(config),
            engine,
            dkim,
            metrics,
            number: previous.map_or(0, |p| p.number + 1),
        })
    }

    /// The signing key for mail from `domain`: `None` when no `[[dkim]]` entry exists.
    pub fn dkim_key(&self, domain: &DomainName) -> Option<&DkimSlot> {
        self.dkim.get(domain)
    }

    /// What the end-of-message plan needs of this generation; `remote_transports` are the
    /// transports that deliver by SMTP to a remote host (the milter's list).
    pub fn plan_context<'a>(&'a self, remote_transports: &'a [&'a str]) -> Context<'a> {
        Context {
            config: &self.config,
            authserv_id: &self.authserv_id,
            dkim: &self.dkim,
            remote_transports,
            portal_mark: self.portal_mark.as_deref(),
        }
    }
}

/// The checks beyond the file's syntax, one function for `check-config`, start-up and
/// reload, so that what `check-config` accepts is what the daemon runs:
/// - every own domain has a `[[dkim]]` entry, and every `[[dkim]]` key loads. Mail from
///   an own domain is never sent unsigned (NTA 7516 requires DKIM), so without a usable
///   key every message from it would be deferred.
///
/// - `[dns] trust_anchor_file`, when set, reads as the resolver reads it.
///
/// Returns the loaded keys, or every problem found (each as `key: message`).
pub fn check_service(config: &Config) -> Result<HashMap<DomainName, DkimSlot>, Vec<String>> {
    let keys = load_dkim_keys(config);
    let mut problems = Vec::new();
    if let Some(path) = &config.dns.trust_anchor_file
        && let Err(e) = crate::dns::check_trust_anchor_file(path)
    {
        problems.push(format!("dns.trust_anchor_file: {e}"));
    }
    for own in &config.domains.own {
        if !keys.contains_key(own) {
            problems.push(format!(
                "domains.own: {own} has no [[dkim]] entry, so every message from it would be deferred (451); add one (`nta7516-milter dkim-keygen --domain {own} --selector SELECTOR` prints it)"
            ));
        }
    }
    // The milter reads the portal's mark key: without it the portal's notifications
    // would be refused (their sender is the portal's address) instead of sent.
    if let Some(p) = &config.portal
        && let Err(e) = MarkKey::load(&p.mail_key)
    {
        problems.push(format!(
            "portal.mail_key: {e} (the milter must read it to recognise the portal's own mail)"
        ));
    }
    for d in &config.dkim {
        if let Some(Err(e)) = keys.get(&d.domain) {
            problems.push(format!("dkim ({}): {e}", d.domain));
        }
    }
    if problems.is_empty() {
        Ok(keys)
    } else {
        Err(problems)
    }
}

pub fn load_dkim_keys(config: &Config) -> HashMap<DomainName, DkimSlot> {
    crate::message::dkim::load_keys(config)
}

/// The current generation, shared by every front-end.
pub struct Shared {
    current: RwLock<Arc<Generation>>,
}

impl Shared {
    pub fn new(generation: Generation) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(Arc::new(generation)),
        })
    }

    pub fn current(&self) -> Arc<Generation> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn replace(&self, generation: Generation) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(generation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn portal_config(mail_key: &std::path::Path) -> Config {
        Config::from_toml_str(
            &format!(
                "[dns]\nnameservers = [\"127.0.0.1:9\"]\n[domains]\nown = [\"zkh.nl\"]\n\
                 [portal]\nlisten = \"inet:127.0.0.1:7580\"\npublic_url = \"https://portaal.zkh.nl\"\n\
                 lmtp = \"inet:127.0.0.1:7524\"\nstore = \"sqlite:/tmp/p.db\"\nkey_file = \"/tmp/p.key\"\n\
                 from = \"portaal@zkh.nl\"\nmail_key = \"{}\"\n[portal.sms]\nprovider = \"webhook\"\n\
                 url = \"https://sms.zkh.nl/send\"\ntoken_file = \"/tmp/sms.token\"\n",
                mail_key.display()
            ),
            "t",
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn the_portal_mark_key_is_loaded_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("mail.key");
        let c = portal_config(&key);
        let problems = check_service(&c).unwrap_err();
        assert!(
            problems.iter().any(|p| p.starts_with("portal.mail_key: ")),
            "{problems:?}"
        );
        assert!(
            Generation::build(c.clone(), None)
                .unwrap()
                .portal_mark
                .is_none()
        );
        std::fs::write(&key, [5u8; 32]).unwrap();
        let problems = check_service(&c).unwrap_err();
        assert!(
            !problems.iter().any(|p| p.contains("mail_key")),
            "{problems:?}"
        );
        let g = Generation::build(c, None).unwrap();
        assert!(g.portal_mark.is_some());
        assert!(g.plan_context(&[]).portal_mark.is_some());
    }

    fn config(extra: &str) -> Config {
        Config::from_toml_str(
            &format!("[dns]\nnameservers = [\"127.0.0.1:9\"]\n{extra}"),
            "t",
        )
        .unwrap()
    }

    /// A reload keeps the engine (and its verdict cache) while `[dns]` and `[policy]` are
    /// unchanged, and the auditor (and its hash chain) while `[audit]` is.
    #[tokio::test]
    async fn reload_carries_over_engine_and_auditor_only_when_their_sections_are_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let audit = format!("[audit]\nfile = {:?}\n", dir.path().join("a.log"));
        let first = Generation::build(config(&audit), None).unwrap();

        let same = Generation::build(config(&audit), Some(&first)).unwrap();
        assert!(Arc::ptr_eq(&first.engine, &same.engine));
        assert!(Arc::ptr_eq(&first.auditor, &same.auditor));
        assert_eq!(same.number, first.number + 1);

        let policy = format!("{audit}[policy]\ndefault = \"standard\"\n");
        let new_policy = Generation::build(config(&policy), Some(&same)).unwrap();
        assert!(!Arc::ptr_eq(&same.engine, &new_policy.engine));
        assert!(Arc::ptr_eq(&same.auditor, &new_policy.auditor));
        // One bound on evaluations across reloads, even with a new engine.
        assert!(Arc::ptr_eq(
            &same.engine.slots(),
            &new_policy.engine.slots()
        ));

        let no_file = "[policy]\ndefault = \"standard\"\n";
        let new_audit = Generation::build(config(no_file), Some(&new_policy)).unwrap();
        assert!(!Arc::ptr_eq(&new_policy.auditor, &new_audit.auditor));
        assert!(Arc::ptr_eq(&new_policy.engine, &new_audit.engine));
    }
}
