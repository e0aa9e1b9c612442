//! The state every handler shares: configuration, database, storage, metrics, keys and the
//! resource definitions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::auth::keys;
use crate::auth::sealing::Sealer;
use crate::auth::tokens::TokenSigner;
use crate::config::Config;
use crate::db::Db;
use crate::files::links::LinkSigner;
use crate::jobs::JobsRuntime;
use crate::metrics::Metrics;
use crate::plugins::PluginRuntime;
use crate::resources::Registry;
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
    signer: TokenSigner,
    sealer: Sealer,
    links: LinkSigner,
    resources: Registry,
    plugins: Arc<PluginRuntime>,
    jobs: JobsRuntime,
    started: Instant,
}

impl AppState {
    /// Bundles the parts built at start-up; loads (or creates) the signing and sealing keys
    /// and parses the resource definitions.
    pub fn new(
        config: Config,
        db: Db,
        storage: Storage,
        metrics: Arc<Metrics>,
        plugins: Arc<PluginRuntime>,
    ) -> anyhow::Result<Self> {
        let jwt_key =
            keys::load_or_create(config.auth.jwt_secret.as_ref(), &config.data_dir, "jwt")
                .context("cannot load the token signing key")?;
        let secrets_key = keys::load_or_create(
            config.auth.secrets_key.as_ref(),
            &config.data_dir,
            "secrets",
        )
        .context("cannot load the secrets key")?;
        let resources = Registry::load().map_err(anyhow::Error::msg)?;
        Ok(Self {
            inner: Arc::new(Inner {
                signer: TokenSigner::new(&jwt_key),
                links: LinkSigner::new(jwt_key.expose().as_bytes()),
                sealer: Sealer::new(&secrets_key),
                config,
                db,
                storage,
                metrics,
                resources,
                plugins,
                jobs: JobsRuntime::new(),
                started: Instant::now(),
            }),
        })
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

    /// Signs and checks tokens.
    pub fn signer(&self) -> &TokenSigner {
        &self.inner.signer
    }

    /// Encrypts stored secrets.
    pub fn sealer(&self) -> &Sealer {
        &self.inner.sealer
    }

    /// Signs and checks download links.
    pub fn links(&self) -> &LinkSigner {
        &self.inner.links
    }

    /// The base of links given to clients (`http://host:port`, no trailing `/`).
    pub fn public_url(&self) -> &str {
        self.inner
            .config
            .server
            .public_url
            .as_deref()
            .unwrap_or("http://127.0.0.1:8080")
    }

    /// The resource definitions.
    pub fn resources(&self) -> &Registry {
        &self.inner.resources
    }

    /// The plugin runtime.
    pub fn plugins(&self) -> &Arc<PluginRuntime> {
        &self.inner.plugins
    }

    /// The in-memory side of jobs: worker identity, wake-ups, per-pair load.
    pub fn jobs(&self) -> &JobsRuntime {
        &self.inner.jobs
    }

    /// Time since start-up.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }
}
