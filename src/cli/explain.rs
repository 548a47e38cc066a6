//! `explain ADDRESS`: the route the map server answers for ADDRESS, with every reason and
//! the settings that decided it (see `tools::explain`).

use std::process::ExitCode;

use crate::tools::explain;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A recipient address, e.g. jan@huisarts.nl (the key Postfix sends to the route map).
    pub address: String,
    /// One JSON document instead of text (schema in the README's Operator tools).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: super::ConfigArg,
}

/// Exit 0 when a route was determined (whatever it is), 2 when the answer is a temporary
/// failure (Postfix would defer) or on a usage or configuration error.
pub async fn run(args: Args) -> ExitCode {
    let usage = ExitCode::from(super::exit::TEMPORARY_OR_USAGE);
    let config = match super::tool_config(args.config.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if args.address.trim().is_empty() {
        eprintln!("nta7516-milter: explain: the address is empty");
        return usage;
    }
    let e = match explain::explain(&config, &args.address).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("nta7516-milter: {e}");
            return usage;
        }
    };
    if args.json {
        println!("{}", crate::tools::explain_json::render_json(&e));
    } else {
        print!("{}", explain::render_text(&e));
    }
    if e.is_temporary() {
        ExitCode::from(super::exit::TEMPORARY_OR_USAGE)
    } else {
        ExitCode::SUCCESS
    }
}
