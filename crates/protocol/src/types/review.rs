//! `review/start`: a code review run as a turn of the thread (inline delivery).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::types::Turn;

/// `review/start` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewStartParams {
    pub thread_id: String,
    pub target: ReviewTarget,
    /// Only `inline` (a turn of this thread) is served.
    #[serde(default)]
    pub delivery: Option<ReviewDelivery>,
}

/// What to review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ReviewTarget {
    /// Staged, unstaged and untracked files.
    UncommittedChanges,
    /// The branch's changes since it left `branch`.
    BaseBranch { branch: String },
    /// One commit.
    Commit {
        sha: String,
        #[serde(default)]
        title: Option<String>,
    },
    /// Free-form instructions.
    Custom { instructions: String },
}

/// Where the review runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ReviewDelivery {
    Inline,
}

/// `review/start` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewStartResponse {
    pub turn: Turn,
    /// The thread the review runs in: the one asked for (inline).
    pub review_thread_id: String,
}
