//! `audit verify FILE...` (being written).

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain of audit log files (in order); exit 0 intact, 1 broken.
    Verify {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

pub fn run(_command: AuditCommand) -> ExitCode {
    eprintln!("nta7516-milter: audit verify is not available yet");
    ExitCode::from(super::exit::TEMPORARY_OR_USAGE)
}
