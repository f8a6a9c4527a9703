//! `skills/list`: Tally loads no skills yet, so every cwd has an empty list (not an error).

use super::{Ctx, HandlerResult};
use tally_protocol::types::*;
use tally_protocol::ClientResponsePayload as P;

pub(crate) async fn list(_ctx: &Ctx, p: SkillsListParams) -> HandlerResult {
    let data = p
        .cwds
        .into_iter()
        .map(|cwd| SkillsListEntry {
            cwd,
            skills: Vec::new(),
            errors: Vec::new(),
        })
        .collect();
    Ok(P::SkillsList(SkillsListResponse { data }).into())
}
