//! The portal's disk fills up: simulated with the process's file size limit
//! (RLIMIT_FSIZE via prlimit, SIGXFSZ ignored, so a write past it fails with EFBIG as one
//! past a full disk fails with ENOSPC). The intake answers 451 (the MTA keeps the mail),
//! nothing half-stored stays visible, and after the "disk" has room again (the limit
//! lifted on the running process) the same message is stored.

mod portal_support;

use std::process::Command;
use std::sync::Arc;

use nta7516_milter::config::portal::StoreLocation;
use nta7516_milter::portal::crypto::MasterKey;
use nta7516_milter::portal::store::Store;
use portal_support::*;

/// Files of the portal may grow to this size: the database and its WAL take a few
/// messages of 200 kB, then writes fail.
const FSIZE: u64 = 1_500_000;

#[test]
fn disk_full_gives_451_and_recovers() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        panic!("prlimit (util-linux) is needed for this test");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut p = Portal::configure(dir.path(), None, "");
    // An ignored signal stays ignored across exec: the write fails instead of killing.
    let fsize = format!("--fsize={FSIZE}:unlimited");
    p.start_with(&[
        "sh",
        "-c",
        "trap '' XFSZ; exec \"$@\"",
        "sh",
        "prlimit",
        &fsize,
        "--",
    ]);
    let mut c = p.lmtp();
    c.cmd("LHLO postfix");
    let mut stored = Vec::new();
    let mut refused = None;
    for i in 0..40 {
        let m = message(
            &format!(
                "Subject: bericht {i}\nX-NTA7516-Phone: +31612345678\nMessage-ID: <{i}@zkh.example>\n"
            ),
            200_000,
        );
        let r = c.send("arts@zkh.example", &["p@x.example"], &m);
        if r[0].starts_with("451 4.3.0") {
            refused = Some(m);
            break;
        }
        assert!(r[0].starts_with("250 2.0.0"), "{r:?}");
        let open = r[0].rfind('(').unwrap();
        stored.push((r[0][open + 1..r[0].len() - 1].to_string(), m));
    }
    let refused = refused.unwrap_or_else(|| panic!("the disk never filled:\n{}", p.log()));
    assert!(!stored.is_empty());

    // Room again: the MTA's retry of the same message is stored.
    let ok = Command::new("prlimit")
        .args(["--pid", &p.pid().to_string(), "--fsize=unlimited:unlimited"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let r = c.send("arts@zkh.example", &["p@x.example"], &refused);
    assert!(r[0].starts_with("250 2.0.0"), "{r:?}\n{}", p.log());
    let open = r[0].rfind('(').unwrap();
    stored.push((r[0][open + 1..r[0].len() - 1].to_string(), refused));
    c.cmd("QUIT");
    assert!(p.stop(), "portal did not stop cleanly: {}", p.log());

    // Everything acknowledged is there, byte-identical; nothing else is visible.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = Arc::new(MasterKey::load(&dir.path().join("portal.key")).unwrap());
    let store = rt
        .block_on(Store::open(
            &StoreLocation::Sqlite(dir.path().join("portal.db")),
            key,
        ))
        .unwrap();
    for (id, m) in &stored {
        assert_eq!(&rt.block_on(store.read_message(id)).unwrap(), m);
    }
    let live: i64 = rt
        .block_on(
            sqlx::query_scalar("SELECT COUNT(*) FROM portal_messages WHERE state = 'live'")
                .fetch_one(store.pool()),
        )
        .unwrap();
    assert_eq!(live, stored.len() as i64);
    let (ok, out) = audit_verify(dir.path());
    assert!(ok, "{out}");
    assert!(
        audit_events(dir.path(), "portal_intake_refused")
            .iter()
            .any(|l| l.contains("451 4.3.0"))
    );
}
