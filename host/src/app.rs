//! The state every handler shares: configuration, database, storage and metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::storage::Storage;

/// Shared application state. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    db: Db,
    storage: Storage,
    metrics: Arc<Metrics>,
    started: Instant,
}

impl AppState {
    /// Bundles the parts built at start-up.
    pub fn new(config: Config, db: Db, storage: Storage, metrics: Arc<Metrics>) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                db,
                storage,
                metrics,
                started: Instant::now(),
            }),
        }
    }

    /// The effective configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The storage of files.
    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Time since start-up.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }
}
