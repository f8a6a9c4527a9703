use super::*;
use crate::jsonrpc::{INVALID_PARAMS, METHOD_NOT_FOUND};
use serde_json::json;

#[test]
fn decodes_turn_start_with_experimental_fields_ignored() {
    let req = ClientRequest::decode(
        "turn/start",
        Some(json!({
            "threadId": "t1",
            "input": [{"type": "text", "text": "hi", "text_elements": []}],
            "collaborationMode": {"mode": "default"},
        })),
    )
    .expect("decodes");
    let ClientRequest::TurnStart(p) = &req else {
        panic!("wrong variant: {req:?}")
    };
    assert_eq!(p.thread_id, "t1");
    assert_eq!(p.input[0].as_text(), Some("hi"));
    assert_eq!(req.thread_id(), Some("t1"));
    assert_eq!(req.method(), "turn/start");
}

#[test]
fn unknown_method_is_method_not_found_naming_it() {
    let err = ClientRequest::decode("thread/teleport", None).expect_err("unknown");
    let body = err.to_error_body();
    assert_eq!(body.code, METHOD_NOT_FOUND);
    assert!(body.message.contains("thread/teleport"), "{}", body.message);
}

#[test]
fn bad_params_name_the_field() {
    let err = ClientRequest::decode("turn/start", Some(json!({"threadId": 5, "input": []})))
        .expect_err("bad type");
    let body = err.to_error_body();
    assert_eq!(body.code, INVALID_PARAMS);
    assert!(body.message.contains("threadId"), "{}", body.message);

    let err = ClientRequest::decode("initialize", None).expect_err("missing clientInfo");
    assert!(err.to_error_body().message.contains("clientInfo"), "{err}");
}

#[test]
fn methods_without_params_accept_absent_or_null() {
    assert!(ClientRequest::decode("thread/list", None).is_ok());
    assert!(ClientRequest::decode("model/list", Some(serde_json::Value::Null)).is_ok());
}

#[test]
fn response_payload_knows_its_method_and_serializes_empty_results_as_objects() {
    let payload = ClientResponsePayload::TurnInterrupt(EmptyResponse {});
    assert_eq!(payload.method(), "turn/interrupt");
    assert_eq!(payload.to_result().expect("serialize"), json!({}));
}

#[test]
fn every_method_in_the_table_is_a_codex_method() {
    // Read at run time (not include_str!) so `$TALLY_SCHEMA_DIR` works as in the other schema tests
    // and a checkout without shared/ beside it still compiles.
    let dir = match std::env::var_os("TALLY_SCHEMA_DIR") {
        Some(dir) if !dir.is_empty() => std::path::PathBuf::from(dir),
        _ => std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/codex-protocol-schema"),
    };
    let path = dir.join("stable/ClientRequest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "*** Codex protocol schema NOT FOUND at {} ({e}); set $TALLY_SCHEMA_DIR ***",
            path.display()
        )
    });
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema parses");
    let known: Vec<String> = schema["oneOf"]
        .as_array()
        .expect("oneOf")
        .iter()
        .filter_map(|v| {
            v["properties"]["method"]["enum"][0]
                .as_str()
                .map(String::from)
        })
        .collect();
    for method in CLIENT_REQUEST_METHODS {
        assert!(
            known.iter().any(|k| k == method),
            "{method} is not in the Codex schema"
        );
    }
}

#[test]
fn goal_set_decodes_and_bad_status_names_the_field() {
    let req = ClientRequest::decode(
        "thread/goal/set",
        Some(json!({"threadId": "t1", "objective": "ship it", "status": "usageLimited", "tokenBudget": 500})),
    )
    .expect("decodes");
    let ClientRequest::ThreadGoalSet(p) = &req else {
        panic!("wrong variant: {req:?}")
    };
    assert_eq!(p.status, Some(ThreadGoalStatus::UsageLimited));
    assert_eq!(p.token_budget, Some(500));
    assert_eq!(req.thread_id(), Some("t1"));

    let err = ClientRequest::decode(
        "thread/goal/set",
        Some(json!({"threadId": "t1", "status": "finished"})),
    )
    .expect_err("unknown status");
    let body = err.to_error_body();
    assert_eq!(body.code, INVALID_PARAMS);
    assert!(body.message.contains("status"), "{}", body.message);

    let err =
        ClientRequest::decode("thread/goal/clear", Some(json!({}))).expect_err("missing threadId");
    assert!(err.to_error_body().message.contains("threadId"), "{err}");
}

#[test]
fn compact_start_names_its_thread_and_answers_an_empty_object() {
    let req = ClientRequest::decode("thread/compact/start", Some(json!({"threadId": "t9"})))
        .expect("decodes");
    assert_eq!(req.thread_id(), Some("t9"));
    let payload = ClientResponsePayload::ThreadCompactStart(EmptyResponse {});
    assert_eq!(payload.to_result().expect("serialize"), json!({}));
}

#[test]
fn goal_notifications_serialize_with_codex_names() {
    use crate::server_notification::{ThreadGoalUpdatedNotification, ThreadIdNotification};
    use crate::ServerNotification;
    let goal = ThreadGoal {
        thread_id: "t1".into(),
        objective: "o".into(),
        status: ThreadGoalStatus::BudgetLimited,
        token_budget: None,
        tokens_used: 0,
        time_used_seconds: 0,
        created_at: 1,
        updated_at: 2,
    };
    let n = ServerNotification::ThreadGoalUpdated(ThreadGoalUpdatedNotification {
        thread_id: "t1".into(),
        turn_id: None,
        goal,
    });
    let v = serde_json::to_value(&n).expect("serialize");
    assert_eq!(v["method"], "thread/goal/updated");
    assert_eq!(v["params"]["turnId"], serde_json::Value::Null);
    assert_eq!(v["params"]["goal"]["status"], "budgetLimited");
    assert_eq!(v["params"]["goal"]["tokenBudget"], serde_json::Value::Null);
    let cleared = ServerNotification::ThreadGoalCleared(ThreadIdNotification {
        thread_id: "t1".into(),
    });
    assert_eq!(cleared.method(), "thread/goal/cleared");
}

#[test]
fn shell_command_and_name_set_decode_and_name_a_missing_field() {
    let req = ClientRequest::decode(
        "thread/shellCommand",
        Some(json!({"threadId": "t1", "command": "ls | wc -l"})),
    )
    .expect("decodes");
    assert_eq!(req.thread_id(), Some("t1"));
    let err = ClientRequest::decode("thread/shellCommand", Some(json!({"threadId": "t1"})))
        .expect_err("no command");
    let body = err.to_error_body();
    assert_eq!(body.code, INVALID_PARAMS);
    assert!(body.message.contains("command"), "{}", body.message);
    let err = ClientRequest::decode(
        "thread/name/set",
        Some(json!({"threadId": "t1", "name": 7})),
    )
    .expect_err("name is a string");
    assert!(err.to_error_body().message.contains("name"), "{err}");
}
