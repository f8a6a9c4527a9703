//! `config/read`: the effective config with Codex's snake_case keys, and where each key came from.

use super::{Ctx, HandlerResult};
use serde_json::{json, Map, Value};
use std::hash::{Hash, Hasher};
use tally_protocol::types::*;
use tally_protocol::ClientResponsePayload as P;

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
