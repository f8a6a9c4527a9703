use std::time::Duration;

use super::*;
use crate::delivery::envelope::{EventEnvelope, WireBatch};

fn encoded(i: usize) -> Vec<u8> {
    serde_json::to_vec(&EventEnvelope {
        event_type: "codex_turn_event".into(),
        event_params: serde_json::json!({ "n": i }),
        event_id: format!("id-{i:04}"),
    })
    .unwrap()
}

fn body_len(batch: &Batch) -> usize {
    let events: Vec<EventEnvelope> = serde_json::from_slice(&batch.payload).unwrap();
    assert_eq!(events.len(), batch.events);
    serde_json::to_vec(&WireBatch { events: &events })
        .unwrap()
        .len()
}

#[test]
fn cuts_by_count() {
    let now = Instant::now();
    let mut b = Batcher::new(3, usize::MAX);
    let mut cut = Vec::new();
    for i in 0..7 {
        cut.extend(b.push(&encoded(i), now));
    }
    assert_eq!(cut.iter().map(|b| b.events).collect::<Vec<_>>(), vec![3, 3]);
    assert_eq!(b.take().map(|b| b.events), Some(1));
    assert_eq!(b.take(), None);
}

#[test]
fn cuts_by_bytes_before_the_body_would_exceed_the_limit() {
    let now = Instant::now();
    let one = encoded(0).len();
    // Room for exactly two events: two events plus a comma plus the wrapper.
    let limit = WIRE_OVERHEAD + 2 * one + 1;
    let mut b = Batcher::new(100, limit);
    let mut cut = Vec::new();
    for i in 0..5 {
        cut.extend(b.push(&encoded(i), now));
    }
    assert_eq!(cut.iter().map(|b| b.events).collect::<Vec<_>>(), vec![2, 2]);
    for batch in &cut {
        assert_eq!(body_len(batch), limit);
    }
    let rest = b.take().unwrap();
    assert_eq!(rest.events, 1);
    assert!(body_len(&rest) <= limit);
}

#[test]
fn an_oversized_event_goes_alone() {
    let now = Instant::now();
    let mut b = Batcher::new(100, 10);
    let cut = b.push(&encoded(0), now);
    assert_eq!(cut.len(), 1);
    assert_eq!(cut[0].events, 1);
    let mut b = Batcher::new(100, WIRE_OVERHEAD + encoded(0).len());
    assert!(b.push(&encoded(0), now).len() == 1);
    // A second small batch is closed before an event that does not fit joins it.
    let mut b = Batcher::new(100, WIRE_OVERHEAD + encoded(0).len() + 5);
    assert!(b.push(&encoded(0), now).is_empty());
    let cut = b.push(&encoded(1), now);
    assert_eq!(cut.iter().map(|b| b.events).collect::<Vec<_>>(), vec![1]);
    assert_eq!(b.take().map(|b| b.events), Some(1));
}

#[test]
fn age_deadline_starts_with_the_first_event() {
    let t0 = Instant::now();
    let mut b = Batcher::new(100, usize::MAX);
    assert_eq!(b.due_at(Duration::from_secs(2)), None);
    b.push(&encoded(0), t0);
    b.push(&encoded(1), t0 + Duration::from_secs(1));
    assert_eq!(
        b.due_at(Duration::from_secs(2)),
        Some(t0 + Duration::from_secs(2))
    );
    b.take();
    assert_eq!(b.due_at(Duration::from_secs(2)), None);
}

#[test]
fn payload_is_a_json_array_of_the_events_in_order() {
    let now = Instant::now();
    let mut b = Batcher::new(100, usize::MAX);
    for i in 0..3 {
        b.push(&encoded(i), now);
    }
    let batch = b.take().unwrap();
    let events: Vec<EventEnvelope> = serde_json::from_slice(&batch.payload).unwrap();
    let ids: Vec<_> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["id-0000", "id-0001", "id-0002"]);
}

#[test]
fn an_event_sent_alone_cuts_the_open_batch_and_goes_in_one_of_its_own() {
    let now = Instant::now();
    let mut b = Batcher::new(100, usize::MAX);
    assert!(b.push(&encoded(0), now).is_empty());
    assert!(b.push(&encoded(1), now).is_empty());
    let cut = b.push_alone(&encoded(2));
    assert_eq!(cut.iter().map(|b| b.events).collect::<Vec<_>>(), vec![2, 1]);
    let alone: Vec<EventEnvelope> = serde_json::from_slice(&cut[1].payload).unwrap();
    assert_eq!(alone[0].event_id, "id-0002");
    assert!(body_len(&cut[1]) > 0);
    // Nothing is open afterwards: the next event starts a new batch.
    assert_eq!(b.take(), None);
    let cut = b.push_alone(&encoded(3));
    assert_eq!(cut.iter().map(|b| b.events).collect::<Vec<_>>(), vec![1]);
}
