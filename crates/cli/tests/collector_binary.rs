//! `tally collector` as a service manager runs it: SIGTERM stops it cleanly (queue drained, the
//! database closed), not by the signal's default of dying on the spot; and a stdout with no
//! reader does not stop it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn sigterm_drains_and_closes_the_collector() {
    let home = tempfile::tempdir().expect("home");
    let mut child = collector(home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
/// stops cleanly: printing its banner must not take it down. (Its address is read from its log.)
#[tokio::test]
async fn a_closed_stdout_does_not_stop_the_collector() {
    let home = tempfile::tempdir().expect("home");
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut child = collector(home.path())
        .env("RUST_LOG", "info")
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut log = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = log.next_line().await.expect("reads the log") {
            if let Some(addr) = logged_address(&line) {
                return addr;
            }
        }
        panic!("the collector exited before listening");
    })
    .await
    .expect("logs its address");
    // The log is drained from here on, so its writes never block the collector.
    tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });
    let answer = post(
        &addr,
        r#"{"events":[{"event_type":"x_y","event_params":{}}]}"#,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let status = tally_test_support::process::terminate(&mut child, DEADLINE).await;
    assert!(status.success(), "{status:?}");
}

/// `tally collector` on an ephemeral loopback port with `home`, killed if the test drops it.
fn collector(home: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tally"));
    command
        .arg("--home")
        .arg(home)
        .args(["collector", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// The address of a `collector listening addr=…` log line.
fn logged_address(line: &str) -> Option<String> {
    if !line.contains("collector listening") {
        return None;
    }
    let rest = line.split("addr=").nth(1)?;
    Some(rest.split_whitespace().next()?.to_owned())
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
