//! Keeps each thread's agent task with the thread itself, in its rollout (an `agent_task` line),
//! rather than in `auth.json`: a resumed thread signs with the task it had when the runtime that
//! registered it is still the current one; a fork starts without one and registers its own.

use crate::rollout::AgentTaskRecord;
use crate::thread_manager::ThreadManager;
use std::sync::{Arc, Weak};
use tally_auth::{AuthError, ThreadTaskStore};

/// A [`ThreadTaskStore`] on the threads' rollouts. It holds the manager weakly: the
/// `AuthManager` that holds this store is itself held by the manager, and neither may keep the
/// other alive at shutdown.
pub struct RolloutThreadTaskStore {
    threads: Weak<ThreadManager>,
}

impl RolloutThreadTaskStore {
    /// A store on the rollouts of `threads`.
    pub fn new(threads: &Arc<ThreadManager>) -> Self {
        Self {
            threads: Arc::downgrade(threads),
        }
    }
}

impl ThreadTaskStore for RolloutThreadTaskStore {
    fn load(&self, agent_runtime_id: &str, thread_id: &str) -> Option<String> {
        let task = self.threads.upgrade()?.agent_task(thread_id)?;
        (task.agent_runtime_id == agent_runtime_id).then_some(task.task_id)
    }

    fn save(
        &self,
        agent_runtime_id: &str,
        thread_id: &str,
        task_id: &str,
    ) -> Result<(), AuthError> {
        // Shutting down: nothing to keep it with.
        let Some(threads) = self.threads.upgrade() else {
            return Ok(());
        };
        threads
            .keep_agent_task(
                thread_id,
                AgentTaskRecord {
                    agent_runtime_id: agent_runtime_id.to_owned(),
                    task_id: task_id.to_owned(),
                },
            )
            .map_err(|e| AuthError::AgentIdentity(format!("thread {thread_id}: {e}")))
    }
}

#[cfg(test)]
#[path = "thread_tasks_tests.rs"]
mod tests;
