//! `config/read`: the effective config with Codex's snake_case keys, and where each key came from.

use super::{Ctx, HandlerResult};
use serde_json::{json, Map, Value};
use std::hash::{Hash, Hasher};
use tally_protocol::types::*;
use tally_protocol::{ClientResponsePayload as P, JsonRpcErrorBody};

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
    let mut table: toml::Table = toml::from_str(&text)
        .map_err(|e| JsonRpcErrorBody::invalid_request(format!("{file}: invalid TOML: {e}")))?;
    for edit in &p.edits {
        apply_edit(&mut table, edit).map_err(JsonRpcErrorBody::invalid_params)?;
    }
    let new_text =
        toml::to_string(&table).map_err(|e| JsonRpcErrorBody::internal(format!("{file}: {e}")))?;
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

/// Applies one edit; `null` removes the key, `upsert` merges tables key by key.
fn apply_edit(table: &mut toml::Table, edit: &ConfigEdit) -> Result<(), String> {
    let path = &edit.key_path;
    let keys: Vec<&str> = path.split('.').collect();
    let Some((last, parents)) = keys
        .split_last()
        .filter(|_| keys.iter().all(|k| !k.is_empty()))
    else {
        return Err(format!("keyPath `{path}` is not a dotted key"));
    };
    let mut at = table;
    for k in parents {
        let next = at
            .entry(k.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = next
            .as_table_mut()
            .ok_or_else(|| format!("keyPath `{path}`: `{k}` is not a table"))?;
    }
    match (json_to_toml(&edit.value), edit.merge_strategy) {
        (None, _) => {
            at.remove(*last);
        }
        (Some(v), MergeStrategy::Replace) => {
            at.insert(last.to_string(), v);
        }
        (Some(v), MergeStrategy::Upsert) => match at.get_mut(*last) {
            Some(existing) => merge(existing, v),
            None => {
                at.insert(last.to_string(), v);
            }
        },
    }
    Ok(())
}

fn merge(dst: &mut toml::Value, src: toml::Value) {
    match (dst, src) {
        (toml::Value::Table(d), toml::Value::Table(s)) => {
            for (k, v) in s {
                match d.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        d.insert(k, v);
                    }
                }
            }
        }
        (dst, src) => *dst = src,
    }
}

/// JSON to TOML; `null` has no TOML form, so it means "absent".
fn json_to_toml(v: &Value) -> Option<toml::Value> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        Value::String(s) => toml::Value::String(s.clone()),
        Value::Array(a) => toml::Value::Array(a.iter().filter_map(json_to_toml).collect()),
        Value::Object(o) => toml::Value::Table(
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), json_to_toml(v)?)))
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

    #[test]
    fn upsert_merges_hook_state_and_replace_overwrites() {
        let mut t: toml::Table =
            toml::from_str("model = \"m\"\n[hooks.state.\"/h:stop:0:0\"]\ntrusted_hash = \"a\"\n")
                .unwrap();
        let trust = json!({"/h/hooks.json:pre_tool_use:0:0": {"trusted_hash": "sha256:b"}});
        apply_edit(&mut t, &edit("hooks.state", trust, MergeStrategy::Upsert)).unwrap();
        let state = t["hooks"]["state"].as_table().unwrap();
        assert_eq!(state.len(), 2);
        assert_eq!(
            state["/h/hooks.json:pre_tool_use:0:0"]["trusted_hash"].as_str(),
            Some("sha256:b")
        );
        apply_edit(&mut t, &edit("model", json!("n"), MergeStrategy::Replace)).unwrap();
        assert_eq!(t["model"].as_str(), Some("n"));
        apply_edit(&mut t, &edit("model", Value::Null, MergeStrategy::Replace)).unwrap();
        assert!(!t.contains_key("model"));
    }

    #[test]
    fn a_key_path_through_a_value_is_refused() {
        let mut t: toml::Table = toml::from_str("model = \"m\"").unwrap();
        let err = apply_edit(&mut t, &edit("model.x", json!(1), MergeStrategy::Replace));
        assert_eq!(err, Err("keyPath `model.x`: `model` is not a table".into()));
        assert!(apply_edit(&mut t, &edit("a..b", json!(1), MergeStrategy::Replace)).is_err());
    }
}
