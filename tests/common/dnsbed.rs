//! DNS test bed: an in-process authoritative DNS server (hickory-server) with signed zones and
//! a real chain of trust, for integration tests.
//!
//! * The trust anchor is only the KSK of the signed parent zone `test.`
//!   ([`DnsBed::trust_anchor_file`]).
//! * `test.` holds a delegation (NS) for every fixture and a DS for each signed one.
//! * A signed root zone `.` (only the delegation of `test.`, with DS) makes names outside
//!   `test.` NXDOMAIN rather than REFUSED. It is not in the default trust anchor, so those
//!   names are Bogus to a validating resolver unless it uses [`DnsBed::root_trust_anchor_file`].
//! * A stub resolver sends every query to the one server, so the [`Router`] sends DS queries
//!   to a catalog holding only the parents (`.` and `test.`; the DS of `test.` to `.` alone)
//!   and everything else to the catalog holding every zone. Queries at or below
//!   `servfail.test.` get SERVFAIL.
//!
//! Fixtures: see [`FIXTURES`] and `dnsbed/zones.rs`. Dates are relative to [`DnsBed::today`]
//! (UTC); use [`month`] / [`valid_nta`] to compute expected values.
//!
//! hickory-server 0.26.3 quirks this bed works around (see `tests/dnsbed_selftest.rs`):
//! * NSEC, not NSEC3: with NSEC3 the server puts NSEC3 records in positive answers and
//!   hickory-resolver turns those answers Bogus.
//! * NXDOMAIN for a name whose closest encloser is two or more labels up lacks the wildcard
//!   NSEC. That is harmless only when one NSEC covers both the name and `*.<encloser>`, as for
//!   `_25._tcp.<existing host>` here. Avoid names like `_25._tcp.<nonexistent host>.<zone>`.
//! * Over UDP the server truncates (TC, partial answer section) at the client's EDNS size;
//!   hickory-resolver then retries over TCP. `big.test.` TXT is 48,460 bytes over TCP.

mod zones;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::dnssec::NxProofKind;
use hickory_server::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::proto::dnssec::crypto::Ed25519SigningKey;
use hickory_server::proto::dnssec::rdata::DNSKEY;
use hickory_server::proto::dnssec::{DigestType, DnssecSigner, PublicKey, SigningKey};
use hickory_server::proto::op::{Header, HeaderCounts, MessageType, Metadata, ResponseCode};
use hickory_server::proto::rr::{LowerName, Name, RData, RecordType, RrKey};
use hickory_server::proto::serialize::txt::Parser;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{
    AxfrPolicy, Catalog, MessageResponseBuilder, ZoneHandler, ZoneType,
};
use time::Date;

use zones::{Signing, ZoneSpec};
#[allow(unused_imports)] // each test binary uses a different part
pub use zones::{month, nta_record, valid_nta};

/// Every fixture zone (child of `test.`), without trailing dot.
pub const FIXTURES: &[&str] = &[
    "compliant.test", // valid record, MX 10 mx + TLSA 3 1 1; alias.compliant.test CNAME apex
    "ntamx.test",     // ntamx=10 nta, ntamx=20 nta2; TLSA only on nta; MX host without TLSA
    "legacy.test",    // 2019 syntax (version:/expire:/ntamx:mx.legacy.test), TLSA on mx
    "expired.test",   // enddate = today - 2 months
    "notyet.test",    // startdate = today + 2 months
    "notlsa.test",    // valid record, MX, no TLSA anywhere (secure NXDOMAIN)
    "pkix.test",      // TLSA usages 0 and 1 only
    "insecure.test",  // delegated without DS, unsigned: everything Insecure
    "bogus.test",     // apex TXT changed after signing: TXT Bogus (MX/TLSA fine)
    "servfail.test",  // every query at/below answers SERVFAIL
    "nullmx.test",    // MX 0 . (RFC 7505)
    "twonta.test",    // two NTA records (TestProvider, OtherProvider)
    "nonta.test",     // no TXT at the apex (secure NODATA); _dmarc present
    "spfonly.test",   // only v=spf1 -all at the apex
    "nodmarc.test",   // no _dmarc, SPF v=spf1 ?all
    "big.test",       // 1000 TXT records at the apex incl. one of 40 x 255-byte strings
];

/// The fixture every query for which (at or below) is answered with SERVFAIL.
pub const SERVFAIL_ZONE: &str = "servfail.test";
#[allow(unused_imports)]
pub use zones::{
    AUTH_CLIENT_IP, BIG_TXT_RECORDS, BIG_TXT_STRINGS, DMARC_REJECT, SPF_FAIL, TAMPERED_PROVIDER,
};

const TTL: u32 = 300;
const SIG_VALIDITY: Duration = Duration::from_secs(7 * 86400);

/// A running test DNS server. Dropping it stops the server.
pub struct DnsBed {
    /// UDP and TCP on the same port of 127.0.0.1.
    pub addr: SocketAddr,
    /// `test. IN DNSKEY 257 3 15 <b64>`: the only trust anchor (for `TrustAnchors::from_file`).
    pub trust_anchor_file: PathBuf,
    /// `. IN DNSKEY 257 3 15 <b64>`: the bed's own (signed) root, which holds the DS of `test.`.
    /// With this anchor instead, names outside `test.` are secure NXDOMAIN (with
    /// [`Self::trust_anchor_file`] they are Bogus) and the chain runs `.` → `test.` → child.
    pub root_trust_anchor_file: PathBuf,
    /// The UTC date the fixtures' NTA dates are relative to.
    pub today: Date,
    /// Holds the trust anchor files.
    _dir: tempfile::TempDir,
    /// Owns the server tasks (dropping the `Server` aborts them).
    _server: Server<Router>,
}

impl DnsBed {
    /// Builds and signs every fixture and serves them on 127.0.0.1 (UDP + TCP, one port) from
    /// a task on the current tokio runtime.
    pub async fn start() -> DnsBed {
        let today = time::OffsetDateTime::now_utc().date();
        let mut all = Catalog::new();

        // Bottom up: each parent needs its children's DS records.
        let mut delegations = String::new();
        for spec in zones::child_zones(today) {
            let (zone, ds) = build_child(&spec);
            delegations.push_str(&format!("{0}. IN NS ns.test.\n{ds}", spec.name));
            all.upsert(origin(spec.name), vec![zone]);
        }
        delegations.push_str(&format!("{SERVFAIL_ZONE}. IN NS ns.test.\n"));
        let test_text = format!("{}ns IN A 127.0.0.1\n{delegations}", header("test"));
        let (test, test_key) = signed_zone("test", &test_text, |_| {});
        let root_text = format!(
            "{}test. IN NS ns.test.\n{}",
            header("."),
            ds_line("test", &test_key)
        );
        let (root, root_key) = signed_zone(".", &root_text, |_| {});

        let (root_name, test_name) = (LowerName::from(Name::root()), origin("test"));
        all.upsert(test_name.clone(), vec![test.clone()]);
        all.upsert(root_name.clone(), vec![root.clone()]);
        let mut parents = Catalog::new();
        parents.upsert(test_name, vec![test]);
        parents.upsert(root_name.clone(), vec![root.clone()]);
        let mut root_only = Catalog::new();
        root_only.upsert(root_name, vec![root]);

        let dir = tempfile::tempdir().expect("temp dir");
        let trust_anchor_file = dir.path().join("trust-anchor.txt");
        std::fs::write(&trust_anchor_file, format!("test. IN DNSKEY {test_key}\n"))
            .expect("write trust anchor");
        let root_trust_anchor_file = dir.path().join("root-trust-anchor.txt");
        std::fs::write(&root_trust_anchor_file, format!(". IN DNSKEY {root_key}\n"))
            .expect("write root trust anchor");

        let (udp, tcp) = bind_pair().await;
        let addr = udp.local_addr().expect("local addr");
        let mut server = Server::new(Router {
            all,
            parents,
            root: root_only,
            servfail: origin(SERVFAIL_ZONE),
        });
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 65535);

        DnsBed {
            addr,
            trust_anchor_file,
            root_trust_anchor_file,
            today,
            _dir: dir,
            _server: server,
        }
    }

    /// An address where nothing ever answers: a UDP socket that is never read and a TCP
    /// listener that never accepts, both kept open for the life of the process.
    pub fn dead_addr() -> SocketAddr {
        static DEAD: OnceLock<(std::net::UdpSocket, std::net::TcpListener)> = OnceLock::new();
        let (udp, _) = DEAD.get_or_init(|| {
            for _ in 0..100 {
                let udp = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind udp");
                let port = udp.local_addr().expect("local addr").port();
                if let Ok(tcp) = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                    return (udp, tcp);
                }
            }
            panic!("no free UDP+TCP port pair on 127.0.0.1");
        });
        udp.local_addr().expect("local addr")
    }

    /// `[dns]` section for the project's config: this server, its trust anchor, 2 s timeout.
    pub fn config_toml(&self) -> String {
        format!(
            "[dns]\nnameservers = [{}]\ntrust_anchor_file = {}\ntimeout = \"2s\"\n",
            toml_str(&self.addr.to_string()),
            toml_str(&self.trust_anchor_file.to_string_lossy()),
        )
    }

    /// `YYYY-MM` of the month `delta` months from [`Self::today`].
    pub fn month(&self, delta: i32) -> String {
        month(self.today, delta)
    }

    /// The "valid NTA record" the fixtures use, with `extras` appended.
    pub fn valid_nta(&self, extras: &str) -> String {
        valid_nta(self.today, extras)
    }
}

/// The TLSA certificate data (hex) the bed serves at `_25._tcp.<host>` (host without
/// trailing dot, e.g. `mx.compliant.test`) for the given usage/selector/matching type.
pub fn tlsa_data(host: &str, usage: u8, selector: u8, matching: u8) -> String {
    zones::fake_digest(&format!("{host}/{usage}{selector}{matching}"))
}

fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn origin(name: &str) -> LowerName {
    LowerName::from(fqdn(name))
}

fn fqdn(name: &str) -> Name {
    let text = if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    };
    Name::from_str(&text).expect("valid name")
}

/// `$TTL`, SOA and NS of a zone.
fn header(zone: &str) -> String {
    let apex = if zone == "." {
        ".".to_string()
    } else {
        format!("{zone}.")
    };
    format!(
        "$TTL {TTL}\n{apex} IN SOA ns.test. hostmaster.test. 1 3600 600 86400 {TTL}\n\
         {apex} IN NS ns.test.\n"
    )
}

fn parse_zone(zone: &str, text: &str) -> InMemoryZoneHandler<TokioRuntimeProvider> {
    let (name, records) = Parser::new(text, None, Some(fqdn(zone)))
        .parse()
        .unwrap_or_else(|e| panic!("zone {zone}: {e}\n{text}"));
    let nsec = Some(NxProofKind::Nsec);
    InMemoryZoneHandler::new(name, records, ZoneType::Primary, AxfrPolicy::Deny, nsec)
        .unwrap_or_else(|e| panic!("zone {zone}: {e}"))
}

/// Parses and signs a zone with a fresh Ed25519 key (one key, flags 257, signs everything).
/// `tamper` runs on the signed records. Returns the handler and the DNSKEY.
fn signed_zone(
    zone: &str,
    text: &str,
    tamper: impl FnOnce(&mut InMemoryZoneHandler<TokioRuntimeProvider>),
) -> (Arc<dyn ZoneHandler>, DNSKEY) {
    let mut handler = parse_zone(zone, text);
    let pkcs8 = Ed25519SigningKey::generate_pkcs8().expect("generate key");
    let key = Ed25519SigningKey::from_pkcs8(&pkcs8).expect("load key");
    let dnskey = DNSKEY::from_key(&key.to_public_key().expect("public key"));
    let signer = DnssecSigner::new(dnskey.clone(), Box::new(key), fqdn(zone), SIG_VALIDITY);
    handler
        .add_zone_signing_key_mut(signer)
        .expect("add signing key");
    handler.secure_zone_mut().expect("sign zone");
    tamper(&mut handler);
    (Arc::new(handler), dnskey)
}

/// Builds a child zone; returns it and the DS line(s) for the parent (empty if unsigned).
fn build_child(spec: &ZoneSpec) -> (Arc<dyn ZoneHandler>, String) {
    let text = format!("{}{}", header(spec.name), spec.body);
    let (zone, dnskey) = match spec.signing {
        Signing::Unsigned => return (Arc::new(parse_zone(spec.name, &text)), String::new()),
        Signing::Signed => signed_zone(spec.name, &text, |_| {}),
        Signing::TamperTxt => signed_zone(spec.name, &text, |z| tamper_apex_txt(z, spec.name)),
    };
    let ds = ds_line(spec.name, &dnskey);
    (zone, ds)
}

/// `<zone>. IN DS <tag> <alg> 2 <sha256>` for the zone's key.
fn ds_line(zone: &str, dnskey: &DNSKEY) -> String {
    let name = fqdn(zone);
    let digest = dnskey
        .to_digest(&name, DigestType::SHA256)
        .expect("DS digest");
    format!(
        "{name} IN DS {} {} 2 {}\n",
        dnskey.calculate_key_tag().expect("key tag"),
        u8::from(dnskey.public_key().algorithm()),
        hex(digest.as_ref()),
    )
}

/// Rewrites the provider of the NTA record at the apex, keeping the old RRSIGs.
fn tamper_apex_txt(zone: &mut InMemoryZoneHandler<TokioRuntimeProvider>, name: &str) {
    let key = RrKey::new(origin(name), RecordType::TXT);
    let rrset = zone.records_get_mut().get_mut(&key).expect("apex TXT");
    let mut changed = (**rrset).clone();
    let records = changed
        .records_without_rrsigs()
        .cloned()
        .map(|mut r| {
            if let RData::TXT(txt) = &mut r.data {
                let text: Vec<u8> = txt.txt_data.iter().flatten().copied().collect();
                let text = String::from_utf8_lossy(&text);
                if text.starts_with("v=NTA7516") {
                    let new = text.replace("TestProvider", TAMPERED_PROVIDER);
                    txt.txt_data = vec![new.into_bytes().into_boxed_slice()].into_boxed_slice();
                }
            }
            r
        })
        .collect();
    changed.set_records(records);
    *rrset = Arc::new(changed);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Binds UDP and TCP on the same free port of 127.0.0.1.
async fn bind_pair() -> (tokio::net::UdpSocket, tokio::net::TcpListener) {
    for _ in 0..100 {
        let udp = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind udp");
        let port = udp.local_addr().expect("local addr").port();
        if let Ok(tcp) = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            return (udp, tcp);
        }
    }
    panic!("no free UDP+TCP port pair on 127.0.0.1");
}

/// Routes queries the way delegation would: a DS query goes to the zone above the cut, every
/// other query to the most specific zone; anything at or below `servfail.test.` gets SERVFAIL.
struct Router {
    /// Every zone.
    all: Catalog,
    /// `.` and `test.`: DS queries for the fixtures (and for names outside `test.`).
    parents: Catalog,
    /// `.` only: the DS query for `test.` itself (an apex in `parents`).
    root: Catalog,
    servfail: LowerName,
}

#[async_trait::async_trait]
impl RequestHandler for Router {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let query = request
            .request_info()
            .ok()
            .map(|info| (info.query.name().clone(), info.query.query_type()));
        match query {
            Some((name, _)) if self.servfail.zone_of(&name) => {
                let response = MessageResponseBuilder::from_message_request(request)
                    .error_msg(&request.metadata, ResponseCode::ServFail);
                response_handle
                    .send_response(response)
                    .await
                    .unwrap_or_else(|_| {
                        let mut metadata = Metadata::new(
                            request.metadata.id,
                            MessageType::Response,
                            request.metadata.op_code,
                        );
                        metadata.response_code = ResponseCode::ServFail;
                        ResponseInfo::from(Header {
                            metadata,
                            counts: HeaderCounts::default(),
                        })
                    })
            }
            Some((name, RecordType::DS)) => {
                let catalog = if self.parents.contains(&name) {
                    &self.root
                } else {
                    &self.parents
                };
                catalog
                    .handle_request::<R, T>(request, response_handle)
                    .await
            }
            _ => {
                self.all
                    .handle_request::<R, T>(request, response_handle)
                    .await
            }
        }
    }
}
