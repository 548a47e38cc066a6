//! Zone text of every fixture. Dates are relative to the bed's `today`.
//!
//! Every child zone gets the same header (SOA, NS) from `dnsbed.rs`; the bodies here use names
//! relative to the zone's origin. Keep each body readable: one fixture, one function call.

use std::fmt::Write as _;

use time::Date;

/// How a child zone of `test.` is served.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Signing {
    /// Signed, with a DS in `test.`: answers are `Proof::Secure`.
    Signed,
    /// Delegated without DS and served unsigned: answers are `Proof::Insecure`.
    Unsigned,
    /// Signed, then the apex TXT RRset is changed while its old RRSIG stays: TXT is Bogus.
    TamperTxt,
}

pub(super) struct ZoneSpec {
    /// Zone name without trailing dot, e.g. `compliant.test`.
    pub name: &'static str,
    pub signing: Signing,
    /// Records, relative to the origin (no SOA/NS: those are added by the bed).
    pub body: String,
}

pub const SPF_FAIL: &str = "v=spf1 -all";
pub const DMARC_REJECT: &str = "v=DMARC1; p=reject";
/// Number of TXT records at the apex of `big.test.`.
pub const BIG_TXT_RECORDS: usize = 1000;
/// Number of 255-byte strings in the multi-string TXT record of `big.test.`.
pub const BIG_TXT_STRINGS: usize = 40;
/// Provider of the record the tampering in `bogus.test.` writes (never served validly).
pub const TAMPERED_PROVIDER: &str = "Tampered";

/// `YYYY-MM` of the month `delta` months away from `today`.
pub fn month(today: Date, delta: i32) -> String {
    let m = today.year() * 12 + (u8::from(today.month()) as i32 - 1) + delta;
    format!("{:04}-{:02}", m.div_euclid(12), m.rem_euclid(12) + 1)
}

/// A current-syntax NTA 7516 record: `v=NTA7516-1;startdate=..;enddate=..;provider=..` + extras.
pub fn nta_record(today: Date, start: i32, end: i32, provider: &str, extras: &str) -> String {
    format!(
        "v=NTA7516-1;startdate={};enddate={};provider={provider}{extras}",
        month(today, start),
        month(today, end)
    )
}

/// The "valid NTA record" of the fixtures: start 12 months ago, end in 12 months.
pub fn valid_nta(today: Date, extras: &str) -> String {
    nta_record(today, -12, 12, "TestProvider", extras)
}

/// 32 random-looking bytes in hex, a pure function of `seed` (so tests can recompute it).
pub fn fake_digest(seed: &str) -> String {
    // FNV-1a of the seed, then splitmix64 for the bytes.
    let mut state = seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut out = String::with_capacity(64);
    for _ in 0..4 {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        write!(out, "{z:016x}").expect("write to String");
    }
    out
}

/// Zone body under construction (names relative to the origin).
struct Body {
    zone: &'static str,
    text: String,
}

impl Body {
    fn new(zone: &'static str) -> Self {
        Self {
            zone,
            text: String::new(),
        }
    }

    fn line(mut self, line: &str) -> Self {
        self.text.push_str(line);
        self.text.push('\n');
        self
    }

    /// A TXT record of one or more character-strings (each at most 255 bytes, no quotes).
    fn txt(self, owner: &str, strings: &[&str]) -> Self {
        let quoted: Vec<String> = strings.iter().map(|s| format!("\"{s}\"")).collect();
        self.line(&format!("{owner} IN TXT {}", quoted.join(" ")))
    }

    /// `v=spf1 -all` at the apex and `_dmarc` `p=reject`.
    fn spf_dmarc(self) -> Self {
        self.txt("@", &[SPF_FAIL]).txt("_dmarc", &[DMARC_REJECT])
    }

    /// A host with an A record 127.0.0.1.
    fn host(self, host: &str) -> Self {
        self.line(&format!("{host} IN A 127.0.0.1"))
    }

    /// MX at the apex to `host` (relative) and the host's A record.
    fn mx(self, pref: u16, host: &str) -> Self {
        self.line(&format!("@ IN MX {pref} {host}")).host(host)
    }

    /// TLSA at `_25._tcp.<host>` with the given usage/selector/matching type.
    fn tlsa(self, host: &str, usage: u8, selector: u8, matching: u8) -> Self {
        let digest = fake_digest(&format!("{host}.{}/{usage}{selector}{matching}", self.zone));
        self.line(&format!(
            "_25._tcp.{host} IN TLSA {usage} {selector} {matching} {digest}"
        ))
    }

    /// `MX 10 mx` with a DANE-EE TLSA (`3 1 1`) on the host.
    fn dane_mx(self) -> Self {
        self.mx(10, "mx").tlsa("mx", 3, 1, 1)
    }

    fn done(self, signing: Signing) -> ZoneSpec {
        ZoneSpec {
            name: self.zone,
            signing,
            body: self.text,
        }
    }
}

/// All child zones of `test.` that are served from zone data (`servfail.test.` is not: the
/// router answers it).
pub(super) fn child_zones(today: Date) -> Vec<ZoneSpec> {
    use Signing::*;
    let valid = valid_nta(today, "");
    let mut zones = vec![
        Body::new("compliant.test")
            .txt("@", &[&valid])
            .spf_dmarc()
            .dane_mx()
            .line("alias IN CNAME compliant.test.")
            .done(Signed),
        Body::new("ntamx.test")
            .txt(
                "@",
                &[&valid_nta(
                    today,
                    ";ntamx=10 nta.ntamx.test;ntamx=20 nta2.ntamx.test",
                )],
            )
            .spf_dmarc()
            .mx(10, "mx")
            .host("nta")
            .tlsa("nta", 3, 1, 1)
            .host("nta2")
            .done(Signed),
        Body::new("legacy.test")
            .txt(
                "@",
                &[&format!(
                    "v=NTA7516;version:{};expire:{};provider:legacy;ntamx:mx.legacy.test",
                    month(today, -12),
                    month(today, 12)
                )],
            )
            .spf_dmarc()
            .dane_mx()
            .done(Signed),
        Body::new("expired.test")
            .txt("@", &[&nta_record(today, -26, -2, "TestProvider", "")])
            .spf_dmarc()
            .dane_mx()
            .done(Signed),
        Body::new("notyet.test")
            .txt("@", &[&nta_record(today, 2, 24, "TestProvider", "")])
            .spf_dmarc()
            .dane_mx()
            .done(Signed),
        Body::new("notlsa.test")
            .txt("@", &[&valid])
            .spf_dmarc()
            .mx(10, "mx")
            .done(Signed),
        Body::new("pkix.test")
            .txt("@", &[&valid])
            .spf_dmarc()
            .mx(10, "mx")
            .tlsa("mx", 0, 0, 1)
            .tlsa("mx", 1, 1, 1)
            .done(Signed),
        Body::new("insecure.test")
            .txt("@", &[&valid])
            .spf_dmarc()
            .dane_mx()
            .done(Unsigned),
        Body::new("bogus.test")
            .txt("@", &[&valid])
            .spf_dmarc()
            .dane_mx()
            .done(TamperTxt),
        Body::new("nullmx.test")
            .txt("@", &[&valid])
            .spf_dmarc()
            .line("@ IN MX 0 .")
            .done(Signed),
        Body::new("twonta.test")
            .txt("@", &[&valid])
            .txt("@", &[&nta_record(today, -6, 18, "OtherProvider", "")])
            .spf_dmarc()
            .dane_mx()
            .done(Signed),
        Body::new("nonta.test")
            .txt("_dmarc", &[DMARC_REJECT])
            .dane_mx()
            .done(Signed),
        Body::new("spfonly.test").spf_dmarc().dane_mx().done(Signed),
        Body::new("nodmarc.test")
            .txt("@", &[&valid])
            .txt("@", &["v=spf1 ?all"])
            .dane_mx()
            .done(Signed),
    ];
    zones.push(big_zone(&valid));
    zones.extend(operator_tool_zones(today, &valid));
    zones.extend(inbound_zones(&valid));
    zones
}

/// `ed._domainkey` record of the Ed25519 test key in `tests/tools.rs` (made with `dkim-keygen`).
const DKIM_ED25519_RECORD: &str =
    "v=DKIM1; k=ed25519; p=h+MEKvR/iSYoc00t5nYIUPTj4tTaJV4D5FgBCvT4C5M=";
/// `rsa._domainkey` record of the RSA-2048 test key in `tests/tools.rs` (392 bytes: the zone
/// holds it as two character-strings).
const DKIM_RSA_RECORD: &str = "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA9nytJyFtJ3PhNL6bzKRDUV9X00zGUe6xlKvDPoBQwKCXOJ/NXivH9py+QMxjaG8pSmv+CqPbxmk7IWbIdsw9NNwdWRGv9w+PDf8VfxG5Y42YaTA9Buzt7Zbmd2Ebd9eyvndd7KxuEMlAzC2xymY/cW4XaaxkrGydhA04LByTnyY02Itkx0EyDYkSzlMglJoUGkUh4RlXsZBhzbvTYBUHY2M3JK4HDMqgpGghW+kI//qwnA3B2ECCXQa6U1p1dLlFPyJvd/qdK9WuIj0n7e8Tknbufh1JtXvNEYGeVkUOV1RwFLsbIE9FGCVE47xKm9urIU8i7iSYzVwxOoX7rYf9lwIDAQAB";
/// An Ed25519 key that is not the test key (published where the test key is expected).
const DKIM_OTHER_RECORD: &str =
    "v=DKIM1; k=ed25519; p=LrSGLnu/FwxOUUMtCwrXoq/zCkfz0othxec3aKOOYLw=";

/// Own-domain fixtures for `self-check` (`tests/tools.rs`); not in `FIXTURES`, whose
/// count the bed's self-test pins. Each has DNSSEC, SPF `-all`, DMARC `p=reject` and DANE
/// on its MX:
/// * `selfcheck.test.`: valid record; `ed._domainkey` and `rsa._domainkey` publish the
///   test keys (RSA split into two strings): every self-check passes;
/// * `expiring.test.`: the record's enddate is the current month (expires within 30 days);
/// * `wrongdkim.test.`: `ed._domainkey` publishes a different key than the test key.
fn operator_tool_zones(today: Date, valid: &str) -> Vec<ZoneSpec> {
    let (rsa_a, rsa_b) = DKIM_RSA_RECORD.split_at(255);
    vec![
        Body::new("selfcheck.test")
            .txt("@", &[valid])
            .spf_dmarc()
            .dane_mx()
            .txt("ed._domainkey", &[DKIM_ED25519_RECORD])
            .txt("rsa._domainkey", &[rsa_a, rsa_b])
            .done(Signing::Signed),
        Body::new("expiring.test")
            .txt("@", &[&nta_record(today, -12, 0, "TestProvider", "")])
            .spf_dmarc()
            .dane_mx()
            .txt("ed._domainkey", &[DKIM_ED25519_RECORD])
            .done(Signing::Signed),
        Body::new("wrongdkim.test")
            .txt("@", &[valid])
            .spf_dmarc()
            .dane_mx()
            .txt("ed._domainkey", &[DKIM_OTHER_RECORD])
            .done(Signing::Signed),
    ]
}

/// The address the inbound tests' "sending server" connects from: SPF-authorised for
/// `auth.test.`.
pub const AUTH_CLIENT_IP: &str = "192.0.2.7";

/// Sender fixtures for inbound verification (`tests/inbound.rs`); not in `FIXTURES`:
/// * `auth.test.`: an NTA 7516 party whose mail authenticates: SPF
///   `ip4:192.0.2.7 -all`, DMARC `p=reject`, `ed._domainkey` the test key;
/// * `softfail.test.`: SPF `~all`, DMARC `p=none`, no NTA record;
/// * `quarantine.test.`: SPF `-all`, DMARC `p=quarantine`, no NTA record.
fn inbound_zones(valid: &str) -> Vec<ZoneSpec> {
    let spf = format!("v=spf1 ip4:{AUTH_CLIENT_IP} -all");
    vec![
        Body::new("auth.test")
            .txt("@", &[valid])
            .txt("@", &[&spf])
            .txt("_dmarc", &[DMARC_REJECT])
            .dane_mx()
            .txt("ed._domainkey", &[DKIM_ED25519_RECORD])
            .done(Signing::Signed),
        Body::new("softfail.test")
            .txt("@", &["v=spf1 ~all"])
            .txt("_dmarc", &["v=DMARC1; p=none"])
            .dane_mx()
            .done(Signing::Signed),
        Body::new("quarantine.test")
            .txt("@", &[SPF_FAIL])
            .txt("_dmarc", &["v=DMARC1; p=quarantine"])
            .dane_mx()
            .done(Signing::Signed),
    ]
}

/// `big.test.`: [`BIG_TXT_RECORDS`] TXT records at the apex (the valid NTA record, SPF, one
/// multi-string record of [`BIG_TXT_STRINGS`] × 255 bytes, and fillers). 48,460 bytes on the
/// wire with its RRSIG: more than any UDP answer, less than the 64 KiB TCP limit.
fn big_zone(valid: &str) -> ZoneSpec {
    let long: Vec<String> = (0..BIG_TXT_STRINGS)
        .map(|i| {
            let c = char::from(b'a' + (i % 26) as u8);
            std::iter::repeat_n(c, 255).collect()
        })
        .collect();
    let long: Vec<&str> = long.iter().map(String::as_str).collect();
    let mut body = Body::new("big.test")
        .txt("@", &[valid])
        .spf_dmarc()
        .txt("@", &long)
        .dane_mx();
    for i in 0..BIG_TXT_RECORDS - 3 {
        body = body.txt("@", &[&format!("filler-record-{i:04}")]);
    }
    body.done(Signing::Signed)
}
