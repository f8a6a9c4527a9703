//! `plugin/installed` and `mcpServerStatus/list`: Tally has no plugin system and runs no MCP
//! servers, so both answer with none (the Codex TUI asks for plugins at start-up and on every
//! cwd change, and for MCP servers on `/mcp`).

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

/// `mcpServerStatus/list` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListMcpServerStatusParams {
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
    /// `full` or `toolsAndAuthOnly`.
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default)]
    pub thread_id: Option<String>,
}

/// `mcpServerStatus/list` result: the MCP servers and their status (Tally runs none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListMcpServerStatusResponse {
    pub data: Vec<serde_json::Value>,
    pub next_cursor: Option<String>,
}
