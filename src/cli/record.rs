//! `nta-record`: prints a valid current-syntax NTA 7516 TXT record for your own domain,
//! checked by the project's own parser (see `tools::record`).

use std::process::ExitCode;

use crate::domain::DomainName;
use crate::tools::record::{self as tool, Request};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Name of your NTA 7516 communication service (the record's provider=), e.g. the
    /// vendor's product name.
    #[arg(long, value_name = "PROVIDER")]
    pub provider: String,
    /// First month of validity (your certification's start), YYYY-MM.
    #[arg(long, value_name = "YYYY-MM")]
    pub start: String,
    /// Last month of validity (your certification's end), YYYY-MM.
    #[arg(long, value_name = "YYYY-MM")]
    pub end: String,
    /// A host that receives NTA 7516 mail, as "PREFERENCE HOST" (e.g. "10 nta.zkh.nl");
    /// repeat for several (at most 10). Without it, senders use your MX hosts.
    #[arg(long, value_name = "PREF HOST")]
    pub ntamx: Vec<String>,
    /// Print a zone-file line for this domain instead of the bare record text.
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
}

pub fn run(args: Args) -> ExitCode {
    let usage = ExitCode::from(super::exit::TEMPORARY_OR_USAGE);
    let domain = match args.domain.as_deref().map(DomainName::parse) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => {
            eprintln!(
                "nta7516-milter: nta-record: --domain {:?}: {e}",
                args.domain.unwrap_or_default()
            );
            return usage;
        }
    };
    let req = Request {
        provider: args.provider,
        start: args.start,
        end: args.end,
        ntamx: args.ntamx,
    };
    let built = match tool::build(&req, crate::nta::today_utc()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("nta7516-milter: nta-record: {e}");
            return usage;
        }
    };
    match &domain {
        Some(d) => println!("{}", built.zone_line(d)),
        None => println!("{}", built.text()),
    }
    for note in &built.notes {
        eprintln!("note: {note}");
    }
    ExitCode::SUCCESS
}
