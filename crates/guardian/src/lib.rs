//! Guardian: when a thread's approvals are reviewed automatically, each approval request is
//! judged by a review session on the model instead of a person. This crate holds the review
//! itself (prompt, strict assessment parsing, retries, deadline, cancellation, session reuse,
//! usage and timings); core supplies the model through [`ReviewModel`].

mod action;
mod assessment;
mod notice;
mod prompt;
mod review;
mod session;

pub use action::{PlannedAction, PromptBuildError, ReviewedAction, SandboxPermissions};
pub use assessment::{
    output_schema, parse_assessment, Assessment, AssessmentError, Outcome, RiskLevel,
    UserAuthorization,
};
pub use prompt::{ReviewMessage, Role, TranscriptEntry, REVIEW_POLICY};
pub use review::{
    ApprovalRequestSource, AttemptRecord, AttemptStatus, Decision, FailureReason, Guardian,
    GuardianConfig, ModelReply, ReviewModel, ReviewModelError, ReviewReport, ReviewRequest,
    ReviewResult, ReviewSample, ReviewTiming, SessionInfo, SessionKind, TerminalStatus, TokenUsage,
};
