//! Thread-scoped server requests on the outgoing seam: broadcast to every subscriber of the
//! thread (first answer wins, everyone hears `serverRequest/resolved`), replay of pending requests
//! to a connection that resumes the thread, deadlines for requests nobody answers or nobody can
//! answer any more, and withdrawal when the turn that asked ends.

use super::{OutgoingMessageSender, ServerRequestOutcome};
use crate::connection::ConnectionId;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tally_analytics::ServerRequestEnd;
use tally_protocol::server_notification::ServerRequestResolvedNotification;
use tally_protocol::{RequestId, ServerNotification, ServerRequest};
use tokio::sync::oneshot;

/// How long a server request may stay unsettled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestDeadlines {
    /// From sending, while clients that may answer are connected (a person may be away).
    pub unanswered: Duration,
    /// From the moment the last connection that may answer closed, unless one resumes the
    /// thread (PROTOCOL 5.3: matches the idle unload).
    pub orphaned: Duration,
}

impl Default for RequestDeadlines {
    fn default() -> Self {
        Self {
            unanswered: Duration::from_secs(24 * 60 * 60),
            orphaned: Duration::from_secs(30 * 60),
        }
    }
}

/// What happened to server requests that did not settle normally.
#[derive(Debug, Default)]
pub struct RequestStats {
    /// Answers to unknown or settled ids, or from a connection the request was not sent to.
    pub ignored_answers: AtomicU64,
    /// Answers whose result did not decode as the request's response (request kept pending).
    pub malformed_answers: AtomicU64,
    /// Requests cancelled at a deadline.
    pub lapsed: AtomicU64,
    /// Requests withdrawn because their turn ended or was interrupted.
    pub withdrawn: AtomicU64,
}

impl RequestStats {
    pub(super) fn count_ignored(&self) {
        self.ignored_answers.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn count_malformed(&self) {
        self.malformed_answers.fetch_add(1, Ordering::Relaxed);
    }
}

impl OutgoingMessageSender {
    /// Sets the deadlines of server requests.
    pub fn with_request_deadlines(mut self, deadlines: RequestDeadlines) -> Self {
        self.deadlines = deadlines;
        self
    }

    /// Counters of answers ignored and requests that lapsed or were withdrawn.
    pub fn request_stats(&self) -> &RequestStats {
        &self.request_stats
    }

    /// Sends `request` to every connection subscribed to `thread_id` and waits until it settles:
    /// a valid answer, an error answer, a deadline, or withdrawal. Every subscriber is told with
    /// `serverRequest/resolved` before this returns.
    pub async fn request_on_thread(
        &self,
        thread_id: &str,
        request: ServerRequest,
    ) -> ServerRequestOutcome {
        let targets = self.registry.request_targets(thread_id);
        let (id, rx) = self.send_request_to(targets, request).await;
        let (outcome, withdrawn) = self.settle(&id, rx).await;
        // A withdrawn request was announced by whoever withdrew it.
        if !withdrawn {
            self.send_resolved(thread_id, id).await;
        }
        outcome
    }

    /// Waits for a request's outcome within its deadlines; returns it and whether it was
    /// withdrawn by someone else.
    async fn settle(
        &self,
        id: &RequestId,
        mut rx: oneshot::Receiver<ServerRequestOutcome>,
    ) -> (ServerRequestOutcome, bool) {
        let orphaned = self.lock_pending().get(id).map(|p| p.orphaned.subscribe());
        let Some(mut orphaned) = orphaned else {
            // Settled before we looked (e.g. it could not be serialized).
            let outcome = rx.await.unwrap_or(ServerRequestOutcome::Cancelled);
            let withdrawn = outcome == ServerRequestOutcome::Cancelled;
            return (outcome, withdrawn);
        };
        let unanswered = tokio::time::sleep(self.deadlines.unanswered);
        tokio::pin!(unanswered);
        // Which deadline ended the wait decides how analytics records the lapse.
        let end;
        loop {
            let is_orphan = *orphaned.borrow_and_update();
            let orphan_deadline = self.deadlines.orphaned;
            let orphan_timer = async move {
                if is_orphan {
                    tokio::time::sleep(orphan_deadline).await
                } else {
                    std::future::pending().await
                }
            };
            tokio::select! {
                outcome = &mut rx => {
                    let outcome = outcome.unwrap_or(ServerRequestOutcome::Cancelled);
                    let withdrawn = outcome == ServerRequestOutcome::Cancelled;
                    return (outcome, withdrawn);
                }
                _ = &mut unanswered => {
                    end = ServerRequestEnd::Aborted;
                    break;
                }
                _ = orphan_timer => {
                    end = ServerRequestEnd::ConnectionClosed;
                    break;
                }
                changed = orphaned.changed() => {
                    if changed.is_err() {
                        // The entry is gone: its outcome is on the way.
                        let outcome = rx.await.unwrap_or(ServerRequestOutcome::Cancelled);
                        let withdrawn = outcome == ServerRequestOutcome::Cancelled;
                        return (outcome, withdrawn);
                    }
                }
            }
        }
        if self.cancel_request_as(id, end) {
            self.request_stats.lapsed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(request = %id, "server request lapsed at its deadline; cancelled");
            return (ServerRequestOutcome::Cancelled, false);
        }
        // Answered in the same instant the deadline fired.
        let outcome = rx.try_recv().unwrap_or(ServerRequestOutcome::Cancelled);
        (outcome, false)
    }

    /// Withdraws every pending request of a turn and tells the thread's subscribers.
    pub async fn withdraw_turn_requests(&self, thread_id: &str, turn_id: &str) {
        let ids: Vec<RequestId> = self
            .lock_pending()
            .iter()
            .filter(|(_, p)| {
                p.request.thread_id() == Some(thread_id) && p.request.turn_id() == Some(turn_id)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if self.cancel_request(&id) {
                self.request_stats.withdrawn.fetch_add(1, Ordering::Relaxed);
                self.send_resolved(thread_id, id).await;
            }
        }
    }

    /// Whether a server request on `thread_id` still waits for an answer.
    pub fn has_pending_for_thread(&self, thread_id: &str) -> bool {
        self.lock_pending()
            .values()
            .any(|p| p.request.thread_id() == Some(thread_id))
    }

    /// Re-sends the thread's still-pending requests to `connection`, oldest first, with their
    /// original ids; the connection may answer them from now on.
    pub async fn replay_pending(&self, thread_id: &str, connection: ConnectionId) {
        let mut frames: Vec<(i64, std::sync::Arc<str>)> = {
            let mut pending = self.lock_pending();
            pending
                .iter_mut()
                .filter(|(_, p)| p.request.thread_id() == Some(thread_id))
                .map(|(id, p)| {
                    if !p.targets.contains(&connection) {
                        p.targets.push(connection);
                    }
                    p.orphaned.send_replace(false);
                    // Each replay is a new delivery of the same request (same id).
                    if p.tracked {
                        self.analytics
                            .track_server_request(connection.0, id, &p.request, true);
                    }
                    let order = match id {
                        RequestId::Integer(i) => *i,
                        RequestId::String(_) => i64::MAX,
                    };
                    let frame = self.frame_for(connection, &p.frame, p.stable_frame.as_ref());
                    (order, frame)
                })
                .collect()
        };
        frames.sort_by_key(|(order, _)| *order);
        for (_, frame) in frames {
            if let Err(e) = self.registry.deliver(connection, frame).await {
                tracing::debug!(%connection, ?e, "replayed request not delivered");
            }
        }
    }

    /// A connection closed: its requests wait for another connection, and lapse at the
    /// orphan deadline if none takes them over.
    pub fn connection_closed(&self, connection: ConnectionId) {
        for p in self.lock_pending().values_mut() {
            if p.targets.contains(&connection) {
                p.targets.retain(|c| *c != connection);
                if p.targets.is_empty() {
                    p.orphaned.send_replace(true);
                }
            }
        }
    }

    async fn send_resolved(&self, thread_id: &str, request_id: RequestId) {
        let n = ServerNotification::ServerRequestResolved(ServerRequestResolvedNotification {
            thread_id: thread_id.to_string(),
            request_id,
        });
        self.send_thread_notification(thread_id, &n).await;
    }
}
