use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::watch;

use super::*;
use crate::store::{IngestBatch, InsertOutcome, StoreError, Swept};

/// A store whose reports wait until `open` is true, counting those that began and ended.
struct HeldReports {
    open: watch::Receiver<bool>,
    began: watch::Sender<usize>,
    ended: watch::Sender<usize>,
}

impl EventStore for HeldReports {
    fn insert_batch(&self, _: IngestBatch) -> BoxFuture<'_, Result<InsertOutcome, StoreError>> {
        Box::pin(async { Ok(InsertOutcome::default()) })
    }

    fn delete_before(&self, _: i64, _: Duration) -> BoxFuture<'_, Result<Swept, StoreError>> {
        Box::pin(async { Ok(Swept::default()) })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    fn report(&self, _: ReportQuery) -> BoxFuture<'_, Result<Report, StoreError>> {
        Box::pin(async move {
            self.began.send_modify(|n| *n += 1);
            let _ = self.open.clone().wait_for(|open| *open).await;
            self.ended.send_modify(|n| *n += 1);
            Ok(Report::default())
        })
    }

    fn engine(&self) -> &'static str {
        "held"
    }
}

fn query() -> ReportQuery {
    ReportQuery::last(Duration::from_secs(3650 * 86_400))
}

#[tokio::test(start_paused = true)]
async fn a_report_past_its_deadline_is_refused_and_holds_its_permit_until_the_store_is_done() {
    let (open, open_rx) = watch::channel(false);
    let (began, _) = watch::channel(0);
    let (ended, mut ended_rx) = watch::channel(0);
    let store: Arc<dyn EventStore> = Arc::new(HeldReports {
        open: open_rx,
        began,
        ended,
    });
    let metrics = Arc::new(Metrics::default());
    let gate = ReportGate::new(1, metrics.clone(), 3);

    // The clock is paused: the deadline passes as soon as nothing else is left to do.
    let first = tokio::time::timeout(REPORT_DEADLINE * 2, gate.report(&store, query()))
        .await
        .expect("no deadline: the request waited for the report for ever");
    assert!(
        matches!(
            first,
            Err(ApiError::ReportTimeout {
                retry_after_seconds: 3
            })
        ),
        "{first:?}"
    );
    assert_eq!(metrics.refused(RefusalReason::ReportTimeout), 1);
    // The report that timed out still runs (its thread is still taken): no second one yet.
    let second = gate.report(&store, query()).await;
    assert!(
        matches!(
            second,
            Err(ApiError::ReportsBusy {
                retry_after_seconds: 3
            })
        ),
        "{second:?}"
    );
    assert_eq!(metrics.refused(RefusalReason::ReportsBusy), 1);

    open.send_replace(true);
    ended_rx.wait_for(|n| *n == 1).await.unwrap();
    assert!(gate.report(&store, query()).await.is_ok());
}
