//! Crashes, kills, drops and restarts: what reached the spool is delivered, nothing is lost.

mod delivery_support;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use delivery_support::{events, http_sink, ids_of, DroppingCollector, FakeCollector, Reply};
use tally_analytics::delivery::{read_spool_stats, start, DeliveryConfig, FsyncPolicy};

const WAIT: Duration = Duration::from_secs(20);

fn config(spool: &Path) -> DeliveryConfig {
    DeliveryConfig {
        spool_dir: spool.to_path_buf(),
        max_batch_age: Duration::from_millis(50),
        fsync: FsyncPolicy::EveryBatch,
        attempt_timeout: Duration::from_secs(2),
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        shutdown_flush_deadline: Duration::from_millis(500),
        ..DeliveryConfig::default()
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn segment_files(spool: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(spool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

/// Runs `body` on a runtime of its own, then drops that runtime without any shutdown: every
/// task dies at its next await point, as with `kill -9` (minus the page cache, which fsync
/// covers). What `body` returns (the handle) is dropped only after the tasks are gone, the way a
/// dead process releases its files.
fn run_then_kill<F, T>(body: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = T>,
{
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let leftovers = rt.block_on(body());
        drop(rt);
        drop(leftovers);
    })
    .join()
    .unwrap();
}

/// Starts a pipeline on `spool` as soon as the previous owner has let go of it; panics if that
/// takes longer than `within`.
async fn start_when_free(
    cfg: DeliveryConfig,
    url: &str,
    within: Duration,
) -> tally_analytics::delivery::DeliveryHandle {
    let t0 = Instant::now();
    loop {
        match start(cfg.clone(), http_sink(url)) {
            Ok(handle) => return handle,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && t0.elapsed() < within => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("spool still held after {:?}: {e}", t0.elapsed()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_between_post_and_2xx_then_restart_loses_nothing() {
    // The collector stores the first body but the 2xx never reaches the client.
    let collector = FakeCollector::start([Reply::Hang], Reply::Status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let sent = events("kill", 250);

    let (url, spool1, batch) = (collector.url.clone(), spool.clone(), sent.clone());
    let collector = std::sync::Arc::new(collector);
    // The killer waits for this: the collector holds a body it has not answered.
    let (posted_tx, posted_rx) = std::sync::mpsc::channel::<()>();
    let seen = std::sync::Arc::clone(&collector);
    let watcher = tokio::spawn(async move {
        assert!(seen.wait_for(WAIT, |r| !r.is_empty()).await);
        let _ = posted_tx.send(());
    });
    tokio::task::spawn_blocking(move || {
        run_then_kill(move || async move {
            // A long attempt deadline: the hung POST must still be in flight at the kill.
            let mut cfg = config(&spool1);
            cfg.attempt_timeout = Duration::from_secs(60);
            let handle = start(cfg, http_sink(&url)).unwrap();
            for e in batch {
                handle.try_enqueue(e).unwrap();
            }
            assert!(handle.wait_until(WAIT, |s| s.spool.events == 250).await);
            tokio::task::spawn_blocking(move || posted_rx.recv_timeout(WAIT).unwrap())
                .await
                .unwrap();
            // No shutdown: the process dies here, with the handle still alive.
            handle
        })
    })
    .await
    .unwrap();
    watcher.await.unwrap();
    assert_eq!(collector.accepted_ids(), Vec::<String>::new());
    let first_posted = collector.received()[0].ids.clone();
    assert_eq!(first_posted.len(), 100);
    assert_eq!(read_spool_stats(&spool).unwrap().events, 250);

    // Restart: everything in the spool goes again, the first batch included.
    let handle = start(config(&spool), http_sink(&collector.url)).unwrap();
    assert!(
        handle
            .wait_until(WAIT, |s| s.sent_events == 250 && s.spool.batches == 0)
            .await
    );
    handle.shutdown().await;
    assert_eq!(sorted(collector.accepted_ids()), sorted(ids_of(&sent)));
    let counts = collector.seen_counts();
    for id in &ids_of(&sent) {
        let expected = if first_posted.contains(id) { 2 } else { 1 };
        assert_eq!(
            counts[id], expected,
            "{id}: the collector dedupes the repeat"
        );
    }
    assert_eq!(read_spool_stats(&spool).unwrap().batches, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_after_the_body_was_read_is_retried_and_nothing_is_lost() {
    let collector = DroppingCollector::start(2).await;
    let dir = tempfile::tempdir().unwrap();
    let handle = start(config(dir.path()), http_sink(&collector.url)).unwrap();
    let sent = events("reset", 40);
    for e in sent.clone() {
        handle.try_enqueue(e).unwrap();
    }
    assert!(
        handle
            .wait_until(WAIT, |s| s.sent_events == 40 && s.spool.batches == 0)
            .await
    );
    let stats = handle.stats();
    assert_eq!(stats.retried, 2);
    handle.shutdown().await;
    let bodies = collector.bodies.lock().unwrap().clone();
    let accepted: Vec<String> = bodies
        .iter()
        .filter(|b| b.1)
        .flat_map(|b| b.0.clone())
        .collect();
    assert_eq!(sorted(accepted), sorted(ids_of(&sent)));
    assert_eq!(
        bodies.iter().filter(|b| !b.1).count(),
        2,
        "seen, not acknowledged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_without_shutdown_then_restarting_delivers_each_event_once() {
    let collector = FakeCollector::start([], Reply::Status(503)).await;
    let dir = tempfile::tempdir().unwrap();
    let sent = events("drop", 120);
    let handle = start(config(dir.path()), http_sink(&collector.url)).unwrap();
    for e in sent.clone() {
        handle.try_enqueue(e).unwrap();
    }
    assert!(
        handle
            .wait_until(WAIT, |s| s.retried >= 1 && s.spool.events == 120)
            .await
    );
    drop(handle);
    // The dropped pipeline ends on its own by the flush deadline, releasing the spool.
    let cfg = config(dir.path());
    let handle =
        start_when_free(cfg.clone(), &collector.url, cfg.shutdown_flush_deadline * 4).await;
    assert!(collector.accepted_ids().is_empty());
    collector.set_default(Reply::Status(200));
    assert!(
        handle
            .wait_until(WAIT, |s| s.sent_events == 120 && s.spool.batches == 0)
            .await
    );
    handle.shutdown().await;
    let accepted = collector.accepted_ids();
    assert_eq!(accepted.len(), 120);
    assert_eq!(
        accepted.iter().collect::<HashSet<_>>().len(),
        120,
        "exactly once by event_id"
    );
    assert_eq!(sorted(accepted), sorted(ids_of(&sent)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_at_its_deadline_and_the_next_start_sends_the_rest() {
    let collector = FakeCollector::start([], Reply::Hang).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.attempt_timeout = Duration::from_secs(30);
    let handle = start(cfg.clone(), http_sink(&collector.url)).unwrap();
    let sent = events("late", 150);
    for e in sent.clone() {
        handle.try_enqueue(e).unwrap();
    }
    let t0 = Instant::now();
    handle.shutdown().await;
    let took = t0.elapsed();
    assert!(
        took >= cfg.shutdown_flush_deadline && took < cfg.shutdown_flush_deadline * 3,
        "{took:?}"
    );
    assert_eq!(read_spool_stats(dir.path()).unwrap().events, 150);

    collector.set_default(Reply::Status(200));
    let handle = start(cfg, http_sink(&collector.url)).unwrap();
    assert!(
        handle
            .wait_until(WAIT, |s| s.sent_events == 150 && s.spool.batches == 0)
            .await
    );
    handle.shutdown().await;
    assert_eq!(sorted(collector.accepted_ids()), sorted(ids_of(&sent)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_left_by_a_crash_is_truncated_and_the_rest_delivered() {
    let collector = FakeCollector::start([], Reply::Status(503)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_batch_events = 10;
    let handle = start(cfg.clone(), http_sink(&collector.url)).unwrap();
    let sent = events("torn", 30);
    for e in sent.clone() {
        handle.try_enqueue(e).unwrap();
    }
    handle.shutdown().await;
    assert_eq!(read_spool_stats(dir.path()).unwrap().events, 30);

    // A crash mid-append: half a record at the end of the newest segment.
    let seg = segment_files(dir.path()).pop().unwrap();
    let good_len = std::fs::metadata(&seg).unwrap().len();
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(b"0badc0de 10 [{\"event_type\":\"codex_tu")
        .unwrap();
    drop(f);
    assert_eq!(read_spool_stats(dir.path()).unwrap().corrupt_records, 1);

    collector.set_default(Reply::Status(200));
    let handle = start(cfg, http_sink(&collector.url)).unwrap();
    assert!(
        handle
            .wait_until(WAIT, |s| s.sent_events == 30 && s.spool.batches == 0)
            .await
    );
    let stats = handle.stats();
    assert_eq!(stats.dropped.corrupt_records, 1);
    handle.shutdown().await;
    assert!(!seg.exists() || std::fs::metadata(&seg).unwrap().len() <= good_len);
    assert_eq!(sorted(collector.accepted_ids()), sorted(ids_of(&sent)));
}
