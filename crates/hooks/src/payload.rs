//! The JSON a hook reads on stdin: common fields, then the event's own, in Codex's order.

use crate::event::HookEvent;
use serde::Serialize;
use serde_json::Value;

/// The session-level fields every payload shares.
#[derive(Debug, Clone)]
pub struct PayloadContext {
    /// The thread id.
    pub session_id: String,
    pub turn_id: String,
    /// The rollout file, or `None` when the thread has none.
    pub transcript_path: Option<String>,
    pub cwd: String,
    /// The model slug.
    pub model: String,
    /// `default`, or `bypassPermissions` when the approval policy is `never`.
    pub permission_mode: String,
}

/// The event-specific part of a payload.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum HookPayload {
    /// `source`: `startup`, `resume`, `clear` or `compact`.
    SessionStart { source: String },
    /// The user message text.
    UserPromptSubmit { prompt: String },
    /// A tool call about to run.
    PreToolUse {
        tool_name: String,
        tool_input: Value,
        tool_use_id: String,
    },
    /// A tool call that ran.
    PostToolUse {
        tool_name: String,
        tool_input: Value,
        tool_response: Value,
        tool_use_id: String,
    },
    /// The turn is about to end.
    Stop {
        stop_hook_active: bool,
        last_assistant_message: Option<String>,
    },
    /// An approval is about to be asked for (no `tool_use_id`).
    PermissionRequest {
        tool_name: String,
        /// `{command, description?}`.
        tool_input: Value,
    },
    /// A compaction is about to run; `trigger` is `manual` or `auto`.
    PreCompact { trigger: String },
    /// A compaction finished and replaced the history with its summary.
    PostCompact {
        trigger: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        compaction_summary: Option<String>,
    },
    /// The session is ending (the thread leaves this process); `reason` as Claude Code spells it.
    SessionEnd { reason: String },
    /// The turn was interrupted; no event fields.
    Interrupt {},
}

#[derive(Serialize)]
struct Wire<'a> {
    session_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    turn_id: Option<&'a str>,
    transcript_path: Option<&'a str>,
    cwd: &'a str,
    hook_event_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permission_mode: Option<&'a str>,
    #[serde(flatten)]
    event: &'a HookPayload,
}

impl HookPayload {
    /// The event this payload is for.
    pub fn event(&self) -> HookEvent {
        match self {
            HookPayload::SessionStart { .. } => HookEvent::SessionStart,
            HookPayload::UserPromptSubmit { .. } => HookEvent::UserPromptSubmit,
            HookPayload::PreToolUse { .. } => HookEvent::PreToolUse,
            HookPayload::PostToolUse { .. } => HookEvent::PostToolUse,
            HookPayload::Stop { .. } => HookEvent::Stop,
            HookPayload::PermissionRequest { .. } => HookEvent::PermissionRequest,
            HookPayload::PreCompact { .. } => HookEvent::PreCompact,
            HookPayload::PostCompact { .. } => HookEvent::PostCompact,
            HookPayload::SessionEnd { .. } => HookEvent::SessionEnd,
            HookPayload::Interrupt {} => HookEvent::Interrupt,
        }
    }

    /// What the event's matcher is applied to besides a tool name: SessionStart's `source`,
    /// the compaction `trigger`, SessionEnd's `reason`.
    pub fn matcher_subject(&self) -> Option<&str> {
        match self {
            HookPayload::SessionStart { source } => Some(source),
            HookPayload::PreCompact { trigger } | HookPayload::PostCompact { trigger, .. } => {
                Some(trigger)
            }
            HookPayload::SessionEnd { reason } => Some(reason),
            _ => None,
        }
    }

    /// The compact JSON written to stdin (no trailing newline). SessionStart has no `turn_id`;
    /// compaction has no `permission_mode`; SessionEnd carries only `session_id`,
    /// `transcript_path`, `cwd`, `hook_event_name` and `reason`, as Codex's SessionEnd input does
    /// (HOOKS.md does not list it).
    pub fn to_stdin(&self, ctx: &PayloadContext) -> String {
        let event = self.event();
        let session_scoped = matches!(event, HookEvent::SessionStart | HookEvent::SessionEnd);
        let ending = event == HookEvent::SessionEnd;
        let compaction = matches!(event, HookEvent::PreCompact | HookEvent::PostCompact);
        let wire = Wire {
            session_id: &ctx.session_id,
            turn_id: (!session_scoped).then_some(ctx.turn_id.as_str()),
            transcript_path: ctx.transcript_path.as_deref(),
            cwd: &ctx.cwd,
            hook_event_name: event.pascal(),
            model: (!ending).then_some(ctx.model.as_str()),
            permission_mode: (!ending && !compaction).then_some(ctx.permission_mode.as_str()),
            event: self,
        };
        // Serializing plain strings, bools and JSON values into a string cannot fail.
        serde_json::to_string(&wire).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> PayloadContext {
        PayloadContext {
            session_id: "thr".into(),
            turn_id: "turn".into(),
            transcript_path: None,
            cwd: "/w".into(),
            model: "m".into(),
            permission_mode: "default".into(),
        }
    }

    #[test]
    fn pre_tool_use_matches_the_captured_shape_and_order() {
        let p = HookPayload::PreToolUse {
            tool_name: "Bash".into(),
            tool_input: json!({"command": "touch marker.txt"}),
            tool_use_id: "call_1".into(),
        };
        assert_eq!(
            p.to_stdin(&ctx()),
            r#"{"session_id":"thr","turn_id":"turn","transcript_path":null,"cwd":"/w","hook_event_name":"PreToolUse","model":"m","permission_mode":"default","tool_name":"Bash","tool_input":{"command":"touch marker.txt"},"tool_use_id":"call_1"}"#
        );
    }

    #[test]
    fn session_start_has_no_turn_id_and_stop_has_its_fields() {
        let s = HookPayload::SessionStart {
            source: "startup".into(),
        }
        .to_stdin(&ctx());
        assert_eq!(
            s,
            r#"{"session_id":"thr","transcript_path":null,"cwd":"/w","hook_event_name":"SessionStart","model":"m","permission_mode":"default","source":"startup"}"#
        );
        let stop = HookPayload::Stop {
            stop_hook_active: false,
            last_assistant_message: None,
        }
        .to_stdin(&ctx());
        assert!(stop.ends_with(r#""hook_event_name":"Stop","model":"m","permission_mode":"default","stop_hook_active":false,"last_assistant_message":null}"#), "{stop}");
    }

    #[test]
    fn the_other_events_carry_their_documented_fields() {
        let p = HookPayload::PermissionRequest {
            tool_name: "Bash".into(),
            tool_input: json!({"command": "rm -rf build", "description": "clean"}),
        }
        .to_stdin(&ctx());
        assert_eq!(
            p,
            r#"{"session_id":"thr","turn_id":"turn","transcript_path":null,"cwd":"/w","hook_event_name":"PermissionRequest","model":"m","permission_mode":"default","tool_name":"Bash","tool_input":{"command":"rm -rf build","description":"clean"}}"#
        );
        let pre = HookPayload::PreCompact {
            trigger: "manual".into(),
        }
        .to_stdin(&ctx());
        assert_eq!(
            pre,
            r#"{"session_id":"thr","turn_id":"turn","transcript_path":null,"cwd":"/w","hook_event_name":"PreCompact","model":"m","trigger":"manual"}"#
        );
        let post = HookPayload::PostCompact {
            trigger: "manual".into(),
            compaction_summary: Some("sum".into()),
        }
        .to_stdin(&ctx());
        assert!(
            post.ends_with(r#""hook_event_name":"PostCompact","model":"m","trigger":"manual","compaction_summary":"sum"}"#),
            "{post}"
        );
        let end = HookPayload::SessionEnd {
            reason: "other".into(),
        }
        .to_stdin(&ctx());
        assert_eq!(
            end,
            r#"{"session_id":"thr","transcript_path":null,"cwd":"/w","hook_event_name":"SessionEnd","reason":"other"}"#
        );
        let interrupt = HookPayload::Interrupt {}.to_stdin(&ctx());
        assert_eq!(
            interrupt,
            r#"{"session_id":"thr","turn_id":"turn","transcript_path":null,"cwd":"/w","hook_event_name":"Interrupt","model":"m","permission_mode":"default"}"#
        );
    }
}
