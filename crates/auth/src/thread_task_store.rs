//! Where a thread's agent task is kept between runs, so a resumed thread signs with the task it
//! had. Without a store, Tally keeps the tasks of the last 256 threads under `agent_identity` in
//! `auth.json`; an embedder that persists threads itself (the app-server's rollouts) can keep each
//! task with its thread instead by giving the manager a [`ThreadTaskStore`].

use crate::error::AuthError;

/// Keeps each thread's task, keyed by the runtime that registered it (a task of a runtime that was
/// dropped, e.g. after a revocation, is never used again).
pub trait ThreadTaskStore: Send + Sync {
    /// The task registered for `thread_id` under `agent_runtime_id`, if one was kept.
    fn load(&self, agent_runtime_id: &str, thread_id: &str) -> Option<String>;

    /// Keeps `task_id` for `thread_id` under `agent_runtime_id`; called once per registration.
    fn save(&self, agent_runtime_id: &str, thread_id: &str, task_id: &str)
        -> Result<(), AuthError>;
}
