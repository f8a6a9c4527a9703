//! The client's filter rejects ignored traffic by looking at the borrowed message: no clone, no
//! box, no allocation. A counting global allocator proves it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use tally_analytics::AnalyticsEventsClient;
use tally_protocol::server_notification::AgentMessageDeltaNotification;
use tally_protocol::types::*;
use tally_protocol::{ClientRequest, ClientResponsePayload, RequestId, ServerNotification};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    f();
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn ignored_messages_cause_zero_allocations_and_kept_ones_are_queued() {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let client = AnalyticsEventsClient::new(tx);
    let id = RequestId::Integer(7);
    let list = ClientResponsePayload::ThreadList(ThreadListResponse {
        data: vec![],
        next_cursor: None,
        backwards_cursor: None,
    });
    let models = ClientRequest::ModelList(ModelListParams::default());
    let delta = ServerNotification::AgentMessageDelta(AgentMessageDeltaNotification {
        thread_id: "t".into(),
        turn_id: "u".into(),
        item_id: "m".into(),
        delta: "hello".into(),
    });
    let n = allocations_during(|| {
        for _ in 0..1000 {
            client.track_client_response(1, &id, &list);
            client.track_client_request(1, &id, &models);
            client.track_notification(&delta);
        }
    });
    assert_eq!(n, 0, "ignored traffic allocated {n} times");
    assert_eq!(client.stats().ignored, 3000);
    assert!(rx.try_recv().is_err());

    let kept = ClientResponsePayload::TurnSteer(TurnSteerResponse {
        turn_id: "u".into(),
    });
    client.track_client_response(1, &id, &kept);
    assert!(rx.try_recv().is_ok(), "kept traffic is queued");
}
