//! `metamorph serve` and `metamorph migrate`: start-up and shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;

use crate::app::AppState;
use crate::auth::accounts::{self, NewUser};
use crate::auth::{Authenticator, Role};
use crate::config::Config;
use crate::db::Db;
use crate::http::{self, Drained, Gatekeeper, HttpService};
use crate::metrics::Metrics;
use crate::plugins::PluginRuntime;
use crate::ratelimit::{self, RateLimits};
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

/// `metamorph admin create-user`.
pub fn create_user(
    config: &Config,
    email: &str,
    role: Role,
    org: &str,
    display_name: Option<String>,
) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {email}: "))?;
        let second = rpassword::prompt_password("Again: ")?;
        anyhow::ensure!(first == second, "the two passwords differ");
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    crate::auth::password::check_strength(&password).map_err(anyhow::Error::msg)?;
    let (db, _) = open_database(config)?;
    let mut conn = db
        .connection()
        .context("cannot get a database connection")?;
    let org_id = accounts::ensure_org(&mut conn, org)
        .map_err(|error| anyhow::anyhow!("{}", error.detail()))?;
    let user = accounts::create_user(
        &mut conn,
        NewUser {
            org_id: &org_id,
            email: Some(email),
            display_name,
            password: Some(&password),
            role,
            disabled: false,
        },
    )
    .map_err(|error| anyhow::anyhow!("cannot create the user: {}", error.detail()))?;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "created {role} {} (id {}) in organisation {org} (id {org_id})",
        email, user.id
    );
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

    let metrics = Arc::new(Metrics::new().context("cannot register metrics")?);
    let shutdown_timeout = config.server.shutdown_timeout;
    let plugin_config = config.plugins.clone();
    let plugins = tokio::task::spawn_blocking(move || PluginRuntime::start(&plugin_config))
        .await
        .context("plugin start-up task failed")??;
    plugins.watch();
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
    let mut config = config;
    if config.server.public_url.is_none() {
        // Links name the address the server listens on, loopback for a wildcard address;
        // behind a proxy or on another host, set `server.public_url`.
        let mut reachable = bound;
        if reachable.ip().is_unspecified() {
            reachable.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        config.server.public_url = Some(format!("http://{reachable}"));
    }
    let state = AppState::new(config, db, storage, metrics.clone(), plugins)?;
    bootstrap_superuser(&state).await?;
    let router = routes::build(&state).context("cannot build the route table")?;
    let limits = Arc::new(RateLimits::new(
        &state.config().rate_limits,
        ratelimit::DEFAULT_MAX_KEYS,
    ));
    let gatekeeper = Gatekeeper {
        authenticator: Authenticator::new(
            state.db().clone(),
            state.signer().clone(),
            state.config().auth.gateway_key.clone(),
        ),
        limits: limits.clone(),
        db: state.db().clone(),
    };
    let service = HttpService::new(router, metrics, Some(gatekeeper));
    let cleanup = tokio::spawn(cleanup_loop(state.clone(), limits));
    let sweeper = tokio::spawn(crate::files::retention::sweeper(state.clone()));
    let workers = crate::jobs::worker::start(&state);
    let shutdown = http::shutdown_signal();
    tracing::info!(address = %bound, docs = %format!("http://{bound}/docs/"), "listening");

    let drained = http::serve(listener, service, shutdown, shutdown_timeout).await;
    cleanup.abort();
    sweeper.abort();
    workers.stop().await;
    match drained {
        Drained::Completely => tracing::info!("all requests finished; stopped"),
        Drained::TimedOut => tracing::warn!(
            timeout = ?shutdown_timeout,
            "requests still running after the shutdown timeout were cut off; stopped"
        ),
    }
    Ok(())
}

/// Creates the configured bootstrap superuser when no superuser exists yet.
async fn bootstrap_superuser(state: &AppState) -> anyhow::Result<()> {
    let Some((email, password)) = state.config().auth.bootstrap_admin.clone() else {
        return Ok(());
    };
    let created = state
        .db()
        .run(move |conn| {
            if accounts::superuser_exists(conn)? {
                return Ok(None);
            }
            let org_id = accounts::ensure_org(conn, DEFAULT_ORG)?;
            let user = accounts::create_user(
                conn,
                NewUser {
                    org_id: &org_id,
                    email: Some(&email),
                    display_name: None,
                    password: Some(password.expose()),
                    role: Role::Superuser,
                    disabled: false,
                },
            )?;
            Ok::<_, crate::error::ApiError>(Some(user))
        })
        .await
        .map_err(|error| {
            anyhow::anyhow!("cannot create the bootstrap superuser: {}", error.detail())
        })?;
    if let Some(user) = created {
        tracing::info!(user_id = %user.id, email = ?user.email, "created the bootstrap superuser");
    }
    Ok(())
}

/// The organisation users go to when none is named.
pub const DEFAULT_ORG: &str = "default";

/// Deletes expired anonymous sessions (their organisation, records and stored files) and
/// expired refresh tokens, and forgets idle rate-limit keys, every `cleanup_interval`.
async fn cleanup_loop(state: AppState, limits: Arc<RateLimits>) {
    let mut ticker = tokio::time::interval(state.config().auth.cleanup_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        limits.forget_idle();
        match crate::auth::sessions::delete_expired(&state).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "deleted expired anonymous sessions"),
            Err(error) => {
                tracing::warn!(%error, "cleanup of expired sessions failed; retrying later");
            }
        }
    }
}

/// `metamorph admin recompute-usage`: compares every organisation's file records (or
/// `org`'s) with what storage holds and, unless `dry_run`, makes them agree. Prints one
/// line per organisation and a summary.
pub fn recompute_usage(config: &Config, org: Option<&str>, dry_run: bool) -> anyhow::Result<()> {
    use std::io::IsTerminal;

    use crate::files::reconcile::{self, Reconciled};

    let (db, _) = open_database(config)?;
    let storage = Storage::open(&config.storage).context("cannot open storage")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let reports: Vec<Reconciled> = runtime.block_on(async {
        let ids = match org {
            Some(id) => vec![id.to_owned()],
            None => reconcile::org_ids(&db, &storage)
                .await
                .map_err(|error| anyhow::anyhow!("cannot list organisations: {error}"))?,
        };
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(ids.len() as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} organisations [{elapsed_precise}] {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        let mut reports = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(bar) = &bar {
                bar.set_message(id.clone());
            }
            let report = reconcile::recompute(&db, &storage, config.files, id, dry_run)
                .await
                .map_err(|error| anyhow::anyhow!("cannot check organisation {id}: {error}"))?;
            anyhow::ensure!(
                report.name.is_some() || report.stored_objects > 0,
                "there is no organisation `{id}` in the database or in storage; leave out \
                 --org to check them all"
            );
            reports.push(report);
            if let Some(bar) = &bar {
                bar.inc(1);
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok::<_, anyhow::Error>(reports)
    })?;
    let mut stdout = std::io::stdout().lock();
    let _ = std::io::Write::write_all(&mut stdout, usage_report(&reports, dry_run).as_bytes());
    Ok(())
}

fn usage_report(reports: &[crate::files::reconcile::Reconciled], dry_run: bool) -> String {
    use std::fmt::Write;

    let size = |bytes: u64| bytesize::ByteSize(bytes).to_string();
    let mut text = format!(
        "{:<36}  {:<20}  {:>6}  {:>10}  {:>10}  {}\n",
        "ORGANISATION", "NAME", "FILES", "RECORDED", "STORED", "RESULT"
    );
    let (mut fixed, mut orphans, mut orphan_bytes, mut missing, mut resized) = (0, 0, 0, 0, 0);
    for report in reports {
        let mut result = Vec::new();
        if report.missing > 0 {
            result.push(format!(
                "{} file(s) without bytes {}",
                report.missing,
                if dry_run { "to remove" } else { "removed" }
            ));
        }
        if report.resized > 0 {
            result.push(format!("{} size(s) corrected", report.resized));
        }
        if report.orphans > 0 {
            result.push(format!(
                "{} leftover object(s), {}, {}",
                report.orphans,
                size(report.orphan_bytes),
                if dry_run { "to delete" } else { "deleted" }
            ));
        }
        if !report.agreed() {
            fixed += 1;
        }
        missing += report.missing;
        resized += report.resized;
        orphans += report.orphans;
        orphan_bytes += report.orphan_bytes;
        let result = if result.is_empty() {
            "agrees with storage".to_owned()
        } else {
            result.join("; ")
        };
        let name = report.name.as_deref().unwrap_or("(deleted)");
        let name: String = name.chars().take(20).collect();
        let _ = writeln!(
            text,
            "{:<36}  {:<20}  {:>6}  {:>10}  {:>10}  {result}",
            report.org_id,
            name,
            report.recorded_files,
            size(report.recorded_bytes),
            size(report.stored_bytes),
        );
    }
    let _ = writeln!(
        text,
        "{} organisation(s) checked, {} {}: {missing} file record(s) without bytes, \
         {resized} size(s), {orphans} leftover object(s) ({}){}",
        reports.len(),
        fixed,
        if dry_run {
            "would change"
        } else {
            "brought in line with storage"
        },
        size(orphan_bytes),
        if dry_run {
            "; nothing was changed (--dry-run)"
        } else {
            ""
        }
    );
    text
}
