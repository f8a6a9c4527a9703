//! One event as it travels through delivery and on the wire.

use serde::{Deserialize, Serialize};

/// An analytics event ready for delivery: its type, its params and the id the collector dedupes on.
///
/// Fields are declared in wire order (`event_type`, `event_params`, `event_id`) because serde
/// serializes in declaration order and the wire keeps Codex's keys first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// The Codex event name, e.g. `codex_turn_event`.
    pub event_type: String,
    /// The event's fields, already privacy-minimized by the reducer.
    pub event_params: serde_json::Value,
    /// A UUIDv7 that makes redelivery idempotent (Tally extension).
    pub event_id: String,
}

impl EventEnvelope {
    /// Wraps an event with a fresh UUIDv7 id.
    pub fn new(event_type: impl Into<String>, event_params: serde_json::Value) -> Self {
        Self {
            event_type: event_type.into(),
            event_params,
            event_id: uuid::Uuid::now_v7().to_string(),
        }
    }
}

/// The body of one POST: `{"events":[...]}`.
#[derive(Serialize)]
pub(crate) struct WireBatch<'a> {
    pub(crate) events: &'a [EventEnvelope],
}

/// Bytes `{"events":[` and `]}` add around the comma-separated events.
pub(crate) const WIRE_OVERHEAD: usize = r#"{"events":[]}"#.len();

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
