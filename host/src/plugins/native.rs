//! Native plugins run in worker processes of the `metamorph` binary, never in the server:
//! a segfault, abort or runaway allocation in C code ends one worker, and the task fails
//! with a typed error while the server goes on.
//!
//! Each worker loads one library (`metamorph plugin-worker --library …`) under resource
//! limits (data size, file size, no core dumps) and answers requests, one JSON line each,
//! on its standard input and output. Idle workers are kept for the next task; a worker
//! that crashed or ran past its time is discarded.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use metamorph_plugin_api::{ConvertError, PluginInfo};
use serde::{Deserialize, Serialize};

use super::limits::Limits;
use super::{PluginError, TaskFiles};

/// A request to a worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum WorkerRequest {
    /// Describe the plugin.
    Describe,
    /// Convert a file.
    Convert {
        /// Input file.
        input: PathBuf,
        /// Output file.
        output: PathBuf,
        /// Input format.
        source: String,
        /// Output format.
        target: String,
        /// Options (JSON text).
        options: String,
    },
    /// Make an example file.
    Template {
        /// Its format.
        format: String,
    },
}

/// A worker's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum WorkerResponse {
    /// It worked; `info` for describe, `bytes` (base64) for template.
    Ok {
        /// The description.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        info: Option<PluginInfo>,
        /// Template bytes, base64.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes: Option<String>,
    },
    /// The plugin returned an error.
    Error {
        /// The error.
        error: ConvertError,
    },
    /// The plugin panicked (Rust) or reported a failure of its own.
    Panic {
        /// What it said.
        message: String,
    },
}

/// A native plugin: its library and its pool of idle workers.
pub struct NativePlugin {
    library: PathBuf,
    idle: Mutex<Vec<Worker>>,
    max_idle: usize,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    limits: Limits,
}

impl NativePlugin {
    /// Starts a worker for `library`, asks it to describe the plugin, and keeps it.
    pub fn load(
        library: &Path,
        limits: &Limits,
        max_idle: usize,
    ) -> Result<(Self, PluginInfo), String> {
        let plugin = Self {
            library: library.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            max_idle: max_idle.max(1),
        };
        let describe_limits = Limits {
            time: limits.time.min(Duration::from_secs(10)),
            ..limits.clone()
        };
        match plugin.exchange(&WorkerRequest::Describe, &describe_limits) {
            Ok(WorkerResponse::Ok {
                info: Some(info), ..
            }) => Ok((plugin, info)),
            Ok(other) => Err(format!("`describe` answered {other:?}")),
            Err(error) => Err(format!("`describe` failed: {error}")),
        }
    }

    /// Converts with a worker.
    pub fn convert(
        &self,
        files: &TaskFiles,
        source: &str,
        target: &str,
        options: &str,
        limits: &Limits,
    ) -> Result<(), PluginError> {
        let request = WorkerRequest::Convert {
            input: files.input.clone(),
            output: files.output.clone(),
            source: source.to_owned(),
            target: target.to_owned(),
            options: options.to_owned(),
        };
        match self.exchange(&request, limits)? {
            WorkerResponse::Ok { .. } => Ok(()),
            WorkerResponse::Error { error } => Err(PluginError::Rejected(error)),
            WorkerResponse::Panic { message } => Err(PluginError::Crashed(format!(
                "the plugin panicked: {message}"
            ))),
        }
    }

    /// Makes an example file.
    pub fn template(&self, format: &str, limits: &Limits) -> Result<Vec<u8>, PluginError> {
        use base64::Engine;
        match self.exchange(
            &WorkerRequest::Template {
                format: format.to_owned(),
            },
            limits,
        )? {
            WorkerResponse::Ok {
                bytes: Some(bytes), ..
            } => base64::engine::general_purpose::STANDARD
                .decode(bytes)
                .map_err(|error| {
                    PluginError::Crashed(format!("the worker sent bad bytes: {error}"))
                }),
            WorkerResponse::Ok { .. } => {
                Err(PluginError::Crashed("the worker sent no bytes".into()))
            }
            WorkerResponse::Error { error } => Err(PluginError::Rejected(error)),
            WorkerResponse::Panic { message } => Err(PluginError::Crashed(format!(
                "the plugin panicked: {message}"
            ))),
        }
    }

    fn spawn(&self, limits: &Limits) -> Result<Worker, PluginError> {
        let exe = std::env::current_exe().map_err(|error| {
            PluginError::Internal(format!("cannot find the metamorph binary: {error}"))
        })?;
        let mut child = Command::new(exe)
            .arg("plugin-worker")
            .arg("--library")
            .arg(&self.library)
            .arg("--memory")
            .arg(limits.memory.to_string())
            .arg("--output")
            .arg(limits.output.to_string())
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| {
                PluginError::Internal(format!("cannot start a plugin worker: {error}"))
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err(PluginError::Internal("the worker has no pipes".into()));
        };
        Ok(Worker {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            limits: limits.clone(),
        })
    }

    /// Sends one request to an idle worker (or a new one) and waits at most `limits.time`.
    fn exchange(
        &self,
        request: &WorkerRequest,
        limits: &Limits,
    ) -> Result<WorkerResponse, PluginError> {
        let reused = self.idle.lock().ok().and_then(|mut idle| {
            let position = idle.iter().position(|worker| worker.limits == *limits)?;
            Some(idle.swap_remove(position))
        });
        let mut worker = match reused {
            Some(worker) => worker,
            None => self.spawn(limits)?,
        };
        let line = serde_json::to_string(request)
            .map_err(|error| PluginError::Internal(error.to_string()))?;
        let pid = worker.child.id();
        let (cancel, cancelled) = mpsc::channel::<()>();
        let deadline = limits.time;
        let watchdog = std::thread::spawn(move || {
            if cancelled.recv_timeout(deadline) == Err(mpsc::RecvTimeoutError::Timeout) {
                // The worker is ours and still running (we hold its `Child`): end it.
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
                return true;
            }
            false
        });
        let mut answer = String::new();
        let exchanged = writeln!(worker.stdin, "{line}")
            .and_then(|()| worker.stdin.flush())
            .and_then(|()| worker.stdout.read_line(&mut answer));
        let _ = cancel.send(());
        let timed_out = watchdog.join().unwrap_or(false);
        match exchanged {
            Ok(read) if read > 0 => {
                let response = serde_json::from_str(&answer).map_err(|error| {
                    PluginError::Crashed(format!("the worker answered nonsense: {error}"))
                })?;
                if let Ok(mut idle) = self.idle.lock()
                    && idle.len() < self.max_idle
                {
                    idle.push(worker);
                }
                Ok(response)
            }
            _ => {
                let status = worker.child.wait().ok();
                if timed_out {
                    return Err(PluginError::TimedOut(limits.time));
                }
                Err(crash_error(status, limits))
            }
        }
    }
}

/// What a worker's end says about what went wrong.
fn crash_error(status: Option<std::process::ExitStatus>, limits: &Limits) -> PluginError {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.and_then(|status| status.signal()) {
            return match signal {
                // SIGXFSZ: the output grew past the file size limit.
                25 => PluginError::LimitExceeded(format!(
                    "the output is larger than its limit of {}",
                    bytesize::ByteSize(limits.output)
                )),
                9 => PluginError::Crashed("the plugin's worker was killed".into()),
                11 => PluginError::Crashed("the plugin crashed (segmentation fault)".into()),
                6 => PluginError::Crashed(format!(
                    "the plugin aborted (a failed allocation aborts: its memory limit is {})",
                    bytesize::ByteSize(limits.memory)
                )),
                other => {
                    PluginError::Crashed(format!("the plugin's worker ended with signal {other}"))
                }
            };
        }
    }
    match status.and_then(|status| status.code()) {
        Some(code) => PluginError::Crashed(format!("the plugin's worker exited with code {code}")),
        None => PluginError::Crashed("the plugin's worker ended unexpectedly".into()),
    }
}

impl Drop for NativePlugin {
    fn drop(&mut self) {
        if let Ok(mut idle) = self.idle.lock() {
            for mut worker in idle.drain(..) {
                let _ = worker.child.kill();
                let _ = worker.child.wait();
            }
        }
    }
}
