//! A loopback fake collector for the delivery tests: scripted replies, every body recorded.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tally_analytics::delivery::{EventEnvelope, HttpSink, HttpSinkConfig, INGEST_PATH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// What the collector does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Answer with this status (200 accepts).
    Status(u16),
    /// Answer with this status and a `Retry-After` header.
    RetryAfter(u16, &'static str),
    /// Read the body, then never answer (the client's deadline or a kill ends it).
    Hang,
    /// 413 when the batch holds more events than this, else 200.
    TooLargeOver(usize),
    /// 401 with `{"error": code}` (the collector refusing a credential).
    Refuse(&'static str),
    /// 400 `invalid_events` as a Tally collector answers a batch with some invalid events:
    /// (accepted, duplicates, rejected).
    PartlyInvalid(u64, u64, u64),
}

/// One request as the collector saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub ids: Vec<String>,
    pub headers: HeaderMap,
    pub body_len: usize,
    pub accepted: bool,
}

#[derive(Default)]
struct Inner {
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Option<Reply>>,
    received: Mutex<Vec<Received>>,
    changed: Notify,
}

/// The fake collector: `url` is its base URL.
pub struct FakeCollector {
    pub url: String,
    inner: Arc<Inner>,
}

impl FakeCollector {
    /// Starts on 127.0.0.1 with `script` first, then `default` for every later request.
    pub async fn start(script: impl IntoIterator<Item = Reply>, default: Reply) -> Self {
        let inner = Arc::new(Inner::default());
        *inner.script.lock().unwrap() = script.into_iter().collect();
        *inner.default.lock().unwrap() = Some(default);
        let app = axum::Router::new()
            .route(INGEST_PATH, axum::routing::post(ingest))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, inner }
    }

    /// Changes the reply for requests after the script.
    pub fn set_default(&self, reply: Reply) {
        *self.inner.default.lock().unwrap() = Some(reply);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// Event ids of the requests answered 2xx, flattened, in arrival order.
    pub fn accepted_ids(&self) -> Vec<String> {
        self.received()
            .into_iter()
            .filter(|r| r.accepted)
            .flat_map(|r| r.ids)
            .collect()
    }

    /// How many times each id was seen in any request body.
    pub fn seen_counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for r in self.received() {
            for id in r.ids {
                *counts.entry(id).or_default() += 1;
            }
        }
        counts
    }

    /// Waits (with a deadline) until `pred` holds for the requests received.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Received]) -> bool) -> bool {
        let wait = async {
            loop {
                let notified = self.inner.changed.notified();
                if pred(&self.received()) {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }
}

async fn ingest(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let json = if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        body.to_vec()
    };
    let ids = parse_ids(&json);
    let reply = {
        let next = inner.script.lock().unwrap().pop_front();
        next.or_else(|| inner.default.lock().unwrap().clone())
            .unwrap_or(Reply::Status(200))
    };
    let mut refusal = None;
    let mut partly = None;
    let (status, retry_after) = match reply {
        Reply::PartlyInvalid(accepted, duplicates, rejected) => {
            partly = Some(
                serde_json::json!({"error": "invalid_events", "message": "some events are invalid",
                "accepted": accepted, "duplicates": duplicates, "rejected_total": rejected, "rejected": []}),
            );
            (400, None)
        }
        Reply::Status(s) => (s, None),
        Reply::Refuse(code) => {
            refusal = Some(code);
            (401, None)
        }
        Reply::RetryAfter(s, after) => (s, Some(after)),
        Reply::TooLargeOver(max) if ids.len() > max => (413, None),
        Reply::TooLargeOver(_) => (200, None),
        Reply::Hang => {
            record(&inner, ids, &headers, body.len(), false);
            std::future::pending::<()>().await;
            unreachable!()
        }
    };
    record(
        &inner,
        ids,
        &headers,
        body.len(),
        (200..300).contains(&status),
    );
    let mut response = match (refusal, partly) {
        (Some(code), _) => (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"error": code})),
        )
            .into_response(),
        (None, Some(body)) => (StatusCode::BAD_REQUEST, axum::Json(body)).into_response(),
        (None, None) => StatusCode::from_u16(status).unwrap().into_response(),
    };
    if let Some(after) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", after.parse().unwrap());
    }
    response
}

fn record(inner: &Inner, ids: Vec<String>, headers: &HeaderMap, body_len: usize, accepted: bool) {
    inner.received.lock().unwrap().push(Received {
        ids,
        headers: headers.clone(),
        body_len,
        accepted,
    });
    inner.changed.notify_waiters();
}

/// The `event_id`s of a `{"events":[...]}` body.
pub fn parse_ids(body: &[u8]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Body {
        events: Vec<EventEnvelope>,
    }
    let body: Body = serde_json::from_slice(body).expect("body is {\"events\":[...]}");
    body.events.into_iter().map(|e| e.event_id).collect()
}

/// One body the dropping collector read: its ids, and whether it answered 200.
pub type SeenBodies = Arc<Mutex<Vec<(Vec<String>, bool)>>>;

/// A raw HTTP/1.1 collector that reads each request's body, records it, and closes the
/// connection without answering the first `drops` times; then it answers 200.
pub struct DroppingCollector {
    pub url: String,
    pub bodies: SeenBodies,
}

impl DroppingCollector {
    pub async fn start(drops: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let bodies: SeenBodies = Arc::default();
        let seen = Arc::clone(&bodies);
        tokio::spawn(async move {
            let mut left = drops;
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                // One request per connection is enough: the client reconnects after a drop.
                let Some(body) = read_request(&mut socket).await else {
                    continue;
                };
                let ids = parse_ids(&body);
                if left > 0 {
                    left -= 1;
                    seen.lock().unwrap().push((ids, false));
                    drop(socket);
                } else {
                    seen.lock().unwrap().push((ids, true));
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                }
            }
        });
        Self { url, bodies }
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())?;
    while buf.len() < header_end + len {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf[header_end..header_end + len].to_vec())
}

/// An HTTP sink toward `url` with fixed test headers and no auth.
pub fn http_sink(url: &str) -> Arc<HttpSink> {
    Arc::new(
        HttpSink::new(
            HttpSinkConfig::new(url, "tally-test", "tally-test/0.1.0"),
            HttpSink::no_auth(),
        )
        .unwrap(),
    )
}

/// `n` events with ids `{prefix}-000`, `{prefix}-001`, ...
pub fn events(prefix: &str, n: usize) -> Vec<EventEnvelope> {
    (0..n)
        .map(|i| EventEnvelope {
            event_type: "codex_turn_event".into(),
            event_params: serde_json::json!({ "turn_id": format!("turn-{i}"), "n": i }),
            event_id: format!("{prefix}-{i:03}"),
        })
        .collect()
}

/// The ids of `events`.
pub fn ids_of(events: &[EventEnvelope]) -> Vec<String> {
    events.iter().map(|e| e.event_id.clone()).collect()
}
