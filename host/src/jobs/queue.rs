//! The queue: claiming tasks with a lease, renewing it, finishing tasks and settling their
//! job, all as conditional updates that hold on either database when several servers
//! share it.
//!
//! A claim is `UPDATE … WHERE id = ? AND (status = 'queued' OR lease expired)`: of two
//! workers that pick the same row, the second's update finds the row changed and touches
//! nothing. A finish is fenced the same way by `lease_owner`: a worker that lost its lease
//! (it stalled, another took the task over) cannot overwrite the new owner's work.

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{JobRecord, TaskRow, callbacks, is_terminal};
use crate::app::AppState;
use crate::db::schema::{conversion_cache, files, job_tasks, jobs};
use crate::db::{DbConnection, DbError, now};
use crate::error::{ApiError, ApiResult, ErrorCode};

/// Claims of one task after which it fails as `worker_lost` instead of running again: an
/// input that kills its server every time must not take servers down for ever.
pub const MAX_ATTEMPTS: i32 = 3;

fn later(time: NaiveDateTime, by: Duration) -> NaiveDateTime {
    time + chrono::Duration::from_std(by).unwrap_or(chrono::Duration::seconds(30))
}

/// Takes the job's row lock (a no-op update), so that concurrent finishes of its tasks
/// settle it one after the other.
pub fn lock_job(conn: &mut DbConnection, job_id: &str) -> Result<(), DbError> {
    diesel::update(jobs::table.find(job_id))
        .set(jobs::id.eq(job_id))
        .execute(conn)?;
    Ok(())
}

/// Cancels the unfinished tasks of `job_id` (a running one's result will be thrown away:
/// its worker no longer holds it).
pub fn cancel_unfinished(
    conn: &mut DbConnection,
    job_id: &str,
    time: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::update(
        job_tasks::table
            .filter(job_tasks::job_id.eq(job_id))
            .filter(job_tasks::status.eq_any(["waiting", "queued", "processing"])),
    )
    .set((
        job_tasks::status.eq("canceled"),
        job_tasks::lease_owner.eq(None::<String>),
        job_tasks::finished_at.eq(time),
    ))
    .execute(conn)?;
    Ok(())
}

/// Refuses new queued tasks (429 `queue_full`, with `Retry-After`) when a pair's queue
/// would pass `jobs.max_queued_per_pair`.
pub fn check_room(conn: &mut DbConnection, state: &AppState, tasks: &[TaskRow]) -> ApiResult<()> {
    let config = state.config().jobs;
    let mut adding: std::collections::BTreeMap<&str, usize> = Default::default();
    for task in tasks.iter().filter(|task| task.status == "queued") {
        *adding.entry(task.pair.as_str()).or_default() += 1;
    }
    for (pair, count) in adding {
        let queued: i64 = job_tasks::table
            .filter(job_tasks::status.eq("queued"))
            .filter(job_tasks::pair.eq(pair))
            .count()
            .get_result(conn)
            .map_err(DbError::from)?;
        let queued = usize::try_from(queued).unwrap_or(usize::MAX);
        if queued + count > config.max_queued_per_pair {
            let wait = state.jobs().retry_after(pair, queued);
            state.metrics().queue_refused(pair);
            return Err(ApiError::new(
                ErrorCode::QueueFull,
                format!(
                    "{queued} conversions `{pair}` are waiting, the most this service queues \
                     is {}; nothing was created, send the request again in {wait} s",
                    config.max_queued_per_pair
                ),
            )
            .with_header(http::header::RETRY_AFTER, http::HeaderValue::from(wait)));
        }
    }
    Ok(())
}

/// What a claim found.
pub enum Claimed {
    /// A task to run.
    Task(Box<TaskRow>),
    /// A task claimed too many times, now failed.
    GaveUp,
}

/// Claims the oldest queued task (or one whose lease ended) not of `skip_pairs`, for
/// `owner`, and marks its job `processing`.
pub fn claim(
    conn: &mut DbConnection,
    state: &AppState,
    owner: &str,
    lease: Duration,
    skip_pairs: &[String],
) -> ApiResult<Option<Claimed>> {
    let time = now();
    let claimable = || {
        job_tasks::status.eq("queued").or(job_tasks::status
            .eq("processing")
            .and(job_tasks::lease_expires_at.lt(time)))
    };
    let candidates: Vec<String> = job_tasks::table
        .filter(claimable())
        .filter(job_tasks::pair.ne_all(skip_pairs))
        .order((job_tasks::queued_at.asc(), job_tasks::id.asc()))
        .select(job_tasks::id)
        .limit(8)
        .load(conn)
        .map_err(DbError::from)?;
    for id in candidates {
        let claimed = crate::db::write_transaction(conn, |conn| -> ApiResult<Option<Claimed>> {
            let taken = diesel::update(job_tasks::table.find(&id).filter(claimable()))
                .set((
                    job_tasks::status.eq("processing"),
                    job_tasks::lease_owner.eq(owner),
                    job_tasks::lease_expires_at.eq(later(time, lease)),
                    job_tasks::attempts.eq(job_tasks::attempts + 1),
                    job_tasks::started_at.eq(time),
                ))
                .execute(conn)
                .map_err(DbError::from)?;
            if taken == 0 {
                return Ok(None);
            }
            let task: TaskRow = job_tasks::table
                .find(&id)
                .select(TaskRow::as_select())
                .first(conn)
                .map_err(DbError::from)?;
            lock_job(conn, &task.job_id)?;
            if task.attempts > MAX_ATTEMPTS {
                fail(
                    conn,
                    state,
                    &task,
                    ErrorCode::WorkerLost,
                    &format!(
                        "the task was started {MAX_ATTEMPTS} times and its server stopped each \
                         time; the input may crash the converter"
                    ),
                )?;
                return Ok(Some(Claimed::GaveUp));
            }
            let started = diesel::update(
                jobs::table
                    .find(&task.job_id)
                    .filter(jobs::status.eq("queued")),
            )
            .set((
                jobs::status.eq("processing"),
                jobs::started_at.eq(time),
                jobs::updated_at.eq(time),
            ))
            .execute(conn)
            .map_err(DbError::from)?;
            if started == 1 {
                let spec: String = jobs::table
                    .find(&task.job_id)
                    .select(jobs::spec)
                    .first(conn)
                    .map_err(DbError::from)?;
                let spec = super::spec::JobSpec::parse(&spec);
                if let Some(seconds) = spec.limits.job.max_process_time {
                    diesel::update(jobs::table.find(&task.job_id))
                        .set(jobs::deadline_at.eq(later(time, Duration::from_secs(seconds))))
                        .execute(conn)
                        .map_err(DbError::from)?;
                }
                if spec.notify_status {
                    callbacks::record(conn, state, &task.job_id, "job.processing")?;
                }
            }
            Ok(Some(Claimed::Task(Box::new(task))))
        })?;
        if claimed.is_some() {
            return Ok(claimed);
        }
    }
    Ok(None)
}

/// Renews the lease of `task_id`; `false` when the task is no longer this worker's (it was
/// canceled, or another worker took it over).
pub fn heartbeat(
    conn: &mut DbConnection,
    task_id: &str,
    owner: &str,
    lease: Duration,
) -> Result<bool, DbError> {
    let renewed = diesel::update(
        job_tasks::table
            .find(task_id)
            .filter(job_tasks::lease_owner.eq(owner))
            .filter(job_tasks::status.eq("processing")),
    )
    .set(job_tasks::lease_expires_at.eq(later(now(), lease)))
    .execute(conn)?;
    Ok(renewed == 1)
}

/// A file a task made, to record with its completion.
#[derive(Clone, Debug)]
pub struct NewOutput {
    /// Its id (its storage key is derived from it).
    pub file_id: String,
    /// Where its bytes are.
    pub storage_key: String,
    /// Its name.
    pub filename: String,
    /// Its format.
    pub format: String,
    /// Its size.
    pub size: u64,
    /// Its SHA-256.
    pub sha256: String,
    /// Taken from the cache rather than converted.
    pub cached: bool,
    /// The cache key it is kept under (`None`: not cached).
    pub cache_key: Option<String>,
    /// Whether it is kept in storage (with a file record); `false` when it was written
    /// to a destination only.
    pub kept: bool,
    /// Where it was written besides (destination, type, path).
    pub export: Option<serde_json::Value>,
}

/// Why a finish was not recorded.
#[derive(Debug, PartialEq, Eq)]
pub enum Finish {
    /// Recorded.
    Recorded,
    /// The task is no longer this worker's; its work is to be thrown away.
    Lost,
}

/// Records the success of `task` (with the file it made, if any) and settles its job.
pub fn complete(
    conn: &mut DbConnection,
    state: &AppState,
    task: &TaskRow,
    owner: &str,
    output: Option<&NewOutput>,
) -> ApiResult<Finish> {
    crate::db::write_transaction(conn, |conn| {
        let time = now();
        lock_job(conn, &task.job_id)?;
        let job = super::load_any(conn, &task.job_id)
            .map_err(DbError::from)?
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "the job is gone"))?;
        if let Some(output) = output.filter(|output| output.kept) {
            let config = state.config().files;
            let quota = crate::files::quota(conn, &task.org_id, &config).map_err(DbError::from)?;
            let used = crate::files::bytes_used(conn, &task.org_id, &output.file_id)
                .map_err(DbError::from)?;
            if used.saturating_add(output.size) > quota {
                return Err(ApiError::new(
                    ErrorCode::QuotaExceeded,
                    format!(
                        "the output is {} bytes and the organisation's quota has {} left",
                        output.size,
                        quota.saturating_sub(used)
                    ),
                ));
            }
            let visibility = job.spec.visibility.as_deref().unwrap_or("private");
            let expires_at = crate::files::retention::expiry(
                conn,
                &state.config().retention,
                &task.org_id,
                visibility,
                time,
            )
            .map_err(DbError::from)?;
            diesel::insert_into(files::table)
                .values((
                    files::id.eq(&output.file_id),
                    files::org_id.eq(&task.org_id),
                    files::owner_id.eq(&job.row.created_by),
                    files::filename.eq(&output.filename),
                    files::format.eq(&output.format),
                    files::size_bytes.eq(i64::try_from(output.size).unwrap_or(i64::MAX)),
                    files::sha256.eq(&output.sha256),
                    files::storage_key.eq(&output.storage_key),
                    files::status.eq("ready"),
                    files::visibility.eq(visibility),
                    files::origin.eq("output"),
                    files::created_at.eq(time),
                    files::updated_at.eq(time),
                    files::expires_at.eq(expires_at),
                    files::max_downloads.eq(job.spec.limits.output.max_downloads),
                ))
                .execute(conn)
                .map_err(DbError::from)?;
            if let Some(key) = &output.cache_key {
                diesel::delete(
                    conversion_cache::table
                        .filter(conversion_cache::org_id.eq(&task.org_id))
                        .filter(conversion_cache::cache_key.eq(key)),
                )
                .execute(conn)
                .map_err(DbError::from)?;
                diesel::insert_into(conversion_cache::table)
                    .values((
                        conversion_cache::org_id.eq(&task.org_id),
                        conversion_cache::cache_key.eq(key),
                        conversion_cache::file_id.eq(&output.file_id),
                        conversion_cache::created_at.eq(time),
                    ))
                    .execute(conn)
                    .map_err(DbError::from)?;
            }
        }
        let recorded = diesel::update(
            job_tasks::table
                .find(&task.id)
                .filter(job_tasks::lease_owner.eq(owner))
                .filter(job_tasks::status.eq("processing")),
        )
        .set((
            job_tasks::status.eq("completed"),
            job_tasks::output_file_id.eq(output
                .filter(|output| output.kept)
                .map(|output| output.file_id.clone())),
            job_tasks::export.eq(output.and_then(|output| {
                output.export.as_ref().map(|export| {
                    let mut export = export.clone();
                    if !output.kept {
                        export["filename"] = output.filename.clone().into();
                        export["size"] = output.size.into();
                        export["sha256"] = output.sha256.clone().into();
                    }
                    export.to_string()
                })
            })),
            job_tasks::cached.eq(output.is_some_and(|output| output.cached)),
            job_tasks::lease_owner.eq(None::<String>),
            job_tasks::finished_at.eq(time),
        ))
        .execute(conn)
        .map_err(DbError::from)?;
        if recorded == 0 {
            // Roll back the output record too.
            return Err(ApiError::new(ErrorCode::Conflict, LOST));
        }
        if task.kind == "import"
            && let Some(file_id) = &task.input_file_id
        {
            super::input_ready(conn, state, file_id)?;
        }
        settle(conn, state, &task.job_id)?;
        Ok(Finish::Recorded)
    })
    .or_else(|error: ApiError| {
        if error.code() == ErrorCode::Conflict && error.detail() == LOST {
            Ok(Finish::Lost)
        } else {
            Err(error)
        }
    })
}

const LOST: &str = "the task is no longer this worker's";

/// Records the failure of `task` (fenced by `owner` when given) and settles its job.
pub fn fail_owned(
    conn: &mut DbConnection,
    state: &AppState,
    task: &TaskRow,
    owner: &str,
    code: ErrorCode,
    message: &str,
) -> ApiResult<Finish> {
    crate::db::write_transaction(conn, |conn| {
        lock_job(conn, &task.job_id)?;
        let mine = job_tasks::table
            .find(&task.id)
            .filter(job_tasks::lease_owner.eq(owner))
            .filter(job_tasks::status.eq("processing"))
            .count()
            .get_result::<i64>(conn)
            .map_err(DbError::from)?;
        if mine == 0 {
            return Ok(Finish::Lost);
        }
        fail(conn, state, task, code, message)?;
        Ok(Finish::Recorded)
    })
}

/// Marks `task` failed and settles its job. The job's lock is held by the caller.
fn fail(
    conn: &mut DbConnection,
    state: &AppState,
    task: &TaskRow,
    code: ErrorCode,
    message: &str,
) -> ApiResult<()> {
    let time = now();
    diesel::update(job_tasks::table.find(&task.id))
        .set((
            job_tasks::status.eq("failed"),
            job_tasks::error_code.eq(code.as_str()),
            job_tasks::error_message.eq(message),
            job_tasks::lease_owner.eq(None::<String>),
            job_tasks::finished_at.eq(time),
        ))
        .execute(conn)
        .map_err(DbError::from)?;
    if task.kind == "import" {
        // The conversions of an input that never arrived fail with it.
        diesel::update(
            job_tasks::table
                .filter(job_tasks::job_id.eq(&task.job_id))
                .filter(job_tasks::input_file_id.eq(&task.input_file_id))
                .filter(job_tasks::status.eq("waiting")),
        )
        .set((
            job_tasks::status.eq("failed"),
            job_tasks::error_code.eq(code.as_str()),
            job_tasks::error_message.eq(format!("the input was not fetched: {message}")),
            job_tasks::finished_at.eq(time),
        ))
        .execute(conn)
        .map_err(DbError::from)?;
    }
    settle(conn, state, &task.job_id)
}

/// Ends the job if its tasks say it is over: failed at the first failure when
/// `fail_on_conversion_error` (the rest canceled), otherwise once every task has ended —
/// completed if any conversion succeeded. The job's lock is held by the caller.
pub fn settle(conn: &mut DbConnection, state: &AppState, job_id: &str) -> ApiResult<()> {
    let Some(JobRecord {
        row, spec, tasks, ..
    }) = super::load_any(conn, job_id).map_err(DbError::from)?
    else {
        return Ok(());
    };
    if is_terminal(&row.status) || row.status == "created" {
        return Ok(());
    }
    let time = now();
    let first_failure = tasks.iter().find(|task| task.status == "failed");
    let describe = |task: &TaskRow| {
        let what = match &task.target {
            Some(target) => format!("converting input {} to {target}", task.input_index),
            None => format!("fetching input {}", task.input_index),
        };
        format!(
            "{what} failed: {}",
            task.error_message.as_deref().unwrap_or("no reason given")
        )
    };
    let (status, info) =
        if let (Some(failure), true) = (first_failure, spec.fail_on_conversion_error) {
            cancel_unfinished(conn, job_id, time)?;
            ("failed", Some(describe(failure)))
        } else if tasks.iter().all(|task| is_terminal(&task.status)) {
            let conversions = tasks.iter().filter(|task| task.kind == "convert");
            let (done, total) = conversions.fold((0, 0), |(done, total), task| {
                (done + usize::from(task.status == "completed"), total + 1)
            });
            match (done, first_failure) {
                (0, Some(failure)) => ("failed", Some(describe(failure))),
                (0, None) => ("failed", Some("no conversion completed".to_owned())),
                (done, Some(_)) => (
                    "completed",
                    Some(format!(
                        "{done} of {total} conversions completed; `errors` lists the others"
                    )),
                ),
                (_, None) => ("completed", None),
            }
        } else {
            return Ok(());
        };
    diesel::update(jobs::table.find(job_id))
        .set((
            jobs::status.eq(status),
            jobs::status_info.eq(info),
            jobs::finished_at.eq(time),
            jobs::updated_at.eq(time),
        ))
        .execute(conn)
        .map_err(DbError::from)?;
    state.jobs().finished(job_id);
    callbacks::record(conn, state, job_id, &format!("job.{status}"))
}

/// Fails the running jobs past their `max_process_time`; their ids.
pub fn expire_deadlines(conn: &mut DbConnection, state: &AppState) -> ApiResult<Vec<String>> {
    let late: Vec<(String, Option<String>)> = jobs::table
        .filter(jobs::status.eq("processing"))
        .filter(jobs::deadline_at.lt(now()))
        .select((jobs::id, jobs::spec))
        .load::<(String, String)>(conn)
        .map_err(DbError::from)?
        .into_iter()
        .map(|(id, spec)| {
            let seconds = super::spec::JobSpec::parse(&spec)
                .limits
                .job
                .max_process_time;
            (id, seconds.map(|seconds| seconds.to_string()))
        })
        .collect();
    let mut expired = Vec::new();
    for (job_id, seconds) in late {
        crate::db::write_transaction(conn, |conn| -> ApiResult<()> {
            let time = now();
            lock_job(conn, &job_id)?;
            let message = format!(
                "the job ran past its limits.job.max_process_time of {} s",
                seconds.as_deref().unwrap_or("?")
            );
            diesel::update(
                job_tasks::table
                    .filter(job_tasks::job_id.eq(&job_id))
                    .filter(job_tasks::status.eq_any(["waiting", "queued", "processing"])),
            )
            .set((
                job_tasks::status.eq("failed"),
                job_tasks::error_code.eq(ErrorCode::JobTimedOut.as_str()),
                job_tasks::error_message.eq(&message),
                job_tasks::lease_owner.eq(None::<String>),
                job_tasks::finished_at.eq(time),
            ))
            .execute(conn)
            .map_err(DbError::from)?;
            let changed = diesel::update(
                jobs::table
                    .find(&job_id)
                    .filter(jobs::status.eq("processing")),
            )
            .set((
                jobs::status.eq("failed"),
                jobs::status_info.eq(&message),
                jobs::finished_at.eq(time),
                jobs::updated_at.eq(time),
            ))
            .execute(conn)
            .map_err(DbError::from)?;
            if changed == 1 {
                state.jobs().finished(&job_id);
                callbacks::record(conn, state, &job_id, "job.failed")?;
            }
            Ok(())
        })?;
        expired.push(job_id);
    }
    Ok(expired)
}

/// Queues waiting conversions whose input is stored (normally done when the input arrives;
/// this catches a server that stopped in between).
pub fn promote_ready_inputs(conn: &mut DbConnection, state: &AppState) -> ApiResult<()> {
    let ready: Vec<String> = job_tasks::table
        .inner_join(files::table.on(files::id.nullable().eq(job_tasks::input_file_id)))
        .filter(job_tasks::status.eq("waiting"))
        .filter(job_tasks::kind.eq("convert"))
        .filter(files::status.eq("ready"))
        .select(files::id)
        .distinct()
        .limit(100)
        .load(conn)
        .map_err(DbError::from)?;
    for file_id in ready {
        crate::db::write_transaction(conn, |conn| super::input_ready(conn, state, &file_id))?;
    }
    Ok(())
}

/// Queued tasks per pair, for the metrics.
pub fn queue_depths(conn: &mut DbConnection) -> Result<Vec<(String, i64)>, DbError> {
    Ok(job_tasks::table
        .filter(job_tasks::status.eq("queued"))
        .group_by(job_tasks::pair)
        .select((job_tasks::pair, diesel::dsl::count_star()))
        .load(conn)?)
}
