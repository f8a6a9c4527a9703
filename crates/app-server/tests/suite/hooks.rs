//! Hooks end to end on the offline model: discovery and trust over `hooks/list` and
//! `config/batchWrite`, each outcome with small shell hooks written by the test, the order of
//! `hook/started` / `hook/completed` in a turn, and `codex_hook_run`. Every server message is
//! schema-checked by `AppClient`.

use crate::common;

use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tally_app_server::{AppServer, AppServerOptions};
use tally_core::Config;
use tally_test_support::{methods, sse, AppClient, FakeCollector, MockResponsesServer, SchemaMode};
use tempfile::TempDir;

const CANARY: &str = "qx-hook-canary-4417";

fn input(text: &str) -> Value {
    json!([{"type": "text", "text": text, "text_elements": []}])
}

/// A home on the offline model that runs commands without asking.
fn home(extra: &str) -> TempDir {
    let home = tempfile::tempdir().expect("home");
    std::fs::write(
        home.path().join("config.toml"),
        format!("model_provider = \"tally-offline\"\napproval_policy = \"never\"\nsandbox_mode = \"danger-full-access\"\n{extra}"),
    )
    .expect("config");
    home
}

fn server(home: &TempDir) -> Arc<AppServer> {
    let config = Config::load(home.path()).expect("config loads");
    Arc::new(AppServer::new(config, AppServerOptions::default()))
}

/// One handler per event: `(event, matcher, command)`, with a 10 s timeout.
fn hooks_json(handlers: &[(&str, Option<&str>, &str)]) -> String {
    let mut events = serde_json::Map::new();
    for (event, matcher, command) in handlers {
        let mut group = json!({"hooks": [{"type": "command", "command": command, "timeout": 10}]});
        if let Some(m) = matcher {
            group["matcher"] = json!(m);
        }
        events
            .entry(event.to_string())
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .expect("array")
            .push(group);
    }
    json!({"hooks": events}).to_string()
}

async fn client_for(server: &Arc<AppServer>) -> AppClient {
    let mut client = common::line_client(server, SchemaMode::Stable);
    client.initialize(false).await;
    client
}

/// Starts a turn running a 30 s command and interrupts it once the command runs; the turn's id.
async fn interrupt_a_long_command(client: &mut AppClient, thread_id: &str) -> String {
    let started = client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": input("run: sleep 30")}),
        )
        .await;
    let turn_id = started["turn"]["id"].as_str().expect("turn id").to_string();
    client.item_started("commandExecution").await;
    client
        .call_ok(
            "turn/interrupt",
            json!({"threadId": thread_id, "turnId": turn_id}),
        )
        .await;
    turn_id
}

/// Runs one turn and returns every message up to its `turn/completed`.
async fn turn(client: &mut AppClient, thread_id: &str, text: &str) -> Vec<Value> {
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": input(text)}),
        )
        .await;
    client.collect_until("turn/completed").await
}

async fn list(client: &mut AppClient, cwd: &Path) -> Value {
    let r = client
        .call_ok("hooks/list", json!({"cwds": [cwd.display().to_string()]}))
        .await;
    r["data"][0].clone()
}

/// Trusts every hook `hooks/list` shows for `cwd`, the way a client does.
async fn trust_all(client: &mut AppClient, cwd: &Path) {
    let entry = list(client, cwd).await;
    let mut state = serde_json::Map::new();
    for h in entry["hooks"].as_array().expect("hooks") {
        state.insert(
            h["key"].as_str().expect("key").to_string(),
            json!({"trusted_hash": h["currentHash"]}),
        );
    }
    client
        .call_ok(
            "config/batchWrite",
            json!({"edits": [{"keyPath": "hooks.state", "value": state, "mergeStrategy": "upsert"}],
                   "reloadUserConfig": true}),
        )
        .await;
}

/// The `hook/completed` runs of a turn, as `(eventName, status)`.
fn completed_runs(messages: &[Value]) -> Vec<(String, String)> {
    messages
        .iter()
        .filter(|m| m["method"] == "hook/completed")
        .map(|m| {
            let run = &m["params"]["run"];
            (
                run["eventName"].as_str().unwrap_or_default().to_string(),
                run["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn final_text(messages: &[Value]) -> String {
    let done = messages.last().expect("turn/completed");
    done["params"]["turn"]["items"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn untrusted_hooks_are_listed_never_run_and_an_edit_untrusts_them() {
    let home = home("");
    let ws = tempfile::tempdir().expect("ws");
    let log = ws.path().join("ran.log");
    let hooks_path = home.path().join("hooks.json");
    let command = format!("echo ran >> {}", log.display());
    std::fs::write(
        &hooks_path,
        hooks_json(&[("PreToolUse", Some("Bash"), &command)]),
    )
    .expect("hooks");
    let server = server(&home);
    let mut client = client_for(&server).await;

    let entry = list(&mut client, ws.path()).await;
    let hook = &entry["hooks"][0];
    assert_eq!(
        hook["key"],
        format!("{}:pre_tool_use:0:0", hooks_path.display())
    );
    assert_eq!(hook["source"], "user");
    assert_eq!(hook["trustStatus"], "untrusted");
    assert_eq!(hook["eventName"], "preToolUse");
    assert_eq!(hook["timeoutSec"], 10);
    assert!(hook["currentHash"]
        .as_str()
        .expect("hash")
        .starts_with("sha256:"));

    let thread_id = common::start_thread_in(&mut client, ws.path()).await;
    let messages = turn(&mut client, &thread_id, "run: echo one").await;
    assert!(
        !methods(&messages).iter().any(|m| m.starts_with("hook/")),
        "{messages:#?}"
    );
    assert!(!log.exists(), "an untrusted hook ran");

    trust_all(&mut client, ws.path()).await;
    let config = std::fs::read_to_string(home.path().join("config.toml")).expect("config");
    assert!(config.contains("trusted_hash = \"sha256:"), "{config}");
    assert!(
        config.contains("model_provider = \"tally-offline\""),
        "other keys survive: {config}"
    );
    assert_eq!(
        list(&mut client, ws.path()).await["hooks"][0]["trustStatus"],
        "trusted"
    );
    let messages = turn(&mut client, &thread_id, "run: echo two").await;
    assert_eq!(
        completed_runs(&messages),
        [("preToolUse".into(), "completed".into())]
    );
    assert_eq!(std::fs::read_to_string(&log).expect("log"), "ran\n");

    // Editing the command changes its hash: the hook is `modified` and stops running.
    let edited = format!("echo edited >> {}", log.display());
    std::fs::write(
        &hooks_path,
        hooks_json(&[("PreToolUse", Some("Bash"), &edited)]),
    )
    .expect("hooks");
    assert_eq!(
        list(&mut client, ws.path()).await["hooks"][0]["trustStatus"],
        "modified"
    );
    let messages = turn(&mut client, &thread_id, "run: echo three").await;
    assert!(completed_runs(&messages).is_empty());
    assert_eq!(std::fs::read_to_string(&log).expect("log"), "ran\n");
}

#[tokio::test]
async fn hooks_run_in_codex_order_and_read_the_documented_stdin() {
    let home = home("");
    let ws = tempfile::tempdir().expect("ws");
    let dir = ws.path().display().to_string();
    let save = |name: &str| format!("cat > {dir}/{name}.json");
    let handlers = [
        ("SessionStart", None, save("session_start")),
        ("UserPromptSubmit", None, save("prompt")),
        ("PreToolUse", Some("Bash"), save("pre")),
        // Not selected: the matcher is exact, so `Bash` does not match `BashOutput`.
        ("PreToolUse", Some("BashOutput"), save("never")),
        ("PostToolUse", Some("^Ba"), save("post")),
        ("Stop", None, save("stop")),
    ];
    let handlers: Vec<(&str, Option<&str>, &str)> = handlers
        .iter()
        .map(|(e, m, c)| (*e, *m, c.as_str()))
        .collect();
    std::fs::write(home.path().join("hooks.json"), hooks_json(&handlers)).expect("hooks");
    let server = server(&home);
    let mut client = client_for(&server).await;
    trust_all(&mut client, ws.path()).await;
    let thread_id = common::start_thread_in(&mut client, ws.path()).await;
    let messages = turn(&mut client, &thread_id, "run: echo hi").await;

    let order: Vec<String> = messages
        .iter()
        .filter_map(|m| {
            let method = m["method"].as_str()?;
            match method {
                "hook/started" | "hook/completed" => Some(format!(
                    "{method}:{}",
                    m["params"]["run"]["eventName"].as_str()?
                )),
                "item/started" | "item/completed" => Some(format!(
                    "{method}:{}",
                    m["params"]["item"]["type"].as_str()?
                )),
                "turn/started" | "turn/completed" => Some(method.to_string()),
                _ => None,
            }
        })
        .filter(|s| !s.ends_with(":reasoning"))
        .collect();
    assert_eq!(
        order,
        [
            "turn/started",
            "hook/started:sessionStart",
            "hook/completed:sessionStart",
            "hook/started:userPromptSubmit",
            "hook/completed:userPromptSubmit",
            "item/started:userMessage",
            "item/completed:userMessage",
            "hook/started:preToolUse",
            "hook/completed:preToolUse",
            "item/started:commandExecution",
            "item/completed:commandExecution",
            "hook/started:postToolUse",
            "hook/completed:postToolUse",
            "item/started:agentMessage",
            "item/completed:agentMessage",
            "hook/started:stop",
            "hook/completed:stop",
            "turn/completed",
        ]
    );
    let pre = messages
        .iter()
        .find(|m| {
            m["method"] == "hook/completed" && m["params"]["run"]["eventName"] == "preToolUse"
        })
        .expect("preToolUse run");
    let run = &pre["params"]["run"];
    let hooks_path = home.path().join("hooks.json").display().to_string();
    let call_id = messages
        .iter()
        .find(|m| {
            m["method"] == "item/completed" && m["params"]["item"]["type"] == "commandExecution"
        })
        .map(|m| {
            m["params"]["item"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .expect("command item");
    // Entries follow the event order, not the file order: PreToolUse is listed first.
    assert_eq!(run["id"], format!("pre-tool-use:0:{hooks_path}:{call_id}"));
    assert_eq!(
        (run["scope"].as_str(), run["source"].as_str()),
        (Some("turn"), Some("user"))
    );
    let session = messages
        .iter()
        .find(|m| m["method"] == "hook/completed")
        .expect("first run");
    assert_eq!(session["params"]["run"]["scope"], "thread");

    let read = |name: &str| -> Value {
        let text =
            std::fs::read_to_string(ws.path().join(format!("{name}.json"))).expect("payload");
        serde_json::from_str(&text).expect("payload is JSON")
    };
    let pre = read("pre");
    assert_eq!(pre["session_id"], thread_id.as_str());
    assert_eq!(pre["hook_event_name"], "PreToolUse");
    assert_eq!(pre["tool_name"], "Bash");
    assert_eq!(pre["tool_input"], json!({"command": "echo hi"}));
    assert_eq!(pre["tool_use_id"], call_id.as_str());
    assert_eq!(pre["permission_mode"], "bypassPermissions");
    assert_eq!(pre["cwd"], dir.as_str());
    assert!(read("session_start").get("turn_id").is_none());
    assert_eq!(read("session_start")["source"], "startup");
    assert_eq!(read("prompt")["prompt"], "run: echo hi");
    assert!(read("post")["tool_response"]
        .as_str()
        .expect("output")
        .contains("hi"));
    assert_eq!(read("stop")["stop_hook_active"], false);
    assert!(!ws.path().join("never.json").exists());

    // SessionStart runs on the first turn only.
    let second = turn(&mut client, &thread_id, "hello").await;
    let events: Vec<String> = completed_runs(&second)
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    assert_eq!(events, ["userPromptSubmit", "stop"]);
}

#[tokio::test]
async fn a_pre_tool_use_block_stops_the_command_and_tells_the_model_why() {
    let home = home("");
    let ws = tempfile::tempdir().expect("ws");
    std::fs::write(
        home.path().join("hooks.json"),
        hooks_json(&[("PreToolUse", Some("Bash"), "echo 'no touching' >&2; exit 2")]),
    )
    .expect("hooks");
    let server = server(&home);
    let mut client = client_for(&server).await;
    trust_all(&mut client, ws.path()).await;
    let thread_id = common::start_thread_in(&mut client, ws.path()).await;
    let messages = turn(&mut client, &thread_id, "run: touch marker").await;
    assert_eq!(
        completed_runs(&messages),
        [("preToolUse".into(), "blocked".into())]
    );
    assert!(!ws.path().join("marker").exists(), "a blocked command ran");
    assert!(!messages
        .iter()
        .any(|m| m["params"]["item"]["type"] == "commandExecution"));
    assert_eq!(
        final_text(&messages),
        "Tool result: Command blocked by PreToolUse hook: no touching. Command: touch marker"
    );
    let run = &messages
        .iter()
        .find(|m| m["method"] == "hook/completed")
        .expect("run")["params"]["run"];
    assert_eq!(
        run["entries"],
        json!([{"kind": "feedback", "text": "no touching"}])
    );
}

#[tokio::test]
async fn failing_hooks_fail_open_with_a_reason() {
    let home = home("");
    let ws = tempfile::tempdir().expect("ws");
    let hooks = json!({"hooks": {"PreToolUse": [{"hooks": [
        {"type": "command", "command": "sleep 30", "timeout": 1},
        {"type": "command", "command": "echo '{\"decision\": '"},
        {"type": "command", "command": "exit 7"}
    ]}]}});
    std::fs::write(home.path().join("hooks.json"), hooks.to_string()).expect("hooks");
    let server = server(&home);
    let mut client = client_for(&server).await;
    trust_all(&mut client, ws.path()).await;
    let thread_id = common::start_thread_in(&mut client, ws.path()).await;
    let started = std::time::Instant::now();
    let messages = turn(&mut client, &thread_id, "run: touch marker").await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the hanging hook was not killed"
    );
    assert!(
        ws.path().join("marker").exists(),
        "failures must not block the tool"
    );
    let errors: Vec<String> = messages
        .iter()
        .filter(|m| m["method"] == "hook/completed")
        .map(|m| {
            assert_eq!(m["params"]["run"]["status"], "failed");
            m["params"]["run"]["entries"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(errors.len(), 3);
    assert_eq!(errors[0], "hook timed out after 1s");
    assert!(errors[1].starts_with("invalid hook output"), "{errors:?}");
    assert_eq!(errors[2], "hook exited with code 7");
}

#[tokio::test]
async fn a_stop_hook_block_keeps_the_turn_going_once() {
    let home = home("");
    let ws = tempfile::tempdir().expect("ws");
    let marker = ws.path().join("stopped-once");
    let command = format!(
        "if [ -e {m} ]; then exit 0; fi; touch {m}; echo '{{\"decision\":\"block\",\"reason\":\"check the tests\"}}'",
        m = marker.display()
    );
    std::fs::write(
        home.path().join("hooks.json"),
        hooks_json(&[("Stop", None, &command)]),
    )
    .expect("hooks");
    let server = server(&home);
    let mut client = client_for(&server).await;
    trust_all(&mut client, ws.path()).await;
    let thread_id = common::start_thread_in(&mut client, ws.path()).await;
    let messages = turn(&mut client, &thread_id, "hello").await;
    assert_eq!(
        completed_runs(&messages),
        [
            ("stop".into(), "blocked".into()),
            ("stop".into(), "completed".into())
        ]
    );
    let agent_messages = messages
        .iter()
        .filter(|m| {
            m["method"] == "item/completed" && m["params"]["item"]["type"] == "agentMessage"
        })
        .count();
    assert_eq!(agent_messages, 2, "the model answered the hook's reason");
    assert!(final_text(&messages).contains("check the tests"));
}

#[tokio::test]
async fn a_user_prompt_block_ends_the_turn_before_the_prompt_is_recorded() {
    let home = home("");
    let ws = tempfile::tempdir().expect("ws");
    std::fs::write(
        home.path().join("hooks.json"),
        hooks_json(&[(
            "UserPromptSubmit",
            None,
            "echo '{\"decision\":\"block\",\"reason\":\"no secrets\"}'",
        )]),
    )
    .expect("hooks");
    let server = server(&home);
    let mut client = client_for(&server).await;
    trust_all(&mut client, ws.path()).await;
    let thread_id = common::start_thread_in(&mut client, ws.path()).await;
    let messages = turn(&mut client, &thread_id, "my password is hunter2").await;
    assert_eq!(
        completed_runs(&messages),
        [("userPromptSubmit".into(), "blocked".into())]
    );
    assert!(!messages
        .iter()
        .any(|m| m["params"]["item"]["type"] == "userMessage"));
    let warning = messages
        .iter()
        .find(|m| m["method"] == "warning")
        .expect("warning");
    assert!(warning["params"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("no secrets"));
}

#[tokio::test]
async fn a_malformed_layer_is_named_in_warnings_and_the_project_layer_still_loads() {
    let home = home("");
    let repo = tempfile::tempdir().expect("repo");
    std::fs::create_dir_all(repo.path().join(".git")).expect(".git");
    std::fs::create_dir_all(repo.path().join(".codex")).expect(".codex");
    let user_hooks = home.path().join("hooks.json");
    std::fs::write(
        &user_hooks,
        r#"{"hooks": {"Stop": [{"hooks": [{"type": "command", "command": 5}]}]}}"#,
    )
    .expect("hooks");
    std::fs::write(
        repo.path().join(".codex/hooks.json"),
        hooks_json(&[("Stop", None, "true")]),
    )
    .expect("hooks");
    let server = server(&home);
    let mut client = client_for(&server).await;
    let entry = list(&mut client, repo.path()).await;
    let warnings = entry["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1);
    let w = warnings[0].as_str().expect("text");
    assert!(
        w.contains(&user_hooks.display().to_string())
            && w.contains("hooks.Stop[0].hooks[0].command"),
        "{w}"
    );
    assert_eq!(entry["hooks"][0]["source"], "project");
    // The same problem, structured: the file, and the field at fault.
    let errors = entry["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["path"], user_hooks.display().to_string());
    assert_eq!(
        errors[0]["message"],
        "field `hooks.Stop[0].hooks[0].command` must be a string; handler skipped"
    );
    trust_all(&mut client, repo.path()).await;
    let thread_id = common::start_thread_in(&mut client, repo.path()).await;
    let messages = turn(&mut client, &thread_id, "hello").await;
    let warning = messages
        .iter()
        .find(|m| m["method"] == "configWarning")
        .expect("configWarning");
    assert_eq!(warning["params"]["path"], user_hooks.display().to_string());
    assert_eq!(
        completed_runs(&messages),
        [("stop".into(), "completed".into())]
    );
}

#[tokio::test]
async fn each_run_becomes_one_codex_hook_run_with_no_command_or_output() {
    let collector = FakeCollector::start().await;
    let home = home(&format!(
        "\n[analytics]\ncollector_url = \"{}\"\n",
        collector.url()
    ));
    let ws = tempfile::tempdir().expect("ws");
    let pre = format!("echo '{CANARY} stderr' >&2; exit 2");
    let post = format!("echo '{CANARY} stdout'");
    std::fs::write(
        home.path().join("hooks.json"),
        hooks_json(&[("PreToolUse", Some("Bash"), &pre), ("Stop", None, &post)]),
    )
    .expect("hooks");
    let server = server(&home);
    let mut client = client_for(&server).await;
    trust_all(&mut client, ws.path()).await;
    let thread_id = common::start_thread_in(&mut client, ws.path()).await;
    let messages = turn(&mut client, &thread_id, &format!("run: echo {CANARY}")).await;
    let turn_id = messages.last().expect("turn/completed")["params"]["turn"]["id"].clone();
    server.shutdown().await;

    let events = collector.wait_for_events(3, Duration::from_secs(10)).await;
    let runs: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "codex_hook_run")
        .map(|e| &e["event_params"])
        .collect();
    assert_eq!(runs.len(), 2, "{events:#?}");
    assert_eq!(
        runs[0],
        &json!({"thread_id": thread_id, "turn_id": turn_id, "product_client_id": "tally-test",
                "model_slug": "tally-offline-1", "hook_name": "PreToolUse", "hook_source": "user",
                "handler_type": "command", "execution_mode": "sync", "status": "blocked"})
    );
    // Stop prints plain text, which Stop does not accept.
    assert_eq!(
        (runs[1]["hook_name"].as_str(), runs[1]["status"].as_str()),
        (Some("Stop"), Some("failed"))
    );
    for body in collector.bodies() {
        assert!(!body.contains(CANARY), "hook text left the process: {body}");
    }
}

#[tokio::test]
async fn session_start_runs_once_per_thread_and_says_resume_after_a_restart() {
    let home = home("");
    let ws = tempfile::tempdir().expect("ws");
    let log = ws.path().join("sources.log");
    let command = format!("cat >> {l}; echo >> {l}", l = log.display());
    std::fs::write(
        home.path().join("hooks.json"),
        hooks_json(&[("SessionStart", None, &command)]),
    )
    .expect("hooks");
    let first = server(&home);
    let mut client = client_for(&first).await;
    trust_all(&mut client, ws.path()).await;
    let thread_id = common::start_thread_in(&mut client, ws.path()).await;
    turn(&mut client, &thread_id, "one").await;
    turn(&mut client, &thread_id, "two").await;
    first.shutdown().await;

    let second = server(&home);
    let mut client = client_for(&second).await;
    client
        .call_ok("thread/resume", json!({"threadId": thread_id}))
        .await;
    let messages = turn(&mut client, &thread_id, "three").await;
    assert_eq!(
        completed_runs(&messages),
        [("sessionStart".into(), "completed".into())]
    );
    let sources: Vec<Value> = std::fs::read_to_string(&log)
        .expect("log")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("payload")["source"].clone())
        .collect();
    assert_eq!(sources, [json!("startup"), json!("resume")]);
}

#[tokio::test]
async fn prompt_hook_context_reaches_the_model_as_a_developer_message() {
    let mock = MockResponsesServer::start().await;
    mock.enqueue_stream(sse::text_turn_whole("msg_1", "Noted."));
    let home = common::home_for(&mock, 0);
    let ws = tempfile::tempdir().expect("ws");
    let answer = json!({"hookSpecificOutput": {"hookEventName": "UserPromptSubmit",
        "additionalContext": "The repo uses tabs."}});
    let command = format!("echo '{answer}'");
    std::fs::write(
        home.path().join("hooks.json"),
        hooks_json(&[
            ("UserPromptSubmit", None, &command),
            ("SessionStart", None, "echo 'Branch: main'"),
        ]),
    )
    .expect("hooks");
    let server = server(&home);
    let mut client = client_for(&server).await;
    trust_all(&mut client, ws.path()).await;
    let thread_id = common::start_thread_in(&mut client, ws.path()).await;
    let messages = turn(&mut client, &thread_id, "fix the indent").await;
    assert_eq!(final_text(&messages), "Noted.");
    let request = &mock.requests()[0].body;
    let tail: Vec<(String, String)> = request["input"]
        .as_array()
        .expect("input")
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_string(),
                m["content"][0]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        tail,
        [
            ("user".to_string(), "fix the indent".to_string()),
            ("developer".to_string(), "Branch: main".to_string()),
            ("developer".to_string(), "The repo uses tabs.".to_string()),
        ]
    );
}

/// Writes a hooks.json whose handlers are given as full JSON (for `async`, several handlers).
fn write_hooks(home: &TempDir, hooks: Value) {
    std::fs::write(
        home.path().join("hooks.json"),
        json!({ "hooks": hooks }).to_string(),
    )
    .expect("hooks");
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("payload");
    serde_json::from_str(&text).expect("payload is JSON")
}

/// `hook/*` and item/turn notifications as `method:eventName|itemType`, for order checks.
fn hook_order(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| {
            let method = m["method"].as_str()?;
            match method {
                "hook/started" | "hook/completed" => Some(format!(
                    "{method}:{}",
                    m["params"]["run"]["eventName"].as_str()?
                )),
                "item/started" | "item/completed" => Some(format!(
                    "{method}:{}",
                    m["params"]["item"]["type"].as_str()?
                )),
                "turn/started" | "turn/completed" => Some(method.to_string()),
                _ => None,
            }
        })
        .collect()
}

#[tokio::test]
async fn config_toml_hooks_are_listed_trusted_and_run_and_the_trust_write_keeps_comments() {
    let ws = tempfile::tempdir().expect("ws");
    let log = ws.path().join("ran.log");
    let home = tempfile::tempdir().expect("home");
    let config_path = home.path().join("config.toml");
    std::fs::write(
        &config_path,
        format!(
            "# my settings: keep this comment\nmodel_provider = \"tally-offline\" # offline\napproval_policy = \"never\"\nsandbox_mode = \"danger-full-access\"\n\n# hooks live here too\n[[hooks.Stop]]\n[[hooks.Stop.hooks]]\ntype = \"command\"\ncommand = \"echo ran >> {}\"\ntimeout = 10\n",
            log.display()
        ),
    )
    .expect("config");
    let server = server(&home);
    let mut client = client_for(&server).await;

    let entry = list(&mut client, ws.path()).await;
    let hook = &entry["hooks"][0];
    assert_eq!(hook["sourcePath"], config_path.display().to_string());
    assert_eq!(hook["source"], "user");
    assert_eq!(hook["key"], format!("{}:stop:0:0", config_path.display()));
    assert_eq!(hook["trustStatus"], "untrusted");
    assert_eq!(entry["errors"], json!([]));

    let thread_id = common::start_thread_in(&mut client, ws.path()).await;
    let messages = turn(&mut client, &thread_id, "hello").await;
    assert!(
        completed_runs(&messages).is_empty(),
        "an untrusted hook ran"
    );
    assert!(!log.exists());

    trust_all(&mut client, ws.path()).await;
    let config = std::fs::read_to_string(&config_path).expect("config");
    for kept in [
        "# my settings: keep this comment\n",
        "model_provider = \"tally-offline\" # offline\n",
        "# hooks live here too\n[[hooks.Stop]]\n",
        "trusted_hash = \"sha256:",
    ] {
        assert!(config.contains(kept), "lost {kept:?}: {config}");
    }
    assert_eq!(
        list(&mut client, ws.path()).await["hooks"][0]["trustStatus"],
        "trusted"
    );
    let messages = turn(&mut client, &thread_id, "hello again").await;
    assert_eq!(
        completed_runs(&messages),
        [("stop".into(), "completed".into())]
    );
    let run = &messages
        .iter()
        .find(|m| m["method"] == "hook/completed")
        .expect("run")["params"]["run"];
    assert_eq!(run["sourcePath"], config_path.display().to_string());
    assert_eq!(std::fs::read_to_string(&log).expect("log"), "ran\n");
}

#[tokio::test]
async fn compaction_runs_pre_and_post_compact_hooks_in_order() {
    let home = home("");
    let ws = tempfile::tempdir().expect("ws");
    let dir = ws.path().display().to_string();
    std::fs::write(
        home.path().join("hooks.json"),
        hooks_json(&[
            (
                "PreCompact",
                Some("manual"),
                &format!("cat > {dir}/pre.json"),
            ),
            // Not selected: the matcher is applied to the trigger.
            (
                "PreCompact",
                Some("auto"),
                &format!("cat > {dir}/never.json"),
            ),
            ("PostCompact", None, &format!("cat > {dir}/post.json")),
        ]),
    )
    .expect("hooks");
    let server = server(&home);
    let mut client = client_for(&server).await;
    trust_all(&mut client, ws.path()).await;
    let thread_id = common::start_thread_in(&mut client, ws.path()).await;
    turn(&mut client, &thread_id, "remember: teal").await;

    client
        .call_ok("thread/compact/start", json!({"threadId": thread_id}))
        .await;
    let messages = client.collect_until("turn/completed").await;
    assert_eq!(
        hook_order(&messages),
        [
            "turn/started",
            "hook/started:preCompact",
            "hook/completed:preCompact",
            "item/started:contextCompaction",
            "item/completed:contextCompaction",
            "hook/started:postCompact",
            "hook/completed:postCompact",
            "turn/completed",
        ]
    );
    let turn_id = messages.last().expect("done")["params"]["turn"]["id"].clone();
    assert_eq!(
        messages.last().expect("done")["params"]["turn"]["status"],
        "completed"
    );
    let pre = read_json(&ws.path().join("pre.json"));
    assert_eq!(pre["hook_event_name"], "PreCompact");
    assert_eq!(pre["trigger"], "manual");
    assert_eq!(pre["turn_id"], turn_id);
    assert_eq!(pre["session_id"], thread_id.as_str());
    assert!(pre.get("permission_mode").is_none(), "{pre}");
    let post = read_json(&ws.path().join("post.json"));
    assert_eq!(post["hook_event_name"], "PostCompact");
    assert!(!post["compaction_summary"]
        .as_str()
        .unwrap_or_default()
        .is_empty());
    assert!(!ws.path().join("never.json").exists());
}

#[tokio::test]
async fn a_pre_compact_stop_gates_the_compaction_off() {
    let home = home("");
    let ws = tempfile::tempdir().expect("ws");
    std::fs::write(
        home.path().join("hooks.json"),
        hooks_json(&[(
            "PreCompact",
            None,
            "echo '{\"continue\":false,\"stopReason\":\"not now\"}'",
        )]),
    )
    .expect("hooks");
    let server = server(&home);
    let mut client = client_for(&server).await;
    trust_all(&mut client, ws.path()).await;
    let thread_id = common::start_thread_in(&mut client, ws.path()).await;
    turn(&mut client, &thread_id, "hello").await;
    client
        .call_ok("thread/compact/start", json!({"threadId": thread_id}))
        .await;
    let messages = client.collect_until("turn/completed").await;
    assert_eq!(
        completed_runs(&messages),
        [("preCompact".into(), "stopped".into())]
    );
    assert!(
        !messages
            .iter()
            .any(|m| m["params"]["item"]["type"] == "contextCompaction"),
        "the compaction ran"
    );
    let warning = messages
        .iter()
        .find(|m| m["method"] == "warning")
        .expect("warning");
    assert_eq!(
        warning["params"]["message"],
        "PreCompact hook stopped the compaction: not now"
    );
    // The history is untouched: the next turn still works from it.
    let next = turn(&mut client, &thread_id, "still here?").await;
    assert_eq!(
        next.last().expect("done")["params"]["turn"]["status"],
        "completed"
    );
}

#[tokio::test]
async fn permission_request_hooks_decide_before_anyone_is_asked() {
    let home = tempfile::tempdir().expect("home");
    std::fs::write(
        home.path().join("config.toml"),
        "model_provider = \"tally-offline\"\napproval_policy = \"untrusted\"\nsandbox_mode = \"danger-full-access\"\n",
    )
    .expect("config");
    let ws = tempfile::tempdir().expect("ws");
    let dir = ws.path().display().to_string();
    let deny = json!({"hookSpecificOutput": {"hookEventName": "PermissionRequest",
        "decision": {"behavior": "deny", "message": "not on my watch"}}});
    let allow = json!({"hookSpecificOutput": {"hookEventName": "PermissionRequest",
        "decision": {"behavior": "allow"}}});
    let command = format!(
        "cat > {dir}/perm.json; if [ -e {dir}/allow ]; then echo '{allow}'; else echo '{deny}'; fi"
    );
    std::fs::write(
        home.path().join("hooks.json"),
        hooks_json(&[("PermissionRequest", Some("Bash"), &command)]),
    )
    .expect("hooks");
    let server = server(&home);
    let mut client = client_for(&server).await;
    trust_all(&mut client, ws.path()).await;
    let thread_id = common::start_thread_in(&mut client, ws.path()).await;

    let messages = turn(&mut client, &thread_id, "run: touch denied").await;
    assert!(
        !methods(&messages)
            .iter()
            .any(|m| m.contains("requestApproval")),
        "the client was asked: {messages:#?}"
    );
    assert_eq!(
        completed_runs(&messages),
        [("permissionRequest".into(), "blocked".into())]
    );
    assert!(!ws.path().join("denied").exists(), "a denied command ran");
    assert!(
        final_text(&messages).contains("rejected by a PermissionRequest hook: not on my watch"),
        "{}",
        final_text(&messages)
    );
    let call_id = messages
        .iter()
        .find(|m| {
            m["method"] == "item/completed" && m["params"]["item"]["type"] == "commandExecution"
        })
        .map(|m| {
            m["params"]["item"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .expect("declined command item");
    let run = &messages
        .iter()
        .find(|m| m["method"] == "hook/completed")
        .expect("run")["params"]["run"];
    let hooks_path = home.path().join("hooks.json").display().to_string();
    assert_eq!(
        run["id"],
        format!("permission-request:0:{hooks_path}:{call_id}")
    );
    let payload = read_json(&ws.path().join("perm.json"));
    assert_eq!(payload["hook_event_name"], "PermissionRequest");
    assert_eq!(payload["tool_name"], "Bash");
    assert_eq!(payload["tool_input"]["command"], "touch denied");
    assert!(payload.get("tool_use_id").is_none(), "{payload}");
    assert_eq!(payload["permission_mode"], "default");

    std::fs::write(ws.path().join("allow"), "").expect("flag");
    let messages = turn(&mut client, &thread_id, "run: touch allowed").await;
    assert!(!methods(&messages)
        .iter()
        .any(|m| m.contains("requestApproval")));
    assert_eq!(
        completed_runs(&messages),
        [("permissionRequest".into(), "completed".into())]
    );
    assert!(
        ws.path().join("allowed").exists(),
        "an allowed command did not run"
    );
}

#[tokio::test]
async fn interrupt_and_session_end_hooks_run_once_and_are_reported_without_their_text() {
    let collector = FakeCollector::start().await;
    let home = home(&format!(
        "\n[analytics]\ncollector_url = \"{}\"\n",
        collector.url()
    ));
    let ws = tempfile::tempdir().expect("ws");
    let ends = ws.path().join("ends.log");
    let interrupt = format!("echo '{{\"systemMessage\":\"{CANARY} interrupted\"}}'");
    let end = format!("cat >> {l}; echo >> {l}; echo {CANARY}", l = ends.display());
    std::fs::write(
        home.path().join("hooks.json"),
        hooks_json(&[("Interrupt", None, &interrupt), ("SessionEnd", None, &end)]),
    )
    .expect("hooks");
    let server = server(&home);
    let mut client = client_for(&server).await;
    trust_all(&mut client, ws.path()).await;
    let archived = common::start_thread_in(&mut client, ws.path()).await;
    turn(&mut client, &archived, "hello").await;
    let kept = common::start_thread_in(&mut client, ws.path()).await;

    // Interrupt: a long command is stopped; the hook runs before turn/completed.
    interrupt_a_long_command(&mut client, &kept).await;
    let messages = client.collect_until("turn/completed").await;
    assert_eq!(
        completed_runs(&messages),
        [("interrupt".into(), "completed".into())]
    );
    assert_eq!(
        messages.last().expect("done")["params"]["turn"]["status"],
        "interrupted"
    );

    // Archiving ends that thread's session; shutdown ends the other one, and not the first again.
    client
        .call_ok("thread/archive", json!({"threadId": archived}))
        .await;
    server.shutdown().await;
    let ended: Vec<Value> = std::fs::read_to_string(&ends)
        .expect("SessionEnd ran")
        .lines()
        .map(|l| serde_json::from_str(l).expect("payload"))
        .collect();
    assert_eq!(ended.len(), 2, "{ended:?}");
    assert_eq!(ended[0]["session_id"], archived.as_str());
    assert_eq!(ended[1]["session_id"], kept.as_str());
    assert_eq!(
        ended[0],
        json!({"session_id": archived, "transcript_path": ended[0]["transcript_path"],
               "cwd": ws.path().display().to_string(), "hook_event_name": "SessionEnd",
               "reason": "other"})
    );
    let end_run = client
        .wait_for(|m| {
            m["method"] == "hook/completed" && m["params"]["run"]["eventName"] == "sessionEnd"
        })
        .await;
    assert_eq!(end_run["params"]["run"]["scope"], "thread");
    assert_eq!(end_run["params"]["run"]["status"], "completed");

    let events = collector.wait_for_events(3, Duration::from_secs(10)).await;
    let mut runs: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["event_type"] == "codex_hook_run")
        .map(|e| {
            (
                e["event_params"]["hook_name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                e["event_params"]["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    runs.sort();
    assert_eq!(
        runs,
        [
            ("Interrupt".into(), "completed".into()),
            ("SessionEnd".into(), "completed".into()),
            ("SessionEnd".into(), "completed".into()),
        ]
    );
    for body in collector.bodies() {
        assert!(!body.contains(CANARY), "hook text left the process: {body}");
    }
}

#[tokio::test]
async fn async_hooks_do_not_block_the_turn_are_reported_and_feed_the_next_prompt() {
    let mock = MockResponsesServer::start().await;
    mock.enqueue_stream(sse::text_turn_whole("msg_1", "One."));
    mock.enqueue_stream(sse::text_turn_whole("msg_2", "Two."));
    let collector = FakeCollector::start().await;
    let home = common::home_with_analytics(&mock, collector.url());
    let ws = tempfile::tempdir().expect("ws");
    let context = format!("from the async hook {CANARY}");
    let answer = json!({"hookSpecificOutput": {"hookEventName": "UserPromptSubmit",
        "additionalContext": context}});
    let marker = ws.path().join("first-done");
    // Only the first run answers (after a pause); later runs stay quiet.
    let slow = format!(
        "if [ -e {m} ]; then exit 0; fi; sleep 2; touch {m}; echo '{answer}'",
        m = marker.display()
    );
    write_hooks(
        &home,
        json!({"UserPromptSubmit": [{"hooks": [
            {"type": "command", "command": slow, "timeout": 10, "async": true},
            {"type": "command", "command": format!("if [ -e {m} ]; then exit 0; fi; sleep 30", m = marker.display()), "timeout": 1, "async": true}
        ]}]}),
    );
    let server = server(&home);
    let mut client = client_for(&server).await;
    trust_all(&mut client, ws.path()).await;
    let thread_id = common::start_thread_in(&mut client, ws.path()).await;

    let begun = std::time::Instant::now();
    let first = turn(&mut client, &thread_id, "first").await;
    assert!(
        begun.elapsed() < Duration::from_secs(2),
        "the turn waited for an async hook"
    );
    assert!(
        !first.iter().any(|m| m["method"] == "hook/completed"),
        "{first:#?}"
    );
    let mut done = Vec::new();
    while done.len() < 2 {
        let m = client.notification("hook/completed").await;
        done.push(m["params"]["run"].clone());
    }
    done.sort_by_key(|r| r["status"].as_str().unwrap_or_default().to_string());
    assert_eq!(done[0]["executionMode"], "async");
    assert_eq!(done[0]["status"], "completed");
    assert_eq!(done[1]["status"], "failed");
    assert_eq!(done[1]["entries"][0]["text"], "hook timed out after 1s");

    let second = turn(&mut client, &thread_id, "second").await;
    assert_eq!(final_text(&second), "Two.");
    let request = &mock.requests()[1].body;
    let tail: Vec<(String, String)> = request["input"]
        .as_array()
        .expect("input")
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_string(),
                m["content"][0]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(tail[0], ("user".to_string(), "second".to_string()));
    let developer: Vec<&str> = tail[1..].iter().map(|(_, t)| t.as_str()).collect();
    assert!(developer.contains(&context.as_str()), "{tail:?}");
    assert!(
        developer.contains(&"Async UserPromptSubmit hook failed: hook timed out after 1s"),
        "{tail:?}"
    );

    // Turn 2's async runs end quickly (the marker exists), maybe before the turn does.
    let early = second
        .iter()
        .filter(|m| m["method"] == "hook/completed")
        .count();
    for _ in early..2 {
        client.notification("hook/completed").await;
    }
    server.shutdown().await;
    let events = collector.wait_for_events(4, Duration::from_secs(10)).await;
    let runs: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "codex_hook_run")
        .map(|e| &e["event_params"])
        .collect();
    assert_eq!(runs.len(), 4, "{events:#?}");
    for r in &runs {
        assert_eq!(r["execution_mode"], "async");
        assert_eq!(r["hook_name"], "UserPromptSubmit");
    }
    for body in collector.bodies() {
        assert!(!body.contains(CANARY), "hook text left the process: {body}");
    }
}

/// A turn/start that arrives while an interrupted turn is still ending (here its Interrupt hook
/// takes a second) starts a new turn once the old one has closed: joining the ending turn would
/// accept the input and then drop it.
#[tokio::test]
async fn a_turn_start_while_the_interrupted_turn_ends_starts_a_new_turn() {
    let home = home("");
    let ws = tempfile::tempdir().expect("ws");
    std::fs::write(
        home.path().join("hooks.json"),
        hooks_json(&[("Interrupt", None, "sleep 1")]),
    )
    .expect("hooks");
    let server = server(&home);
    let mut client = client_for(&server).await;
    trust_all(&mut client, ws.path()).await;
    let thread_id = common::start_thread_in(&mut client, ws.path()).await;
    let first = interrupt_a_long_command(&mut client, &thread_id).await;
    // The Interrupt hook still runs: the first turn has not completed yet.
    let next = client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": input("after the interrupt")}),
        )
        .await;
    let second = next["turn"]["id"].as_str().expect("turn id").to_string();
    assert_ne!(second, first, "a new turn, not the ending one");
    let messages = client.collect_until("turn/completed").await;
    let done = messages.last().expect("turn/completed");
    if done["params"]["turn"]["id"] == first.as_str() {
        assert_eq!(done["params"]["turn"]["status"], "interrupted");
        let rest = client.collect_until("turn/completed").await;
        let done = rest.last().expect("turn/completed");
        assert_eq!(done["params"]["turn"]["id"], second.as_str());
        assert!(
            final_text(&rest).contains("after the interrupt"),
            "{rest:?}"
        );
    } else {
        panic!("the first turn must complete first: {done}");
    }
}
