//! Owns the loaded threads: start, resume, fork, read, list, archive, and the turns on them.

use crate::clock::{new_id, now_ms, now_secs};
use crate::config::Config;
use crate::error::CoreError;
use crate::event_sink::ThreadEventSink;
use crate::model::{client_for_provider, ModelClient};
use crate::rollout::{
    load_rollout, read_agent_task, rollout_path, AgentTaskRecord, LoadedRollout, RolloutLine,
    RolloutWriter, ThreadMeta,
};
use crate::thread::{
    thread_view, LoadedThread, ThreadSettings, ThreadState, TurnControl, TurnKind,
};
use crate::thread_settings::settings_for;
use crate::turn_runner::{TurnHooks, TurnRunner};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tally_protocol::types::*;
use tokio::sync::{mpsc, oneshot};

/// How long `turn/interrupt` waits for the running turn to stop.
const INTERRUPT_DEADLINE: Duration = Duration::from_secs(10);
/// Bound on queued steer/interrupt messages per turn.
pub(crate) const TURN_CONTROL_CAPACITY: usize = 32;
/// How often `turn/start` tries again when another turn took the thread while it waited.
const START_ATTEMPTS: usize = 3;

/// Who is asking: becomes the thread's originator and the model request's identity headers.
#[derive(Debug, Clone, Default)]
pub struct ClientIdentity {
    pub originator: String,
    pub user_agent: String,
    /// The client opted into the experimental API (`capabilities.experimentalApi`).
    pub experimental_api: bool,
}

/// A started turn; fire `gate` once the `turn/start` response is sent.
pub struct StartedTurn {
    pub turn: Turn,
    pub gate: Option<oneshot::Sender<()>>,
}

/// The thread registry and entry point for every thread and turn operation.
pub struct ThreadManager {
    config: Arc<Config>,
    sink: Arc<dyn ThreadEventSink>,
    threads: Mutex<HashMap<String, Arc<LoadedThread>>>,
    models: Mutex<HashMap<String, Arc<dyn ModelClient>>>,
    /// Whether commands can be confined with Landlock; without it they need approval.
    landlock: bool,
    /// Credentials for providers that use the OpenAI login.
    auth: Option<Arc<tally_auth::AuthManager>>,
    /// Threads whose SessionStart hooks already ran in this process.
    hook_sessions: Mutex<HashSet<String>>,
    /// Async hook runs of every thread, and the context they left for the model.
    async_hooks: Arc<crate::hook_dispatch::AsyncHooks>,
}

impl ThreadManager {
    /// A manager that stores threads under the config's home and reports through `sink`.
    pub fn new(config: Arc<Config>, sink: Arc<dyn ThreadEventSink>) -> Self {
        Self {
            config,
            sink,
            threads: Mutex::new(HashMap::new()),
            models: Mutex::new(HashMap::new()),
            landlock: crate::tools::sandbox::landlock_available(),
            auth: None,
            hook_sessions: Mutex::new(HashSet::new()),
            async_hooks: Default::default(),
        }
    }

    /// Model requests of OpenAI-login providers take their authorization from `auth`.
    pub fn with_auth(mut self, auth: Arc<tally_auth::AuthManager>) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Acts as if the kernel lacked Landlock: sandboxed commands need approval instead.
    pub fn without_landlock(mut self) -> Self {
        self.landlock = false;
        self
    }

    /// Whether commands are confined by the sandbox on this system.
    pub fn sandbox_enforceable(&self) -> bool {
        self.landlock
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn loaded(&self, id: &str) -> Option<Arc<LoadedThread>> {
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    fn insert(&self, thread: Arc<LoadedThread>) {
        // Set on every load: a rollout's usage line carries the window of when it was written.
        thread.state().token_usage.model_context_window = self.config.model_context_window;
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(thread.id.clone(), thread);
    }

    fn model_for(&self, provider_id: &str) -> Result<Arc<dyn ModelClient>, CoreError> {
        let mut models = self.models.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = models.get(provider_id) {
            return Ok(m.clone());
        }
        let provider = self.config.provider(provider_id).ok_or_else(|| {
            CoreError::InvalidRequest(format!("unknown model provider: {provider_id}"))
        })?;
        let client = client_for_provider(provider, self.auth.clone());
        models.insert(provider_id.to_string(), client.clone());
        Ok(client)
    }

    /// A loaded thread's token usage.
    pub fn token_usage(&self, id: &str) -> Option<ThreadTokenUsage> {
        self.loaded(id).map(|t| t.state().token_usage)
    }

    /// Whether a thread is in memory.
    pub fn is_loaded(&self, id: &str) -> bool {
        self.loaded(id).is_some()
    }

    /// Ids of the threads in memory, oldest first.
    pub fn loaded_thread_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        ids.sort();
        ids
    }

    /// `thread/start`.
    pub fn start_thread(
        &self,
        params: ThreadStartParams,
        client: &ClientIdentity,
    ) -> Result<ThreadSessionResponse, CoreError> {
        let mut settings = settings_for(&self.config, None, &params.overrides, client)?;
        settings.dynamic_tools = params.dynamic_tools.clone().unwrap_or_default();
        self.model_for(&settings.provider_id)?;
        let meta = ThreadMeta {
            id: new_id(),
            created_at: now_secs(),
            cwd: settings.cwd.clone(),
            model: settings.model.clone(),
            model_provider: settings.provider_id.clone(),
            source: SessionSource::Vscode,
            originator: Some(client.originator.clone()),
            forked_from_id: None,
            cli_version: crate::TALLY_VERSION.to_string(),
            thread_source: params.thread_source.clone(),
            reasoning_effort: settings.reasoning_effort.clone(),
            dynamic_tools: settings.dynamic_tools.clone(),
        };
        let ephemeral = params.ephemeral.unwrap_or(false);
        let thread = self.create(meta, settings, ephemeral, Snapshot::default())?;
        Ok(session_response(&thread, false))
    }

    /// Creates a new loaded thread, writing its rollout (meta and any copied history) first.
    fn create(
        &self,
        meta: ThreadMeta,
        settings: ThreadSettings,
        ephemeral: bool,
        snapshot: Snapshot,
    ) -> Result<Arc<LoadedThread>, CoreError> {
        let writer = if ephemeral {
            None
        } else {
            let mut w = RolloutWriter::open(&rollout_path(&self.config.sessions_dir(), &meta.id))?;
            w.append(&RolloutLine::SessionMeta(meta.clone()))?;
            for line in snapshot.lines() {
                w.append(&line)?;
            }
            w.sync()?;
            Some(w)
        };
        let state = ThreadState {
            meta,
            settings,
            turns: snapshot.turns,
            history: snapshot.history,
            token_usage: snapshot.token_usage,
            history_marks: snapshot.history_marks,
            active: None,
            window: 0,
            updated_at: now_secs(),
            approvals: Default::default(),
            waiting_on_approval: false,
            waiting_on_user_input: false,
            name: None,
            pending_history: Vec::new(),
            goal: None,
        };
        let thread = LoadedThread::new(state, writer);
        self.insert(thread.clone());
        Ok(thread)
    }

    /// `thread/resume`: rejoins a loaded thread or loads it from disk.
    pub fn resume_thread(
        &self,
        params: ThreadResumeParams,
        client: &ClientIdentity,
    ) -> Result<ThreadResumeResponse, CoreError> {
        validate_thread_id(&params.thread_id)?;
        let thread = match self.loaded(&params.thread_id) {
            Some(t) => t,
            None => self.load_from_disk(&params.thread_id, client)?,
        };
        self.apply_overrides(&thread, &params.overrides, client)?;
        Ok(ThreadResumeResponse {
            session: session_response(&thread, !params.exclude_turns),
            turns_backwards_cursor: None,
            items_backwards_cursor: None,
        })
    }

    fn apply_overrides(
        &self,
        thread: &LoadedThread,
        overrides: &ThreadOverrides,
        client: &ClientIdentity,
    ) -> Result<(), CoreError> {
        let current = thread.state().settings.clone();
        let settings = settings_for(&self.config, Some(&current), overrides, client)?;
        self.model_for(&settings.provider_id)?;
        if settings.model != current.model || settings.cwd != current.cwd {
            thread.persist(&[RolloutLine::SettingsChanged {
                model: settings.model.clone(),
                cwd: settings.cwd.clone(),
            }]);
        }
        thread.state().settings = settings;
        Ok(())
    }

    fn load_from_disk(
        &self,
        id: &str,
        client: &ClientIdentity,
    ) -> Result<Arc<LoadedThread>, CoreError> {
        let path = rollout_path(&self.config.sessions_dir(), id);
        if !path.exists() {
            return Err(CoreError::ThreadNotFound(id.to_string()));
        }
        let loaded = load_rollout(&path)?;
        let settings = settings_for(&self.config, None, &ThreadOverrides::default(), client)?;
        let settings = ThreadSettings {
            model: loaded.meta.model.clone(),
            provider_id: if self.config.provider(&loaded.meta.model_provider).is_some() {
                loaded.meta.model_provider.clone()
            } else {
                settings.provider_id.clone()
            },
            cwd: loaded.meta.cwd.clone(),
            reasoning_effort: loaded.meta.reasoning_effort.clone(),
            dynamic_tools: loaded.meta.dynamic_tools.clone(),
            ..settings
        };
        let updated_at = loaded.updated_at;
        let state = ThreadState {
            meta: loaded.meta,
            settings,
            turns: loaded.turns,
            history: loaded.history,
            token_usage: loaded.token_usage.unwrap_or_default(),
            history_marks: loaded.history_marks,
            active: None,
            window: 0,
            updated_at,
            approvals: Default::default(),
            waiting_on_approval: false,
            waiting_on_user_input: false,
            name: loaded.name,
            pending_history: Vec::new(),
            goal: loaded.goal,
        };
        let thread = LoadedThread::new(state, Some(RolloutWriter::open(&path)?));
        self.insert(thread.clone());
        Ok(thread)
    }

    /// `thread/fork`: copies history (through `lastTurnId`) into a new thread.
    pub fn fork_thread(
        &self,
        params: ThreadForkParams,
        client: &ClientIdentity,
    ) -> Result<ThreadSessionResponse, CoreError> {
        validate_thread_id(&params.thread_id)?;
        let (source_meta, source_settings, snapshot) = match self.loaded(&params.thread_id) {
            Some(t) => {
                let s = t.state();
                (s.meta.clone(), s.settings.clone(), Snapshot::of_state(&s))
            }
            None => {
                let loaded = self.read_rollout(&params.thread_id)?;
                let settings =
                    settings_for(&self.config, None, &ThreadOverrides::default(), client)?;
                let settings = ThreadSettings {
                    model: loaded.meta.model.clone(),
                    cwd: loaded.meta.cwd.clone(),
                    dynamic_tools: loaded.meta.dynamic_tools.clone(),
                    ..settings
                };
                (loaded.meta.clone(), settings, Snapshot::of_rollout(loaded))
            }
        };
        let snapshot = snapshot.through(params.last_turn_id.as_deref())?;
        let settings = settings_for(
            &self.config,
            Some(&source_settings),
            &params.overrides,
            client,
        )?;
        self.model_for(&settings.provider_id)?;
        let meta = ThreadMeta {
            id: new_id(),
            created_at: now_secs(),
            cwd: settings.cwd.clone(),
            model: settings.model.clone(),
            model_provider: settings.provider_id.clone(),
            forked_from_id: Some(source_meta.id.clone()),
            originator: Some(client.originator.clone()),
            thread_source: params.thread_source.clone().or(source_meta.thread_source),
            dynamic_tools: settings.dynamic_tools.clone(),
            ..source_meta
        };
        let thread = self.create(meta, settings, params.ephemeral, snapshot)?;
        Ok(session_response(&thread, !params.exclude_turns))
    }

    fn read_rollout(&self, id: &str) -> Result<LoadedRollout, CoreError> {
        for dir in [
            self.config.sessions_dir(),
            self.config.archived_sessions_dir(),
        ] {
            let path = rollout_path(&dir, id);
            if path.exists() {
                return Ok(load_rollout(&path)?);
            }
        }
        Err(CoreError::ThreadNotFound(id.to_string()))
    }

    /// The agent task kept with thread `id` (its rollout's last `agent_task` line), whether the
    /// thread is loaded or not; `None` for an ephemeral or unknown thread.
    pub fn agent_task(&self, id: &str) -> Option<AgentTaskRecord> {
        validate_thread_id(id).ok()?;
        let path = match self.loaded(id) {
            Some(t) => t.path.clone()?,
            None => [
                self.config.sessions_dir(),
                self.config.archived_sessions_dir(),
            ]
            .iter()
            .map(|dir| rollout_path(dir, id))
            .find(|p| p.exists())?,
        };
        read_agent_task(&path)
            .inspect_err(|e| tracing::warn!(thread = id, error = %e, "cannot read the agent task"))
            .ok()
            .flatten()
    }

    /// Keeps `task` with thread `id`: an `agent_task` line in its rollout, flushed (nothing is
    /// kept for an ephemeral thread). A fork does not copy it: it registers its own task.
    pub fn keep_agent_task(&self, id: &str, task: AgentTaskRecord) -> Result<(), CoreError> {
        validate_thread_id(id)?;
        let line = RolloutLine::AgentTask(task);
        if let Some(t) = self.loaded(id) {
            t.persist(std::slice::from_ref(&line));
            t.sync();
            return Ok(());
        }
        let path = rollout_path(&self.config.sessions_dir(), id);
        if !path.exists() {
            return Err(CoreError::ThreadNotFound(id.to_string()));
        }
        let mut writer = RolloutWriter::open(&path)?;
        writer.append(&line)?;
        writer.sync()?;
        Ok(())
    }

    /// `thread/read`.
    pub fn read_thread(&self, id: &str, include_turns: bool) -> Result<Thread, CoreError> {
        validate_thread_id(id)?;
        if let Some(t) = self.loaded(id) {
            return Ok(t.to_thread(include_turns));
        }
        let archived = !rollout_path(&self.config.sessions_dir(), id).exists();
        let loaded = self.read_rollout(id)?;
        Ok(self.unloaded_view(loaded, include_turns, archived))
    }

    fn unloaded_view(&self, loaded: LoadedRollout, include_turns: bool, archived: bool) -> Thread {
        let dir = if archived {
            self.config.archived_sessions_dir()
        } else {
            self.config.sessions_dir()
        };
        let path = rollout_path(&dir, &loaded.meta.id);
        let updated_at = loaded.updated_at;
        let settings = ThreadSettings {
            model: loaded.meta.model.clone(),
            provider_id: loaded.meta.model_provider.clone(),
            cwd: loaded.meta.cwd.clone(),
            approval_policy: self.config.approval_policy.clone(),
            approvals_reviewer: self.config.approvals_reviewer,
            sandbox: SandboxPolicy::from_mode(self.config.sandbox_mode),
            reasoning_effort: loaded.meta.reasoning_effort.clone(),
            base_instructions: None,
            developer_instructions: None,
            originator: String::new(),
            user_agent: String::new(),
            dynamic_tools: Vec::new(),
            request_user_input: false,
        };
        let state = ThreadState {
            meta: loaded.meta,
            settings,
            turns: loaded.turns,
            history: Vec::new(),
            token_usage: Default::default(),
            history_marks: Vec::new(),
            active: None,
            window: 0,
            updated_at,
            approvals: Default::default(),
            waiting_on_approval: false,
            waiting_on_user_input: false,
            name: loaded.name,
            pending_history: Vec::new(),
            goal: None,
        };
        thread_view(
            &state,
            ThreadStatus::NotLoaded,
            Some(&path),
            false,
            include_turns,
        )
    }

    /// `thread/list`: threads on disk and in memory, filtered, sorted and paged. Not listed, as
    /// in Codex (checked against 0.169): ephemeral threads, and threads nobody has used yet (no
    /// turn), which every TUI start makes one of.
    pub fn list_threads(&self, params: &ThreadListParams) -> Result<ThreadListResponse, CoreError> {
        let archived = params.archived.unwrap_or(false);
        let dir = if archived {
            self.config.archived_sessions_dir()
        } else {
            self.config.sessions_dir()
        };
        let mut threads: HashMap<String, Thread> = HashMap::new();
        for path in rollout_files(&dir)? {
            match load_rollout(&path) {
                Ok(l) if !archived && l.turns.is_empty() => {}
                Ok(l) => {
                    let t = self.unloaded_view(l, false, archived);
                    threads.insert(t.id.clone(), t);
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "skipping unreadable rollout")
                }
            }
        }
        if !archived {
            let loaded: Vec<Arc<LoadedThread>> = self
                .threads
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .cloned()
                .collect();
            // Ephemeral threads are not history (the TUI titles each conversation with one): as
            // in Codex, which lists only threads it records, they are not listed.
            for t in loaded.into_iter().filter(|t| !t.ephemeral) {
                if t.state().turns.is_empty() {
                    threads.remove(&t.id);
                } else {
                    threads.insert(t.id.clone(), t.to_thread(false));
                }
            }
        }
        Ok(crate::thread_list::page(
            threads.into_values().collect(),
            params,
        ))
    }

    /// Waits (at most [`crate::thread::ENDING_TURN_DEADLINE`]) for a turn whose end is recorded
    /// but whose last notifications are still going out: a request a client sends on
    /// `turn/completed` then finds the thread idle.
    pub async fn settle_ending_turn(&self, id: &str) {
        let Some(thread) = self.loaded(id) else {
            return;
        };
        let ending = thread
            .state()
            .active
            .as_ref()
            .filter(|a| a.ending)
            .map(|a| a.turn_id.clone());
        if let Some(turn_id) = ending {
            thread.wait_turn_freed(&turn_id).await;
        }
    }

    /// `thread/archive`: unloads the thread and moves its rollout to `archived_sessions/`.
    pub fn archive_thread(&self, id: &str) -> Result<(), CoreError> {
        validate_thread_id(id)?;
        let from = rollout_path(&self.config.sessions_dir(), id);
        let loaded = self.loaded(id);
        if let Some(t) = &loaded {
            if t.state().active.is_some() {
                return Err(CoreError::InvalidRequest(format!(
                    "thread {id} has a running turn; interrupt it before archiving"
                )));
            }
        } else if !from.exists() {
            return Err(CoreError::ThreadNotFound(id.to_string()));
        }
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if from.exists() {
            let to = rollout_path(&self.config.archived_sessions_dir(), id);
            move_file(&from, &to)?;
        }
        Ok(())
    }

    /// `thread/unarchive`: moves the rollout back; the thread stays unloaded.
    pub fn unarchive_thread(&self, id: &str) -> Result<Thread, CoreError> {
        validate_thread_id(id)?;
        let from = rollout_path(&self.config.archived_sessions_dir(), id);
        if !from.exists() {
            return Err(CoreError::ThreadNotFound(id.to_string()));
        }
        let to = rollout_path(&self.config.sessions_dir(), id);
        move_file(&from, &to)?;
        let loaded = load_rollout(&to)?;
        Ok(self.unloaded_view(loaded, false, false))
    }

    /// `turn/start`: starts a turn, or joins the running one as a steer.
    pub async fn start_turn(&self, params: TurnStartParams) -> Result<StartedTurn, CoreError> {
        let thread = self.require_loaded(&params.thread_id)?;
        // The overrides hold from now on, also when the input joins a running turn: a client
        // tightening the approval or sandbox policy mid-turn must not be ignored.
        self.apply_turn_overrides(&thread, &params)?;
        // Another request (a shell command, a review, another client) may start a turn while this
        // one waits for an ending turn: then this input joins that turn, as it would have.
        for _ in 0..START_ATTEMPTS {
            if let Some(turn) = self.join_running(&thread, &params).await? {
                return Ok(StartedTurn { turn, gate: None });
            }
            match self.begin_new_turn(thread.clone(), &params, None) {
                Err(CoreError::TurnRunning) => continue,
                started => return started,
            }
        }
        Err(CoreError::TurnRunning)
    }

    /// Starts a new turn on `thread` (nothing runs on it); `review` makes it a review of that
    /// label (`review/start`).
    fn begin_new_turn(
        &self,
        thread: Arc<LoadedThread>,
        params: &TurnStartParams,
        review: Option<String>,
    ) -> Result<StartedTurn, CoreError> {
        let provider_id = thread.state().settings.provider_id.clone();
        let model = self.model_for(&provider_id)?;
        let guardian = crate::guardian::for_thread(
            &thread,
            model.clone(),
            self.config.guardian_review_timeout,
        );
        let turn_id = new_id();
        let (control_tx, control_rx) = mpsc::channel(TURN_CONTROL_CAPACITY);
        let turn = Turn {
            id: turn_id.clone(),
            root_turn_id: Some(turn_id.clone()),
            items: Vec::new(),
            items_view: TurnItemsView::NotLoaded,
            status: TurnStatus::InProgress,
            error: None,
            started_at: None,
            completed_at: None,
            duration_ms: None,
        };
        {
            let mut state = thread.state();
            if state.active.is_some() {
                // Before the merge below: pending history must not land inside a running turn.
                return Err(CoreError::TurnRunning);
            }
            // A person's shell command that finished during the last turn comes first.
            thread.merge_pending_history(&mut state);
            let kind = match review {
                Some(_) => TurnKind::Review,
                None => TurnKind::Regular,
            };
            state.begin_turn(&turn_id, control_tx, kind)?;
        }
        thread.persist(&[RolloutLine::TurnStarted {
            turn_id: turn_id.clone(),
            started_at: now_ms() / 1000,
        }]);
        let (cwd, fresh) = {
            let state = thread.state();
            (state.settings.cwd.clone(), state.turns.len() == 1)
        };
        // SessionStart runs on a thread's first turn in this process: `startup` for a new
        // thread, `resume` for one loaded from its rollout.
        let session_start = self
            .hook_sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(thread.id.clone())
            .then_some(if fresh { "startup" } else { "resume" });
        // Discovered per turn, so trust granted (or a hook edited) since the last turn applies.
        let hooks = TurnHooks::discover(
            &self.config.home,
            std::path::Path::new(&cwd),
            session_start,
            self.async_hooks.clone(),
        );
        let (gate_tx, gate_rx) = oneshot::channel();
        let runner = TurnRunner::new(
            thread,
            self.sink.clone(),
            model,
            turn_id,
            control_rx,
            params.output_schema.clone(),
            self.landlock,
        )
        .with_hooks(hooks)
        .with_guardian(guardian)
        .with_review(review);
        tokio::spawn(runner.run(
            params.input.clone(),
            params.client_user_message_id.clone(),
            gate_rx,
        ));
        Ok(StartedTurn {
            turn,
            gate: Some(gate_tx),
        })
    }

    /// If a turn runs, sends the input to it as a steer and returns that turn.
    async fn join_running(
        &self,
        thread: &LoadedThread,
        params: &TurnStartParams,
    ) -> Result<Option<Turn>, CoreError> {
        let Some((running, ending)) = thread
            .state()
            .active
            .as_ref()
            .map(|a| (a.turn_id.clone(), a.is_ending()))
        else {
            return Ok(None);
        };
        if ending {
            // The turn no longer reads input: wait for it to close, then start a new one.
            wait_until_closed(thread, &running).await?;
            return Ok(None);
        }
        self.steer_turn(TurnSteerParams {
            thread_id: params.thread_id.clone(),
            expected_turn_id: running.clone(),
            input: params.input.clone(),
            client_user_message_id: params.client_user_message_id.clone(),
        })
        .await?;
        let state = thread.state();
        Ok(state
            .turns
            .iter()
            .rev()
            .find(|t| t.id == running)
            // As a new turn's response: no items, and `startedAt` null (PROTOCOL.md turn/start).
            .map(|t| Turn {
                items: Vec::new(),
                items_view: TurnItemsView::NotLoaded,
                started_at: None,
                ..t.clone()
            }))
    }

    fn apply_turn_overrides(
        &self,
        thread: &LoadedThread,
        p: &TurnStartParams,
    ) -> Result<(), CoreError> {
        let mut state = thread.state();
        let s = &mut state.settings;
        if let Some(cwd) = &p.cwd {
            s.cwd = crate::thread_settings::absolute_cwd(Some(cwd))?;
        }
        if let Some(model) = &p.model {
            s.model = model.clone();
        }
        if let Some(effort) = &p.effort {
            s.reasoning_effort = Some(effort.clone());
        }
        if let Some(policy) = &p.approval_policy {
            s.approval_policy = policy.clone();
        }
        if let Some(reviewer) = p.approvals_reviewer {
            s.approvals_reviewer = reviewer;
        }
        if let Some(sandbox) = &p.sandbox_policy {
            s.sandbox = sandbox.clone();
        }
        Ok(())
    }

    /// `turn/steer`: adds input to the running turn.
    pub async fn steer_turn(&self, params: TurnSteerParams) -> Result<String, CoreError> {
        let thread = self.require_loaded(&params.thread_id)?;
        // Sent under the state lock: the turn checks for queued input and ends under the same lock.
        let state = thread.state();
        let Some(active) = state.active.as_ref() else {
            return Err(CoreError::InvalidRequest("no active turn to steer".into()));
        };
        if active.kind == TurnKind::Review {
            return Err(CoreError::ActiveTurnNotSteerable(
                NonSteerableTurnKind::Review,
            ));
        }
        if active.kind == TurnKind::Compaction {
            return Err(CoreError::ActiveTurnNotSteerable(
                NonSteerableTurnKind::Compact,
            ));
        }
        if active.kind == TurnKind::UserShell {
            return Err(CoreError::InvalidRequest(
                "a shell command is running in this thread; wait for it or interrupt it".into(),
            ));
        }
        if active.turn_id != params.expected_turn_id {
            return Err(CoreError::InvalidRequest(format!(
                "expected active turn id {} but found {}",
                params.expected_turn_id, active.turn_id
            )));
        }
        if active.is_ending() {
            return Err(CoreError::InvalidRequest(
                "the turn is ending and takes no more input; start a new turn".into(),
            ));
        }
        active
            .control
            .try_send(TurnControl::Steer {
                input: params.input,
                client_id: params.client_user_message_id,
            })
            .map_err(|_| CoreError::InvalidRequest("the turn is not accepting input".into()))?;
        Ok(params.expected_turn_id)
    }

    /// `turn/interrupt`: stops the running turn and waits until it has stopped streaming.
    /// Returns the gate to fire after the response is sent, so `turn/completed` follows it.
    pub async fn interrupt_turn(
        &self,
        params: TurnInterruptParams,
    ) -> Result<Option<oneshot::Sender<()>>, CoreError> {
        let thread = self.require_loaded(&params.thread_id)?;
        let control = {
            let state = thread.state();
            match state.active.as_ref() {
                Some(a) if params.turn_id.is_empty() || a.turn_id == params.turn_id => {
                    a.control.clone()
                }
                // Nothing (or another turn) runs: nothing to interrupt, answer `{}`.
                _ => return Ok(None),
            }
        };
        let (stopped_tx, stopped_rx) = oneshot::channel();
        let (proceed_tx, proceed_rx) = oneshot::channel();
        let sent = control
            .send_timeout(
                TurnControl::Interrupt {
                    stopped: stopped_tx,
                    proceed: proceed_rx,
                },
                INTERRUPT_DEADLINE,
            )
            .await;
        if sent.is_err() {
            return Ok(None);
        }
        match tokio::time::timeout(INTERRUPT_DEADLINE, stopped_rx).await {
            Ok(Ok(())) => Ok(Some(proceed_tx)),
            _ => Ok(None),
        }
    }

    /// `thread/compact/start`: starts a compaction turn on an idle thread. Returns the gate to
    /// fire once the `{}` response is sent, so the turn's notifications follow it.
    pub fn compact_thread(&self, thread_id: &str) -> Result<oneshot::Sender<()>, CoreError> {
        let thread = self.require_loaded(thread_id)?;
        let provider_id = thread.state().settings.provider_id.clone();
        let model = self.model_for(&provider_id)?;
        let turn_id = new_id();
        let (control_tx, control_rx) = mpsc::channel(TURN_CONTROL_CAPACITY);
        {
            let mut state = thread.state();
            if state.active.is_some() {
                return Err(CoreError::InvalidRequest(format!(
                    "thread {thread_id} has a running turn; wait for it or interrupt it before compacting"
                )));
            }
            state.begin_turn(&turn_id, control_tx, TurnKind::Compaction)?;
        }
        thread.persist(&[RolloutLine::TurnStarted {
            turn_id: turn_id.clone(),
            started_at: now_secs(),
        }]);
        let (gate_tx, gate_rx) = oneshot::channel();
        let hooks = self.event_hooks(&thread);
        let runner = crate::compaction::CompactionRunner::new(
            thread,
            self.sink.clone(),
            model,
            turn_id,
            control_rx,
        )
        .with_hooks(hooks);
        tokio::spawn(runner.run(gate_rx));
        Ok(gate_tx)
    }

    /// `thread/goal/set`: creates or changes the thread's goal and persists it.
    pub async fn set_goal(&self, params: ThreadGoalSetParams) -> Result<ThreadGoal, CoreError> {
        let thread = self.goal_thread(&params.thread_id)?;
        let (record, change) = {
            let mut state = thread.state();
            let (record, change) =
                crate::goals::apply_set(state.goal.as_ref(), &params, now_secs())?;
            state.goal = Some(record.clone());
            (record, change)
        };
        thread.persist(&[RolloutLine::GoalSet(record.clone())]);
        thread.sync();
        if let Some(change) = change {
            self.report_goal(&thread.id, &record, change).await;
        }
        Ok(record.goal)
    }

    /// `thread/goal/get`: the goal of a loaded thread, else of its rollout on disk.
    pub fn get_goal(&self, thread_id: &str) -> Result<Option<ThreadGoal>, CoreError> {
        validate_thread_id(thread_id)?;
        if let Some(t) = self.loaded(thread_id) {
            return Ok(t.state().goal.as_ref().map(|g| g.goal.clone()));
        }
        Ok(self.read_rollout(thread_id)?.goal.map(|g| g.goal))
    }

    /// `thread/goal/clear`: removes the goal; true if there was one.
    pub async fn clear_goal(&self, params: ThreadGoalClearParams) -> Result<bool, CoreError> {
        let thread = self.goal_thread(&params.thread_id)?;
        let Some(previous) = thread.state().goal.take() else {
            return Ok(false);
        };
        thread.persist(&[RolloutLine::GoalCleared]);
        thread.sync();
        self.report_goal(
            &thread.id,
            &previous,
            crate::event_sink::GoalChange::Cleared,
        )
        .await;
        Ok(true)
    }

    async fn report_goal(
        &self,
        thread_id: &str,
        record: &crate::rollout::GoalRecord,
        change: crate::event_sink::GoalChange,
    ) {
        let report = crate::event_sink::GoalReport {
            thread_id: thread_id.to_string(),
            turn_id: None,
            goal_id: record.goal_id.clone(),
            change,
            status: record.goal.status,
            has_token_budget: record.goal.token_budget.is_some(),
        };
        self.sink
            .lifecycle(crate::event_sink::LifecycleReport::Goal(report))
            .await;
    }

    /// The loaded thread a goal change applies to; a thread only on disk must be resumed first.
    fn goal_thread(&self, id: &str) -> Result<Arc<LoadedThread>, CoreError> {
        validate_thread_id(id)?;
        if let Some(t) = self.loaded(id) {
            return Ok(t);
        }
        if rollout_path(&self.config.sessions_dir(), id).exists() {
            return Err(CoreError::InvalidRequest(format!(
                "thread not loaded: {id}; resume it before changing its goal"
            )));
        }
        Err(CoreError::ThreadNotFound(id.to_string()))
    }

    fn require_loaded(&self, id: &str) -> Result<Arc<LoadedThread>, CoreError> {
        validate_thread_id(id)?;
        self.loaded(id)
            .ok_or_else(|| CoreError::ThreadNotFound(id.to_string()))
    }
}

#[path = "thread_user_actions.rs"]
mod user_actions;

#[path = "thread_session_hooks.rs"]
mod session_hooks;

#[path = "thread_review.rs"]
mod review;

/// Thread ids are UUIDs; anything else is rejected before a lookup.
fn validate_thread_id(id: &str) -> Result<(), CoreError> {
    uuid::Uuid::parse_str(id)
        .map(|_| ())
        .map_err(|_| CoreError::InvalidThreadId(id.to_string()))
}

fn session_response(thread: &LoadedThread, include_turns: bool) -> ThreadSessionResponse {
    let view = thread.to_thread(include_turns);
    let s = thread.state().settings.clone();
    ThreadSessionResponse {
        thread: view,
        model: s.model,
        model_provider: s.provider_id,
        cwd: s.cwd,
        approval_policy: s.approval_policy,
        approvals_reviewer: s.approvals_reviewer,
        sandbox: s.sandbox,
        reasoning_effort: s.reasoning_effort,
        service_tier: None,
        instruction_sources: Vec::new(),
        disabled_plugin_ids: Vec::new(),
    }
}

fn rollout_files(dir: &std::path::Path) -> Result<Vec<PathBuf>, CoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    Ok(entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("rollout-") && n.ends_with(".jsonl"))
        })
        .collect())
}

fn move_file(from: &std::path::Path, to: &std::path::Path) -> Result<(), CoreError> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::rename(from, to)?;
    Ok(())
}

/// Turns and history copied into a new thread (a fork).
#[derive(Default)]
struct Snapshot {
    turns: Vec<Turn>,
    history: Vec<crate::model::ResponseItem>,
    history_marks: Vec<(String, usize)>,
    token_usage: ThreadTokenUsage,
}

impl Snapshot {
    fn of_state(s: &ThreadState) -> Self {
        let mut turns = s.turns.clone();
        // Forking a running thread records the running turn as interrupted.
        for t in &mut turns {
            if t.status == TurnStatus::InProgress {
                t.status = TurnStatus::Interrupted;
            }
        }
        Self {
            turns,
            history: s.history.clone(),
            history_marks: s.history_marks.clone(),
            token_usage: s.token_usage,
        }
    }

    fn of_rollout(l: LoadedRollout) -> Self {
        Self {
            turns: l.turns,
            history: l.history,
            history_marks: l.history_marks,
            token_usage: l.token_usage.unwrap_or_default(),
        }
    }

    /// Keeps turns up to and including `last_turn_id`.
    fn through(mut self, last_turn_id: Option<&str>) -> Result<Self, CoreError> {
        let Some(last) = last_turn_id else {
            return Ok(self);
        };
        let pos = self
            .turns
            .iter()
            .position(|t| t.id == last)
            .ok_or_else(|| {
                CoreError::InvalidRequest(format!("lastTurnId {last} is not a turn of this thread"))
            })?;
        if let Some(next) = self.turns.get(pos + 1) {
            let cut = self
                .history_marks
                .iter()
                .find(|(id, _)| *id == next.id)
                .map(|(_, mark)| *mark)
                .unwrap_or(self.history.len());
            self.history.truncate(cut);
        }
        self.turns.truncate(pos + 1);
        self.history_marks.truncate(pos + 1);
        Ok(self)
    }

    /// The rollout lines that recreate this snapshot, turn by turn.
    fn lines(&self) -> Vec<RolloutLine> {
        let mut lines = Vec::new();
        let mut written = 0usize;
        for (i, turn) in self.turns.iter().enumerate() {
            let mark = self
                .history_marks
                .get(i)
                .map(|(_, m)| *m)
                .unwrap_or(written);
            // History before this turn's mark belongs to the turns already written.
            let mark = mark.clamp(written, self.history.len());
            lines.extend(
                self.history[written..mark]
                    .iter()
                    .cloned()
                    .map(RolloutLine::ResponseItem),
            );
            written = mark;
            lines.push(RolloutLine::TurnStarted {
                turn_id: turn.id.clone(),
                started_at: turn.started_at.unwrap_or_else(now_secs),
            });
            lines.extend(turn.items.iter().map(|item| RolloutLine::Item {
                turn_id: turn.id.clone(),
                item: item.clone(),
            }));
            let mut done = turn.clone();
            done.items.clear();
            lines.push(RolloutLine::TurnCompleted(done));
        }
        lines.extend(
            self.history[written..]
                .iter()
                .cloned()
                .map(RolloutLine::ResponseItem),
        );
        lines.push(RolloutLine::TokenUsage(self.token_usage));
        lines
    }
}

/// Waits until `turn_id` is no longer the thread's active turn (it is ending: its hooks and
/// bookkeeping run after its last output).
async fn wait_until_closed(thread: &LoadedThread, turn_id: &str) -> Result<(), CoreError> {
    if thread.wait_turn_freed(turn_id).await {
        Ok(())
    } else {
        Err(CoreError::InvalidRequest(
            "the previous turn is still ending; retry".into(),
        ))
    }
}
