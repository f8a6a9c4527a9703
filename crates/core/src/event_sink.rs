//! The one way core talks to the outside world about a thread: typed notifications out, and
//! server-to-client requests whose answers come back. Core never sees connections.

use tally_protocol::types::{CodexErrorInfo, ThreadGoalStatus, TurnStatus};
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

    /// Records something only core knows (a compaction ended, a goal changed, the repository of
    /// a turn that changed files, a turn's profile) for analytics; reports carry ids, enums and counts only.
    async fn lifecycle(&self, _report: LifecycleReport) {}
}

/// A content-free fact about a thread that core reports for analytics.
#[derive(Debug, Clone, PartialEq)]
pub enum LifecycleReport {
    Compaction(CompactionReport),
    Goal(GoalReport),
    /// A turn that changed files ran in the repository with this `repo_hash` (None outside git).
    TurnRepository {
        thread_id: String,
        turn_id: String,
        repo_hash: Option<String>,
    },
    /// A person's shell command opened a turn of its own (`thread/shellCommand` on an idle
    /// thread), sent before its `turn/started`: no `turn/start` made it and it is not a user turn,
    /// but its command is a tool item of that turn.
    UserShellTurn {
        thread_id: String,
        turn_id: String,
    },
    /// Where a user turn's time went, sent as it ends (before its `turn/completed`).
    TurnProfile {
        thread_id: String,
        turn_id: String,
        profile: crate::turn_profile::TurnProfileSummary,
    },
}

/// A manual compaction turn ended.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionReport {
    pub thread_id: String,
    pub turn_id: String,
    /// `Completed`, `Failed` or `Interrupted`.
    pub status: TurnStatus,
    /// The failure's class, never its message.
    pub error: Option<CodexErrorInfo>,
    /// Total tokens of the last model response before the compaction.
    pub active_context_tokens_before: i64,
    /// Total tokens of the last model response after it (the compaction's own response).
    pub active_context_tokens_after: i64,
    pub started_at_ms: i64,
    pub completed_at_ms: i64,
}

/// How a thread's goal changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoalChange {
    Created,
    StatusChanged,
    Cleared,
}

/// A thread's goal changed; never the objective.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalReport {
    pub thread_id: String,
    /// Null for changes a client made.
    pub turn_id: Option<String>,
    pub goal_id: String,
    pub change: GoalChange,
    /// The goal's status after the change (before it, for a clear).
    pub status: ThreadGoalStatus,
    pub has_token_budget: bool,
}
