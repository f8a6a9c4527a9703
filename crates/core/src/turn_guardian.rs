//! Approvals judged by Guardian instead of a person when the thread's reviewer is
//! `auto_review` (or legacy `guardian_subagent`): the client sees the review's notifications,
//! never an approval request (so the thread never shows `waitingOnApproval`), and anything but
//! an explicit allow declines. The model is told who declined and why, never "the user".

use super::{Interrupted, TurnRunner, Verdict};
use crate::clock::now_ms;
use crate::tools::call::ExecArgs;
use std::path::{Path, PathBuf};
use tally_guardian::{
    ApprovalRequestSource, PlannedAction, ReviewRequest, ReviewResult, SandboxPermissions,
    TerminalStatus,
};
use tally_protocol::server_notification::GuardianWarningNotification;
use tally_protocol::types::*;
use tally_protocol::ServerNotification;
use tokio_util::sync::CancellationToken;

/// An action to review: what Guardian reads, and what the client is shown.
pub(super) struct ActionUnderReview {
    planned: PlannedAction,
    shown: GuardianApprovalReviewAction,
}

impl ActionUnderReview {
    /// A command from `exec_command`.
    pub fn exec(args: &ExecArgs, argv: &[String], display: &str, cwd: &str) -> Self {
        Self {
            planned: PlannedAction::Exec {
                command: argv.to_vec(),
                cwd: cwd.to_string(),
                justification: args.justification.clone(),
                sandbox_permissions: if args.escalate() {
                    SandboxPermissions::RequireEscalated
                } else {
                    SandboxPermissions::UseDefault
                },
                tty: false,
            },
            shown: GuardianApprovalReviewAction::Command {
                command: display.to_string(),
                cwd: cwd.to_string(),
                source: GuardianCommandSource::UnifiedExec,
            },
        }
    }

    /// A patch from `apply_patch`.
    pub fn patch(cwd: &Path, paths: &[PathBuf], patch: &str) -> Self {
        let cwd = cwd.display().to_string();
        let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        Self {
            planned: PlannedAction::ApplyPatch {
                cwd: cwd.clone(),
                files: files.clone(),
                patch: patch.to_string(),
            },
            shown: GuardianApprovalReviewAction::ApplyPatch { cwd, files },
        }
    }
}

impl TurnRunner {
    /// Whether this thread's approvals are reviewed automatically.
    pub(super) fn auto_review(&self) -> bool {
        matches!(
            self.thread.state().settings.approvals_reviewer,
            ApprovalsReviewer::AutoReview | ApprovalsReviewer::GuardianSubagent
        )
    }

    /// Has Guardian judge the action of tool call `item_id`; an interrupt cancels the review.
    pub(super) async fn guardian_verdict(
        &mut self,
        item_id: &str,
        action: ActionUnderReview,
    ) -> Result<Verdict, Interrupted> {
        let Some(guardian) = self.guardian.clone() else {
            // Automatic review was asked for but no reviewer exists: never fall back to running.
            return Ok(Verdict::AutoDenied(
                "automatic approval review is not available here, so the action was declined \
                 (it fails closed). Ask the user for guidance or explicit approval."
                    .into(),
            ));
        };
        let review_id = uuid::Uuid::now_v7().to_string();
        let started_at_ms = now_ms();
        self.emitter()
            .emit(ServerNotification::ItemGuardianApprovalReviewStarted(
                ItemGuardianApprovalReviewStartedNotification {
                    thread_id: self.thread.id.clone(),
                    turn_id: self.turn_id.clone(),
                    review_id: review_id.clone(),
                    target_item_id: Some(item_id.to_string()),
                    started_at_ms,
                    review: GuardianApprovalReview {
                        status: GuardianApprovalReviewStatus::InProgress,
                        risk_level: None,
                        user_authorization: None,
                        rationale: None,
                    },
                    action: action.shown.clone(),
                },
            ))
            .await;
        let transcript = crate::guardian::transcript(&self.thread.state().history);
        let request = ReviewRequest {
            review_id: review_id.clone(),
            parent_thread_id: self.thread.id.clone(),
            turn_id: self.turn_id.clone(),
            target_item_id: Some(item_id.to_string()),
            source: ApprovalRequestSource::MainTurn,
            action: action.planned,
            transcript,
        };
        let cancel = CancellationToken::new();
        let review = guardian.review(request, cancel.clone());
        tokio::pin!(review);
        let mut stopped = None;
        // A cancelled review returns at once, so the loop still ends with its report.
        let result = loop {
            tokio::select! {
                r = &mut review => break r,
                ctl = self.control.recv(), if stopped.is_none() => {
                    if let Some(stop) = self.on_tool_control(ctl) {
                        stopped = Some(stop);
                        cancel.cancel();
                    }
                }
            }
        };
        log_timing(&result);
        // Analytics first, as Codex posts codex_guardian_review before the review event; then,
        // as Codex does, the user's warning and the completed review.
        self.sink.guardian_review(&result.report).await;
        if let Some(message) = result.warning_for_user() {
            self.emitter()
                .emit(ServerNotification::GuardianWarning(
                    GuardianWarningNotification {
                        thread_id: self.thread.id.clone(),
                        message,
                    },
                ))
                .await;
        }
        self.emitter()
            .emit(ServerNotification::ItemGuardianApprovalReviewCompleted(
                completed_notification(
                    &self.thread.id,
                    &self.turn_id,
                    item_id,
                    started_at_ms,
                    &result,
                    action.shown,
                ),
            ))
            .await;
        if let Some(stop) = stopped {
            return Err(stop);
        }
        Ok(match result.explanation_for_model() {
            None => Verdict::Accept { for_session: false },
            Some(why) => Verdict::AutoDenied(why),
        })
    }
}

/// Queue wait and model time have no slot in `codex_guardian_review` nor in the
/// `item/autoApprovalReview/*` notifications (its `time_to_first_token_ms` and
/// `completion_latency_ms` are filled from the same timing): they are logged at debug, by
/// review id and never with the action.
fn log_timing(result: &ReviewResult) {
    let r = &result.report;
    tracing::debug!(
        review_id = %r.review_id,
        queue_wait_ms = r.timing.queue_wait_ms,
        model_ms = r.timing.model_ms,
        total_ms = r.timing.total_ms,
        time_to_first_token_ms = ?r.timing.time_to_first_token_ms,
        attempt_count = r.attempt_count,
        "guardian review timing"
    );
}

/// The completed notification; it keeps the started one's `startedAtMs`.
fn completed_notification(
    thread_id: &str,
    turn_id: &str,
    item_id: &str,
    started_at_ms: i64,
    result: &ReviewResult,
    action: GuardianApprovalReviewAction,
) -> ItemGuardianApprovalReviewCompletedNotification {
    let r = &result.report;
    let status = match r.terminal_status {
        TerminalStatus::Approved => GuardianApprovalReviewStatus::Approved,
        TerminalStatus::Denied | TerminalStatus::FailedClosed => {
            GuardianApprovalReviewStatus::Denied
        }
        TerminalStatus::TimedOut => GuardianApprovalReviewStatus::TimedOut,
        TerminalStatus::Aborted => GuardianApprovalReviewStatus::Aborted,
    };
    ItemGuardianApprovalReviewCompletedNotification {
        thread_id: thread_id.to_string(),
        turn_id: turn_id.to_string(),
        review_id: r.review_id.clone(),
        target_item_id: Some(item_id.to_string()),
        started_at_ms,
        completed_at_ms: r.completed_at_ms,
        decision_source: AutoReviewDecisionSource::Agent,
        review: GuardianApprovalReview {
            status,
            risk_level: r.risk_level.map(|l| match l {
                tally_guardian::RiskLevel::Low => GuardianRiskLevel::Low,
                tally_guardian::RiskLevel::Medium => GuardianRiskLevel::Medium,
                tally_guardian::RiskLevel::High => GuardianRiskLevel::High,
                tally_guardian::RiskLevel::Critical => GuardianRiskLevel::Critical,
            }),
            user_authorization: r.user_authorization.map(|a| match a {
                tally_guardian::UserAuthorization::Unknown => GuardianUserAuthorization::Unknown,
                tally_guardian::UserAuthorization::Low => GuardianUserAuthorization::Low,
                tally_guardian::UserAuthorization::Medium => GuardianUserAuthorization::Medium,
                tally_guardian::UserAuthorization::High => GuardianUserAuthorization::High,
            }),
            rationale: result.rationale.clone(),
        },
        action,
    }
}
