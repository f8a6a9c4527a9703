//! The one way core talks to the outside world about a thread: typed notifications out, and
//! server-to-client requests whose answers come back. Core never sees connections.

use tally_protocol::{ServerNotification, ServerRequest, ServerResponse};

/// How a server-to-client request ended, as a turn sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestResolution {
    /// A client answered with a result that decodes as the typed response.
    Answered(ServerResponse),
    /// A client answered with an error: a refusal (decline for approvals).
    Refused,
    /// Nobody answered in time, or the request was withdrawn: treat as `cancel`.
    Cancelled,
}

/// Receives every notification a thread emits, in order, and carries its server requests;
/// the app-server fans them out to the thread's subscribers.
#[async_trait::async_trait]
pub trait ThreadEventSink: Send + Sync {
    /// Delivers one notification about `thread_id`; returns when it is queued.
    async fn notify(&self, thread_id: &str, notification: ServerNotification);

    /// Sends a thread-scoped request to the thread's clients and waits for its resolution,
    /// which the sink bounds with its own deadlines. `serverRequest/resolved` has gone out
    /// when this returns.
    async fn request(&self, thread_id: &str, request: ServerRequest) -> RequestResolution;

    /// Withdraws every pending request of a turn that ended or was interrupted, telling
    /// clients with `serverRequest/resolved`; late answers to them are ignored.
    async fn resolve_turn_requests(&self, thread_id: &str, turn_id: &str);

    /// Records a finished Guardian review for analytics; the report carries no content.
    async fn guardian_review(&self, _report: &tally_guardian::ReviewReport) {}
}
