//! The door to reports for `/` and `/api/report`: a few computed at once and a deadline on each.
//! A report holds a blocking thread for as long as it runs (SQLite's reports queue on one reader
//! connection), so hundreds of `GET /?since=3650d` filled tokio's blocking pool, where ingest
//! decodes its batches, and ingest waited behind them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::error::ApiError;
use crate::metrics::{Metrics, RefusalReason};
use crate::report::{Report, ReportQuery};
use crate::store::EventStore;

/// Reports computed at once at most; a request beyond them is answered 503 with `Retry-After`.
pub const MAX_CONCURRENT_REPORTS: usize = 4;

/// How long a request waits for its report before answering 503.
pub const REPORT_DEADLINE: Duration = Duration::from_secs(30);

/// Bounds the reports being computed and how long a request waits for one.
#[derive(Debug)]
pub struct ReportGate {
    permits: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    retry_after_seconds: u32,
}

impl ReportGate {
    /// At most `limit` reports at once; refusals are counted in `metrics` and answered with
    /// `Retry-After: retry_after_seconds`.
    pub fn new(limit: usize, metrics: Arc<Metrics>, retry_after_seconds: u32) -> Self {
        ReportGate {
            permits: Arc::new(Semaphore::new(limit)),
            metrics,
            retry_after_seconds,
        }
    }

    /// The report for `query` from `store`, or a 503: every permit taken
    /// ([`ApiError::ReportsBusy`]), no answer within [`REPORT_DEADLINE`]
    /// ([`ApiError::ReportTimeout`]) or the store failed.
    pub async fn report(
        &self,
        store: &Arc<dyn EventStore>,
        query: ReportQuery,
    ) -> Result<Report, ApiError> {
        let retry_after_seconds = self.retry_after_seconds;
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.metrics.record_refused(RefusalReason::ReportsBusy, 0);
            return Err(ApiError::ReportsBusy {
                retry_after_seconds,
            });
        };
        let store = store.clone();
        // The permit goes with the computation, not with the request: a report whose request gave
        // up still holds its thread until the store is done with it.
        let computing = tokio::spawn(async move {
            let report = store.report(query).await;
            drop(permit);
            report
        });
        match tokio::time::timeout(REPORT_DEADLINE, computing).await {
            Ok(Ok(Ok(report))) => Ok(report),
            Ok(Ok(Err(e))) => Err(ApiError::StoreUnavailable {
                reason: e.to_string(),
                retry_after_seconds,
            }),
            Ok(Err(e)) => Err(ApiError::Internal(format!("report task failed: {e}"))),
            Err(_) => {
                self.metrics.record_refused(RefusalReason::ReportTimeout, 0);
                Err(ApiError::ReportTimeout {
                    retry_after_seconds,
                })
            }
        }
    }
}

#[cfg(test)]
#[path = "report_gate_tests.rs"]
mod tests;
