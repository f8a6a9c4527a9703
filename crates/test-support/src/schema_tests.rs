//! Tests of schema validation against the real Codex schema: realistic messages from PROTOCOL.md section 9
//! pass, and typical mistakes fail with a useful message.

use serde_json::{json, Value};

use super::*;

const T: &str = "019a0000-0000-7000-8000-000000000001";
const U: &str = "019a0000-0000-7000-8000-000000000002";

fn thread() -> Value {
    json!({
        "id": T, "sessionId": T, "preview": "", "ephemeral": false, "modelProvider": "openai",
        "createdAt": 1700000000, "updatedAt": 1700000000, "status": {"type": "idle"},
        "path": null, "cwd": "/home/u/project", "cliVersion": "0.1.0", "source": "vscode",
        "projectId": null, "gitInfo": null, "name": null, "turns": []
    })
}

fn turn(status: &str, items: Value) -> Value {
    json!({
        "id": U, "items": items, "itemsView": "notLoaded", "status": status, "error": null,
        "startedAt": null, "completedAt": null, "durationMs": null
    })
}

fn agent_message(text: &str) -> Value {
    json!({"type": "agentMessage", "id": "msg_2", "text": text, "phase": null})
}

fn notification(method: &str, params: Value) -> Value {
    json!({"method": method, "params": params, "emittedAtMs": 1700000000123u64})
}

/// A checker that has seen the client requests of the section 9 session.
fn checker(mode: SchemaMode) -> TranscriptChecker {
    let checker = TranscriptChecker::new(mode);
    checker.client_sent(&json!({"id": 1, "method": "initialize", "params": {
        "clientInfo": {"name": "my-ide", "title": "My IDE", "version": "1.0.0"}}}));
    checker.client_sent(&json!({"method": "initialized"}));
    checker.client_sent(&json!({"id": 2, "method": "thread/start", "params": {
        "cwd": "/home/u/project", "approvalPolicy": "on-request", "sandbox": "workspace-write"}}));
    checker.client_sent(
        &json!({"id": "a-7", "method": "turn/interrupt", "params": {"threadId": T, "turnId": U}}),
    );
    checker
}

fn good_session_messages() -> Vec<Value> {
    vec![
        json!({"id": 1, "result": {
            "userAgent": "my-ide/0.169.0 (Ubuntu 24.4.0; x86_64) tally/0.1.0 (my-ide; 1.0.0)",
            "codexHome": "/home/u/.tally", "platformFamily": "unix", "platformOs": "linux"}}),
        json!({"id": 2, "result": {
            "thread": thread(), "model": "gpt-x", "modelProvider": "openai", "cwd": "/home/u/project",
            "approvalPolicy": "on-request", "approvalsReviewer": "user",
            "sandbox": {"type": "workspaceWrite", "writableRoots": [], "networkAccess": false,
                        "excludeTmpdirEnvVar": false, "excludeSlashTmp": false},
            "reasoningEffort": null, "serviceTier": null}}),
        notification("thread/started", json!({"thread": thread()})),
        notification(
            "thread/status/changed",
            json!({"threadId": T, "status": {"type": "active", "activeFlags": []}}),
        ),
        notification(
            "turn/started",
            json!({"threadId": T, "turn": turn("inProgress", json!([]))}),
        ),
        notification(
            "item/started",
            json!({"item": agent_message(""), "threadId": T, "turnId": U,
            "startedAtMs": 1700000000200u64}),
        ),
        notification(
            "item/agentMessage/delta",
            json!({"threadId": T, "turnId": U, "itemId": "msg_2", "delta": "Done."}),
        ),
        notification(
            "item/completed",
            json!({"item": agent_message("Done."), "threadId": T, "turnId": U,
            "completedAtMs": 1700000000300u64}),
        ),
        json!({"id": "a-7", "result": {}}),
        notification(
            "turn/completed",
            json!({"threadId": T, "turn": turn("completed", json!([agent_message("Done.")]))}),
        ),
    ]
}

#[test]
fn known_good_session_validates_in_both_modes() {
    for mode in [SchemaMode::Stable, SchemaMode::Experimental] {
        let checker = checker(mode);
        for message in good_session_messages() {
            if let Err(e) = checker.server_sent(&message) {
                panic!("{mode:?}: {e}");
            }
        }
        assert!(checker.pending().is_empty(), "{:?}", checker.pending());
    }
}

#[test]
fn error_response_validates() {
    let checker = TranscriptChecker::new(SchemaMode::Stable);
    checker.client_sent(&json!({"id": 1, "method": "thread/list", "params": {}}));
    let error = json!({"id": 1, "error": {"code": -32600, "message": "Not initialized"}});
    checker.server_sent(&error).unwrap();
    // With `data`, which is free-form.
    let schemas = ProtocolSchemas::get();
    let draining = json!({"id": 1, "error": {"code": -32600, "message": "Server is draining; retry after reconnecting",
        "data": {"reason": "serverShuttingDown"}}});
    schemas
        .validate_error(SchemaMode::Stable, &draining)
        .unwrap();
}

#[test]
fn server_request_validates() {
    let request = json!({"id": 0, "method": "item/commandExecution/requestApproval", "params": {
        "threadId": T, "turnId": U, "itemId": "call_1", "startedAtMs": 1700000000250u64, "kind": "command",
        "reason": "needs write access", "commandActions": [{"type": "unknown", "command": "touch marker"}],
        "command": "/bin/bash -lc 'touch marker'", "cwd": "/home/u/project",
        "proposedExecpolicyAmendment": ["touch", "marker"]}});
    let checker = TranscriptChecker::new(SchemaMode::Stable);
    checker.server_sent(&request).unwrap();
}

#[test]
fn emitted_at_ms_is_declared_by_the_envelope() {
    let schemas = ProtocolSchemas::get();
    for mode in [SchemaMode::Stable, SchemaMode::Experimental] {
        let file = schemas.file(mode, "ServerNotification.json");
        assert!(
            file.doc.pointer("/properties/emittedAtMs").is_some(),
            "{mode:?}: envelope lost emittedAtMs"
        );
    }
    let ok = notification(
        "item/agentMessage/delta",
        json!({"threadId": T, "turnId": U, "itemId": "m", "delta": "x"}),
    );
    schemas
        .validate_notification(SchemaMode::Stable, &ok)
        .unwrap();
    let mut bad = ok.clone();
    bad["emittedAtMs"] = json!("soon");
    let err = schemas
        .validate_notification(SchemaMode::Stable, &bad)
        .unwrap_err();
    assert!(err.to_string().contains("emittedAtMs"), "{err}");
}

#[test]
fn misspelled_key_is_caught_by_the_strict_pass() {
    let schemas = ProtocolSchemas::get();
    // `turnID` instead of `turnId`: required `turnId` is missing *and* `turnID` is undeclared.
    let bad = notification(
        "item/agentMessage/delta",
        json!({"threadId": T, "turnID": U, "itemId": "m", "delta": "x"}),
    );
    let err = schemas
        .validate_notification(SchemaMode::Stable, &bad)
        .unwrap_err();
    assert_eq!(
        err.unknown_keys,
        vec!["/params/turnID".to_string()],
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("item/agentMessage/delta") && text.contains("/params/turnID"),
        "{text}"
    );

    // An optional misspelled key the schema itself would accept (the schema is open): only strict catches it.
    let mut item = agent_message("hi");
    item["Phase"] = json!("final_answer");
    let bad = notification(
        "item/completed",
        json!({"item": item, "threadId": T, "turnId": U, "completedAtMs": 1}),
    );
    let err = schemas
        .validate_notification(SchemaMode::Stable, &bad)
        .unwrap_err();
    assert!(
        err.violations.is_empty(),
        "schema itself should accept: {err}"
    );
    assert_eq!(err.unknown_keys, vec!["/params/item/Phase".to_string()]);

    // In a response result, deep inside a oneOf (sandbox policy variant).
    let checker = checker(SchemaMode::Stable);
    let mut response = good_session_messages().remove(1);
    response["result"]["sandbox"]["writeableRoots"] = json!([]);
    let err = checker.server_sent(&response).unwrap_err();
    assert_eq!(
        err.unknown_keys,
        vec!["/result/sandbox/writeableRoots".to_string()],
        "{err}"
    );
    assert!(err.to_string().contains("thread/start"), "{err}");
}

#[test]
fn wrong_enum_spelling_fails() {
    let schemas = ProtocolSchemas::get();
    let bad = notification(
        "turn/completed",
        json!({"threadId": T, "turn": turn("complete", json!([]))}),
    );
    let err = schemas
        .validate_notification(SchemaMode::Stable, &bad)
        .unwrap_err();
    assert!(!err.violations.is_empty());
    let text = err.to_string();
    assert!(
        text.contains("/params/turn/status") && text.contains("turn/completed"),
        "{text}"
    );
    // Item type tag misspelled: no ThreadItem variant matches.
    let mut item = agent_message("x");
    item["type"] = json!("agent_message");
    let bad = notification(
        "item/started",
        json!({"item": item, "threadId": T, "turnId": U, "startedAtMs": 1}),
    );
    assert!(schemas
        .validate_notification(SchemaMode::Stable, &bad)
        .is_err());
}

#[test]
fn missing_required_field_fails() {
    let schemas = ProtocolSchemas::get();
    let mut result = good_session_messages().remove(0);
    result["result"]
        .as_object_mut()
        .unwrap()
        .remove("codexHome");
    let err = schemas
        .validate_response(SchemaMode::Stable, "initialize", &result)
        .unwrap_err();
    assert!(err.to_string().contains("codexHome"), "{err}");
    assert!(
        err.schema_file.contains("v1/InitializeResponse.json"),
        "{err}"
    );
}

#[test]
fn notification_missing_params_fails() {
    let schemas = ProtocolSchemas::get();
    let bad = json!({"method": "turn/started", "emittedAtMs": 1});
    let err = schemas
        .validate_notification(SchemaMode::Stable, &bad)
        .unwrap_err();
    assert!(err.to_string().contains("params"), "{err}");
}

#[test]
fn unknown_method_and_unknown_id_fail() {
    let checker = checker(SchemaMode::Stable);
    let err = checker
        .server_sent(&notification("turn/begun", json!({})))
        .unwrap_err();
    assert!(
        err.to_string().contains("unknown method `turn/begun`"),
        "{err}"
    );
    let err = checker
        .server_sent(&json!({"id": 99, "result": {}}))
        .unwrap_err();
    assert!(err.to_string().contains("unknown request id"), "{err}");
    // Ids are matched exactly: the string "1" is not the integer 1.
    let err = checker
        .server_sent(&json!({"id": "1", "result": {}}))
        .unwrap_err();
    assert!(err.to_string().contains("unknown request id"), "{err}");
    // A response is consumed: answering twice is an error.
    let init = good_session_messages().remove(0);
    checker.server_sent(&init).unwrap();
    assert!(checker.server_sent(&init).is_err());
    // A top-level key a response must not carry.
    checker.client_sent(&json!({"id": 5, "method": "thread/archive", "params": {"threadId": T}}));
    let err = checker
        .server_sent(&json!({"id": 5, "result": {}, "emittedAtMs": 1}))
        .unwrap_err();
    assert_eq!(err.unknown_keys, vec!["/emittedAtMs".to_string()]);
    // An empty result type admits no keys.
    checker.client_sent(&json!({"id": 6, "method": "thread/archive", "params": {"threadId": T}}));
    let err = checker
        .server_sent(&json!({"id": 6, "result": {"ok": true}}))
        .unwrap_err();
    assert_eq!(err.unknown_keys, vec!["/result/ok".to_string()]);
    assert!(checker.server_sent_line("not json").is_err());
}

#[test]
fn response_files_are_derived_from_client_request() {
    let schemas = ProtocolSchemas::get();
    let expect = [
        ("initialize", "v1/InitializeResponse.json"),
        ("thread/start", "v2/ThreadStartResponse.json"),
        ("turn/interrupt", "v2/TurnInterruptResponse.json"),
        ("app/list", "v2/AppsListResponse.json"),
        ("config/batchWrite", "v2/ConfigWriteResponse.json"),
        ("config/value/write", "v2/ConfigWriteResponse.json"),
        ("account/logout", "v2/LogoutAccountResponse.json"),
        (
            "account/rateLimits/read",
            "v2/GetAccountRateLimitsResponse.json",
        ),
        (
            "configRequirements/read",
            "v2/ConfigRequirementsReadResponse.json",
        ),
        ("fuzzyFileSearch", "FuzzyFileSearchResponse.json"),
    ];
    for mode in [SchemaMode::Stable, SchemaMode::Experimental] {
        for (method, file) in expect {
            assert_eq!(
                schemas.response_schema_file(mode, method).as_deref(),
                Some(file),
                "{mode:?} {method}"
            );
        }
        // Every client method of the export has a response schema.
        let missing: Vec<String> = schemas
            .client_methods(mode)
            .into_iter()
            .filter(|m| schemas.response_schema_file(mode, m).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "{mode:?}: no response schema for {missing:?}"
        );
    }
    assert_eq!(
        schemas.response_schema_file(SchemaMode::Stable, "thread/settings/update"),
        None
    );
    assert!(schemas
        .response_schema_file(SchemaMode::Experimental, "thread/settings/update")
        .is_some());
}

#[test]
fn experimental_fields_need_experimental_mode() {
    let schemas = ProtocolSchemas::get();
    // Envelope and method names are shared; the stable export simply does not know experimental methods.
    let request = json!({"id": 3, "result": {}});
    assert!(schemas
        .validate_response(SchemaMode::Stable, "thread/settings/update", &request)
        .is_err());
}

#[test]
fn command_turn_messages_validate() {
    let breakdown = json!({"totalTokens": 15, "inputTokens": 10, "cachedInputTokens": 0, "cacheWriteInputTokens": 0,
        "outputTokens": 5, "reasoningOutputTokens": 0});
    let command = json!({"type": "commandExecution", "id": "call_1", "command": "/bin/bash -lc 'touch marker'",
        "cwd": "/home/u/project", "processId": null, "status": "inProgress", "source": "agent",
        "commandActions": [{"type": "unknown", "command": "touch marker"}], "aggregatedOutput": null,
        "exitCode": null, "durationMs": null});
    let mut done = command.clone();
    done["status"] = json!("completed");
    done["exitCode"] = json!(0);
    done["aggregatedOutput"] = json!("");
    done["durationMs"] = json!(12);
    let messages = [
        notification(
            "item/started",
            json!({"item": command, "threadId": T, "turnId": U, "startedAtMs": 1}),
        ),
        notification(
            "serverRequest/resolved",
            json!({"threadId": T, "requestId": 0}),
        ),
        notification(
            "item/completed",
            json!({"item": done, "threadId": T, "turnId": U, "completedAtMs": 2}),
        ),
        notification(
            "thread/tokenUsage/updated",
            json!({"threadId": T, "turnId": U,
            "tokenUsage": {"total": breakdown, "last": breakdown, "modelContextWindow": 272000}}),
        ),
        notification(
            "thread/status/changed",
            json!({"threadId": T, "status": {"type": "idle"}}),
        ),
        notification(
            "error",
            json!({"threadId": T, "turnId": U, "willRetry": false,
            "error": {"message": "stream disconnected", "codexErrorInfo": "responseStreamDisconnected"}}),
        ),
        notification("warning", json!({"threadId": T, "message": "careful"})),
    ];
    let schemas = ProtocolSchemas::get();
    for mode in [SchemaMode::Stable, SchemaMode::Experimental] {
        for message in &messages {
            if let Err(e) = schemas.validate_notification(mode, message) {
                panic!("{mode:?}: {e}");
            }
        }
    }
}
