use super::*;

fn ev(event: &str, data: serde_json::Value) -> SseEvent {
    SseEvent {
        event: event.into(),
        data: data.to_string(),
    }
}

#[test]
fn decodes_completed_usage_into_protocol_names() {
    let got = decode_event(&ev(
        "response.completed",
        serde_json::json!({"response": {"id": "r1", "usage": {
            "input_tokens": 10, "input_tokens_details": {"cached_tokens": 3},
            "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2},
            "total_tokens": 15}}}),
    ));
    let Some(Ok(ResponseEvent::Completed {
        response_id,
        usage: Some(u),
    })) = got
    else {
        panic!("unexpected {got:?}")
    };
    assert_eq!(response_id, "r1");
    assert_eq!(
        (u.input_tokens, u.cached_input_tokens, u.output_tokens),
        (10, 3, 5)
    );
    assert_eq!((u.reasoning_output_tokens, u.total_tokens), (2, 15));
}

#[test]
fn unknown_events_are_skipped_and_failures_are_errors() {
    assert!(decode_event(&ev("response.in_progress", serde_json::json!({}))).is_none());
    let got = decode_event(&ev(
        "response.failed",
        serde_json::json!({"response": {"error": {"message": "boom"}}}),
    ));
    assert!(matches!(got, Some(Err(ModelError::ResponseFailed(m))) if m == "boom"));
}

#[test]
fn decodes_whole_message_items() {
    let got = decode_event(&ev(
        "response.output_item.done",
        serde_json::json!({"item": {"type": "message", "id": "msg_1", "role": "assistant",
            "content": [{"type": "output_text", "text": "Done."}]}}),
    ));
    let Some(Ok(ResponseEvent::OutputItemDone(item))) = got else {
        panic!("{got:?}")
    };
    assert_eq!(item.message_text().as_deref(), Some("Done."));
}
