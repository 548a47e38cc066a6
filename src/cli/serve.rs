//! `serve`: the daemon's top level (logging, config, sockets, signals, readiness).

use std::path::PathBuf;
use std::process::ExitCode;

use super::load_config;
use crate::server::listen::bind;
use crate::state::{Generation, Shared};

/// Exit status of `serve` when it cannot start (bad configuration, socket in use).
pub const SERVE_STARTUP_FAILURE: u8 = 1;

pub async fn serve(config_path: Option<PathBuf>) -> ExitCode {
    let fail = ExitCode::from(SERVE_STARTUP_FAILURE);
    let backend = crate::logging::init("info");
    let config = match load_config(config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            eprintln!("nta7516-milter: cannot start:\n{e}");
            return fail;
        }
    };
    let source = config
        .source
        .as_ref()
        .map_or("embedded defaults".to_string(), |p| p.display().to_string());
    let generation = match Generation::build_checked(config, None) {
        Ok(g) => g,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            eprintln!("nta7516-milter: cannot start: {e}");
            return fail;
        }
    };
    let server = &generation.config.server;
    let bound = bind(&server.milter, server).and_then(|milter| {
        bind(&server.map, server).map(|map| crate::daemon::Listeners { milter, map })
    });
    let listeners = match bound {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            eprintln!("nta7516-milter: cannot start: {e}");
            return fail;
        }
    };
    // Monitoring is no reason to keep mail out: a metrics socket that cannot be bound
    // is logged, and the daemon serves mail without it.
    let metrics = server
        .metrics
        .as_ref()
        .and_then(|spec| match bind(spec, server) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::error!(
                    "server.metrics: cannot listen ({e}); serving mail without metrics"
                );
                None
            }
        });
    tracing::info!(
        config = %source,
        metrics = %server
            .metrics
            .as_ref()
            .filter(|_| metrics.is_some())
            .map_or("off".to_string(), |m| m.to_string()),
        milter = %server.milter,
        map = %server.map,
        log = backend,
        dry_run = server.dry_run,
        "listening"
    );
    let shared = Shared::new(generation);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(1);
    if let Err(e) = spawn_signal_handlers(stop_tx, reload_tx) {
        tracing::error!("cannot install signal handlers: {e}");
        return fail;
    }
    let path = config_path.clone();
    let loader: crate::daemon::Loader = Box::new(move |current| {
        let config = load_config(path.as_deref())?;
        if config.server.milter != current.config.server.milter
            || config.server.map != current.config.server.map
            || config.server.metrics != current.config.server.metrics
        {
            tracing::warn!(
                "listener addresses changed in the configuration; they take effect only after a restart"
            );
        }
        Ok(Generation::build_checked(config, Some(current))?)
    });
    let observer: crate::daemon::ReloadObserver = Box::new(|outcome| match outcome {
        Ok(n) => crate::notify::notify(&format!("READY=1\nSTATUS=configuration generation {n}")),
        Err(e) => crate::notify::notify(&format!("READY=1\nSTATUS=reload refused: {e}")),
    });
    crate::notify::notify("READY=1\nSTATUS=serving");
    let result = crate::daemon::run_with_metrics(
        listeners, metrics, shared, stop_rx, reload_rx, loader, observer,
    )
    .await;
    crate::notify::notify("STOPPING=1");
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("stopped with an error: {e}");
            fail
        }
    }
}

fn spawn_signal_handlers(
    stop: tokio::sync::watch::Sender<bool>,
    reload: tokio::sync::mpsc::Sender<()>,
) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM received"); break; }
                _ = int.recv() => { tracing::info!("SIGINT received"); break; }
                _ = hup.recv() => {
                    tracing::info!("SIGHUP received: reloading the configuration");
                    crate::notify::notify("RELOADING=1");
                    // A reload already queued covers this one too.
                    let _ = reload.try_send(());
                }
            }
        }
        let _ = stop.send(true);
    });
    Ok(())
}
