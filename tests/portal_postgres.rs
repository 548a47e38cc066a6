//! The same intake on a real PostgreSQL that this test starts (initdb + pg_ctl on a temp
//! directory and a loopback port): stored and read back byte-identical, redelivery without
//! a second copy, 451 while the database is down and the message stored after it is back,
//! expiry (key first, then data). Skipped, loudly, only when the PostgreSQL binaries are
//! missing and NTA_REQUIRE_PG is not set.

mod portal_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use nta7516_milter::config::portal::StoreLocation;
use nta7516_milter::portal::crypto::MasterKey;
use nta7516_milter::portal::store::{MessageState, Store, token_hash};
use portal_support::*;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A throw-away PostgreSQL server; stopped on drop.
struct Pg {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    user: Option<String>,
}

impl Pg {
    fn cmd(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        match &self.user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn start(dir: &Path) -> Option<Pg> {
        let bin =
            std::env::var_os("NTA_PG_BIN").map_or_else(|| PathBuf::from(PG_BIN), PathBuf::from);
        if !bin.join("initdb").exists() || !bin.join("pg_ctl").exists() {
            assert!(
                std::env::var_os("NTA_REQUIRE_PG").is_none(),
                "NTA_REQUIRE_PG is set but {} has no initdb/pg_ctl (apt-get install postgresql)",
                bin.display()
            );
            eprintln!(
                "\n\n!!!!!!!!!! SKIPPED: PostgreSQL binaries not found in {} — the portal's \
                 PostgreSQL path is NOT tested. apt-get install postgresql (or set NTA_PG_BIN). \
                 !!!!!!!!!!\n",
                bin.display()
            );
            return None;
        }
        // initdb refuses to run as root: use the postgres account (or nobody).
        let is_root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        let user = is_root.then(|| {
            let has_pg = Command::new("id")
                .arg("postgres")
                .output()
                .unwrap()
                .status
                .success();
            if has_pg { "postgres" } else { "nobody" }.to_string()
        });
        let base = dir.join("pg");
        std::fs::create_dir(&base).unwrap();
        if let Some(u) = &user {
            // The temp directory is root's 0700: let the server's user in.
            Command::new("chmod").arg("0755").arg(dir).status().unwrap();
            assert!(
                Command::new("chown")
                    .arg(u)
                    .arg(&base)
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let pg = Pg {
            bin,
            data: base.join("data"),
            port: free_port(),
            user,
        };
        let out = pg
            .cmd("initdb")
            .args(["-A", "trust", "-U", "portal", "--no-sync", "-D"])
            .arg(&pg.data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.up();
        Some(pg)
    }

    fn up(&self) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.data.parent().unwrap().display()
        );
        let out = self
            .cmd("pg_ctl")
            .args(["-w", "-t", "60", "-o", &opts, "-l"])
            .arg(self.data.parent().unwrap().join("pg.log"))
            .arg("-D")
            .arg(&self.data)
            .arg("start")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn down(&self) {
        let _ = self
            .cmd("pg_ctl")
            .args(["-w", "-t", "60", "-m", "fast", "-D"])
            .arg(&self.data)
            .arg("stop")
            .output();
    }

    fn url(&self) -> String {
        format!("postgres://portal@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.down();
    }
}

fn message_id(reply: &str) -> String {
    let open = reply.rfind('(').unwrap();
    reply[open + 1..reply.len() - 1].to_string()
}

#[test]
fn lmtp_intake_on_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pg) = Pg::start(dir.path()) else {
        return;
    };
    let mut p = Portal::configure(dir.path(), Some(&pg.url()), "");
    p.start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = Arc::new(MasterKey::load(&dir.path().join("portal.key")).unwrap());
    let store = rt
        .block_on(Store::open(&StoreLocation::Postgres(pg.url()), key))
        .unwrap();
    let count = |sql: &'static str| {
        rt.block_on(sqlx::query_scalar::<_, i64>(sql).fetch_one(store.pool()))
            .unwrap()
    };

    let mut c = p.lmtp();
    c.cmd("LHLO postfix");
    let m1 = message(
        "From: arts@zkh.example\nSubject: [sms:+31612345678] Uitslag\nMessage-ID: <pg1@zkh.example>\n",
        300_000,
    );
    let r = c.send("arts@zkh.example", &["p@x.example", "q@x.example"], &m1);
    assert!(r.iter().all(|l| l.starts_with("250 2.0.0")), "{r:?}");
    let id = message_id(&r[0]);
    let want = String::from_utf8(m1.clone())
        .unwrap()
        .replace("[sms:+31612345678] ", "");
    assert_eq!(
        rt.block_on(store.read_message(&id)).unwrap(),
        want.as_bytes()
    );
    let r = c.send("arts@zkh.example", &["p@x.example", "q@x.example"], &m1);
    assert!(r.iter().all(|l| l.starts_with("250 2.0.0")), "{r:?}");
    assert_eq!(count("SELECT COUNT(*) FROM portal_messages"), 1);
    c.cmd("QUIT");

    // The database down: 451 (the MTA keeps the mail); back up: stored.
    pg.down();
    let mut c = p.lmtp();
    c.cmd("LHLO postfix");
    let m2 = message(
        "Subject: tijdens storing\nX-NTA7516-Phone: 0612345678\n",
        5000,
    );
    let r = c.send("arts@zkh.example", &["p@x.example"], &m2);
    assert!(r[0].starts_with("451 4.3.0"), "{r:?}");
    pg.up();
    let r = c.send("arts@zkh.example", &["p@x.example"], &m2);
    assert!(r[0].starts_with("250 2.0.0"), "{r:?}\n{}", p.log());
    c.cmd("QUIT");
    assert_eq!(count("SELECT COUNT(*) FROM portal_messages"), 2);
    assert_eq!(
        count("SELECT COUNT(*) FROM portal_messages WHERE state = 'incoming'"),
        0
    );

    // Expiry on PostgreSQL: key gone first, then the chunks; the token still resolves to
    // an "expired" recipient without phone.
    let pending = rt.block_on(store.pending_notices(i64::MAX, 10)).unwrap();
    let token = pending
        .iter()
        .find(|n| n.message_id == id)
        .unwrap()
        .token
        .clone();
    assert!(rt.block_on(store.shred(&id)).unwrap());
    let rec = rt
        .block_on(store.recipient_by_token_hash(&token_hash(&token)))
        .unwrap()
        .unwrap();
    assert_eq!(rec.state, MessageState::Expired);
    assert!(rec.phone.is_none());
    assert!(rt.block_on(store.read_message(&id)).is_err());
    rt.block_on(store.close());

    assert!(p.stop(), "portal did not stop cleanly: {}", p.log());
    let (ok, out) = audit_verify(dir.path());
    assert!(ok, "{out}");
    assert_eq!(audit_events(dir.path(), "portal_stored").len(), 3);
}
