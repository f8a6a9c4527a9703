use super::*;
use serde_json::json;

#[test]
fn classifies_requests_with_string_and_integer_ids() {
    let m = JsonRpcMessage::parse(r#"{"id":"codex.chatSessionProvider:0","method":"thread/list"}"#)
        .expect("valid");
    assert_eq!(
        m,
        JsonRpcMessage::Request {
            id: RequestId::String("codex.chatSessionProvider:0".into()),
            method: "thread/list".into(),
            params: None
        }
    );
    let m = JsonRpcMessage::parse(r#"{"jsonrpc":"2.0","id":7,"method":"x","params":{}}"#)
        .expect("valid");
    assert!(matches!(
        m,
        JsonRpcMessage::Request {
            id: RequestId::Integer(7),
            ..
        }
    ));
}

#[test]
fn classifies_notifications_responses_and_errors() {
    assert!(matches!(
        JsonRpcMessage::parse(r#"{"method":"initialized"}"#),
        Ok(JsonRpcMessage::Notification { .. })
    ));
    assert!(matches!(
        JsonRpcMessage::parse(r#"{"id":0,"result":{"decision":"accept"}}"#),
        Ok(JsonRpcMessage::Response {
            id: RequestId::Integer(0),
            ..
        })
    ));
    assert!(matches!(
        JsonRpcMessage::parse(r#"{"id":0,"error":{"code":-1,"message":"no"}}"#),
        Ok(JsonRpcMessage::Error { .. })
    ));
}

#[test]
fn rejects_non_json_as_parse_error_and_bad_shapes_as_invalid_request() {
    let err = JsonRpcMessage::parse("{not json").expect_err("parse error");
    assert_eq!(err.to_error().error.code, PARSE_ERROR);
    let err = JsonRpcMessage::parse("[1,2]").expect_err("invalid");
    assert_eq!(err.to_error().error.code, INVALID_REQUEST);
    let err = JsonRpcMessage::parse(r#"{"id":{"a":1},"method":"x"}"#).expect_err("bad id");
    assert_eq!(err.to_error().error.code, INVALID_REQUEST);
    let err = JsonRpcMessage::parse(r#"{"id":3,"method":5}"#).expect_err("bad method");
    let e = err.to_error();
    assert_eq!(e.id, Some(RequestId::Integer(3)));
    assert_eq!(e.error.code, INVALID_REQUEST);
}

#[test]
fn error_body_omits_absent_data() {
    let body = JsonRpcErrorBody::invalid_request("Not initialized");
    assert_eq!(
        serde_json::to_value(&body).expect("serialize"),
        json!({"code": -32600, "message": "Not initialized"})
    );
}
