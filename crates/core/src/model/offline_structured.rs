//! The offline model's answer to a turn with an `outputSchema`: a JSON value that the schema
//! accepts, made from the prompt. Clients use such turns for side tasks (the Codex TUI asks for a
//! `{"title"}` in an ephemeral thread) and reject any tool call from them, so the model answers
//! in the requested shape instead of acting on the words in the prompt.

use serde_json::{Map, Value};

/// The deepest nesting the generator follows; deeper schemas get `null`.
const MAX_DEPTH: usize = 8;

/// A value for `schema`; strings are taken from `prompt`.
pub(crate) fn structured_reply(schema: &Value, prompt: &str) -> Value {
    value_for(schema, &subject(prompt), 0)
}

/// The part of the prompt a side task is about: after a `User prompt:` line when there is one
/// (how the TUI frames title requests), else the whole prompt, on one line.
fn subject(prompt: &str) -> String {
    let text = prompt
        .rsplit_once("User prompt:")
        .map_or(prompt, |(_, rest)| rest);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn value_for(schema: &Value, text: &str, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|v| v.first())
    {
        return first.clone();
    }
    if let Some(constant) = schema.get("const") {
        return constant.clone();
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        // `["string", "null"]`: the first non-null type.
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match ty {
        "object" => object_for(schema, text, depth),
        "array" => Value::Array(Vec::new()),
        "integer" | "number" => schema.get("minimum").cloned().unwrap_or(Value::from(0)),
        "boolean" => Value::Bool(false),
        "null" => Value::Null,
        _ => string_for(schema, text),
    }
}

fn object_for(schema: &Value, text: &str, depth: usize) -> Value {
    let mut out = Map::new();
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            out.insert(name.clone(), value_for(property, text, depth + 1));
        }
    }
    Value::Object(out)
}

fn string_for(schema: &Value, text: &str) -> Value {
    let max = schema
        .get("maxLength")
        .and_then(Value::as_u64)
        .and_then(|m| usize::try_from(m).ok())
        .unwrap_or(80);
    let min = schema
        .get("minLength")
        .and_then(Value::as_u64)
        .and_then(|m| usize::try_from(m).ok())
        .unwrap_or(0);
    let mut s: String = text.chars().take(max).collect();
    s = s.trim_end().to_owned();
    while s.chars().count() < min {
        s.push('x');
    }
    Value::String(s)
}

#[cfg(test)]
#[path = "offline_structured_tests.rs"]
mod tests;
