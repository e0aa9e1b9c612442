//! Streaming bytes into storage: in fixed-size writes, hashing and capping on the way, so
//! memory does not grow with the file. Used by uploads, the one-shot convert form, remote
//! inputs and conversion outputs.

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use super::sniff::SNIFF_LEN;
use crate::error::{ApiError, ErrorCode};
use crate::storage::{Storage, StorageError};

/// Bytes gathered before each write to storage.
pub const WRITE_CHUNK: usize = 256 * 1024;

/// What was stored.
#[derive(Clone, Debug)]
pub struct Stored {
    /// Bytes written.
    pub size: u64,
    /// Their SHA-256, in hex.
    pub sha256: String,
    /// The first bytes, to sniff the format from.
    pub head: Vec<u8>,
}

/// Why a stream was not stored. Nothing is left in storage either way.
#[derive(Debug)]
pub enum Refused {
    /// It passed the cap; its size so far.
    TooLong(u64),
    /// The source failed (a client went away, a remote server broke off).
    Source(Box<dyn std::error::Error + Send + Sync>),
    /// Storage failed.
    Storage(StorageError),
}

impl Refused {
    /// As an API error, `too_long` describing a body past its cap.
    pub fn into_api(self, too_long: impl FnOnce(u64) -> ApiError) -> ApiError {
        match self {
            Self::TooLong(size) => too_long(size),
            Self::Source(error) => ApiError::new(
                ErrorCode::BadRequest,
                "the body ended before it was whole; send it again",
            )
            .with_source(error),
            Self::Storage(error) => error.into(),
        }
    }
}

/// Streams `body` into the object `key`, at most `cap` bytes. On any failure the object is
/// not kept.
pub async fn store_stream<S, B, E>(
    storage: &Storage,
    key: &str,
    body: S,
    cap: u64,
) -> Result<Stored, Refused>
where
    S: Stream<Item = Result<B, E>>,
    B: Buf,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut writer = storage.writer(key).await.map_err(Refused::Storage)?;
    let mut hasher = Sha256::new();
    let mut head = Vec::with_capacity(SNIFF_LEN);
    let mut pending = BytesMut::with_capacity(WRITE_CHUNK);
    let mut size = 0u64;
    let mut body = std::pin::pin!(body);
    let result: Result<(), Refused> = async {
        while let Some(chunk) = body.next().await {
            let mut chunk = chunk.map_err(|error| Refused::Source(error.into()))?;
            while chunk.has_remaining() {
                let piece = chunk.chunk();
                let length = piece.len();
                size += length as u64;
                if size > cap {
                    return Err(Refused::TooLong(size));
                }
                hasher.update(piece);
                if head.len() < SNIFF_LEN {
                    let take = (SNIFF_LEN - head.len()).min(length);
                    head.extend_from_slice(&piece[..take]);
                }
                pending.extend_from_slice(piece);
                chunk.advance(length);
                if pending.len() >= WRITE_CHUNK {
                    let full: Bytes = pending.split().freeze();
                    writer.write(full).await.map_err(Refused::Storage)?;
                }
            }
        }
        if !pending.is_empty() {
            writer
                .write(pending.split().freeze())
                .await
                .map_err(Refused::Storage)?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            writer.finish().await.map_err(Refused::Storage)?;
            Ok(Stored {
                size,
                sha256: hex(&hasher.finalize()),
                head,
            })
        }
        Err(error) => {
            let _ = writer.abort().await;
            Err(error)
        }
    }
}

/// Streams the local file `path` into the object `key`.
pub async fn store_file(
    storage: &Storage,
    key: &str,
    path: &std::path::Path,
    cap: u64,
) -> Result<Stored, Refused> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|error| Refused::Source(error.into()))?;
    store_stream(
        storage,
        key,
        crate::storage::file_chunks(file, WRITE_CHUNK),
        cap,
    )
    .await
}

/// Copies the object `key` into the local file `path`.
pub async fn fetch_to_file(
    storage: &Storage,
    key: &str,
    size: u64,
    path: &std::path::Path,
) -> Result<(), StorageError> {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::create(path).await?;
    let mut stream = std::pin::pin!(storage.read_range(key, 0..size).await?);
    while let Some(chunk) = stream.next().await {
        file.write_all(&chunk?).await?;
    }
    file.flush().await?;
    Ok(())
}

/// Completes the pending file `file_id` with what was stored of it: `ready`, its size,
/// hash, sniffed format and storage key. The number of records changed (0 when it was no
/// longer pending).
pub fn mark_ready(
    conn: &mut crate::db::DbConnection,
    file_id: &str,
    stored: &Stored,
    format: Option<&str>,
    key: &str,
) -> diesel::QueryResult<usize> {
    use crate::db::schema::files;
    use diesel::prelude::*;
    diesel::update(
        files::table
            .find(file_id)
            .filter(files::status.eq("pending")),
    )
    .set((
        files::status.eq("ready"),
        files::size_bytes.eq(i64::try_from(stored.size).unwrap_or(i64::MAX)),
        files::sha256.eq(&stored.sha256),
        files::format.eq(format),
        files::storage_key.eq(key),
        files::upload_started_at.eq(None::<chrono::NaiveDateTime>),
        files::updated_at.eq(crate::db::now()),
    ))
    .execute(conn)
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}
