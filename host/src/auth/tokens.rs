//! Access tokens (HS256 JWTs, short-lived), anonymous session tokens (JWTs that live as long
//! as their session) and refresh tokens (opaque random strings stored hashed, rotated on
//! every use).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Secret;

/// Prefix of refresh tokens, so leaked ones are recognisable.
pub const REFRESH_PREFIX: &str = "mmr_";

/// What a token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// A login's access token.
    Access,
    /// An anonymous session.
    Anonymous,
}

/// The claims of our JWTs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The organisation id.
    pub org: String,
    /// What the token is for.
    pub kind: TokenKind,
    /// Issued at (seconds since the epoch).
    pub iat: u64,
    /// Expires at (seconds since the epoch).
    pub exp: u64,
    /// Unique id of this token.
    pub jti: String,
}

/// Signs and checks tokens.
#[derive(Clone)]
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

impl TokenSigner {
    /// A signer keyed by `secret`.
    pub fn new(secret: &Secret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is exact: a token is refused the second after `exp`.
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
        }
    }

    /// Signs a token of `kind` for a user, valid for `ttl`.
    pub fn issue(
        &self,
        kind: TokenKind,
        user_id: &str,
        org_id: &str,
        ttl: Duration,
    ) -> Result<(String, u64), String> {
        let iat = unix_now();
        let exp = iat + ttl.as_secs().max(1);
        let claims = Claims {
            sub: user_id.to_owned(),
            org: org_id.to_owned(),
            kind,
            iat,
            exp,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map(|token| (token, exp))
            .map_err(|error| format!("cannot sign a token: {error}"))
    }

    /// Checks a token's signature and expiry and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    "the token has expired".to_owned()
                }
                _ => "the token is not valid".to_owned(),
            })
    }
}

/// A fresh refresh token.
pub fn new_refresh_token() -> String {
    format!(
        "{REFRESH_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
    )
}

/// What is stored of a refresh token (or an API key secret): its SHA-256, in hex. These are
/// random 256-bit values, so a fast hash is enough; there is nothing to brute-force.
pub fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(key: &str) -> TokenSigner {
        TokenSigner::new(&Secret::new(key.repeat(32)))
    }

    #[test]
    fn a_token_verifies_with_its_key_only() {
        let (token, exp) = signer("a")
            .issue(TokenKind::Access, "u1", "o1", Duration::from_secs(60))
            .unwrap();
        let claims = signer("a").verify(&token).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.org.as_str(), claims.kind),
            ("u1", "o1", TokenKind::Access)
        );
        assert_eq!(claims.exp, exp);
        assert!(signer("b").verify(&token).is_err());
        assert!(signer("a").verify("nonsense").is_err());
    }

    #[test]
    fn an_expired_token_says_so() {
        let signer = signer("a");
        let claims = Claims {
            sub: "u".into(),
            org: "o".into(),
            kind: TokenKind::Access,
            iat: 1,
            exp: unix_now() - 1,
            jti: "j".into(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &signer.encoding)
            .unwrap();
        assert_eq!(signer.verify(&token).unwrap_err(), "the token has expired");
    }

    #[test]
    fn refresh_tokens_are_random_and_stored_as_digests() {
        let (a, b) = (new_refresh_token(), new_refresh_token());
        assert!(a.starts_with(REFRESH_PREFIX) && a != b);
        assert_eq!(digest(&a).len(), 64);
        assert_ne!(digest(&a), digest(&b));
    }
}
