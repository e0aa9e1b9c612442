//! The cost of the service layer: a request served by the whole `HttpService` (request id,
//! routing, panic guard, metrics, access log to a discarding writer) against bare warp
//! serving the same bytes. `cargo xtask bench` prints the ratio.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use http_body_util::Empty;
use metamorph::app::AppState;
use metamorph::config::Config;
use metamorph::db::Db;
use metamorph::http::HttpService;
use metamorph::metrics::Metrics;
use metamorph::storage::Storage;
use tower_service::Service;
use warp::Filter;
use warp::reply::Response;

fn request() -> Request<Empty<Bytes>> {
    Request::builder()
        .uri("/openapi.json")
        .body(Empty::new())
        .expect("valid request")
}

fn service_layer_against_bare_warp(c: &mut Criterion) {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .try_init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::from_sources(None, &[]).expect("default config");
    config.data_dir = dir.path().to_path_buf();
    config.database.url = metamorph::config::DatabaseUrl::Sqlite(dir.path().join("bench.db"));
    config.storage = metamorph::config::StorageConfig::Fs {
        root: dir.path().join("storage"),
    };
    let db = Db::open(&config.database).expect("database");
    db.migrate().expect("migrations");
    let storage = Storage::open(&config.storage).expect("storage");
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    config.plugins.dirs = Vec::new();
    config.plugins.cache_dir = dir.path().join("cache");
    config.plugins.work_dir = dir.path().join("work");
    let plugins = metamorph::plugins::PluginRuntime::start(&config.plugins).expect("plugins");
    let state = AppState::new(config, db, storage, metrics.clone(), plugins).expect("state");
    let router = metamorph::routes::build(&state).expect("routes");
    let service = HttpService::new(router, metrics, None);

    let document = runtime.block_on(async {
        let response = service.handle(request(), None).await;
        http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body")
            .to_bytes()
    });
    let bare = warp::path("openapi.json").map(move || Response::new(document.clone().into()));

    let mut group = c.benchmark_group("request");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("metamorph", |b| {
        b.iter(|| runtime.block_on(service.handle(request(), None)));
    });
    group.bench_function("bare_warp", |b| {
        b.iter(|| runtime.block_on(warp::service(bare.clone()).call(request())));
    });
    group.finish();
}

criterion_group!(benches, service_layer_against_bare_warp);
criterion_main!(benches);
