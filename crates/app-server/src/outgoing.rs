//! `OutgoingMessageSender`: the one place where every response, error, notification and
//! server request leaves the server. Handlers hand it typed payloads; only it serializes them.

use crate::connection::ConnectionId;
use crate::registry::ConnectionRegistry;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
}

/// The outgoing seam.
pub struct OutgoingMessageSender {
    registry: Arc<ConnectionRegistry>,
    next_request_id: AtomicI64,
    pending: Mutex<HashMap<RequestId, PendingRequest>>,
    serialization_failures: AtomicU64,
}

impl OutgoingMessageSender {
    /// A sender delivering through `registry`.
    pub fn new(registry: Arc<ConnectionRegistry>) -> Self {
        Self {
            registry,
            next_request_id: AtomicI64::new(0),
            pending: Mutex::new(HashMap::new()),
            serialization_failures: AtomicU64::new(0),
        }
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
        self.deliver(connection, &json!({"id": id, "error": error}))
            .await;
    }

    /// Sends a notification to one connection (if it is initialized and did not opt out).
    pub async fn send_notification(&self, connection: ConnectionId, n: &ServerNotification) {
        if !self.registry.wants_notification(connection, n.method()) {
            return;
        }
        if let Some(frame) = self.notification_frame(n) {
            let _ = self.registry.deliver(connection, frame).await;
        }
    }

    /// Sends a notification to every connection subscribed to `thread_id`.
    pub async fn send_thread_notification(&self, thread_id: &str, n: &ServerNotification) {
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
        let frame = match serde_json::to_value(&request) {
            Ok(Value::Object(mut obj)) => {
                obj.insert("id".into(), json!(id));
                Value::Object(obj)
            }
            _ => {
                self.serialization_failures.fetch_add(1, Ordering::Relaxed);
                let _ = tx.send(ServerRequestOutcome::Cancelled);
                return (id, rx);
            }
        };
        self.lock_pending().insert(
            id.clone(),
            PendingRequest {
                request,
                targets: targets.clone(),
                responder: tx,
            },
        );
        for connection in targets {
            self.deliver(connection, &frame).await;
        }
        (id, rx)
    }

    /// Routes a client's `result` to the pending request it answers, decoded as its typed response.
    pub fn notify_client_response(&self, connection: ConnectionId, id: RequestId, result: Value) {
        let Some(pending) = self.take_pending_for(connection, &id) else {
            return;
        };
        let outcome = match pending.request.response_from_result(result) {
            Ok(response) => ServerRequestOutcome::Answered {
                connection,
                response,
            },
            Err(e) => {
                tracing::warn!(request = %id, error = %e, "client answered with a mismatched result");
                ServerRequestOutcome::Refused {
                    connection,
                    error: JsonRpcErrorBody::invalid_params(e.to_string()),
                }
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
            let _ = pending
                .responder
                .send(ServerRequestOutcome::Refused { connection, error });
        }
    }

    /// Withdraws a pending request; its waiter sees `Cancelled`.
    pub fn cancel_request(&self, id: &RequestId) -> bool {
        match self.lock_pending().remove(id) {
            Some(p) => {
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
                tracing::warn!(%connection, request = %id, "answer from a connection the request was not sent to");
                None
            }
            None => {
                tracing::debug!(%connection, request = %id, "answer to an unknown or settled request");
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
