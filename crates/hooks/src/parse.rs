//! Reads one hooks.json, or the `[hooks]` table of one config.toml, into handlers, and names the
//! field of everything it skips.

use crate::event::HookEvent;
use crate::matcher::Matcher;
use serde_json::Value;

/// Codex's default handler timeout, in seconds.
const DEFAULT_TIMEOUT_SEC: u64 = 600;

/// A `type: "command"` handler, normalized as it is hashed.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandHandler {
    /// Shell text run with `$SHELL -lc`.
    pub command: String,
    /// Seconds before the process is killed (at least 1).
    pub timeout_sec: u64,
    /// `async: true`: the handler runs detached and cannot block or stop anything.
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

/// What one file (or one config.toml `[hooks]` table) yields: handlers in listing order, and
/// the problems found, each naming the field (the caller adds the file).
pub(crate) type Parsed = (Vec<ParsedHandler>, Vec<String>);

/// Parses a hooks.json text.
pub(crate) fn parse_hooks_json(text: &str) -> Parsed {
    let root: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return (Vec::new(), vec![format!("invalid JSON: {e}")]),
    };
    let Some(events) = root.get("hooks") else {
        return (Vec::new(), vec!["field `hooks` is missing".into()]);
    };
    let Some(events) = events.as_object() else {
        return (Vec::new(), vec!["field `hooks` must be an object".into()]);
    };
    parse_events(events)
}

/// Parses the `[hooks]` table of a config.toml text: the same event map as hooks.json, next to
/// the user's `hooks.state` (which is trust, not hooks). `None` when the table declares no events.
pub(crate) fn parse_hooks_toml(table: &toml::Table) -> Option<Parsed> {
    let hooks = table.get("hooks")?;
    let Some(hooks) = hooks.as_table() else {
        return Some((Vec::new(), vec!["field `hooks` must be a table".into()]));
    };
    let mut events = serde_json::Map::new();
    for (name, value) in hooks.iter().filter(|(k, _)| k.as_str() != "state") {
        // TOML values always have a JSON form (datetimes become strings), so this cannot fail
        // on file input; a value that somehow did is reported, not unwrapped.
        match serde_json::to_value(value) {
            Ok(v) => {
                events.insert(name.clone(), v);
            }
            Err(e) => return Some((Vec::new(), vec![format!("field `hooks.{name}`: {e}")])),
        }
    }
    (!events.is_empty()).then(|| parse_events(&events))
}

/// Parses an event map (`hooks` of hooks.json or config.toml).
fn parse_events(events: &serde_json::Map<String, Value>) -> Parsed {
    let mut warnings = Vec::new();
    let mut out = Vec::new();
    for (name, groups) in events {
        let Some(event) = HookEvent::from_pascal(name) else {
            warnings.push(format!("field `hooks.{name}`: unknown hook event"));
            continue;
        };
        let Some(groups) = groups.as_array() else {
            warnings.push(format!("field `hooks.{name}` must be an array"));
            continue;
        };
        for (gi, group) in groups.iter().enumerate() {
            parse_group(
                &mut out,
                &mut warnings,
                &format!("field `hooks.{name}[{gi}]"),
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

    fn parse(text: &str) -> Parsed {
        parse_hooks_json(text)
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
            joined.contains("field `hooks.PreToolUse[0].matcher` is not a valid regex"),
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
    fn invalid_json_is_reported() {
        let (hooks, warnings) = parse("{not json");
        assert!(hooks.is_empty());
        assert!(warnings[0].starts_with("invalid JSON"), "{warnings:?}");
    }

    #[test]
    fn toml_hooks_share_the_json_shape_and_skip_the_trust_state() {
        let table: toml::Table = toml::from_str(
            r#"
            [[hooks.PreToolUse]]
            matcher = "Bash"
            [[hooks.PreToolUse.hooks]]
            type = "command"
            command = "echo pre"
            timeout = 5

            [hooks.state."/h/hooks.json:stop:0:0"]
            trusted_hash = "sha256:x"
            "#,
        )
        .unwrap();
        let (hooks, warnings) = parse_hooks_toml(&table).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(hooks.len(), 1);
        assert_eq!(hooks[0].event, HookEvent::PreToolUse);
        assert_eq!(hooks[0].matcher.as_deref(), Some("Bash"));
        assert_eq!(hooks[0].handler.timeout_sec, 5);

        let only_state: toml::Table =
            toml::from_str("[hooks.state.\"k\"]\ntrusted_hash = \"sha256:x\"\n").unwrap();
        assert!(parse_hooks_toml(&only_state).is_none());
        assert!(parse_hooks_toml(&toml::Table::new()).is_none());

        let bad: toml::Table = toml::from_str("[[hooks.Stop]]\nhooks = 3\n").unwrap();
        let (hooks, warnings) = parse_hooks_toml(&bad).unwrap();
        assert!(hooks.is_empty());
        assert_eq!(
            warnings,
            ["field `hooks.Stop[0].hooks` must be an array; group skipped"]
        );
    }
}
