//! `review/start`: a code review run inline, as a turn of the thread. The model is asked to
//! review the target; clients see `enteredReviewMode`, the turn's work, `exitedReviewMode` with
//! the review's text, and that text as an agent message (the model's own messages are the
//! review, not items of their own).

use super::{wait_until_closed, StartedTurn, ThreadManager};
use crate::error::CoreError;
use tally_protocol::types::{ReviewStartParams, ReviewTarget, TurnStartParams, UserInput};

impl ThreadManager {
    /// Starts a review turn; a thread whose turn is still running refuses it, one whose turn is
    /// ending is waited for.
    pub async fn start_review(&self, params: ReviewStartParams) -> Result<StartedTurn, CoreError> {
        let thread = self.require_loaded(&params.thread_id)?;
        let (label, prompt) = review_request(&params.target)?;
        let running = thread
            .state()
            .active
            .as_ref()
            .map(|a| (a.turn_id.clone(), a.is_ending()));
        match running {
            Some((turn_id, true)) => wait_until_closed(&thread, &turn_id).await?,
            Some(_) => return Err(CoreError::TurnRunning),
            None => {}
        }
        let turn = TurnStartParams {
            thread_id: params.thread_id,
            input: vec![UserInput::text(prompt)],
            ..TurnStartParams::default()
        };
        self.begin_new_turn(thread, &turn, Some(label))
    }
}

/// What a review reports, whatever it reviews.
const FINDINGS: &str = "Report only problems the change introduces (bugs, security, data loss, \
    broken behaviour), most serious first: for each, the file and line, a priority (P0 must be \
    fixed before release, P1 soon, P2 normal, P3 minor) and why it is wrong. End with an overall \
    verdict; if you find nothing worth fixing, say so plainly.";

/// What clients call the review (`enteredReviewMode.review`), and what the model is asked.
fn review_request(target: &ReviewTarget) -> Result<(String, String), CoreError> {
    let required = |value: &str, field: &str| {
        if value.trim().is_empty() {
            Err(CoreError::InvalidParams(format!(
                "Invalid params for review/start: field `target.{field}`: must not be empty"
            )))
        } else {
            Ok(value.trim().to_owned())
        }
    };
    Ok(match target {
        ReviewTarget::UncommittedChanges => (
            "current changes".into(),
            format!(
                "Review the current code changes (staged, unstaged and untracked files). {FINDINGS}"
            ),
        ),
        ReviewTarget::BaseBranch { branch } => {
            let branch = required(branch, "branch")?;
            (
                format!("changes against '{branch}'"),
                format!(
                    "Review the code changes against the base branch '{branch}': find the merge \
                     base with `git merge-base HEAD {branch}` and read `git diff` from it. \
                     {FINDINGS}"
                ),
            )
        }
        ReviewTarget::Commit { sha, title } => {
            let sha = required(sha, "sha")?;
            let short: String = sha.chars().take(7).collect();
            let label = match title.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                Some(title) => format!("commit {short}: {title}"),
                None => format!("commit {short}"),
            };
            (
                label,
                format!(
                    "Review the code changes introduced by commit {sha} (`git show {sha}`). \
                     {FINDINGS}"
                ),
            )
        }
        ReviewTarget::Custom { instructions } => {
            let instructions = required(instructions, "instructions")?;
            (instructions.clone(), instructions)
        }
    })
}

#[cfg(test)]
#[path = "thread_review_tests.rs"]
mod tests;
