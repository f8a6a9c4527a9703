//! The ClickHouse engine end to end, twice:
//! - against ClickHouse 18.16 as Debian packages it: a real `clickhouse-server` this test starts
//!   on 127.0.0.1 with a throw-away config (`apt-get install clickhouse-server`, listed in
//!   `crates/collector/ci-packages.txt`);
//! - against a current ClickHouse engine (chdb from PyPI, 26.x) behind `tests/chdb_http.py`, the
//!   part of the HTTP interface the collector speaks; `.ci/run` installs it in a virtualenv under
//!   the target dir and names its python in `TALLY_CHDB_PYTHON`.
//!
//! Without either, its test says so loudly and passes, except under CI (`CI` set), where it fails.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tally_test_support::net::free_port;

use common::*;
use serde_json::json;
use tally_collector::config::{ClickHouseConfig, StoreKind};
use tally_collector::fixtures::{batch, helper_thread, session, wire};
use tally_collector::report::{Report, ReportQuery};
use tally_collector::store::{ClickHouseStore, SqliteStore};
use tally_collector::{EventStore, IncomingEvent, IngestBatch, RejectedEvent};

/// A ClickHouse server child process (clickhouse-server, or the chdb shim), killed on drop.
struct Server {
    child: Child,
    http_port: u16,
    _dir: tempfile::TempDir,
}

/// Where `.ci/run` puts chdb's virtualenv when `TALLY_CHDB_PYTHON` is not set.
const DEFAULT_CHDB_PYTHON: &str = "target/chdb-venv/bin/python";

fn not_found(what: &str, install: &str) {
    let message = format!(
        "\n\n!!!!!!!! {what} NOT FOUND: the ClickHouse engine was NOT tested against it !!!!!!!!\n\
         !!!!!!!! {install} !!!!!!!!\n"
    );
    eprintln!("{message}");
    println!("{message}");
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is required under CI"
    );
}

/// A current ClickHouse engine behind `tests/chdb_http.py`.
fn start_chdb() -> Option<Server> {
    let python = match std::env::var_os("TALLY_CHDB_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(DEFAULT_CHDB_PYTHON),
    };
    if !python.is_file() {
        not_found(
            &format!("chdb's python ({})", python.display()),
            ".ci/run installs it: python3 -m venv target/chdb-venv; target/chdb-venv/bin/pip install chdb==4.4.0",
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/chdb_http.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .arg(dir.path().join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // The shim prints its port once the engine is loaded.
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    let http_port = line.trim().parse().unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("chdb_http.py did not start (printed {line:?})")
    });
    Some(Server {
        child,
        http_port,
        _dir: dir,
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_binary() -> Option<(PathBuf, bool)> {
    // Debian's 18.16 ships `clickhouse-server`; current releases ship `clickhouse server` too.
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/bin"])
    {
        let server = PathBuf::from(dir).join("clickhouse-server");
        if server.is_file() {
            return Some((server, false));
        }
        let multi = PathBuf::from(dir).join("clickhouse");
        if multi.is_file() {
            return Some((multi, true));
        }
    }
    None
}

fn start_server() -> Option<Server> {
    let Some((binary, multi)) = find_binary() else {
        not_found(
            "clickhouse-server",
            "install it with: apt-get install clickhouse-server",
        );
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (http_port, tcp_port) = (free_port(), free_port());
    let config = format!(
        r#"<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>{root}/server.log</log><errorlog>{root}/error.log</errorlog><console>0</console></logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <path>{root}/data/</path>
    <tmp_path>{root}/tmp/</tmp_path>
    <user_files_path>{root}/user_files/</user_files_path>
    <format_schema_path>{root}/format_schemas/</format_schema_path>
    <users_config>{root}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>5368709</mark_cache_size>
    <max_concurrent_queries>50</max_concurrent_queries>
    <mlock_executable>false</mlock_executable>
</yandex>
"#,
        root = root.display()
    );
    let users = r#"<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
    <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
"#;
    std::fs::write(root.join("config.xml"), config).unwrap();
    std::fs::write(root.join("users.xml"), users).unwrap();
    let mut command = Command::new(&binary);
    if multi {
        command.arg("server");
    }
    let child = command
        .arg(format!(
            "--config-file={}",
            root.join("config.xml").display()
        ))
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server {
        child,
        http_port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = std::net::TcpStream::connect(("127.0.0.1", http_port)).is_ok();
        if ok {
            return Some(server);
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            let log =
                std::fs::read_to_string(server._dir.path().join("error.log")).unwrap_or_default();
            panic!("clickhouse-server exited with {status}: {log}");
        }
        assert!(
            Instant::now() < deadline,
            "clickhouse-server did not listen within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ch_config(port: u16, database: &str) -> ClickHouseConfig {
    ClickHouseConfig {
        url: format!("http://127.0.0.1:{port}"),
        database: database.into(),
        ..ClickHouseConfig::default()
    }
}

/// The parts of a report that do not depend on when it was computed.
fn comparable(mut r: Report) -> Report {
    r.since_ms = 0;
    r.until_ms = 0;
    r
}

fn incoming(events: Vec<serde_json::Value>, account: &str) -> Vec<IncomingEvent> {
    events
        .into_iter()
        .map(|e| {
            IncomingEvent::new(
                e["event_type"].as_str().unwrap_or_default().into(),
                e["event_params"].as_object().cloned().unwrap_or_default(),
                e["event_id"].as_str().map(str::to_owned),
                account,
                Some("codex_cli_rs"),
                (an_hour_ago_s() + 3600) * 1000,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_18_16_end_to_end() {
    let Some(server) = tokio::task::spawn_blocking(start_server).await.unwrap() else {
        return;
    };
    engine_end_to_end(server.http_port).await;
    readiness_follows_the_server(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_clickhouse_end_to_end() {
    let Some(server) = tokio::task::spawn_blocking(start_chdb).await.unwrap() else {
        return;
    };
    engine_end_to_end(server.http_port).await;
    readiness_follows_the_server(server).await;
}

/// `/readyz` of a collector on `server` is 200 while it runs and 503 once it is gone, while
/// `/healthz` stays 200 (the process is up).
async fn readiness_follows_the_server(server: Server) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.store = StoreKind::Clickhouse;
    config.clickhouse = ch_config(server.http_port, "tally_ready");
    let c = start_with(config, dir).await;
    let status = |path: &'static str| {
        let request = c.http.get(c.url(path)).send();
        async move { request.await.map(|r| r.status().as_u16()).unwrap_or(0) }
    };
    assert_eq!(status("/readyz").await, 200);
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(20);
    while status("/readyz").await != 503 {
        assert!(
            std::time::Instant::now() < deadline,
            "still ready without a server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status("/healthz").await, 200);
    c.handle.shutdown().await.unwrap();
}

/// Ingest over HTTP, the same report from ClickHouse as from SQLite, and two collectors sharing
/// one ClickHouse, against the server at `port`.
async fn engine_end_to_end(port: u16) {
    // 1. Over HTTP: a collector on ClickHouse, Tally events twice, Codex events without ids,
    //    a partly invalid batch.
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.store = StoreKind::Clickhouse;
    config.clickhouse = ch_config(port, "tally_e2e");
    let c = start_with(config, dir).await;
    let events = with_ids(session("vscode", 1, 5, an_hour_ago_s()), "ch");
    let n = events.len();
    let body = batch(events);
    let (status, answer) = c.post(&body).await;
    assert_eq!(
        (status, answer["accepted"].as_u64()),
        (200, Some(n as u64)),
        "{answer}"
    );
    let (status, answer) = c.post(&body).await;
    assert_eq!(status, 200);
    assert_eq!(answer, json!({"accepted": 0, "duplicates": n}));
    let codex = batch(vec![wire(
        "codex_hook_run",
        json!({"product_client_id": "codex_cli_rs", "hook_source": "user", "status": "completed",
               "hook_name": "x'); DROP TABLE tally_e2e.events; --"}),
    )]);
    assert_eq!(c.post(&codex).await.1["accepted"], 1);
    assert_eq!(c.post(&codex).await.1["duplicates"], 1);
    let (status, answer) = c
        .post(&batch(vec![wire(
            "codex_turn_event",
            json!({"duration_ms": "x"}),
        )]))
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_events"))
    );
    let report = c.report().await;
    assert_eq!(report.totals.turns, 5);
    assert_eq!(report.totals.hook_runs, 6);
    assert_eq!(report.totals.quarantined, 1);
    assert_eq!(report.totals.events, n as u64 + 1);
    c.handle.shutdown().await.unwrap();

    // 2. The same data gives the same report on both engines.
    let mut data = Vec::new();
    data.extend(session("vscode", 2, 5, an_hour_ago_s()));
    data.extend(session("tui", 3, 3, an_hour_ago_s() + 60));
    let title = helper_thread(
        "tui",
        "thr-t",
        "thr-t",
        "thread_title",
        an_hour_ago_s() + 90,
    );
    data.extend(title);
    data.extend(helper_thread(
        "tui",
        "thr-g",
        "thr-3",
        "guardian_review",
        an_hour_ago_s() + 90,
    ));
    data.push(wire(
        "tally_analytics_dropped",
        json!({"stage": "spool", "reason": "disk_full", "dropped_event_type": "codex_hook_run",
               "count": 4, "window_end_ms": an_hour_ago_s() * 1000}),
    ));
    data.push(wire(
        "codex_plugin_used",
        json!({"plugin_id": "p", "completed_at": an_hour_ago_s()}),
    ));
    let events = incoming(data, "acct");
    let clickhouse = ClickHouseStore::open(&ch_config(port, "tally_same"))
        .await
        .unwrap();
    let sqlite_dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&tally_collector::SqliteConfig {
        path: sqlite_dir.path().join("same.sqlite3"),
        ..Default::default()
    })
    .unwrap();
    let rejects: Vec<RejectedEvent> = (0..3)
        .map(|i| RejectedEvent {
            index: i,
            event_type: Some("codex_turn_event".into()),
            field: format!("events[{i}].event_params.duration_ms"),
            reason: "expected an integer or null, got string".into(),
            raw: format!("{{\"n\":{i}}}"),
            account: "acct".into(),
            received_at_ms: (an_hour_ago_s() + 3000) * 1000,
        })
        .collect();
    for store in [&clickhouse as &dyn EventStore, &sqlite as &dyn EventStore] {
        let outcome = store
            .insert_batch(IngestBatch {
                events: events.clone(),
                rejects: rejects.clone(),
            })
            .await
            .unwrap();
        assert_eq!(outcome.inserted, events.len(), "{}", store.engine());
        assert_eq!(outcome.untyped, 1);
    }
    let query = ReportQuery::last(Duration::from_secs(86_400));
    let from_clickhouse = comparable(clickhouse.report(query.clone()).await.unwrap());
    let from_sqlite = comparable(sqlite.report(query.clone()).await.unwrap());
    assert_eq!(from_clickhouse, from_sqlite);
    assert_eq!(from_sqlite.totals.turns, 8);
    assert_eq!(
        from_sqlite.totals.sessions, 2,
        "the helper threads are not sessions"
    );
    assert_eq!(
        from_sqlite.thread_sources.len(),
        3,
        "{:?}",
        from_sqlite.thread_sources
    );
    assert_eq!(from_sqlite.totals.quarantined, 3);
    assert_eq!(from_sqlite.quarantined[0].field, "event_params.duration_ms");
    let tui = query.clone().for_client(Some("tui".into()));
    let sqlite_tui = sqlite.report(tui.clone()).await.unwrap();
    assert_eq!(
        sqlite_tui.analytics_drops.len(),
        1,
        "an app-server's drops belong to no one client: shown under any"
    );
    assert_eq!(
        comparable(clickhouse.report(tui).await.unwrap()),
        comparable(sqlite_tui)
    );

    // 2b. Token sums past i64 saturate alike (ClickHouse's Int64 sum wrapped to a negative, read
    //     as 0; SQLite's SUM failed the whole report).
    let huge = i64::MAX - 1;
    let big: Vec<serde_json::Value> = (0..3)
        .map(|i| {
            wire(
                "codex_turn_event",
                json!({"thread_id": format!("thr-big-{i}"), "model": "gpt-x",
                       "input_tokens": huge, "total_tokens": huge,
                       "completed_at": an_hour_ago_s()}),
            )
        })
        .collect();
    let big = incoming(big, "acct");
    let clickhouse = ClickHouseStore::open(&ch_config(port, "tally_big"))
        .await
        .unwrap();
    let sqlite = SqliteStore::open(&tally_collector::SqliteConfig {
        path: sqlite_dir.path().join("big.sqlite3"),
        ..Default::default()
    })
    .unwrap();
    for store in [&clickhouse as &dyn EventStore, &sqlite as &dyn EventStore] {
        store
            .insert_batch(IngestBatch::from_events(big.clone()))
            .await
            .unwrap();
    }
    let from_clickhouse = comparable(clickhouse.report(query.clone()).await.unwrap());
    let from_sqlite = comparable(sqlite.report(query.clone()).await.unwrap());
    assert_eq!(from_clickhouse, from_sqlite);
    assert_eq!(from_sqlite.totals.total_tokens, u64::MAX);
    assert_eq!(from_sqlite.tokens[0].input_tokens, u64::MAX);

    // 3. Two collectors sharing one ClickHouse: a retry through the other one stores nothing new.
    let a = ClickHouseStore::open(&ch_config(port, "tally_shared"))
        .await
        .unwrap();
    let b = ClickHouseStore::open(&ch_config(port, "tally_shared"))
        .await
        .unwrap();
    let events = incoming(
        with_ids(session("vscode", 4, 2, an_hour_ago_s()), "sh"),
        "acct",
    );
    assert_eq!(
        a.insert_batch(IngestBatch::from_events(events.clone()))
            .await
            .unwrap()
            .inserted,
        events.len()
    );
    let again = b
        .insert_batch(IngestBatch::from_events(events.clone()))
        .await
        .unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, events.len()));
    let report = b
        .report(ReportQuery::last(Duration::from_secs(86_400)))
        .await
        .unwrap();
    assert_eq!(report.totals.events, events.len() as u64);
    assert_eq!(report.totals.hook_runs, 2);

    // 4. Agent identities are shared by the fleet.
    fleet_shares_agent_identities(port).await;
}

/// Two collectors on one ClickHouse: an agent registers through one and signs its events through
/// the other; a collector started later knows it; a revocation through one is refused by the
/// others within a poll.
async fn fleet_shares_agent_identities(port: u16) {
    let collector = || async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(&dir);
        config.store = StoreKind::Clickhouse;
        config.clickhouse = ch_config(port, "tally_fleet");
        start_with(config, dir).await
    };
    let (a, b) = (collector().await, collector().await);
    let key = ed25519_dalek::SigningKey::from_bytes(&[21u8; 32]);
    let runtime = agent::register_runtime(&a, &key).await;
    let task = agent::register_task(&b, &key, &runtime).await;
    let events = batch(vec![wire(
        "codex_hook_run",
        json!({"hook_name": "Stop", "status": "completed"}),
    )]);
    let signed = |task: &str| agent::signed(&key, &runtime, task);
    let (status, answer) = post_signed(&a, signed(&task), &events).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(post_signed(&b, signed(&task), &events).await.0, 200);
    let c = collector().await;
    let (status, _) = post_signed(&c, signed(&task), &events).await;
    assert_eq!(status, 200, "a collector started later");

    let second = agent::register_task(&c, &key, &runtime).await;
    assert_eq!(post_signed(&a, signed(&second), &events).await.0, 200);
    let registry = b.handle.identities().unwrap();
    assert_eq!(registry.forget_task(&runtime, &second).await, Ok(true));
    for r in [&a, &b, &c] {
        refused_soon(r, || signed(&second), &events, "agent_task_unknown").await;
    }
    let (status, _) = post_signed(&a, signed(&task), &events).await;
    assert_eq!(status, 200, "the other task still works");
    assert_eq!(registry.revoke(&runtime).await, Ok(true));
    for r in [&a, &b, &c] {
        refused_soon(r, || signed(&task), &events, "agent_runtime_revoked").await;
    }
    // What `tally collector identities list` reads: the runtime, revoked, with its one kept task.
    let dir = tempfile::tempdir().unwrap();
    let mut cli = config(&dir);
    cli.store = StoreKind::Clickhouse;
    cli.clickhouse = ch_config(port, "tally_fleet");
    let (backend, _) = tally_collector::identity_backend::open_backend(&cli).unwrap();
    assert_eq!(backend.describe(), "ClickHouse database tally_fleet");
    let listed = backend.everything().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (
            &listed[0].agent_runtime_id,
            &listed[0].tasks,
            listed[0].revoked
        ),
        (&runtime, &vec![task.clone()], true)
    );
    assert_eq!(listed[0].account, "team-a");
    for r in [a, b, c] {
        r.handle.shutdown().await.unwrap();
    }
}

async fn post_signed(
    r: &Running,
    header: String,
    events: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = r
        .http
        .post(r.url(INGEST))
        .header("authorization", header)
        .json(events)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Posts `events` signed with `header()` to `r` until it refuses them with `code` (within 10 s:
/// a few polls).
async fn refused_soon(
    r: &Running,
    header: impl Fn() -> String,
    events: &serde_json::Value,
    code: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, answer) = post_signed(r, header(), events).await;
        if status == 401 {
            assert_eq!(answer["error"], code);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{code} did not reach {}",
            r.handle.base_url()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
