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
}

#[derive(Serialize)]
struct Wire<'a> {
    session_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    turn_id: Option<&'a str>,
    transcript_path: Option<&'a str>,
    cwd: &'a str,
    hook_event_name: &'a str,
    model: &'a str,
    permission_mode: &'a str,
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
        }
    }

    /// The compact JSON written to stdin (no trailing newline); SessionStart has no `turn_id`.
    pub fn to_stdin(&self, ctx: &PayloadContext) -> String {
        let wire = Wire {
            session_id: &ctx.session_id,
            turn_id: (self.event() != HookEvent::SessionStart).then_some(ctx.turn_id.as_str()),
            transcript_path: ctx.transcript_path.as_deref(),
            cwd: &ctx.cwd,
            hook_event_name: self.event().pascal(),
            model: &ctx.model,
            permission_mode: &ctx.permission_mode,
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
}
