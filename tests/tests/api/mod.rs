mod config;
mod docs;
mod errors;
mod health;
mod metrics;
mod migrations;
mod shutdown;
