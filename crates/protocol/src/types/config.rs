use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `config/read` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigReadParams {
    #[serde(default)]
    pub include_layers: bool,
    #[serde(default)]
    pub cwd: Option<String>,
}

/// `config/read` result: effective config (snake_case keys), where each key came from, and layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigReadResponse {
    pub config: serde_json::Map<String, serde_json::Value>,
    pub origins: serde_json::Map<String, serde_json::Value>,
    pub layers: Option<Vec<serde_json::Value>>,
}

/// `configRequirements/read` result; `requirements` is null when nothing is enforced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigRequirementsReadResponse {
    pub requirements: Option<serde_json::Value>,
    pub supports_independent_speed_modes: Option<bool>,
}
