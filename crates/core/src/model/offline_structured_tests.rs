use serde_json::json;

use super::structured_reply;

#[test]
fn a_title_request_gets_a_title_from_the_user_prompt_within_its_length() {
    let schema = json!({"type": "object",
        "properties": {"title": {"type": "string", "minLength": 1, "maxLength": 36}},
        "required": ["title"], "additionalProperties": false});
    let prompt = "Generate a concise title. Do not answer the request.\n\nUser prompt:\n\
                  run-escalated: echo second && ls -la /some/very/long/path/here";
    let reply = structured_reply(&schema, prompt);
    let title = reply["title"].as_str().unwrap();
    assert!(title.starts_with("run-escalated: echo second"), "{title}");
    assert!(title.chars().count() <= 36, "{title}");
    assert_eq!(reply.as_object().unwrap().len(), 1);
}

#[test]
fn every_property_gets_a_value_of_its_type() {
    let schema = json!({"type": "object", "properties": {
        "n": {"type": "integer", "minimum": 3},
        "ok": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "kind": {"enum": ["a", "b"]},
        "maybe": {"type": ["string", "null"], "minLength": 2},
        "inner": {"type": "object", "properties": {"x": {"type": "number"}}}
    }});
    let reply = structured_reply(&schema, "");
    assert_eq!(
        reply,
        json!({"n": 3, "ok": false, "tags": [], "kind": "a", "maybe": "xx", "inner": {"x": 0}})
    );
}
