//! A loopback stand-in for the analytics collector: records every POSTed batch (gunzipped),
//! answers with a scripted status sequence, and lets a test wait for events by count. Every
//! event is checked against the privacy contract ([`AnalyticsContract`]); reading what arrived
//! fails the test on any breach.

use crate::AnalyticsContract;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use std::collections::VecDeque;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Default)]
struct Shared {
    bodies: Vec<String>,
    events: Vec<Value>,
    statuses: VecDeque<u16>,
    breaches: Vec<String>,
}

/// A fake collector on 127.0.0.1; dropped, it stops.
pub struct FakeCollector {
    url: String,
    shared: Arc<Mutex<Shared>>,
    count: watch::Receiver<usize>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FakeCollector {
    /// Starts the collector; it answers 200 unless statuses are scripted.
    pub async fn start() -> Self {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (count_tx, count) = watch::channel(0usize);
        let state = (shared.clone(), Arc::new(count_tx));
        let app = Router::new()
            .route("/codex/analytics-events/events", post(ingest))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake collector");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            url: format!("http://{addr}"),
            shared,
            count,
            _stop: stop,
        }
    }

    /// The base URL to configure as `collector_url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Answers the next POSTs with these statuses, in order, then 200.
    pub fn script_statuses(&self, statuses: &[u16]) {
        if let Ok(mut s) = self.shared.lock() {
            s.statuses.extend(statuses.iter().copied());
        }
    }

    /// Every event received so far (including batches answered with an error).
    pub fn events(&self) -> Vec<Value> {
        self.read(|s| s.events.clone())
    }

    /// Every raw (decompressed) body received so far.
    pub fn bodies(&self) -> Vec<String> {
        self.read(|s| s.bodies.clone())
    }

    /// Reads what arrived; panics if any event broke the privacy contract.
    fn read<T: Default>(&self, f: impl FnOnce(&Shared) -> T) -> T {
        let Ok(s) = self.shared.lock() else {
            return T::default();
        };
        assert!(
            s.breaches.is_empty(),
            "events broke the analytics contract (ANALYTICS-EVENTS.md section 4):\n{}",
            s.breaches.join("\n")
        );
        f(&s)
    }

    /// Waits until at least `n` events arrived, or panics after `deadline` with what did arrive.
    pub async fn wait_for_events(&self, n: usize, deadline: Duration) -> Vec<Value> {
        let mut rx = self.count.clone();
        let waited = tokio::time::timeout(deadline, rx.wait_for(|c| *c >= n)).await;
        let events = self.events();
        assert!(
            waited.is_ok(),
            "expected {n} events within {deadline:?}, got {}: {events:#?}",
            events.len()
        );
        events
    }
}

type AppState = (Arc<Mutex<Shared>>, Arc<watch::Sender<usize>>);

async fn ingest(
    State((shared, count)): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let gzip = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let text = if gzip {
        let mut out = String::new();
        if flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut out)
            .is_err()
        {
            return StatusCode::BAD_REQUEST;
        }
        out
    } else {
        String::from_utf8_lossy(&body).into_owned()
    };
    let Ok(value) = serde_json::from_str::<Value>(&text) else {
        return StatusCode::BAD_REQUEST;
    };
    let Ok(mut s) = shared.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    s.bodies.push(text);
    if let Some(events) = value["events"].as_array() {
        let contract = AnalyticsContract::get();
        let breaches: Vec<String> = events.iter().flat_map(|e| contract.check(e)).collect();
        s.breaches.extend(breaches);
    }
    let status = s.statuses.pop_front().unwrap_or(200);
    if status == 200 {
        if let Some(events) = value["events"].as_array() {
            s.events.extend(events.iter().cloned());
        }
        count.send_replace(s.events.len());
    }
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}

/// The `event_type` of each event, in order.
pub fn event_types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect()
}
