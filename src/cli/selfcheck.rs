//! `self-check`: every own domain as a peer sees it (see `tools::selfcheck`; the JSON
//! schema is documented there).

use std::process::ExitCode;

use crate::tools::selfcheck;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON document instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// Do not connect to the MX/ntamx hosts on port 25 (STARTTLS, certificate, TLSA
    /// match); DNS checks only. For hosts that may not connect out on port 25.
    #[arg(long)]
    pub no_starttls: bool,
    #[command(flatten)]
    pub config: super::ConfigArg,
}

pub async fn run(args: Args) -> super::ToolExit {
    let config = super::tool_config(args.config.config.as_deref())?;
    if config.domains.own.is_empty() {
        let file = config.source.as_ref().map_or(
            "the configuration (no file found; embedded defaults)".to_string(),
            |p| p.display().to_string(),
        );
        return Err(super::usage_error(format_args!(
            "self-check: no own domains configured in {file}; list them in [domains] own, e.g. own = [\"zkh.nl\"]"
        )));
    }
    let engine = super::tool_engine(&config)?;
    let starttls = (!args.no_starttls).then(|| selfcheck::Starttls {
        port: selfcheck::starttls::SMTP_PORT,
        ehlo: gethostname::gethostname().to_string_lossy().into_owned(),
        timeout: config.dns.timeout,
    });
    let doc = selfcheck::run(&engine, &config, starttls.as_ref()).await;
    super::print_report(&doc, args.json, selfcheck::render_text)?;
    Ok(ExitCode::from(doc.result.exit_code()))
}
