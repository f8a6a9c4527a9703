use super::*;

#[test]
fn serializes_in_wire_order_with_event_id_last() {
    let e = EventEnvelope {
        event_type: "codex_turn_event".into(),
        event_params: serde_json::json!({"turn_id": "t1"}),
        event_id: "0190-id".into(),
    };
    let s = serde_json::to_string(&e).unwrap();
    assert_eq!(
        s,
        r#"{"event_type":"codex_turn_event","event_params":{"turn_id":"t1"},"event_id":"0190-id"}"#
    );
    let back: EventEnvelope = serde_json::from_str(&s).unwrap();
    assert_eq!(back, e);
}

#[test]
fn new_assigns_a_uuid_v7() {
    let e = EventEnvelope::new("codex_hook_run", serde_json::json!({}));
    let id = uuid::Uuid::parse_str(&e.event_id).unwrap();
    assert_eq!(id.get_version_num(), 7);
}

#[test]
fn wire_batch_overhead_matches_serde() {
    let events = [EventEnvelope::new("a", serde_json::json!({"x": 1}))];
    let body = serde_json::to_vec(&WireBatch { events: &events }).unwrap();
    let one = serde_json::to_vec(&events[0]).unwrap();
    assert_eq!(body.len(), one.len() + WIRE_OVERHEAD);
}
