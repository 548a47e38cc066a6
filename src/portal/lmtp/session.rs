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
