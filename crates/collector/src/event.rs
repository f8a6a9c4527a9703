//! The collector's own view of an event: what the wire carried plus what the collector derived
//! (id, account, client, time), and the quarantined form of an event it could not accept.

use bytestring::ByteString;
use serde::Serialize;

use crate::dedup::derive_event_id;
use crate::family::{family_index, TypedValue, FAMILIES, THREAD_INITIALIZED};
use crate::params_scan::{parse_params, ParamsRules, ParsedParams, TIME_FIELDS};

/// Longest client name kept (the contract caps user-chosen identifiers at 64 characters).
pub const MAX_CLIENT_LEN: usize = 64;
/// Longest account kept.
pub const MAX_ACCOUNT_LEN: usize = 128;

/// The id an event is stored under exactly once: the sender's `event_id`, or a derived hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct EventId(pub ByteString);

impl EventId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an event's id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdSource {
    /// The sender put an `event_id` beside the event (Tally does).
    Client,
    /// The collector hashed the canonical event (Codex sends no id).
    Derived,
}

impl IdSource {
    /// The value stored in the `id_source` column.
    pub fn as_str(self) -> &'static str {
        match self {
            IdSource::Client => "client",
            IdSource::Derived => "derived",
        }
    }
}

/// One accepted event, ready for a store: everything a store binds is already extracted, so the
/// single store writer does no JSON work. Its text fields are slices of the request body where
/// they can be (one buffer per batch, shared), so a batch is not copied and freed field by field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncomingEvent {
    /// Dedup id (unique per account).
    pub event_id: EventId,
    /// Whether the id was sent or derived.
    pub id_source: IdSource,
    /// `event_type` as sent, e.g. `codex_turn_event`.
    pub event_type: ByteString,
    /// `event_params` as JSON text, as the sender wrote it (the raw column).
    pub params_json: ByteString,
    /// The event type's family: its index in [`crate::family::FAMILIES`] (`None`: no typed
    /// table). Found once while decoding; the stores file the event by it.
    #[serde(skip)]
    pub(crate) family: Option<usize>,
    /// The typed columns of that family, in its column order (empty without a family; a column
    /// missing at the end reads as NULL); read them with [`IncomingEvent::typed_value`].
    #[serde(skip)]
    pub typed: Vec<TypedValue>,
    /// The account the event belongs to (from the token, else the `chatgpt-account-id` header, else "").
    pub account: ByteString,
    /// The product client (`product_client_id`), else the `originator` header, else `unknown`.
    pub client: ByteString,
    /// When the collector received it (Unix ms).
    pub received_at_ms: i64,
    /// When it happened according to its own timestamps (Unix ms), else `received_at_ms`.
    pub ts_ms: i64,
    /// Where a store files the id for dedup: for a derived id the event's own time as sent (0
    /// without one; never the receive time, so a retry lands on the same place), 0 for a sent id.
    #[serde(skip)]
    pub claim_at_ms: i64,
}

/// Who sent a batch and when it arrived: what the collector adds to each wire event.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// The sender's account (capped at [`MAX_ACCOUNT_LEN`]).
    pub account: ByteString,
    /// The client of events that do not name one: the `originator` header, else `unknown`.
    pub fallback_client: ByteString,
    /// When the collector received it (Unix ms).
    pub received_at_ms: i64,
}

impl Receipt {
    /// The receipt of a batch from `account`, sent with the `originator` header (if any).
    pub fn new(account: &str, originator: Option<&str>, received_at_ms: i64) -> Self {
        Receipt {
            account: truncate(account, MAX_ACCOUNT_LEN).into(),
            fallback_client: client_name(originator).into(),
            received_at_ms,
        }
    }
}

impl IncomingEvent {
    /// The event type's family (`None`: no typed table).
    pub fn family(&self) -> Option<&'static crate::family::Family> {
        self.family.and_then(|i| crate::family::FAMILIES.get(i))
    }

    /// Typed column `i` of the event's family (NULL when the event has no such column).
    pub fn typed_value(&self, i: usize) -> TypedValue<&str> {
        match self.typed.get(i) {
            Some(TypedValue::Text(text)) => TypedValue::Text(text.resolve(&self.params_json)),
            Some(TypedValue::Int(i)) => TypedValue::Int(*i),
            Some(TypedValue::Null) | None => TypedValue::Null,
        }
    }

    /// Builds an event from its parsed params, deriving the id when the sender gave none. `body`
    /// is the text the event was read from: borrowed text inside it is shared, not copied (text
    /// from anywhere else is copied, so any `body` is correct).
    pub fn from_parts(
        event_type: &str,
        event_id: Option<&str>,
        params: ParsedParams<'_>,
        receipt: &Receipt,
        body: &ByteString,
    ) -> Self {
        debug_assert_eq!(
            params.family,
            family_index(event_type),
            "params of another type"
        );
        let resume = is_resume(event_type, &params);
        let ts_ms = occurred_at_ms(&params.times, resume, event_id, receipt.received_at_ms);
        let (event_id, id_source, claim_at_ms) = match event_id {
            Some(id) => (EventId(share(body, id)), IdSource::Client, 0),
            None => {
                let id = derive_event_id(event_type, params.json, &receipt.account);
                (
                    id,
                    IdSource::Derived,
                    own_time_ms(&params.times).unwrap_or(0),
                )
            }
        };
        let client = match params.client.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => share(body, truncate(c, MAX_CLIENT_LEN)),
            None => receipt.fallback_client.clone(),
        };
        IncomingEvent {
            event_id,
            id_source,
            event_type: share(body, event_type),
            params_json: share(body, params.json),
            client,
            ts_ms,
            family: params.family,
            typed: params.typed,
            account: receipt.account.clone(),
            received_at_ms: receipt.received_at_ms,
            claim_at_ms,
        }
    }

    /// Builds an event from a JSON object of params (what an in-process sender has). Typed
    /// fields of the wrong JSON type are stored as NULL; nothing is refused.
    pub fn new(
        event_type: String,
        params: serde_json::Map<String, serde_json::Value>,
        event_id: Option<String>,
        account: &str,
        originator: Option<&str>,
        received_at_ms: i64,
    ) -> Self {
        // Serializing a map of JSON values cannot fail, and its text always parses back.
        let text = serde_json::to_string(&params).unwrap_or_else(|_| "{}".to_owned());
        let body = ByteString::from(text);
        let rules = ParamsRules {
            max_string_bytes: usize::MAX,
            strict_types: false,
        };
        let parsed = parse_params(&body, &event_type, rules).unwrap_or(ParsedParams {
            json: &body,
            family: family_index(&event_type),
            typed: Vec::new(),
            client: None,
            times: Default::default(),
        });
        let receipt = Receipt::new(account, originator, received_at_ms);
        Self::from_parts(&event_type, event_id.as_deref(), parsed, &receipt, &body)
    }
}

/// `text` as a slice of `body` when it lies inside it (no copy), else a copy.
fn share(body: &ByteString, text: &str) -> ByteString {
    match offset_in(body, text) {
        Some(_) => body.slice_ref(text),
        None => ByteString::from(text),
    }
}

/// Where `inner` starts in `outer`, when it is a slice of it (compared by address, so text equal
/// to a part of `outer` but stored elsewhere is not).
pub(crate) fn offset_in(outer: &str, inner: &str) -> Option<usize> {
    let start = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
    (start.checked_add(inner.len())? <= outer.len()).then_some(start)
}

/// An event the collector could not accept, kept with the reason (never silently dropped).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectedEvent {
    /// Position of the event in its batch.
    pub index: usize,
    /// `event_type` when it could be read.
    pub event_type: Option<String>,
    /// The offending field, e.g. `events[3].event_params.duration_ms`.
    pub field: String,
    /// What was wrong with it.
    pub reason: String,
    /// The event as sent (re-serialized, capped at [`RejectedEvent::MAX_RAW_BYTES`]).
    pub raw: String,
    /// Account of the sender.
    pub account: String,
    /// When the collector received it (Unix ms).
    pub received_at_ms: i64,
}

impl RejectedEvent {
    /// Longest raw text kept for a quarantined event.
    pub const MAX_RAW_BYTES: usize = 16 * 1024;
}

/// The longest prefix of `s` that fits in `max` bytes on a char boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The client name kept for a name given (or not): capped, `unknown` when absent or empty.
fn client_name(given: Option<&str>) -> &str {
    let name = given.filter(|s| !s.is_empty()).unwrap_or("unknown");
    truncate(name, MAX_CLIENT_LEN)
}

/// The event's own time as sent: the first of [`TIME_FIELDS`] with an integer value (the `*_ms`
/// ones in ms, the others in seconds), in Unix ms. It depends on the params alone.
fn own_time_ms(times: &[Option<i64>; TIME_FIELDS.len()]) -> Option<i64> {
    TIME_FIELDS.iter().zip(times).find_map(|(name, value)| {
        let value = (*value)?;
        if name.ends_with("_ms") {
            Some(value)
        } else {
            value.checked_mul(1000)
        }
    })
}

/// When the event happened: its own time when plausible (after 2001 and at most a day after
/// receipt); else the time in a UUIDv7 `event_id` (Tally's ids; its hook runs carry no time of
/// their own, and a spooled batch may arrive hours later); else the receive time. A resumed
/// thread's `created_at` is when the thread was born, not when it was resumed: not its time.
fn occurred_at_ms(
    times: &[Option<i64>; TIME_FIELDS.len()],
    resume: bool,
    event_id: Option<&str>,
    received_at_ms: i64,
) -> i64 {
    let plausible =
        |ts: &i64| *ts >= 978_307_200_000 && *ts <= received_at_ms.saturating_add(86_400_000);
    let own = if resume {
        let mut times = *times;
        if let Some(i) = TIME_FIELDS.iter().position(|f| *f == "created_at") {
            times[i] = None;
        }
        own_time_ms(&times)
    } else {
        own_time_ms(times)
    };
    own.filter(plausible)
        .or_else(|| event_id.and_then(uuid_v7_ms).filter(plausible))
        .unwrap_or(received_at_ms)
}

/// Whether the event is a thread's `initialization_mode: "resumed"`.
fn is_resume(event_type: &str, params: &ParsedParams<'_>) -> bool {
    if event_type != THREAD_INITIALIZED {
        return false;
    }
    let Some(family) = params.family.and_then(|f| FAMILIES.get(f)) else {
        return false;
    };
    family
        .columns
        .iter()
        .position(|c| c.name == "initialization_mode")
        .and_then(|i| params.typed.get(i))
        .is_some_and(|v| matches!(v, TypedValue::Text(t) if t.resolve(params.json) == "resumed"))
}

/// The Unix ms a UUIDv7 carries in its first 48 bits; None for any other id.
fn uuid_v7_ms(id: &str) -> Option<i64> {
    let uuid = uuid::Uuid::try_parse(id).ok()?;
    if uuid.get_version_num() != 7 {
        return None;
    }
    let b = uuid.as_bytes();
    Some(i64::from_be_bytes([
        0, 0, b[0], b[1], b[2], b[3], b[4], b[5],
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    fn params(v: serde_json::Value) -> Map<String, serde_json::Value> {
        match v {
            serde_json::Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn client_comes_from_app_server_client_then_flat_field_then_originator() {
        let now = 1_800_000_000_000;
        let nested = params(json!({"app_server_client": {"product_client_id": "vscode"}}));
        let flat = params(json!({"product_client_id": "my-ide"}));
        let e = IncomingEvent::new("t".into(), nested, None, "", Some("orig"), now);
        assert_eq!(e.client, "vscode");
        let e = IncomingEvent::new("t".into(), flat, None, "", Some("orig"), now);
        assert_eq!(e.client, "my-ide");
        let e = IncomingEvent::new("t".into(), Map::new(), None, "", Some("orig"), now);
        assert_eq!(e.client, "orig");
        let e = IncomingEvent::new("t".into(), Map::new(), None, "", None, now);
        assert_eq!(e.client, "unknown");
    }

    #[test]
    fn event_time_prefers_completion_and_rejects_implausible_values() {
        let now = 1_800_000_000_000;
        let e = IncomingEvent::new(
            "t".into(),
            params(json!({"started_at": 1_760_000_000, "completed_at": 1_760_000_001})),
            None,
            "",
            None,
            now,
        );
        assert_eq!(e.ts_ms, 1_760_000_001_000);
        let future = params(json!({"completed_at_ms": now + 10 * 86_400_000}));
        let e = IncomingEvent::new("t".into(), future, None, "", None, now);
        assert_eq!(e.ts_ms, now);
        let tiny = params(json!({"created_at": 5}));
        let e = IncomingEvent::new("t".into(), tiny, None, "", None, now);
        assert_eq!(e.ts_ms, now);
    }

    #[test]
    fn a_resumed_thread_counts_when_it_was_resumed_not_when_it_was_born() {
        let now = 1_800_000_000_000;
        let init = |mode: &str| {
            let p = params(json!({"initialization_mode": mode, "created_at": 1_700_000_000}));
            IncomingEvent::new(THREAD_INITIALIZED.into(), p, None, "", None, now)
        };
        assert_eq!(init("resumed").ts_ms, now);
        // A new or forked thread was made then.
        assert_eq!(init("new").ts_ms, 1_700_000_000_000);
        assert_eq!(init("forked").ts_ms, 1_700_000_000_000);
    }

    #[test]
    fn an_event_without_a_time_of_its_own_is_dated_by_its_uuid_v7() {
        let now = 1_800_000_000_000;
        let made = now - 3 * 3_600_000; // spooled for three hours
        let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            u64::try_from(made / 1000).expect("positive"),
            0,
        ))
        .to_string();
        let hook = || params(json!({"hook_name": "Stop", "status": "completed"}));
        let e = IncomingEvent::new("codex_hook_run".into(), hook(), Some(id), "", None, now);
        assert_eq!(e.ts_ms, made);
        // Not a v7 id, or none: the receive time.
        let v4 = "2f1c0d4e-8a3b-4c5d-9e6f-7a8b9c0d1e2f".to_string();
        let e = IncomingEvent::new("codex_hook_run".into(), hook(), Some(v4), "", None, now);
        assert_eq!(e.ts_ms, now);
        let e = IncomingEvent::new("codex_hook_run".into(), hook(), None, "", None, now);
        assert_eq!(e.ts_ms, now);
    }

    #[test]
    fn offset_in_finds_slices_by_address_not_by_content() {
        let outer = String::from("{\"a\":\"xyz\"}");
        assert_eq!(offset_in(&outer, &outer[6..9]), Some(6));
        assert_eq!(offset_in(&outer, &outer[outer.len()..]), Some(outer.len()));
        let copy = String::from("xyz");
        assert_eq!(offset_in(&outer, &copy), None);
        assert_eq!(
            offset_in(&outer[1..], &outer[..3]),
            None,
            "starts before outer"
        );
        assert_eq!(
            offset_in(&outer[..5], &outer[3..9]),
            None,
            "ends after outer"
        );
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
