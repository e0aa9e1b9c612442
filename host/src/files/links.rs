//! Signed, expiring links to a file's bytes: `?dl=<expiry>.<signature>` on a download URL.
//!
//! The signature is an HMAC-SHA256, keyed from the token signing key (so every instance
//! sharing that key accepts the others' links), over the file, its organisation, the
//! file's link epoch and the expiry. Raising the epoch (making a file private again)
//! invalidates every link given out before.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Why a link is not accepted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The token is not of the form `<expiry>.<signature>` or its signature is wrong.
    #[error("the download link is not valid")]
    Invalid,
    /// The link's time is over.
    #[error("the download link has expired")]
    Expired,
}

/// What a download link grants access to.
#[derive(Clone, Copy, Debug)]
pub struct LinkTarget<'a> {
    /// Organisation of the file.
    pub org_id: &'a str,
    /// The file.
    pub file_id: &'a str,
    /// The file's link epoch when the link was made.
    pub epoch: i32,
}

/// Signs and checks download links.
#[derive(Clone)]
pub struct LinkSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner")
    }
}

impl LinkSigner {
    /// A signer whose key is derived from `secret` (never used as is: the same secret
    /// also signs access tokens).
    pub fn new(secret: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(b"metamorph download links v1");
        Self {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    fn mac(&self, target: LinkTarget<'_>, expires: u64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        let message = format!(
            "download\n{}\n{}\n{}\n{expires}",
            target.org_id, target.file_id, target.epoch
        );
        mac.update(message.as_bytes());
        mac
    }

    /// The `dl` token for `target`, valid until `expires` (seconds since the epoch).
    pub fn sign(&self, target: LinkTarget<'_>, expires: u64) -> String {
        let signature = self.mac(target, expires).finalize().into_bytes();
        format!("{expires}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// Checks a `dl` token for `target` at time `now` (seconds since the epoch).
    pub fn verify(&self, target: LinkTarget<'_>, token: &str, now: u64) -> Result<(), LinkError> {
        let (expires, signature) = token.split_once('.').ok_or(LinkError::Invalid)?;
        let expires: u64 = expires.parse().map_err(|_malformed| LinkError::Invalid)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_malformed| LinkError::Invalid)?;
        self.mac(target, expires)
            .verify_slice(&signature)
            .map_err(|_malformed| LinkError::Invalid)?;
        if now >= expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

impl LinkSigner {
    fn share_mac(&self, file_id: &str, epoch: i32, expires: u64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(format!("share\n{file_id}\n{epoch}\n{expires}").as_bytes());
        mac
    }

    /// A share token (`/api/s/<token>`) for `file_id` at link epoch `epoch`, valid until
    /// `expires` (seconds since the epoch), or for as long as the file is shared when
    /// `None`.
    pub fn sign_share(&self, file_id: &str, epoch: i32, expires: Option<u64>) -> String {
        let expires = expires.unwrap_or(0);
        let signature = self
            .share_mac(file_id, epoch, expires)
            .finalize()
            .into_bytes();
        format!("{file_id}.{expires}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The file a share token names, read without checking it: look the file up, then
    /// [`verify_share`](Self::verify_share) with its epoch.
    pub fn share_file_id(token: &str) -> Option<&str> {
        token.split('.').next().filter(|id| !id.is_empty())
    }

    /// Checks a share token for the file's current link `epoch` at time `now`.
    pub fn verify_share(&self, token: &str, epoch: i32, now: u64) -> Result<(), LinkError> {
        let mut parts = token.split('.');
        let (Some(file_id), Some(expires), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(LinkError::Invalid);
        };
        let expires: u64 = expires.parse().map_err(|_malformed| LinkError::Invalid)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_malformed| LinkError::Invalid)?;
        self.share_mac(file_id, epoch, expires)
            .verify_slice(&signature)
            .map_err(|_malformed| LinkError::Invalid)?;
        if expires != 0 && now >= expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: LinkTarget<'static> = LinkTarget {
        org_id: "org",
        file_id: "file",
        epoch: 0,
    };

    #[test]
    fn a_link_works_for_its_file_until_it_expires() {
        let signer = LinkSigner::new(b"secret");
        let token = signer.sign(FILE, 1000);
        assert_eq!(signer.verify(FILE, &token, 999), Ok(()));
        assert_eq!(signer.verify(FILE, &token, 1000), Err(LinkError::Expired));
        let other = LinkTarget {
            file_id: "other",
            ..FILE
        };
        assert_eq!(signer.verify(other, &token, 1), Err(LinkError::Invalid));
        let revoked = LinkTarget { epoch: 1, ..FILE };
        assert_eq!(signer.verify(revoked, &token, 1), Err(LinkError::Invalid));
    }

    #[test]
    fn share_tokens_name_their_file_and_die_with_their_epoch_or_time() {
        let signer = LinkSigner::new(b"secret");
        let forever = signer.sign_share("file", 3, None);
        assert_eq!(LinkSigner::share_file_id(&forever), Some("file"));
        assert_eq!(signer.verify_share(&forever, 3, u64::MAX - 1), Ok(()));
        assert_eq!(signer.verify_share(&forever, 4, 1), Err(LinkError::Invalid));
        let brief = signer.sign_share("file", 3, Some(100));
        assert_eq!(signer.verify_share(&brief, 3, 99), Ok(()));
        assert_eq!(signer.verify_share(&brief, 3, 100), Err(LinkError::Expired));
        let renamed = brief.replacen("file", "other", 1);
        assert_eq!(signer.verify_share(&renamed, 3, 1), Err(LinkError::Invalid));
        let prolonged = brief.replacen(".100.", ".0.", 1);
        assert_eq!(
            signer.verify_share(&prolonged, 3, 1),
            Err(LinkError::Invalid)
        );
    }

    #[test]
    fn tampered_or_foreign_tokens_are_refused() {
        let signer = LinkSigner::new(b"secret");
        let token = signer.sign(FILE, 1000);
        let longer = token.replacen("1000.", "9000.", 1);
        assert_eq!(signer.verify(FILE, &longer, 1), Err(LinkError::Invalid));
        let foreign = LinkSigner::new(b"another").sign(FILE, 1000);
        assert_eq!(signer.verify(FILE, &foreign, 1), Err(LinkError::Invalid));
        for junk in ["", "1000", "x.y", "1000.!!"] {
            assert_eq!(signer.verify(FILE, junk, 1), Err(LinkError::Invalid));
        }
    }
}
