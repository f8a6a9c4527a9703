//! Facts: the typed inputs of the analytics pipeline, one variant per kind of thing that happened.
//! `connection` is a process-local id that joins facts and never goes on the wire.

use tally_protocol::{
    ClientRequest, ClientResponsePayload, RequestId, ServerNotification, ServerRequest,
    ServerResponse,
};

/// How a client is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcTransport {
    Stdio,
    Websocket,
    InProcess,
}

impl RpcTransport {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RpcTransport::Stdio => "stdio",
            RpcTransport::Websocket => "websocket",
            RpcTransport::InProcess => "in_process",
        }
    }
}

/// What a connection said about itself at `initialize`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientInfoFact {
    pub client_name: String,
    pub client_version: Option<String>,
    pub rpc_transport: RpcTransport,
    /// Null when the client sent no `capabilities`.
    pub experimental_api_enabled: Option<bool>,
}

/// Why a server request ended without a usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerRequestEnd {
    /// The client answered with a JSON-RPC error.
    ErrorResponse { code: i64 },
    /// The client's result did not decode as the request's typed response.
    DecodeFailed,
    /// The server withdrew the request (turn ended, interrupt, deadline).
    Aborted,
    /// The connection it was sent to closed.
    ConnectionClosed,
}

/// One fact, stamped with when it happened (Unix ms).
#[derive(Debug, Clone, PartialEq)]
pub struct TimedFact {
    pub at_ms: i64,
    pub fact: AnalyticsFact,
}

/// Everything the reducer learns from.
#[derive(Debug, Clone, PartialEq)]
// Facts move once through a bounded queue; boxing the large payloads would add an allocation per fact.
#[allow(clippy::large_enum_variant)]
pub enum AnalyticsFact {
    Initialize {
        connection: u64,
        client: ClientInfoFact,
    },
    ConnectionClosed {
        connection: u64,
    },
    /// A client request the reducer joins with its response (`turn/start`, `turn/steer`).
    ClientRequest {
        connection: u64,
        request_id: RequestId,
        request: ClientRequest,
    },
    /// A `turn/interrupt` naming a turn.
    ExplicitClientInterruptRequest {
        connection: u64,
        request_id: RequestId,
        turn_id: String,
    },
    /// A successful typed response, from `OutgoingMessageSender::send_response`.
    ClientResponse {
        connection: u64,
        request_id: RequestId,
        payload: ClientResponsePayload,
    },
    /// An error answer to a client request, as its class: the message itself (which may quote
    /// the client's input) never enters the pipeline.
    ErrorResponse {
        connection: u64,
        request_id: RequestId,
        code: i64,
        /// What a steer refused this way is reported as (`steer_rejection_reason`).
        steer_rejection: &'static str,
    },
    /// A lifecycle notification (turn, item, usage, diff, error).
    Notification(ServerNotification),
    /// A targeted server request sent (or replayed) to one connection.
    ServerRequest {
        connection: u64,
        request_id: RequestId,
        request: ServerRequest,
        replayed: bool,
    },
    /// A client's answer, decoded into the typed response of the stored request.
    ServerResponse {
        connection: u64,
        request_id: RequestId,
        response: ServerResponse,
    },
    /// A server request that ended without a decoded answer.
    ServerRequestEnded {
        connection: Option<u64>,
        request_id: RequestId,
        end: ServerRequestEnd,
    },
    /// A Guardian review finished (core fact); the report holds no content.
    GuardianReview(tally_guardian::ReviewReport),
    /// A manual compaction turn ended (core fact).
    Compaction(CompactionFact),
    /// A thread's goal changed (core fact); never the objective.
    Goal(GoalFact),
    /// A turn that changed files ran in this repository (core fact; the hash is computed there).
    TurnRepository {
        thread_id: String,
        turn_id: String,
        repo_hash: Option<String>,
    },
    /// A person's shell command opened a turn of its own (core fact, before its `turn/started`):
    /// its command is reported as a tool item, the turn itself as no user turn.
    UserShellTurn {
        thread_id: String,
        turn_id: String,
    },
    /// Where a user turn's time went, sent by core as the turn ends (core fact).
    TurnProfile {
        thread_id: String,
        turn_id: String,
        profile: TurnProfileFact,
    },
    /// A `turn/diff/updated`, reduced at the door to its hunk line counts (the diff stays out).
    TurnDiff {
        turn_id: String,
        added_lines: i64,
        deleted_lines: i64,
    },
}

/// A compaction turn's end, as core reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionFact {
    pub thread_id: String,
    pub turn_id: String,
    /// `Completed`, `Failed` or `Interrupted`.
    pub status: tally_protocol::types::TurnStatus,
    /// The failure's class, never its message.
    pub error: Option<tally_protocol::types::CodexErrorInfo>,
    pub active_context_tokens_before: i64,
    pub active_context_tokens_after: i64,
    pub started_at_ms: i64,
    pub completed_at_ms: i64,
}

/// A user turn's profile: its duration split into buckets that add up to it, and its sampling
/// counts (bucket meanings: `tally_core::turn_profile`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TurnProfileFact {
    pub before_first_sampling_ms: i64,
    pub sampling_ms: i64,
    pub compaction_ms: i64,
    pub between_sampling_overhead_ms: i64,
    pub tool_blocking_ms: i64,
    pub after_last_sampling_ms: i64,
    pub sampling_request_count: i64,
    pub sampling_retry_count: i64,
    pub tools_change_count: i64,
}

/// How a goal changed (`event_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoalEventKind {
    Created,
    StatusChanged,
    Cleared,
}

/// A goal change, as core reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalFact {
    pub thread_id: String,
    pub turn_id: Option<String>,
    pub goal_id: String,
    pub kind: GoalEventKind,
    pub status: tally_protocol::types::ThreadGoalStatus,
    pub has_token_budget: bool,
}
