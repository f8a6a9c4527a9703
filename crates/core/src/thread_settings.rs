//! Resolves a thread's settings from config, the current settings and a client's overrides.

use crate::config::Config;
use crate::error::CoreError;
use crate::thread::ThreadSettings;
use crate::thread_manager::ClientIdentity;
use tally_protocol::types::{SandboxPolicy, ThreadOverrides};

/// Settings for a new thread (`current` None) or an existing one with overrides applied.
pub(crate) fn settings_for(
    config: &Config,
    current: Option<&ThreadSettings>,
    o: &ThreadOverrides,
    client: &ClientIdentity,
) -> Result<ThreadSettings, CoreError> {
    let provider_id = match &o.model_provider {
        Some(id) if config.provider(id).is_none() => {
            return Err(CoreError::InvalidRequest(format!(
                "unknown model provider: {id}"
            )))
        }
        Some(id) => id.clone(),
        None => current
            .map(|c| c.provider_id.clone())
            .unwrap_or_else(|| config.model_provider.id.clone()),
    };
    let cwd = match (&o.cwd, current) {
        (Some(cwd), _) => absolute_cwd(Some(cwd))?,
        (None, Some(c)) => c.cwd.clone(),
        (None, None) => absolute_cwd(None)?,
    };
    let pick = |over: &Option<String>, cur: Option<&Option<String>>| {
        over.clone().or_else(|| cur.cloned().flatten())
    };
    Ok(ThreadSettings {
        model: o
            .model
            .clone()
            .or_else(|| current.map(|c| c.model.clone()))
            .unwrap_or_else(|| config.model.clone()),
        provider_id,
        cwd,
        approval_policy: o
            .approval_policy
            .clone()
            .or_else(|| current.map(|c| c.approval_policy.clone()))
            .unwrap_or_else(|| config.approval_policy.clone()),
        approvals_reviewer: o
            .approvals_reviewer
            .or(current.map(|c| c.approvals_reviewer))
            .unwrap_or(config.approvals_reviewer),
        sandbox: match (o.sandbox, current) {
            (Some(mode), _) => SandboxPolicy::from_mode(mode),
            (None, Some(c)) => c.sandbox.clone(),
            (None, None) => SandboxPolicy::from_mode(config.sandbox_mode),
        },
        reasoning_effort: current
            .and_then(|c| c.reasoning_effort.clone())
            .or_else(|| config.model_reasoning_effort.clone()),
        base_instructions: pick(&o.base_instructions, current.map(|c| &c.base_instructions)),
        developer_instructions: pick(
            &o.developer_instructions,
            current.map(|c| &c.developer_instructions),
        ),
        originator: client.originator.clone(),
        user_agent: client.user_agent.clone(),
        dynamic_tools: current.map(|c| c.dynamic_tools.clone()).unwrap_or_default(),
        // Follows the client that last started, resumed or forked the thread.
        request_user_input: config.request_user_input && client.experimental_api,
    })
}

/// An absolute working directory: the given one (relative ones resolve against the process cwd).
pub(crate) fn absolute_cwd(cwd: Option<&str>) -> Result<String, CoreError> {
    let base = std::env::current_dir().map_err(|e| CoreError::Internal(e.to_string()))?;
    let path = match cwd {
        Some(c) if !c.is_empty() => base.join(c),
        _ => base,
    };
    Ok(path.display().to_string())
}
