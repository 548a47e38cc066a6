//! `filter`: Exim `transport_filter`. Reads one message on stdin and writes it on stdout
//! with the milter's header hygiene, `X-NTA7516-Classification` and (secure) the footer;
//! see `message::rewrite` and exim/README.md.
//!
//! Contract with Exim (spec ch. 24, `transport_filter`):
//! * any non-zero exit makes Exim defer the delivery (the message stays queued); so every
//!   error exits non-zero, and nothing is written to stdout unless the whole message is
//!   ready (the input is read completely and the result written in one go);
//! * Exim points the filter's stderr at its stdout, into the message: notes (footer
//!   skipped, headers removed) therefore go to stderr only when stderr is somewhere else
//!   (a terminal, a test), and to the journal when there is one. Error messages always go
//!   to stderr too (the output is discarded then anyway), and to the journal.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::process::ExitCode;

use crate::config::Classification;
use crate::message::footer::MAX_MESSAGE_SIZE;
use crate::message::rewrite::{self, Destination, RewriteError};

/// sysexits.h EX_TEMPFAIL: what mail software reads as "try again later". Exim defers on
/// any non-zero status.
pub const EXIT_TEMPFAIL: u8 = 75;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The classification the transport delivers: "secure" (footer and
    /// X-NTA7516-Classification: secure) or "standard" (the header only).
    #[arg(long, value_name = "secure|standard")]
    pub classification: Classification,
    /// The transport delivers to the eDelivery portal over LMTP: keep
    /// X-NTA7516-Phone, the recipient's mobile number the portal needs (every other
    /// X-NTA7516-* field still goes). Never on a transport that speaks SMTP.
    #[arg(long)]
    pub keep_phone: bool,
    #[command(flatten)]
    pub config: super::ConfigArg,
}

pub fn run(args: Args) -> ExitCode {
    let log = Log::new();
    match filter(&args, &log) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log.error(&e);
            ExitCode::from(EXIT_TEMPFAIL)
        }
    }
}

fn filter(args: &Args, log: &Log) -> Result<(), String> {
    let config = super::load_config(args.config.config.as_deref())
        .map_err(|e| format!("configuration: {e}"))?;

    let mut input = Vec::with_capacity(64 * 1024);
    std::io::stdin()
        .lock()
        .take(MAX_MESSAGE_SIZE as u64 + 1)
        .read_to_end(&mut input)
        .map_err(|e| format!("reading the message from stdin: {e}"))?;
    if input.len() > MAX_MESSAGE_SIZE {
        return Err(RewriteError::TooLarge.to_string());
    }

    let to = if args.keep_phone {
        Destination::Portal
    } else {
        Destination::Smtp
    };
    let out = rewrite::rewrite_for(&input, args.classification, &config, to)
        .map_err(|e| e.to_string())?;

    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&out.message)
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("writing the message to stdout: {e}"))?;
    for note in &out.notes {
        log.note(note);
    }
    Ok(())
}

/// Where notes and errors go (see the module docs).
struct Log {
    /// stderr is a terminal, or not the same open file as stdout (it is when Exim runs us).
    stderr_is_separate: bool,
    journald: bool,
}

impl Log {
    fn new() -> Self {
        let journald = match tracing_journald::layer() {
            Ok(layer) => {
                use tracing_subscriber::layer::SubscriberExt as _;
                use tracing_subscriber::util::SubscriberInitExt as _;
                tracing_subscriber::registry()
                    .with(
                        layer
                            .with_syslog_identifier("nta7516-milter-filter".into())
                            .with_field_prefix(None),
                    )
                    .try_init()
                    .is_ok()
            }
            Err(_) => false,
        };
        Log {
            stderr_is_separate: std::io::IsTerminal::is_terminal(&std::io::stderr())
                || !stderr_is_stdout(),
            journald,
        }
    }

    fn note(&self, msg: &str) {
        if self.journald {
            tracing::info!("{msg}");
        }
        if self.stderr_is_separate {
            eprintln!("nta7516-milter filter: {msg}");
        }
    }

    fn error(&self, msg: &str) {
        if self.journald {
            tracing::error!("{msg}; Exim will defer the delivery");
        }
        eprintln!("nta7516-milter filter: {msg}");
    }
}

/// Are fds 1 and 2 the same file (pipe, socket, ...)? Unknown counts as yes: a note must
/// never end up inside a message.
fn stderr_is_stdout() -> bool {
    let meta = |fd: std::os::fd::BorrowedFd<'_>| {
        fd.try_clone_to_owned()
            .ok()
            .and_then(|owned| std::fs::File::from(owned).metadata().ok())
            .map(|m| (m.dev(), m.ino()))
    };
    match (
        meta(std::io::stdout().as_fd()),
        meta(std::io::stderr().as_fd()),
    ) {
        (Some(out), Some(err)) => out == err,
        _ => true,
    }
}
