//! Stable ids for events that arrive without `event_id` (Codex sends none): SHA-256 of the canonical
//! JSON of `[event_type, event_params, account]`, with object keys sorted at every depth.

use serde_json_borrow::{ObjectAsVec, Value};
use sha2::{Digest, Sha256};

use crate::event::EventId;

/// Prefix of derived ids, so they can never be mistaken for a sender's UUID.
pub const DERIVED_PREFIX: &str = "sha256:";

/// The dedup id of an event without `event_id`.
pub fn derive_event_id(event_type: &str, params: &ObjectAsVec<'_>, account: &str) -> EventId {
    let mut canonical = String::with_capacity(256);
    canonical.push('[');
    push_json_string(event_type, &mut canonical);
    canonical.push(',');
    write_canonical_object(params, &mut canonical);
    canonical.push(',');
    push_json_string(account, &mut canonical);
    canonical.push(']');
    EventId(
        format!(
            "{DERIVED_PREFIX}{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        )
        .into(),
    )
}

/// Canonical JSON of a value: compact, object keys sorted by bytes (the last of a repeated key
/// wins, as when the object is read into a map), independent of the order the sender used.
pub fn canonical_json(value: &Value<'_>) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value<'_>, out: &mut String) {
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
        Value::Str(s) => push_json_string(s, out),
        // Null, booleans and numbers: serde_json's compact form is already canonical.
        scalar => out.push_str(&serde_json::to_string(scalar).unwrap_or_default()),
    }
}

fn write_canonical_object(map: &ObjectAsVec<'_>, out: &mut String) {
    // Stable sort keeps repeated keys in sending order, so the last of each run is the one kept.
    let mut entries: Vec<(&str, &Value<'_>)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    let mut first = true;
    for (i, (key, value)) in entries.iter().enumerate() {
        if entries.get(i + 1).is_some_and(|next| next.0 == *key) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        push_json_string(key, out);
        out.push(':');
        write_canonical(value, out);
    }
    out.push('}');
}

fn push_json_string(s: &str, out: &mut String) {
    // Serializing a str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
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

    fn obj(text: &str) -> ObjectAsVec<'_> {
        match serde_json::from_str::<Value<'_>>(text).unwrap() {
            Value::Object(m) => m,
            _ => ObjectAsVec::default(),
        }
    }

    #[test]
    fn key_order_does_not_change_the_id() {
        let a = obj(r#"{"b":1,"a":{"y":[1,{"q":2,"p":3}],"x":null}}"#);
        let b = obj(r#"{"a":{"x":null,"y":[1,{"p":3,"q":2}]},"b":1}"#);
        assert_eq!(
            derive_event_id("t", &a, "acct"),
            derive_event_id("t", &b, "acct")
        );
    }

    #[test]
    fn a_repeated_key_counts_once_with_its_last_value() {
        let repeated = obj(r#"{"n":1,"a":true,"n":2}"#);
        let once = obj(r#"{"a":true,"n":2}"#);
        assert_eq!(
            derive_event_id("t", &repeated, "acct"),
            derive_event_id("t", &once, "acct")
        );
    }

    #[test]
    fn type_params_and_account_each_change_the_id() {
        let p = obj(r#"{"turn_id": "turn-1"}"#);
        let base = derive_event_id("codex_turn_event", &p, "acct-1");
        assert_ne!(base, derive_event_id("codex_hook_run", &p, "acct-1"));
        assert_ne!(base, derive_event_id("codex_turn_event", &p, "acct-2"));
        let q = obj(r#"{"turn_id": "turn-2"}"#);
        assert_ne!(base, derive_event_id("codex_turn_event", &q, "acct-1"));
        assert!(base.as_str().starts_with(DERIVED_PREFIX));
        assert_eq!(base.as_str().len(), DERIVED_PREFIX.len() + 64);
    }

    #[test]
    fn the_id_is_stable_across_releases() {
        // Changing the canonical form would store every Codex event twice after an upgrade.
        let p =
            obj(r#"{"thread_id": "thr-1", "n": 2, "f": 1.5, "s": "\u00e9\"", "z": [null, false]}"#);
        let canonical = r#"["codex_hook_run",{"f":1.5,"n":2,"s":"é\"","thread_id":"thr-1","z":[null,false]},"acct"]"#;
        let whole: Value<'_> = serde_json::from_str(
            r#"["codex_hook_run",{"thread_id":"thr-1","n":2,"f":1.5,"s":"\u00e9\"","z":[null,false]},"acct"]"#,
        )
        .unwrap();
        assert_eq!(canonical_json(&whole), canonical);
        let id = derive_event_id("codex_hook_run", &p, "acct");
        let expected = hex(&Sha256::digest(canonical.as_bytes()));
        assert_eq!(id.as_str(), format!("sha256:{expected}"));
        // The id of this event as released (computed by the previous, map-based implementation).
        let released = obj(r#"{"thread_id": "thr-1", "n": 2}"#);
        assert_eq!(
            derive_event_id("codex_hook_run", &released, "acct").as_str(),
            format!(
                "sha256:{}",
                hex(&Sha256::digest(
                    br#"["codex_hook_run",{"n":2,"thread_id":"thr-1"},"acct"]"#
                ))
            )
        );
    }
}
