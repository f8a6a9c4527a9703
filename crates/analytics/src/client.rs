//! `AnalyticsEventsClient`: the door into the pipeline. Each `track_*` looks at the borrowed
//! message, rejects traffic no reducer uses before anything is cloned or boxed, stamps the
//! rest and hands it to a bounded queue without ever blocking the caller.

use crate::facts::{
    AnalyticsFact, ClientInfoFact, CompactionFact, GoalFact, ServerRequestEnd, TimedFact,
    TurnProfileFact,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tally_protocol::{
    ClientRequest, ClientResponsePayload, JsonRpcErrorBody, RequestId, ServerNotification,
    ServerRequest, ServerResponse,
};
use tokio::sync::mpsc;

/// Counters of what the client accepted, ignored and dropped.
#[derive(Debug, Default)]
pub struct ClientCounters {
    pub accepted: AtomicU64,
    pub ignored: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_closed: AtomicU64,
    pub broadcast_requests_skipped: AtomicU64,
}

impl ClientCounters {
    /// A snapshot of the counters.
    pub fn snapshot(&self) -> ClientStats {
        ClientStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            ignored: self.ignored.load(Ordering::Relaxed),
            dropped_queue_full: self.dropped_queue_full.load(Ordering::Relaxed),
            dropped_closed: self.dropped_closed.load(Ordering::Relaxed),
            broadcast_requests_skipped: self.broadcast_requests_skipped.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of [`ClientCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientStats {
    pub accepted: u64,
    pub ignored: u64,
    pub dropped_queue_full: u64,
    pub dropped_closed: u64,
    pub broadcast_requests_skipped: u64,
}

/// The analytics door; cheap to clone. A disabled client holds no queue and returns at once.
#[derive(Clone, Default)]
pub struct AnalyticsEventsClient {
    queue: Option<mpsc::Sender<TimedFact>>,
    counters: Arc<ClientCounters>,
}

impl std::fmt::Debug for AnalyticsEventsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalyticsEventsClient")
            .field("enabled", &self.is_enabled())
            .finish()
    }
}

impl AnalyticsEventsClient {
    /// A client that tracks nothing.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// A client feeding `queue`.
    pub fn new(queue: mpsc::Sender<TimedFact>) -> Self {
        Self {
            queue: Some(queue),
            counters: Arc::default(),
        }
    }

    /// Whether facts go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// Counters so far.
    pub fn stats(&self) -> ClientStats {
        self.counters.snapshot()
    }

    /// The live counters, for a status reporter that must not hold the queue open.
    pub fn counters(&self) -> Arc<ClientCounters> {
        self.counters.clone()
    }

    fn ignore(&self) {
        self.counters.ignored.fetch_add(1, Ordering::Relaxed);
    }

    fn push(&self, fact: impl FnOnce() -> AnalyticsFact) {
        let Some(queue) = &self.queue else { return };
        let timed = TimedFact {
            at_ms: crate::clock_ms(),
            fact: fact(),
        };
        match queue.try_send(timed) {
            Ok(()) => {
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.counters
                    .dropped_queue_full
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.counters.dropped_closed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A connection finished `initialize`.
    pub fn track_initialize(&self, connection: u64, client: &ClientInfoFact) {
        self.push(|| AnalyticsFact::Initialize {
            connection,
            client: client.clone(),
        });
    }

    /// A connection closed.
    pub fn track_connection_closed(&self, connection: u64) {
        self.push(|| AnalyticsFact::ConnectionClosed { connection });
    }

    /// A client request arrived; only `turn/start`, `turn/steer`, `thread/archive` and a named
    /// `turn/interrupt` are kept (the reducer joins them with their responses).
    pub fn track_client_request(
        &self,
        connection: u64,
        request_id: &RequestId,
        request: &ClientRequest,
    ) {
        if self.queue.is_none() {
            return;
        }
        match request {
            ClientRequest::TurnStart(_)
            | ClientRequest::TurnSteer(_)
            | ClientRequest::ThreadArchive(_) => self.push(|| AnalyticsFact::ClientRequest {
                connection,
                request_id: request_id.clone(),
                request: request.clone(),
            }),
            ClientRequest::TurnInterrupt(p) if !p.turn_id.is_empty() => {
                self.push(|| AnalyticsFact::ExplicitClientInterruptRequest {
                    connection,
                    request_id: request_id.clone(),
                    turn_id: p.turn_id.clone(),
                })
            }
            _ => self.ignore(),
        }
    }

    /// A successful typed response left through the sender.
    pub fn track_client_response(
        &self,
        connection: u64,
        request_id: &RequestId,
        payload: &ClientResponsePayload,
    ) {
        if self.queue.is_none() {
            return;
        }
        match payload {
            ClientResponsePayload::ThreadStart(_)
            | ClientResponsePayload::ThreadResume(_)
            | ClientResponsePayload::ThreadFork(_)
            | ClientResponsePayload::TurnStart(_)
            | ClientResponsePayload::ReviewStart(_)
            | ClientResponsePayload::TurnSteer(_)
            | ClientResponsePayload::TurnInterrupt(_)
            | ClientResponsePayload::ThreadArchive(_)
            | ClientResponsePayload::ThreadUnarchive(_) => {
                self.push(|| AnalyticsFact::ClientResponse {
                    connection,
                    request_id: request_id.clone(),
                    payload: payload.clone(),
                })
            }
            _ => self.ignore(),
        }
    }

    /// An error answer to a client request (joins rejected steers).
    pub fn track_error_response(
        &self,
        connection: u64,
        request_id: &RequestId,
        error: &JsonRpcErrorBody,
    ) {
        self.push(|| AnalyticsFact::ErrorResponse {
            connection,
            request_id: request_id.clone(),
            code: error.code,
            steer_rejection: crate::normalize::steer_rejection_reason(&error.message),
        });
    }

    /// A notification left through the sender; lifecycle and tool-item notifications are kept.
    pub fn track_notification(&self, notification: &ServerNotification) {
        if self.queue.is_none() {
            return;
        }
        if let ServerNotification::TurnDiffUpdated(n) = notification {
            // Only the counts matter; the diff (file content) never enters the queue.
            let (added_lines, deleted_lines) = crate::normalize::diff_line_counts(&n.diff);
            return self.push(|| AnalyticsFact::TurnDiff {
                turn_id: n.turn_id.clone(),
                added_lines,
                deleted_lines,
            });
        }
        let keep = match notification {
            ServerNotification::TurnStarted(_)
            | ServerNotification::TurnCompleted(_)
            | ServerNotification::ThreadTokenUsageUpdated(_)
            | ServerNotification::Error(_)
            | ServerNotification::HookCompleted(_)
            | ServerNotification::ThreadClosed(_)
            | ServerNotification::ItemGuardianApprovalReviewCompleted(_) => true,
            ServerNotification::ItemStarted(n) => crate::tool_items::is_tool(&n.item),
            ServerNotification::ItemCompleted(n) => crate::tool_items::is_tool(&n.item),
            _ => false,
        };
        if keep {
            self.push(|| AnalyticsFact::Notification(notification.clone()));
        } else {
            self.ignore();
        }
    }

    /// A server request sent to exactly one connection (or replayed to a reconnecting one).
    pub fn track_server_request(
        &self,
        connection: u64,
        request_id: &RequestId,
        request: &ServerRequest,
        replayed: bool,
    ) {
        self.push(|| AnalyticsFact::ServerRequest {
            connection,
            request_id: request_id.clone(),
            request: request.clone(),
            replayed,
        });
    }

    /// A broadcast server request: one logical request fanned out to many connections, which the
    /// per-connection model would count as many. Counted, not tracked, until requests are modelled
    /// as one logical request with many deliveries.
    pub fn track_broadcast_server_request(&self) {
        if self.queue.is_some() {
            self.counters
                .broadcast_requests_skipped
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A client's answer, already decoded into the typed response.
    pub fn track_server_response(
        &self,
        connection: u64,
        request_id: &RequestId,
        response: &ServerResponse,
    ) {
        self.push(|| AnalyticsFact::ServerResponse {
            connection,
            request_id: request_id.clone(),
            response: response.clone(),
        });
    }

    /// A server request that ended without a decoded answer.
    pub fn track_server_request_ended(
        &self,
        connection: Option<u64>,
        request_id: &RequestId,
        end: ServerRequestEnd,
    ) {
        self.push(|| AnalyticsFact::ServerRequestEnded {
            connection,
            request_id: request_id.clone(),
            end,
        });
    }

    /// A Guardian review reached its terminal outcome.
    pub fn track_guardian_review(&self, report: &tally_guardian::ReviewReport) {
        self.push(|| AnalyticsFact::GuardianReview(report.clone()));
    }

    /// A compaction turn ended.
    pub fn track_compaction(&self, fact: &CompactionFact) {
        self.push(|| AnalyticsFact::Compaction(fact.clone()));
    }

    /// A thread's goal changed.
    pub fn track_goal(&self, fact: &GoalFact) {
        self.push(|| AnalyticsFact::Goal(fact.clone()));
    }

    /// A person's shell command opened a turn of its own.
    pub fn track_user_shell_turn(&self, thread_id: &str, turn_id: &str) {
        self.push(|| AnalyticsFact::UserShellTurn {
            thread_id: thread_id.to_string(),
            turn_id: turn_id.to_string(),
        });
    }

    /// A user turn ended with this profile.
    pub fn track_turn_profile(&self, thread_id: &str, turn_id: &str, profile: &TurnProfileFact) {
        self.push(|| AnalyticsFact::TurnProfile {
            thread_id: thread_id.to_string(),
            turn_id: turn_id.to_string(),
            profile: *profile,
        });
    }

    /// A turn that changed files ran in the repository with `repo_hash`.
    pub fn track_turn_repository(&self, thread_id: &str, turn_id: &str, repo_hash: Option<&str>) {
        self.push(|| AnalyticsFact::TurnRepository {
            thread_id: thread_id.to_string(),
            turn_id: turn_id.to_string(),
            repo_hash: repo_hash.map(str::to_string),
        });
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
