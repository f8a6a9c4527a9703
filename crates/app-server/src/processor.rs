//! The message processor: classifies each incoming message, enforces the handshake, decodes
//! typed requests, and runs their handlers in per-thread order. Answers go through the sender.

use crate::connection::{ConnectionId, SessionInfo};
use crate::handlers::{dispatch, Ctx};
use crate::initialize::{initialize_response, validate_client_name};
use crate::outgoing::OutgoingMessageSender;
use crate::thread_queue::ThreadQueues;
use futures::FutureExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tally_analytics::{ClientInfoFact, RpcTransport};
use tally_core::{Config, ThreadManager};
use tally_protocol::jsonrpc::{EnvelopeError, SERVER_OVERLOADED};
use tally_protocol::server_notification::ConfigWarningNotification;
use tally_protocol::{
    ClientNotification, ClientRequest, JsonRpcErrorBody, JsonRpcMessage, RequestId,
    ServerNotification,
};
use tokio::sync::Semaphore;

/// Requests of one connection queued per thread before `-32001`.
const THREAD_QUEUE_CAPACITY: usize = 128;
/// Requests of one connection running concurrently (not thread-scoped) before `-32001`.
const CONNECTION_INFLIGHT: usize = 128;

/// Per-connection state owned by its transport's reader loop.
pub(crate) struct ConnectionSession {
    pub id: ConnectionId,
    transport: RpcTransport,
    session: Option<Arc<SessionInfo>>,
    inflight: Arc<Semaphore>,
}

impl ConnectionSession {
    pub fn new(id: ConnectionId, transport: RpcTransport) -> Self {
        Self {
            id,
            transport,
            session: None,
            inflight: Arc::new(Semaphore::new(CONNECTION_INFLIGHT)),
        }
    }
}

/// Counters of what the processor refused or dropped.
#[derive(Debug, Default)]
pub struct ProcessorStats {
    pub parse_errors: AtomicU64,
    pub invalid_messages: AtomicU64,
    pub overloaded: AtomicU64,
}

/// Shared by every connection.
pub(crate) struct MessageProcessor {
    pub outgoing: Arc<OutgoingMessageSender>,
    pub threads: Arc<ThreadManager>,
    pub config: Arc<Config>,
    pub auth: Arc<tally_auth::AuthManager>,
    queues: Arc<ThreadQueues>,
    pub stats: ProcessorStats,
}

impl MessageProcessor {
    pub fn new(
        outgoing: Arc<OutgoingMessageSender>,
        threads: Arc<ThreadManager>,
        config: Arc<Config>,
        auth: Arc<tally_auth::AuthManager>,
    ) -> Self {
        Self {
            outgoing,
            threads,
            config,
            auth,
            queues: ThreadQueues::new(THREAD_QUEUE_CAPACITY),
            stats: ProcessorStats::default(),
        }
    }

    /// Handles one line or frame from a connection.
    pub async fn process_text(&self, conn: &mut ConnectionSession, text: &str) {
        match JsonRpcMessage::parse(text) {
            Ok(message) => self.process_message(conn, message).await,
            Err(e) => {
                let counter = match e {
                    EnvelopeError::Parse(_) => &self.stats.parse_errors,
                    EnvelopeError::Invalid { .. } => &self.stats.invalid_messages,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(connection = %conn.id, error = %e, "bad incoming message");
                // Text that is not JSON is dropped without a reply, as Codex does: a reply could
                // carry no id, and the TUI disconnects on a frame that is not JSON-RPC.
                if matches!(e, EnvelopeError::Parse(_)) {
                    return;
                }
                let err = e.to_error();
                self.outgoing.send_error(conn.id, err.id, err.error).await;
            }
        }
    }

    /// Answers a message that was refused before it was read (too large).
    pub async fn refuse_oversized(&self, conn: &ConnectionSession, limit: usize) {
        self.stats.invalid_messages.fetch_add(1, Ordering::Relaxed);
        let error = JsonRpcErrorBody::invalid_request(format!("message larger than {limit} bytes"));
        self.outgoing.send_error(conn.id, None, error).await;
    }

    async fn process_message(&self, conn: &mut ConnectionSession, message: JsonRpcMessage) {
        match message {
            JsonRpcMessage::Request { id, method, params } if method == "initialize" => {
                self.initialize(conn, id, params).await
            }
            JsonRpcMessage::Request { id, method, params } => {
                self.request(conn, id, &method, params).await
            }
            JsonRpcMessage::Notification { method, .. } => {
                match ClientNotification::decode(&method) {
                    Ok(ClientNotification::Initialized) => {
                        tracing::debug!(connection = %conn.id, "client initialized")
                    }
                    Err(_) => {
                        tracing::debug!(connection = %conn.id, %method, "ignoring unknown notification")
                    }
                }
            }
            JsonRpcMessage::Response { id, result } => {
                self.outgoing.notify_client_response(conn.id, id, result)
            }
            JsonRpcMessage::Error {
                id: Some(id),
                error,
            } => self.outgoing.notify_client_error(conn.id, id, error),
            JsonRpcMessage::Error { id: None, error } => {
                tracing::warn!(connection = %conn.id, code = error.code, message = %error.message, "client sent an error without id")
            }
        }
    }

    async fn initialize(
        &self,
        conn: &mut ConnectionSession,
        id: RequestId,
        params: Option<serde_json::Value>,
    ) {
        if conn.session.is_some() {
            let e = JsonRpcErrorBody::invalid_request("Already initialized");
            return self.outgoing.send_error(conn.id, Some(id), e).await;
        }
        let params = match ClientRequest::decode("initialize", params) {
            Ok(ClientRequest::Initialize(p)) => p,
            Ok(_) => return,
            Err(e) => {
                return self
                    .outgoing
                    .send_error(conn.id, Some(id), e.to_error_body())
                    .await
            }
        };
        if let Err(e) = validate_client_name(&params.client_info.name) {
            return self.outgoing.send_error(conn.id, Some(id), e).await;
        }
        let (session, payload) = initialize_response(&self.config, &params);
        self.outgoing.analytics().track_initialize(
            conn.id.0,
            &ClientInfoFact {
                client_name: params.client_info.name.clone(),
                client_version: Some(params.client_info.version.clone()),
                rpc_transport: conn.transport,
                experimental_api_enabled: params.capabilities.as_ref().map(|c| c.experimental_api),
            },
        );
        let session = Arc::new(session);
        self.outgoing
            .registry()
            .set_session(conn.id, (*session).clone());
        conn.session = Some(session);
        self.outgoing.send_response(conn.id, id, payload).await;
        for w in &self.config.warnings {
            let n = ServerNotification::ConfigWarning(ConfigWarningNotification {
                summary: w.summary.clone(),
                details: None,
                path: Some(w.path.display().to_string()),
            });
            self.outgoing.send_notification(conn.id, &n).await;
        }
        if let Some(n) = sandbox_warning(&self.config, self.threads.sandbox_enforceable()) {
            self.outgoing.send_notification(conn.id, &n).await;
        }
    }

    async fn request(
        &self,
        conn: &ConnectionSession,
        id: RequestId,
        method: &str,
        params: Option<serde_json::Value>,
    ) {
        let Some(session) = conn.session.clone() else {
            let e = JsonRpcErrorBody::invalid_request("Not initialized");
            return self.outgoing.send_error(conn.id, Some(id), e).await;
        };
        tracing::debug!(connection = %conn.id, %id, method, "request");
        let request = match ClientRequest::decode(method, params) {
            Ok(r) => r,
            Err(e) => {
                return self
                    .outgoing
                    .send_error(conn.id, Some(id), e.to_error_body())
                    .await
            }
        };
        self.outgoing
            .analytics()
            .track_client_request(conn.id.0, &id, &request);
        let ctx = Ctx {
            connection: conn.id,
            session,
            outgoing: self.outgoing.clone(),
            threads: self.threads.clone(),
            config: self.config.clone(),
            auth: self.auth.clone(),
        };
        let thread_key = request.thread_id().map(|t| (conn.id, t.to_string()));
        let job = run_request(ctx, id.clone(), request);
        let accepted = match thread_key {
            Some(key) => self
                .queues
                .enqueue(key, job.boxed(), &conn.inflight)
                .is_ok(),
            None => match conn.inflight.clone().try_acquire_owned() {
                Ok(permit) => {
                    tokio::spawn(async move {
                        job.await;
                        drop(permit);
                    });
                    true
                }
                Err(_) => false,
            },
        };
        if !accepted {
            self.stats.overloaded.fetch_add(1, Ordering::Relaxed);
            let e = JsonRpcErrorBody::new(SERVER_OVERLOADED, "Server overloaded; retry later.");
            self.outgoing.send_error(conn.id, Some(id), e).await;
        }
    }

    /// Forgets a connection that closed.
    pub fn connection_closed(&self, id: ConnectionId) {
        self.outgoing.analytics().track_connection_closed(id.0);
        self.queues.forget_connection(id);
        self.outgoing.registry().unregister(id);
        self.outgoing.connection_closed(id);
    }
}

/// Runs a handler and sends its answer, then whatever must follow the answer.
async fn run_request(ctx: Ctx, id: RequestId, request: ClientRequest) {
    let (outgoing, connection) = (ctx.outgoing.clone(), ctx.connection);
    match dispatch(ctx, request).await {
        Ok(reply) => {
            outgoing.send_response(connection, id, reply.payload).await;
            if let Some(after) = reply.after_send {
                after().await;
            }
        }
        Err(e) => {
            tracing::debug!(%connection, %id, code = e.code, message = %e.message, "request failed");
            outgoing.send_error(connection, Some(id), e).await
        }
    }
}

/// One `configWarning` when the configured sandbox cannot be enforced on this kernel: commands
/// then need a person's approval instead (see `tools::approval`).
fn sandbox_warning(config: &Config, enforceable: bool) -> Option<ServerNotification> {
    use tally_protocol::types::SandboxMode;
    let wanted = config.sandbox_mode != SandboxMode::DangerFullAccess;
    (wanted && !enforceable).then(|| {
        ServerNotification::ConfigWarning(ConfigWarningNotification {
            summary: "The sandbox cannot be enforced: this kernel lacks Landlock. Commands will ask for approval instead.".into(),
            details: Some(format!(
                "sandbox_mode = {:?} needs Linux Landlock (5.13+, enabled in the LSM list)",
                config.sandbox_mode
            )),
            path: None,
        })
    })
}
