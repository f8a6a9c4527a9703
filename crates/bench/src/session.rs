//! Spawns `tally app-server` per run and times the handshake and one turn.

use serde_json::json;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tally_test_support::{AppClient, SchemaMode};

/// Timings of one run.
struct Run {
    cold_start: Duration,
    turn: Duration,
}

/// Runs both transports alternately (so machine noise hits both alike) and prints medians.
pub async fn run(tally: &Path, runs: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        tally.exists(),
        "{} not found; build it with cargo build --release",
        tally.display()
    );
    let mut stdio = Vec::new();
    let mut ws = Vec::new();
    for _ in 0..runs.max(1) {
        stdio.push(one_stdio(tally).await?);
        ws.push(one_websocket(tally).await?);
    }
    println!(
        "{:<10} {:>8} {:>16} {:>16} {:>14} {:>14}",
        "transport", "runs", "cold start p50", "cold start p90", "turn p50", "turn p90"
    );
    for (name, r) in [("stdio", &stdio), ("websocket", &ws)] {
        let cold: Vec<Duration> = r.iter().map(|x| x.cold_start).collect();
        let turn: Vec<Duration> = r.iter().map(|x| x.turn).collect();
        println!(
            "{:<10} {:>8} {:>16.2?} {:>16.2?} {:>14.2?} {:>14.2?}",
            name,
            r.len(),
            quantile(&cold, 0.5),
            quantile(&cold, 0.9),
            quantile(&turn, 0.5),
            quantile(&turn, 0.9)
        );
    }
    Ok(())
}

fn quantile(samples: &[Duration], q: f64) -> Duration {
    let mut v = samples.to_vec();
    v.sort();
    let idx = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(idx).copied().unwrap_or_default()
}

fn command(tally: &Path, home: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(tally);
    cmd.arg("--home")
        .arg(home)
        .env_remove("OPENAI_API_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    cmd
}

async fn one_stdio(tally: &Path) -> anyhow::Result<Run> {
    let home = tempdir()?;
    let start = Instant::now();
    let mut child = command(tally, &home).arg("app-server").spawn()?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdin"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut client = AppClient::over_lines(stdout, stdin, SchemaMode::Stable);
    let run = session(&mut client, start).await;
    client.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    let _ = std::fs::remove_dir_all(&home);
    Ok(run)
}

async fn one_websocket(tally: &Path) -> anyhow::Result<Run> {
    let home = tempdir()?;
    let port = free_port()?;
    let start = Instant::now();
    let mut child = command(tally, &home)
        .arg("app-server")
        .arg("--listen")
        .arg(format!("ws://127.0.0.1:{port}"))
        .spawn()?;
    let url = format!("ws://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        anyhow::ensure!(Instant::now() < deadline, "tally did not listen on {url}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut client = AppClient::over_websocket(&url, SchemaMode::Stable).await;
    let run = session(&mut client, start).await;
    let _ = child.kill().await;
    let _ = std::fs::remove_dir_all(&home);
    Ok(run)
}

async fn session(client: &mut AppClient, start: Instant) -> Run {
    client.initialize(false).await;
    let cold_start = start.elapsed();
    let started = client.call_ok("thread/start", json!({})).await;
    let thread_id = started["thread"]["id"].clone();
    let t = Instant::now();
    client
        .request(
            "turn/start",
            json!({"threadId": thread_id, "input": [{"type": "text", "text": "benchmark", "text_elements": []}]}),
        )
        .await;
    client.notification("turn/completed").await;
    Run {
        cold_start,
        turn: t.elapsed(),
    }
}

fn tempdir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "tally-bench-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}
