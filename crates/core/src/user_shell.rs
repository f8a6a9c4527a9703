//! A person's own shell command (`thread/shellCommand`, the TUI's `!cmd`): a `commandExecution`
//! item with `source: "userShell"`, run unsandboxed and without approval, by design.
//!
//! While a turn runs, the item joins that turn and the command runs beside it. On an idle thread
//! it gets a turn of its own: `thread/status/changed` (active), `turn/started`, `item/started`,
//! output deltas, `item/completed`, `thread/status/changed` (idle), `turn/completed`. Either way
//! the model reads the command and its output, as Codex records it, before its next request.

use crate::clock::{new_id, now_ms, now_secs};
use crate::event_sink::{LifecycleReport, ThreadEventSink};
use crate::model::ResponseItem;
use crate::rollout::RolloutLine;
use crate::thread::{LoadedThread, TurnControl, TurnKind};
use crate::thread_manager::TURN_CONTROL_CAPACITY;
use crate::tools::commands;
use crate::tools::exec::{self, ExecRequest, ExecResult};
use crate::turn_emitter::TurnEmitter;
use crate::turn_runner::{InterruptHandshake, RESPONSE_GATE_DEADLINE};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tally_protocol::server_notification::*;
use tally_protocol::types::{
    CommandExecutionSource, CommandExecutionStatus, ThreadItem, TurnStatus,
};
use tally_protocol::ServerNotification;
use tokio::sync::{mpsc, oneshot};

/// How long a person's command may run unless the request sets `timeoutMs` (Codex: one hour).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// Output deltas queued between the command and the notifications.
const DELTA_QUEUE: usize = 64;

/// One person's command and where its item goes.
pub(crate) struct UserShellRun {
    pub thread: Arc<LoadedThread>,
    pub sink: Arc<dyn ThreadEventSink>,
    pub turn_id: String,
    pub item_id: String,
    pub command: String,
    pub timeout: Duration,
}

/// How the command's run ended.
enum Ran {
    Finished(std::io::Result<ExecResult>),
    Interrupted(Option<InterruptHandshake>),
}

impl UserShellRun {
    /// Joins the running turn, or opens a turn of its own on an idle thread; a turn that is
    /// ending is waited for first, so the command is not an item of a completed turn.
    pub async fn start(mut self, gate: oneshot::Receiver<()>) {
        let (control_tx, control_rx) = mpsc::channel(TURN_CONTROL_CAPACITY);
        let mut waits = 0;
        let joined = loop {
            let ending = {
                let mut state = self.thread.state();
                match state.active.as_ref() {
                    None => {
                        let turn_id = new_id();
                        // Cannot be refused: nothing runs, and the lock is held.
                        if state
                            .begin_turn(&turn_id, control_tx.clone(), TurnKind::UserShell)
                            .is_ok()
                        {
                            self.turn_id = turn_id;
                        }
                        break None;
                    }
                    // A turn still ending after two waits: join it rather than lose the command.
                    Some(active) if active.is_ending() && waits < 2 => Some(active.turn_id.clone()),
                    Some(active) => break Some(active.turn_id.clone()),
                }
            };
            if let Some(turn_id) = ending {
                waits += 1;
                self.thread.wait_turn_freed(&turn_id).await;
            }
        };
        match joined {
            Some(turn_id) => {
                self.turn_id = turn_id;
                self.run_in_turn(gate).await;
            }
            None => {
                self.thread.persist(&[RolloutLine::TurnStarted {
                    turn_id: self.turn_id.clone(),
                    started_at: now_secs(),
                }]);
                self.run_standalone(control_rx, gate).await;
            }
        }
    }

    /// Runs the command as an item of the turn already running; `gate` fires once the `{}`
    /// response is sent. A turn interrupt does not stop it (Codex keeps such commands running).
    async fn run_in_turn(self, gate: oneshot::Receiver<()>) {
        let _ = tokio::time::timeout(RESPONSE_GATE_DEADLINE, gate).await;
        let ran = self.run_item(None).await;
        if let Ran::Finished(Ok(result)) = &ran {
            // The running turn may be between a call and its output: wait for its next request.
            let note = self.record(result);
            self.thread.state().pending_history.push(note);
        }
    }

    /// Runs the command in a turn of its own on an idle thread; `gate` fires once the `{}`
    /// response is sent. `turn/interrupt` kills the command and ends the turn as interrupted.
    async fn run_standalone(
        self,
        mut control: mpsc::Receiver<TurnControl>,
        gate: oneshot::Receiver<()>,
    ) {
        let started_at_ms = now_ms();
        self.sink
            .lifecycle(LifecycleReport::UserShellTurn {
                thread_id: self.thread.id.clone(),
                turn_id: self.turn_id.clone(),
            })
            .await;
        self.emitter().start_turn(gate, started_at_ms).await;
        let status = match self.run_item(Some(&mut control)).await {
            Ran::Finished(result) => {
                if let Ok(result) = &result {
                    let note = self.record(result);
                    self.thread
                        .persist(&[RolloutLine::ResponseItem(note.clone())]);
                    self.thread.state().history.push(note);
                }
                TurnStatus::Completed
            }
            Ran::Interrupted(handshake) => {
                if let Some(h) = handshake {
                    let _ = h.stopped.send(());
                    let _ = tokio::time::timeout(RESPONSE_GATE_DEADLINE, h.proceed).await;
                }
                TurnStatus::Interrupted
            }
        };
        let turn = self
            .emitter()
            .turn_view(started_at_ms, status, Vec::new(), None);
        self.emitter().finish_turn(turn).await;
    }

    /// Starts the item, runs the command (streaming its output) and completes the item.
    async fn run_item(&self, control: Option<&mut mpsc::Receiver<TurnControl>>) -> Ran {
        let cwd = self.thread.state().settings.cwd.clone();
        let argv = commands::shell_argv(&self.command, true);
        let view = |status, result: Option<&ExecResult>| ThreadItem::CommandExecution {
            id: self.item_id.clone(),
            command: commands::display(&argv),
            cwd: cwd.clone(),
            process_id: None,
            source: CommandExecutionSource::UserShell,
            status,
            command_actions: commands::actions(&self.command),
            aggregated_output: result.map(|r| r.output.clone()),
            exit_code: result.map(|r| r.exit_code),
            duration_ms: result.map(|r| i64::try_from(r.duration.as_millis()).unwrap_or(i64::MAX)),
        };
        self.emitter()
            .start_item(view(CommandExecutionStatus::InProgress, None))
            .await;
        let request = ExecRequest {
            argv: argv.clone(),
            cwd: PathBuf::from(&cwd),
            timeout: self.timeout,
            output_cap: exec::OUTPUT_CAP,
            // A person's own command runs with their full access.
            sandbox: None,
        };
        let ran = self.run_command(request, control).await;
        let item = match &ran {
            Ran::Finished(Ok(r)) if r.exit_code == 0 => {
                view(CommandExecutionStatus::Completed, Some(r))
            }
            Ran::Finished(Ok(r)) => view(CommandExecutionStatus::Failed, Some(r)),
            Ran::Finished(Err(_)) | Ran::Interrupted(_) => {
                view(CommandExecutionStatus::Failed, None)
            }
        };
        if let Ran::Finished(Err(e)) = &ran {
            tracing::info!(thread = %self.thread.id, error = %e, "a user shell command could not start");
        }
        self.emitter().complete_item(item).await;
        ran
    }

    /// Runs the command, forwarding output deltas; an interrupt (standalone turns only) drops
    /// the run, which kills its process group.
    async fn run_command(
        &self,
        request: ExecRequest,
        mut control: Option<&mut mpsc::Receiver<TurnControl>>,
    ) -> Ran {
        let (tx, mut rx) = mpsc::channel(DELTA_QUEUE);
        let run = exec::run(request, tx);
        tokio::pin!(run);
        loop {
            let next_control = async {
                match control.as_mut() {
                    Some(c) => c.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(delta) = rx.recv() => self.emit_delta(delta).await,
                result = &mut run => {
                    while let Ok(delta) = rx.try_recv() {
                        self.emit_delta(delta).await;
                    }
                    return Ran::Finished(result);
                }
                ctl = next_control => match ctl {
                    Some(TurnControl::Interrupt { stopped, proceed }) => {
                        return Ran::Interrupted(Some(InterruptHandshake { stopped, proceed }))
                    }
                    // `turn/steer` and `turn/start` are refused while this turn runs.
                    Some(TurnControl::Steer { .. }) => {
                        tracing::warn!(thread = %self.thread.id, "dropped input steered into a shell command turn");
                    }
                    None => return Ran::Interrupted(None),
                },
            }
        }
    }

    /// What the model reads about the command, in Codex's `<user_shell_command>` layout.
    fn record(&self, r: &ExecResult) -> ResponseItem {
        ResponseItem::text_message(
            "user",
            format!(
                "<user_shell_command>\n<command>\n{}\n</command>\n<result>\nExit code: {}\nDuration: {:.4} seconds\nOutput:\n{}\n</result>\n</user_shell_command>",
                self.command,
                r.exit_code,
                r.duration.as_secs_f64(),
                r.output
            ),
        )
    }

    async fn emit_delta(&self, delta: String) {
        self.emitter()
            .emit(ServerNotification::CommandExecutionOutputDelta(
                CommandExecutionOutputDeltaNotification {
                    thread_id: self.thread.id.clone(),
                    turn_id: self.turn_id.clone(),
                    item_id: self.item_id.clone(),
                    delta,
                },
            ))
            .await;
    }

    /// Sends this turn's notifications.
    fn emitter(&self) -> TurnEmitter<'_> {
        TurnEmitter::new(&self.thread, &*self.sink, &self.turn_id)
    }
}
