//! The whole pipeline against a scripted sink, on paused time: no network, no real waiting.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::delivery::{
    start, DeliveryConfig, DeliveryStats, Dropped, ErrorClass, EventEnvelope, EventSink,
    FsyncPolicy, SinkResult,
};

/// What the scripted sink does on one call.
#[derive(Clone, Copy)]
enum Step {
    Answer(SinkResult),
    /// Never answers: the sender's attempt deadline must fire.
    Hang,
}

/// A sink that plays a script, then answers `Ok`, and records every call.
#[derive(Default)]
struct ScriptedSink {
    script: Mutex<VecDeque<Step>>,
    /// Rule applied after the script: answer `TooLarge` to batches bigger than this.
    max_events: Option<usize>,
    always: Option<Step>,
    calls: Mutex<Vec<(Instant, Vec<String>, &'static str)>>,
}

impl ScriptedSink {
    fn with_script(steps: impl IntoIterator<Item = Step>) -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(steps.into_iter().collect()),
            ..Self::default()
        })
    }

    fn always(step: Step) -> Arc<Self> {
        Arc::new(Self {
            always: Some(step),
            ..Self::default()
        })
    }

    fn always_ok() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn calls(&self) -> Vec<(Instant, Vec<String>, &'static str)> {
        self.calls.lock().unwrap().clone()
    }

    /// Ids of the batches that were answered `Ok`, in order.
    fn accepted(&self) -> Vec<Vec<String>> {
        self.calls()
            .into_iter()
            .filter(|c| c.2 == "ok")
            .map(|c| c.1)
            .collect()
    }
}

#[async_trait]
impl EventSink for ScriptedSink {
    async fn send(&self, batch: &[EventEnvelope]) -> SinkResult {
        let step = self.script.lock().unwrap().pop_front();
        let step = match (step.or(self.always), self.max_events) {
            (Some(step), _) => step,
            (None, Some(max)) if batch.len() > max => Step::Answer(SinkResult::TooLarge),
            (None, _) => Step::Answer(SinkResult::Ok),
        };
        let ids = batch.iter().map(|e| e.event_id.clone()).collect();
        let label = match step {
            Step::Answer(SinkResult::Ok) => "ok",
            Step::Answer(_) => "failed",
            Step::Hang => "hang",
        };
        self.calls
            .lock()
            .unwrap()
            .push((Instant::now(), ids, label));
        match step {
            Step::Answer(r) => r,
            Step::Hang => std::future::pending().await,
        }
    }
}

fn event(id: &str) -> EventEnvelope {
    EventEnvelope {
        event_type: "codex_turn_event".into(),
        event_params: serde_json::json!({ "turn_id": id }),
        event_id: id.into(),
    }
}

fn config(dir: &std::path::Path) -> DeliveryConfig {
    DeliveryConfig {
        spool_dir: dir.to_path_buf(),
        max_batch_events: 10,
        max_batch_age: Duration::from_millis(100),
        fsync: FsyncPolicy::Never,
        attempt_timeout: Duration::from_secs(10),
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(5),
        ..DeliveryConfig::default()
    }
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("e{i:03}")).collect()
}

const LONG: Duration = Duration::from_secs(3600);

/// `n` events acknowledged and the spool empty (the ack follows the 2xx).
fn sent(n: u64) -> impl FnMut(&DeliveryStats) -> bool {
    move |s| s.sent_events >= n && s.spool.batches == 0
}

#[tokio::test(start_paused = true)]
async fn server_error_then_429_then_timeout_then_success_delivers_once() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ScriptedSink::with_script([
        Step::Answer(SinkResult::Retryable {
            retry_after: None,
            class: ErrorClass::Http { status: 500 },
        }),
        Step::Answer(SinkResult::Retryable {
            retry_after: Some(Duration::from_secs(30)),
            class: ErrorClass::Http { status: 429 },
        }),
        Step::Hang,
    ]);
    let handle = start(config(dir.path()), sink.clone()).unwrap();
    for id in ids(0..5) {
        handle.try_enqueue(event(&id)).unwrap();
    }
    assert!(handle.wait_until(LONG, sent(5)).await);
    let stats = handle.stats();
    assert_eq!(stats.retried, 3);
    assert_eq!(stats.sent_batches, 1);
    assert_eq!(stats.last_error, Some(ErrorClass::Timeout));
    assert_eq!(stats.spool.batches, 0);

    let calls = sink.calls();
    assert_eq!(calls.len(), 4);
    assert!(
        calls.iter().all(|c| c.1 == ids(0..5)),
        "same batch each time"
    );
    // Retry-After was honoured, and the hung attempt was cut at its deadline.
    assert!(calls[2].0 - calls[1].0 >= Duration::from_secs(30));
    assert!(calls[3].0 - calls[2].0 >= Duration::from_secs(10));
    assert_eq!(sink.accepted(), vec![ids(0..5)]);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn too_large_splits_in_halves_and_a_lone_oversized_event_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(ScriptedSink {
        max_events: Some(2),
        ..ScriptedSink::default()
    });
    let handle = start(config(dir.path()), sink.clone()).unwrap();
    for id in ids(0..7) {
        handle.try_enqueue(event(&id)).unwrap();
    }
    assert!(handle.wait_until(LONG, sent(7)).await);
    let accepted: Vec<String> = sink.accepted().into_iter().flatten().collect();
    assert_eq!(accepted, ids(0..7), "every event once, in order");
    assert!(sink.accepted().iter().all(|b| b.len() <= 2));
    assert_eq!(handle.stats().split, 3); // 7 → 3+4 → (1+2)+(2+2)
    handle.shutdown().await;

    let dir = tempfile::tempdir().unwrap();
    let sink = ScriptedSink::always(Step::Answer(SinkResult::TooLarge));
    let handle = start(config(dir.path()), sink.clone()).unwrap();
    handle.try_enqueue(event("big")).unwrap();
    // Dropped and counted, and gone from the spool.
    assert!(
        handle
            .wait_until(LONG, |s| s.dropped.too_large == 1 && s.spool.batches == 0)
            .await
    );
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn rejected_batches_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ScriptedSink::with_script([Step::Answer(SinkResult::Rejected(400))]);
    let handle = start(config(dir.path()), sink.clone()).unwrap();
    for id in ids(0..3) {
        handle.try_enqueue(event(&id)).unwrap();
    }
    assert!(handle.wait_until(LONG, |s| s.dropped.rejected == 3).await);
    handle.try_enqueue(event("after")).unwrap();
    assert!(handle.wait_until(LONG, sent(1)).await);
    let stats = handle.stats();
    assert_eq!(stats.retried, 0);
    assert_eq!(stats.dropped.total(), 3);
    assert_eq!(stats.last_error, Some(ErrorClass::Http { status: 400 }));
    assert_eq!(sink.accepted(), vec![vec!["after".to_string()]]);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn auth_errors_keep_the_batch_and_raise_the_flag_until_credentials_work() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ScriptedSink::with_script([
        Step::Answer(SinkResult::Auth(401)),
        Step::Answer(SinkResult::Auth(403)),
    ]);
    let handle = start(config(dir.path()), sink.clone()).unwrap();
    handle.try_enqueue(event("a")).unwrap();
    assert!(handle.wait_until(LONG, |s| s.auth_error).await);
    assert_eq!(handle.stats().spool.batches, 1, "kept in the spool");
    assert!(handle.wait_until(LONG, sent(1)).await);
    let stats = handle.stats();
    assert!(!stats.auth_error);
    assert_eq!(stats.retried, 2);
    assert_eq!(stats.dropped.total(), 0);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn batches_are_cut_by_count_and_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ScriptedSink::with_script([]);
    let mut cfg = config(dir.path());
    cfg.max_batch_age = Duration::from_secs(2);
    let handle = start(cfg, sink.clone()).unwrap();
    let t0 = Instant::now();
    for id in ids(0..23) {
        handle.try_enqueue(event(&id)).unwrap();
    }
    assert!(handle.wait_until(LONG, sent(23)).await);
    let calls = sink.calls();
    let sizes: Vec<usize> = calls.iter().map(|c| c.1.len()).collect();
    assert_eq!(sizes, [10, 10, 3]);
    // Full batches go at once; the remainder waits for its age.
    assert!(calls[1].0 - t0 < Duration::from_secs(1));
    assert!(calls[2].0 - t0 >= Duration::from_secs(2));
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_drops_and_counts_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.queue_capacity = 4;
    let handle = start(cfg, ScriptedSink::with_script([])).unwrap();
    // The intake task cannot run while this loop holds the (single) thread.
    let results: Vec<_> = ids(0..10)
        .iter()
        .map(|id| handle.try_enqueue(event(id)))
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 4);
    assert!(results[4..].iter().all(|r| *r == Err(Dropped::QueueFull)));
    let stats = handle.stats();
    assert_eq!(stats.queue_depth, 4);
    assert_eq!(stats.dropped.queue_full, 6);
    assert!(handle.wait_until(LONG, sent(4)).await);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_at_the_deadline_leaves_the_rest_spooled_and_a_restart_sends_it_first() {
    let dir = tempfile::tempdir().unwrap();
    let handle = start(config(dir.path()), ScriptedSink::always(Step::Hang)).unwrap();
    for id in ids(0..15) {
        handle.try_enqueue(event(&id)).unwrap();
    }
    let t0 = Instant::now();
    handle.shutdown().await;
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        0
    );
    let left = crate::delivery::read_spool_stats(dir.path()).unwrap();
    assert_eq!((left.batches, left.events), (2, 15));

    let sink = ScriptedSink::with_script([]);
    let handle = start(config(dir.path()), sink.clone()).unwrap();
    handle.try_enqueue(event("new")).unwrap();
    assert!(handle.wait_until(LONG, sent(16)).await);
    let order: Vec<String> = sink.accepted().into_iter().flatten().collect();
    let mut expected = ids(0..15);
    expected.push("new".into());
    assert_eq!(order, expected, "leftovers first, each once");
    handle.shutdown().await;
    assert_eq!(
        crate::delivery::read_spool_stats(dir.path())
            .unwrap()
            .batches,
        0
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_with_a_healthy_sink_flushes_the_open_batch_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ScriptedSink::with_script([]);
    let mut cfg = config(dir.path());
    cfg.max_batch_age = Duration::from_secs(60);
    let handle = start(cfg, sink.clone()).unwrap();
    handle.try_enqueue(event("a")).unwrap();
    let t0 = Instant::now();
    handle.shutdown().await;
    assert!(t0.elapsed() < Duration::from_millis(100));
    assert_eq!(sink.accepted(), vec![vec!["a".to_string()]]);
    assert_eq!(
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        0
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_spools_the_queue_and_every_task_ends_by_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let handle = start(config(dir.path()), ScriptedSink::always(Step::Hang)).unwrap();
    for id in ids(0..3) {
        handle.try_enqueue(event(&id)).unwrap();
    }
    drop(handle);
    // Virtual time: jump past the flush deadline and let the tasks notice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        0
    );
    let left = crate::delivery::read_spool_stats(dir.path()).unwrap();
    assert_eq!(left.events, 3);
}

/// A pipeline whose collector is down and whose spool (room for about three one-event records)
/// has been offered ten events: some are spooled, the rest refused.
async fn with_a_full_spool(
    dir: &std::path::Path,
) -> (DeliveryConfig, crate::delivery::DeliveryHandle) {
    let mut cfg = config(dir);
    cfg.max_batch_events = 1;
    cfg.spool_max_bytes = 3 * 150;
    let sink = ScriptedSink::always(Step::Answer(SinkResult::Retryable {
        retry_after: None,
        class: ErrorClass::Http { status: 503 },
    }));
    let handle = start(cfg.clone(), sink).unwrap();
    for id in ids(0..10) {
        handle.try_enqueue(event(&id)).unwrap();
    }
    assert!(
        handle
            .wait_until(LONG, |s| s.spool.batches + s.dropped.spool_full == 10)
            .await
    );
    (cfg, handle)
}

#[tokio::test(start_paused = true)]
async fn the_spool_cap_refuses_new_batches_and_counts_their_events() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, handle) = with_a_full_spool(dir.path()).await;
    let stats = handle.stats();
    assert!(stats.dropped.spool_full > 0);
    assert!(stats.spool.bytes <= cfg.spool_max_bytes);
    let kept = stats.spool.batches;
    handle.shutdown().await;

    // The oldest were kept: a healthy restart delivers exactly them.
    let sink = ScriptedSink::with_script([]);
    let handle = start(cfg, sink.clone()).unwrap();
    assert!(handle.wait_until(LONG, sent(kept)).await);
    let delivered: Vec<String> = sink.accepted().into_iter().flatten().collect();
    assert_eq!(delivered, ids(0..kept as usize));
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_full_spool_refuses_events_but_keeps_drop_reports() {
    let dir = tempfile::tempdir().unwrap();
    let (_, handle) = with_a_full_spool(dir.path()).await;
    let full = handle.stats();
    handle.try_enqueue(event("ordinary")).unwrap();
    handle.try_enqueue_report(event("report")).unwrap();
    assert!(
        handle
            .wait_until(LONG, |s| s.spool.batches == full.spool.batches + 1)
            .await,
        "the report was spooled"
    );
    assert_eq!(
        handle.stats().dropped.spool_full,
        full.dropped.spool_full + 1
    );
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn enqueue_after_the_pipeline_stopped_is_a_counted_drop() {
    // `try_enqueue` on a live handle whose tasks are gone: the queue is closed.
    let dir = tempfile::tempdir().unwrap();
    let mut handle = start(config(dir.path()), ScriptedSink::with_script([])).unwrap();
    for task in std::mem::take(&mut handle.tasks) {
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
    }
    assert_eq!(handle.try_enqueue(event("x")), Err(Dropped::Closed));
    assert_eq!(handle.stats().dropped.closed, 1);
}

#[test]
fn start_outside_a_runtime_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let err = start(config(dir.path()), ScriptedSink::with_script([])).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Other);
}

#[test]
fn an_unset_spool_dir_is_refused() {
    let err = DeliveryConfig::default().validate().unwrap_err();
    assert!(err.to_string().contains("spool_dir"));
}

#[tokio::test(start_paused = true)]
async fn an_event_enqueued_alone_is_posted_alone_between_its_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ScriptedSink::always_ok();
    let handle = start(config(dir.path()), sink.clone()).unwrap();
    handle.try_enqueue(event("before-1")).unwrap();
    handle.try_enqueue(event("before-2")).unwrap();
    handle.try_enqueue_alone(event("alone")).unwrap();
    handle.try_enqueue(event("after")).unwrap();
    assert!(handle.wait_until(LONG, sent(4)).await);
    assert_eq!(
        sink.accepted(),
        vec![
            vec!["before-1".to_string(), "before-2".to_string()],
            vec!["alone".to_string()],
            vec!["after".to_string()],
        ]
    );
    handle.shutdown().await;
}
