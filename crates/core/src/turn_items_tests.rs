use super::*;

fn methods(notes: &[ServerNotification]) -> Vec<&'static str> {
    notes.iter().map(|n| n.method()).collect()
}

#[test]
fn a_whole_item_without_added_gets_started_then_completes_with_its_text() {
    let mut items = InFlightItems::default();
    let mut done = ResponseItem::text_message("assistant", "Done.");
    if let ResponseItem::Message { id, .. } = &mut done {
        *id = Some("msg_1".into());
    }
    let notes = items.apply(&ResponseEvent::OutputItemDone(done.clone()), "t", "u");
    assert_eq!(methods(&notes), vec!["item/started"]);
    let item = items.take_completed(&done).expect("open item");
    assert_eq!(
        item,
        ThreadItem::AgentMessage {
            id: "msg_1".into(),
            text: "Done.".into(),
            phase: None
        }
    );
    assert!(items.drain_open().is_empty());
}

#[test]
fn deltas_accumulate_and_a_cut_stream_closes_with_partial_text() {
    let mut items = InFlightItems::default();
    let d = |s: &str| ResponseEvent::OutputTextDelta {
        item_id: "m".into(),
        delta: s.into(),
    };
    let mut notes = items.apply(&d("Hel"), "t", "u");
    notes.extend(items.apply(&d("lo"), "t", "u"));
    assert_eq!(
        methods(&notes),
        vec![
            "item/started",
            "item/agentMessage/delta",
            "item/agentMessage/delta"
        ]
    );
    let open = items.drain_open();
    assert_eq!(
        open,
        vec![ThreadItem::AgentMessage {
            id: "m".into(),
            text: "Hello".into(),
            phase: None
        }]
    );
}

#[test]
fn reasoning_summary_indices_are_bounded() {
    let mut items = InFlightItems::default();
    items.apply(
        &ResponseEvent::ReasoningSummaryTextDelta {
            item_id: "r".into(),
            summary_index: i64::MAX,
            delta: "x".into(),
        },
        "t",
        "u",
    );
    let open = items.drain_open();
    let ThreadItem::Reasoning { summary, .. } = &open[0] else {
        panic!("{open:?}")
    };
    assert!(summary.len() <= 1025);
}
