//! Goal, compaction and accepted-line analytics end to end on the offline model: goal changes,
//! a patch in a git repository and a manual compaction become `codex_goal_event`,
//! `codex_accepted_line_fingerprints` (in a POST of its own) and `codex_compaction_event`, the
//! compaction turn makes no `codex_turn_event`, and neither the goal objective, the compaction
//! summary nor the remote URL leaves the process.

use crate::common;

use serde_json::{json, Value};
use std::time::Duration;
use tally_app_server::{AppServer, AppServerOptions};
use tally_core::repo_hash::fingerprint_hash;
use tally_core::Config;
use tally_test_support::{AppClient, FakeCollector, SchemaMode};

const CANARY: &str = "vk-canary-5150";

fn input(text: &str) -> Value {
    json!([{"type": "text", "text": text, "text_elements": []}])
}

async fn drain_turn(client: &mut AppClient) -> Vec<Value> {
    client.collect_until("turn/completed").await
}

#[tokio::test]
async fn goals_compaction_and_accepted_lines_become_codex_events_without_private_text() {
    let collector = FakeCollector::start().await;
    let home = common::offline_home_with_analytics(
        "approval_policy = \"untrusted\"\nsandbox_mode = \"workspace-write\"\n",
        collector.url(),
    );
    // A git repository whose remote URL is itself a canary.
    let workspace = tempfile::tempdir().expect("workspace");
    let git = workspace.path().join(".git");
    std::fs::create_dir_all(&git).expect(".git");
    std::fs::write(
        git.join("config"),
        format!("[remote \"origin\"]\n\turl = git@example.com:{CANARY}/repo.git\n"),
    )
    .expect("git config");
    let config = Config::load(home.path()).expect("config");
    let server = std::sync::Arc::new(AppServer::new(config, AppServerOptions::default()));
    let mut client = common::line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let started = client
        .call_ok(
            "thread/start",
            json!({"cwd": workspace.path().display().to_string()}),
        )
        .await;
    let thread_id = started["thread"]["id"].as_str().expect("id").to_string();

    // Goals: created, status changed, cleared.
    let objective = format!("objective {CANARY}");
    client
        .call_ok(
            "thread/goal/set",
            json!({"threadId": thread_id, "objective": objective, "tokenBudget": 900}),
        )
        .await;
    client
        .call_ok(
            "thread/goal/set",
            json!({"threadId": thread_id, "status": "paused"}),
        )
        .await;
    client
        .call_ok("thread/goal/clear", json!({"threadId": thread_id}))
        .await;

    // A patch adds two lines; the person accepts it. (`[slow]` makes the offline model, and the
    // compaction that later quotes this prompt, stream slowly.)
    let patch = format!(
        "[slow] patch: *** Begin Patch\n*** Add File: {CANARY}.txt\n+first {CANARY}\n+second line\n*** End Patch"
    );
    let turn = client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": input(&patch)}),
        )
        .await;
    let patch_turn = turn["turn"]["id"].as_str().expect("turn id").to_string();
    let approval = client
        .wait_for(|m| m["method"] == "item/fileChange/requestApproval" && m.get("id").is_some())
        .await;
    client
        .send(json!({"id": approval["id"], "result": {"decision": "accept"}}))
        .await;
    let rest = drain_turn(&mut client).await;
    assert!(rest.iter().any(|m| m["method"] == "turn/diff/updated"));
    assert!(workspace.path().join(format!("{CANARY}.txt")).exists());

    // A manual compaction: its summary quotes the canary-laden prompt. A steer into it is refused.
    client
        .call_ok("thread/compact/start", json!({"threadId": thread_id}))
        .await;
    let started = client.notification("turn/started").await;
    let steer = client
        .call(
            "turn/steer",
            json!({"threadId": thread_id, "expectedTurnId": started["params"]["turn"]["id"],
                   "input": input(&format!("steer {CANARY}"))}),
        )
        .await;
    assert_eq!(steer["error"]["code"], -32600, "{steer}");
    let rest = drain_turn(&mut client).await;
    let compaction_turn = rest
        .last()
        .and_then(|m| m["params"]["turn"]["id"].as_str())
        .expect("compaction turn")
        .to_string();
    assert_eq!(
        rest.last().expect("done")["params"]["turn"]["status"],
        "completed"
    );

    server.shutdown().await;
    let events = collector.wait_for_events(11, Duration::from_secs(10)).await;
    let types = tally_test_support::event_types(&events);
    assert_eq!(
        types,
        [
            "codex_thread_initialized",
            "codex_goal_event",
            "codex_goal_event",
            "codex_goal_event",
            "codex_review_event",
            "codex_server_request_event",
            "codex_file_change_event",
            "codex_turn_event",
            "codex_accepted_line_fingerprints",
            "codex_turn_steer_event",
            "codex_compaction_event",
        ],
        "the compaction turn makes no codex_turn_event"
    );
    let p = |i: usize| &events[i]["event_params"];

    let kinds: Vec<&Value> = (1..4).map(|i| &p(i)["event_kind"]).collect();
    assert_eq!(
        kinds,
        [
            &json!("created"),
            &json!("status_changed"),
            &json!("cleared")
        ]
    );
    assert_eq!(p(1)["goal_status"], "active");
    assert_eq!(p(2)["goal_status"], "paused");
    assert_eq!(p(3)["goal_status"], "paused");
    assert_eq!(p(1)["goal_id"], p(3)["goal_id"]);
    assert!(uuid_like(&p(1)["goal_id"]));
    assert_eq!(p(1)["has_token_budget"], true);
    assert_eq!(p(1)["turn_id"], Value::Null);
    assert_eq!(p(1)["thread_id"], thread_id.as_str());
    assert_eq!(p(1)["app_server_client"]["product_client_id"], "tally-test");

    assert_eq!(p(7)["turn_id"], patch_turn.as_str());
    assert_eq!(p(7)["file_change_count"], 1);
    let lines = p(8);
    assert_eq!(
        lines,
        &json!({
            "event_type": "codex.accepted_line_fingerprints",
            "turn_id": patch_turn,
            "thread_id": thread_id,
            "product_surface": "codex",
            "model_slug": lines["model_slug"],
            "completed_at": lines["completed_at"],
            "repo_hash": fingerprint_hash("repo", &format!("example.com/{CANARY}/repo")),
            "accepted_added_lines": 2,
            "accepted_deleted_lines": 0,
            "line_fingerprints": [],
        })
    );
    assert!(lines["model_slug"].is_string() && lines["completed_at"].is_i64());

    assert_eq!(p(9)["result"], "rejected");
    assert_eq!(p(9)["rejection_reason"], "non_steerable_compact");
    assert_eq!(p(9)["expected_turn_id"], compaction_turn.as_str());

    let compaction = p(10);
    assert_eq!(compaction["turn_id"], compaction_turn.as_str());
    assert_eq!(compaction["thread_id"], thread_id.as_str());
    assert_eq!(compaction["session_id"], thread_id.as_str());
    for (field, value) in [
        ("trigger", "manual"),
        ("reason", "user_requested"),
        ("implementation", "responses"),
        ("phase", "standalone_turn"),
        ("strategy", "memento"),
        ("status", "completed"),
    ] {
        assert_eq!(compaction[field], value, "{field}");
    }
    assert!(compaction["active_context_tokens_before"].as_i64() > Some(0));
    assert!(compaction["active_context_tokens_after"].as_i64() > Some(0));
    assert!(compaction["duration_ms"].is_i64());
    assert!(compaction["started_at"].as_i64() <= compaction["completed_at"].as_i64());
    for null in [
        "voice_session_id",
        "codex_error_kind",
        "codex_error_http_status_code",
        "usage_limit_window_minutes",
        "retained_image_count",
        "compaction_summary_tokens",
        "cached_input_tokens",
        "cache_write_input_tokens",
    ] {
        assert_eq!(compaction[null], Value::Null, "{null}");
    }

    // `codex_accepted_line_fingerprints` went in a POST of its own.
    let bodies = collector.bodies();
    let alone: Vec<&String> = bodies
        .iter()
        .filter(|b| b.contains("codex_accepted_line_fingerprints"))
        .collect();
    assert_eq!(alone.len(), 1);
    let body: Value = serde_json::from_str(alone[0]).expect("body");
    assert_eq!(body["events"].as_array().map(Vec::len), Some(1), "{body}");

    // Canaries: the objective, the summary (which quotes the prompt), the remote and the paths.
    for body in &bodies {
        assert!(
            !body.contains(CANARY),
            "a private string left the process: {body}"
        );
    }
    for entry in walk(&home.path().join("analytics")) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(CANARY),
            "canary in spool file {}",
            entry.display()
        );
    }
}

fn uuid_like(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
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
