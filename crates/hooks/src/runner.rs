//! Runs one command hook: a child process in its own process group, fed the payload on stdin,
//! with captured output capped and a deadline after which the whole group is killed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// Bytes kept from each of stdout and stderr; the rest is read and dropped so the hook never blocks.
pub const OUTPUT_CAP: usize = 64 * 1024;

/// How long a killed hook may take to be reaped before Tally stops waiting for it.
const REAP_DEADLINE: Duration = Duration::from_secs(2);

/// How hooks are started.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The shell run as `<shell> -lc <command>`; `None` means `$SHELL`, else `/bin/sh`.
    pub shell: Option<PathBuf>,
    /// Bytes kept from each output stream.
    pub output_cap: usize,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            shell: None,
            output_cap: OUTPUT_CAP,
        }
    }
}

/// What a run produced; `error` is set when it could not run to an exit code.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOutput {
    pub exit_code: Option<i32>,
    /// Lossy UTF-8, at most the cap.
    pub stdout: String,
    pub stderr: String,
    pub error: Option<String>,
}

/// Runs `command` in `cwd`, writes `stdin` and closes it, and waits at most `timeout`.
pub async fn run_command(
    config: &RunnerConfig,
    command: &str,
    cwd: &Path,
    stdin: &str,
    timeout: Duration,
) -> RunOutput {
    let shell = config
        .shell
        .clone()
        .or_else(|| {
            std::env::var_os("SHELL")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("/bin/sh"));
    let mut cmd = Command::new(shell);
    cmd.arg("-lc")
        .arg(command)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Its own group, so a timeout also kills what the hook started.
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return RunOutput {
                error: Some(format!("failed to start hook: {e}")),
                ..RunOutput::default()
            }
        }
    };
    let pid = child.id();
    // If this future is dropped mid-run (the turn or server goes away), the group goes too.
    let mut guard = GroupGuard(pid);
    let (Some(mut input), Some(out), Some(err)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return RunOutput {
            error: Some("failed to open the hook's pipes".into()),
            ..RunOutput::default()
        };
    };
    let cap = config.output_cap;
    let payload = stdin.as_bytes().to_vec();
    let work = async {
        let write = async move {
            let r = input.write_all(&payload).await;
            drop(input);
            match r {
                // A hook that exits without reading its input is not an error.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
                _ => Ok(()),
            }
        };
        let (w, stdout, stderr) = tokio::join!(write, read_capped(out, cap), read_capped(err, cap));
        let status = child.wait().await;
        (w, stdout, stderr, status)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok((write, stdout, stderr, status)) => {
            guard.0 = None;
            let mut output = RunOutput {
                stdout: String::from_utf8_lossy(&stdout).into_owned(),
                stderr: String::from_utf8_lossy(&stderr).into_owned(),
                ..RunOutput::default()
            };
            match (write, status) {
                (Err(e), _) => {
                    output.error = Some(format!("failed to write the hook's stdin: {e}"))
                }
                (_, Err(e)) => output.error = Some(format!("failed to wait for the hook: {e}")),
                (_, Ok(s)) => match s.code() {
                    Some(code) => output.exit_code = Some(code),
                    None => output.error = Some("hook was killed before it exited".into()),
                },
            }
            output
        }
        Err(_) => {
            guard.0 = None;
            kill_group(pid);
            let _ = child.start_kill();
            let _ = tokio::time::timeout(REAP_DEADLINE, child.wait()).await;
            RunOutput {
                error: Some(format!("hook timed out after {}s", timeout.as_secs())),
                ..RunOutput::default()
            }
        }
    }
}

/// Kills the hook's process group when dropped while still armed.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0.take());
    }
}

/// Reads a stream to its end, keeping the first `cap` bytes.
async fn read_capped(mut r: impl AsyncRead + Unpin, cap: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

#[cfg(unix)]
fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: killpg only sends a signal; the group was created for this hook.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
    }
}

#[cfg(not(unix))]
fn kill_group(_pid: Option<u32>) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn sh() -> RunnerConfig {
        RunnerConfig {
            shell: Some(PathBuf::from("/bin/sh")),
            output_cap: 1024,
        }
    }

    async fn run(command: &str, stdin: &str, timeout: Duration) -> RunOutput {
        let dir = std::env::temp_dir();
        run_command(&sh(), command, &dir, stdin, timeout).await
    }

    #[tokio::test]
    async fn stdin_is_the_payload_and_output_and_code_are_captured() {
        let out = run(
            "cat; echo oops >&2; exit 3",
            "{\"a\":1}",
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(out.stdout, "{\"a\":1}");
        assert_eq!(out.stderr, "oops\n");
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.error, None);
    }

    #[tokio::test]
    async fn a_hanging_hook_and_its_children_are_killed_at_the_timeout() {
        let started = Instant::now();
        let out = run("sleep 30 & sleep 30", "", Duration::from_secs(1)).await;
        assert_eq!(out.error.as_deref(), Some("hook timed out after 1s"));
        assert_eq!(out.exit_code, None);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn dropping_a_run_kills_its_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let command = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let config = sh();
        let mut run = Box::pin(run_command(
            &config,
            &command,
            dir.path(),
            "",
            Duration::from_secs(30),
        ));
        // Poll (with the run still going) until the background child has written its pid.
        let pid: i32 = loop {
            tokio::select! {
                _ = &mut run => panic!("the hook ended before it was dropped"),
                _ = tokio::time::sleep(Duration::from_millis(20)) => {
                    let text = std::fs::read_to_string(&pid_file).unwrap_or_default();
                    if let Ok(pid) = text.trim().parse() {
                        break pid;
                    }
                }
            }
        };
        drop(run);
        let deadline = Instant::now() + Duration::from_secs(5);
        // SAFETY: signal 0 only checks whether the process exists.
        while unsafe { libc::kill(pid, 0) } == 0 {
            assert!(
                Instant::now() < deadline,
                "the hook's child outlived the run"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_flood_is_capped_and_the_hook_still_finishes() {
        let out = run(
            "head -c 5000000 /dev/zero | tr '\\0' x",
            "",
            Duration::from_secs(20),
        )
        .await;
        assert_eq!(out.exit_code, Some(0));
        assert_eq!(out.stdout.len(), 1024);
    }

    #[tokio::test]
    async fn a_hook_that_ignores_stdin_is_fine() {
        let big = "x".repeat(1 << 20);
        let out = run("exit 0", &big, Duration::from_secs(10)).await;
        assert_eq!(out.exit_code, Some(0));
        assert_eq!(out.error, None);
    }
}
