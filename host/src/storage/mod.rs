//! Where stored files live: a facade over an opendal [`Operator`], built once from
//! [`StorageConfig`]. This module (with [`external`], the services outputs are written to
//! and inputs read from) is the only one that names opendal.

pub mod external;

use std::time::{Duration, Instant};

use opendal::Operator;

use crate::config::StorageConfig;
use crate::error::{ApiError, ErrorCode};

/// Folder of the objects written by health checks.
const HEALTH_PREFIX: &str = ".health/";

/// What can go wrong with storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The backend could not be set up (bad configuration, folder not creatable).
    #[error("cannot open storage: {0}")]
    Open(String),
    /// An operation failed.
    #[error("storage operation failed: {0}")]
    Operation(#[from] opendal::Error),
    /// An operation took longer than allowed.
    #[error("storage did not answer within {0:?}")]
    TimedOut(Duration),
    /// A local file could not be read or written.
    #[error("local file operation failed: {0}")]
    Io(#[from] std::io::Error),
    /// What was read back is not what was written.
    #[error("storage returned different bytes than were written")]
    Corrupted,
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        match &error {
            StorageError::Operation(inner) if inner.kind() == opendal::ErrorKind::NotFound => {
                ApiError::new(ErrorCode::NotFound, "the file's bytes do not exist")
                    .with_source(error)
            }
            StorageError::Operation(inner) if inner.kind() == opendal::ErrorKind::RateLimited => {
                ApiError::unavailable("storage is busy; retry shortly", 5).with_source(error)
            }
            StorageError::TimedOut(_) => {
                ApiError::unavailable("storage is not answering; retry shortly", 5)
                    .with_source(error)
            }
            _ => ApiError::internal(error),
        }
    }
}

/// An object being written. Dropped without [`finish`](Self::finish), nothing is kept;
/// call [`abort`](Self::abort) to clean up at once.
pub struct ObjectWriter {
    inner: opendal::Writer,
}

impl ObjectWriter {
    /// Appends `chunk`.
    pub async fn write(&mut self, chunk: bytes::Bytes) -> Result<(), StorageError> {
        self.inner.write(chunk).await?;
        Ok(())
    }

    /// Completes the object.
    pub async fn finish(mut self) -> Result<(), StorageError> {
        self.inner.close().await?;
        Ok(())
    }

    /// Discards what was written.
    pub async fn abort(mut self) -> Result<(), StorageError> {
        self.inner.abort().await?;
        Ok(())
    }
}

/// The local file `file` as a stream of chunks of at most `chunk` bytes, read as they
/// are taken.
pub fn file_chunks(
    file: tokio::fs::File,
    chunk: usize,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
    use tokio::io::AsyncReadExt;
    futures_util::stream::unfold(Some(file), move |file| async move {
        let mut file = file?;
        let mut buffer = bytes::BytesMut::zeroed(chunk);
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(read) => {
                buffer.truncate(read);
                Some((Ok(buffer.freeze()), Some(file)))
            }
            Err(error) => Some((Err(error), None)),
        }
    })
}

/// An object found by [`Storage::list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written (Unix seconds), when the backend says.
    pub modified: Option<i64>,
}

/// Part size of multipart uploads to S3.
const S3_PART_SIZE: usize = 8 * 1024 * 1024;

/// The service's storage. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Storage {
    operator: Operator,
    backend: &'static str,
}

impl Storage {
    /// Opens the configured backend; for `fs`, creates the folder if needed.
    pub fn open(config: &StorageConfig) -> Result<Self, StorageError> {
        match config {
            StorageConfig::Fs { root } => {
                std::fs::create_dir_all(root).map_err(|error| {
                    StorageError::Open(format!("cannot create `{}`: {error}", root.display()))
                })?;
                let root = root.to_str().ok_or_else(|| {
                    StorageError::Open(format!("`{}` is not valid UTF-8", root.display()))
                })?;
                let builder = opendal::services::Fs::default().root(root);
                Ok(Self {
                    operator: Operator::new(builder)?,
                    backend: "fs",
                })
            }
            StorageConfig::S3(s3) => {
                crate::jobs::remote::tls_provider();
                opendal_http_transport_reqwest::install_default();
                let mut builder = opendal::services::S3::default()
                    .bucket(&s3.bucket)
                    .region(&s3.region)
                    .root(&format!("/{}", s3.prefix));
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder.endpoint(endpoint);
                }
                if let (Some(id), Some(secret)) = (&s3.access_key_id, &s3.secret_access_key) {
                    builder = builder.access_key_id(id).secret_access_key(secret.expose());
                }
                if s3.virtual_host_style {
                    builder = builder.enable_virtual_host_style();
                }
                Ok(Self {
                    operator: Operator::new(builder)?,
                    backend: "s3",
                })
            }
        }
    }

    /// The backend's name, e.g. `fs`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Where an organisation's objects live (never shown to clients).
    pub fn org_prefix(org_id: &str) -> String {
        format!("orgs/{org_id}/")
    }

    /// Where a file's bytes live (never shown to clients).
    pub fn file_key(org_id: &str, file_id: &str) -> String {
        format!("{}files/{file_id}", Self::org_prefix(org_id))
    }

    /// Opens `key` for writing in pieces; the object exists once [`ObjectWriter::finish`]
    /// returns.
    pub async fn writer(&self, key: &str) -> Result<ObjectWriter, StorageError> {
        let inner = if self.backend == "s3" {
            // Objects past one part go up as a multipart upload, in parts of this size
            // (S3 wants at least 5 MiB for every part but the last): memory per upload
            // stays at one part, whatever the object's size.
            self.operator.writer_with(key).chunk(S3_PART_SIZE).await?
        } else {
            self.operator.writer(key).await?
        };
        Ok(ObjectWriter { inner })
    }

    /// The bytes of `key` in `range`, as a stream of chunks, read as they are sent.
    pub async fn read_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + use<>, StorageError>
    {
        let reader = self.operator.reader(key).await?;
        Ok(reader.into_bytes_stream(range).await?)
    }

    /// Copies the object `from` to `to`, within this storage.
    pub async fn copy(&self, from: &str, to: &str) -> Result<(), StorageError> {
        self.operator.copy(from, to).await?;
        Ok(())
    }

    /// Deletes one object; deleting what does not exist succeeds.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.operator.delete(key).await?;
        Ok(())
    }

    /// Deletes every object of an organisation.
    pub async fn delete_org(&self, org_id: &str) -> Result<(), StorageError> {
        self.operator
            .delete_with(&Self::org_prefix(org_id))
            .recursive(true)
            .await?;
        Ok(())
    }

    /// Every object under `prefix` (a folder ending in `/`), at any depth.
    pub async fn list(&self, prefix: &str) -> Result<Vec<StoredObject>, StorageError> {
        let entries = match self.operator.list_with(prefix).recursive(true).await {
            Ok(entries) => entries,
            // An organisation that never stored anything has no folder on `fs`.
            Err(error) if error.kind() == opendal::ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(error.into()),
        };
        Ok(entries
            .into_iter()
            .filter(|entry| entry.metadata().is_file())
            .map(|entry| StoredObject {
                size: entry.metadata().content_length(),
                modified: entry
                    .metadata()
                    .last_modified()
                    .map(|time| time.into_inner().as_second()),
                key: entry.path().to_owned(),
            })
            .collect())
    }

    /// The ids of the organisations that have objects (the folders under `orgs/`).
    pub async fn org_ids(&self) -> Result<Vec<String>, StorageError> {
        let entries = match self.operator.list("orgs/").await {
            Ok(entries) => entries,
            Err(error) if error.kind() == opendal::ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(error.into()),
        };
        Ok(entries
            .into_iter()
            .filter(|entry| entry.metadata().is_dir())
            .filter_map(|entry| {
                let id = entry.path().strip_prefix("orgs/")?.trim_end_matches('/');
                (!id.is_empty()).then(|| id.to_owned())
            })
            .collect())
    }

    /// Writes, reads back and deletes a small probe object within `timeout`; returns how
    /// long that took. Unlike a listing, this fails when the storage is not writable or
    /// its folder has gone.
    pub async fn check(&self, timeout: Duration) -> Result<Duration, StorageError> {
        let started = Instant::now();
        let key = format!("{HEALTH_PREFIX}{}", uuid::Uuid::new_v4());
        let probe = b"metamorph health probe".as_slice();
        let round_trip = async {
            self.operator.write(&key, probe).await?;
            let read = self.operator.read(&key).await;
            self.operator.delete(&key).await?;
            if read?.to_vec() != probe {
                return Err(StorageError::Corrupted);
            }
            Ok(())
        };
        tokio::time::timeout(timeout, round_trip)
            .await
            .map_err(|_elapsed| StorageError::TimedOut(timeout))??;
        Ok(started.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_check_passes_on_a_writable_folder_and_fails_once_it_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("storage");
        let storage = Storage::open(&StorageConfig::Fs { root: root.clone() }).unwrap();
        storage.check(Duration::from_secs(2)).await.unwrap();
        assert_eq!(
            std::fs::read_dir(root.join(".health")).unwrap().count(),
            0,
            "probe left behind"
        );

        assert!(storage.list("orgs/none/").await.unwrap().is_empty());
        assert!(storage.org_ids().await.unwrap().is_empty());
        let mut writer = storage.writer("orgs/o1/files/f1").await.unwrap();
        writer
            .write(bytes::Bytes::from_static(b"12345"))
            .await
            .unwrap();
        writer.finish().await.unwrap();
        let listed = storage.list("orgs/o1/").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].key.as_str(), listed[0].size),
            ("orgs/o1/files/f1", 5)
        );
        assert_eq!(storage.org_ids().await.unwrap(), vec!["o1".to_owned()]);
        storage.delete_org("o1").await.unwrap();
        assert!(storage.list("orgs/o1/").await.unwrap().is_empty());

        std::fs::remove_dir_all(&root).unwrap();
        std::fs::write(&root, b"a file where the folder was").unwrap();
        assert!(storage.check(Duration::from_secs(2)).await.is_err());
    }
}
