use super::*;
use futures::FutureExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::oneshot;

fn key(thread: &str) -> QueueKey {
    (ConnectionId(1), thread.to_owned())
}

#[tokio::test]
async fn new_threads_need_an_in_flight_permit_and_return_it_when_their_queue_empties() {
    let queues = ThreadQueues::new(8);
    let inflight = Arc::new(Semaphore::new(2));
    let (release, released) = oneshot::channel::<()>();
    let ran = Arc::new(AtomicUsize::new(0));
    let first = queues.enqueue(
        key("a"),
        async move {
            let _ = released.await;
        }
        .boxed(),
        &inflight,
    );
    let second = queues.enqueue(key("b"), std::future::pending().boxed(), &inflight);
    assert!(first.is_ok() && second.is_ok());
    // A third thread finds no permit; a job for a thread that has a worker still queues.
    assert!(queues
        .enqueue(key("c"), async {}.boxed(), &inflight)
        .is_err());
    let counted = ran.clone();
    let behind = queues.enqueue(
        key("a"),
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
        }
        .boxed(),
        &inflight,
    );
    assert!(behind.is_ok());
    // Thread a's worker drains and gives its permit back.
    let _ = release.send(());
    for _ in 0..100 {
        if inflight.available_permits() == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(inflight.available_permits(), 1);
    assert!(queues
        .enqueue(key("c"), async {}.boxed(), &inflight)
        .is_ok());
}
