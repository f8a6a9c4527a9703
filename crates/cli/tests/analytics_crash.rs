//! kill -9 between "batch POSTed" and "2xx received": the batch is in the spool, and the next
//! start delivers it, each event exactly once by `event_id`.

use serde_json::json;
use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tally_analytics::delivery::{read_spool_stats, spool_dir_for_home};
use tally_test_support::{AppClient, FakeCollector, SchemaMode};

fn tally(home: &std::path::Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tally"));
    cmd.arg("--home")
        .arg(home)
        .arg("app-server")
        .env_remove("OPENAI_API_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    cmd
}

fn write_config(home: &std::path::Path, collector_url: &str) {
    let text = format!("[analytics]\ncollector_url = \"{collector_url}\"\n");
    std::fs::write(home.join("config.toml"), text).expect("config");
}

/// A collector that accepts connections and reads, but never answers.
async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (url, task)
}

#[tokio::test]
async fn a_kill_before_the_2xx_loses_nothing_and_the_restart_delivers_once() {
    let home = tempfile::tempdir().expect("home");
    let (hole, hole_task) = black_hole().await;
    write_config(home.path(), &hole);
    let mut child = tally(home.path()).spawn().expect("spawn");
    let mut client = AppClient::over_lines(
        child.stdout.take().expect("stdout"),
        child.stdin.take().expect("stdin"),
        SchemaMode::Stable,
    );
    client.initialize(false).await;
    let started = client.call_ok("thread/start", json!({})).await;
    client
        .call_ok(
            "turn/start",
            json!({"threadId": started["thread"]["id"], "input": [{"type": "text", "text": "x", "text_elements": []}]}),
        )
        .await;
    client.notification("turn/completed").await;

    // Wait until the batch is durable in the spool (it closes within 2 s), then kill -9.
    let spool = spool_dir_for_home(home.path());
    let deadline = Instant::now() + Duration::from_secs(10);
    while read_spool_stats(&spool).map(|s| s.events).unwrap_or(0) < 2 {
        assert!(Instant::now() < deadline, "events never reached the spool");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.start_kill().expect("kill -9");
    let _ = child.wait().await;
    hole_task.abort();

    // Restart against a collector that answers; stdin closes at once, so this is a pure flush.
    let collector = FakeCollector::start().await;
    write_config(home.path(), collector.url());
    let mut child = tally(home.path()).spawn().expect("respawn");
    drop(child.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("restarted tally exits")
        .expect("wait");
    assert!(status.success());
    let events = collector.wait_for_events(2, Duration::from_secs(5)).await;
    let types = tally_test_support::event_types(&events);
    assert_eq!(types, vec!["codex_thread_initialized", "codex_turn_event"]);
    let ids: HashSet<&str> = events
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    assert_eq!(ids.len(), events.len(), "each event exactly once");
    assert_eq!(
        read_spool_stats(&spool).map(|s| s.events).unwrap_or(99),
        0,
        "the spool is drained"
    );
}
