//! The STARTTLS probe against a real TLS server on loopback (rustls server side,
//! certificates made with the openssl command, TLSA data computed by openssl too).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::starttls::{Outcome, probe};
use crate::dns::Tlsa;

/// Runs `openssl` in `dir` with `args` (split at spaces; no argument here has one).
fn openssl(dir: &Path, args: &str) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args.split(' '))
        .current_dir(dir)
        .output()
        .expect("openssl is needed for this test (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A CA and a leaf for mx.test (P-256), the leaf valid for `days`.
fn certs(dir: &Path, days: &str) {
    const P256: &str = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    openssl(
        dir,
        &format!("req -x509 {P256} -keyout ca.key -out ca.crt -subj /CN=Test-CA -days 30"),
    );
    openssl(
        dir,
        &format!("req {P256} -keyout mx.key -out mx.csr -subj /CN=mx.test"),
    );
    std::fs::write(dir.join("ext.cnf"), "subjectAltName = DNS:mx.test\n").unwrap();
    openssl(
        dir,
        &format!(
            "x509 -req -in mx.csr -CA ca.crt -CAkey ca.key -CAcreateserial -extfile ext.cnf \
             -out mx.crt -days {days}"
        ),
    );
    std::fs::write(
        dir.join("chain.crt"),
        [
            std::fs::read(dir.join("mx.crt")).unwrap(),
            std::fs::read(dir.join("ca.crt")).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
}

/// `usage selector 1` over `cert` (SHA-256, computed by openssl).
fn tlsa(dir: &Path, usage: u8, selector: u8, cert: &str) -> Tlsa {
    let der = openssl(dir, &format!("x509 -in {cert} -outform DER"));
    let selected = if selector == 0 {
        der
    } else {
        let pem = openssl(dir, &format!("x509 -in {cert} -pubkey -noout"));
        std::fs::write(dir.join("pub.pem"), pem).unwrap();
        openssl(dir, "pkey -pubin -in pub.pem -outform DER")
    };
    std::fs::write(dir.join("sel.der"), &selected).unwrap();
    let hash = openssl(dir, "dgst -sha256 -binary sel.der");
    Tlsa {
        usage,
        selector,
        matching: 1,
        data: hash,
    }
}

/// One SMTP session with STARTTLS (if `offer`), on a thread; returns the port.
fn server(dir: &Path, offer: bool, tls12_only: bool) -> u16 {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("chain.crt"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("mx.key")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(tcp.try_clone().unwrap());
        let mut line = String::new();
        tcp.write_all(b"220 mx.test ESMTP\r\n").unwrap();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with("EHLO probe.test"), "{line}");
        if !offer {
            tcp.write_all(b"250-mx.test\r\n250 8BITMIME\r\n").unwrap();
            line.clear();
            let _ = r.read_line(&mut line);
            return;
        }
        tcp.write_all(b"250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
            .unwrap();
        line.clear();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, "STARTTLS\r\n");
        tcp.write_all(b"220 2.0.0 Ready to start TLS\r\n").unwrap();
        let mut conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        while conn.is_handshaking() {
            if conn.complete_io(&mut tcp).is_err() {
                return;
            }
        }
        let mut s = rustls::Stream::new(&mut conn, &mut tcp);
        let mut buf = [0u8; 64];
        let _ = std::io::Read::read(&mut s, &mut buf);
        let _ = s.write_all(b"221 bye\r\n");
    });
    port
}

fn run(port: u16, tlsa: &[Tlsa]) -> super::starttls::TlsProbe {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    probe(addr, "mx.test", "probe.test", tlsa, Duration::from_secs(10))
}

#[test]
fn dane_ee_and_ta_matches_versions_and_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certs(d, "20");
    let ee_spki = tlsa(d, 3, 1, "mx.crt");
    let ee_full = tlsa(d, 3, 0, "mx.crt");
    let ta = tlsa(d, 2, 0, "ca.crt");

    let p = run(server(d, true, false), std::slice::from_ref(&ee_spki));
    assert_eq!(p.outcome, Outcome::Pass, "{p:?}");
    assert_eq!(p.tls_version.as_deref(), Some("TLSv1.3"));
    assert_eq!(p.tlsa_match, Some(ee_spki.to_string()));
    assert!(matches!(p.cert_days_left, Some(19 | 20)), "{p:?}");
    assert!(p.detail.contains("matches TLSA 3 1 1"), "{p:?}");

    let p = run(server(d, true, true), std::slice::from_ref(&ee_full));
    assert_eq!(
        (p.outcome, p.tls_version.as_deref()),
        (Outcome::Pass, Some("TLSv1.2")),
        "{p:?}"
    );

    // DANE-TA: the CA the server sends; the same record type on the leaf does not count.
    let p = run(server(d, true, false), std::slice::from_ref(&ta));
    assert_eq!(p.outcome, Outcome::Pass, "{p:?}");
    let ta_on_leaf = Tlsa {
        usage: 2,
        ..ee_full.clone()
    };
    let p = run(server(d, true, false), &[ta_on_leaf]);
    assert_eq!(p.outcome, Outcome::Fail, "{p:?}");

    // A record for another key: fail, named.
    let mut wrong = ee_spki.clone();
    wrong.data[0] ^= 1;
    let p = run(server(d, true, false), &[wrong]);
    assert_eq!(p.outcome, Outcome::Fail);
    assert!(
        p.detail.contains("matches none of the 1 TLSA record(s)"),
        "{p:?}"
    );
    assert_eq!(p.tls_version.as_deref(), Some("TLSv1.3"));
    let p = run(server(d, true, false), &[]);
    assert!(p.detail.contains("no usable TLSA record"), "{p:?}");
}

#[test]
fn expiring_certificate_warns_and_no_starttls_fails() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certs(d, "3");
    let ee = tlsa(d, 3, 1, "mx.crt");
    let p = run(server(d, true, false), std::slice::from_ref(&ee));
    assert_eq!(p.outcome, Outcome::Warn, "{p:?}");
    assert!(matches!(p.cert_days_left, Some(2 | 3)), "{p:?}");

    let p = run(server(d, false, false), &[ee]);
    assert_eq!(p.outcome, Outcome::Fail);
    assert_eq!(p.detail, "no STARTTLS offered after EHLO");
    assert_eq!(p.tls_version, None);

    // Nobody listening: unreachable (a temporary result), not a failure.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = run(port, &[]);
    assert_eq!(p.outcome, Outcome::Unreachable, "{p:?}");
}

#[test]
fn the_check_is_the_worst_probe() {
    use super::{HostResult, Status};
    let host = |outcomes: &[Outcome]| HostResult {
        host: "mx.test".parse().unwrap(),
        role: "mx",
        result: Status::Pass,
        detail: String::new(),
        dnssec: None,
        usable_tlsa: 1,
        starttls: outcomes
            .iter()
            .map(|o| super::starttls::TlsProbe {
                address: "192.0.2.1:25".into(),
                tls_version: None,
                cipher: None,
                tlsa_match: None,
                cert_days_left: None,
                outcome: *o,
                detail: format!("{o:?}"),
            })
            .collect(),
        tlsa: vec![],
    };
    let check = |hosts: &[HostResult]| super::probe::starttls_check(hosts).result;
    assert_eq!(
        check(&[host(&[Outcome::Pass, Outcome::Pass])]),
        Status::Pass
    );
    assert_eq!(
        check(&[host(&[Outcome::Pass]), host(&[Outcome::Warn])]),
        Status::Warn
    );
    assert_eq!(
        check(&[host(&[Outcome::Warn, Outcome::Fail])]),
        Status::Fail
    );
    assert_eq!(
        check(&[host(&[Outcome::Fail, Outcome::Unreachable])]),
        Status::Temporary
    );
    assert_eq!(check(&[]), Status::Skipped);
    let c = super::probe::starttls_check(&[host(&[Outcome::Fail])]);
    assert_eq!(
        (c.id, c.detail.as_str()),
        ("starttls", "mx.test [192.0.2.1:25]: Fail")
    );
}
