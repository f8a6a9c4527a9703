//! Trust: a handler's content hash, and the user's `hooks.state` that records trusted hashes.

use crate::event::HookEvent;
use crate::parse::CommandHandler;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// `sha256:<hex>` of the canonical JSON of one handler, exactly as Codex computes it.
pub fn current_hash(event: HookEvent, matcher: Option<&str>, handler: &CommandHandler) -> String {
    let mut h = serde_json::Map::new();
    h.insert("type".into(), json!("command"));
    h.insert("command".into(), json!(handler.command));
    h.insert("timeout".into(), json!(handler.timeout_sec));
    h.insert("async".into(), json!(handler.is_async));
    if let Some(m) = &handler.status_message {
        h.insert("statusMessage".into(), json!(m));
    }
    let mut root = serde_json::Map::new();
    root.insert("event_name".into(), json!(event.snake()));
    if let Some(m) = matcher {
        root.insert("matcher".into(), json!(m));
    }
    root.insert("hooks".into(), Value::Array(vec![Value::Object(h)]));
    let mut text = String::new();
    canonical(&Value::Object(root), &mut text);
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Compact JSON with keys sorted at every depth, whatever map order serde_json was built with.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            out.push('{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Whether the user trusts a handler (wire spelling in `HookTrustStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustStatus {
    Managed,
    Untrusted,
    Trusted,
    Modified,
}

/// One `[hooks.state."<key>"]` table.
#[derive(Debug, Clone, Default, PartialEq)]
struct HookState {
    trusted_hash: Option<String>,
    enabled: Option<bool>,
}

/// The user's `hooks.state`, keyed by hook key; read only from the user's config.toml, so a
/// project cannot trust its own hooks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HookStates {
    states: BTreeMap<String, HookState>,
}

impl HookStates {
    /// Reads `hooks.state` from config.toml text; an unreadable table means no trust (and a warning).
    pub fn from_config_toml(text: &str) -> (HookStates, Option<String>) {
        match toml::from_str::<toml::Table>(text) {
            Ok(t) => HookStates::from_table(&t),
            Err(e) => (HookStates::default(), Some(format!("invalid TOML: {e}"))),
        }
    }

    /// Reads `hooks.state` from a parsed config.toml.
    pub fn from_table(table: &toml::Table) -> (HookStates, Option<String>) {
        let Some(state) = table.get("hooks").and_then(|h| h.get("state")) else {
            return (HookStates::default(), None);
        };
        let Some(state) = state.as_table() else {
            return (
                HookStates::default(),
                Some("field `hooks.state` must be a table".into()),
            );
        };
        let mut states = BTreeMap::new();
        for (key, v) in state {
            states.insert(
                key.clone(),
                HookState {
                    trusted_hash: v
                        .get("trusted_hash")
                        .and_then(|h| h.as_str())
                        .map(str::to_string),
                    enabled: v.get("enabled").and_then(|e| e.as_bool()),
                },
            );
        }
        (HookStates { states }, None)
    }

    /// The trust status of the handler at `key` whose content hashes to `hash`.
    pub fn status(&self, key: &str, hash: &str, managed: bool) -> TrustStatus {
        if managed {
            return TrustStatus::Managed;
        }
        match self.states.get(key).and_then(|s| s.trusted_hash.as_deref()) {
            Some(h) if h == hash => TrustStatus::Trusted,
            Some(_) => TrustStatus::Modified,
            None => TrustStatus::Untrusted,
        }
    }

    /// False only when the user set `enabled = false` for `key` (managed hooks are always enabled).
    pub fn enabled(&self, key: &str, managed: bool) -> bool {
        managed || self.states.get(key).and_then(|s| s.enabled) != Some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handler(command: &str, timeout_sec: u64) -> CommandHandler {
        CommandHandler {
            command: command.into(),
            timeout_sec,
            is_async: false,
            status_message: None,
        }
    }

    #[test]
    fn hash_is_sha256_of_sorted_compact_json() {
        // The canonical text HOOKS.md gives for a Stop handler.
        let text = r#"{"event_name":"stop","hooks":[{"async":false,"command":"echo ok","timeout":10,"type":"command"}]}"#;
        let expected: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            current_hash(HookEvent::Stop, None, &handler("echo ok", 10)),
            format!("sha256:{expected}")
        );
    }

    #[test]
    fn hash_covers_matcher_and_status_message_and_keeps_utf8_raw() {
        let mut h = handler("echo é", 600);
        h.status_message = Some("checking".into());
        let text = r#"{"event_name":"pre_tool_use","hooks":[{"async":false,"command":"echo é","statusMessage":"checking","timeout":600,"type":"command"}],"matcher":"Bash"}"#;
        let expected: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            current_hash(HookEvent::PreToolUse, Some("Bash"), &h),
            format!("sha256:{expected}")
        );
    }

    #[test]
    fn trust_status_follows_the_recorded_hash() {
        let (states, warning) = HookStates::from_config_toml(
            "[hooks.state.\"/h/hooks.json:stop:0:0\"]\ntrusted_hash = \"sha256:a\"\n\
             [hooks.state.\"/h/hooks.json:stop:0:1\"]\nenabled = false\n",
        );
        assert_eq!(warning, None);
        assert_eq!(
            states.status("/h/hooks.json:stop:0:0", "sha256:a", false),
            TrustStatus::Trusted
        );
        assert_eq!(
            states.status("/h/hooks.json:stop:0:0", "sha256:b", false),
            TrustStatus::Modified
        );
        assert_eq!(
            states.status("/h/hooks.json:stop:0:1", "sha256:a", false),
            TrustStatus::Untrusted
        );
        assert_eq!(
            states.status("/h/hooks.json:stop:0:1", "sha256:a", true),
            TrustStatus::Managed
        );
        assert!(!states.enabled("/h/hooks.json:stop:0:1", false));
        assert!(states.enabled("/h/hooks.json:stop:0:0", false));
    }
}
