//! Secrets: API key material, hashing with constant-time comparison, and sealing of secrets
//! at rest with the master key (AES-256-GCM).

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use canopy_core::Error;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How many characters of a key are shown back (in listings, `/api/auth/me`).
pub const VISIBLE_PREFIX_LEN: usize = 12;

/// A new key: `<prefix>` followed by 32 random bytes in base64url (43 characters).
pub fn generate_key(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a key: hex SHA-256. Keys carry 256 bits of entropy, so a fast hash is
/// enough; a slow password hash would only add latency to every request.
pub fn hash_key(key: &str) -> String {
    hash_key_hex(key).as_str().to_owned()
}

/// [`hash_key`] without allocating: the 64 lowercase hex digits on the stack.
pub fn hash_key_hex(key: &str) -> HashHex {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(key.as_bytes());
    let mut out = [0u8; 64];
    for (i, b) in digest.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0x0f)];
    }
    HashHex(out)
}

/// A key hash as hex text (see [`hash_key_hex`]).
#[derive(Clone, Copy)]
pub struct HashHex([u8; 64]);

impl HashHex {
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Compares two hashes without leaking where they differ.
pub fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

pub fn visible_prefix(key: &str) -> String {
    key.chars().take(VISIBLE_PREFIX_LEN).collect()
}

/// Seals and opens secrets with the master key.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

const SEALED_PREFIX: &str = "v1:";

impl Sealer {
    pub fn new(master_key: &[u8; 32]) -> Sealer {
        Sealer {
            cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(*master_key)),
        }
    }

    /// A fresh random master key.
    pub fn generate_master_key() -> [u8; 32] {
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        k
    }

    /// `v1:` + base64(nonce ‖ ciphertext+tag).
    pub fn seal(&self, plaintext: &[u8]) -> Result<String, Error> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ct = self
            .cipher
            .encrypt(&nonce, plaintext)
            .map_err(|_| Error::internal("encryption failed"))?;
        let mut buf = nonce.to_vec();
        buf.extend_from_slice(&ct);
        Ok(format!("{SEALED_PREFIX}{}", STANDARD.encode(buf)))
    }

    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, Error> {
        let raw = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b| STANDARD.decode(b).ok())
            .filter(|b| b.len() > 12)
            .ok_or_else(|| Error::internal("sealed secret is malformed"))?;
        let (nonce, ct) = raw.split_at(12);
        let nonce: [u8; 12] = nonce
            .try_into()
            .map_err(|_| Error::internal("sealed secret is malformed"))?;
        self.cipher.decrypt(&Nonce::from(nonce), ct).map_err(|_| {
            Error::internal(
                "sealed secret does not open with this master key (was CANOPY_MASTER_KEY changed?)",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_and_distinct() {
        let a = generate_key("ska_");
        let b = generate_key("ska_");
        assert!(a.starts_with("ska_") && a.len() == 4 + 43, "{a}");
        assert_ne!(a, b);
        assert_eq!(visible_prefix(&a).len(), 12);
    }

    #[test]
    fn hash_compare() {
        let k = generate_key("x_");
        assert!(same_hash(&hash_key(&k), &hash_key(&k)));
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(!same_hash(&hash_key(&k), &hash_key("x_other")));
    }

    #[test]
    fn seal_round_trip_and_tamper() {
        let s = Sealer::new(&Sealer::generate_master_key());
        let sealed = s.seal(b"provider-secret").unwrap_or_default();
        assert!(!sealed.contains("provider-secret"));
        assert_eq!(s.open(&sealed).ok(), Some(b"provider-secret".to_vec()));
        let other = Sealer::new(&Sealer::generate_master_key());
        assert!(other.open(&sealed).is_err());
    }
}
