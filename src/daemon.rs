//! `run`: the milter and the map server on one shared state, with shutdown and reload
//! passed in (the binary wires them to SIGTERM and SIGHUP; tests drive them directly).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::audit::Event;
use crate::config::ConfigErrors;
use crate::metrics::FrontEnd;
use crate::server::listen::Bound;
use crate::state::{BuildError, Generation, Shared};

/// After shutdown is requested, both front-ends get this long to finish what is in
/// flight before `run` returns anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

pub struct Listeners {
    pub milter: Bound,
    pub map: Bound,
}

/// Why a reload was refused; the running generation stays in force either way.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file did not load (each problem with its file, key and line).
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    /// The file loaded but could not be put into service (keys, resolver, audit file).
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// Builds a new generation from the configuration source, given the running one.
pub type Loader = Box<dyn Fn(&Generation) -> Result<Generation, ReloadError> + Send + Sync>;

/// Observes reloads (for sd_notify and tests): `Ok(generation number)` or the error.
pub type ReloadObserver = Box<dyn Fn(&Result<u64, ReloadError>) + Send + Sync>;

/// Runs both front-ends until `shutdown`. Returns an error when either front-end ends by
/// itself (its listener broke): the other is stopped too and the process should exit
/// non-zero, so that systemd's `Restart=on-failure` brings the daemon back instead of
/// leaving half of it deferring every message.
pub async fn run(
    listeners: Listeners,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    reload: mpsc::Receiver<()>,
    load: Loader,
    on_reload: ReloadObserver,
) -> std::io::Result<()> {
    run_with_metrics(listeners, None, shared, shutdown, reload, load, on_reload).await
}

/// [`run`], and with `metrics` (the `[server] metrics` listener) also `/metrics` and
/// `/healthz` until both front-ends have stopped, so that monitoring sees a front-end
/// go down. The metrics listener is no front-end: when it breaks, it stops alone.
pub async fn run_with_metrics(
    mut listeners: Listeners,
    metrics: Option<Bound>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    mut reload: mpsc::Receiver<()>,
    load: Loader,
    on_reload: ReloadObserver,
) -> std::io::Result<()> {
    let counters = shared.current().metrics.clone();
    for (f, l) in [
        (FrontEnd::Milter, &mut listeners.milter),
        (FrontEnd::Map, &mut listeners.map),
    ] {
        l.report_accepting(counters.accepting_flag(f));
        counters.set_running(f, true);
    }
    // The start's own lines before either front-end serves: the trail must show the
    // start (and which configuration) before the first decision made under it.
    {
        let g = shared.current();
        g.auditor.record(Event::ConfigLoaded {
            source: source_name(&g),
            generation: g.number,
        });
        g.auditor.record(Event::Startup {
            version: env!("CARGO_PKG_VERSION").to_string(),
            milter: g.config.server.milter.to_string(),
            map: g.config.server.map.to_string(),
        });
        tracing::info!(generation = g.number, "nta7516-milter started");
    }
    let (exporter_stop, exporter_rx) = watch::channel(false);
    let exporter = metrics.map(|l| tokio::spawn(exporter(l, shared.clone(), exporter_rx)));
    // The front-ends stop on this one: on the caller's shutdown, or when the other
    // front-end died.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut milter = tokio::spawn(crate::milter::serve(
        listeners.milter,
        shared.clone(),
        stop_rx.clone(),
    ));
    let mut map = tokio::spawn(crate::map::server::serve(
        listeners.map,
        shared.clone(),
        stop_rx,
    ));
    let mut reload_open = true;
    let failure: Option<String> = loop {
        tokio::select! {
            _ = crate::shutdown::requested(&mut shutdown) => break None,
            r = &mut milter => {
                counters.set_running(FrontEnd::Milter, false);
                break Some(front_end_ended("milter", r));
            }
            r = &mut map => {
                counters.set_running(FrontEnd::Map, false);
                break Some(front_end_ended("map server", r));
            }
            r = reload.recv(), if reload_open => match r {
                Some(()) => {
                    let current = shared.current();
                    let outcome = match load(&current) {
                        Ok(g) => {
                            let n = g.number;
                            g.auditor.record(Event::ConfigReloaded {
                                source: source_name(&g),
                                generation: n,
                            });
                            shared.replace(g);
                            tracing::info!(generation = n, "configuration reloaded");
                            Ok(n)
                        }
                        Err(e) => {
                            current.auditor.record(Event::ConfigRefused {
                                source: source_name(&current),
                                error: e.to_string(),
                            });
                            tracing::error!(error = %e, "configuration reload refused; the running configuration stays in force");
                            Err(e)
                        }
                    };
                    on_reload(&outcome);
                }
                // Nobody can ask for a reload any more: wait for shutdown only.
                None => reload_open = false,
            },
        }
    };
    let _ = stop_tx.send(true);
    match &failure {
        None => tracing::info!("shutting down: finishing requests in flight"),
        Some(why) => tracing::error!(
            reason = %why,
            "a front-end stopped; stopping the other and exiting with an error so the service manager restarts the daemon"
        ),
    }
    let both = async {
        for (name, task) in [("milter", milter), ("map server", map)] {
            // A task that already ended was awaited in the loop above; polling its
            // handle again would panic.
            if failure.as_deref().is_some_and(|f| f.starts_with(name)) {
                continue;
            }
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, front_end = name, "front-end stopped with an error")
                }
                Err(e) => tracing::error!(error = %e, front_end = name, "front-end task failed"),
            }
        }
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, both).await.is_err() {
        tracing::warn!(grace = ?SHUTDOWN_GRACE, "shutdown grace period over; exiting with work in flight (the MTA retries it)");
    }
    for f in FrontEnd::ALL {
        counters.set_running(f, false);
    }
    let _ = exporter_stop.send(true);
    if let Some(task) = exporter {
        let _ = tokio::time::timeout(EXPORTER_STOP, task).await;
    }
    let g = shared.current();
    g.auditor.record(Event::Shutdown {
        reason: failure
            .clone()
            .unwrap_or_else(|| "shutdown requested".into()),
    });
    if let Err(e) = g.auditor.sync() {
        tracing::error!(error = %e, "cannot flush the audit log to disk");
    }
    match failure {
        None => {
            tracing::info!("nta7516-milter stopped");
            Ok(())
        }
        Some(why) => Err(std::io::Error::other(why)),
    }
}

/// How long the metrics listener gets to stop at the end (it has nothing to finish).
const EXPORTER_STOP: Duration = Duration::from_secs(2);

/// The metrics listener's task: its failure is logged and ends only this task.
async fn exporter(listener: Bound, shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    if let Err(e) = crate::metrics::http::serve(listener, shared, stop).await {
        tracing::error!(error = %e, "metrics listener failed; /metrics and /healthz are off until a restart (mail is not affected)");
    }
}

/// Why a front-end task ended on its own (it only ever should on shutdown).
fn front_end_ended(name: &str, r: Result<std::io::Result<()>, tokio::task::JoinError>) -> String {
    match r {
        Ok(Ok(())) => format!("{name} stopped unexpectedly"),
        Ok(Err(e)) => format!("{name} stopped: {e}"),
        Err(e) => format!("{name} task failed: {e}"),
    }
}

fn source_name(g: &Generation) -> String {
    g.config
        .source
        .as_ref()
        .map_or("embedded defaults".to_string(), |p| p.display().to_string())
}
