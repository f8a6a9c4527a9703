//! `plugin/installed` and `mcpServerStatus/list`: Tally has no plugins and runs no MCP servers,
//! so both list none (an answer, not an error: the Codex TUI asks at start-up and on `/mcp`, and
//! reports a failure as "Failed to load MCP inventory").

use super::{Ctx, HandlerResult};
use tally_protocol::types::{ListMcpServerStatusResponse, PluginInstalledResponse};
use tally_protocol::ClientResponsePayload as P;

pub(crate) async fn installed(_ctx: &Ctx) -> HandlerResult {
    Ok(P::PluginInstalled(PluginInstalledResponse::default()).into())
}

pub(crate) async fn mcp_server_status(_ctx: &Ctx) -> HandlerResult {
    Ok(P::McpServerStatusList(ListMcpServerStatusResponse::default()).into())
}
