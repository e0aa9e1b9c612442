//! API key strings: `mmk_<prefix>_<secret>`. The prefix is public (shown in lists, used to
//! find the key); only the secret's digest is stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What every key starts with.
pub const KEY_PREFIX: &str = "mmk_";

/// A freshly made key: what to store and what to show once.
pub struct NewKey {
    /// The public prefix, unique per key.
    pub prefix: String,
    /// The full key, shown to the client exactly once.
    pub key: String,
    /// Digest of the secret part, stored.
    pub secret_hash: String,
}

/// Makes a new random key.
pub fn generate() -> NewKey {
    let prefix: String = rand::random::<[u8; 6]>()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let secret = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    NewKey {
        key: format!("{KEY_PREFIX}{prefix}_{secret}"),
        secret_hash: super::tokens::digest(&secret),
        prefix,
    }
}

/// Splits a key into `(prefix, secret)`, or `None` if it is not shaped like one of ours.
pub fn parse(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (prefix, secret) = rest.split_once('_')?;
    let valid = prefix.len() == 12
        && prefix.bytes().all(|b| b.is_ascii_hexdigit())
        && !secret.is_empty()
        && secret.len() <= 64;
    valid.then_some((prefix, secret))
}

/// Whether `secret` matches the stored digest, in constant time.
pub fn matches(secret: &str, stored_hash: &str) -> bool {
    use subtle::ConstantTimeEq;
    super::tokens::digest(secret)
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_parses_back_and_matches_its_digest_only() {
        let key = generate();
        let (prefix, secret) = parse(&key.key).unwrap();
        assert_eq!(prefix, key.prefix);
        assert!(matches(secret, &key.secret_hash));
        assert!(!matches("other", &key.secret_hash));
        for bad in ["", "mmk_", "mmk_zz_abc", "sk_123", "mmk_0123456789ab_"] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
