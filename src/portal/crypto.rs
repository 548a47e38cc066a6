//! Encryption at rest for the portal: a master key from `key_file`, a fresh data key (DEK)
//! per message, AES-256-GCM in 64 KiB chunks, the DEK wrapped by the master key (AES-KWP,
//! RFC 5649), and keyed hashes from HKDF-derived subkeys (RFC 5869). aws-lc-rs only.
//!
//! Chunks: the nonce is the chunk index (the DEK is used for one message only, so an index
//! never repeats under one key), and the associated data is `message id ‖ index ‖ last flag`,
//! so a reordered chunk, a chunk from another message or a cut-off tail fails to open.
//! Small items (phone numbers, sealed tokens) use a random nonce whose first byte is 0xFF,
//! a range chunk nonces (index < 2^64, first four bytes zero) never reach.
//!
//! Expiry destroys the wrapped DEK: without it the chunks are noise (crypto-shredding).

use std::fmt;
use std::io::Write;
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrapPadded};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::{hkdf, hmac};
use data_encoding::BASE64;

/// Length of the master key and every DEK: AES-256.
pub const KEY_LEN: usize = 32;
/// Plaintext bytes per chunk: a 25 MB message is never held in memory whole.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;
/// Message ids are 16 random bytes (shown as 32 hex digits).
pub const MESSAGE_ID_LEN: usize = 16;
/// A key file is a few lines; anything larger is not one.
const MAX_KEY_FILE: u64 = 4096;
/// HKDF salt: fixes the derivation to this application and version.
const HKDF_SALT: &[u8] = b"nta7516-milter portal v1";
/// First nonce byte of small items (see the module docs).
const ITEM_NONCE_TAG: u8 = 0xFF;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("stored data was wrapped with master key {stored}, but key_file holds {loaded}")]
    WrongKey { stored: String, loaded: String },
    /// Authentication failed: tampered, truncated, reordered or the wrong key.
    #[error("integrity check failed ({0})")]
    Integrity(&'static str),
    #[error("the system random generator failed")]
    Random,
}

fn random<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| CryptoError::Random)?;
    Ok(out)
}

/// `N` random bytes from the system CSPRNG (tokens, ids).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    random::<N>()
}

/// A fresh message id: 16 random bytes.
pub fn new_message_id() -> Result<[u8; MESSAGE_ID_LEN], CryptoError> {
    random()
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// The master key (key-encryption key) and the subkeys derived from it.
pub struct MasterKey {
    id: String,
    wrap: [u8; KEY_LEN],
    prk: hkdf::Prk,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish()
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.wrap.fill(0);
    }
}

/// Key file contents (TOML): `id` and `key` (base64 of 32 bytes).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    id: String,
    key: String,
}

impl MasterKey {
    pub fn from_bytes(key: &[u8; KEY_LEN]) -> MasterKey {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(key);
        let mut wrap = [0u8; KEY_LEN];
        expand(&prk, b"dek-wrap", &mut wrap);
        let mut id = [0u8; 8];
        expand(&prk, b"key-id", &mut id);
        MasterKey {
            id: data_encoding::HEXLOWER.encode(&id),
            wrap,
            prk,
        }
    }

    /// The key's id (16 hex digits, derived from the key): stored with every wrapped DEK
    /// so that a rotated or wrong key is named instead of failing as "corrupt".
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Reads `key_file`. Refuses a file that group or others can read: the key decrypts
    /// every stored message.
    pub fn load(path: &Path) -> Result<MasterKey, CryptoError> {
        use std::io::Read;
        use std::os::unix::fs::MetadataExt;
        let err = |reason: String| CryptoError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
        let meta = file.metadata().map_err(|e| err(e.to_string()))?;
        if meta.mode() & 0o077 != 0 {
            return Err(err(format!(
                "mode {:04o} lets others read the key; chmod 0600 it",
                meta.mode() & 0o777
            )));
        }
        let mut text = String::new();
        file.take(MAX_KEY_FILE)
            .read_to_string(&mut text)
            .map_err(|e| err(e.to_string()))?;
        let parsed: KeyFile = toml::from_str(&text).map_err(|e| err(e.message().to_string()))?;
        let bytes = BASE64
            .decode(parsed.key.as_bytes())
            .map_err(|_| err("key is not base64".into()))?;
        let key: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| err("key is not 32 bytes".into()))?;
        let master = MasterKey::from_bytes(&key);
        if master.id != parsed.id {
            return Err(err(format!(
                "id {:?} does not match the key (expected {}); the file is damaged",
                parsed.id, master.id
            )));
        }
        Ok(master)
    }

    /// Creates a new key file (mode 0600, never overwriting) and returns the key's id.
    pub fn generate_file(path: &Path) -> Result<String, CryptoError> {
        use std::os::unix::fs::OpenOptionsExt;
        let err = |reason: String| CryptoError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        let key: [u8; KEY_LEN] = random()?;
        let master = MasterKey::from_bytes(&key);
        let text = format!(
            "# nta7516-milter portal master key. Back it up offline: without it no stored\n\
             # message can be read. Never share it; mode 0600, owned by the portal's user.\n\
             id = \"{}\"\nkey = \"{}\"\n",
            master.id,
            BASE64.encode(&key)
        );
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    err("exists; refusing to overwrite a key (stored messages need it)".into())
                } else {
                    err(e.to_string())
                }
            })?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| err(e.to_string()))?;
        Ok(master.id.clone())
    }

    /// A 32-byte subkey for `label` (HKDF-Expand): each purpose its own key, e.g. the
    /// one-time-code pepper of the web side (`subkey(b"otp")`).
    pub fn subkey(&self, label: &[u8]) -> [u8; KEY_LEN] {
        let mut out = [0u8; KEY_LEN];
        expand(&self.prk, label, &mut out);
        out
    }

    /// HMAC-SHA256 under the subkey for `label` over the length-prefixed `parts` (so that
    /// `["ab","c"]` and `["a","bc"]` differ).
    pub fn keyed_hash(&self, label: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.subkey(label));
        let mut ctx = hmac::Context::with_key(&key);
        for p in parts {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p);
        }
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Wraps a DEK (AES-KWP, RFC 5649).
    pub fn wrap(&self, dek: &Dek) -> Result<Vec<u8>, CryptoError> {
        let kek = AesKek::new(&AES_256, &self.wrap).map_err(|_| CryptoError::Integrity("kek"))?;
        let mut out = vec![0u8; KEY_LEN + 16];
        let n = kek
            .wrap_with_padding(&dek.0, &mut out)
            .map_err(|_| CryptoError::Integrity("wrap"))?
            .len();
        out.truncate(n);
        Ok(out)
    }

    /// Unwraps a DEK stored with `key_id`.
    pub fn unwrap(&self, key_id: &str, wrapped: &[u8]) -> Result<Dek, CryptoError> {
        if key_id != self.id {
            return Err(CryptoError::WrongKey {
                stored: key_id.to_string(),
                loaded: self.id.clone(),
            });
        }
        let kek = AesKek::new(&AES_256, &self.wrap).map_err(|_| CryptoError::Integrity("kek"))?;
        let mut out = [0u8; KEY_LEN + 16];
        let plain = kek
            .unwrap_with_padding(wrapped, &mut out)
            .map_err(|_| CryptoError::Integrity("wrapped key"))?;
        let key: [u8; KEY_LEN] = (&*plain)
            .try_into()
            .map_err(|_| CryptoError::Integrity("wrapped key length"))?;
        out.fill(0);
        Ok(Dek(key))
    }
}

fn expand(prk: &hkdf::Prk, label: &[u8], out: &mut [u8]) {
    let info = [label];
    // Lengths here are at most 32 bytes, far below HKDF's 255 * 32 limit: cannot fail.
    if let Ok(okm) = prk.expand(&info, Len(out.len())) {
        let _ = okm.fill(out);
    }
}

/// One message's data key.
pub struct Dek([u8; KEY_LEN]);

impl fmt::Debug for Dek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dek(..)")
    }
}

impl Drop for Dek {
    fn drop(&mut self) {
        self.0.fill(0);
    }
}

fn chunk_aad(message_id: &[u8], index: u64, last: bool) -> Vec<u8> {
    let mut aad = Vec::with_capacity(message_id.len() + 9);
    aad.extend_from_slice(message_id);
    aad.extend_from_slice(&index.to_be_bytes());
    aad.push(u8::from(last));
    aad
}

fn chunk_nonce(index: u64) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n[4..].copy_from_slice(&index.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

impl Dek {
    pub fn generate() -> Result<Dek, CryptoError> {
        Ok(Dek(random()?))
    }

    /// A key derived from the master key ([`MasterKey::subkey`]) for data that belongs to
    /// no one message (the address book): it lives as long as the master key.
    pub(crate) fn derived(key: [u8; KEY_LEN]) -> Dek {
        Dek(key)
    }

    fn key(&self) -> LessSafeKey {
        // A 32-byte key is always valid for AES-256-GCM.
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.0).expect("32-byte AES-256 key"))
    }

    /// Encrypts chunk `index` of `message_id`; `last` marks the final chunk.
    pub fn seal_chunk(
        &self,
        message_id: &[u8],
        index: u64,
        last: bool,
        plain: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut buf = Vec::with_capacity(plain.len() + TAG_LEN);
        buf.extend_from_slice(plain);
        self.key()
            .seal_in_place_append_tag(
                chunk_nonce(index),
                Aad::from(chunk_aad(message_id, index, last)),
                &mut buf,
            )
            .map_err(|_| CryptoError::Integrity("seal"))?;
        Ok(buf)
    }

    pub fn open_chunk(
        &self,
        message_id: &[u8],
        index: u64,
        last: bool,
        sealed: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut buf = sealed.to_vec();
        let n = self
            .key()
            .open_in_place(
                chunk_nonce(index),
                Aad::from(chunk_aad(message_id, index, last)),
                &mut buf,
            )
            .map_err(|_| CryptoError::Integrity("chunk"))?
            .len();
        buf.truncate(n);
        Ok(buf)
    }

    /// Encrypts a small item (phone number, sealed token) bound to `context` (e.g.
    /// `b"phone" ‖ recipient id`); the random nonce is stored in front.
    pub fn seal_item(&self, context: &[u8], plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce: [u8; NONCE_LEN] = random()?;
        nonce[0] = ITEM_NONCE_TAG;
        let mut buf = plain.to_vec();
        self.key()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut buf,
            )
            .map_err(|_| CryptoError::Integrity("seal"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub fn open_item(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE_LEN + TAG_LEN || sealed[0] != ITEM_NONCE_TAG {
            return Err(CryptoError::Integrity("item"));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Integrity("item"))?;
        let mut buf = body.to_vec();
        let n = self
            .key()
            .open_in_place(nonce, Aad::from(context), &mut buf)
            .map_err(|_| CryptoError::Integrity("item"))?
            .len();
        buf.truncate(n);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> MasterKey {
        MasterKey::from_bytes(&[b; KEY_LEN])
    }

    #[test]
    fn constants() {
        assert_eq!(CHUNK_SIZE, 65536);
        assert_eq!(KEY_LEN, 32);
        assert_eq!(MESSAGE_ID_LEN, 16);
    }

    #[test]
    fn chunks_round_trip_and_detect_tampering() {
        let dek = Dek::generate().unwrap();
        let id = [7u8; 16];
        let a = dek.seal_chunk(&id, 0, false, b"hello ").unwrap();
        let b = dek.seal_chunk(&id, 1, true, b"world").unwrap();
        assert_eq!(dek.open_chunk(&id, 0, false, &a).unwrap(), b"hello ");
        assert_eq!(dek.open_chunk(&id, 1, true, &b).unwrap(), b"world");
        // Reordered: chunk 1's ciphertext at index 0.
        assert!(dek.open_chunk(&id, 0, false, &b).is_err());
        // Truncated: chunk 0 presented as the last one.
        assert!(dek.open_chunk(&id, 0, true, &a).is_err());
        // Another message's id.
        assert!(dek.open_chunk(&[8u8; 16], 0, false, &a).is_err());
        // A flipped bit.
        let mut bad = a.clone();
        bad[2] ^= 1;
        assert!(dek.open_chunk(&id, 0, false, &bad).is_err());
        // Cut-off ciphertext.
        assert!(dek.open_chunk(&id, 0, false, &a[..a.len() - 1]).is_err());
        // Another DEK.
        let other = Dek::generate().unwrap();
        assert!(other.open_chunk(&id, 0, false, &a).is_err());
    }

    #[test]
    fn items_are_bound_to_context() {
        let dek = Dek::generate().unwrap();
        let s = dek.seal_item(b"phone|r1", b"+31612345678").unwrap();
        assert_eq!(s[0], ITEM_NONCE_TAG);
        assert_eq!(dek.open_item(b"phone|r1", &s).unwrap(), b"+31612345678");
        assert!(dek.open_item(b"phone|r2", &s).is_err());
        assert!(dek.open_item(b"phone|r1", &s[..10]).is_err());
        // Two seals of the same value differ (random nonce).
        assert_ne!(s, dek.seal_item(b"phone|r1", b"+31612345678").unwrap());
    }

    #[test]
    fn wrap_unwrap_and_wrong_key() {
        let k = key(1);
        let dek = Dek::generate().unwrap();
        let w = k.wrap(&dek).unwrap();
        let back = k.unwrap(k.id(), &w).unwrap();
        let id = [1u8; 16];
        let c = dek.seal_chunk(&id, 0, true, b"x").unwrap();
        assert_eq!(back.open_chunk(&id, 0, true, &c).unwrap(), b"x");
        let other = key(2);
        assert_ne!(k.id(), other.id());
        assert!(matches!(
            other.unwrap(k.id(), &w),
            Err(CryptoError::WrongKey { .. })
        ));
        // Same id claimed but another key: the wrap does not authenticate.
        assert!(other.unwrap(other.id(), &w).is_err());
        let mut bad = w.clone();
        bad[0] ^= 1;
        assert!(k.unwrap(k.id(), &bad).is_err());
    }

    #[test]
    fn keyed_hashes_and_subkeys() {
        let k = key(3);
        assert_ne!(k.subkey(b"otp"), k.subkey(b"dedup"));
        assert_ne!(
            k.keyed_hash(b"x", &[b"ab", b"c"]),
            k.keyed_hash(b"x", &[b"a", b"bc"])
        );
        assert_eq!(k.keyed_hash(b"x", &[b"a"]), k.keyed_hash(b"x", &[b"a"]));
        assert_ne!(
            k.keyed_hash(b"x", &[b"a"]),
            key(4).keyed_hash(b"x", &[b"a"])
        );
        assert_eq!(k.id().len(), 16);
    }

    #[test]
    fn key_file_generate_load_refuse() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("portal.key");
        let id = MasterKey::generate_file(&p).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(MasterKey::load(&p).unwrap().id(), id);
        // Never overwritten.
        let before = std::fs::read(&p).unwrap();
        assert!(MasterKey::generate_file(&p).is_err());
        assert_eq!(std::fs::read(&p).unwrap(), before);
        // Group-readable: refused.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(
            MasterKey::load(&p)
                .unwrap_err()
                .to_string()
                .contains("0640")
        );
        // Damaged id.
        let q = dir.path().join("bad.key");
        let text = String::from_utf8(before)
            .unwrap()
            .replace(&id, "0000000000000000");
        std::fs::write(&q, text).unwrap();
        std::fs::set_permissions(&q, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(
            MasterKey::load(&q)
                .unwrap_err()
                .to_string()
                .contains("damaged")
        );
    }
}
