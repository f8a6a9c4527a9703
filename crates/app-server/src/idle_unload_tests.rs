use super::*;

const TIMEOUT: Duration = Duration::from_secs(30 * 60);

fn idle(id: &str) -> Observed {
    Observed {
        thread_id: id.to_string(),
        busy: false,
    }
}

fn busy(id: &str) -> Observed {
    Observed {
        thread_id: id.to_string(),
        busy: true,
    }
}

#[test]
fn a_thread_is_due_only_after_the_timeout_of_continuous_idleness() {
    let mut tracker = IdleTracker::default();
    let t0 = Instant::now();
    assert!(tracker.observe(t0, TIMEOUT, [idle("a")]).is_empty());
    let almost = t0 + TIMEOUT - Duration::from_secs(1);
    assert!(tracker.observe(almost, TIMEOUT, [idle("a")]).is_empty());
    assert_eq!(tracker.observe(t0 + TIMEOUT, TIMEOUT, [idle("a")]), ["a"]);
}

#[test]
fn activity_or_a_subscriber_restarts_the_idle_clock() {
    let mut tracker = IdleTracker::default();
    let t0 = Instant::now();
    tracker.observe(t0, TIMEOUT, [idle("a")]);
    let busy_at = t0 + TIMEOUT / 2;
    assert!(tracker.observe(busy_at, TIMEOUT, [busy("a")]).is_empty());
    let idle_again = busy_at + Duration::from_secs(1);
    assert!(tracker.observe(idle_again, TIMEOUT, [idle("a")]).is_empty());
    assert!(tracker
        .observe(t0 + TIMEOUT, TIMEOUT, [idle("a")])
        .is_empty());
    assert_eq!(
        tracker.observe(idle_again + TIMEOUT, TIMEOUT, [idle("a")]),
        ["a"]
    );
}

#[test]
fn a_busy_thread_is_never_due() {
    let mut tracker = IdleTracker::default();
    let t0 = Instant::now();
    for step in 0..4 {
        let now = t0 + TIMEOUT * step;
        assert!(tracker.observe(now, TIMEOUT, [busy("a")]).is_empty());
    }
}

#[test]
fn an_unloaded_thread_is_forgotten() {
    let mut tracker = IdleTracker::default();
    let t0 = Instant::now();
    tracker.observe(t0, TIMEOUT, [idle("a"), idle("b")]);
    tracker.observe(t0 + Duration::from_secs(1), TIMEOUT, [idle("b")]);
    assert!(!tracker.idle_since.contains_key("a"));
    // Loaded again later: its idle time starts over.
    let later = t0 + TIMEOUT * 2;
    assert!(tracker.observe(later, TIMEOUT, [idle("a")]).is_empty());
}

fn parts() -> (
    tempfile::TempDir,
    Arc<ThreadManager>,
    Arc<OutgoingMessageSender>,
) {
    let home = tempfile::tempdir().expect("tempdir");
    let config = Arc::new(tally_core::Config::load(home.path()).expect("config"));
    let outgoing = Arc::new(OutgoingMessageSender::new(Arc::default()));
    let sink = Arc::new(crate::thread_events::ThreadEventsToSubscribers(
        outgoing.clone(),
    ));
    let threads = Arc::new(ThreadManager::new(config, sink));
    (home, threads, outgoing)
}

#[tokio::test]
async fn the_sweeper_stops_when_cancelled() {
    let (_home, threads, outgoing) = parts();
    let stop = CancellationToken::new();
    let task = spawn(&threads, &outgoing, Duration::from_secs(1), stop.clone()).expect("spawned");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops at once")
        .expect("no panic");
}

#[tokio::test]
async fn the_sweeper_does_not_keep_the_server_alive() {
    let (_home, threads, outgoing) = parts();
    let weak = Arc::downgrade(&threads);
    let task = spawn(
        &threads,
        &outgoing,
        Duration::from_millis(40),
        CancellationToken::new(),
    )
    .expect("spawned");
    drop((threads, outgoing));
    assert!(
        weak.upgrade().is_none(),
        "the sweeper holds the server weakly"
    );
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("ends on its next tick once the server is gone")
        .expect("no panic");
}
