//! `filter` (Exim transport_filter) (being written).

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: super::ConfigArg,
}

pub fn run(_args: Args) -> ExitCode {
    eprintln!("nta7516-milter: filter is not available yet");
    ExitCode::from(super::exit::TEMPORARY_OR_USAGE)
}
