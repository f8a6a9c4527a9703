use super::*;
use serde_json::json;
use tally_guardian::{
    ApprovalRequestSource, AttemptRecord, Outcome, PlannedAction, ReviewTiming, RiskLevel,
    SandboxPermissions, SessionInfo, TokenUsage, UserAuthorization,
};

fn client() -> AppServerClient {
    AppServerClient {
        product_client_id: "my-ide".into(),
        client_name: "my-ide".into(),
        client_version: Some("0.1.0".into()),
        rpc_transport: "stdio",
        experimental_api_enabled: None,
    }
}

fn runtime() -> RuntimeInfo {
    RuntimeInfo {
        codex_rs_version: "0.1.0".into(),
        runtime_os: "linux".into(),
        runtime_os_version: "12".into(),
        runtime_arch: "x86_64".into(),
    }
}

fn report() -> ReviewReport {
    let action = PlannedAction::Exec {
        command: vec!["CANARY_ARGV0".into(), "-rf".into(), "/CANARY_PATH".into()],
        cwd: "/home/CANARY_CWD".into(),
        justification: Some("CANARY_JUSTIFICATION".into()),
        sandbox_permissions: SandboxPermissions::RequireEscalated,
        tty: false,
    };
    ReviewReport {
        review_id: "rev-2".into(),
        parent_thread_id: "thr-1".into(),
        turn_id: "turn-2".into(),
        target_item_id: Some("call_4".into()),
        source: ApprovalRequestSource::MainTurn,
        reviewed_action: action.shape(),
        reviewed_action_truncated: false,
        decision: Decision::Denied,
        terminal_status: TerminalStatus::Denied,
        failure_reason: None,
        attempt_count: 1,
        risk_level: Some(RiskLevel::High),
        user_authorization: Some(UserAuthorization::Low),
        outcome: Some(Outcome::Deny),
        session: Some(SessionInfo {
            guardian_thread_id: "thr-g".into(),
            created_at_ms: 1_759_999_990_000,
            kind: SessionKind::TrunkReused,
            created: false,
            had_prior_review_context: true,
        }),
        model: "gpt-x".into(),
        model_provider_id: "my-provider".into(),
        reasoning_effort: None,
        review_timeout_ms: 90_000,
        tokens: TokenUsage {
            input_tokens: 120,
            cached_input_tokens: 0,
            cache_write_input_tokens: 0,
            output_tokens: 12,
            reasoning_output_tokens: 0,
            total_tokens: 132,
        },
        timing: ReviewTiming {
            queue_wait_ms: 0,
            model_ms: 60,
            total_ms: 65,
            time_to_first_token_ms: Some(38),
        },
        attempts: vec![AttemptRecord {
            turn_id: "turn-g1".into(),
            started_at_ms: 1_760_000_000_002,
            completed_at_ms: 1_760_000_000_062,
            status: AttemptStatus::Completed,
            usage: Some(TokenUsage {
                input_tokens: 120,
                cached_input_tokens: 0,
                cache_write_input_tokens: 0,
                output_tokens: 12,
                reasoning_output_tokens: 0,
                total_tokens: 132,
            }),
        }],
        started_at_ms: 1_760_000_000_000,
        completed_at_ms: 1_760_000_000_065,
    }
}

#[test]
fn reviewer_thread_is_a_guardian_sub_agent_of_the_reviewed_thread() {
    let mut r = report();
    assert_eq!(reviewer_thread_initialized(&r, &client(), &runtime()), None);
    if let Some(s) = r.session.as_mut() {
        s.created = true;
    }
    let init = reviewer_thread_initialized(&r, &client(), &runtime()).expect("a new session");
    let v = serde_json::to_value(&init).expect("json");
    assert_eq!(v["thread_id"], "thr-g");
    assert_eq!(v["session_id"], "thr-1");
    assert_eq!(v["thread_source"], "guardian_review");
    assert_eq!(v["subagent_source"], "guardian");
    assert_eq!(v["parent_thread_id"], "thr-1");
    assert_eq!(v["app_server_client"]["rpc_transport"], "in_process");
    assert_eq!(v["created_at"], 1_759_999_990);
    // The review that created the reviewer thread still reports `trunk_reused`, as Codex does.
    let review =
        serde_json::to_value(guardian_review_event(&r, client(), runtime())).expect("json");
    assert_eq!(review["guardian_session_kind"], "trunk_reused");
    let turns = reviewer_turn_events(&r, &client(), &runtime(), "auto_review");
    assert!(turns[0].is_first_turn);
}

#[test]
fn each_attempt_is_a_reviewer_turn_event() {
    let turns = reviewer_turn_events(&report(), &client(), &runtime(), "auto_review");
    assert_eq!(turns.len(), 1);
    let v = serde_json::to_value(&turns[0]).expect("json");
    assert_eq!(v["thread_id"], "thr-g");
    assert_eq!(v["turn_id"], "turn-g1");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["approvals_reviewer"], "auto_review");
    assert_eq!(v["sandbox_policy"], "read_only");
    assert_eq!(v["input_tokens"], 120);
    assert_eq!(v["duration_ms"], 60);
    assert_eq!(v["thread_source"], "guardian_review");
}

#[test]
fn event_matches_the_documented_example() {
    let event = guardian_review_event(&report(), client(), runtime());
    let v = serde_json::to_value(&event).expect("serializes");
    let expected = json!({"session_id":"thr-1","app_server_client":serde_json::to_value(client()).expect("client"),
        "runtime":serde_json::to_value(runtime()).expect("runtime"),"guardian_context_mode":"thread_owned",
        "thread_id":"thr-1","turn_id":"turn-2","review_id":"rev-2","target_item_id":"call_4",
        "approval_request_source":"main_turn","reviewed_action":{"type":"unified_exec",
        "sandbox_permissions":"require_escalated","additional_permissions":null,"tty":false},
        "reviewed_action_truncated":false,"decision":"denied","terminal_status":"denied",
        "failure_reason":null,"attempt_count":1,"risk_level":"high","user_authorization":"low",
        "outcome":"deny","guardian_thread_id":"thr-g","guardian_session_kind":"trunk_reused",
        "guardian_model":"gpt-x","guardian_reasoning_effort":null,
        "guardian_default_review_model_id":"codex-auto-review",
        "guardian_catalog_contains_auto_review":false,"guardian_review_model_overridden":false,
        "guardian_review_model_override":null,"guardian_model_provider_id":"my-provider",
        "had_prior_review_context":true,"review_timeout_ms":90000,"tool_call_count":null,
        "time_to_first_token_ms":38,"completion_latency_ms":65,"started_at":1760000000,
        "completed_at":1760000000,"input_tokens":120,"cached_input_tokens":0,
        "cache_write_input_tokens":0,"output_tokens":12,"reasoning_output_tokens":0,
        "total_tokens":132});
    assert_eq!(v, expected);
    let text = v.to_string();
    for secret in ["CANARY", "-rf"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[test]
fn prompt_build_failure_has_its_reason_and_no_session_fields() {
    let mut r = report();
    r.session = None;
    r.decision = Decision::Denied;
    r.terminal_status = TerminalStatus::FailedClosed;
    r.failure_reason = Some(FailureReason::PromptBuildError);
    r.risk_level = None;
    r.user_authorization = None;
    r.outcome = None;
    let v = serde_json::to_value(guardian_review_event(&r, client(), runtime())).expect("json");
    assert_eq!(v["terminal_status"], "failed_closed");
    assert_eq!(v["failure_reason"], "prompt_build_error");
    for key in [
        "guardian_thread_id",
        "guardian_session_kind",
        "guardian_model",
        "guardian_model_provider_id",
        "had_prior_review_context",
        "risk_level",
        "outcome",
    ] {
        assert!(v[key].is_null(), "{key} should be null");
    }
}

#[test]
fn session_failures_are_told_apart_from_prompt_build_failures() {
    let mut r = report();
    r.terminal_status = TerminalStatus::FailedClosed;
    r.failure_reason = Some(FailureReason::SessionError);
    let v = serde_json::to_value(guardian_review_event(&r, client(), runtime())).expect("json");
    assert_eq!(v["failure_reason"], "session_error");
    assert_eq!(v["guardian_thread_id"], "thr-g");
}

#[test]
fn timeouts_and_cancels_keep_their_own_status_and_reason() {
    let mut r = report();
    r.decision = Decision::Denied;
    r.terminal_status = TerminalStatus::TimedOut;
    r.failure_reason = Some(FailureReason::Timeout);
    let v = serde_json::to_value(guardian_review_event(&r, client(), runtime())).expect("json");
    assert_eq!(
        (&v["decision"], &v["terminal_status"], &v["failure_reason"]),
        (&json!("denied"), &json!("timed_out"), &json!("timeout"))
    );
    r.decision = Decision::Aborted;
    r.terminal_status = TerminalStatus::Aborted;
    r.failure_reason = Some(FailureReason::Cancelled);
    let v = serde_json::to_value(guardian_review_event(&r, client(), runtime())).expect("json");
    assert_eq!(
        (&v["decision"], &v["terminal_status"], &v["failure_reason"]),
        (&json!("aborted"), &json!("aborted"), &json!("cancelled"))
    );
}
