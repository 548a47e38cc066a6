//! Loading a DKIM private key (PEM: PKCS#1 or PKCS#8 RSA, PKCS#8 Ed25519) and the DNS key
//! record that goes with it. Refusals name the key type and say what to do instead.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer as _;
use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::{self, PemObject as _};

use super::SIGNED_HEADERS;
use super::der::{Pkcs8Kind, pkcs8_kind, rsa_private_key_bits, rsa_public_key_bits, sec1_curve};
use crate::config::Config;
use crate::domain::DomainName;

/// Smallest RSA modulus we sign with (RFC 8301 §3.2 "SHOULD use at least 2048 bits").
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus the crypto backend (aws-lc-rs) accepts.
pub const MAX_RSA_BITS: usize = 8192;
/// A PEM private key is a few kilobytes; anything far bigger is the wrong file, and reading
/// it whole would only waste memory.
const MAX_KEY_FILE_LEN: u64 = 1024 * 1024;

/// The key type of a DKIM signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSA, signing with `rsa-sha256`.
    Rsa,
    /// Ed25519, signing with `ed25519-sha256` (RFC 8463).
    Ed25519,
}

impl Algorithm {
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

/// A loaded DKIM private key with the domain (`d=`) and selector (`s=`) it signs for.
///
/// Load once at start-up (or reload) and share it (`Arc`); signing takes `&self`.
pub struct SigningKey {
    pub(super) domain: DomainName,
    pub(super) selector: String,
    algorithm: Algorithm,
    path: PathBuf,
    /// Bits of the RSA modulus; `None` for Ed25519.
    rsa_bits: Option<usize>,
    /// What goes after `p=` in DNS, before base64: the SubjectPublicKeyInfo DER for RSA, the
    /// raw 32-byte key for Ed25519 (RFC 8463 §4.2).
    public_key: Vec<u8>,
    /// Built once: domain, selector, header list and canonicalisation never change per message.
    pub(super) signer: DkimSigner<DkimKey, Done>,
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
            DkimKey::Rsa(rsa) => rsa_spki(path, &rsa.public_key())?,
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

/// The SubjectPublicKeyInfo of a PKCS#1 RSAPublicKey, the form `openssl pkey -pubout`
/// writes and that DKIM key records carry in `p=` (RFC 6376 §3.6.1).
fn rsa_spki(path: &Path, rsa_public_key: &[u8]) -> Result<Vec<u8>, KeyError> {
    aws_lc_rs::rsa::PublicKey::from_der(rsa_public_key)
        .ok()
        .and_then(|k| k.as_der().ok())
        .map(|spki| spki.as_ref().to_vec())
        .ok_or_else(|| KeyError::Invalid {
            path: path.to_path_buf(),
            message: "its RSA public key cannot be encoded for DNS".into(),
        })
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
