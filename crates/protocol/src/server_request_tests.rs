use super::*;
use serde_json::json;

fn approval() -> ServerRequest {
    ServerRequest::FileChangeRequestApproval(FileChangeRequestApprovalParams {
        thread_id: "t".into(),
        turn_id: "u".into(),
        item_id: "call_1".into(),
        started_at_ms: 1,
        reason: None,
        grant_root: None,
    })
}

#[test]
fn response_from_result_decodes_the_matching_typed_answer() {
    let resp = approval()
        .response_from_result(json!({"decision": "acceptForSession"}))
        .expect("decodes");
    assert_eq!(
        resp,
        ServerResponse::FileChangeRequestApproval(FileChangeRequestApprovalResponse {
            decision: FileChangeApprovalDecision::AcceptForSession
        })
    );
}

#[test]
fn response_from_result_rejects_a_mismatched_result_with_a_clear_error() {
    let err = approval()
        .response_from_result(json!({"contentItems": [], "success": true}))
        .expect_err("mismatch");
    assert_eq!(err.method, "item/fileChange/requestApproval");
    assert!(err.to_string().contains("decision"), "{err}");
}

#[test]
fn command_decisions_use_the_schema_spellings() {
    let d: CommandExecutionApprovalDecision = serde_json::from_value(
        json!({"acceptWithExecpolicyAmendment": {"execpolicy_amendment": ["touch"]}}),
    )
    .expect("decodes");
    assert!(matches!(
        d,
        CommandExecutionApprovalDecision::AcceptWithExecpolicyAmendment { .. }
    ));
    assert_eq!(
        serde_json::to_value(CommandExecutionApprovalDecision::AcceptForSession).expect("ser"),
        json!("acceptForSession")
    );
}

#[test]
fn serializes_as_method_and_params() {
    let v = serde_json::to_value(approval()).expect("ser");
    assert_eq!(v["method"], "item/fileChange/requestApproval");
    assert_eq!(v["params"]["itemId"], "call_1");
}

#[test]
fn user_input_answers_must_be_lists_of_strings_by_question_id() {
    let request = ServerRequest::ToolRequestUserInput(ToolRequestUserInputParams {
        thread_id: "t".into(),
        turn_id: "u".into(),
        item_id: "call_1".into(),
        is_blocking: true,
        questions: vec![ToolRequestUserInputQuestion {
            id: "color".into(),
            header: "Color".into(),
            question: "Which color?".into(),
            options: None,
            is_other: true,
            is_secret: false,
        }],
    });
    let ok = request
        .response_from_result(json!({"answers": {"color": {"answers": ["blue"]}}}))
        .expect("decodes");
    let ServerResponse::ToolRequestUserInput(r) = ok else {
        panic!("wrong variant: {ok:?}")
    };
    assert_eq!(r.answers["color"].answers, ["blue"]);
    let err = request
        .response_from_result(json!({"answers": {"color": "blue"}}))
        .expect_err("a bare string is not an answer");
    assert_eq!(err.method, "item/tool/requestUserInput");
}
