//! Stable ids for events that arrive without `event_id` (Codex sends none): SHA-256 of the canonical
//! JSON of `[event_type, event_params, account]`, with object keys sorted at every depth.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::event::EventId;

/// Prefix of derived ids, so they can never be mistaken for a sender's UUID.
pub const DERIVED_PREFIX: &str = "sha256:";

/// The dedup id of an event without `event_id`.
pub fn derive_event_id(event_type: &str, params: &Map<String, Value>, account: &str) -> EventId {
    let mut canonical = String::with_capacity(256);
    canonical.push('[');
    write_canonical(&Value::String(event_type.to_owned()), &mut canonical);
    canonical.push(',');
    write_canonical_object(params, &mut canonical);
    canonical.push(',');
    write_canonical(&Value::String(account.to_owned()), &mut canonical);
    canonical.push(']');
    EventId(format!(
        "{DERIVED_PREFIX}{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    ))
}

/// Canonical JSON of a value: compact, object keys sorted by bytes, independent of the order the
/// sender used and of serde_json's `preserve_order` feature.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => write_canonical_object(map, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        // Scalars: serde_json's compact form is already canonical.
        other => out.push_str(&other.to_string()),
    }
}

fn write_canonical_object(map: &Map<String, Value>, out: &mut String) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    out.push('{');
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(key.clone()).to_string());
        out.push(':');
        if let Some(v) = map.get(key) {
            write_canonical(v, out);
        }
    }
    out.push('}');
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn key_order_does_not_change_the_id() {
        let a: Map<String, Value> =
            serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"q":2,"p":3}],"x":null}}"#).unwrap();
        let b: Map<String, Value> =
            serde_json::from_str(r#"{"a":{"x":null,"y":[1,{"p":3,"q":2}]},"b":1}"#).unwrap();
        assert_eq!(
            derive_event_id("t", &a, "acct"),
            derive_event_id("t", &b, "acct")
        );
    }

    #[test]
    fn type_params_and_account_each_change_the_id() {
        let p = obj(json!({"turn_id": "turn-1"}));
        let base = derive_event_id("codex_turn_event", &p, "acct-1");
        assert_ne!(base, derive_event_id("codex_hook_run", &p, "acct-1"));
        assert_ne!(base, derive_event_id("codex_turn_event", &p, "acct-2"));
        let q = obj(json!({"turn_id": "turn-2"}));
        assert_ne!(base, derive_event_id("codex_turn_event", &q, "acct-1"));
        assert!(base.as_str().starts_with(DERIVED_PREFIX));
        assert_eq!(base.as_str().len(), DERIVED_PREFIX.len() + 64);
    }

    #[test]
    fn the_id_is_stable_across_releases() {
        // Changing the canonical form would store every Codex event twice after an upgrade.
        let p = obj(json!({"thread_id": "thr-1", "n": 2}));
        assert_eq!(
            canonical_json(&json!(["codex_hook_run", p, "acct"])),
            r#"["codex_hook_run",{"n":2,"thread_id":"thr-1"},"acct"]"#
        );
        let id = derive_event_id("codex_hook_run", &p, "acct");
        let expected = hex(&Sha256::digest(
            br#"["codex_hook_run",{"n":2,"thread_id":"thr-1"},"acct"]"#,
        ));
        assert_eq!(id.as_str(), format!("sha256:{expected}"));
    }
}
