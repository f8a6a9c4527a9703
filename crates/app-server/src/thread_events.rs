//! Core's thread events and requests, fanned out to the thread's subscribers through the sender.

use crate::outgoing::{OutgoingMessageSender, ServerRequestOutcome};
use std::sync::Arc;
use tally_analytics::{CompactionFact, GoalEventKind, GoalFact, TurnProfileFact};
use tally_core::{GoalChange, LifecycleReport, RequestResolution, ThreadEventSink};
use tally_protocol::{ServerNotification, ServerRequest};

/// Forwards every thread notification and request from core to the outgoing seam.
pub(crate) struct ThreadEventsToSubscribers(pub Arc<OutgoingMessageSender>);

#[async_trait::async_trait]
impl ThreadEventSink for ThreadEventsToSubscribers {
    async fn notify(&self, thread_id: &str, notification: ServerNotification) {
        self.0
            .send_thread_notification(thread_id, &notification)
            .await;
    }

    async fn request(&self, thread_id: &str, request: ServerRequest) -> RequestResolution {
        match self.0.request_on_thread(thread_id, request).await {
            ServerRequestOutcome::Answered { response, .. } => {
                RequestResolution::Answered(response)
            }
            ServerRequestOutcome::Refused { .. } => RequestResolution::Refused,
            ServerRequestOutcome::Cancelled => RequestResolution::Cancelled,
        }
    }

    async fn resolve_turn_requests(&self, thread_id: &str, turn_id: &str) {
        self.0.withdraw_turn_requests(thread_id, turn_id).await;
    }

    async fn guardian_review(&self, report: &tally_guardian::ReviewReport) {
        self.0.analytics().track_guardian_review(report);
    }

    async fn lifecycle(&self, report: LifecycleReport) {
        let analytics = self.0.analytics();
        match report {
            LifecycleReport::Compaction(r) => analytics.track_compaction(&CompactionFact {
                thread_id: r.thread_id,
                turn_id: r.turn_id,
                status: r.status,
                error: r.error,
                active_context_tokens_before: r.active_context_tokens_before,
                active_context_tokens_after: r.active_context_tokens_after,
                started_at_ms: r.started_at_ms,
                completed_at_ms: r.completed_at_ms,
            }),
            LifecycleReport::Goal(r) => analytics.track_goal(&GoalFact {
                thread_id: r.thread_id,
                turn_id: r.turn_id,
                goal_id: r.goal_id,
                kind: match r.change {
                    GoalChange::Created => GoalEventKind::Created,
                    GoalChange::StatusChanged => GoalEventKind::StatusChanged,
                    GoalChange::Cleared => GoalEventKind::Cleared,
                },
                status: r.status,
                has_token_budget: r.has_token_budget,
            }),
            LifecycleReport::UserShellTurn { thread_id, turn_id } => {
                analytics.track_user_shell_turn(&thread_id, &turn_id)
            }
            LifecycleReport::TurnRepository {
                thread_id,
                turn_id,
                repo_hash,
            } => analytics.track_turn_repository(&thread_id, &turn_id, repo_hash.as_deref()),
            LifecycleReport::TurnProfile {
                thread_id,
                turn_id,
                profile: p,
            } => analytics.track_turn_profile(
                &thread_id,
                &turn_id,
                &TurnProfileFact {
                    before_first_sampling_ms: p.before_first_sampling_ms,
                    sampling_ms: p.sampling_ms,
                    compaction_ms: p.compaction_ms,
                    between_sampling_overhead_ms: p.between_sampling_overhead_ms,
                    tool_blocking_ms: p.tool_blocking_ms,
                    after_last_sampling_ms: p.after_last_sampling_ms,
                    sampling_request_count: p.sampling_request_count,
                    sampling_retry_count: p.sampling_retry_count,
                    tools_change_count: p.tools_change_count,
                },
            ),
        }
    }
}
