//! DKIM signing of the final outbound message (RFC 6376; Ed25519 per RFC 8463).
//!
//! The milter signs at end of message, over the headers and body *as they will leave*:
//! after the Subject change, the classification header and the footer. Any later change by
//! another milter or a relay breaks the signature, so signing must be the last edit.
//!
//! Choices, and why:
//! * `c=relaxed/relaxed`, `a=rsa-sha256` or `a=ed25519-sha256`: relaxed survives the header
//!   refolding and whitespace changes that relays commonly make; SHA-1 is obsolete (RFC 8301).
//! * `t=` (signing time) is always present (mail-auth writes it); no `x=`, so a message that
//!   sits in a queue for days still verifies on arrival.
//! * RSA keys shorter than [`MIN_RSA_BITS`] are refused at load time: RFC 8301 §3.2 says
//!   signers SHOULD use at least 2048 bits, NTA 7516 asks for strong crypto, and the crypto
//!   backend (aws-lc-rs) cannot sign with smaller RSA keys anyway. Saying so when the key is
//!   loaded is friendlier than failing on the first message.
//! * [`SIGNED_HEADERS`] lists `From` twice and also names headers the message may lack:
//!   every listed name that is absent (or present fewer times than listed) still goes into
//!   `h=`, so nobody can add a second `From`, a `Reply-To` or a forged classification header
//!   after signing without breaking the signature (RFC 6376 §8.15, "over-signing").

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::{self, PemObject as _};

use crate::config::Config;
use crate::domain::DomainName;

pub mod exact;

/// Smallest RSA modulus we sign with (RFC 8301 §3.2 "SHOULD use at least 2048 bits").
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus the crypto backend (aws-lc-rs) accepts.
pub const MAX_RSA_BITS: usize = 8192;
/// A PEM private key is a few kilobytes; anything far bigger is the wrong file, and reading
/// it whole would only waste memory.
const MAX_KEY_FILE_LEN: u64 = 1024 * 1024;

/// Header fields covered by the signature, in `h=` order (see the module notes on
/// over-signing). `From` twice: the first covers the real From, the second an empty slot, so
/// a second From cannot be added. `X-NTA7516-Classification` carries our policy decision and
/// must not be forged downstream.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "In-Reply-To",
    "References",
    "X-NTA7516-Classification",
];

/// The key type of a DKIM signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSA, signing with `rsa-sha256`.
    Rsa,
    /// Ed25519, signing with `ed25519-sha256` (RFC 8463).
    Ed25519,
}

impl Algorithm {
    /// The `a=` value in the DKIM-Signature header.
    pub fn signature_algorithm(self) -> &'static str {
        match self {
            Algorithm::Rsa => "rsa-sha256",
            Algorithm::Ed25519 => "ed25519-sha256",
        }
    }

    /// The `k=` value in the DNS key record.
    pub fn key_type(self) -> &'static str {
        match self {
            Algorithm::Rsa => "rsa",
            Algorithm::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Algorithm::Rsa => "RSA",
            Algorithm::Ed25519 => "Ed25519",
        })
    }
}

/// Why a DKIM key could not be loaded. The messages are meant for the operator reading the
/// log or the output of `check-config`: they name the file and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read (missing, no permission, a directory, ...).
    #[error("cannot read DKIM key {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    /// The file is not a usable private key: no PEM private key in it, or damaged data.
    #[error("DKIM key {} is not a usable private key: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    /// A well-formed key of a kind DKIM signing here does not support (EC, Ed448, an
    /// encrypted key, ...). `message` completes the sentence "DKIM key PATH is ...".
    #[error("DKIM key {} is {message}", path.display())]
    Unsupported { path: PathBuf, message: String },
    /// An RSA key below [`MIN_RSA_BITS`].
    #[error(
        "DKIM key {} is an RSA key of only {bits} bits; use RSA of {MIN_RSA_BITS} bits or more \
         (e.g. `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`) or Ed25519",
        path.display()
    )]
    RsaTooSmall { path: PathBuf, bits: usize },
    /// The selector is not one or more DNS labels.
    #[error(
        "DKIM selector {selector:?} is not valid; expected DNS labels (letters, digits, '-', '_') \
         separated by dots"
    )]
    Selector { selector: String },
}

/// Why a message could not be signed. Each of these means the message as given cannot be
/// signed correctly; the caller decides (the design says: defer, never send unsigned by
/// accident).
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A header name with characters RFC 5322 does not allow (empty, space, colon, control).
    #[error("cannot DKIM-sign: {name:?} is not a valid header field name")]
    HeaderName { name: String },
    /// A line break in a header value that is not followed by a space or tab: written out it
    /// would end the header or start a new one, so the signed text would not be what is sent.
    #[error("cannot DKIM-sign: header {name} has a line break not followed by a space or tab")]
    HeaderFolding { name: String },
    /// A signed header holds a byte that mail-auth's relaxed canonicalisation hashes
    /// differently from RFC 6376 (see [`exact`]): the signature would not verify anywhere.
    #[error(
        "cannot DKIM-sign: header {name} contains {what}, which signers and verifiers \
         canonicalise differently"
    )]
    NotExact { name: String, what: &'static str },
    /// The body has bytes that mail-auth's relaxed canonicalisation hashes differently from
    /// RFC 6376 (see [`exact`]).
    #[error(
        "cannot DKIM-sign: the body contains {what}, which signers and verifiers canonicalise \
         differently"
    )]
    BodyNotExact { what: &'static str },
    /// None of [`SIGNED_HEADERS`] is in the message (not even From).
    #[error("cannot DKIM-sign: the message has none of the headers to sign (no From)")]
    NoSignedHeaders,
    /// The signing library failed (should not happen with a key that loaded).
    #[error("DKIM signing for {domain} (selector {selector}) failed: {message}")]
    Signer {
        domain: DomainName,
        selector: String,
        message: String,
    },
}

impl SignError {
    /// The message itself cannot be signed as it is (a malformed or unsignable header or
    /// body): sending it again cannot help, so the caller refuses it permanently. The other
    /// errors come from the signer and may pass.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, SignError::Signer { .. })
    }
}

/// A loaded DKIM private key with the domain (`d=`) and selector (`s=`) it signs for.
///
/// Load once at start-up (or reload) and share it (`Arc`); signing takes `&self`.
pub struct SigningKey {
    domain: DomainName,
    selector: String,
    algorithm: Algorithm,
    path: PathBuf,
    /// Bits of the RSA modulus; `None` for Ed25519.
    rsa_bits: Option<usize>,
    /// What goes after `p=` in DNS, before base64: the SubjectPublicKeyInfo DER for RSA, the
    /// raw 32-byte key for Ed25519 (RFC 8463 §4.2).
    public_key: Vec<u8>,
    /// Built once: domain, selector, header list and canonicalisation never change per message.
    signer: DkimSigner<DkimKey, Done>,
}

impl fmt::Debug for SigningKey {
    // Hand-written so that key material can never end up in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .field("rsa_bits", &self.rsa_bits)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads a PEM private key: PKCS#1 RSA (`BEGIN RSA PRIVATE KEY`), PKCS#8 RSA or PKCS#8
    /// Ed25519 (`BEGIN PRIVATE KEY`). RSA must have [`MIN_RSA_BITS`] to [`MAX_RSA_BITS`] bits.
    /// EC, Ed448, DSA, RSA-PSS-only and passphrase-encrypted keys are refused with a message
    /// that names the key type.
    pub fn load(domain: &DomainName, selector: &str, path: &Path) -> Result<SigningKey, KeyError> {
        if !valid_selector(selector) {
            return Err(KeyError::Selector {
                selector: selector.to_string(),
            });
        }
        let pem = read_key_file(path)?;
        let (key, algorithm, rsa_bits) = parse_private_key(path, &pem)?;
        let public_key = match &key {
            DkimKey::Rsa(rsa) => rsa_spki(&rsa.public_key()),
            DkimKey::Ed25519(ed) => ed.public_key(),
        };
        let signer = DkimSigner::from_key(key)
            .domain(domain.as_str())
            .selector(selector)
            .headers(SIGNED_HEADERS.iter().copied())
            // mail-auth's default is relaxed too; set explicitly so a changed default
            // cannot silently switch us to the fragile "simple".
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Relaxed);
        Ok(SigningKey {
            domain: domain.clone(),
            selector: selector.to_string(),
            algorithm,
            path: path.to_path_buf(),
            rsa_bits,
            public_key,
            signer,
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn domain(&self) -> &DomainName {
        &self.domain
    }

    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// The file the key was loaded from (for log lines and reload messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The RSA modulus size in bits; `None` for Ed25519.
    pub fn rsa_bits(&self) -> Option<usize> {
        self.rsa_bits
    }

    /// The DNS name of the key record, without trailing dot: `<selector>._domainkey.<domain>`.
    pub fn dns_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain.as_str())
    }

    /// The TXT record to publish at [`Self::dns_name`], as one string:
    /// `v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>` or
    /// `v=DKIM1; k=ed25519; p=<base64 of the raw 32-byte key>`.
    ///
    /// An RSA-2048 record is about 410 characters; DNS TXT strings hold at most 255, so a
    /// zone file must split it into several quoted strings (verifiers join them).
    pub fn public_key_dns_record(&self) -> String {
        format!(
            "v=DKIM1; k={}; p={}",
            self.algorithm.key_type(),
            base64(&self.public_key)
        )
    }
}

/// Signs the final message and returns the value for a `DKIM-Signature` header.
///
/// `headers` are the final header fields in order, each as `(name, value)` where the value
/// is **everything after the colon, byte for byte, as it leaves**: with the milter option
/// `LEADING_SPACE` negotiated that is exactly the value Postfix handed the milter (the space
/// after the colon included, raw 8-bit bytes untouched), and for a header the milter adds,
/// the value with the leading space it is given. Folding may be `"\n"` (Postfix's milter
/// view) or `"\r\n"`; each field is signed as `Name:value` with CRLF line ends, which is what
/// Postfix writes out. `body` is the final body as sent (CRLF; a bare LF is counted as CRLF,
/// because that is how it goes out on the wire).
///
/// What mail-auth's relaxed canonicalisation would hash differently from RFC 6376 §3.4 (and
/// so from every independent verifier) is refused, never signed: see [`exact`]. Callers
/// normalise the message first with [`exact::header_value`] and [`exact::body`].
///
/// The returned value:
/// * has no `DKIM-Signature:` prefix, no leading space and no trailing line break;
/// * is folded with `"\n\t"` (Postfix stores a `"\r\n"` from a milter literally, so LF is
///   the right line break to hand it);
/// * starts with `v=1; a=...`. Hand it to `add_header("DKIM-Signature", value)` or
///   `insert_header(0, ...)`. Without the `LEADING_SPACE` milter option (the default)
///   Postfix writes `DKIM-Signature: v=1; ...`. If `LEADING_SPACE` was negotiated, Postfix
///   writes the value verbatim; prepend `" "` for the usual look (it verifies either way).
pub fn sign<N: AsRef<str>, V: AsRef<[u8]>>(
    key: &SigningKey,
    headers: &[(N, V)],
    body: &[u8],
) -> Result<String, SignError> {
    let signed = |name: &str| SIGNED_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name));
    // mail-auth would report "no headers found"; checking first gives a clearer error and
    // also covers an empty header list (then the blank line below would be taken for the end
    // of a header block that never started).
    if !headers.iter().any(|(name, _)| signed(name.as_ref())) {
        return Err(SignError::NoSignedHeaders);
    }
    for (name, value) in headers {
        let name = name.as_ref();
        if signed(name)
            && let Some(what) = exact::header_problem(value.as_ref())
        {
            return Err(SignError::NotExact {
                name: name.to_string(),
                what,
            });
        }
    }
    if let Some(what) = exact::body_problem(body) {
        return Err(SignError::BodyNotExact { what });
    }

    // sign_streaming() splits headers from body at the first CRLF CRLF, so the message is fed
    // exactly as it is sent: each header line, the blank line, the body. (Not sign_chained()
    // with a headers chunk and a body chunk: that treats every chunk as header text, and the
    // body hash comes out wrong.)
    let mut stream = key.signer.sign_streaming();
    let mut line = Vec::with_capacity(256);
    for (name, value) in headers {
        line.clear();
        header_line(name.as_ref(), value.as_ref(), &mut line)?;
        stream.write(&line);
    }
    stream.write(b"\r\n");
    write_body_crlf(body, |chunk| stream.write(chunk));

    let signature = stream.finish().map_err(|e| match e {
        mail_auth::Error::NoHeadersFound => SignError::NoSignedHeaders,
        other => SignError::Signer {
            domain: key.domain.clone(),
            selector: key.selector.clone(),
            message: other.to_string(),
        },
    })?;

    // to_header() gives "DKIM-Signature: v=1; ...\r\n" folded with "\r\n\t".
    let header = signature.to_header();
    let value = header
        .strip_prefix("DKIM-Signature:")
        .unwrap_or(&header)
        .trim_start_matches(' ');
    let value = value.strip_suffix("\r\n").unwrap_or(value);
    Ok(value.replace("\r\n", "\n"))
}

/// Appends `Name:value\r\n` to `out`, turning the milter's LF folding into CRLF and
/// leaving every other byte of the value as it is.
fn header_line(name: &str, value: &[u8], out: &mut Vec<u8>) -> Result<(), SignError> {
    // RFC 5322 §3.6.8: printable US-ASCII except the colon.
    if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
        return Err(SignError::HeaderName {
            name: name.to_string(),
        });
    }
    out.extend_from_slice(name.as_bytes());
    out.push(b':');
    let bytes = value;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let line_break = match b {
            b'\n' => 1,
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => 2,
            _ => 0,
        };
        if line_break == 0 {
            out.push(b);
            i += 1;
            continue;
        }
        i += line_break;
        // A folded line must go on with white space; otherwise the "continuation" would be
        // read as a new header (or, if empty, as the end of the header block).
        if !matches!(bytes.get(i), Some(b' ' | b'\t')) {
            return Err(SignError::HeaderFolding {
                name: name.to_string(),
            });
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Passes `body` to `write`, with every bare LF turned into CRLF and nothing else changed.
fn write_body_crlf(body: &[u8], mut write: impl FnMut(&[u8])) {
    let mut start = 0;
    for (i, &b) in body.iter().enumerate() {
        if b == b'\n' && (i == 0 || body[i - 1] != b'\r') {
            write(&body[start..i]);
            write(b"\r\n");
            start = i + 1;
        }
    }
    write(&body[start..]);
}

/// RFC 6376 §3.1: a selector is one or more DNS labels separated by dots.
fn valid_selector(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn read_key_file(path: &Path) -> Result<Vec<u8>, KeyError> {
    let read_err = |message: String| KeyError::Read {
        path: path.to_path_buf(),
        message,
    };
    // Look before reading: a directory or a FIFO would give a confusing error or block.
    let meta = std::fs::metadata(path).map_err(|e| read_err(io_message(&e)))?;
    if meta.is_dir() {
        return Err(read_err("it is a directory, not a key file".into()));
    }
    if !meta.is_file() {
        return Err(read_err("not a regular file".into()));
    }
    if meta.len() > MAX_KEY_FILE_LEN {
        return Err(KeyError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "the file has {} bytes, far more than a PEM private key",
                meta.len()
            ),
        });
    }
    std::fs::read(path).map_err(|e| read_err(io_message(&e)))
}

/// Short, lower-case reasons for the common cases instead of "Permission denied (os error 13)".
fn io_message(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".into(),
        io::ErrorKind::PermissionDenied => {
            "permission denied (the file must be readable by the milter's user)".into()
        }
        io::ErrorKind::IsADirectory => "it is a directory, not a key file".into(),
        _ => e.to_string(),
    }
}

/// What to tell the operator about an unusable key type.
const USE_INSTEAD: &str = "use RSA (2048 bits or more) or Ed25519";

fn parse_private_key(
    path: &Path,
    pem_bytes: &[u8],
) -> Result<(DkimKey, Algorithm, Option<usize>), KeyError> {
    let invalid = |message: String| KeyError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let unsupported = |message: String| KeyError::Unsupported {
        path: path.to_path_buf(),
        message,
    };

    // The PEM reader skips "BEGIN ENCRYPTED PRIVATE KEY" as an unknown section and cannot
    // decrypt the old "Proc-Type: 4,ENCRYPTED" form; name the real problem instead.
    if contains(pem_bytes, b"ENCRYPTED PRIVATE KEY")
        || contains(pem_bytes, b"Proc-Type: 4,ENCRYPTED")
    {
        return Err(unsupported(
            "encrypted with a passphrase, which the milter cannot ask for; store it \
             unencrypted (`openssl pkey -in KEY -out KEY.new`) and protect it with file \
             permissions"
                .into(),
        ));
    }

    let der = match PrivateKeyDer::from_pem_slice(pem_bytes) {
        Ok(der) => der,
        Err(pem::Error::NoItemsFound) => {
            return Err(invalid(match first_pem_label(pem_bytes) {
                Some(label) => format!("it holds a {label}, not a private key"),
                None => "no PEM private key found (expected a \"-----BEGIN PRIVATE KEY-----\" \
                         or \"-----BEGIN RSA PRIVATE KEY-----\" block)"
                    .into(),
            }));
        }
        Err(e) => return Err(invalid(format!("damaged PEM data: {e}"))),
    };

    match der {
        PrivateKeyDer::Pkcs1(pkcs1) => {
            let bits = rsa_private_key_bits(pkcs1.secret_pkcs1_der());
            load_rsa(path, PrivateKeyDer::Pkcs1(pkcs1), bits)
        }
        PrivateKeyDer::Sec1(sec1) => {
            let curve = sec1_curve(sec1.secret_sec1_der());
            Err(unsupported(format!("an EC {curve} key; {USE_INSTEAD}")))
        }
        PrivateKeyDer::Pkcs8(pkcs8) => match pkcs8_kind(pkcs8.secret_pkcs8_der()) {
            Some(Pkcs8Kind::Rsa { bits }) => load_rsa(path, PrivateKeyDer::Pkcs8(pkcs8), bits),
            Some(Pkcs8Kind::Ed25519) => {
                let der = pkcs8.secret_pkcs8_der();
                // openssl writes PKCS#8 v1 (no public key inside). aws-lc-rs accepts that in
                // from_pkcs8_der; ring would want the unchecked variant, so try both.
                let key = Ed25519Key::from_pkcs8_der(der)
                    .or_else(|_| Ed25519Key::from_pkcs8_maybe_unchecked_der(der))
                    .map_err(|e| invalid(format!("the Ed25519 key was rejected: {e}")))?;
                Ok((DkimKey::Ed25519(key), Algorithm::Ed25519, None))
            }
            Some(Pkcs8Kind::Other(what)) => Err(unsupported(format!("{what}; {USE_INSTEAD}"))),
            None => Err(invalid("the PKCS#8 structure is damaged".into())),
        },
        _ => Err(unsupported(format!(
            "a key of an unknown format; {USE_INSTEAD}"
        ))),
    }
}

fn load_rsa(
    path: &Path,
    der: PrivateKeyDer<'_>,
    bits: Option<usize>,
) -> Result<(DkimKey, Algorithm, Option<usize>), KeyError> {
    // Check the size ourselves first: the backend's own refusal only says "TooSmall".
    match bits {
        Some(bits) if bits < MIN_RSA_BITS => {
            return Err(KeyError::RsaTooSmall {
                path: path.to_path_buf(),
                bits,
            });
        }
        Some(bits) if bits > MAX_RSA_BITS => {
            return Err(KeyError::Unsupported {
                path: path.to_path_buf(),
                message: format!(
                    "an RSA key of {bits} bits; the limit is {MAX_RSA_BITS} (and 2048 is enough)"
                ),
            });
        }
        _ => {}
    }
    let key = RsaKey::<Sha256>::from_key_der(der).map_err(|e| KeyError::Invalid {
        path: path.to_path_buf(),
        message: format!("the RSA key was rejected: {e}"),
    })?;
    // The backend parsed it; take the size from its public key if our quick look could not.
    let bits = bits.or_else(|| rsa_public_key_bits(&key.public_key()));
    Ok((DkimKey::Rsa(key), Algorithm::Rsa, bits))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The label of the first `-----BEGIN <label>-----` line, e.g. "PUBLIC KEY" or "CERTIFICATE".
fn first_pem_label(pem_bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(pem_bytes);
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let end = start + text[start..].find("-----")?;
    let label = text[start..end].trim();
    (!label.is_empty() && label.len() < 64).then(|| label.to_string())
}

// ---------------------------------------------------------------------------------------
// A minimal DER reader and writer: just enough to name a key's type and size for error
// messages and to build the SubjectPublicKeyInfo for DNS. The crypto backend does the real
// parsing; when this reader gives up, the backend's verdict stands.

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
/// `[0]` explicit, constructed: the curve parameters in a SEC1 ECPrivateKey.
const TAG_CONTEXT_0: u8 = 0xa0;

// Algorithm OIDs (DER content bytes).
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]; // 1.2.840.113549.1.1.1
const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a]; // 1.2.840.113549.1.1.10
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]; // 1.2.840.10045.2.1
const OID_DSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01]; // 1.2.840.10040.4.1
const OID_X25519: &[u8] = &[0x2b, 0x65, 0x6e]; // 1.3.101.110
const OID_X448: &[u8] = &[0x2b, 0x65, 0x6f]; // 1.3.101.111
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70]; // 1.3.101.112
const OID_ED448: &[u8] = &[0x2b, 0x65, 0x71]; // 1.3.101.113

/// Reads one TLV: `(tag, content, rest)`.
fn der_read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// Reads one TLV that must have `tag`: `(content, rest)`.
fn der_expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, content, rest) = der_read(input)?;
    (t == tag).then_some((content, rest))
}

fn der_write(tag: u8, content: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
}

/// Bit length of a DER INTEGER's (unsigned) value.
fn integer_bits(content: &[u8]) -> usize {
    let significant: &[u8] = match content.iter().position(|&b| b != 0) {
        Some(i) => &content[i..],
        None => return 0,
    };
    (significant.len() - 1) * 8 + (8 - significant[0].leading_zeros() as usize)
}

/// RSAPrivateKey (RFC 8017 A.1.2): SEQUENCE { version INTEGER, modulus INTEGER, ... }.
fn rsa_private_key_bits(der: &[u8]) -> Option<usize> {
    let (seq, _) = der_expect(der, TAG_SEQUENCE)?;
    let (_version, rest) = der_expect(seq, TAG_INTEGER)?;
    let (modulus, _) = der_expect(rest, TAG_INTEGER)?;
    Some(integer_bits(modulus))
}

/// RSAPublicKey (RFC 8017 A.1.1): SEQUENCE { modulus INTEGER, publicExponent INTEGER }.
fn rsa_public_key_bits(der: &[u8]) -> Option<usize> {
    let (seq, _) = der_expect(der, TAG_SEQUENCE)?;
    let (modulus, _) = der_expect(seq, TAG_INTEGER)?;
    Some(integer_bits(modulus))
}

/// Wraps a PKCS#1 RSAPublicKey into a SubjectPublicKeyInfo, the form `openssl pkey -pubout`
/// writes and that DKIM key records carry in `p=` (RFC 6376 §3.6.1).
fn rsa_spki(rsa_public_key: &[u8]) -> Vec<u8> {
    let mut alg = Vec::new();
    der_write(TAG_OID, OID_RSA, &mut alg);
    der_write(TAG_NULL, &[], &mut alg);
    let mut bits = Vec::with_capacity(rsa_public_key.len() + 1);
    bits.push(0); // no unused bits
    bits.extend_from_slice(rsa_public_key);
    let mut body = Vec::new();
    der_write(TAG_SEQUENCE, &alg, &mut body);
    der_write(TAG_BIT_STRING, &bits, &mut body);
    let mut spki = Vec::new();
    der_write(TAG_SEQUENCE, &body, &mut spki);
    spki
}

enum Pkcs8Kind {
    Rsa {
        bits: Option<usize>,
    },
    Ed25519,
    /// A key type we do not sign with, described for the operator ("an EC P-256 key").
    Other(String),
}

/// PrivateKeyInfo (RFC 5208): SEQUENCE { version, AlgorithmIdentifier, OCTET STRING key, ... }.
fn pkcs8_kind(der: &[u8]) -> Option<Pkcs8Kind> {
    let (info, _) = der_expect(der, TAG_SEQUENCE)?;
    let (_version, rest) = der_expect(info, TAG_INTEGER)?;
    let (alg, rest) = der_expect(rest, TAG_SEQUENCE)?;
    let (oid, params) = der_expect(alg, TAG_OID)?;
    let kind = match oid {
        OID_RSA => {
            let bits = der_expect(rest, TAG_OCTET_STRING)
                .and_then(|(private_key, _)| rsa_private_key_bits(private_key));
            Pkcs8Kind::Rsa { bits }
        }
        OID_ED25519 => Pkcs8Kind::Ed25519,
        OID_EC => {
            let curve = der_expect(params, TAG_OID)
                .map(|(c, _)| curve_name(c))
                .unwrap_or_else(|| "(unknown curve)".into());
            Pkcs8Kind::Other(format!("an EC {curve} key"))
        }
        OID_ED448 => Pkcs8Kind::Other("an Ed448 key (DKIM knows only Ed25519)".into()),
        OID_X25519 | OID_X448 => {
            Pkcs8Kind::Other("a key-agreement (X25519/X448) key, which cannot sign".into())
        }
        OID_RSA_PSS => Pkcs8Kind::Other(
            "an RSA-PSS-only key (DKIM signs with RSA PKCS#1 v1.5; generate a plain RSA key)"
                .into(),
        ),
        OID_DSA => Pkcs8Kind::Other("a DSA key".into()),
        other => Pkcs8Kind::Other(format!(
            "a key of an unknown type (algorithm OID {})",
            oid_string(other)
        )),
    };
    Some(kind)
}

/// ECPrivateKey (RFC 5915): SEQUENCE { version, OCTET STRING, [0] parameters OID, ... }.
fn sec1_curve(der: &[u8]) -> String {
    let curve = || {
        let (seq, _) = der_expect(der, TAG_SEQUENCE)?;
        let (_version, rest) = der_expect(seq, TAG_INTEGER)?;
        let (_key, rest) = der_expect(rest, TAG_OCTET_STRING)?;
        let (params, _) = der_expect(rest, TAG_CONTEXT_0)?;
        let (oid, _) = der_expect(params, TAG_OID)?;
        Some(curve_name(oid))
    };
    curve().unwrap_or_else(|| "(unknown curve)".into())
}

fn curve_name(oid: &[u8]) -> String {
    match oid {
        [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07] => "P-256".into(),
        [0x2b, 0x81, 0x04, 0x00, 0x22] => "P-384".into(),
        [0x2b, 0x81, 0x04, 0x00, 0x23] => "P-521".into(),
        [0x2b, 0x81, 0x04, 0x00, 0x0a] => "secp256k1".into(),
        other => format!("(curve OID {})", oid_string(other)),
    }
}

/// Dotted form of an OID, for messages about unknown key types.
fn oid_string(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &b in oid {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Standard base64 with padding (RFC 4648 §4), as DKIM's `p=` uses.
fn base64(data: &[u8]) -> String {
    data_encoding::BASE64.encode(data)
}

/// A DKIM key as loaded at start or reload. A key that failed to load is kept as its
/// error, so mail from that domain is deferred with the reason instead of leaving
/// unsigned.
pub type DkimSlot = Result<Arc<SigningKey>, Arc<KeyError>>;

/// Every `[[dkim]]` key of the configuration, by domain, each as it loaded.
pub fn load_keys(config: &Config) -> HashMap<DomainName, DkimSlot> {
    config
        .dkim
        .iter()
        .map(|d| {
            let slot = SigningKey::load(&d.domain, &d.selector, &d.key)
                .map(Arc::new)
                .map_err(Arc::new);
            (d.domain.clone(), slot)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn oid_strings() {
        assert_eq!(oid_string(OID_RSA), "1.2.840.113549.1.1.1");
        assert_eq!(oid_string(OID_ED25519), "1.3.101.112");
        assert_eq!(oid_string(&[0x2b, 0x81, 0x04, 0x00, 0x22]), "1.3.132.0.34");
    }

    #[test]
    fn der_long_lengths_round_trip() {
        let content = vec![7u8; 300];
        let mut out = Vec::new();
        der_write(TAG_OCTET_STRING, &content, &mut out);
        assert_eq!(&out[..4], &[TAG_OCTET_STRING, 0x82, 0x01, 0x2c]);
        let (tag, got, rest) = der_read(&out).unwrap();
        assert_eq!((tag, got, rest.len()), (TAG_OCTET_STRING, &content[..], 0));
        // Truncated input is refused, not read past.
        assert!(der_read(&out[..out.len() - 1]).is_none());
    }

    #[test]
    fn integer_bit_lengths() {
        assert_eq!(integer_bits(&[0x00, 0x80]), 8);
        assert_eq!(integer_bits(&[0x01, 0x00]), 9);
        assert_eq!(integer_bits(&[0x00]), 0);
    }

    #[test]
    fn header_lines_get_crlf_folding_and_keep_every_other_byte() {
        let mut out = Vec::new();
        header_line("Subject", b" a\n\tb\r\n c", &mut out).unwrap();
        assert_eq!(out, b"Subject: a\r\n\tb\r\n c\r\n");
        out.clear();
        header_line("Subject", b" Gr\xfc\xdfe", &mut out).unwrap();
        assert_eq!(out, b"Subject: Gr\xfc\xdfe\r\n");
    }

    #[test]
    fn header_lines_that_would_break_the_block_are_refused() {
        let mut out = Vec::new();
        for bad in ["a\nb", "a\n", "a\n\nb", "a\r\n"] {
            assert!(
                matches!(
                    header_line("Subject", bad.as_bytes(), &mut out),
                    Err(SignError::HeaderFolding { .. })
                ),
                "{bad:?}"
            );
        }
        for bad in ["", "Sub ject", "Sub:ject", "Sub\tject"] {
            assert!(
                matches!(
                    header_line(bad, b"x", &mut out),
                    Err(SignError::HeaderName { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn bare_lf_in_body_becomes_crlf() {
        let mut out = Vec::new();
        write_body_crlf(b"a\nb\r\nc\n\nd", |c| out.extend_from_slice(c));
        assert_eq!(out, b"a\r\nb\r\nc\r\n\r\nd");
        out.clear();
        write_body_crlf(b"\n", |c| out.extend_from_slice(c));
        assert_eq!(out, b"\r\n");
    }

    #[test]
    fn selectors() {
        assert!(valid_selector("sel2024"));
        assert!(valid_selector("a.b_c-d"));
        assert!(!valid_selector(""));
        assert!(!valid_selector("a..b"));
        assert!(!valid_selector("a b"));
        assert!(!valid_selector(&"x".repeat(64)));
    }

    #[test]
    fn signing_key_is_shareable_across_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SigningKey>();
    }
}
