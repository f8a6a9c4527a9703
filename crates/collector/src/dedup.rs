//! Stable ids for events that arrive without `event_id` (Codex sends none): SHA-256 of the canonical
//! JSON of `[event_type, event_params, account]`, with object keys sorted at every depth
//! ([`crate::canonical`]).

use sha2::{Digest, Sha256};

use crate::canonical::{write_canonical_text, write_escaped};
use crate::event::EventId;

/// Prefix of derived ids, so they can never be mistaken for a sender's UUID.
pub const DERIVED_PREFIX: &str = "sha256:";

/// The dedup id of an event without `event_id`; `params` is its `event_params` text as sent.
pub fn derive_event_id(event_type: &str, params: &str, account: &str) -> EventId {
    let mut text = Vec::with_capacity(event_type.len() + params.len() + account.len() + 16);
    write_event(event_type, params, account, &mut text);
    EventId(format!("{DERIVED_PREFIX}{}", hex(&Sha256::digest(&text))).into())
}

/// The hashed text: `[event_type, event_params, account]` in canonical JSON.
fn write_event(event_type: &str, params: &str, account: &str, out: &mut Vec<u8>) {
    out.push(b'[');
    write_escaped(event_type, out);
    out.push(b',');
    write_canonical_text(params, out);
    out.push(b',');
    write_escaped(account, out);
    out.push(b']');
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

    #[test]
    fn key_order_does_not_change_the_id() {
        let a = r#"{"b":1,"a":{"y":[1,{"q":2,"p":3}],"x":null}}"#;
        let b = r#"{"a":{"x":null,"y":[1,{"p":3,"q":2}]},"b":1}"#;
        assert_eq!(
            derive_event_id("t", a, "acct"),
            derive_event_id("t", b, "acct")
        );
    }

    #[test]
    fn a_repeated_key_counts_once_with_its_last_value() {
        let repeated = r#"{"n":1,"a":true,"n":2}"#;
        let once = r#"{"a":true,"n":2}"#;
        assert_eq!(
            derive_event_id("t", repeated, "acct"),
            derive_event_id("t", once, "acct")
        );
    }

    #[test]
    fn type_params_and_account_each_change_the_id() {
        let p = r#"{"turn_id": "turn-1"}"#;
        let base = derive_event_id("codex_turn_event", p, "acct-1");
        assert_ne!(base, derive_event_id("codex_hook_run", p, "acct-1"));
        assert_ne!(base, derive_event_id("codex_turn_event", p, "acct-2"));
        let q = r#"{"turn_id": "turn-2"}"#;
        assert_ne!(base, derive_event_id("codex_turn_event", q, "acct-1"));
        assert!(base.as_str().starts_with(DERIVED_PREFIX));
        assert_eq!(base.as_str().len(), DERIVED_PREFIX.len() + 64);
    }

    #[test]
    fn the_id_is_stable_across_releases() {
        // Changing the canonical form would store every Codex event twice after an upgrade.
        let p = r#"{"thread_id": "thr-1", "n": 2, "f": 1.5, "s": "\u00e9\"", "z": [null, false]}"#;
        let canonical = r#"["codex_hook_run",{"f":1.5,"n":2,"s":"é\"","thread_id":"thr-1","z":[null,false]},"acct"]"#;
        let mut written = Vec::new();
        write_event("codex_hook_run", p, "acct", &mut written);
        assert_eq!(String::from_utf8(written).unwrap(), canonical);
        let id = derive_event_id("codex_hook_run", p, "acct");
        let expected = hex(&Sha256::digest(canonical.as_bytes()));
        assert_eq!(id.as_str(), format!("sha256:{expected}"));
        // The id of this event as released (computed by the previous, map-based implementation).
        let released = r#"{"thread_id": "thr-1", "n": 2}"#;
        assert_eq!(
            derive_event_id("codex_hook_run", released, "acct").as_str(),
            format!(
                "sha256:{}",
                hex(&Sha256::digest(
                    br#"["codex_hook_run",{"n":2,"thread_id":"thr-1"},"acct"]"#
                ))
            )
        );
    }
}
