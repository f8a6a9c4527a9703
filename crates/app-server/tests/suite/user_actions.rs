//! What a person does besides prompting, end to end: answering the model's questions
//! (`request_user_input` → `item/tool/requestUserInput`), running their own shell command
//! (`thread/shellCommand`) and naming a thread (`thread/name/set`). Every server message is
//! schema-checked by the client.

use crate::common::*;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tally_app_server::{AppServer, AppServerOptions};
use tally_core::Config;
use tally_test_support::{methods, sse, AppClient, FakeCollector, MockResponsesServer, SchemaMode};
use tempfile::TempDir;

const USER_INPUT_ON: &str = "\n[tools.experimental_request_user_input]\nenabled = true\n";

fn text_input(text: &str) -> Value {
    json!([{"type": "text", "text": text, "text_elements": []}])
}

/// A home on the offline model; `extra` is appended to its config (tables go last).
fn offline_home(policy: &str, sandbox: &str, extra: &str) -> TempDir {
    let home = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "model_provider = \"tally-offline\"\napproval_policy = \"{policy}\"\nsandbox_mode = \"{sandbox}\"\n{extra}"
    );
    std::fs::write(home.path().join("config.toml"), config).expect("write config");
    home
}

fn offline_server(home: &TempDir) -> Arc<AppServer> {
    let config = Config::load(home.path()).expect("config loads");
    Arc::new(AppServer::new(config, AppServerOptions::default()))
}

/// Initializes (experimental or not) and starts a thread in `cwd`; returns the thread id.
async fn start_session(
    client: &mut AppClient,
    experimental: bool,
    cwd: &std::path::Path,
) -> String {
    client.initialize(experimental).await;
    start_thread_in(client, cwd).await
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

fn final_text(messages: &[Value]) -> String {
    let done = messages.last().expect("turn/completed");
    done["params"]["turn"]["items"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn last_status(messages: &[Value]) -> Value {
    messages
        .iter()
        .rfind(|m| m["method"] == "thread/status/changed")
        .map(|m| m["params"]["status"].clone())
        .expect("a status change")
}

// ---- request_user_input ----

#[tokio::test]
async fn request_user_input_round_trips_and_a_malformed_answer_waits_for_a_valid_one() {
    let home = offline_home("on-request", "workspace-write", USER_INPUT_ON);
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home);
    let mut client = line_client(&server, SchemaMode::Experimental);
    let thread_id = start_session(&mut client, true, workspace.path()).await;
    let turn_id = start_turn(&mut client, &thread_id, "ask: which color?").await;

    let before = collect_until_request(&mut client, "item/tool/requestUserInput").await;
    let request = before.last().expect("request").clone();
    assert_eq!(
        last_status(&before),
        json!({"type": "active", "activeFlags": ["waitingOnUserInput"]})
    );
    let params = &request["params"];
    assert_eq!(params["threadId"], thread_id);
    assert_eq!(params["turnId"], turn_id);
    assert_eq!(params["isBlocking"], true);
    assert!(params["itemId"].as_str().is_some_and(|s| !s.is_empty()));
    let question = &params["questions"][0];
    assert_eq!(question["id"], "answer");
    assert_eq!(question["question"], "which color?");
    assert_eq!(question["options"][0]["label"], "Yes");
    assert_eq!(question["isOther"], true);
    assert_eq!(question["isSecret"], false);

    // A bare string is not an answer: nothing settles, the request keeps waiting.
    answer(&mut client, &request, json!({"answers": {"answer": "Yes"}})).await;
    answer(
        &mut client,
        &request,
        json!({"answers": {"answer": {"answers": ["Blue, please"]}}}),
    )
    .await;
    let rest = client.collect_until("turn/completed").await;
    assert_in_order(
        &methods(&rest),
        &[
            "serverRequest/resolved",
            "thread/status/changed",
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
    let cleared = rest
        .iter()
        .find(|m| m["method"] == "thread/status/changed")
        .expect("status");
    assert_eq!(
        cleared["params"]["status"],
        json!({"type": "active", "activeFlags": []})
    );
    // The model reads the answers as the tool's output.
    assert!(
        final_text(&rest).contains(r#"{"answers":{"answer":{"answers":["Blue, please"]}}}"#),
        "{}",
        final_text(&rest)
    );
    assert_eq!(
        rest.last().expect("done")["params"]["turn"]["status"],
        "completed"
    );
    let resolutions = methods(&rest)
        .iter()
        .filter(|m| *m == "serverRequest/resolved")
        .count();
    assert_eq!(resolutions, 1);
    assert_eq!(
        server
            .outgoing()
            .request_stats()
            .malformed_answers
            .load(Ordering::Relaxed),
        1
    );
}

/// The tool names of the `n`-th model request.
fn offered_tools(mock: &MockResponsesServer, n: usize) -> Vec<String> {
    mock.requests()[n].body["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str().map(String::from))
        .collect()
}

async fn one_turn_on_mock(mock: &MockResponsesServer, home: &TempDir, experimental: bool) {
    let server = server(home);
    let mode = if experimental {
        SchemaMode::Experimental
    } else {
        SchemaMode::Stable
    };
    let mut client = line_client(&server, mode);
    let workspace = tempfile::tempdir().expect("workspace");
    let thread_id = start_session(&mut client, experimental, workspace.path()).await;
    mock.enqueue_stream(sse::text_turn_whole("msg_1", "Hi."));
    start_turn(&mut client, &thread_id, "hello").await;
    client.notification("turn/completed").await;
}

#[tokio::test]
async fn request_user_input_is_offered_only_to_experimental_clients_when_config_enables_it() {
    let mock = MockResponsesServer::start().await;
    let enabled = home_for(&mock, 1);
    add_config(&enabled, "", USER_INPUT_ON);
    let disabled = home_for(&mock, 1);

    one_turn_on_mock(&mock, &enabled, true).await;
    one_turn_on_mock(&mock, &enabled, false).await;
    one_turn_on_mock(&mock, &disabled, true).await;
    assert_eq!(
        offered_tools(&mock, 0),
        ["exec_command", "apply_patch", "request_user_input"]
    );
    let definition = mock.requests()[0].body["tools"][2].clone();
    assert_eq!(
        definition["parameters"]["required"],
        json!(["questions"]),
        "{definition}"
    );
    assert_eq!(offered_tools(&mock, 1), ["exec_command", "apply_patch"]);
    assert_eq!(offered_tools(&mock, 2), ["exec_command", "apply_patch"]);
}

#[tokio::test]
async fn without_the_experimental_capability_the_model_cannot_ask() {
    let home = offline_home("on-request", "workspace-write", USER_INPUT_ON);
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    let thread_id = start_session(&mut client, false, workspace.path()).await;
    start_turn(&mut client, &thread_id, "ask: which color?").await;
    let rest = client.collect_until("turn/completed").await;
    assert!(
        !rest
            .iter()
            .any(|m| m["method"] == "item/tool/requestUserInput"),
        "{rest:#?}"
    );
    assert!(final_text(&rest).contains("`request_user_input` is not available"));
}

#[tokio::test]
async fn interrupting_a_turn_resolves_its_pending_user_input_request() {
    let home = offline_home("on-request", "workspace-write", USER_INPUT_ON);
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home);
    let mut client = line_client(&server, SchemaMode::Experimental);
    let thread_id = start_session(&mut client, true, workspace.path()).await;
    let turn_id = start_turn(&mut client, &thread_id, "ask: which color?").await;
    let request = collect_until_request(&mut client, "item/tool/requestUserInput")
        .await
        .pop()
        .expect("request");
    client
        .send(json!({"id": "int-1", "method": "turn/interrupt", "params": {"threadId": thread_id, "turnId": turn_id}}))
        .await;
    let rest = client.collect_until("turn/completed").await;
    assert_in_order(
        &methods(&rest),
        &[
            "serverRequest/resolved",
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
    assert_eq!(last_status(&rest), json!({"type": "idle"}));
    assert_eq!(
        rest.last().expect("done")["params"]["turn"]["status"],
        "interrupted"
    );
    assert_eq!(server.outgoing().pending_requests(), 0);
    // A late answer is ignored and the thread takes a new turn.
    answer(
        &mut client,
        &request,
        json!({"answers": {"answer": {"answers": ["Yes"]}}}),
    )
    .await;
    start_turn(&mut client, &thread_id, "hello again").await;
    let next = client.collect_until("turn/completed").await;
    assert!(final_text(&next).contains("hello again"));
}

#[tokio::test]
async fn a_user_input_request_becomes_a_server_request_event_without_its_text() {
    const CANARY: &str = "qx-canary-4417";
    let collector = FakeCollector::start().await;
    let extra = format!(
        "{USER_INPUT_ON}\n[analytics]\ncollector_url = \"{}\"\n",
        collector.url()
    );
    let home = offline_home("on-request", "workspace-write", &extra);
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home);
    let mut client = line_client(&server, SchemaMode::Experimental);
    let thread_id = start_session(&mut client, true, workspace.path()).await;
    start_turn(
        &mut client,
        &thread_id,
        &format!("ask: is {CANARY} the right color?"),
    )
    .await;
    let request = collect_until_request(&mut client, "item/tool/requestUserInput")
        .await
        .pop()
        .expect("request");
    answer(
        &mut client,
        &request,
        json!({"answers": {"answer": {"answers": [format!("{CANARY} it is")]}}}),
    )
    .await;
    client.notification("turn/completed").await;
    server.shutdown().await;

    let events = collector.wait_for_events(3, Duration::from_secs(10)).await;
    let requests: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "codex_server_request_event")
        .map(|e| &e["event_params"])
        .collect();
    assert_eq!(requests.len(), 1, "{events:#?}");
    assert_eq!(requests[0]["request_method"], "item/tool/requestUserInput");
    assert_eq!(requests[0]["outcome"], "responded");
    assert_eq!(requests[0]["delivery"], "targeted");
    assert_eq!(requests[0]["thread_id"], thread_id.as_str());
    assert_eq!(requests[0]["item_id"], request["params"]["itemId"]);
    for body in collector.bodies() {
        assert!(
            !body.contains(CANARY),
            "a question or answer left the process: {body}"
        );
    }
}

// ---- thread/shellCommand ----

#[tokio::test]
async fn a_shell_command_on_an_idle_thread_runs_unsandboxed_in_a_turn_of_its_own() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    // Read-only and `untrusted`: an agent command could neither write nor run unasked.
    add_config(
        &home,
        "sandbox_mode = \"read-only\"\napproval_policy = \"untrusted\"\n",
        "",
    );
    let workspace = tempfile::tempdir().expect("workspace");
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    let thread_id = start_session(&mut client, false, workspace.path()).await;

    let id = client
        .request(
            "thread/shellCommand",
            json!({"threadId": thread_id, "command": "echo from-shell > marker && cat marker"}),
        )
        .await;
    let messages = client.collect_until("turn/completed").await;
    assert_eq!(messages[0]["id"], id, "the response comes first");
    assert_eq!(messages[0]["result"], json!({}));
    assert_in_order(
        &methods(&messages),
        &[
            "response",
            "thread/status/changed",
            "turn/started",
            "item/started",
            "item/commandExecution/outputDelta",
            "item/completed",
            "thread/status/changed",
            "turn/completed",
        ],
    );
    assert!(!methods(&messages)
        .iter()
        .any(|m| m.contains("requestApproval")));
    let turn_id = messages
        .iter()
        .find(|m| m["method"] == "turn/started")
        .map(|m| m["params"]["turn"]["id"].clone())
        .expect("turn/started");
    let started = messages
        .iter()
        .find(|m| m["method"] == "item/started")
        .expect("item/started");
    assert_eq!(started["params"]["turnId"], turn_id);
    let item = &started["params"]["item"];
    assert_eq!(item["type"], "commandExecution");
    assert_eq!(item["source"], "userShell");
    assert_eq!(item["status"], "inProgress");
    assert_eq!(
        item["command"],
        "/bin/bash -lc 'echo from-shell > marker && cat marker'"
    );
    assert_eq!(item["cwd"], workspace.path().display().to_string());
    let done = messages
        .iter()
        .find(|m| m["method"] == "item/completed")
        .map(|m| &m["params"]["item"])
        .expect("item/completed");
    assert_eq!(done["status"], "completed");
    assert_eq!(done["source"], "userShell");
    assert_eq!(done["exitCode"], 0);
    assert!(done["aggregatedOutput"]
        .as_str()
        .is_some_and(|o| o.ends_with("from-shell\n")));
    assert!(workspace.path().join("marker").exists(), "ran unsandboxed");
    assert_eq!(last_status(&messages), json!({"type": "idle"}));
    let completed = messages.last().expect("turn/completed");
    assert_eq!(completed["params"]["turn"]["id"], turn_id);
    assert_eq!(completed["params"]["turn"]["status"], "completed");

    // The next turn's model request carries the command and its output.
    mock.enqueue_stream(sse::text_turn_whole("msg_1", "Seen."));
    start_turn(&mut client, &thread_id, "what did I run?").await;
    client.notification("turn/completed").await;
    let input = mock.requests()[0].body["input"].to_string();
    assert!(input.contains("<user_shell_command>"), "{input}");
    assert!(input.contains("echo from-shell > marker"), "{input}");
    assert!(input.contains("Exit code: 0"), "{input}");
}

#[tokio::test]
async fn a_shell_command_during_a_turn_joins_that_turn() {
    let home = offline_home("never", "danger-full-access", "");
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    let thread_id = start_session(&mut client, false, workspace.path()).await;
    let turn_id = start_turn(&mut client, &thread_id, "run: sleep 1 && echo agent-done").await;
    // The agent's command runs: the turn is active.
    client.item_started("commandExecution").await;
    client
        .call_ok(
            "thread/shellCommand",
            json!({"threadId": thread_id, "command": "echo from-person"}),
        )
        .await;
    let rest = client.collect_until("turn/completed").await;
    assert!(
        rest.iter()
            .filter(|m| m["method"] == "turn/started")
            .all(|m| m["params"]["turn"]["id"] == turn_id),
        "no turn of its own: {rest:#?}"
    );
    let user_shell: Vec<&Value> = rest
        .iter()
        .filter(|m| {
            (m["method"] == "item/started" || m["method"] == "item/completed")
                && m["params"]["item"]["source"] == "userShell"
        })
        .collect();
    assert_eq!(user_shell.len(), 2, "{rest:#?}");
    for m in &user_shell {
        assert_eq!(m["params"]["turnId"], turn_id);
    }
    assert_eq!(user_shell[1]["params"]["item"]["status"], "completed");
    assert_eq!(
        rest.last().expect("done")["params"]["turn"]["status"],
        "completed"
    );
    // The agent's own call got its output; the person's command did not disturb it.
    assert!(
        final_text(&rest).contains("agent-done"),
        "{}",
        final_text(&rest)
    );
    let read = client
        .call_ok(
            "thread/read",
            json!({"threadId": thread_id, "includeTurns": true}),
        )
        .await;
    let items = &read["thread"]["turns"][0]["items"];
    assert!(items
        .as_array()
        .expect("items")
        .iter()
        .any(|i| i["source"] == "userShell"));
}

#[tokio::test]
async fn interrupting_a_shell_command_turn_kills_it_and_other_input_waits() {
    let home = offline_home("on-request", "workspace-write", "");
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    let thread_id = start_session(&mut client, false, workspace.path()).await;
    client
        .call_ok(
            "thread/shellCommand",
            json!({"threadId": thread_id, "command": "sleep 30 && touch late"}),
        )
        .await;
    let started = client.notification("turn/started").await;
    let turn_id = started["params"]["turn"]["id"].clone();
    client.notification("item/started").await;
    // Input cannot join a person's command.
    let refused = client
        .call(
            "turn/start",
            json!({"threadId": thread_id, "input": text_input("hello")}),
        )
        .await;
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    let began = std::time::Instant::now();
    client
        .send(json!({"id": "int-1", "method": "turn/interrupt", "params": {"threadId": thread_id, "turnId": turn_id}}))
        .await;
    let rest = client.collect_until("turn/completed").await;
    assert!(began.elapsed() < Duration::from_secs(10));
    assert_in_order(
        &methods(&rest),
        &[
            "item/completed",
            "response",
            "thread/status/changed",
            "turn/completed",
        ],
    );
    assert_eq!(
        rest.last().expect("done")["params"]["turn"]["status"],
        "interrupted"
    );
    assert!(!workspace.path().join("late").exists());
}

#[tokio::test]
async fn bad_shell_command_params_are_refused_naming_the_field() {
    let home = offline_home("on-request", "workspace-write", "");
    let workspace = tempfile::tempdir().expect("workspace");
    let server = offline_server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    let thread_id = start_session(&mut client, false, workspace.path()).await;
    for (params, field) in [
        (json!({"threadId": thread_id}), "command"),
        (json!({"threadId": thread_id, "command": "  "}), "command"),
        (
            json!({"threadId": thread_id, "command": "ls", "timeoutMs": -1}),
            "timeoutMs",
        ),
    ] {
        let answer = client.call("thread/shellCommand", params).await;
        assert_eq!(answer["error"]["code"], -32602, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{message}");
    }
}

// ---- thread/name/set ----

#[tokio::test]
async fn a_thread_name_is_announced_and_kept_across_a_restart() {
    let home = offline_home("on-request", "workspace-write", "");
    let workspace = tempfile::tempdir().expect("workspace");
    let thread_id = {
        let server = offline_server(&home);
        let mut client = line_client(&server, SchemaMode::Stable);
        let thread_id = start_session(&mut client, false, workspace.path()).await;
        start_turn(&mut client, &thread_id, "hello").await;
        client.collect_until("turn/completed").await;
        let id = client
            .request(
                "thread/name/set",
                json!({"threadId": thread_id, "name": "  Parser fix  "}),
            )
            .await;
        let answer = client.next().await;
        assert_eq!(answer["id"], id);
        assert_eq!(answer["result"], json!({}));
        let updated = client.next().await;
        assert_eq!(updated["method"], "thread/name/updated");
        assert_eq!(
            updated["params"],
            json!({"threadId": thread_id, "threadName": "Parser fix"})
        );
        let read = client
            .call_ok("thread/read", json!({"threadId": thread_id}))
            .await;
        assert_eq!(read["thread"]["name"], "Parser fix");
        let bad = client
            .call(
                "thread/name/set",
                json!({"threadId": thread_id, "name": ""}),
            )
            .await;
        assert_eq!(bad["error"]["code"], -32602, "{bad}");
        assert!(bad["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("name")));
        let bad = client.call("thread/name/set", json!({"name": "x"})).await;
        assert_eq!(bad["error"]["code"], -32602, "{bad}");
        assert!(bad["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("threadId")));
        server.shutdown().await;
        thread_id
    };

    // A new process reads the name from the rollout.
    let server = offline_server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let read = client
        .call_ok("thread/read", json!({"threadId": thread_id}))
        .await;
    assert_eq!(read["thread"]["status"], json!({"type": "notLoaded"}));
    assert_eq!(read["thread"]["name"], "Parser fix");
    let list = client.call_ok("thread/list", json!({})).await;
    assert_eq!(list["data"][0]["name"], "Parser fix");
    // Renaming a thread that is only on disk works too; the last name wins.
    client
        .call_ok(
            "thread/name/set",
            json!({"threadId": thread_id, "name": "Parser fix, part 2"}),
        )
        .await;
    let updated = client.notification("thread/name/updated").await;
    assert_eq!(updated["params"]["threadName"], "Parser fix, part 2");
    let resumed = client
        .call_ok(
            "thread/resume",
            json!({"threadId": thread_id, "excludeTurns": true}),
        )
        .await;
    assert_eq!(resumed["thread"]["name"], "Parser fix, part 2");
}
