//! Events sent from inside the collector's own process (`tally serve`'s analytics): through the
//! same bounded queue and writer as posted batches, so they share its group commits and its
//! backpressure and show in `/metrics` like any other.

use std::sync::{Arc, Weak};

use crate::error::ApiError;
use crate::metrics::RefusalReason;
use crate::server::AppState;
use crate::store::{IngestBatch, InsertOutcome};

/// Why a local batch was not stored (nothing of it was; send it again later).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalIngestError {
    /// The collector has stopped.
    #[error("the collector has stopped")]
    Stopped,
    /// The ingest queue is full.
    #[error("the collector's ingest queue is full")]
    QueueFull {
        /// When to try again.
        retry_after_seconds: u32,
    },
    /// The store failed or did not answer in time.
    #[error("the collector's store is unavailable: {0}")]
    StoreUnavailable(String),
}

/// A sender into a running collector. It does not keep the collector alive: once the collector
/// stops, every send answers [`LocalIngestError::Stopped`].
#[derive(Debug, Clone)]
pub struct LocalIngest {
    state: Weak<AppState>,
}

impl LocalIngest {
    pub(crate) fn new(state: &Arc<AppState>) -> Self {
        Self {
            state: Arc::downgrade(state),
        }
    }

    /// Queues `batch` and waits until it is stored (at most the store timeout).
    pub async fn send(&self, batch: IngestBatch) -> Result<InsertOutcome, LocalIngestError> {
        let state = self.state.upgrade().ok_or(LocalIngestError::Stopped)?;
        let rejected = batch.rejects.len();
        match crate::ingest::store_batch(&state, batch).await {
            Ok(outcome) => {
                state.metrics.record_rejected(rejected);
                Ok(outcome)
            }
            Err(ApiError::QueueFull {
                retry_after_seconds,
            }) => Err(LocalIngestError::QueueFull {
                retry_after_seconds,
            }),
            Err(e) => {
                state
                    .metrics
                    .record_refused(RefusalReason::StoreUnavailable, 0);
                let reason = match e {
                    ApiError::StoreUnavailable { reason, .. } => reason,
                    other => other.to_string(),
                };
                Err(LocalIngestError::StoreUnavailable(reason))
            }
        }
    }
}

#[cfg(test)]
#[path = "local_ingest_tests.rs"]
mod tests;
