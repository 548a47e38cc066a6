//! The running daemon's state: one immutable generation per configuration, swapped as a
//! whole on reload.
//!
//! Every milter connection and every map request takes the current generation once and
//! uses it to the end, so a reload never mixes two configurations in one decision
//! (DESIGN: "new config snapshot per connection"). A failed reload leaves the old
//! generation in place.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::audit::{AuditError, Auditor};
use crate::config::Config;
use crate::dns::{HickoryResolver, ResolverSetup, SetupError};
use crate::domain::DomainName;
use crate::engine::{CACHE_ENTRIES, Engine, MAX_CONCURRENT_EVALUATIONS};
use crate::message::dkim::{KeyError, SigningKey};
use tokio::sync::Semaphore;

/// A DKIM key as loaded at start or reload. A key that failed to load is kept as its
/// error, so mail from that domain is deferred with the reason instead of leaving
/// unsigned.
pub type DkimSlot = Result<Arc<SigningKey>, Arc<KeyError>>;

/// Why a configuration could not be put into service.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Resolver(#[from] SetupError),
    #[error(transparent)]
    Audit(#[from] AuditError),
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
}

impl Generation {
    /// Builds a generation. The engine (and its verdict cache) is carried over from
    /// `previous` when neither the DNS settings nor the policy changed.
    pub fn build(config: Config, previous: Option<&Generation>) -> Result<Self, BuildError> {
        let engine = match previous {
            Some(p) if p.config.dns == config.dns && p.config.policy == config.policy => {
                p.engine.clone()
            }
            _ => {
                let resolver = HickoryResolver::new(&ResolverSetup {
                    nameservers: config.dns.nameservers.clone(),
                    trust_anchor_file: config.dns.trust_anchor_file.clone(),
                })?;
                // One bound on evaluations for the whole process, across reloads.
                let slots = previous.map_or_else(
                    || Arc::new(Semaphore::new(MAX_CONCURRENT_EVALUATIONS)),
                    |p| p.engine.slots(),
                );
                Engine::with_slots(
                    Arc::new(resolver),
                    config.policy.clone(),
                    config.dns.timeout,
                    CACHE_ENTRIES,
                    slots,
                )
            }
        };
        let auditor = match previous {
            Some(p) if p.config.audit == config.audit => p.auditor.clone(),
            _ => Arc::new(Auditor::open(config.audit.file.as_deref())?),
        };
        let dkim = load_dkim_keys(&config);
        let authserv_id = config
            .inbound
            .authserv_id
            .clone()
            .unwrap_or_else(crate::message::inbound::host_name);
        Ok(Self {
            auditor,
            authserv_id,
            config: Arc::new(config),
            engine,
            dkim,
            number: previous.map_or(0, |p| p.number + 1),
        })
    }

    /// The signing key for mail from `domain`: `None` when no `[[dkim]]` entry exists.
    pub fn dkim_key(&self, domain: &DomainName) -> Option<&DkimSlot> {
        self.dkim.get(domain)
    }
}

pub fn load_dkim_keys(config: &Config) -> HashMap<DomainName, DkimSlot> {
    config
        .dkim
        .iter()
        .map(|d| {
            let slot = SigningKey::load(&d.domain, &d.selector, &d.key)
                .map(Arc::new)
                .map_err(Arc::new);
            (d.domain.clone(), slot)
        })
        .collect()
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
