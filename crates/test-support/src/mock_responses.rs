//! A scriptable mock of the OpenAI Responses API (`POST {base}/responses`, SSE streaming) for model-client
//! tests: each incoming request takes the next scripted [`MockReply`] and is recorded with headers and body.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

/// The path prefix of [`MockResponsesServer::base_url`]; requests must go to `{PREFIX}/responses`.
pub const BASE_PATH: &str = "/v1";

/// One server-sent event: `event: <event>\ndata: <data>\n\n`, optionally after a pause.
#[derive(Debug, Clone, PartialEq)]
pub struct MockSseEvent {
    /// The event type (`response.created`, `response.output_text.delta`, ...).
    pub event: String,
    /// The JSON payload written on the `data:` line.
    pub data: Value,
    /// How long to wait before sending this event.
    pub delay_before: Option<Duration>,
}

impl MockSseEvent {
    /// An event sent without delay.
    pub fn new(event: impl Into<String>, data: Value) -> Self {
        MockSseEvent {
            event: event.into(),
            data,
            delay_before: None,
        }
    }

    /// The same event, sent only after `delay`.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay_before = Some(delay);
        self
    }

    /// The wire text of this event.
    pub fn to_sse(&self) -> String {
        format!("event: {}\ndata: {}\n\n", self.event, self.data)
    }
}

/// What the mock answers to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum MockReply {
    /// A `200 text/event-stream` that sends the events, then ends the body cleanly.
    Stream(Vec<MockSseEvent>),
    /// A plain HTTP answer (e.g. 429 or 500) with `body` (JSON content type if it parses as JSON) and an
    /// optional `retry-after` header in seconds.
    Status {
        /// The HTTP status code.
        status: u16,
        /// The response body.
        body: String,
        /// Value of the `retry-after` header, in seconds.
        retry_after: Option<u64>,
    },
    /// Sends the events (which should not include `response.completed`), then closes the stream cleanly.
    StreamThenCut(Vec<MockSseEvent>),
    /// Sends the events, then aborts the connection mid-body (the client sees a transport error, not EOF).
    StreamThenAbort(Vec<MockSseEvent>),
    /// Sends the events, then keeps the connection open without completing until the client goes away
    /// (or the server is dropped).
    StreamThenHang(Vec<MockSseEvent>),
}

impl MockReply {
    /// A status reply with a JSON error body in the OpenAI shape and no `retry-after`.
    pub fn error(status: u16, message: &str) -> Self {
        MockReply::Status {
            status,
            body: json!({"error": {"message": message, "type": "mock_error", "code": null}})
                .to_string(),
            retry_after: None,
        }
    }
}

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The HTTP method (`POST`).
    pub method: String,
    /// The request path (`/v1/responses`).
    pub path: String,
    /// Every header as `(lower-case name, value)`, in arrival order (values that are not UTF-8 are lossy).
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON, or `Value::Null` if it is not JSON (see `raw_body`).
    pub body: Value,
    /// The body as text (lossy UTF-8).
    pub raw_body: String,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// State shared between the handle and the server task.
struct Shared {
    /// Scripted replies, consumed front first.
    replies: Mutex<VecDeque<MockReply>>,
    /// Every request received, in order.
    requests: Mutex<Vec<RecordedRequest>>,
    /// Number of requests recorded so far, for waiting without polling.
    count: watch::Sender<usize>,
    /// Whether `: keepalive` comment lines are interleaved before each event.
    keepalive: AtomicBool,
    /// Flips to `true` when the handle is dropped: streams end and the server stops.
    shutdown: watch::Sender<bool>,
}

/// Locks a mutex, ignoring poisoning (a panicking test thread must not hide the real failure).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A mock Responses API server on `127.0.0.1:<random port>`; it shuts down when dropped.
pub struct MockResponsesServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl MockResponsesServer {
    /// Binds `127.0.0.1:0` and starts serving on the current tokio runtime.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("mock Responses server: cannot bind 127.0.0.1:0: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("mock Responses server: no local address: {e}"));
        let (count, _) = watch::channel(0);
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            replies: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
            count,
            keepalive: AtomicBool::new(false),
            shutdown,
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let mut stop = shared.shutdown.subscribe();
        tokio::spawn(async move {
            let signal = async move {
                // Ends on `true` or when the sender (the handle's state) is gone.
                let _ = stop.wait_for(|stopped| *stopped).await;
            };
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await;
        });
        MockResponsesServer { addr, shared }
    }

    /// The base URL to configure the model client with: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}{BASE_PATH}", self.addr)
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Appends a reply to the script; each request takes the oldest one.
    pub fn enqueue(&self, reply: MockReply) {
        lock(&self.shared.replies).push_back(reply);
    }

    /// Appends a [`MockReply::Stream`] of `events`.
    pub fn enqueue_stream(&self, events: Vec<MockSseEvent>) {
        self.enqueue(MockReply::Stream(events));
    }

    /// How many scripted replies have not been used yet.
    pub fn pending_replies(&self) -> usize {
        lock(&self.shared.replies).len()
    }

    /// Turns on (or off) a `: keepalive` SSE comment line before every event of later streams.
    pub fn set_keepalive_comments(&self, on: bool) {
        self.shared.keepalive.store(on, Ordering::SeqCst);
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Waits until at least `n` requests arrived and returns them all; panics with what did arrive if
    /// `deadline` passes first.
    pub async fn wait_for_requests(&self, n: usize, deadline: Duration) -> Vec<RecordedRequest> {
        let mut count = self.shared.count.subscribe();
        let reached = tokio::time::timeout(deadline, count.wait_for(|c| *c >= n)).await;
        if !matches!(reached, Ok(Ok(_))) {
            let got: Vec<String> = self
                .requests()
                .iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect();
            panic!(
                "mock Responses server: expected {n} request(s) within {deadline:?}, got {}: {got:?}",
                got.len()
            );
        }
        self.requests()
    }
}

impl Drop for MockResponsesServer {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

/// A JSON response with the given status.
fn json_response(status: StatusCode, body: Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The single handler: records the request, then answers `POST /v1/responses` with the next scripted reply.
async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let raw_body = String::from_utf8_lossy(&bytes).into_owned();
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        raw_body,
    };
    let index = {
        let mut requests = lock(&shared.requests);
        requests.push(recorded);
        requests.len()
    };
    shared.count.send_replace(index);

    let expected_path = format!("{BASE_PATH}/responses");
    if parts.method != Method::POST || parts.uri.path() != expected_path {
        return json_response(
            StatusCode::NOT_FOUND,
            json!({"error": {"message": format!(
                "mock Responses server only serves POST {expected_path}, got {} {}",
                parts.method,
                parts.uri.path()
            ), "type": "mock_error"}}),
        );
    }
    let Some(reply) = lock(&shared.replies).pop_front() else {
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": {"message": format!(
                "mock Responses server: no scripted reply for request #{index} (enqueue a MockReply first)"
            ), "type": "mock_error"}}),
        );
    };
    match reply {
        MockReply::Status {
            status,
            body,
            retry_after,
        } => status_response(status, body, retry_after),
        MockReply::Stream(events) | MockReply::StreamThenCut(events) => {
            sse_response(&shared, events, Tail::End)
        }
        MockReply::StreamThenAbort(events) => sse_response(&shared, events, Tail::Abort),
        MockReply::StreamThenHang(events) => sse_response(&shared, events, Tail::Hang),
    }
}

/// A scripted plain-status reply.
fn status_response(status: u16, body: String, retry_after: Option<u64>) -> Response {
    let Ok(code) = StatusCode::from_u16(status) else {
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": {"message": format!("mock Responses server: invalid scripted status {status}")}}),
        );
    };
    let content_type = if serde_json::from_str::<Value>(&body).is_ok() {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = code;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(seconds) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// How an SSE reply ends after its events.
#[derive(Clone, Copy)]
enum Tail {
    /// Clean end of body.
    End,
    /// Transport error mid-body.
    Abort,
    /// Stay open until the client disconnects or the server shuts down.
    Hang,
}

/// One chunk of an SSE body.
type Chunk = Result<Bytes, std::io::Error>;

/// Starts a task that writes `events` into a streaming `text/event-stream` body.
fn sse_response(shared: &Shared, events: Vec<MockSseEvent>, tail: Tail) -> Response {
    let (tx, rx) = mpsc::channel::<Chunk>(16);
    let keepalive = shared.keepalive.load(Ordering::SeqCst);
    let mut shutdown = shared.shutdown.subscribe();
    tokio::spawn(async move {
        let stopped = async move {
            let _ = shutdown.wait_for(|stopped| *stopped).await;
        };
        tokio::select! {
            _ = write_events(&tx, events, keepalive, tail) => {}
            _ = stopped => {}
            _ = tx.closed() => {}
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Writes the events (with delays and optional keepalive comments), then the tail behaviour.
async fn write_events(
    tx: &mpsc::Sender<Chunk>,
    events: Vec<MockSseEvent>,
    keepalive: bool,
    tail: Tail,
) {
    for event in events {
        if let Some(delay) = event.delay_before {
            tokio::time::sleep(delay).await;
        }
        if keepalive
            && tx
                .send(Ok(Bytes::from_static(b": keepalive\n\n")))
                .await
                .is_err()
        {
            return;
        }
        if tx.send(Ok(Bytes::from(event.to_sse()))).await.is_err() {
            return;
        }
    }
    match tail {
        Tail::End => {}
        Tail::Abort => {
            let _ = tx
                .send(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "mock stream aborted",
                )))
                .await;
        }
        // The caller's `select!` ends this when the client disconnects or the server shuts down.
        Tail::Hang => std::future::pending::<()>().await,
    }
}

/// Builders for realistic Responses API stream events and whole scripted turns.
pub mod sse {
    use serde_json::{json, Value};

    use super::MockSseEvent;

    /// Token usage reported by `response.completed`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct Usage {
        /// `usage.input_tokens`.
        pub input_tokens: u64,
        /// `usage.input_tokens_details.cached_tokens`.
        pub cached_tokens: u64,
        /// `usage.output_tokens`.
        pub output_tokens: u64,
        /// `usage.output_tokens_details.reasoning_tokens`.
        pub reasoning_tokens: u64,
        /// `usage.total_tokens`.
        pub total_tokens: u64,
    }

    impl Usage {
        /// Usage with `total_tokens = input_tokens + output_tokens`.
        pub fn new(
            input_tokens: u64,
            cached_tokens: u64,
            output_tokens: u64,
            reasoning_tokens: u64,
        ) -> Self {
            Usage {
                input_tokens,
                cached_tokens,
                output_tokens,
                reasoning_tokens,
                total_tokens: input_tokens + output_tokens,
            }
        }

        /// The usage the composed turn helpers report: 10 in (0 cached), 5 out (0 reasoning), 15 total.
        pub fn small() -> Self {
            Usage::new(10, 0, 5, 0)
        }

        /// The JSON `usage` object.
        pub fn to_json(self) -> Value {
            json!({
                "input_tokens": self.input_tokens,
                "input_tokens_details": {"cached_tokens": self.cached_tokens},
                "output_tokens": self.output_tokens,
                "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
                "total_tokens": self.total_tokens,
            })
        }
    }

    /// An event whose data carries `"type": <event>` plus the given fields, as the real API sends.
    fn typed(event: &str, mut data: Value) -> MockSseEvent {
        if let Value::Object(map) = &mut data {
            map.insert("type".to_string(), Value::String(event.to_string()));
        }
        MockSseEvent::new(event, data)
    }

    /// `response.created {response: {id}}`.
    pub fn created(resp_id: &str) -> MockSseEvent {
        typed("response.created", json!({"response": {"id": resp_id}}))
    }

    /// `response.output_item.added {item}`.
    pub fn output_item_added(item: Value) -> MockSseEvent {
        typed(
            "response.output_item.added",
            json!({"output_index": 0, "item": item}),
        )
    }

    /// `response.output_text.delta {item_id, delta}`.
    pub fn output_text_delta(item_id: &str, delta: &str) -> MockSseEvent {
        typed(
            "response.output_text.delta",
            json!({"item_id": item_id, "output_index": 0, "content_index": 0, "delta": delta}),
        )
    }

    /// `response.output_item.done {item}`.
    pub fn output_item_done(item: Value) -> MockSseEvent {
        typed(
            "response.output_item.done",
            json!({"output_index": 0, "item": item}),
        )
    }

    /// `response.reasoning_summary_text.delta {item_id, summary_index, delta}`.
    pub fn reasoning_summary_text_delta(
        item_id: &str,
        summary_index: u64,
        delta: &str,
    ) -> MockSseEvent {
        typed(
            "response.reasoning_summary_text.delta",
            json!({"item_id": item_id, "output_index": 0, "summary_index": summary_index, "delta": delta}),
        )
    }

    /// `response.completed {response: {id, usage}}`.
    pub fn completed(resp_id: &str, usage: Usage) -> MockSseEvent {
        typed(
            "response.completed",
            json!({"response": {"id": resp_id, "status": "completed", "usage": usage.to_json()}}),
        )
    }

    /// `response.failed {response: {id, status: "failed", error: {code, message}}}`.
    pub fn failed(resp_id: &str, error_message: &str) -> MockSseEvent {
        typed(
            "response.failed",
            json!({"response": {"id": resp_id, "status": "failed",
                "error": {"code": "server_error", "message": error_message}}}),
        )
    }

    /// A whole assistant `message` output item with one `output_text` part.
    pub fn assistant_message(msg_id: &str, text: &str) -> Value {
        json!({
            "type": "message", "id": msg_id, "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]
        })
    }

    /// A `function_call` output item (`arguments` is the JSON-encoded argument string).
    pub fn function_call(call_id: &str, name: &str, arguments_json: &str) -> Value {
        json!({
            "type": "function_call", "id": format!("fc_{call_id}"), "call_id": call_id,
            "name": name, "arguments": arguments_json, "status": "completed"
        })
    }

    /// The response id the composed helpers use for an item id.
    pub fn resp_id_for(item_id: &str) -> String {
        format!("resp_{item_id}")
    }

    /// What Codex's own mock sends: `created`, `output_item.done` with the whole message, `completed`.
    pub fn text_turn_whole(msg_id: &str, text: &str) -> Vec<MockSseEvent> {
        let resp = resp_id_for(msg_id);
        vec![
            created(&resp),
            output_item_done(assistant_message(msg_id, text)),
            completed(&resp, Usage::small()),
        ]
    }

    /// A streamed text turn: `created`, `output_item.added`, one `output_text.delta` per chunk,
    /// `output_item.done` with the joined text, `completed`.
    pub fn text_turn_streamed(msg_id: &str, chunks: &[&str]) -> Vec<MockSseEvent> {
        let resp = resp_id_for(msg_id);
        let mut events = vec![
            created(&resp),
            output_item_added(json!({
                "type": "message", "id": msg_id, "role": "assistant", "status": "in_progress", "content": []
            })),
        ];
        events.extend(chunks.iter().map(|chunk| output_text_delta(msg_id, chunk)));
        events.push(output_item_done(assistant_message(
            msg_id,
            &chunks.concat(),
        )));
        events.push(completed(&resp, Usage::small()));
        events
    }

    /// A tool-call turn: `created`, `output_item.done` with a `function_call`, `completed`.
    pub fn function_call_turn(
        call_id: &str,
        name: &str,
        arguments_json: &str,
    ) -> Vec<MockSseEvent> {
        let resp = resp_id_for(call_id);
        vec![
            created(&resp),
            output_item_done(function_call(call_id, name, arguments_json)),
            completed(&resp, Usage::small()),
        ]
    }
}

#[cfg(test)]
#[path = "mock_responses_tests.rs"]
mod tests;
