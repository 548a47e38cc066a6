//! `nta7516-milter portal`: the portal process. Opens the key, the audit log and the
//! store, binds the LMTP intake, runs it and the periodic job until shutdown.
//!
//! The web side (`crate::portal::web`) is started here too: see [`start_web`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;

use crate::audit::Auditor;
use crate::config::Config;
use crate::config::portal::PortalConfig;
use crate::portal::crypto::MasterKey;
use crate::portal::intake::Intake;
use crate::portal::notice::Notifier;
use crate::portal::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no [portal] section in the configuration")]
    NotConfigured,
    #[error("master key: {0}")]
    Key(#[from] crate::portal::crypto::CryptoError),
    #[error("portal audit log: {0}")]
    Audit(#[from] crate::audit::AuditError),
    #[error("store: {0}")]
    Store(#[from] crate::portal::store::StoreError),
    #[error("LMTP socket: {0}")]
    Bind(#[from] crate::server::listen::BindError),
    #[error("notifications: {0}")]
    Notice(#[from] crate::portal::notice::NoticeError),
    /// `[portal] listen` cannot be bound (in use, no permission, bad path): the portal
    /// does not start, so that a half-started portal (mail taken in, nobody able to read
    /// it) is never mistaken for a working one.
    #[error("web listener {listen}: cannot listen: {error}")]
    WebBind {
        listen: String,
        error: std::io::Error,
    },
}

/// Everything opened and bound, ready to run (split from [`Portal::run`] so that start-up
/// errors are reported before readiness).
pub struct Portal {
    config: PortalConfig,
    /// `[outbound] networks`: where the revoke link works from.
    internal: Vec<ipnet::IpNet>,
    intake: Arc<Intake>,
    lmtp: crate::server::listen::Bound,
    web: crate::portal::web::WebListener,
}

impl Portal {
    pub async fn start(config: &Config) -> Result<Portal, RunError> {
        let mut portal = config.portal.clone().ok_or(RunError::NotConfigured)?;
        let dir = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
        for file in [
            &mut portal.key_file,
            &mut portal.mail_key,
            &mut portal.sms.token_file,
        ] {
            *file = credential(dir.as_deref(), file);
        }
        let key = Arc::new(MasterKey::load(&portal.key_file)?);
        let auditor = Arc::new(Auditor::open(portal.audit_file.as_deref())?);
        let store = Store::open(&portal.store, key).await?;
        let lmtp = crate::server::listen::bind(&portal.lmtp, &config.server)?;
        let web = crate::portal::web::WebListener::bind(&portal.listen)
            .await
            .map_err(|error| RunError::WebBind {
                listen: portal.listen.to_string(),
                error,
            })?;
        let notifier = Notifier::new(&portal)?;
        let senders = Arc::new(crate::portal::receipt::SenderMail {
            store: store.clone(),
            notifier: notifier.clone(),
            auditor: auditor.clone(),
            public_url: portal.public_url.clone(),
            own_domains: config.domains.own.iter().map(|d| d.to_string()).collect(),
            number_wait: portal.number_wait,
        });
        let intake = Arc::new(Intake {
            store,
            auditor,
            notifier,
            senders,
            public_url: portal.public_url.clone(),
            retention: portal.retention,
            max_message_size: portal.max_message_size,
            own_sender: portal.from.clone(),
            number_wait: portal.number_wait,
        });
        Ok(Portal {
            config: portal,
            internal: config.outbound.networks.clone(),
            intake,
            lmtp,
            web,
        })
    }

    /// The bound LMTP address (tests bind port 0).
    pub fn lmtp_addr(&self) -> Option<std::net::SocketAddr> {
        self.lmtp.local_addr()
    }

    /// Runs until `shutdown` turns true; then lets deliveries in flight finish.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let host = hostname();
        let node = node_name(&host);
        tracing::info!(%node, "portal node");
        let periodic = tokio::spawn(crate::portal::retention::run(
            self.intake.clone(),
            node,
            shutdown.clone(),
        ));
        start_web(
            &self.config,
            &self.intake,
            self.internal.clone(),
            self.web,
            shutdown.clone(),
        );
        crate::portal::lmtp::serve(self.lmtp, self.intake.clone(), host, shutdown).await;
        let _ = periodic.await;
        self.intake.store.close().await;
    }
}

/// The web side on the bound `config.listen`, sharing the intake's store (its pool and
/// key) and audit log. An SMS provider that cannot be set up is logged at ERROR and the
/// LMTP intake keeps running (mail is still taken in and kept; only reading waits); a
/// listener that cannot be bound already stopped [`Portal::start`].
fn start_web(
    config: &PortalConfig,
    intake: &Arc<Intake>,
    internal: Vec<ipnet::IpNet>,
    listener: crate::portal::web::WebListener,
    shutdown: watch::Receiver<bool>,
) {
    use crate::portal::web::{self, WebDeps, WebState};
    let sms = match crate::portal::sms::SmsGateway::new(config.sms.clone()) {
        Ok(g) => {
            if let Some(why) = g.no_roots() {
                tracing::error!(error = %why, hint = crate::portal::sms::NO_ROOTS_HINT, "portal: the SMS provider cannot be reached over https; no codes can be sent until the system has CA certificates");
            }
            g
        }
        Err(e) => {
            tracing::error!(error = %e, "portal web side not started: SMS provider unusable");
            return;
        }
    };
    let state = WebState::new(WebDeps {
        messages: Arc::new(intake.store.clone()),
        pool: intake.store.pool().clone(),
        sms: Arc::new(sms),
        auditor: intake.auditor.clone(),
        alerts: Some(Arc::new(crate::portal::lock_notice::LockNotice {
            notifier: intake.notifier.clone(),
            auditor: intake.auditor.clone(),
        })),
        opened: config
            .notify_opened
            .then(|| intake.senders.clone() as Arc<dyn web::OpenedAlert>),
        revoke: Some(intake.senders.clone()),
        replies: Some(intake.senders.clone()),
        numbers: Some(intake.senders.clone()),
        internal,
        secret: intake.store.key().subkey(b"web"),
        organisation: config.organisation.clone(),
        public_url: config.public_url.clone(),
        branding: config.branding.clone(),
    });
    let listen = config.listen.clone();
    tokio::spawn(async move {
        tracing::info!(listen = %listen, "portal web side listening");
        let mut rx = shutdown;
        let stop = async move { crate::shutdown::requested(&mut rx).await };
        if let Err(e) = web::serve(listener, state, stop).await {
            tracing::error!(error = %e, "portal web side stopped");
        }
    });
}

/// A secret the service manager handed over (`LoadCredential=`, systemd.exec(5)): with
/// `$CREDENTIALS_DIRECTORY` set and a credential there named like `path`'s file name,
/// that credential; else `path` itself. The packaged unit passes the root-only key files
/// this way, so the web-facing process never reads /etc/nta7516-milter itself.
pub fn credential(dir: Option<&Path>, path: &Path) -> PathBuf {
    if let (Some(dir), Some(name)) = (dir, path.file_name()) {
        let c = dir.join(name);
        if c.is_file() {
            tracing::info!(file = %path.display(), credential = %c.display(), "portal: using the credential the service manager passed");
            return c;
        }
    }
    path.to_path_buf()
}

/// This process's name as lease holder: unique even for two nodes on one host or a
/// restart with the same pid (a random part), readable in `portal_leases` (the host).
fn node_name(host: &str) -> String {
    let random = crate::portal::crypto::random_bytes::<6>()
        .map(|b| data_encoding::HEXLOWER.encode(&b))
        .unwrap_or_default();
    format!("{host}/{}/{random}", std::process::id())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_replace_only_files_that_are_there() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("portal.key"), b"k").unwrap();
        let key = Path::new("/etc/nta7516-milter/portal.key");
        let mail = Path::new("/etc/nta7516-milter/portal-mail.key");
        assert_eq!(
            credential(Some(dir.path()), key),
            dir.path().join("portal.key")
        );
        assert_eq!(credential(Some(dir.path()), mail), mail);
        assert_eq!(credential(None, key), key);
        // A directory of that name is not a credential.
        std::fs::create_dir(dir.path().join("portal-mail.key")).unwrap();
        assert_eq!(credential(Some(dir.path()), mail), mail);
    }
}
