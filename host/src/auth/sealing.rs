//! Encryption of stored secrets (destination credentials) with XChaCha20-Poly1305, under a
//! key derived from the configured secrets key. Sealed values read `v1:<base64>`: the
//! version leaves room to rotate the scheme.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::config::Secret;

const VERSION_PREFIX: &str = "v1:";
const NONCE_LEN: usize = 24;

/// Seals and opens secrets. Cheap to clone.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

/// A sealed value that cannot be opened (wrong key, or tampered with).
#[derive(Debug, thiserror::Error)]
#[error("a stored secret cannot be decrypted (was the secrets key changed?)")]
pub struct OpenError;

impl Sealer {
    /// A sealer keyed by `secret`.
    pub fn new(secret: &Secret) -> Self {
        let key: [u8; 32] = Sha256::digest(secret.expose().as_bytes()).into();
        Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    /// Encrypts `plaintext` with a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8]) -> String {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = XNonce::from(nonce_bytes);
        // Encryption only fails for inputs beyond 256 GiB.
        let ciphertext = self.cipher.encrypt(&nonce, plaintext).unwrap_or_default();
        let mut sealed = nonce_bytes.to_vec();
        sealed.extend(ciphertext);
        format!("{VERSION_PREFIX}{}", STANDARD.encode(sealed))
    }

    /// Decrypts what [`Sealer::seal`] produced.
    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, OpenError> {
        let encoded = sealed.strip_prefix(VERSION_PREFIX).ok_or(OpenError)?;
        let bytes = STANDARD.decode(encoded).map_err(|_bad_base64| OpenError)?;
        if bytes.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_bad_nonce| OpenError)?;
        self.cipher
            .decrypt(&XNonce::from(nonce), ciphertext)
            .map_err(|_tampered| OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_the_same_key_only() {
        let sealer = Sealer::new(&Secret::new("k".repeat(32)));
        let sealed = sealer.seal(br#"{"secret_access_key":"abc"}"#);
        assert!(sealed.starts_with("v1:") && !sealed.contains("abc"));
        assert_eq!(
            sealer.open(&sealed).unwrap(),
            br#"{"secret_access_key":"abc"}"#
        );
        assert_ne!(
            sealer.seal(b"x"),
            sealer.seal(b"x"),
            "fresh nonce each time"
        );
        let other = Sealer::new(&Secret::new("o".repeat(32)));
        assert!(other.open(&sealed).is_err());
        assert!(sealer.open("v1:AAAA").is_err());
    }
}
