//! The strict pass: walks an emitted JSON value alongside its JSON Schema and reports every object key that
//! no applicable schema declares.
//!
//! The Codex schema is open (objects rarely set `additionalProperties: false`), so a misspelled optional field
//! still validates. This walker closes that gap. It follows `$ref`, `allOf`, `anyOf` and `oneOf`; for the
//! latter two only the branches that validate the value count (when none does, the branches whose tag
//! properties match the value, or else all branches, so that a key is reported only if no plausible branch
//! declares it). An object is "described" by a schema node that has `properties`, `additionalProperties`,
//! `patternProperties` or `type: object`; a value no node describes (for example `true` or `{}`, i.e. any JSON)
//! is not checked further.

use jsonschema::ValidatorMap;
use serde_json::Value;

/// Upper bound on `$ref`/combinator nesting followed for one value, to survive cyclic definitions.
const MAX_DEPTH: usize = 64;

/// A schema document plus its compiled subschema validators, the input of the strict pass.
pub(crate) struct StrictDoc<'a> {
    /// The whole schema file.
    pub doc: &'a Value,
    /// Validators for every reachable subschema, keyed by JSON pointer (`#/oneOf/3`).
    pub map: &'a ValidatorMap,
}

/// One schema node and its location in the document, as a `#`-prefixed JSON pointer.
#[derive(Clone)]
struct Node<'a> {
    schema: &'a Value,
    ptr: String,
}

/// Escapes one JSON pointer reference token (RFC 6901).
pub(crate) fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

impl<'a> StrictDoc<'a> {
    /// Returns the JSON pointers (into `value`) of every object key that no applicable schema declares,
    /// starting from the subschemas at `start` (all of which apply to `value`). Keys listed in
    /// `extra_top_level` are treated as declared on the top-level object.
    pub fn unknown_keys(
        &self,
        start: &[&str],
        value: &Value,
        extra_top_level: &[&str],
    ) -> Vec<String> {
        let nodes: Vec<Node<'a>> = start.iter().filter_map(|ptr| self.node_at(ptr)).collect();
        let mut out = Vec::new();
        self.walk(value, nodes, String::new(), extra_top_level, &mut out);
        out
    }

    /// Looks up the schema node at a `#`-prefixed JSON pointer.
    fn node_at(&self, ptr: &str) -> Option<Node<'a>> {
        let pointer = ptr.strip_prefix('#')?;
        let schema = if pointer.is_empty() {
            self.doc
        } else {
            self.doc.pointer(pointer)?
        };
        Some(Node {
            schema,
            ptr: ptr.to_string(),
        })
    }

    /// Whether the subschema at `ptr` accepts `value`; an unknown pointer counts as accepting.
    fn accepts(&self, ptr: &str, value: &Value) -> bool {
        match self.map.get(ptr) {
            Some(validator) => validator.is_valid(value),
            None => true,
        }
    }

    /// Collects every schema node that applies to `value`, resolving `$ref` and combinators.
    fn flatten(&self, value: &Value, node: Node<'a>, depth: usize, out: &mut Vec<Node<'a>>) {
        if depth > MAX_DEPTH {
            return;
        }
        let Value::Object(schema) = node.schema else {
            // Boolean schemas declare nothing.
            return;
        };
        if let Some(Value::String(reference)) = schema.get("$ref") {
            if let Some(target) = self.node_at(reference) {
                self.flatten(value, target, depth + 1, out);
            }
        }
        if let Some(Value::Array(parts)) = schema.get("allOf") {
            for (i, part) in parts.iter().enumerate() {
                let child = Node {
                    schema: part,
                    ptr: format!("{}/allOf/{i}", node.ptr),
                };
                self.flatten(value, child, depth + 1, out);
            }
        }
        for keyword in ["anyOf", "oneOf"] {
            let Some(Value::Array(branches)) = schema.get(keyword) else {
                continue;
            };
            let all: Vec<Node<'a>> = branches
                .iter()
                .enumerate()
                .map(|(i, branch)| Node {
                    schema: branch,
                    ptr: format!("{}/{keyword}/{i}", node.ptr),
                })
                .collect();
            let mut chosen: Vec<Node<'a>> = all
                .iter()
                .filter(|b| self.accepts(&b.ptr, value))
                .cloned()
                .collect();
            if chosen.is_empty() {
                chosen = all
                    .iter()
                    .filter(|b| self.tags_match(b, value, depth))
                    .cloned()
                    .collect();
            }
            if chosen.is_empty() {
                chosen = all;
            }
            for branch in chosen {
                self.flatten(value, branch, depth + 1, out);
            }
        }
        out.push(node);
    }

    /// Whether every single-valued `enum`/`const` property of a branch (a tag such as `type` or `method`)
    /// that the value carries has the value's spelling; used to pick plausible branches of an invalid value.
    fn tags_match(&self, branch: &Node<'a>, value: &Value, depth: usize) -> bool {
        let Value::Object(object) = value else {
            return false;
        };
        let mut flat = Vec::new();
        // Resolve only `$ref`/`allOf` for the tag check: nested combinators are not tags.
        self.flatten_refs(branch.clone(), depth + 1, &mut flat);
        let mut saw_tag = false;
        for node in &flat {
            let Some(Value::Object(props)) = node.schema.get("properties") else {
                continue;
            };
            for (key, prop) in props {
                let tag = match (prop.get("enum"), prop.get("const")) {
                    (Some(Value::Array(values)), _) if values.len() == 1 => &values[0],
                    (_, Some(constant)) => constant,
                    _ => continue,
                };
                saw_tag = true;
                if object.get(key) != Some(tag) {
                    return false;
                }
            }
        }
        saw_tag
    }

    /// Like [`Self::flatten`] but only through `$ref` and `allOf`.
    fn flatten_refs(&self, node: Node<'a>, depth: usize, out: &mut Vec<Node<'a>>) {
        if depth > MAX_DEPTH {
            return;
        }
        let Value::Object(schema) = node.schema else {
            return;
        };
        if let Some(Value::String(reference)) = schema.get("$ref") {
            if let Some(target) = self.node_at(reference) {
                self.flatten_refs(target, depth + 1, out);
            }
        }
        if let Some(Value::Array(parts)) = schema.get("allOf") {
            for (i, part) in parts.iter().enumerate() {
                let child = Node {
                    schema: part,
                    ptr: format!("{}/allOf/{i}", node.ptr),
                };
                self.flatten_refs(child, depth + 1, out);
            }
        }
        out.push(node);
    }

    /// Checks `value` against the union of `nodes` (all of which apply) and recurses into children.
    fn walk(
        &self,
        value: &Value,
        nodes: Vec<Node<'a>>,
        instance_ptr: String,
        extra_declared: &[&str],
        out: &mut Vec<String>,
    ) {
        let mut applicable = Vec::new();
        for node in nodes {
            self.flatten(value, node, 0, &mut applicable);
        }
        match value {
            Value::Object(object) => {
                let describing: Vec<&Node<'a>> = applicable
                    .iter()
                    .filter(|n| describes_object(n.schema))
                    .collect();
                if describing.is_empty() {
                    return;
                }
                for (key, child) in object {
                    let key_ptr = format!("{instance_ptr}/{}", escape_token(key));
                    let mut declared = extra_declared.contains(&key.as_str());
                    let mut child_nodes = Vec::new();
                    for node in &describing {
                        let props = node.schema.get("properties").and_then(Value::as_object);
                        if let Some(prop) = props.and_then(|p| p.get(key)) {
                            declared = true;
                            child_nodes.push(Node {
                                schema: prop,
                                ptr: format!("{}/properties/{}", node.ptr, escape_token(key)),
                            });
                            continue;
                        }
                        if node.schema.get("patternProperties").is_some() {
                            // Pattern keys are data; without a regex engine treat them as declared, unchecked.
                            declared = true;
                        }
                        match node.schema.get("additionalProperties") {
                            None | Some(Value::Bool(false)) => {}
                            Some(additional) => {
                                declared = true;
                                child_nodes.push(Node {
                                    schema: additional,
                                    ptr: format!("{}/additionalProperties", node.ptr),
                                });
                            }
                        }
                    }
                    if !declared {
                        out.push(key_ptr);
                    } else if !child_nodes.is_empty() {
                        self.walk(child, child_nodes, key_ptr, &[], out);
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let mut child_nodes = Vec::new();
                    for node in &applicable {
                        match node.schema.get("items") {
                            Some(Value::Array(tuple)) => {
                                if let Some(schema) = tuple.get(i) {
                                    child_nodes.push(Node {
                                        schema,
                                        ptr: format!("{}/items/{i}", node.ptr),
                                    });
                                } else if let Some(additional) = node.schema.get("additionalItems")
                                {
                                    child_nodes.push(Node {
                                        schema: additional,
                                        ptr: format!("{}/additionalItems", node.ptr),
                                    });
                                }
                            }
                            Some(schema) => child_nodes.push(Node {
                                schema,
                                ptr: format!("{}/items", node.ptr),
                            }),
                            None => {}
                        }
                    }
                    if !child_nodes.is_empty() {
                        self.walk(item, child_nodes, format!("{instance_ptr}/{i}"), &[], out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Whether a schema node says which keys an object may have.
fn describes_object(schema: &Value) -> bool {
    let Value::Object(schema) = schema else {
        return false;
    };
    if schema.contains_key("properties")
        || schema.contains_key("additionalProperties")
        || schema.contains_key("patternProperties")
    {
        return true;
    }
    match schema.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(types)) => types.iter().any(|t| t == "object"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn unknown(schema: &Value, value: &Value) -> Vec<String> {
        let map = jsonschema::options()
            .build_map(schema)
            .expect("test schema compiles");
        StrictDoc {
            doc: schema,
            map: &map,
        }
        .unknown_keys(&["#"], value, &[])
    }

    #[test]
    fn key_is_unknown_only_if_no_validating_branch_declares_it() {
        let schema = json!({
            "definitions": {
                "A": {"type": "object", "properties": {"kind": {"enum": ["a"]}, "x": {"type": "integer"}},
                      "required": ["kind"]},
                "B": {"type": "object", "properties": {"kind": {"enum": ["b"]}, "y": {"$ref": "#/definitions/Inner"}},
                      "required": ["kind"]},
                "Inner": {"type": "object", "properties": {"z": {"type": "string"}}}
            },
            "type": "object",
            "properties": {
                "v": {"oneOf": [{"$ref": "#/definitions/A"}, {"$ref": "#/definitions/B"}]},
                "list": {"type": "array", "items": {"anyOf": [{"$ref": "#/definitions/Inner"}, {"type": "null"}]}},
                "any": true,
                "map": {"type": "object", "additionalProperties": {"$ref": "#/definitions/Inner"}},
                "wrapped": {"allOf": [{"$ref": "#/definitions/Inner"}], "description": "wrapper"}
            }
        });
        assert!(unknown(&schema, &json!({"v": {"kind": "a", "x": 1}})).is_empty());
        // `y` is declared by B, but B does not validate a kind-"a" value.
        assert_eq!(
            unknown(&schema, &json!({"v": {"kind": "a", "y": {}}})),
            vec!["/v/y"]
        );
        // Invalid value: branches are picked by tag, so B's `y` is walked and its inner typo is found.
        assert_eq!(
            unknown(&schema, &json!({"v": {"kind": "b", "y": {"Z": 1}}})),
            vec!["/v/y/Z"]
        );
        assert_eq!(
            unknown(&schema, &json!({"list": [null, {"z": "ok"}, {"zz": 1}]})),
            vec!["/list/2/zz"]
        );
        assert!(unknown(&schema, &json!({"any": {"whatever": {"deep": 1}}})).is_empty());
        assert_eq!(
            unknown(&schema, &json!({"map": {"k1": {"z": "a"}, "k2": {"q": 1}}})),
            vec!["/map/k2/q"]
        );
        assert_eq!(
            unknown(&schema, &json!({"wrapped": {"z": "a", "a/b": 1}})),
            vec!["/wrapped/a~1b"]
        );
        assert_eq!(unknown(&schema, &json!({"top": 1})), vec!["/top"]);
    }

    #[test]
    fn extra_top_level_keys_are_declared() {
        let schema =
            json!({"type": "object", "properties": {"a": {"type": "object", "properties": {}}}});
        let map = jsonschema::options()
            .build_map(&schema)
            .expect("test schema compiles");
        let doc = StrictDoc {
            doc: &schema,
            map: &map,
        };
        assert!(doc
            .unknown_keys(&["#"], &json!({"a": 1, "emittedAtMs": 2}), &["emittedAtMs"])
            .is_empty());
        // Only the top level gets the extra keys.
        assert_eq!(
            doc.unknown_keys(&["#"], &json!({"a": {"emittedAtMs": 2}}), &["emittedAtMs"]),
            vec!["/a/emittedAtMs"]
        );
    }
}
