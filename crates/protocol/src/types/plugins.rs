//! `plugin/installed`: the plugins installed per marketplace. Tally has no plugin system, so it
//! answers with none (the Codex TUI asks at start-up and on every cwd change).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `plugin/installed` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginInstalledParams {
    /// Working directories whose repo marketplaces are read.
    #[serde(default)]
    pub cwds: Option<Vec<String>>,
    /// Uninstalled plugins to report when present locally.
    #[serde(default)]
    pub install_suggestion_plugin_names: Option<Vec<String>>,
}

/// `plugin/installed` result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginInstalledResponse {
    /// Marketplaces with their installed plugins.
    pub marketplaces: Vec<serde_json::Value>,
    /// Marketplaces that could not be read.
    pub marketplace_load_errors: Vec<serde_json::Value>,
}
