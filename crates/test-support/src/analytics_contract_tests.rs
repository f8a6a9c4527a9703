use super::*;
use serde_json::json;

fn contract() -> &'static AnalyticsContract {
    AnalyticsContract::get()
}

fn has(event: &str, key: &str) -> bool {
    contract()
        .fields_of(event)
        .is_some_and(|keys| keys.contains(key))
}

#[test]
fn the_document_s_tables_become_field_lists() {
    for key in [
        "turn_id",
        "critical_path_duration_ms",
        "critical_path_unknown_ms",
        "reasoning_effort",
        "app_server_client",
        "thread_source",
    ] {
        assert!(has("codex_turn_event", key), "{key}");
    }
    // Tool events get the shared base, hook runs and fingerprints no common blocks.
    assert!(has("codex_command_execution_event", "item_id"));
    assert!(has(
        "codex_command_execution_event",
        "command_list_files_action_count"
    ));
    assert!(has("codex_dynamic_tool_call_event", "terminal_status"));
    assert!(!has("codex_hook_run", "app_server_client"));
    assert!(!has("codex_accepted_line_fingerprints", "runtime"));
    assert!(has("codex_guardian_review", "session_id"));
    assert!(!has("codex_guardian_review", "thread_source"));
    assert!(has("codex_server_request_event", "latency_ms"));
    assert!(has("tally_analytics_dropped", "window_end_ms"));
    assert!(contract().fields_of("codex_made_up_event").is_none());
}

fn steer(params: serde_json::Value) -> serde_json::Value {
    json!({"event_type": "codex_turn_steer_event", "event_id": "e1", "event_params": params})
}

#[test]
fn a_documented_event_passes() {
    let event = steer(json!({
        "thread_id": "019a0000-0000-7000-8000-000000000001", "session_id": "thr-1",
        "expected_turn_id": "turn-4", "accepted_turn_id": null, "num_input_images": 0,
        "result": "rejected", "rejection_reason": "expected_turn_mismatch", "created_at": 1,
        "thread_source": "user", "subagent_source": null, "parent_thread_id": null,
        "app_server_client": {"product_client_id": "Visual Studio Code", "client_name": "Visual Studio Code",
            "client_version": "1.2.3", "rpc_transport": "stdio", "experimental_api_enabled": null},
        "runtime": {"codex_rs_version": "0.1.0", "runtime_os": "linux", "runtime_os_version": "12",
            "runtime_arch": "x86_64"}
    }));
    assert_eq!(contract().check(&event), Vec::<String>::new());
}

#[test]
fn unknown_keys_free_text_and_unknown_types_are_breaches() {
    let breaches = contract().check(&steer(json!({
        "thread_id": "thr-1",
        "prompt": "x",
        "expected_turn_id": "steer my secret plan",
        "rejection_reason": "/home/alice/project",
        "app_server_client": {"client_name": "ide", "cwd": "x"},
        "runtime": {"runtime_os": "linux\u{1b}[2J"},
    })));
    let text = breaches.join("\n");
    for expected in [
        "undocumented key \"prompt\"",
        "expected_turn_id = \"steer my secret plan\"",
        "rejection_reason = \"/home/alice/project\"",
        "undocumented key app_server_client.cwd",
        "runtime_os = ",
    ] {
        assert!(text.contains(expected), "{expected} not in:\n{text}");
    }
    let long = "a".repeat(65);
    assert_eq!(
        contract().check(&steer(json!({"thread_id": long}))).len(),
        1
    );
    assert_eq!(
        contract().check(&json!({"event_type": "codex_made_up_event", "event_params": {}})),
        vec!["unknown event_type \"codex_made_up_event\"".to_owned()]
    );
}

#[test]
fn reviewed_actions_carry_only_their_variant_s_keys() {
    let review = |action: serde_json::Value| json!({"event_type": "codex_guardian_review", "event_params": {"reviewed_action": action}});
    let ok = review(
        json!({"type": "unified_exec", "sandbox_permissions": "require_escalated",
        "additional_permissions": {"network": {"enabled": true}}, "tty": false}),
    );
    assert_eq!(contract().check(&ok), Vec::<String>::new());
    let leaky = review(json!({"type": "shell", "program": "rm", "rationale": "because"}));
    assert_eq!(contract().check(&leaky).len(), 2);
}
