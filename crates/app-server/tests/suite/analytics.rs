//! Analytics end to end: a real session through the seam, reduced and delivered to a loopback
//! collector; checks the event sequence, ids, and that no private string leaves.

use crate::common::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;
use tally_test_support::{sse, FakeCollector, MockReply, MockResponsesServer, SchemaMode};

const CANARY: &str = "zq-canary-4411";

fn input(text: &str) -> Value {
    json!([{"type": "text", "text": text, "text_elements": []}])
}

#[tokio::test]
async fn a_session_reaches_the_collector_as_codex_events_without_private_strings() {
    let mock = MockResponsesServer::start().await;
    let collector = FakeCollector::start().await;
    let home = home_with_analytics(&mock, collector.url());
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let cwd = format!("/tmp/{CANARY}-project");
    let started = client
        .call_ok(
            "thread/start",
            json!({"cwd": cwd, "baseInstructions": format!("instructions {CANARY}"),
                   "threadSource": format!("source {CANARY}")}),
        )
        .await;
    let thread_id = started["thread"]["id"].as_str().expect("id").to_string();

    // Turn 1 completes with canaries in the prompt and the model's answer.
    mock.enqueue_stream(sse::text_turn_streamed("msg_1", &["answer ", CANARY]));
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": input(&format!("prompt {CANARY}"))}),
        )
        .await;
    client.notification("turn/completed").await;

    // Turn 2 hangs, is steered, then interrupted.
    mock.enqueue(MockReply::StreamThenHang(vec![
        sse::created("r2"),
        sse::output_text_delta("m2", "partial"),
    ]));
    mock.enqueue(MockReply::StreamThenHang(vec![
        sse::created("r3"),
        sse::output_text_delta("m3", "more"),
    ]));
    let turn = client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": input(&format!("second {CANARY}")),
                   "model": format!("model {CANARY}"), "effort": format!("effort {CANARY}")}),
        )
        .await;
    let turn_id = turn["turn"]["id"].as_str().expect("turn id").to_string();
    client.notification("item/agentMessage/delta").await;
    client
        .call_ok(
            "turn/steer",
            json!({"threadId": thread_id, "expectedTurnId": turn_id, "input": input(&format!("steer {CANARY}"))}),
        )
        .await;
    let rejected = client
        .call(
            "turn/steer",
            json!({"threadId": thread_id, "expectedTurnId": format!("nope {CANARY}"), "input": input("x")}),
        )
        .await;
    assert!(rejected.get("error").is_some());
    mock.wait_for_requests(3, Duration::from_secs(5)).await;
    client
        .call_ok(
            "turn/interrupt",
            json!({"threadId": thread_id, "turnId": turn_id}),
        )
        .await;
    client.notification("turn/completed").await;
    client
        .call_ok("thread/archive", json!({"threadId": thread_id}))
        .await;
    client
        .call_ok("thread/unarchive", json!({"threadId": thread_id}))
        .await;

    server.shutdown().await;
    let events = collector.wait_for_events(7, Duration::from_secs(10)).await;
    let types = tally_test_support::event_types(&events);
    assert_eq!(
        types,
        vec![
            "codex_thread_initialized",
            "codex_turn_event",
            "codex_turn_steer_event",
            "codex_turn_steer_event",
            "codex_turn_event",
            "codex_thread_archive_event",
            "codex_thread_archive_event",
        ]
    );
    let ids: HashSet<&str> = events
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    assert_eq!(ids.len(), events.len(), "every event has its own event_id");
    let p = |i: usize| &events[i]["event_params"];
    assert_eq!(p(0)["initialization_mode"], "new");
    assert_eq!(p(0)["app_server_client"]["product_client_id"], "tally-test");
    assert_eq!(p(0)["app_server_client"]["rpc_transport"], "stdio");
    assert_eq!(p(1)["status"], "completed");
    assert_eq!(p(1)["is_first_turn"], true);
    assert_eq!(p(1)["input_tokens"], 10);
    assert_eq!(p(1)["model"], "gpt-test");
    assert_eq!(p(1)["model_provider"], "mock");
    assert_eq!(p(2)["result"], "accepted");
    assert_eq!(p(3)["result"], "rejected");
    assert_eq!(p(3)["rejection_reason"], "expected_turn_mismatch");
    // Fields the client names carry identifiers only: its text becomes null or `other`.
    assert_eq!(p(0)["thread_source"], Value::Null);
    assert_eq!(p(3)["expected_turn_id"], Value::Null);
    assert_eq!(p(4)["model"], "other");
    assert_eq!(p(4)["reasoning_effort"], Value::Null);
    assert_eq!(p(4)["status"], "interrupted");
    assert_eq!(p(4)["steer_count"], 1);
    assert!(p(4)["explicit_client_interrupt_requested_at_ms"].is_i64());
    assert_eq!(p(5)["action"], "archived");
    assert_eq!(p(6)["action"], "unarchived");

    for body in collector.bodies() {
        assert!(
            !body.contains(CANARY),
            "a private string left the process: {body}"
        );
    }
    let spool = home.path().join("analytics");
    for entry in walk(&spool) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(CANARY),
            "canary in spool file {}",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn analytics_disabled_in_config_sends_nothing_and_spools_nothing() {
    let mock = MockResponsesServer::start().await;
    let collector = FakeCollector::start().await;
    let home = home_with_analytics(&mock, collector.url());
    let path = home.path().join("config.toml");
    let text = std::fs::read_to_string(&path)
        .expect("read")
        .replace("enabled = true", "enabled = false");
    std::fs::write(&path, text).expect("write");
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    client.call_ok("thread/start", json!({})).await;
    server.shutdown().await;
    assert!(collector.bodies().is_empty());
    assert!(
        !home.path().join("analytics").exists(),
        "no spool when analytics is off"
    );
}

#[tokio::test]
async fn a_turn_event_profiles_the_turn_with_approval_wait_as_tool_blocking() {
    let mock = MockResponsesServer::start().await;
    let collector = FakeCollector::start().await;
    let home = home_with_analytics(&mock, collector.url());
    add_config(&home, "approval_policy = \"untrusted\"\n", "");
    let workspace = tempfile::tempdir().expect("workspace");
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let started = client
        .call_ok(
            "thread/start",
            json!({"cwd": workspace.path().display().to_string()}),
        )
        .await;
    let thread_id = started["thread"]["id"].as_str().expect("id").to_string();

    // The first request fails once and is sent again by the client; the model then calls a
    // command that waits on the user's approval, and answers after its output.
    mock.enqueue(MockReply::error(500, "try again"));
    mock.enqueue_stream(sse::function_call_turn(
        "call_1",
        "exec_command",
        &json!({"cmd": "touch profiled && echo done"}).to_string(),
    ));
    mock.enqueue_stream(sse::text_turn_whole("msg_2", "Done."));
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": input("run it")}),
        )
        .await;
    let approval = client
        .wait_for(|m| {
            m["method"] == "item/commandExecution/requestApproval" && m.get("id").is_some()
        })
        .await;
    // The time the user takes to decide is what the profile must show as tool blocking.
    let waited = Duration::from_millis(300);
    tokio::time::sleep(waited).await;
    client
        .send(json!({"id": approval["id"], "result": {"decision": "accept"}}))
        .await;
    client.notification("turn/completed").await;

    server.shutdown().await;
    let events = collector.wait_for_events(2, Duration::from_secs(10)).await;
    let turn = events
        .iter()
        .find(|e| e["event_type"] == "codex_turn_event")
        .map(|e| &e["event_params"])
        .unwrap_or_else(|| panic!("no codex_turn_event in {events:#?}"));
    let ms = |field: &str| {
        turn[field]
            .as_i64()
            .unwrap_or_else(|| panic!("{field} in {turn:#}"))
    };
    assert!(
        ms("tool_blocking_ms") >= waited.as_millis() as i64,
        "{turn:#}"
    );
    assert_eq!(ms("sampling_request_count"), 2, "{turn:#}");
    assert_eq!(ms("sampling_retry_count"), 1, "{turn:#}");
    assert_eq!(ms("tools_change_count"), 0, "{turn:#}");
    assert_eq!(ms("compaction_ms"), 0, "{turn:#}");
    let buckets = [
        "before_first_sampling_ms",
        "sampling_ms",
        "compaction_ms",
        "between_sampling_overhead_ms",
        "tool_blocking_ms",
        "after_last_sampling_ms",
    ]
    .iter()
    .map(|f| ms(f))
    .sum::<i64>();
    assert!(
        (buckets - ms("duration_ms")).abs() <= 5,
        "buckets sum to {buckets}, duration is {}: {turn:#}",
        ms("duration_ms")
    );
}

#[tokio::test]
async fn a_failed_turn_reports_its_error_class_never_its_message() {
    let mock = MockResponsesServer::start().await;
    let collector = FakeCollector::start().await;
    let home = home_with_analytics(&mock, collector.url());
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let started = client.call_ok("thread/start", json!({})).await;
    let thread_id = started["thread"]["id"].as_str().expect("id").to_string();
    mock.enqueue(MockReply::error(
        400,
        &format!("context too long for {CANARY} at /srv/{CANARY}"),
    ));
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": input("hello")}),
        )
        .await;
    let done = client.notification("turn/completed").await;
    assert_eq!(done["params"]["turn"]["status"], "failed");
    assert!(
        done.to_string().contains(CANARY),
        "the client sees the message: {done}"
    );
    server.shutdown().await;
    let events = collector.wait_for_events(2, Duration::from_secs(10)).await;
    let turn = events
        .iter()
        .find(|e| e["event_type"] == "codex_turn_event")
        .expect("a turn event");
    let p = &turn["event_params"];
    assert_eq!(p["status"], "failed");
    assert_eq!(p["codex_error_kind"], "bad_request");
    assert_eq!(p["turn_error"]["codex_error_kind"], "bad_request");
    for body in collector.bodies() {
        assert!(!body.contains(CANARY), "the error message left: {body}");
    }
}

#[tokio::test]
async fn drops_of_the_last_flush_reach_the_status_file() {
    let mock = MockResponsesServer::start().await;
    let collector = FakeCollector::start().await;
    // The collector refuses every batch: what the shutdown flush sends is dropped (and counted).
    collector.script_statuses(&[400; 8]);
    let home = home_with_analytics(&mock, collector.url());
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    client.call_ok("thread/start", json!({})).await;
    server.shutdown().await;
    assert!(!collector.bodies().is_empty(), "the final flush posted");
    let status = tally_analytics::status::read_status(&home.path().join("analytics/status.json"))
        .expect("readable")
        .expect("written");
    assert_eq!(status["delivery"]["dropped"]["rejected"], 1, "{status:#}");
}
