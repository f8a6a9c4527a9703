//! Tally's analytics collector: takes analytics events from Tally and from an unmodified Codex over
//! HTTP, keeps every event exactly once in a store (embedded SQLite or a shared ClickHouse, behind
//! the [`store::EventStore`] trait), and answers a product team's questions through a report, a
//! dashboard and Prometheus metrics.
//!
//! The flow of one batch: [`ingest`] (auth, size cap, gzip) → [`decode`] (shape and field checks,
//! quarantine of bad events) → [`queue`] (bounded, 429 when full) → [`store`] (one transaction per
//! batch, dedup by event id) → 200.

#![recursion_limit = "256"]

pub mod agent_identity;
pub mod auth;
pub mod body_buffers;
mod canonical;
pub mod codex_endpoints;
pub mod config;
pub mod dashboard;
pub mod decode;
pub mod dedup;
pub mod error;
pub mod event;
pub mod family;
pub mod fixtures;
pub mod identity_backend;
pub mod identity_endpoints;
pub mod identity_legacy_file;
pub mod ingest;
pub mod local_ingest;
pub mod metrics;
pub mod params_scan;
pub mod queue;
pub mod report;
pub mod report_gate;
pub mod retention;
pub mod server;
pub mod store;
mod svg;
mod time;
mod wire;

#[cfg(test)]
mod arb_json;

pub use config::{
    ClickHouseConfig, CollectorConfig, SqliteConfig, StoreKind, TokenConfig, Unauthenticated,
};
pub use event::{EventId, IdSource, IncomingEvent, RejectedEvent};
pub use local_ingest::{LocalIngest, LocalIngestError};
pub use report::{build_report, Report, ReportQuery};
pub use server::{router, serve, start, AppState, Collector, CollectorHandle};
pub use store::{open_store, EventStore, IngestBatch, InsertOutcome, StoreError};
