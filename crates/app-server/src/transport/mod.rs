//! Transports: stdio (NDJSON), WebSocket (one JSON message per text frame) over TCP or a Unix
//! socket, and the bearer-token auth of WebSocket upgrades.

mod bounded_lines;
pub mod stdio;
pub mod unix;
pub mod websocket;
pub mod ws_auth;

pub use bounded_lines::{BoundedLines, Line};

/// The largest message Tally reads from a client; larger ones are refused, not buffered.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
