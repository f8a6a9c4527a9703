//! Runs one shell command: its own process group, merged stdout/stderr streamed as deltas,
//! output capped (head and tail), killed at its timeout or when the turn drops it.

use super::capped_output::CappedOutput;
use super::sandbox::PreparedSandbox;
use super::utf8_stream::Utf8Stream;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

/// Bytes of output a command may keep (head plus tail).
pub(crate) const OUTPUT_CAP: usize = 64 * 1024;
/// How long a command may run unless the call sets `timeout_ms`.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest timeout a call may ask for.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Exit code reported for a command killed at its timeout (as `timeout(1)` does).
pub(crate) const TIMEOUT_EXIT_CODE: i32 = 124;
/// How long pipes may stay open after the process group is gone (a daemon kept them).
const DRAIN_DEADLINE: Duration = Duration::from_secs(2);

/// One command to run.
pub(crate) struct ExecRequest {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    pub timeout: Duration,
    pub output_cap: usize,
    pub sandbox: Option<PreparedSandbox>,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExecResult {
    pub exit_code: i32,
    pub output: String,
    pub timed_out: bool,
    pub duration: Duration,
}

/// Runs `req`, sending output chunks (the streamed head) to `deltas`; a full `deltas` queue
/// slows the reader instead of growing memory.
pub(crate) async fn run(
    req: ExecRequest,
    deltas: mpsc::Sender<String>,
) -> std::io::Result<ExecResult> {
    let started = Instant::now();
    let Some((program, args)) = req.argv.split_first() else {
        return Err(std::io::Error::other("empty command"));
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(&req.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    if let Some(mut sandbox) = req.sandbox {
        // SAFETY: `apply` only issues prctl/landlock syscalls on a ruleset built before fork.
        unsafe {
            cmd.pre_exec(move || sandbox.apply());
        }
    }
    let mut child = cmd.spawn()?;
    let mut group = KillGroupOnDrop(child.id());
    // Chunks are tagged with their pipe (0 stdout, 1 stderr) so each is decoded on its own.
    let (chunk_tx, mut chunk_rx) = mpsc::channel::<(usize, Vec<u8>)>(16);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(pump(out, 0, chunk_tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(pump(err, 1, chunk_tx.clone()));
    }
    let mut decoders = [Utf8Stream::default(), Utf8Stream::default()];
    drop(chunk_tx);
    let mut output = CappedOutput::new(req.output_cap);
    let deadline = tokio::time::sleep(req.timeout);
    tokio::pin!(deadline);
    let mut timed_out = false;
    let mut status = None;
    let mut pipes_open = true;
    while status.is_none() || pipes_open {
        tokio::select! {
            chunk = chunk_rx.recv(), if pipes_open => match chunk {
                Some((pipe, bytes)) => {
                    let head = output.push(&bytes);
                    let text = match decoders.get_mut(pipe) {
                        Some(decoder) if !head.is_empty() => decoder.push(head),
                        _ => String::new(),
                    };
                    if !text.is_empty() {
                        let _ = deltas.send(text).await;
                    }
                }
                None => pipes_open = false,
            },
            s = child.wait(), if status.is_none() => status = Some(s?),
            _ = &mut deadline => {
                if status.is_some() {
                    // Exited, but a background child still holds the pipes.
                    group.kill();
                    break;
                }
                timed_out = true;
                group.kill();
                status = Some(child.wait().await?);
                deadline.as_mut().reset((Instant::now() + DRAIN_DEADLINE).into());
            }
        }
    }
    group.disarm();
    if output.omitted() > 0 {
        tracing::debug!(omitted = output.omitted(), "command output capped");
    }
    let mut text = output.text();
    let exit_code = if timed_out {
        text.push_str(&format!(
            "\ncommand timed out after {} ms",
            req.timeout.as_millis()
        ));
        TIMEOUT_EXIT_CODE
    } else {
        status.map(exit_code_of).unwrap_or(-1)
    };
    Ok(ExecResult {
        exit_code,
        output: text,
        timed_out,
        duration: started.elapsed(),
    })
}

async fn pump(
    mut from: impl tokio::io::AsyncRead + Unpin,
    pipe: usize,
    to: mpsc::Sender<(usize, Vec<u8>)>,
) {
    let mut buf = vec![0u8; 8192];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.send((pipe, buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn exit_code_of(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// Kills the command's whole process group when the run ends or is dropped (interrupt), so
/// background children do not outlive their turn.
struct KillGroupOnDrop(Option<u32>);

impl KillGroupOnDrop {
    /// The run finished normally: the group id may be reused later, so never signal it again.
    fn disarm(&mut self) {
        self.0 = None;
    }

    fn kill(&self) {
        if let Some(pid) = self.0.and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: killpg only sends a signal; a stale group id is answered with ESRCH.
            unsafe {
                libc::killpg(pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
#[path = "exec_tests.rs"]
mod tests;
