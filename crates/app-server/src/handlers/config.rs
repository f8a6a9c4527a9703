//! `config/read`: the effective config with Codex's snake_case keys, and where each key came from.

use super::{Ctx, HandlerResult};
use serde_json::{json, Map, Value};
use std::hash::{Hash, Hasher};
use tally_protocol::types::*;
use tally_protocol::{ClientResponsePayload as P, JsonRpcErrorBody};
use toml_edit::{DocumentMut, Item, Table, TableLike};

pub(crate) async fn read(ctx: &Ctx, p: ConfigReadParams) -> HandlerResult {
    let c = &ctx.config;
    let mut config = Map::new();
    config.insert("model".into(), json!(c.model));
    config.insert("model_provider".into(), json!(c.model_provider.id));
    config.insert("approval_policy".into(), json!(c.approval_policy));
    config.insert("sandbox_mode".into(), json!(c.sandbox_mode));
    config.insert(
        "model_reasoning_effort".into(),
        json!(c.model_reasoning_effort),
    );
    config.insert("analytics".into(), json!({"enabled": c.analytics_enabled}));

    let path = c.home.join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let user_keys: Vec<String> = toml::from_str::<toml::Table>(&text)
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default();
    let source = json!({"type": "user", "file": path.display().to_string()});
    let version = content_version(&text);
    let mut origins = Map::new();
    for key in user_keys.iter().filter(|k| config.contains_key(k.as_str())) {
        origins.insert(key.clone(), json!({"name": source, "version": version}));
    }
    let layers = p.include_layers.then(|| {
        let layer_config: Value = toml::from_str::<toml::Table>(&text)
            .ok()
            .and_then(|t| serde_json::to_value(t).ok())
            .unwrap_or_else(|| json!({}));
        vec![json!({"name": source, "version": version, "config": layer_config})]
    });
    Ok(P::ConfigRead(ConfigReadResponse {
        config,
        origins,
        layers,
    })
    .into())
}

/// `configRequirements/read`: Tally has no managed requirements (no requirements.toml or MDM).
pub(crate) async fn requirements(_ctx: &Ctx) -> HandlerResult {
    Ok(P::ConfigRequirementsRead(ConfigRequirementsReadResponse::default()).into())
}

/// An opaque version of a config file's content.
fn content_version(text: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// `config/batchWrite`: applies the edits to the user's config.toml and replaces the file
/// atomically (trusting hooks is an upsert of `hooks.state`).
pub(crate) async fn batch_write(ctx: &Ctx, p: ConfigBatchWriteParams) -> HandlerResult {
    let path = ctx.config.home.join("config.toml");
    if let Some(requested) = &p.file_path {
        if std::path::Path::new(requested) != path {
            return Err(JsonRpcErrorBody::invalid_params(format!(
                "filePath: only the user config {} can be written",
                path.display()
            )));
        }
    }
    let written = tokio::task::spawn_blocking(move || write_edits(&path, &p))
        .await
        .map_err(|e| JsonRpcErrorBody::internal(format!("config write failed: {e}")))??;
    Ok(P::ConfigBatchWrite(written).into())
}

fn write_edits(
    path: &std::path::Path,
    p: &ConfigBatchWriteParams,
) -> Result<ConfigWriteResponse, JsonRpcErrorBody> {
    let file = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(JsonRpcErrorBody::internal(format!("{file}: {e}"))),
    };
    if let Some(expected) = &p.expected_version {
        if *expected != content_version(&text) {
            return Err(JsonRpcErrorBody::invalid_request(format!(
                "{file} changed since version {expected}"
            )));
        }
    }
    // Edited in place, so the user's comments, key order and layout survive the rewrite.
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| JsonRpcErrorBody::invalid_request(format!("{file}: invalid TOML: {e}")))?;
    for edit in &p.edits {
        apply_edit(&mut doc, edit).map_err(JsonRpcErrorBody::invalid_params)?;
    }
    let new_text = doc.to_string();
    // Write a sibling and rename it over the file, so a reader never sees half a config.
    let tmp = path.with_extension(format!("toml.tmp-{}", std::process::id()));
    let io = |e: std::io::Error| JsonRpcErrorBody::internal(format!("{file}: {e}"));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(&tmp, &new_text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(ConfigWriteResponse {
        status: WriteStatus::Ok,
        version: content_version(&new_text),
        file_path: file.to_string(),
        overridden_metadata: None,
    })
}

/// Config keys nest a few levels (`hooks.state."<key>"`, `mcp_servers.<name>.env.<VAR>`).
const MAX_KEY_PATH_DEPTH: usize = 32;

/// Applies one edit; `null` removes the key, `upsert` merges tables key by key. Parent tables
/// that do not exist yet are created implicit, so `hooks.state` edits write only
/// `[hooks.state."<key>"]` headers.
fn apply_edit(doc: &mut DocumentMut, edit: &ConfigEdit) -> Result<(), String> {
    let path = &edit.key_path;
    // toml_edit writes and drops nested tables recursively: a path of thousands of keys would
    // overflow the stack and abort the server.
    let depth = path.split('.').count();
    if depth > MAX_KEY_PATH_DEPTH {
        return Err(format!(
            "keyPath has {depth} keys; at most {MAX_KEY_PATH_DEPTH} are accepted"
        ));
    }
    let keys: Vec<&str> = path.split('.').collect();
    let Some((last, parents)) = keys
        .split_last()
        .filter(|_| keys.iter().all(|k| !k.is_empty()))
    else {
        return Err(format!("keyPath `{path}` is not a dotted key"));
    };
    let mut at: &mut dyn TableLike = doc.as_table_mut();
    for k in parents {
        if !at.contains_key(k) {
            at.insert(k, Item::Table(implicit_table()));
        }
        at = at
            .get_mut(k)
            .and_then(Item::as_table_like_mut)
            .ok_or_else(|| format!("keyPath `{path}`: `{k}` is not a table"))?;
    }
    match (json_to_item(&edit.value), edit.merge_strategy) {
        (None, _) => {
            at.remove(last);
        }
        (Some(v), strategy) => match at.get_mut(last) {
            Some(existing) if strategy == MergeStrategy::Upsert => merge(existing, v),
            Some(existing) => replace(existing, v),
            None => {
                at.insert(last, v);
            }
        },
    }
    Ok(())
}

fn implicit_table() -> Table {
    let mut t = Table::new();
    t.set_implicit(true);
    t
}

/// Merges `src` into `dst` table by table; anything else is replaced.
fn merge(dst: &mut Item, src: Item) {
    let entries: Vec<(String, Item)> = match (&*dst, src) {
        (d, Item::Table(t)) if d.is_table_like() => t.into_iter().collect(),
        (d, Item::Value(toml_edit::Value::InlineTable(t))) if d.is_table_like() => {
            t.into_iter().map(|(k, v)| (k, Item::Value(v))).collect()
        }
        (_, src) => return replace(dst, src),
    };
    let Some(d) = dst.as_table_like_mut() else {
        return;
    };
    for (k, v) in entries {
        match d.get_mut(&k) {
            Some(existing) => merge(existing, v),
            None => {
                d.insert(&k, v);
            }
        }
    }
}

/// Replaces a value, keeping the comment and spacing around the old one.
fn replace(dst: &mut Item, src: Item) {
    match (dst.as_value(), src) {
        (Some(old), Item::Value(mut new)) => {
            *new.decor_mut() = old.decor().clone();
            *dst = Item::Value(new);
        }
        (_, src) => *dst = src,
    }
}

/// JSON to a TOML item: objects become tables, the rest values; `null` has no TOML form, so it
/// means "absent".
fn json_to_item(v: &Value) -> Option<Item> {
    match v {
        Value::Object(o) => {
            let mut t = implicit_table();
            for (k, v) in o {
                if let Some(item) = json_to_item(v) {
                    t.insert(k, item);
                }
            }
            Some(Item::Table(t))
        }
        other => json_to_value(other).map(Item::Value),
    }
}

fn json_to_value(v: &Value) -> Option<toml_edit::Value> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64()?.into(),
        },
        Value::String(s) => s.as_str().into(),
        Value::Array(a) => toml_edit::Value::Array(a.iter().filter_map(json_to_value).collect()),
        Value::Object(o) => toml_edit::Value::InlineTable(
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), json_to_value(v)?)))
                .collect(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(key_path: &str, value: Value, merge_strategy: MergeStrategy) -> ConfigEdit {
        ConfigEdit {
            key_path: key_path.into(),
            value,
            merge_strategy,
        }
    }

    fn doc(text: &str) -> DocumentMut {
        text.parse().unwrap()
    }

    #[test]
    fn upsert_merges_hook_state_and_replace_overwrites() {
        let mut d = doc("model = \"m\"\n[hooks.state.\"/h:stop:0:0\"]\ntrusted_hash = \"a\"\n");
        let trust = json!({"/h/hooks.json:pre_tool_use:0:0": {"trusted_hash": "sha256:b"}});
        apply_edit(&mut d, &edit("hooks.state", trust, MergeStrategy::Upsert)).unwrap();
        let t: toml::Table = toml::from_str(&d.to_string()).unwrap();
        let state = t["hooks"]["state"].as_table().unwrap();
        assert_eq!(state.len(), 2);
        assert_eq!(
            state["/h/hooks.json:pre_tool_use:0:0"]["trusted_hash"].as_str(),
            Some("sha256:b")
        );
        apply_edit(&mut d, &edit("model", json!("n"), MergeStrategy::Replace)).unwrap();
        assert_eq!(d["model"].as_str(), Some("n"));
        apply_edit(&mut d, &edit("model", Value::Null, MergeStrategy::Replace)).unwrap();
        assert!(!d.contains_key("model"));
    }

    #[test]
    fn a_key_path_through_a_value_is_refused() {
        let mut d = doc("model = \"m\"");
        let err = apply_edit(&mut d, &edit("model.x", json!(1), MergeStrategy::Replace));
        assert_eq!(err, Err("keyPath `model.x`: `model` is not a table".into()));
        assert!(apply_edit(&mut d, &edit("a..b", json!(1), MergeStrategy::Replace)).is_err());
    }

    #[test]
    fn a_key_path_deeper_than_any_config_is_refused_before_it_is_built() {
        let mut d = doc("model = \"m\"");
        let deep = vec!["a"; 200_000].join(".");
        let err = apply_edit(&mut d, &edit(&deep, json!(1), MergeStrategy::Replace));
        assert_eq!(
            err,
            Err("keyPath has 200000 keys; at most 32 are accepted".into())
        );
        assert_eq!(d.to_string(), "model = \"m\"\n");
        let deepest = vec!["a"; MAX_KEY_PATH_DEPTH].join(".");
        apply_edit(&mut d, &edit(&deepest, json!(1), MergeStrategy::Replace)).unwrap();
        assert!(d.to_string().contains("a.a.a"));
    }

    #[test]
    fn comments_and_layout_survive_an_edit() {
        let text = "# my settings\nmodel = \"m\"  # the usual one\n\n# analytics below\n[analytics]\nenabled = false # off for now\n\n[hooks.state.\"/h:stop:0:0\"] # trusted last week\ntrusted_hash = \"sha256:a\"\n";
        let mut d = doc(text);
        let trust = json!({"/h/hooks.json:stop:0:1": {"trusted_hash": "sha256:b"}});
        apply_edit(&mut d, &edit("hooks.state", trust, MergeStrategy::Upsert)).unwrap();
        apply_edit(&mut d, &edit("model", json!("n"), MergeStrategy::Replace)).unwrap();
        apply_edit(
            &mut d,
            &edit("analytics", json!({"enabled": true}), MergeStrategy::Upsert),
        )
        .unwrap();
        let out = d.to_string();
        assert_eq!(
            out,
            "# my settings\nmodel = \"n\"  # the usual one\n\n# analytics below\n[analytics]\nenabled = true # off for now\n\n[hooks.state.\"/h:stop:0:0\"] # trusted last week\ntrusted_hash = \"sha256:a\"\n\n[hooks.state.\"/h/hooks.json:stop:0:1\"]\ntrusted_hash = \"sha256:b\"\n"
        );
    }

    #[test]
    fn new_tables_are_written_as_headers_and_inline_tables_merge() {
        let mut d = doc("hooks = { state = { a = { trusted_hash = \"x\" } } }\n");
        let trust = json!({"b": {"trusted_hash": "y"}});
        apply_edit(&mut d, &edit("hooks.state", trust, MergeStrategy::Upsert)).unwrap();
        let t: toml::Table = toml::from_str(&d.to_string()).unwrap();
        assert_eq!(t["hooks"]["state"]["b"]["trusted_hash"].as_str(), Some("y"));
        assert_eq!(t["hooks"]["state"]["a"]["trusted_hash"].as_str(), Some("x"));

        let mut d = doc("");
        let trust = json!({"/h/hooks.json:stop:0:0": {"trusted_hash": "sha256:c"}});
        apply_edit(&mut d, &edit("hooks.state", trust, MergeStrategy::Upsert)).unwrap();
        assert_eq!(
            d.to_string(),
            "[hooks.state.\"/h/hooks.json:stop:0:0\"]\ntrusted_hash = \"sha256:c\"\n"
        );
    }
}
