//! What a person does to a thread besides prompting: name it (`thread/name/set`) and run their
//! own shell command in it (`thread/shellCommand`).

use super::{validate_thread_id, ThreadManager};
use crate::clock::new_id;
use crate::error::CoreError;
use crate::rollout::{rollout_path, RolloutLine, RolloutWriter};
use crate::user_shell::{UserShellRun, DEFAULT_TIMEOUT};
use std::time::Duration;
use tally_protocol::types::{ThreadSetNameParams, ThreadShellCommandParams};
use tokio::sync::oneshot;

impl ThreadManager {
    /// `thread/name/set`: names a thread, loaded or on disk, and keeps the name in its rollout
    /// (the last name wins). Returns the name as stored (trimmed).
    pub fn set_thread_name(&self, params: &ThreadSetNameParams) -> Result<String, CoreError> {
        validate_thread_id(&params.thread_id)?;
        let name = params.name.trim();
        if name.is_empty() {
            return Err(CoreError::InvalidParams(
                "Invalid params for thread/name/set: field `name`: must not be empty".into(),
            ));
        }
        let line = RolloutLine::ThreadName {
            name: name.to_string(),
        };
        if let Some(t) = self.loaded(&params.thread_id) {
            t.state().name = Some(name.to_string());
            t.persist(std::slice::from_ref(&line));
            t.sync();
            return Ok(name.to_string());
        }
        let path = [
            self.config.sessions_dir(),
            self.config.archived_sessions_dir(),
        ]
        .iter()
        .map(|dir| rollout_path(dir, &params.thread_id))
        .find(|p| p.exists())
        .ok_or_else(|| CoreError::ThreadNotFound(params.thread_id.clone()))?;
        let mut writer = RolloutWriter::open(&path)?;
        writer.append(&line)?;
        writer.sync()?;
        Ok(name.to_string())
    }

    /// `thread/shellCommand`: runs a person's command unsandboxed and without approval, as an
    /// item of the running turn, or of a turn of its own when the thread is idle. Returns the
    /// gate to fire once the `{}` response is sent, so the command's notifications follow it.
    pub fn shell_command(
        &self,
        params: ThreadShellCommandParams,
    ) -> Result<oneshot::Sender<()>, CoreError> {
        let thread = self.require_loaded(&params.thread_id)?;
        if params.command.trim().is_empty() {
            return Err(CoreError::InvalidParams(
                "Invalid params for thread/shellCommand: field `command`: must not be empty".into(),
            ));
        }
        let timeout = params
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_TIMEOUT);
        let (gate_tx, gate_rx) = oneshot::channel();
        let run = UserShellRun {
            thread: thread.clone(),
            sink: self.sink.clone(),
            turn_id: String::new(),
            item_id: new_id(),
            command: params.command,
            timeout,
        };
        tokio::spawn(run.start(gate_rx));
        Ok(gate_tx)
    }
}
