//! `dkim-keygen`: a new DKIM key pair, written where the daemon can load it, and the DNS
//! record and `[[dkim]]` entry that go with it.
//!
//! Keys come from aws-lc-rs, the crypto library the DKIM signer (mail-auth), hickory's
//! DNSSEC and rustls already use, so there is no `openssl` binary to depend on at runtime
//! and one implementation both makes and uses the keys. The private key is written as
//! unencrypted PKCS#8 PEM (`BEGIN PRIVATE KEY`, what `openssl genpkey` writes too) with
//! mode 0600, and is only put in place after [`SigningKey::load`] accepted it.

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::{AsDer as _, Pkcs8V1Der};
use aws_lc_rs::rsa::{self, KeySize};
use aws_lc_rs::signature::Ed25519KeyPair;

use crate::domain::DomainName;
use crate::message::dkim::{KeyError, SigningKey};

/// Where keys go unless `--out` says otherwise: `<dir>/<domain>.<selector>.pem`.
pub const DEFAULT_KEY_DIR: &str = "/etc/nta7516-milter/dkim";
/// RSA sizes offered. 2048 is the default (RFC 8301 §3.2 minimum, and a 2048-bit key's
/// record fits every DNS provider); larger keys make longer records some providers refuse.
pub const RSA_BITS: [usize; 3] = [2048, 3072, 4096];
pub const DEFAULT_RSA_BITS: usize = 2048;
/// Permissions of the private key file.
pub const KEY_FILE_MODE: u32 = 0o600;
/// Permissions of a key directory this tool has to create.
pub const KEY_DIR_MODE: u32 = 0o750;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa { bits: usize },
    Ed25519,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::Rsa { bits } => write!(f, "RSA-{bits}"),
            KeyKind::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    #[error("{0}")]
    Usage(String),
    #[error("{} already exists; pass --force to replace it (mail signed with a replaced key fails DKIM until the new record is published)", .0.display())]
    Exists(PathBuf),
    #[error("cannot write {}: {message}", path.display())]
    Write { path: PathBuf, message: String },
    #[error("key generation failed in the crypto library (aws-lc-rs)")]
    Generate,
    #[error("the generated key does not load ({0}); nothing was written")]
    Unusable(KeyError),
}

/// Checks `--algorithm`/`--bits` together. `bits` only applies to RSA.
pub fn key_kind(algorithm: &str, bits: Option<usize>) -> Result<KeyKind, KeygenError> {
    match algorithm.to_ascii_lowercase().as_str() {
        "rsa" => {
            let bits = bits.unwrap_or(DEFAULT_RSA_BITS);
            if RSA_BITS.contains(&bits) {
                Ok(KeyKind::Rsa { bits })
            } else {
                Err(KeygenError::Usage(format!(
                    "--bits {bits}: RSA keys can be 2048, 3072 or 4096 bits"
                )))
            }
        }
        "ed25519" => match bits {
            None => Ok(KeyKind::Ed25519),
            Some(_) => Err(KeygenError::Usage(
                "--bits applies to RSA keys only; Ed25519 keys have a fixed size".into(),
            )),
        },
        other => Err(KeygenError::Usage(format!(
            "--algorithm {other:?}: expected rsa or ed25519"
        ))),
    }
}

/// A selector as RFC 6376 §3.1 wants it (DNS labels of letters, digits, `-`, `_`), checked
/// before any work; [`SigningKey::load`] checks it again when the key is loaded.
pub fn check_selector(domain: &DomainName, selector: &str) -> Result<(), KeygenError> {
    let bad = || {
        KeygenError::Usage(format!(
            "--selector {selector:?}: expected DNS labels (letters, digits, '-', '_') separated by dots, e.g. \"nta2025\""
        ))
    };
    if !selector.is_ascii() || selector.ends_with('.') {
        return Err(bad());
    }
    DomainName::parse(selector).map_err(|_| bad())?;
    DomainName::parse(&format!("{selector}._domainkey.{domain}")).map_err(|e| {
        KeygenError::Usage(format!(
            "{selector}._domainkey.{domain} is not a valid DNS name: {e}"
        ))
    })?;
    Ok(())
}

/// `/etc/nta7516-milter/dkim/<domain>.<selector>.pem`.
pub fn default_key_path(domain: &DomainName, selector: &str) -> PathBuf {
    Path::new(DEFAULT_KEY_DIR).join(format!("{domain}.{selector}.pem"))
}

/// A new private key as PKCS#8 v1 DER (the form `openssl genpkey` writes; v1 is what older
/// tools read too).
pub fn generate_pkcs8(kind: KeyKind) -> Result<Vec<u8>, KeygenError> {
    let der: Pkcs8V1Der<'static> = match kind {
        KeyKind::Rsa { bits } => {
            let size = match bits {
                2048 => KeySize::Rsa2048,
                3072 => KeySize::Rsa3072,
                4096 => KeySize::Rsa4096,
                other => {
                    return Err(KeygenError::Usage(format!(
                        "RSA keys can be 2048, 3072 or 4096 bits, not {other}"
                    )));
                }
            };
            let pair = rsa::KeyPair::generate(size).map_err(|_| KeygenError::Generate)?;
            pair.as_der().map_err(|_| KeygenError::Generate)?
        }
        KeyKind::Ed25519 => {
            let pair = Ed25519KeyPair::generate().map_err(|_| KeygenError::Generate)?;
            pair.as_der().map_err(|_| KeygenError::Generate)?
        }
    };
    Ok(der.as_ref().to_vec())
}

/// RFC 7468 PEM: `-----BEGIN <label>-----`, base64 in lines of 64, `-----END <label>-----`.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = data_encoding::BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Writes `contents` to `path` with mode 0600, but only after `accept` approved the written
/// file, and without ever leaving a partial or unapproved file at `path`:
///
/// 1. the key goes to a new temporary file in the same directory (mode 0600 from the start,
///    so the key is never readable by others, whatever the umask);
/// 2. `accept` loads that file;
/// 3. it is hard-linked to `path`, which fails if `path` exists (no race with another
///    writer), or with `force` renamed over it (atomic replacement).
///
/// A missing parent directory is created with mode 0750.
pub fn install<T>(
    path: &Path,
    contents: &[u8],
    force: bool,
    accept: impl FnOnce(&Path) -> Result<T, KeyError>,
) -> Result<T, KeygenError> {
    let write_err = |p: &Path, e: io::Error| KeygenError::Write {
        path: p.to_path_buf(),
        message: e.to_string(),
    };
    if !force && fs::symlink_metadata(path).is_ok() {
        return Err(KeygenError::Exists(path.to_path_buf()));
    }
    let file_name = path
        .file_name()
        .ok_or_else(|| KeygenError::Usage(format!("--out {}: not a file name", path.display())))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        DirBuilder::new()
            .recursive(true)
            .mode(KEY_DIR_MODE)
            .create(&dir)
            .map_err(|e| write_err(&dir, e))?;
    }
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(KEY_FILE_MODE)
            .open(&tmp)?;
        // The umask can only have removed bits; set the mode exactly anyway.
        f.set_permissions(fs::Permissions::from_mode(KEY_FILE_MODE))?;
        f.write_all(contents)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        // Only remove what this call created: create_new failing means it is not ours.
        if e.kind() != io::ErrorKind::AlreadyExists {
            let _ = fs::remove_file(&tmp);
        }
        return Err(write_err(&tmp, e));
    }
    let accepted = match accept(&tmp) {
        Ok(v) => v,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(KeygenError::Unusable(e));
        }
    };
    let placed = if force {
        fs::rename(&tmp, path)
    } else {
        fs::hard_link(&tmp, path).and_then(|()| fs::remove_file(&tmp))
    };
    if let Err(e) = placed {
        let _ = fs::remove_file(&tmp);
        return Err(if e.kind() == io::ErrorKind::AlreadyExists {
            KeygenError::Exists(path.to_path_buf())
        } else {
            write_err(path, e)
        });
    }
    // Make the new directory entry durable too (best effort: not every file system can).
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(accepted)
}

/// The `[[dkim]]` entry for the configuration file. `key` must be absolute (the
/// configuration refuses relative key paths).
pub fn config_snippet(domain: &DomainName, selector: &str, key: &Path) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    format!(
        "[[dkim]]\ndomain = {}\nselector = {}\nkey = {}\n",
        quote(domain.as_str()),
        quote(selector),
        quote(&key.to_string_lossy())
    )
}

/// The zone-file entry publishing `key`'s public half, split into ≤255-byte strings.
pub fn dns_record(key: &SigningKey) -> String {
    super::zone_file_txt(&key.dns_name(), &key.public_key_dns_record())
}

/// The value of `tag` in a DKIM key record (`v=DKIM1; k=…; p=…`), trimmed; the first one
/// when a tag is repeated.
pub fn record_tag<'a>(record: &'a str, tag: &str) -> Option<&'a str> {
    record.split(';').find_map(|t| {
        let (k, v) = t.split_once('=')?;
        k.trim().eq_ignore_ascii_case(tag).then_some(v.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    #[test]
    fn kinds() {
        assert_eq!(key_kind("rsa", None).unwrap(), KeyKind::Rsa { bits: 2048 });
        assert_eq!(
            key_kind("RSA", Some(4096)).unwrap(),
            KeyKind::Rsa { bits: 4096 }
        );
        assert_eq!(key_kind("ed25519", None).unwrap(), KeyKind::Ed25519);
        for (alg, bits) in [
            ("rsa", Some(1024)),
            ("rsa", Some(8192)),
            ("ed25519", Some(2048)),
            ("ecdsa", None),
        ] {
            assert!(
                matches!(key_kind(alg, bits), Err(KeygenError::Usage(_))),
                "{alg} {bits:?}"
            );
        }
    }

    #[test]
    fn selectors() {
        let d = dn("zkh.nl");
        for ok in ["nta2025", "s1.mail", "a_b-c"] {
            check_selector(&d, ok).unwrap();
        }
        for bad in ["", "a b", "a..b", "sél", "x.", "a/b", &"a".repeat(64)] {
            assert!(check_selector(&d, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pem_lines() {
        let p = pem("PRIVATE KEY", &[0u8; 100]);
        let lines: Vec<&str> = p.lines().collect();
        assert_eq!(lines[0], "-----BEGIN PRIVATE KEY-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last().copied(), Some("-----END PRIVATE KEY-----"));
        assert!(p.ends_with('\n'));
    }

    #[test]
    fn ed25519_round_trip_through_the_signer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let der = generate_pkcs8(KeyKind::Ed25519).unwrap();
        let d = dn("zkh.nl");
        let key = install(&path, pem("PRIVATE KEY", &der).as_bytes(), false, |p| {
            SigningKey::load(&d, "s", p)
        })
        .unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let rec = key.public_key_dns_record();
        let p = record_tag(&rec, "p").unwrap();
        assert_eq!(
            data_encoding::BASE64.decode(p.as_bytes()).unwrap().len(),
            32
        );
        assert_eq!(record_tag(&rec, "k"), Some("ed25519"));
        // No temporary file left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        // Refused without --force, and the existing file is untouched.
        let before = fs::read(&path).unwrap();
        let again = install(&path, b"other", false, |p| SigningKey::load(&d, "s", p));
        assert!(matches!(again, Err(KeygenError::Exists(_))));
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    #[test]
    fn unusable_key_is_never_put_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("k.pem");
        let d = dn("zkh.nl");
        let r = install(&path, b"not a key", false, |p| SigningKey::load(&d, "s", p));
        assert!(matches!(r, Err(KeygenError::Unusable(_))), "{r:?}");
        assert!(!path.exists());
        let sub = dir.path().join("sub");
        assert_eq!(fs::read_dir(&sub).unwrap().count(), 0);
        assert_eq!(
            fs::metadata(&sub).unwrap().permissions().mode() & 0o777,
            KEY_DIR_MODE
        );
    }

    #[test]
    fn force_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let der = generate_pkcs8(KeyKind::Ed25519).unwrap();
        let d = dn("zkh.nl");
        install(&path, pem("PRIVATE KEY", &der).as_bytes(), true, |p| {
            SigningKey::load(&d, "s", p)
        })
        .unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        SigningKey::load(&d, "s", &path).unwrap();
    }

    #[test]
    fn snippet_and_tags() {
        let s = config_snippet(&dn("zkh.nl"), "nta", Path::new("/etc/k.pem"));
        assert_eq!(
            s,
            "[[dkim]]\ndomain = \"zkh.nl\"\nselector = \"nta\"\nkey = \"/etc/k.pem\"\n"
        );
        assert_eq!(record_tag("v=DKIM1; k=rsa; p=AB CD", "p"), Some("AB CD"));
        assert_eq!(record_tag("v=DKIM1;p=", "p"), Some(""));
        assert_eq!(record_tag("v=DKIM1", "p"), None);
        assert_eq!(
            default_key_path(&dn("ZKH.nl"), "s1"),
            PathBuf::from("/etc/nta7516-milter/dkim/zkh.nl.s1.pem")
        );
    }
}
