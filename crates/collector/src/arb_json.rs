//! Arbitrary JSON values for the property tests of the decoder and the params scan.

use proptest::prelude::*;
use serde_json::Value;

/// Any JSON value: every scalar kind (integers beyond i64 too), strings of up to `max_string`
/// characters, arrays and objects nested a few levels.
pub fn arb_json(max_string: usize) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop::collection::vec(any::<char>(), 0..=max_string)
            .prop_map(|chars| Value::from(chars.into_iter().collect::<String>())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The longest string or key anywhere in `value`, in bytes.
pub fn longest_string(value: &Value) -> usize {
    match value {
        Value::String(s) => s.len(),
        Value::Array(items) => items.iter().map(longest_string).max().unwrap_or(0),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| k.len().max(longest_string(v)))
            .max()
            .unwrap_or(0),
        _ => 0,
    }
}
