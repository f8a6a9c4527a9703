use super::*;
use crate::params_scan::scan_params;

/// Typed values of `text` as an event of `event_type` (strict).
fn typed<'a>(
    event_type: &str,
    text: &'a str,
) -> Result<Vec<TypedValue<Cow<'a, str>>>, (String, String)> {
    let index = family_index(event_type);
    let scan = scan_params(text, index, 4096).unwrap();
    typed_values(family_for(event_type).unwrap(), &scan.columns, true, |s| s)
}

#[test]
fn every_event_type_has_at_most_one_family() {
    let mut seen = std::collections::HashSet::new();
    for family in FAMILIES {
        for ty in family.event_types {
            assert!(seen.insert(*ty), "{ty} is in two families");
        }
    }
}

#[test]
fn each_event_type_finds_its_own_family_and_others_none() {
    for (i, family) in FAMILIES.iter().enumerate() {
        for ty in family.event_types {
            assert_eq!(family_index(ty), Some(i), "{ty}");
        }
    }
    assert_eq!(family_index("codex_turn_event_x"), None);
    assert_eq!(family_index(""), None);
}

#[test]
fn nested_column_paths_are_at_most_two_deep() {
    // The params scan keeps children of top-level objects only.
    for family in FAMILIES {
        for column in family.columns {
            assert!(column.path.len() <= 2, "{}.{}", family.table, column.name);
        }
    }
}

#[test]
fn wrong_type_names_the_field() {
    let err = typed(
        "codex_turn_event",
        r#"{"turn_id": "t", "duration_ms": "fast"}"#,
    )
    .unwrap_err();
    assert_eq!(err.0, "duration_ms");
    assert!(err.1.contains("integer"), "{}", err.1);
}

#[test]
fn nested_columns_are_checked_by_path() {
    let err = typed(
        "codex_guardian_review",
        r#"{"reviewed_action": {"type": 7}}"#,
    )
    .unwrap_err();
    assert_eq!(err.0, "reviewed_action.type");
    let ok = typed(
        "codex_guardian_review",
        r#"{"reviewed_action": {"type": "command", "other": [1]}}"#,
    )
    .unwrap();
    assert!(ok.contains(&TypedValue::Text("command".into())));
}

#[test]
fn nulls_and_missing_fields_pass() {
    let values = typed("codex_turn_event", r#"{"input_tokens": null}"#).unwrap();
    assert!(values.iter().all(|v| *v == TypedValue::Null));
}

#[test]
fn lenient_conversion_stores_wrong_types_as_null() {
    let family = family_for("codex_turn_event").unwrap();
    let scan = scan_params(
        r#"{"duration_ms": "fast"}"#,
        family_index("codex_turn_event"),
        64,
    )
    .unwrap();
    let values = typed_values(family, &scan.columns, false, |s| s).unwrap();
    assert!(values.iter().all(|v| *v == TypedValue::Null));
}

#[test]
fn typed_values_follow_the_columns_and_the_last_repeated_key_wins() {
    let family = family_for("codex_turn_event").unwrap();
    let values = typed(
        "codex_turn_event",
        r#"{"turn_id": "a", "turn_id": "t-2", "is_first_turn": true, "duration_ms": 12,
            "status": null}"#,
    )
    .unwrap();
    assert_eq!(values.len(), family.columns.len());
    let at = |name: &str| {
        let i = family.columns.iter().position(|c| c.name == name).unwrap();
        values[i].clone()
    };
    assert_eq!(at("turn_id"), TypedValue::Text("t-2".into()));
    assert_eq!(at("is_first_turn"), TypedValue::Int(1));
    assert_eq!(at("duration_ms"), TypedValue::Int(12));
    assert_eq!(at("model"), TypedValue::Null);
    assert_eq!(at("status"), TypedValue::Null);
}

#[test]
fn raw_type_names_match_parsed_type_names() {
    for text in [
        "{}", "[1]", "\"s\"", "true", "false", "null", "12", "-3", "1.5", "2e3",
    ] {
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        let expected = match value {
            serde_json::Value::Null => "null",
            serde_json::Value::Bool(_) => "boolean",
            serde_json::Value::Number(n) if n.is_f64() => "number",
            serde_json::Value::Number(_) => "integer",
            serde_json::Value::String(_) => "string",
            serde_json::Value::Array(_) => "array",
            serde_json::Value::Object(_) => "object",
        };
        assert_eq!(raw_json_type(text), expected, "{text}");
    }
}

#[test]
fn typed_text_keeps_the_place_of_a_slice_of_the_params_and_copies_anything_else() {
    let params = r#"{"turn_id":"t-1"}"#;
    let slice = &params[12..15];
    let kept = TypedText::new(params, Cow::Borrowed(slice));
    assert_eq!(kept, TypedText::InParams { start: 12, len: 3 });
    assert_eq!(kept.resolve(params), "t-1");

    let elsewhere = String::from("t-1");
    let copied = TypedText::new(params, Cow::Borrowed(&elsewhere));
    assert_eq!(copied, TypedText::Own("t-1".into()));
    let unescaped = TypedText::new(params, Cow::Owned("a\"b".to_owned()));
    assert_eq!(unescaped.resolve(params), "a\"b");

    // A place read against a shorter text is empty, never a panic.
    assert_eq!(kept.resolve("{}"), "");
}
