//! Handing the portal's own mail (notifications, receipts, replies, notices) to the local
//! MTA: a `sendmail` run per mail (`[portal] sendmail`, the default), or SMTP (RFC 5321)
//! to the MTA's loopback listener over kept-open connections (`[portal] submit`).
//!
//! With Postfix the milter checks the portal's mark on either path (a trusted client:
//! pickup or a loopback SMTP client in `[outbound] networks`); with SMTP no program is
//! started per mail (two per stored message: the notification and the receipt). Exim
//! honours the mark on mail its `sendmail` takes from the portal's user (its not-SMTP ACL
//! checks the caller's uid) or, by SMTP, after the portal logged in (`submit_auth`: AUTH
//! PLAIN as `nta7516-portal` with the password derived from `mail_key`, which Exim's
//! authenticator has the daemon check); the login is what lets a hardened portal unit,
//! which cannot run Exim's setuid `sendmail`, hand its mail to Exim.
//! Every failure is temporary here: the caller keeps the mail pending and retries it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::portal::Submission;
use crate::message::portal_mark::{LOGIN_USER, MarkKey};

/// Longest wait for one submission (a `sendmail` run or one SMTP transaction): Postfix's
/// sendmail only writes the maildrop queue, in milliseconds; a hung one must not hold
/// the portal's work.
pub const SUBMIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Kept-open SMTP connections at most (each is one `smtpd` process at Postfix).
pub const SMTP_POOL_MAX: u32 = 4;
/// An unused SMTP connection is closed after this long (below Postfix's `smtpd_timeout`
/// of 300 s, so the portal, not the MTA, ends it).
pub const SMTP_IDLE: Duration = Duration::from_secs(60);
/// At most this much of sendmail's error output is kept for the error text.
const MAX_STDERR: usize = 2048;
/// sysexits.h "try again later"; other exit statuses are reported as temporary too: a
/// message must never lose its notice.
const EX_TEMPFAIL: i32 = 75;

/// Where the portal's mail goes.
#[derive(Debug, Clone)]
pub enum Submit {
    Sendmail(PathBuf),
    Smtp {
        addr: SocketAddr,
        transport: AsyncSmtpTransport<Tokio1Executor>,
    },
}

impl Submit {
    /// From `[portal] submit`/`sendmail`; `helo` is the name the portal gives in EHLO (the
    /// domain of `[portal] from`); `mark` gives the login password for `submit_auth`. The
    /// SMTP pool connects (and logs in) on first use.
    pub fn new(how: &Submission, helo: &str, mark: &MarkKey) -> Submit {
        match how {
            Submission::Sendmail(p) => Submit::Sendmail(p.clone()),
            Submission::Smtp { addr, login } => {
                let mut builder =
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
                        .port(addr.port())
                        .hello_name(ClientId::Domain(helo.to_string()))
                        .timeout(Some(SUBMIT_TIMEOUT))
                        .pool_config(
                            PoolConfig::new()
                                .min_idle(0)
                                .max_size(SMTP_POOL_MAX)
                                .idle_timeout(SMTP_IDLE),
                        );
                if *login {
                    // PLAIN only: the listener is on loopback (config), and a server that
                    // does not offer PLAIN gets no login and so no mail: a temporary
                    // failure, retried, never mail without the login.
                    builder = builder
                        .credentials(Credentials::new(
                            LOGIN_USER.to_string(),
                            mark.login_password(),
                        ))
                        .authentication(vec![Mechanism::Plain]);
                }
                Submit::Smtp {
                    addr: *addr,
                    transport: builder.build(),
                }
            }
        }
    }

    /// Submits `message` (LF line ends) from `from` to `recipient`, within `timeout`.
    pub async fn send(
        &self,
        from: &str,
        recipient: &str,
        message: &[u8],
        timeout: Duration,
    ) -> Result<(), String> {
        if recipient.is_empty() || recipient.starts_with('-') || recipient.contains(['\r', '\n']) {
            return Err("the recipient address is not usable".into());
        }
        let run = async {
            match self {
                Submit::Sendmail(path) => sendmail(path, from, recipient, message).await,
                Submit::Smtp { addr, transport } => {
                    smtp(transport, *addr, from, recipient, message).await
                }
            }
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            // kill_on_drop ends a sendmail child with the future; a pooled SMTP
            // connection in the middle of a transaction is dropped, not reused.
            Err(_) => Err(format!(
                "the submission did not finish within {} s",
                timeout.as_secs()
            )),
        }
    }
}

/// `sendmail -i -f <from> -- <recipient>` with the process environment (so `MAIL_CONFIG`
/// selects the Postfix instance, as for any Postfix command).
async fn sendmail(
    path: &PathBuf,
    from: &str,
    recipient: &str,
    message: &[u8],
) -> Result<(), String> {
    let mut child = tokio::process::Command::new(path)
        .arg("-i")
        .arg("-f")
        .arg(from)
        .arg("--")
        .arg(recipient)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(message)
        .await
        .map_err(|e| format!("writing to sendmail: {e}"))?;
    drop(stdin);
    let mut stderr = Vec::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = (&mut err)
            .take(MAX_STDERR as u64)
            .read_to_end(&mut stderr)
            .await;
    }
    let status = child
        .wait()
        .await
        .map_err(|e| format!("waiting for sendmail: {e}"))?;
    if status.success() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&stderr);
    let why = crate::mta::sanitize(why.trim(), 300);
    Err(match status.code() {
        Some(EX_TEMPFAIL) => format!("sendmail: temporary failure (exit 75): {why}"),
        Some(c) => format!("sendmail exited with {c}: {why}"),
        None => "sendmail was killed by a signal".into(),
    })
}

async fn smtp(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    addr: SocketAddr,
    from: &str,
    recipient: &str,
    message: &[u8],
) -> Result<(), String> {
    let parse = |a: &str| {
        a.parse::<Address>().map_err(|e| {
            format!(
                "{:?} is not an address for SMTP: {e}",
                crate::mta::sanitize(a, 100)
            )
        })
    };
    let envelope = Envelope::new(Some(parse(from)?), vec![parse(recipient)?])
        .map_err(|e| format!("envelope: {e}"))?;
    transport
        .send_raw(&envelope, &smtp_data(message))
        .await
        .map(|_| ())
        .map_err(|e| {
            let why = crate::mta::sanitize(&e.to_string(), 300);
            format!("SMTP submission to {addr}: {why}")
        })
}

/// SMTP wants CRLF line ends (RFC 5321 section 2.3.8); the built mail has LF. lettre ends
/// the data with CRLF "." CRLF itself (and escapes leading dots), so the last line end is
/// left off here, or the mail would gain an empty last line.
fn smtp_data(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 40);
    let mut prev = 0u8;
    for &b in message {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    if out.ends_with(b"\r\n") {
        out.truncate(out.len() - 2);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_become_crlf_once_and_the_last_is_lettres() {
        assert_eq!(smtp_data(b"a\nb\r\nc\n"), b"a\r\nb\r\nc");
        assert_eq!(smtp_data(b"a\r\n"), b"a");
        assert_eq!(smtp_data(b"a"), b"a");
        assert_eq!(smtp_data(b""), b"");
        assert_eq!(smtp_data(b"\n.\n"), b"\r\n.");
    }

    fn key() -> MarkKey {
        MarkKey::from_bytes(&[3; 32]).unwrap()
    }

    fn smtp(addr: SocketAddr, login: bool) -> Submit {
        Submit::new(&Submission::Smtp { addr, login }, "zkh.example", &key())
    }

    type Seen = std::sync::Arc<std::sync::Mutex<Vec<Vec<Vec<u8>>>>>;

    /// A scripted SMTP server (a unit-test stand-in for the MTA; the real Postfix and Exim
    /// paths are e2e 32 and 52): records each connection's DATA, answers `rcpt_reply` to
    /// RCPT.
    async fn sink(rcpt_reply: &'static str) -> (SocketAddr, Seen) {
        let (addr, seen, _) = sink_with_auth(rcpt_reply, None).await;
        (addr, seen)
    }

    /// [`sink`], offering AUTH PLAIN and answering `auth_reply` to AUTH when it is given;
    /// the third value collects the AUTH command lines.
    async fn sink_with_auth(
        rcpt_reply: &'static str,
        auth_reply: Option<&'static str>,
    ) -> (
        SocketAddr,
        Seen,
        std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    ) {
        use tokio::io::AsyncBufReadExt;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let auths = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let all = seen.clone();
        let all_auths = auths.clone();
        tokio::spawn(async move {
            for _ in 0..8 {
                let Ok((c, _)) = l.accept().await else { return };
                let n = {
                    let mut v = all.lock().unwrap();
                    v.push(Vec::new());
                    v.len() - 1
                };
                let all = all.clone();
                let auths = all_auths.clone();
                tokio::spawn(async move {
                    let (r, mut w) = c.into_split();
                    let mut r = tokio::io::BufReader::new(r);
                    w.write_all(b"220 sink\r\n").await.unwrap();
                    let mut line = String::new();
                    for _ in 0..100 {
                        line.clear();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" if auth_reply.is_some() => {
                                b"250-sink\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"
                            }
                            "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                            "AUTH" => {
                                auths.lock().unwrap().push(line.trim_end().to_string());
                                auth_reply.unwrap_or("502 no\r\n").as_bytes()
                            }
                            "RCPT" => rcpt_reply.as_bytes(),
                            "DATA" => {
                                w.write_all(b"354 go\r\n").await.unwrap();
                                let mut data = Vec::new();
                                while !data.ends_with(b"\r\n.\r\n") {
                                    let mut l = Vec::new();
                                    if r.read_until(b'\n', &mut l).await.unwrap_or(0) == 0 {
                                        return;
                                    }
                                    data.extend_from_slice(&l);
                                }
                                all.lock().unwrap()[n].push(data);
                                b"250 queued\r\n"
                            }
                            "QUIT" => {
                                let _ = w.write_all(b"221 bye\r\n").await;
                                return;
                            }
                            _ => b"250 ok\r\n",
                        };
                        w.write_all(reply).await.unwrap();
                    }
                });
            }
        });
        (addr, seen, auths)
    }

    #[tokio::test]
    async fn smtp_reuses_one_connection_with_crlf_and_dot_stuffing() {
        let (addr, seen) = sink("250 ok\r\n").await;
        let s = smtp(addr, false);
        let t = Duration::from_secs(10);
        s.send(
            "portaal@zkh.example",
            "p@example.org",
            b"Subject: a\n\n.dot\n",
            t,
        )
        .await
        .unwrap();
        // lettre parks a used connection from a spawned task: let it run.
        tokio::time::sleep(Duration::from_millis(200)).await;
        s.send(
            "portaal@zkh.example",
            "q@example.org",
            b"Subject: b\n\nx\n",
            t,
        )
        .await
        .unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "both mails over one kept-open connection");
        assert_eq!(seen[0][0], b"Subject: a\r\n\r\n..dot\r\n.\r\n");
        assert_eq!(seen[0][1], b"Subject: b\r\n\r\nx\r\n.\r\n");
    }

    #[tokio::test]
    async fn smtp_refusals_and_bad_addresses_are_errors_with_the_reason() {
        let (addr, _) = sink("451 4.3.0 try later\r\n").await;
        let s = smtp(addr, false);
        let t = Duration::from_secs(10);
        let e = s
            .send("portaal@zkh.example", "p@example.org", b"x\n", t)
            .await
            .unwrap_err();
        assert!(
            e.contains("try later") && e.contains(&addr.to_string()),
            "{e}"
        );
        for bad in ["", "-oQ/tmp", "a@b\r\nRCPT TO:<x@y>", "no-at-sign"] {
            assert!(
                s.send("portaal@zkh.example", bad, b"x\n", t).await.is_err(),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn nothing_listening_is_an_error_not_a_hang() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let s = smtp(addr, false);
        let e = s
            .send(
                "portaal@zkh.example",
                "p@example.org",
                b"x\n",
                Duration::from_secs(10),
            )
            .await
            .unwrap_err();
        assert!(e.contains("SMTP submission"), "{e}");
    }

    #[tokio::test]
    async fn submit_auth_logs_in_with_plain_and_the_derived_password() {
        let (addr, seen, auths) = sink_with_auth("250 ok\r\n", Some("235 2.7.0 ok\r\n")).await;
        let t = Duration::from_secs(10);
        smtp(addr, true)
            .send("portaal@zkh.example", "p@example.org", b"x\n", t)
            .await
            .unwrap();
        let plain = format!("\0{LOGIN_USER}\0{}", key().login_password());
        let want = format!(
            "AUTH PLAIN {}",
            data_encoding::BASE64.encode(plain.as_bytes())
        );
        assert_eq!(*auths.lock().unwrap(), vec![want]);
        assert_eq!(seen.lock().unwrap()[0].len(), 1, "then the mail");

        // no login without submit_auth, even where the server offers it
        let (addr, seen, auths) = sink_with_auth("250 ok\r\n", Some("235 ok\r\n")).await;
        smtp(addr, false)
            .send("portaal@zkh.example", "p@example.org", b"x\n", t)
            .await
            .unwrap();
        assert!(auths.lock().unwrap().is_empty());
        assert_eq!(seen.lock().unwrap()[0].len(), 1);
    }

    #[tokio::test]
    async fn a_refused_or_impossible_login_sends_nothing() {
        let t = Duration::from_secs(10);
        let (addr, seen, _) =
            sink_with_auth("250 ok\r\n", Some("535 5.7.8 bad credentials\r\n")).await;
        let e = smtp(addr, true)
            .send("portaal@zkh.example", "p@example.org", b"x\n", t)
            .await
            .unwrap_err();
        assert!(e.contains("bad credentials"), "{e}");
        assert!(seen.lock().unwrap().iter().all(|c| c.is_empty()));
        // a server that offers no AUTH: no mail without the login
        let (addr, seen) = sink("250 ok\r\n").await;
        let e = smtp(addr, true)
            .send("portaal@zkh.example", "p@example.org", b"x\n", t)
            .await
            .unwrap_err();
        assert!(e.contains("SMTP submission"), "{e}");
        assert!(seen.lock().unwrap().iter().all(|c| c.is_empty()));
    }

    #[test]
    fn pool_limits_are_pinned() {
        assert_eq!(SMTP_POOL_MAX, 4);
        assert!(SMTP_IDLE < Duration::from_secs(300));
        assert_eq!(SUBMIT_TIMEOUT, Duration::from_secs(60));
    }
}
