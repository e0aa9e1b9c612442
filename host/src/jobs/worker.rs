//! The workers of one server: `jobs.workers` loops that claim a task, run it while renewing
//! its lease, and record what came of it; plus one loop that ends jobs past their time
//! limit, queues conversions whose input arrived, and updates the queue metrics.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use metamorph_plugin_api::FormatName;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::queue::{self, Claimed, Finish, NewOutput};
use super::spec::output_filename;
use super::{JobRecord, TaskRow};
use crate::app::AppState;
use crate::db::DbError;
use crate::db::schema::{conversion_cache, files};
use crate::error::{ApiError, ErrorCode};
use crate::files::{FileRecord, ingest};
use crate::plugins::Plan;
use crate::storage::Storage;
use crate::storage::external::{self, Target};

/// The running loops; dropped or [`Workers::stop`]ped at shutdown.
pub struct Workers {
    handles: Vec<JoinHandle<()>>,
    state: AppState,
}

/// Starts the worker loops, the maintenance loop and the callback sender.
pub fn start(state: &AppState) -> Workers {
    let config = state.config().jobs;
    let mut handles = Vec::new();
    for number in 0..config.workers {
        handles.push(tokio::spawn(work_loop(state.clone(), number)));
    }
    handles.push(tokio::spawn(maintenance_loop(state.clone())));
    handles.push(tokio::spawn(super::callbacks::send_loop(state.clone())));
    tracing::info!(
        workers = config.workers,
        owner = state.jobs().owner(),
        "job workers started"
    );
    Workers {
        handles,
        state: state.clone(),
    }
}

impl Workers {
    /// Stops the loops and hands this server's running tasks back to the queue, so another
    /// server (or this one, restarted) takes them at once instead of after their lease.
    pub async fn stop(self) {
        for handle in &self.handles {
            handle.abort();
        }
        let owner = self.state.jobs().owner().to_owned();
        let released = self
            .state
            .db()
            .run(move |conn| {
                use crate::db::schema::job_tasks;
                use diesel::prelude::*;
                diesel::update(
                    job_tasks::table
                        .filter(job_tasks::lease_owner.eq(&owner))
                        .filter(job_tasks::status.eq("processing")),
                )
                .set((
                    job_tasks::status.eq("queued"),
                    job_tasks::lease_owner.eq(None::<String>),
                    job_tasks::lease_expires_at.eq(None::<chrono::NaiveDateTime>),
                    job_tasks::attempts.eq(job_tasks::attempts - 1),
                ))
                .execute(conn)
                .map_err(DbError::from)
            })
            .await;
        match released {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "running tasks handed back to the queue"),
            Err(error) => {
                tracing::warn!(%error, "cannot hand running tasks back; their leases will expire");
            }
        }
    }
}

async fn work_loop(state: AppState, number: usize) {
    let config = state.config().jobs;
    let runtime = state.jobs();
    loop {
        let skip = runtime.full_pairs(config.max_running_per_pair);
        let owner = runtime.owner().to_owned();
        let claim_state = state.clone();
        let claimed = state
            .db()
            .run(move |conn| queue::claim(conn, &claim_state, &owner, config.lease, &skip))
            .await;
        match claimed {
            Ok(Some(Claimed::Task(task))) => {
                runtime.started(&task.pair);
                state.metrics().task_started(&task.pair);
                let started = Instant::now();
                let outcome = run_with_heartbeat(&state, &task).await;
                let took = started.elapsed();
                runtime.ended(&task.pair, took);
                state
                    .metrics()
                    .task_ended(&task.pair, outcome_label(&outcome), took);
                record(&state, &task, outcome).await;
            }
            Ok(Some(Claimed::GaveUp)) => {}
            Ok(None) => runtime.idle(config.poll_interval).await,
            Err(error) => {
                tracing::warn!(worker = number, %error, "cannot claim a task; retrying");
                tokio::time::sleep(config.poll_interval).await;
            }
        }
    }
}

async fn maintenance_loop(state: AppState) {
    let interval = state
        .config()
        .jobs
        .poll_interval
        .max(Duration::from_millis(200));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let work = state.clone();
        let result = state
            .db()
            .run(move |conn| -> Result<Vec<(String, i64)>, ApiError> {
                queue::expire_deadlines(conn, &work)?;
                queue::promote_ready_inputs(conn, &work)?;
                Ok(queue::queue_depths(conn)?)
            })
            .await;
        match result {
            Ok(depths) => {
                state.metrics().set_queue_depths(&depths);
                if depths.iter().any(|(_, count)| *count > 0) {
                    state.jobs().wake();
                }
            }
            Err(error) => tracing::warn!(%error, "job maintenance failed; retrying"),
        }
    }
}

/// What running a task came to.
enum Outcome {
    /// Done; the file made, if any.
    Done(Option<NewOutput>),
    /// Failed, with the code and message the job shows.
    Failed(ErrorCode, String),
    /// The lease was lost meanwhile (canceled, or taken over): throw the work away.
    Lost,
}

fn outcome_label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Done(Some(output)) if output.cached => "cached",
        Outcome::Done(_) => "completed",
        Outcome::Failed(..) => "failed",
        Outcome::Lost => "lost",
    }
}

impl From<ApiError> for Outcome {
    fn from(error: ApiError) -> Self {
        if error.code() == ErrorCode::Internal {
            tracing::error!(error = %error.detail(), "a task failed inside the service");
        }
        Self::Failed(error.code(), error.detail().to_owned())
    }
}

/// Runs the task, renewing its lease every third of it; stops waiting (and reports
/// [`Outcome::Lost`]) when the lease cannot be renewed because the task is no longer ours.
async fn run_with_heartbeat(state: &AppState, task: &TaskRow) -> Outcome {
    let lease = state.config().jobs.lease;
    let beat = state.clone();
    let (task_id, owner) = (task.id.clone(), state.jobs().owner().to_owned());
    let heartbeat = async move {
        loop {
            tokio::time::sleep(lease / 3).await;
            let (task_id, owner) = (task_id.clone(), owner.clone());
            match beat
                .db()
                .run(move |conn| queue::heartbeat(conn, &task_id, &owner, lease))
                .await
            {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => tracing::warn!(%error, "cannot renew a task's lease; retrying"),
            }
        }
    };
    tokio::select! {
        outcome = run(state, task) => outcome,
        () = heartbeat => {
            // The conversion is abandoned mid-way: its folder goes (a plugin still running
            // on the blocking pool then fails to write into it, and nothing is recorded).
            let _ = tokio::fs::remove_dir_all(work_folder(state, task)).await;
            Outcome::Lost
        }
    }
}

async fn run(state: &AppState, task: &TaskRow) -> Outcome {
    let (job_id, input_id) = (task.job_id.clone(), task.input_file_id.clone());
    let loaded = state
        .db()
        .run(move |conn| -> Result<_, DbError> {
            let job = super::load_any(conn, &job_id)?;
            let input = match input_id {
                Some(id) => crate::files::find(conn, &id)?,
                None => None,
            };
            Ok((job, input))
        })
        .await;
    let (job, input) = match loaded {
        Ok((Some(job), Some(input))) => (job, input),
        Ok(_) => {
            return Outcome::Failed(
                ErrorCode::NotFound,
                "the job or its input was deleted".into(),
            );
        }
        Err(error) => return ApiError::from(error).into(),
    };
    if task.kind == "import" {
        return match super::remote::import(state, &job, &input).await {
            Ok(()) => Outcome::Done(None),
            Err(error) => error.into(),
        };
    }
    match convert(state, task, &job, &input).await {
        Ok(output) => Outcome::Done(Some(output)),
        Err(error) => error.into(),
    }
}

/// The cache key of a conversion: input bytes, each step's plugin and version, formats and
/// options (serialised with sorted keys).
pub fn cache_key(input_sha256: &str, plan: &Plan) -> String {
    let steps: Vec<Value> = plan
        .steps
        .iter()
        .map(|step| {
            serde_json::json!([
                step.plugin.name(),
                step.plugin.described.info.version,
                step.source.as_str(),
                step.target.as_str(),
                step.options,
            ])
        })
        .collect();
    let text = serde_json::json!([input_sha256, steps]).to_string();
    ingest::hex(&Sha256::digest(text.as_bytes()))
}

async fn convert(
    state: &AppState,
    task: &TaskRow,
    job: &JobRecord,
    input: &FileRecord,
) -> Result<NewOutput, ApiError> {
    let index = usize::try_from(task.conversion_index.unwrap_or(0)).unwrap_or(0);
    let conversion = job
        .spec
        .conversions
        .get(index)
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "the job lost a conversion"))?;
    if input.status != "ready" {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "the input is not stored (it was deleted, or its upload never finished)",
        ));
    }
    let plan = super::plan(state, input, index, conversion)?;
    let (Some(sha256), Some(key), Some(size)) =
        (&input.sha256, &input.storage_key, input.size_bytes)
    else {
        return Err(ApiError::new(
            ErrorCode::Internal,
            "the input's record is incomplete",
        ));
    };
    let size = u64::try_from(size).unwrap_or(0);
    let target = FormatName::parse(&conversion.target)
        .map_err(|error| ApiError::new(ErrorCode::UnsupportedConversion, error.to_string()))?;
    let file_id = uuid::Uuid::now_v7().to_string();
    let storage_key = Storage::file_key(&task.org_id, &file_id);
    let export_to = super::targets::of_conversion(state, &task.org_id, conversion).await?;
    let keep = conversion.keep_copy || export_to.is_none();
    let work = Work {
        state,
        job,
        task,
        input,
        conversion,
    };
    let mut output = NewOutput {
        file_id,
        storage_key: storage_key.clone(),
        filename: output_filename(&input.filename, conversion),
        format: target.as_str().to_owned(),
        size: 0,
        sha256: String::new(),
        cached: false,
        cache_key: None,
        kept: keep,
        export: None,
    };
    let cache_key = cache_key(sha256, &plan);
    if state.config().jobs.cache {
        if let Some(hit) = cached(state, &task.org_id, &cache_key).await? {
            let hit_key = hit.storage_key.clone().unwrap_or_default();
            output.size = u64::try_from(hit.size_bytes.unwrap_or(0)).unwrap_or(0);
            output.sha256 = hit.sha256.unwrap_or_default();
            output.cached = true;
            if keep {
                state.storage().copy(&hit_key, &storage_key).await?;
            }
            if export_to.is_some() {
                let body = state.storage().read_range(&hit_key, 0..output.size).await?;
                let source = Source::Stream(Box::pin(body));
                export(&work, &mut output, export_to.as_ref(), source).await?;
            }
            return Ok(output);
        }
        if keep {
            output.cache_key = Some(cache_key);
        }
    }

    let folder = work_folder(state, task);
    let result = async {
        let output_path = convert_in(
            state,
            &plan,
            key,
            size,
            &folder,
            &input_format(&plan),
            &target,
        )
        .await?;
        if keep {
            let stored = ingest::store_file(state.storage(), &storage_key, &output_path, u64::MAX)
                .await
                .map_err(|refused| {
                    refused.into_api(|_| ApiError::new(ErrorCode::Internal, "unreachable"))
                })?;
            output.size = stored.size;
            output.sha256 = stored.sha256;
        }
        export(
            &work,
            &mut output,
            export_to.as_ref(),
            Source::File(&output_path),
        )
        .await?;
        Ok::<(), ApiError>(())
    }
    .await;
    if let Err(error) = tokio::fs::remove_dir_all(&folder).await {
        tracing::warn!(folder = %folder.display(), %error, "cannot remove a task folder");
    }
    result?;
    Ok(output)
}

/// Where an exported output's bytes come from.
enum Source<'a> {
    /// The converted file, still in the task's folder.
    File(&'a Path),
    /// A stored object (a cached output).
    Stream(
        std::pin::Pin<Box<dyn futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send>>,
    ),
}

/// What a conversion task works on.
struct Work<'a> {
    state: &'a AppState,
    job: &'a JobRecord,
    task: &'a TaskRow,
    input: &'a FileRecord,
    conversion: &'a super::spec::Conversion,
}

/// Writes an output to its destination, if it has one, under its key template, and
/// records where (destination, type, path); an output kept nowhere else takes its size
/// and hash from this write. When the write fails, the copy kept in storage is deleted
/// and the output fails with the write's error.
async fn export(
    work: &Work<'_>,
    output: &mut NewOutput,
    to: Option<&(Target, Option<String>)>,
    source: Source<'_>,
) -> Result<(), ApiError> {
    let Some((target, destination_id)) = to else {
        return Ok(());
    };
    match write_export(work, output, target, destination_id.as_deref(), source).await {
        Ok((export, written)) => {
            output.export = Some(export);
            if !output.kept {
                output.size = written.size;
                output.sha256 = written.sha256;
            }
            Ok(())
        }
        Err(error) => {
            if output.kept {
                let _ = work.state.storage().delete(&output.storage_key).await;
            }
            Err(error)
        }
    }
}

async fn write_export(
    work: &Work<'_>,
    output: &NewOutput,
    target: &Target,
    destination_id: Option<&str>,
    source: Source<'_>,
) -> Result<(Value, external::Written), ApiError> {
    let Work {
        state,
        job,
        task,
        input,
        conversion,
    } = *work;
    let template = conversion
        .key_template
        .as_deref()
        .unwrap_or(external::DEFAULT_KEY_TEMPLATE);
    let path = external::render_key(
        template,
        &external::KeyValues {
            job_id: &job.row.id,
            output_id: &output.file_id,
            input_name: &input.filename,
            filename: &output.filename,
            ext: &output.format,
            input_index: usize::try_from(task.input_index).unwrap_or(0),
            now: chrono::Utc::now(),
        },
    );
    let opened = target
        .open(state.config().jobs.allow_private_networks)
        .await?;
    let written = match source {
        Source::File(file) => opened.write_file(&path, file).await?,
        Source::Stream(body) => opened.write_stream(&path, body).await?,
    };
    tracing::info!(
        job = %job.row.id,
        service = target.service.as_str(),
        destination = destination_id.unwrap_or("inline"),
        path = %path,
        bytes = written.size,
        "output written to its destination"
    );
    let export = serde_json::json!({
        "destination_id": destination_id,
        "type": target.service.as_str(),
        "path": path,
    });
    Ok((export, written))
}

/// The folder a conversion task stages its input and output in.
fn work_folder(state: &AppState, task: &TaskRow) -> PathBuf {
    state
        .config()
        .plugins
        .work_dir
        .join(format!("job-{}", task.id))
}

fn input_format(plan: &Plan) -> String {
    plan.steps
        .first()
        .map_or_else(String::new, |step| step.source.as_str().to_owned())
}

/// Runs the plan on the input, staged in `folder`; returns the output's local path.
async fn convert_in(
    state: &AppState,
    plan: &Plan,
    input_key: &str,
    input_size: u64,
    folder: &Path,
    source: &str,
    target: &FormatName,
) -> Result<PathBuf, ApiError> {
    tokio::fs::create_dir_all(folder)
        .await
        .map_err(ApiError::internal)?;
    let input_path = folder.join(format!("input.{source}"));
    let output_path: PathBuf = folder.join(format!("output.{target}"));
    ingest::fetch_to_file(state.storage(), input_key, input_size, &input_path).await?;
    let (plugins, plan_owned, from, to) = (
        state.plugins().clone(),
        plan.clone(),
        input_path.clone(),
        output_path.clone(),
    );
    tokio::task::spawn_blocking(move || plugins.run(&plan_owned, &from, &to, &|_| {}))
        .await
        .map_err(ApiError::internal)??;
    Ok(output_path)
}

/// The ready output stored under `cache_key` for `org_id`, if any.
async fn cached(
    state: &AppState,
    org_id: &str,
    cache_key: &str,
) -> Result<Option<FileRecord>, ApiError> {
    let (org_id, cache_key) = (org_id.to_owned(), cache_key.to_owned());
    Ok(state
        .db()
        .run(move |conn| {
            use diesel::prelude::*;
            conversion_cache::table
                .inner_join(files::table.on(files::id.eq(conversion_cache::file_id)))
                .filter(conversion_cache::org_id.eq(&org_id))
                .filter(conversion_cache::cache_key.eq(&cache_key))
                .filter(files::status.eq("ready"))
                .select(FileRecord::as_select())
                .first(conn)
                .optional()
                .map_err(DbError::from)
        })
        .await?)
}

/// Records the outcome; throws away an output that cannot be recorded.
async fn record(state: &AppState, task: &TaskRow, outcome: Outcome) {
    let owner = state.jobs().owner().to_owned();
    let (writer, task_owned) = (state.clone(), task.clone());
    let result = match outcome {
        Outcome::Lost => Ok(Finish::Lost),
        Outcome::Failed(code, message) => {
            state
                .db()
                .run(move |conn| {
                    queue::fail_owned(conn, &writer, &task_owned, &owner, code, &message)
                })
                .await
        }
        Outcome::Done(output) => {
            let kept = output.clone();
            let recorded = state
                .db()
                .run(move |conn| {
                    queue::complete(conn, &writer, &task_owned, &owner, output.as_ref())
                })
                .await;
            if !matches!(recorded, Ok(Finish::Recorded))
                && let Some(output) = &kept
            {
                let _ = state.storage().delete(&output.storage_key).await;
            }
            match recorded {
                Err(error) if error.code() != ErrorCode::Internal => {
                    // The output could not be kept (the quota is full): the task fails.
                    let (writer, task_owned, owner) =
                        (state.clone(), task.clone(), state.jobs().owner().to_owned());
                    let (code, message) = (error.code(), error.detail().to_owned());
                    state
                        .db()
                        .run(move |conn| {
                            queue::fail_owned(conn, &writer, &task_owned, &owner, code, &message)
                        })
                        .await
                }
                other => other,
            }
        }
    };
    match result {
        Ok(Finish::Recorded) => {}
        Ok(Finish::Lost) => tracing::info!(
            task = %task.id,
            job = %task.job_id,
            "a task's result was dropped: the job was canceled or the task taken over"
        ),
        Err(error) => tracing::error!(task = %task.id, %error, "cannot record a task's outcome"),
    }
}
