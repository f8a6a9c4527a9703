//! Hooks the manager runs outside a turn: discovery for a compaction, and SessionEnd when a
//! thread leaves this process (archived, unloaded when idle, or the server shuts down).

use super::ThreadManager;
use crate::hook_dispatch::{run_event, EventHooks, EventRequest, HookSite};
use crate::thread::LoadedThread;
use std::sync::Arc;
use std::time::Duration;
use tally_hooks::HookPayload;

/// The longest a SessionEnd handler may run, whatever its own `timeout`: the session is ending
/// and someone (a client archiving, a server shutting down) waits. HOOKS.md gives no SessionEnd
/// deadline; Codex caps these hooks at a few seconds too.
const SESSION_END_TIMEOUT_CAP: Duration = Duration::from_secs(5);

/// SessionEnd `reason`. Tally has none of Claude Code's specific reasons (`clear`, `logout`,
/// `prompt_input_exit`), so it sends the fallback Codex also uses.
const SESSION_END_REASON: &str = "other";

impl ThreadManager {
    /// The hooks a unit of work on `thread` may run, discovered now for its cwd.
    pub(super) fn event_hooks(&self, thread: &LoadedThread) -> EventHooks {
        let cwd = thread.state().settings.cwd.clone();
        EventHooks::discover(
            &self.config.home,
            std::path::Path::new(&cwd),
            Some(self.async_hooks.clone()),
        )
    }

    /// SessionEnd for thread `id`, if its SessionStart ran in this process and no turn runs
    /// (a running turn makes `thread/archive` fail, so the session goes on). Runs at most once
    /// per session.
    pub async fn end_session(&self, id: &str) {
        let Some(thread) = self.loaded(id) else {
            return;
        };
        if thread.state().active.is_some() {
            return;
        }
        self.run_session_end(&thread).await;
    }

    /// Whether thread `id` is loaded and running a turn (a user turn, compaction or shell command).
    pub fn has_running_turn(&self, id: &str) -> bool {
        self.loaded(id).is_some_and(|t| t.state().active.is_some())
    }

    /// Idle unload: ends the thread's session (SessionEnd hooks) and drops it from memory. Its
    /// rollout stays, so `thread/resume` loads it again. Returns false, keeping the thread, when
    /// it is not loaded or a turn runs.
    pub async fn unload_thread(&self, id: &str) -> bool {
        let Some(thread) = self.loaded(id) else {
            return false;
        };
        if thread.state().active.is_some() {
            return false;
        }
        self.run_session_end(&thread).await;
        let mut threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        // A turn may have started while SessionEnd ran; the thread then stays.
        if thread.state().active.is_some() {
            return false;
        }
        self.async_hooks.forget_thread(id);
        threads.remove(id).is_some()
    }

    /// Server shutdown: SessionEnd for every session that started (concurrently, each handler
    /// capped), then every async hook still running is cancelled.
    pub async fn shutdown(&self) {
        let threads: Vec<Arc<LoadedThread>> = self
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        futures::future::join_all(threads.iter().map(|t| self.run_session_end(t))).await;
        self.async_hooks.cancel_all();
    }

    async fn run_session_end(&self, thread: &Arc<LoadedThread>) {
        let started = self
            .hook_sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&thread.id);
        if !started {
            return;
        }
        // Async SessionEnd handlers are not detached: shutdown would cancel them at once.
        let cwd = thread.state().settings.cwd.clone();
        let hooks = EventHooks::discover(&self.config.home, std::path::Path::new(&cwd), None);
        let last_turn = thread.state().turns.last().map(|t| t.id.clone());
        let site = HookSite {
            thread,
            sink: &self.sink,
            turn_id: last_turn,
        };
        // Output is ignored: the session is over, nothing is left to block or inform.
        run_event(
            &hooks,
            &site,
            EventRequest {
                payload: HookPayload::SessionEnd {
                    reason: SESSION_END_REASON.into(),
                },
                run_suffix: None,
                subjects: &[],
                timeout_cap: Some(SESSION_END_TIMEOUT_CAP),
            },
        )
        .await;
    }
}
