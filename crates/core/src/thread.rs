//! A loaded thread: its settings, turns, model history and the handle of its running turn.

use crate::model::ResponseItem;
use crate::rollout::{RolloutLine, RolloutWriter, ThreadMeta};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use tally_protocol::types::{
    ApprovalsReviewer, AskForApproval, DynamicToolSpec, SandboxPolicy, Thread, ThreadActiveFlag,
    ThreadItem, ThreadStatus, ThreadTokenUsage, TokenUsageBreakdown, Turn, TurnItemsView,
    TurnStatus, UserInput,
};
use tokio::sync::{mpsc, oneshot, Notify};

/// Settings that apply to the next turn; `turn/start` overrides stick.
#[derive(Debug, Clone)]
pub(crate) struct ThreadSettings {
    pub model: String,
    pub provider_id: String,
    pub cwd: String,
    pub approval_policy: AskForApproval,
    pub approvals_reviewer: ApprovalsReviewer,
    pub sandbox: SandboxPolicy,
    pub reasoning_effort: Option<String>,
    pub base_instructions: Option<String>,
    pub developer_instructions: Option<String>,
    pub originator: String,
    pub user_agent: String,
    /// Tools the client declared on `thread/start` and runs itself.
    pub dynamic_tools: Vec<DynamicToolSpec>,
    /// Offer `request_user_input`: config enables it and the client opted into the experimental API.
    pub request_user_input: bool,
}

/// A message to a running turn.
#[derive(Debug)]
pub(crate) enum TurnControl {
    Steer {
        input: Vec<UserInput>,
        client_id: Option<String>,
    },
    Interrupt {
        /// Fired once the turn has stopped its stream and reported usage.
        stopped: oneshot::Sender<()>,
        /// Awaited before `turn/completed`, so the interrupt's response goes first.
        proceed: oneshot::Receiver<()>,
    },
}

/// What a running turn is doing; only regular turns take steered input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TurnKind {
    /// A user turn (`turn/start`).
    Regular,
    /// A manual compaction (`thread/compact/start`).
    Compaction,
    /// A person's shell command run while the thread was idle (`thread/shellCommand`).
    UserShell,
    /// A code review (`review/start`).
    Review,
}

/// How long a next turn waits for an ending turn to free the thread: longer than a stalled
/// subscriber can hold the turn's last notifications (30 s, then it is dropped).
pub(crate) const ENDING_TURN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// The running turn of a thread.
#[derive(Debug)]
pub(crate) struct ActiveTurn {
    pub turn_id: String,
    pub control: mpsc::Sender<TurnControl>,
    pub kind: TurnKind,
    /// Its end is recorded and its last notifications are going out: the thread is freed after
    /// `turn/completed`, so a next turn's notifications cannot overtake it.
    pub ending: bool,
}

impl ActiveTurn {
    /// Whether the turn takes no more input: a next `turn/start` waits for it to close.
    pub fn is_ending(&self) -> bool {
        self.ending || self.control.is_closed()
    }
}

/// Mutable state of a loaded thread.
#[derive(Debug)]
pub(crate) struct ThreadState {
    pub meta: ThreadMeta,
    pub settings: ThreadSettings,
    pub turns: Vec<Turn>,
    pub history: Vec<ResponseItem>,
    pub token_usage: ThreadTokenUsage,
    /// History length when each turn started.
    pub history_marks: Vec<(String, usize)>,
    pub active: Option<ActiveTurn>,
    pub window: u64,
    pub updated_at: i64,
    /// What a person approved for the rest of the session.
    pub approvals: crate::tools::approval::SessionApprovals,
    /// The running turn waits for an approval.
    pub waiting_on_approval: bool,
    /// The running turn waits for answers to `request_user_input`.
    pub waiting_on_user_input: bool,
    /// The name a client gave the thread (`thread/name/set`).
    pub name: Option<String>,
    /// Model context made outside the turn loop (a person's shell command during a turn), added
    /// to the history before the next model request, where no call waits for its output.
    pub pending_history: Vec<ResponseItem>,
    /// The thread's goal, persisted with it.
    pub goal: Option<crate::rollout::GoalRecord>,
}

impl ThreadState {
    /// Opens a turn: marks where its history starts, lists it in progress and makes it the
    /// running turn.
    pub fn begin_turn(
        &mut self,
        turn_id: &str,
        control: mpsc::Sender<TurnControl>,
        kind: TurnKind,
    ) -> Result<(), crate::error::CoreError> {
        // Checked in the same critical section that opens the turn: two requests that waited for
        // the same ending turn cannot both start one.
        if self.active.is_some() {
            return Err(crate::error::CoreError::TurnRunning);
        }
        self.history_marks
            .push((turn_id.to_owned(), self.history.len()));
        self.turns.push(Turn {
            id: turn_id.to_owned(),
            root_turn_id: Some(turn_id.to_owned()),
            items: Vec::new(),
            items_view: TurnItemsView::Full,
            status: TurnStatus::InProgress,
            error: None,
            started_at: Some(crate::clock::now_secs()),
            completed_at: None,
            duration_ms: None,
        });
        self.active = Some(ActiveTurn {
            turn_id: turn_id.to_owned(),
            control,
            kind,
            ending: false,
        });
        Ok(())
    }
}

/// A thread held in memory.
#[derive(Debug)]
pub(crate) struct LoadedThread {
    pub id: String,
    pub ephemeral: bool,
    pub path: Option<PathBuf>,
    state: Mutex<ThreadState>,
    writer: Mutex<Option<RolloutWriter>>,
    /// The thread's Guardian reviewer, kept so later reviews continue its session.
    guardian: Mutex<Option<Arc<tally_guardian::Guardian>>>,
    /// Wakes whoever waits for an ending turn to free the thread.
    turn_freed: Notify,
}

impl LoadedThread {
    pub fn new(state: ThreadState, writer: Option<RolloutWriter>) -> Arc<Self> {
        Arc::new(Self {
            id: state.meta.id.clone(),
            ephemeral: writer.is_none(),
            path: writer.as_ref().map(|w| w.path().to_path_buf()),
            state: Mutex::new(state),
            writer: Mutex::new(writer),
            guardian: Mutex::new(None),
            turn_freed: Notify::new(),
        })
    }

    /// The thread's reviewer if it was made with `config`, else a new one from `make`.
    pub fn guardian(
        &self,
        config: tally_guardian::GuardianConfig,
        make: impl FnOnce(tally_guardian::GuardianConfig) -> Arc<tally_guardian::Guardian>,
    ) -> Arc<tally_guardian::Guardian> {
        let mut slot = self.guardian.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some(g) if *g.config() == config => g.clone(),
            _ => {
                let g = make(config);
                *slot = Some(g.clone());
                g
            }
        }
    }

    /// Locks the state; a poisoned lock (a panic elsewhere) still yields the data.
    pub fn state(&self) -> MutexGuard<'_, ThreadState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends lines to the rollout; failures are logged, the session goes on.
    pub fn persist(&self, lines: &[RolloutLine]) {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = writer.as_mut() {
            for line in lines {
                if let Err(e) = w.append(line) {
                    tracing::error!(thread = %self.id, error = %e, "failed to append to rollout");
                    return;
                }
            }
        }
    }

    /// Moves context made outside the turn loop into the history (and the rollout); call it
    /// only where no function call waits for its output.
    pub fn merge_pending_history(&self, state: &mut ThreadState) {
        if state.pending_history.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut state.pending_history);
        let lines: Vec<RolloutLine> = pending
            .iter()
            .cloned()
            .map(RolloutLine::ResponseItem)
            .collect();
        self.persist(&lines);
        state.history.extend(pending);
    }

    /// Flushes the rollout to disk.
    pub fn sync(&self) {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Err(e)) = writer.as_mut().map(RolloutWriter::sync) {
            tracing::warn!(thread = %self.id, error = %e, "failed to sync rollout");
        }
    }

    /// Records a completed item of `turn_id` on disk and in the turn.
    pub fn record_item(&self, turn_id: &str, item: &ThreadItem) {
        self.persist(&[RolloutLine::Item {
            turn_id: turn_id.to_owned(),
            item: item.clone(),
        }]);
        let mut state = self.state();
        state.updated_at = crate::clock::now_secs();
        if let Some(turn) = state.turns.iter_mut().rev().find(|t| t.id == turn_id) {
            turn.items.push(item.clone());
        }
    }

    /// Adds one model response's usage to the thread's totals, on disk too; returns the totals.
    pub fn add_token_usage(&self, last: TokenUsageBreakdown) -> ThreadTokenUsage {
        let usage = {
            let mut state = self.state();
            state.token_usage.total.add(&last);
            state.token_usage.last = last;
            state.token_usage
        };
        self.persist(&[RolloutLine::TokenUsage(usage)]);
        usage
    }

    /// Records a turn's end in memory and on disk (items are already there). The thread stays
    /// busy until [`Self::free_turn`], after the turn's last notification.
    pub fn close_turn(&self, turn: &Turn) {
        {
            let mut state = self.state();
            if let Some(t) = state.turns.iter_mut().rev().find(|t| t.id == turn.id) {
                t.status = turn.status;
                t.error = turn.error.clone();
                t.completed_at = turn.completed_at;
                t.duration_ms = turn.duration_ms;
            }
            if let Some(active) = state.active.as_mut().filter(|a| a.turn_id == turn.id) {
                active.ending = true;
            }
        }
        let stored = Turn {
            items: Vec::new(),
            ..turn.clone()
        };
        self.persist(&[RolloutLine::TurnCompleted(stored)]);
        self.sync();
    }

    /// Frees the thread for the next turn and wakes whoever waits for that.
    pub fn free_turn(&self, turn_id: &str) {
        {
            let mut state = self.state();
            if state.active.as_ref().is_some_and(|a| a.turn_id == turn_id) {
                state.active = None;
            }
        }
        self.turn_freed.notify_waiters();
    }

    /// Waits until `turn_id` is no longer the running turn (an ending turn's hooks and last
    /// notifications), at most [`ENDING_TURN_DEADLINE`]; false if it still is.
    pub async fn wait_turn_freed(&self, turn_id: &str) -> bool {
        let freed = async {
            loop {
                let woken = self.turn_freed.notified();
                tokio::pin!(woken);
                // Registered before the check, so a free between the two is not missed.
                woken.as_mut().enable();
                if self
                    .state()
                    .active
                    .as_ref()
                    .is_none_or(|a| a.turn_id != turn_id)
                {
                    return;
                }
                woken.await;
            }
        };
        tokio::time::timeout(ENDING_TURN_DEADLINE, freed)
            .await
            .is_ok()
    }

    /// The thread's status as clients see it.
    pub fn status(&self) -> ThreadStatus {
        let state = self.state();
        // Idle once the turn's end is recorded, though it still sends its last notifications.
        if state.active.as_ref().is_some_and(|a| !a.ending) {
            let mut active_flags = Vec::new();
            if state.waiting_on_approval {
                active_flags.push(ThreadActiveFlag::WaitingOnApproval);
            }
            if state.waiting_on_user_input {
                active_flags.push(ThreadActiveFlag::WaitingOnUserInput);
            }
            ThreadStatus::Active { active_flags }
        } else {
            ThreadStatus::Idle
        }
    }

    /// The protocol view of this thread.
    pub fn to_thread(&self, include_turns: bool) -> Thread {
        let status = self.status();
        let state = self.state();
        thread_view(
            &state,
            status,
            self.path.as_ref(),
            self.ephemeral,
            include_turns,
        )
    }
}

/// Builds the protocol `Thread` from state.
pub(crate) fn thread_view(
    state: &ThreadState,
    status: ThreadStatus,
    path: Option<&PathBuf>,
    ephemeral: bool,
    include_turns: bool,
) -> Thread {
    let meta = &state.meta;
    Thread {
        id: meta.id.clone(),
        session_id: meta.id.clone(),
        preview: crate::rollout::preview_of(&state.turns),
        ephemeral,
        model_provider: state.settings.provider_id.clone(),
        model: Some(state.settings.model.clone()),
        created_at: meta.created_at,
        updated_at: state.updated_at,
        recency_at: Some(state.updated_at),
        status,
        path: path.map(|p| p.display().to_string()),
        cwd: state.settings.cwd.clone(),
        cli_version: meta.cli_version.clone(),
        source: meta.source,
        thread_source: meta.thread_source.clone(),
        originator: meta.originator.clone(),
        forked_from_id: meta.forked_from_id.clone(),
        parent_thread_id: None,
        agent_nickname: None,
        agent_role: None,
        git_info: None,
        name: state.name.clone(),
        project_id: None,
        history_mode: Default::default(),
        reasoning_effort: state.settings.reasoning_effort.clone(),
        turns: if include_turns {
            state.turns.clone()
        } else {
            Vec::new()
        },
    }
}

#[cfg(test)]
#[path = "thread_tests.rs"]
mod tests;
