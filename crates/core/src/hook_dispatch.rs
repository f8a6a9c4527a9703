//! Runs one hook event for a thread, wherever it fires (a turn, a compaction, the session's end):
//! `hook/started` for every selected sync handler, one concurrent run, then `hook/completed` in
//! handler order (each becomes one `codex_hook_run` downstream). Async handlers are launched
//! detached and reported on their own.

use crate::clock::{now_ms, now_secs};
use crate::event_sink::ThreadEventSink;
use crate::hooks::{wire_event, wire_source};
use crate::thread::LoadedThread;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tally_hooks::{
    interpret, run_command, DiscoveredHook, Discovery, EntryKind, HookEvent, HookOutcome,
    HookPayload, PayloadContext, RunnerConfig,
};
use tally_protocol::types::{
    ApprovalPolicyName, AskForApproval, HookExecutionMode, HookHandlerType, HookOutputEntry,
    HookOutputEntryKind, HookRunNotification, HookRunStatus, HookRunSummary, HookScope,
};
use tally_protocol::ServerNotification;

/// Characters kept from one async hook's context (about 500 tokens).
const ASYNC_CONTEXT_PER_HOOK: usize = 2_000;
/// Characters of async context given to the model at one user input (about 1,000 tokens);
/// the rest waits for the next one.
const ASYNC_CONTEXT_PER_FLUSH: usize = 4_000;
/// Async contexts a thread keeps waiting for its next input; older ones give way (counted).
const ASYNC_CONTEXT_QUEUED: usize = 16;

/// Async hook runs of every thread: their tasks (cancelled at shutdown) and the context they
/// left for the model, queued per thread until its next accepted user input.
#[derive(Default)]
pub(crate) struct AsyncHooks {
    inner: Mutex<AsyncInner>,
}

#[derive(Default)]
struct AsyncInner {
    tasks: Vec<tokio::task::AbortHandle>,
    context: HashMap<String, Vec<String>>,
    closed: bool,
    /// Contexts dropped because their thread's queue was full.
    dropped: u64,
}

impl AsyncHooks {
    fn lock(&self) -> std::sync::MutexGuard<'_, AsyncInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `run` detached; nothing is started once the server shuts down.
    fn spawn(&self, run: impl std::future::Future<Output = ()> + Send + 'static) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut inner = self.lock();
        if inner.closed {
            return;
        }
        inner.tasks.retain(|t| !t.is_finished());
        inner.tasks.push(runtime.spawn(run).abort_handle());
    }

    fn queue(&self, thread_id: &str, mut text: String) {
        truncate_chars(&mut text, ASYNC_CONTEXT_PER_HOOK);
        let mut inner = self.lock();
        let queue = inner.context.entry(thread_id.to_string()).or_default();
        queue.push(text);
        // A busy async hook in a long turn adds faster than inputs take.
        let excess = queue.len().saturating_sub(ASYNC_CONTEXT_QUEUED);
        if excess > 0 {
            queue.drain(..excess);
            inner.dropped += excess as u64;
            tracing::warn!(
                thread_id,
                dropped = inner.dropped,
                "async hook context queue full; the oldest context was dropped"
            );
        }
    }

    /// Contexts dropped so far because a thread had too many waiting (the log line carries it).
    #[cfg(test)]
    fn dropped_context(&self) -> u64 {
        self.lock().dropped
    }

    /// Forgets what waits for `thread_id` (unloaded: its session ended).
    pub(crate) fn forget_thread(&self, thread_id: &str) {
        self.lock().context.remove(thread_id);
    }

    /// The queued context for `thread_id`, oldest first, within one flush's budget.
    pub(crate) fn take_context(&self, thread_id: &str) -> Vec<String> {
        let mut inner = self.lock();
        let Some(queue) = inner.context.get_mut(thread_id) else {
            return Vec::new();
        };
        let mut used = 0;
        let mut taken = 0;
        for text in queue.iter() {
            let n = text.chars().count();
            if taken > 0 && used + n > ASYNC_CONTEXT_PER_FLUSH {
                break;
            }
            used += n;
            taken += 1;
        }
        let out: Vec<String> = queue.drain(..taken).collect();
        if queue.is_empty() {
            inner.context.remove(thread_id);
        }
        out
    }

    /// Shutdown: aborts every running async hook (dropping a run kills its process group) and
    /// refuses new ones.
    pub(crate) fn cancel_all(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        for t in inner.tasks.drain(..) {
            t.abort();
        }
    }
}

fn truncate_chars(text: &mut String, max: usize) {
    if let Some((at, _)) = text.char_indices().nth(max) {
        text.truncate(at);
        text.push('…');
    }
}

/// The hooks one unit of work (a turn, a compaction, a session's end) may run, discovered when
/// it starts, so trust granted or an edit made since applies.
pub(crate) struct EventHooks {
    pub discovery: Discovery,
    pub runner: RunnerConfig,
    /// Where async handlers go; `None` skips them (tests, no manager).
    pub async_hooks: Option<Arc<AsyncHooks>>,
}

impl EventHooks {
    pub(crate) fn none() -> Self {
        Self {
            discovery: Discovery::default(),
            runner: RunnerConfig::default(),
            async_hooks: None,
        }
    }

    pub(crate) fn discover(home: &Path, cwd: &Path, async_hooks: Option<Arc<AsyncHooks>>) -> Self {
        Self {
            discovery: tally_hooks::discover(&tally_hooks::DiscoveryRoots {
                system_dir: crate::hooks::system_dir(),
                home: home.to_path_buf(),
                cwd: cwd.to_path_buf(),
            }),
            runner: RunnerConfig::default(),
            async_hooks,
        }
    }
}

/// Where an event fires.
pub(crate) struct HookSite<'a> {
    pub thread: &'a Arc<LoadedThread>,
    pub sink: &'a Arc<dyn ThreadEventSink>,
    /// The turn the run belongs to (`turnId` of the notifications, `turn_id` on stdin).
    pub turn_id: Option<String>,
}

/// One firing of an event.
pub(crate) struct EventRequest<'a> {
    pub payload: HookPayload,
    /// Appended to run ids: the tool call id for tool and permission events.
    pub run_suffix: Option<&'a str>,
    /// Tool name and aliases the matcher is applied to (the payload's own subject is added).
    pub subjects: &'a [&'a str],
    /// A tighter deadline than the handlers' own timeouts (the session's end at shutdown).
    pub timeout_cap: Option<Duration>,
}

/// Runs every selected handler of an event; returns the sync handlers' outcomes in handler
/// order. Untrusted, disabled and unmatched handlers never run and are never reported.
pub(crate) async fn run_event(
    hooks: &EventHooks,
    site: &HookSite<'_>,
    req: EventRequest<'_>,
) -> Vec<HookOutcome> {
    let event = req.payload.event();
    let mut subjects: Vec<&str> = req.subjects.to_vec();
    if let Some(s) = req.payload.matcher_subject() {
        subjects.push(s);
    }
    let selected: Vec<DiscoveredHook> = hooks
        .discovery
        .runnable_for(event, &subjects)
        .cloned()
        .collect();
    let detached: Vec<DiscoveredHook> = match &hooks.async_hooks {
        Some(_) => hooks
            .discovery
            .runnable_async_for(event, &subjects)
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    if selected.is_empty() && detached.is_empty() {
        return Vec::new();
    }
    let (ctx, cwd) = payload_context(site.thread, site.turn_id.as_deref());
    let stdin = req.payload.to_stdin(&ctx);
    let timeout_of = |hook: &DiscoveredHook| {
        let own = Duration::from_secs(hook.handler.timeout_sec);
        req.timeout_cap.map_or(own, |cap| own.min(cap))
    };
    if let Some(tasks) = &hooks.async_hooks {
        for hook in detached {
            let timeout = timeout_of(&hook);
            let run = async_run(
                tasks.clone(),
                site.thread.id.clone(),
                site.sink.clone(),
                site.turn_id.clone(),
                run_summary(&hook, req.run_suffix, now_secs()),
                (hooks.runner.clone(), stdin.clone(), cwd.clone()),
                (hook, timeout),
            );
            tasks.spawn(run);
        }
    }
    if selected.is_empty() {
        return Vec::new();
    }
    let started_at = now_secs();
    let mut summaries = Vec::with_capacity(selected.len());
    for hook in &selected {
        let summary = run_summary(hook, req.run_suffix, started_at);
        emit_run(
            site.sink,
            &site.thread.id,
            &site.turn_id,
            false,
            summary.clone(),
        )
        .await;
        summaries.push(summary);
    }
    let runner = &hooks.runner;
    let runs = selected.iter().map(|hook| {
        let (stdin, cwd, timeout) = (&stdin, &cwd, timeout_of(hook));
        async move {
            let begun = now_ms();
            let out = run_command(
                runner,
                &hook.handler.command,
                Path::new(cwd),
                stdin,
                timeout,
            )
            .await;
            (interpret(event, &out), now_ms() - begun)
        }
    });
    let results = futures::future::join_all(runs).await;
    let mut outcomes = Vec::with_capacity(results.len());
    for (summary, (outcome, duration_ms)) in summaries.into_iter().zip(results) {
        let summary = completed(summary, &outcome, duration_ms);
        emit_run(site.sink, &site.thread.id, &site.turn_id, true, summary).await;
        outcomes.push(outcome);
    }
    outcomes
}

/// One async handler, detached: reported like a sync run (with `executionMode: "async"`), still
/// killed at its timeout; it cannot block or stop anything. What it says for the model (its
/// `additionalContext`, or a one-line failure notice) waits for the thread's next user input.
///
/// HOOKS.md §5 leaves reporting open (Codex's source sends nothing for async runs, while 0.169's
/// `executionMode: "async"` hints that it reports them). Tally reports them: a user who
/// configured a hook expects to see that it ran and how it ended, and analytics keep
/// `execution_mode` to tell them apart.
async fn async_run(
    tasks: Arc<AsyncHooks>,
    thread_id: String,
    sink: Arc<dyn ThreadEventSink>,
    turn_id: Option<String>,
    summary: HookRunSummary,
    (runner, stdin, cwd): (RunnerConfig, String, String),
    (hook, timeout): (DiscoveredHook, Duration),
) {
    let summary = HookRunSummary {
        execution_mode: HookExecutionMode::Async,
        ..summary
    };
    emit_run(&sink, &thread_id, &turn_id, false, summary.clone()).await;
    let begun = now_ms();
    let out = run_command(
        &runner,
        &hook.handler.command,
        Path::new(&cwd),
        &stdin,
        timeout,
    )
    .await;
    let outcome = interpret(hook.event, &out);
    let summary = completed(summary, &outcome, now_ms() - begun);
    let event = hook.event.pascal();
    if outcome.status == tally_hooks::HookRunStatus::Failed {
        let why = outcome
            .entries
            .iter()
            .find(|e| e.kind == EntryKind::Error)
            .map(|e| e.text.lines().next().unwrap_or_default().to_string())
            .unwrap_or_default();
        tasks.queue(&thread_id, format!("Async {event} hook failed: {why}"));
    } else {
        for c in outcome.context {
            tasks.queue(&thread_id, c);
        }
    }
    emit_run(&sink, &thread_id, &turn_id, true, summary).await;
}

fn completed(mut summary: HookRunSummary, o: &HookOutcome, duration_ms: i64) -> HookRunSummary {
    summary.status = wire_status(o);
    summary.completed_at = Some(now_secs());
    summary.duration_ms = Some(duration_ms);
    summary.entries = o.entries.iter().map(wire_entry).collect();
    summary
}

async fn emit_run(
    sink: &Arc<dyn ThreadEventSink>,
    thread_id: &str,
    turn_id: &Option<String>,
    completed: bool,
    run: HookRunSummary,
) {
    let n = HookRunNotification {
        thread_id: thread_id.to_string(),
        turn_id: turn_id.clone(),
        run,
    };
    sink.notify(
        thread_id,
        if completed {
            ServerNotification::HookCompleted(n)
        } else {
            ServerNotification::HookStarted(n)
        },
    )
    .await;
}

/// The session-level stdin fields and the cwd hooks run in.
fn payload_context(thread: &LoadedThread, turn_id: Option<&str>) -> (PayloadContext, String) {
    let state = thread.state();
    let s = &state.settings;
    let ctx = PayloadContext {
        session_id: thread.id.clone(),
        turn_id: turn_id.unwrap_or_default().to_string(),
        transcript_path: thread.path.as_ref().map(|p| p.display().to_string()),
        cwd: s.cwd.clone(),
        model: s.model.clone(),
        permission_mode: if s.approval_policy == AskForApproval::Named(ApprovalPolicyName::Never) {
            "bypassPermissions".into()
        } else {
            "default".into()
        },
    };
    (ctx, s.cwd.clone())
}

fn run_summary(hook: &DiscoveredHook, suffix: Option<&str>, started_at: i64) -> HookRunSummary {
    let mut id = format!(
        "{}:{}:{}",
        hook.event.kebab(),
        hook.display_order,
        hook.source_path.display()
    );
    if let Some(t) = suffix {
        id.push(':');
        id.push_str(t);
    }
    HookRunSummary {
        id,
        event_name: wire_event(hook.event),
        handler_type: HookHandlerType::Command,
        execution_mode: HookExecutionMode::Sync,
        scope: if matches!(hook.event, HookEvent::SessionStart | HookEvent::SessionEnd) {
            HookScope::Thread
        } else {
            HookScope::Turn
        },
        source_path: hook.source_path.display().to_string(),
        source: wire_source(hook.source),
        display_order: hook.display_order,
        status: HookRunStatus::Running,
        status_message: hook.handler.status_message.clone(),
        started_at,
        completed_at: None,
        duration_ms: None,
        entries: Vec::new(),
    }
}

fn wire_status(o: &HookOutcome) -> HookRunStatus {
    match o.status {
        tally_hooks::HookRunStatus::Completed => HookRunStatus::Completed,
        tally_hooks::HookRunStatus::Failed => HookRunStatus::Failed,
        tally_hooks::HookRunStatus::Blocked => HookRunStatus::Blocked,
        tally_hooks::HookRunStatus::Stopped => HookRunStatus::Stopped,
    }
}

fn wire_entry(e: &tally_hooks::HookEntry) -> HookOutputEntry {
    HookOutputEntry {
        kind: match e.kind {
            EntryKind::Warning => HookOutputEntryKind::Warning,
            EntryKind::Stop => HookOutputEntryKind::Stop,
            EntryKind::Feedback => HookOutputEntryKind::Feedback,
            EntryKind::Context => HookOutputEntryKind::Context,
            EntryKind::Error => HookOutputEntryKind::Error,
        },
        text: e.text.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn async_context_is_capped_per_hook_and_per_flush() {
        let a = AsyncHooks::default();
        a.queue("t", "x".repeat(5_000));
        a.queue("t", "second".into());
        a.queue("t", "y".repeat(3_000));
        let first = a.take_context("t");
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].chars().count(), ASYNC_CONTEXT_PER_HOOK + 1);
        assert_eq!(first[1], "second");
        let second = a.take_context("t");
        assert_eq!(second.len(), 1);
        assert!(a.take_context("t").is_empty());
        assert!(a.take_context("other").is_empty());
    }

    #[test]
    fn a_thread_keeps_only_its_newest_async_contexts_and_forgets_them_when_unloaded() {
        let a = AsyncHooks::default();
        for i in 0..ASYNC_CONTEXT_QUEUED + 5 {
            a.queue("t", format!("c{i}"));
        }
        assert_eq!(a.dropped_context(), 5);
        let first = a.take_context("t");
        assert_eq!(first[0], "c5", "the oldest gave way");
        a.queue("u", "kept until unload".into());
        a.forget_thread("u");
        assert!(a.take_context("u").is_empty());
    }
}
