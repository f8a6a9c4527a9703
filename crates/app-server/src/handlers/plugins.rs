//! `plugin/installed`: Tally has no plugins, so no marketplace lists any (an answer, not an
//! error: the Codex TUI asks at start-up).

use super::{Ctx, HandlerResult};
use tally_protocol::types::PluginInstalledResponse;
use tally_protocol::ClientResponsePayload as P;

pub(crate) async fn installed(_ctx: &Ctx) -> HandlerResult {
    Ok(P::PluginInstalled(PluginInstalledResponse::default()).into())
}
