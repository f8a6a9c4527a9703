//! `--listen` targets and WebSocket auth flags of the binary: unix sockets, and the refusal of a
//! non-loopback listener without auth.

use serde_json::json;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tally_test_support::{AppClient, SchemaMode};

const DEADLINE: Duration = Duration::from_secs(10);

fn tally(home: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tally"));
    cmd.arg("--home")
        .arg(home)
        .env_remove("OPENAI_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

async fn wait_for_socket(path: &Path) {
    let deadline = Instant::now() + DEADLINE;
    while tokio::net::UnixStream::connect(path).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn non_loopback_listener_without_auth_is_refused_naming_the_flags() {
    let home = tempfile::tempdir().expect("home");
    let out = tokio::time::timeout(
        DEADLINE,
        tally(home.path())
            .args(["app-server", "--listen", "ws://0.0.0.0:0"])
            .output(),
    )
    .await
    .expect("exits at once")
    .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--ws-auth capability-token --ws-token-file PATH"),
        "{stderr}"
    );
    assert!(stderr.contains("--ws-shared-secret-file"), "{stderr}");
}

#[tokio::test]
async fn ws_auth_without_its_file_is_refused() {
    let home = tempfile::tempdir().expect("home");
    let out = tally(home.path())
        .args([
            "app-server",
            "--listen",
            "ws://0.0.0.0:0",
            "--ws-auth",
            "capability-token",
        ])
        .output()
        .await
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--ws-token-file"), "{stderr}");
}

#[tokio::test]
async fn unix_default_socket_serves_a_session_and_is_removed_on_sigterm() {
    let home = tempfile::tempdir().expect("home");
    let path = home
        .path()
        .join("app-server-control/app-server-control.sock");
    let mut child = tally(home.path())
        .args(["app-server", "--listen", "unix://"])
        .spawn()
        .expect("spawn");
    wait_for_socket(&path).await;

    // A second server on the same socket: "already in use", naming the path.
    let second = tokio::time::timeout(
        DEADLINE,
        tally(home.path())
            .args([
                "app-server",
                "--listen",
                &format!("unix://{}", path.display()),
            ])
            .output(),
    )
    .await
    .expect("exits at once")
    .expect("runs");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("already in use"), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");

    let mut client = AppClient::over_unix_socket(&path, SchemaMode::Stable).await;
    client.initialize(false).await;
    client.call_ok("thread/start", json!({})).await;
    client.close();

    let status = tally_test_support::process::terminate(&mut child, DEADLINE).await;
    assert!(status.success(), "{status:?}");
    assert!(!path.exists(), "the socket file is removed at shutdown");
}
