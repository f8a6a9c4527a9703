//! The analytics sink of `tally serve`: events go into the embedded collector in process, through
//! its ingest queue (the same dedup by `event_id`, backpressure and `/metrics` as over HTTP).

use std::time::Duration;

use tally_analytics::delivery::{ErrorClass, EventEnvelope, EventSink, SinkResult};
use tally_collector::{IncomingEvent, IngestBatch, LocalIngest, LocalIngestError};

/// Sends batches to the embedded collector; anything not stored is retried by delivery.
pub struct StoreSink {
    collector: LocalIngest,
    account: String,
}

impl StoreSink {
    /// A sink into `collector` under the local account.
    pub fn new(collector: LocalIngest) -> Self {
        Self {
            collector,
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
        match self.collector.send(IngestBatch::from_events(events)).await {
            Ok(_) => SinkResult::Ok,
            Err(e) => {
                tracing::warn!(error = %e, "embedded collector did not store analytics; will retry");
                let retry_after = match e {
                    LocalIngestError::QueueFull {
                        retry_after_seconds,
                    } => Some(Duration::from_secs(retry_after_seconds.into())),
                    _ => None,
                };
                SinkResult::Retryable {
                    retry_after,
                    class: ErrorClass::SinkIo,
                }
            }
        }
    }
}
