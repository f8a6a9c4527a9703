//! Guardian end to end: with `approvalsReviewer: "auto_review"` every approval is judged by a
//! review session on the model, no approval request reaches the client, anything but an allow
//! declines, and `codex_guardian_review` carries outcomes without anything private.

use crate::common;

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tally_app_server::{AppServer, AppServerOptions};
use tally_core::Config;
use tally_test_support::{sse, AppClient, FakeCollector, MockResponsesServer, SchemaMode};
use tempfile::TempDir;

const CANARY: &str = "qx-guardian-canary-4417";

fn input(text: &str) -> Value {
    json!([{"type": "text", "text": text, "text_elements": []}])
}

/// A server on the offline model that asks before every unsafe command.
struct Harness {
    server: Arc<AppServer>,
    client: AppClient,
    thread_id: String,
    workspace: TempDir,
    _home: TempDir,
}

async fn offline(extra_config: &str, collector: Option<&FakeCollector>) -> Harness {
    let home = tempfile::tempdir().expect("home");
    let mut config = format!(
        "model_provider = \"tally-offline\"\napproval_policy = \"untrusted\"\nsandbox_mode = \"workspace-write\"\n{extra_config}\n"
    );
    match collector {
        Some(c) => config.push_str(&format!("[analytics]\ncollector_url = \"{}\"\n", c.url())),
        None => config.push_str("[analytics]\nenabled = false\n"),
    }
    std::fs::write(home.path().join("config.toml"), config).expect("config");
    let workspace = tempfile::tempdir().expect("workspace");
    let server = Arc::new(AppServer::new(
        Config::load(home.path()).expect("config loads"),
        AppServerOptions::default(),
    ));
    let mut client = common::line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let started = client
        .call_ok(
            "thread/start",
            json!({"cwd": workspace.path().display().to_string(), "approvalsReviewer": "auto_review"}),
        )
        .await;
    assert_eq!(started["approvalsReviewer"], "auto_review");
    let thread_id = started["thread"]["id"].as_str().expect("id").to_string();
    Harness {
        server,
        client,
        thread_id,
        workspace,
        _home: home,
    }
}

impl Harness {
    /// Runs one turn to its end and returns everything the client received.
    async fn turn(&mut self, text: &str) -> Vec<Value> {
        self.client
            .call_ok(
                "turn/start",
                json!({"threadId": self.thread_id, "input": input(text)}),
            )
            .await;
        let messages = self.client.collect_until("turn/completed").await;
        assert_no_approval_request(&messages);
        messages
    }
}

fn assert_no_approval_request(messages: &[Value]) {
    let requests: Vec<&Value> = messages
        .iter()
        .filter(|m| m.get("id").is_some() && m.get("method").is_some())
        .collect();
    assert!(
        requests.is_empty(),
        "no request may reach the client: {requests:#?}"
    );
}

/// With automatic review nobody is asked: the thread stays `active` without `waitingOnApproval`.
fn assert_never_waiting_on_approval(messages: &[Value]) {
    let statuses: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "thread/status/changed")
        .map(|m| &m["params"]["status"])
        .collect();
    assert!(!statuses.is_empty(), "the turn changes the thread's status");
    for status in &statuses {
        let flags = status["activeFlags"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            !flags.contains(&json!("waitingOnApproval")),
            "auto review never waits on the user: {statuses:#?}"
        );
    }
}

/// Methods in the order they arrived, without the streaming noise.
fn methods(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .filter_map(|m| m["method"].as_str())
        .collect()
}

fn find<'a>(messages: &'a [Value], method: &str) -> &'a Value {
    messages
        .iter()
        .find(|m| m["method"] == method)
        .unwrap_or_else(|| panic!("no {method} in {messages:#?}"))
}

fn command_status(messages: &[Value]) -> Value {
    messages
        .iter()
        .find(|m| {
            m["method"] == "item/completed" && m["params"]["item"]["type"] == "commandExecution"
        })
        .map(|m| m["params"]["item"]["status"].clone())
        .unwrap_or_else(|| panic!("no completed command in {messages:#?}"))
}

#[tokio::test]
async fn auto_review_runs_an_allowed_command_without_asking_the_client() {
    let mut h = offline("", None).await;
    let messages = h.turn("run: touch approved.txt").await;
    let started = find(&messages, "item/autoApprovalReview/started");
    assert_eq!(started["params"]["review"]["status"], "inProgress");
    assert_eq!(started["params"]["action"]["type"], "command");
    let done = find(&messages, "item/autoApprovalReview/completed");
    assert_eq!(done["params"]["review"]["status"], "approved");
    assert_eq!(done["params"]["review"]["riskLevel"], "low");
    assert_eq!(done["params"]["decisionSource"], "agent");
    assert_eq!(done["params"]["reviewId"], started["params"]["reviewId"]);
    assert_eq!(command_status(&messages), "completed");
    assert!(h.workspace.path().join("approved.txt").exists());
    assert_never_waiting_on_approval(&messages);
    // As Codex: a guardianWarning with the verdict, right before the completed review.
    let warning = find(&messages, "guardianWarning");
    assert_eq!(warning["params"]["threadId"], h.thread_id.as_str());
    let warning_text = warning["params"]["message"].as_str().expect("message");
    assert!(
        warning_text.starts_with("Automatic approval review approved (risk: low"),
        "{warning_text}"
    );
    let order = methods(&messages);
    let at = |m: &str| order.iter().position(|x| *x == m).expect("present");
    assert_eq!(
        at("guardianWarning") + 1,
        at("item/autoApprovalReview/completed")
    );
}

#[tokio::test]
async fn auto_review_denial_declines_the_command() {
    let mut h = offline("", None).await;
    std::fs::create_dir(h.workspace.path().join("build")).expect("dir");
    let messages = h.turn("run: rm -rf build").await;
    let done = find(&messages, "item/autoApprovalReview/completed");
    assert_eq!(done["params"]["review"]["status"], "denied");
    assert_eq!(done["params"]["review"]["riskLevel"], "high");
    assert_eq!(command_status(&messages), "declined");
    assert!(
        h.workspace.path().join("build").exists(),
        "a denied command never runs"
    );
    assert_never_waiting_on_approval(&messages);
    let warning = find(&messages, "guardianWarning");
    assert!(warning["params"]["message"]
        .as_str()
        .expect("message")
        .starts_with("Automatic approval review denied (risk: high"));
}

#[tokio::test]
async fn legacy_guardian_subagent_in_config_also_reviews_patches() {
    let mut h = offline("approvals_reviewer = \"guardian_subagent\"", None).await;
    let outside = tempfile::tempdir().expect("outside");
    let target = outside.path().join("notes.txt");
    let messages = h
        .turn(&format!(
            "patch: *** Begin Patch\n*** Add File: {}\n+hello\n*** End Patch",
            target.display()
        ))
        .await;
    let done = find(&messages, "item/autoApprovalReview/completed");
    assert_eq!(done["params"]["action"]["type"], "applyPatch");
    assert_eq!(done["params"]["review"]["status"], "approved");
    assert!(target.exists());
}

#[tokio::test]
async fn a_review_past_its_deadline_times_out_and_declines() {
    let mut h = offline("[guardian]\nreview_timeout_ms = 300\n", None).await;
    let messages = h.turn("run: touch never-[guardian:hang]").await;
    let done = find(&messages, "item/autoApprovalReview/completed");
    assert_eq!(done["params"]["review"]["status"], "timedOut");
    assert_eq!(command_status(&messages), "declined");
    assert_never_waiting_on_approval(&messages);
    let warning = find(&messages, "guardianWarning");
    assert!(warning["params"]["message"]
        .as_str()
        .expect("message")
        .contains("timed out after 300 ms"));
    let turn = find(&messages, "turn/completed");
    assert_eq!(turn["params"]["turn"]["status"], "completed");
}

#[tokio::test]
async fn interrupting_the_turn_cancels_its_review() {
    let mut h = offline("", None).await;
    let started = h
        .client
        .call_ok(
            "turn/start",
            json!({"threadId": h.thread_id, "input": input("run: touch never-[guardian:hang]")}),
        )
        .await;
    let turn_id = started["turn"]["id"].as_str().expect("turn id").to_string();
    h.client
        .notification("item/autoApprovalReview/started")
        .await;
    h.client
        .call_ok(
            "turn/interrupt",
            json!({"threadId": h.thread_id, "turnId": turn_id}),
        )
        .await;
    let done = h
        .client
        .notification("item/autoApprovalReview/completed")
        .await;
    assert_eq!(done["params"]["review"]["status"], "aborted");
    let rest = h.client.collect_until("turn/completed").await;
    let turn = rest.last().expect("turn/completed");
    assert_eq!(turn["params"]["turn"]["status"], "interrupted");
    assert!(
        !methods(&rest).contains(&"guardianWarning"),
        "Codex warns of no cancelled review: {rest:#?}"
    );
}

#[tokio::test]
async fn an_unparsable_assessment_fails_closed() {
    let mut h = offline("", None).await;
    let messages = h.turn("run: touch never-[guardian:malformed]").await;
    let done = find(&messages, "item/autoApprovalReview/completed");
    assert_eq!(done["params"]["review"]["status"], "denied");
    assert_eq!(done["params"]["review"]["riskLevel"], Value::Null);
    assert_eq!(command_status(&messages), "declined");
    assert!(!h
        .workspace
        .path()
        .join("never-[guardian:malformed]")
        .exists());
}

/// Events of `event_type`, as their params.
fn of(events: &[Value], event_type: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["event_type"] == event_type)
        .map(|e| e["event_params"].clone())
        .collect()
}

async fn guardian_events(collector: &FakeCollector, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events = of(&collector.events(), "codex_guardian_review");
        if events.len() >= n || tokio::time::Instant::now() > deadline {
            assert_eq!(events.len(), n, "{:#?}", collector.events());
            return events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn reviews_become_codex_guardian_review_events_with_session_reuse() {
    let collector = FakeCollector::start().await;
    let mut h = offline("", Some(&collector)).await;
    h.turn("run: touch first.txt").await;
    h.turn("run: rm -rf build").await;
    h.turn("run: touch never-[guardian:malformed]").await;
    let huge = "x".repeat(70_000);
    h.turn(&format!("run: touch {huge}")).await;
    h.server.shutdown().await;
    let events = guardian_events(&collector, 4).await;
    let (first, second, malformed, unbuildable) = (&events[0], &events[1], &events[2], &events[3]);

    assert_eq!(first["session_id"], h.thread_id.as_str());
    assert_eq!(first["thread_id"], h.thread_id.as_str());
    assert_eq!(first["approval_request_source"], "main_turn");
    assert_eq!(first["decision"], "approved");
    assert_eq!(first["terminal_status"], "approved");
    assert_eq!(first["failure_reason"], Value::Null);
    assert_eq!(first["attempt_count"], 1);
    assert_eq!(first["outcome"], "allow");
    // Codex 0.169 reports `trunk_reused` even on a thread's first review; Tally matches it.
    assert_eq!(first["guardian_session_kind"], "trunk_reused");
    assert_eq!(first["had_prior_review_context"], false);
    assert_eq!(first["guardian_model"], "tally-offline-1");
    assert_eq!(first["guardian_model_provider_id"], "tally-offline");
    assert_eq!(first["review_timeout_ms"], 90_000);
    assert_eq!(
        first["reviewed_action"],
        json!({"type": "unified_exec", "sandbox_permissions": "use_default",
               "additional_permissions": null, "tty": false})
    );
    assert!(first["input_tokens"].as_i64().expect("tokens") > 0);
    // The review's own timing: first output within the whole review, which lasts about as
    // long as the review event says.
    let ttft = first["time_to_first_token_ms"].as_u64().expect("ttft");
    let latency = first["completion_latency_ms"].as_u64().expect("latency");
    assert!(ttft <= latency, "{ttft} > {latency}");
    assert!(first["target_item_id"]
        .as_str()
        .expect("item")
        .starts_with("call_"));

    assert_eq!(second["decision"], "denied");
    assert_eq!(second["terminal_status"], "denied");
    assert_eq!(second["risk_level"], "high");
    assert_eq!(second["guardian_session_kind"], "trunk_reused");
    assert_eq!(second["had_prior_review_context"], true);
    assert_eq!(second["guardian_thread_id"], first["guardian_thread_id"]);

    assert_eq!(malformed["decision"], "denied");
    assert_eq!(malformed["terminal_status"], "failed_closed");
    assert_eq!(malformed["failure_reason"], "parse_error");
    assert_eq!(malformed["attempt_count"], 3);
    assert_eq!(malformed["outcome"], Value::Null);
    assert!(malformed["time_to_first_token_ms"].is_u64());

    assert_eq!(unbuildable["terminal_status"], "failed_closed");
    assert_eq!(unbuildable["failure_reason"], "prompt_build_error");
    assert_eq!(unbuildable["attempt_count"], 0);
    assert_eq!(unbuildable["guardian_thread_id"], Value::Null);

    // Each review is also a `codex_review_event` by `guardian`, right after its own event, and
    // the command's item event counts it.
    let all = collector.events();
    let reviews = of(&all, "codex_review_event");
    assert_eq!(reviews.len(), 4, "{all:#?}");
    for (review, guardian) in reviews.iter().zip(&events) {
        assert_eq!(review["reviewer"], "guardian");
        assert_eq!(review["review_id"], guardian["review_id"]);
        assert_eq!(review["item_id"], guardian["target_item_id"]);
        assert_eq!(review["subject_kind"], "command_execution");
    }
    let position = |t: &str, id: &Value| {
        all.iter()
            .position(|e| e["event_type"] == t && e["event_params"]["review_id"] == *id)
            .expect("event present")
    };
    let id = &first["review_id"];
    assert!(position("codex_guardian_review", id) < position("codex_review_event", id));
    for (review, guardian) in reviews.iter().zip(&events) {
        let duration = review["duration_ms"].as_u64().expect("duration");
        let latency = guardian["completion_latency_ms"].as_u64().expect("latency");
        assert!(latency <= duration + 5, "{latency} vs {duration}");
    }
    let statuses: Vec<&Value> = reviews.iter().map(|r| &r["status"]).collect();
    assert_eq!(
        statuses,
        [
            &json!("approved"),
            &json!("denied"),
            &json!("denied"),
            &json!("denied")
        ]
    );
    let commands = of(&all, "codex_command_execution_event");
    let outcomes: Vec<&Value> = commands
        .iter()
        .map(|c| &c["final_approval_outcome"])
        .collect();
    assert_eq!(
        outcomes,
        [
            &json!("guardian_approved"),
            &json!("guardian_denied"),
            &json!("guardian_denied"),
            &json!("guardian_denied")
        ]
    );
    assert!(commands
        .iter()
        .all(|c| c["guardian_review_count"] == 1 && c["user_review_count"] == 0));

    // The reviewer thread: initialized once as a guardian sub-agent, one turn per attempt.
    let guardian_thread = &first["guardian_thread_id"];
    let inits: Vec<Value> = of(&all, "codex_thread_initialized")
        .into_iter()
        .filter(|e| e["thread_id"] == *guardian_thread)
        .collect();
    assert_eq!(inits.len(), 1, "{all:#?}");
    assert_eq!(inits[0]["thread_source"], "guardian_review");
    assert_eq!(inits[0]["subagent_source"], "guardian");
    assert_eq!(inits[0]["parent_thread_id"], h.thread_id.as_str());
    assert_eq!(inits[0]["session_id"], h.thread_id.as_str());
    let reviewer_turns: Vec<Value> = of(&all, "codex_turn_event")
        .into_iter()
        .filter(|e| e["thread_id"] == *guardian_thread)
        .collect();
    assert_eq!(reviewer_turns.len(), 1 + 1 + 3, "one per sampling attempt");
    assert!(reviewer_turns
        .iter()
        .all(|t| t["approvals_reviewer"] == "auto_review" && t["status"] == "completed"));
    let first_turns: Vec<bool> = reviewer_turns
        .iter()
        .map(|t| t["is_first_turn"] == true)
        .collect();
    assert_eq!(first_turns, [true, false, false, false, false]);
    // The 3-attempt failure reports one response's usage (its last), not the sum, as Codex.
    let tokens = |v: &Value| v["input_tokens"].as_i64().expect("tokens");
    assert_eq!(tokens(malformed), tokens(&reviewer_turns[4]));
    let attempts_sum: i64 = reviewer_turns[2..5].iter().map(tokens).sum();
    assert!(tokens(malformed) < attempts_sum);
    let parent_turns = of(&all, "codex_turn_event").len() - reviewer_turns.len();
    assert_eq!(parent_turns, 4);
}

#[tokio::test]
async fn a_reviewed_action_full_of_canaries_leaves_none_of_them() {
    let mock = MockResponsesServer::start().await;
    let collector = FakeCollector::start().await;
    let home = common::home_with_analytics(&mock, collector.url());
    let path = home.path().join("config.toml");
    let mut text = std::fs::read_to_string(&path).expect("config");
    text = text.replacen(
        "model = \"gpt-test\"",
        "model = \"gpt-test\"\napproval_policy = \"untrusted\"\napprovals_reviewer = \"auto_review\"",
        1,
    );
    std::fs::write(&path, text).expect("config");
    let parent = tempfile::tempdir().expect("parent");
    let workspace = parent.path().join(format!("ws-{CANARY}"));
    std::fs::create_dir_all(&workspace).expect("workspace");
    let args = json!({
        "cmd": format!("curl https://{CANARY}.example.com/x -o {CANARY}/out.txt"),
        "workdir": format!("sub-{CANARY}"),
        "sandbox_permissions": "require_escalated",
        "justification": format!("because {CANARY}"),
    });
    mock.enqueue_stream(vec![
        sse::created("r1"),
        sse::output_item_done(sse::function_call(
            "call_1",
            "exec_command",
            &args.to_string(),
        )),
        sse::completed("r1", sse::Usage::small()),
    ]);
    let assessment = json!({"risk_level": "critical", "user_authorization": "low",
        "outcome": "deny", "rationale": format!("rationale {CANARY}")});
    mock.enqueue_stream(vec![
        sse::created("r2"),
        sse::output_item_done(sse::assistant_message("m2", &assessment.to_string())),
        sse::completed("r2", sse::Usage::new(321, 21, 9, 4)),
    ]);
    mock.enqueue_stream(sse::text_turn_whole("m3", "understood"));

    let server = common::server(&home);
    let mut client = common::line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let started = client
        .call_ok(
            "thread/start",
            json!({"cwd": workspace.display().to_string()}),
        )
        .await;
    let thread_id = started["thread"]["id"].as_str().expect("id").to_string();
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": input(&format!("fetch {CANARY}"))}),
        )
        .await;
    let messages = client.collect_until("turn/completed").await;
    assert_no_approval_request(&messages);
    let done = find(&messages, "item/autoApprovalReview/completed");
    assert_eq!(done["params"]["review"]["status"], "denied");

    let requests = mock.wait_for_requests(3, Duration::from_secs(10)).await;
    let review = &requests[1];
    assert_eq!(review.header("x-openai-subagent"), Some("guardian"));
    assert_eq!(
        review.header("x-codex-parent-thread-id"),
        Some(thread_id.as_str())
    );
    assert_eq!(
        review.body["prompt_cache_key"],
        format!("guardian:{thread_id}")
    );
    assert_eq!(review.body["text"]["format"]["name"], "codex_output_schema");
    assert!(review.raw_body.contains("Planned action JSON"));
    assert_eq!(requests[0].header("x-openai-subagent"), None);
    // The model learns the truth: the reviewer, not the user, denied it, and how risky it was;
    // the rationale may reach the model (never analytics).
    let told = &requests[2].raw_body;
    assert!(
        told.contains("the automatic approval reviewer denied this action (risk: critical, user authorization: low)"),
        "{told}"
    );
    assert!(told.contains(&format!("rationale {CANARY}")));
    assert!(!told.contains("rejected by user"));

    server.shutdown().await;
    let events = guardian_events(&collector, 1).await;
    let event = &events[0];
    assert_eq!(event["decision"], "denied");
    assert_eq!(event["risk_level"], "critical");
    assert_eq!(event["user_authorization"], "low");
    assert_eq!(event["target_item_id"], "call_1");
    assert_eq!(event["guardian_model"], "gpt-test");
    assert_eq!(event["guardian_model_provider_id"], "mock");
    assert_eq!(
        event["reviewed_action"],
        json!({"type": "unified_exec", "sandbox_permissions": "require_escalated",
               "additional_permissions": null, "tty": false})
    );
    // Token usage comes from the review session's own response, not the parent turn.
    assert_eq!(event["input_tokens"], 321);
    assert_eq!(event["cached_input_tokens"], 21);
    assert_eq!(event["output_tokens"], 9);
    assert_eq!(event["reasoning_output_tokens"], 4);
    assert_eq!(event["total_tokens"], 330);
    let keys: Vec<&String> = event.as_object().expect("object").keys().collect();
    for forbidden in [
        "command",
        "cwd",
        "argv",
        "program",
        "rationale",
        "retry_reason",
        "justification",
    ] {
        assert!(
            !keys.iter().any(|k| k.as_str() == forbidden),
            "{forbidden} in {keys:?}"
        );
    }
    for body in collector.bodies() {
        assert!(
            !body.contains(CANARY),
            "a private string left the process: {body}"
        );
    }
}
