//! Turns a finished run (exit code, stdout, stderr) into a status and its effect, per event,
//! as HOOKS.md §4–5 describe. A failure always fails open: it has no effect on the turn.

use crate::event::HookEvent;
use crate::runner::RunOutput;
use serde_json::{Map, Value};

/// A run's final status (wire `HookRunStatus`, without `running`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookRunStatus {
    Completed,
    Failed,
    Blocked,
    Stopped,
}

/// The kind of one run entry (wire `HookOutputEntryKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Warning,
    Stop,
    Feedback,
    Context,
    Error,
}

/// One `{kind, text}` entry of a run summary.
#[derive(Debug, Clone, PartialEq)]
pub struct HookEntry {
    pub kind: EntryKind,
    pub text: String,
}

/// What one handler's run means for the turn.
#[derive(Debug, Clone, PartialEq)]
pub struct HookOutcome {
    pub status: HookRunStatus,
    pub entries: Vec<HookEntry>,
    /// Text for the model (SessionStart, UserPromptSubmit, PostToolUse).
    pub context: Vec<String>,
    /// Why the hook blocked or stopped, when it said.
    pub reason: Option<String>,
    /// PreToolUse `allow` + `updatedInput`: the rewritten tool input.
    pub updated_input: Option<Value>,
    /// PostToolUse: what the model sees instead of the tool's output.
    pub replacement_output: Option<String>,
    /// PermissionRequest `decision.behavior: "allow"`: approve without asking (a deny is
    /// `Blocked`, with its message as the reason).
    pub allow: bool,
}

impl HookOutcome {
    fn new(status: HookRunStatus) -> Self {
        Self {
            status,
            entries: Vec::new(),
            context: Vec::new(),
            reason: None,
            updated_input: None,
            replacement_output: None,
            allow: false,
        }
    }

    fn failed(why: impl Into<String>) -> Self {
        let mut o = Self::new(HookRunStatus::Failed);
        o.entries.push(HookEntry {
            kind: EntryKind::Error,
            text: why.into(),
        });
        o
    }

    fn push(&mut self, kind: EntryKind, text: &str) {
        self.entries.push(HookEntry {
            kind,
            text: text.to_string(),
        });
    }
}

/// Interprets a finished run of a handler for `event`.
pub fn interpret(event: HookEvent, run: &RunOutput) -> HookOutcome {
    if let Some(e) = &run.error {
        return HookOutcome::failed(e.clone());
    }
    let Some(code) = run.exit_code else {
        return HookOutcome::failed("hook exited without an exit code");
    };
    if code == 2 {
        return exit_two(event, run.stderr.trim());
    }
    if code != 0 {
        return HookOutcome::failed(format!("hook exited with code {code}"));
    }
    let stdout = run.stdout.trim();
    if stdout.is_empty() {
        return HookOutcome::new(HookRunStatus::Completed);
    }
    match serde_json::from_str::<Value>(stdout) {
        Ok(Value::Object(map)) => match json_answer(event, &map) {
            Ok(o) => o,
            Err(why) => HookOutcome::failed(format!("invalid hook output: {why}")),
        },
        Ok(_) => HookOutcome::failed("invalid hook output: expected a JSON object"),
        Err(e) if stdout.starts_with('{') || stdout.starts_with('[') => {
            HookOutcome::failed(format!("invalid hook output: {e}"))
        }
        Err(_) => plain_text(event, stdout),
    }
}

/// Exit 2: block with stderr as the reason where the event can block.
fn exit_two(event: HookEvent, stderr: &str) -> HookOutcome {
    let blocks = matches!(
        event,
        HookEvent::UserPromptSubmit
            | HookEvent::PreToolUse
            | HookEvent::PermissionRequest
            | HookEvent::Stop
    );
    if event == HookEvent::PostToolUse && !stderr.is_empty() {
        let mut o = HookOutcome::new(HookRunStatus::Completed);
        o.replacement_output = Some(stderr.to_string());
        o.push(EntryKind::Feedback, stderr);
        return o;
    }
    if !blocks || stderr.is_empty() {
        let why = if blocks || event == HookEvent::PostToolUse {
            "hook exited with code 2 but wrote no reason to stderr".to_string()
        } else {
            "hook exited with code 2".to_string()
        };
        return HookOutcome::failed(why);
    }
    let mut o = HookOutcome::new(HookRunStatus::Blocked);
    o.reason = Some(stderr.to_string());
    o.push(EntryKind::Feedback, stderr);
    o
}

fn plain_text(event: HookEvent, text: &str) -> HookOutcome {
    match event {
        HookEvent::SessionStart | HookEvent::UserPromptSubmit => {
            let mut o = HookOutcome::new(HookRunStatus::Completed);
            o.context.push(text.to_string());
            o.push(EntryKind::Context, text);
            o
        }
        // Codex ignores plain text here (compaction and SessionEnd included: their parsers only
        // fail output that looks like JSON).
        HookEvent::PreToolUse
        | HookEvent::PostToolUse
        | HookEvent::PermissionRequest
        | HookEvent::PreCompact
        | HookEvent::PostCompact
        | HookEvent::SessionEnd => HookOutcome::new(HookRunStatus::Completed),
        _ => HookOutcome::failed(format!(
            "invalid hook output: {} hooks must print JSON, not plain text",
            event.pascal()
        )),
    }
}

/// The top-level keys an event's answer may carry besides the universal ones.
fn event_keys(event: HookEvent) -> &'static [&'static str] {
    match event {
        HookEvent::SessionStart => &["hookSpecificOutput"],
        HookEvent::UserPromptSubmit | HookEvent::PreToolUse | HookEvent::PostToolUse => {
            &["decision", "reason", "hookSpecificOutput"]
        }
        HookEvent::Stop => &["decision", "reason"],
        HookEvent::PermissionRequest => &["hookSpecificOutput"],
        _ => &[],
    }
}

/// The `hookSpecificOutput` keys an event accepts besides `hookEventName`.
fn specific_keys(event: HookEvent) -> &'static [&'static str] {
    match event {
        HookEvent::SessionStart | HookEvent::UserPromptSubmit | HookEvent::PostToolUse => {
            &["additionalContext"]
        }
        HookEvent::PreToolUse => &[
            "permissionDecision",
            "permissionDecisionReason",
            "updatedInput",
        ],
        HookEvent::PermissionRequest => &["decision"],
        _ => &[],
    }
}

const UNIVERSAL: [&str; 4] = ["continue", "stopReason", "suppressOutput", "systemMessage"];

fn string_field(map: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("field `{key}` must be a string")),
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Validates and applies a JSON answer; `Err` is the reason it is `failed`.
fn json_answer(event: HookEvent, map: &Map<String, Value>) -> Result<HookOutcome, String> {
    for key in map.keys() {
        // Interrupt hooks may only add a `systemMessage`.
        let universal = if event == HookEvent::Interrupt {
            key == "systemMessage"
        } else {
            UNIVERSAL.contains(&key.as_str())
        };
        if !universal && !event_keys(event).contains(&key.as_str()) {
            return Err(format!("unsupported field `{key}` for {}", event.pascal()));
        }
    }
    let go_on = match map.get("continue") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("field `continue` must be a boolean".into()),
    };
    let suppress = match map.get("suppressOutput") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("field `suppressOutput` must be a boolean".into()),
    };
    let stop_reason = non_empty(string_field(map, "stopReason")?);
    let system_message = non_empty(string_field(map, "systemMessage")?);
    let decision = string_field(map, "decision")?;
    let reason = non_empty(string_field(map, "reason")?);
    let specific = match map.get("hookSpecificOutput") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(s)) => {
            match s.get("hookEventName").and_then(Value::as_str) {
                Some(name) if name == event.pascal() => {}
                _ => {
                    return Err(format!(
                        "`hookSpecificOutput.hookEventName` must be \"{}\"",
                        event.pascal()
                    ))
                }
            }
            for key in s.keys() {
                if key != "hookEventName" && !specific_keys(event).contains(&key.as_str()) {
                    return Err(format!("unsupported field `hookSpecificOutput.{key}`"));
                }
            }
            s.clone()
        }
        Some(_) => return Err("field `hookSpecificOutput` must be an object".into()),
    };
    let context = non_empty(string_field(&specific, "additionalContext")?);

    let mut o = HookOutcome::new(HookRunStatus::Completed);
    if let Some(m) = &system_message {
        o.push(EntryKind::Warning, m);
    }
    if let Some(c) = context {
        o.push(EntryKind::Context, &c);
        o.context.push(c);
    }
    let stops = matches!(
        event,
        HookEvent::SessionStart
            | HookEvent::UserPromptSubmit
            | HookEvent::PostToolUse
            | HookEvent::Stop
            | HookEvent::PreCompact
            | HookEvent::PostCompact
    );
    // `continue: false` is checked before any block.
    if !go_on {
        if !stops {
            return Err(format!(
                "`continue: false` is not supported for {}",
                event.pascal()
            ));
        }
        o.status = HookRunStatus::Stopped;
        if let Some(r) = &stop_reason {
            o.push(EntryKind::Stop, r);
        } else if matches!(event, HookEvent::PreCompact | HookEvent::PostCompact) {
            o.push(
                EntryKind::Stop,
                &format!("{} hook stopped execution", event.pascal()),
            );
        }
        if event == HookEvent::PostToolUse {
            o.replacement_output = Some(
                reason
                    .clone()
                    .or(stop_reason.clone())
                    .unwrap_or_else(|| "PostToolUse hook stopped execution".into()),
            );
        }
        o.reason = stop_reason;
        return Ok(o);
    }
    match event {
        HookEvent::PreToolUse => {
            if stop_reason.is_some() || suppress {
                return Err(
                    "`stopReason` and `suppressOutput` are not supported for PreToolUse".into(),
                );
            }
            let permission = string_field(&specific, "permissionDecision")?;
            let permission_reason = non_empty(string_field(&specific, "permissionDecisionReason")?);
            match (permission.as_deref(), decision.as_deref()) {
                (Some("deny"), _) => block(&mut o, permission_reason, "permissionDecisionReason")?,
                (Some("allow"), _) => match specific.get("updatedInput") {
                    Some(input) if !input.is_null() => o.updated_input = Some(input.clone()),
                    _ => return Err("`permissionDecision: \"allow\"` needs `updatedInput`".into()),
                },
                (Some(other), _) => {
                    return Err(format!("unsupported `permissionDecision` \"{other}\""))
                }
                (None, Some("block")) => block(&mut o, reason, "reason")?,
                (None, Some(other)) => return Err(format!("unsupported `decision` \"{other}\"")),
                (None, None) => {}
            }
        }
        HookEvent::UserPromptSubmit | HookEvent::Stop | HookEvent::PostToolUse => {
            if event == HookEvent::PostToolUse && suppress {
                return Err("`suppressOutput` is not supported for PostToolUse".into());
            }
            match decision.as_deref() {
                Some("block") => {
                    block(&mut o, reason, "reason")?;
                    if event == HookEvent::PostToolUse {
                        o.replacement_output = o.reason.clone();
                    }
                }
                Some(other) => return Err(format!("unsupported `decision` \"{other}\"")),
                None if reason.is_some() => {
                    return Err("`reason` without `decision: \"block\"`".into())
                }
                None => {}
            }
        }
        HookEvent::PermissionRequest => match specific.get("decision") {
            None | Some(Value::Null) => {}
            Some(Value::Object(d)) => permission_decision(&mut o, d)?,
            Some(_) => return Err("`hookSpecificOutput.decision` must be an object".into()),
        },
        _ => {}
    }
    Ok(o)
}

/// A PermissionRequest `decision`: `{behavior: "allow"}` or `{behavior: "deny", message?}`.
/// Rewriting the input or the permissions, and `interrupt: true`, are not supported.
fn permission_decision(o: &mut HookOutcome, d: &Map<String, Value>) -> Result<(), String> {
    for key in d.keys() {
        match key.as_str() {
            "behavior" | "message" => {}
            "interrupt" if d.get("interrupt") == Some(&Value::Bool(false)) => {}
            other => return Err(format!("unsupported field `decision.{other}`")),
        }
    }
    let message = match d.get("message") {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) => non_empty(Some(m.clone())),
        Some(_) => return Err("field `decision.message` must be a string".into()),
    };
    match d.get("behavior").and_then(Value::as_str) {
        Some("allow") => o.allow = true,
        Some("deny") => {
            let reason = message.unwrap_or_else(|| "denied by a PermissionRequest hook".into());
            o.status = HookRunStatus::Blocked;
            o.push(EntryKind::Feedback, &reason);
            o.reason = Some(reason);
        }
        _ => return Err("`decision.behavior` must be \"allow\" or \"deny\"".into()),
    }
    Ok(())
}

fn block(o: &mut HookOutcome, reason: Option<String>, field: &str) -> Result<(), String> {
    let Some(r) = reason else {
        return Err(format!("a block needs a non-empty `{field}`"));
    };
    o.status = HookRunStatus::Blocked;
    o.push(EntryKind::Feedback, &r);
    o.reason = Some(r);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exit(code: i32, stdout: &str, stderr: &str) -> RunOutput {
        RunOutput {
            exit_code: Some(code),
            stdout: stdout.into(),
            stderr: stderr.into(),
            error: None,
        }
    }

    fn status(event: HookEvent, run: RunOutput) -> HookRunStatus {
        interpret(event, &run).status
    }

    #[test]
    fn exit_codes_and_run_errors() {
        use HookRunStatus::*;
        assert_eq!(status(HookEvent::Stop, exit(0, "", "")), Completed);
        assert_eq!(status(HookEvent::Stop, exit(1, "", "")), Failed);
        let timed_out = RunOutput {
            error: Some("hook timed out after 1s".into()),
            ..RunOutput::default()
        };
        let o = interpret(HookEvent::PreToolUse, &timed_out);
        assert_eq!(o.status, Failed);
        assert_eq!(o.entries[0].text, "hook timed out after 1s");
        assert_eq!(
            interpret(HookEvent::Stop, &exit(7, "", "")).entries[0].text,
            "hook exited with code 7"
        );
        let o = interpret(HookEvent::PreToolUse, &exit(2, "", " no rm \n"));
        assert_eq!((o.status, o.reason.as_deref()), (Blocked, Some("no rm")));
        assert_eq!(status(HookEvent::PreToolUse, exit(2, "", "")), Failed);
        assert_eq!(status(HookEvent::SessionStart, exit(2, "", "x")), Failed);
        let o = interpret(HookEvent::PostToolUse, &exit(2, "", "redacted"));
        assert_eq!(
            (o.status, o.replacement_output.as_deref()),
            (Completed, Some("redacted"))
        );
    }

    #[test]
    fn invalid_json_fails_with_a_reason_and_plain_text_depends_on_the_event() {
        let o = interpret(HookEvent::PreToolUse, &exit(0, "{\"decision\":", ""));
        assert_eq!(o.status, HookRunStatus::Failed);
        assert!(o.entries[0].text.starts_with("invalid hook output"));
        let o = interpret(
            HookEvent::UserPromptSubmit,
            &exit(0, "remember: tabs\n", ""),
        );
        assert_eq!(o.context, ["remember: tabs"]);
        assert_eq!(
            status(HookEvent::PreToolUse, exit(0, "hello", "")),
            HookRunStatus::Completed
        );
        assert_eq!(
            status(HookEvent::Stop, exit(0, "hello", "")),
            HookRunStatus::Failed
        );
        assert_eq!(
            status(HookEvent::Stop, exit(0, r#"{"bogus":1}"#, "")),
            HookRunStatus::Failed
        );
    }

    #[test]
    fn pre_tool_use_answers() {
        let deny = json!({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny", "permissionDecisionReason": "no network"}});
        let o = interpret(HookEvent::PreToolUse, &exit(0, &deny.to_string(), ""));
        assert_eq!(
            (o.status, o.reason.as_deref()),
            (HookRunStatus::Blocked, Some("no network"))
        );
        let legacy = json!({"decision": "block", "reason": "nope"});
        assert_eq!(
            status(HookEvent::PreToolUse, exit(0, &legacy.to_string(), "")),
            HookRunStatus::Blocked
        );
        let rewrite = json!({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow", "updatedInput": {"command": "ls"}}});
        let o = interpret(HookEvent::PreToolUse, &exit(0, &rewrite.to_string(), ""));
        assert_eq!(o.updated_input, Some(json!({"command": "ls"})));
        for failing in [
            json!({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow"}}),
            json!({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "ask"}}),
            json!({"decision": "approve"}),
            json!({"continue": false}),
            json!({"decision": "block"}),
            json!({"hookSpecificOutput": {"permissionDecision": "deny", "permissionDecisionReason": "x"}}),
        ] {
            assert_eq!(
                status(HookEvent::PreToolUse, exit(0, &failing.to_string(), "")),
                HookRunStatus::Failed,
                "{failing}"
            );
        }
    }

    #[test]
    fn continue_false_stops_and_beats_block() {
        let answer = json!({"continue": false, "stopReason": "enough", "decision": "block", "reason": "more"});
        let o = interpret(HookEvent::Stop, &exit(0, &answer.to_string(), ""));
        assert_eq!(
            (o.status, o.reason.as_deref()),
            (HookRunStatus::Stopped, Some("enough"))
        );
        let o = interpret(
            HookEvent::PostToolUse,
            &exit(0, r#"{"continue":false}"#, ""),
        );
        assert_eq!(
            o.replacement_output.as_deref(),
            Some("PostToolUse hook stopped execution")
        );
    }

    #[test]
    fn context_and_system_message_become_entries() {
        let answer = json!({"systemMessage": "heads up", "hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": "repo uses tabs"}});
        let o = interpret(HookEvent::SessionStart, &exit(0, &answer.to_string(), ""));
        assert_eq!(o.status, HookRunStatus::Completed);
        assert_eq!(o.context, ["repo uses tabs"]);
        let kinds: Vec<_> = o.entries.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EntryKind::Warning, EntryKind::Context]);
    }

    #[test]
    fn stop_block_keeps_going_and_needs_a_reason() {
        let o = interpret(
            HookEvent::Stop,
            &exit(0, r#"{"decision":"block","reason":"run the tests"}"#, ""),
        );
        assert_eq!(
            (o.status, o.reason.as_deref()),
            (HookRunStatus::Blocked, Some("run the tests"))
        );
        assert_eq!(
            status(
                HookEvent::Stop,
                exit(0, r#"{"decision":"block","reason":" "}"#, "")
            ),
            HookRunStatus::Failed
        );
        assert_eq!(
            status(HookEvent::UserPromptSubmit, exit(2, "", "secret in prompt")),
            HookRunStatus::Blocked
        );
    }

    #[test]
    fn permission_request_answers() {
        let answer = |d: Value| {
            json!({"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": d}})
                .to_string()
        };
        let o = interpret(
            HookEvent::PermissionRequest,
            &exit(0, &answer(json!({"behavior": "allow"})), ""),
        );
        assert_eq!((o.status, o.allow), (HookRunStatus::Completed, true));
        let o = interpret(
            HookEvent::PermissionRequest,
            &exit(
                0,
                &answer(json!({"behavior": "deny", "message": "not here"})),
                "",
            ),
        );
        assert_eq!(
            (o.status, o.reason.as_deref(), o.allow),
            (HookRunStatus::Blocked, Some("not here"), false)
        );
        let o = interpret(HookEvent::PermissionRequest, &exit(2, "", "nope"));
        assert_eq!(
            (o.status, o.reason.as_deref()),
            (HookRunStatus::Blocked, Some("nope"))
        );
        assert_eq!(
            status(HookEvent::PermissionRequest, exit(0, "just text", "")),
            HookRunStatus::Completed
        );
        for failing in [
            answer(json!({"behavior": "allow", "updatedInput": {"command": "ls"}})),
            answer(json!({"behavior": "allow", "updatedPermissions": []})),
            answer(json!({"behavior": "deny", "interrupt": true})),
            answer(json!({"behavior": "maybe"})),
            json!({"continue": false}).to_string(),
        ] {
            assert_eq!(
                status(HookEvent::PermissionRequest, exit(0, &failing, "")),
                HookRunStatus::Failed,
                "{failing}"
            );
        }
    }

    #[test]
    fn compaction_session_end_and_interrupt_answers() {
        let o = interpret(HookEvent::PreCompact, &exit(0, r#"{"continue":false}"#, ""));
        assert_eq!(o.status, HookRunStatus::Stopped);
        assert_eq!(o.entries[0].text, "PreCompact hook stopped execution");
        assert_eq!(
            status(HookEvent::PostCompact, exit(0, "plain text", "")),
            HookRunStatus::Completed
        );
        assert_eq!(
            status(HookEvent::PreCompact, exit(2, "", "no")),
            HookRunStatus::Failed
        );
        assert_eq!(
            status(HookEvent::SessionEnd, exit(0, "bye", "")),
            HookRunStatus::Completed
        );
        assert_eq!(
            status(
                HookEvent::Interrupt,
                exit(0, r#"{"systemMessage":"noted"}"#, "")
            ),
            HookRunStatus::Completed
        );
        for failing in [r#"{"continue":true}"#, "plain"] {
            assert_eq!(
                status(HookEvent::Interrupt, exit(0, failing, "")),
                HookRunStatus::Failed,
                "{failing}"
            );
        }
        assert_eq!(
            status(HookEvent::Interrupt, exit(2, "", "x")),
            HookRunStatus::Failed
        );
    }
}
