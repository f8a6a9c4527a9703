//! Transports: stdio (NDJSON) and WebSocket (one JSON message per text frame).

mod bounded_lines;
pub mod stdio;
pub mod websocket;

pub use bounded_lines::{BoundedLines, Line};

/// The largest message Tally reads from a client; larger ones are refused, not buffered.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
