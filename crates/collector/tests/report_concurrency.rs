//! Reports are computed a few at a time: a dashboard or `/api/report` request beyond them is
//! refused at once (503 with `Retry-After`, counted), and ingest goes on meanwhile.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::future::BoxFuture;
use tally_collector::fixtures::{batch, session};
use tally_collector::report::{Report, ReportQuery};
use tally_collector::report_gate::MAX_CONCURRENT_REPORTS;
use tally_collector::store::{IngestBatch, InsertOutcome, SqliteStore, StoreError, Swept};
use tally_collector::{Collector, EventStore};
use tokio::sync::watch;

/// A SQLite store whose reports wait until `open` is true (a long report, held).
struct HeldReports {
    inner: SqliteStore,
    open: watch::Receiver<bool>,
    began: watch::Sender<usize>,
}

impl EventStore for HeldReports {
    fn insert_batch(&self, batch: IngestBatch) -> BoxFuture<'_, Result<InsertOutcome, StoreError>> {
        self.inner.insert_batch(batch)
    }

    fn insert_batches(
        &self,
        batches: Vec<IngestBatch>,
    ) -> BoxFuture<'_, Vec<Result<InsertOutcome, StoreError>>> {
        self.inner.insert_batches(batches)
    }

    fn delete_before(
        &self,
        cutoff_ms: i64,
        budget: Duration,
    ) -> BoxFuture<'_, Result<Swept, StoreError>> {
        self.inner.delete_before(cutoff_ms, budget)
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.ready()
    }

    fn report(&self, query: ReportQuery) -> BoxFuture<'_, Result<Report, StoreError>> {
        Box::pin(async move {
            self.began.send_modify(|n| *n += 1);
            let _ = self.open.clone().wait_for(|open| *open).await;
            self.inner.report(query).await
        })
    }

    fn engine(&self) -> &'static str {
        "sqlite"
    }
}

#[tokio::test]
async fn reports_beyond_the_limit_get_503_with_retry_after_while_ingest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir);
    let inner = SqliteStore::open(&config.sqlite).unwrap();
    let (open, open_rx) = watch::channel(false);
    let (began, mut began_rx) = watch::channel(0);
    let store = Arc::new(HeldReports {
        inner,
        open: open_rx,
        began,
    });
    let collector = Collector::with_store(config, store).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(collector.serve(listener, async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let get = |path: &str| http.get(format!("{base}{path}")).send();

    // As many long reports as are computed at once, half of them dashboards.
    let held: Vec<_> = (0..MAX_CONCURRENT_REPORTS)
        .map(|i| {
            let path = if i % 2 == 0 {
                "/api/report?since=3650d"
            } else {
                "/?since=3650d"
            };
            tokio::spawn(get(path))
        })
        .collect();
    began_rx
        .wait_for(|n| *n == MAX_CONCURRENT_REPORTS)
        .await
        .unwrap();

    // One more is refused at once, not queued behind them.
    let refused = tokio::time::timeout(Duration::from_secs(10), get("/api/report?since=3650d"))
        .await
        .expect("the report beyond the limit waited instead of being refused")
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "reports_busy", "{body}");
    let page = tokio::time::timeout(Duration::from_secs(10), get("/?since=3650d"))
        .await
        .expect("the dashboard beyond the limit waited instead of being refused")
        .unwrap();
    assert_eq!(page.status(), 503);
    assert_eq!(page.headers()["retry-after"], "1");
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("reports are being computed already"));

    // Ingest is not held up by them.
    let response = http
        .post(format!("{base}{INGEST}"))
        .bearer_auth(TOKEN)
        .json(&batch(with_ids(
            session("vscode", 1, 1, an_hour_ago_s()),
            "c",
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("tally_collector_requests_refused_total{reason=\"reports_busy\"} 2\n"),
        "{metrics}"
    );

    open.send_replace(true);
    for request in held {
        assert_eq!(request.await.unwrap().unwrap().status(), 200);
    }
    let report: Report = get("/api/report?since=1d")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report.totals.turns, 1);
    let _ = stop.send(());
    served.await.unwrap().unwrap();
}
