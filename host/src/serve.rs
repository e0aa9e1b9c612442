//! `metamorph serve` and `metamorph migrate`: start-up and shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;

use crate::app::AppState;
use crate::config::Config;
use crate::db::Db;
use crate::http::{self, Drained, HttpService};
use crate::metrics::Metrics;
use crate::routes;
use crate::storage::Storage;

/// Opens the database and applies pending migrations, logging what was applied.
fn open_database(config: &Config) -> anyhow::Result<(Db, Vec<String>)> {
    let db = Db::open(&config.database)
        .with_context(|| format!("cannot open the database {}", config.database.url))?;
    let applied = db
        .migrate()
        .context("cannot bring the database schema up to date")?;
    Ok((db, applied))
}

/// `metamorph migrate`.
pub fn migrate(config: &Config) -> anyhow::Result<()> {
    let (_db, applied) = open_database(config)?;
    let summary = if applied.is_empty() {
        format!(
            "{}: up to date, no migration to apply\n",
            config.database.url
        )
    } else {
        format!(
            "{}: applied {} migration(s): {}\n",
            config.database.url,
            applied.len(),
            applied.join(", ")
        )
    };
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(summary.as_bytes());
    Ok(())
}

/// `metamorph serve`: runs until SIGINT or SIGTERM.
pub fn run(config: Config, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("metamorph")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, listen))
}

async fn serve(config: Config, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let address = listen.unwrap_or(config.listen);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config_file = config.file.as_ref().map(|file| tracing::field::display(file.display())),
        data_dir = %config.data_dir.display(),
        "starting metamorph"
    );

    let storage = Storage::open(&config.storage).context("cannot open the storage")?;
    let database_config = config.clone();
    let (db, applied) = tokio::task::spawn_blocking(move || open_database(&database_config))
        .await
        .context("database start-up task failed")??;
    tracing::info!(
        database = %config.database.url,
        migrations_applied = applied.len(),
        "database ready"
    );
    let plugin_dirs: Vec<String> = config
        .plugins
        .dirs
        .iter()
        .map(|dir| dir.display().to_string())
        .collect();
    tracing::info!(dirs = %plugin_dirs.join(":"), "plugin folders");

    let metrics = Arc::new(Metrics::new().context("cannot register metrics")?);
    let shutdown_timeout = config.server.shutdown_timeout;
    let state = AppState::new(config, db, storage, metrics.clone());
    let router = routes::build(&state).context("cannot build the route table")?;
    let service = HttpService::new(router, metrics);

    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {address}; choose another address with METAMORPH_LISTEN, \
             `listen` in the configuration file, or --listen"
            )
        })?;
    let bound = listener
        .local_addr()
        .context("cannot read the bound address")?;
    tracing::info!(address = %bound, docs = %format!("http://{bound}/docs/"), "listening");

    match http::serve(listener, service, http::shutdown_signal(), shutdown_timeout).await {
        Drained::Completely => tracing::info!("all requests finished; stopped"),
        Drained::TimedOut => tracing::warn!(
            timeout = ?shutdown_timeout,
            "requests still running after the shutdown timeout were cut off; stopped"
        ),
    }
    Ok(())
}
