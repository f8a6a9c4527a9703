//! Where batches go: one small trait, one file per implementation.

use std::time::Duration;

use async_trait::async_trait;

use super::envelope::EventEnvelope;
use super::stats::ErrorClass;

mod http;
mod jsonl;

pub use http::{
    AssertionRecovery, AuthHeaderProvider, HttpSink, HttpSinkConfig, HttpSinkError, INGEST_PATH,
};
pub use jsonl::JsonlSink;

/// What a sink made of one batch; the sender decides retry, split, keep or drop from it alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkResult {
    /// Stored (HTTP 2xx): the batch may leave the spool.
    Ok,
    /// Try again later (network error, timeout, 408, 429, 5xx, local I/O), no sooner than
    /// `retry_after` when the sink said so.
    Retryable {
        /// The sink's own `Retry-After`, if it gave one.
        retry_after: Option<Duration>,
        /// Why, for stats.
        class: ErrorClass,
    },
    /// The batch is too large (413): split it in halves.
    TooLarge,
    /// Credentials missing or refused (401/403): keep the batch and retry later.
    Auth(u16),
    /// Refused for good (other 4xx): drop the batch and count it.
    Rejected(u16),
    /// Refused in part (a Tally collector's 400 `invalid_events`): it kept `stored` events of
    /// the batch and quarantined the rest; the batch is done, and only the rest counts as dropped.
    PartlyStored {
        /// The HTTP status.
        status: u16,
        /// Events the collector stored (or already had).
        stored: usize,
    },
}

/// A destination for batches of events: the HTTP collector, a JSONL file, the embedded store.
///
/// `send` must not panic on a sink failure and should return within the sender's attempt
/// deadline; the sender cancels it (drops the future) when the deadline or shutdown passes.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Delivers one batch, in order, and says what happened.
    async fn send(&self, batch: &[EventEnvelope]) -> SinkResult;
}
