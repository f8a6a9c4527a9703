//! The analytics privacy contract of `shared/ANALYTICS-EVENTS.md` section 4, checked on every
//! event a test collector receives: each `event_params` key is one the document lists for its
//! `event_type` (unknown keys denied), and each string value is an id, an enum, a version, a
//! hash or an identifier of at most 64 characters, so no free text (a prompt, a message, a
//! path) can leave unnoticed.
//!
//! The field lists are read from the document's section 3 tables (and the one table of section
//! 5); which common blocks each event carries is the document's prose, restated in
//! [`common_fields`].

use crate::ProtocolSchemas;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

/// The events and fields the document allows.
pub struct AnalyticsContract {
    fields: HashMap<String, HashSet<String>>,
}

const BASE: &str = "(tool item base)";
const TOOL_EVENTS: [&str; 3] = [
    "codex_command_execution_event",
    "codex_file_change_event",
    "codex_dynamic_tool_call_event",
];
const THREAD_CONTEXT: [&str; 3] = ["thread_source", "subagent_source", "parent_thread_id"];

/// Tally's own event (not in the document; its fields are in the repository README).
const TALLY_ANALYTICS_DROPPED: (&str, &[&str]) = (
    "tally_analytics_dropped",
    &[
        "stage",
        "reason",
        "dropped_event_type",
        "count",
        "window_start_ms",
        "window_end_ms",
    ],
);

/// Keys of the nested objects (section 3 "Common blocks", `reviewed_action` variants).
fn nested_fields(key: &str, object: &serde_json::Map<String, Value>) -> Option<Vec<&'static str>> {
    Some(match key {
        "app_server_client" => vec![
            "product_client_id",
            "client_name",
            "client_version",
            "rpc_transport",
            "experimental_api_enabled",
        ],
        "runtime" => vec![
            "codex_rs_version",
            "runtime_os",
            "runtime_os_version",
            "runtime_arch",
        ],
        // "error class only": the kind and the HTTP status.
        "turn_error" => vec!["codex_error_kind", "http_status_code"],
        "additional_permissions" => vec!["network"],
        "network" => vec!["enabled"],
        "reviewed_action" => {
            let mut keys = vec!["type"];
            keys.extend(match object.get("type").and_then(Value::as_str) {
                Some("shell") => &["sandbox_permissions", "additional_permissions"][..],
                Some("unified_exec") => &["sandbox_permissions", "additional_permissions", "tty"],
                Some("write_stdin") => &["tty"],
                Some("execve") => &["source", "additional_permissions"],
                Some("network_access") => &["protocol", "port"],
                Some("mcp_tool_call") => &[
                    "server",
                    "tool_name",
                    "connector_id",
                    "connector_name",
                    "tool_title",
                ],
                _ => &[],
            });
            keys
        }
        _ => return None,
    })
}

/// The common blocks an event carries besides its own table (section 3's prose per event).
fn common_fields(event_type: &str) -> Vec<&'static str> {
    let blocks = vec!["app_server_client", "runtime"];
    match event_type {
        "codex_accepted_line_fingerprints" | "codex_hook_run" => vec![],
        "codex_guardian_review" => vec!["session_id", "app_server_client", "runtime"],
        "codex_thread_archive_event" => {
            vec![
                "app_server_client",
                "runtime",
                "thread_source",
                "parent_thread_id",
            ]
        }
        "codex_server_request_event" => blocks,
        _ => blocks.into_iter().chain(THREAD_CONTEXT).collect(),
    }
}

/// Client names may hold spaces (they are HTTP header values); every other string is an
/// identifier.
const PRINTABLE_KEYS: [&str; 2] = ["client_name", "product_client_id"];

static CONTRACT: LazyLock<AnalyticsContract> = LazyLock::new(|| {
    let path = ProtocolSchemas::get().dir().join("../ANALYTICS-EVENTS.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "\n\n*** ANALYTICS-EVENTS.md NOT FOUND at {}: {e} ***\n",
            path.display()
        )
    });
    AnalyticsContract::parse(&text)
});

impl AnalyticsContract {
    /// The contract of `shared/ANALYTICS-EVENTS.md`; panics loudly when the document is missing.
    pub fn get() -> &'static AnalyticsContract {
        &CONTRACT
    }

    /// Reads the field tables of the document.
    pub fn parse(markdown: &str) -> AnalyticsContract {
        let mut own: HashMap<String, HashSet<String>> = HashMap::new();
        let mut current: Option<String> = None;
        for line in markdown.lines() {
            if let Some(heading) = line.strip_prefix("### ") {
                let name = heading.split_whitespace().next().unwrap_or_default();
                current = if name.starts_with("codex_") {
                    Some(name.to_owned())
                } else if heading.contains("shared base") {
                    Some(BASE.to_owned())
                } else {
                    None
                };
            } else if line.starts_with("## ") {
                current = None;
            } else if let Some(name) = event_introduced(line) {
                current = Some(name);
            } else if let (Some(event), Some(cell)) = (&current, first_cell(line)) {
                own.entry(event.clone())
                    .or_default()
                    .extend(backticked(cell).flat_map(|f| expand_braces(&f)));
            }
        }
        let base = own.remove(BASE).unwrap_or_default();
        let mut fields = HashMap::new();
        for (event, mut keys) in own {
            if TOOL_EVENTS.contains(&event.as_str()) {
                keys.extend(base.iter().cloned());
            }
            keys.extend(common_fields(&event).into_iter().map(str::to_owned));
            fields.insert(event, keys);
        }
        let (name, keys) = TALLY_ANALYTICS_DROPPED;
        fields.insert(
            name.to_owned(),
            keys.iter().map(|k| (*k).to_owned()).collect(),
        );
        AnalyticsContract { fields }
    }

    /// The keys allowed for `event_type`, if the document knows it.
    pub fn fields_of(&self, event_type: &str) -> Option<&HashSet<String>> {
        self.fields.get(event_type)
    }

    /// Every breach of the contract in one wire event (`{"event_type", "event_params", ...}`).
    pub fn check(&self, event: &Value) -> Vec<String> {
        let event_type = event["event_type"].as_str().unwrap_or_default();
        let Some(allowed) = self.fields.get(event_type) else {
            return vec![format!("unknown event_type {event_type:?}")];
        };
        let Some(params) = event["event_params"].as_object() else {
            return vec![format!("{event_type}: event_params is not an object")];
        };
        let mut breaches = Vec::new();
        for (key, value) in params {
            if !allowed.contains(key) {
                breaches.push(format!("{event_type}: undocumented key {key:?}"));
            }
            check_value(event_type, key, value, &mut breaches);
        }
        breaches
    }
}

fn check_value(event_type: &str, key: &str, value: &Value, breaches: &mut Vec<String>) {
    match value {
        Value::String(s) if !string_allowed(key, s) => breaches.push(format!(
            "{event_type}: {key} = {s:?} is not an id, enum, version, hash or identifier"
        )),
        Value::Array(items) => {
            if key == "line_fingerprints" && !items.is_empty() {
                breaches.push(format!("{event_type}: line_fingerprints is not []"));
            }
            for item in items {
                check_value(event_type, key, item, breaches);
            }
        }
        Value::Object(object) => {
            let Some(allowed) = nested_fields(key, object) else {
                breaches.push(format!("{event_type}: undocumented object {key:?}"));
                return;
            };
            for (inner, v) in object {
                if !allowed.contains(&inner.as_str()) {
                    breaches.push(format!("{event_type}: undocumented key {key}.{inner}"));
                }
                check_value(event_type, inner, v, breaches);
            }
        }
        _ => {}
    }
}

/// Section 4 rule 4: ids, enums, versions, hashes and identifiers of at most 64 characters.
fn string_allowed(key: &str, s: &str) -> bool {
    let short = s.chars().count() <= 64;
    if PRINTABLE_KEYS.contains(&key) {
        return short && s.bytes().all(|b| (0x20..0x7f).contains(&b));
    }
    short
        && !s.starts_with('/')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:@+/".contains(&b))
}

/// `` `codex_server_request_event` — … ``: an event introduced outside a heading (section 5).
fn event_introduced(line: &str) -> Option<String> {
    let rest = line.strip_prefix('`')?;
    let (name, after) = rest.split_once('`')?;
    (name.starts_with("codex_") && after.trim_start().starts_with('—')).then(|| name.to_owned())
}

/// The first cell of a table row that names fields (`` | `a`, `b` / `c` | … ``).
fn first_cell(line: &str) -> Option<&str> {
    let row = line.strip_prefix("| `")?;
    let end = row.find(" |")?;
    Some(&line[1..end + 3])
}

fn backticked(cell: &str) -> impl Iterator<Item = String> + '_ {
    cell.split('`').skip(1).step_by(2).map(str::to_owned)
}

/// `a_{x,y}_b` → `a_x_b`, `a_y_b` (one group, as the document writes them).
fn expand_braces(field: &str) -> Vec<String> {
    match (field.find('{'), field.find('}')) {
        (Some(open), Some(close)) if open < close => field[open + 1..close]
            .split(',')
            .map(|part| format!("{}{}{}", &field[..open], part, &field[close + 1..]))
            .collect(),
        _ => vec![field.to_owned()],
    }
}

#[cfg(test)]
#[path = "analytics_contract_tests.rs"]
mod tests;
