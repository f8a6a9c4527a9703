use std::io::{self, Write};

use proptest::prelude::*;
use serde_json_borrow::{ObjectAsVec, Value};

use super::*;

/// The canonical form as released: the text read into a tree of values, written back with keys
/// sorted. `None` where serde_json cannot read the text as values.
fn canonical_value(text: &str) -> Option<String> {
    let value: Value<'_> = serde_json::from_str(text).ok()?;
    let mut out = Vec::new();
    write_value_tree(&value, &mut out).ok()?;
    String::from_utf8(out).ok()
}

fn write_value_tree(value: &Value<'_>, out: &mut impl Write) -> io::Result<()> {
    match value {
        Value::Object(map) => write_object_tree(map, out),
        Value::Array(items) => {
            out.write_all(b"[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                write_value_tree(item, out)?;
            }
            out.write_all(b"]")
        }
        scalar => Ok(serde_json::to_writer(out, scalar)?),
    }
}

fn write_object_tree(map: &ObjectAsVec<'_>, out: &mut impl Write) -> io::Result<()> {
    let mut entries: Vec<(&str, &Value<'_>)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    out.write_all(b"{")?;
    let mut first = true;
    for (i, (key, value)) in entries.iter().enumerate() {
        if entries.get(i + 1).is_some_and(|next| next.0 == *key) {
            continue;
        }
        if !first {
            out.write_all(b",")?;
        }
        first = false;
        serde_json::to_writer(&mut *out, key)?;
        out.write_all(b":")?;
        write_value_tree(value, out)?;
    }
    out.write_all(b"}")
}

fn canonical(text: &str) -> String {
    let mut out = Vec::new();
    write_canonical_text(text, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn keys_are_sorted_at_every_depth_and_whitespace_goes() {
    let text =
        " {\n \"b\" : [ 1 , { \"z\":null,\"a\" :true } ] ,\t\"a\":{\"y\":\"s\",\"x\":-2}}\r\n";
    assert_eq!(
        canonical(text),
        r#"{"a":{"x":-2,"y":"s"},"b":[1,{"a":true,"z":null}]}"#
    );
    assert_eq!(canonical(text), canonical_value(text).unwrap());
}

#[test]
fn the_last_of_a_repeated_key_wins() {
    let text = r#"{"n":1,"a":{"k":1,"k":[2]},"n":{"m":3}}"#;
    assert_eq!(canonical(text), r#"{"a":{"k":[2]},"n":{"m":3}}"#);
    assert_eq!(canonical(text), canonical_value(text).unwrap());
}

#[test]
fn escapes_are_written_as_serde_json_writes_them() {
    for text in [
        r#"{"s":"\u00e9\"\\\/\b\f\n\r\t\u0001\ud83d\ude00"}"#,
        r#"{"k\u00e9y":1,"k\"":2,"kéy":3,"\u006b":4}"#,
        r#"["plain", "with \\ backslash", "\u2028"]"#,
        r#""top-level string""#,
    ] {
        assert_eq!(canonical(text), canonical_value(text).unwrap(), "{text}");
    }
    // The same string escaped or not is the same key, so one wins.
    assert_eq!(canonical(r#"{"\u0061":1,"a":2}"#), r#"{"a":2}"#);
}

#[test]
fn numbers_are_written_as_serde_json_writes_them() {
    for number in [
        "0",
        "-0",
        "-0.0",
        "7",
        "-7",
        "1.50",
        "1E5",
        "1e-7",
        "2.5e+3",
        "0.1",
        "123456789012345678",
        "9223372036854775807",
        "-9223372036854775808",
        "-9223372036854775809",
        "18446744073709551615",
        "18446744073709551616",
        "123456789012345678901234567890",
        "1.7976931348623157e308",
    ] {
        let text = format!("[{number}]");
        assert_eq!(
            canonical(&text),
            canonical_value(&text).unwrap(),
            "{number}"
        );
    }
}

#[test]
fn text_serde_json_cannot_hold_as_values_is_kept_as_written() {
    // Valid JSON that has no value in serde_json: events carrying it still get a stable id.
    assert_eq!(canonical_value("[1e400]"), None);
    assert_eq!(canonical("[1e400, -1E999]"), "[1e400,-1E999]");
    assert_eq!(canonical(r#"{"s":"\ud800"}"#), r#"{"s":"\ud800"}"#);
}

#[test]
fn text_that_is_not_json_ends_without_a_panic() {
    for text in [
        "",
        "[",
        "[}]",
        "[1 2]",
        "{",
        "{\"a\"",
        "{\"a\":}",
        "{\"a\":1,}",
        "\"abc",
        "[\"a\\",
        "}}}",
        "[[[[",
        "{\"a\":[}",
        "nul",
        "-",
        "[,,]",
    ] {
        let mut out = Vec::new();
        write_canonical_text(text, &mut out);
        assert!(out.len() <= 2 * text.len() + 2, "{text:?} -> {out:?}");
    }
    let deep = "[".repeat(100_000);
    let mut out = Vec::new();
    write_canonical_text(&deep, &mut out);
}

/// JSON text of arbitrary shape written in arbitrary ways: numbers in every form JSON allows,
/// strings and keys with every kind of escape, repeated keys, any whitespace between tokens.
fn arb_json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        "-?(0|[1-9][0-9]{0,22})(\\.[0-9]{1,8})?([eE][+-]?[0-9]{1,3})?",
        arb_string_text(),
    ];
    let value = leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec((ws(), inner.clone(), ws()), 0..6).prop_map(|items| {
                let items: Vec<String> = items.into_iter().map(|(a, v, b)| a + &v + &b).collect();
                format!("[{}]", items.join(","))
            }),
            prop::collection::vec((ws(), arb_key_text(), ws(), ws(), inner, ws()), 0..6).prop_map(
                |members| {
                    let members: Vec<String> = members
                        .into_iter()
                        .map(|(a, k, b, c, v, d)| format!("{a}{k}{b}:{c}{v}{d}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }
            ),
        ]
    });
    (ws(), value, ws()).prop_map(|(a, v, b)| a + &v + &b)
}

fn ws() -> impl Strategy<Value = String> {
    "[ \t\n\r]{0,2}"
}

/// A few keys, so objects repeat them; some spelled with escapes.
fn arb_key_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#""a""#.to_owned()),
        Just(r#""\u0061""#.to_owned()),
        Just(r#""b""#.to_owned()),
        Just(r#""é""#.to_owned()),
        Just(r#""\u00e9""#.to_owned()),
        Just(r#""a\"b""#.to_owned()),
        Just(r#""""#.to_owned()),
        arb_string_text(),
    ]
}

fn arb_string_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9 /éß中😀\u{7f}\u{2028}]{1,4}",
        Just(r#"\""#.to_owned()),
        Just(r"\\".to_owned()),
        Just(r"\/".to_owned()),
        Just(r"\b\f\n\r\t".to_owned()),
        "\\\\u00[0-1][0-9a-fA-F]",
        "\\\\u[0-9a-cA-C][0-9a-fA-F]{3}",
        Just(r"\ud83d\ude00".to_owned()),
    ];
    prop::collection::vec(piece, 0..5).prop_map(|pieces| format!("\"{}\"", pieces.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_text_gets_the_canonical_form_of_its_value(text in arb_json_text()) {
        prop_assert!(serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok(), "{}", text);
        let written = canonical(&text);
        match canonical_value(&text) {
            Some(expected) => prop_assert_eq!(written, expected, "{}", text),
            // Numbers beyond f64: kept as written, still one compact JSON text.
            None => prop_assert!(
                serde_json::from_str::<serde::de::IgnoredAny>(&written).is_ok(),
                "{} -> {}", text, written
            ),
        }
    }
}

#[test]
fn every_fixture_event_keeps_the_form_it_was_released_with() {
    let mut checked = 0;
    for (i, client) in ["vscode", "tui", "jetbrains"].iter().enumerate() {
        for event in crate::fixtures::session(client, i as u64, 3, 1_700_000_000) {
            for text in [
                event["event_params"].to_string(),
                serde_json::to_string_pretty(&event["event_params"]).unwrap(),
            ] {
                assert_eq!(canonical(&text), canonical_value(&text).unwrap(), "{text}");
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "the fixtures hold {checked} events");
}
