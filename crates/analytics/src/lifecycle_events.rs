//! Events built from core's lifecycle facts and a turn's diff counts: `codex_compaction_event`,
//! `codex_goal_event` and `codex_accepted_line_fingerprints`. Each carries ids, enums, counts and
//! times only: never a summary, an objective, a diff or a remote URL.

use crate::events::{
    AcceptedLineFingerprintsEvent, AppServerClient, CompactionEvent, GoalEvent, RuntimeInfo,
    ThreadContext,
};
use crate::facts::{CompactionFact, GoalEventKind, GoalFact};
use crate::normalize::error_class;
use tally_protocol::types::{ThreadGoalStatus, TurnStatus};

/// Who and where an event is about: the owning connection's client and the thread's context.
pub(crate) struct Attribution {
    pub session_id: String,
    pub client: AppServerClient,
    pub runtime: RuntimeInfo,
    pub context: ThreadContext,
}

/// `codex_compaction_event` for a manual compaction, a standalone turn of the Responses
/// implementation that replaces history with a summary (`memento`).
pub(crate) fn compaction_event(f: &CompactionFact, a: Attribution) -> CompactionEvent {
    let (codex_error_kind, codex_error_http_status_code) = error_class(f.error.as_ref());
    CompactionEvent {
        thread_id: f.thread_id.clone(),
        session_id: a.session_id,
        turn_id: f.turn_id.clone(),
        app_server_client: a.client,
        runtime: a.runtime,
        context: a.context,
        trigger: "manual",
        reason: "user_requested",
        implementation: "responses",
        phase: "standalone_turn",
        strategy: "memento",
        status: match f.status {
            TurnStatus::Completed => "completed",
            TurnStatus::Interrupted => "interrupted",
            TurnStatus::Failed | TurnStatus::InProgress => "failed",
        },
        voice_session_id: None,
        codex_error_kind,
        codex_error_http_status_code,
        usage_limit_window_minutes: None,
        active_context_tokens_before: f.active_context_tokens_before,
        active_context_tokens_after: f.active_context_tokens_after,
        retained_image_count: None,
        compaction_summary_tokens: None,
        cached_input_tokens: None,
        cache_write_input_tokens: None,
        started_at: f.started_at_ms / 1000,
        completed_at: f.completed_at_ms / 1000,
        duration_ms: Some((f.completed_at_ms - f.started_at_ms).max(0)),
    }
}

/// `codex_goal_event`: the goal's id, what happened to it and its status.
pub(crate) fn goal_event(f: &GoalFact, a: Attribution) -> GoalEvent {
    GoalEvent {
        thread_id: f.thread_id.clone(),
        session_id: a.session_id,
        turn_id: f.turn_id.clone(),
        app_server_client: a.client,
        runtime: a.runtime,
        context: a.context,
        goal_id: f.goal_id.clone(),
        event_kind: match f.kind {
            GoalEventKind::Created => "created",
            GoalEventKind::StatusChanged => "status_changed",
            GoalEventKind::Cleared => "cleared",
        },
        goal_status: goal_status_name(f.status),
        has_token_budget: f.has_token_budget,
        cumulative_tokens_accounted: None,
        cumulative_time_accounted_seconds: None,
    }
}

/// `goal_status` in snake_case.
pub fn goal_status_name(s: ThreadGoalStatus) -> &'static str {
    match s {
        ThreadGoalStatus::Active => "active",
        ThreadGoalStatus::Paused => "paused",
        ThreadGoalStatus::Blocked => "blocked",
        ThreadGoalStatus::UsageLimited => "usage_limited",
        ThreadGoalStatus::BudgetLimited => "budget_limited",
        ThreadGoalStatus::Complete => "complete",
    }
}

/// What a turn's latest `turn/diff/updated` and its repository said.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TurnLines {
    pub added: i64,
    pub deleted: i64,
    pub repo_hash: Option<String>,
}

/// `codex_accepted_line_fingerprints` when the turn's diff added or deleted at least one line.
pub(crate) fn accepted_lines_event(
    thread_id: &str,
    turn_id: &str,
    model_slug: &str,
    completed_at: i64,
    lines: &TurnLines,
) -> Option<AcceptedLineFingerprintsEvent> {
    (lines.added + lines.deleted > 0).then(|| AcceptedLineFingerprintsEvent {
        event_type: "codex.accepted_line_fingerprints",
        turn_id: turn_id.to_string(),
        thread_id: thread_id.to_string(),
        product_surface: "codex",
        model_slug: model_slug.to_string(),
        completed_at,
        repo_hash: lines.repo_hash.clone(),
        accepted_added_lines: lines.added,
        accepted_deleted_lines: lines.deleted,
        line_fingerprints: Vec::new(),
    })
}
