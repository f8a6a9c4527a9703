//! The action under review: what the reviewer reads in full, and the PII-free shape that
//! analytics may see.

use serde::Serialize;
use serde_json::json;

/// Longest justification the prompt carries; longer ones are cut and the cut is recorded.
const MAX_JUSTIFICATION_CHARS: usize = 2_000;
/// Largest action the reviewer is shown. An action it cannot see whole is never approved.
const MAX_ACTION_CHARS: usize = 64_000;

/// Whether a command asked to run with the sandbox or outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxPermissions {
    UseDefault,
    RequireEscalated,
}

impl SandboxPermissions {
    /// The wire spelling shared by the prompt and analytics.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxPermissions::UseDefault => "use_default",
            SandboxPermissions::RequireEscalated => "require_escalated",
        }
    }
}

/// An action that needs approval, with everything the reviewer must see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedAction {
    /// A command from `exec_command`.
    Exec {
        command: Vec<String>,
        cwd: String,
        justification: Option<String>,
        sandbox_permissions: SandboxPermissions,
        tty: bool,
    },
    /// A patch from `apply_patch`.
    ApplyPatch {
        cwd: String,
        files: Vec<String>,
        patch: String,
    },
}

/// The PII-minimized shape of a reviewed action: its kind and flags, never its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReviewedAction {
    UnifiedExec {
        sandbox_permissions: &'static str,
        /// Tally never asks for additional permissions, so this is always null.
        additional_permissions: (),
        tty: bool,
    },
    ApplyPatch {},
}

/// Why the review prompt could not be built; the action is then declined unreviewed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptBuildError {
    #[error("the planned action is {chars} characters, more than the reviewer can be shown")]
    ActionTooLarge { chars: usize },
}

impl PlannedAction {
    /// The shape analytics records.
    pub fn shape(&self) -> ReviewedAction {
        match self {
            PlannedAction::Exec {
                sandbox_permissions,
                tty,
                ..
            } => ReviewedAction::UnifiedExec {
                sandbox_permissions: sandbox_permissions.as_str(),
                additional_permissions: (),
                tty: *tty,
            },
            PlannedAction::ApplyPatch { .. } => ReviewedAction::ApplyPatch {},
        }
    }

    /// The "Planned action JSON" of the prompt, and whether part of it had to be cut.
    pub(crate) fn prompt_json(&self) -> Result<(String, bool), PromptBuildError> {
        let (value, truncated) = match self {
            PlannedAction::Exec {
                command,
                cwd,
                justification,
                sandbox_permissions,
                tty,
            } => {
                let (justification, truncated) = match justification {
                    Some(j) if j.chars().count() > MAX_JUSTIFICATION_CHARS => (
                        Some(j.chars().take(MAX_JUSTIFICATION_CHARS).collect::<String>()),
                        true,
                    ),
                    other => (other.clone(), false),
                };
                let value = json!({
                    "tool": "exec_command",
                    "command": command,
                    "cwd": cwd,
                    "environment_id": null,
                    "justification": justification,
                    "sandbox_permissions": sandbox_permissions.as_str(),
                    "tty": tty,
                });
                (value, truncated)
            }
            PlannedAction::ApplyPatch { cwd, files, patch } => {
                let value = json!({
                    "tool": "apply_patch",
                    "cwd": cwd,
                    "files": files,
                    "patch": patch,
                });
                (value, false)
            }
        };
        let text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string());
        let chars = text.chars().count();
        if chars > MAX_ACTION_CHARS {
            return Err(PromptBuildError::ActionTooLarge { chars });
        }
        Ok((text, truncated))
    }
}

#[cfg(test)]
#[path = "action_tests.rs"]
mod tests;
