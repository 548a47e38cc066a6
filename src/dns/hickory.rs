//! [`Resolver`] on hickory-resolver, validating DNSSEC in-process.
//!
//! We validate ourselves rather than trusting an upstream AD bit: hickory sends no DO/AD
//! bits unless it validates itself (a validating upstream's AD bit alone is not trusted), and a
//! per-record `Proof` is what lets the policy tell "provably insecure" from "secure". The upstream
//! may be a local validating resolver (recommended: then bogus data already SERVFAILs there) or any
//! recursive resolver.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HDnsError, NetError};
use hickory_resolver::proto::dnssec::{Proof, TrustAnchors};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, Record, RecordType};

use super::{Answer, Denial, DnsError, DnsResult, Dnssec, Mx, Resolver, Tlsa};
use crate::domain::DomainName;

/// Entries in hickory's own record cache. It also holds the DNSKEY/DS chain, which is what
/// makes revalidation cheap; our verdict cache sits on top of it.
pub const RECORD_CACHE_ENTRIES: u64 = 16_384;

/// Per-try timeout handed to hickory. Not a hard bound (UDP then TCP can take twice this);
/// the engine wraps each evaluation in its own deadline.
pub const PER_TRY_TIMEOUT: Duration = Duration::from_secs(2);

/// Upstreams asked in parallel per query (hickory's `num_concurrent_reqs`), each over its
/// own UDP socket. Set explicitly because it multiplies the descriptors in use: at most
/// `engine::MAX_CONCURRENT_EVALUATIONS` × the lookups of one evaluation × this. Two
/// keeps failover to a second upstream instant.
pub const UPSTREAMS_PER_QUERY: usize = 2;
// Pinned: raising it multiplies the sockets one evaluation can hold.
const _: () = assert!(UPSTREAMS_PER_QUERY == 2);

/// How a resolver is built: explicit upstreams or the system's, and which trust anchor.
#[derive(Debug, Clone, Default)]
pub struct ResolverSetup {
    /// Upstream servers; empty means the system configuration (/etc/resolv.conf).
    pub nameservers: Vec<SocketAddr>,
    /// DNSKEY lines (`zone. IN DNSKEY 257 3 13 <b64>`); `None` means the built-in root KSKs.
    pub trust_anchor_file: Option<PathBuf>,
}

impl From<&crate::config::DnsConfig> for ResolverSetup {
    /// The resolver `[dns]` asks for, the same for the daemon and every tool.
    fn from(dns: &crate::config::DnsConfig) -> Self {
        Self {
            nameservers: dns.nameservers.clone(),
            trust_anchor_file: dns.trust_anchor_file.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot read trust anchor file {path}: {message}")]
    TrustAnchor { path: PathBuf, message: String },
    #[error("cannot read the system resolver configuration: {0}")]
    SystemConfig(String),
    #[error("cannot build the DNS resolver: {0}")]
    Build(String),
}

/// The production resolver. Cheap to clone (hickory's resolver is an `Arc` inside), so the
/// same instance and cache can be handed to mail-auth.
#[derive(Clone)]
pub struct HickoryResolver {
    inner: TokioResolver,
    /// Set when the trust anchors are for zones other than the root only.
    outside: Option<Outside>,
}

/// Names under none of the configured anchors. hickory would validate them up to the
/// root, find no root key and call them bogus; RFC 4035 §4.3 (and RFC 4033 §5) calls
/// an answer with no chain of trust from any anchor insecure, as Unbound does. They are
/// asked of the same servers without validation and marked `Insecure`.
#[derive(Clone)]
struct Outside {
    zones: Arc<[DomainName]>,
    plain: TokioResolver,
}

impl HickoryResolver {
    pub fn new(setup: &ResolverSetup) -> Result<Self, SetupError> {
        let (anchors, islands) = match &setup.trust_anchor_file {
            Some(path) => load_anchors(path)?,
            None => (TrustAnchors::default(), None),
        };
        let inner = Self::build(setup, Some(anchors))?;
        let outside = match islands {
            Some(zones) => {
                let names: Vec<&str> = zones.iter().map(DomainName::as_str).collect();
                tracing::warn!(
                    zones = %names.join(","),
                    "trust anchors for these zones only (no root key): every other domain is DNSSEC-insecure, so it cannot be an NTA 7516 party; each zone's entry must list all of its DNSKEYs"
                );
                Some(Outside {
                    zones: zones.into(),
                    plain: Self::build(setup, None)?,
                })
            }
            None => None,
        };
        Ok(Self { inner, outside })
    }

    /// A mail-auth authenticator (DKIM, SPF, DMARC lookups) on this resolver's hickory
    /// instance, so that both share connections and cache.
    pub fn message_authenticator(&self) -> mail_auth::MessageAuthenticator {
        mail_auth::MessageAuthenticator(self.inner.clone())
    }

    async fn query(&self, name: &DomainName, rtype: RecordType) -> DnsResult<RData> {
        let started = Instant::now();
        if let Some(o) = &self.outside
            && !o.zones.iter().any(|z| name.is_within(z))
        {
            let result = o.plain.lookup(name.fqdn(), rtype).await;
            tracing::trace!(%name, ?rtype, elapsed = ?started.elapsed(), ok = result.is_ok(), "dns lookup outside the trust anchors (insecure)");
            return match result {
                Ok(lookup) => Ok(records_answer(&lookup, rtype).into_insecure()),
                Err(e) => classify_error(e).map(Answer::into_insecure),
            };
        }
        let result = self.inner.lookup(name.fqdn(), rtype).await;
        tracing::trace!(%name, ?rtype, elapsed = ?started.elapsed(), ok = result.is_ok(), "dns lookup");
        match result {
            Ok(lookup) => Ok(records_answer(&lookup, rtype)),
            Err(e) => classify_error(e),
        }
    }

    /// A hickory resolver on `setup`'s servers: validating against `anchors`, or not at all.
    pub(super) fn build(
        setup: &ResolverSetup,
        anchors: Option<TrustAnchors>,
    ) -> Result<TokioResolver, SetupError> {
        let mut builder = if setup.nameservers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| SetupError::SystemConfig(e.to_string()))?
        } else {
            let servers = setup
                .nameservers
                .iter()
                .map(|sa| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = sa.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = sa.port();
                    NameServerConfig::new(sa.ip(), true, vec![udp, tcp])
                })
                .collect();
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, vec![], servers),
                TokioRuntimeProvider::default(),
            )
        };
        let opts = builder.options_mut();
        opts.timeout = PER_TRY_TIMEOUT;
        opts.attempts = 1;
        opts.num_concurrent_reqs = UPSTREAMS_PER_QUERY;
        opts.cache_size = RECORD_CACHE_ENTRIES;
        // Names are always fully qualified; never let a search list or /etc/hosts answer.
        opts.ndots = 0;
        opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
        opts.preserve_intermediates = true;
        let builder = match anchors {
            Some(anchors) => builder.with_trust_anchor(Arc::new(anchors)),
            None => builder,
        };
        // Only UDP and TCP are configured, never DNS over TLS; but hickory builds a TLS
        // client configuration anyway, from the system's CA store by default, and a host
        // without one (a minimal Debian without ca-certificates) then cannot start at all.
        let builder = builder.with_tls_config(unused_tls_config()?);
        builder
            .build()
            .map_err(|e| SetupError::Build(e.to_string()))
    }
}

/// A TLS client configuration that trusts nothing, for hickory's builder (see `build`).
fn unused_tls_config() -> Result<rustls::ClientConfig, SetupError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::Build(e.to_string()))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

/// Reads `[dns] trust_anchor_file` as the resolver will (for `check-config`).
pub fn check_trust_anchor_file(path: &Path) -> Result<(), SetupError> {
    load_anchors(path).map(|_| ())
}

/// The anchors in `path`, and the zones they are for when none is the root's (`None`
/// when the root is among them: then every name has a chain of trust to check).
pub(super) fn load_anchors(
    path: &Path,
) -> Result<(TrustAnchors, Option<Vec<DomainName>>), SetupError> {
    let err = |message: String| SetupError::TrustAnchor {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    if !text.lines().any(|l| l.contains("DNSKEY")) {
        return Err(err(
            "no DNSKEY line found (expected e.g. `example. IN DNSKEY 257 3 13 <base64>`; DS records are not accepted)"
                .into(),
        ));
    }
    let anchors = TrustAnchors::from_file(path).map_err(|e| err(e.to_string()))?;
    // `len` counts the root's keys only.
    if !anchors.is_empty() {
        return Ok((anchors, None));
    }
    let mut zones = Vec::new();
    for line in text.lines().filter(|l| l.contains("DNSKEY")) {
        let owner = line.split_whitespace().next().unwrap_or_default();
        let zone = DomainName::parse(owner).map_err(|e| {
            err(format!(
                "{owner:?}: not a zone name for a trust anchor: {e}"
            ))
        })?;
        if !zones.contains(&zone) {
            zones.push(zone);
        }
    }
    Ok((anchors, Some(zones)))
}

/// The answer's status is the weakest over every record hickory returned for it, CNAMEs in
/// the chain included: an alias from an unsigned zone makes the whole answer insecure.
fn records_answer(lookup: &Lookup, rtype: RecordType) -> Answer<RData> {
    let mut dnssec = Dnssec::Secure;
    let mut records = Vec::new();
    for r in lookup.answers() {
        let rt = r.record_type();
        if rt == RecordType::RRSIG {
            continue;
        }
        dnssec = dnssec.weakest(proof(r.proof));
        if rt == rtype {
            records.push(r.data.clone());
        }
    }
    let ttl = lookup
        .valid_until()
        .saturating_duration_since(Instant::now());
    if records.is_empty() {
        // A CNAME chain that ends nowhere: treat as NODATA with the chain's status.
        return Answer::Denied {
            denial: Denial::NoData,
            dnssec,
            ttl,
        };
    }
    Answer::Records {
        records,
        dnssec,
        ttl,
    }
}

fn proof(p: Proof) -> Dnssec {
    match p {
        Proof::Secure => Dnssec::Secure,
        Proof::Insecure => Dnssec::Insecure,
        Proof::Bogus => Dnssec::Bogus,
        Proof::Indeterminate => Dnssec::Indeterminate,
    }
}

/// Negative answers without an SOA get this TTL (RFC 2308 would have us not cache them at
/// all; a short TTL is the safe compromise for our verdict cache).
const NEGATIVE_TTL_WITHOUT_SOA: Duration = Duration::from_secs(60);

fn classify_error<T>(e: NetError) -> DnsResult<T> {
    match e {
        NetError::Timeout => Err(DnsError::Timeout),
        NetError::Dns(HDnsError::DnssecBogus) => Err(DnsError::Bogus),
        NetError::Dns(HDnsError::ResponseCode(ResponseCode::ServFail)) => Err(DnsError::ServFail),
        NetError::Dns(HDnsError::ResponseCode(ResponseCode::Refused)) => Err(DnsError::Refused),
        NetError::Dns(HDnsError::NoRecordsFound(nr)) => {
            let denial = if nr.response_code == ResponseCode::NXDomain {
                Denial::NxDomain
            } else {
                Denial::NoData
            };
            let dnssec = denial_status(nr.authorities.as_deref().unwrap_or(&[]));
            let ttl = nr
                .negative_ttl
                .map(|t| Duration::from_secs(u64::from(t)))
                .unwrap_or(NEGATIVE_TTL_WITHOUT_SOA);
            Ok(Answer::Denied {
                denial,
                dnssec,
                ttl,
            })
        }
        NetError::Dns(HDnsError::Nsec { proof: p, .. }) => match proof(p) {
            // hickory returns this when the denial's proof is not secure; only a provably
            // insecure one is a definite answer, anything else is treated as bogus.
            Dnssec::Insecure => Ok(Answer::Denied {
                denial: Denial::NoData,
                dnssec: Dnssec::Insecure,
                ttl: NEGATIVE_TTL_WITHOUT_SOA,
            }),
            _ => Err(DnsError::Bogus),
        },
        other => {
            let text = other.to_string();
            // hickory reports some validation failures only in text form.
            if text.contains("DNSSEC") || text.contains("dnssec") {
                Err(DnsError::Bogus)
            } else if text.contains("timed out") {
                Err(DnsError::Timeout)
            } else {
                Err(DnsError::Other(text))
            }
        }
    }
}

/// A denial is secure only when an NSEC/NSEC3 proof is present and every authority record
/// (RRSIGs aside) validated; an unsigned zone's SOA-only denial is insecure.
fn denial_status(authorities: &[Record]) -> Dnssec {
    let mut status = None::<Dnssec>;
    let mut has_nsec = false;
    for r in authorities {
        match r.record_type() {
            RecordType::RRSIG => continue,
            RecordType::NSEC | RecordType::NSEC3 => has_nsec = true,
            _ => {}
        }
        let p = proof(r.proof);
        status = Some(status.map_or(p, |s| s.weakest(p)));
    }
    match status {
        None => Dnssec::Indeterminate,
        Some(Dnssec::Secure) if !has_nsec => Dnssec::Indeterminate,
        Some(s) => s,
    }
}

fn map_records<T>(answer: Answer<RData>, f: impl Fn(RData) -> Option<T>) -> Answer<T> {
    match answer {
        Answer::Records {
            records,
            dnssec,
            ttl,
        } => Answer::Records {
            records: records.into_iter().filter_map(f).collect(),
            dnssec,
            ttl,
        },
        Answer::Denied {
            denial,
            dnssec,
            ttl,
        } => Answer::Denied {
            denial,
            dnssec,
            ttl,
        },
    }
}

impl Resolver for HickoryResolver {
    async fn txt(&self, name: &DomainName) -> DnsResult<String> {
        let a = self.query(name, RecordType::TXT).await?;
        Ok(map_records(a, |d| match d {
            RData::TXT(t) => Some(join_txt(&t.txt_data)),
            _ => None,
        }))
    }

    async fn mx(&self, name: &DomainName) -> DnsResult<Mx> {
        let a = self.query(name, RecordType::MX).await?;
        Ok(map_records(a, |d| match d {
            RData::MX(mx) => {
                let host = mx.exchange.to_ascii();
                // "." (root) is the Null MX target; an unparsable exchange is kept as
                // absent too, so the policy never routes to it.
                let exchange = if mx.exchange.is_root() {
                    None
                } else {
                    DomainName::parse(&host).ok()
                };
                Some(Mx {
                    preference: mx.preference,
                    exchange,
                })
            }
            _ => None,
        }))
    }

    async fn tlsa(&self, name: &DomainName) -> DnsResult<Tlsa> {
        let a = self.query(name, RecordType::TLSA).await?;
        Ok(map_records(a, |d| match d {
            RData::TLSA(t) => Some(Tlsa {
                usage: u8::from(t.cert_usage),
                selector: u8::from(t.selector),
                matching: u8::from(t.matching),
                data: t.cert_data.clone(),
            }),
            _ => None,
        }))
    }
}

/// RFC 7208 §3.3: the character-strings of one TXT record are concatenated without
/// separators. Non-UTF-8 bytes are replaced; NTA, SPF and DMARC records are ASCII.
pub fn join_txt(strings: &[Box<[u8]>]) -> String {
    let mut bytes = Vec::with_capacity(strings.iter().map(|s| s.len()).sum());
    for s in strings {
        bytes.extend_from_slice(s);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
