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
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::PolicyConfig;
use crate::dns::{DnsResult, Resolver};
use crate::domain::DomainName;
use crate::metrics::Metrics;
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

/// Evaluations (DNS rounds for one domain) under way at once, across milter prefetch, map
/// lookups and inbound checks. Each holds one UDP socket per query in flight (about six
/// per domain, DNSSEC chain included) for up to `[dns] timeout`: without a bound, one
/// SMTP session naming 3,000 uncached recipient domains held 18,000 descriptors and took
/// the milter down at a 4096-fd limit. 128 × ~6 sockets stays far below the service's
/// LimitNOFILE (65536) and its 1,024 + 1,024 connections, and still decides far more
/// new domains per second than a hospital ever sends to.
pub const MAX_CONCURRENT_EVALUATIONS: usize = 128;

/// What [`Engine::prefetch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefetch {
    /// A fresh verdict is cached already.
    Cached,
    /// An evaluation of this domain is already under way.
    Pending,
    /// An evaluation was started.
    Started,
    /// Every evaluation slot is taken: skipped (the lookup at delivery evaluates it).
    Skipped,
}

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
    /// [`MAX_CONCURRENT_EVALUATIONS`] permits; one is held by each evaluation under way.
    /// Shared with the engine of the next configuration generation, so a reload does not
    /// double the bound.
    slots: Arc<Semaphore>,
    /// The process's counters (cache hits, evaluations), shared across generations.
    metrics: Arc<Metrics>,
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
        let slots = Arc::new(Semaphore::new(MAX_CONCURRENT_EVALUATIONS));
        Self::with_slots(resolver, policy, timeout, entries, slots)
    }

    /// An engine whose evaluations take their permits from `slots` (the previous
    /// generation's [`Engine::slots`] on reload).
    pub fn with_slots(
        resolver: Arc<R>,
        policy: PolicyConfig,
        timeout: Duration,
        entries: usize,
        slots: Arc<Semaphore>,
    ) -> Arc<Self> {
        Self::with_metrics(resolver, policy, timeout, entries, slots, Arc::default())
    }

    /// [`Engine::with_slots`], counting into `metrics` (the process's, on reload too).
    pub fn with_metrics(
        resolver: Arc<R>,
        policy: PolicyConfig,
        timeout: Duration,
        entries: usize,
        slots: Arc<Semaphore>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let cap = NonZeroUsize::new(entries.max(1)).expect("max(1) is non-zero");
        Arc::new(Self {
            resolver,
            policy,
            timeout,
            cache: Mutex::new(LruCache::new(cap)),
            pending: Mutex::new(HashMap::new()),
            dane_targets: Mutex::new(LruCache::new(cap)),
            slots,
            metrics,
        })
    }

    /// The evaluation permits this engine draws from.
    pub fn slots(&self) -> Arc<Semaphore> {
        self.slots.clone()
    }

    /// Evaluation slots free right now.
    pub fn free_slots(&self) -> usize {
        self.slots.available_permits()
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
    /// already under way, or by starting one once an evaluation slot is free (waiting for
    /// it; callers bound the wait with their own deadline).
    pub async fn decide(self: &Arc<Self>, domain: &DomainName) -> Arc<Decision> {
        let hit = self.cached(domain);
        self.metrics.cache_lookup(hit.is_some());
        if let Some(hit) = hit {
            return hit;
        }
        let joined = lock(&self.pending).get(domain).cloned();
        if let Some(p) = joined {
            return p.await;
        }
        let Ok(permit) = self.slots.clone().acquire_owned().await else {
            // The semaphore is never closed; should it be, defer instead of panicking.
            return Arc::new(temporary(format!(
                "evaluation slots closed while deciding {domain}"
            )));
        };
        // Someone may have decided this domain while we waited for the slot.
        if let Some(hit) = self.cached(domain) {
            return hit;
        }
        let fut = {
            let mut pending = lock(&self.pending);
            match pending.get(domain) {
                Some(p) => p.clone(),
                None => {
                    let p = self.start(domain.clone(), permit);
                    pending.insert(domain.clone(), p.clone());
                    p
                }
            }
        };
        fut.await
    }

    /// Warms the cache for `domain` without waiting: starts an evaluation only if one is
    /// neither cached nor under way and a slot is free at once. A prefetch is only a
    /// head start for the map lookup at delivery, so under load it is skipped rather
    /// than queued.
    pub fn prefetch(self: &Arc<Self>, domain: &DomainName) -> Prefetch {
        if self.cached(domain).is_some() {
            return Prefetch::Cached;
        }
        let mut pending = lock(&self.pending);
        if pending.contains_key(domain) {
            return Prefetch::Pending;
        }
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            return Prefetch::Skipped;
        };
        let p = self.start(domain.clone(), permit);
        pending.insert(domain.clone(), p);
        Prefetch::Started
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

    /// Starts the evaluation at once on its own task, which holds `permit` until its DNS
    /// work is done. Call with the `pending` lock held and insert the result under it, so
    /// the task cannot finish (and remove its entry) before the entry exists.
    fn start(self: &Arc<Self>, domain: DomainName, permit: OwnedSemaphorePermit) -> Pending {
        // Spawned so that a caller giving up (client disconnect, deadline) neither cancels
        // the evaluation for the other waiters nor leaves the pending entry behind, and so
        // that a panic becomes a temporary verdict instead of spreading.
        let task = tokio::spawn({
            let this = self.clone();
            let domain = domain.clone();
            async move {
                let decision = this.evaluate(domain.clone()).await;
                drop(permit);
                this.finish(&domain, decision)
            }
        });
        let this = self.clone();
        async move {
            match task.await {
                Ok(d) => d,
                Err(e) => this.finish(
                    &domain,
                    temporary(format!("internal error while evaluating {domain}: {e}")),
                ),
            }
        }
        .boxed()
        .shared()
    }

    /// Records a finished evaluation: DANE targets, the cache, and no longer pending.
    fn finish(&self, domain: &DomainName, decision: Decision) -> Arc<Decision> {
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
        lock(&self.pending).remove(domain);
        decision
    }

    async fn evaluate(&self, domain: DomainName) -> Decision {
        let scope = Scope::Routing {
            dmarc: self.policy.require_dmarc,
        };
        let today = crate::nta::today_utc();
        let started = Instant::now();
        let facts = facts::gather(&*self.resolver, &domain, today, scope, self.timeout).await;
        let verdict = policy::decide(&facts, &self.policy);
        self.metrics.evaluated(&verdict, started.elapsed());
        let ttl = verdict_ttl(&facts, &verdict);
        Decision {
            verdict,
            expires: Instant::now() + ttl.min(until_next_utc_day()),
        }
    }
}

fn temporary(message: String) -> Decision {
    Decision {
        verdict: Verdict::Temporary {
            reason: Reason {
                code: Code::DnsError,
                message,
            },
        },
        expires: Instant::now() + TEMPORARY_VERDICT_TTL,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{Mx, Tlsa};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An upstream that never answers; counts the lookups waiting on it.
    #[derive(Default)]
    struct Silent {
        waiting: AtomicUsize,
        most: AtomicUsize,
    }

    impl Silent {
        async fn hang<T>(&self) -> DnsResult<T> {
            let now = self.waiting.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            // Leaves the count raised when cancelled: `most` is what the test reads.
            std::future::pending().await
        }
    }

    impl Resolver for Silent {
        async fn txt(&self, _: &DomainName) -> DnsResult<String> {
            self.hang().await
        }
        async fn mx(&self, _: &DomainName) -> DnsResult<Mx> {
            self.hang().await
        }
        async fn tlsa(&self, _: &DomainName) -> DnsResult<Tlsa> {
            self.hang().await
        }
    }

    fn name(i: usize) -> DomainName {
        DomainName::parse(&format!("d{i}.example")).unwrap()
    }

    #[test]
    fn evaluation_bound_is_pinned() {
        assert_eq!(MAX_CONCURRENT_EVALUATIONS, 128);
    }

    /// Without the bound every RCPT started its own DNS round: 3,000 domains meant 3,000
    /// evaluations (and ~18,000 sockets) at once.
    #[tokio::test(start_paused = true)]
    async fn prefetch_is_skipped_and_decide_waits_when_every_slot_is_busy() {
        let resolver = Arc::new(Silent::default());
        let timeout = Duration::from_secs(5);
        let policy = crate::config::Config::embedded_defaults().policy;
        let engine = Engine::new(resolver.clone(), policy, timeout);
        let extra = 50;
        let mut started = 0;
        let mut skipped = 0;
        for i in 0..MAX_CONCURRENT_EVALUATIONS + extra {
            match engine.prefetch(&name(i)) {
                Prefetch::Started => started += 1,
                Prefetch::Skipped => skipped += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((started, skipped), (MAX_CONCURRENT_EVALUATIONS, extra));
        assert_eq!(engine.free_slots(), 0);
        // Joining an evaluation under way needs no slot.
        assert_eq!(engine.prefetch(&name(0)), Prefetch::Pending);
        tokio::task::yield_now().await;
        // A lookup that needs a new evaluation waits for a slot (callers bound the wait).
        let newcomer = name(10_000);
        let waited = tokio::time::timeout(Duration::from_secs(1), engine.decide(&newcomer)).await;
        assert!(waited.is_err(), "decided without a free slot");
        // The silent evaluations end at the engine's deadline and give their slots back;
        // then the newcomer gets one.
        let d = tokio::time::timeout(timeout * 3, engine.decide(&newcomer))
            .await
            .expect("a slot frees up once the evaluations time out");
        assert!(matches!(d.verdict, Verdict::Temporary { .. }), "{d:?}");
        tokio::time::sleep(timeout).await;
        assert_eq!(engine.free_slots(), MAX_CONCURRENT_EVALUATIONS);
        // At most a few lookups per evaluation were ever waiting at once.
        let most = resolver.most.load(Ordering::SeqCst);
        assert!(
            most <= MAX_CONCURRENT_EVALUATIONS * 3,
            "{most} lookups in flight"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_reloaded_engine_shares_the_slots() {
        let policy = crate::config::Config::embedded_defaults().policy;
        let a = Engine::new(
            Arc::new(Silent::default()),
            policy.clone(),
            Duration::from_secs(5),
        );
        let b = Engine::with_slots(
            Arc::new(Silent::default()),
            policy,
            Duration::from_secs(5),
            16,
            a.slots(),
        );
        for i in 0..MAX_CONCURRENT_EVALUATIONS {
            assert_eq!(a.prefetch(&name(i)), Prefetch::Started);
        }
        assert_eq!(b.prefetch(&name(0)), Prefetch::Skipped);
    }
}
