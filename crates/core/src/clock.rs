//! Wall-clock helpers; ids are UUIDv7 so they sort by creation time.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    now_ms() / 1000
}

/// A new UUIDv7 string, as Codex uses for thread, turn and item ids.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
