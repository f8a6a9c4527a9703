use super::*;

#[tokio::test]
async fn appends_one_line_per_event_across_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out").join("events.jsonl");
    let sink = JsonlSink::open(&path).unwrap();
    let a = EventEnvelope::new("codex_hook_run", serde_json::json!({"n": 1}));
    let b = EventEnvelope::new("codex_turn_event", serde_json::json!({"n": 2}));
    assert_eq!(sink.send(std::slice::from_ref(&a)).await, SinkResult::Ok);
    assert_eq!(sink.send(std::slice::from_ref(&b)).await, SinkResult::Ok);
    // Reopening appends rather than truncating.
    let again = JsonlSink::open(&path).unwrap();
    assert_eq!(again.send(std::slice::from_ref(&a)).await, SinkResult::Ok);

    let text = std::fs::read_to_string(sink.path()).unwrap();
    let lines: Vec<EventEnvelope> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, vec![a.clone(), b, a]);
}
