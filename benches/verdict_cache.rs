//! Cached verdict lookups per second on one core (issue: target ≥ 1,000,000/s).
//!
//! Fills the engine's cache with N domains through a synthetic in-memory resolver (the
//! resolver only matters for the fill), then times `Engine::decide` hits — the call the
//! milter and the map server make per recipient — on a current-thread runtime.
//!
//! Run: `cargo bench --bench verdict_cache` (optional args: DOMAINS LOOKUPS).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nta7516_milter::config::Config;
use nta7516_milter::dns::{Answer, DnsResult, Dnssec, Mx, Resolver, Tlsa};
use nta7516_milter::domain::DomainName;
use nta7516_milter::engine::Engine;

/// The daemon's allocator (src/main.rs), so the RSS figure is the daemon's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Every domain is compliant: one NTA record, one MX, one DANE-EE TLSA, all secure.
struct Synthetic;

fn secure<T>(records: Vec<T>) -> DnsResult<T> {
    Ok(Answer::Records {
        records,
        dnssec: Dnssec::Secure,
        ttl: Duration::from_secs(3600),
    })
}

impl Resolver for Synthetic {
    async fn txt(&self, _: &DomainName) -> DnsResult<String> {
        secure(vec![
            "v=NTA7516-1;startdate=2020-01;enddate=2099-12;provider=Bench".to_string(),
        ])
    }
    async fn mx(&self, name: &DomainName) -> DnsResult<Mx> {
        secure(vec![Mx {
            preference: 10,
            exchange: Some(name.prefixed("mx").expect("short name")),
        }])
    }
    async fn tlsa(&self, _: &DomainName) -> DnsResult<Tlsa> {
        secure(vec![Tlsa {
            usage: 3,
            selector: 1,
            matching: 1,
            data: vec![7; 32],
        }])
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let domains = args.first().copied().unwrap_or(10_000);
    let lookups = args.get(1).copied().unwrap_or(5_000_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let policy = Config::embedded_defaults().policy;
    let engine = Engine::new(Arc::new(Synthetic), policy, Duration::from_secs(5));
    let rss = || {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                })
            })
            .unwrap_or(0)
    };
    let before = rss();
    let names: Vec<DomainName> = (0..domains)
        .map(|i| DomainName::parse(&format!("zorg{i}.example.nl")).expect("valid"))
        .collect();
    rt.block_on(async {
        for n in &names {
            engine.decide(n).await;
        }
    });
    assert_eq!(engine.cache_len(), domains);
    eprintln!(
        "verdict_cache: RSS {before} KiB before the fill, {} KiB after",
        rss()
    );

    let started = Instant::now();
    let compliant = rt.block_on(async {
        let mut compliant = 0usize;
        for i in 0..lookups {
            let d = engine.decide(black_box(&names[i % names.len()])).await;
            compliant += usize::from(d.verdict.label() == "compliant");
        }
        compliant
    });
    let elapsed = started.elapsed();
    assert_eq!(compliant, lookups);
    // Peak resident memory of this process with `domains` verdicts cached (run with
    // 100000 domains for the README figure).
    let peak_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .unwrap_or(0);
    let per_sec = lookups as f64 / elapsed.as_secs_f64();
    println!(
        "verdict_cache: {lookups} cached lookups over {domains} domains in {:.3} s on one core: {:.0} lookups/s ({:.0} ns each)",
        elapsed.as_secs_f64(),
        per_sec,
        elapsed.as_nanos() as f64 / lookups as f64
    );
    println!(
        "verdict_cache: peak RSS {:.1} MiB with {domains} cached domains",
        peak_kib as f64 / 1024.0
    );
}
