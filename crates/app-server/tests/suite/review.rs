//! `review/start` (the TUI's `/review`): a review run inline, as a turn of the thread, on the
//! offline model. Without it the Codex 0.169 TUI exited ("review/start failed in TUI").

use crate::common;

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tally_app_server::AppServer;
use tally_test_support::{methods, AppClient, FakeCollector, SchemaMode};

/// A client of a server on the offline model whose analytics go to `collector`.
fn client_for(collector: &FakeCollector) -> (tempfile::TempDir, AppClient, Arc<AppServer>) {
    let home = common::offline_home_with_analytics("", collector.url());
    let server = common::server(&home);
    let client = common::line_client(&server, SchemaMode::Stable);
    (home, client, server)
}

fn items_of<'a>(messages: &'a [Value], method: &str, kind: &str) -> Vec<&'a Value> {
    messages
        .iter()
        .filter(|m| m["method"] == method && m["params"]["item"]["type"] == kind)
        .map(|m| &m["params"]["item"])
        .collect()
}

#[tokio::test]
async fn a_review_is_a_turn_between_entered_and_exited_review_mode() {
    let collector = FakeCollector::start().await;
    let (_home, mut client, server) = client_for(&collector);
    let thread_id = common::start_thread(&mut client).await;
    let started = client
        .call_ok(
            "review/start",
            json!({"threadId": thread_id, "target": {"type": "uncommittedChanges"}}),
        )
        .await;
    assert_eq!(started["reviewThreadId"], thread_id.as_str());
    assert_eq!(started["turn"]["status"], "inProgress");
    let turn_id = started["turn"]["id"].as_str().expect("turn").to_owned();
    let messages = client.collect_until("turn/completed").await;
    let entered = items_of(&messages, "item/started", "enteredReviewMode");
    assert_eq!(entered.len(), 1, "{:?}", methods(&messages));
    assert_eq!(entered[0]["review"], "current changes");
    let ids: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "item/completed")
        .map(|m| &m["params"]["item"]["id"])
        .collect();
    assert!(messages
        .iter()
        .filter(|m| m["method"] == "item/completed")
        .all(|m| m["params"]["turnId"] == turn_id.as_str()));
    let unique: std::collections::HashSet<String> = ids.iter().map(|i| i.to_string()).collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "every item has an id of its own: {ids:?}"
    );
    // The reviewer's streamed answer is not shown as it comes: it is the review, shown once as
    // `exitedReviewMode` and then as the turn's agent message (what the TUI prints).
    assert!(!methods(&messages).contains(&"item/agentMessage/delta".to_string()));
    let exited = items_of(&messages, "item/completed", "exitedReviewMode");
    assert_eq!(exited.len(), 1);
    let review = exited[0]["review"].as_str().expect("review text");
    assert!(
        review.contains("Review the current code changes"),
        "{review}"
    );
    let shown = items_of(&messages, "item/completed", "agentMessage");
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0]["text"], review);
    let order: Vec<&str> = messages
        .iter()
        .filter(|m| m["method"] == "item/completed")
        .filter_map(|m| m["params"]["item"]["type"].as_str())
        .collect();
    assert_eq!(
        order,
        [
            "enteredReviewMode",
            "userMessage",
            "reasoning",
            "exitedReviewMode",
            "agentMessage"
        ]
    );
    let done = messages.last().expect("turn/completed");
    assert_eq!(done["params"]["turn"]["status"], "completed");
    assert_eq!(done["params"]["turn"]["items"][0]["text"], review);

    // The thread goes on: a turn after the review sees it in its history.
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": [{"type": "text", "text": "thanks", "text_elements": []}]}),
        )
        .await;
    client.notification("turn/completed").await;

    server.shutdown().await;
    let events = collector.wait_for_events(3, Duration::from_secs(10)).await;
    let turns = events
        .iter()
        .filter(|e| e["event_type"] == "codex_turn_event")
        .count();
    assert_eq!(
        turns, 2,
        "the review is a turn someone started: {events:#?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| e["event_type"] == "tally_analytics_dropped"),
        "{events:#?}"
    );
}

#[tokio::test]
async fn a_review_is_refused_while_a_turn_runs_or_with_an_empty_target() {
    let collector = FakeCollector::start().await;
    let (_home, mut client, _server) = client_for(&collector);
    let thread_id = common::start_thread(&mut client).await;
    let empty = client
        .call(
            "review/start",
            json!({"threadId": thread_id, "target": {"type": "baseBranch", "branch": " "}}),
        )
        .await;
    assert_eq!(empty["error"]["code"], -32602, "{empty}");
    assert!(empty["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("target.branch")));
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": [{"type": "text", "text": "a long [slow] answer with many words to stream", "text_elements": []}]}),
        )
        .await;
    let busy = client
        .call(
            "review/start",
            json!({"threadId": thread_id, "target": {"type": "custom", "instructions": "look"}}),
        )
        .await;
    assert_eq!(busy["error"]["code"], -32600, "{busy}");
    client.notification("turn/completed").await;

    // A review takes no steering: a turn/start during it is refused, naming the review.
    client
        .call_ok(
            "review/start",
            json!({"threadId": thread_id, "target": {"type": "custom",
                "instructions": "look closely [slow] at every file, one after another"}}),
        )
        .await;
    let steer = client
        .call(
            "turn/start",
            json!({"threadId": thread_id, "input": [{"type": "text", "text": "and this", "text_elements": []}]}),
        )
        .await;
    assert_eq!(steer["error"]["code"], -32600, "{steer}");
    assert_eq!(
        steer["error"]["data"]["codexErrorInfo"]["activeTurnNotSteerable"]["turnKind"], "review",
        "{steer}"
    );
}
