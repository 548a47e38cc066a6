//! Shared by tests/portal_*.rs: a real `nta7516-milter portal` process on loopback ports,
//! an LMTP client, and the store opened beside it.
#![allow(dead_code)]

pub mod pg;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_nta7516-milter");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Portal {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub lmtp_port: u16,
    /// `[portal] listen` (the web side).
    pub web_port: u16,
    pub child: Option<Child>,
}

impl Portal {
    /// Writes a key and a configuration with `store` (a `sqlite:` path is made under
    /// `dir` when `store` is None) and `extra` lines in `[portal]`.
    pub fn configure(dir: &Path, store: Option<&str>, extra: &str) -> Portal {
        let key = dir.join("portal.key");
        if !key.exists() {
            let out = Command::new(BIN)
                .args(["portal", "keygen", "--out"])
                .arg(&key)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::write(dir.join("sms.token"), "t0ken\n").unwrap();
        // The secret of the mark on the portal's own mail (read at start).
        std::fs::write(dir.join("mail.key"), [7u8; 32]).unwrap();
        let lmtp_port = free_port();
        let web_port = free_port();
        let store = store
            .map(str::to_string)
            .unwrap_or_else(|| format!("sqlite:{}", dir.join("portal.db").display()));
        let text = format!(
            r#"[domains]
own = ["zkh.example"]
[portal]
listen = "inet:127.0.0.1:{web_port}"
public_url = "http://127.0.0.1:{web_port}"
lmtp = "inet:127.0.0.1:{lmtp_port}"
store = "{store}"
key_file = "{key}"
from = "portaal@zkh.example"
audit_file = "{audit}"
sendmail = "/nonexistent/sendmail"
mail_key = "{mail_key}"
{extra}
[portal.sms]
provider = "webhook"
url = "http://127.0.0.1:9/sms"
token_file = "{token}"
"#,
            key = key.display(),
            audit = dir.join("portal-audit.log").display(),
            token = dir.join("sms.token").display(),
            mail_key = dir.join("mail.key").display(),
        );
        let config = dir.join("config.toml");
        std::fs::write(&config, text).unwrap();
        Portal {
            dir: dir.to_path_buf(),
            config,
            lmtp_port,
            web_port,
            child: None,
        }
    }

    pub fn start(&mut self) {
        self.start_with(&[]);
    }

    /// Starts the binary through `wrapper` (e.g. `["prlimit", "--fsize=N", "--"]`); the
    /// wrapper must exec it, so that the child's pid is the portal's.
    pub fn start_with(&mut self, wrapper: &[&str]) {
        let log = std::fs::File::create(self.dir.join("portal.log")).unwrap();
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let child = cmd
            .args(["portal", "--config"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.lmtp_port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("portal exited {status}: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("portal did not listen: {}", self.log());
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("portal.log")).unwrap_or_default()
    }

    /// SIGTERM; returns whether it exited 0 within 15 s.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    pub fn lmtp(&self) -> Lmtp {
        Lmtp::connect(self.lmtp_port)
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A minimal LMTP client (one command, one reply; replies may be multi-line).
pub struct Lmtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Lmtp {
    pub fn connect(port: u16) -> Lmtp {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut l = Lmtp {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        };
        let greeting = l.reply();
        assert!(greeting.starts_with("220 "), "{greeting}");
        l
    }

    /// One (possibly multi-line) reply, lines joined with \n.
    pub fn reply(&mut self) -> String {
        let mut all = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).unwrap();
            assert!(n > 0, "connection closed; got so far: {all:?}");
            let line = line.trim_end().to_string();
            let more = line.as_bytes().get(3) == Some(&b'-');
            all.push(line);
            if !more {
                return all.join("\n");
            }
        }
    }

    pub fn cmd(&mut self, line: &str) -> String {
        self.writer.write_all(line.as_bytes()).unwrap();
        self.writer.write_all(b"\r\n").unwrap();
        self.reply()
    }

    /// A whole transaction; returns the per-recipient replies after DATA (or the first
    /// refusal before it, as the only element).
    pub fn send(&mut self, from: &str, rcpts: &[&str], message: &[u8]) -> Vec<String> {
        let r = self.cmd(&format!("MAIL FROM:<{from}>"));
        if !r.starts_with("250") {
            return vec![r];
        }
        let mut ok = 0;
        for rc in rcpts {
            let r = self.cmd(&format!("RCPT TO:<{rc}>"));
            assert!(r.starts_with("250"), "{r}");
            ok += 1;
        }
        let r = self.cmd("DATA");
        assert!(r.starts_with("354"), "{r}");
        self.writer.write_all(&stuff(message)).unwrap();
        self.writer.write_all(b".\r\n").unwrap();
        (0..ok).map(|_| self.reply()).collect()
    }

    pub fn raw(&mut self) -> &mut TcpStream {
        &mut self.writer
    }

    pub fn read_rest(&mut self) -> String {
        let mut s = String::new();
        let _ = self.reader.read_to_string(&mut s);
        s
    }
}

/// Dot-stuffing (RFC 5321 §4.5.2); `message` must end with CRLF.
pub fn stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 16);
    let mut start = true;
    for &b in message {
        if start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        start = b == b'\n';
    }
    out
}

pub fn message(headers: &str, body_len: usize) -> Vec<u8> {
    let mut m = headers.replace('\n', "\r\n").into_bytes();
    m.extend_from_slice(b"\r\n");
    let line = b".dot-first line of the body, which must survive stuffing\r\n";
    while m.len() < body_len {
        m.extend_from_slice(line);
    }
    m
}

/// Lines of the portal's audit file whose event_type is `event`.
pub fn audit_events(dir: &Path, event: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join("portal-audit.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&format!("\"event_type\":\"{event}\"")))
        .map(str::to_string)
        .collect()
}

pub fn audit_verify(dir: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["audit", "verify"])
        .arg(dir.join("portal-audit.log"))
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
