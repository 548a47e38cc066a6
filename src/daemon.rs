//! `run`: the milter and the map server on one shared state, with shutdown and reload
//! passed in (the binary wires them to SIGTERM and SIGHUP; tests drive them directly).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::audit::Event;
use crate::server::listen::Bound;
use crate::state::{Generation, Shared};

/// After shutdown is requested, both front-ends get this long to finish what is in
/// flight before `run` returns anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

pub struct Listeners {
    pub milter: Bound,
    pub map: Bound,
}

/// Builds a new generation from the configuration source, given the running one.
pub type Loader = Box<dyn Fn(&Generation) -> Result<Generation, String> + Send + Sync>;

/// Observes reloads (for sd_notify and tests): `Ok(generation number)` or the error.
pub type ReloadObserver = Box<dyn Fn(&Result<u64, String>) + Send + Sync>;

pub async fn run(
    listeners: Listeners,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    mut reload: mpsc::Receiver<()>,
    load: Loader,
    on_reload: ReloadObserver,
) -> std::io::Result<()> {
    let milter = tokio::spawn(crate::milter::serve(
        listeners.milter,
        shared.clone(),
        shutdown.clone(),
    ));
    let map = tokio::spawn(crate::map::server::serve(
        listeners.map,
        shared.clone(),
        shutdown.clone(),
    ));
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
    loop {
        tokio::select! {
            _ = crate::daemon::stopped(&mut shutdown) => break,
            r = reload.recv() => match r {
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
                                error: e.clone(),
                            });
                            tracing::error!(error = %e, "configuration reload refused; the running configuration stays in force");
                            Err(e)
                        }
                    };
                    on_reload(&outcome);
                }
                // Nobody can ask for a reload any more: wait for shutdown only.
                None => {
                    stopped(&mut shutdown).await;
                    break;
                }
            },
        }
    }
    tracing::info!("shutting down: finishing requests in flight");
    let both = async {
        let (a, b) = tokio::join!(milter, map);
        for r in [a, b] {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "front-end stopped with an error"),
                Err(e) => tracing::error!(error = %e, "front-end task failed"),
            }
        }
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, both).await.is_err() {
        tracing::warn!(grace = ?SHUTDOWN_GRACE, "shutdown grace period over; exiting with work in flight (the MTA retries it)");
    }
    let g = shared.current();
    g.auditor.record(Event::Shutdown {
        reason: "shutdown requested".into(),
    });
    if let Err(e) = g.auditor.sync() {
        tracing::error!(error = %e, "cannot flush the audit log to disk");
    }
    tracing::info!("nta7516-milter stopped");
    Ok(())
}

/// Resolves once `shutdown` is true (or its sender is gone). The `watch::Ref` guard is
/// dropped inside, so the future stays `Send` in `select!`.
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

fn source_name(g: &Generation) -> String {
    g.config
        .source
        .as_ref()
        .map_or("embedded defaults".to_string(), |p| p.display().to_string())
}
