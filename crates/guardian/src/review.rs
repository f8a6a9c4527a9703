//! One automatic review: build the prompt, sample the reviewer (retrying answers that are not
//! an assessment), and fail closed on anything else, within a deadline and until cancelled.

use crate::action::{PlannedAction, ReviewedAction};
use crate::assessment::{
    output_schema, parse_assessment, Assessment, Outcome, RiskLevel, UserAuthorization,
};
use crate::prompt::{self, ReviewMessage, TranscriptEntry};
use crate::session::SessionStore;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// Codex's fixed review deadline, Tally's default.
const DEFAULT_REVIEW_TIMEOUT: Duration = Duration::from_secs(90);
/// Codex's attempts for an answer that is not an assessment.
const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// How reviews run and which model judges them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardianConfig {
    /// Deadline of one review, queue wait and all attempts included.
    pub review_timeout: Duration,
    /// Sampling attempts before an unparsable answer fails closed.
    pub max_attempts: u32,
    pub model: String,
    pub model_provider_id: String,
    pub reasoning_effort: Option<String>,
}

impl GuardianConfig {
    /// Codex's defaults for `model` served by `model_provider_id`.
    pub fn new(model: impl Into<String>, model_provider_id: impl Into<String>) -> Self {
        Self {
            review_timeout: DEFAULT_REVIEW_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            model: model.into(),
            model_provider_id: model_provider_id.into(),
            reasoning_effort: None,
        }
    }
}

/// Token usage of a review session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    pub cache_write_input_tokens: i64,
    pub output_tokens: i64,
    pub reasoning_output_tokens: i64,
    pub total_tokens: i64,
}

/// One sampling request to the reviewer model.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewSample {
    pub guardian_thread_id: String,
    pub parent_thread_id: String,
    /// The whole reviewer conversation so far.
    pub messages: Vec<ReviewMessage>,
    /// The JSON schema the final message must follow.
    pub output_schema: Value,
    /// 1-based attempt within the review.
    pub attempt: u32,
    /// The reviewer turn this attempt is.
    pub turn_id: String,
}

/// The reviewer's final message and what it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelReply {
    pub text: String,
    pub usage: TokenUsage,
    /// From the request to the first output, when any arrived.
    pub time_to_first_token: Option<Duration>,
}

/// Why the reviewer model could not answer (a session/runtime failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("guardian session failed: {0}")]
pub struct ReviewModelError(pub String);

/// The model that plays the reviewer; core implements it over its model client.
#[async_trait::async_trait]
pub trait ReviewModel: Send + Sync {
    /// Samples one answer; dropping the future abandons the request.
    async fn sample(&self, sample: ReviewSample) -> Result<ModelReply, ReviewModelError>;
}

/// Who raised the approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalRequestSource {
    /// A tool call of the thread's own turn.
    MainTurn,
}

impl ApprovalRequestSource {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalRequestSource::MainTurn => "main_turn",
        }
    }
}

/// An approval request to review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewRequest {
    pub review_id: String,
    pub parent_thread_id: String,
    pub turn_id: String,
    /// The tool call under review.
    pub target_item_id: Option<String>,
    pub source: ApprovalRequestSource,
    pub action: PlannedAction,
    /// The parent thread's whole conversation; a continued session gets only what is new.
    pub transcript: Vec<TranscriptEntry>,
}

/// What happens to the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approved,
    Denied,
    Aborted,
}

/// How the review ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminalStatus {
    Approved,
    Denied,
    FailedClosed,
    TimedOut,
    Aborted,
}

/// Why a review ended without the reviewer's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    ParseError,
    Timeout,
    Cancelled,
    PromptBuildError,
    SessionError,
}

/// `guardian_session_kind` as reported.
///
/// Codex 0.169 reports `trunk_reused` on every review, the thread's first included (it sets
/// its trunk session up before the first review runs), and Codex's source also knows
/// `trunk_new` and `ephemeral_forked`. Tally matches what Codex is seen to send, so that fleets
/// of both compare: every review is `TrunkReused`. Whether a review created the reviewer
/// thread is [`SessionInfo::created`]; whether it continued earlier assessments is
/// [`SessionInfo::had_prior_review_context`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    TrunkReused,
}

/// The review session a review ran in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub guardian_thread_id: String,
    /// When the session (the reviewer thread) was created, Unix ms.
    pub created_at_ms: i64,
    /// Always [`SessionKind::TrunkReused`], as Codex reports it (see [`SessionKind`]).
    pub kind: SessionKind,
    /// This review created the reviewer thread (its first `codex_thread_initialized`).
    pub created: bool,
    /// An earlier review of the thread reached an assessment in this session.
    pub had_prior_review_context: bool,
}

/// How one sampling attempt (one reviewer turn) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptStatus {
    /// The model answered (whether or not the answer parsed).
    Completed,
    /// The deadline or a cancel cut it short.
    Interrupted,
    /// The model request failed.
    Failed,
}

/// One sampling attempt of a review: a turn of the reviewer thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub turn_id: String,
    pub started_at_ms: i64,
    pub completed_at_ms: i64,
    pub status: AttemptStatus,
    /// The response's usage; none when no response completed.
    pub usage: Option<TokenUsage>,
}

/// Where a review's time went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReviewTiming {
    /// Waiting for an earlier review of the same thread.
    pub queue_wait_ms: u64,
    /// Inside model requests, all attempts.
    pub model_ms: u64,
    pub total_ms: u64,
    /// From the review's start to the reviewer's first output.
    pub time_to_first_token_ms: Option<u64>,
}

/// Everything analytics may know about a review: ids, enums, counts, timings; no content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewReport {
    pub review_id: String,
    pub parent_thread_id: String,
    pub turn_id: String,
    pub target_item_id: Option<String>,
    pub source: ApprovalRequestSource,
    pub reviewed_action: ReviewedAction,
    pub reviewed_action_truncated: bool,
    pub decision: Decision,
    pub terminal_status: TerminalStatus,
    pub failure_reason: Option<FailureReason>,
    pub attempt_count: u32,
    pub risk_level: Option<RiskLevel>,
    pub user_authorization: Option<UserAuthorization>,
    pub outcome: Option<Outcome>,
    pub session: Option<SessionInfo>,
    pub model: String,
    pub model_provider_id: String,
    pub reasoning_effort: Option<String>,
    pub review_timeout_ms: u64,
    /// The usage of the review's last completed model response, not the sum over attempts:
    /// Codex 0.169 reported one response's usage on a review that took 3 attempts, and Tally
    /// matches it so that `codex_guardian_review` token counts compare across fleets. Zeros
    /// when no response completed (timeout, cancel, session or prompt-build failure). The
    /// usage of every attempt is in [`AttemptRecord::usage`].
    pub tokens: TokenUsage,
    pub timing: ReviewTiming,
    /// Every sampling attempt, in order.
    pub attempts: Vec<AttemptRecord>,
    pub started_at_ms: i64,
    pub completed_at_ms: i64,
}

/// A finished review: the report, and the rationale shown to the user only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewResult {
    pub report: ReviewReport,
    pub rationale: Option<String>,
}

impl ReviewResult {
    /// Whether the action may run.
    pub fn approved(&self) -> bool {
        self.report.decision == Decision::Approved
    }
}

/// What a review learned before it ended, kept outside the review future so that a
/// deadline or a cancel still reports attempts, usage and the session.
#[derive(Default)]
struct Progress {
    attempt_count: u32,
    tokens: TokenUsage,
    model_time: Duration,
    queue_wait: Duration,
    first_token: Option<Duration>,
    session: Option<SessionInfo>,
    attempts: Vec<AttemptRecord>,
    /// The attempt still waiting for the model: (turn id, started at).
    in_flight: Option<(String, i64)>,
}

/// How the review future ended.
enum Ended {
    Assessed(Assessment),
    Unparsable,
    ModelFailed,
}

/// The reviewer: judges approval requests in per-thread sessions.
pub struct Guardian {
    config: GuardianConfig,
    model: Arc<dyn ReviewModel>,
    sessions: SessionStore,
}

impl std::fmt::Debug for Guardian {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guardian")
            .field("config", &self.config)
            .finish()
    }
}

impl Guardian {
    /// A reviewer sampling `model` with `config`.
    pub fn new(config: GuardianConfig, model: Arc<dyn ReviewModel>) -> Self {
        Self {
            config,
            model,
            sessions: SessionStore::default(),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &GuardianConfig {
        &self.config
    }

    /// Reviews one request. Always returns: anything but the reviewer's verdict denies the
    /// action (fail closed), and `cancel` aborts it.
    pub async fn review(&self, request: ReviewRequest, cancel: CancellationToken) -> ReviewResult {
        let started = Instant::now();
        let started_at_ms = unix_ms();
        let progress = Mutex::new(Progress::default());
        let shape = request.action.shape();
        let (ended, truncated) = match request.action.prompt_json() {
            Err(_) => (Err(FailureReason::PromptBuildError), false),
            Ok((action_json, truncated)) => {
                let run = self.run(&request, &action_json, &progress, started);
                let ended = tokio::select! {
                    _ = cancel.cancelled() => Err(FailureReason::Cancelled),
                    r = tokio::time::timeout(self.config.review_timeout, run) => match r {
                        Err(_) => Err(FailureReason::Timeout),
                        Ok(Ended::Assessed(a)) => Ok(a),
                        Ok(Ended::Unparsable) => Err(FailureReason::ParseError),
                        Ok(Ended::ModelFailed) => Err(FailureReason::SessionError),
                    },
                };
                (ended, truncated)
            }
        };
        let mut p = match progress.into_inner() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        let completed_at_ms = unix_ms();
        if let Some((turn_id, started_at_ms)) = p.in_flight.take() {
            p.attempts.push(AttemptRecord {
                turn_id,
                started_at_ms,
                completed_at_ms,
                status: AttemptStatus::Interrupted,
                usage: None,
            });
        }
        let (decision, terminal_status, failure_reason) = match &ended {
            Ok(a) if a.outcome == Outcome::Allow => {
                (Decision::Approved, TerminalStatus::Approved, None)
            }
            Ok(_) => (Decision::Denied, TerminalStatus::Denied, None),
            Err(FailureReason::Cancelled) => (
                Decision::Aborted,
                TerminalStatus::Aborted,
                Some(FailureReason::Cancelled),
            ),
            Err(FailureReason::Timeout) => (
                Decision::Denied,
                TerminalStatus::TimedOut,
                Some(FailureReason::Timeout),
            ),
            Err(reason) => (
                Decision::Denied,
                TerminalStatus::FailedClosed,
                Some(*reason),
            ),
        };
        let assessment = ended.ok();
        let report = ReviewReport {
            review_id: request.review_id,
            parent_thread_id: request.parent_thread_id,
            turn_id: request.turn_id,
            target_item_id: request.target_item_id,
            source: request.source,
            reviewed_action: shape,
            reviewed_action_truncated: truncated,
            decision,
            terminal_status,
            failure_reason,
            attempt_count: p.attempt_count,
            risk_level: assessment.as_ref().map(|a| a.risk_level),
            user_authorization: assessment.as_ref().map(|a| a.user_authorization),
            outcome: assessment.as_ref().map(|a| a.outcome),
            session: p.session,
            model: self.config.model.clone(),
            model_provider_id: self.config.model_provider_id.clone(),
            reasoning_effort: self.config.reasoning_effort.clone(),
            review_timeout_ms: millis(self.config.review_timeout),
            tokens: p.tokens,
            timing: ReviewTiming {
                queue_wait_ms: millis(p.queue_wait),
                model_ms: millis(p.model_time),
                total_ms: millis(started.elapsed()),
                time_to_first_token_ms: p.first_token.map(millis),
            },
            attempts: p.attempts,
            started_at_ms,
            completed_at_ms,
        };
        ReviewResult {
            report,
            rationale: assessment.and_then(|a| a.rationale),
        }
    }

    /// The review inside its deadline: wait for the thread's session, then sample until an
    /// answer parses or the attempts run out. The session only keeps reviews that parsed, so a
    /// failed one is resent in full next time.
    async fn run(
        &self,
        request: &ReviewRequest,
        action_json: &str,
        progress: &Mutex<Progress>,
        started: Instant,
    ) -> Ended {
        let (handle, created) = self.sessions.get_or_create(&request.parent_thread_id);
        let mut session = handle.lock().await;
        let had_prior = session.assessed_reviews > 0;
        update(progress, |p| {
            p.queue_wait = started.elapsed();
            p.session = Some(SessionInfo {
                guardian_thread_id: session.guardian_thread_id.clone(),
                created_at_ms: session.created_at_ms,
                kind: SessionKind::TrunkReused,
                created,
                had_prior_review_context: had_prior,
            });
        });
        let mut messages = session.history.clone();
        if had_prior {
            // A shorter transcript means the parent's history was rewritten: send it whole.
            let seen = if request.transcript.len() >= session.transcript_seen {
                session.transcript_seen
            } else {
                0
            };
            messages.push(prompt::follow_up_message(
                &request.transcript[seen..],
                action_json,
            ));
        } else {
            messages.extend(prompt::opening_messages(
                &request.parent_thread_id,
                &request.transcript,
                action_json,
            ));
        }
        for attempt in 1..=self.config.max_attempts.max(1) {
            let turn_id = uuid::Uuid::now_v7().to_string();
            update(progress, |p| {
                p.attempt_count = attempt;
                p.in_flight = Some((turn_id.clone(), unix_ms()));
            });
            let sample = ReviewSample {
                guardian_thread_id: session.guardian_thread_id.clone(),
                parent_thread_id: request.parent_thread_id.clone(),
                messages: messages.clone(),
                output_schema: output_schema(),
                attempt,
                turn_id,
            };
            let asked = Instant::now();
            let reply = self.model.sample(sample).await;
            let (status, usage) = match &reply {
                Ok(r) => (AttemptStatus::Completed, Some(r.usage)),
                Err(_) => (AttemptStatus::Failed, None),
            };
            update(progress, |p| {
                p.model_time += asked.elapsed();
                if let Some((turn_id, started_at_ms)) = p.in_flight.take() {
                    p.attempts.push(AttemptRecord {
                        turn_id,
                        started_at_ms,
                        completed_at_ms: unix_ms(),
                        status,
                        usage,
                    });
                }
            });
            let reply = match reply {
                Ok(r) => r,
                Err(_) => return Ended::ModelFailed,
            };
            update(progress, |p| {
                // One response's usage, as Codex reports it (see `ReviewReport::tokens`).
                p.tokens = reply.usage;
                if p.first_token.is_none() {
                    p.first_token = reply
                        .time_to_first_token
                        .map(|t| asked.duration_since(started) + t);
                }
            });
            messages.push(prompt::assistant_message(&reply.text));
            match parse_assessment(&reply.text) {
                Ok(assessment) => {
                    session.history = messages;
                    session.transcript_seen = request.transcript.len();
                    session.assessed_reviews += 1;
                    return Ended::Assessed(assessment);
                }
                Err(_) => messages.push(prompt::retry_message()),
            }
        }
        Ended::Unparsable
    }
}

fn update(progress: &Mutex<Progress>, f: impl FnOnce(&mut Progress)) {
    let mut p = match progress.lock() {
        Ok(p) => p,
        Err(poisoned) => poisoned.into_inner(),
    };
    f(&mut p);
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "review_tests.rs"]
mod tests;
