//! Events sent from inside the collector's own process (`tally serve`'s analytics): through the
//! same bounded queue and writer as posted batches, so they share its group commits and its
//! backpressure and show in `/metrics` like any other.

use std::sync::{Arc, Weak};

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
        if batch.is_empty() {
            return Ok(InsertOutcome::default());
        }
        let state = self.state.upgrade().ok_or(LocalIngestError::Stopped)?;
        let metrics = state.metrics.clone();
        let timeout = state.config.store_timeout();
        let (events, rejected) = (
            batch.events.len() + batch.rejects.len(),
            batch.rejects.len(),
        );
        let reply = state.queue.try_submit(batch).map_err(|_| {
            metrics.record_refused(RefusalReason::QueueFull, events);
            LocalIngestError::QueueFull {
                retry_after_seconds: state.config.retry_after_seconds,
            }
        })?;
        // Queued: the writer answers even while the collector stops, so nothing here needs to
        // keep it running.
        drop(state);
        let outcome = match tokio::time::timeout(timeout, reply).await {
            Ok(Ok(Ok(outcome))) => Ok(outcome),
            Ok(Ok(Err(e))) => Err(e.to_string()),
            Ok(Err(_)) => Err("store writer stopped".to_owned()),
            Err(_) => Err(format!("not stored within {} ms", timeout.as_millis())),
        };
        match outcome {
            Ok(outcome) => {
                metrics.record_rejected(rejected);
                Ok(outcome)
            }
            Err(reason) => {
                metrics.record_refused(RefusalReason::StoreUnavailable, 0);
                Err(LocalIngestError::StoreUnavailable(reason))
            }
        }
    }
}

#[cfg(test)]
#[path = "local_ingest_tests.rs"]
mod tests;
