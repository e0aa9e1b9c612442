//! Stored files: their records, quotas, the streaming of bytes in and out, and the links
//! that give them out. The HTTP side is in `routes/uploads.rs` and `routes/downloads.rs`.

pub mod ingest;
pub mod links;
pub mod range;
pub mod reconcile;
pub mod retention;
pub mod sniff;

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::config::{FilesConfig, RetentionConfig};
use crate::db::schema::{files, orgs};
use crate::db::{Db, DbConnection, DbError};

/// The columns of a file the transfer routes need.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = files)]
pub struct FileRecord {
    /// Id.
    pub id: String,
    /// Organisation.
    pub org_id: String,
    /// Who added it.
    pub owner_id: Option<String>,
    /// Name, without folders.
    pub filename: String,
    /// Media type the client declared.
    pub content_type: Option<String>,
    /// Format sniffed from the bytes.
    pub format: Option<String>,
    /// Size once stored.
    pub size_bytes: Option<i64>,
    /// SHA-256 (hex) once stored.
    pub sha256: Option<String>,
    /// Where the bytes are (never shown to clients).
    pub storage_key: Option<String>,
    /// `pending`, `ready`, `failed` or `deleted`.
    pub status: String,
    /// `private`, `org`, `public` or `restricted`.
    pub visibility: String,
    /// Size announced when the upload began.
    pub declared_size: Option<i64>,
    /// Downloads so far.
    pub download_count: i64,
    /// Downloads allowed.
    pub max_downloads: Option<i64>,
    /// Raised to revoke every link.
    pub link_epoch: i32,
}

/// A file about to receive its bytes (an upload, the one-shot form's file, a remote input).
pub struct NewPending<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its organisation.
    pub org_id: &'a str,
    /// Who adds it.
    pub owner_id: &'a str,
    /// Its name.
    pub filename: &'a str,
    /// The media type the client declared.
    pub content_type: Option<&'a str>,
    /// `upload` or `remote`.
    pub origin: &'a str,
    /// The size announced, if any.
    pub declared_size: Option<u64>,
    /// Whether its bytes start streaming in at once (the upload is claimed).
    pub streaming: bool,
}

/// Records `file` as `pending` and `private`, expiring as `retention` says.
pub fn insert_pending(
    conn: &mut DbConnection,
    file: &NewPending<'_>,
    retention: &RetentionConfig,
) -> QueryResult<()> {
    let time = crate::db::now();
    let expires_at = retention::expiry(conn, retention, file.org_id, "private", time)?;
    diesel::insert_into(files::table)
        .values((
            files::id.eq(file.id),
            files::org_id.eq(file.org_id),
            files::owner_id.eq(file.owner_id),
            files::filename.eq(file.filename),
            files::content_type.eq(file.content_type),
            files::status.eq("pending"),
            files::visibility.eq("private"),
            files::origin.eq(file.origin),
            files::created_at.eq(time),
            files::updated_at.eq(time),
            files::expires_at.eq(expires_at),
            files::declared_size.eq(file
                .declared_size
                .map(|size| i64::try_from(size).unwrap_or(i64::MAX))),
            files::upload_started_at.eq(file.streaming.then_some(time)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The file `id`, whatever its organisation.
pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<FileRecord>> {
    files::table
        .find(id)
        .select(FileRecord::as_select())
        .first(conn)
        .optional()
}

/// [`find`] on the blocking pool, for handlers.
pub async fn load(db: &Db, id: &str) -> Result<Option<FileRecord>, DbError> {
    let id = id.to_owned();
    db.run(move |conn| find(conn, &id).map_err(DbError::from))
        .await
}

/// Bytes `org_id` keeps stored, leaving out the file `except`.
pub fn bytes_used(conn: &mut DbConnection, org_id: &str, except: &str) -> QueryResult<u64> {
    // SUM of a BIGINT is NUMERIC in PostgreSQL; cast back so both backends answer BIGINT.
    let used: i64 = files::table
        .filter(files::org_id.eq(org_id))
        .filter(files::status.eq("ready"))
        .filter(files::id.ne(except))
        .select(sql::<BigInt>(
            "CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT)",
        ))
        .first(conn)?;
    Ok(u64::try_from(used).unwrap_or(0))
}

/// What an organisation stores against its quota.
#[derive(Clone, Copy, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Usage {
    /// Bytes of its stored files (uploads, fetched inputs, conversion outputs).
    pub bytes_used: u64,
    /// Bytes it may store.
    pub quota_bytes: u64,
    /// How many files it stores.
    pub file_count: u64,
}

/// The usage of `org_id`, counted from its file records in one query.
pub fn usage(conn: &mut DbConnection, org_id: &str, config: &FilesConfig) -> QueryResult<Usage> {
    let (bytes, count): (i64, i64) = files::table
        .filter(files::org_id.eq(org_id))
        .filter(files::status.eq("ready"))
        .select((
            sql::<BigInt>("CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT)"),
            sql::<BigInt>("CAST(COUNT(*) AS BIGINT)"),
        ))
        .first(conn)?;
    Ok(Usage {
        bytes_used: u64::try_from(bytes).unwrap_or(0),
        quota_bytes: quota(conn, org_id, config)?,
        file_count: u64::try_from(count).unwrap_or(0),
    })
}

/// The storage quota of `org_id`: its own if set, else the configured default for its kind.
pub fn quota(conn: &mut DbConnection, org_id: &str, config: &FilesConfig) -> QueryResult<u64> {
    let (kind, own): (String, Option<i64>) = orgs::table
        .find(org_id)
        .select((orgs::kind, orgs::quota_bytes))
        .first(conn)?;
    Ok(match own {
        Some(bytes) => u64::try_from(bytes).unwrap_or(0),
        None if kind == "anonymous" => config.anonymous_quota,
        None => config.quota,
    })
}

/// The media type to serve a file with.
pub fn media_type(record: &FileRecord) -> String {
    record
        .format
        .as_deref()
        .and_then(metamorph_plugin_api::known_format)
        .map(|known| known.media_types[0].to_owned())
        .or_else(|| record.content_type.clone())
        .unwrap_or_else(|| "application/octet-stream".to_owned())
}

/// A `Content-Disposition` header value that names the file, for every client: an ASCII
/// fallback and the exact UTF-8 name (RFC 6266, RFC 8187).
pub fn content_disposition(filename: &str) -> String {
    let fallback: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded =
        percent_encoding::utf8_percent_encode(filename, percent_encoding::NON_ALPHANUMERIC);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// Whether `name` may name a stored file: 1 to 255 characters, no folders, no control
/// characters.
pub fn valid_filename(name: &str) -> bool {
    let length = name.chars().count();
    (1..=255).contains(&length)
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_carry_an_ascii_fallback_and_the_exact_name() {
        assert_eq!(
            content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report%2Epdf"
        );
        let header = content_disposition("r\u{e9}sum\u{e9} \"v2\".pdf");
        assert!(
            header.starts_with("attachment; filename=\"r_sum_ _v2_.pdf\""),
            "{header}"
        );
        assert!(
            header.ends_with("filename*=UTF-8''r%C3%A9sum%C3%A9%20%22v2%22%2Epdf"),
            "{header}"
        );
    }

    #[test]
    fn filenames_have_no_folders_or_control_characters() {
        assert!(valid_filename("photo 1.jpg"));
        for bad in ["", ".", "..", "a/b", "a\\b", "a\nb", &"x".repeat(256)] {
            assert!(!valid_filename(bad), "{bad:?}");
        }
    }
}
