//! Binding the milter and map sockets: `inet:HOST:PORT` and `unix:/path`.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};
use tokio::net::{TcpListener, UnixListener};
use tokio::time::{Instant, Sleep};

use super::stream::Stream;
use crate::config::{ServerConfig, SocketSpec};

/// Listen backlog. Postfix runs up to `default_process_limit` (100) smtpd, cleanup and
/// trivial-rewrite processes that may connect at once; with a small backlog, connects
/// failed with EAGAIN and clients got 451 (seen in this project's Postfix lab).
pub const LISTEN_BACKLOG: i32 = 1024;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("{spec}: cannot resolve {host}: {source}")]
    Resolve {
        spec: String,
        host: String,
        source: io::Error,
    },
    #[error("{spec}: {path} exists and is not a socket; refusing to remove it")]
    NotASocket { spec: String, path: String },
    #[error("{spec}: {source}")]
    Io { spec: String, source: io::Error },
    #[error("{spec}: unknown {kind} {name:?}")]
    UnknownId {
        spec: String,
        kind: &'static str,
        name: String,
    },
}

/// After an accept fails for lack of resources (descriptors, buffers, memory), the
/// listener waits this long before trying again: long enough not to spin on a full fd
/// table, short enough that mail flows again within a blink once descriptors are freed.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// While accepts keep failing, at most one log line per this interval (with the number of
/// failures since the last line), so an exhausted fd table does not also flood the journal.
pub const ACCEPT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Accept errors that say nothing about the listener itself: the process or system is
/// short of descriptors or memory for now (EMFILE, ENFILE, ENOBUFS, ENOMEM), or one
/// pending connection died before we took it (ECONNABORTED, and the network errors
/// accept(2) on Linux passes on from the new socket, which it says to treat like EAGAIN).
/// Anything else (EBADF, EINVAL, ...) means the listener is broken and is returned.
pub fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EMFILE
                | libc::ENFILE
                | libc::ENOBUFS
                | libc::ENOMEM
                | libc::ECONNABORTED
                | libc::ECONNRESET
                | libc::EINTR
                | libc::EPROTO
                | libc::EPERM
                | libc::ETIMEDOUT
                | libc::ENETDOWN
                | libc::ENETUNREACH
                | libc::EHOSTDOWN
                | libc::EHOSTUNREACH
                | libc::ENONET
                | libc::ENOPROTOOPT
                | libc::EOPNOTSUPP
        )
    ) || matches!(
        e.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
    )
}

#[derive(Debug)]
enum Kind {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// A bound listener of either kind; its streams coalesce writes (see [`Stream`]).
///
/// Transient accept errors never leave it: it backs off [`ACCEPT_BACKOFF`] and tries
/// again, so neither indymilter (which ends its accept loop for good on the first error)
/// nor the map server loses its port while the fd table is full. Only an error that
/// means the listener itself is broken is returned.
#[derive(Debug)]
pub struct Bound {
    kind: Kind,
    /// The back-off under way after a transient error.
    backoff: Option<Pin<Box<Sleep>>>,
    /// Failures not yet logged, and when the last line was written.
    unlogged: u64,
    last_log: Option<Instant>,
    /// Kept false while accepts fail, true otherwise (`[server] metrics`, `/healthz`).
    accepting: Option<Arc<AtomicBool>>,
}

impl From<TcpListener> for Bound {
    fn from(l: TcpListener) -> Self {
        Self::new(Kind::Tcp(l))
    }
}

impl From<UnixListener> for Bound {
    fn from(l: UnixListener) -> Self {
        Self::new(Kind::Unix(l))
    }
}

impl Bound {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            backoff: None,
            unlogged: 0,
            last_log: None,
            accepting: None,
        }
    }

    /// From now on, keeps `flag` false while accepts fail (the fd table is full, say)
    /// and true while they work: the front-end's state as monitoring sees it.
    pub fn report_accepting(&mut self, flag: Arc<AtomicBool>) {
        self.accepting = Some(flag);
    }

    fn set_accepting(&self, ok: bool) {
        if let Some(f) = &self.accepting {
            f.store(ok, Ordering::Relaxed);
        }
    }

    pub fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Stream>> {
        // Bounded: each pass either returns or arms a back-off that returns Pending.
        loop {
            if let Some(sleep) = self.backoff.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.backoff = None;
            }
            let accepted = match &mut self.kind {
                Kind::Tcp(l) => match l.poll_accept(cx) {
                    Poll::Ready(Ok((s, _))) => match Stream::tcp(s) {
                        Ok(s) => Ok(s),
                        // That one connection is unusable (the peer is already gone);
                        // drop it, the listener is fine.
                        Err(e) => {
                            tracing::debug!(error = %e, "dropping a connection that cannot be set up");
                            continue;
                        }
                    },
                    Poll::Ready(Err(e)) => Err(e),
                    Poll::Pending => {
                        self.set_accepting(true);
                        return Poll::Pending;
                    }
                },
                Kind::Unix(l) => match l.poll_accept(cx) {
                    Poll::Ready(Ok((s, _))) => Ok(Stream::unix(s)),
                    Poll::Ready(Err(e)) => Err(e),
                    Poll::Pending => {
                        self.set_accepting(true);
                        return Poll::Pending;
                    }
                },
            };
            match accepted {
                Ok(s) => {
                    self.set_accepting(true);
                    if self.unlogged > 0 {
                        tracing::warn!(
                            failures = self.unlogged,
                            "accepting connections again after transient errors"
                        );
                        self.unlogged = 0;
                    }
                    return Poll::Ready(Ok(s));
                }
                Err(e) if is_transient_accept_error(&e) => {
                    self.set_accepting(false);
                    self.note_transient(&e);
                    self.backoff = Some(Box::pin(tokio::time::sleep(ACCEPT_BACKOFF)));
                }
                Err(e) => {
                    self.set_accepting(false);
                    return Poll::Ready(Err(e));
                }
            }
        }
    }

    fn note_transient(&mut self, e: &io::Error) {
        self.unlogged += 1;
        let now = Instant::now();
        if self
            .last_log
            .is_none_or(|t| now.duration_since(t) >= ACCEPT_ERROR_LOG_INTERVAL)
        {
            tracing::error!(
                error = %e,
                failures = self.unlogged,
                retry_in = ?ACCEPT_BACKOFF,
                "cannot accept a connection (transient; retrying; raise LimitNOFILE if this is EMFILE)"
            );
            self.last_log = Some(now);
            self.unlogged = 0;
        }
    }

    pub async fn accept(&mut self) -> io::Result<Stream> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// The bound TCP address (tests bind port 0), if TCP.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.kind {
            Kind::Tcp(l) => l.local_addr().ok(),
            Kind::Unix(_) => None,
        }
    }
}

impl indymilter::Listener for Bound {
    type Io = Stream;
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Stream>> {
        Bound::poll_accept(self, cx)
    }
}

/// Binds `spec`. Must run inside a tokio runtime. For `unix:` a stale socket is removed
/// (only if it is a socket), then owner, group and mode from `[server]` are applied so
/// that Postfix (often chrooted under /var/spool/postfix) can connect.
pub fn bind(spec: &SocketSpec, server: &ServerConfig) -> Result<Bound, BindError> {
    let name = spec.to_string();
    let io = |source| BindError::Io {
        spec: name.clone(),
        source,
    };
    match spec {
        SocketSpec::Inet { host, port } => {
            let addr = (host.as_str(), *port)
                .to_socket_addrs()
                .and_then(|mut a| {
                    a.next()
                        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
                })
                .map_err(|source| BindError::Resolve {
                    spec: name.clone(),
                    host: host.clone(),
                    source,
                })?;
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(io)?;
            socket.set_reuse_address(true).map_err(io)?;
            socket.set_nonblocking(true).map_err(io)?;
            socket.bind(&addr.into()).map_err(io)?;
            socket.listen(LISTEN_BACKLOG).map_err(io)?;
            TcpListener::from_std(socket.into())
                .map(Bound::from)
                .map_err(io)
        }
        SocketSpec::Unix(path) => {
            remove_stale(path).map_err(|e| match e {
                Stale::NotASocket => BindError::NotASocket {
                    spec: name.clone(),
                    path: path.display().to_string(),
                },
                Stale::Io(source) => BindError::Io {
                    spec: name.clone(),
                    source,
                },
            })?;
            let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(io)?;
            socket.set_nonblocking(true).map_err(io)?;
            socket
                .bind(&SockAddr::unix(path).map_err(io)?)
                .map_err(io)?;
            socket.listen(LISTEN_BACKLOG).map_err(io)?;
            set_access(path, server, &name)?;
            let std: std::os::unix::net::UnixListener = socket.into();
            UnixListener::from_std(std).map(Bound::from).map_err(io)
        }
    }
}

enum Stale {
    NotASocket,
    Io(io::Error),
}

fn remove_stale(path: &Path) -> Result<(), Stale> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path).map_err(Stale::Io),
        Ok(_) => Err(Stale::NotASocket),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Stale::Io(e)),
    }
}

fn set_access(path: &Path, server: &ServerConfig, spec: &str) -> Result<(), BindError> {
    let io = |source| BindError::Io {
        spec: spec.to_string(),
        source,
    };
    let uid = server
        .socket_owner
        .as_deref()
        .map(|n| lookup_id(n, IdKind::User).ok_or_else(|| unknown(spec, "user", n)))
        .transpose()?;
    let gid = server
        .socket_group
        .as_deref()
        .map(|n| lookup_id(n, IdKind::Group).ok_or_else(|| unknown(spec, "group", n)))
        .transpose()?;
    if uid.is_some() || gid.is_some() {
        std::os::unix::fs::chown(path, uid, gid).map_err(io)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(server.socket_mode)).map_err(io)
}

fn unknown(spec: &str, kind: &'static str, name: &str) -> BindError {
    BindError::UnknownId {
        spec: spec.to_string(),
        kind,
        name: name.to_string(),
    }
}

#[derive(Clone, Copy)]
enum IdKind {
    User,
    Group,
}

/// Resolves a user or group name (or a numeric id) through NSS.
fn lookup_id(name: &str, kind: IdKind) -> Option<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return Some(n);
    }
    match kind {
        IdKind::User => nix::unistd::User::from_name(name)
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw()),
        IdKind::Group => nix::unistd::Group::from_name(name)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw()),
    }
}

/// A TCP socket bound to a loopback port but never put in the listening state: every
/// accept fails with EINVAL. For tests of what happens when a listener breaks.
#[doc(hidden)]
pub fn broken_listener() -> Bound {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_nonblocking(true).expect("nonblocking");
    let addr: SocketAddr = (std::net::Ipv4Addr::LOCALHOST, 0).into();
    socket.bind(&addr.into()).expect("bind");
    Bound::from(TcpListener::from_std(socket.into()).expect("register"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn backlog_exceeds_postfix_process_limit() {
        assert_eq!(LISTEN_BACKLOG, 1024);
    }

    #[test]
    fn accept_backoff_and_log_interval_are_pinned() {
        assert_eq!(ACCEPT_BACKOFF, Duration::from_millis(100));
        assert_eq!(ACCEPT_ERROR_LOG_INTERVAL, Duration::from_secs(10));
    }

    #[test]
    fn resource_shortage_is_transient_a_broken_listener_is_not() {
        for errno in [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
            libc::ENOMEM,
            libc::ECONNABORTED,
        ] {
            assert!(
                is_transient_accept_error(&io::Error::from_raw_os_error(errno)),
                "{errno}"
            );
        }
        for errno in [libc::EBADF, libc::EINVAL, libc::ENOTSOCK, libc::EFAULT] {
            assert!(
                !is_transient_accept_error(&io::Error::from_raw_os_error(errno)),
                "{errno}"
            );
        }
    }

    /// A socket that is bound but not listening fails every accept with EINVAL: that
    /// error must reach the caller (the daemon then exits for systemd to restart it).
    #[tokio::test]
    async fn a_broken_listener_reports_its_error() {
        let mut b = broken_listener();
        let e = tokio::time::timeout(Duration::from_secs(5), b.accept())
            .await
            .expect("accept returns")
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
    }

    #[tokio::test]
    async fn unix_socket_replaces_stale_socket_but_not_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Config::embedded_defaults().server;
        server.socket_mode = 0o660;
        let path = dir.path().join("m.sock");
        let spec = SocketSpec::Unix(path.clone());
        drop(bind(&spec, &server).unwrap());
        // The socket file stays behind after the listener is gone: a stale socket.
        assert!(path.exists());
        let b = bind(&spec, &server).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        drop(b);

        let file = dir.path().join("plain");
        std::fs::write(&file, "keep me").unwrap();
        let err = bind(&SocketSpec::Unix(file.clone()), &server).unwrap_err();
        assert!(matches!(err, BindError::NotASocket { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    }

    #[test]
    fn ids_resolve_by_name_and_number() {
        assert_eq!(lookup_id("root", IdKind::User), Some(0));
        assert_eq!(lookup_id("0", IdKind::Group), Some(0));
        assert_eq!(lookup_id("no-such-user-nta7516", IdKind::User), None);
    }
}
