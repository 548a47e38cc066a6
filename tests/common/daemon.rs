//! Starts the real daemon (`nta7516_milter::run`: milter + map server) in-process on
//! loopback TCP ports and unix sockets, with shutdown and reload under the test's control
//! (and, with [`start_with_metrics`], the `[server] metrics` listener).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use nta7516_milter::config::{Config, SocketSpec};
use nta7516_milter::daemon::{Listeners, Loader, ReloadObserver};
use nta7516_milter::server::listen::bind;
use nta7516_milter::state::{Generation, Shared};
use tokio::sync::{mpsc, watch};

pub struct Daemon {
    pub milter: SocketAddr,
    pub map: SocketAddr,
    pub shared: Arc<Shared>,
    pub stop: watch::Sender<bool>,
    pub reload: mpsc::Sender<()>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Reload outcomes, in order.
    pub reloads: mpsc::UnboundedReceiver<Result<u64, String>>,
    /// The config file reloads read (tests rewrite it).
    pub config_file: PathBuf,
    _dir: tempfile::TempDir,
}

/// `toml` is a full config (the [server] listeners are overridden to port 0).
pub async fn start(toml: &str) -> Daemon {
    start_with(toml, false).await.0
}

/// [`start`] with the `[server] metrics` listener too, on its own loopback port.
pub async fn start_with_metrics(toml: &str) -> (Daemon, SocketAddr) {
    let (d, metrics) = start_with(toml, true).await;
    (d, metrics.unwrap())
}

async fn start_with(toml: &str, metrics: bool) -> (Daemon, Option<SocketAddr>) {
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("config.toml");
    std::fs::write(&config_file, toml).unwrap();
    let config = Config::load(Some(&config_file)).unwrap();
    let any = SocketSpec::Inet {
        host: "127.0.0.1".into(),
        port: 0,
    };
    let milter = bind(&any, &config.server).unwrap();
    let map = bind(&any, &config.server).unwrap();
    let (milter_addr, map_addr) = (milter.local_addr().unwrap(), map.local_addr().unwrap());
    let exporter = metrics.then(|| bind(&any, &config.server).unwrap());
    let exporter_addr = exporter.as_ref().and_then(|e| e.local_addr());
    let shared = Shared::new(Generation::build(config, None).unwrap());
    let (stop, stop_rx) = watch::channel(false);
    let (reload, reload_rx) = mpsc::channel(1);
    let (seen_tx, reloads) = mpsc::unbounded_channel();
    let path = config_file.clone();
    let loader: Loader = Box::new(move |current| {
        let c = Config::load(Some(&path))?;
        Ok(Generation::build(c, Some(current))?)
    });
    let observer: ReloadObserver = Box::new(move |r| {
        let _ = seen_tx.send(r.as_ref().map(|n| *n).map_err(|e| e.to_string()));
    });
    let task = tokio::spawn(nta7516_milter::daemon::run_with_metrics(
        Listeners { milter, map },
        exporter,
        shared.clone(),
        stop_rx,
        reload_rx,
        loader,
        observer,
    ));
    let d = Daemon {
        milter: milter_addr,
        map: map_addr,
        shared,
        stop,
        reload,
        task,
        reloads,
        config_file,
        _dir: dir,
    };
    (d, exporter_addr)
}

impl Daemon {
    pub async fn shutdown(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap();
    }
}
