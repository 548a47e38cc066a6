//! `explain ADDRESS` (being written).

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub address: String,
    #[command(flatten)]
    pub config: super::ConfigArg,
}

pub async fn run(_args: Args) -> ExitCode {
    eprintln!("nta7516-milter: explain is not available yet");
    ExitCode::from(super::exit::TEMPORARY_OR_USAGE)
}
