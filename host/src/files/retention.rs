//! Retention: how long stored files are kept, and the sweeper that deletes them when their
//! time is up.
//!
//! A file's lifetime depends on its organisation and its visibility: the configured
//! `[retention]` policy (anonymous sessions: 24 h; registered organisations: kept until
//! deleted), unless a superuser gave the organisation a policy of its own. It is written
//! into `files.expires_at` when the file is stored, when its visibility changes and when
//! the policy of its organisation changes, so clients see when a file goes and the sweeper
//! finds expired files through an index.

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::dsl::{exists, not};
use diesel::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::config::{Lifetime, RetentionConfig};
use crate::db::schema::{files, job_tasks, orgs};
use crate::db::{DbConnection, DbError, now};
use crate::error::ApiError;
use crate::storage::Storage;

/// Task states in which a task may still read its input.
const ACTIVE_TASKS: [&str; 3] = ["waiting", "queued", "processing"];

/// Files deleted per sweeper round at most; the next round takes the rest.
const SWEEP_BATCH: i64 = 500;

/// An organisation's own retention policy, by visibility; what it leaves out follows the
/// server's configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgRetention {
    /// Files only their owner and admins may download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<Lifetime>,
    /// Files every member of the organisation may download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<Lifetime>,
    /// Files shared with members holding a link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restricted: Option<Lifetime>,
    /// Files shared with anyone holding a link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<Lifetime>,
}

impl OrgRetention {
    /// Reads the `orgs.retention` column; an unreadable value counts as no policy.
    pub fn from_column(column: Option<&str>) -> Self {
        column
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default()
    }

    /// The value of the `orgs.retention` column; `None` when nothing is set.
    pub fn to_column(&self) -> Option<String> {
        (self != &Self::default()).then(|| serde_json::to_string(self).unwrap_or_default())
    }

    fn for_visibility(&self, visibility: &str) -> Option<Lifetime> {
        match visibility {
            "org" => self.org,
            "restricted" => self.restricted,
            "public" => self.public,
            _ => self.private,
        }
    }
}

/// The retention that applies to one organisation's files.
#[derive(Clone, Debug)]
pub struct Policy {
    config: RetentionConfig,
    anonymous: bool,
    own: OrgRetention,
    /// When an anonymous session ends (everything in it goes then).
    session_end: Option<NaiveDateTime>,
}

/// Lifetimes of the four visibilities, as a policy states them.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Lifetimes {
    /// `private` files.
    pub private: Lifetime,
    /// `org` files.
    pub org: Lifetime,
    /// `restricted` files.
    pub restricted: Lifetime,
    /// `public` files.
    pub public: Lifetime,
}

impl Policy {
    /// The policy of `org_id`.
    pub fn of_org(
        conn: &mut DbConnection,
        config: &RetentionConfig,
        org_id: &str,
    ) -> QueryResult<Self> {
        let (kind, expires_at, own): (String, Option<NaiveDateTime>, Option<String>) = orgs::table
            .find(org_id)
            .select((orgs::kind, orgs::expires_at, orgs::retention))
            .first(conn)?;
        Ok(Self::new(
            config,
            &kind,
            expires_at,
            OrgRetention::from_column(own.as_deref()),
        ))
    }

    /// The policy of an organisation of `kind` that ends at `expires_at` (anonymous
    /// sessions) and has its own policy `own`.
    pub fn new(
        config: &RetentionConfig,
        kind: &str,
        expires_at: Option<NaiveDateTime>,
        own: OrgRetention,
    ) -> Self {
        let anonymous = kind == "anonymous";
        Self {
            config: *config,
            anonymous,
            own,
            session_end: expires_at.filter(|_| anonymous),
        }
    }

    /// How long files of `visibility` are kept.
    pub fn lifetime(&self, visibility: &str) -> Lifetime {
        self.own.for_visibility(visibility).unwrap_or_else(|| {
            if self.anonymous {
                self.config.anonymous
            } else {
                self.config.for_visibility(visibility)
            }
        })
    }

    /// Every visibility's lifetime.
    pub fn lifetimes(&self) -> Lifetimes {
        Lifetimes {
            private: self.lifetime("private"),
            org: self.lifetime("org"),
            restricted: self.lifetime("restricted"),
            public: self.lifetime("public"),
        }
    }

    /// When a file of `visibility` stored at `stored_at` expires; `None`: never.
    pub fn expiry(&self, visibility: &str, stored_at: NaiveDateTime) -> Option<NaiveDateTime> {
        let own = match self.lifetime(visibility) {
            Lifetime::Forever => None,
            Lifetime::For(duration) => Some(after(stored_at, duration)),
        };
        match (own, self.session_end) {
            (Some(own), Some(end)) => Some(own.min(end)),
            (own, end) => own.or(end),
        }
    }
}

fn after(time: NaiveDateTime, duration: Duration) -> NaiveDateTime {
    chrono::TimeDelta::from_std(duration)
        .ok()
        .and_then(|delta| time.checked_add_signed(delta))
        .unwrap_or(NaiveDateTime::MAX)
}

/// When a file of `org_id` with `visibility`, stored at `stored_at`, expires.
pub fn expiry(
    conn: &mut DbConnection,
    config: &RetentionConfig,
    org_id: &str,
    visibility: &str,
    stored_at: NaiveDateTime,
) -> QueryResult<Option<NaiveDateTime>> {
    Ok(Policy::of_org(conn, config, org_id)?.expiry(visibility, stored_at))
}

/// Sets the expiry of the file `file_id` from its organisation's policy and its
/// visibility (after the visibility changed).
pub fn refresh_file(
    conn: &mut DbConnection,
    config: &RetentionConfig,
    file_id: &str,
) -> QueryResult<()> {
    let (org_id, visibility, created_at): (String, String, NaiveDateTime) = files::table
        .find(file_id)
        .select((files::org_id, files::visibility, files::created_at))
        .first(conn)?;
    let expires_at = expiry(conn, config, &org_id, &visibility, created_at)?;
    diesel::update(files::table.find(file_id))
        .set(files::expires_at.eq(expires_at))
        .execute(conn)?;
    Ok(())
}

/// Sets the expiry of every file of `org_id` from its policy (after the policy changed);
/// the number of files whose expiry changed.
pub fn refresh_org(
    conn: &mut DbConnection,
    config: &RetentionConfig,
    org_id: &str,
) -> QueryResult<usize> {
    let policy = Policy::of_org(conn, config, org_id)?;
    let stored: Vec<(String, String, NaiveDateTime, Option<NaiveDateTime>)> = files::table
        .filter(files::org_id.eq(org_id))
        .select((
            files::id,
            files::visibility,
            files::created_at,
            files::expires_at,
        ))
        .load(conn)?;
    let mut changed = 0;
    for (id, visibility, created_at, old) in stored {
        let new = policy.expiry(&visibility, created_at);
        if new != old {
            diesel::update(files::table.find(&id))
                .set(files::expires_at.eq(new))
                .execute(conn)?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// What one sweeper round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Files deleted.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Expired files left alone because a job still reads them.
    pub in_use: usize,
}

/// Deletes expired files, their records first and then their bytes, except files a job
/// that has not finished still reads (they go in a later round).
pub async fn sweep(state: &AppState) -> Result<Swept, ApiError> {
    let (expired, in_use) = state
        .db()
        .run(|conn| {
            let time = now();
            let expired: Vec<(String, String, Option<String>, Option<i64>)> = files::table
                .filter(files::expires_at.le(time))
                .filter(files::status.ne("pending"))
                .filter(not(exists(read_by_a_job())))
                .select((
                    files::id,
                    files::org_id,
                    files::storage_key,
                    files::size_bytes,
                ))
                .order(files::expires_at.asc())
                .limit(SWEEP_BATCH)
                .load(conn)?;
            let in_use: i64 = files::table
                .filter(files::expires_at.le(time))
                .filter(exists(read_by_a_job()))
                .count()
                .get_result(conn)?;
            Ok::<_, DbError>((expired, usize::try_from(in_use).unwrap_or(0)))
        })
        .await?;
    let mut swept = Swept {
        in_use,
        ..Swept::default()
    };
    for (id, org_id, key, size) in expired {
        let file_id = id.clone();
        // Checked again as the record goes: a job created since the listing keeps it.
        let deleted = state
            .db()
            .run(move |conn| {
                diesel::delete(
                    files::table
                        .filter(files::id.eq(&file_id))
                        .filter(files::expires_at.le(now()))
                        .filter(not(exists(read_by_a_job()))),
                )
                .execute(conn)
                .map_err(DbError::from)
            })
            .await?;
        if deleted == 0 {
            continue;
        }
        // The record is gone first: bytes without a record are only wasted space (and
        // `metamorph admin recompute-usage` finds them), a record without bytes a broken
        // file.
        let key = key.unwrap_or_else(|| Storage::file_key(&org_id, &id));
        if let Err(error) = state.storage().delete(&key).await {
            tracing::warn!(%error, file_id = %id, "cannot delete the bytes of an expired file");
        }
        swept.files += 1;
        swept.bytes += size.and_then(|size| u64::try_from(size).ok()).unwrap_or(0);
    }
    Ok(swept)
}

/// Tasks reading the file of the enclosing query.
type TasksReading =
    diesel::dsl::Filter<job_tasks::table, diesel::dsl::Eq<job_tasks::input_file_id, FileId>>;
type FileId = diesel::dsl::Nullable<files::id>;

/// Unfinished tasks reading the file of the enclosing query.
fn read_by_a_job()
-> diesel::dsl::Filter<TasksReading, diesel::dsl::EqAny<job_tasks::status, [&'static str; 3]>> {
    job_tasks::table
        .filter(job_tasks::input_file_id.eq(files::id.nullable()))
        .filter(job_tasks::status.eq_any(ACTIVE_TASKS))
}

/// Deletes expired files every `retention.sweep_interval`, until the task is aborted.
pub async fn sweeper(state: AppState) {
    let mut ticker = tokio::time::interval(state.config().retention.sweep_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match sweep(&state).await {
            Ok(Swept { files: 0, .. }) => {}
            Ok(swept) => tracing::info!(
                files = swept.files,
                bytes = swept.bytes,
                in_use = swept.in_use,
                "deleted expired files"
            ),
            Err(error) => {
                tracing::warn!(error = %error.detail(), "the retention sweep failed; retrying later");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RetentionConfig {
        RetentionConfig {
            anonymous: Lifetime::For(Duration::from_secs(3600)),
            private: Lifetime::Forever,
            org: Lifetime::Forever,
            restricted: Lifetime::Forever,
            public: Lifetime::For(Duration::from_secs(7 * 86400)),
            sweep_interval: Duration::from_secs(60),
        }
    }

    fn time(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn registered_organisations_follow_the_visibility_and_their_own_policy() {
        let stored = time("2026-01-01 00:00:00");
        let mut policy = Policy {
            config: config(),
            anonymous: false,
            own: OrgRetention::default(),
            session_end: None,
        };
        assert_eq!(policy.expiry("private", stored), None);
        assert_eq!(
            policy.expiry("public", stored),
            Some(time("2026-01-08 00:00:00"))
        );
        policy.own = OrgRetention {
            private: Some(Lifetime::For(Duration::from_secs(86400))),
            public: Some(Lifetime::Forever),
            ..OrgRetention::default()
        };
        assert_eq!(
            policy.expiry("private", stored),
            Some(time("2026-01-02 00:00:00"))
        );
        assert_eq!(policy.expiry("public", stored), None);
        assert_eq!(policy.lifetime("org"), Lifetime::Forever);
    }

    #[test]
    fn anonymous_files_go_at_their_lifetime_or_with_the_session() {
        let stored = time("2026-01-01 00:00:00");
        let mut policy = Policy {
            config: config(),
            anonymous: true,
            own: OrgRetention::default(),
            session_end: Some(time("2026-01-01 00:30:00")),
        };
        assert_eq!(
            policy.expiry("public", stored),
            Some(time("2026-01-01 00:30:00"))
        );
        policy.session_end = Some(time("2026-01-02 00:00:00"));
        assert_eq!(
            policy.expiry("private", stored),
            Some(time("2026-01-01 01:00:00"))
        );
    }

    #[test]
    fn the_column_round_trips_and_an_empty_policy_is_no_value() {
        assert_eq!(OrgRetention::default().to_column(), None);
        let own = OrgRetention {
            public: Some(Lifetime::For(Duration::from_secs(7 * 86400))),
            private: Some(Lifetime::Forever),
            ..OrgRetention::default()
        };
        let column = own.to_column().unwrap();
        assert_eq!(column, r#"{"private":"forever","public":"7days"}"#);
        assert_eq!(OrgRetention::from_column(Some(&column)), own);
        assert_eq!(
            OrgRetention::from_column(Some("not json")),
            OrgRetention::default()
        );
    }
}
