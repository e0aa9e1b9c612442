//! What the job machinery of one server keeps in memory: its worker identity, the signals
//! that wake its workers and waiters, and the tasks it runs per pair.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Notify, broadcast};

/// The in-memory side of jobs on this server.
pub struct JobsRuntime {
    owner: String,
    work: Notify,
    callbacks: Notify,
    finished: broadcast::Sender<String>,
    pairs: Mutex<HashMap<String, PairState>>,
}

#[derive(Default)]
struct PairState {
    running: usize,
    /// Moving average of task durations, in seconds.
    average: Option<f64>,
}

impl Default for JobsRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl JobsRuntime {
    /// A runtime with a fresh worker identity (host, process, random part: unique even for
    /// two servers in one process, as in tests).
    pub fn new() -> Self {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "host".into());
        let random = uuid::Uuid::new_v4().simple().to_string();
        Self {
            owner: format!("{host}/{}/{}", std::process::id(), &random[..8]),
            work: Notify::new(),
            callbacks: Notify::new(),
            finished: broadcast::channel(256).0,
            pairs: Mutex::new(HashMap::new()),
        }
    }

    /// This server's name in `lease_owner`.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Wakes an idle worker: work was queued.
    pub fn wake(&self) {
        self.work.notify_waiters();
        self.callbacks.notify_one();
    }

    /// Waits until woken or `timeout` passes.
    pub async fn idle(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.work.notified()).await;
    }

    /// Wakes the callback sender.
    pub fn wake_callbacks(&self) {
        self.callbacks.notify_one();
    }

    /// Waits until the callback sender is woken or `timeout` passes.
    pub async fn idle_callbacks(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.callbacks.notified()).await;
    }

    /// Tells waiters that `job_id` ended.
    pub fn finished(&self, job_id: &str) {
        let _ = self.finished.send(job_id.to_owned());
        self.callbacks.notify_one();
    }

    /// Hears of jobs that end.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.finished.subscribe()
    }

    fn pairs(&self) -> std::sync::MutexGuard<'_, HashMap<String, PairState>> {
        self.pairs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The pairs running `limit` tasks here already.
    pub fn full_pairs(&self, limit: usize) -> Vec<String> {
        self.pairs()
            .iter()
            .filter(|(_, state)| state.running >= limit)
            .map(|(pair, _)| pair.clone())
            .collect()
    }

    /// A task of `pair` starts here.
    pub fn started(&self, pair: &str) {
        self.pairs().entry(pair.to_owned()).or_default().running += 1;
    }

    /// A task of `pair` ended here after `took`.
    pub fn ended(&self, pair: &str, took: Duration) {
        let mut pairs = self.pairs();
        let state = pairs.entry(pair.to_owned()).or_default();
        state.running = state.running.saturating_sub(1);
        let seconds = took.as_secs_f64();
        state.average = Some(match state.average {
            Some(average) => average * 0.8 + seconds * 0.2,
            None => seconds,
        });
    }

    /// Seconds to suggest in `Retry-After` when `pair` has `queued` tasks waiting: about
    /// the time to work off a tenth of the queue at the pair's pace here, 1 s to 10 min.
    pub fn retry_after(&self, pair: &str, queued: usize) -> u32 {
        let average = self
            .pairs()
            .get(pair)
            .and_then(|state| state.average)
            .unwrap_or(1.0);
        let seconds = (average * queued as f64 / 10.0).ceil();
        seconds.clamp(1.0, 600.0) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_fill_up_and_drain() {
        let runtime = JobsRuntime::new();
        runtime.started("image:png>jpg");
        runtime.started("image:png>jpg");
        assert_eq!(runtime.full_pairs(2), vec!["image:png>jpg".to_owned()]);
        assert!(runtime.full_pairs(3).is_empty());
        runtime.ended("image:png>jpg", Duration::from_secs(4));
        assert!(runtime.full_pairs(2).is_empty());
        assert_eq!(runtime.retry_after("image:png>jpg", 100), 40);
        assert_eq!(runtime.retry_after("unknown", 0), 1);
        assert_eq!(runtime.retry_after("image:png>jpg", 1_000_000), 600);
    }

    #[test]
    fn owners_differ() {
        assert_ne!(JobsRuntime::new().owner(), JobsRuntime::new().owner());
    }
}
