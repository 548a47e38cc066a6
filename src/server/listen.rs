//! Binding the milter and map sockets: `inet:HOST:PORT` and `unix:/path`.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::task::{Context, Poll};

use socket2::{Domain, SockAddr, Socket, Type};
use tokio::net::{TcpListener, UnixListener};

use super::stream::Stream;
use crate::config::{ServerConfig, SocketSpec};

/// Listen backlog. Postfix runs up to `default_process_limit` (100) smtpd, cleanup and
/// trivial-rewrite processes that may connect at once; with a small backlog, connects
/// failed with EAGAIN and clients got 451 (reference/mta.md §7).
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

/// A bound listener of either kind; its streams coalesce writes (see [`Stream`]).
#[derive(Debug)]
pub enum Bound {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Bound {
    pub fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Stream>> {
        match self {
            Bound::Tcp(l) => l
                .poll_accept(cx)
                .map(|r| r.and_then(|(s, _)| Stream::tcp(s))),
            Bound::Unix(l) => l.poll_accept(cx).map(|r| r.map(|(s, _)| Stream::unix(s))),
        }
    }

    pub async fn accept(&mut self) -> io::Result<Stream> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// The bound TCP address (tests bind port 0), if TCP.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Bound::Tcp(l) => l.local_addr().ok(),
            Bound::Unix(_) => None,
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
                .map(Bound::Tcp)
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
            UnixListener::from_std(std).map(Bound::Unix).map_err(io)
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
    let cname = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: getpwnam_r/getgrnam_r write only into the provided struct and buffer, whose
    // sizes we pass; the result pointer is null or points at that struct.
    unsafe {
        match kind {
            IdKind::User => {
                let mut pw: libc::passwd = std::mem::zeroed();
                let mut out: *mut libc::passwd = std::ptr::null_mut();
                let rc = libc::getpwnam_r(
                    cname.as_ptr(),
                    &mut pw,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut out,
                );
                (rc == 0 && !out.is_null()).then_some(pw.pw_uid)
            }
            IdKind::Group => {
                let mut gr: libc::group = std::mem::zeroed();
                let mut out: *mut libc::group = std::ptr::null_mut();
                let rc = libc::getgrnam_r(
                    cname.as_ptr(),
                    &mut gr,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut out,
                );
                (rc == 0 && !out.is_null()).then_some(gr.gr_gid)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn backlog_exceeds_postfix_process_limit() {
        assert_eq!(LISTEN_BACKLOG, 1024);
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
