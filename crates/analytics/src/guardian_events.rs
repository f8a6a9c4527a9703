//! `codex_guardian_review`: the terminal outcome of one Guardian review, built from the
//! review's PII-free report. Never commands, cwd, argv, paths, hosts, rationale or
//! justifications: the report does not carry them.

use crate::events::{
    AppServerClient, RuntimeInfo, ThreadContext, ThreadInitializedEvent, TurnEvent, TurnToolCounts,
};
use crate::identifier::{identifier, identifier_or_other};
use serde::Serialize;
use tally_guardian::{
    AttemptStatus, Decision, FailureReason, ReviewReport, ReviewedAction, SessionKind,
    TerminalStatus,
};

/// The review model Codex asks for by default; Tally reviews with the thread's model.
const DEFAULT_REVIEW_MODEL_ID: &str = "codex-auto-review";

/// `codex_guardian_review`, fields in Codex's order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardianReviewEvent {
    pub session_id: String,
    pub app_server_client: AppServerClient,
    pub runtime: RuntimeInfo,
    pub guardian_context_mode: Option<&'static str>,
    pub thread_id: String,
    pub turn_id: String,
    pub review_id: String,
    pub target_item_id: Option<String>,
    pub approval_request_source: &'static str,
    pub reviewed_action: ReviewedAction,
    pub reviewed_action_truncated: bool,
    pub decision: &'static str,
    pub terminal_status: &'static str,
    pub failure_reason: Option<&'static str>,
    pub attempt_count: u32,
    pub risk_level: Option<&'static str>,
    pub user_authorization: Option<&'static str>,
    pub outcome: Option<&'static str>,
    pub guardian_thread_id: Option<String>,
    pub guardian_session_kind: Option<&'static str>,
    pub guardian_model: Option<String>,
    pub guardian_reasoning_effort: Option<String>,
    pub guardian_default_review_model_id: Option<&'static str>,
    pub guardian_catalog_contains_auto_review: Option<bool>,
    pub guardian_review_model_overridden: Option<bool>,
    pub guardian_review_model_override: Option<String>,
    pub guardian_model_provider_id: Option<String>,
    pub had_prior_review_context: Option<bool>,
    pub review_timeout_ms: u64,
    pub tool_call_count: Option<i64>,
    pub time_to_first_token_ms: Option<u64>,
    pub completion_latency_ms: Option<u64>,
    pub started_at: i64,
    pub completed_at: Option<i64>,
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    pub cache_write_input_tokens: i64,
    pub output_tokens: i64,
    pub reasoning_output_tokens: i64,
    pub total_tokens: i64,
}

/// Builds the event for a review of a thread owned by `client`.
pub(crate) fn guardian_review_event(
    r: &ReviewReport,
    client: AppServerClient,
    runtime: RuntimeInfo,
) -> GuardianReviewEvent {
    let session = r.session.as_ref();
    // Without a session (prompt-build failure) no reviewer ran: its metadata stays null.
    let with_session = |v: String| session.map(|_| v);
    GuardianReviewEvent {
        session_id: r.parent_thread_id.clone(),
        app_server_client: client,
        runtime,
        guardian_context_mode: Some("thread_owned"),
        thread_id: r.parent_thread_id.clone(),
        turn_id: r.turn_id.clone(),
        review_id: r.review_id.clone(),
        target_item_id: r.target_item_id.clone(),
        approval_request_source: r.source.as_str(),
        reviewed_action: r.reviewed_action.clone(),
        reviewed_action_truncated: r.reviewed_action_truncated,
        decision: match r.decision {
            Decision::Approved => "approved",
            Decision::Denied => "denied",
            Decision::Aborted => "aborted",
        },
        terminal_status: match r.terminal_status {
            TerminalStatus::Approved => "approved",
            TerminalStatus::Denied => "denied",
            TerminalStatus::FailedClosed => "failed_closed",
            TerminalStatus::TimedOut => "timed_out",
            TerminalStatus::Aborted => "aborted",
        },
        failure_reason: r.failure_reason.map(|f| match f {
            FailureReason::ParseError => "parse_error",
            FailureReason::Timeout => "timeout",
            FailureReason::Cancelled => "cancelled",
            FailureReason::PromptBuildError => "prompt_build_error",
            FailureReason::SessionError => "session_error",
        }),
        attempt_count: r.attempt_count,
        risk_level: r.risk_level.map(|l| l.as_str()),
        user_authorization: r.user_authorization.map(|a| a.as_str()),
        outcome: r.outcome.map(|o| o.as_str()),
        guardian_thread_id: session.map(|s| s.guardian_thread_id.clone()),
        // `trunk_reused` on every review, the first included, as Codex 0.169 reports it.
        guardian_session_kind: session.map(|s| match s.kind {
            SessionKind::TrunkReused => "trunk_reused",
        }),
        guardian_model: with_session(identifier_or_other(&r.model)),
        guardian_reasoning_effort: r
            .reasoning_effort
            .as_deref()
            .and_then(identifier)
            .and_then(with_session),
        guardian_default_review_model_id: session.map(|_| DEFAULT_REVIEW_MODEL_ID),
        guardian_catalog_contains_auto_review: session.map(|_| false),
        guardian_review_model_overridden: session.map(|_| false),
        guardian_review_model_override: None,
        guardian_model_provider_id: with_session(identifier_or_other(&r.model_provider_id)),
        had_prior_review_context: session.map(|s| s.had_prior_review_context),
        review_timeout_ms: r.review_timeout_ms,
        tool_call_count: None,
        time_to_first_token_ms: r.timing.time_to_first_token_ms,
        completion_latency_ms: Some(r.timing.total_ms),
        started_at: r.started_at_ms / 1000,
        completed_at: Some(r.completed_at_ms / 1000),
        input_tokens: r.tokens.input_tokens,
        cached_input_tokens: r.tokens.cached_input_tokens,
        cache_write_input_tokens: r.tokens.cache_write_input_tokens,
        output_tokens: r.tokens.output_tokens,
        reasoning_output_tokens: r.tokens.reasoning_output_tokens,
        total_tokens: r.tokens.total_tokens,
    }
}

/// The reviewer thread's context: a `guardian` sub-agent of the reviewed thread.
fn reviewer_context(r: &ReviewReport) -> ThreadContext {
    ThreadContext {
        thread_source: Some("guardian_review".into()),
        subagent_source: Some("guardian".into()),
        parent_thread_id: Some(r.parent_thread_id.clone()),
    }
}

/// The reviewer runs inside the server, so its events name the in-process transport.
fn in_process(mut client: AppServerClient) -> AppServerClient {
    client.rpc_transport = "in_process";
    client
}

/// `codex_thread_initialized` of the reviewer thread, for the review that created it.
pub(crate) fn reviewer_thread_initialized(
    r: &ReviewReport,
    client: &AppServerClient,
    runtime: &RuntimeInfo,
) -> Option<ThreadInitializedEvent> {
    let session = r.session.as_ref().filter(|s| s.created)?;
    Some(ThreadInitializedEvent {
        thread_id: session.guardian_thread_id.clone(),
        session_id: r.parent_thread_id.clone(),
        app_server_client: in_process(client.clone()),
        runtime: runtime.clone(),
        model: identifier_or_other(&r.model),
        // Review sessions live in memory only.
        ephemeral: true,
        is_worktree: None,
        context: reviewer_context(r),
        initialization_mode: "new",
        forked_from_thread_id: None,
        created_at: session.created_at_ms / 1000,
    })
}

/// One `codex_turn_event` per sampling attempt of the reviewer thread.
pub(crate) fn reviewer_turn_events(
    r: &ReviewReport,
    client: &AppServerClient,
    runtime: &RuntimeInfo,
    approvals_reviewer: &'static str,
) -> Vec<TurnEvent> {
    let Some(session) = r.session.as_ref() else {
        return vec![];
    };
    r.attempts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let usage = a.usage;
            TurnEvent {
                thread_id: session.guardian_thread_id.clone(),
                session_id: r.parent_thread_id.clone(),
                turn_id: a.turn_id.clone(),
                root_turn_id: a.turn_id.clone(),
                app_server_client: in_process(client.clone()),
                runtime: runtime.clone(),
                context: reviewer_context(r),
                ephemeral: true,
                initialization_mode: "new",
                critical_path_status: "disabled",
                critical_path_duration_ms: None,
                critical_path_inference_ms: None,
                critical_path_sampling_ms: None,
                critical_path_compaction_ms: None,
                critical_path_auto_review_ms: None,
                critical_path_auto_review_overhead_ms: None,
                critical_path_user_wait_ms: None,
                critical_path_tools_ms: None,
                critical_path_overhead_ms: None,
                critical_path_unknown_ms: None,
                active_plugin_ids_at_turn_start: vec![],
                image_preparations: vec![],
                voice_session_id: None,
                turn_trigger: None,
                codex_turn_source: None,
                submission_type: None,
                workspace_kind: None,
                personality: None,
                model: identifier_or_other(&r.model),
                model_provider: identifier_or_other(&r.model_provider_id),
                // The reviewer only reads: a read-only sandbox that never asks.
                sandbox_policy: "read_only",
                reasoning_effort: r.reasoning_effort.as_deref().and_then(identifier),
                reasoning_summary: Some("auto".into()),
                service_tier: "default".into(),
                approval_policy: "never".into(),
                approvals_reviewer,
                guardian_v2_enabled: false,
                sandbox_network_access: false,
                is_first_turn: session.created && i == 0,
                multi_agent_version: "v1",
                collaboration_mode: "default",
                num_input_images: 0,
                status: match a.status {
                    AttemptStatus::Completed => "completed",
                    AttemptStatus::Interrupted => "interrupted",
                    AttemptStatus::Failed => "failed",
                },
                explicit_client_interrupt_requested_at_ms: None,
                turn_error: None,
                codex_error_kind: None,
                codex_error_http_status_code: None,
                usage_limit_window_minutes: None,
                counts: TurnToolCounts::default(),
                input_tokens: usage.map(|u| u.input_tokens),
                cached_input_tokens: usage.map(|u| u.cached_input_tokens),
                cache_write_input_tokens: usage.map(|u| u.cache_write_input_tokens),
                output_tokens: usage.map(|u| u.output_tokens),
                reasoning_output_tokens: usage.map(|u| u.reasoning_output_tokens),
                total_tokens: usage.map(|u| u.total_tokens),
                before_first_sampling_ms: 0,
                sampling_ms: 0,
                compaction_ms: 0,
                between_sampling_overhead_ms: 0,
                tool_blocking_ms: 0,
                after_last_sampling_ms: 0,
                sampling_request_count: 1,
                sampling_retry_count: 0,
                tools_change_count: 0,
                duration_ms: Some((a.completed_at_ms - a.started_at_ms).max(0)),
                started_at: Some(a.started_at_ms / 1000),
                completed_at: Some(a.completed_at_ms / 1000),
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "guardian_events_tests.rs"]
mod tests;
