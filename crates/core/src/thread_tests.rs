use crate::event_sink::{RequestResolution, ThreadEventSink};
use crate::thread_manager::{ClientIdentity, ThreadManager};
use crate::Config;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tally_protocol::types::{ThreadStartParams, TurnStartParams, UserInput};
use tally_protocol::{ServerNotification, ServerRequest};
use tokio::sync::{mpsc, Notify};

/// Records turn starts and ends in order; holds the first turn's end (where a slow hook or a
/// slow client would) until released.
struct HeldEnd {
    order: Mutex<Vec<(&'static str, String)>>,
    ending: mpsc::UnboundedSender<()>,
    release: Notify,
    held: Mutex<bool>,
}

#[async_trait::async_trait]
impl ThreadEventSink for HeldEnd {
    async fn notify(&self, _: &str, n: ServerNotification) {
        let entry = match n {
            ServerNotification::TurnStarted(t) => ("started", t.turn.id),
            ServerNotification::TurnCompleted(t) => ("completed", t.turn.id),
            _ => return,
        };
        self.order.lock().expect("order").push(entry);
    }
    async fn request(&self, _: &str, _: ServerRequest) -> RequestResolution {
        RequestResolution::Cancelled
    }
    async fn resolve_turn_requests(&self, _: &str, _: &str) {
        let first = !std::mem::replace(&mut *self.held.lock().expect("held"), true);
        if first {
            let released = self.release.notified();
            let _ = self.ending.send(());
            released.await;
        }
    }
}

fn text_turn(thread_id: &str, text: &str) -> TurnStartParams {
    TurnStartParams {
        thread_id: thread_id.to_string(),
        input: vec![UserInput::text(text)],
        ..TurnStartParams::default()
    }
}

/// A thread on the offline model whose first turn has ended but is held in its end (its
/// `turn/completed` not yet sent) until `sink.release` is notified.
struct HeldTurn {
    home: tempfile::TempDir,
    threads: Arc<ThreadManager>,
    sink: Arc<HeldEnd>,
    thread_id: String,
    first: crate::thread_manager::StartedTurn,
}

async fn first_turn_held_at_its_end() -> HeldTurn {
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        home.path().join("config.toml"),
        "model_provider = \"tally-offline\"\n",
    )
    .expect("config");
    let config = Config::load(home.path()).expect("config loads");
    let (ending_tx, mut ending) = mpsc::unbounded_channel();
    let sink = Arc::new(HeldEnd {
        order: Mutex::new(Vec::new()),
        ending: ending_tx,
        release: Notify::new(),
        held: Mutex::new(false),
    });
    let threads = Arc::new(ThreadManager::new(Arc::new(config), sink.clone()));
    let thread_id = threads
        .start_thread(ThreadStartParams::default(), &ClientIdentity::default())
        .expect("thread starts")
        .thread
        .id;
    let mut first = threads
        .start_turn(text_turn(&thread_id, "hello"))
        .await
        .expect("first turn");
    let _ = first.gate.take().expect("a new turn").send(());
    tokio::time::timeout(Duration::from_secs(10), ending.recv())
        .await
        .expect("the first turn reaches its end");
    HeldTurn {
        home,
        threads,
        sink,
        thread_id,
        first,
    }
}

/// A turn/start that arrives as a turn completes normally (its end still being written) starts
/// the next turn only after the first one's `turn/completed`: clients see one turn at a time.
#[tokio::test]
async fn a_turn_started_as_the_last_one_ends_comes_after_its_turn_completed() {
    let ended = first_turn_held_at_its_end().await;
    let (_home, threads, sink, thread_id, first) = (
        ended.home,
        ended.threads,
        ended.sink,
        ended.thread_id,
        ended.first,
    );

    let next = tokio::spawn({
        let threads = threads.clone();
        let params = text_turn(&thread_id, "again");
        async move { threads.start_turn(params).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !next.is_finished(),
        "the next turn must wait while the first one ends"
    );
    sink.release.notify_one();
    let second = tokio::time::timeout(Duration::from_secs(10), next)
        .await
        .expect("the next turn starts once the first has ended")
        .expect("task")
        .expect("second turn");
    assert_ne!(second.turn.id, first.turn.id, "a new turn");
    let _ = second.gate.expect("a new turn").send(());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sink.order.lock().expect("order").len() < 4 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let order = sink.order.lock().expect("order").clone();
    assert_eq!(
        order,
        vec![
            ("started", first.turn.id.clone()),
            ("completed", first.turn.id),
            ("started", second.turn.id.clone()),
            ("completed", second.turn.id),
        ]
    );
}

/// Two requests that wait for the same ending turn cannot both start one: the second joins the
/// turn the first started (it replaced it, and the first turn was cut off, before).
#[tokio::test]
async fn two_turn_starts_waiting_on_an_ending_turn_start_one_turn() {
    let held = first_turn_held_at_its_end().await;
    let start = |text: &'static str| {
        let threads = held.threads.clone();
        let params = text_turn(&held.thread_id, text);
        tokio::spawn(async move { threads.start_turn(params).await })
    };
    let (a, b) = (start("one"), start("two"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    held.sink.release.notify_one();
    let (a, b) = (
        a.await.expect("task").expect("a starts or joins"),
        b.await.expect("task").expect("b starts or joins"),
    );
    assert_eq!(a.turn.id, b.turn.id, "one turn, the other input joined it");
    assert_ne!(a.turn.id, held.first.turn.id);
    let opened = [a.gate, b.gate].into_iter().flatten().count();
    assert_eq!(opened, 1, "exactly one of them started a turn");
}
