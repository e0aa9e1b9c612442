//! The service's own secret keys: from configuration, or generated once into
//! `<data_dir>/secrets/` (readable by the service's user only) and reused on every start.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::config::Secret;

/// Loads the key configured, or the one in `<data_dir>/secrets/<name>.key`, creating that
/// file with 32 random bytes on first use.
pub fn load_or_create(
    configured: Option<&Secret>,
    data_dir: &Path,
    name: &str,
) -> std::io::Result<Secret> {
    if let Some(secret) = configured {
        return Ok(secret.clone());
    }
    let path = key_path(data_dir, name);
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 32 => return Ok(Secret::new(text.trim())),
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} holds a key shorter than 32 characters; delete it to have a new one made",
                path.display()
            )));
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let key = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(key.as_bytes())?;
            file.sync_all()?;
            tracing::info!(path = %path.display(), "generated a new {name} key");
            Ok(Secret::new(key))
        }
        // Another instance sharing the data folder created it first: use theirs.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            load_or_create(None, data_dir, name)
        }
        Err(error) => Err(error),
    }
}

fn key_path(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("secrets").join(format!("{name}.key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_kept_and_reused_and_a_configured_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(None, dir.path(), "jwt").unwrap();
        assert!(first.expose().len() >= 32);
        assert_eq!(load_or_create(None, dir.path(), "jwt").unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secrets/jwt.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let configured = Secret::new("c".repeat(40));
        assert_eq!(
            load_or_create(Some(&configured), dir.path(), "jwt").unwrap(),
            configured
        );
    }
}
