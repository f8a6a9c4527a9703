use serde_json::{json, Map, Value};

use super::*;
use crate::config::SqliteConfig;
use crate::event::IncomingEvent;

const NOW: i64 = 1_800_000_000_000;

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&SqliteConfig {
        path: dir.path().join("nested").join("a.sqlite3"),
        ..SqliteConfig::default()
    })
    .unwrap()
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn event(ty: &str, params: Value, id: Option<&str>, account: &str) -> IncomingEvent {
    IncomingEvent::new(
        ty.into(),
        obj(params),
        id.map(str::to_owned),
        account,
        None,
        NOW,
    )
}

fn count(store: &SqliteStore, sql: &str) -> i64 {
    store
        .with_reader(|c| Ok(c.query_row(sql, [], |r| r.get(0))?))
        .unwrap()
}

#[test]
fn migrations_run_once_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    assert_eq!(store.schema_version().unwrap(), 1);
    drop(store);
    let store = open(&dir);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM schema_version"), 1);
    let mode: String = store
        .with_reader(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_database_from_a_newer_collector_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(&dir));
    let conn = Connection::open(dir.path().join("nested").join("a.sqlite3")).unwrap();
    conn.execute(
        "INSERT INTO schema_version (version, applied_at_ms) VALUES (99, 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let err = SqliteStore::open(&SqliteConfig {
        path: dir.path().join("nested").join("a.sqlite3"),
        ..SqliteConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn every_family_column_exists_in_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for family in FAMILIES {
        let cols: Vec<String> = store
            .with_reader(|c| {
                let mut stmt = c.prepare(&format!("PRAGMA table_info({})", family.table))?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(1))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .unwrap();
        for column in family.columns {
            assert!(
                cols.iter().any(|c| c == column.name),
                "{}.{} missing",
                family.table,
                column.name
            );
        }
    }
}

#[test]
fn the_same_batch_twice_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let batch = IngestBatch::from_events(vec![
        event(
            "codex_hook_run",
            json!({"status": "completed", "hook_source": "user"}),
            None,
            "a",
        ),
        event(
            "codex_turn_event",
            json!({"turn_id": "t1", "total_tokens": 10}),
            Some("id-1"),
            "a",
        ),
        event("codex_something_new", json!({"x": 1}), None, "a"),
    ]);
    let first = store.insert_batch_blocking(&batch).unwrap();
    assert_eq!(
        first,
        InsertOutcome {
            inserted: 3,
            duplicates: 0,
            untyped: 1,
            quarantined: 0
        }
    );
    let second = store.insert_batch_blocking(&batch).unwrap();
    assert_eq!(second.inserted, 0);
    assert_eq!(second.duplicates, 3);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM events"), 3);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM hook_runs"), 1);
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM turns WHERE total_tokens = 10"),
        1
    );
}

#[test]
fn ids_are_unique_per_account() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let p = json!({"status": "completed"});
    let batch = IngestBatch::from_events(vec![
        event("codex_hook_run", p.clone(), Some("same-id"), "a"),
        event("codex_hook_run", p.clone(), Some("same-id"), "b"),
        event("codex_hook_run", p.clone(), None, "a"),
        event("codex_hook_run", p, None, "b"),
    ]);
    let outcome = store.insert_batch_blocking(&batch).unwrap();
    assert_eq!(
        outcome.inserted, 4,
        "one account cannot shadow another's events"
    );
}

#[test]
fn unknown_types_are_kept_raw_with_their_params() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let params = json!({"plugin_id": "p-1", "nested": {"a": [1, 2]}});
    store
        .insert_batch_blocking(&IngestBatch::from_events(vec![event(
            "codex_plugin_used",
            params.clone(),
            None,
            "a",
        )]))
        .unwrap();
    let raw: String = store
        .with_reader(|c| {
            Ok(c.query_row(
                "SELECT params FROM events WHERE event_type = 'codex_plugin_used'",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&raw).unwrap(), params);
}

#[test]
fn typed_columns_hold_the_values_sent() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let events = crate::fixtures::session("vscode", 1, 1, 1_760_000_000);
    let incoming: Vec<IncomingEvent> = events
        .into_iter()
        .map(|e| {
            event(
                e["event_type"].as_str().unwrap(),
                e["event_params"].clone(),
                None,
                "acct",
            )
        })
        .collect();
    store
        .insert_batch_blocking(&IngestBatch::from_events(incoming))
        .unwrap();
    let row: (String, String, i64, i64, i64) = store
        .with_reader(|c| {
            Ok(c.query_row(
                "SELECT client, status, is_first_turn, total_tokens, ts_ms FROM turns",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?)
        })
        .unwrap();
    assert_eq!(
        row,
        (
            "vscode".into(),
            "completed".into(),
            1,
            1500,
            1_760_000_002_000
        )
    );
    let action: String = store
        .with_reader(|c| {
            Ok(c.query_row(
                "SELECT reviewed_action_type FROM guardian_reviews",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(action, "unified_exec");
}

#[test]
fn sql_looking_strings_are_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let evil = "x'); DROP TABLE events; --";
    store
        .insert_batch_blocking(&IngestBatch::from_events(vec![event(
            "codex_hook_run",
            json!({"hook_name": evil, "status": "completed"}),
            Some("a'; DELETE FROM events; --"),
            evil,
        )]))
        .unwrap();
    let stored: String = store
        .with_reader(|c| Ok(c.query_row("SELECT hook_name FROM hook_runs", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(stored, evil);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM events"), 1);
}

#[test]
fn rejects_are_quarantined_once_even_when_the_batch_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let reject = crate::event::RejectedEvent {
        index: 3,
        event_type: Some("codex_turn_event".into()),
        field: "events[3].event_params.duration_ms".into(),
        reason: "expected an integer or null, got string".into(),
        raw: r#"{"event_type":"codex_turn_event"}"#.into(),
        account: "a".into(),
        received_at_ms: NOW,
    };
    let batch = IngestBatch {
        events: Vec::new(),
        rejects: vec![reject],
    };
    assert_eq!(store.insert_batch_blocking(&batch).unwrap().quarantined, 1);
    assert_eq!(store.insert_batch_blocking(&batch).unwrap().quarantined, 0);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM rejects"), 1);
}

#[test]
fn a_failed_batch_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    // Break the typed insert of one family: the whole transaction must roll back.
    store
        .writer
        .lock()
        .unwrap()
        .execute_batch("DROP TABLE goals")
        .unwrap();
    let batch = IngestBatch::from_events(vec![
        event("codex_hook_run", json!({"status": "completed"}), None, "a"),
        event("codex_goal_event", json!({"goal_id": "g"}), None, "a"),
    ]);
    assert!(store.insert_batch_blocking(&batch).is_err());
    assert_eq!(count(&store, "SELECT COUNT(*) FROM events"), 0);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM hook_runs"), 0);
}

#[test]
fn group_commit_keeps_each_batch_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .writer
        .lock()
        .unwrap()
        .execute_batch("DROP TABLE goals")
        .unwrap();
    let good = |id: &str| {
        IngestBatch::from_events(vec![event(
            "codex_hook_run",
            json!({"status": "completed"}),
            Some(id),
            "a",
        )])
    };
    let bad = IngestBatch::from_events(vec![
        event(
            "codex_hook_run",
            json!({"status": "completed"}),
            Some("bad-1"),
            "a",
        ),
        event(
            "codex_goal_event",
            json!({"goal_id": "g"}),
            Some("bad-2"),
            "a",
        ),
    ]);
    let results = store.insert_batches_blocking(&[good("one"), bad, good("two"), good("one")]);
    let inserted: Vec<Option<usize>> = results
        .iter()
        .map(|r| r.as_ref().ok().map(|o| o.inserted))
        .collect();
    assert_eq!(inserted, vec![Some(1), None, Some(1), Some(0)]);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM events"), 2);
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM events WHERE event_id LIKE 'bad-%'"
        ),
        0,
        "the failed batch left nothing behind"
    );
}
