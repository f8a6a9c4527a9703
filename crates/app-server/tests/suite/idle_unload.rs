//! Idle unload (PROTOCOL.md 3): a thread without subscribers or activity for the configured
//! time is unloaded, every initialized connection hears `thread/status/changed` (`notLoaded`)
//! then `thread/closed`, and `thread/resume` loads it again from its rollout. A subscribed thread
//! or one with a running turn stays. The timeout is configured short; nothing sleeps: the
//! unload of one thread is the clock that shows the others outlived the timeout.

use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use tally_test_support::{sse, AppClient, MockReply, MockResponsesServer, SchemaMode};

const IDLE_UNLOAD_MS: u64 = 300;

fn text_input(text: &str) -> Value {
    json!([{"type": "text", "text": text, "text_elements": []}])
}

fn home_with_idle_unload(mock: &MockResponsesServer) -> tempfile::TempDir {
    let home = home_for(mock, 1);
    add_config(
        &home,
        "",
        &format!("\n[app_server]\nthread_idle_unload_ms = {IDLE_UNLOAD_MS}\n"),
    );
    home
}

async fn loaded(client: &mut AppClient) -> BTreeSet<String> {
    let list = client.call_ok("thread/loaded/list", json!({})).await;
    list["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// The unload notifications for `thread_id` as `client` saw them: status first, then closed.
async fn expect_unload_notifications(client: &mut AppClient, thread_id: &str) {
    let messages = client.collect_until("thread/closed").await;
    // Earlier status changes (the turn's active/idle) may precede; the unload is the last two.
    let about_thread: Vec<&Value> = messages
        .iter()
        .filter(|m| m["params"]["threadId"] == thread_id)
        .filter(|m| m["method"] == "thread/status/changed" || m["method"] == "thread/closed")
        .collect();
    let tail: Vec<(&Value, &Value)> = about_thread[about_thread.len().saturating_sub(2)..]
        .iter()
        .map(|m| (&m["method"], &m["params"]))
        .collect();
    assert_eq!(
        tail,
        [
            (
                &json!("thread/status/changed"),
                &json!({"threadId": thread_id, "status": {"type": "notLoaded"}})
            ),
            (&json!("thread/closed"), &json!({"threadId": thread_id})),
        ],
        "got {messages:#?}"
    );
}

#[tokio::test]
async fn an_unsubscribed_idle_thread_is_unloaded_and_resumes_from_its_rollout() {
    let mock = MockResponsesServer::start().await;
    let home = home_with_idle_unload(&mock);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    let mut observer = line_client(&server, SchemaMode::Stable);
    observer.initialize(false).await;

    // Stays subscribed the whole time.
    let subscribed = start_thread(&mut client).await;

    // Runs a turn that never finishes, without subscribers.
    mock.enqueue(MockReply::StreamThenHang(vec![sse::created("resp_hang")]));
    let running = client.call_ok("thread/start", json!({"cwd": "/tmp"})).await["thread"]["id"]
        .as_str()
        .expect("thread id")
        .to_string();
    client
        .call_ok(
            "turn/start",
            json!({"threadId": running, "input": text_input("take your time")}),
        )
        .await;
    mock.wait_for_requests(1, Duration::from_secs(10)).await;
    let r = client
        .call_ok("thread/unsubscribe", json!({"threadId": running}))
        .await;
    assert_eq!(r["status"], "unsubscribed");

    // Finishes a turn (so its rollout has history), then loses its only subscriber.
    mock.enqueue_stream(sse::text_turn_whole("msg_1", "hello"));
    let idle = client.call_ok("thread/start", json!({"cwd": "/tmp"})).await["thread"]["id"]
        .as_str()
        .expect("thread id")
        .to_string();
    client
        .call_ok(
            "turn/start",
            json!({"threadId": idle, "input": text_input("hi")}),
        )
        .await;
    client
        .wait_for(|m| m["method"] == "turn/completed" && m["params"]["threadId"] == idle)
        .await;
    let r = client
        .call_ok("thread/unsubscribe", json!({"threadId": idle}))
        .await;
    assert_eq!(r["status"], "unsubscribed");

    // After the timeout: every initialized connection hears status, then closed.
    expect_unload_notifications(&mut client, &idle).await;
    expect_unload_notifications(&mut observer, &idle).await;

    // The subscribed thread and the one running a turn outlived the timeout too; they stay.
    assert_eq!(
        loaded(&mut client).await,
        BTreeSet::from([subscribed.clone(), running.clone()])
    );
    assert!(
        !client
            .received
            .iter()
            .any(|m| m["method"] == "thread/closed" && m["params"]["threadId"] != idle),
        "only the idle thread was closed"
    );
    let r = client
        .call_ok("thread/unsubscribe", json!({"threadId": idle}))
        .await;
    assert_eq!(r["status"], "notLoaded");

    // Resume loads it again from its rollout, with its history.
    let resumed = client
        .call_ok("thread/resume", json!({"threadId": idle}))
        .await;
    assert_eq!(resumed["thread"]["id"], idle);
    assert_eq!(resumed["thread"]["turns"].as_array().map(Vec::len), Some(1));
    assert!(loaded(&mut client).await.contains(&idle));
}
