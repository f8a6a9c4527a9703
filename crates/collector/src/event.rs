//! The collector's own view of an event: what the wire carried plus what the collector derived
//! (id, account, client, time), and the quarantined form of an event it could not accept.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::dedup::derive_event_id;

/// Longest client name kept (the contract caps user-chosen identifiers at 64 characters).
pub const MAX_CLIENT_LEN: usize = 64;
/// Longest account kept.
pub const MAX_ACCOUNT_LEN: usize = 128;

/// The id an event is stored under exactly once: the sender's `event_id`, or a derived hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct EventId(pub String);

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

/// One accepted event, ready for a store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncomingEvent {
    /// Dedup id (unique per account).
    pub event_id: EventId,
    /// Whether the id was sent or derived.
    pub id_source: IdSource,
    /// `event_type` as sent, e.g. `codex_turn_event`.
    pub event_type: String,
    /// `event_params` as sent.
    pub params: Map<String, Value>,
    /// `params` as compact JSON, made where the event is decoded (on the request's own thread)
    /// so the single store writer does not serialize it.
    #[serde(skip)]
    pub params_json: String,
    /// The account the event belongs to (from the token, else the `chatgpt-account-id` header, else "").
    pub account: String,
    /// The product client (`product_client_id`), else the `originator` header, else `unknown`.
    pub client: String,
    /// When the collector received it (Unix ms).
    pub received_at_ms: i64,
    /// When it happened according to its own timestamps (Unix ms), else `received_at_ms`.
    pub ts_ms: i64,
}

impl IncomingEvent {
    /// Builds an event from its wire parts, deriving the id when the sender gave none.
    pub fn new(
        event_type: String,
        params: Map<String, Value>,
        event_id: Option<String>,
        account: &str,
        originator: Option<&str>,
        received_at_ms: i64,
    ) -> Self {
        let account = truncate(account, MAX_ACCOUNT_LEN).to_owned();
        let (event_id, id_source) = match event_id {
            Some(id) => (EventId(id), IdSource::Client),
            None => (
                derive_event_id(&event_type, &params, &account),
                IdSource::Derived,
            ),
        };
        let client = client_of(&params, originator);
        let ts_ms = occurred_at_ms(&params, received_at_ms);
        let params_json = params_json(&params);
        IncomingEvent {
            event_id,
            id_source,
            event_type,
            params,
            params_json,
            account,
            client,
            received_at_ms,
            ts_ms,
        }
    }
}

fn params_json(params: &Map<String, Value>) -> String {
    // Serializing a map of JSON values cannot fail (keys are strings).
    serde_json::to_string(params).unwrap_or_else(|_| "{}".to_owned())
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

fn client_of(params: &Map<String, Value>, originator: Option<&str>) -> String {
    let from_params = params
        .get("app_server_client")
        .and_then(|c| c.get("product_client_id"))
        .and_then(Value::as_str)
        .or_else(|| params.get("product_client_id").and_then(Value::as_str))
        .filter(|s| !s.is_empty());
    let name = from_params
        .or(originator.filter(|s| !s.is_empty()))
        .unwrap_or("unknown");
    truncate(name, MAX_CLIENT_LEN).to_owned()
}

/// The event's own time: the first timestamp field present, in Unix ms. Values that are not plausible
/// (before 2001 or more than a day after receipt) fall back to the receive time.
fn occurred_at_ms(params: &Map<String, Value>, received_at_ms: i64) -> i64 {
    const MS_FIELDS: [&str; 4] = [
        "completed_at_ms",
        "occurred_at_ms",
        "resolved_at_ms",
        "started_at_ms",
    ];
    const SECOND_FIELDS: [&str; 3] = ["completed_at", "created_at", "started_at"];
    let int = |k: &str| params.get(k).and_then(Value::as_i64);
    let candidate = MS_FIELDS
        .iter()
        .find_map(|k| int(k))
        .or_else(|| {
            SECOND_FIELDS
                .iter()
                .find_map(|k| int(k))
                .and_then(|s| s.checked_mul(1000))
        })
        .or_else(|| int("window_end_ms"));
    match candidate {
        Some(ts) if ts >= 978_307_200_000 && ts <= received_at_ms.saturating_add(86_400_000) => ts,
        _ => received_at_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
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
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
