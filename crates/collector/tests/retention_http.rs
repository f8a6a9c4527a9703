//! `retention_days`: a collector started on a database holding old events deletes them at start,
//! keeps the rest, and says so in `/metrics`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use tally_collector::fixtures::{batch, wire_with_id};
use tally_collector::ReportQuery;

const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

fn turn(id: &str, days_ago: i64) -> serde_json::Value {
    let completed_at_ms = now_ms() - days_ago * DAY_MS;
    wire_with_id(
        "codex_turn_event",
        json!({"turn_id": id, "completed_at_ms": completed_at_ms}),
        id,
    )
}

async fn events_in_last(running: &Running, days: u64) -> u64 {
    let query = ReportQuery::last(Duration::from_secs(days * 86_400));
    let report = running.handle.store().report(query).await.unwrap();
    report.totals.events
}

#[tokio::test]
async fn old_events_are_deleted_when_the_collector_starts_and_the_rest_stay() {
    // A collector without retention keeps everything it is sent.
    let keeping = running().await;
    let body = batch(vec![turn("old", 40), turn("recent", 20), turn("new", 0)]);
    assert_eq!(keeping.post(&body).await.0, 200);
    assert_eq!(events_in_last(&keeping, 60).await, 3);
    let Running { handle, dir, .. } = keeping;
    handle.shutdown().await.unwrap();

    // Restarted on the same file with 30 days of retention.
    let mut config = config(&dir);
    config.retention_days = 30;
    let running = start_with(config, dir).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while events_in_last(&running, 60).await != 2 {
        assert!(Instant::now() < deadline, "the old event is still there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = running.get_text("/metrics").await;
    assert!(
        metrics.contains("\ntally_collector_retention_deleted_total 1\n"),
        "{metrics}"
    );
    // Sent again, the deleted event is a duplicate: its id is still known.
    let (status, answer) = running.post(&batch(vec![turn("old", 40)])).await;
    assert_eq!((status, answer["duplicates"].as_u64()), (200, Some(1)));
    running.handle.shutdown().await.unwrap();
}
