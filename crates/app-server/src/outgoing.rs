//! `OutgoingMessageSender`: the one place where every response, error, notification and
//! server request leaves the server. Handlers hand it typed payloads; only it serializes them.

use crate::connection::ConnectionId;
use crate::registry::ConnectionRegistry;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tally_analytics::{AnalyticsEventsClient, ServerRequestEnd};
use tally_protocol::{
    ClientResponsePayload, JsonRpcErrorBody, RequestId, ServerNotification, ServerRequest,
    ServerResponse,
};
use tokio::sync::oneshot;

/// How a server request was settled.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerRequestOutcome {
    /// A client answered with a result that decodes as the typed response.
    Answered {
        connection: ConnectionId,
        response: ServerResponse,
    },
    /// A client answered with an error, or a result that does not match the request.
    Refused {
        connection: ConnectionId,
        error: JsonRpcErrorBody,
    },
    /// Nobody can answer any more (the connection went away, or the request was withdrawn).
    Cancelled,
}

struct PendingRequest {
    request: ServerRequest,
    /// The connections allowed to answer.
    targets: Vec<ConnectionId>,
    responder: oneshot::Sender<ServerRequestOutcome>,
    /// The serialized request, re-sent unchanged on replay.
    frame: Arc<str>,
    /// The same request without its experimental params, for clients that did not opt in
    /// (`None` when it has none).
    stable_frame: Option<Arc<str>>,
    /// True while no connection that may answer is connected (see `requests`).
    orphaned: tokio::sync::watch::Sender<bool>,
    /// Whether analytics follows it: a broadcast (one logical request, many deliveries) is
    /// counted when sent and recorded no further, not its answer, end or replays.
    tracked: bool,
}

#[path = "outgoing_requests.rs"]
mod requests;
pub use requests::{RequestDeadlines, RequestStats};

/// The outgoing seam.
pub struct OutgoingMessageSender {
    registry: Arc<ConnectionRegistry>,
    next_request_id: AtomicI64,
    pending: Mutex<HashMap<RequestId, PendingRequest>>,
    serialization_failures: AtomicU64,
    analytics: AnalyticsEventsClient,
    deadlines: RequestDeadlines,
    request_stats: RequestStats,
}

impl OutgoingMessageSender {
    /// A sender delivering through `registry`, without analytics.
    pub fn new(registry: Arc<ConnectionRegistry>) -> Self {
        Self::with_analytics(registry, AnalyticsEventsClient::disabled())
    }

    /// A sender delivering through `registry` that reports what leaves to `analytics`.
    pub fn with_analytics(
        registry: Arc<ConnectionRegistry>,
        analytics: AnalyticsEventsClient,
    ) -> Self {
        Self {
            registry,
            next_request_id: AtomicI64::new(0),
            pending: Mutex::new(HashMap::new()),
            serialization_failures: AtomicU64::new(0),
            analytics,
            deadlines: RequestDeadlines::default(),
            request_stats: RequestStats::default(),
        }
    }

    /// The analytics client this seam reports to.
    pub fn analytics(&self) -> &AnalyticsEventsClient {
        &self.analytics
    }

    /// The connection registry behind this sender.
    pub fn registry(&self) -> &Arc<ConnectionRegistry> {
        &self.registry
    }

    /// Sends a successful response; the typed payload is serialized here and nowhere else.
    pub async fn send_response(
        &self,
        connection: ConnectionId,
        id: RequestId,
        payload: ClientResponsePayload,
    ) {
        self.analytics
            .track_client_response(connection.0, &id, &payload);
        match payload.to_result() {
            Ok(result) => {
                self.deliver(connection, &json!({"id": id, "result": result}))
                    .await
            }
            Err(e) => {
                self.serialization_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(method = payload.method(), error = %e, "cannot serialize response");
                let error = JsonRpcErrorBody::internal("internal error; see the server log");
                self.send_error(connection, Some(id), error).await;
            }
        }
    }

    /// Sends an error answer.
    pub async fn send_error(
        &self,
        connection: ConnectionId,
        id: Option<RequestId>,
        error: JsonRpcErrorBody,
    ) {
        if let Some(id) = &id {
            self.analytics
                .track_error_response(connection.0, id, &error);
        }
        self.deliver(connection, &json!({"id": id, "error": error}))
            .await;
    }

    /// Sends a notification to one connection (if it is initialized and did not opt out).
    pub async fn send_notification(&self, connection: ConnectionId, n: &ServerNotification) {
        self.analytics.track_notification(n);
        if !self.registry.wants_notification(connection, n.method()) {
            return;
        }
        if let Some(frame) = self.notification_frame(n) {
            let _ = self.registry.deliver(connection, frame).await;
        }
    }

    /// Sends a notification to every initialized connection that did not opt out of it.
    pub async fn broadcast_notification(&self, n: &ServerNotification) {
        self.analytics.track_notification(n);
        let Some(frame) = self.notification_frame(n) else {
            return;
        };
        for connection in self.registry.initialized_connections() {
            if self.registry.wants_notification(connection, n.method()) {
                let _ = self.registry.deliver(connection, frame.clone()).await;
            }
        }
    }

    /// Sends a notification to every connection subscribed to `thread_id`.
    pub async fn send_thread_notification(&self, thread_id: &str, n: &ServerNotification) {
        self.analytics.track_notification(n);
        let targets = self.registry.subscribers(thread_id, n.method());
        if targets.is_empty() {
            return;
        }
        let Some(frame) = self.notification_frame(n) else {
            return;
        };
        for connection in targets {
            let _ = self.registry.deliver(connection, frame.clone()).await;
        }
    }

    /// Sends a request to one connection and returns a receiver for its outcome.
    pub async fn send_request(
        &self,
        connection: ConnectionId,
        request: ServerRequest,
    ) -> (RequestId, oneshot::Receiver<ServerRequestOutcome>) {
        self.send_request_to(vec![connection], request).await
    }

    /// Sends a request to several connections; the first answer wins.
    pub async fn send_request_to(
        &self,
        targets: Vec<ConnectionId>,
        request: ServerRequest,
    ) -> (RequestId, oneshot::Receiver<ServerRequestOutcome>) {
        let id = RequestId::Integer(self.next_request_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        let (frame, stable_frame): (Arc<str>, Option<Arc<str>>) =
            match serde_json::to_value(&request) {
                Ok(Value::Object(mut obj)) => {
                    obj.insert("id".into(), json!(id));
                    let full = Value::Object(obj.clone());
                    let stripped = obj
                        .get_mut("params")
                        .and_then(Value::as_object_mut)
                        .and_then(|params| params.remove("availableDecisions"))
                        .map(|_| Arc::from(Value::Object(obj).to_string()));
                    (Arc::from(full.to_string()), stripped)
                }
                _ => {
                    self.serialization_failures.fetch_add(1, Ordering::Relaxed);
                    let _ = tx.send(ServerRequestOutcome::Cancelled);
                    return (id, rx);
                }
            };
        // With no connection yet, it is tracked from its first replay.
        let tracked = targets.len() <= 1;
        match targets.as_slice() {
            [only] => self
                .analytics
                .track_server_request(only.0, &id, &request, false),
            [] => {}
            // Broadcasts are one logical request with many deliveries; the per-connection
            // analytics model would count it N times, so it is counted, not tracked.
            _ => self.analytics.track_broadcast_server_request(),
        }
        self.lock_pending().insert(
            id.clone(),
            PendingRequest {
                request,
                targets: targets.clone(),
                responder: tx,
                frame: frame.clone(),
                stable_frame: stable_frame.clone(),
                orphaned: tokio::sync::watch::Sender::new(targets.is_empty()),
                tracked,
            },
        );
        for connection in targets {
            let frame = self.frame_for(connection, &frame, stable_frame.as_ref());
            if let Err(e) = self.registry.deliver(connection, frame).await {
                tracing::debug!(%connection, ?e, "request not delivered");
            }
        }
        (id, rx)
    }

    /// Routes a client's `result` to the pending request it answers, decoded as its typed response.
    pub fn notify_client_response(&self, connection: ConnectionId, id: RequestId, result: Value) {
        let Some(pending) = self.take_pending_for(connection, &id) else {
            return;
        };
        let outcome = match pending.request.response_from_result(result) {
            Ok(response) => {
                if pending.tracked {
                    self.analytics
                        .track_server_response(connection.0, &id, &response);
                }
                ServerRequestOutcome::Answered {
                    connection,
                    response,
                }
            }
            Err(e) => {
                tracing::warn!(request = %id, error = %e, "client answered with a mismatched result");
                // A malformed answer settles nothing: the request waits for a valid answer or
                // its deadline.
                self.request_stats.count_malformed();
                self.lock_pending().insert(id, pending);
                return;
            }
        };
        let _ = pending.responder.send(outcome);
    }

    /// Routes a client's error answer to the pending request it refuses.
    pub fn notify_client_error(
        &self,
        connection: ConnectionId,
        id: RequestId,
        error: JsonRpcErrorBody,
    ) {
        if let Some(pending) = self.take_pending_for(connection, &id) {
            if pending.tracked {
                let end = ServerRequestEnd::ErrorResponse { code: error.code };
                self.analytics
                    .track_server_request_ended(Some(connection.0), &id, end);
            }
            let _ = pending
                .responder
                .send(ServerRequestOutcome::Refused { connection, error });
        }
    }

    /// Withdraws a pending request; its waiter sees `Cancelled`.
    pub fn cancel_request(&self, id: &RequestId) -> bool {
        self.cancel_request_as(id, ServerRequestEnd::Aborted)
    }

    /// Withdraws a pending request, recording why for analytics.
    pub(crate) fn cancel_request_as(&self, id: &RequestId, end: ServerRequestEnd) -> bool {
        match self.lock_pending().remove(id) {
            Some(p) => {
                if p.tracked {
                    self.analytics.track_server_request_ended(None, id, end);
                }
                let _ = p.responder.send(ServerRequestOutcome::Cancelled);
                true
            }
            None => false,
        }
    }

    /// Number of server requests waiting for an answer.
    pub fn pending_requests(&self) -> usize {
        self.lock_pending().len()
    }

    fn take_pending_for(&self, connection: ConnectionId, id: &RequestId) -> Option<PendingRequest> {
        let mut pending = self.lock_pending();
        match pending.get(id) {
            Some(p) if p.targets.contains(&connection) => pending.remove(id),
            Some(_) => {
                self.request_stats.count_ignored();
                tracing::warn!(%connection, request = %id, "answer from a connection the request was not sent to");
                None
            }
            None => {
                self.request_stats.count_ignored();
                tracing::warn!(%connection, request = %id, "answer to an unknown or settled request");
                None
            }
        }
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, PendingRequest>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn notification_frame(&self, n: &ServerNotification) -> Option<Arc<str>> {
        match serde_json::to_value(n) {
            Ok(Value::Object(mut obj)) => {
                obj.insert("emittedAtMs".into(), json!(tally_core::clock::now_ms()));
                Some(Arc::from(Value::Object(obj).to_string()))
            }
            _ => {
                self.serialization_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(method = n.method(), "cannot serialize notification");
                None
            }
        }
    }

    /// The frame of a request as `connection` gets it: experimental params only for clients
    /// that opted into the experimental API.
    fn frame_for(
        &self,
        connection: ConnectionId,
        frame: &Arc<str>,
        stable: Option<&Arc<str>>,
    ) -> Arc<str> {
        match stable {
            Some(stable)
                if !self
                    .registry
                    .session(connection)
                    .is_some_and(|s| s.experimental_api) =>
            {
                stable.clone()
            }
            _ => frame.clone(),
        }
    }

    async fn deliver(&self, connection: ConnectionId, message: &Value) {
        let frame: Arc<str> = Arc::from(message.to_string());
        if let Err(e) = self.registry.deliver(connection, frame).await {
            tracing::debug!(%connection, ?e, "message not delivered");
        }
    }
}

#[cfg(test)]
#[path = "outgoing_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "outgoing_analytics_tests.rs"]
mod analytics_tests;
