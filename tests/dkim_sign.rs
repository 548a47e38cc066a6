//! DKIM signing (src/message/dkim.rs) checked against an independent verifier.
//!
//! Keys are made with `openssl` at test time; signatures are verified with Debian's
//! python3-dkim (dkimpy, the library behind `dkimverify`), whose DNS lookup is replaced by a
//! function that returns the TXT record from `public_key_dns_record()`. Messages are written
//! out the way Postfix writes them after the milter: `Name: value` lines with CRLF, the
//! milter's LF folding turned into CRLF, the DKIM-Signature header added by the milter.
//!
//! Needs `openssl` and `python3-dkim`; when they are missing the tests FAIL (a signature that
//! was never verified must not look like a pass). Install: `apt-get install openssl python3-dkim`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use nta7516_milter::domain::DomainName;
use nta7516_milter::message::dkim::{
    self, Algorithm, KeyError, MIN_RSA_BITS, SIGNED_HEADERS, SignError, SigningKey,
};

const DOMAIN: &str = "example.nl";

// ------------------------------------------------------------------------------------------
// Tools

/// Debian's interpreter: python3-dkim lives in /usr/lib/python3/dist-packages, which another
/// python3 earlier on PATH (pyenv, a venv) does not see.
fn python() -> &'static str {
    static PYTHON: OnceLock<&'static str> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let python = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let ok = Command::new(python)
            .args(["-c", "import dkim, nacl.signing"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "python3-dkim (with python3-nacl) is missing for {python}; these tests need an \
             independent DKIM verifier: apt-get install python3-dkim"
        );
        python
    })
}

fn openssl(args: &[&str]) -> Vec<u8> {
    openssl_with_input(args, None)
}

fn openssl_with_input(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run openssl ({e}); these tests make keys with it: apt-get install openssl"
            )
        });
    if let Some(input) = input {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn openssl_base64(data: &[u8]) -> String {
    let out = openssl_with_input(&["base64", "-A"], Some(data));
    String::from_utf8(out).unwrap().trim().to_string()
}

/// Writes a key made by `openssl <args> -out <dir>/<name>` and returns its path.
fn make_key(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut all: Vec<&str> = args.to_vec();
    let p = path.to_str().unwrap();
    all.extend(["-out", p]);
    openssl(&all);
    path
}

fn rsa_pkcs1(dir: &Path, bits: &str) -> PathBuf {
    // -traditional: "BEGIN RSA PRIVATE KEY" (PKCS#1) instead of OpenSSL 3's PKCS#8 default.
    let path = dir.join(format!("rsa{bits}-pkcs1.pem"));
    openssl(&[
        "genrsa",
        "-traditional",
        "-out",
        path.to_str().unwrap(),
        bits,
    ]);
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("BEGIN RSA PRIVATE KEY")
    );
    path
}

fn rsa_pkcs8(dir: &Path) -> PathBuf {
    let path = make_key(
        dir,
        "rsa-pkcs8.pem",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
    );
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("BEGIN PRIVATE KEY")
    );
    path
}

fn ed25519(dir: &Path) -> PathBuf {
    make_key(dir, "ed25519.pem", &["genpkey", "-algorithm", "ed25519"])
}

fn domain() -> DomainName {
    DomainName::parse(DOMAIN).unwrap()
}

fn load(selector: &str, path: &Path) -> SigningKey {
    SigningKey::load(&domain(), selector, path)
        .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
}

/// The public key as openssl derives it from the private key file, as a DKIM `p=` value.
fn openssl_p_value(path: &Path, algorithm: Algorithm) -> String {
    let spki = openssl(&[
        "pkey",
        "-in",
        path.to_str().unwrap(),
        "-pubout",
        "-outform",
        "DER",
    ]);
    match algorithm {
        Algorithm::Rsa => openssl_base64(&spki),
        // RFC 8463 §4.2: the raw key, which is the last 32 bytes of the SPKI.
        Algorithm::Ed25519 => openssl_base64(&spki[spki.len() - 32..]),
    }
}

// ------------------------------------------------------------------------------------------
// Messages

/// (name, value) pairs in order, as `dkim::sign` takes them.
type Headers = Vec<(String, String)>;

/// Headers as a Postfix milter sees them at end of message: no leading space on the value,
/// folding with a bare LF.
fn milter_headers() -> Headers {
    [
        ("From", "Alice Example <alice@example.nl>"),
        (
            "To",
            "Bob Ontvanger <bob@zorg.example>,\n\tCarol Tweede <carol@zorg.example>",
        ),
        ("Cc", "dossier@example.nl"),
        (
            "Subject",
            "[NTA7516]  Uitslag   onderzoek\n\t (vertrouwelijk)",
        ),
        ("Date", "Mon, 02 Jun 2025 10:00:00 +0200"),
        ("Message-ID", "<20250602100000.1234@example.nl>"),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain;\n\tcharset=utf-8"),
        ("Content-Transfer-Encoding", "8bit"),
        ("X-Not-Signed", "a relay may change this"),
        ("X-NTA7516-Classification", "secure"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect()
}

const BODY: &[u8] = b"Beste Bob,\r\n\r\nDe uitslag van het onderzoek staat hieronder.\r\n\
    Regel met  dubbele   spaties en een tab\t.\r\n\r\n-- \r\n\
    Dit bericht is verstuurd volgens NTA 7516.\r\n";

/// Where the milter put the signature.
#[derive(Clone, Copy)]
enum SigAt {
    /// `insert_header(0, ..)`: above everything (it even lands above Postfix's Received).
    Top,
    /// `add_header(..)`: after the last header.
    Bottom,
}

/// The message as Postfix sends it on: a Received header of its own, then the milter's view
/// of the headers with the added DKIM-Signature, CRLF line ends.
fn wire(headers: &[(String, String)], sig_value: &str, at: SigAt, body: &[u8]) -> Vec<u8> {
    // Postfix without LEADING_SPACE writes "Name: value", and its LF line ends go out as CRLF.
    let line = |name: &str, value: &str| {
        format!("{name}: {value}\n")
            .replace("\r\n", "\n")
            .replace('\n', "\r\n")
    };
    let mut out = String::new();
    if let SigAt::Top = at {
        out += &line("DKIM-Signature", sig_value);
    }
    out += &line(
        "Received",
        "from client.example.nl (client.example.nl [192.0.2.10])\n\tby mx.example.nl (Postfix) with ESMTPS id 4ABC123;\n\tMon,  2 Jun 2025 10:00:01 +0200 (CEST)",
    );
    for (n, v) in headers {
        out += &line(n, v);
    }
    if let SigAt::Bottom = at {
        out += &line("DKIM-Signature", sig_value);
    }
    out += "\r\n";
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

// ------------------------------------------------------------------------------------------
// The independent verifier

const VERIFY_PY: &str = r#"
import logging, sys
import dkim
logging.basicConfig(stream=sys.stdout, level=logging.DEBUG, format="%(levelname)s %(message)s")
msg = open(sys.argv[1], "rb").read()
txt = open(sys.argv[2], "rb").read()
want = sys.argv[3].encode().lower().rstrip(b".")
def dnsfunc(name, timeout=5):
    print("DNS lookup:", name)
    if name.lower().rstrip(b".") == want:
        return txt
    return None
d = dkim.DKIM(msg, logger=logging.getLogger("dkim"))
try:
    ok = d.verify(dnsfunc=dnsfunc)
except dkim.DKIMException as e:
    print("ERROR", e)
    ok = False
print("signature ok" if ok else "signature verification failed")
sys.exit(0 if ok else 1)
"#;

/// Runs dkimpy on `message`, with `key`'s DNS record as the only DNS data. Ok(log) on a
/// valid signature, Err(log) otherwise.
fn dkimpy_verify(message: &[u8], key: &SigningKey) -> Result<String, String> {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let msg = dir.path().join("message.eml");
    let txt = dir.path().join("record.txt");
    std::fs::write(&msg, message).unwrap();
    std::fs::write(&txt, key.public_key_dns_record()).unwrap();
    let out = Command::new(python)
        .args(["-c", VERIFY_PY])
        .arg(&msg)
        .arg(&txt)
        .arg(key.dns_name())
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(log)
    } else {
        Err(log)
    }
}

fn assert_verifies(message: &[u8], key: &SigningKey) {
    if let Err(log) = dkimpy_verify(message, key) {
        panic!(
            "dkimpy rejected the signature:\n{log}\n--- message ---\n{}",
            String::from_utf8_lossy(message)
        );
    }
}

fn assert_fails(message: &[u8], key: &SigningKey, expect_in_log: &str) {
    match dkimpy_verify(message, key) {
        Ok(log) => panic!(
            "dkimpy accepted a message that was changed after signing:\n{log}\n--- message ---\n{}",
            String::from_utf8_lossy(message)
        ),
        Err(log) => assert!(
            log.contains(expect_in_log),
            "expected {expect_in_log:?} in the verifier's log:\n{log}"
        ),
    }
}

/// Tag values of a DKIM-Signature value, with all folding white space removed.
fn tag(sig_value: &str, name: &str) -> Option<String> {
    let compact: String = sig_value.chars().filter(|c| !c.is_whitespace()).collect();
    compact.split(';').find_map(|t| {
        let (k, v) = t.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// Signs the standard message with a key of the given kind and checks it with dkimpy, at the
/// top and at the bottom of the header block.
fn sign_and_verify(key: &SigningKey) -> String {
    let headers = milter_headers();
    let sig = dkim::sign(key, &headers, BODY).unwrap();
    assert_verifies(&wire(&headers, &sig, SigAt::Top, BODY), key);
    assert_verifies(&wire(&headers, &sig, SigAt::Bottom, BODY), key);
    sig
}

// ------------------------------------------------------------------------------------------
// Signing and verification

#[test]
fn rsa_pkcs1_key_signs_and_dkimpy_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = rsa_pkcs1(dir.path(), "2048");
    let key = load("rsa1", &path);
    assert_eq!(key.algorithm(), Algorithm::Rsa);
    assert_eq!(key.rsa_bits(), Some(2048));
    assert_eq!(key.domain().as_str(), DOMAIN);
    assert_eq!(key.selector(), "rsa1");
    assert_eq!(key.dns_name(), "rsa1._domainkey.example.nl");
    assert_eq!(
        key.public_key_dns_record(),
        format!(
            "v=DKIM1; k=rsa; p={}",
            openssl_p_value(&path, Algorithm::Rsa)
        ),
        "p= must be the SubjectPublicKeyInfo, as `openssl pkey -pubout` writes it"
    );
    let sig = sign_and_verify(&key);
    assert_eq!(tag(&sig, "a").as_deref(), Some("rsa-sha256"));
}

#[test]
fn rsa_pkcs8_key_signs_and_dkimpy_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = rsa_pkcs8(dir.path());
    let key = load("rsa8", &path);
    assert_eq!(key.algorithm(), Algorithm::Rsa);
    assert_eq!(key.rsa_bits(), Some(2048));
    assert_eq!(
        key.public_key_dns_record(),
        format!(
            "v=DKIM1; k=rsa; p={}",
            openssl_p_value(&path, Algorithm::Rsa)
        )
    );
    sign_and_verify(&key);
}

#[test]
fn ed25519_key_signs_and_dkimpy_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = ed25519(dir.path());
    let key = load("ed", &path);
    assert_eq!(key.algorithm(), Algorithm::Ed25519);
    assert_eq!(key.rsa_bits(), None);
    let p = openssl_p_value(&path, Algorithm::Ed25519);
    assert_eq!(p.len(), 44, "32 raw bytes in base64");
    assert_eq!(
        key.public_key_dns_record(),
        format!("v=DKIM1; k=ed25519; p={p}")
    );
    let sig = sign_and_verify(&key);
    assert_eq!(tag(&sig, "a").as_deref(), Some("ed25519-sha256"));
}

#[test]
fn returned_value_is_ready_for_the_milter() {
    let dir = tempfile::tempdir().unwrap();
    let key = load("ed", &ed25519(dir.path()));
    let headers = milter_headers();
    let sig = dkim::sign(&key, &headers, BODY).unwrap();

    // The value only: Postfix (without LEADING_SPACE) writes "DKIM-Signature: " itself.
    assert!(sig.starts_with("v=1; a=ed25519-sha256; "), "{sig:?}");
    assert!(
        !sig.to_ascii_lowercase().contains("dkim-signature"),
        "{sig:?}"
    );
    // Folded with LF + TAB: Postfix would store "\r\n" from a milter literally.
    assert!(sig.contains("\n\t"), "{sig:?}");
    assert!(!sig.contains('\r'), "{sig:?}");
    assert!(!sig.ends_with('\n') && !sig.ends_with('\t'), "{sig:?}");
    // Folded into short lines (mail-auth wraps near column 76), far below RFC 5322's hard
    // limit of 998 and Postfix's line_length_limit.
    for line in sig.split('\n') {
        assert!(line.len() <= 100, "line too long: {line:?}");
    }
    assert_eq!(tag(&sig, "v").as_deref(), Some("1"));
    assert_eq!(tag(&sig, "c").as_deref(), Some("relaxed/relaxed"));
    assert_eq!(tag(&sig, "d").as_deref(), Some(DOMAIN));
    assert_eq!(tag(&sig, "s").as_deref(), Some("ed"));
    assert!(tag(&sig, "t").is_some(), "signing time t= is written");
    assert!(tag(&sig, "x").is_none(), "no expiry by default");
    assert!(tag(&sig, "l").is_none(), "no body length limit");

    // With LEADING_SPACE negotiated Postfix writes "DKIM-Signature:v=1; ..." verbatim;
    // that verifies as well.
    let mut message = wire(&headers, &sig, SigAt::Top, BODY);
    let at = b"DKIM-Signature: ".len();
    message.remove(at - 1);
    assert!(message.starts_with(b"DKIM-Signature:v=1;"));
    assert_verifies(&message, &key);
}

#[test]
fn signed_header_list_over_signs_from_and_covers_the_classification() {
    let dir = tempfile::tempdir().unwrap();
    let key = load("ed", &ed25519(dir.path()));
    let headers = milter_headers();
    let sig = dkim::sign(&key, &headers, BODY).unwrap();
    let h = tag(&sig, "h").expect("h= tag");
    let names: Vec<String> = h.split(':').map(str::to_ascii_lowercase).collect();
    assert_eq!(
        names.iter().filter(|n| *n == "from").count(),
        2,
        "From over-signed: h={h}"
    );
    for wanted in [
        "x-nta7516-classification",
        "subject",
        "to",
        "cc",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        // Absent from the message, listed anyway so they cannot be added later.
        "reply-to",
        "in-reply-to",
        "references",
    ] {
        assert!(names.iter().any(|n| n == wanted), "{wanted} not in h={h}");
    }
    for unwanted in ["received", "x-not-signed", "return-path"] {
        assert!(!names.iter().any(|n| n == unwanted), "{unwanted} in h={h}");
    }
    assert_eq!(SIGNED_HEADERS.iter().filter(|n| **n == "From").count(), 2);
}

// ------------------------------------------------------------------------------------------
// Changes after signing must be caught (proves the verification above is real)

#[test]
fn changes_after_signing_break_the_signature() {
    let dir = tempfile::tempdir().unwrap();
    let key = load("rsa1", &rsa_pkcs1(dir.path(), "2048"));
    let headers = milter_headers();
    let sig = dkim::sign(&key, &headers, BODY).unwrap();
    assert_verifies(&wire(&headers, &sig, SigAt::Top, BODY), &key);

    // Body changed (one word).
    let tampered = String::from_utf8(BODY.to_vec())
        .unwrap()
        .replace("onderzoek", "ONDERZOEK");
    assert_fails(
        &wire(&headers, &sig, SigAt::Top, tampered.as_bytes()),
        &key,
        "body hash mismatch",
    );

    // Body extended (a second footer, appended by a later filter).
    let mut longer = BODY.to_vec();
    longer.extend_from_slice(b"Extra regel.\r\n");
    assert_fails(
        &wire(&headers, &sig, SigAt::Top, &longer),
        &key,
        "body hash mismatch",
    );

    let with = |change: &dyn Fn(&mut Headers)| {
        let mut h = headers.clone();
        change(&mut h);
        wire(&h, &sig, SigAt::Top, BODY)
    };
    // Subject changed.
    assert_fails(
        &with(&|h| h[3].1 = "[NTA7516] iets anders".into()),
        &key,
        "signature verification failed",
    );
    // Classification downgraded.
    assert_fails(
        &with(&|h| h.last_mut().unwrap().1 = "standard".into()),
        &key,
        "signature verification failed",
    );
    // A second From added: the over-signed From slot catches it.
    assert_fails(
        &with(&|h| h.insert(1, ("From".into(), "Mallory <mallory@evil.example>".into()))),
        &key,
        "signature verification failed",
    );
    // A Reply-To added, which the message did not have.
    assert_fails(
        &with(&|h| h.push(("Reply-To".into(), "mallory@evil.example".into()))),
        &key,
        "signature verification failed",
    );

    // An unsigned header may change: still valid (the checks above are specific).
    assert_verifies(&with(&|h| h[9].1 = "changed by a relay".into()), &key);
    // So may relaxed-insignificant white space and refolding.
    assert_verifies(
        &with(&|h| h[3].1 = "[NTA7516] Uitslag onderzoek (vertrouwelijk)".into()),
        &key,
    );
}

// ------------------------------------------------------------------------------------------
// Input variants seen from MTAs

#[test]
fn crlf_folding_bare_lf_body_and_duplicate_headers_are_signed_as_sent() {
    let dir = tempfile::tempdir().unwrap();
    let key = load("rsa8", &rsa_pkcs8(dir.path()));

    // CRLF folding in a value (another MTA) signs the same as LF folding.
    let mut crlf = milter_headers();
    for (_, v) in &mut crlf {
        *v = v.replace('\n', "\r\n");
    }
    let sig = dkim::sign(&key, &crlf, BODY).unwrap();
    assert_verifies(&wire(&milter_headers(), &sig, SigAt::Top, BODY), &key);

    // A body handed over with bare LF goes out with CRLF.
    let lf_body = String::from_utf8(BODY.to_vec())
        .unwrap()
        .replace("\r\n", "\n");
    let sig = dkim::sign(&key, &milter_headers(), lf_body.as_bytes()).unwrap();
    assert_verifies(&wire(&milter_headers(), &sig, SigAt::Top, BODY), &key);

    // Two instances of a signed header: DKIM takes them bottom-up; both covered.
    let mut dup = milter_headers();
    dup.insert(5, ("Cc".into(), "tweede@example.nl".into()));
    let sig = dkim::sign(&key, &dup, BODY).unwrap();
    let h = tag(&sig, "h").unwrap().to_ascii_lowercase();
    assert_eq!(h.split(':').filter(|n| *n == "cc").count(), 2, "h={h}");
    assert_verifies(&wire(&dup, &sig, SigAt::Top, BODY), &key);

    // Header names in another case are matched case-insensitively.
    let mut lower = milter_headers();
    lower[0].0 = "from".into();
    lower[3].0 = "SUBJECT".into();
    let sig = dkim::sign(&key, &lower, BODY).unwrap();
    assert_verifies(&wire(&lower, &sig, SigAt::Top, BODY), &key);

    // Empty body.
    let sig = dkim::sign(&key, &milter_headers(), b"").unwrap();
    assert_verifies(&wire(&milter_headers(), &sig, SigAt::Top, b""), &key);
}

#[test]
fn messages_that_cannot_be_signed_as_sent_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = load("ed", &ed25519(dir.path()));

    let only_unsigned = vec![("X-Foo".to_string(), "bar".to_string())];
    assert!(matches!(
        dkim::sign(&key, &only_unsigned, BODY),
        Err(SignError::NoSignedHeaders)
    ));
    assert!(matches!(
        dkim::sign::<&str, &str>(&key, &[], BODY),
        Err(SignError::NoSignedHeaders)
    ));

    // A line break without white space after it would end the header on the wire.
    let mut broken = milter_headers();
    broken[3].1 = "first line\nSecond: header".into();
    let err = dkim::sign(&key, &broken, BODY).unwrap_err();
    assert!(
        matches!(&err, SignError::HeaderFolding { name } if name == "Subject"),
        "{err:?}"
    );
    assert!(err.to_string().contains("Subject"), "{err}");

    let mut bad_name = milter_headers();
    bad_name.push(("Bad Name".into(), "x".into()));
    assert!(matches!(
        dkim::sign(&key, &bad_name, BODY),
        Err(SignError::HeaderName { .. })
    ));
}

// ------------------------------------------------------------------------------------------
// Key loading errors: each names the file and says what to do

fn load_err(path: &Path) -> KeyError {
    match SigningKey::load(&domain(), "sel", path) {
        Ok(k) => panic!("{} loaded as {k:?}", path.display()),
        Err(e) => e,
    }
}

#[test]
fn ec_keys_are_refused_with_the_key_type_named() {
    let dir = tempfile::tempdir().unwrap();
    // PKCS#8 ("BEGIN PRIVATE KEY") and SEC1 ("BEGIN EC PRIVATE KEY") forms.
    let pkcs8 = make_key(
        dir.path(),
        "ec-pkcs8.pem",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ],
    );
    let sec1 = make_key(
        dir.path(),
        "ec-sec1.pem",
        &["ecparam", "-genkey", "-name", "prime256v1", "-noout"],
    );
    assert!(
        std::fs::read_to_string(&sec1)
            .unwrap()
            .contains("BEGIN EC PRIVATE KEY")
    );
    for path in [&pkcs8, &sec1] {
        let err = load_err(path);
        assert!(matches!(err, KeyError::Unsupported { .. }), "{err:?}");
        let msg = err.to_string();
        assert_eq!(
            msg,
            format!(
                "DKIM key {} is an EC P-256 key; use RSA (2048 bits or more) or Ed25519",
                path.display()
            )
        );
    }
    let p384 = make_key(
        dir.path(),
        "ec-p384.pem",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
        ],
    );
    assert!(load_err(&p384).to_string().contains("EC P-384 key"));
}

#[test]
fn rsa_1024_is_refused_as_too_weak() {
    let dir = tempfile::tempdir().unwrap();
    let path = rsa_pkcs1(dir.path(), "1024");
    let err = load_err(&path);
    assert!(
        matches!(err, KeyError::RsaTooSmall { bits: 1024, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(path.to_str().unwrap()), "{msg}");
    assert!(msg.contains("only 1024 bits"), "{msg}");
    assert!(
        msg.contains(&format!("{MIN_RSA_BITS} bits or more")),
        "{msg}"
    );

    // The same in PKCS#8 form.
    let p8 = make_key(
        dir.path(),
        "rsa1024-pkcs8.pem",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
        ],
    );
    assert!(matches!(
        load_err(&p8),
        KeyError::RsaTooSmall { bits: 1024, .. }
    ));
}

#[test]
fn other_key_types_and_encrypted_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ed448 = make_key(dir.path(), "ed448.pem", &["genpkey", "-algorithm", "ed448"]);
    let err = load_err(&ed448);
    assert!(matches!(err, KeyError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("Ed448"), "{err}");

    let encrypted = make_key(
        dir.path(),
        "encrypted.pem",
        &[
            "genpkey",
            "-algorithm",
            "ed25519",
            "-aes256",
            "-pass",
            "pass:secret",
        ],
    );
    let err = load_err(&encrypted);
    assert!(matches!(err, KeyError::Unsupported { .. }), "{err:?}");
    assert!(
        err.to_string().contains("encrypted with a passphrase"),
        "{err}"
    );
}

#[test]
fn unreadable_and_non_key_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();

    let missing = dir.path().join("missing.pem");
    let err = load_err(&missing);
    assert!(matches!(err, KeyError::Read { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("cannot read DKIM key {}: no such file", missing.display())
    );

    let err = load_err(dir.path());
    assert!(matches!(err, KeyError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("is a directory"), "{err}");

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, b"this is not a key\n\x00\x01\x02").unwrap();
    let err = load_err(&garbage);
    assert!(matches!(err, KeyError::Invalid { .. }), "{err:?}");
    assert!(err.to_string().contains("no PEM private key"), "{err}");

    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(load_err(&empty), KeyError::Invalid { .. }));

    // A public key where the private key belongs (an easy mix-up after keygen).
    let ed = ed25519(dir.path());
    let public = dir.path().join("public.pem");
    std::fs::write(
        &public,
        openssl(&["pkey", "-in", ed.to_str().unwrap(), "-pubout"]),
    )
    .unwrap();
    let err = load_err(&public);
    assert!(matches!(err, KeyError::Invalid { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("holds a PUBLIC KEY, not a private key"),
        "{err}"
    );

    // A PEM block whose contents are damaged.
    let pem = std::fs::read_to_string(rsa_pkcs8(dir.path())).unwrap();
    let damaged = dir.path().join("damaged.pem");
    let mut lines: Vec<&str> = pem.lines().collect();
    lines.truncate(4);
    lines.push("-----END PRIVATE KEY-----");
    std::fs::write(&damaged, lines.join("\n")).unwrap();
    let err = load_err(&damaged);
    assert!(matches!(err, KeyError::Invalid { .. }), "{err:?}");

    // No permission. Root reads anything, so this part only runs as another user.
    let locked = dir.path().join("locked.pem");
    std::fs::copy(&ed, &locked).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&locked).is_err() {
        let err = load_err(&locked);
        assert!(matches!(err, KeyError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("permission denied"), "{err}");
    }
}

#[test]
fn invalid_selector_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = ed25519(dir.path());
    for bad in ["", "a b", "a..b", "sel;x=1"] {
        assert!(
            matches!(
                SigningKey::load(&domain(), bad, &path),
                Err(KeyError::Selector { .. })
            ),
            "{bad:?}"
        );
    }
}

// ------------------------------------------------------------------------------------------
// Byte-exact signing: raw 8-bit header bytes and the bytes mail-auth canonicalises on its
// own terms, each checked against the independent verifier

/// The message exactly as Postfix writes it with LEADING_SPACE: `Name:` + the value bytes.
fn wire_exact(headers: &[(String, Vec<u8>)], sig_value: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut line = |name: &str, value: &[u8]| {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut i = 0;
        while i < value.len() {
            if value[i] == b'\n' && (i == 0 || value[i - 1] != b'\r') {
                out.extend_from_slice(b"\r\n");
            } else {
                out.push(value[i]);
            }
            i += 1;
        }
        out.extend_from_slice(b"\r\n");
    };
    line("DKIM-Signature", format!(" {sig_value}").as_bytes());
    for (n, v) in headers {
        line(n, v);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fn exact_headers(subject: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut h: Vec<(String, Vec<u8>)> = milter_headers()
        .into_iter()
        .map(|(n, v)| (n, format!(" {v}").into_bytes()))
        .collect();
    h[3].1 = subject.to_vec();
    h
}

#[test]
fn raw_8bit_header_bytes_are_signed_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let key = load("rsa8", &rsa_pkcs8(dir.path()));
    // Legacy clients put raw Latin-1 in Subject and To; raw UTF-8 (RFC 6532) too.
    for subject in [
        &b" Gr\xfc\xdfe uit de \xe9\xe9n"[..],
        " Grüße, één".as_bytes(),
        b" Gr\xfc\xdfe\n\t\xe9t\xe9 (gevouwen)",
    ] {
        let mut headers = exact_headers(subject);
        headers[1].1 = b" J\xf6rg <bob@zorg.example>".to_vec();
        let sig = dkim::sign(&key, &headers, BODY).unwrap();
        assert_verifies(&wire_exact(&headers, &sig, BODY), &key);
        // The same signature over the U+FFFD view of the bytes (what a lossy copy signs)
        // is not the message that leaves: the verifier tells them apart.
        let lossy: Vec<(String, Vec<u8>)> = headers
            .iter()
            .map(|(n, v)| {
                (
                    n.clone(),
                    String::from_utf8_lossy(v).into_owned().into_bytes(),
                )
            })
            .collect();
        if lossy != headers {
            let lossy_sig = dkim::sign(&key, &lossy, BODY).unwrap();
            assert_fails(
                &wire_exact(&headers, &lossy_sig, BODY),
                &key,
                "signature verification failed",
            );
        }
    }
}

/// Each byte mail-auth 0.13.3 canonicalises differently from RFC 6376: signing the raw form
/// is refused, and the normalised form (`dkim::exact`) verifies with dkimpy.
#[test]
fn bytes_canonicalised_differently_are_refused_and_their_normalised_form_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let key = load("ed", &ed25519(dir.path()));
    let headers_cases: &[(&str, &[u8])] = &[
        ("form feed", b" Uitslag\x0conderzoek"),
        ("form feed at the end", b" Uitslag\x0c"),
        ("form feed next to spaces", b" Uitslag \x0c onderzoek"),
        ("vertical tab at the end", b" Uitslag\x0b"),
        ("vertical tab inside", b" Uit\x0bslag"),
        ("bare CR", b" Uitslag\ronderzoek"),
        ("bare CR at the end", b" Uitslag\r"),
    ];
    for (what, subject) in headers_cases {
        let headers = exact_headers(subject);
        let err = dkim::sign(&key, &headers, BODY).unwrap_err();
        assert!(
            matches!(&err, SignError::NotExact { name, .. } if name == "Subject")
                && err.is_permanent(),
            "{what}: {err:?}"
        );
        let fixed = dkim::exact::header_value(subject).unwrap();
        let headers = exact_headers(&fixed);
        let sig = dkim::sign(&key, &headers, BODY).unwrap();
        if let Err(log) = dkimpy_verify(&wire_exact(&headers, &sig, BODY), &key) {
            panic!("{what}: normalised header does not verify:\n{log}");
        }
    }
    let body_cases: &[(&str, &[u8])] = &[
        ("bare CR in a line", b"Uitslag\rvolgt\r\n"),
        ("CR CR LF", b"Uitslag\r\r\nvolgt\r\n"),
        ("white space on the last line", b"Uitslag\r\n \r\n"),
        (
            "white space on the last lines",
            b"Uitslag\r\n \r\n\t\r\n\r\n",
        ),
        (
            "white space on a blank line after an empty one",
            b"Uitslag\r\n\r\n \r\n",
        ),
        ("trailing space and a blank line", b"Uitslag \r\n \t \r\n"),
        ("only white space", b" \r\n\t\r\n"),
        ("LF lines", b"Uitslag\n \n"),
    ];
    let headers = exact_headers(b" Uitslag");
    for (what, body) in body_cases {
        let err = dkim::sign(&key, &headers, body).unwrap_err();
        assert!(
            matches!(err, SignError::BodyNotExact { .. }) && err.is_permanent(),
            "{what}: {err:?}"
        );
        let fixed = dkim::exact::body(body).unwrap();
        let sig = dkim::sign(&key, &headers, &fixed).unwrap();
        if let Err(log) = dkimpy_verify(&wire_exact(&headers, &sig, &fixed), &key) {
            panic!("{what}: normalised body does not verify:\n{log}");
        }
    }
    // What mail-auth and the RFC agree on is signed as it is.
    let as_is: &[(&str, &[u8], &[u8])] = &[
        ("form feed in the body", b" x", b"a\x0cb\r\n\x0c\r\n"),
        ("vertical tab in the body", b" x", b"a\x0bb \x0b \r\n"),
        (
            "8-bit no-break spaces in the body",
            b" x",
            b"a\xa0 \xa0b\r\n",
        ),
        (
            "white space on a blank line inside",
            b" x",
            b"a\r\n \r\nb\r\n",
        ),
        ("trailing tabs", b" x", b"a\t\r\nb \t \r\n"),
        ("no final line break", b" x", b"a\r\nb"),
        ("empty lines at the end", b" x", b"a\r\n\r\n\r\n"),
        ("tab runs in a header", b" \ta \t b\t", BODY),
        ("empty header", b"", BODY),
        ("other control byte in a header", b" a\x01b", BODY),
        ("white space around a fold", b" a \n\t b", BODY),
    ];
    for (what, subject, body) in as_is {
        let headers = exact_headers(subject);
        let sig = dkim::sign(&key, &headers, body).unwrap_or_else(|e| panic!("{what}: {e}"));
        if let Err(log) = dkimpy_verify(&wire_exact(&headers, &sig, body), &key) {
            panic!("{what}: does not verify:\n{log}");
        }
    }
}
