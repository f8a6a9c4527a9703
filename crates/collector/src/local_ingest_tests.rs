use std::time::Duration;

use serde_json::json;

use super::*;
use crate::{Collector, CollectorConfig, IncomingEvent};

fn hook_runs(ids: &[&str]) -> IngestBatch {
    let events = ids
        .iter()
        .map(|id| {
            let params =
                json!({"thread_id": "thr-1", "hook_source": "user", "status": "completed"});
            let params = params.as_object().cloned().unwrap_or_default();
            let id = Some((*id).to_owned());
            IncomingEvent::new(
                "codex_hook_run".into(),
                params,
                id,
                "local",
                Some("tally"),
                1,
            )
        })
        .collect();
    IngestBatch::from_events(events)
}

fn metrics_line<'a>(metrics: &'a str, name: &str) -> &'a str {
    metrics
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or("")
}

#[tokio::test]
async fn local_batches_are_stored_deduplicated_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = CollectorConfig::embedded(dir.path().join("tally.db"));
    let collector = Collector::open(config).await.expect("opens");
    let local = collector.local_ingest();

    let first = local.send(hook_runs(&["a", "b"])).await.expect("stored");
    assert_eq!((first.inserted, first.duplicates), (2, 0));
    let again = local.send(hook_runs(&["a", "b"])).await.expect("stored");
    assert_eq!((again.inserted, again.duplicates), (0, 2));

    let state = collector.state();
    let metrics = state.metrics.render(0, 1);
    assert_eq!(
        metrics_line(&metrics, "tally_collector_events_ingested_total"),
        "tally_collector_events_ingested_total 2"
    );
    assert_eq!(
        metrics_line(&metrics, "tally_collector_events_deduplicated_total"),
        "tally_collector_events_deduplicated_total 2"
    );
    assert_eq!(
        metrics_line(&metrics, "tally_collector_store_latency_seconds_count"),
        "tally_collector_store_latency_seconds_count 2"
    );
}

#[tokio::test]
async fn a_stopped_collector_refuses_local_batches_and_is_not_kept_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = CollectorConfig::embedded(dir.path().join("tally.db"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let handle = crate::start(config, listener).await.expect("starts");
    let local = handle.local_ingest();
    assert!(local.send(hook_runs(&["a"])).await.is_ok());
    // A sender still held must not hold up the drain (which would wait out its deadline).
    tokio::time::timeout(Duration::from_secs(5), handle.shutdown())
        .await
        .expect("stops promptly")
        .expect("stops cleanly");
    assert_eq!(
        local.send(hook_runs(&["b"])).await,
        Err(LocalIngestError::Stopped)
    );
}
