//! Reads one hooks.json into handlers, and names the file and field of everything it skips.

use crate::event::HookEvent;
use crate::matcher::Matcher;
use serde_json::Value;
use std::path::Path;

/// Codex's default handler timeout, in seconds.
const DEFAULT_TIMEOUT_SEC: u64 = 600;

/// A `type: "command"` handler, normalized as it is hashed.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandHandler {
    /// Shell text run with `$SHELL -lc`.
    pub command: String,
    /// Seconds before the process is killed (at least 1).
    pub timeout_sec: u64,
    /// `async: true` handlers run detached in Codex; Tally lists them but does not run them.
    pub is_async: bool,
    /// Copied into run summaries.
    pub status_message: Option<String>,
}

/// One handler found in a file, with its position (the trust key is positional).
#[derive(Debug, Clone)]
pub(crate) struct ParsedHandler {
    pub event: HookEvent,
    /// The effective matcher: `None` when absent or when the event ignores matchers.
    pub matcher: Option<String>,
    pub compiled: Matcher,
    pub group_index: usize,
    pub handler_index: usize,
    pub handler: CommandHandler,
}

/// Parses `text` read from `path`; returns handlers in listing order and warnings.
pub(crate) fn parse_hooks_json(path: &Path, text: &str) -> (Vec<ParsedHandler>, Vec<String>) {
    let file = path.display();
    let mut warnings = Vec::new();
    let root: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            warnings.push(format!("{file}: invalid JSON: {e}"));
            return (Vec::new(), warnings);
        }
    };
    let Some(events) = root.get("hooks") else {
        warnings.push(format!("{file}: field `hooks` is missing"));
        return (Vec::new(), warnings);
    };
    let Some(events) = events.as_object() else {
        warnings.push(format!("{file}: field `hooks` must be an object"));
        return (Vec::new(), warnings);
    };
    let mut out = Vec::new();
    for (name, groups) in events {
        let Some(event) = HookEvent::from_pascal(name) else {
            warnings.push(format!("{file}: field `hooks.{name}`: unknown hook event"));
            continue;
        };
        let Some(groups) = groups.as_array() else {
            warnings.push(format!("{file}: field `hooks.{name}` must be an array"));
            continue;
        };
        for (gi, group) in groups.iter().enumerate() {
            parse_group(
                &mut out,
                &mut warnings,
                &format!("{file}: field `hooks.{name}[{gi}]"),
                event,
                gi,
                group,
            );
        }
    }
    // Entries follow the fixed event order; groups and handlers keep file order.
    out.sort_by_key(|h| (h.event, h.group_index, h.handler_index));
    (out, warnings)
}

fn parse_group(
    out: &mut Vec<ParsedHandler>,
    warnings: &mut Vec<String>,
    at: &str,
    event: HookEvent,
    gi: usize,
    group: &Value,
) {
    let matcher = match group.get("matcher") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            warnings.push(format!("{at}.matcher` must be a string; group skipped"));
            return;
        }
    };
    let matcher = matcher.filter(|_| event.uses_matcher());
    let compiled = match Matcher::compile(matcher.as_deref()) {
        Ok(m) => m,
        Err(e) => {
            warnings.push(format!(
                "{at}.matcher` is not a valid regex ({e}); group skipped"
            ));
            return;
        }
    };
    let Some(handlers) = group.get("hooks").and_then(Value::as_array) else {
        warnings.push(format!("{at}.hooks` must be an array; group skipped"));
        return;
    };
    for (hi, h) in handlers.iter().enumerate() {
        let at = format!("{at}.hooks[{hi}]");
        match parse_handler(h) {
            Ok(handler) => out.push(ParsedHandler {
                event,
                matcher: matcher.clone(),
                compiled: compiled.clone(),
                group_index: gi,
                handler_index: hi,
                handler,
            }),
            Err(why) => warnings.push(format!("{at}{why}; handler skipped")),
        }
    }
}

/// Parses one handler; the error starts with the rest of the field path.
fn parse_handler(h: &Value) -> Result<CommandHandler, String> {
    let kind = h.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "command" => {}
        "prompt" | "agent" | "mcpTool" => {
            return Err(format!(".type`: `{kind}` hooks are not supported yet"))
        }
        _ => return Err(".type` must be \"command\"".into()),
    }
    let command = match h.get("command") {
        Some(Value::String(c)) if !c.trim().is_empty() => c.clone(),
        Some(Value::String(_)) | None => return Err(".command` is empty".into()),
        Some(_) => return Err(".command` must be a string".into()),
    };
    let timeout = match h.get("timeout").or_else(|| h.get("timeoutSec")) {
        None | Some(Value::Null) => DEFAULT_TIMEOUT_SEC,
        Some(v) => match v.as_u64() {
            Some(n) => n.max(1),
            None => return Err(".timeout` must be a non-negative integer (seconds)".into()),
        },
    };
    let is_async = match h.get("async") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(".async` must be a boolean".into()),
    };
    let status_message = match h.get("statusMessage") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(".statusMessage` must be a string".into()),
    };
    Ok(CommandHandler {
        command,
        timeout_sec: timeout,
        is_async,
        status_message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Vec<ParsedHandler>, Vec<String>) {
        parse_hooks_json(Path::new("/h/hooks.json"), text)
    }

    #[test]
    fn entries_follow_event_order_and_defaults_are_filled() {
        let (hooks, warnings) = parse(
            r#"{"hooks":{"Stop":[{"hooks":[{"type":"command","command":"s"}]}],
                "PreToolUse":[{"matcher":"Bash","hooks":[{"type":"command","command":"a","timeoutSec":5},{"type":"command","command":"b","timeout":0}]}],
                "UserPromptSubmit":[{"matcher":"ignored","hooks":[{"type":"command","command":"u","async":true}]}]}}"#,
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        let names: Vec<_> = hooks.iter().map(|h| h.handler.command.as_str()).collect();
        assert_eq!(names, ["a", "b", "u", "s"]);
        assert_eq!(hooks[0].handler.timeout_sec, 5);
        assert_eq!(hooks[1].handler.timeout_sec, 1);
        assert_eq!(hooks[1].handler_index, 1);
        assert_eq!(hooks[2].matcher, None);
        assert!(hooks[2].handler.is_async);
        assert_eq!(hooks[3].handler.timeout_sec, 600);
    }

    #[test]
    fn bad_parts_are_skipped_with_warnings_naming_file_and_field() {
        let (hooks, warnings) = parse(
            r#"{"hooks":{"PreToolUse":[{"matcher":"(","hooks":[{"type":"command","command":"x"}]},
                {"hooks":[{"type":"command","command":""},{"type":"prompt"},{"type":"command","command":"ok","timeout":"soon"}]}],
                "Bogus":[]}}"#,
        );
        assert!(hooks.is_empty());
        let joined = warnings.join("\n");
        assert!(
            joined.contains(
                "/h/hooks.json: field `hooks.PreToolUse[0].matcher` is not a valid regex"
            ),
            "{joined}"
        );
        assert!(
            joined.contains("`hooks.PreToolUse[1].hooks[0].command` is empty"),
            "{joined}"
        );
        assert!(
            joined.contains(
                "`hooks.PreToolUse[1].hooks[1].type`: `prompt` hooks are not supported yet"
            ),
            "{joined}"
        );
        assert!(
            joined.contains("`hooks.PreToolUse[1].hooks[2].timeout` must be"),
            "{joined}"
        );
        assert!(
            joined.contains("`hooks.Bogus`: unknown hook event"),
            "{joined}"
        );
    }

    #[test]
    fn invalid_json_names_the_file() {
        let (hooks, warnings) = parse("{not json");
        assert!(hooks.is_empty());
        assert!(
            warnings[0].starts_with("/h/hooks.json: invalid JSON"),
            "{warnings:?}"
        );
    }
}
