//! Metamorph: a self-hostable, plugin-based file-conversion gateway.
//!
//! The binary is a thin wrapper over [`cli::main`]. Modules, each owning one concern:

pub mod app; //       AppState: what handlers share
pub mod audit; //     the audit trail
pub mod auth; //      identities: tokens, API keys, gateways, roles
pub mod cli; //       the command line
pub mod commands; //  plugin commands without a server: convert, plugins list|check|new
pub mod config; //    configuration: defaults, file, environment
pub mod db; //        database pool, migrations, schema
pub mod error; //     ApiError and RFC 9457 problem documents
pub mod files; //     stored files: uploads, quotas, downloads, links
pub mod http; //      the server: accept loop, request ids, routing, panics, access log
pub mod jobs; //      conversion jobs: queue, workers, remote inputs, callbacks
pub mod metrics; //   Prometheus metrics
pub mod openapi; //   the OpenAPI document, from the route table
pub mod plugins; //   the plugin runtime: wasm and native converters, routes between formats
pub mod ratelimit; // request quotas per identity and route class
pub mod resources; // the resource registry and generated CRUD routes
pub mod routes; //    every endpoint
pub mod schemas; //   the JSON Schemas committed under schemas/
pub mod serve; //     `serve` and `migrate`: start-up and shutdown
pub mod storage; //   stored files, over opendal
pub mod telemetry; // logging
