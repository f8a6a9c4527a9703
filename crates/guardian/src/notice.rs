//! What a finished review says in words: to the model, in place of the tool's output when the
//! action did not run, and to the user, as a `guardianWarning`.
//!
//! Both may carry the reviewer's rationale: the model and the user see it, analytics never does
//! (the [`ReviewReport`](crate::ReviewReport) has no text).

use crate::review::{Decision, FailureReason, ReviewResult, TerminalStatus};

/// What the model is told once the reviewer denied an action.
const AFTER_DENIAL: &str = "Do not try to reach the same result another way (a workaround, \
indirect execution or getting around the policy). Go on only with a clearly safer \
alternative, or stop and ask the user, who can approve the action explicitly once told the risk.";

/// What the model is told when the review could not decide.
const AFTER_FAILURE: &str = "This says nothing about whether the action is safe. You may retry \
it once, or ask the user for guidance or explicit approval.";

impl ReviewResult {
    /// Why the action did not run, for the model: `None` when it was approved. A denial is
    /// never passed off as the user's; a review that could not decide says it failed closed.
    pub fn explanation_for_model(&self) -> Option<String> {
        let r = &self.report;
        if r.decision == Decision::Approved {
            return None;
        }
        Some(match (r.terminal_status, r.failure_reason) {
            (TerminalStatus::Denied, _) => {
                let mut text = format!(
                    "the automatic approval reviewer denied this action{}.",
                    self.levels()
                );
                if let Some(rationale) = self.rationale() {
                    text.push_str(&format!(" Reviewer's reason: {rationale}"));
                }
                format!("{text}\n{AFTER_DENIAL}")
            }
            (TerminalStatus::TimedOut, _) => format!(
                "the automatic approval review did not finish within its {} deadline, so it \
                 failed closed and the action was declined. {AFTER_FAILURE}",
                deadline(r.review_timeout_ms)
            ),
            (TerminalStatus::Aborted, _) => {
                "the automatic approval review was cancelled, so the action was declined.".into()
            }
            (_, reason) => format!(
                "the automatic approval review failed closed ({}), so the action was declined. \
                 {AFTER_FAILURE}",
                failure_words(reason, r.attempt_count)
            ),
        })
    }

    /// The user's `guardianWarning` about the review, as Codex sends one for every finished
    /// review but a cancelled one; `None` for a cancelled review.
    pub fn warning_for_user(&self) -> Option<String> {
        let r = &self.report;
        let verdict = match r.terminal_status {
            TerminalStatus::Approved => "approved",
            TerminalStatus::Denied => "denied",
            TerminalStatus::Aborted => return None,
            TerminalStatus::TimedOut => {
                return Some(format!(
                    "Automatic approval review timed out after {}; the action was declined.",
                    deadline(r.review_timeout_ms)
                ))
            }
            TerminalStatus::FailedClosed => {
                return Some(format!(
                    "Automatic approval review failed closed ({}); the action was declined.",
                    failure_words(r.failure_reason, r.attempt_count)
                ))
            }
        };
        let mut text = format!("Automatic approval review {verdict}{}", self.levels());
        if let Some(rationale) = self.rationale() {
            text.push_str(&format!(": {rationale}"));
        }
        Some(text)
    }

    /// " (risk: high, user authorization: low)", or nothing without an assessment.
    fn levels(&self) -> String {
        let r = &self.report;
        let mut parts = Vec::new();
        if let Some(risk) = r.risk_level {
            parts.push(format!("risk: {}", risk.as_str()));
        }
        if let Some(auth) = r.user_authorization {
            parts.push(format!("user authorization: {}", auth.as_str()));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        }
    }

    fn rationale(&self) -> Option<&str> {
        self.rationale
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
    }
}

/// "90 s", or "300 ms" for a deadline that is not whole seconds.
fn deadline(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

fn failure_words(reason: Option<FailureReason>, attempts: u32) -> String {
    match reason {
        Some(FailureReason::ParseError) => {
            format!("the reviewer gave no valid assessment in {attempts} attempts")
        }
        Some(FailureReason::PromptBuildError) => {
            "the action was too large to put before the reviewer".into()
        }
        Some(FailureReason::SessionError) => "the review session failed".into(),
        Some(FailureReason::Timeout) => "the review timed out".into(),
        Some(FailureReason::Cancelled) => "the review was cancelled".into(),
        None => "the review ended without a verdict".into(),
    }
}
