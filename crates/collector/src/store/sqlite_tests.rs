use serde_json::{json, Map, Value};

use super::*;
use crate::config::SqliteConfig;
use crate::event::IncomingEvent;

const NOW: i64 = 1_800_000_000_000;

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    open_at(dir.path().join("nested").join("a.sqlite3"))
}

fn open_at(path: std::path::PathBuf) -> SqliteStore {
    SqliteStore::open(&SqliteConfig {
        path,
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
fn processes_opening_a_new_file_at_once_each_get_it_migrated_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.sqlite3");
    let start = std::sync::Barrier::new(4);
    let opened: Vec<Result<i64, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let config = SqliteConfig {
                        path: path.clone(),
                        ..SqliteConfig::default()
                    };
                    SqliteStore::open(&config)
                        .and_then(|store| store.schema_version())
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("panicked".into())))
            .collect()
    });
    let latest = MIGRATIONS.last().map(|m| m.0).unwrap();
    assert!(opened.iter().all(|v| *v == Ok(latest)), "{opened:?}");
    let store = open_at(path);
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM schema_version"),
        i64::try_from(MIGRATIONS.len()).unwrap()
    );
}

#[test]
fn migrations_run_once_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let latest = MIGRATIONS.last().map(|m| m.0).unwrap();
    assert_eq!(store.schema_version().unwrap(), latest);
    drop(store);
    let store = open(&dir);
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM schema_version"),
        i64::try_from(MIGRATIONS.len()).unwrap()
    );
    let mode: String = store
        .with_reader(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(mode, "wal");
    let page_size: i64 = store
        .with_reader(|c| Ok(c.query_row("PRAGMA page_size", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(page_size, i64::from(SqliteConfig::default().page_size));
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
        let names = COMMON_COLUMNS
            .iter()
            .copied()
            .chain(family.columns.iter().map(|c| c.name));
        for name in names {
            assert!(
                cols.iter().any(|c| c == name),
                "{}.{name} missing",
                family.table,
            );
        }
    }
}

#[test]
fn every_family_is_stored_once_in_its_own_table_and_seen_in_all_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut events: Vec<IncomingEvent> = FAMILIES
        .iter()
        .map(|f| event(f.event_types[0], json!({"thread_id": f.table}), None, "a"))
        .collect();
    events.push(event("codex_something_new", json!({"n": 1}), None, "a"));
    let outcome = store
        .insert_batch_blocking(&IngestBatch::from_events(events))
        .unwrap();
    assert_eq!(outcome.inserted, FAMILIES.len() + 1);
    assert_eq!(outcome.untyped, 1);
    for family in FAMILIES {
        let sql = format!(
            "SELECT COUNT(*) FROM {} WHERE params IS NOT NULL",
            family.table
        );
        assert_eq!(count(&store, &sql), 1, "{}", family.table);
    }
    let all = i64::try_from(FAMILIES.len() + 1).unwrap();
    assert_eq!(count(&store, "SELECT COUNT(*) FROM all_events"), all);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM event_ids"), all);
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM events"),
        1,
        "only the untyped one"
    );
}

/// A database as a collector of schema `version` left it (migrations up to it, recorded).
fn database_at_version(path: &std::path::Path, version: i64) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL)",
    )
    .unwrap();
    for (v, sql) in MIGRATIONS.iter().filter(|m| m.0 <= version) {
        conn.execute_batch(sql).unwrap();
        conn.execute("INSERT INTO schema_version VALUES (?1, 0)", [v])
            .unwrap();
    }
    conn
}

#[test]
fn a_version_1_database_is_migrated_without_losing_or_repeating_an_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.sqlite3");
    {
        // The layout version 1 wrote: every event in `events`, typed ones also in their table.
        let conn = database_at_version(&path, 1);
        conn.execute_batch(
            r#"INSERT INTO events VALUES
                 (1, 'a', 'turn-1', 'client', 'codex_turn_event', 5, 1800000000000, 'vscode', '{"turn_id":"t1"}'),
                 (2, 'a', 'new-1', 'client', 'codex_something_new', 6, 1800000000001, 'tui', '{"n":1}');
               INSERT INTO turns (seq, ts_ms, client, account, event_type, turn_id)
                 VALUES (1, 1800000000000, 'vscode', 'a', 'codex_turn_event', 't1');"#,
        )
        .unwrap();
    }
    let store = open_at(path);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM all_events"), 2);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM events"), 1);
    let moved: (String, String, i64) = store
        .with_reader(|c| {
            Ok(c.query_row(
                "SELECT event_id, params, received_at_ms FROM turns WHERE turn_id = 't1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
        .unwrap();
    assert_eq!(moved, ("turn-1".into(), r#"{"turn_id":"t1"}"#.into(), 5));
    // Both ids are known: sending either event again stores nothing.
    let again = IngestBatch::from_events(vec![
        event(
            "codex_turn_event",
            json!({"turn_id": "t1"}),
            Some("turn-1"),
            "a",
        ),
        event("codex_something_new", json!({"n": 1}), Some("new-1"), "a"),
    ]);
    let outcome = store.insert_batch_blocking(&again).unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (0, 2));
    // New events after the migration land beside the old ones.
    let fresh = event(
        "codex_turn_event",
        json!({"turn_id": "t2"}),
        Some("turn-2"),
        "a",
    );
    store
        .insert_batch_blocking(&IngestBatch::from_events(vec![fresh]))
        .unwrap();
    assert_eq!(count(&store, "SELECT COUNT(*) FROM turns"), 2);
    assert_eq!(count(&store, "SELECT COUNT(DISTINCT seq) FROM turns"), 2);
}

#[test]
fn a_version_2_database_still_knows_its_derived_ids_after_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.sqlite3");
    let timed = |n: i64| {
        event(
            "codex_something_new",
            json!({"n": n, "created_at": 1_790_000_000}),
            None,
            "a",
        )
    };
    let old = timed(1);
    {
        // The layout version 2 wrote: ids claimed by (account, event_id) alone.
        let conn = database_at_version(&path, 2);
        for (id, source) in [(old.event_id.as_str(), "derived"), ("sent-1", "client")] {
            conn.execute(
                "INSERT INTO events (account, event_id, id_source, event_type, received_at_ms, ts_ms, client, params)
                 VALUES ('a', ?1, ?2, 'codex_something_new', 0, 0, 'tui', '{}')",
                [id, source],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO event_ids (account, event_id) VALUES ('a', ?1)",
                [id],
            )
            .unwrap();
        }
    }
    let store = open_at(path);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM legacy_derived_ids"), 1);
    // Retries of both old events are duplicates; a new derived event is stored, filed at its own
    // time, and is a duplicate when retried.
    let sent = event("codex_something_new", json!({"n": 1}), Some("sent-1"), "a");
    let retry = IngestBatch::from_events(vec![old.clone(), sent, timed(2)]);
    let outcome = store.insert_batch_blocking(&retry).unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (1, 2));
    let outcome = store.insert_batch_blocking(&retry).unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (0, 3));
    let at = "SELECT at_ms FROM event_ids WHERE event_id LIKE 'sha256:%'";
    assert_eq!(count(&store, at), 1_790_000_000_000);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM all_events"), 3);
}

#[test]
fn derived_ids_are_filed_at_the_event_s_own_time_and_sent_ids_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let batch = IngestBatch::from_events(vec![
        event(
            "codex_hook_run",
            json!({"completed_at_ms": NOW - 5}),
            None,
            "a",
        ),
        event("codex_hook_run", json!({"status": "completed"}), None, "a"),
        event(
            "codex_hook_run",
            json!({"completed_at_ms": NOW - 7}),
            Some("id-1"),
            "a",
        ),
    ]);
    assert_eq!(store.insert_batch_blocking(&batch).unwrap().inserted, 3);
    let at: Vec<i64> = store
        .with_reader(|c| {
            let mut stmt = c.prepare("SELECT at_ms FROM event_ids ORDER BY at_ms")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .unwrap();
    assert_eq!(at, vec![0, 0, NOW - 5]);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM legacy_derived_ids"), 0);
    assert_eq!(store.insert_batch_blocking(&batch).unwrap().duplicates, 3);
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
    assert_eq!(count(&store, "SELECT COUNT(*) FROM all_events"), 3);
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
                "SELECT params FROM all_events WHERE event_type = 'codex_plugin_used'",
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
    assert_eq!(count(&store, "SELECT COUNT(*) FROM all_events"), 1);
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
        .execute_batch(FAIL_GOAL_WRITES)
        .unwrap();
    let batch = IngestBatch::from_events(vec![
        event("codex_hook_run", json!({"status": "completed"}), None, "a"),
        event("codex_goal_event", json!({"goal_id": "g"}), None, "a"),
    ]);
    assert!(store.insert_batch_blocking(&batch).is_err());
    assert_eq!(count(&store, "SELECT COUNT(*) FROM all_events"), 0);
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
        .execute_batch(FAIL_GOAL_WRITES)
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
    assert_eq!(count(&store, "SELECT COUNT(*) FROM all_events"), 2);
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM all_events WHERE event_id LIKE 'bad-%'"
        ),
        0,
        "the failed batch left nothing behind"
    );
}

/// Makes every write to `goals` fail, as a full disk or a broken table would.
const FAIL_GOAL_WRITES: &str = "CREATE TRIGGER goals_fail BEFORE INSERT ON goals
     BEGIN SELECT RAISE(ABORT, 'goals cannot be written'); END;";

/// One event of every family and one untyped, for `client` at `ts_ms`.
fn events_of_every_table(client: &str, ts_ms: i64) -> Vec<IncomingEvent> {
    let params = json!({"product_client_id": client, "completed_at_ms": ts_ms});
    FAMILIES
        .iter()
        .map(|f| f.event_types[0])
        .chain(["codex_something_new"])
        .map(|ty| event(ty, params.clone(), None, "a"))
        .collect()
}

#[test]
fn the_report_counts_events_and_lists_clients_of_every_table_in_its_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let hour = 3_600_000;
    let mut events = events_of_every_table("vscode", NOW - 1_000);
    events.extend(events_of_every_table("tui", NOW - 5_000));
    events.extend(events_of_every_table("old", NOW - 30 * hour));
    store
        .insert_batch_blocking(&IngestBatch::from_events(events))
        .unwrap();
    let report = |client: Option<&str>| {
        let query = ReportQuery {
            since_ms: NOW - hour,
            until_ms: NOW,
            client: client.map(str::to_owned),
            bucket_ms: hour,
        };
        store
            .with_reader(|c| super::super::sqlite_report::build(c, &query))
            .unwrap()
    };
    let per_client = u64::try_from(FAMILIES.len() + 1).unwrap();
    let all = report(None);
    assert_eq!(all.totals.events, 2 * per_client);
    let in_view = format!(
        "SELECT COUNT(*) FROM all_events WHERE ts_ms >= {} AND ts_ms < {NOW}",
        NOW - hour
    );
    assert_eq!(
        all.totals.events,
        u64::try_from(count(&store, &in_view)).unwrap()
    );
    assert_eq!(all.clients, ["tui", "vscode"]);
    assert_eq!(report(Some("tui")).totals.events, per_client);
    assert_eq!(report(Some("old")).totals.events, 0);
}

#[test]
fn the_report_counts_and_lists_clients_from_the_time_indexes_alone() {
    // Rows are wide (the raw params are in them): reading them for a count made the 30-day
    // report of a million events take seconds.
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let tables = FAMILIES.len() + 1;
    let with_clients = super::super::sqlite_schema::event_tables()
        .filter(|t| !crate::family::is_clientless_table(t))
        .count();
    assert_eq!(
        with_clients,
        tables - 2,
        "drops and fingerprints name no client"
    );
    for (sql, tables) in [
        (super::super::sqlite_report::events_count_sql(), tables),
        (super::super::sqlite_report::clients_sql(), with_clients),
    ] {
        let plan: Vec<String> = store
            .with_reader(|c| {
                let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let unbound = vec![rusqlite::types::Null; stmt.parameter_count()];
                let rows = stmt.query_map(rusqlite::params_from_iter(unbound), |r| {
                    r.get::<_, String>(3)
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .unwrap();
        let reads: Vec<&String> = plan
            .iter()
            .filter(|step| step.starts_with("SCAN") || step.starts_with("SEARCH"))
            .filter(|step| *step != "SCAN CONSTANT ROW")
            .collect();
        assert_eq!(reads.len(), tables, "{plan:#?}");
        for step in reads {
            assert!(step.contains("USING COVERING INDEX"), "{step}\n{plan:#?}");
        }
    }
}

#[test]
fn approvals_without_a_status_are_counted_and_the_report_still_builds() {
    // A group whose statuses were all missing summed to NULL, and the whole report failed.
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let review = |item: &str, status: Option<&str>| {
        let mut params = json!({"reviewer": "user", "subject_kind": "command_execution",
            "item_id": item, "completed_at_ms": NOW - 1_000});
        if let Some(status) = status {
            params["status"] = json!(status);
        }
        event("codex_review_event", params, None, "a")
    };
    let events = vec![
        review("1", None),
        review("2", None),
        review("3", Some("approved")),
    ];
    store
        .insert_batch_blocking(&IngestBatch::from_events(events))
        .unwrap();
    let query = ReportQuery {
        since_ms: NOW - 60_000,
        until_ms: NOW,
        client: None,
        bucket_ms: 3_600_000,
    };
    let report = store
        .with_reader(|c| super::super::sqlite_report::build(c, &query))
        .unwrap();
    let row = &report.approvals[0];
    assert_eq!((row.total, row.approved, row.denied), (3, 1, 0));
    let only_missing = vec![review("1", None)];
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .insert_batch_blocking(&IngestBatch::from_events(only_missing))
        .unwrap();
    let report = store
        .with_reader(|c| super::super::sqlite_report::build(c, &query))
        .unwrap();
    assert_eq!(
        (report.approvals[0].total, report.approvals[0].approved),
        (1, 0)
    );
}

#[tokio::test]
async fn the_store_is_ready_while_a_long_report_holds_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let reporter = store.clone();
    let report = std::thread::spawn(move || {
        reporter.with_reader(|_| {
            let _ = held_tx.send(());
            let _ = release_rx.recv_timeout(std::time::Duration::from_secs(10));
            Ok(())
        })
    });
    held_rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let ready = tokio::time::timeout(std::time::Duration::from_secs(2), store.ready()).await;
    let _ = release_tx.send(());
    report.join().unwrap().unwrap();
    assert!(matches!(ready, Ok(Ok(()))), "{ready:?}");
}

/// An app-server's drop report names no client (only its sender's `originator`): it shows under
/// any client filter, and the sender's name is not offered as a client.
#[test]
fn drops_show_under_every_client_and_their_sender_is_not_a_client() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let at = NOW - 60_000;
    let from_tally = |ty: &str, params: Value| {
        IncomingEvent::new(ty.into(), obj(params), None, "a", Some("tally"), NOW)
    };
    let mut events = vec![
        from_tally(
            crate::family::ANALYTICS_DROPPED,
            json!({"stage": "queue", "reason": "full", "count": 3, "window_end_ms": at}),
        ),
        from_tally(
            crate::family::ACCEPTED_LINE_FINGERPRINTS,
            json!({"thread_id": "t", "turn_id": "u", "completed_at": at / 1000}),
        ),
        event(
            "codex_turn_event",
            json!({"product_client_id": "vscode", "completed_at": at / 1000}),
            None,
            "a",
        ),
    ];
    // More untyped types than the report lists: the total still counts them all.
    events.extend((0..60).map(|i| {
        event(
            &format!("codex_new_{i:02}"),
            json!({"product_client_id": "vscode", "completed_at": at / 1000}),
            None,
            "a",
        )
    }));
    store
        .insert_batch_blocking(&IngestBatch::from_events(events))
        .unwrap();
    let report = |client: Option<&str>| {
        let query = ReportQuery {
            since_ms: NOW - 3_600_000,
            until_ms: NOW,
            client: client.map(str::to_owned),
            bucket_ms: 3_600_000,
        };
        store
            .with_reader(|c| super::super::sqlite_report::build(c, &query))
            .unwrap()
    };
    let all = report(None);
    assert_eq!(all.clients, ["vscode"]);
    assert_eq!(all.other_event_types.len(), 50);
    assert_eq!(all.totals.untyped_events, 60);
    let vscode = report(Some("vscode"));
    assert_eq!(vscode.analytics_drops.len(), 1, "{vscode:?}");
    assert_eq!(vscode.analytics_drops[0].count, 3);
    assert!(vscode
        .to_string()
        .contains("Analytics dropped by app-servers (all clients)"));
}
