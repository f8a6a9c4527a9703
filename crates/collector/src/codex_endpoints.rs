//! The few other endpoints a real Codex calls on its `chatgpt_base_url` at start-up, answered
//! minimally (empty lists, no plan limits) so that Codex runs cleanly against the collector.
//! They reveal nothing and store nothing.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::ingest::read_body_in_time;
use crate::server::AppState;

/// Builds the minimal JSON answer of one endpoint.
pub type Answer = fn() -> Value;

/// `(path below the base URL, minimal JSON answer)`, all `GET`.
pub const STARTUP_ENDPOINTS: &[(&str, Answer)] = &[
    ("/wham/accounts/check", accounts_check),
    ("/wham/usage", usage),
    ("/ps/plugins/installed", plugin_page),
    ("/ps/plugins/list", plugin_page),
    ("/plugins/featured", empty_list),
    ("/ps/plugins/suggested/codex", suggested_plugins),
    ("/wham/settings/user", user_settings),
];

/// Path of ChatGPT's hosted-apps MCP server, which Codex connects to at start-up.
pub const APPS_MCP_PATH: &str = "/ps/mcp";
/// Largest JSON-RPC message accepted on [`APPS_MCP_PATH`].
const MCP_MAX_BODY: usize = 64 * 1024;

fn accounts_check() -> Value {
    json!({ "accounts": [], "account_ordering": [] })
}

fn usage() -> Value {
    json!({ "plan_type": "plus", "rate_limit": null, "credits": null })
}

fn plugin_page() -> Value {
    json!({ "plugins": [], "pagination": { "limit": 1000, "next_page_token": null } })
}

fn empty_list() -> Value {
    json!([])
}

fn user_settings() -> Value {
    json!({ "commit_attribution_enabled": false })
}

fn suggested_plugins() -> Value {
    json!({ "enabled": false, "plugins": [] })
}

/// A minimal MCP server (streamable HTTP, JSON answers) with no tools, resources or prompts, so
/// Codex's apps client initializes and finds nothing instead of failing.
async fn apps_mcp(body: axum::body::Body) -> Response {
    let bytes = match read_body_in_time(body, Default::default(), MCP_MAX_BODY).await {
        Ok(b) => b,
        Err(e @ ApiError::BodyTimeout) => return e.into_response(),
        Err(_) => return rpc_error(Value::Null, -32700, "body unreadable or too large"),
    };
    let Ok(message) = serde_json::from_slice::<Value>(&bytes) else {
        return rpc_error(Value::Null, -32700, "parse error");
    };
    let id = message.get("id").cloned();
    let method = message.get("method").and_then(Value::as_str).unwrap_or("");
    let Some(id) = id.filter(|id| !id.is_null()) else {
        // Notifications (and responses) need no answer.
        return StatusCode::ACCEPTED.into_response();
    };
    let result = match method {
        "initialize" => {
            let version = message
                .pointer("/params/protocolVersion")
                .and_then(Value::as_str)
                .unwrap_or("2025-06-18");
            json!({
                "protocolVersion": crate::event::truncate(version, 32),
                "capabilities": { "tools": {} },
                "serverInfo": { "name": "tally-collector", "version": env!("CARGO_PKG_VERSION") }
            })
        }
        "ping" => json!({}),
        "tools/list" => json!({ "tools": [] }),
        "resources/list" => json!({ "resources": [] }),
        "resources/templates/list" => json!({ "resourceTemplates": [] }),
        "prompts/list" => json!({ "prompts": [] }),
        _ => return rpc_error(id, -32601, "method not found"),
    };
    Json(json!({ "jsonrpc": "2.0", "id": id, "result": result })).into_response()
}

fn rpc_error(id: Value, code: i64, message: &str) -> Response {
    Json(json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } }))
        .into_response()
}

/// Adds the start-up endpoints under `prefix` ("" for the bare paths).
pub fn routes(mut router: Router<Arc<AppState>>, prefix: &str) -> Router<Arc<AppState>> {
    for (path, answer) in STARTUP_ENDPOINTS {
        let answer = *answer;
        router = router.route(
            &format!("{prefix}{path}"),
            get(move || async move { Json(answer()) }),
        );
    }
    router.route(&format!("{prefix}{APPS_MCP_PATH}"), post(apps_mcp))
}
