//! `codex_hook_run`: one event per `hook/completed`, built from the run summary and the thread's
//! context. It carries where the hook came from and how it ended, never its command or output.

use serde::Serialize;
use tally_protocol::types::{
    HookEventName, HookExecutionMode, HookHandlerType, HookRunNotification, HookRunStatus,
    HookSource,
};

/// `codex_hook_run` params (no common blocks; `product_client_id` travels flat).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HookRunEvent {
    pub thread_id: Option<String>,
    pub turn_id: Option<String>,
    pub product_client_id: Option<String>,
    pub model_slug: Option<String>,
    pub hook_name: Option<&'static str>,
    pub hook_source: Option<&'static str>,
    pub handler_type: Option<&'static str>,
    pub execution_mode: Option<&'static str>,
    pub status: Option<&'static str>,
}

/// Builds the event for a completed run; the client and model come from the reducer's state.
pub(crate) fn hook_run_event(
    n: &HookRunNotification,
    product_client_id: Option<String>,
    model_slug: Option<String>,
) -> HookRunEvent {
    let run = &n.run;
    HookRunEvent {
        thread_id: Some(n.thread_id.clone()),
        turn_id: n.turn_id.clone(),
        product_client_id,
        model_slug,
        hook_name: Some(hook_name(run.event_name)),
        hook_source: Some(hook_source(run.source)),
        handler_type: Some(match run.handler_type {
            HookHandlerType::Command => "command",
            HookHandlerType::McpTool => "mcp_tool",
            HookHandlerType::Prompt => "prompt",
            HookHandlerType::Agent => "agent",
        }),
        execution_mode: Some(match run.execution_mode {
            HookExecutionMode::Sync => "sync",
            HookExecutionMode::Async => "async",
        }),
        status: Some(match run.status {
            HookRunStatus::Completed => "completed",
            HookRunStatus::Blocked => "blocked",
            HookRunStatus::Stopped => "stopped",
            // A run still `running` at completion is reported as failed, as Codex does.
            HookRunStatus::Failed | HookRunStatus::Running => "failed",
        }),
    }
}

/// PascalCase, the same spelling as the hooks.json key.
fn hook_name(e: HookEventName) -> &'static str {
    match e {
        HookEventName::PreModelRequest => "PreModelRequest",
        HookEventName::PostModelRequest => "PostModelRequest",
        HookEventName::PreToolUse => "PreToolUse",
        HookEventName::PermissionRequest => "PermissionRequest",
        HookEventName::PostToolUse => "PostToolUse",
        HookEventName::PreCompact => "PreCompact",
        HookEventName::PostCompact => "PostCompact",
        HookEventName::SessionStart => "SessionStart",
        HookEventName::SessionEnd => "SessionEnd",
        HookEventName::UserPromptSubmit => "UserPromptSubmit",
        HookEventName::SubagentStart => "SubagentStart",
        HookEventName::SubagentStop => "SubagentStop",
        HookEventName::Stop => "Stop",
        HookEventName::Interrupt => "Interrupt",
    }
}

/// snake_case in analytics (camelCase on the wire).
fn hook_source(s: HookSource) -> &'static str {
    match s {
        HookSource::System => "system",
        HookSource::User => "user",
        HookSource::Project => "project",
        HookSource::Mdm => "mdm",
        HookSource::SessionFlags => "session_flags",
        HookSource::Plugin => "plugin",
        HookSource::CloudRequirements => "cloud_requirements",
        HookSource::CloudManagedConfig => "cloud_managed_config",
        HookSource::LegacyManagedConfigFile => "legacy_managed_config_file",
        HookSource::LegacyManagedConfigMdm => "legacy_managed_config_mdm",
        HookSource::Unknown => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tally_protocol::types::{HookOutputEntry, HookOutputEntryKind, HookRunSummary, HookScope};

    /// The wire (camelCase) name of a protocol enum value.
    fn wire(v: impl serde::Serialize) -> String {
        serde_json::to_value(v)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    fn snake(camel: &str) -> String {
        camel.chars().fold(String::new(), |mut out, c| {
            if c.is_ascii_uppercase() {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            out
        })
    }

    #[test]
    fn sources_names_and_statuses_are_the_protocol_values_respelled() {
        use HookSource::*;
        for source in [
            System,
            User,
            Project,
            Mdm,
            SessionFlags,
            Plugin,
            CloudRequirements,
            CloudManagedConfig,
            LegacyManagedConfigFile,
            LegacyManagedConfigMdm,
            Unknown,
        ] {
            assert_eq!(hook_source(source), snake(&wire(source)));
        }
        use HookEventName::*;
        for name in [
            PreModelRequest,
            PostModelRequest,
            PreToolUse,
            PermissionRequest,
            PostToolUse,
            PreCompact,
            PostCompact,
            SessionStart,
            SessionEnd,
            UserPromptSubmit,
            SubagentStart,
            SubagentStop,
            Stop,
            Interrupt,
        ] {
            let wire = wire(name);
            let pascal = wire[..1].to_ascii_uppercase() + &wire[1..];
            assert_eq!(hook_name(name), pascal);
        }
    }

    #[test]
    fn event_has_exactly_the_documented_fields_and_no_command_or_output() {
        let n = HookRunNotification {
            thread_id: "thr-1".into(),
            turn_id: Some("turn-1".into()),
            run: HookRunSummary {
                id: "pre-tool-use:0:/h/hooks.json:call_1".into(),
                event_name: HookEventName::PreToolUse,
                handler_type: HookHandlerType::Command,
                execution_mode: HookExecutionMode::Sync,
                scope: HookScope::Turn,
                source_path: "/h/hooks.json".into(),
                source: HookSource::SessionFlags,
                display_order: 0,
                status: HookRunStatus::Running,
                status_message: Some("CANARY-status".into()),
                started_at: 1,
                completed_at: Some(2),
                duration_ms: Some(3),
                entries: vec![HookOutputEntry {
                    kind: HookOutputEntryKind::Feedback,
                    text: "CANARY-output".into(),
                }],
            },
        };
        let e = hook_run_event(&n, Some("my-ide".into()), Some("gpt-x".into()));
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"thread_id":"thr-1","turn_id":"turn-1","product_client_id":"my-ide","model_slug":"gpt-x",
                   "hook_name":"PreToolUse","hook_source":"session_flags","handler_type":"command",
                   "execution_mode":"sync","status":"failed"})
        );
    }
}
