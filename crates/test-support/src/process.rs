//! Child processes of the binaries under test.

use std::time::Duration;

/// Sends SIGTERM to `child` and waits (up to `deadline`) for it to exit; its exit status.
pub async fn terminate(
    child: &mut tokio::process::Child,
    deadline: Duration,
) -> std::process::ExitStatus {
    let pid = child.id().expect("the child is running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success(), "kill -TERM {pid}");
    tokio::time::timeout(deadline, child.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("wait")
}
