//! The compliance engine: facts gathering + decision behind a verdict cache.
//!
//! Shared by the milter (prefetch at RCPT), the map server (`route`, `tls`) and the CLI.
//! Verdicts are cached per domain until the shortest TTL of the answers they rest on
//! (clamped), never past the end of the UTC day (record validity is judged per day), and
//! concurrent evaluations of one domain are merged into one DNS round.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use lru::LruCache;

use crate::config::PolicyConfig;
use crate::dns::{DnsResult, Resolver};
use crate::domain::DomainName;
use crate::nta::facts::{self, Facts, Scope};
use crate::policy::{self, Code, Reason, Verdict};

/// Verdicts cached at most this many domains (about 1 KiB each).
pub const CACHE_ENTRIES: usize = 100_000;
/// Lower bound on how long a definite verdict is cached, whatever the TTLs say: a
/// zero-TTL zone must not turn every RCPT into a DNS round.
pub const MIN_VERDICT_TTL: Duration = Duration::from_secs(30);
/// Upper bound: records and their validity can change; re-check at least hourly.
pub const MAX_VERDICT_TTL: Duration = Duration::from_secs(3600);
/// Temporary failures (timeout, SERVFAIL, bogus) are cached briefly so a broken domain
/// does not get re-queried for every recipient, yet recovers quickly.
pub const TEMPORARY_VERDICT_TTL: Duration = Duration::from_secs(15);

/// One evaluation's outcome as cached and shared.
#[derive(Debug, Clone)]
pub struct Decision {
    pub verdict: Verdict,
    /// When this decision stops being used.
    pub expires: Instant,
}

type Pending = Shared<BoxFuture<'static, Arc<Decision>>>;

pub struct Engine<R: Resolver> {
    resolver: Arc<R>,
    policy: PolicyConfig,
    timeout: Duration,
    cache: Mutex<LruCache<DomainName, Arc<Decision>>>,
    pending: Mutex<HashMap<DomainName, Pending>>,
    /// Hosts that are DANE targets of a compliant domain, until that verdict expires: the
    /// `tls` map must answer `dane-only` for an `ntamx` next hop too.
    dane_targets: Mutex<LruCache<DomainName, Instant>>,
}

impl<R: Resolver> Engine<R> {
    pub fn new(resolver: Arc<R>, policy: PolicyConfig, timeout: Duration) -> Arc<Self> {
        Self::with_capacity(resolver, policy, timeout, CACHE_ENTRIES)
    }

    pub fn with_capacity(
        resolver: Arc<R>,
        policy: PolicyConfig,
        timeout: Duration,
        entries: usize,
    ) -> Arc<Self> {
        let cap = NonZeroUsize::new(entries.max(1)).expect("max(1) is non-zero");
        Arc::new(Self {
            resolver,
            policy,
            timeout,
            cache: Mutex::new(LruCache::new(cap)),
            pending: Mutex::new(HashMap::new()),
            dane_targets: Mutex::new(LruCache::new(cap)),
        })
    }

    pub fn resolver(&self) -> &Arc<R> {
        &self.resolver
    }

    /// A cached, unexpired decision, without any DNS work.
    pub fn cached(&self, domain: &DomainName) -> Option<Arc<Decision>> {
        let mut cache = lock(&self.cache);
        let hit = cache.get(domain)?;
        if hit.expires > Instant::now() {
            Some(hit.clone())
        } else {
            cache.pop(domain);
            None
        }
    }

    /// The routing decision for `domain`: from the cache, or by joining an evaluation
    /// already under way, or by starting one.
    pub async fn decide(self: &Arc<Self>, domain: &DomainName) -> Arc<Decision> {
        if let Some(hit) = self.cached(domain) {
            return hit;
        }
        let fut = {
            let mut pending = lock(&self.pending);
            if let Some(p) = pending.get(domain) {
                p.clone()
            } else {
                let p = self.clone().evaluate_shared(domain.clone());
                pending.insert(domain.clone(), p.clone());
                p
            }
        };
        fut.await
    }

    /// Facts gathered in full and decided, bypassing the cache (for `check`).
    pub async fn check(&self, domain: &DomainName) -> (Facts, Verdict) {
        let facts = facts::gather(
            &*self.resolver,
            domain,
            crate::nta::today_utc(),
            Scope::Full,
            self.timeout,
        )
        .await;
        let verdict = policy::decide(&facts, &self.policy);
        (facts, verdict)
    }

    /// Is `host` a DANE target of a domain found compliant (and not yet expired)?
    pub fn is_dane_target(&self, host: &DomainName) -> bool {
        let mut targets = lock(&self.dane_targets);
        match targets.get(host) {
            Some(expires) if *expires > Instant::now() => true,
            Some(_) => {
                targets.pop(host);
                false
            }
            None => false,
        }
    }

    pub fn policy(&self) -> &PolicyConfig {
        &self.policy
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn cache_len(&self) -> usize {
        lock(&self.cache).len()
    }

    fn evaluate_shared(self: Arc<Self>, domain: DomainName) -> Pending {
        async move {
            // Spawned so that a caller giving up (client disconnect) neither cancels the
            // evaluation for the other waiters nor leaves the pending entry behind, and so
            // that a panic becomes a temporary verdict instead of spreading.
            let task = tokio::spawn({
                let this = self.clone();
                let domain = domain.clone();
                async move { this.evaluate(domain).await }
            });
            let decision = match task.await {
                Ok(d) => d,
                Err(e) => Decision {
                    verdict: Verdict::Temporary {
                        reason: Reason {
                            code: Code::DnsError,
                            message: format!("internal error while evaluating {domain}: {e}"),
                        },
                    },
                    expires: Instant::now() + TEMPORARY_VERDICT_TTL,
                },
            };
            // Only ntamx hosts become next hops of their own ([host]:25); for MX routing
            // Postfix asks the tls map with the domain, which the verdict cache answers.
            if let Verdict::Compliant(c) = &decision.verdict
                && c.via_ntamx
            {
                let mut targets = lock(&self.dane_targets);
                for t in &c.targets {
                    let later = targets.get(t).is_some_and(|e| *e > decision.expires);
                    if !later {
                        targets.put(t.clone(), decision.expires);
                    }
                }
            }
            let decision = Arc::new(decision);
            lock(&self.cache).put(domain.clone(), decision.clone());
            lock(&self.pending).remove(&domain);
            decision
        }
        .boxed()
        .shared()
    }

    async fn evaluate(&self, domain: DomainName) -> Decision {
        let scope = Scope::Routing {
            dmarc: self.policy.require_dmarc,
        };
        let today = crate::nta::today_utc();
        let facts = facts::gather(&*self.resolver, &domain, today, scope, self.timeout).await;
        let verdict = policy::decide(&facts, &self.policy);
        let ttl = verdict_ttl(&facts, &verdict);
        Decision {
            verdict,
            expires: Instant::now() + ttl.min(until_next_utc_day()),
        }
    }
}

/// How long a verdict may be reused: the shortest TTL among the answers it rests on,
/// clamped to [`MIN_VERDICT_TTL`, `MAX_VERDICT_TTL`]; temporary verdicts a short fixed time.
pub fn verdict_ttl(facts: &Facts, verdict: &Verdict) -> Duration {
    if matches!(verdict, Verdict::Temporary { .. }) {
        return TEMPORARY_VERDICT_TTL;
    }
    fn ttl<T>(r: &DnsResult<T>) -> Option<Duration> {
        r.as_ref().ok().map(|a| a.ttl())
    }
    let mut ttls = vec![ttl(&facts.txt), ttl(&facts.mx)];
    if let Some(d) = &facts.dmarc {
        ttls.push(ttl(d));
    }
    for t in facts.targets.iter().flatten() {
        ttls.push(ttl(&t.tlsa));
    }
    ttls.into_iter()
        .flatten()
        .min()
        .unwrap_or(MIN_VERDICT_TTL)
        .clamp(MIN_VERDICT_TTL, MAX_VERDICT_TTL)
}

fn until_next_utc_day() -> Duration {
    let now = time::OffsetDateTime::now_utc();
    let next = now.date().next_day().map(|d| d.midnight().assume_utc());
    match next {
        Some(n) => Duration::try_from(n - now)
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_secs(1)),
        None => MAX_VERDICT_TTL,
    }
}

/// A poisoned lock only means another thread panicked mid-update of a cache; the data is
/// still a valid cache, so keep serving instead of failing every later lookup.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
