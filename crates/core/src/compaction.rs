//! A manual compaction (`thread/compact/start`): a turn of its own that sends the history in one
//! ordinary streamed request with no tools, asking for a handoff summary. The summary then
//! replaces the model history, so the next request starts from it.
//!
//! Notifications, as Codex sends them: `thread/status/changed` (active), `turn/started`,
//! `item/started` (`contextCompaction`), `thread/tokenUsage/updated`, `item/completed`,
//! `thread/status/changed` (idle), `turn/completed`. The turn takes no steered input.
//!
//! Hooks: PreCompact runs after `turn/started` (a `continue: false` answer gates the
//! compaction off, with a warning); PostCompact runs once the summary replaced the history.

use crate::clock::{new_id, now_ms};
use crate::event_sink::{CompactionReport, LifecycleReport, ThreadEventSink};
use crate::hook_dispatch::{run_event, EventHooks, EventRequest, HookSite};
use crate::model::{
    ModelClient, ModelError, ModelRequest, RequestKind, RequestMetadata, ResponseEvent,
    ResponseItem,
};
use crate::rollout::RolloutLine;
use crate::thread::{LoadedThread, TurnControl};
use crate::turn_emitter::TurnEmitter;
use crate::turn_runner::{InterruptHandshake, RESPONSE_GATE_DEADLINE};
use futures::StreamExt;
use std::sync::Arc;
use tally_hooks::HookPayload;
use tally_protocol::server_notification::*;
use tally_protocol::types::{ThreadItem, TokenUsageBreakdown, TurnStatus};
use tally_protocol::ServerNotification;
use tokio::sync::{mpsc, oneshot};

/// The final user message of a compaction request.
pub(crate) const COMPACTION_PROMPT: &str = "You are performing a context checkpoint compaction. \
Create a handoff summary for another language model that will resume the task. Include the \
current progress and key decisions, important context, constraints and user preferences, what \
remains to be done, and any data or references needed to continue. Be concise and structured.";

/// What the summary is introduced with when it becomes the new history.
pub(crate) const SUMMARY_PREFIX: &str = "Another language model started to solve this problem \
and produced a summary of its thinking process. Use it to build on the work already done:";

/// What starts a compaction here: always a client's `thread/compact/start`.
const TRIGGER: &str = "manual";

/// How the compaction ended.
enum Ending {
    Summarized(String),
    Interrupted(Option<InterruptHandshake>),
    Failed(ModelError),
}

/// Runs one compaction turn to its end.
pub(crate) struct CompactionRunner {
    thread: Arc<LoadedThread>,
    sink: Arc<dyn ThreadEventSink>,
    model: Arc<dyn ModelClient>,
    turn_id: String,
    control: mpsc::Receiver<TurnControl>,
    started_at_ms: i64,
    hooks: EventHooks,
}

impl CompactionRunner {
    pub fn new(
        thread: Arc<LoadedThread>,
        sink: Arc<dyn ThreadEventSink>,
        model: Arc<dyn ModelClient>,
        turn_id: String,
        control: mpsc::Receiver<TurnControl>,
    ) -> Self {
        Self {
            thread,
            sink,
            model,
            turn_id,
            control,
            started_at_ms: now_ms(),
            hooks: EventHooks::none(),
        }
    }

    /// Sets the hooks the compaction runs (PreCompact, PostCompact).
    pub fn with_hooks(mut self, hooks: EventHooks) -> Self {
        self.hooks = hooks;
        self
    }

    /// Runs the compaction; `gate` fires once the `{}` response is sent.
    pub async fn run(mut self, gate: oneshot::Receiver<()>) {
        self.emitter().start_turn(gate, self.started_at_ms).await;
        if let Some(reason) = self.pre_compact().await {
            // Gated off by a hook: no compaction happened, so there is no item and nothing to
            // report to analytics; the turn simply ends.
            let mut message = "PreCompact hook stopped the compaction".to_string();
            if let Some(r) = reason {
                message.push_str(": ");
                message.push_str(&r);
            }
            self.warn(message).await;
            let turn = self.emitter().turn_view(
                self.started_at_ms,
                TurnStatus::Completed,
                Vec::new(),
                None,
            );
            self.emitter().finish_turn(turn).await;
            return;
        }
        let item = ThreadItem::ContextCompaction { id: new_id() };
        self.emitter().start_item(item.clone()).await;
        let tokens_before = self.thread.state().token_usage.last.total_tokens;
        let ending = self.sample().await;
        // The item closes whatever happened, so clients never see it dangling.
        self.emitter().complete_item(item).await;
        let (status, error, tokens_after) = match ending {
            Ending::Summarized(summary) => {
                self.replace_history(&summary);
                self.post_compact(summary).await;
                let after = self.thread.state().token_usage.last.total_tokens;
                (TurnStatus::Completed, None, after)
            }
            Ending::Interrupted(handshake) => {
                self.emitter().emit_usage().await;
                if let Some(h) = handshake {
                    let _ = h.stopped.send(());
                    let _ = tokio::time::timeout(RESPONSE_GATE_DEADLINE, h.proceed).await;
                }
                (TurnStatus::Interrupted, None, tokens_before)
            }
            Ending::Failed(e) => {
                let error = self.emitter().emit_model_error(&e, false).await;
                (TurnStatus::Failed, Some(error), tokens_before)
            }
        };
        let turn = self
            .emitter()
            .turn_view(self.started_at_ms, status, Vec::new(), error.clone());
        self.sink
            .lifecycle(LifecycleReport::Compaction(CompactionReport {
                thread_id: self.thread.id.clone(),
                turn_id: self.turn_id.clone(),
                status,
                error: error.and_then(|e| e.codex_error_info),
                active_context_tokens_before: tokens_before,
                active_context_tokens_after: tokens_after,
                started_at_ms: self.started_at_ms,
                completed_at_ms: now_ms(),
            }))
            .await;
        self.emitter().finish_turn(turn).await;
    }

    /// PreCompact; `Some(stop reason)` when a hook answered `continue: false`.
    async fn pre_compact(&self) -> Option<Option<String>> {
        let payload = HookPayload::PreCompact {
            trigger: TRIGGER.into(),
        };
        let outcomes = self.run_hooks(payload).await;
        let mut stopped = outcomes
            .into_iter()
            .filter(|o| o.status == tally_hooks::HookRunStatus::Stopped);
        let first = stopped.next()?;
        Some(first.reason.or_else(|| stopped.find_map(|o| o.reason)))
    }

    /// PostCompact: the compaction is done, so a `continue: false` can only be reported.
    async fn post_compact(&self, summary: String) {
        let payload = HookPayload::PostCompact {
            trigger: TRIGGER.into(),
            compaction_summary: Some(summary.trim().to_string()),
        };
        let outcomes = self.run_hooks(payload).await;
        if let Some(o) = outcomes
            .into_iter()
            .find(|o| o.status == tally_hooks::HookRunStatus::Stopped)
        {
            let mut message = "PostCompact hook stopped execution".to_string();
            if let Some(r) = o.reason {
                message.push_str(": ");
                message.push_str(&r);
            }
            self.warn(message).await;
        }
    }

    async fn run_hooks(&self, payload: HookPayload) -> Vec<tally_hooks::HookOutcome> {
        let site = HookSite {
            thread: &self.thread,
            sink: &self.sink,
            turn_id: Some(self.turn_id.clone()),
        };
        let request = EventRequest {
            payload,
            run_suffix: None,
            subjects: &[],
            timeout_cap: None,
        };
        run_event(&self.hooks, &site, request).await
    }

    async fn warn(&self, message: String) {
        self.emitter()
            .emit(ServerNotification::Warning(WarningNotification {
                message,
                thread_id: Some(self.thread.id.clone()),
            }))
            .await;
    }

    /// Streams the compaction request, retrying a broken stream as a turn would.
    async fn sample(&mut self) -> Ending {
        let mut retries = 0u32;
        loop {
            let error = match self.stream_once().await {
                Ok(ending) => return ending,
                Err(e) => e,
            };
            if !error.is_retryable() || retries >= self.model.stream_max_retries() {
                return Ending::Failed(error);
            }
            retries += 1;
            self.emitter().emit_model_error(&error, true).await;
            let wait = crate::model::backoff_delay(retries - 1);
            let sleep = tokio::time::sleep(wait);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    ctl = self.control.recv() => if let Some(ending) = on_control(ctl) {
                        return ending;
                    },
                }
            }
        }
    }

    /// One request: the summary text, or how it stopped; `Err` is a failure worth a retry check.
    async fn stream_once(&mut self) -> Result<Ending, ModelError> {
        let request = self.build_request();
        let model = self.model.clone();
        let open = model.stream(request);
        tokio::pin!(open);
        let opened = loop {
            tokio::select! {
                r = &mut open => break r,
                ctl = self.control.recv() => if let Some(ending) = on_control(ctl) {
                    return Ok(ending);
                },
            }
        };
        let mut stream = opened?;
        let mut streamed = String::new();
        let mut finished: Option<String> = None;
        loop {
            tokio::select! {
                ev = stream.next() => match ev {
                    None => return Err(ModelError::StreamDisconnected("stream ended".into())),
                    Some(Err(e)) => return Err(e),
                    Some(Ok(ResponseEvent::Completed { usage, .. })) => {
                        if let Some(u) = usage {
                            self.record_usage(u).await;
                        }
                        let summary = finished.unwrap_or(streamed);
                        if summary.trim().is_empty() {
                            return Ok(Ending::Failed(ModelError::ResponseFailed(
                                "the compaction produced no summary".into(),
                            )));
                        }
                        return Ok(Ending::Summarized(summary));
                    }
                    Some(Ok(ResponseEvent::OutputTextDelta { delta, .. })) => streamed.push_str(&delta),
                    Some(Ok(ResponseEvent::OutputItemDone(
                        item @ ResponseItem::Message { .. },
                    ))) => {
                        if let Some(text) = item.message_text() {
                            finished.get_or_insert_with(String::new).push_str(&text);
                        }
                    }
                    Some(Ok(_)) => {}
                },
                ctl = self.control.recv() => if let Some(ending) = on_control(ctl) {
                    return Ok(ending);
                },
            }
        }
    }

    fn build_request(&self) -> ModelRequest {
        let mut state = self.thread.state();
        state.window += 1;
        let s = &state.settings;
        let mut input = state.history.clone();
        input.push(ResponseItem::text_message("user", COMPACTION_PROMPT));
        ModelRequest {
            model: s.model.clone(),
            prefix: crate::prompt::prefix_items(s),
            input,
            tools: Vec::new(),
            reasoning_effort: s.reasoning_effort.clone(),
            output_schema: None,
            metadata: RequestMetadata {
                thread_id: self.thread.id.clone(),
                turn_id: self.turn_id.clone(),
                originator: s.originator.clone(),
                user_agent: s.user_agent.clone(),
                window: state.window,
                subagent: None,
                request_kind: RequestKind::Compaction,
            },
        }
    }

    /// The summary becomes the whole model history, in memory and in the rollout.
    fn replace_history(&self, summary: &str) {
        let replacement = vec![ResponseItem::text_message(
            "user",
            format!("{SUMMARY_PREFIX}\n\n{}", summary.trim()),
        )];
        {
            let mut state = self.thread.state();
            state.history = replacement.clone();
            // Earlier turns' history is gone: they all start at the beginning now (as on reload).
            for (_, mark) in &mut state.history_marks {
                *mark = 0;
            }
        }
        self.thread
            .persist(&[RolloutLine::Compacted { replacement }]);
    }

    async fn record_usage(&mut self, last: TokenUsageBreakdown) {
        self.thread.add_token_usage(last);
        self.emitter().emit_usage().await;
    }

    /// Sends this turn's notifications.
    fn emitter(&self) -> TurnEmitter<'_> {
        TurnEmitter::new(&self.thread, &*self.sink, &self.turn_id)
    }
}

/// What a control message means for a compaction: an interrupt stops it; steers never reach it
/// (`turn/steer` is refused while it runs), so one that somehow did is dropped.
fn on_control(ctl: Option<TurnControl>) -> Option<Ending> {
    match ctl {
        Some(TurnControl::Interrupt { stopped, proceed }) => {
            Some(Ending::Interrupted(Some(InterruptHandshake {
                stopped,
                proceed,
            })))
        }
        Some(TurnControl::Steer { .. }) => {
            tracing::warn!("dropped input steered into a compaction turn");
            None
        }
        None => Some(Ending::Interrupted(None)),
    }
}
