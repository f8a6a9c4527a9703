//! Realistic wire events shaped like `shared/ANALYTICS-EVENTS.md`, for tests, the load generator
//! and anyone who needs a plausible batch. Nothing here is used by the server itself.

use serde_json::{json, Value};

/// `app_server_client` block of a client.
pub fn app_server_client(client: &str) -> Value {
    json!({
        "product_client_id": client,
        "client_name": client,
        "client_version": "0.1.0",
        "rpc_transport": "stdio",
        "experimental_api_enabled": null
    })
}

/// `runtime` block.
pub fn runtime() -> Value {
    json!({
        "codex_rs_version": "0.169.0",
        "runtime_os": "linux",
        "runtime_os_version": "12.0.0",
        "runtime_arch": "x86_64"
    })
}

/// One wire event `{"event_type", "event_params"}` (no `event_id`, like Codex).
pub fn wire(event_type: &str, params: Value) -> Value {
    json!({ "event_type": event_type, "event_params": params })
}

/// The same with an `event_id` (like Tally).
pub fn wire_with_id(event_type: &str, params: Value, event_id: &str) -> Value {
    json!({ "event_type": event_type, "event_params": params, "event_id": event_id })
}

/// A `{"events": [...]}` body.
pub fn batch(events: Vec<Value>) -> Value {
    json!({ "events": events })
}

/// The events of one session of `turns` turns for `client`, starting at `start_s` (Unix seconds):
/// a thread start, per turn a hook run, a command (approved by the user), a file change and the
/// turn event, and one guardian review. Ids are unique per `session`.
pub fn session(client: &str, session: u64, turns: u64, start_s: i64) -> Vec<Value> {
    let thread = format!("thr-{session}");
    let asc = app_server_client(client);
    let rt = runtime();
    let mut out = vec![wire(
        "codex_thread_initialized",
        json!({
            "thread_id": thread, "session_id": thread, "app_server_client": asc, "runtime": rt,
            "model": "gpt-x", "ephemeral": false, "is_worktree": null, "thread_source": "user",
            "initialization_mode": "new", "subagent_source": null, "parent_thread_id": null,
            "forked_from_thread_id": null, "created_at": start_s
        }),
    )];
    for t in 0..turns {
        let turn = format!("turn-{session}-{t}");
        let ts = start_s + i64::try_from(t).unwrap_or(0) * 60;
        let ts_ms = ts * 1000;
        let interrupted = t % 5 == 4;
        out.push(wire(
            "codex_hook_run",
            json!({
                "thread_id": thread, "turn_id": turn, "product_client_id": client,
                "model_slug": "gpt-x", "hook_name": "PreToolUse", "hook_source": "user",
                "handler_type": "command", "execution_mode": "sync",
                "status": if t % 7 == 6 { "failed" } else { "completed" }
            }),
        ));
        out.push(wire(
            "codex_review_event",
            json!({
                "thread_id": thread, "turn_id": turn, "item_id": format!("call-{session}-{t}"),
                "review_id": format!("user:{t}"), "app_server_client": asc, "runtime": rt,
                "thread_source": "user", "subagent_source": null, "parent_thread_id": null,
                "subject_kind": "command_execution", "subject_name": "command_execution",
                "reviewer": "user", "trigger": "initial",
                "status": if t % 4 == 3 { "denied" } else { "approved" },
                "resolution": "none", "started_at_ms": ts_ms + 100,
                "completed_at_ms": ts_ms + 100 + 800 + i64::try_from(t).unwrap_or(0) * 10,
                "duration_ms": 800 + t * 10
            }),
        ));
        out.push(wire(
            "codex_command_execution_event",
            json!({
                "thread_id": thread, "session_id": thread, "turn_id": turn, "root_turn_id": turn,
                "item_id": format!("call-{session}-{t}"), "cell_id": null, "parent_call_id": null,
                "originating_response_id": "resp_1", "subsequent_response_id": "resp_2",
                "app_server_client": asc, "runtime": rt, "thread_source": "user",
                "subagent_source": null, "parent_thread_id": null, "tool_name": "shell",
                "tool_event_type": "model_tool_call", "started_at_ms": ts_ms + 100,
                "completed_at_ms": ts_ms + 1100, "duration_ms": 1000,
                "execution_duration_ms": 150, "review_count": 1, "guardian_review_count": 0,
                "user_review_count": 1,
                "final_approval_outcome": if t % 4 == 3 { "user_denied" } else { "user_approved" },
                "terminal_status": if t % 4 == 3 { "rejected" } else { "completed" },
                "failure_kind": if t % 4 == 3 { Value::from("approval_denied") } else { Value::Null },
                "requested_additional_permissions": false, "requested_network_access": false,
                "sandbox_backend": "none", "model_slug": "gpt-x", "reasoning_effort": null,
                "plugin_id": null, "script_path": null, "command_execution_source": "agent",
                "exit_code": if t % 4 == 3 { Value::Null } else { Value::from(0) },
                "command_total_action_count": 1, "command_read_action_count": 0,
                "command_list_files_action_count": 0, "command_search_action_count": 0,
                "command_unknown_action_count": 1
            }),
        ));
        out.push(wire(
            "codex_file_change_event",
            json!({
                "thread_id": thread, "session_id": thread, "turn_id": turn, "root_turn_id": turn,
                "item_id": format!("patch-{session}-{t}"), "app_server_client": asc,
                "runtime": rt, "tool_name": "apply_patch", "tool_event_type": "model_tool_call",
                "started_at_ms": ts_ms + 1200, "completed_at_ms": ts_ms + 1230,
                "duration_ms": 30, "execution_duration_ms": null, "review_count": 0,
                "guardian_review_count": 0, "user_review_count": 0,
                "final_approval_outcome": "not_needed", "terminal_status": "completed",
                "failure_kind": null, "requested_additional_permissions": false,
                "requested_network_access": false, "file_change_count": 1, "file_add_count": 1,
                "file_update_count": 0, "file_delete_count": 0, "file_move_count": 0
            }),
        ));
        out.push(wire(
            "codex_turn_event",
            json!({
                "thread_id": thread, "session_id": thread, "turn_id": turn, "root_turn_id": turn,
                "app_server_client": asc, "runtime": rt, "thread_source": "user",
                "subagent_source": null, "parent_thread_id": null, "ephemeral": false,
                "initialization_mode": "new", "critical_path_status": "disabled",
                "model": "gpt-x", "model_provider": "openai", "sandbox_policy": "workspace_write",
                "reasoning_effort": null, "reasoning_summary": "auto", "service_tier": "default",
                "approval_policy": "on-request", "approvals_reviewer": "user",
                "guardian_v2_enabled": false, "sandbox_network_access": false,
                "is_first_turn": t == 0, "multi_agent_version": "v1",
                "collaboration_mode": "default", "num_input_images": 0,
                "status": if interrupted { "interrupted" } else { "completed" },
                "explicit_client_interrupt_requested_at_ms": null, "turn_error": null,
                "codex_error_kind": null, "codex_error_http_status_code": null,
                "usage_limit_window_minutes": null, "steer_count": 0,
                "total_tool_call_count": 2, "shell_command_count": 1, "file_change_count": 1,
                "mcp_tool_call_count": 0, "dynamic_tool_call_count": 0,
                "subagent_tool_call_count": 0, "web_search_count": 0,
                "image_generation_count": 0,
                "input_tokens": if interrupted { Value::Null } else { Value::from(1200) },
                "cached_input_tokens": if interrupted { Value::Null } else { Value::from(200) },
                "cache_write_input_tokens": 0,
                "output_tokens": if interrupted { Value::Null } else { Value::from(300) },
                "reasoning_output_tokens": 0,
                "total_tokens": if interrupted { Value::Null } else { Value::from(1500) },
                "before_first_sampling_ms": 5, "sampling_ms": 900, "compaction_ms": 0,
                "between_sampling_overhead_ms": 3, "tool_blocking_ms": 1000,
                "after_last_sampling_ms": 2, "sampling_request_count": 2,
                "sampling_retry_count": 0, "tools_change_count": 0,
                "duration_ms": 2000 + t * 100, "started_at": ts, "completed_at": ts + 2
            }),
        ));
    }
    out.push(wire(
        "codex_guardian_review",
        json!({
            "session_id": thread, "app_server_client": asc, "runtime": rt,
            "guardian_context_mode": "thread_owned", "thread_id": thread,
            "turn_id": format!("turn-{session}-0"), "review_id": format!("rev-{session}"),
            "target_item_id": "call_4", "approval_request_source": "main_turn",
            "reviewed_action": {"type": "unified_exec", "sandbox_permissions": "require_escalated",
                                "additional_permissions": null, "tty": false},
            "reviewed_action_truncated": false, "decision": "denied",
            "terminal_status": "failed_closed", "failure_reason": "parse_error",
            "attempt_count": 3, "risk_level": null, "user_authorization": null, "outcome": null,
            "guardian_thread_id": "thr-g", "guardian_session_kind": "trunk_reused",
            "guardian_model": "gpt-x", "review_timeout_ms": 90000, "tool_call_count": null,
            "time_to_first_token_ms": 38, "completion_latency_ms": 65, "started_at": start_s,
            "completed_at": start_s, "input_tokens": 120, "cached_input_tokens": 0,
            "cache_write_input_tokens": 0, "output_tokens": 12, "reasoning_output_tokens": 0,
            "total_tokens": 132
        }),
    ));
    out
}

/// A thread a client or server starts on its own inside `session` (a title, a Guardian reviewer,
/// a subagent: `source` is its `thread_source`), with one completed turn of 100 tokens at
/// `start_s`.
pub fn helper_thread(
    client: &str,
    thread: &str,
    session: &str,
    source: &str,
    start_s: i64,
) -> Vec<Value> {
    let asc = app_server_client(client);
    let rt = runtime();
    vec![
        wire(
            "codex_thread_initialized",
            json!({
                "thread_id": thread, "session_id": session, "app_server_client": asc,
                "runtime": rt, "model": "gpt-x-mini", "ephemeral": true, "is_worktree": null,
                "thread_source": source, "initialization_mode": "new", "subagent_source": null,
                "parent_thread_id": null, "forked_from_thread_id": null, "created_at": start_s
            }),
        ),
        wire(
            "codex_turn_event",
            json!({
                "thread_id": thread, "session_id": session, "turn_id": format!("{thread}-turn"),
                "app_server_client": asc, "runtime": rt, "thread_source": source,
                "model": "gpt-x-mini", "status": "completed", "input_tokens": 90,
                "output_tokens": 10, "total_tokens": 100, "duration_ms": 50,
                "started_at": start_s, "completed_at": start_s
            }),
        ),
    ]
}
