//! A scripted app-server client for integration tests: speaks NDJSON over any byte pipe (an
//! in-process duplex or a child's stdio) or JSON text frames over WebSocket, and validates every
//! message the server sends against the Codex schema as it arrives.

use crate::schema::{SchemaMode, TranscriptChecker};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// How long a test waits for any one expected message.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(20);

/// A client connection to an app-server under test.
pub struct AppClient {
    outbound: mpsc::Sender<String>,
    inbound: mpsc::Receiver<String>,
    /// Every message received, in order (validated).
    pub received: Vec<Value>,
    unread: VecDeque<Value>,
    checker: TranscriptChecker,
    next_id: i64,
}

impl AppClient {
    /// A client over NDJSON lines on a reader/writer pair (stdio of a child, or an in-process duplex).
    pub fn over_lines<R, W>(reader: R, writer: W, mode: SchemaMode) -> Self
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (out_tx, mut out_rx) = mpsc::channel::<String>(256);
        let (in_tx, in_rx) = mpsc::channel::<String>(4096);
        tokio::spawn(async move {
            let mut writer = writer;
            while let Some(line) = out_rx.recv().await {
                if writer.write_all(line.as_bytes()).await.is_err()
                    || writer.write_all(b"\n").await.is_err()
                    || writer.flush().await.is_err()
                {
                    break;
                }
            }
            let _ = writer.shutdown().await;
        });
        tokio::spawn(async move {
            let mut lines = BufReader::new(reader).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if in_tx.send(line).await.is_err() {
                    break;
                }
            }
        });
        Self::new(out_tx, in_rx, mode)
    }

    /// A client over WebSocket text frames at `url` (e.g. `ws://127.0.0.1:PORT`).
    pub async fn over_websocket(url: &str, mode: SchemaMode) -> Self {
        let (socket, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
        Self::over_websocket_stream(socket, mode)
    }

    /// A client at `url` whose upgrade carries `Authorization: Bearer <token>`.
    pub async fn over_websocket_with_bearer(url: &str, token: &str, mode: SchemaMode) -> Self {
        let request = bearer_request(url, token);
        let (socket, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
        Self::over_websocket_stream(socket, mode)
    }

    /// A client over a Unix socket at `path`: a normal HTTP upgrade to `ws://localhost/rpc`, as
    /// the Codex TUI does for `--remote unix://PATH`.
    pub async fn over_unix_socket(path: &std::path::Path, mode: SchemaMode) -> Self {
        let stream = tokio::net::UnixStream::connect(path)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", path.display()));
        let (socket, _) = tokio_tungstenite::client_async("ws://localhost/rpc", stream)
            .await
            .unwrap_or_else(|e| panic!("WebSocket upgrade over {} failed: {e}", path.display()));
        Self::over_websocket_stream(socket, mode)
    }

    /// A client over an already upgraded WebSocket on any stream.
    pub fn over_websocket_stream<S>(
        socket: tokio_tungstenite::WebSocketStream<S>,
        mode: SchemaMode,
    ) -> Self
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sink, mut stream) = socket.split();
        let (out_tx, mut out_rx) = mpsc::channel::<String>(256);
        let (in_tx, in_rx) = mpsc::channel::<String>(4096);
        tokio::spawn(async move {
            while let Some(text) = out_rx.recv().await {
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                if let Message::Text(t) = msg {
                    if in_tx.send(t.to_string()).await.is_err() {
                        break;
                    }
                }
            }
        });
        Self::new(out_tx, in_rx, mode)
    }

    fn new(
        outbound: mpsc::Sender<String>,
        inbound: mpsc::Receiver<String>,
        mode: SchemaMode,
    ) -> Self {
        Self {
            outbound,
            inbound,
            received: Vec::new(),
            unread: VecDeque::new(),
            checker: TranscriptChecker::new(mode),
            next_id: 1,
        }
    }

    /// Sends raw text (possibly not JSON) as one line or frame.
    pub async fn send_raw(&mut self, text: &str) {
        if let Ok(v) = serde_json::from_str::<Value>(text) {
            self.checker.client_sent(&v);
        }
        self.outbound
            .send(text.to_string())
            .await
            .expect("the transport to the server is closed");
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, message: Value) {
        self.send_raw(&message.to_string()).await;
    }

    /// Sends a request with a fresh integer id and returns the id.
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = json!(self.next_id);
        self.next_id += 1;
        self.send(json!({"id": id, "method": method, "params": params}))
            .await;
        id
    }

    /// Sends a request and waits for its answer (result or error message).
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.request(method, params).await;
        self.answer_to(&id).await
    }

    /// Sends a request and returns its `result`, failing the test on an error answer.
    pub async fn call_ok(&mut self, method: &str, params: Value) -> Value {
        let answer = self.call(method, params).await;
        assert!(answer.get("error").is_none(), "{method} failed: {answer}");
        answer["result"].clone()
    }

    /// `initialize` + `initialized`, returning the initialize result.
    pub async fn initialize(&mut self, experimental: bool) -> Value {
        let result = self
            .call_ok(
                "initialize",
                json!({"clientInfo": {"name": "tally-test", "title": "Tally test", "version": "1.0.0"},
                       "capabilities": {"experimentalApi": experimental}}),
            )
            .await;
        self.send(json!({"method": "initialized"})).await;
        result
    }

    /// The next message from the server, validated against the schema.
    pub async fn next(&mut self) -> Value {
        if let Some(v) = self.unread.pop_front() {
            return v;
        }
        self.read_one(DEFAULT_WAIT).await.unwrap_or_else(|| {
            panic!(
                "no message from the server within {DEFAULT_WAIT:?}; got so far: {:#?}",
                self.received
            )
        })
    }

    /// The next message if one arrives within `wait`.
    pub async fn try_next(&mut self, wait: Duration) -> Option<Value> {
        if let Some(v) = self.unread.pop_front() {
            return Some(v);
        }
        self.read_one(wait).await
    }

    async fn read_one(&mut self, wait: Duration) -> Option<Value> {
        let line = tokio::time::timeout(wait, self.inbound.recv())
            .await
            .ok()??;
        let value: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("server sent a non-JSON message ({e}): {line}"));
        if let Err(e) = self.checker.server_sent(&value) {
            panic!("server message violates the Codex schema: {e}\nmessage: {value}");
        }
        self.received.push(value.clone());
        Some(value)
    }

    /// Waits for the answer to request `id`, keeping other messages for later reads.
    pub async fn answer_to(&mut self, id: &Value) -> Value {
        self.wait_for(|m| m.get("id") == Some(id) && m.get("method").is_none())
            .await
    }

    /// Waits for the notification `method`, keeping other messages for later reads.
    pub async fn notification(&mut self, method: &str) -> Value {
        self.wait_for(|m| m["method"] == method && m.get("id").is_none())
            .await
    }

    /// Waits for `item/started` of an item of type `kind` (`commandExecution`, ...).
    pub async fn item_started(&mut self, kind: &str) -> Value {
        self.wait_for(|m| m["method"] == "item/started" && m["params"]["item"]["type"] == kind)
            .await
    }

    /// Waits for the first message matching `pred`; earlier ones stay unread, in order.
    pub async fn wait_for(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(pos) = self.unread.iter().position(&pred) {
            return self.unread.remove(pos).expect("position is valid");
        }
        loop {
            let v = self.read_one(DEFAULT_WAIT).await.unwrap_or_else(|| {
                panic!("expected message did not arrive; got: {:#?}", self.received)
            });
            if pred(&v) {
                return v;
            }
            self.unread.push_back(v);
        }
    }

    /// Reads messages until the notification `method` arrives; returns all of them in order.
    pub async fn collect_until(&mut self, method: &str) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let v = self.next().await;
            let done = v["method"] == method && v.get("id").is_none();
            out.push(v);
            if done {
                return out;
            }
        }
    }

    /// Closes the client's sending side (EOF for stdio).
    pub fn close(self) {
        drop(self);
    }
}

/// A WebSocket client request for `url` carrying `Authorization: Bearer <token>`.
pub fn bearer_request(
    url: &str,
    token: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url
        .into_client_request()
        .unwrap_or_else(|e| panic!("bad WebSocket url {url}: {e}"));
    let value = format!("Bearer {token}")
        .parse()
        .unwrap_or_else(|e| panic!("bad bearer header: {e}"));
    request.headers_mut().insert("authorization", value);
    request
}

/// The `method` of each message (or `response`/`error` for answers).
pub fn methods(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| match (m.get("method"), m.get("error")) {
            (Some(method), _) => method.as_str().unwrap_or_default().to_string(),
            (None, Some(_)) => "error-answer".to_string(),
            (None, None) => "response".to_string(),
        })
        .collect()
}
