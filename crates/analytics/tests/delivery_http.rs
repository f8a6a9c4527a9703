//! Delivery over real HTTP to a loopback fake collector: batching, retries, splits, drops, headers.

mod delivery_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use delivery_support::{events, http_sink, ids_of, FakeCollector, Reply};
use reqwest::header::{HeaderName, HeaderValue};
use tally_analytics::delivery::{
    start, DeliveryConfig, ErrorClass, EventSink, FsyncPolicy, HttpSink, HttpSinkConfig, SinkResult,
};

const WAIT: Duration = Duration::from_secs(20);

fn config(dir: &std::path::Path) -> DeliveryConfig {
    DeliveryConfig {
        spool_dir: dir.join("analytics").join("spool"),
        max_batch_age: Duration::from_millis(50),
        fsync: FsyncPolicy::EveryBatch,
        // Long enough that loopback never times out by accident; the retry test shortens it.
        attempt_timeout: Duration::from_secs(2),
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        ..DeliveryConfig::default()
    }
}

fn assert_exactly_once(accepted: &[String], expected: &[String]) {
    let mut got = accepted.to_vec();
    got.sort();
    let mut want = expected.to_vec();
    want.sort();
    assert_eq!(got, want, "every event accepted exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_500_then_429_then_timeout_then_200_gets_every_event_once() {
    let collector = FakeCollector::start(
        [Reply::Status(500), Reply::RetryAfter(429, "1"), Reply::Hang],
        Reply::Status(200),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.attempt_timeout = Duration::from_secs(1);
    let handle = start(cfg, http_sink(&collector.url)).unwrap();
    let sent = events("retry", 30);
    let t0 = Instant::now();
    for e in sent.clone() {
        handle.try_enqueue(e).unwrap();
    }
    assert!(
        handle
            .wait_until(WAIT, |s| s.sent_events == 30 && s.spool.batches == 0)
            .await
    );
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    let stats = handle.stats();
    assert_eq!(stats.retried, 3);
    assert_eq!(stats.dropped.total(), 0);
    assert_eq!(stats.last_error, Some(ErrorClass::Timeout));
    assert_exactly_once(&collector.accepted_ids(), &ids_of(&sent));
    assert_eq!(collector.received().len(), 4);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_too_large_splits_until_the_collector_accepts() {
    let collector = FakeCollector::start([], Reply::TooLargeOver(12)).await;
    let dir = tempfile::tempdir().unwrap();
    let handle = start(config(dir.path()), http_sink(&collector.url)).unwrap();
    let sent = events("split", 100);
    for e in sent.clone() {
        handle.try_enqueue(e).unwrap();
    }
    assert!(
        handle
            .wait_until(WAIT, |s| s.sent_events == 100 && s.spool.batches == 0)
            .await
    );
    assert_eq!(
        collector.accepted_ids(),
        ids_of(&sent),
        "all, once, in order"
    );
    assert!(handle.stats().split >= 3);
    assert!(collector
        .received()
        .iter()
        .filter(|r| r.accepted)
        .all(|r| r.ids.len() <= 12));
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_request_drops_the_batch_and_counts_it() {
    let collector = FakeCollector::start([Reply::Status(400)], Reply::Status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let handle = start(config(dir.path()), http_sink(&collector.url)).unwrap();
    for e in events("bad", 5) {
        handle.try_enqueue(e).unwrap();
    }
    assert!(
        handle
            .wait_until(WAIT, |s| s.dropped.rejected == 5 && s.spool.batches == 0)
            .await
    );
    let stats = handle.stats();
    assert_eq!(stats.retried, 0);
    assert_eq!(stats.last_error, Some(ErrorClass::Http { status: 400 }));
    assert_eq!(collector.received().len(), 1);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_invalid_batch_counts_only_the_refused_events_as_dropped() {
    let collector = FakeCollector::start([Reply::PartlyInvalid(3, 1, 1)], Reply::Status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let handle = start(config(dir.path()), http_sink(&collector.url)).unwrap();
    for e in events("partly", 5) {
        handle.try_enqueue(e).unwrap();
    }
    assert!(
        handle
            .wait_until(WAIT, |s| s.dropped.rejected == 1 && s.spool.batches == 0)
            .await
    );
    let stats = handle.stats();
    assert_eq!(
        stats.sent_events, 4,
        "stored by the collector, or already there"
    );
    assert_eq!(stats.retried, 0);
    assert_eq!(collector.received().len(), 1);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_keeps_the_batch_and_flags_an_auth_error() {
    let collector = FakeCollector::start([], Reply::Status(401)).await;
    let dir = tempfile::tempdir().unwrap();
    let handle = start(config(dir.path()), http_sink(&collector.url)).unwrap();
    for e in events("auth", 3) {
        handle.try_enqueue(e).unwrap();
    }
    assert!(handle.wait_until(WAIT, |s| s.auth_error).await);
    assert_eq!(handle.stats().spool.events, 3);
    collector.set_default(Reply::Status(200));
    assert!(
        handle
            .wait_until(WAIT, |s| s.sent_events == 3 && !s.auth_error)
            .await
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_cut_by_count_bytes_and_age() {
    // Count: 250 events at 100 per batch.
    let collector = FakeCollector::start([], Reply::Status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_batch_age = Duration::from_secs(30);
    let handle = start(cfg, http_sink(&collector.url)).unwrap();
    for e in events("count", 250) {
        handle.try_enqueue(e).unwrap();
    }
    // The last 50 would wait 30 s for their age; shutdown flushes them.
    assert!(handle.wait_until(WAIT, |s| s.sent_events == 200).await);
    handle.shutdown().await;
    let sizes: Vec<usize> = collector.received().iter().map(|r| r.ids.len()).collect();
    assert_eq!(sizes, [100, 100, 50]);

    // Bytes: a 2 KiB body limit.
    let collector = FakeCollector::start([], Reply::Status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_batch_bytes = 2048;
    let handle = start(cfg, http_sink(&collector.url)).unwrap();
    let sent = events("bytes", 60);
    for e in sent.clone() {
        handle.try_enqueue(e).unwrap();
    }
    assert!(handle.wait_until(WAIT, |s| s.sent_events == 60).await);
    let received = collector.received();
    assert!(received.len() > 1);
    assert!(received.iter().all(|r| r.body_len <= 2048));
    // Full batches come close to the limit: nothing is cut early.
    assert!(received[0].body_len > 2048 - 200);
    assert_eq!(collector.accepted_ids(), ids_of(&sent));
    handle.shutdown().await;

    // Age: three events, far below every limit, go together after max_batch_age.
    let collector = FakeCollector::start([], Reply::Status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_batch_age = Duration::from_millis(300);
    let handle = start(cfg, http_sink(&collector.url)).unwrap();
    let t0 = Instant::now();
    for e in events("age", 3) {
        handle.try_enqueue(e).unwrap();
    }
    assert!(handle.wait_until(WAIT, |s| s.sent_events == 3).await);
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert_eq!(collector.received().len(), 1);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sink_sends_gzip_and_the_headers_codex_sends() {
    let collector = FakeCollector::start([], Reply::Status(200)).await;
    let mut cfg = HttpSinkConfig::new(
        // Trailing slashes are trimmed.
        format!("{}/", collector.url),
        "codex_vscode",
        "codex_vscode/0.169.0 (Debian 12; x86_64)",
    );
    cfg.gzip = true;
    let auth = Arc::new(|| {
        vec![
            (
                HeaderName::from_static("authorization"),
                HeaderValue::from_static("Bearer secret-token"),
            ),
            (
                HeaderName::from_static("chatgpt-account-id"),
                HeaderValue::from_static("account-123"),
            ),
        ]
    });
    let sink = HttpSink::new(cfg, auth).unwrap();
    assert!(!format!("{sink:?}").contains("secret"));
    let batch = events("gz", 3);
    assert_eq!(sink.send(&batch).await, SinkResult::Ok);
    let r = &collector.received()[0];
    assert_eq!(r.ids, ids_of(&batch));
    assert_eq!(r.headers["content-encoding"], "gzip");
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["originator"], "codex_vscode");
    assert_eq!(
        r.headers["user-agent"],
        "codex_vscode/0.169.0 (Debian 12; x86_64)"
    );
    assert_eq!(r.headers["authorization"], "Bearer secret-token");
    assert_eq!(r.headers["chatgpt-account-id"], "account-123");

    // Plain JSON by default (what a Codex backend expects), and no auth when none is given.
    let plain = http_sink(&collector.url);
    assert_eq!(plain.send(&batch).await, SinkResult::Ok);
    let r = &collector.received()[1];
    assert!(r.headers.get("content-encoding").is_none());
    assert!(r.headers.get("authorization").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sink_maps_statuses_and_network_errors() {
    let collector = FakeCollector::start(
        [
            Reply::RetryAfter(503, "7"),
            Reply::Status(413),
            Reply::Status(403),
            Reply::Status(404),
            Reply::Status(408),
        ],
        Reply::Status(204),
    )
    .await;
    let sink = http_sink(&collector.url);
    let batch = events("map", 1);
    assert_eq!(
        sink.send(&batch).await,
        SinkResult::Retryable {
            retry_after: Some(Duration::from_secs(7)),
            class: ErrorClass::Http { status: 503 }
        }
    );
    assert_eq!(sink.send(&batch).await, SinkResult::TooLarge);
    assert_eq!(sink.send(&batch).await, SinkResult::Auth(403));
    assert_eq!(sink.send(&batch).await, SinkResult::Rejected(404));
    assert!(matches!(
        sink.send(&batch).await,
        SinkResult::Retryable { .. }
    ));
    assert_eq!(sink.send(&batch).await, SinkResult::Ok);

    // Nothing listens on a port we just released.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    assert_eq!(
        http_sink(&url).send(&batch).await,
        SinkResult::Retryable {
            retry_after: None,
            class: ErrorClass::Network
        }
    );
}

/// Counts recoveries; says the identity was renewed when `renews`.
struct Recovery {
    renews: bool,
    seen: std::sync::Mutex<Vec<(String, String)>>,
}

#[async_trait::async_trait]
impl tally_analytics::delivery::AssertionRecovery for Recovery {
    async fn recover(&self, authorization: &HeaderValue, refusal: &[u8]) -> bool {
        self.seen.lock().unwrap().push((
            authorization.to_str().unwrap_or_default().to_owned(),
            String::from_utf8_lossy(refusal).into_owned(),
        ));
        self.renews
    }
}

/// A sink whose Authorization is `{scheme} v1`, then `v2` after the first request.
fn signed_sink(url: &str, scheme: &'static str, renews: bool) -> (HttpSink, Arc<Recovery>) {
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let auth = Arc::new(move || {
        let v = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        vec![(
            HeaderName::from_static("authorization"),
            HeaderValue::from_str(&format!("{scheme} v{}", v.min(2))).unwrap(),
        )]
    });
    let recovery = Arc::new(Recovery {
        renews,
        seen: Default::default(),
    });
    let sink = HttpSink::new(HttpSinkConfig::new(url, "tally", "tally/0"), auth)
        .unwrap()
        .with_assertion_recovery(recovery.clone());
    (sink, recovery)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_assertion_is_renewed_and_the_batch_posted_once_more() {
    let collector =
        FakeCollector::start([Reply::Refuse("agent_runtime_revoked")], Reply::Status(200)).await;
    let (sink, recovery) = signed_sink(&collector.url, "AgentAssertion", true);
    let batch = events("renew", 2);
    assert_eq!(sink.send(&batch).await, SinkResult::Ok);
    let received = collector.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].headers["authorization"], "AgentAssertion v1");
    assert_eq!(received[1].headers["authorization"], "AgentAssertion v2");
    assert_eq!(collector.accepted_ids(), ids_of(&batch));
    let seen = recovery.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "AgentAssertion v1");
    assert!(seen[0].1.contains("agent_runtime_revoked"), "{}", seen[0].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_keeps_refusing_gets_one_more_post_and_the_batch_is_kept() {
    let collector = FakeCollector::start([], Reply::Refuse("agent_runtime_revoked")).await;
    let (sink, recovery) = signed_sink(&collector.url, "AgentAssertion", true);
    let batch = events("loop", 1);
    assert_eq!(sink.send(&batch).await, SinkResult::Auth(401));
    assert_eq!(collector.received().len(), 2, "one more post, no loop");
    assert_eq!(recovery.seen.lock().unwrap().len(), 1);

    // Not renewed: no second post. A bearer refusal never asks for a recovery.
    let collector = FakeCollector::start([], Reply::Refuse("agent_runtime_revoked")).await;
    let (sink, recovery) = signed_sink(&collector.url, "AgentAssertion", false);
    assert_eq!(sink.send(&batch).await, SinkResult::Auth(401));
    assert_eq!(collector.received().len(), 1);
    assert_eq!(recovery.seen.lock().unwrap().len(), 1);
    let collector = FakeCollector::start([], Reply::Refuse("unauthorized")).await;
    let (sink, recovery) = signed_sink(&collector.url, "Bearer", true);
    assert_eq!(sink.send(&batch).await, SinkResult::Auth(401));
    assert_eq!(collector.received().len(), 1);
    assert!(recovery.seen.lock().unwrap().is_empty());
}
