//! Keeping file records and storage in agreement: the purge of an organisation, and the
//! check that usage (counted from file records) is what storage holds.
//!
//! Usage is the sum of an organisation's `ready` file records, updated in the same
//! transaction as the records. Storage can still drift from them: bytes left behind when a
//! delete failed half-way, objects lost or changed outside the service. [`recompute`] lists
//! what storage holds and makes the records agree with it.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use serde::Serialize;

use super::Usage;
use crate::app::AppState;
use crate::config::FilesConfig;
use crate::db::schema::{files, jobs, orgs};
use crate::db::{Db, DbError, now};
use crate::error::{ApiError, ErrorCode};
use crate::storage::{Storage, StoredObject};

/// Objects written this recently are never taken for leftovers: they may belong to an
/// upload or a conversion whose record is not written yet.
const GRACE_SECONDS: i64 = 3600;

/// What a purge removed.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Purged {
    /// The organisation.
    pub org_id: String,
    /// File records deleted (stored, pending and failed).
    pub files_removed: u64,
    /// Objects deleted from storage.
    pub objects_removed: u64,
    /// Their bytes.
    pub bytes_removed: u64,
    /// Unfinished jobs canceled first, so that none writes after the purge.
    pub jobs_canceled: u64,
    /// The organisation's usage afterwards, recomputed.
    pub usage: Usage,
}

/// Deletes every stored file of `org_id`: its unfinished jobs are canceled, its file
/// records deleted, then every object under its prefix. 404 if there is no such
/// organisation.
pub async fn purge(state: &AppState, org_id: &str) -> Result<Purged, ApiError> {
    let org = org_id.to_owned();
    let task_state = state.clone();
    let (jobs_canceled, files_removed) = state
        .db()
        .run(move |conn| {
            let exists: i64 = orgs::table.find(&org).count().get_result(conn)?;
            if exists == 0 {
                return Err(ApiError::new(
                    ErrorCode::NotFound,
                    format!("there is no organisation `{org}`"),
                ));
            }
            let active: Vec<String> = jobs::table
                .filter(jobs::org_id.eq(&org))
                .filter(jobs::status.eq_any(["queued", "processing"]))
                .select(jobs::id)
                .load(conn)
                .map_err(DbError::from)?;
            for job_id in &active {
                crate::jobs::cancel(conn, &task_state, job_id, "canceled by a purge")?;
            }
            let removed = diesel::delete(files::table.filter(files::org_id.eq(&org)))
                .execute(conn)
                .map_err(DbError::from)?;
            Ok::<_, ApiError>((active.len() as u64, removed as u64))
        })
        .await?;
    let prefix = Storage::org_prefix(org_id);
    let objects = state.storage().list(&prefix).await?;
    state.storage().delete_org(org_id).await?;
    let left = state.storage().list(&prefix).await?;
    if !left.is_empty() {
        return Err(ApiError::internal(format!(
            "{} objects are still under the organisation's prefix after the purge",
            left.len()
        )));
    }
    let usage = usage_of(state.db(), org_id, state.config().files).await?;
    Ok(Purged {
        org_id: org_id.to_owned(),
        files_removed,
        objects_removed: objects.len() as u64,
        bytes_removed: objects.iter().map(|object| object.size).sum(),
        jobs_canceled,
        usage,
    })
}

async fn usage_of(db: &Db, org_id: &str, config: FilesConfig) -> Result<Usage, ApiError> {
    let org = org_id.to_owned();
    Ok(db
        .run(move |conn| super::usage(conn, &org, &config).map_err(DbError::from))
        .await?)
}

/// How one organisation's records compared with its storage, and what was done.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Reconciled {
    /// The organisation (`None`: objects of an organisation that no longer exists).
    pub org_id: String,
    /// Its name, if it exists.
    pub name: Option<String>,
    /// Usage counted from the records before the check.
    pub recorded_bytes: u64,
    /// Stored files counted from the records before the check.
    pub recorded_files: u64,
    /// Objects storage holds for it.
    pub stored_objects: u64,
    /// Their bytes.
    pub stored_bytes: u64,
    /// Records of stored files whose bytes are gone (deleted: they cannot be downloaded).
    pub missing: u64,
    /// Records whose size differs from their object's (set to the object's).
    pub resized: u64,
    /// Objects no file owns, written more than an hour ago (deleted).
    pub orphans: u64,
    /// Their bytes.
    pub orphan_bytes: u64,
    /// Usage afterwards (what it would be, in a dry run).
    pub bytes_used: u64,
    /// Stored files afterwards.
    pub file_count: u64,
}

impl Reconciled {
    /// Whether records and storage agreed.
    pub fn agreed(&self) -> bool {
        self.missing == 0 && self.resized == 0 && self.orphans == 0
    }
}

/// A stored file's record, as the check needs it.
struct Recorded {
    id: String,
    key: String,
    size: u64,
}

/// Compares `org_id`'s file records with what storage holds under its prefix, and unless
/// `dry_run`, makes them agree: records whose bytes are gone are deleted, sizes are taken
/// from storage, and objects older than an hour that no file owns are deleted. A missing
/// organisation's leftover objects are all orphans.
pub async fn recompute(
    db: &Db,
    storage: &Storage,
    config: FilesConfig,
    org_id: &str,
    dry_run: bool,
) -> Result<Reconciled, ApiError> {
    let org = org_id.to_owned();
    let (name, records, pending) = db
        .run(move |conn| {
            let name: Option<String> = orgs::table
                .find(&org)
                .select(orgs::name)
                .first(conn)
                .optional()?;
            let rows: Vec<(String, String, Option<String>, Option<i64>)> = files::table
                .filter(files::org_id.eq(&org))
                .select((
                    files::id,
                    files::status,
                    files::storage_key,
                    files::size_bytes,
                ))
                .load(conn)?;
            let mut records = Vec::new();
            let mut pending = Vec::new();
            for (id, status, key, size) in rows {
                let key = key.unwrap_or_else(|| Storage::file_key(&org, &id));
                if status == "ready" {
                    let size = size.and_then(|size| u64::try_from(size).ok()).unwrap_or(0);
                    records.push(Recorded { id, key, size });
                } else {
                    // Pending uploads and imports write their object before the record
                    // says ready; failed ones may still hold bytes being cleaned up.
                    pending.push(key);
                }
            }
            Ok::<_, DbError>((name, records, pending))
        })
        .await?;
    let objects = storage.list(&Storage::org_prefix(org_id)).await?;
    let mut report = Reconciled {
        org_id: org_id.to_owned(),
        name: name.clone(),
        recorded_bytes: records.iter().map(|record| record.size).sum(),
        recorded_files: records.len() as u64,
        stored_objects: objects.len() as u64,
        stored_bytes: objects.iter().map(|object| object.size).sum(),
        ..Reconciled::default()
    };
    let by_key: HashMap<&str, &StoredObject> = objects
        .iter()
        .map(|object| (object.key.as_str(), object))
        .collect();
    let mut missing = Vec::new();
    let mut resized = Vec::new();
    for record in &records {
        match by_key.get(record.key.as_str()) {
            None => missing.push(record.id.clone()),
            Some(object) if object.size != record.size => {
                resized.push((record.id.clone(), object.size));
            }
            Some(_) => {}
        }
    }
    let owned: HashSet<&str> = records
        .iter()
        .map(|record| record.key.as_str())
        .chain(pending.iter().map(String::as_str))
        .collect();
    let cutoff = now().and_utc().timestamp() - GRACE_SECONDS;
    let orphans: Vec<&StoredObject> = objects
        .iter()
        .filter(|object| !owned.contains(object.key.as_str()))
        .filter(|object| name.is_none() || object.modified.is_some_and(|time| time < cutoff))
        .collect();
    report.missing = missing.len() as u64;
    report.resized = resized.len() as u64;
    report.orphans = orphans.len() as u64;
    report.orphan_bytes = orphans.iter().map(|object| object.size).sum();
    if !dry_run {
        if name.is_none() {
            // Everything under a deleted organisation's prefix is left over.
            storage.delete_org(org_id).await?;
        } else {
            for object in &orphans {
                storage.delete(&object.key).await?;
            }
        }
        let (lost, sizes) = (missing.clone(), resized.clone());
        db.run(move |conn| {
            crate::db::write_transaction(conn, |conn| {
                for id in &lost {
                    diesel::delete(files::table.find(id)).execute(conn)?;
                }
                for (id, size) in &sizes {
                    diesel::update(files::table.find(id))
                        .set(files::size_bytes.eq(i64::try_from(*size).unwrap_or(i64::MAX)))
                        .execute(conn)?;
                }
                Ok::<_, DbError>(())
            })
        })
        .await?;
    }
    if name.is_some() && !dry_run {
        let usage = usage_of(db, org_id, config).await?;
        report.bytes_used = usage.bytes_used;
        report.file_count = usage.file_count;
    } else {
        let missing: HashSet<&str> = missing.iter().map(String::as_str).collect();
        let kept = records
            .iter()
            .filter(|record| !missing.contains(record.id.as_str()));
        let resized: HashMap<&str, u64> = resized
            .iter()
            .map(|(id, size)| (id.as_str(), *size))
            .collect();
        for record in kept {
            report.file_count += 1;
            report.bytes_used += resized
                .get(record.id.as_str())
                .copied()
                .unwrap_or(record.size);
        }
    }
    Ok(report)
}

/// The organisations to check: every one in the database, and every one storage still
/// holds objects for.
pub async fn org_ids(db: &Db, storage: &Storage) -> Result<Vec<String>, ApiError> {
    let mut ids: Vec<String> = db
        .run(|conn| {
            orgs::table
                .select(orgs::id)
                .order(orgs::id.asc())
                .load(conn)
                .map_err(DbError::from)
        })
        .await?;
    for id in storage.org_ids().await? {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}
