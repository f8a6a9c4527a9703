use super::*;
use crate::facts::RpcTransport;
use serde_json::json;
use tally_protocol::server_notification::*;
use tally_protocol::server_request::*;
use tally_protocol::types::*;

const CANARY: &str = "CANARY-7f3e-secret";

fn runtime() -> RuntimeInfo {
    RuntimeInfo {
        codex_rs_version: "0.1.0".into(),
        runtime_os: "linux".into(),
        runtime_os_version: "12".into(),
        runtime_arch: "x86_64".into(),
    }
}

struct Harness {
    reducer: Reducer,
    now: i64,
    events: Vec<AnalyticsEvent>,
}

impl Harness {
    fn new() -> Self {
        Self::with_limits(ReducerLimits::default())
    }

    fn with_limits(limits: ReducerLimits) -> Self {
        Self {
            reducer: Reducer::new(runtime(), limits),
            now: 1_760_000_000_000,
            events: vec![],
        }
    }

    fn feed(&mut self, fact: AnalyticsFact) -> Vec<AnalyticsEvent> {
        self.now += 10;
        let out = self.reducer.ingest(TimedFact {
            at_ms: self.now,
            fact,
        });
        self.events.extend(out.clone());
        out
    }

    fn initialize(&mut self, connection: u64) {
        self.feed(AnalyticsFact::Initialize {
            connection,
            client: ClientInfoFact {
                client_name: "my-ide".into(),
                client_version: Some("1.2.3".into()),
                rpc_transport: RpcTransport::Websocket,
                experimental_api_enabled: None,
            },
        });
    }

    fn params(&self, event_type: &str) -> Vec<serde_json::Value> {
        self.events
            .iter()
            .filter(|e| e.event_type() == event_type)
            .map(|e| e.params().expect("serializes"))
            .collect()
    }
}

fn thread(id: &str) -> Thread {
    Thread {
        id: id.into(),
        session_id: id.into(),
        preview: CANARY.into(),
        ephemeral: false,
        model_provider: "mock".into(),
        model: Some("gpt-x".into()),
        created_at: 1_760_000_000,
        updated_at: 1_760_000_000,
        recency_at: None,
        status: ThreadStatus::Idle,
        path: Some(format!("/home/{CANARY}/rollout.jsonl")),
        cwd: format!("/home/{CANARY}"),
        cli_version: "0.1.0".into(),
        source: SessionSource::Vscode,
        thread_source: Some("user".into()),
        originator: Some("my-ide".into()),
        forked_from_id: None,
        parent_thread_id: None,
        agent_nickname: None,
        agent_role: None,
        git_info: None,
        name: None,
        project_id: None,
        history_mode: ThreadHistoryMode::Paginated,
        reasoning_effort: None,
        turns: vec![],
    }
}

fn session(id: &str) -> ThreadSessionResponse {
    ThreadSessionResponse {
        thread: thread(id),
        model: "gpt-x".into(),
        model_provider: "mock".into(),
        cwd: format!("/home/{CANARY}"),
        approval_policy: AskForApproval::ON_REQUEST,
        approvals_reviewer: ApprovalsReviewer::User,
        sandbox: SandboxPolicy::from_mode(SandboxMode::WorkspaceWrite),
        reasoning_effort: None,
        service_tier: None,
        instruction_sources: vec![],
        disabled_plugin_ids: vec![],
    }
}

fn turn(id: &str, status: TurnStatus) -> Turn {
    Turn {
        id: id.into(),
        root_turn_id: Some(id.into()),
        items: vec![],
        items_view: TurnItemsView::Summary,
        status,
        error: None,
        started_at: Some(1_760_000_000),
        completed_at: Some(1_760_000_002),
        duration_ms: Some(1514),
    }
}

fn start_thread(h: &mut Harness, connection: u64, thread_id: &str) {
    h.feed(AnalyticsFact::ClientResponse {
        connection,
        request_id: RequestId::Integer(1),
        payload: ClientResponsePayload::ThreadStart(session(thread_id)),
    });
}

fn start_turn(h: &mut Harness, connection: u64, thread_id: &str, turn_id: &str, id: i64) {
    start_turn_with(
        h,
        connection,
        (thread_id, turn_id, id),
        TurnStartParams::default(),
    );
}

/// `turn/start` of `(thread, turn, request id)` with `params`' overrides.
fn start_turn_with(
    h: &mut Harness,
    connection: u64,
    (thread_id, turn_id, id): (&str, &str, i64),
    params: TurnStartParams,
) {
    h.feed(AnalyticsFact::ClientRequest {
        connection,
        request_id: RequestId::Integer(id),
        request: ClientRequest::TurnStart(TurnStartParams {
            thread_id: thread_id.into(),
            input: vec![
                UserInput::text(CANARY),
                UserInput::Image {
                    url: Some(format!("https://{CANARY}.example/x.png")),
                    file_id: None,
                    detail: None,
                },
            ],
            ..params
        }),
    });
    h.feed(AnalyticsFact::ClientResponse {
        connection,
        request_id: RequestId::Integer(id),
        payload: ClientResponsePayload::TurnStart(TurnStartResponse {
            turn: turn(turn_id, TurnStatus::InProgress),
        }),
    });
}

fn usage(thread_id: &str, turn_id: &str, input: i64) -> AnalyticsFact {
    let last = TokenUsageBreakdown {
        total_tokens: input + 5,
        input_tokens: input,
        cached_input_tokens: 1,
        cache_write_input_tokens: 0,
        output_tokens: 5,
        reasoning_output_tokens: 2,
    };
    AnalyticsFact::Notification(ServerNotification::ThreadTokenUsageUpdated(
        ThreadTokenUsageUpdatedNotification {
            thread_id: thread_id.into(),
            turn_id: turn_id.into(),
            token_usage: ThreadTokenUsage {
                total: last,
                last,
                model_context_window: None,
            },
        },
    ))
}

fn completed(thread_id: &str, t: Turn) -> AnalyticsFact {
    AnalyticsFact::Notification(ServerNotification::TurnCompleted(TurnNotification {
        thread_id: thread_id.into(),
        turn: t,
    }))
}

#[test]
fn thread_start_emits_thread_initialized_with_the_client_block() {
    let mut h = Harness::new();
    h.initialize(7);
    start_thread(&mut h, 7, "thr-1");
    let p = &h.params("codex_thread_initialized")[0];
    assert_eq!(p["thread_id"], "thr-1");
    assert_eq!(p["initialization_mode"], "new");
    assert_eq!(p["model"], "gpt-x");
    assert_eq!(p["thread_source"], "user");
    assert_eq!(p["subagent_source"], serde_json::Value::Null);
    assert_eq!(p["is_worktree"], serde_json::Value::Null);
    assert_eq!(p["created_at"], 1_760_000_000);
    assert_eq!(
        p["app_server_client"],
        json!({"product_client_id": "my-ide", "client_name": "my-ide", "client_version": "1.2.3",
               "rpc_transport": "websocket", "experimental_api_enabled": null})
    );
    assert_eq!(p["runtime"]["runtime_os"], "linux");
}

#[test]
fn a_turn_joins_request_response_usage_and_completion_into_one_turn_event() {
    let mut h = Harness::new();
    h.initialize(1);
    start_thread(&mut h, 1, "thr-1");
    start_turn(&mut h, 1, "thr-1", "turn-1", 2);
    assert!(
        h.params("codex_turn_event").is_empty(),
        "no event before completion"
    );
    h.feed(usage("thr-1", "turn-1", 10));
    h.feed(usage("thr-1", "turn-1", 20));
    h.feed(completed("thr-1", turn("turn-1", TurnStatus::Completed)));
    let p = &h.params("codex_turn_event")[0];
    assert_eq!(p["status"], "completed");
    assert_eq!(p["is_first_turn"], true);
    assert_eq!(p["num_input_images"], 1);
    assert_eq!(p["input_tokens"], 30);
    assert_eq!(p["cached_input_tokens"], 2);
    assert_eq!(p["total_tokens"], 40);
    assert_eq!(p["sampling_request_count"], 2);
    assert_eq!(p["sandbox_policy"], "workspace_write");
    assert_eq!(p["approval_policy"], "on-request");
    assert_eq!(p["approvals_reviewer"], "user");
    assert_eq!(p["duration_ms"], 1514);
    assert_eq!(p["critical_path_status"], "disabled");
    assert_eq!(p["steer_count"], 0);
    // A second turn is not the first.
    start_turn(&mut h, 1, "thr-1", "turn-2", 3);
    h.feed(completed("thr-1", turn("turn-2", TurnStatus::Completed)));
    assert_eq!(h.params("codex_turn_event")[1]["is_first_turn"], false);
}

#[test]
fn a_turn_reports_the_settings_its_turn_start_chose_and_they_stick() {
    let mut h = Harness::new();
    h.initialize(1);
    start_thread(&mut h, 1, "thr-1");
    let switched = TurnStartParams {
        model: Some("gpt-other".into()),
        effort: Some("high".into()),
        approval_policy: Some(AskForApproval::Named(ApprovalPolicyName::Never)),
        sandbox_policy: Some(SandboxPolicy::DangerFullAccess),
        ..TurnStartParams::default()
    };
    start_turn_with(&mut h, 1, ("thr-1", "turn-1", 2), switched);
    h.feed(completed("thr-1", turn("turn-1", TurnStatus::Completed)));
    start_turn(&mut h, 1, "thr-1", "turn-2", 3);
    h.feed(completed("thr-1", turn("turn-2", TurnStatus::Completed)));
    for p in h.params("codex_turn_event") {
        assert_eq!(p["model"], "gpt-other");
        assert_eq!(p["reasoning_effort"], "high");
        assert_eq!(p["approval_policy"], "never");
        assert_eq!(p["sandbox_policy"], "full_access");
        assert_eq!(p["sandbox_network_access"], true);
    }
    assert_eq!(h.params("codex_turn_event").len(), 2);
}

#[test]
fn token_counts_a_backend_reports_beyond_any_sum_saturate() {
    let mut h = Harness::new();
    h.initialize(1);
    start_thread(&mut h, 1, "thr-1");
    start_turn(&mut h, 1, "thr-1", "turn-1", 2);
    h.feed(usage("thr-1", "turn-1", i64::MAX - 5));
    h.feed(usage("thr-1", "turn-1", i64::MAX - 5));
    h.feed(completed("thr-1", turn("turn-1", TurnStatus::Completed)));
    let p = &h.params("codex_turn_event")[0];
    assert_eq!(p["input_tokens"], i64::MAX);
    assert_eq!(p["total_tokens"], i64::MAX);
    assert_eq!(p["sampling_request_count"], 2);
}

#[test]
fn the_turn_event_carries_the_turn_profile_from_core() {
    let mut h = Harness::new();
    h.initialize(1);
    start_thread(&mut h, 1, "thr-1");
    start_turn(&mut h, 1, "thr-1", "turn-1", 2);
    h.feed(usage("thr-1", "turn-1", 10));
    h.feed(AnalyticsFact::TurnProfile {
        thread_id: "thr-1".into(),
        turn_id: "turn-1".into(),
        profile: TurnProfileFact {
            before_first_sampling_ms: 12,
            sampling_ms: 900,
            compaction_ms: 0,
            between_sampling_overhead_ms: 30,
            tool_blocking_ms: 540,
            after_last_sampling_ms: 32,
            sampling_request_count: 2,
            sampling_retry_count: 1,
            tools_change_count: 1,
        },
    });
    h.feed(completed("thr-1", turn("turn-1", TurnStatus::Completed)));
    let p = &h.params("codex_turn_event")[0];
    assert_eq!(p["before_first_sampling_ms"], 12);
    assert_eq!(p["sampling_ms"], 900);
    assert_eq!(p["compaction_ms"], 0);
    assert_eq!(p["between_sampling_overhead_ms"], 30);
    assert_eq!(p["tool_blocking_ms"], 540);
    assert_eq!(p["after_last_sampling_ms"], 32);
    assert_eq!(p["sampling_request_count"], 2);
    assert_eq!(p["sampling_retry_count"], 1);
    assert_eq!(p["tools_change_count"], 1);
    assert_eq!(p["duration_ms"], 1514);
}

#[test]
fn a_turn_without_a_profile_is_still_emitted_with_zero_buckets() {
    let mut h = Harness::new();
    h.initialize(1);
    start_thread(&mut h, 1, "thr-1");
    start_turn(&mut h, 1, "thr-1", "turn-1", 2);
    h.feed(usage("thr-1", "turn-1", 10));
    h.feed(completed("thr-1", turn("turn-1", TurnStatus::Completed)));
    let p = &h.params("codex_turn_event")[0];
    for field in [
        "before_first_sampling_ms",
        "sampling_ms",
        "compaction_ms",
        "between_sampling_overhead_ms",
        "tool_blocking_ms",
        "after_last_sampling_ms",
        "tools_change_count",
    ] {
        assert_eq!(p[field], 0, "{field}");
    }
    // The counts fall back to the notifications.
    assert_eq!(p["sampling_request_count"], 1);
    assert_eq!(p["sampling_retry_count"], 0);
}

#[test]
fn an_interrupted_turn_has_null_tokens_and_the_interrupt_time() {
    let mut h = Harness::new();
    h.initialize(1);
    start_thread(&mut h, 1, "thr-1");
    start_turn(&mut h, 1, "thr-1", "turn-1", 2);
    h.feed(AnalyticsFact::ExplicitClientInterruptRequest {
        connection: 1,
        request_id: RequestId::String("a-7".into()),
        turn_id: "turn-1".into(),
    });
    let asked_at = h.now;
    h.feed(AnalyticsFact::ClientResponse {
        connection: 1,
        request_id: RequestId::String("a-7".into()),
        payload: ClientResponsePayload::TurnInterrupt(EmptyResponse {}),
    });
    h.feed(completed("thr-1", turn("turn-1", TurnStatus::Interrupted)));
    let p = &h.params("codex_turn_event")[0];
    assert_eq!(p["status"], "interrupted");
    assert_eq!(p["input_tokens"], serde_json::Value::Null);
    assert_eq!(p["explicit_client_interrupt_requested_at_ms"], asked_at);
}

#[test]
fn steers_are_accepted_or_rejected_with_a_reason_and_counted_on_the_turn() {
    let mut h = Harness::new();
    h.initialize(1);
    start_thread(&mut h, 1, "thr-1");
    start_turn(&mut h, 1, "thr-1", "turn-1", 2);
    let steer = |id: i64, expected: &str| AnalyticsFact::ClientRequest {
        connection: 1,
        request_id: RequestId::Integer(id),
        request: ClientRequest::TurnSteer(TurnSteerParams {
            thread_id: "thr-1".into(),
            expected_turn_id: expected.into(),
            input: vec![UserInput::text(CANARY)],
            client_user_message_id: None,
        }),
    };
    h.feed(steer(3, "turn-1"));
    h.feed(AnalyticsFact::ClientResponse {
        connection: 1,
        request_id: RequestId::Integer(3),
        payload: ClientResponsePayload::TurnSteer(TurnSteerResponse {
            turn_id: "turn-1".into(),
        }),
    });
    h.feed(steer(4, "turn-9"));
    h.feed(AnalyticsFact::ErrorResponse {
        connection: 1,
        request_id: RequestId::Integer(4),
        code: -32600,
        steer_rejection: steer_rejection_reason(&format!(
            "expected active turn id turn-9 but found turn-1 {CANARY}"
        )),
    });
    let steers = h.params("codex_turn_steer_event");
    assert_eq!(steers[0]["result"], "accepted");
    assert_eq!(steers[0]["accepted_turn_id"], "turn-1");
    assert_eq!(steers[1]["result"], "rejected");
    assert_eq!(steers[1]["rejection_reason"], "expected_turn_mismatch");
    assert_eq!(steers[1]["accepted_turn_id"], serde_json::Value::Null);
    assert_eq!(steers[1]["expected_turn_id"], "turn-9");
    // The expected id is the client's text: text that is not an id never leaves.
    h.feed(steer(5, &format!("{CANARY} my secret plan")));
    h.feed(AnalyticsFact::ErrorResponse {
        connection: 1,
        request_id: RequestId::Integer(5),
        code: -32600,
        steer_rejection: steer_rejection_reason("expected active turn id"),
    });
    let rejected = &h.params("codex_turn_steer_event")[2];
    assert_eq!(rejected["result"], "rejected");
    assert_eq!(rejected["expected_turn_id"], serde_json::Value::Null);
    assert!(!rejected.to_string().contains(CANARY));
    h.feed(completed("thr-1", turn("turn-1", TurnStatus::Completed)));
    assert_eq!(h.params("codex_turn_event")[0]["steer_count"], 1);
}

fn command_approval(thread_id: &str, turn_id: &str) -> ServerRequest {
    ServerRequest::CommandExecutionRequestApproval(CommandExecutionRequestApprovalParams {
        thread_id: thread_id.into(),
        turn_id: turn_id.into(),
        item_id: "call_1".into(),
        started_at_ms: 1_760_000_000_100,
        kind: CommandExecutionApprovalKind::Command,
        reason: Some(CANARY.into()),
        command: Some(format!("rm -rf /{CANARY}")),
        cwd: Some(format!("/home/{CANARY}")),
        command_actions: None,
        environment_id: None,
        approval_id: None,
        proposed_execpolicy_amendment: None,
        available_decisions: None,
    })
}

#[test]
fn an_approval_answer_yields_a_review_event_and_a_server_request_event() {
    let mut h = Harness::new();
    h.initialize(1);
    h.initialize(2);
    start_thread(&mut h, 1, "thr-1");
    h.feed(AnalyticsFact::ServerRequest {
        connection: 1,
        request_id: RequestId::Integer(0),
        request: command_approval("thr-1", "turn-1"),
        replayed: false,
    });
    // The client reconnects and the request is replayed to connection 2, which answers.
    h.feed(AnalyticsFact::ServerRequest {
        connection: 2,
        request_id: RequestId::Integer(0),
        request: command_approval("thr-1", "turn-1"),
        replayed: true,
    });
    let out = h.feed(AnalyticsFact::ServerResponse {
        connection: 2,
        request_id: RequestId::Integer(0),
        response: ServerResponse::CommandExecutionRequestApproval(
            CommandExecutionRequestApprovalResponse {
                decision: CommandExecutionApprovalDecision::AcceptForSession,
            },
        ),
    });
    assert_eq!(out.len(), 2);
    let review = &h.params("codex_review_event")[0];
    assert_eq!(review["review_id"], "user:0");
    assert_eq!(review["subject_kind"], "command_execution");
    assert_eq!(review["status"], "approved");
    assert_eq!(review["resolution"], "session_approval");
    assert_eq!(review["started_at_ms"], 1_760_000_000_100_i64);
    let sr = &h.params("codex_server_request_event")[0];
    assert_eq!(
        sr["request_method"],
        "item/commandExecution/requestApproval"
    );
    assert_eq!(sr["delivery"], "replayed");
    assert_eq!(sr["delivery_count"], 2);
    assert_eq!(sr["outcome"], "responded");
    assert_eq!(sr["decision"], "accept_for_session");
    assert_eq!(sr["answered_by_original_connection"], false);
}

#[test]
fn a_request_that_ends_without_an_answer_is_reported_with_its_outcome() {
    let mut h = Harness::new();
    h.initialize(1);
    start_thread(&mut h, 1, "thr-1");
    for (id, end, outcome, status) in [
        (0, ServerRequestEnd::Aborted, "aborted", "aborted"),
        (1, ServerRequestEnd::DecodeFailed, "decode_failed", "denied"),
        (
            2,
            ServerRequestEnd::ErrorResponse { code: -32000 },
            "error_response",
            "denied",
        ),
        (
            3,
            ServerRequestEnd::ConnectionClosed,
            "connection_closed",
            "aborted",
        ),
    ] {
        h.feed(AnalyticsFact::ServerRequest {
            connection: 1,
            request_id: RequestId::Integer(id),
            request: command_approval("thr-1", "turn-1"),
            replayed: false,
        });
        h.feed(AnalyticsFact::ServerRequestEnded {
            connection: Some(1),
            request_id: RequestId::Integer(id),
            end,
        });
        let sr = h.params("codex_server_request_event").pop().expect("event");
        assert_eq!(sr["outcome"], outcome);
        let review = h.params("codex_review_event").pop().expect("review");
        assert_eq!(review["status"], status);
    }
}

#[test]
fn archive_events_omit_unknowns_and_unarchive_is_reported() {
    let mut h = Harness::new();
    h.initialize(1);
    h.feed(AnalyticsFact::ClientRequest {
        connection: 1,
        request_id: RequestId::Integer(5),
        request: ClientRequest::ThreadArchive(ThreadIdParams {
            thread_id: "thr-9".into(),
        }),
    });
    h.feed(AnalyticsFact::ClientResponse {
        connection: 1,
        request_id: RequestId::Integer(5),
        payload: ClientResponsePayload::ThreadArchive(EmptyResponse {}),
    });
    let p = &h.params("codex_thread_archive_event")[0];
    assert_eq!(p["action"], "archived");
    assert_eq!(p["thread_id"], "thr-9");
    assert!(
        p.get("thread_source").is_none(),
        "unknown values are omitted: {p}"
    );
    assert!(p.get("session_id").is_none());
}

#[test]
fn facts_without_context_are_dropped_and_counted_never_guessed() {
    let mut h = Harness::new();
    h.feed(completed("thr-x", turn("turn-x", TurnStatus::Completed)));
    start_thread(&mut h, 99, "thr-1");
    assert!(h.events.is_empty());
    let missing = &h.reducer.stats().missing_context;
    assert_eq!(missing.get("codex_turn_event:turn_unknown"), Some(&1));
    assert_eq!(
        missing.get("codex_thread_initialized:connection_unknown"),
        Some(&1)
    );
}

#[test]
fn state_is_capped_and_evictions_are_counted() {
    let mut h = Harness::with_limits(ReducerLimits {
        turns: 2,
        ..ReducerLimits::default()
    });
    h.initialize(1);
    start_thread(&mut h, 1, "thr-1");
    for i in 0..5 {
        start_turn(&mut h, 1, "thr-1", &format!("turn-{i}"), 10 + i);
    }
    assert_eq!(h.reducer.stats().evicted.get("turns_incomplete"), Some(&3));
}

#[test]
fn no_event_carries_prompt_paths_commands_or_reasons() {
    let mut h = Harness::new();
    h.initialize(1);
    start_thread(&mut h, 1, "thr-1");
    start_turn(&mut h, 1, "thr-1", "turn-1", 2);
    h.feed(AnalyticsFact::ServerRequest {
        connection: 1,
        request_id: RequestId::Integer(0),
        request: command_approval("thr-1", "turn-1"),
        replayed: false,
    });
    h.feed(AnalyticsFact::ServerResponse {
        connection: 1,
        request_id: RequestId::Integer(0),
        response: ServerResponse::CommandExecutionRequestApproval(
            CommandExecutionRequestApprovalResponse {
                decision: CommandExecutionApprovalDecision::Decline,
            },
        ),
    });
    h.feed(completed("thr-1", turn("turn-1", TurnStatus::Completed)));
    assert!(h.events.len() >= 4);
    for e in &h.events {
        let text = e.params().expect("serializes").to_string();
        assert!(!text.contains("CANARY"), "{} leaks: {text}", e.event_type());
    }
}

fn compaction_fact(turn_id: &str, status: TurnStatus) -> AnalyticsFact {
    AnalyticsFact::Compaction(crate::facts::CompactionFact {
        thread_id: "thr-1".into(),
        turn_id: turn_id.into(),
        status,
        error: None,
        active_context_tokens_before: 132,
        active_context_tokens_after: 6_970,
        started_at_ms: 1_760_000_003_000,
        completed_at_ms: 1_760_000_003_030,
    })
}

#[test]
fn a_compaction_becomes_a_compaction_event_and_never_a_turn_event() {
    let mut h = Harness::new();
    h.initialize(1);
    start_thread(&mut h, 1, "thr-1");
    // The compaction turn's usage and completion arrive as for any turn.
    h.feed(usage("thr-1", "turn-c", 100));
    h.feed(compaction_fact("turn-c", TurnStatus::Completed));
    h.feed(completed("thr-1", turn("turn-c", TurnStatus::Completed)));
    assert!(h.params("codex_turn_event").is_empty());
    assert!(
        h.reducer.stats().missing_context.is_empty(),
        "a compaction turn is not a missing user turn: {:?}",
        h.reducer.stats().missing_context
    );
    let p = &h.params("codex_compaction_event")[0];
    let mut expected = json!({
        "thread_id": "thr-1", "session_id": "thr-1", "turn_id": "turn-c",
        "thread_source": "user", "subagent_source": null, "parent_thread_id": null,
        "trigger": "manual", "reason": "user_requested", "implementation": "responses",
        "phase": "standalone_turn", "strategy": "memento", "status": "completed",
        "voice_session_id": null, "codex_error_kind": null, "codex_error_http_status_code": null,
        "usage_limit_window_minutes": null, "active_context_tokens_before": 132,
        "active_context_tokens_after": 6970, "retained_image_count": null,
        "compaction_summary_tokens": null, "cached_input_tokens": null,
        "cache_write_input_tokens": null, "started_at": 1_760_000_003,
        "completed_at": 1_760_000_003, "duration_ms": 30,
    });
    expected["app_server_client"] = p["app_server_client"].clone();
    expected["runtime"] = p["runtime"].clone();
    assert_eq!(p, &expected);
    assert_eq!(p["app_server_client"]["product_client_id"], "my-ide");

    // A failed one carries its error class.
    h.feed(AnalyticsFact::Compaction(crate::facts::CompactionFact {
        error: Some(CodexErrorInfo::ResponseStreamDisconnected {
            http_status_code: Some(502),
        }),
        ..match compaction_fact("turn-d", TurnStatus::Failed) {
            AnalyticsFact::Compaction(f) => f,
            _ => unreachable!(),
        }
    }));
    let p = &h.params("codex_compaction_event")[1];
    assert_eq!(p["status"], "failed");
    assert_eq!(p["codex_error_kind"], "response_stream_disconnected");
    assert_eq!(p["codex_error_http_status_code"], 502);
}

fn goal_fact(kind: crate::facts::GoalEventKind, status: ThreadGoalStatus) -> AnalyticsFact {
    AnalyticsFact::Goal(crate::facts::GoalFact {
        thread_id: "thr-1".into(),
        turn_id: None,
        goal_id: "goal-1".into(),
        kind,
        status,
        has_token_budget: true,
    })
}

#[test]
fn goal_changes_become_goal_events_with_ids_and_enums_only() {
    use crate::facts::GoalEventKind;
    let mut h = Harness::new();
    h.initialize(1);
    start_thread(&mut h, 1, "thr-1");
    h.feed(goal_fact(GoalEventKind::Created, ThreadGoalStatus::Active));
    h.feed(goal_fact(
        GoalEventKind::StatusChanged,
        ThreadGoalStatus::UsageLimited,
    ));
    h.feed(goal_fact(GoalEventKind::Cleared, ThreadGoalStatus::Paused));
    let events = h.params("codex_goal_event");
    let kinds: Vec<_> = events.iter().map(|p| p["event_kind"].clone()).collect();
    assert_eq!(
        kinds,
        [json!("created"), json!("status_changed"), json!("cleared")]
    );
    let p = &events[2];
    let mut expected = json!({
        "thread_id": "thr-1", "session_id": "thr-1", "turn_id": null,
        "thread_source": "user", "subagent_source": null, "parent_thread_id": null,
        "goal_id": "goal-1", "event_kind": "cleared", "goal_status": "paused",
        "has_token_budget": true, "cumulative_tokens_accounted": null,
        "cumulative_time_accounted_seconds": null,
    });
    expected["app_server_client"] = p["app_server_client"].clone();
    expected["runtime"] = p["runtime"].clone();
    assert_eq!(p, &expected);
    assert_eq!(events[1]["goal_status"], "usage_limited");

    // A goal on a thread the reducer never saw is dropped and counted.
    let mut h = Harness::new();
    h.feed(goal_fact(GoalEventKind::Created, ThreadGoalStatus::Active));
    assert!(h.events.is_empty());
    assert_eq!(
        h.reducer
            .stats()
            .missing_context
            .get("codex_goal_event:unknown_thread"),
        Some(&1)
    );
}

fn diff(turn_id: &str, added: i64, deleted: i64) -> AnalyticsFact {
    AnalyticsFact::TurnDiff {
        turn_id: turn_id.into(),
        added_lines: added,
        deleted_lines: deleted,
    }
}

#[test]
fn a_turn_whose_latest_diff_has_lines_is_followed_by_accepted_line_fingerprints() {
    let mut h = Harness::new();
    h.initialize(1);
    start_thread(&mut h, 1, "thr-1");
    start_turn(&mut h, 1, "thr-1", "turn-1", 2);
    h.feed(diff("turn-1", 5, 2));
    // The latest diff is the whole turn's: it replaces the first.
    h.feed(diff("turn-1", 3, 1));
    let hash = "0123456789abcdef0123456789abcdef01234567";
    h.feed(AnalyticsFact::TurnRepository {
        thread_id: "thr-1".into(),
        turn_id: "turn-1".into(),
        repo_hash: Some(hash.into()),
    });
    let out = h.feed(completed("thr-1", turn("turn-1", TurnStatus::Completed)));
    let types: Vec<&str> = out.iter().map(|e| e.event_type()).collect();
    assert_eq!(
        types,
        ["codex_turn_event", "codex_accepted_line_fingerprints"]
    );
    assert!(out[1].sent_alone() && !out[0].sent_alone());
    assert_eq!(
        out[1].params().expect("serializes"),
        json!({
            "event_type": "codex.accepted_line_fingerprints", "turn_id": "turn-1",
            "thread_id": "thr-1", "product_surface": "codex", "model_slug": "gpt-x",
            "completed_at": 1_760_000_002, "repo_hash": hash, "accepted_added_lines": 3,
            "accepted_deleted_lines": 1, "line_fingerprints": [],
        })
    );

    // No diff, or a diff that nets no hunk line, sends none; outside git the hash is null.
    start_turn(&mut h, 1, "thr-1", "turn-2", 3);
    let out = h.feed(completed("thr-1", turn("turn-2", TurnStatus::Completed)));
    assert_eq!(out.len(), 1);
    start_turn(&mut h, 1, "thr-1", "turn-3", 4);
    h.feed(diff("turn-3", 0, 0));
    let out = h.feed(completed("thr-1", turn("turn-3", TurnStatus::Completed)));
    assert_eq!(out.len(), 1);
    start_turn(&mut h, 1, "thr-1", "turn-4", 5);
    h.feed(diff("turn-4", 0, 4));
    h.feed(AnalyticsFact::TurnRepository {
        thread_id: "thr-1".into(),
        turn_id: "turn-4".into(),
        repo_hash: None,
    });
    let out = h.feed(completed("thr-1", turn("turn-4", TurnStatus::Completed)));
    let p = out[1].params().expect("serializes");
    assert_eq!(p["repo_hash"], serde_json::Value::Null);
    assert_eq!(p["accepted_deleted_lines"], 4);
}

#[test]
fn thread_closed_releases_the_thread_and_a_resume_brings_it_back() {
    let mut h = Harness::new();
    h.initialize(1);
    start_thread(&mut h, 1, "thr-1");
    start_thread(&mut h, 1, "thr-2");
    start_turn(&mut h, 1, "thr-1", "turn-1", 10);
    h.feed(AnalyticsFact::Notification(
        ServerNotification::ThreadClosed(ThreadIdNotification {
            thread_id: "thr-1".into(),
        }),
    ));
    assert!(!h.reducer.threads.contains_key("thr-1"));
    assert!(!h.reducer.turns.contains_key("turn-1"));
    assert!(
        h.reducer.threads.contains_key("thr-2"),
        "other threads stay"
    );
    h.feed(AnalyticsFact::ClientResponse {
        connection: 1,
        request_id: RequestId::Integer(20),
        payload: ClientResponsePayload::ThreadResume(ThreadResumeResponse {
            session: session("thr-1"),
            turns_backwards_cursor: None,
            items_backwards_cursor: None,
        }),
    });
    assert!(h.reducer.threads.contains_key("thr-1"));
    let modes: Vec<_> = h
        .params("codex_thread_initialized")
        .iter()
        .map(|p| p["initialization_mode"].clone())
        .collect();
    assert_eq!(modes, ["new", "new", "resumed"]);
}

#[test]
fn work_still_open_at_shutdown_is_counted_not_forgotten() {
    let mut h = Harness::new();
    h.initialize(1);
    start_thread(&mut h, 1, "thr-1");
    start_turn(&mut h, 1, "thr-1", "turn-1", 2);
    h.reducer.abandon();
    let evicted = &h.reducer.stats().evicted;
    assert_eq!(evicted.get("turns_at_shutdown"), Some(&1));
    assert_eq!(
        evicted.get("requests_at_shutdown"),
        None,
        "answered, so not open"
    );
}
