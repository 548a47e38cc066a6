//! Command-line interface: argument parsing and the subcommands' top level.
//!
//! `main.rs` only calls [`main`]; everything here returns an [`ExitCode`] so that the exit
//! status contract (`check` exits 0 compliant, 1 not compliant, 2 temporary or usage) is
//! decided in one place.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

mod audit;
mod explain;
mod filter;
mod keygen;
mod portal;
mod portal_admin;
mod portal_contacts;
mod record;
mod selfcheck;
mod serve;

use crate::config::{Config, ConfigErrors};
use crate::dns::{HickoryResolver, ResolverSetup};
use crate::domain::DomainName;
use crate::engine::Engine;
use crate::tools::check;

/// Where the packaged configuration lives (a fixed name of the package).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/nta7516-milter/config.toml";

pub use crate::tools::exit;

#[derive(Debug, Parser)]
#[command(name = "nta7516-milter", version, about = "NTA 7516 secure e-mail gateway for Postfix and Exim", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct ConfigArg {
    /// Configuration file [default: /etc/nta7516-milter/config.toml when it exists,
    /// otherwise the embedded defaults]
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the milter and the socketmap server (see postfix/README.md). SIGHUP reloads
    /// the configuration, SIGTERM stops after finishing the requests in flight.
    Serve {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Decide, from DNSSEC-validated DNS, whether each DOMAIN is an NTA 7516 party reachable
    /// directly with DANE. Exit 0 all compliant, 1 some not compliant, 2 temporary failure.
    Check {
        /// Recipient domains to check.
        #[arg(required = true, value_name = "DOMAIN")]
        domains: Vec<String>,
        /// Print one JSON document instead of the text report.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Audit log tools (`audit verify FILE...`).
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Generate a DKIM key pair and print the DNS TXT record to publish.
    DkimKeygen(keygen::Args),
    /// Print a valid NTA 7516 TXT record for your own domain.
    NtaRecord(record::Args),
    /// Check every own domain the way a peer will see it (DNSSEC, NTA record, DKIM, SPF,
    /// DMARC, DANE). Exit 0 all good, 1 problems, 2 temporary failure.
    SelfCheck(selfcheck::Args),
    /// Print the route the map server would answer for ADDRESS, with every reason.
    Explain(explain::Args),
    /// Exim transport_filter: read a message on stdin, write it with footer and
    /// classification header on stdout; exit non-zero on any error (Exim defers).
    Filter(filter::Args),
    /// Run the eDelivery portal ([portal]): LMTP intake, periodic expiry and the web side.
    /// `portal keygen [--out PATH]` creates its master key. SIGTERM stops it.
    Portal(portal::Args),
    /// Validate a configuration file and print every problem (exit 0 valid, 1 invalid).
    CheckConfig {
        /// File to check [default: --config, else /etc/nta7516-milter/config.toml].
        file: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArg,
    },
}

pub fn main() -> ExitCode {
    quiet_on_closed_stdout(dispatch)
}

/// What std's `print!` panics with when standard output is gone.
const STDOUT_GONE: &str = "failed printing to stdout";

fn is_stdout_gone(message: Option<&str>) -> bool {
    message.is_some_and(|m| m.starts_with(STDOUT_GONE))
}

/// Runs `command`, turning a closed standard output into [`exit::OUTPUT_CLOSED`] without
/// a panic message. Rust ignores SIGPIPE, so a write to a closed pipe is an error, which
/// `print!` turns into a panic (exit 101 and a backtrace hint on stderr). SIGPIPE stays
/// ignored rather than set back to its default: `serve` must outlive a peer that
/// closes a socket, and the DNS-using commands must report, not die, on one.
fn quiet_on_closed_stdout(command: impl FnOnce() -> ExitCode) -> ExitCode {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_stdout_gone(info.payload_as_str()) {
            default_hook(info);
        }
    }));
    let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(command)) {
        Ok(code) => code,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied());
            if !is_stdout_gone(message) {
                std::panic::resume_unwind(payload);
            }
            return ExitCode::from(exit::OUTPUT_CLOSED);
        }
    };
    // Output still buffered (a last line without newline) would otherwise be lost
    // silently at exit.
    match std::io::Write::flush(&mut std::io::stdout()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(exit::OUTPUT_CLOSED),
        _ => code,
    }
}

fn dispatch() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            if let Err(p) = e.print()
                && p.kind() == std::io::ErrorKind::BrokenPipe
            {
                return ExitCode::from(exit::OUTPUT_CLOSED);
            }
            return if e.use_stderr() {
                ExitCode::from(exit::TEMPORARY_OR_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Serve { config } => run_serve(serve::serve(config.config)),
        Command::Check {
            domains,
            json,
            config,
        } => run_async(check(domains, json, config.config)),
        Command::CheckConfig { file, config } => check_config(file.or(config.config)),
        Command::Audit { command } => audit::run(command),
        Command::DkimKeygen(a) => keygen::run(a),
        Command::NtaRecord(a) => record::run(a),
        Command::SelfCheck(a) => run_async(selfcheck::run(a)),
        Command::Explain(a) => run_async(explain::run(a)),
        Command::Filter(a) => filter::run(a),
        Command::Portal(a) => portal::run(a),
    }
}

/// Set to a number of threads to run `serve` on tokio's multi-threaded scheduler with
/// that many workers instead of the default single event loop.
pub const WORKER_THREADS_ENV: &str = "TOKIO_WORKER_THREADS";

/// The runtime for `serve`: one thread by default. The daemon spends about a millisecond
/// of CPU per message, so one core serves far more mail than a gateway sees, and on the
/// small machine it shares with the MTA a second worker costs more in cross-thread
/// wakeups than it gains: measured in `bench/postfix-throughput.sh`, the daemon's CPU per
/// message went from 1.24 ms with two workers to about 0.9 ms with one. Ordinary mail
/// never holds the thread long (RSA signing, about 0.4 ms, is the longest step); large
/// messages are prepared on the blocking pool (`milter::OFF_LOOP_BODY_BYTES`).
fn run_serve(fut: impl Future<Output = ExitCode>) -> ExitCode {
    run_on(tokio::runtime::Builder::new_current_thread(), fut)
}

/// The other async commands (check, explain, self-check): tokio's multi-threaded default.
fn run_async(fut: impl Future<Output = ToolExit>) -> ExitCode {
    run_on(tokio::runtime::Builder::new_multi_thread(), async {
        fut.await.unwrap_or_else(|code| code)
    })
}

/// Runs `fut` on `default`, or on N worker threads when [`WORKER_THREADS_ENV`] says so.
/// The variable is checked here for every command because tokio panics on a bad value.
fn run_on(default: tokio::runtime::Builder, fut: impl Future<Output = ExitCode>) -> ExitCode {
    let mut builder = match worker_threads(std::env::var_os(WORKER_THREADS_ENV)) {
        Ok(None) => default,
        Ok(Some(n)) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        Err(e) => {
            eprintln!("nta7516-milter: {e}");
            return ExitCode::from(exit::TEMPORARY_OR_USAGE);
        }
    };
    match builder.enable_all().build() {
        Ok(rt) => rt.block_on(fut),
        Err(e) => {
            eprintln!("nta7516-milter: cannot start the async runtime: {e}");
            ExitCode::from(exit::TEMPORARY_OR_USAGE)
        }
    }
}

/// The worker count from [`WORKER_THREADS_ENV`]: `None` when unset. Checked here because
/// tokio panics on a bad value.
fn worker_threads(value: Option<std::ffi::OsString>) -> Result<Option<usize>, String> {
    let Some(v) = value else { return Ok(None) };
    match v.to_str().map(|s| s.trim().parse::<usize>()) {
        Some(Ok(n)) if n > 0 => Ok(Some(n)),
        _ => Err(format!(
            "{WORKER_THREADS_ENV}={} is not a number of threads (1 or more); unset it for the default single event loop",
            v.to_string_lossy()
        )),
    }
}

/// `--config FILE`, else the packaged file when present, else the embedded defaults.
pub fn load_config(explicit: Option<&Path>) -> Result<Config, ConfigErrors> {
    let path = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => {
            let p = PathBuf::from(DEFAULT_CONFIG_PATH);
            p.exists().then_some(p)
        }
    };
    Config::load(path.as_deref())
}

/// [`load_config`] for a tool command: the configuration, or (after saying why) the exit
/// status for a usage or configuration error.
fn tool_config(explicit: Option<&Path>) -> Result<Config, ExitCode> {
    load_config(explicit).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(exit::TEMPORARY_OR_USAGE)
    })
}

/// What a tool command ends with: its exit status either way, `Err` once it has said on
/// stderr why it stopped early, so that its steps can use `?`.
type ToolExit = Result<ExitCode, ExitCode>;

/// Says `what` on stderr and gives the exit status of a usage or configuration error.
fn usage_error(what: impl std::fmt::Display) -> ExitCode {
    eprintln!("nta7516-milter: {what}");
    ExitCode::from(exit::TEMPORARY_OR_USAGE)
}

/// A tool's report on stdout: one pretty-printed JSON document, or `text` of it.
fn print_report<T: serde::Serialize>(
    doc: &T,
    json: bool,
    text: impl FnOnce(&T) -> String,
) -> Result<(), ExitCode> {
    if json {
        let s = serde_json::to_string_pretty(doc)
            .map_err(|e| usage_error(format_args!("cannot serialise the report: {e}")))?;
        println!("{s}");
    } else {
        print!("{}", text(doc));
    }
    Ok(())
}

/// The DNS engine over the configured resolver for a tool command, or (after saying why)
/// the exit status for a usage or configuration error.
fn tool_engine(config: &Config) -> Result<Arc<Engine<HickoryResolver>>, ExitCode> {
    let resolver = HickoryResolver::new(&resolver_setup(config)).map_err(usage_error)?;
    Ok(Engine::new(
        Arc::new(resolver),
        config.policy.clone(),
        config.dns.timeout,
    ))
}

fn check_config(file: Option<PathBuf>) -> ExitCode {
    let path = file.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    match Config::load(Some(&path)) {
        Ok(config) => {
            // The same check as start-up and reload (keys read and all), so that
            // `ExecStartPre=… check-config` and the daemon never disagree.
            if let Err(problems) = crate::state::check_service(&config) {
                for p in problems {
                    eprintln!("{}: {p}", path.display());
                }
                return ExitCode::from(1);
            }
            if !anchored_zones_complete(&config, &path) {
                return ExitCode::from(1);
            }
            println!("{}: OK", path.display());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(1)
        }
    }
}

/// For a trust anchor file without the root: asks each anchored zone for its keys and
/// reports the ones the file lacks (see `dns::check_anchored_zones`). A zone that cannot
/// be asked now (resolver down) is a warning, not an error: the file itself is fine.
fn anchored_zones_complete(config: &Config, path: &Path) -> bool {
    if config.dns.trust_anchor_file.is_none() {
        return true;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "{}: warning: trust anchor keys not checked: {e}",
                path.display()
            );
            return true;
        }
    };
    let setup = resolver_setup(config);
    let found = runtime.block_on(crate::dns::check_anchored_zones(&setup, config.dns.timeout));
    let mut complete = true;
    for zone in found.unwrap_or_default() {
        match (&zone, zone.problem()) {
            (_, Some(problem)) => {
                eprintln!("{}: dns.trust_anchor_file: {problem}", path.display());
                complete = false;
            }
            (crate::dns::ZoneKeys::Unchecked { zone, why }, None) => eprintln!(
                "{}: warning: dns.trust_anchor_file: the keys of {zone} could not be checked ({why})",
                path.display()
            ),
            _ => {}
        }
    }
    complete
}

pub fn resolver_setup(config: &Config) -> ResolverSetup {
    ResolverSetup::from(&config.dns)
}

async fn check(domains: Vec<String>, json: bool, config: Option<PathBuf>) -> ToolExit {
    let config = tool_config(config.as_deref())?;
    let mut names = Vec::new();
    for d in &domains {
        let name = DomainName::parse(d)
            .map_err(|e| usage_error(format_args!("{d:?} is not a domain name: {e}")))?;
        names.push(name);
    }
    let engine = tool_engine(&config)?;
    let checked = check::run(&engine, &names).await;
    print_report(&checked.document, json, check::render_all)?;
    Ok(ExitCode::from(checked.exit))
}

#[cfg(test)]
mod tests {
    use super::worker_threads;

    #[test]
    fn worker_threads_from_the_environment() {
        assert_eq!(worker_threads(None), Ok(None));
        assert_eq!(worker_threads(Some("4".into())), Ok(Some(4)));
        assert_eq!(worker_threads(Some(" 2 ".into())), Ok(Some(2)));
        for bad in ["0", "", "two", "-1", "1.5"] {
            let e = worker_threads(Some(bad.into())).unwrap_err();
            assert!(e.contains("TOKIO_WORKER_THREADS"), "{bad}: {e}");
        }
    }
}
