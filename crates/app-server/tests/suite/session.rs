//! End-to-end sessions over the line (stdio) and WebSocket transports against a mock Responses
//! server; every server message is validated against the Codex schema by the client.

use crate::common::*;
use serde_json::{json, Value};
use std::time::Duration;
use tally_test_support::{methods, sse, AppClient, MockReply, MockResponsesServer, SchemaMode};

fn text_input(text: &str) -> Value {
    json!([{"type": "text", "text": text, "text_elements": []}])
}

/// Asserts `expected` appears in `got` in order (other messages may sit between).
fn assert_in_order(got: &[String], expected: &[&str]) {
    let mut it = got.iter();
    for want in expected {
        assert!(
            it.any(|g| g == want),
            "missing {want:?} in order; got {got:?}"
        );
    }
}

async fn run_streamed_turn(client: &mut AppClient, mock: &MockResponsesServer) {
    mock.enqueue_stream(sse::text_turn_streamed("msg_1", &["Hel", "lo ", "there"]));
    let thread_id = start_thread(client).await;
    let id = client
        .request(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input("say hello")}),
        )
        .await;
    let mut seen = vec![];
    let response = client.answer_to(&id).await;
    assert_eq!(response["result"]["turn"]["status"], "inProgress");
    seen.push("response".to_string());
    let rest = client.collect_until("turn/completed").await;
    seen.extend(methods(&rest));
    assert_in_order(
        &seen,
        &[
            "response",
            "thread/status/changed",
            "turn/started",
            "item/started",
            "item/completed",
            "item/started",
            "item/agentMessage/delta",
            "item/agentMessage/delta",
            "item/agentMessage/delta",
            "item/completed",
            "thread/tokenUsage/updated",
            "thread/status/changed",
            "turn/completed",
        ],
    );
    let deltas: String = rest
        .iter()
        .filter(|m| m["method"] == "item/agentMessage/delta")
        .map(|m| m["params"]["delta"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(deltas, "Hello there");
    let idle = &rest[rest.len() - 2];
    assert_eq!(idle["params"]["status"]["type"], "idle");
    let done = rest.last().expect("turn/completed");
    assert_eq!(done["params"]["turn"]["status"], "completed");
    assert_eq!(done["params"]["turn"]["itemsView"], "summary");
    assert_eq!(done["params"]["turn"]["items"][0]["text"], "Hello there");
    let usage = rest
        .iter()
        .find(|m| m["method"] == "thread/tokenUsage/updated")
        .expect("usage");
    assert_eq!(usage["params"]["tokenUsage"]["last"]["inputTokens"], 10);
    // No `model_context_window` configured: unknown, not a made-up number.
    assert_eq!(
        usage["params"]["tokenUsage"]["modelContextWindow"],
        Value::Null
    );

    let request = &mock.requests()[0];
    assert_eq!(request.path, "/v1/responses");
    assert_eq!(request.body["stream"], true);
    assert_eq!(request.body["store"], false);
    assert_eq!(request.body["model"], "gpt-test");
    assert_eq!(request.header("originator"), Some("tally-test"));
    assert_eq!(request.header("thread-id"), Some(thread_id.as_str()));
    let input = request.body["input"].to_string();
    assert!(input.contains("say hello"), "{input}");
}

/// `model_context_window` in config.toml goes out with every token usage update, so a client
/// can show how much context is left.
#[tokio::test]
async fn token_usage_carries_the_configured_context_window() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    add_config(&home, "model_context_window = 200000\n", "");
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    mock.enqueue_stream(sse::text_turn_streamed("msg_1", &["hi"]));
    let thread_id = start_thread(&mut client).await;
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input("say hi")}),
        )
        .await;
    let rest = client.collect_until("turn/completed").await;
    let usage = rest
        .iter()
        .find(|m| m["method"] == "thread/tokenUsage/updated")
        .expect("usage");
    assert_eq!(usage["params"]["tokenUsage"]["modelContextWindow"], 200000);
}

#[tokio::test]
async fn line_transport_runs_a_streamed_turn_in_codex_order() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    run_streamed_turn(&mut client, &mock).await;
}

#[tokio::test]
async fn websocket_runs_a_streamed_turn_in_codex_order() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let url = websocket_url(&server).await;
    let mut client = AppClient::over_websocket(&url, SchemaMode::Experimental).await;
    run_streamed_turn(&mut client, &mock).await;
}

#[tokio::test]
async fn a_server_sending_whole_items_gets_started_and_completed_back_to_back() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    mock.enqueue_stream(sse::text_turn_whole("msg_9", "Done."));
    let thread_id = start_thread(&mut client).await;
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input("go")}),
        )
        .await;
    let rest = client.collect_until("turn/completed").await;
    let agent: Vec<&Value> = rest
        .iter()
        .filter(|m| m["params"]["item"]["type"] == "agentMessage")
        .collect();
    assert_eq!(agent.len(), 2, "{rest:#?}");
    assert_eq!(agent[0]["method"], "item/started");
    assert_eq!(agent[1]["method"], "item/completed");
    assert_eq!(agent[1]["params"]["item"]["text"], "Done.");
    assert_eq!(agent[1]["params"]["item"]["id"], "msg_9");
}

async fn hanging_turn(client: &mut AppClient, mock: &MockResponsesServer) -> (String, String) {
    mock.enqueue(MockReply::StreamThenHang(vec![
        sse::created("resp_1"),
        sse::output_item_added(
            json!({"type": "message", "id": "msg_1", "role": "assistant", "content": []}),
        ),
        sse::output_text_delta("msg_1", "partial"),
    ]));
    let thread_id = start_thread(client).await;
    let result = client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input("long task")}),
        )
        .await;
    let turn_id = result["turn"]["id"].as_str().expect("turn id").to_string();
    client.notification("item/agentMessage/delta").await;
    (thread_id, turn_id)
}

#[tokio::test]
async fn interrupt_mid_stream_completes_the_turn_as_interrupted_after_the_response() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    let (thread_id, turn_id) = hanging_turn(&mut client, &mock).await;
    client
        .send(json!({"id": "a-7", "method": "turn/interrupt", "params": {"threadId": thread_id, "turnId": turn_id}}))
        .await;
    let rest = client.collect_until("turn/completed").await;
    let seen = methods(&rest);
    assert_in_order(
        &seen,
        &[
            "thread/tokenUsage/updated",
            "response",
            "thread/status/changed",
            "turn/completed",
        ],
    );
    let answer = rest.iter().find(|m| m["id"] == "a-7").expect("answer");
    assert_eq!(answer["result"], json!({}));
    let done = rest.last().expect("turn/completed");
    assert_eq!(done["params"]["turn"]["status"], "interrupted");
    assert_eq!(done["params"]["turn"]["items"], json!([]));
    assert_eq!(done["params"]["turn"]["itemsView"], "notLoaded");
    assert_eq!(done["params"]["turn"]["error"], Value::Null);
    // The thread is usable again.
    mock.enqueue_stream(sse::text_turn_whole("msg_2", "ok"));
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input("again")}),
        )
        .await;
    let rest = client.collect_until("turn/completed").await;
    assert_eq!(
        rest.last().expect("done")["params"]["turn"]["status"],
        "completed"
    );
}

#[tokio::test]
async fn interrupt_with_empty_turn_id_interrupts_whatever_runs_and_answers_empty_when_idle() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    let (thread_id, _) = hanging_turn(&mut client, &mock).await;
    let answer = client
        .call(
            "turn/interrupt",
            json!({"threadId": thread_id, "turnId": ""}),
        )
        .await;
    assert_eq!(answer["result"], json!({}));
    let done = client.notification("turn/completed").await;
    assert_eq!(done["params"]["turn"]["status"], "interrupted");
    let answer = client
        .call(
            "turn/interrupt",
            json!({"threadId": thread_id, "turnId": ""}),
        )
        .await;
    assert_eq!(answer["result"], json!({}));
}

#[tokio::test]
async fn steer_adds_input_to_the_running_turn_and_resends_the_request() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    let (thread_id, turn_id) = hanging_turn(&mut client, &mock).await;
    mock.enqueue_stream(sse::text_turn_whole("msg_2", "Steered answer."));
    let result = client
        .call_ok(
            "turn/steer",
            json!({"threadId": thread_id, "expectedTurnId": turn_id, "input": text_input("also do X")}),
        )
        .await;
    assert_eq!(result["turnId"], turn_id);
    let rest = client.collect_until("turn/completed").await;
    assert!(
        rest.iter()
            .filter(|m| m["method"] == "turn/started")
            .all(|m| m["params"]["turn"]["id"] == turn_id),
        "a steer must not start a new turn"
    );
    let steer_item = rest
        .iter()
        .find(|m| m["method"] == "item/completed" && m["params"]["item"]["type"] == "userMessage")
        .expect("steer input appears as a userMessage item");
    assert_eq!(steer_item["params"]["turnId"], turn_id);
    let done = rest.last().expect("turn/completed");
    assert_eq!(done["params"]["turn"]["id"], turn_id);
    assert_eq!(
        done["params"]["turn"]["items"][0]["text"],
        "Steered answer."
    );
    let requests = mock.wait_for_requests(2, Duration::from_secs(5)).await;
    assert!(requests[1].body["input"].to_string().contains("also do X"));

    let bad = client
        .call(
            "turn/steer",
            json!({"threadId": thread_id, "expectedTurnId": turn_id, "input": text_input("late")}),
        )
        .await;
    assert_eq!(
        bad["error"]["code"], -32600,
        "steer without an active turn: {bad}"
    );
}

#[tokio::test]
async fn a_stream_cut_before_completion_fails_the_turn_after_bounded_retries() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    let cut =
        || MockReply::StreamThenCut(vec![sse::created("r"), sse::output_text_delta("m", "par")]);
    mock.enqueue(cut());
    mock.enqueue(cut());
    let thread_id = start_thread(&mut client).await;
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input("x")}),
        )
        .await;
    let rest = client.collect_until("turn/completed").await;
    let errors: Vec<&Value> = rest.iter().filter(|m| m["method"] == "error").collect();
    assert_eq!(errors.len(), 2, "{rest:#?}");
    assert_eq!(errors[0]["params"]["willRetry"], true);
    assert_eq!(errors[1]["params"]["willRetry"], false);
    let done = rest.last().expect("turn/completed");
    assert_eq!(done["params"]["turn"]["status"], "failed");
    assert!(
        done["params"]["turn"]["error"]["codexErrorInfo"]["responseStreamDisconnected"].is_object()
    );
    assert_eq!(mock.requests().len(), 2, "one try plus one retry");
    // Every started item was completed even though the stream broke.
    let started = rest
        .iter()
        .filter(|m| m["method"] == "item/started")
        .count();
    let completed = rest
        .iter()
        .filter(|m| m["method"] == "item/completed")
        .count();
    assert_eq!(started, completed);
}

#[tokio::test]
async fn rate_limited_requests_are_retried_then_succeed() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    mock.enqueue(MockReply::Status {
        status: 429,
        body: r#"{"error":{"message":"slow down"}}"#.into(),
        retry_after: Some(0),
    });
    mock.enqueue(MockReply::error(503, "busy"));
    mock.enqueue_stream(sse::text_turn_whole("msg_1", "finally"));
    let thread_id = start_thread(&mut client).await;
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input("x")}),
        )
        .await;
    let done = client.notification("turn/completed").await;
    assert_eq!(done["params"]["turn"]["status"], "completed");
    assert_eq!(mock.requests().len(), 3);
}

#[tokio::test]
async fn resume_after_a_restart_reads_the_same_items_and_continues_the_conversation() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let thread_id;
    let first_items;
    {
        let server = server(&home);
        let mut client = line_client(&server, SchemaMode::Stable);
        mock.enqueue_stream(sse::text_turn_streamed("msg_1", &["remember ", "42"]));
        thread_id = start_thread(&mut client).await;
        client
            .call_ok(
                "turn/start",
                json!({"threadId": thread_id, "input": text_input("the number is 42")}),
            )
            .await;
        client.notification("turn/completed").await;
        let read = client
            .call_ok(
                "thread/read",
                json!({"threadId": thread_id, "includeTurns": true}),
            )
            .await;
        first_items = read["thread"]["turns"][0]["items"].clone();
    }
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let listed = client.call_ok("thread/list", json!({})).await;
    assert_eq!(listed["data"][0]["id"], thread_id.as_str());
    assert_eq!(listed["data"][0]["status"]["type"], "notLoaded");
    assert_eq!(listed["data"][0]["preview"], "the number is 42");
    let resumed = client
        .call_ok("thread/resume", json!({"threadId": thread_id}))
        .await;
    let turns = &resumed["thread"]["turns"];
    assert_eq!(turns[0]["items"], first_items);
    assert_eq!(turns[0]["status"], "completed");
    assert_eq!(first_items.as_array().map(Vec::len), Some(2));

    mock.enqueue_stream(sse::text_turn_whole("msg_2", "It was 42."));
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input("what was it?")}),
        )
        .await;
    client.notification("turn/completed").await;
    let second = &mock.requests()[1];
    let input = second.body["input"].to_string();
    assert!(
        input.contains("the number is 42") && input.contains("remember 42"),
        "{input}"
    );
}

#[tokio::test]
async fn fork_copies_history_into_a_new_thread() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    mock.enqueue_stream(sse::text_turn_whole("msg_1", "first answer"));
    let thread_id = start_thread(&mut client).await;
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input("original question")}),
        )
        .await;
    client.notification("turn/completed").await;
    let fork = client
        .call_ok("thread/fork", json!({"threadId": thread_id}))
        .await;
    let fork_id = fork["thread"]["id"].as_str().expect("fork id").to_string();
    assert_ne!(fork_id, thread_id);
    assert_eq!(fork["thread"]["forkedFromId"], thread_id.as_str());
    assert_eq!(fork["thread"]["turns"].as_array().map(Vec::len), Some(1));
    let started = client.notification("thread/started").await;
    assert_eq!(started["params"]["thread"]["id"], fork_id.as_str());
    assert_eq!(
        started["params"]["thread"]["turns"],
        json!([]),
        "notifications carry no turns"
    );

    mock.enqueue_stream(sse::text_turn_whole("msg_2", "forked answer"));
    client
        .call_ok(
            "turn/start",
            json!({"threadId": fork_id, "input": text_input("follow-up")}),
        )
        .await;
    client.notification("turn/completed").await;
    let input = mock.requests()[1].body["input"].to_string();
    assert!(
        input.contains("original question") && input.contains("first answer"),
        "{input}"
    );
    // The source thread is unchanged.
    let source = client
        .call_ok(
            "thread/read",
            json!({"threadId": thread_id, "includeTurns": true}),
        )
        .await;
    assert_eq!(source["thread"]["turns"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn archive_and_unarchive_move_the_thread_and_notify() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    let thread_id = start_thread(&mut client).await;
    let id = client
        .request("thread/archive", json!({"threadId": thread_id}))
        .await;
    let status = client.next().await;
    assert_eq!(status["method"], "thread/status/changed");
    assert_eq!(status["params"]["status"]["type"], "notLoaded");
    let answer = client.next().await;
    assert_eq!(answer["id"], id);
    assert_eq!(client.next().await["method"], "thread/archived");
    let active = client.call_ok("thread/list", json!({})).await;
    assert_eq!(active["data"], json!([]));
    let archived = client
        .call_ok("thread/list", json!({"archived": true}))
        .await;
    assert_eq!(archived["data"][0]["id"], thread_id.as_str());
    let back = client
        .call_ok("thread/unarchive", json!({"threadId": thread_id}))
        .await;
    assert_eq!(back["thread"]["status"]["type"], "notLoaded");
    assert_eq!(
        client.notification("thread/unarchived").await["params"]["threadId"],
        thread_id.as_str()
    );
}

#[tokio::test]
async fn turn_start_while_a_turn_runs_joins_it_as_input() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    let (thread_id, turn_id) = hanging_turn(&mut client, &mock).await;
    mock.enqueue_stream(sse::text_turn_whole("msg_2", "both handled"));
    let joined = client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input("one more thing")}),
        )
        .await;
    assert_eq!(joined["turn"]["id"], turn_id);
    let done = client.notification("turn/completed").await;
    assert_eq!(done["params"]["turn"]["id"], turn_id);
    assert_eq!(done["params"]["turn"]["status"], "completed");
    let requests = mock.wait_for_requests(2, Duration::from_secs(5)).await;
    assert!(requests[1].body["input"]
        .to_string()
        .contains("one more thing"));
    let read = client
        .call_ok(
            "thread/read",
            json!({"threadId": thread_id, "includeTurns": true}),
        )
        .await;
    let users = read["thread"]["turns"][0]["items"]
        .as_array()
        .map(|items| items.iter().filter(|i| i["type"] == "userMessage").count());
    assert_eq!(users, Some(2));
}

#[tokio::test]
async fn a_turn_start_that_joins_a_running_turn_still_sets_its_policies() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    let (thread_id, turn_id) = hanging_turn(&mut client, &mock).await;
    mock.enqueue_stream(sse::text_turn_whole("msg_2", "Joined."));
    let joined = client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input("and be careful"),
                   "approvalPolicy": "untrusted", "sandboxPolicy": {"type": "readOnly"}}),
        )
        .await;
    assert_eq!(joined["turn"]["id"], turn_id, "joined the running turn");
    assert_eq!(joined["turn"]["startedAt"], Value::Null, "{joined}");
    client.collect_until("turn/completed").await;
    let resumed = client
        .call_ok("thread/resume", json!({"threadId": thread_id}))
        .await;
    assert_eq!(resumed["approvalPolicy"], "untrusted", "{resumed}");
    assert_eq!(resumed["sandbox"]["type"], "readOnly", "{resumed}");
}

/// As in Codex, `thread/list` (the TUI's resume picker) shows only the threads it keeps and
/// someone used: not the ephemeral thread the TUI titles each conversation with, nor the empty
/// thread every TUI start makes; `thread/loaded/list` has them all.
#[tokio::test]
async fn thread_list_leaves_out_ephemeral_and_unused_threads() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    let kept = start_thread(&mut client).await;
    mock.enqueue_stream(sse::text_turn_streamed("msg_1", &["hi"]));
    client
        .call_ok(
            "turn/start",
            json!({"threadId": kept, "input": text_input("hello")}),
        )
        .await;
    client.notification("turn/completed").await;
    let unused = start_thread_in(&mut client, std::path::Path::new("/tmp")).await;
    let title = client
        .call_ok(
            "thread/start",
            json!({"ephemeral": true, "threadSource": "thread_title"}),
        )
        .await;
    let title = title["thread"]["id"].as_str().expect("id").to_owned();
    let listed = client.call_ok("thread/list", json!({})).await;
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, [kept.as_str()]);
    let loaded = client.call_ok("thread/loaded/list", json!({})).await;
    let loaded = loaded["data"].to_string();
    for id in [&kept, &unused, &title] {
        assert!(loaded.contains(id.as_str()), "{loaded}");
    }
    // After a restart, the unused thread's rollout is not listed either.
    server.shutdown().await;
    let server = crate::common::server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let listed = client.call_ok("thread/list", json!({})).await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1), "{listed}");
}

/// The TUI reads a resumed thread's history with `thread/items/list`; without it the resume
/// failed ("failed to load a bounded thread item page").
#[tokio::test]
async fn thread_items_list_pages_a_threads_items() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    mock.enqueue_stream(sse::text_turn_streamed("msg_1", &["hi"]));
    let thread_id = start_thread(&mut client).await;
    let started = client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input("say hi")}),
        )
        .await;
    let turn_id = started["turn"]["id"].as_str().expect("turn").to_owned();
    client.notification("turn/completed").await;
    let page = client
        .call_ok(
            "thread/items/list",
            json!({"threadId": thread_id, "turnId": turn_id, "limit": 1}),
        )
        .await;
    assert_eq!(page["data"][0]["item"]["type"], "userMessage");
    assert_eq!(page["data"][0]["turnId"], turn_id.as_str());
    let rest = client
        .call_ok(
            "thread/items/list",
            json!({"threadId": thread_id, "cursor": page["nextCursor"]}),
        )
        .await;
    assert_eq!(rest["data"][0]["item"]["type"], "agentMessage");
    assert_eq!(rest["data"][0]["item"]["text"], "hi");
    let bad = client
        .call(
            "thread/items/list",
            json!({"threadId": thread_id, "cursor": {"type": "item", "itemId": "x"}}),
        )
        .await;
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
}
