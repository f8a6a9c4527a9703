//! The tool definitions offered to the model in every Responses request, as Codex offers them.

use serde_json::{json, Value};
use tally_protocol::types::DynamicToolSpec;

/// The shell tool's name.
pub(crate) const EXEC_COMMAND: &str = "exec_command";
/// The patch tool's name.
pub(crate) const APPLY_PATCH: &str = "apply_patch";

/// Every tool of a thread: the shell, `apply_patch`, `request_user_input` when the thread
/// offers it, then the client's dynamic tools.
pub(crate) fn tool_definitions(
    dynamic: &[DynamicToolSpec],
    request_user_input: bool,
) -> Vec<Value> {
    let mut tools = vec![exec_command(), apply_patch()];
    if request_user_input {
        tools.push(super::user_input::definition());
    }
    tools.extend(dynamic.iter().filter_map(|spec| match spec {
        DynamicToolSpec::Function {
            name,
            description,
            input_schema,
            ..
        } => Some(json!({
            "type": "function",
            "name": name,
            "description": description,
            "strict": false,
            "parameters": input_schema,
        })),
        // Namespaced groups are not offered yet; their tools stay unknown to the model.
        DynamicToolSpec::Namespace { .. } => None,
    }));
    tools
}

fn exec_command() -> Value {
    json!({
        "type": "function",
        "name": EXEC_COMMAND,
        "description": "Runs a shell command and returns its output.",
        "strict": false,
        "parameters": {
            "type": "object",
            "properties": {
                "cmd": {"type": "string", "description": "Shell command to execute."},
                "workdir": {"type": "string", "description": "Working directory; defaults to the turn's cwd."},
                "shell": {"type": "string", "description": "Shell binary to launch. Defaults to /bin/bash."},
                "login": {"type": "boolean", "description": "Whether to run the shell with -l/-i semantics. Defaults to true."},
                "tty": {"type": "boolean", "description": "Ignored: commands run without a terminal."},
                "yield_time_ms": {"type": "number", "description": "Ignored: commands run to completion."},
                "max_output_tokens": {"type": "number", "description": "Maximum number of tokens to return."},
                "timeout_ms": {"type": "number", "description": "Kill the command after this many milliseconds (default 120000)."},
                "sandbox_permissions": {"type": "string", "enum": ["use_default", "require_escalated"], "description": "Ask the user to run this command outside the sandbox."},
                "justification": {"type": "string", "description": "Why escalation is needed; shown to the user."},
                "prefix_rule": {"type": "array", "items": {"type": "string"}, "description": "Suggested command prefix to allow in the future."}
            },
            "required": ["cmd"],
            "additionalProperties": false
        }
    })
}

fn apply_patch() -> Value {
    json!({
        "type": "function",
        "name": APPLY_PATCH,
        "description": "Edits files with a patch in the apply_patch format: *** Begin Patch, then *** Add File: / *** Update File: (optionally *** Move to:) / *** Delete File: sections with @@ hunks of ' ', '-' and '+' lines, then *** End Patch.",
        "strict": false,
        "parameters": {
            "type": "object",
            "properties": {
                "input": {"type": "string", "description": "The entire contents of the apply_patch command."}
            },
            "required": ["input"],
            "additionalProperties": false
        }
    })
}
