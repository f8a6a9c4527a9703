use proptest::prelude::*;

use super::*;
use crate::arb_json::{arb_json, longest_string};

fn turn_family() -> Option<usize> {
    family_index("codex_turn_event")
}

#[test]
fn keeps_typed_columns_client_and_times_and_borrows_plain_strings() {
    let text = r#"{"turn_id": "t-1", "duration_ms": 9, "extra": {"deep": [1, "x"]},
        "app_server_client": {"product_client_id": "vscode", "client_name": "VS Code"},
        "product_client_id": "flat", "completed_at": 1800000000, "started_at_ms": "soon"}"#;
    let scan = scan_params(text, turn_family(), 64).unwrap();
    let family = &FAMILIES[turn_family().unwrap()];
    let at = |name: &str| {
        let i = family.columns.iter().position(|c| c.name == name).unwrap();
        scan.columns[i].clone()
    };
    assert_eq!(at("turn_id"), Some(Scalar::Str(Cow::Borrowed("t-1"))));
    assert_eq!(at("duration_ms"), Some(Scalar::Int(9)));
    assert_eq!(at("model"), None);
    assert_eq!(scan.nested_client.as_deref(), Some("vscode"));
    assert_eq!(scan.flat_client.as_deref(), Some("flat"));
    let time = |name: &str| scan.times[TIME_FIELDS.iter().position(|f| *f == name).unwrap()];
    assert_eq!(time("completed_at"), Some(1_800_000_000));
    assert_eq!(time("started_at_ms"), None, "not an integer");
}

#[test]
fn a_long_string_anywhere_is_refused_with_its_path() {
    let long = "x".repeat(65);
    let cases = [
        (format!(r#"{{"a": "{long}"}}"#), ".a"),
        (
            format!(r#"{{"a": {{"b": [1, {{"c": "{long}"}}]}}}}"#),
            ".a.b[1].c",
        ),
        (
            format!(r#"{{"{long}": 1}}"#),
            ".xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ),
        (
            format!(r#"{{"app_server_client": {{"product_client_id": "{long}"}}}}"#),
            ".app_server_client.product_client_id",
        ),
    ];
    for (text, path) in cases {
        let (field, reason) = scan_params(&text, turn_family(), 64).unwrap_err();
        assert_eq!(field, path, "{text}");
        assert!(reason.contains("64"), "{reason}");
    }
}

#[test]
fn escaped_strings_are_unescaped() {
    let scan = scan_params(r#"{"product_client_id": "a\"b\u00e9"}"#, None, 64).unwrap();
    assert_eq!(scan.flat_client.as_deref(), Some("a\"bé"));
}

#[test]
fn parse_params_names_the_field_of_the_wrong_type() {
    let rules = ParamsRules {
        max_string_bytes: 64,
        strict_types: true,
    };
    assert!(parse_params(r#"{"turn_id": "t"}"#, "codex_turn_event", rules).is_ok());
    let err = parse_params(r#"{"duration_ms": true}"#, "codex_turn_event", rules);
    assert_eq!(err.unwrap_err().0, ".duration_ms");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// The one-pass scan agrees with reading the same params into a JSON tree.
    #[test]
    fn the_scan_agrees_with_a_tree(
        fields in prop::collection::btree_map(
            prop_oneof![
                Just("turn_id".to_owned()), Just("duration_ms".to_owned()),
                Just("is_first_turn".to_owned()), Just("product_client_id".to_owned()),
                Just("completed_at".to_owned()), Just("app_server_client".to_owned()),
                "[a-z_]{1,8}",
            ],
            arb_json(12),
            0..8,
        ),
    ) {
        let tree = serde_json::Value::Object(fields.into_iter().collect());
        let text = tree.to_string();
        let longest = longest_string(&tree);
        // A cap of 10 checks every string; a cap of the text's length lets the scan skip the
        // fields it does not keep, and must keep the same values.
        for max in [10, text.len()] {
            match scan_params(&text, turn_family(), max) {
                Err(_) => prop_assert!(longest > max),
                Ok(scan) => {
                    prop_assert!(longest <= max);
                    let family = &FAMILIES[turn_family().unwrap()];
                    for (i, column) in family.columns.iter().enumerate() {
                        let expected = tree.get(column.name).map(scalar_of);
                        prop_assert_eq!(scan.columns[i].clone(), expected, "{}", column.name);
                    }
                    let flat = tree.get("product_client_id").and_then(|v| v.as_str());
                    prop_assert_eq!(scan.flat_client.as_deref(), flat);
                    let nested = tree
                        .get("app_server_client")
                        .and_then(|c| c.get("product_client_id"))
                        .and_then(|v| v.as_str());
                    prop_assert_eq!(scan.nested_client.as_deref(), nested);
                }
            }
        }
    }
}

fn scalar_of(value: &serde_json::Value) -> Scalar<'static> {
    match value {
        serde_json::Value::Null => Scalar::Null,
        serde_json::Value::Bool(b) => Scalar::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.is_f64()) {
            (Some(i), _) => Scalar::Int(i),
            (None, false) => Scalar::BigInt,
            (None, true) => Scalar::Float,
        },
        serde_json::Value::String(s) => Scalar::Str(Cow::Owned(s.clone())),
        serde_json::Value::Array(_) => Scalar::Array,
        serde_json::Value::Object(_) => Scalar::Object,
    }
}
