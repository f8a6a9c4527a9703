//! Back-pressure, store timeouts, shutdown and restart: nothing acknowledged is ever lost.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::future::BoxFuture;
use serde_json::{json, Value};
use tally_collector::fixtures::{batch, wire_with_id};
use tally_collector::report::{Report, ReportQuery};
use tally_collector::store::{SqliteStore, Swept};
use tally_collector::{
    Collector, EventStore, IncomingEvent, IngestBatch, InsertOutcome, LocalIngest,
    LocalIngestError, StoreError,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};

/// A store whose writes wait for a permit, and announce that they started.
struct GatedStore {
    inner: SqliteStore,
    gate: Arc<Semaphore>,
    entered: mpsc::UnboundedSender<()>,
}

impl EventStore for GatedStore {
    fn insert_batch(&self, batch: IngestBatch) -> BoxFuture<'_, Result<InsertOutcome, StoreError>> {
        Box::pin(async move {
            let _ = self.entered.send(());
            let permit = self
                .gate
                .acquire()
                .await
                .map_err(|e| StoreError::Worker(e.to_string()))?;
            permit.forget();
            self.inner.insert_batch(batch).await
        })
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
        self.inner.report(query)
    }

    fn engine(&self) -> &'static str {
        "gated"
    }
}

struct Gated {
    base: String,
    gate: Arc<Semaphore>,
    entered: mpsc::UnboundedReceiver<()>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    store: Arc<dyn EventStore>,
    local: LocalIngest,
    _dir: tempfile::TempDir,
}

async fn gated(queue_capacity: usize, store_timeout_ms: u64) -> Gated {
    gated_with(queue_capacity, store_timeout_ms, 64).await
}

async fn gated_with(queue_capacity: usize, store_timeout_ms: u64, inflight: usize) -> Gated {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.max_inflight_requests = inflight;
    config.queue_capacity = queue_capacity;
    config.store_timeout_ms = store_timeout_ms;
    config.retry_after_seconds = 2;
    let inner = SqliteStore::open(&config.sqlite).unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let (tx, entered) = mpsc::unbounded_channel();
    let store: Arc<dyn EventStore> = Arc::new(GatedStore {
        inner,
        gate: gate.clone(),
        entered: tx,
    });
    let collector = Collector::with_store(config, store.clone()).unwrap();
    let local = collector.local_ingest();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(collector.serve(listener, async move {
        let _ = stopped.await;
    }));
    Gated {
        base,
        gate,
        entered,
        stop,
        task,
        store,
        local,
        _dir: dir,
    }
}

fn one_event(id: &str) -> Value {
    batch(vec![wire_with_id(
        "codex_hook_run",
        json!({"status": "completed"}),
        id,
    )])
}

/// Polls `/healthz` (bounded) until the ingest queue holds `depth` batches.
async fn wait_for_queue_depth(http: &reqwest::Client, base: &str, depth: u64) {
    for _ in 0..500 {
        let health: Value = http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if health["queue_depth"] == depth {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("queue depth never reached {depth}");
}

async fn metrics(http: &reqwest::Client, base: &str) -> String {
    let response = http.get(format!("{base}/metrics")).send().await.unwrap();
    response.text().await.unwrap()
}

async fn post(http: &reqwest::Client, base: &str, body: &Value) -> reqwest::Response {
    http.post(format!("{base}{INGEST}"))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after() {
    let mut g = gated(1, 30_000).await;
    let http = reqwest::Client::new();
    // A is taken by the writer and blocks in the store; B waits in the queue; C finds it full.
    let a = tokio::spawn({
        let (http, base) = (http.clone(), g.base.clone());
        async move { post(&http, &base, &one_event("a")).await.status() }
    });
    g.entered.recv().await.unwrap();
    let b = tokio::spawn({
        let (http, base) = (http.clone(), g.base.clone());
        async move { post(&http, &base, &one_event("b")).await.status() }
    });
    wait_for_queue_depth(&http, &g.base, 1).await;
    let c = post(&http, &g.base, &one_event("c")).await;
    assert_eq!(c.status(), 429);
    assert_eq!(c.headers()["retry-after"], "2");
    let body: Value = c.json().await.unwrap();
    assert_eq!(body["error"], "queue_full");

    g.gate.add_permits(100);
    assert_eq!(a.await.unwrap(), 200);
    assert_eq!(b.await.unwrap(), 200);
    let metrics = metrics(&http, &g.base).await;
    assert!(metrics.contains("tally_collector_requests_refused_total{reason=\"queue_full\"} 1\n"));
    let _ = g.stop.send(());
    g.task.await.unwrap().unwrap();
}

/// One hook run from the collector's own process (as `tally serve` sends its analytics).
fn one_local_event(id: &str) -> IngestBatch {
    let params = json!({"thread_id": "thr-1", "hook_source": "user", "status": "completed"});
    let params = params.as_object().cloned().unwrap_or_default();
    let event = IncomingEvent::new(
        "codex_hook_run".into(),
        params,
        Some(id.into()),
        "local",
        None,
        1,
    );
    IngestBatch::from_events(vec![event])
}

#[tokio::test]
async fn a_full_queue_refuses_local_batches_too() {
    let mut g = gated(1, 30_000).await;
    let http = reqwest::Client::new();
    let send = |id: &'static str| {
        let local = g.local.clone();
        tokio::spawn(async move { local.send(one_local_event(id)).await })
    };
    let a = send("a");
    g.entered.recv().await.unwrap();
    let b = send("b");
    wait_for_queue_depth(&http, &g.base, 1).await;
    assert_eq!(
        g.local.send(one_local_event("c")).await,
        Err(LocalIngestError::QueueFull {
            retry_after_seconds: 2
        })
    );
    g.gate.add_permits(100);
    assert_eq!(a.await.unwrap().unwrap().inserted, 1);
    assert_eq!(b.await.unwrap().unwrap().inserted, 1);
    let metrics = metrics(&http, &g.base).await;
    assert!(metrics.contains("tally_collector_requests_refused_total{reason=\"queue_full\"} 1\n"));
    assert!(metrics.contains("tally_collector_refused_events_total 1\n"));
    assert!(metrics.contains("tally_collector_events_ingested_total 2\n"));
    let _ = g.stop.send(());
    g.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn requests_beyond_the_inflight_limit_get_429() {
    let mut g = gated_with(8, 30_000, 1).await;
    let http = reqwest::Client::new();
    let a = tokio::spawn({
        let (http, base) = (http.clone(), g.base.clone());
        async move { post(&http, &base, &one_event("a")).await.status() }
    });
    g.entered.recv().await.unwrap();
    let b = post(&http, &g.base, &one_event("b")).await;
    assert_eq!(
        b.status(),
        429,
        "the only request slot is held by the stalled write"
    );
    assert_eq!(b.headers()["retry-after"], "2");
    g.gate.add_permits(100);
    assert_eq!(a.await.unwrap(), 200);
    assert_eq!(post(&http, &g.base, &one_event("b")).await.status(), 200);
    let _ = g.stop.send(());
    g.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_slow_store_answers_503_and_a_retry_is_idempotent() {
    let mut g = gated(4, 200).await;
    let http = reqwest::Client::new();
    let response = post(&http, &g.base, &one_event("slow")).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
    g.entered.recv().await.unwrap();
    g.gate.add_permits(100);
    // The write finishes after the 503; the writer drains, then the sender's retry is a duplicate.
    wait_for_queue_depth(&http, &g.base, 0).await;
    let mut answer = Value::Null;
    for _ in 0..50 {
        let r = post(&http, &g.base, &one_event("slow")).await;
        answer = r.json().await.unwrap();
        if answer["duplicates"] == 1 {
            break;
        }
    }
    assert_eq!(answer, json!({"accepted": 0, "duplicates": 1}));
    let report = g
        .store
        .report(ReportQuery::last(Duration::from_secs(86_400)))
        .await
        .unwrap();
    assert_eq!(report.totals.hook_runs, 1);
    let _ = g.stop.send(());
    g.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn acknowledged_events_survive_a_restart_mid_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir);
    let c = start_with(config.clone(), dir).await;
    let (acked_tx, mut acked_rx) = mpsc::unbounded_channel::<usize>();
    let mut posters = Vec::new();
    for p in 0..4 {
        let http = c.http.clone();
        let url = c.url(INGEST);
        let acked_tx = acked_tx.clone();
        posters.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            // Keeps sending through the shutdown until the collector refuses connections.
            for i in 0..10_000 {
                let ids: Vec<String> = (0..20).map(|k| format!("p{p}-b{i}-e{k}")).collect();
                let events = ids
                    .iter()
                    .map(|id| wire_with_id("codex_hook_run", json!({"status": "completed"}), id))
                    .collect();
                match http
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .json(&batch(events))
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => {
                        let _ = acked_tx.send(ids.len());
                        acked.extend(ids);
                    }
                    Ok(_) => {}
                    Err(_) => break, // the collector is gone
                }
            }
            acked
        }));
    }
    drop(acked_tx);
    // Let some batches through, then stop the collector while the posters are still sending.
    let mut acknowledged = 0;
    while acknowledged < 400 {
        match tokio::time::timeout(Duration::from_secs(60), acked_rx.recv()).await {
            Ok(Some(n)) => acknowledged += n,
            _ => break,
        }
    }
    let Running { handle, dir, .. } = c;
    tokio::time::timeout(Duration::from_secs(20), handle.shutdown())
        .await
        .expect("shutdown finished within its deadline")
        .unwrap();
    let mut acked = HashSet::new();
    for p in posters {
        acked.extend(p.await.unwrap());
    }
    assert!(acked.len() >= 400, "only {} acknowledged", acked.len());

    // Restart on the same file: every acknowledged id is there.
    let reopened = start_with(config, dir).await;
    let path = reopened.dir.path().join("analytics.sqlite3");
    let stored = tokio::task::spawn_blocking(move || stored_event_ids(&path))
        .await
        .unwrap();
    let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    reopened.handle.shutdown().await.unwrap();
}

/// Event ids in the database file, read with a plain SQLite connection.
fn stored_event_ids(path: &std::path::Path) -> HashSet<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT event_id FROM all_events").unwrap();
    let ids = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<HashSet<_>, _>>();
    ids.unwrap()
}

#[test]
fn shutdown_leaves_nothing_running() {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let c = running().await;
            let (status, _) = c.post(&one_event("x")).await;
            assert_eq!(status, 200);
            c.handle.shutdown().await.unwrap();
        });
        // Dropping the runtime waits for every task it still runs; it must not hang.
        drop(rt);
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the runtime ended after shutdown");
}
