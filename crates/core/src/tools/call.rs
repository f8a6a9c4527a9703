//! A model's function call read as one of Tally's tools.

use super::apply_patch::patch_in_command;
use super::spec::{APPLY_PATCH, EXEC_COMMAND};
use serde::Deserialize;
use serde_json::Value;
use tally_protocol::types::DynamicToolSpec;

/// `exec_command` arguments (fields Tally does not use are accepted and ignored).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ExecArgs {
    pub cmd: String,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub login: Option<bool>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub sandbox_permissions: Option<String>,
    #[serde(default)]
    pub justification: Option<String>,
}

impl ExecArgs {
    /// Whether the model asks to run outside the sandbox.
    pub fn escalate(&self) -> bool {
        self.sandbox_permissions.as_deref() == Some("require_escalated")
    }
}

#[derive(Debug, Deserialize)]
struct PatchArgs {
    input: String,
}

/// What a function call asks for.
#[derive(Debug, Clone)]
pub(crate) enum ToolCall {
    Exec(ExecArgs),
    /// A patch, from `apply_patch` or an `apply_patch <<'EOF'` shell command.
    ApplyPatch(String),
    Dynamic {
        tool: String,
        arguments: Value,
    },
    /// Arguments that do not decode; the model is told.
    Invalid(String),
    Unknown(String),
}

/// Reads a function call by name and JSON arguments.
pub(crate) fn classify(name: &str, arguments: &str, dynamic: &[DynamicToolSpec]) -> ToolCall {
    let invalid =
        |e: serde_json::Error| ToolCall::Invalid(format!("invalid arguments for {name}: {e}"));
    match name {
        EXEC_COMMAND => match serde_json::from_str::<ExecArgs>(arguments) {
            Ok(args) => match patch_in_command(&args.cmd) {
                Some(patch) => ToolCall::ApplyPatch(patch.to_string()),
                None => ToolCall::Exec(args),
            },
            Err(e) => invalid(e),
        },
        APPLY_PATCH => match serde_json::from_str::<PatchArgs>(arguments) {
            Ok(a) => ToolCall::ApplyPatch(a.input),
            Err(e) => invalid(e),
        },
        _ if dynamic
            .iter()
            .any(|d| matches!(d, DynamicToolSpec::Function { name: n, .. } if n == name)) =>
        {
            match serde_json::from_str::<Value>(arguments) {
                Ok(arguments) => ToolCall::Dynamic {
                    tool: name.to_string(),
                    arguments,
                },
                Err(e) => invalid(e),
            }
        }
        _ => ToolCall::Unknown(name.to_string()),
    }
}
