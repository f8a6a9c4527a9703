//! Model clients: the Responses API over SSE, and the built-in offline model.

mod client;
mod offline;
mod offline_structured;
mod request;
mod response_event;
mod response_item;
mod responses_client;
mod sse;

pub use client::{client_for_provider, ModelClient, ModelError, ResponseStream};
pub use offline::OfflineModel;
pub use request::{ModelRequest, RequestKind, RequestMetadata, Subagent};
pub use response_event::ResponseEvent;
pub use response_item::{ContentItem, ResponseItem};
pub use responses_client::backoff as backoff_delay;
pub use responses_client::ResponsesClient;
pub use sse::{SseEvent, SseParser};
