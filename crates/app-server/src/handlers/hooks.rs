//! `hooks/list`: every discovered hook per cwd, with its key, hash and trust status.

use super::{Ctx, HandlerResult};
use crate::error_map::core_error;
use std::path::PathBuf;
use tally_protocol::types::*;
use tally_protocol::{ClientResponsePayload as P, JsonRpcErrorBody};

pub(crate) async fn list(ctx: &Ctx, p: HooksListParams) -> HandlerResult {
    let cwds: Vec<PathBuf> = match (&p.thread_id, p.cwds.is_empty()) {
        (Some(id), _) => {
            let thread = ctx.threads.read_thread(id, false).map_err(core_error)?;
            vec![PathBuf::from(thread.cwd)]
        }
        (None, false) => p.cwds.iter().map(PathBuf::from).collect(),
        // An empty list means the session cwd: the server's own.
        (None, true) => vec![std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"))],
    };
    let home = ctx.config.home.clone();
    let data = tokio::task::spawn_blocking(move || {
        cwds.iter()
            .map(|cwd| tally_core::hooks::list(&home, cwd))
            .collect()
    })
    .await
    .map_err(|e| JsonRpcErrorBody::internal(format!("hooks/list failed: {e}")))?;
    Ok(P::HooksList(HooksListResponse { data }).into())
}
