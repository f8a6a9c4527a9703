//! Test helpers for Tally's integration tests: validation of server output against the official Codex
//! app-server JSON Schema ([`schema`]) and a scriptable mock of the OpenAI Responses API ([`mock_responses`]).

#![warn(missing_docs)]

pub mod analytics_contract;
pub mod app_client;
pub mod fake_collector;
pub mod mock_responses;
pub mod net;
pub mod process;
pub mod schema;
mod strict;

pub use analytics_contract::AnalyticsContract;
pub use app_client::{methods, AppClient};
pub use fake_collector::{event_types, FakeCollector};
pub use mock_responses::{sse, MockReply, MockResponsesServer, MockSseEvent, RecordedRequest};
pub use schema::{ProtocolSchemas, SchemaError, SchemaMode, TranscriptChecker};
