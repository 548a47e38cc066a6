//! `audit verify FILE...`: check the hash chain of audit log files, oldest first.
//! Exit 0 intact (`N lines in M files: chain intact`), 1 broken (the first broken line,
//! `FILE:LINE: chain broken: …`, on stdout), 2 unreadable file or usage error.
//!
//! `audit show [FILTERS] FILE...`: the lines of one message, address, domain, event type or
//! time span, one line each for people or the records as written (`--json`). Exit 0 when
//! something matched, 1 when nothing did, 2 unreadable file or usage error (as grep).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::audit::{ChainStart, Filter, VerifyError, render_shown, show, verify_files};

const INTACT: u8 = 0;
const BROKEN: u8 = 1;
/// `audit show` found no matching line (as grep).
const NOTHING_FOUND: u8 = 1;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain of audit log files, oldest first (e.g. `audit.log-* audit.log`);
    /// exit 0 intact, 1 broken, 2 unreadable.
    Verify {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Show the lines of one message, address, domain, event type or time span, oldest
    /// file first (e.g. `audit show --message-id '<x@zkh.nl>' audit.log-* audit.log`);
    /// exit 0 found, 1 nothing found, 2 unreadable.
    Show {
        #[command(flatten)]
        filter: Filter,
        /// The matching records as written (JSON lines), for jq.
        #[arg(long)]
        json: bool,
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

pub fn run(command: AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Verify { files } => verify(&files),
        AuditCommand::Show {
            filter,
            json,
            files,
        } => show_lines(&files, &filter, json),
    }
}

fn show_lines(files: &[PathBuf], filter: &Filter, json: bool) -> ExitCode {
    match show(files, filter) {
        Ok(found) if found.is_empty() => ExitCode::from(NOTHING_FOUND),
        Ok(found) => {
            for s in &found {
                if json {
                    println!("{}", s.raw);
                } else {
                    println!("{}", render_shown(s));
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nta7516-milter: {e}");
            ExitCode::from(super::exit::TEMPORARY_OR_USAGE)
        }
    }
}

fn verify(files: &[PathBuf]) -> ExitCode {
    match verify_files(files) {
        Ok(report) => {
            for note in &report.notes {
                println!("note: {note}");
            }
            println!(
                "{} lines in {} files: chain intact",
                report.lines, report.files
            );
            match (&report.start, report.last_seq, &report.last_hash) {
                (ChainStart::Empty, ..) => {}
                (start, Some(seq), Some(hash)) => {
                    let from = match start {
                        ChainStart::Genesis => "from the genesis".to_string(),
                        _ => format!(
                            "from seq {} (start not verified)",
                            report.first_seq.unwrap_or(0)
                        ),
                    };
                    println!("verified {from} to seq {seq}; last hash {hash}");
                }
                _ => {}
            }
            ExitCode::from(INTACT)
        }
        Err(e @ VerifyError::Broken { .. }) => {
            println!("{e}");
            ExitCode::from(BROKEN)
        }
        Err(e @ VerifyError::Unreadable { .. }) => {
            eprintln!("nta7516-milter: {e}");
            ExitCode::from(super::exit::TEMPORARY_OR_USAGE)
        }
    }
}
