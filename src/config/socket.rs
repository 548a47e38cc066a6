//! Listening sockets in Postfix's milter notation: `inet:HOST:PORT` and `unix:PATH`.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;

use crate::domain::DomainName;

/// Where a front-end listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SocketSpec {
    /// `host` is a name, an IPv4 address or an IPv6 address *without* brackets (so that
    /// `(host.as_str(), port)` can be handed to `ToSocketAddrs` / `TcpListener::bind`);
    /// `Display` adds the brackets back.
    Inet { host: String, port: u16 },
    /// Absolute, or relative for Postfix chroot setups (Postfix resolves a relative milter
    /// path against its queue directory; the daemon resolves it against its own working
    /// directory).
    Unix(PathBuf),
}

const EXPECTED: &str = "expected \"inet:HOST:PORT\" (e.g. \"inet:127.0.0.1:7516\" or \
                        \"inet:[::1]:7516\") or \"unix:/path/to/socket\"";

/// `sun_path` holds 108 bytes on Linux including the terminating NUL.
const MAX_UNIX_PATH: usize = 107;

impl FromStr for SocketSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("inet:") {
            parse_inet(rest).map_err(|why| format!("{s:?}: {why}; {EXPECTED}"))
        } else if let Some(rest) = s.strip_prefix("unix:") {
            parse_unix(rest).map_err(|why| format!("{s:?}: {why}"))
        } else {
            Err(format!("{s:?}: {EXPECTED}"))
        }
    }
}

fn parse_inet(rest: &str) -> Result<SocketSpec, String> {
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (inside, after) = bracketed
            .split_once(']')
            .ok_or("missing ']' after the IPv6 address")?;
        let port = after
            .strip_prefix(':')
            .ok_or("missing \":PORT\" after the ']'")?;
        let ip: Ipv6Addr = inside
            .parse()
            .map_err(|_| format!("{inside:?} in brackets is not an IPv6 address"))?;
        (ip.to_string(), port)
    } else {
        let (host, port) = rest.rsplit_once(':').ok_or("missing \":PORT\"")?;
        if host.contains(':') {
            return Err("an IPv6 address must be written in brackets".into());
        }
        if host.is_empty() {
            return Err("missing host".into());
        }
        let host = match host.parse::<Ipv4Addr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => DomainName::parse(host)
                .map_err(|e| format!("host {host:?} is neither an IPv4 address nor a name ({e})"))?
                .to_string(),
        };
        (host, port)
    };
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => p,
        _ => return Err(format!("port {port:?} is not a number from 1 to 65535")),
    };
    Ok(SocketSpec::Inet { host, port })
}

fn parse_unix(path: &str) -> Result<SocketSpec, String> {
    if path.is_empty() {
        return Err("missing socket path after \"unix:\"".into());
    }
    if path.contains('\0') {
        return Err("socket path contains a NUL byte".into());
    }
    if path.len() > MAX_UNIX_PATH {
        return Err(format!(
            "socket path is {} bytes long; the system limit is {MAX_UNIX_PATH}",
            path.len()
        ));
    }
    Ok(SocketSpec::Unix(PathBuf::from(path)))
}

impl fmt::Display for SocketSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketSpec::Inet { host, port } if host.contains(':') => {
                write!(f, "inet:[{host}]:{port}")
            }
            SocketSpec::Inet { host, port } => write!(f, "inet:{host}:{port}"),
            SocketSpec::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inet(host: &str, port: u16) -> SocketSpec {
        SocketSpec::Inet {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn inet_forms() {
        assert_eq!("inet:127.0.0.1:7516".parse(), Ok(inet("127.0.0.1", 7516)));
        assert_eq!("inet:[::1]:7516".parse(), Ok(inet("::1", 7516)));
        assert_eq!(
            "inet:[2001:DB8:0::1]:25".parse(),
            Ok(inet("2001:db8::1", 25))
        );
        assert_eq!("inet:LocalHost:1".parse(), Ok(inet("localhost", 1)));
        assert_eq!(
            "inet:milter.example.nl:65535".parse(),
            Ok(inet("milter.example.nl", 65535))
        );
    }

    #[test]
    fn unix_forms() {
        assert_eq!(
            "unix:/run/nta7516-milter/milter.sock".parse(),
            Ok(SocketSpec::Unix("/run/nta7516-milter/milter.sock".into()))
        );
        // Relative: Postfix chroot use.
        assert_eq!(
            "unix:private/nta7516".parse(),
            Ok(SocketSpec::Unix("private/nta7516".into()))
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "inet:127.0.0.1:7516",
            "inet:[::1]:7517",
            "inet:localhost:1",
            "unix:/run/x.sock",
            "unix:rel/x",
        ] {
            let spec: SocketSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
            assert_eq!(spec.to_string().parse::<SocketSpec>(), Ok(spec));
        }
    }

    #[test]
    fn garbage() {
        for bad in [
            "",
            "127.0.0.1:7516",
            "tcp:127.0.0.1:7516",
            "inet:",
            "inet:127.0.0.1",
            "inet:127.0.0.1:",
            "inet:127.0.0.1:0",
            "inet:127.0.0.1:65536",
            "inet:127.0.0.1:+25",
            "inet:127.0.0.1:x",
            "inet::7516",
            "inet:::1:7516",
            "inet:[::1:7516",
            "inet:[::1]7516",
            "inet:[127.0.0.1]:7516",
            "inet:bad host:1",
            "unix:",
            "unix:/a\0b",
            "INET:127.0.0.1:1",
        ] {
            assert!(bad.parse::<SocketSpec>().is_err(), "{bad:?} accepted");
        }
        let long = format!("unix:/{}", "a".repeat(200));
        assert!(long.parse::<SocketSpec>().unwrap_err().contains("limit"));
        let e = "inet:::1:7516".parse::<SocketSpec>().unwrap_err();
        assert!(
            e.contains("brackets") && e.contains("inet:HOST:PORT"),
            "{e}"
        );
        let e = "localhost:25".parse::<SocketSpec>().unwrap_err();
        assert!(e.contains("unix:/path"), "{e}");
    }
}
