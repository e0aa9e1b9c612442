//! Prometheus metrics, served at `GET /metrics`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `metamorph_http_requests_total` | counter | `method`, `route` (template), `status` |
//! | `metamorph_http_request_duration_seconds` | histogram | `method`, `route`, `status` |
//! | `metamorph_http_requests_in_flight` | gauge | |
//! | `metamorph_db_pool_connections` | gauge | `state` (`idle`, `in_use`) |
//! | `metamorph_build_info` | gauge (always 1) | `version` |
//! | `metamorph_job_tasks_queued` | gauge | `pair` (plugins and formats, `image:png>jpg`) |
//! | `metamorph_job_tasks_running` | gauge | `pair` (on this server) |
//! | `metamorph_job_tasks_total` | counter | `pair`, `outcome` (`completed`, `cached`, `failed`, `lost`) |
//! | `metamorph_job_task_duration_seconds` | histogram | `pair` |
//! | `metamorph_job_queue_refusals_total` | counter | `pair` (answered 429) |
//! | `metamorph_callbacks_total` | counter | `outcome` (`delivered`, `pending` = will retry, `failed`, `gone`) |
//! | `process_*` | process collector | CPU, memory, file descriptors, start time |
//!
//! Routes are labelled by template (`/api/files/{org_id}/{id}`), never by the concrete path,
//! and unknown paths share one label, so cardinality stays bounded.

use std::time::Duration;

use http::{Method, StatusCode};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Latency buckets in seconds: from 1 ms to 60 s, for requests from `/api/health` to
/// synchronous conversions.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The service's metrics registry and the metrics the core records.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    http_in_flight: IntGauge,
    db_pool: IntGaugeVec,
    tasks_queued: IntGaugeVec,
    tasks_running: IntGaugeVec,
    tasks_total: IntCounterVec,
    task_duration: HistogramVec,
    queue_refusals: IntCounterVec,
    callbacks: IntCounterVec,
}

impl Metrics {
    /// Registers every metric, plus the process collector on Linux.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let labels = &["method", "route", "status"];
        let http_requests = IntCounterVec::new(
            Opts::new("metamorph_http_requests_total", "HTTP requests answered"),
            labels,
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "metamorph_http_request_duration_seconds",
                "Time from receiving a request to sending its response head",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            labels,
        )?;
        let http_in_flight = IntGauge::new(
            "metamorph_http_requests_in_flight",
            "HTTP requests being handled",
        )?;
        let db_pool = IntGaugeVec::new(
            Opts::new(
                "metamorph_db_pool_connections",
                "Database pool connections by state",
            ),
            &["state"],
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new("metamorph_build_info", "The running version (always 1)"),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        let tasks_queued = IntGaugeVec::new(
            Opts::new(
                "metamorph_job_tasks_queued",
                "Tasks waiting in the queue, by plugin and pair",
            ),
            &["pair"],
        )?;
        let tasks_running = IntGaugeVec::new(
            Opts::new(
                "metamorph_job_tasks_running",
                "Tasks running on this server, by plugin and pair",
            ),
            &["pair"],
        )?;
        let tasks_total = IntCounterVec::new(
            Opts::new(
                "metamorph_job_tasks_total",
                "Tasks ended on this server, by plugin, pair and outcome",
            ),
            &["pair", "outcome"],
        )?;
        let task_duration = HistogramVec::new(
            HistogramOpts::new(
                "metamorph_job_task_duration_seconds",
                "Time a task ran on this server, by plugin and pair",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["pair"],
        )?;
        let queue_refusals = IntCounterVec::new(
            Opts::new(
                "metamorph_job_queue_refusals_total",
                "Jobs refused with 429 because a pair's queue was full",
            ),
            &["pair"],
        )?;
        let callbacks = IntCounterVec::new(
            Opts::new(
                "metamorph_callbacks_total",
                "Callback delivery attempts, by outcome",
            ),
            &["outcome"],
        )?;
        for metric in [&tasks_queued, &tasks_running] {
            registry.register(Box::new(metric.clone()))?;
        }
        for metric in [&tasks_total, &queue_refusals, &callbacks] {
            registry.register(Box::new(metric.clone()))?;
        }
        registry.register(Box::new(task_duration.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(http_in_flight.clone()))?;
        registry.register(Box::new(db_pool.clone()))?;
        registry.register(Box::new(build_info))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;

        Ok(Self {
            registry,
            http_requests,
            http_duration,
            http_in_flight,
            db_pool,
            tasks_queued,
            tasks_running,
            tasks_total,
            task_duration,
            queue_refusals,
            callbacks,
        })
    }

    /// A task of `pair` started here.
    pub fn task_started(&self, pair: &str) {
        self.tasks_running.with_label_values(&[pair]).inc();
    }

    /// A task of `pair` ended here with `outcome` after `took`.
    pub fn task_ended(&self, pair: &str, outcome: &str, took: Duration) {
        self.tasks_running.with_label_values(&[pair]).dec();
        self.tasks_total.with_label_values(&[pair, outcome]).inc();
        self.task_duration
            .with_label_values(&[pair])
            .observe(took.as_secs_f64());
    }

    /// The queue depths, as counted in the database; pairs not listed are empty.
    pub fn set_queue_depths(&self, depths: &[(String, i64)]) {
        self.tasks_queued.reset();
        for (pair, count) in depths {
            self.tasks_queued.with_label_values(&[pair]).set(*count);
        }
    }

    /// A job was refused because the queue of `pair` was full.
    pub fn queue_refused(&self, pair: &str) {
        self.queue_refusals.with_label_values(&[pair]).inc();
    }

    /// A callback attempt ended with `outcome`.
    pub fn callback_sent(&self, outcome: &str) {
        self.callbacks.with_label_values(&[outcome]).inc();
    }

    /// Marks the start of a request.
    pub fn request_started(&self) {
        self.http_in_flight.inc();
    }

    /// Requests being handled right now.
    pub fn in_flight(&self) -> i64 {
        self.http_in_flight.get()
    }

    /// Records one answered request.
    pub fn observe_http_request(
        &self,
        method: &Method,
        route: &str,
        status: StatusCode,
        elapsed: Duration,
    ) {
        self.http_in_flight.dec();
        let method = crate::http::method_label(method);
        let status = status.as_str();
        let labels = [method, route, status];
        self.http_requests.with_label_values(&labels).inc();
        self.http_duration
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Sets the database pool gauges (called when metrics are scraped).
    pub fn set_db_pool(&self, idle: u32, in_use: u32) {
        self.db_pool
            .with_label_values(&["idle"])
            .set(i64::from(idle));
        self.db_pool
            .with_label_values(&["in_use"])
            .set(i64::from(in_use));
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|error| prometheus::Error::Msg(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_counted_by_method_route_template_and_status() {
        let metrics = Metrics::new().unwrap();
        metrics.request_started();
        metrics.observe_http_request(
            &Method::GET,
            "/api/files/{org_id}/{id}",
            StatusCode::NOT_FOUND,
            Duration::from_millis(3),
        );
        let text = metrics.render().unwrap();
        assert!(
            text.contains(
                r#"metamorph_http_requests_total{method="GET",route="/api/files/{org_id}/{id}",status="404"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("metamorph_http_request_duration_seconds_bucket"),
            "{text}"
        );
        assert!(
            text.contains("metamorph_http_requests_in_flight 0"),
            "{text}"
        );
        assert!(text.contains(r#"metamorph_build_info{version=""#), "{text}");
    }
}
