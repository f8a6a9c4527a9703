//! The analytics sink of `tally serve`: events go straight into the embedded collector's store,
//! in process, with the same dedup by `event_id` as over HTTP.

use std::sync::Arc;
use tally_analytics::delivery::{ErrorClass, EventEnvelope, EventSink, SinkResult};
use tally_collector::{EventStore, IncomingEvent, IngestBatch};

/// Writes batches into an [`EventStore`]; a store failure is retried by delivery.
pub struct StoreSink {
    store: Arc<dyn EventStore>,
    account: String,
}

impl StoreSink {
    /// A sink writing into `store` under the local account.
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            account: "local".to_string(),
        }
    }
}

#[async_trait::async_trait]
impl EventSink for StoreSink {
    async fn send(&self, batch: &[EventEnvelope]) -> SinkResult {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let events = batch
            .iter()
            .map(|e| {
                let params = e.event_params.as_object().cloned().unwrap_or_default();
                IncomingEvent::new(
                    e.event_type.clone(),
                    params,
                    Some(e.event_id.clone()),
                    &self.account,
                    Some("tally"),
                    now,
                )
            })
            .collect();
        match self
            .store
            .insert_batch(IngestBatch::from_events(events))
            .await
        {
            Ok(_) => SinkResult::Ok,
            Err(e) => {
                tracing::warn!(error = %e, "embedded analytics store write failed; will retry");
                SinkResult::Retryable {
                    retry_after: None,
                    class: ErrorClass::SinkIo,
                }
            }
        }
    }
}
