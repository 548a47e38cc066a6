//! `audit verify FILE...`: check the hash chain of audit log files, oldest first.
//!
//! Exit 0 intact (`N lines in M files: chain intact`), 1 broken (the first broken line,
//! `FILE:LINE: chain broken: …`, on stdout), 2 unreadable file or usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::audit::{ChainStart, VerifyError, verify_files};

const INTACT: u8 = 0;
const BROKEN: u8 = 1;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain of audit log files, oldest first (e.g. `audit.log-* audit.log`);
    /// exit 0 intact, 1 broken, 2 unreadable.
    Verify {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

pub fn run(command: AuditCommand) -> ExitCode {
    let AuditCommand::Verify { files } = command;
    match verify_files(&files) {
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
