//! One LMTP connection (RFC 2033): LHLO, MAIL, RCPT, DATA with one reply per accepted
//! recipient, RSET, NOOP, VRFY, QUIT. Bounded: command line length, recipients per
//! transaction, idle time, errors per connection, message size (via the intake).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::data::DotReader;
use crate::portal::intake::{Envelope, Intake};

/// RFC 5321 §4.5.3.1.4 allows 512 octets per command line; SMTP extensions' parameters
/// (SIZE, BODY, SMTPUTF8, ORCPT with long addresses) can add more, so a margin.
pub const MAX_COMMAND_LINE: usize = 2048;
/// Recipients per transaction; Postfix's `lmtp_destination_recipient_limit` defaults to 50.
/// More: 452 4.5.3 and the MTA sends them in the next transaction.
pub const MAX_RECIPIENTS: usize = 100;
/// RFC 5321 §4.5.3.2.7: a server waits at least 5 minutes for the next command.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Bad commands before the connection is closed (421).
pub const MAX_ERRORS: usize = 10;

pub struct Session<S> {
    stream: S,
    intake: Arc<Intake>,
    host: String,
    idle: Duration,
}

enum Line {
    Command(String),
    TooLong,
    Closed,
}

impl<S: AsyncBufRead + AsyncWrite + Unpin> Session<S> {
    pub fn new(stream: S, intake: Arc<Intake>, host: String) -> Self {
        Self {
            stream,
            intake,
            host,
            idle: IDLE_TIMEOUT,
        }
    }

    /// Idle timeout other than [`IDLE_TIMEOUT`] (tests).
    pub fn with_idle(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    async fn reply(&mut self, text: &str) -> io::Result<()> {
        self.stream.write_all(text.as_bytes()).await?;
        self.stream.write_all(b"\r\n").await?;
        self.stream.flush().await
    }

    async fn read_line(&mut self) -> io::Result<Line> {
        let mut line = Vec::new();
        loop {
            let buf = self.stream.fill_buf().await?;
            if buf.is_empty() {
                return Ok(Line::Closed);
            }
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            let room = (MAX_COMMAND_LINE + 1).saturating_sub(line.len());
            line.extend_from_slice(&buf[..take.min(room)]);
            self.stream.consume(take);
            if done {
                break;
            }
        }
        if line.len() > MAX_COMMAND_LINE {
            return Ok(Line::TooLong);
        }
        let text = String::from_utf8_lossy(&line);
        Ok(Line::Command(
            text.trim_end_matches(['\r', '\n']).to_string(),
        ))
    }

    /// Runs the dialogue until QUIT, the client leaves, a timeout, or `shutdown` (checked
    /// between commands; a DATA in progress is finished first).
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> io::Result<()> {
        let greeting = format!("220 {} LMTP nta7516-milter portal", self.host);
        self.reply(&greeting).await?;
        let mut lhlo = false;
        let mut env: Option<Envelope> = None;
        let mut errors = 0;
        loop {
            let line = tokio::select! {
                r = tokio::time::timeout(self.idle, self.read_line()) => match r {
                    Ok(l) => l?,
                    Err(_) => {
                        let _ = self.reply("421 4.4.2 Idle timeout").await;
                        return Ok(());
                    }
                },
                _ = crate::daemon::stopped(&mut shutdown) => {
                    let _ = self.reply("421 4.3.2 Shutting down").await;
                    return Ok(());
                }
            };
            let cmd = match line {
                Line::Closed => return Ok(()),
                Line::TooLong => {
                    errors += 1;
                    self.reply("500 5.5.2 Line too long").await?;
                    if errors >= MAX_ERRORS {
                        self.reply("421 4.7.0 Too many errors").await?;
                        return Ok(());
                    }
                    continue;
                }
                Line::Command(c) => c,
            };
            let (verb, arg) = match cmd.split_once(' ') {
                Some((v, a)) => (v.to_ascii_uppercase(), a.trim().to_string()),
                None => (cmd.to_ascii_uppercase(), String::new()),
            };
            let reply: String = match verb.as_str() {
                "LHLO" if arg.is_empty() => "501 5.5.4 LHLO needs a host name".into(),
                "LHLO" => {
                    lhlo = true;
                    env = None;
                    format!(
                        "250-{}\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n\
                         250-SMTPUTF8\r\n250 SIZE {}",
                        self.host, self.intake.max_message_size
                    )
                }
                "HELO" | "EHLO" => "500 5.5.1 This is LMTP: use LHLO".into(),
                "MAIL" if !lhlo => "503 5.5.1 LHLO first".into(),
                "MAIL" if env.is_some() => "503 5.5.1 Nested MAIL command".into(),
                "MAIL" => match path_arg(&arg, "FROM:") {
                    None => "501 5.5.4 Syntax: MAIL FROM:<address>".into(),
                    Some((sender, params)) => {
                        if !sender.is_empty()
                            && sender.eq_ignore_ascii_case(&self.intake.own_sender)
                        {
                            crate::portal::intake::REPLY_OWN_MAIL.into()
                        } else if declared_size(&params)
                            .is_some_and(|n| n > self.intake.max_message_size)
                        {
                            crate::portal::intake::REPLY_TOO_BIG.into()
                        } else {
                            env = Some(Envelope {
                                sender,
                                recipients: Vec::new(),
                            });
                            "250 2.1.0 Sender OK".into()
                        }
                    }
                },
                "RCPT" => match (&mut env, path_arg(&arg, "TO:")) {
                    (None, _) => "503 5.5.1 MAIL first".into(),
                    (Some(_), None) => "501 5.5.4 Syntax: RCPT TO:<address>".into(),
                    (Some(_), Some((a, _))) if a.is_empty() || !a.contains('@') => {
                        "501 5.1.3 Recipient address required".into()
                    }
                    (Some(e), Some(_)) if e.recipients.len() >= MAX_RECIPIENTS => {
                        "452 4.5.3 Too many recipients".into()
                    }
                    (Some(e), Some((a, _))) => {
                        e.recipients.push(a);
                        "250 2.1.5 Recipient OK".into()
                    }
                },
                "DATA" => match env.take() {
                    Some(e) if !e.recipients.is_empty() => {
                        self.reply("354 Start mail input; end with <CRLF>.<CRLF>")
                            .await?;
                        let idle = self.idle;
                        let intake = self.intake.clone();
                        let replies = {
                            let mut data = DotReader::new(&mut self.stream, idle);
                            intake.deliver(&e, &mut data).await
                        };
                        match replies {
                            Ok(r) => r.join("\r\n"),
                            // The client is gone (or silent); nothing was stored.
                            Err(_) => return Ok(()),
                        }
                    }
                    other => {
                        env = other;
                        "503 5.5.1 No valid recipients".into()
                    }
                },
                "RSET" => {
                    env = None;
                    "250 2.0.0 OK".into()
                }
                "NOOP" => "250 2.0.0 OK".into(),
                "VRFY" => "252 2.5.0 Cannot verify; send the message".into(),
                "QUIT" => {
                    self.reply("221 2.0.0 Bye").await?;
                    return Ok(());
                }
                _ => {
                    errors += 1;
                    "500 5.5.2 Command not recognised".into()
                }
            };
            self.reply(&reply).await?;
            if errors >= MAX_ERRORS {
                self.reply("421 4.7.0 Too many errors").await?;
                return Ok(());
            }
        }
    }
}

/// `FROM:<addr> params` / `TO:<addr> params` → (addr, params). The prefix is matched
/// case-insensitively; a space after the colon is tolerated.
fn path_arg(arg: &str, prefix: &str) -> Option<(String, String)> {
    let head = arg.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let close = rest.find('>')?;
    let addr = rest[..close].to_string();
    if addr.contains(['\r', '\n', '\0']) {
        return None;
    }
    Some((addr, rest[close + 1..].trim().to_string()))
}

/// `SIZE=n` among MAIL parameters (RFC 1870).
fn declared_size(params: &str) -> Option<u64> {
    params.split_ascii_whitespace().find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.eq_ignore_ascii_case("SIZE").then(|| v.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_pinned() {
        assert_eq!(MAX_COMMAND_LINE, 2048);
        assert_eq!(MAX_RECIPIENTS, 100);
        assert_eq!(IDLE_TIMEOUT, Duration::from_secs(300));
        assert_eq!(MAX_ERRORS, 10);
    }

    #[test]
    fn paths_and_params() {
        assert_eq!(
            path_arg("FROM:<a@b> SIZE=10 BODY=8BITMIME", "FROM:"),
            Some(("a@b".into(), "SIZE=10 BODY=8BITMIME".into()))
        );
        assert_eq!(
            path_arg("from: <>", "FROM:"),
            Some((String::new(), String::new()))
        );
        assert_eq!(
            path_arg("TO:<p@x>", "TO:"),
            Some(("p@x".into(), String::new()))
        );
        assert_eq!(path_arg("TO:p@x", "TO:"), None);
        assert_eq!(path_arg("T", "TO:"), None);
        assert_eq!(declared_size("BODY=8BITMIME size=123"), Some(123));
        assert_eq!(declared_size("BODY=8BITMIME"), None);
    }
}

#[cfg(test)]
mod dialogue {
    use super::*;
    use tokio::io::{AsyncReadExt, BufReader, DuplexStream};

    async fn session(
        dir: &std::path::Path,
        idle: Duration,
    ) -> (
        DuplexStream,
        tokio::task::JoinHandle<io::Result<()>>,
        Arc<Intake>,
        watch::Sender<bool>,
    ) {
        let intake = crate::portal::retention::tests::intake(dir).await;
        let (client, server) = tokio::io::duplex(1 << 20);
        let s = Session::new(BufReader::new(server), intake.clone(), "portal.test".into())
            .with_idle(idle);
        let (tx, rx) = watch::channel(false);
        (client, tokio::spawn(s.run(rx)), intake, tx)
    }

    async fn read_all(c: &mut DuplexStream) -> String {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), c.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn pipelined_transaction_and_recipient_limit() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, task, intake, _stop) = session(dir.path(), Duration::from_secs(5)).await;
        let mut cmds = String::from("LHLO mta\r\nMAIL FROM:<a@zkh.example>\r\n");
        for i in 0..=MAX_RECIPIENTS {
            cmds.push_str(&format!("RCPT TO:<p{i}@x.example>\r\n"));
        }
        cmds.push_str(
            "DATA\r\nSubject: x\r\nX-NTA7516-Phone: +31612345678\r\n\r\nhoi\r\n.\r\nQUIT\r\n",
        );
        c.write_all(cmds.as_bytes()).await.unwrap();
        let out = read_all(&mut c).await;
        task.await.unwrap().unwrap();
        assert_eq!(out.matches("250 2.1.5").count(), MAX_RECIPIENTS);
        assert_eq!(out.matches("452 4.5.3").count(), 1, "{out}");
        assert_eq!(out.matches("250 2.0.0 Opgeslagen").count(), MAX_RECIPIENTS);
        assert!(out.ends_with("221 2.0.0 Bye\r\n"));
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM portal_recipients")
            .fetch_one(intake.store.pool())
            .await
            .unwrap();
        assert_eq!(n, MAX_RECIPIENTS as i64);
    }

    #[tokio::test]
    async fn idle_timeout_and_client_gone_in_data_store_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, task, intake, _stop) = session(dir.path(), Duration::from_millis(300)).await;
        c.write_all(b"LHLO mta\r\nMAIL FROM:<a@zkh.example>\r\nRCPT TO:<p@x.example>\r\nDATA\r\nSubject: x\r\nX-NTA7516-Phone: +31612345678\r\n\r\nhalf a mess")
            .await
            .unwrap();
        // Silent in DATA: the connection is dropped, no reply, nothing stored.
        let out = read_all(&mut c).await;
        task.await.unwrap().unwrap();
        assert!(out.contains("354 "), "{out}");
        assert!(!out.contains("250 2.0.0"), "{out}");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM portal_messages")
            .fetch_one(intake.store.pool())
            .await
            .unwrap();
        assert_eq!(n, 0);
        // Idle between commands: 421.
        let (mut c, task, _i, _stop) = session(dir.path(), Duration::from_millis(300)).await;
        c.write_all(b"LHLO mta\r\n").await.unwrap();
        let out = read_all(&mut c).await;
        task.await.unwrap().unwrap();
        assert!(out.ends_with("421 4.4.2 Idle timeout\r\n"), "{out}");
    }

    #[tokio::test]
    async fn errors_sequence_and_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, task, _i, stop) = session(dir.path(), Duration::from_secs(5)).await;
        c.write_all(b"LHLO mta\r\nDATA\r\nMAIL FROM:<a@b.example>\r\nMAIL FROM:<a@b.example>\r\nDATA\r\nRCPT TO:<nobody>\r\nVRFY x\r\nRSET\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.send(true).unwrap();
        let out = read_all(&mut c).await;
        task.await.unwrap().unwrap();
        let codes: Vec<&str> = out
            .lines()
            .filter_map(|l| l.get(..4))
            .filter(|c| c.ends_with(' '))
            .collect();
        assert_eq!(
            codes,
            [
                "220 ", "250 ", "503 ", "250 ", "503 ", "503 ", "501 ", "252 ", "250 ", "421 "
            ],
            "{out}"
        );
        let (mut c, task, _i, _stop) = session(dir.path(), Duration::from_secs(5)).await;
        c.write_all("BOGUS\r\n".repeat(MAX_ERRORS).as_bytes())
            .await
            .unwrap();
        let out = read_all(&mut c).await;
        task.await.unwrap().unwrap();
        assert!(out.ends_with("421 4.7.0 Too many errors\r\n"), "{out}");
    }
}
