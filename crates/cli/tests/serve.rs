//! `tally serve`: a session over WebSocket lands in the embedded collector, and `tally report`
//! (a second process reading the same store) shows it.

use serde_json::{json, Value};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tally_test_support::net::free_port;
use tally_test_support::{AppClient, SchemaMode};

async fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A thread with one turn over the WebSocket of the `tally serve` on `ws`.
async fn one_turn(ws: u16) {
    let mut client =
        AppClient::over_websocket(&format!("ws://127.0.0.1:{ws}"), SchemaMode::Stable).await;
    client.initialize(false).await;
    let started = client.call_ok("thread/start", json!({})).await;
    client
        .call_ok(
            "turn/start",
            json!({"threadId": started["thread"]["id"], "input": [{"type": "text", "text": "hello", "text_elements": []}]}),
        )
        .await;
    client.notification("turn/completed").await;
}

#[tokio::test]
async fn serve_records_a_session_that_report_shows() {
    let home = tempfile::tempdir().expect("home");
    let (ws, http) = (free_port(), free_port());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("--home")
        .arg(home.path())
        .arg("serve")
        .arg("--listen")
        .arg(format!("ws://127.0.0.1:{ws}"))
        .arg("--collector-listen")
        .arg(format!("127.0.0.1:{http}"))
        .env_remove("OPENAI_API_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn tally serve");
    wait_listening(ws).await;
    wait_listening(http).await;
    one_turn(ws).await;

    // Batches close after at most 2 s; poll the report until the turn shows.
    let deadline = Instant::now() + Duration::from_secs(15);
    let report: Value = loop {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tally"))
            .arg("--home")
            .arg(home.path())
            .args(["report", "--since", "1h", "--json"])
            .output()
            .await
            .expect("run tally report");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).expect("report is JSON");
        if report["totals"]["turns"].as_i64().unwrap_or(0) >= 1 || Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(report["totals"]["turns"], 1, "{report:#}");
    assert!(
        report["clients"].to_string().contains("tally-test"),
        "{report:#}"
    );
    let dashboard = reqwest_get(http, "/").await;
    assert!(dashboard.contains("<svg"), "the dashboard renders charts");
    // Tally's own events pass through the collector's ingest queue, so its metrics count them.
    let metrics = reqwest_get(http, "/metrics").await;
    let ingested = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tally_collector_events_ingested_total "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(ingested.is_some_and(|n| n >= 2), "{metrics}");
    let _ = child.kill().await;
}

async fn reqwest_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn serve_sends_to_the_collector_the_config_names_instead_of_its_own() {
    // The team's collector, in this process.
    let team = tempfile::tempdir().expect("team dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let config = tally_collector::CollectorConfig::embedded(team.path().join("team.db"));
    let collector = tally_collector::start(config, listener)
        .await
        .expect("collector");

    let home = tempfile::tempdir().expect("home");
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[analytics]\ncollector_url = \"{}\"\n",
            collector.base_url()
        ),
    )
    .expect("config");
    let (ws, http) = (free_port(), free_port());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("--home")
        .arg(home.path())
        .args(["serve", "--listen", &format!("ws://127.0.0.1:{ws}")])
        .args(["--collector-listen", &format!("127.0.0.1:{http}")])
        .env_remove("OPENAI_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn tally serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let mut banner = String::new();
    while !banner.contains("analytics:") && !banner.contains("dashboard:") {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("prints where the numbers go")
            .expect("reads")
            .expect("a line");
        banner.push_str(&line);
        banner.push('\n');
    }
    let sent_to = format!("analytics:  sent to {}", collector.base_url());
    assert!(banner.contains(&sent_to), "{banner}");
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", http))
            .await
            .is_err(),
        "an embedded collector was started too"
    );

    one_turn(ws).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let query = tally_collector::ReportQuery::last(Duration::from_secs(3600));
        let report = collector.store().report(query).await.expect("report");
        if report.totals.turns >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the team's collector got no turn"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = child.kill().await;
    collector.shutdown().await.expect("collector stops");
}
