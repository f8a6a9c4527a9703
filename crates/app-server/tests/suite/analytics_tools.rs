//! Tool analytics end to end on the offline model: a command approved, a patch declined and a
//! dynamic tool call become their Codex events, with canaries planted in every private field.

use crate::common;

use serde_json::{json, Value};
use std::time::Duration;
use tally_app_server::{AppServer, AppServerOptions};
use tally_core::Config;
use tally_test_support::{AppClient, FakeCollector, SchemaMode};

const CANARY: &str = "qx-canary-9093";

fn input(text: &str) -> Value {
    json!([{"type": "text", "text": text, "text_elements": []}])
}

async fn request(client: &mut AppClient, method: &str) -> Value {
    client
        .wait_for(|m| m["method"] == method && m.get("id").is_some())
        .await
}

async fn answer(client: &mut AppClient, request: &Value, result: Value) {
    client
        .send(json!({"id": request["id"], "result": result}))
        .await;
}

#[tokio::test]
async fn tool_items_become_codex_events_and_nothing_private_leaves() {
    let collector = FakeCollector::start().await;
    let home = common::offline_home_with_analytics(
        "approval_policy = \"untrusted\"\nsandbox_mode = \"workspace-write\"\n",
        collector.url(),
    );
    let parent = tempfile::tempdir().expect("workspace parent");
    let workspace = parent.path().join(format!("ws-{CANARY}"));
    std::fs::create_dir_all(&workspace).expect("workspace");
    let config = Config::load(home.path()).expect("config");
    let server = std::sync::Arc::new(AppServer::new(config, AppServerOptions::default()));
    let mut client = common::line_client(&server, SchemaMode::Experimental);
    client.initialize(true).await;
    let tools = json!([{"type": "function", "name": "lookup_ticket", "description": "Finds a ticket",
        "inputSchema": {"type": "object", "properties": {"id": {"type": "string"}}}}]);
    let started = client
        .call_ok(
            "thread/start",
            json!({"cwd": workspace.display().to_string(), "dynamicTools": tools}),
        )
        .await;
    let thread_id = started["thread"]["id"].as_str().expect("id").to_string();

    // 1. A command, approved.
    client
        .call_ok("turn/start", json!({"threadId": thread_id, "input": input(&format!("run: echo {CANARY} > {CANARY}.txt"))}))
        .await;
    let approval = request(&mut client, "item/commandExecution/requestApproval").await;
    answer(&mut client, &approval, json!({"decision": "accept"})).await;
    client.notification("turn/completed").await;

    // 2. A patch, declined.
    let patch = format!(
        "patch: *** Begin Patch\n*** Add File: {CANARY}-notes.txt\n+{CANARY} body\n*** End Patch"
    );
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": input(&patch)}),
        )
        .await;
    let approval = request(&mut client, "item/fileChange/requestApproval").await;
    answer(&mut client, &approval, json!({"decision": "decline"})).await;
    client.notification("turn/completed").await;
    assert!(
        !workspace.join(format!("{CANARY}-notes.txt")).exists(),
        "a declined patch writes nothing"
    );

    // 3. A dynamic tool the client runs.
    client
        .call_ok("turn/start", json!({"threadId": thread_id, "input": input(&format!("tool: lookup_ticket {{\"id\": \"{CANARY}\"}}"))}))
        .await;
    let call = request(&mut client, "item/tool/call").await;
    answer(
        &mut client,
        &call,
        json!({"success": true, "contentItems": [{"type": "inputText", "text": format!("ticket {CANARY}")}]}),
    )
    .await;
    client.notification("turn/completed").await;

    server.shutdown().await;
    let events = collector.wait_for_events(12, Duration::from_secs(10)).await;
    let of = |t: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| e["event_type"] == t)
            .map(|e| &e["event_params"])
            .collect()
    };
    let command = of("codex_command_execution_event");
    assert_eq!(command.len(), 1, "{events:#?}");
    assert_eq!(command[0]["final_approval_outcome"], "user_approved");
    assert_eq!(command[0]["terminal_status"], "completed");
    assert_eq!(command[0]["exit_code"], 0);
    assert_eq!(command[0]["review_count"], 1);
    assert_eq!(command[0]["tool_name"], "shell");
    assert_eq!(command[0]["command_execution_source"], "agent");
    let files = of("codex_file_change_event");
    assert_eq!(files[0]["final_approval_outcome"], "user_denied");
    assert_eq!(files[0]["terminal_status"], "rejected");
    assert_eq!(files[0]["failure_kind"], "approval_denied");
    assert_eq!(files[0]["file_add_count"], 1);
    let dynamic = of("codex_dynamic_tool_call_event");
    assert_eq!(dynamic[0]["dynamic_tool_name"], "lookup_ticket");
    assert_eq!(dynamic[0]["success"], true);
    assert_eq!(dynamic[0]["output_text_item_count"], 1);
    let reviews = of("codex_review_event");
    let statuses: Vec<&Value> = reviews.iter().map(|r| &r["status"]).collect();
    assert_eq!(statuses, [&json!("approved"), &json!("denied")]);
    let requests = of("codex_server_request_event");
    let methods: Vec<&Value> = requests.iter().map(|r| &r["request_method"]).collect();
    assert_eq!(
        methods,
        [
            &json!("item/commandExecution/requestApproval"),
            &json!("item/fileChange/requestApproval"),
            &json!("item/tool/call")
        ]
    );
    assert_eq!(requests[2]["tool_success"], true);
    let turns = of("codex_turn_event");
    assert_eq!(turns.len(), 3);
    assert_eq!(turns[0]["shell_command_count"], 1);
    assert_eq!(turns[1]["file_change_count"], 1);
    assert_eq!(turns[2]["dynamic_tool_call_count"], 1);
    assert_eq!(turns[2]["total_tool_call_count"], 1);

    for body in collector.bodies() {
        assert!(
            !body.contains(CANARY),
            "a private string left the process: {body}"
        );
    }
}

/// A person's own command on an idle thread (`thread/shellCommand`, the TUI's `!cmd`) runs in a
/// turn no `turn/start` made: its command is a tool event, the turn is no user turn, and nothing
/// is reported dropped for want of the turn's context.
#[tokio::test]
async fn a_persons_shell_command_is_a_tool_event_and_drops_nothing() {
    let collector = FakeCollector::start().await;
    let home = common::offline_home_with_analytics("", collector.url());
    let workspace = tempfile::tempdir().expect("workspace");
    let server = common::server(&home);
    let mut client = common::line_client(&server, SchemaMode::Experimental);
    client.initialize(true).await;
    let thread_id = common::start_thread_in(&mut client, workspace.path()).await;
    client
        .call_ok(
            "thread/shellCommand",
            json!({"threadId": thread_id, "command": format!("echo {CANARY}")}),
        )
        .await;
    client.notification("turn/completed").await;

    server.shutdown().await;
    let events = collector.wait_for_events(2, Duration::from_secs(10)).await;
    let types = tally_test_support::event_types(&events);
    assert_eq!(
        types,
        ["codex_thread_initialized", "codex_command_execution_event"],
        "{events:#?}"
    );
    let command = &events[1]["event_params"];
    assert_eq!(command["tool_name"], "user_shell");
    assert_eq!(command["terminal_status"], "completed");
    assert_eq!(command["exit_code"], 0);
    for body in collector.bodies() {
        assert!(
            !body.contains(CANARY),
            "the command left the process: {body}"
        );
    }
}
