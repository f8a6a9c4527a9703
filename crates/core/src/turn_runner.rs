//! Runs one turn: streams the model, turns its events into items and notifications in the
//! order Codex sends them, and handles steer, interrupt, retries and failure.

use crate::clock::{new_id, now_ms};
use crate::event_sink::ThreadEventSink;
use crate::model::{
    ModelClient, ModelError, ModelRequest, RequestMetadata, ResponseEvent, ResponseItem,
};
use crate::rollout::RolloutLine;
use crate::thread::{LoadedThread, TurnControl};
use crate::tools::turn_diff::TurnDiff;
use crate::turn_emitter::TurnEmitter;
use crate::turn_items::InFlightItems;
use crate::turn_profile::TurnProfile;
use futures::StreamExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally_protocol::types::{CodexErrorInfo, ThreadItem, TurnError, TurnStatus, UserInput};
use tokio::sync::{mpsc, oneshot};

/// How long a turn waits for its `turn/start` (or `turn/interrupt`) response to go out first.
pub(crate) const RESPONSE_GATE_DEADLINE: Duration = Duration::from_secs(5);

/// Everything a running turn needs.
pub(crate) struct TurnRunner {
    pub thread: Arc<LoadedThread>,
    pub sink: Arc<dyn ThreadEventSink>,
    pub model: Arc<dyn ModelClient>,
    pub turn_id: String,
    pub control: mpsc::Receiver<TurnControl>,
    pub output_schema: Option<serde_json::Value>,
    /// Whether commands can be confined with Landlock.
    landlock: bool,
    started_at_ms: i64,
    /// Where the turn's time goes, for the `TurnProfile` analytics fact.
    profile: TurnProfile,
    last_agent_message: Option<ThreadItem>,
    /// Input steered in while a tool ran; recorded once the tool's output is in history.
    deferred_steers: Vec<(Vec<UserInput>, Option<String>)>,
    /// Files the turn's patches changed, for `turn/diff/updated`.
    turn_diff: TurnDiff,
    /// Judges approvals when the thread's reviewer is `auto_review`.
    guardian: Option<Arc<tally_guardian::Guardian>>,
    /// The hooks this turn may run.
    hooks: TurnHooks,
    /// A review turn (`review/start`): what it reviews. Its agent messages are the review, sent
    /// once at the end (`exitedReviewMode`, then one agent message) rather than as they stream.
    review: Option<String>,
}

#[path = "turn_tools.rs"]
mod turn_tools;
use turn_tools::ToolFlow;

#[path = "turn_hooks.rs"]
mod turn_hooks;
use turn_hooks::PreTool;
pub(crate) use turn_hooks::TurnHooks;

/// How a turn ended.
enum TurnOutcome {
    Completed,
    Interrupted(Option<InterruptHandshake>),
    Failed(ModelError),
}

/// The `turn/interrupt` exchange: tell the handler the turn stopped, then wait for its response
/// to go out before `turn/completed`.
pub(crate) struct InterruptHandshake {
    pub stopped: oneshot::Sender<()>,
    pub proceed: oneshot::Receiver<()>,
}

/// What handling one stream event leads to.
enum EventFlow {
    Continue { follow_up: bool },
    Stop(StreamOutcome),
}

/// How one model stream ended.
enum StreamOutcome {
    Completed { follow_up: bool },
    Steered,
    Interrupted(Option<InterruptHandshake>),
    Failed(ModelError),
}

impl TurnRunner {
    pub fn new(
        thread: Arc<LoadedThread>,
        sink: Arc<dyn ThreadEventSink>,
        model: Arc<dyn ModelClient>,
        turn_id: String,
        control: mpsc::Receiver<TurnControl>,
        output_schema: Option<serde_json::Value>,
        landlock: bool,
    ) -> Self {
        Self {
            thread,
            sink,
            model,
            turn_id,
            control,
            output_schema,
            landlock,
            started_at_ms: now_ms(),
            profile: TurnProfile::new(Instant::now()),
            last_agent_message: None,
            deferred_steers: Vec::new(),
            turn_diff: TurnDiff::default(),
            guardian: None,
            hooks: TurnHooks::none(),
            review: None,
        }
    }

    /// Lets Guardian judge this turn's approvals when the thread asks for automatic review.
    pub fn with_guardian(mut self, guardian: Arc<tally_guardian::Guardian>) -> Self {
        self.guardian = Some(guardian);
        self
    }

    /// Makes this a review of `review` (what is reviewed), when given.
    pub fn with_review(mut self, review: Option<String>) -> Self {
        self.review = review;
        self
    }

    /// Sets the hooks this turn runs.
    pub fn with_hooks(mut self, hooks: TurnHooks) -> Self {
        self.hooks = hooks;
        self
    }

    /// Runs the turn to its end; `gate` fires once the `turn/start` response is sent.
    pub async fn run(
        mut self,
        input: Vec<UserInput>,
        client_id: Option<String>,
        gate: oneshot::Receiver<()>,
    ) {
        self.emitter().start_turn(gate, self.started_at_ms).await;
        if let Some(label) = self.review.clone() {
            // Ids of their own: a turn's items are told apart (and paged) by id.
            self.emit_whole_item(ThreadItem::EnteredReviewMode {
                id: new_id(),
                review: label,
            })
            .await;
        }
        // A SessionStart or UserPromptSubmit hook that stops or blocks ends the turn before
        // the prompt is recorded.
        if !self.prompt_hooks(&input).await {
            self.finish(TurnOutcome::Completed).await;
            return;
        }
        self.record_user_message(input, client_id).await;
        self.flush_hook_context();
        let outcome = self.sample_until_done().await;
        self.finish(outcome).await;
    }

    async fn sample_until_done(&mut self) -> TurnOutcome {
        let mut retries = 0u32;
        let mut retrying = false;
        loop {
            let outcome = self.sample(retrying).await;
            retrying = false;
            match outcome {
                StreamOutcome::Completed { follow_up: true } | StreamOutcome::Steered => {
                    retries = 0
                }
                // A Stop hook that blocks keeps the turn going with its reason as the prompt.
                StreamOutcome::Completed { follow_up: false }
                    if self.stop_hooks_continue().await =>
                {
                    retries = 0
                }
                StreamOutcome::Completed { follow_up: false } => match self.take_pending_or_close()
                {
                    // Input that arrived as the model finished continues the turn.
                    Some(TurnControl::Steer { input, client_id }) => {
                        self.record_user_message(input, client_id).await;
                        retries = 0;
                    }
                    Some(TurnControl::Interrupt { stopped, proceed }) => {
                        return TurnOutcome::Interrupted(Some(InterruptHandshake {
                            stopped,
                            proceed,
                        }))
                    }
                    None => return TurnOutcome::Completed,
                },
                StreamOutcome::Interrupted(h) => return TurnOutcome::Interrupted(h),
                StreamOutcome::Failed(e) => {
                    if !e.is_retryable() || retries >= self.model.stream_max_retries() {
                        return TurnOutcome::Failed(e);
                    }
                    retries += 1;
                    retrying = true;
                    self.emitter().emit_model_error(&e, true).await;
                    let wait = crate::model::backoff_delay(retries - 1);
                    if let Some(h) = self.wait_or_control(wait).await {
                        return h;
                    }
                }
            }
        }
    }

    /// Takes a queued steer or interrupt; when none is queued, stops reading input in the same
    /// critical section, so a steer is either seen here or refused (never accepted and lost),
    /// and a `turn/start` waits for this turn to close.
    fn take_pending_or_close(&mut self) -> Option<TurnControl> {
        let _state = self.thread.state();
        match self.control.try_recv() {
            Ok(ctl) => Some(ctl),
            Err(_) => {
                self.control.close();
                None
            }
        }
    }

    /// Sleeps for `wait` unless an interrupt arrives; a steer during the wait is recorded.
    async fn wait_or_control(&mut self, wait: Duration) -> Option<TurnOutcome> {
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return None,
                ctl = self.control.recv() => match ctl {
                    Some(TurnControl::Steer { input, client_id }) => {
                        self.record_user_message(input, client_id).await
                    }
                    Some(TurnControl::Interrupt { stopped, proceed }) => {
                        return Some(TurnOutcome::Interrupted(Some(InterruptHandshake { stopped, proceed })))
                    }
                    None => return Some(TurnOutcome::Interrupted(None)),
                },
            }
        }
    }

    fn build_request(&self) -> ModelRequest {
        let mut state = self.thread.state();
        state.window += 1;
        // Every call so far has its output: a person's shell command can join the history.
        self.thread.merge_pending_history(&mut state);
        let s = &state.settings;
        ModelRequest {
            model: s.model.clone(),
            prefix: crate::prompt::prefix_items(s),
            input: state.history.clone(),
            tools: crate::tools::spec::tool_definitions(&s.dynamic_tools, s.request_user_input),
            reasoning_effort: s.reasoning_effort.clone(),
            output_schema: self.output_schema.clone(),
            metadata: RequestMetadata {
                thread_id: self.thread.id.clone(),
                turn_id: self.turn_id.clone(),
                originator: s.originator.clone(),
                user_agent: s.user_agent.clone(),
                window: state.window,
                subagent: None,
                request_kind: crate::model::RequestKind::Turn,
            },
        }
    }

    /// One sampling, timed for the turn's profile; `retry` when it retries a broken one.
    async fn sample(&mut self, retry: bool) -> StreamOutcome {
        self.profile.sampling_started(Instant::now(), retry);
        let request_retries = AtomicU32::new(0);
        let outcome = self.stream_once(&request_retries).await;
        self.profile
            .request_retries(request_retries.load(Ordering::Relaxed));
        self.profile.sampling_ended(Instant::now());
        outcome
    }

    async fn stream_once(&mut self, request_retries: &AtomicU32) -> StreamOutcome {
        let request = self.build_request();
        self.profile.tools_offered(&request.tools);
        let model = self.model.clone();
        let opened = tokio::select! {
            r = model.stream_counting_retries(request, request_retries) => r,
            ctl = self.control.recv() => return self.on_control(ctl, &mut InFlightItems::default()).await,
        };
        let mut stream = match opened {
            Ok(s) => s,
            Err(e) => return StreamOutcome::Failed(e),
        };
        let mut items = InFlightItems::default();
        let mut follow_up = false;
        loop {
            tokio::select! {
                ev = stream.next() => match ev {
                    None => {
                        self.abandon(&mut items).await;
                        return StreamOutcome::Failed(ModelError::StreamDisconnected("stream ended".into()));
                    }
                    Some(Err(e)) => {
                        self.abandon(&mut items).await;
                        return StreamOutcome::Failed(e);
                    }
                    Some(Ok(ResponseEvent::Completed { usage, .. })) => {
                        if let Some(u) = usage {
                            self.record_usage(u).await;
                        }
                        return StreamOutcome::Completed { follow_up };
                    }
                    Some(Ok(ev)) => match self.on_event(ev, &mut items).await {
                        EventFlow::Continue { follow_up: f } => follow_up |= f,
                        EventFlow::Stop(outcome) => {
                            self.abandon(&mut items).await;
                            return outcome;
                        }
                    },
                },
                ctl = self.control.recv() => return self.on_control(ctl, &mut items).await,
            }
        }
    }

    async fn on_control(
        &mut self,
        ctl: Option<TurnControl>,
        items: &mut InFlightItems,
    ) -> StreamOutcome {
        self.abandon(items).await;
        match ctl {
            Some(TurnControl::Steer { input, client_id }) => {
                self.record_user_message(input, client_id).await;
                StreamOutcome::Steered
            }
            Some(TurnControl::Interrupt { stopped, proceed }) => {
                StreamOutcome::Interrupted(Some(InterruptHandshake { stopped, proceed }))
            }
            None => StreamOutcome::Interrupted(None),
        }
    }

    /// Handles one stream event: whether the model needs a follow-up, or how the turn stops.
    async fn on_event(&mut self, ev: ResponseEvent, items: &mut InFlightItems) -> EventFlow {
        let notes = items.apply(&ev, &self.thread.id, &self.turn_id);
        for n in notes {
            if self.review.is_some() && is_agent_message_note(&n) {
                continue;
            }
            self.emitter().emit(n).await;
        }
        let ResponseEvent::OutputItemDone(done) = ev else {
            return EventFlow::Continue { follow_up: false };
        };
        if let ResponseItem::FunctionCall {
            call_id,
            name,
            arguments,
            ..
        } = &done
        {
            self.push_history(vec![done.clone()]);
            self.profile.tool_started(Instant::now());
            let flow = match self.pre_tool_use(call_id, name, arguments).await {
                PreTool::Blocked(output) => ToolFlow::Output(output),
                PreTool::Run(arguments) => match self.run_tool(call_id, name, &arguments).await {
                    ToolFlow::Output(output) => ToolFlow::Output(
                        self.post_tool_use(call_id, name, &arguments, output).await,
                    ),
                    interrupted => interrupted,
                },
            };
            let (output, stop) = match flow {
                ToolFlow::Output(output) => (output, None),
                ToolFlow::Interrupted { output, handshake } => (output, Some(handshake)),
            };
            // Every call gets an output, so the history stays valid for the next request.
            self.push_history(vec![ResponseItem::FunctionCallOutput {
                call_id: call_id.clone(),
                output,
            }]);
            self.profile.tool_ended(Instant::now());
            // Accepted steers are recorded even when the turn stops here: input is never lost.
            for (input, client_id) in std::mem::take(&mut self.deferred_steers) {
                self.record_user_message(input, client_id).await;
            }
            if let Some(handshake) = stop {
                return EventFlow::Stop(StreamOutcome::Interrupted(handshake));
            }
            return EventFlow::Continue { follow_up: true };
        }
        self.push_history(vec![done.clone()]);
        if let Some(item) = items.take_completed(&done) {
            self.complete_item(item).await;
        }
        EventFlow::Continue { follow_up: false }
    }

    /// Completes items a broken or abandoned stream left open, so clients never see a dangling item.
    async fn abandon(&mut self, items: &mut InFlightItems) {
        for item in items.drain_open() {
            self.complete_item(item).await;
        }
    }

    async fn complete_item(&mut self, item: ThreadItem) {
        if matches!(item, ThreadItem::AgentMessage { .. }) {
            self.last_agent_message = Some(item.clone());
            if self.review.is_some() {
                return;
            }
        }
        self.emitter().complete_item(item).await;
    }

    /// Sends an item that starts and ends at once.
    async fn emit_whole_item(&self, item: ThreadItem) {
        self.emitter().start_item(item.clone()).await;
        self.emitter().complete_item(item).await;
    }

    /// A review's end: `exitedReviewMode` with its text (the last agent message, or why there
    /// is none), then that text as the turn's agent message, which is what clients show (as
    /// Codex does).
    async fn exit_review(&mut self, status: TurnStatus) -> Option<ThreadItem> {
        self.review.as_ref()?;
        let text = match (status, self.last_agent_message.take()) {
            (TurnStatus::Completed, Some(ThreadItem::AgentMessage { text, .. })) => text,
            (TurnStatus::Completed, _) => "The review ended without findings.".to_owned(),
            (TurnStatus::Interrupted, _) => "The review was interrupted.".to_owned(),
            _ => "The review failed.".to_owned(),
        };
        self.emit_whole_item(ThreadItem::ExitedReviewMode {
            id: new_id(),
            review: text.clone(),
        })
        .await;
        let message = ThreadItem::AgentMessage {
            id: new_id(),
            text,
            phase: None,
        };
        self.emit_whole_item(message.clone()).await;
        Some(message)
    }

    async fn record_user_message(&mut self, input: Vec<UserInput>, client_id: Option<String>) {
        let item = ThreadItem::UserMessage {
            id: new_id(),
            content: input.clone(),
            client_id,
        };
        self.emitter().start_item(item.clone()).await;
        self.push_history(vec![crate::prompt::user_input_item(&input)]);
        self.complete_item(item).await;
    }

    fn push_history(&self, items: Vec<ResponseItem>) {
        let lines: Vec<RolloutLine> = items
            .iter()
            .cloned()
            .map(RolloutLine::ResponseItem)
            .collect();
        self.thread.persist(&lines);
        self.thread.state().history.extend(items);
    }

    async fn record_usage(&mut self, last: tally_protocol::types::TokenUsageBreakdown) {
        self.thread.add_token_usage(last);
        self.emitter().emit_usage().await;
    }

    async fn finish(mut self, outcome: TurnOutcome) {
        // No input is read from here on: closed under the lock steers are sent under, so a later
        // steer is refused and a later turn/start waits for this turn to close and starts anew,
        // instead of joining a turn that would drop its input.
        {
            let _state = self.thread.state();
            self.control.close();
        }
        let mut unread = 0usize;
        while let Ok(ctl) = self.control.try_recv() {
            unread += usize::from(matches!(ctl, TurnControl::Steer { .. }));
        }
        if unread > 0 {
            tracing::warn!(unread, turn_id = %self.turn_id, "input sent as the turn ended was not used");
        }
        // A request still pending when the turn ends is withdrawn; clients close its dialog.
        self.sink
            .resolve_turn_requests(&self.thread.id, &self.turn_id)
            .await;
        {
            let mut state = self.thread.state();
            state.waiting_on_approval = false;
            state.waiting_on_user_input = false;
        }
        let (status, error) = match outcome {
            TurnOutcome::Completed => (TurnStatus::Completed, None),
            TurnOutcome::Interrupted(handshake) => {
                self.emitter().emit_usage().await;
                if let Some(h) = handshake {
                    let _ = h.stopped.send(());
                    let _ = tokio::time::timeout(RESPONSE_GATE_DEADLINE, h.proceed).await;
                }
                // After the `turn/interrupt` response, so a slow hook cannot delay it.
                self.interrupt_hooks().await;
                (TurnStatus::Interrupted, None)
            }
            TurnOutcome::Failed(e) => {
                let error = self.emitter().emit_model_error(&e, false).await;
                (TurnStatus::Failed, Some(error))
            }
        };
        let review = self.exit_review(status).await;
        let items = match (status, review.or(self.last_agent_message.take())) {
            (TurnStatus::Completed, Some(msg)) => vec![msg],
            _ => vec![],
        };
        let profile = self.profile.finish(Instant::now());
        let turn = self
            .emitter()
            .turn_view(self.started_at_ms, status, items, error);
        self.sink
            .lifecycle(crate::event_sink::LifecycleReport::TurnProfile {
                thread_id: self.thread.id.clone(),
                turn_id: self.turn_id.clone(),
                profile,
            })
            .await;
        if !self.turn_diff.is_empty() {
            // Accepted-line analytics need the repository, computed here: the reducer does no I/O.
            let cwd = self.thread.state().settings.cwd.clone();
            let repo_hash = crate::repo_hash::repo_hash(std::path::Path::new(&cwd));
            self.sink
                .lifecycle(crate::event_sink::LifecycleReport::TurnRepository {
                    thread_id: self.thread.id.clone(),
                    turn_id: self.turn_id.clone(),
                    repo_hash,
                })
                .await;
        }
        self.emitter().finish_turn(turn).await;
    }

    /// Sends this turn's notifications.
    fn emitter(&self) -> TurnEmitter<'_> {
        TurnEmitter::new(&self.thread, &*self.sink, &self.turn_id)
    }
}

/// The client-facing error for a model failure.
pub(crate) fn turn_error(e: &ModelError) -> TurnError {
    let status = e.http_status();
    let info = match e {
        ModelError::Http { status: 401, .. } | ModelError::MissingCredentials(_) => {
            CodexErrorInfo::Unauthorized
        }
        ModelError::Http { status: 429, .. } => CodexErrorInfo::ResponseTooManyFailedAttempts {
            http_status_code: status,
        },
        ModelError::Http { status: 404, .. } => CodexErrorInfo::ModelNotFound,
        ModelError::Http { status: 400, .. } => CodexErrorInfo::BadRequest,
        ModelError::Http { .. } => CodexErrorInfo::ResponseTooManyFailedAttempts {
            http_status_code: status,
        },
        ModelError::Connect(_) => CodexErrorInfo::HttpConnectionFailed {
            http_status_code: None,
        },
        ModelError::StreamDisconnected(_) | ModelError::IdleTimeout(_) => {
            CodexErrorInfo::ResponseStreamDisconnected {
                http_status_code: None,
            }
        }
        ModelError::ResponseFailed(_) => CodexErrorInfo::Other,
    };
    TurnError {
        message: e.to_string(),
        codex_error_info: Some(info),
        additional_details: None,
    }
}

/// Whether `n` streams or starts an agent message (a review sends them as its review instead).
fn is_agent_message_note(n: &tally_protocol::ServerNotification) -> bool {
    use tally_protocol::ServerNotification;
    match n {
        ServerNotification::AgentMessageDelta(_) => true,
        ServerNotification::ItemStarted(started) => {
            matches!(started.item, ThreadItem::AgentMessage { .. })
        }
        _ => false,
    }
}
