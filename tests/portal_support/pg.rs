//! A throw-away PostgreSQL server for the portal's tests: initdb + pg_ctl on a temp
//! directory and a loopback port (as `postgres`, or `nobody`, when run as root); stopped
//! on drop. [`Pg::start`] returns `None` (skip, loudly) only when the binaries are
//! missing and NTA_REQUIRE_PG is not set; with it set, it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct Pg {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    user: Option<String>,
}

impl Pg {
    pub fn cmd(&self, tool: &str) -> Command {
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

    pub fn start(dir: &Path) -> Option<Pg> {
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

    /// Starts the (stopped) server again.
    pub fn up(&self) {
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

    /// Stops the server (fast shutdown); [`Pg::up`] starts it again.
    pub fn down(&self) {
        let _ = self
            .cmd("pg_ctl")
            .args(["-w", "-t", "60", "-m", "fast", "-D"])
            .arg(&self.data)
            .arg("stop")
            .output();
    }

    pub fn url(&self) -> String {
        format!("postgres://portal@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.down();
    }
}
