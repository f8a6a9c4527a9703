use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::config::SqliteConfig;
use crate::event::IncomingEvent;
use crate::store::{IngestBatch, SqliteStore};

fn turn(completed_at_ms: i64, id: &str) -> IncomingEvent {
    let params = json!({"completed_at_ms": completed_at_ms, "turn_id": id});
    let params = params.as_object().cloned().unwrap_or_default();
    let now = crate::time::now_ms();
    IncomingEvent::new(
        "codex_turn_event".into(),
        params,
        Some(id.into()),
        "",
        None,
        now,
    )
}

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    let config = SqliteConfig {
        path: dir.path().join("sweep.sqlite3"),
        ..SqliteConfig::default()
    };
    SqliteStore::open(&config).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_sweep_deletes_what_is_past_the_window_counts_it_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = open(&dir);
    let now = crate::time::now_ms();
    let events = vec![
        turn(now - 31 * DAY_MS, "old"),
        turn(now - 29 * DAY_MS, "recent"),
        turn(now - 1000, "new"),
    ];
    let stored = store.insert_batch(IngestBatch::from_events(events)).await;
    assert_eq!(stored.map(|o| o.inserted).ok(), Some(3));
    let store: Arc<dyn EventStore> = Arc::new(store);
    let metrics = Metrics::default();

    assert_eq!(sweep(store.as_ref(), 30, &metrics).await.ok(), Some(1));
    assert_eq!(sweep(store.as_ref(), 30, &metrics).await.ok(), Some(0));
    let rendered = metrics.render(0, 1);
    assert!(
        rendered.contains("\ntally_collector_retention_deleted_total 1\n"),
        "{rendered}"
    );
    let report = store
        .report(crate::report::ReportQuery::last(
            std::time::Duration::from_secs(60 * 86_400),
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.totals.events, 2);
}

#[tokio::test]
async fn no_sweeper_runs_when_everything_is_kept() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = open(&dir);
    let sweeper = spawn_sweeper(Arc::new(store), 0, Arc::new(Metrics::default()));
    assert!(sweeper.is_none());
}
