//! The STARTTLS probe of `self-check`: connect to one of our own MX/ntamx hosts on port
//! 25 as a sending MTA would, and check what internet.nl's mail test checks there: TLS 1.2
//! or newer (RFC 8996 deprecates 1.0 and 1.1; rustls offers nothing older, so a server that
//! only speaks those fails the handshake), the presented certificate matching a published
//! TLSA record (RFC 7672 §3.1, RFC 6698 §2.1: usage 3 on the end-entity certificate, usage
//! 2 on a CA certificate the server sends), and the days until the certificate expires.
//!
//! The certificate is not checked against a public CA store (peers use DANE, rule 6), and
//! for usage 2 the match is against the chain as sent: a DANE-TA record is meant for the
//! CA that issued the server's certificate, which the server must include (RFC 7671 §5.2.2).
//! The host's address comes from the system resolver: the TLSA came DNSSEC-validated, so
//! a wrong address can only make the match fail.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::Serialize;

use super::cert;
use crate::dns::Tlsa;

/// The SMTP port peers deliver to (RFC 7672 §2.2: `_25._tcp`).
pub const SMTP_PORT: u16 = 25;
/// Longest reply line read (RFC 5321 §4.5.3.1.5 allows 512 octets; some servers send
/// more in EHLO keywords).
pub const MAX_LINE: usize = 2048;
/// Most lines of one (multi-line) reply read.
pub const MAX_REPLY_LINES: usize = 100;
/// A certificate that expires within this many days is a warning.
pub const CERT_EXPIRY_WARNING_DAYS: i64 = 14;

/// What one host showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsProbe {
    pub address: String,
    /// `TLSv1.3`, `TLSv1.2`; `None` when no TLS session came about.
    pub tls_version: Option<String>,
    pub cipher: Option<String>,
    /// The TLSA record the certificate matched (`3 1 1 <hex>`), if any.
    pub tlsa_match: Option<String>,
    /// Days from now to the end-entity certificate's notAfter (negative: expired).
    pub cert_days_left: Option<i64>,
    pub outcome: Outcome,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// TLS ≥ 1.2 and a TLSA match.
    Pass,
    /// As `Pass`, but the certificate expires soon or has expired (DANE-EE peers ignore
    /// the dates, RFC 7672 §3.1.1; others do not).
    Warn,
    /// No STARTTLS, a failed handshake, or no TLSA record matches.
    Fail,
    /// Could not connect or the server did not answer in time: run again later.
    Unreachable,
}

/// Probes `addr` (an address of `host`) against `tlsa` (the host's usable records).
/// Blocking; every socket operation is bounded by `timeout`.
pub fn probe(
    addr: SocketAddr,
    host: &str,
    ehlo: &str,
    tlsa: &[Tlsa],
    timeout: Duration,
) -> TlsProbe {
    let mut out = TlsProbe {
        address: addr.to_string(),
        tls_version: None,
        cipher: None,
        tlsa_match: None,
        cert_days_left: None,
        outcome: Outcome::Fail,
        detail: String::new(),
    };
    match session(addr, host, ehlo, timeout, &mut out) {
        Ok(chain) => judge(&mut out, &chain, tlsa),
        Err((outcome, detail)) => {
            out.outcome = outcome;
            out.detail = detail;
        }
    }
    out
}

type Failure = (Outcome, String);

/// SMTP up to STARTTLS, then the handshake; the certificates the server sent.
fn session(
    addr: SocketAddr,
    host: &str,
    ehlo: &str,
    timeout: Duration,
    out: &mut TlsProbe,
) -> Result<Vec<CertificateDer<'static>>, Failure> {
    let unreachable = |e: std::io::Error| (Outcome::Unreachable, format!("{addr}: {e}"));
    let tcp = TcpStream::connect_timeout(&addr, timeout).map_err(unreachable)?;
    tcp.set_read_timeout(Some(timeout)).map_err(unreachable)?;
    tcp.set_write_timeout(Some(timeout)).map_err(unreachable)?;
    let mut reader = BufReader::new(tcp.try_clone().map_err(unreachable)?);
    let mut writer = tcp;
    expect(&mut reader, "220", "greeting")?;
    send(&mut writer, &format!("EHLO {ehlo}\r\n"))?;
    let keywords = expect(&mut reader, "250", "EHLO")?;
    if !keywords.iter().any(|l| {
        l.get(4..)
            .is_some_and(|k| k.trim().eq_ignore_ascii_case("STARTTLS"))
    }) {
        return Err((Outcome::Fail, "no STARTTLS offered after EHLO".into()));
    }
    send(&mut writer, "STARTTLS\r\n")?;
    expect(&mut reader, "220", "STARTTLS")?;
    // Nothing may be buffered past the 220: the TLS handshake starts right after it.
    if !reader.buffer().is_empty() {
        return Err((Outcome::Fail, "data after the STARTTLS reply".into()));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| (Outcome::Fail, format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Recorder(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| (Outcome::Fail, format!("host name {host}: {e}")))?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| (Outcome::Fail, format!("TLS setup: {e}")))?;
    let mut tls = writer;
    while conn.is_handshaking() {
        conn.complete_io(&mut tls).map_err(|e| {
            (
                Outcome::Fail,
                format!("TLS handshake failed (TLS 1.2 or newer required): {e}"),
            )
        })?;
    }
    out.tls_version = conn
        .protocol_version()
        .map(|v| v.as_str().unwrap_or("?").replace("TLSv1_", "TLSv1."));
    out.cipher = conn
        .negotiated_cipher_suite()
        .map(|s| s.suite().as_str().unwrap_or("?").to_string());
    let chain: Vec<CertificateDer<'static>> = conn
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|c| c.clone().into_owned())
        .collect();
    // Polite end; the answer does not matter.
    let mut stream = rustls::Stream::new(&mut conn, &mut tls);
    let _ = stream.write_all(b"QUIT\r\n");
    let _ = stream.read(&mut [0u8; 64]);
    Ok(chain)
}

fn judge(out: &mut TlsProbe, chain: &[CertificateDer<'_>], tlsa: &[Tlsa]) {
    let version = out.tls_version.clone().unwrap_or_default();
    let Some(leaf) = chain.first() else {
        out.outcome = Outcome::Fail;
        out.detail = format!("{version}, but no certificate");
        return;
    };
    out.cert_days_left =
        cert::not_after(leaf).map(|t| (t - time::OffsetDateTime::now_utc()).whole_days());
    out.tlsa_match = tlsa
        .iter()
        .find(|t| match t.usage {
            3 => cert::matches(t, leaf),
            2 => chain.iter().skip(1).any(|c| cert::matches(t, c)),
            _ => false,
        })
        .map(|t| t.to_string());
    let days = match out.cert_days_left {
        Some(d) => format!("certificate valid for {d} more day(s)"),
        None => "certificate expiry unreadable".into(),
    };
    (out.outcome, out.detail) = match (&out.tlsa_match, out.cert_days_left) {
        (None, _) if tlsa.is_empty() => (
            Outcome::Fail,
            format!("{version}; no usable TLSA record to compare with; {days}"),
        ),
        (None, _) => (
            Outcome::Fail,
            format!(
                "{version}; the certificate matches none of the {} TLSA record(s): peers with DANE will not deliver; {days}",
                tlsa.len()
            ),
        ),
        (Some(m), Some(d)) if d < CERT_EXPIRY_WARNING_DAYS => (
            Outcome::Warn,
            format!(
                "{version}; matches TLSA {m}; {days} (renew it, and publish the new TLSA before switching)"
            ),
        ),
        (Some(m), _) => (
            Outcome::Pass,
            format!("{version}; matches TLSA {m}; {days}"),
        ),
    };
}

fn send(w: &mut TcpStream, line: &str) -> Result<(), Failure> {
    w.write_all(line.as_bytes())
        .and_then(|()| w.flush())
        .map_err(|e| (Outcome::Unreachable, format!("writing to the server: {e}")))
}

/// Reads one reply; it must have `code`. Returns its lines.
fn expect(r: &mut impl BufRead, code: &str, what: &str) -> Result<Vec<String>, Failure> {
    let mut lines = Vec::new();
    loop {
        if lines.len() >= MAX_REPLY_LINES {
            return Err((
                Outcome::Fail,
                format!("{what}: reply longer than {MAX_REPLY_LINES} lines"),
            ));
        }
        let mut buf = Vec::new();
        let n = r
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
            .map_err(|e| (Outcome::Unreachable, format!("{what}: {e}")))?;
        if n == 0 {
            return Err((
                Outcome::Unreachable,
                format!("{what}: the server closed the connection"),
            ));
        }
        let line = String::from_utf8_lossy(&buf).trim_end().to_string();
        if !line.starts_with(code) {
            let shown = crate::mta::sanitize(&line, 200);
            return Err((
                Outcome::Fail,
                format!("{what}: expected {code}, got {shown:?}"),
            ));
        }
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line);
        if last {
            return Ok(lines);
        }
    }
}

/// Accepts any certificate (DANE decides, after the handshake) but checks the
/// handshake's signatures, so the certificate shown is one the server holds the key of.
#[derive(Debug)]
struct Recorder(Arc<CryptoProvider>);

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
