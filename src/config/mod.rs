//! Configuration: `/etc/nta7516-milter/config.toml` → validated [`Config`].
//!
//! Pipeline: TOML syntax (a syntax error stops here; nothing else can be read) → structural
//! pass (`check`: unknown sections/keys and wrong types, each reported and dropped) → serde
//! into the raw structs (`raw`, which also hold the defaults) → meaning (`validate`: sockets,
//! durations, domains, networks, cross-key rules). All problems of one run are returned
//! together, each with file, dotted key and line.
//!
//! Without a file the embedded defaults apply ([`Config::embedded_defaults`]), and
//! `config/config.toml` is a commented copy of exactly those defaults (pinned by a test).

mod check;
mod duration;
mod error;
mod inbound;
mod policy;
pub mod portal;
mod portal_branding;
mod portal_validate;
mod raw;
mod relay;
mod sections;
mod socket;
mod validate;

#[cfg(test)]
mod tests;

use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::{DeTable, Deserializer};

use crate::domain::DomainName;

pub use duration::parse_duration;
pub use error::{ConfigError, ConfigErrors};
pub use inbound::{DmarcEnforcement, InboundConfig, TempErrorAction};
pub use policy::{Classification, NonCompliantAction, PolicyConfig, SenderPattern, SenderRule};
pub use sections::{
    AuditConfig, DkimConfig, DnsConfig, DomainsConfig, FooterConfig, OutboundConfig, ServerConfig,
};
pub use socket::SocketSpec;

use error::Report;
use raw::RawConfig;

/// Refuse larger files: a real configuration is a few KiB, and `--config` pointed at a log
/// file or a device must not eat memory.
const MAX_FILE_SIZE: u64 = 1024 * 1024;

/// Label used as the file name in errors about the embedded defaults.
const EMBEDDED: &str = "<embedded defaults>";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file this came from (`load`), or `None` for embedded defaults and
    /// `from_toml_str`.
    pub source: Option<PathBuf>,
    pub server: ServerConfig,
    pub dns: DnsConfig,
    pub domains: DomainsConfig,
    pub outbound: OutboundConfig,
    pub policy: PolicyConfig,
    pub dkim: Vec<DkimConfig>,
    pub footer: FooterConfig,
    pub audit: AuditConfig,
    pub inbound: InboundConfig,
    /// `[portal]`: the eDelivery portal process; `None` when the section is absent.
    pub portal: Option<portal::PortalConfig>,
}

impl Config {
    /// The configuration used when there is no file: the `Default`s of the raw structs,
    /// validated like a file. A unit test proves they are valid, so this cannot fail.
    pub fn embedded_defaults() -> Config {
        let mut report = Report::new(EMBEDDED, "");
        match validate::config(RawConfig::default(), &mut report) {
            Some(config) if !report.has_errors() => config,
            _ => unreachable!("embedded defaults are invalid (see test defaults_are_valid)"),
        }
    }

    /// Parses and validates a TOML document. `source_name` is only used in error messages;
    /// the result's `source` is `None`.
    pub fn from_toml_str(text: &str, source_name: &str) -> Result<Config, ConfigErrors> {
        let mut report = Report::new(source_name, text);
        // The parser recovers and may report a follow-on error first; the earliest one in
        // the file is the one to fix, and after it nothing can be trusted.
        let (mut root, syntax) = DeTable::parse_recoverable(text);
        if let Some(e) = syntax
            .iter()
            .min_by_key(|e| e.span().map_or(usize::MAX, |s| s.start))
        {
            let line = e.span().map(|s| report.line_of(s.start));
            report.error_at_line("", line, format!("TOML syntax: {}", e.message()));
            return Err(report.finish().expect_err("an error was just added"));
        }
        check::check_document(root.get_mut(), &mut report);
        let config = match RawConfig::deserialize(Deserializer::from(root)) {
            Ok(raw) => validate::config(raw, &mut report),
            Err(e) => {
                // Not expected: the structural pass removes everything serde would refuse.
                let line = e.span().map(|s| report.line_of(s.start));
                report.error_at_line("", line, e.message());
                None
            }
        };
        report.finish()?;
        config.ok_or_else(|| {
            ConfigErrors::whole_file(source_name, "internal error: invalid value not reported")
        })
    }

    /// Reads and validates `path`; `None` gives the embedded defaults. A file that cannot
    /// be read (missing, permissions, not UTF-8, larger than 1 MiB) is one error naming it.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigErrors> {
        let Some(path) = path else {
            return Ok(Self::embedded_defaults());
        };
        let name = path.display().to_string();
        let text = read_limited(path)
            .map_err(|e| ConfigErrors::whole_file(&name, format!("cannot read: {e}")))?;
        let mut config = Self::from_toml_str(&text, &name)?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Is `d` one of our own domains or a subdomain of one?
    pub fn is_own_domain(&self, d: &DomainName) -> bool {
        self.domains.own.iter().any(|own| d.is_within(own))
    }

    /// Is `ip` in `[outbound] networks`? An IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, as
    /// a dual-stack listener reports IPv4 clients) is compared as the IPv4 address.
    pub fn is_outbound_network(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        self.outbound.networks.iter().any(|net| net.contains(&ip))
    }
}

fn read_limited(path: &Path) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind};
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(Error::new(
            ErrorKind::InvalidData,
            "larger than 1 MiB; is this the configuration file?",
        ));
    }
    String::from_utf8(bytes).map_err(|_| {
        Error::new(
            ErrorKind::InvalidData,
            "not UTF-8 text (TOML must be UTF-8)",
        )
    })
}
