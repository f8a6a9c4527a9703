//! `tally collector` as a service manager runs it: SIGTERM stops it cleanly (queue drained, the
//! database closed), not by the signal's default of dying on the spot.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn sigterm_drains_and_closes_the_collector() {
    let home = tempfile::tempdir().expect("home");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("--home")
        .arg(home.path())
        .args(["collector", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("runs");
    let stdout = child.stdout.take().expect("stdout");
    let first = tokio::time::timeout(DEADLINE, BufReader::new(stdout).lines().next_line())
        .await
        .expect("prints its address")
        .expect("reads");
    let addr = first
        .and_then(|l| {
            l.strip_prefix("Tally collector listening on http://")
                .map(str::to_owned)
        })
        .expect("an address line");
    // An event, stored (anonymous ingest from loopback is the default).
    let answer = post(
        &addr,
        r#"{"events":[{"event_type":"x_y","event_params":{}}]}"#,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let db = home.path().join("collector").join("tally.db");
    assert!(wal_of(&db).exists(), "the database is open in WAL mode");

    let status = tally_test_support::process::terminate(&mut child, DEADLINE).await;
    assert!(status.success(), "{status:?}");
    // The last connection to close checkpoints the WAL into the database and removes it.
    assert!(!wal_of(&db).exists(), "the database was not closed");
}

/// A collector whose stdout nobody reads (a supervisor closed the pipe) still starts, serves and
/// stops cleanly: printing its banner must not take it down.
#[tokio::test]
async fn a_closed_stdout_does_not_stop_the_collector() {
    let home = tempfile::tempdir().expect("home");
    let addr = free_loopback_addr();
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("--home")
        .arg(home.path())
        .args(["collector", "--listen", &addr])
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("runs");
    let started = tokio::time::Instant::now();
    while tokio::net::TcpStream::connect(&addr).await.is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the collector exited before listening: {status:?}");
        }
        assert!(started.elapsed() < DEADLINE, "the collector never listened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answer = post(
        &addr,
        r#"{"events":[{"event_type":"x_y","event_params":{}}]}"#,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let status = tally_test_support::process::terminate(&mut child, DEADLINE).await;
    assert!(status.success(), "{status:?}");
}

/// A loopback address no one listens on now (the port the kernel handed out, released).
fn free_loopback_addr() -> String {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    probe.local_addr().expect("address").to_string()
}

/// The raw answer to a POST of `body` to the ingest endpoint.
async fn post(addr: &str, body: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let request = format!(
        "POST /codex/analytics-events/events HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("sends");
    let mut answer = String::new();
    let read = stream.read_to_string(&mut answer);
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("answers")
        .expect("reads");
    answer
}

fn wal_of(db: &Path) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}
