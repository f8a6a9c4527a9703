//! Tools and approvals end to end: commands, patches and dynamic tools driven by the offline
//! model (and the mock Responses server), approvals answered by scripted clients, broadcast,
//! replay after reconnect, interrupts, and the sandbox. Every server message is schema-checked.

use crate::common::*;
use serde_json::{json, Value};
use std::sync::Arc;
use tally_app_server::{AppServer, AppServerOptions};
use tally_core::Config;
use tally_test_support::{methods, sse, AppClient, MockResponsesServer, SchemaMode};
use tempfile::TempDir;

fn text_input(text: &str) -> Value {
    json!([{"type": "text", "text": text, "text_elements": []}])
}

/// A home on the offline model with the given approval policy and sandbox mode.
fn offline_home(policy: &str, sandbox: &str) -> TempDir {
    let home = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "model_provider = \"tally-offline\"\napproval_policy = \"{policy}\"\nsandbox_mode = \"{sandbox}\"\n"
    );
    std::fs::write(home.path().join("config.toml"), config).expect("write config");
    home
}

fn offline_server(home: &TempDir, options: AppServerOptions) -> Arc<AppServer> {
    let config = Config::load(home.path()).expect("config loads");
    Arc::new(AppServer::new(config, options))
}

/// Initializes and starts a thread whose cwd is `workspace`; returns the thread id.
/// Asserts the turn's messages hold no approval request.
fn assert_asked_nothing(messages: &[Value]) {
    assert!(
        !methods(messages)
            .iter()
            .any(|m| m.ends_with("requestApproval")),
        "asked for approval: {:?}",
        methods(messages)
    );
}

async fn start_in(client: &mut AppClient, workspace: &TempDir, extra: Value) -> String {
    let mut params = json!({"cwd": workspace.path().display().to_string()});
    if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    let result = client.call_ok("thread/start", params).await;
    client.notification("thread/started").await;
    result["thread"]["id"]
        .as_str()
        .expect("thread id")
        .to_string()
}

async fn start_turn(client: &mut AppClient, thread_id: &str, text: &str) -> String {
    let result = client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input(text)}),
        )
        .await;
    result["turn"]["id"].as_str().expect("turn id").to_string()
}

/// Waits for the next server request and returns it.
async fn server_request(client: &mut AppClient, method: &str) -> Value {
    client
        .wait_for(|m| m["method"] == method && m.get("id").is_some())
        .await
}

/// Reads messages until the server request `method` arrives; returns all of them in order.
async fn collect_until_request(client: &mut AppClient, method: &str) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let m = client.next().await;
        let done = m["method"] == method && m.get("id").is_some();
        out.push(m);
        if done {
            return out;
        }
    }
}

async fn answer(client: &mut AppClient, request: &Value, result: Value) {
    client
        .send(json!({"id": request["id"], "result": result}))
        .await;
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

fn completed_item<'a>(messages: &'a [Value], kind: &str) -> &'a Value {
    messages
        .iter()
        .find(|m| m["method"] == "item/completed" && m["params"]["item"]["type"] == kind)
        .map(|m| &m["params"]["item"])
        .unwrap_or_else(|| panic!("no completed {kind} item in {messages:#?}"))
}

fn final_text(messages: &[Value]) -> String {
    let done = messages.last().expect("turn/completed");
    done["params"]["turn"]["items"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn an_accepted_command_runs_streams_its_output_and_completes_in_codex_order() {
    let home = offline_home("untrusted", "workspace-write");
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home, AppServerOptions::default());
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let thread_id = start_in(&mut client, &workspace, json!({})).await;
    start_turn(&mut client, &thread_id, "run: echo hello && touch marker").await;

    let before = collect_until_request(&mut client, "item/commandExecution/requestApproval").await;
    let request = before.last().expect("request").clone();
    assert_eq!(request["params"]["threadId"], thread_id);
    assert_eq!(
        request["params"]["command"],
        "/bin/bash -lc 'echo hello && touch marker'"
    );
    let waiting = before
        .iter()
        .rfind(|m| m["method"] == "thread/status/changed")
        .expect("status change");
    assert_eq!(
        waiting["params"]["status"],
        json!({"type": "active", "activeFlags": ["waitingOnApproval"]})
    );
    assert!(
        !workspace.path().join("marker").exists(),
        "ran before approval"
    );

    answer(&mut client, &request, json!({"decision": "accept"})).await;
    let rest = client.collect_until("turn/completed").await;
    let mut seen = methods(&before);
    seen.extend(methods(&rest));
    assert_in_order(
        &seen,
        &[
            "thread/status/changed",
            "item/started",
            "item/commandExecution/requestApproval",
            "serverRequest/resolved",
            "thread/status/changed",
            "item/commandExecution/outputDelta",
            "item/completed",
            "thread/status/changed",
            "turn/completed",
        ],
    );
    let resolved = rest
        .iter()
        .find(|m| m["method"] == "serverRequest/resolved")
        .expect("resolved");
    assert_eq!(resolved["params"]["requestId"], request["id"]);
    let item = completed_item(&rest, "commandExecution");
    assert_eq!(item["status"], "completed");
    assert_eq!(item["exitCode"], 0);
    // A login shell may print profile noise first; the command's own output ends it.
    let output = item["aggregatedOutput"].as_str().unwrap_or_default();
    assert!(output.ends_with("hello\n"), "{output}");
    assert!(workspace.path().join("marker").exists());
    assert!(final_text(&rest).contains("Process exited with code 0"));
}

#[tokio::test]
async fn a_declined_command_does_not_run_and_the_model_hears_it_was_rejected() {
    let home = offline_home("untrusted", "workspace-write");
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home, AppServerOptions::default());
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let thread_id = start_in(&mut client, &workspace, json!({})).await;
    start_turn(&mut client, &thread_id, "run: touch marker").await;
    let request = server_request(&mut client, "item/commandExecution/requestApproval").await;
    answer(&mut client, &request, json!({"decision": "decline"})).await;
    let rest = client.collect_until("turn/completed").await;
    assert_in_order(
        &methods(&rest),
        &[
            "serverRequest/resolved",
            "thread/status/changed",
            "item/completed",
        ],
    );
    assert_eq!(
        completed_item(&rest, "commandExecution")["status"],
        "declined"
    );
    assert!(!workspace.path().join("marker").exists());
    assert_eq!(
        rest.last().expect("done")["params"]["turn"]["status"],
        "completed"
    );
    assert!(
        final_text(&rest).contains("rejected by user"),
        "{}",
        final_text(&rest)
    );
}

#[tokio::test]
async fn accept_for_session_is_not_asked_again_for_the_same_command() {
    let home = offline_home("untrusted", "workspace-write");
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home, AppServerOptions::default());
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let thread_id = start_in(&mut client, &workspace, json!({})).await;
    start_turn(&mut client, &thread_id, "run: touch marker").await;
    let request = server_request(&mut client, "item/commandExecution/requestApproval").await;
    // A client that did not opt into the experimental API gets no `availableDecisions`.
    assert!(request["params"].get("availableDecisions").is_none());
    assert_eq!(
        request["params"]["proposedExecpolicyAmendment"],
        json!(["touch", "marker"])
    );
    answer(
        &mut client,
        &request,
        json!({"decision": "acceptForSession"}),
    )
    .await;
    client.collect_until("turn/completed").await;

    std::fs::remove_file(workspace.path().join("marker")).expect("marker was made");
    start_turn(&mut client, &thread_id, "run: touch marker").await;
    let second = client.collect_until("turn/completed").await;
    assert_asked_nothing(&second);
    assert_eq!(
        completed_item(&second, "commandExecution")["status"],
        "completed"
    );
    assert!(workspace.path().join("marker").exists());
}

#[tokio::test]
async fn an_accepted_execpolicy_amendment_stops_asking_for_commands_with_that_prefix() {
    let home = offline_home("untrusted", "workspace-write");
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home, AppServerOptions::default());
    // Experimental: the client checks `availableDecisions` against the experimental schema.
    let mut client = line_client(&server, SchemaMode::Experimental);
    client.initialize(true).await;
    let thread_id = start_in(&mut client, &workspace, json!({})).await;
    start_turn(&mut client, &thread_id, "run: touch marker").await;
    let request = server_request(&mut client, "item/commandExecution/requestApproval").await;
    let amendment = json!(["touch", "marker"]);
    assert_eq!(request["params"]["proposedExecpolicyAmendment"], amendment);
    assert_eq!(
        request["params"]["availableDecisions"],
        json!(["accept", "acceptForSession",
            {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": amendment}},
            "decline", "cancel"])
    );
    answer(
        &mut client,
        &request,
        json!({"decision": {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": amendment}}}),
    )
    .await;
    client.collect_until("turn/completed").await;
    assert!(workspace.path().join("marker").exists());

    // A longer command with the same prefix runs without asking.
    start_turn(&mut client, &thread_id, "run: touch marker second").await;
    let second = client.collect_until("turn/completed").await;
    assert_asked_nothing(&second);
    assert!(workspace.path().join("second").exists());

    // Another prefix is still asked about, and shell syntax gets no amendment.
    start_turn(&mut client, &thread_id, "run: touch other && true").await;
    let third = server_request(&mut client, "item/commandExecution/requestApproval").await;
    assert!(third["params"].get("proposedExecpolicyAmendment").is_none());
    assert_eq!(
        third["params"]["availableDecisions"],
        json!(["accept", "acceptForSession", "decline", "cancel"])
    );
    answer(&mut client, &third, json!({"decision": "decline"})).await;
    client.collect_until("turn/completed").await;
}

#[tokio::test]
async fn cancel_declines_the_command_and_interrupts_the_turn() {
    let home = offline_home("untrusted", "workspace-write");
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home, AppServerOptions::default());
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let thread_id = start_in(&mut client, &workspace, json!({})).await;
    start_turn(&mut client, &thread_id, "run: touch marker").await;
    let request = server_request(&mut client, "item/commandExecution/requestApproval").await;
    answer(&mut client, &request, json!({"decision": "cancel"})).await;
    let rest = client.collect_until("turn/completed").await;
    assert_eq!(
        completed_item(&rest, "commandExecution")["status"],
        "declined"
    );
    assert_eq!(
        rest.last().expect("done")["params"]["turn"]["status"],
        "interrupted"
    );
    assert!(!workspace.path().join("marker").exists());
}

#[tokio::test]
async fn malformed_foreign_and_repeated_answers_are_ignored_until_a_valid_one() {
    let home = offline_home("untrusted", "workspace-write");
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home, AppServerOptions::default());
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let thread_id = start_in(&mut client, &workspace, json!({})).await;
    start_turn(&mut client, &thread_id, "run: touch marker").await;
    let request = server_request(&mut client, "item/commandExecution/requestApproval").await;
    answer(&mut client, &request, json!({"decision": "perhaps"})).await;
    client
        .send(json!({"id": 999, "result": {"decision": "accept"}}))
        .await;
    answer(&mut client, &request, json!({"decision": "accept"})).await;
    answer(&mut client, &request, json!({"decision": "decline"})).await;
    let rest = client.collect_until("turn/completed").await;
    let resolved = methods(&rest)
        .iter()
        .filter(|m| *m == "serverRequest/resolved")
        .count();
    assert_eq!(resolved, 1);
    assert_eq!(
        completed_item(&rest, "commandExecution")["status"],
        "completed"
    );
    assert!(workspace.path().join("marker").exists());
    let outgoing = server.outgoing();
    let stats = outgoing.request_stats();
    assert_eq!(
        stats
            .malformed_answers
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // The unknown id and the second answer.
    assert_eq!(
        stats
            .ignored_answers
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[tokio::test]
async fn a_mock_model_command_call_offers_the_tools_and_gets_the_output_back() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    // Top-level keys go before the provider table.
    let config = std::fs::read_to_string(home.path().join("config.toml")).expect("config");
    std::fs::write(
        home.path().join("config.toml"),
        format!("approval_policy = \"untrusted\"\n{config}"),
    )
    .expect("write");
    let workspace = tempfile::tempdir().expect("workspace");
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Experimental);
    client.initialize(true).await;
    let thread_id = start_in(&mut client, &workspace, json!({})).await;
    mock.enqueue_stream(sse::function_call_turn(
        "call_1",
        "exec_command",
        &json!({"cmd": "touch made-by-mock && echo from-mock"}).to_string(),
    ));
    mock.enqueue_stream(sse::text_turn_whole("msg_2", "Done."));
    start_turn(&mut client, &thread_id, "say it").await;
    let request = server_request(&mut client, "item/commandExecution/requestApproval").await;
    assert_eq!(request["params"]["itemId"], "call_1");
    answer(&mut client, &request, json!({"decision": "accept"})).await;
    let rest = client.collect_until("turn/completed").await;
    assert_eq!(completed_item(&rest, "commandExecution")["id"], "call_1");
    assert_eq!(final_text(&rest), "Done.");
    let requests = mock.requests();
    let tools: Vec<&str> = requests[0].body["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(tools, ["exec_command", "apply_patch"]);
    let input = requests[1].body["input"].as_array().expect("input");
    let output = input
        .iter()
        .find(|i| i["type"] == "function_call_output")
        .expect("the command's output goes back to the model");
    assert_eq!(output["call_id"], "call_1");
    assert!(output["output"]
        .as_str()
        .unwrap_or_default()
        .contains("from-mock"));
}

const ADD_PATCH: &str =
    "patch: *** Begin Patch\n*** Update File: notes.txt\n@@\n-old line\n+new line\n*** End Patch";

#[tokio::test]
async fn an_accepted_patch_is_applied_with_file_change_items_and_the_turn_diff() {
    let home = offline_home("untrusted", "workspace-write");
    let workspace = tempfile::tempdir().expect("workspace");
    std::fs::write(workspace.path().join("notes.txt"), "old line\n").expect("write");
    let server = offline_server(&home, AppServerOptions::default());
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let thread_id = start_in(&mut client, &workspace, json!({})).await;
    start_turn(&mut client, &thread_id, ADD_PATCH).await;
    let before = collect_until_request(&mut client, "item/fileChange/requestApproval").await;
    let request = before.last().expect("request").clone();
    assert_in_order(
        &methods(&before),
        &[
            "item/started",
            "thread/status/changed",
            "item/fileChange/requestApproval",
        ],
    );
    answer(&mut client, &request, json!({"decision": "accept"})).await;
    let rest = client.collect_until("turn/completed").await;
    assert_in_order(
        &methods(&rest),
        &[
            "serverRequest/resolved",
            "thread/status/changed",
            "item/completed",
            "turn/diff/updated",
        ],
    );
    let item = completed_item(&rest, "fileChange");
    assert_eq!(item["status"], "completed");
    assert_eq!(item["changes"][0]["kind"]["type"], "update");
    let diff = rest
        .iter()
        .find(|m| m["method"] == "turn/diff/updated")
        .expect("diff")["params"]["diff"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(diff.contains("-old line\n+new line"), "{diff}");
    assert_eq!(
        std::fs::read_to_string(workspace.path().join("notes.txt")).expect("read"),
        "new line\n"
    );
}

#[tokio::test]
async fn a_declined_patch_leaves_the_file_unchanged() {
    let home = offline_home("untrusted", "workspace-write");
    let workspace = tempfile::tempdir().expect("workspace");
    std::fs::write(workspace.path().join("notes.txt"), "old line\n").expect("write");
    let server = offline_server(&home, AppServerOptions::default());
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let thread_id = start_in(&mut client, &workspace, json!({})).await;
    start_turn(&mut client, &thread_id, ADD_PATCH).await;
    let request = server_request(&mut client, "item/fileChange/requestApproval").await;
    answer(&mut client, &request, json!({"decision": "decline"})).await;
    let rest = client.collect_until("turn/completed").await;
    assert_eq!(completed_item(&rest, "fileChange")["status"], "declined");
    assert_eq!(
        std::fs::read_to_string(workspace.path().join("notes.txt")).expect("read"),
        "old line\n"
    );
    assert!(final_text(&rest).contains("rejected by user"));
}

#[tokio::test]
async fn a_dynamic_tool_round_trips_through_item_tool_call() {
    let home = offline_home("on-request", "workspace-write");
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home, AppServerOptions::default());
    let mut client = line_client(&server, SchemaMode::Experimental);
    client.initialize(true).await;
    let tools = json!({"dynamicTools": [{"type": "function", "name": "lookup_ticket",
        "description": "Finds a ticket", "inputSchema": {"type": "object", "properties": {"id": {"type": "string"}}}}]});
    let thread_id = start_in(&mut client, &workspace, tools).await;
    start_turn(
        &mut client,
        &thread_id,
        "tool: lookup_ticket {\"id\": \"T-1\"}",
    )
    .await;
    let request = server_request(&mut client, "item/tool/call").await;
    assert_eq!(request["params"]["tool"], "lookup_ticket");
    assert_eq!(request["params"]["arguments"], json!({"id": "T-1"}));
    answer(
        &mut client,
        &request,
        json!({"contentItems": [{"type": "inputText", "text": "ticket T-1 is open"}], "success": true}),
    )
    .await;
    let rest = client.collect_until("turn/completed").await;
    let item = completed_item(&rest, "dynamicToolCall");
    assert_eq!(item["status"], "completed");
    assert_eq!(item["success"], true);
    assert_eq!(item["contentItems"][0]["text"], "ticket T-1 is open");
    assert!(final_text(&rest).contains("ticket T-1 is open"));
}

/// The names of the tools a model request offered.
fn offered_tools(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn dynamic_tools_survive_a_restart_and_a_fork() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let workspace = tempfile::tempdir().expect("workspace");
    let thread_id;
    {
        let server = server(&home);
        let mut client = line_client(&server, SchemaMode::Experimental);
        client.initialize(true).await;
        let tools = json!({"dynamicTools": [{"type": "function", "name": "lookup_ticket",
            "description": "Finds a ticket", "inputSchema": {"type": "object"}}]});
        thread_id = start_in(&mut client, &workspace, tools).await;
        mock.enqueue_stream(sse::text_turn_whole("msg_1", "first"));
        start_turn(&mut client, &thread_id, "hello").await;
        client.notification("turn/completed").await;
    }
    assert!(offered_tools(&mock.requests()[0].body).contains(&"lookup_ticket".to_string()));

    let restarted = server(&home);
    let mut client = line_client(&restarted, SchemaMode::Experimental);
    client.initialize(true).await;
    client
        .call_ok("thread/resume", json!({"threadId": thread_id}))
        .await;
    mock.enqueue_stream(sse::text_turn_whole("msg_2", "second"));
    start_turn(&mut client, &thread_id, "again").await;
    client.notification("turn/completed").await;
    let resumed = offered_tools(&mock.requests()[1].body);
    assert!(
        resumed.contains(&"lookup_ticket".to_string()),
        "{resumed:?}"
    );

    // A fork of the thread (read from disk by a fresh server) offers them too.
    drop(client);
    let fresh = server(&home);
    let mut client = line_client(&fresh, SchemaMode::Experimental);
    client.initialize(true).await;
    let forked = client
        .call_ok("thread/fork", json!({"threadId": thread_id}))
        .await;
    let fork_id = forked["thread"]["id"]
        .as_str()
        .expect("fork id")
        .to_string();
    mock.enqueue_stream(sse::text_turn_whole("msg_3", "third"));
    start_turn(&mut client, &fork_id, "forked").await;
    client.notification("turn/completed").await;
    let fork_tools = offered_tools(&mock.requests()[2].body);
    assert!(
        fork_tools.contains(&"lookup_ticket".to_string()),
        "{fork_tools:?}"
    );
}

#[tokio::test]
async fn dynamic_tools_need_the_experimental_capability() {
    let home = offline_home("on-request", "workspace-write");
    let server = offline_server(&home, AppServerOptions::default());
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let answer = client
        .call(
            "thread/start",
            json!({"dynamicTools": [{"type": "function", "name": "t", "description": "d", "inputSchema": {}}]}),
        )
        .await;
    assert_eq!(answer["error"]["code"], -32600);
}

#[tokio::test]
async fn a_broadcast_approval_is_settled_by_the_first_answer_and_both_clients_hear_it() {
    let home = offline_home("untrusted", "workspace-write");
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home, AppServerOptions::default());
    let url = websocket_url(&server).await;
    let mut a = AppClient::over_websocket(&url, SchemaMode::Stable).await;
    let mut b = AppClient::over_websocket(&url, SchemaMode::Stable).await;
    a.initialize(false).await;
    b.initialize(false).await;
    let thread_id = start_in(&mut a, &workspace, json!({})).await;
    b.call_ok(
        "thread/resume",
        json!({"threadId": thread_id, "excludeTurns": true}),
    )
    .await;
    start_turn(&mut a, &thread_id, "run: touch marker").await;
    let to_a = server_request(&mut a, "item/commandExecution/requestApproval").await;
    let to_b = server_request(&mut b, "item/commandExecution/requestApproval").await;
    assert_eq!(to_a["id"], to_b["id"], "one request, delivered to both");
    answer(&mut b, &to_b, json!({"decision": "accept"})).await;
    let resolved_b = b.notification("serverRequest/resolved").await;
    assert_eq!(resolved_b["params"]["requestId"], to_a["id"]);
    // A's late answer is ignored: the command runs once, as B decided.
    answer(&mut a, &to_a, json!({"decision": "decline"})).await;
    let rest = a.collect_until("turn/completed").await;
    assert!(methods(&rest).contains(&"serverRequest/resolved".to_string()));
    assert_eq!(
        completed_item(&rest, "commandExecution")["status"],
        "completed"
    );
    assert!(workspace.path().join("marker").exists());
}

#[tokio::test]
async fn a_pending_approval_is_replayed_after_reconnect_and_its_answer_completes_the_turn() {
    let home = offline_home("untrusted", "workspace-write");
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home, AppServerOptions::default());
    let mut first = line_client(&server, SchemaMode::Stable);
    first.initialize(false).await;
    let thread_id = start_in(&mut first, &workspace, json!({})).await;
    start_turn(&mut first, &thread_id, "run: touch marker").await;
    let original = server_request(&mut first, "item/commandExecution/requestApproval").await;
    first.close();

    let mut second = line_client(&server, SchemaMode::Stable);
    second.initialize(false).await;
    let id = second
        .request(
            "thread/resume",
            json!({"threadId": thread_id, "excludeTurns": true}),
        )
        .await;
    let mut seen = Vec::new();
    loop {
        let m = second.next().await;
        let is_request = m["method"] == "item/commandExecution/requestApproval";
        seen.push(m);
        if is_request {
            break;
        }
    }
    let response = seen
        .iter()
        .find(|m| m["id"] == id && m.get("method").is_none())
        .expect("response");
    assert_eq!(
        response["result"]["thread"]["status"],
        json!({"type": "active", "activeFlags": ["waitingOnApproval"]})
    );
    assert_in_order(
        &methods(&seen),
        &["response", "item/commandExecution/requestApproval"],
    );
    let replayed = seen.last().expect("request").clone();
    assert_eq!(replayed["id"], original["id"]);
    assert_eq!(replayed["params"], original["params"]);
    answer(&mut second, &replayed, json!({"decision": "accept"})).await;
    let rest = second.collect_until("turn/completed").await;
    assert_eq!(
        rest.last().expect("done")["params"]["turn"]["status"],
        "completed"
    );
    assert!(workspace.path().join("marker").exists());
}

#[tokio::test]
async fn interrupting_a_turn_resolves_its_pending_approval() {
    let home = offline_home("untrusted", "workspace-write");
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home, AppServerOptions::default());
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let thread_id = start_in(&mut client, &workspace, json!({})).await;
    let turn_id = start_turn(&mut client, &thread_id, "run: touch marker").await;
    let request = server_request(&mut client, "item/commandExecution/requestApproval").await;
    client
        .send(json!({"id": "int-1", "method": "turn/interrupt", "params": {"threadId": thread_id, "turnId": turn_id}}))
        .await;
    let rest = client.collect_until("turn/completed").await;
    assert_in_order(
        &methods(&rest),
        &[
            "serverRequest/resolved",
            "item/completed",
            "response",
            "thread/status/changed",
            "turn/completed",
        ],
    );
    let resolved = rest
        .iter()
        .find(|m| m["method"] == "serverRequest/resolved")
        .expect("resolved");
    assert_eq!(resolved["params"]["requestId"], request["id"]);
    assert_eq!(
        completed_item(&rest, "commandExecution")["status"],
        "declined"
    );
    assert_eq!(
        rest.last().expect("done")["params"]["turn"]["status"],
        "interrupted"
    );
    // A late answer changes nothing.
    answer(&mut client, &request, json!({"decision": "accept"})).await;
    client.call_ok("thread/loaded/list", json!({})).await;
    assert!(!workspace.path().join("marker").exists());
}

#[tokio::test]
async fn under_workspace_write_a_command_cannot_write_outside_the_workspace() {
    if !tally_core::tools::sandbox::landlock_available() {
        eprintln!("Landlock is not available on this kernel: nothing to measure");
        return;
    }
    let home = offline_home("never", "workspace-write");
    let workspace = tempfile::tempdir().expect("workspace");
    let outside = tempfile::tempdir_in("/var/tmp").expect("outside dir");
    let target = outside.path().join("escaped");
    let server = offline_server(&home, AppServerOptions::default());
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let thread_id = start_in(&mut client, &workspace, json!({})).await;
    let text = format!("run: echo in > inside && echo out > {}", target.display());
    start_turn(&mut client, &thread_id, &text).await;
    let rest = client.collect_until("turn/completed").await;
    assert_asked_nothing(&rest);
    let item = completed_item(&rest, "commandExecution");
    assert_eq!(item["status"], "failed");
    assert_eq!(item["exitCode"], 1);
    assert!(
        item["aggregatedOutput"]
            .as_str()
            .unwrap_or_default()
            .contains("Permission denied"),
        "{item}"
    );
    assert!(workspace.path().join("inside").exists());
    assert!(!target.exists());
}

#[tokio::test]
async fn a_workdir_outside_the_workspace_does_not_become_writable() {
    if !tally_core::tools::sandbox::landlock_available() {
        eprintln!("Landlock is not available on this kernel: nothing to measure");
        return;
    }
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    add_config(
        &home,
        "approval_policy = \"never\"\nsandbox_mode = \"workspace-write\"\n",
        "",
    );
    let workspace = tempfile::tempdir().expect("workspace");
    let outside = tempfile::tempdir_in("/var/tmp").expect("outside dir");
    let server = offline_server(&home, AppServerOptions::default());
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let thread_id = start_in(&mut client, &workspace, json!({})).await;
    // The model runs a command in a directory of its choosing, outside the workspace.
    let args =
        json!({"cmd": "echo out > escaped", "workdir": outside.path().display().to_string()});
    mock.enqueue_stream(sse::function_call_turn(
        "call_1",
        "exec_command",
        &args.to_string(),
    ));
    mock.enqueue_stream(sse::text_turn_whole("msg_2", "Done."));
    start_turn(&mut client, &thread_id, "write there").await;
    let rest = client.collect_until("turn/completed").await;
    assert_asked_nothing(&rest);
    let item = completed_item(&rest, "commandExecution");
    assert_eq!(item["status"], "failed", "{item}");
    assert!(!outside.path().join("escaped").exists());
}

#[tokio::test]
async fn on_request_asks_only_when_the_model_wants_out_of_the_sandbox() {
    let home = offline_home("on-request", "workspace-write");
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home, AppServerOptions::default());
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let thread_id = start_in(&mut client, &workspace, json!({})).await;
    start_turn(&mut client, &thread_id, "run: touch plain").await;
    let plain = client.collect_until("turn/completed").await;
    assert_asked_nothing(&plain);
    assert!(workspace.path().join("plain").exists());

    start_turn(&mut client, &thread_id, "run-escalated: touch escalated").await;
    let request = server_request(&mut client, "item/commandExecution/requestApproval").await;
    assert_eq!(
        request["params"]["reason"],
        "the user asked to run this outside the sandbox"
    );
    answer(&mut client, &request, json!({"decision": "accept"})).await;
    let rest = client.collect_until("turn/completed").await;
    assert_eq!(
        completed_item(&rest, "commandExecution")["status"],
        "completed"
    );
    assert!(workspace.path().join("escalated").exists());

    // A network rule that denies is a refusal, not an accept.
    start_turn(&mut client, &thread_id, "run-escalated: touch denied").await;
    let request = server_request(&mut client, "item/commandExecution/requestApproval").await;
    let deny = json!({"applyNetworkPolicyAmendment": {"network_policy_amendment":
        {"host": "example.com", "action": "deny"}}});
    answer(&mut client, &request, json!({"decision": deny})).await;
    let rest = client.collect_until("turn/completed").await;
    assert_eq!(
        completed_item(&rest, "commandExecution")["status"],
        "declined"
    );
    assert!(!workspace.path().join("denied").exists());
}

#[tokio::test]
async fn without_landlock_clients_are_warned_once_and_commands_ask_first() {
    let home = offline_home("on-request", "workspace-write");
    let workspace = tempfile::tempdir().expect("workspace");
    let options = AppServerOptions {
        disable_landlock: true,
        ..AppServerOptions::default()
    };
    let server = offline_server(&home, options);
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let thread_id = start_in(&mut client, &workspace, json!({})).await;
    start_turn(&mut client, &thread_id, "run: touch marker").await;
    let request = server_request(&mut client, "item/commandExecution/requestApproval").await;
    assert_eq!(
        request["params"]["reason"],
        "the sandbox is not available on this system"
    );
    answer(&mut client, &request, json!({"decision": "accept"})).await;
    client.collect_until("turn/completed").await;
    assert!(workspace.path().join("marker").exists());
    let warnings: Vec<&Value> = client
        .received
        .iter()
        .filter(|m| m["method"] == "configWarning")
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0]["params"]["summary"]
        .as_str()
        .unwrap_or_default()
        .contains("Landlock"));
}

#[tokio::test]
async fn with_landlock_no_sandbox_warning_is_sent() {
    let home = offline_home("on-request", "workspace-write");
    let server = offline_server(&home, AppServerOptions::default());
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    // A request after initialize: everything initialize sent has arrived before its answer.
    client.call_ok("thread/loaded/list", json!({})).await;
    let warned = client
        .received
        .iter()
        .any(|m| m["method"] == "configWarning");
    assert_eq!(warned, !tally_core::tools::sandbox::landlock_available());
}

#[tokio::test]
async fn a_request_nobody_can_answer_any_more_is_cancelled_after_the_orphan_deadline() {
    let home = offline_home("untrusted", "workspace-write");
    let workspace = tempfile::tempdir().expect("workspace");
    let options = AppServerOptions {
        request_deadlines: tally_app_server::outgoing::RequestDeadlines {
            unanswered: std::time::Duration::from_secs(3600),
            orphaned: std::time::Duration::from_millis(200),
        },
        ..AppServerOptions::default()
    };
    let server = offline_server(&home, options);
    let mut first = line_client(&server, SchemaMode::Stable);
    first.initialize(false).await;
    let thread_id = start_in(&mut first, &workspace, json!({})).await;
    start_turn(&mut first, &thread_id, "run: touch marker").await;
    server_request(&mut first, "item/commandExecution/requestApproval").await;
    first.close();

    // Nobody resumes the thread; an observer reads it (without subscribing) until the turn ends.
    let mut observer = line_client(&server, SchemaMode::Stable);
    observer.initialize(false).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let turn = loop {
        let read = observer
            .call_ok(
                "thread/read",
                json!({"threadId": thread_id, "includeTurns": true}),
            )
            .await;
        let turn = read["thread"]["turns"][0].clone();
        if turn["status"] != "inProgress" {
            break turn;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the request never lapsed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(turn["status"], "interrupted");
    let command = turn["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["type"] == "commandExecution"))
        .expect("the command item");
    assert_eq!(command["status"], "declined");
    assert!(!workspace.path().join("marker").exists());
    let outgoing = server.outgoing();
    assert_eq!(
        outgoing
            .request_stats()
            .lapsed
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn a_steer_while_an_approval_is_pending_joins_the_turn_after_the_command() {
    let home = offline_home("untrusted", "workspace-write");
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home, AppServerOptions::default());
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let thread_id = start_in(&mut client, &workspace, json!({})).await;
    let turn_id = start_turn(&mut client, &thread_id, "run: touch marker").await;
    let request = server_request(&mut client, "item/commandExecution/requestApproval").await;
    client
        .call_ok(
            "turn/steer",
            json!({"threadId": thread_id, "expectedTurnId": turn_id, "input": text_input("and then say bye")}),
        )
        .await;
    answer(&mut client, &request, json!({"decision": "accept"})).await;
    let rest = client.collect_until("turn/completed").await;
    let command_done = rest
        .iter()
        .position(|m| {
            m["method"] == "item/completed" && m["params"]["item"]["type"] == "commandExecution"
        })
        .expect("command completed");
    let steer_done = rest
        .iter()
        .position(|m| {
            m["method"] == "item/completed"
                && m["params"]["item"]["content"][0]["text"] == "and then say bye"
        })
        .expect("steer recorded");
    assert!(command_done < steer_done, "the steer waited for the tool");
    assert!(final_text(&rest).contains("and then say bye"));
}

#[tokio::test]
async fn interrupting_a_running_command_kills_it_and_ends_the_turn() {
    let home = offline_home("never", "workspace-write");
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home, AppServerOptions::default());
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let thread_id = start_in(&mut client, &workspace, json!({})).await;
    let turn_id = start_turn(
        &mut client,
        &thread_id,
        "run: echo started && sleep 30 && touch marker",
    )
    .await;
    client
        .notification("item/commandExecution/outputDelta")
        .await;
    let started = std::time::Instant::now();
    client
        .call_ok(
            "turn/interrupt",
            json!({"threadId": thread_id, "turnId": turn_id}),
        )
        .await;
    let rest = client.collect_until("turn/completed").await;
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(
        completed_item(&rest, "commandExecution")["status"],
        "failed"
    );
    assert_eq!(
        rest.last().expect("done")["params"]["turn"]["status"],
        "interrupted"
    );
    assert!(!workspace.path().join("marker").exists());
}

/// The Codex TUI names a new task with an ephemeral read-only thread whose turn carries an
/// `outputSchema` and quotes the user's prompt; it rejects any server request from that thread.
#[tokio::test]
async fn a_structured_side_turn_answers_in_its_schema_and_never_asks_for_approval() {
    let home = offline_home("on-request", "workspace-write");
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home, AppServerOptions::default());
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let thread_id = start_in(
        &mut client,
        &workspace,
        json!({"ephemeral": true, "sandbox": "read-only", "threadSource": "thread_title"}),
    )
    .await;
    let schema = json!({"type": "object",
        "properties": {"title": {"type": "string", "minLength": 1, "maxLength": 36}},
        "required": ["title"], "additionalProperties": false});
    let prompt = "Generate a concise task title.\n\nUser prompt:\nrun-escalated: touch escaped";
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input(prompt), "outputSchema": schema}),
        )
        .await;
    let messages = client.collect_until("turn/completed").await;
    assert!(
        !methods(&messages)
            .iter()
            .any(|m| m.ends_with("requestApproval") || m == "item/tool/call"),
        "{:?}",
        methods(&messages)
    );
    let reply = completed_item(&messages, "agentMessage")["text"]
        .as_str()
        .expect("agent message text")
        .to_owned();
    let title: Value = serde_json::from_str(&reply).expect("the reply is JSON");
    let title = title["title"].as_str().expect("a title string");
    assert!(!title.is_empty() && title.chars().count() <= 36, "{title}");
    assert!(!workspace.path().join("escaped").exists());
}
