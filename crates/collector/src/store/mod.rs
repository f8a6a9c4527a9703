//! Where events are kept: one trait, one file per engine, chosen by config in [`open_store`].

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Serialize;

use crate::config::{CollectorConfig, StoreKind};
use crate::event::{IncomingEvent, RejectedEvent};
use crate::report::{Report, ReportQuery};

pub mod clickhouse;
pub mod clickhouse_identities;
mod clickhouse_report;
pub mod sqlite;
pub mod sqlite_identities;
mod sqlite_insert;
mod sqlite_report;
mod sqlite_retention;
mod sqlite_schema;

pub use clickhouse::ClickHouseStore;
pub use sqlite::SqliteStore;

/// What one store call writes: accepted events and the batch's quarantined ones, atomically.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestBatch {
    /// Events to keep (duplicates by id are skipped).
    pub events: Vec<IncomingEvent>,
    /// Events kept in the rejects table with their reason.
    pub rejects: Vec<RejectedEvent>,
}

impl IngestBatch {
    /// A batch of events only (what an in-process sender writes).
    pub fn from_events(events: Vec<IncomingEvent>) -> Self {
        IngestBatch {
            events,
            rejects: Vec::new(),
        }
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.rejects.is_empty()
    }
}

/// What a store did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InsertOutcome {
    /// Events newly stored.
    pub inserted: usize,
    /// Events skipped because their id was already stored.
    pub duplicates: usize,
    /// Of the inserted, those of a type without a typed table (kept raw only).
    pub untyped: usize,
    /// Rejected events written to the quarantine (repeats of a stored reject are not counted).
    pub quarantined: usize,
}

/// What one [`EventStore::delete_before`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Rows deleted.
    pub deleted: u64,
    /// Whether nothing older is left (else the budget ran out first).
    pub done: bool,
}

/// A store failure; the batch was not acknowledged and may be retried.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer collector, or a migration failed.
    #[error("schema: {0}")]
    Schema(String),
    /// A worker thread died or was cancelled.
    #[error("store worker failed: {0}")]
    Worker(String),
    /// Something this engine does not do (the message says what to do instead).
    #[error("{0}")]
    Unsupported(&'static str),
    /// Filesystem trouble (creating the database folder).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// An engine that keeps events exactly once per (account, event id) and answers report queries.
pub trait EventStore: Send + Sync + 'static {
    /// Writes a batch in one transaction: all of it is durable when this returns `Ok`, none of it
    /// when it returns `Err`.
    fn insert_batch(&self, batch: IngestBatch) -> BoxFuture<'_, Result<InsertOutcome, StoreError>>;

    /// Writes several batches (group commit), each one atomically: the answer for each batch is
    /// as if [`EventStore::insert_batch`] had been called for it alone, in order. Engines that
    /// can share one durable commit among batches override this.
    fn insert_batches(
        &self,
        batches: Vec<IngestBatch>,
    ) -> BoxFuture<'_, Vec<Result<InsertOutcome, StoreError>>> {
        Box::pin(async move {
            let mut results = Vec::with_capacity(batches.len());
            for batch in batches {
                results.push(self.insert_batch(batch).await);
            }
            results
        })
    }

    /// Deletes the events whose own time is before `cutoff_ms`, and the quarantined events
    /// received before it (`retention_days`), for about `budget` at most; their ids stay
    /// claimed, so a re-sent one is still a duplicate.
    fn delete_before(
        &self,
        cutoff_ms: i64,
        budget: std::time::Duration,
    ) -> BoxFuture<'_, Result<Swept, StoreError>>;

    /// Whether the store answers a trivial query now (`/readyz`).
    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Computes the report for a time range and optional client.
    fn report(&self, query: ReportQuery) -> BoxFuture<'_, Result<Report, StoreError>>;

    /// Short engine name for logs and `/healthz`.
    fn engine(&self) -> &'static str;
}

/// Opens the store the config names (creating and migrating it as needed).
pub async fn open_store(config: &CollectorConfig) -> Result<Arc<dyn EventStore>, StoreError> {
    match config.store {
        StoreKind::Sqlite => {
            let sqlite = config.sqlite.clone();
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(&sqlite))
                .await
                .map_err(|e| StoreError::Worker(e.to_string()))??;
            Ok(Arc::new(store))
        }
        StoreKind::Clickhouse => Ok(Arc::new(ClickHouseStore::open(&config.clickhouse).await?)),
    }
}
