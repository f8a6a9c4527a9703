//! `thread/compact/start` end to end against the mock Responses server: the compaction turn's
//! notifications in Codex order (each validated against the schema by the client), the request
//! it sends, steer and turn/start refused while it runs, and the summary replacing history.

use crate::common::*;
use serde_json::{json, Value};
use std::time::Duration;
use tally_test_support::{methods, sse, AppClient, MockReply, MockResponsesServer, SchemaMode};

fn text_input(text: &str) -> Value {
    json!([{"type": "text", "text": text, "text_elements": []}])
}

async fn completed_turn(client: &mut AppClient, mock: &MockResponsesServer, thread_id: &str) {
    mock.enqueue_stream(sse::text_turn_whole("msg_1", "the answer is teal"));
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input("pick a colour for the logo")}),
        )
        .await;
    // Drain the turn, so later reads see only what follows.
    client.collect_until("turn/completed").await;
}

#[tokio::test]
async fn compaction_runs_as_its_own_turn_and_its_summary_replaces_history() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    let thread_id = start_thread(&mut client).await;
    completed_turn(&mut client, &mock, &thread_id).await;

    mock.enqueue_stream(sse::text_turn_whole(
        "msg_c",
        "SUMMARY: the user chose teal for the logo.",
    ));
    let id = client
        .request("thread/compact/start", json!({"threadId": thread_id}))
        .await;
    let mut seen = vec![client.answer_to(&id).await];
    assert_eq!(seen[0]["result"], json!({}));
    seen.extend(client.collect_until("turn/completed").await);
    assert_eq!(
        methods(&seen),
        [
            "response",
            "thread/status/changed",
            "turn/started",
            "item/started",
            "thread/tokenUsage/updated",
            "item/completed",
            "thread/status/changed",
            "turn/completed",
        ]
    );
    assert_eq!(seen[1]["params"]["status"]["type"], "active");
    let turn_id = seen[2]["params"]["turn"]["id"].clone();
    assert_eq!(seen[3]["params"]["item"]["type"], "contextCompaction");
    assert_eq!(seen[3]["params"]["turnId"], turn_id);
    assert_eq!(seen[5]["params"]["item"], seen[3]["params"]["item"]);
    assert_eq!(seen[6]["params"]["status"]["type"], "idle");
    let done = &seen[7]["params"]["turn"];
    assert_eq!(done["id"], turn_id);
    assert_eq!(done["status"], "completed");

    // The compaction request: the whole history, no tools, no parallel calls, kind `compaction`.
    let requests = mock.requests();
    let compaction = &requests[1];
    assert_eq!(compaction.body["tools"], json!([]));
    assert_eq!(compaction.body["parallel_tool_calls"], false);
    assert_eq!(compaction.body["stream"], true);
    let metadata: Value = serde_json::from_str(
        compaction
            .header("x-codex-turn-metadata")
            .expect("metadata"),
    )
    .expect("metadata is JSON");
    assert_eq!(metadata["request_kind"], "compaction");
    assert_eq!(metadata["turn_id"], turn_id);
    let input = compaction.body["input"].to_string();
    assert!(input.contains("pick a colour for the logo") && input.contains("teal"));
    let last = compaction.body["input"]
        .as_array()
        .and_then(|i| i.last())
        .expect("input");
    assert_eq!(last["role"], "user");
    assert!(last.to_string().contains("handoff summary"), "{last}");
    let regular = &requests[0];
    assert_eq!(
        serde_json::from_str::<Value>(regular.header("x-codex-turn-metadata").expect("meta"))
            .expect("json")["request_kind"],
        "turn"
    );

    // The next request starts from the summary, not from the compacted conversation.
    mock.enqueue_stream(sse::text_turn_whole("msg_2", "ok"));
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input("and the font?")}),
        )
        .await;
    client.notification("turn/completed").await;
    let next = mock.requests()[2].body["input"].to_string();
    assert!(
        next.contains("SUMMARY: the user chose teal for the logo."),
        "{next}"
    );
    assert!(next.contains("and the font?"), "{next}");
    assert!(!next.contains("pick a colour for the logo"), "{next}");

    // The compaction turn is in the thread's history with its item.
    let read = client
        .call_ok(
            "thread/read",
            json!({"threadId": thread_id, "includeTurns": true}),
        )
        .await;
    let turns = read["thread"]["turns"].as_array().expect("turns");
    assert_eq!(turns.len(), 3);
    assert_eq!(turns[1]["items"][0]["type"], "contextCompaction");
    assert_eq!(turns[1]["status"], "completed");
}

#[tokio::test]
async fn the_summary_survives_a_restart() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let thread_id;
    {
        let server = server(&home);
        let mut client = line_client(&server, SchemaMode::Stable);
        thread_id = start_thread(&mut client).await;
        completed_turn(&mut client, &mock, &thread_id).await;
        mock.enqueue_stream(sse::text_turn_whole("msg_c", "SUMMARY-AFTER-RESTART"));
        client
            .call_ok("thread/compact/start", json!({"threadId": thread_id}))
            .await;
        client.notification("turn/completed").await;
    }
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    client
        .call_ok(
            "thread/resume",
            json!({"threadId": thread_id, "excludeTurns": true}),
        )
        .await;
    mock.enqueue_stream(sse::text_turn_whole("msg_2", "ok"));
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input("continue")}),
        )
        .await;
    client.notification("turn/completed").await;
    let input = mock.requests()[2].body["input"].to_string();
    assert!(input.contains("SUMMARY-AFTER-RESTART"), "{input}");
    assert!(!input.contains("pick a colour"), "{input}");
}

#[tokio::test]
async fn steer_and_turn_start_are_refused_while_a_compaction_runs() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Experimental);
    client.initialize(true).await;
    let started = client.call_ok("thread/start", json!({"cwd": "/tmp"})).await;
    let thread_id = started["thread"]["id"].as_str().expect("id").to_string();
    completed_turn(&mut client, &mock, &thread_id).await;

    mock.enqueue(MockReply::StreamThenHang(vec![
        sse::created("resp_c"),
        sse::output_text_delta("msg_c", "partial summary"),
    ]));
    client
        .call_ok("thread/compact/start", json!({"threadId": thread_id}))
        .await;
    let started = client.notification("turn/started").await;
    let turn_id = started["params"]["turn"]["id"]
        .as_str()
        .expect("turn id")
        .to_string();
    mock.wait_for_requests(2, Duration::from_secs(5)).await;

    let steer = client
        .call(
            "turn/steer",
            json!({"threadId": thread_id, "expectedTurnId": turn_id, "input": text_input("more")}),
        )
        .await;
    assert_eq!(steer["error"]["code"], -32600, "{steer}");
    assert!(
        steer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not steerable")),
        "{steer}"
    );
    assert_eq!(
        steer["error"]["data"]["codexErrorInfo"]["activeTurnNotSteerable"]["turnKind"],
        "compact"
    );
    let start = client
        .call(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input("new work")}),
        )
        .await;
    assert_eq!(start["error"]["code"], -32600, "{start}");
    assert_eq!(
        start["error"]["data"]["codexErrorInfo"]["activeTurnNotSteerable"]["turnKind"],
        "compact"
    );
    let again = client
        .call("thread/compact/start", json!({"threadId": thread_id}))
        .await;
    assert_eq!(again["error"]["code"], -32600, "{again}");

    // An interrupt stops it; history stays as it was.
    client
        .call_ok(
            "turn/interrupt",
            json!({"threadId": thread_id, "turnId": turn_id}),
        )
        .await;
    let done = client.notification("turn/completed").await;
    assert_eq!(
        done["params"]["turn"]["status"], "interrupted",
        "{done}\n{:#?}",
        client.received
    );
    mock.enqueue_stream(sse::text_turn_whole("msg_2", "ok"));
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input("after")}),
        )
        .await;
    client.notification("turn/completed").await;
    let input = mock.requests()[2].body["input"].to_string();
    assert!(input.contains("pick a colour for the logo"), "{input}");
    assert!(!input.contains("partial summary"), "{input}");
}

#[tokio::test]
async fn compaction_errors_name_the_problem() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let unknown = client
        .call(
            "thread/compact/start",
            json!({"threadId": "0196f0a4-6f5e-7a1b-9c2d-3e4f5a6b7c8d"}),
        )
        .await;
    assert_eq!(unknown["error"]["code"], -32600);
    assert!(unknown["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("thread not found")));
    let bad = client
        .call("thread/compact/start", json!({"threadId": 7}))
        .await;
    assert_eq!(bad["error"]["code"], -32602);
    assert!(bad["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("threadId")));
}

#[tokio::test]
async fn the_offline_model_answers_a_compaction() {
    let home = tempfile::tempdir().expect("home");
    std::fs::write(
        home.path().join("config.toml"),
        "model_provider = \"tally-offline\"\n",
    )
    .expect("config");
    let config = tally_core::Config::load(home.path()).expect("config");
    let server = std::sync::Arc::new(tally_app_server::AppServer::new(
        config,
        tally_app_server::AppServerOptions::default(),
    ));
    let mut client = line_client(&server, SchemaMode::Stable);
    let thread_id = start_thread(&mut client).await;
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input("remember the blue door")}),
        )
        .await;
    client.notification("turn/completed").await;
    client
        .call_ok("thread/compact/start", json!({"threadId": thread_id}))
        .await;
    let done = client.notification("turn/completed").await;
    assert_eq!(done["params"]["turn"]["status"], "completed");
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input("what door?")}),
        )
        .await;
    let rest = client.collect_until("turn/completed").await;
    assert_eq!(
        rest.last().expect("done")["params"]["turn"]["status"],
        "completed"
    );
}
