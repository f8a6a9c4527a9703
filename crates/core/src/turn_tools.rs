//! Tool calls inside a turn: items and their notifications in Codex's order, approvals over
//! server requests, running commands, applying patches, and calling the client's dynamic tools.

use super::turn_hooks::{permission_input, PermissionHook};
use super::{InterruptHandshake, TurnRunner};
use crate::clock::now_ms;
use crate::event_sink::RequestResolution;
use crate::thread::TurnControl;
use crate::tools::apply_patch::{self, PlannedChange};
use crate::tools::approval::{
    exec_decision, patch_decision, ExecContext, ExecDecision, PatchDecision,
};
use crate::tools::call::{classify, ExecArgs, ToolCall};
use crate::tools::commands;
use crate::tools::exec::{self, ExecRequest, ExecResult};
use crate::tools::sandbox::{self, PreparedSandbox, SandboxRules};
use crate::tools::user_input;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tally_protocol::server_notification::*;
use tally_protocol::server_request::*;
use tally_protocol::types::*;
use tally_protocol::{ServerNotification, ServerRequest, ServerResponse};
use tokio::sync::mpsc;

#[path = "turn_guardian.rs"]
mod turn_guardian;
use turn_guardian::ActionUnderReview;

/// Output deltas queued between a running command and the turn.
const DELTA_QUEUE: usize = 64;

/// How a tool call ended for the turn.
pub(super) enum ToolFlow {
    /// The output the model gets; the turn samples again.
    Output(String),
    /// The turn stops (interrupt, or a person chose `cancel`); the output closes the call.
    Interrupted {
        output: String,
        handshake: Option<InterruptHandshake>,
    },
}

/// A person's answer to an approval, reduced to what the turn does next.
enum Verdict {
    Accept {
        for_session: bool,
    },
    Decline,
    Cancel,
    /// A PermissionRequest hook rejected the call before anyone was asked.
    HookDenied(String),
    /// Automatic approval review declined the call; the text tells the model why.
    AutoDenied(String),
}

impl From<PermissionHook> for Verdict {
    fn from(h: PermissionHook) -> Self {
        match h {
            PermissionHook::Allow => Verdict::Accept { for_session: false },
            PermissionHook::Deny(message) => Verdict::HookDenied(message),
        }
    }
}

/// A wait that an interrupt (or a closed control channel) cut short.
struct Interrupted(Option<InterruptHandshake>);

impl TurnRunner {
    /// Runs one function call and returns what the model gets back.
    pub(super) async fn run_tool(
        &mut self,
        call_id: &str,
        name: &str,
        arguments: &str,
    ) -> ToolFlow {
        let (dynamic, user_input) = {
            let s = &self.thread.state().settings;
            (s.dynamic_tools.clone(), s.request_user_input)
        };
        if user_input && name == user_input::REQUEST_USER_INPUT {
            return self.run_user_input(call_id, arguments).await;
        }
        match classify(name, arguments, &dynamic) {
            ToolCall::Exec(args) => self.run_exec(call_id, args).await,
            ToolCall::ApplyPatch(patch) => self.run_patch(call_id, &patch).await,
            ToolCall::Dynamic { tool, arguments } => {
                self.run_dynamic(call_id, tool, arguments).await
            }
            ToolCall::Invalid(message) => ToolFlow::Output(message),
            ToolCall::Unknown(name) => {
                ToolFlow::Output(format!("tool `{name}` is not available in this session"))
            }
        }
    }

    async fn run_exec(&mut self, call_id: &str, args: ExecArgs) -> ToolFlow {
        let (decision, cwd, workspace, sandbox_policy) = {
            let state = self.thread.state();
            let s = &state.settings;
            let cwd = match &args.workdir {
                Some(w) => Path::new(&s.cwd).join(w),
                None => PathBuf::from(&s.cwd),
            };
            // The sandbox's writable roots are the thread's, wherever the command runs: a
            // `workdir` chosen by the model must not become one.
            let workspace = PathBuf::from(&s.cwd);
            let decision = exec_decision(
                &args.cmd,
                &ExecContext {
                    policy: &s.approval_policy,
                    sandbox: &s.sandbox,
                    landlock: self.landlock,
                    escalate: args.escalate(),
                    justification: args.justification.as_deref(),
                    session: &state.approvals,
                },
            );
            (decision, cwd, workspace, s.sandbox.clone())
        };
        let argv = commands::shell_argv(&args.cmd, args.login.unwrap_or(true));
        let item = CommandItem {
            id: call_id.to_string(),
            command: commands::display(&argv),
            cwd: cwd.display().to_string(),
            actions: commands::actions(&args.cmd),
        };
        let sandboxed = match decision {
            ExecDecision::Reject(reason) => {
                self.emitter()
                    .start_item(item.view(CommandExecutionStatus::InProgress, None))
                    .await;
                self.complete_item(item.view(CommandExecutionStatus::Declined, None))
                    .await;
                return ToolFlow::Output(format!("exec_command failed: {reason}"));
            }
            ExecDecision::Run { sandboxed } => {
                self.emitter()
                    .start_item(item.view(CommandExecutionStatus::InProgress, None))
                    .await;
                sandboxed
            }
            ExecDecision::Ask { reason, sandboxed } => {
                // PermissionRequest hooks may decide before Guardian or a person is asked.
                let hooked = self
                    .permission_hooks(
                        call_id,
                        "Bash",
                        &[],
                        permission_input(&args.cmd, reason.as_deref()),
                    )
                    .await;
                let asked = hooked.is_none() && !self.auto_review();
                if asked {
                    self.set_waiting_on_approval(true).await;
                }
                self.emitter()
                    .start_item(item.view(CommandExecutionStatus::InProgress, None))
                    .await;
                let amendment = commands::proposed_prefix(&args.cmd);
                let mut decisions = vec![
                    CommandExecutionApprovalDecision::Accept,
                    CommandExecutionApprovalDecision::AcceptForSession,
                ];
                if let Some(prefix) = &amendment {
                    decisions.push(
                        CommandExecutionApprovalDecision::AcceptWithExecpolicyAmendment {
                            execpolicy_amendment: prefix.clone(),
                        },
                    );
                }
                decisions.extend([
                    CommandExecutionApprovalDecision::Decline,
                    CommandExecutionApprovalDecision::Cancel,
                ]);
                let request = ServerRequest::CommandExecutionRequestApproval(
                    CommandExecutionRequestApprovalParams {
                        thread_id: self.thread.id.clone(),
                        turn_id: self.turn_id.clone(),
                        item_id: call_id.to_string(),
                        started_at_ms: now_ms(),
                        kind: CommandExecutionApprovalKind::Command,
                        reason,
                        command: Some(item.command.clone()),
                        cwd: Some(item.cwd.clone()),
                        command_actions: Some(item.actions.clone()),
                        environment_id: None,
                        approval_id: None,
                        proposed_execpolicy_amendment: amendment,
                        available_decisions: Some(decisions),
                    },
                );
                let verdict = match hooked {
                    Some(h) => Ok(h.into()),
                    None if self.auto_review() => {
                        let action =
                            ActionUnderReview::exec(&args, &argv, &item.command, &item.cwd);
                        self.guardian_verdict(call_id, action).await
                    }
                    None => self.ask(request).await,
                };
                if asked {
                    self.set_waiting_on_approval(false).await;
                }
                let declined = item.view(CommandExecutionStatus::Declined, None);
                match verdict {
                    Err(Interrupted(handshake)) => {
                        self.complete_item(declined).await;
                        return ToolFlow::Interrupted {
                            output: "exec_command aborted: the turn was interrupted".into(),
                            handshake,
                        };
                    }
                    Ok(Verdict::Cancel) => {
                        self.complete_item(declined).await;
                        return ToolFlow::Interrupted {
                            output: "exec_command failed: the user cancelled the turn".into(),
                            handshake: None,
                        };
                    }
                    Ok(Verdict::Decline) => {
                        self.complete_item(declined).await;
                        return ToolFlow::Output(format!(
                            "exec_command failed: `{}` was rejected by user",
                            args.cmd
                        ));
                    }
                    Ok(Verdict::HookDenied(message)) => {
                        self.complete_item(declined).await;
                        return ToolFlow::Output(format!(
                            "exec_command failed: `{}` was rejected by a PermissionRequest hook: {message}",
                            args.cmd
                        ));
                    }
                    Ok(Verdict::AutoDenied(why)) => {
                        self.complete_item(declined).await;
                        let cmd = &args.cmd;
                        return ToolFlow::Output(format!(
                            "exec_command failed: `{cmd}` not run: {why}"
                        ));
                    }
                    Ok(Verdict::Accept { for_session }) => {
                        if for_session {
                            self.thread
                                .state()
                                .approvals
                                .approve_command(&args.cmd, !sandboxed);
                        }
                        sandboxed
                    }
                }
            }
        };
        let prepared = if sandboxed {
            match SandboxRules::for_policy(&sandbox_policy, &workspace)
                .map(|r| PreparedSandbox::build(&r))
            {
                Some(Ok(p)) => Some(p),
                Some(Err(e)) => {
                    let failed = item.view(CommandExecutionStatus::Failed, None);
                    self.complete_item(failed).await;
                    return ToolFlow::Output(format!("exec_command failed: sandbox: {e}"));
                }
                None => None,
            }
        } else {
            None
        };
        let timeout = args
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(exec::DEFAULT_TIMEOUT)
            .min(exec::MAX_TIMEOUT);
        let request = ExecRequest {
            argv,
            cwd,
            timeout,
            output_cap: exec::OUTPUT_CAP,
            sandbox: prepared,
        };
        match self.run_command(call_id, request).await {
            Ok(Ok(result)) => {
                let status = if result.exit_code == 0 {
                    CommandExecutionStatus::Completed
                } else {
                    CommandExecutionStatus::Failed
                };
                self.complete_item(item.view(status, Some(&result))).await;
                ToolFlow::Output(exec_output(&result))
            }
            Ok(Err(e)) => {
                self.complete_item(item.view(CommandExecutionStatus::Failed, None))
                    .await;
                ToolFlow::Output(format!("exec_command failed: {e}"))
            }
            Err(Interrupted(handshake)) => {
                self.complete_item(item.view(CommandExecutionStatus::Failed, None))
                    .await;
                ToolFlow::Interrupted {
                    output: "exec_command aborted: the turn was interrupted".into(),
                    handshake,
                }
            }
        }
    }

    /// Runs a command, forwarding its output as `item/commandExecution/outputDelta`; an
    /// interrupt drops the run, which kills its process group.
    async fn run_command(
        &mut self,
        item_id: &str,
        request: ExecRequest,
    ) -> Result<std::io::Result<ExecResult>, Interrupted> {
        let (tx, mut rx) = mpsc::channel(DELTA_QUEUE);
        let run = exec::run(request, tx);
        tokio::pin!(run);
        loop {
            tokio::select! {
                Some(delta) = rx.recv() => self.emit_output_delta(item_id, delta).await,
                result = &mut run => {
                    while let Ok(delta) = rx.try_recv() {
                        self.emit_output_delta(item_id, delta).await;
                    }
                    return Ok(result);
                }
                ctl = self.control.recv() => {
                    if let Some(stop) = self.on_tool_control(ctl) {
                        return Err(stop);
                    }
                }
            }
        }
    }

    async fn emit_output_delta(&self, item_id: &str, delta: String) {
        self.emitter()
            .emit(ServerNotification::CommandExecutionOutputDelta(
                CommandExecutionOutputDeltaNotification {
                    thread_id: self.thread.id.clone(),
                    turn_id: self.turn_id.clone(),
                    item_id: item_id.to_string(),
                    delta,
                },
            ))
            .await;
    }

    async fn run_patch(&mut self, call_id: &str, patch: &str) -> ToolFlow {
        let (cwd, policy, sandbox_policy) = {
            let s = &self.thread.state().settings;
            (
                PathBuf::from(&s.cwd),
                s.approval_policy.clone(),
                s.sandbox.clone(),
            )
        };
        let changes = match apply_patch::plan(patch, &cwd) {
            Ok(c) => c,
            Err(e) => return ToolFlow::Output(format!("apply_patch verification failed: {e}")),
        };
        let paths: Vec<PathBuf> = changes
            .iter()
            .flat_map(PlannedChange::touched)
            .map(|p| sandbox::normalize(&p))
            .collect();
        let decision = {
            let state = self.thread.state();
            patch_decision(&paths, &policy, &sandbox_policy, &cwd, &state.approvals)
        };
        let shown: Vec<FileUpdateChange> = changes.iter().map(PlannedChange::to_protocol).collect();
        let view = |status| ThreadItem::FileChange {
            id: call_id.to_string(),
            changes: shown.clone(),
            status,
        };
        self.emitter()
            .start_item(view(PatchApplyStatus::InProgress))
            .await;
        let changes = match decision {
            PatchDecision::Apply => changes,
            PatchDecision::Reject(reason) => {
                self.complete_item(view(PatchApplyStatus::Declined)).await;
                return ToolFlow::Output(format!("apply_patch failed: {reason}"));
            }
            PatchDecision::Ask { reason } => {
                let hooked = self
                    .permission_hooks(
                        call_id,
                        "apply_patch",
                        &["Write", "Edit"],
                        permission_input(patch, reason.as_deref()),
                    )
                    .await;
                let asked = hooked.is_none() && !self.auto_review();
                if asked {
                    self.set_waiting_on_approval(true).await;
                }
                let request =
                    ServerRequest::FileChangeRequestApproval(FileChangeRequestApprovalParams {
                        thread_id: self.thread.id.clone(),
                        turn_id: self.turn_id.clone(),
                        item_id: call_id.to_string(),
                        started_at_ms: now_ms(),
                        reason,
                        grant_root: None,
                    });
                let verdict = match hooked {
                    Some(h) => Ok(h.into()),
                    None if self.auto_review() => {
                        let action = ActionUnderReview::patch(&cwd, &paths, patch);
                        self.guardian_verdict(call_id, action).await
                    }
                    None => self.ask(request).await,
                };
                if asked {
                    self.set_waiting_on_approval(false).await;
                }
                match verdict {
                    Err(Interrupted(handshake)) => {
                        self.complete_item(view(PatchApplyStatus::Declined)).await;
                        return ToolFlow::Interrupted {
                            output: "apply_patch aborted: the turn was interrupted".into(),
                            handshake,
                        };
                    }
                    Ok(Verdict::Cancel) => {
                        self.complete_item(view(PatchApplyStatus::Declined)).await;
                        return ToolFlow::Interrupted {
                            output: "apply_patch failed: the user cancelled the turn".into(),
                            handshake: None,
                        };
                    }
                    Ok(Verdict::Decline) => {
                        self.complete_item(view(PatchApplyStatus::Declined)).await;
                        return ToolFlow::Output(
                            "apply_patch failed: patch rejected by user".into(),
                        );
                    }
                    Ok(Verdict::HookDenied(message)) => {
                        self.complete_item(view(PatchApplyStatus::Declined)).await;
                        return ToolFlow::Output(format!(
                            "apply_patch failed: patch rejected by a PermissionRequest hook: {message}"
                        ));
                    }
                    Ok(Verdict::AutoDenied(why)) => {
                        self.complete_item(view(PatchApplyStatus::Declined)).await;
                        return ToolFlow::Output(format!(
                            "apply_patch failed: patch not applied: {why}"
                        ));
                    }
                    Ok(Verdict::Accept { for_session }) => {
                        if for_session {
                            self.thread.state().approvals.approve_paths(&paths);
                        }
                        // The files may have changed while the person decided: plan again.
                        match apply_patch::plan(patch, &cwd) {
                            Ok(c) => c,
                            Err(e) => {
                                self.complete_item(view(PatchApplyStatus::Failed)).await;
                                return ToolFlow::Output(format!("apply_patch failed: {e}"));
                            }
                        }
                    }
                }
            }
        };
        for c in &changes {
            self.turn_diff.track(&c.path, c.before.as_deref());
            if let Some(to) = &c.move_to {
                self.turn_diff
                    .track(to, std::fs::read_to_string(to).ok().as_deref());
            }
        }
        let applied = apply_patch::apply(&changes);
        let status = if applied.is_ok() {
            PatchApplyStatus::Completed
        } else {
            PatchApplyStatus::Failed
        };
        self.complete_item(view(status)).await;
        self.emitter()
            .emit(ServerNotification::TurnDiffUpdated(
                TurnDiffUpdatedNotification {
                    thread_id: self.thread.id.clone(),
                    turn_id: self.turn_id.clone(),
                    diff: self.turn_diff.diff(),
                },
            ))
            .await;
        match applied {
            Ok(()) => ToolFlow::Output(patch_summary(&changes)),
            Err(e) => ToolFlow::Output(format!("apply_patch failed: {e}")),
        }
    }

    async fn run_dynamic(
        &mut self,
        call_id: &str,
        tool: String,
        arguments: serde_json::Value,
    ) -> ToolFlow {
        let started = now_ms();
        let view = |status, content_items, success| ThreadItem::DynamicToolCall {
            id: call_id.to_string(),
            tool: tool.clone(),
            namespace: None,
            arguments: arguments.clone(),
            status,
            content_items,
            success,
            duration_ms: (status != DynamicToolCallStatus::InProgress).then(|| now_ms() - started),
        };
        self.emitter()
            .start_item(view(DynamicToolCallStatus::InProgress, None, None))
            .await;
        let request = ServerRequest::DynamicToolCall(DynamicToolCallParams {
            thread_id: self.thread.id.clone(),
            turn_id: self.turn_id.clone(),
            call_id: call_id.to_string(),
            tool: tool.clone(),
            arguments: arguments.clone(),
            namespace: None,
        });
        let sink = self.sink.clone();
        let thread_id = self.thread.id.clone();
        let answer = self
            .wait_interruptible(async move { sink.request(&thread_id, request).await })
            .await;
        match answer {
            Ok(RequestResolution::Answered(ServerResponse::DynamicToolCall(r))) => {
                let status = if r.success {
                    DynamicToolCallStatus::Completed
                } else {
                    DynamicToolCallStatus::Failed
                };
                let output = dynamic_output(&r.content_items);
                self.complete_item(view(status, Some(r.content_items), Some(r.success)))
                    .await;
                ToolFlow::Output(output)
            }
            Ok(_) => {
                self.complete_item(view(DynamicToolCallStatus::Failed, None, Some(false)))
                    .await;
                ToolFlow::Output(format!(
                    "dynamic tool `{tool}` failed: the client gave no result"
                ))
            }
            Err(Interrupted(handshake)) => {
                self.complete_item(view(DynamicToolCallStatus::Failed, None, Some(false)))
                    .await;
                ToolFlow::Interrupted {
                    output: format!("dynamic tool `{tool}` aborted: the turn was interrupted"),
                    handshake,
                }
            }
        }
    }

    /// Asks the thread's clients the model's questions and waits; the answers (JSON by question
    /// id) are the tool's output. The thread shows `waitingOnUserInput` meanwhile.
    async fn run_user_input(&mut self, call_id: &str, arguments: &str) -> ToolFlow {
        let questions = match user_input::questions(arguments) {
            Ok(q) => q,
            Err(message) => return ToolFlow::Output(message),
        };
        let request = ServerRequest::ToolRequestUserInput(ToolRequestUserInputParams {
            thread_id: self.thread.id.clone(),
            turn_id: self.turn_id.clone(),
            item_id: call_id.to_string(),
            is_blocking: true,
            questions,
        });
        self.set_waiting_on_user_input(true).await;
        let sink = self.sink.clone();
        let thread_id = self.thread.id.clone();
        let answer = self
            .wait_interruptible(async move { sink.request(&thread_id, request).await })
            .await;
        self.set_waiting_on_user_input(false).await;
        match answer {
            Ok(RequestResolution::Answered(ServerResponse::ToolRequestUserInput(r))) => {
                ToolFlow::Output(user_input::output(&r))
            }
            Ok(RequestResolution::Refused) => {
                ToolFlow::Output("request_user_input failed: the user declined to answer".into())
            }
            Ok(_) => ToolFlow::Output("request_user_input failed: no answer arrived".into()),
            Err(Interrupted(handshake)) => ToolFlow::Interrupted {
                output: "request_user_input aborted: the turn was interrupted".into(),
                handshake,
            },
        }
    }

    /// Sends an approval request and reduces the answer to a verdict. Anything that is not a
    /// valid answer is a refusal: an error answer declines, a lapsed request cancels.
    async fn ask(&mut self, request: ServerRequest) -> Result<Verdict, Interrupted> {
        let proposed = match &request {
            ServerRequest::CommandExecutionRequestApproval(p) => {
                p.proposed_execpolicy_amendment.clone()
            }
            _ => None,
        };
        let sink = self.sink.clone();
        let thread_id = self.thread.id.clone();
        let resolution = self
            .wait_interruptible(async move { sink.request(&thread_id, request).await })
            .await?;
        Ok(match resolution {
            RequestResolution::Answered(ServerResponse::CommandExecutionRequestApproval(r)) => {
                match r.decision {
                    CommandExecutionApprovalDecision::AcceptWithExecpolicyAmendment {
                        execpolicy_amendment,
                    } => {
                        // Only the amendment Tally proposed is kept; any other is a one-time accept.
                        if proposed.as_ref() == Some(&execpolicy_amendment) {
                            self.thread
                                .state()
                                .approvals
                                .approve_prefix(&execpolicy_amendment);
                        }
                        Verdict::Accept { for_session: false }
                    }
                    // A network rule that denies is the user saying no.
                    CommandExecutionApprovalDecision::ApplyNetworkPolicyAmendment {
                        network_policy_amendment,
                    } if network_policy_amendment["action"] == "deny" => Verdict::Decline,
                    CommandExecutionApprovalDecision::Accept
                    | CommandExecutionApprovalDecision::ApplyNetworkPolicyAmendment { .. } => {
                        Verdict::Accept { for_session: false }
                    }
                    CommandExecutionApprovalDecision::AcceptForSession => {
                        Verdict::Accept { for_session: true }
                    }
                    CommandExecutionApprovalDecision::Decline => Verdict::Decline,
                    CommandExecutionApprovalDecision::Cancel => Verdict::Cancel,
                }
            }
            RequestResolution::Answered(ServerResponse::FileChangeRequestApproval(r)) => {
                match r.decision {
                    FileChangeApprovalDecision::Accept => Verdict::Accept { for_session: false },
                    FileChangeApprovalDecision::AcceptForSession => {
                        Verdict::Accept { for_session: true }
                    }
                    FileChangeApprovalDecision::Decline => Verdict::Decline,
                    FileChangeApprovalDecision::Cancel => Verdict::Cancel,
                }
            }
            RequestResolution::Answered(_) | RequestResolution::Refused => Verdict::Decline,
            RequestResolution::Cancelled => Verdict::Cancel,
        })
    }

    /// Awaits `wait` unless the turn is interrupted; steers are kept for after the tool. On an
    /// interrupt the turn's pending requests are withdrawn before this returns.
    async fn wait_interruptible<T>(
        &mut self,
        wait: impl Future<Output = T>,
    ) -> Result<T, Interrupted> {
        tokio::pin!(wait);
        loop {
            tokio::select! {
                v = &mut wait => return Ok(v),
                ctl = self.control.recv() => {
                    if let Some(stop) = self.on_tool_control(ctl) {
                        self.sink.resolve_turn_requests(&self.thread.id, &self.turn_id).await;
                        return Err(stop);
                    }
                }
            }
        }
    }

    /// A control message while a tool runs: steers wait for the tool, interrupts stop it.
    fn on_tool_control(&mut self, ctl: Option<TurnControl>) -> Option<Interrupted> {
        match ctl {
            Some(TurnControl::Steer { input, client_id }) => {
                self.deferred_steers.push((input, client_id));
                None
            }
            Some(TurnControl::Interrupt { stopped, proceed }) => {
                Some(Interrupted(Some(InterruptHandshake { stopped, proceed })))
            }
            None => Some(Interrupted(None)),
        }
    }

    async fn set_waiting_on_approval(&self, waiting: bool) {
        self.thread.state().waiting_on_approval = waiting;
        let status = self.thread.status();
        self.emitter().emit_status(status).await;
    }

    async fn set_waiting_on_user_input(&self, waiting: bool) {
        self.thread.state().waiting_on_user_input = waiting;
        let status = self.thread.status();
        self.emitter().emit_status(status).await;
    }
}

/// The fixed parts of a `commandExecution` item.
struct CommandItem {
    id: String,
    command: String,
    cwd: String,
    actions: Vec<CommandAction>,
}

impl CommandItem {
    fn view(&self, status: CommandExecutionStatus, result: Option<&ExecResult>) -> ThreadItem {
        ThreadItem::CommandExecution {
            id: self.id.clone(),
            command: self.command.clone(),
            cwd: self.cwd.clone(),
            process_id: None,
            source: CommandExecutionSource::Agent,
            status,
            command_actions: self.actions.clone(),
            aggregated_output: result.map(|r| r.output.clone()),
            exit_code: result.map(|r| r.exit_code),
            duration_ms: result.map(|r| i64::try_from(r.duration.as_millis()).unwrap_or(i64::MAX)),
        }
    }
}

/// What the model reads after a command, in Codex's layout.
fn exec_output(r: &ExecResult) -> String {
    format!(
        "Wall time: {:.4} seconds\nProcess exited with code {}\nOutput:\n{}",
        r.duration.as_secs_f64(),
        r.exit_code,
        r.output
    )
}

/// What the model reads after a patch applied.
fn patch_summary(changes: &[PlannedChange]) -> String {
    let mut out = String::from("Success. Updated the following files:\n");
    for c in changes {
        let (mark, path) = match (&c.before, &c.after, &c.move_to) {
            (None, _, _) => ("A", &c.path),
            (_, None, _) => ("D", &c.path),
            (_, _, Some(to)) => ("M", to),
            _ => ("M", &c.path),
        };
        out.push_str(&format!("{mark} {}\n", path.display()));
    }
    out
}

/// A dynamic tool's result as the model reads it: its text parts.
fn dynamic_output(items: &[DynamicToolCallOutputContentItem]) -> String {
    items
        .iter()
        .map(|i| match i {
            DynamicToolCallOutputContentItem::InputText { text } => text.as_str(),
            DynamicToolCallOutputContentItem::InputImage { .. } => "[image]",
            DynamicToolCallOutputContentItem::InputAudio { .. } => "[audio]",
        })
        .collect::<Vec<_>>()
        .join("\n")
}
