//! `portal`: run the eDelivery portal (`portal`), create its master key (`portal
//! keygen`), list or withdraw stored messages (`portal list`, `portal revoke`, in
//! `portal_admin.rs`), keep the address book (`portal contacts`, `portal_contacts.rs`). Thin: the work is in `crate::portal`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{ConfigArg, load_config};
use crate::portal::crypto::MasterKey;
use crate::portal::run::Portal;

/// Where `portal keygen` writes without `--out` and without a `[portal] key_file`.
pub const DEFAULT_KEY_FILE: &str = "/etc/nta7516-milter/portal.key";
/// Exit status when the portal cannot start.
pub const PORTAL_STARTUP_FAILURE: u8 = 1;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<PortalCommand>,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, clap::Subcommand)]
pub enum PortalCommand {
    /// Create the portal's master key (mode 0600; never overwrites). Back it up: without
    /// it no stored message can be read.
    Keygen {
        /// Key file [default: [portal] key_file, else /etc/nta7516-milter/portal.key].
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// List the stored messages (metadata only), newest first.
    List,
    /// The address book: a mobile number per recipient address (mail to a known
    /// recipient needs no number in it).
    #[command(subcommand)]
    Contacts(super::portal_contacts::ContactsCommand),
    /// Withdraw a stored message: its key is destroyed at once and its link says
    /// "withdrawn". Exit 0 withdrawn (or already gone), 1 no such message, 2 error.
    Revoke {
        /// The portal's id (32 hex digits, as in `portal list`) or the Message-ID.
        #[arg(value_name = "ID|MESSAGE-ID")]
        message: String,
    },
}

pub fn run(args: Args) -> ExitCode {
    match args.command {
        Some(PortalCommand::Keygen { out }) => keygen(out, &args.config),
        Some(PortalCommand::List) => {
            let config = args.config.config.clone();
            super::run_async(async move { super::portal_admin::list(config.as_deref()).await })
        }
        Some(PortalCommand::Contacts(cmd)) => {
            let config = args.config.config.clone();
            super::run_async(
                async move { super::portal_contacts::run(cmd, config.as_deref()).await },
            )
        }
        Some(PortalCommand::Revoke { message }) => {
            let config = args.config.config.clone();
            super::run_async(async move {
                super::portal_admin::revoke(&message, config.as_deref()).await
            })
        }
        None => super::run_serve(serve(args.config)),
    }
}

fn keygen(out: Option<PathBuf>, config: &ConfigArg) -> ExitCode {
    let path = out.unwrap_or_else(|| {
        load_config(config.config.as_deref())
            .ok()
            .and_then(|c| c.portal.map(|p| p.key_file))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_KEY_FILE))
    });
    match MasterKey::generate_file(&path) {
        Ok(id) => {
            println!("wrote {} (key id {id})", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nta7516-milter: portal keygen: {e}");
            ExitCode::from(super::exit::TEMPORARY_OR_USAGE)
        }
    }
}

async fn serve(config: ConfigArg) -> ExitCode {
    let fail = ExitCode::from(PORTAL_STARTUP_FAILURE);
    crate::logging::init("info");
    let config = match load_config(config.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nta7516-milter: portal: cannot start:\n{e}");
            return fail;
        }
    };
    let portal = match Portal::start(&config).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("portal cannot start: {e}");
            eprintln!("nta7516-milter: portal: cannot start: {e}");
            return fail;
        }
    };
    let lmtp = config
        .portal
        .as_ref()
        .map(|p| p.lmtp.to_string())
        .unwrap_or_default();
    tracing::info!(%lmtp, "portal listening");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Err(e) = stop_on_signals(stop_tx) {
        eprintln!("nta7516-milter: portal: cannot install signal handlers: {e}");
        return fail;
    }
    crate::notify::notify("READY=1\nSTATUS=portal serving");
    portal.run(stop_rx).await;
    crate::notify::notify("STOPPING=1");
    ExitCode::SUCCESS
}

fn stop_on_signals(stop: tokio::sync::watch::Sender<bool>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        let _ = stop.send(true);
    });
    Ok(())
}
