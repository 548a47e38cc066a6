//! Audit events written per second to a hash-chained file in a temporary directory.
//!
//! Realistic `recipient_routed` and `message_received` events (two recipients), through
//! `Auditor::record` exactly as the milter calls it: envelope serialisation, the chain's
//! two SHA-256s, one `write(2)`, the state record and the rotation `stat`. No tracing
//! subscriber is installed, so this measures the file path only. The chain is verified
//! after each run.
//!
//! Run: `cargo bench --bench audit_write` (optional arg: EVENTS, default 200000; the
//! fsync-per-line run writes a tenth of that).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use nta7516_milter::audit::{Auditor, Direction, Event, RouteVerdict, SyncPolicy, verify_files};

fn event(i: usize) -> Event {
    let queue_id = format!("4Q{i:08X}");
    if i.is_multiple_of(2) {
        Event::RecipientRouted {
            queue_id: Some(queue_id),
            recipient_domain: "ziekenhuis.example".into(),
            route: "nta7516:[mx.ziekenhuis.example]".into(),
            verdict: RouteVerdict::Compliant,
            reasons: vec![],
            evidence: "txt secure; mx secure; tlsa secure (2 records)".into(),
        }
    } else {
        Event::MessageReceived {
            direction: Direction::Outbound,
            client_address: "192.0.2.7".into(),
            client_name: "werkplek7.zorg.example".into(),
            helo: "werkplek7.zorg.example".into(),
            tls_version: Some("TLSv1.3".into()),
            cipher: Some("TLS_AES_256_GCM_SHA384".into()),
            sasl_user: Some("j.jansen".into()),
            queue_id,
            message_id: Some(format!("<{i}@zorg.example>")),
            sender: "j.jansen@zorg.example".into(),
            recipients: vec![
                "huisarts@ziekenhuis.example".into(),
                "poli@kliniek.example".into(),
            ],
        }
    }
}

fn run(dir: &Path, name: &str, threads: usize, events: usize, sync: SyncPolicy) {
    let path = dir.join(format!("{name}.log"));
    let auditor = Arc::new(Auditor::open_with(Some(&path), sync).expect("open audit log"));
    let per_thread = events / threads;
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let a = auditor.clone();
            s.spawn(move || {
                for i in 0..per_thread {
                    a.record(event(t * per_thread + i));
                }
            });
        }
    });
    auditor.sync().expect("fdatasync");
    let secs = start.elapsed().as_secs_f64();
    let n = per_thread * threads;
    assert_eq!(auditor.failures(), 0);
    drop(auditor);
    let report = verify_files(std::slice::from_ref(&path)).expect("chain intact");
    assert_eq!(report.lines, n as u64);
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "audit_write: {n} events in {secs:.3} s: {:.0} events/s ({name}, {} bytes/line)",
        n as f64 / secs,
        bytes / n as u64
    );
}

fn main() {
    let events: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().expect("tempdir");
    run(
        dir.path(),
        "1 thread, fsync 1 s",
        1,
        events,
        SyncPolicy::default(),
    );
    run(
        dir.path(),
        "4 threads, fsync 1 s",
        4,
        events,
        SyncPolicy::default(),
    );
    run(
        dir.path(),
        "1 thread, fsync every line",
        1,
        events / 10,
        SyncPolicy::EveryLine,
    );
}
