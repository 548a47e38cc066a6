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
pub async fn run(args: Args) -> super::ToolExit {
    let config = super::tool_config(args.config.config.as_deref())?;
    if args.address.trim().is_empty() {
        return Err(super::usage_error("explain: the address is empty"));
    }
    let e = explain::explain(&config, &args.address)
        .await
        .map_err(super::usage_error)?;
    if args.json {
        println!("{}", crate::tools::explain_json::render_json(&e));
    } else {
        print!("{}", explain::render_text(&e));
    }
    Ok(if e.is_temporary() {
        ExitCode::from(super::exit::TEMPORARY_OR_USAGE)
    } else {
        ExitCode::SUCCESS
    })
}
