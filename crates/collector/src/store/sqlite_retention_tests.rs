use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::config::SqliteConfig;
use crate::event::{IncomingEvent, RejectedEvent};
use crate::store::{IngestBatch, InsertOutcome};

const NOW: i64 = 1_800_000_000_000;
const DAY: i64 = 86_400_000;

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&SqliteConfig {
        path: dir.path().join("retention.sqlite3"),
        ..SqliteConfig::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// An event of `ty` that happened `days_ago`, with id `id`.
fn event(ty: &str, days_ago: i64, id: &str) -> IncomingEvent {
    let params = json!({"completed_at_ms": NOW - days_ago * DAY, "thread_id": "thr-1"});
    let params = params.as_object().cloned().unwrap_or_default();
    IncomingEvent::new(ty.into(), params, Some(id.into()), "team-a", None, NOW)
}

fn reject(days_ago: i64) -> RejectedEvent {
    RejectedEvent {
        index: 0,
        event_type: None,
        field: format!("events[0] ({days_ago} days ago)"),
        reason: "expected an object".into(),
        raw: "1".into(),
        account: "team-a".into(),
        received_at_ms: NOW - days_ago * DAY,
    }
}

fn count(store: &SqliteStore, sql: &str) -> i64 {
    store
        .with_reader(|c| Ok(c.query_row(sql, [], |r| r.get(0))?))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn insert(store: &SqliteStore, batch: IngestBatch) -> InsertOutcome {
    store
        .insert_batch_blocking(&batch)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `(deleted, done)` of deleting what is older than 30 days, `chunk` rows at a time, until
/// `deadline`.
fn sweep(store: &SqliteStore, chunk: usize, deadline: Instant) -> (u64, bool) {
    let swept = store
        .delete_before_blocking(NOW - 30 * DAY, chunk, deadline)
        .unwrap_or_else(|e| panic!("{e}"));
    (swept.deleted, swept.done)
}

/// Old and new events of two families and of an untyped type, and old and new rejects.
fn fill(store: &SqliteStore) {
    let mut events = Vec::new();
    for (i, days_ago) in [40, 35, 31, 29, 0].into_iter().enumerate() {
        for ty in ["codex_turn_event", "codex_hook_run", "codex_something_new"] {
            events.push(event(ty, days_ago, &format!("{ty}-{i}")));
        }
    }
    let batch = IngestBatch {
        events,
        rejects: vec![reject(45), reject(1)],
    };
    assert_eq!(insert(store, batch).inserted, 15);
}

#[test]
fn events_older_than_the_cutoff_go_from_every_table_and_their_ids_stay_claimed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = open(&dir);
    fill(&store);
    let far = Instant::now() + Duration::from_secs(60);
    // Chunks of 2 rows, 3 old rows in each table: two chunks and a last look per table.
    assert_eq!(sweep(&store, 2, far), (10, true));
    assert_eq!(count(&store, "SELECT COUNT(*) FROM all_events"), 6);
    let oldest_kept = NOW - 29 * DAY;
    assert_eq!(
        count(&store, "SELECT MIN(ts_ms) FROM all_events"),
        oldest_kept
    );
    for table in ["turns", "hook_runs", "events"] {
        assert_eq!(count(&store, &format!("SELECT COUNT(*) FROM {table}")), 2);
    }
    assert_eq!(count(&store, "SELECT COUNT(*) FROM rejects"), 1);
    // A deleted event sent again is a duplicate, not stored again.
    let again = insert(
        &store,
        IngestBatch::from_events(vec![event("codex_turn_event", 40, "codex_turn_event-0")]),
    );
    assert_eq!((again.inserted, again.duplicates), (0, 1));
    // Nothing older is left.
    assert_eq!(sweep(&store, 2, far), (0, true));
}

#[test]
fn a_sweep_stops_at_its_deadline_and_the_next_one_goes_on() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = open(&dir);
    fill(&store);
    assert_eq!(sweep(&store, 1, Instant::now()), (0, false));
    assert_eq!(count(&store, "SELECT COUNT(*) FROM all_events"), 15);
    let far = Instant::now() + Duration::from_secs(60);
    assert_eq!(sweep(&store, 1, far), (10, true));
}

#[test]
fn old_rows_are_found_through_the_time_indexes() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = open(&dir);
    for (table, time) in retention_tables() {
        let sql = format!("EXPLAIN QUERY PLAN SELECT rowid FROM {table} WHERE {time} < 1 LIMIT 5");
        let plan: String = store
            .with_reader(|c| Ok(c.query_row(&sql, [], |r| r.get(3))?))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            plan.starts_with("SEARCH") && plan.contains("COVERING INDEX"),
            "{table}: {plan}"
        );
    }
}
