//! Hooks inside a turn: which handlers an event selects, `hook/started` for all of them, one
//! concurrent run, then `hook/completed` in handler order, and what their verdict does to the turn.

use super::TurnRunner;
use crate::hook_dispatch::{run_event, AsyncHooks, EventHooks, EventRequest, HookSite};
use crate::model::ResponseItem;
use crate::tools::call::{classify, ToolCall};
use std::path::Path;
use std::sync::Arc;
use tally_hooks::{HookOutcome, HookPayload};
use tally_protocol::server_notification::{ConfigWarningNotification, WarningNotification};
use tally_protocol::types::{ThreadItem, UserInput};
use tally_protocol::ServerNotification;

/// Consecutive Stop blocks after which the turn ends anyway, so a hook that always blocks
/// cannot keep a turn (and the model) running forever.
const MAX_STOP_CONTINUATIONS: u32 = 8;

/// The hooks one turn may run, discovered when the turn starts (so trust granted or an edit
/// made between turns applies to the next one).
pub(crate) struct TurnHooks {
    hooks: EventHooks,
    /// Set on the thread's first turn in this process: SessionStart runs with this `source`,
    /// and discovery warnings are reported (once per thread).
    session_start: Option<&'static str>,
    stop_blocks: u32,
    /// Context for the model, recorded once the user's message is in history.
    pending_context: Vec<String>,
}

impl TurnHooks {
    /// Discovers hooks for a turn in `cwd`, with trust read from `<home>/config.toml`; async
    /// handlers are handed to `async_hooks`.
    pub(crate) fn discover(
        home: &Path,
        cwd: &Path,
        session_start: Option<&'static str>,
        async_hooks: Arc<AsyncHooks>,
    ) -> Self {
        Self {
            hooks: EventHooks::discover(home, cwd, Some(async_hooks)),
            session_start,
            stop_blocks: 0,
            pending_context: Vec::new(),
        }
    }

    /// No hooks at all.
    pub(crate) fn none() -> Self {
        Self {
            hooks: EventHooks::none(),
            session_start: None,
            stop_blocks: 0,
            pending_context: Vec::new(),
        }
    }
}

/// What PermissionRequest hooks decided about an approval.
pub(super) enum PermissionHook {
    /// Approved without asking anyone.
    Allow,
    /// Rejected; the reason is the hook's message.
    Deny(String),
}

/// A PermissionRequest `tool_input`: `{command, description?}`, the description being why the
/// approval is needed.
pub(super) fn permission_input(command: &str, description: Option<&str>) -> serde_json::Value {
    let mut input = serde_json::json!({ "command": command });
    if let Some(d) = description {
        input["description"] = d.into();
    }
    input
}

/// What a PreToolUse verdict leaves the tool call with.
pub(super) enum PreTool {
    /// Run the call with these (possibly rewritten) arguments.
    Run(String),
    /// Do not run it; the model gets this output.
    Blocked(String),
}

/// The joined verdict of one event's handlers.
#[derive(Default)]
struct Verdict {
    blocked: Vec<String>,
    stopped: Option<Option<String>>,
    context: Vec<String>,
    updated_input: Option<serde_json::Value>,
    replacement_output: Option<String>,
    allow: bool,
}

impl TurnRunner {
    /// SessionStart (first turn in this process) and UserPromptSubmit; false means the turn ends without
    /// recording the prompt.
    pub(super) async fn prompt_hooks(&mut self, input: &[UserInput]) -> bool {
        if let Some(source) = self.hooks.session_start {
            for w in self.hooks.hooks.discovery.warnings.clone() {
                self.emitter()
                    .emit(ServerNotification::ConfigWarning(
                        ConfigWarningNotification {
                            summary: w.message,
                            details: None,
                            path: Some(w.path.display().to_string()),
                        },
                    ))
                    .await;
            }
            let payload = HookPayload::SessionStart {
                source: source.to_string(),
            };
            let v = self.run_hooks(payload, None, &[source]).await;
            // A resumed thread may already hold the same SessionStart context.
            let fresh: Vec<String> = {
                let state = self.thread.state();
                v.context
                    .iter()
                    .filter(|c| !state.history.iter().any(|h| is_developer_text(h, c)))
                    .cloned()
                    .collect()
            };
            self.hooks.pending_context.extend(fresh);
            if let Some(reason) = v.stopped {
                if let Some(r) = reason {
                    self.warn(format!("SessionStart hook stopped the operation: {r}"))
                        .await;
                }
                return false;
            }
        }
        let prompt = input
            .iter()
            .filter_map(|i| match i {
                UserInput::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let v = self
            .run_hooks(HookPayload::UserPromptSubmit { prompt }, None, &[])
            .await;
        self.hooks.pending_context.extend(v.context);
        if let Some(reason) = v.stopped {
            if let Some(r) = reason {
                self.warn(format!("UserPromptSubmit hook stopped the operation: {r}"))
                    .await;
            }
            return false;
        }
        if let Some(reason) = v.blocked.into_iter().next() {
            self.warn(format!(
                "UserPromptSubmit hook blocked the prompt: {reason}"
            ))
            .await;
            return false;
        }
        true
    }

    /// Records hook context for the model as developer messages, in handler order, then what
    /// async hooks left since the last user input.
    pub(super) fn flush_hook_context(&mut self) {
        let mut context = std::mem::take(&mut self.hooks.pending_context);
        if let Some(a) = &self.hooks.hooks.async_hooks {
            context.extend(a.take_context(&self.thread.id));
        }
        let items: Vec<ResponseItem> = context
            .into_iter()
            .map(|c| ResponseItem::text_message("developer", c))
            .collect();
        if !items.is_empty() {
            self.push_history(items);
        }
    }

    /// PreToolUse for one function call.
    pub(super) async fn pre_tool_use(
        &mut self,
        call_id: &str,
        name: &str,
        arguments: &str,
    ) -> PreTool {
        let Some((tool, input, aliases)) = self.hook_tool(name, arguments) else {
            return PreTool::Run(arguments.to_string());
        };
        let payload = HookPayload::PreToolUse {
            tool_name: tool.clone(),
            tool_input: input.clone(),
            tool_use_id: call_id.to_string(),
        };
        let subjects: Vec<&str> = std::iter::once(tool.as_str())
            .chain(aliases.iter().copied())
            .collect();
        let v = self.run_hooks(payload, Some(call_id), &subjects).await;
        if let Some(reason) = v.blocked.into_iter().next() {
            let command = input.get("command").and_then(|c| c.as_str());
            return PreTool::Blocked(match command {
                Some(cmd) => {
                    format!("Command blocked by PreToolUse hook: {reason}. Command: {cmd}")
                }
                None => format!("Tool call blocked by PreToolUse hook: {reason}. Tool: {tool}"),
            });
        }
        match v.updated_input {
            Some(updated) => PreTool::Run(rewrite_arguments(&tool, arguments, updated)),
            None => PreTool::Run(arguments.to_string()),
        }
    }

    /// PostToolUse for one function call that ran; returns what the model sees.
    pub(super) async fn post_tool_use(
        &mut self,
        call_id: &str,
        name: &str,
        arguments: &str,
        output: String,
    ) -> String {
        let Some((tool, input, aliases)) = self.hook_tool(name, arguments) else {
            return output;
        };
        let payload = HookPayload::PostToolUse {
            tool_name: tool.clone(),
            tool_input: input,
            tool_response: serde_json::Value::String(output.clone()),
            tool_use_id: call_id.to_string(),
        };
        let subjects: Vec<&str> = std::iter::once(tool.as_str())
            .chain(aliases.iter().copied())
            .collect();
        let v = self.run_hooks(payload, Some(call_id), &subjects).await;
        // Context rides on the tool output: a message between a call and its output would
        // break the history the model API accepts.
        let mut output = v.replacement_output.unwrap_or(output);
        for c in v.context {
            output.push_str("\n\n");
            output.push_str(&c);
        }
        output
    }

    /// Stop: true when a hook blocked and the turn goes on with its reason as a prompt.
    pub(super) async fn stop_hooks_continue(&mut self) -> bool {
        let last_assistant_message = match &self.last_agent_message {
            Some(ThreadItem::AgentMessage { text, .. }) => Some(text.clone()),
            _ => None,
        };
        let payload = HookPayload::Stop {
            stop_hook_active: self.hooks.stop_blocks > 0,
            last_assistant_message,
        };
        let v = self.run_hooks(payload, None, &[]).await;
        if v.stopped.is_some() || v.blocked.is_empty() {
            return false;
        }
        if self.hooks.stop_blocks >= MAX_STOP_CONTINUATIONS {
            self.warn(format!(
                "Stop hooks blocked {MAX_STOP_CONTINUATIONS} times in a row; ending the turn"
            ))
            .await;
            return false;
        }
        self.hooks.stop_blocks += 1;
        self.push_history(vec![ResponseItem::text_message(
            "user",
            v.blocked.join("\n\n"),
        )]);
        true
    }

    /// PermissionRequest, before an approval is asked of Guardian or a person: any deny wins,
    /// otherwise any allow approves; `None` leaves the normal approval flow.
    pub(super) async fn permission_hooks(
        &mut self,
        call_id: &str,
        tool_name: &str,
        aliases: &[&str],
        tool_input: serde_json::Value,
    ) -> Option<PermissionHook> {
        let payload = HookPayload::PermissionRequest {
            tool_name: tool_name.to_string(),
            tool_input,
        };
        let subjects: Vec<&str> = std::iter::once(tool_name)
            .chain(aliases.iter().copied())
            .collect();
        let v = self.run_hooks(payload, Some(call_id), &subjects).await;
        if let Some(reason) = v.blocked.into_iter().next() {
            return Some(PermissionHook::Deny(reason));
        }
        v.allow.then_some(PermissionHook::Allow)
    }

    /// Interrupt: the turn was interrupted. Hooks can only add a `systemMessage`.
    pub(super) async fn interrupt_hooks(&mut self) {
        self.run_hooks(HookPayload::Interrupt {}, None, &[]).await;
    }

    /// The hook-facing name, input and matcher aliases of a call, or `None` for calls no hook sees.
    fn hook_tool(
        &self,
        name: &str,
        arguments: &str,
    ) -> Option<(String, serde_json::Value, Vec<&'static str>)> {
        let dynamic = self.thread.state().settings.dynamic_tools.clone();
        match classify(name, arguments, &dynamic) {
            ToolCall::Exec(args) => Some((
                "Bash".into(),
                serde_json::json!({"command": args.cmd}),
                vec![],
            )),
            ToolCall::ApplyPatch(patch) => Some((
                "apply_patch".into(),
                serde_json::json!({"command": patch}),
                vec!["Write", "Edit"],
            )),
            ToolCall::Dynamic { tool, arguments } => Some((tool, arguments, vec![])),
            ToolCall::Invalid(_) | ToolCall::Unknown(_) => None,
        }
    }

    /// Runs every selected handler of an event and joins their verdicts.
    async fn run_hooks(
        &mut self,
        payload: HookPayload,
        tool_use_id: Option<&str>,
        subjects: &[&str],
    ) -> Verdict {
        let site = HookSite {
            thread: &self.thread,
            sink: &self.sink,
            turn_id: Some(self.turn_id.clone()),
        };
        let request = EventRequest {
            payload,
            run_suffix: tool_use_id,
            subjects,
            timeout_cap: None,
        };
        let mut verdict = Verdict::default();
        for outcome in run_event(&self.hooks.hooks, &site, request).await {
            join(&mut verdict, outcome);
        }
        verdict
    }

    async fn warn(&self, message: String) {
        self.emitter()
            .emit(ServerNotification::Warning(WarningNotification {
                message,
                thread_id: Some(self.thread.id.clone()),
            }))
            .await;
    }
}

fn is_developer_text(item: &ResponseItem, text: &str) -> bool {
    matches!(item, ResponseItem::Message { role, .. } if role == "developer")
        && item.message_text().as_deref() == Some(text)
}

/// Folds one handler's outcome into the event's verdict; the last rewrite wins.
fn join(v: &mut Verdict, o: HookOutcome) {
    use tally_hooks::HookRunStatus as S;
    match o.status {
        S::Blocked => v.blocked.extend(o.reason.clone()),
        S::Stopped => v.stopped = Some(v.stopped.clone().flatten().or(o.reason.clone())),
        S::Completed | S::Failed => {}
    }
    if o.status != S::Failed {
        v.allow |= o.allow;
        v.context.extend(o.context);
        if o.updated_input.is_some() {
            v.updated_input = o.updated_input;
        }
        if o.replacement_output.is_some() {
            v.replacement_output = o.replacement_output;
        }
    }
}

/// The call's arguments with a PreToolUse `updatedInput` applied (shell commands and client
/// tools; a patch cannot be rewritten, so its input stays).
fn rewrite_arguments(tool: &str, arguments: &str, updated: serde_json::Value) -> String {
    match tool {
        "Bash" => {
            let command = updated.get("command").and_then(|c| c.as_str());
            match (
                serde_json::from_str::<serde_json::Value>(arguments),
                command,
            ) {
                (Ok(serde_json::Value::Object(mut args)), Some(cmd)) => {
                    args.insert("cmd".into(), cmd.into());
                    serde_json::Value::Object(args).to_string()
                }
                _ => arguments.to_string(),
            }
        }
        "apply_patch" => arguments.to_string(),
        _ => updated.to_string(),
    }
}
