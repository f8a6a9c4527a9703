//! Typed messages of the Codex app-server JSON-RPC protocol ("JSON-RPC lite"),
//! the method tables for both directions, and JSON Schema export. No I/O.

pub mod client_notification;
pub mod client_request;
pub mod decode_error;
pub mod jsonrpc;
mod method_table;
pub mod schema_export;
pub mod server_notification;
pub mod server_request;
pub mod types;

pub use client_notification::ClientNotification;
pub use client_request::{ClientRequest, ClientResponse, ClientResponsePayload};
pub use decode_error::DecodeError;
pub use jsonrpc::{JsonRpcError, JsonRpcErrorBody, JsonRpcMessage, RequestId};
pub use server_notification::ServerNotification;
pub use server_request::{ServerRequest, ServerResponse, ServerResponseError};

/// The Codex app-server protocol version Tally implements; the TUI reads it from `userAgent`.
pub const CODEX_PROTOCOL_VERSION: &str = "0.169.0";
