//! A collector killed with SIGKILL in the middle of ingest loses nothing it acknowledged: the
//! collector runs as a separate process (`examples/collector.rs`), posters keep sending while it
//! dies, and a restarted collector on the same file holds every acknowledged event.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use tally_collector::fixtures::{batch, wire_with_id};

/// `target/<profile>/examples/collector`, built by `cargo test` with this test.
fn collector_example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    profile_dir.join("examples").join("collector")
}

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the example collector on an ephemeral port; returns it and its base URL.
fn spawn(config: &Path) -> (Process, String) {
    let binary = collector_example();
    assert!(
        binary.is_file(),
        "{} is missing: run the tests with cargo test (which builds examples)",
        binary.display()
    );
    let mut child = Command::new(binary)
        .arg(config)
        .arg("127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("collector listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    (Process(child), url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("analytics.sqlite3");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\nallow_unauthenticated = \"loopback\"\n[collector.sqlite]\npath = {:?}\n",
            db.display().to_string()
        ),
    )
    .unwrap();
    let (mut process, url) = spawn(&config);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<String>>();
    let mut posters = Vec::new();
    for p in 0..3 {
        let (http, url, acked_tx) = (http.clone(), url.clone(), acked_tx.clone());
        posters.push(tokio::spawn(async move {
            for i in 0..100_000 {
                let ids: Vec<String> = (0..25).map(|k| format!("p{p}-b{i}-e{k}")).collect();
                let events = ids
                    .iter()
                    .map(|id| wire_with_id("codex_hook_run", json!({"status": "completed"}), id))
                    .collect();
                let sent = http
                    .post(format!("{url}/codex/analytics-events/events"))
                    .json(&batch(events))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 200 => {
                        let _ = acked_tx.send(ids);
                    }
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => return, // the collector is dead
                }
            }
        }));
    }
    drop(acked_tx);
    // Kill it without warning once a good number of batches were acknowledged.
    let mut acked: HashSet<String> = HashSet::new();
    while acked.len() < 2_000 {
        match acked_rx.recv().await {
            Some(ids) => acked.extend(ids),
            None => break,
        }
    }
    process.0.kill().unwrap();
    let _ = process.0.wait();
    for p in posters {
        p.await.unwrap();
    }
    while let Some(ids) = acked_rx.recv().await {
        acked.extend(ids);
    }
    assert!(acked.len() >= 2_000, "only {} acknowledged", acked.len());

    // Restart on the same file (recovers the WAL), then read it directly.
    let (restarted, url) = spawn(&config);
    let health: serde_json::Value = http
        .get(format!("{url}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    drop(restarted);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let mut stmt = conn.prepare("SELECT event_id FROM all_events").unwrap();
    let stored: HashSet<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let lost = acked.iter().filter(|id| !stored.contains(*id)).count();
    assert_eq!(
        lost,
        0,
        "{lost} of {} acknowledged events lost",
        acked.len()
    );
    let typed: i64 = conn
        .query_row("SELECT COUNT(*) FROM hook_runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(typed as usize, stored.len(), "typed rows match raw rows");
}
