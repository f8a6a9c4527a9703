use super::*;
use crate::action::SandboxPermissions;
use crate::prompt::Role;
use std::collections::VecDeque;

/// One scripted reviewer answer.
enum Script {
    Answer(&'static str),
    Fail,
    Hang,
}

/// A reviewer that plays a script and records what it was asked.
#[derive(Default)]
struct ScriptedModel {
    script: Mutex<VecDeque<Script>>,
    seen: Mutex<Vec<ReviewSample>>,
}

impl ScriptedModel {
    fn new(script: Vec<Script>) -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(script.into()),
            seen: Mutex::default(),
        })
    }

    fn seen(&self) -> Vec<ReviewSample> {
        self.seen.lock().expect("lock").clone()
    }
}

#[async_trait::async_trait]
impl ReviewModel for ScriptedModel {
    async fn sample(&self, sample: ReviewSample) -> Result<ModelReply, ReviewModelError> {
        self.seen.lock().expect("lock").push(sample);
        let next = self.script.lock().expect("lock").pop_front();
        match next {
            Some(Script::Answer(text)) => Ok(ModelReply {
                text: text.to_string(),
                usage: TokenUsage {
                    input_tokens: 100,
                    cached_input_tokens: 10,
                    cache_write_input_tokens: 0,
                    output_tokens: 7,
                    reasoning_output_tokens: 3,
                    total_tokens: 107,
                },
                time_to_first_token: Some(Duration::from_millis(5)),
            }),
            Some(Script::Fail) | None => Err(ReviewModelError("stream failed".into())),
            Some(Script::Hang) => std::future::pending().await,
        }
    }
}

fn guardian(model: Arc<ScriptedModel>) -> Guardian {
    let mut config = GuardianConfig::new("gpt-x", "my-provider");
    config.review_timeout = Duration::from_millis(200);
    Guardian::new(config, model)
}

fn request(review_id: &str, cmd: &str, transcript: Vec<TranscriptEntry>) -> ReviewRequest {
    ReviewRequest {
        review_id: review_id.into(),
        parent_thread_id: "thr-1".into(),
        turn_id: "turn-1".into(),
        target_item_id: Some("call_1".into()),
        source: ApprovalRequestSource::MainTurn,
        action: PlannedAction::Exec {
            command: vec!["/bin/bash".into(), "-lc".into(), cmd.into()],
            cwd: "/work".into(),
            justification: Some("needs the network".into()),
            sandbox_permissions: SandboxPermissions::RequireEscalated,
            tty: false,
        },
        transcript,
    }
}

fn said(text: &str) -> Vec<TranscriptEntry> {
    vec![TranscriptEntry::User(text.into())]
}

#[tokio::test]
async fn allow_approves_with_the_assessment_usage_and_a_new_session() {
    let model = ScriptedModel::new(vec![Script::Answer(
        r#"{"risk_level":"low","user_authorization":"high","outcome":"allow","rationale":"asked for"}"#,
    )]);
    let r = guardian(model.clone())
        .review(
            request("rev-1", "ls", said("list files")),
            CancellationToken::new(),
        )
        .await;
    assert!(r.approved());
    let rep = &r.report;
    assert_eq!(
        (rep.decision, rep.terminal_status, rep.failure_reason),
        (Decision::Approved, TerminalStatus::Approved, None)
    );
    assert_eq!(rep.attempt_count, 1);
    assert_eq!(rep.risk_level, Some(RiskLevel::Low));
    assert_eq!(rep.user_authorization, Some(UserAuthorization::High));
    assert_eq!(rep.outcome, Some(Outcome::Allow));
    assert_eq!(r.rationale.as_deref(), Some("asked for"));
    assert_eq!(rep.tokens.input_tokens, 100);
    assert_eq!(rep.tokens.total_tokens, 107);
    let session = rep.session.as_ref().expect("a session");
    // As Codex reports it: `trunk_reused` even on the review that created the session.
    assert_eq!(session.kind, SessionKind::TrunkReused);
    assert!(session.created);
    assert!(!session.had_prior_review_context);
    assert_eq!(r.explanation_for_model(), None);
    assert_eq!(
        r.warning_for_user().as_deref(),
        Some("Automatic approval review approved (risk: low, user authorization: high): asked for")
    );
    assert!(rep.timing.time_to_first_token_ms.is_some());
    assert!(rep.timing.total_ms >= rep.timing.model_ms);
    assert_eq!(rep.review_timeout_ms, 200);
    let seen = model.seen();
    assert_eq!(seen[0].parent_thread_id, "thr-1");
    assert_eq!(seen[0].output_schema, output_schema());
}

#[tokio::test]
async fn deny_declines_with_its_enums() {
    let model = ScriptedModel::new(vec![Script::Answer(
        r#"{"risk_level":"critical","user_authorization":"unknown","outcome":"deny"}"#,
    )]);
    let r = guardian(model)
        .review(
            request("rev-1", "rm -rf /", said("hi")),
            CancellationToken::new(),
        )
        .await;
    assert!(!r.approved());
    assert_eq!(
        (
            r.report.decision,
            r.report.terminal_status,
            r.report.failure_reason
        ),
        (Decision::Denied, TerminalStatus::Denied, None)
    );
    assert_eq!(r.report.risk_level, Some(RiskLevel::Critical));
    // The model is told who denied it and how risky it was, never that the user rejected it.
    let told = r.explanation_for_model().expect("an explanation");
    assert!(
        told.starts_with(
            "the automatic approval reviewer denied this action (risk: critical, user authorization: unknown)."
        ),
        "{told}"
    );
    assert!(!told.contains("user rejected") && !told.contains("by user"));
    assert!(
        !told.contains("Reviewer's reason"),
        "no rationale was given"
    );
}

#[tokio::test]
async fn a_denial_shows_the_model_and_the_user_the_rationale() {
    let model = ScriptedModel::new(vec![Script::Answer(
        r#"{"risk_level":"high","user_authorization":"low","outcome":"deny","rationale":"deletes the repo"}"#,
    )]);
    let r = guardian(model)
        .review(
            request("rev-1", "rm -rf .", said("hi")),
            CancellationToken::new(),
        )
        .await;
    let told = r.explanation_for_model().expect("an explanation");
    assert!(
        told.contains("(risk: high, user authorization: low)"),
        "{told}"
    );
    assert!(
        told.contains("Reviewer's reason: deletes the repo"),
        "{told}"
    );
    assert!(
        told.contains("Do not try to reach the same result"),
        "{told}"
    );
    assert_eq!(
        r.warning_for_user().as_deref(),
        Some("Automatic approval review denied (risk: high, user authorization: low): deletes the repo")
    );
}

#[tokio::test]
async fn malformed_answers_are_retried_then_fail_closed() {
    let model = ScriptedModel::new(vec![
        Script::Answer("I think this is fine."),
        Script::Answer("{\"outcome\":\"yes\"}"),
        Script::Answer("allow"),
    ]);
    let r = guardian(model.clone())
        .review(request("rev-1", "ls", said("hi")), CancellationToken::new())
        .await;
    assert!(!r.approved());
    let rep = &r.report;
    assert_eq!(
        (rep.decision, rep.terminal_status, rep.failure_reason),
        (
            Decision::Denied,
            TerminalStatus::FailedClosed,
            Some(FailureReason::ParseError)
        )
    );
    assert_eq!(rep.attempt_count, 3);
    assert_eq!((rep.risk_level, rep.outcome), (None, None));
    // Each attempt is its own reviewer turn, with its own usage.
    assert_eq!(rep.attempts.len(), 3);
    assert!(rep
        .attempts
        .iter()
        .all(|a| a.status == AttemptStatus::Completed && a.usage.is_some()));
    let turn_ids: Vec<&String> = rep.attempts.iter().map(|a| &a.turn_id).collect();
    assert_eq!(
        turn_ids,
        model.seen().iter().map(|s| &s.turn_id).collect::<Vec<_>>()
    );
    // Each retry shows the reviewer its bad answer and asks again.
    let seen = model.seen();
    assert_eq!(seen.len(), 3);
    let last = &seen[2].messages;
    assert_eq!(last[last.len() - 2].role, Role::Assistant);
    assert!(last[last.len() - 1].text.contains("not a valid assessment"));
    // One response's usage, as Codex reports it on the 3-attempt failure; not the sum.
    assert_eq!(rep.tokens.output_tokens, 7);
    assert_eq!(rep.tokens.total_tokens, 107);
    let told = r.explanation_for_model().expect("an explanation");
    assert!(
        told.starts_with("the automatic approval review failed closed (the reviewer gave no valid assessment in 3 attempts)"),
        "{told}"
    );
    assert!(!told.contains("risk:"), "no assessment, no risk: {told}");
}

#[tokio::test]
async fn a_late_valid_answer_is_accepted() {
    let model = ScriptedModel::new(vec![
        Script::Answer("not json"),
        Script::Answer(r#"{"outcome":"allow"}"#),
    ]);
    let r = guardian(model)
        .review(request("rev-1", "ls", said("hi")), CancellationToken::new())
        .await;
    assert!(r.approved());
    assert_eq!(r.report.attempt_count, 2);
}

#[tokio::test]
async fn no_answer_before_the_deadline_times_out_and_declines() {
    let model = ScriptedModel::new(vec![Script::Hang]);
    let r = guardian(model)
        .review(request("rev-1", "ls", said("hi")), CancellationToken::new())
        .await;
    assert!(!r.approved());
    let rep = &r.report;
    assert_eq!(
        (rep.decision, rep.terminal_status, rep.failure_reason),
        (
            Decision::Denied,
            TerminalStatus::TimedOut,
            Some(FailureReason::Timeout)
        )
    );
    assert_eq!(rep.attempt_count, 1);
    assert_eq!(rep.attempts.len(), 1);
    assert_eq!(rep.attempts[0].status, AttemptStatus::Interrupted);
    assert_eq!(rep.timing.time_to_first_token_ms, None);
    assert_eq!(rep.tokens, TokenUsage::default());
    assert!(rep.timing.total_ms >= 200);
    let told = r.explanation_for_model().expect("an explanation");
    assert!(
        told.contains("did not finish within its 200 ms deadline, so it failed closed"),
        "{told}"
    );
    assert!(r
        .warning_for_user()
        .expect("a warning")
        .contains("timed out"));
}

#[tokio::test]
async fn cancel_aborts_the_review() {
    let model = ScriptedModel::new(vec![Script::Hang]);
    let g = guardian(model);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        trigger.cancel();
    });
    let r = g.review(request("rev-1", "ls", said("hi")), cancel).await;
    assert!(!r.approved());
    assert_eq!(
        (
            r.report.decision,
            r.report.terminal_status,
            r.report.failure_reason
        ),
        (
            Decision::Aborted,
            TerminalStatus::Aborted,
            Some(FailureReason::Cancelled)
        )
    );
    assert!(r.report.timing.total_ms < 200);
    assert_eq!(
        r.warning_for_user(),
        None,
        "Codex warns of no cancelled review"
    );
}

#[tokio::test]
async fn a_model_failure_fails_closed_as_a_session_error() {
    let model = ScriptedModel::new(vec![Script::Fail]);
    let r = guardian(model)
        .review(request("rev-1", "ls", said("hi")), CancellationToken::new())
        .await;
    assert_eq!(
        (r.report.terminal_status, r.report.failure_reason),
        (
            TerminalStatus::FailedClosed,
            Some(FailureReason::SessionError)
        )
    );
    assert!(r.report.session.is_some());
    assert_eq!(r.report.attempts.len(), 1);
    assert_eq!(r.report.attempts[0].status, AttemptStatus::Failed);
    let told = r.explanation_for_model().expect("an explanation");
    assert!(
        told.contains("failed closed (the review session failed)"),
        "{told}"
    );
}

#[tokio::test]
async fn an_unbuildable_prompt_fails_closed_without_asking_the_model() {
    let model = ScriptedModel::new(vec![Script::Answer(r#"{"outcome":"allow"}"#)]);
    let huge = "x".repeat(100_000);
    let r = guardian(model.clone())
        .review(
            request("rev-1", &huge, said("hi")),
            CancellationToken::new(),
        )
        .await;
    assert!(!r.approved());
    assert_eq!(
        (
            r.report.decision,
            r.report.terminal_status,
            r.report.failure_reason
        ),
        (
            Decision::Denied,
            TerminalStatus::FailedClosed,
            Some(FailureReason::PromptBuildError)
        )
    );
    assert_eq!(r.report.attempt_count, 0);
    assert!(r.report.attempts.is_empty());
    assert_eq!(r.report.session, None);
    assert!(model.seen().is_empty());
    let told = r.explanation_for_model().expect("an explanation");
    assert!(
        told.contains("failed closed (the action was too large"),
        "{told}"
    );
}

#[tokio::test]
async fn a_second_review_continues_the_session_with_only_the_new_history() {
    let model = ScriptedModel::new(vec![
        Script::Answer(r#"{"outcome":"allow"}"#),
        Script::Answer(r#"{"outcome":"deny","risk_level":"high"}"#),
    ]);
    let g = guardian(model.clone());
    let first = g
        .review(
            request("rev-1", "ls", said("FIRST-REQUEST")),
            CancellationToken::new(),
        )
        .await;
    let mut transcript = said("FIRST-REQUEST");
    transcript.push(TranscriptEntry::User("SECOND-REQUEST".into()));
    let second = g
        .review(
            request("rev-2", "rm x", transcript),
            CancellationToken::new(),
        )
        .await;
    let (s1, s2) = (
        first.report.session.expect("session"),
        second.report.session.expect("session"),
    );
    assert_eq!(s1.guardian_thread_id, s2.guardian_thread_id);
    assert_eq!(
        (s1.kind, s1.created, s1.had_prior_review_context),
        (SessionKind::TrunkReused, true, false)
    );
    assert_eq!(
        (s2.kind, s2.created, s2.had_prior_review_context),
        (SessionKind::TrunkReused, false, true)
    );
    assert_eq!(second.report.terminal_status, TerminalStatus::Denied);
    let seen = model.seen();
    let second_messages = &seen[1].messages;
    // The first review stays as context: its prompt and its assessment.
    assert_eq!(&second_messages[..3], &seen[0].messages[..]);
    assert_eq!(second_messages[3].text, r#"{"outcome":"allow"}"#);
    let follow_up = &second_messages[4].text;
    assert!(follow_up.contains("SECOND-REQUEST") && !follow_up.contains("FIRST-REQUEST"));
    assert_eq!(second_messages.len(), 5);
}

#[tokio::test]
async fn a_failed_review_leaves_no_context_behind() {
    let model = ScriptedModel::new(vec![Script::Fail, Script::Answer(r#"{"outcome":"allow"}"#)]);
    let g = guardian(model.clone());
    g.review(request("rev-1", "ls", said("hi")), CancellationToken::new())
        .await;
    let r = g
        .review(request("rev-2", "ls", said("hi")), CancellationToken::new())
        .await;
    let s = r.report.session.expect("session");
    assert_eq!(
        (s.kind, s.created, s.had_prior_review_context),
        (SessionKind::TrunkReused, false, false)
    );
    assert_eq!(model.seen()[1].messages.len(), 3);
}

#[tokio::test]
async fn reviews_of_one_thread_queue_behind_each_other() {
    let model = ScriptedModel::new(vec![Script::Hang, Script::Answer(r#"{"outcome":"allow"}"#)]);
    let g = Arc::new(guardian(model));
    let first = {
        let g = g.clone();
        tokio::spawn(async move {
            g.review(request("rev-1", "ls", said("hi")), CancellationToken::new())
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = g
        .review(request("rev-2", "ls", said("hi")), CancellationToken::new())
        .await;
    let first = first.await.expect("joined");
    assert_eq!(first.report.terminal_status, TerminalStatus::TimedOut);
    // The second waited for the first's deadline, then ran within what was left of its own.
    assert!(second.report.timing.queue_wait_ms >= 150);
    assert_eq!(second.report.terminal_status, TerminalStatus::Approved);
}
