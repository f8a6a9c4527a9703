//! Stable ids for events that arrive without `event_id` (Codex sends none): SHA-256 of the canonical
//! JSON of `[event_type, event_params, account]`, with object keys sorted at every depth.

use std::io::{self, Write};

use serde_json_borrow::{ObjectAsVec, Value};
use sha2::{Digest, Sha256};

use crate::event::EventId;

/// Prefix of derived ids, so they can never be mistaken for a sender's UUID.
pub const DERIVED_PREFIX: &str = "sha256:";

/// The dedup id of an event without `event_id`.
pub fn derive_event_id(event_type: &str, params: &ObjectAsVec<'_>, account: &str) -> EventId {
    // The canonical text goes straight into the hash, piece by piece, never built as a whole.
    // Buffered: the text comes in many small pieces, and the hasher is fastest fed whole blocks.
    let mut hasher = Sha256::new();
    let mut buffered = io::BufWriter::with_capacity(HASH_BUFFER, &mut hasher);
    let written =
        write_event(event_type, params, account, &mut buffered).and_then(|()| buffered.flush());
    debug_assert!(written.is_ok(), "hashing does not fail");
    drop(buffered);
    EventId(format!("{DERIVED_PREFIX}{}", hex(&hasher.finalize())).into())
}

/// Bytes of canonical text handed to the hasher at a time.
const HASH_BUFFER: usize = 4096;

/// The hashed text: `[event_type, event_params, account]` in canonical JSON.
fn write_event(
    event_type: &str,
    params: &ObjectAsVec<'_>,
    account: &str,
    out: &mut impl Write,
) -> io::Result<()> {
    out.write_all(b"[")?;
    serde_json::to_writer(&mut *out, event_type)?;
    out.write_all(b",")?;
    write_canonical_object(params, out)?;
    out.write_all(b",")?;
    serde_json::to_writer(&mut *out, account)?;
    out.write_all(b"]")
}

/// Canonical JSON of a value: compact, object keys sorted by bytes (the last of a repeated key
/// wins, as when the object is read into a map), independent of the order the sender used.
pub fn canonical_json(value: &Value<'_>) -> String {
    let mut out = Vec::new();
    // Writing to a Vec does not fail, and serde_json writes UTF-8.
    let _ = write_canonical(value, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

fn write_canonical(value: &Value<'_>, out: &mut impl Write) -> io::Result<()> {
    match value {
        Value::Object(map) => write_canonical_object(map, out),
        Value::Array(items) => {
            out.write_all(b"[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                write_canonical(item, out)?;
            }
            out.write_all(b"]")
        }
        // Strings, null, booleans and numbers: serde_json's compact form is already canonical.
        scalar => Ok(serde_json::to_writer(out, scalar)?),
    }
}

fn write_canonical_object(map: &ObjectAsVec<'_>, out: &mut impl Write) -> io::Result<()> {
    // Stable sort keeps repeated keys in sending order, so the last of each run is the one kept.
    let mut entries: Vec<(&str, &Value<'_>)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    out.write_all(b"{")?;
    let mut first = true;
    for (i, (key, value)) in entries.iter().enumerate() {
        if entries.get(i + 1).is_some_and(|next| next.0 == *key) {
            continue;
        }
        if !first {
            out.write_all(b",")?;
        }
        first = false;
        serde_json::to_writer(&mut *out, key)?;
        out.write_all(b":")?;
        write_canonical(value, out)?;
    }
    out.write_all(b"}")
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
