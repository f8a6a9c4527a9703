//! `account/read`.

use super::{Ctx, HandlerResult};
use tally_core::config::ProviderKind;
use tally_protocol::types::*;
use tally_protocol::ClientResponsePayload as P;

pub(crate) async fn read(ctx: &Ctx, _p: GetAccountParams) -> HandlerResult {
    let (account, requires_openai_auth) = match &ctx.config.model_provider.kind {
        ProviderKind::Offline => (None, false),
        ProviderKind::Responses { env_key, .. } => {
            let has_key = env_key
                .as_deref()
                .and_then(|k| std::env::var(k).ok())
                .is_some_and(|v| !v.is_empty());
            let requires = ctx.config.model_provider.id == tally_core::config::OPENAI_PROVIDER_ID;
            (has_key.then_some(Account::ApiKey), requires)
        }
    };
    Ok(P::AccountRead(GetAccountResponse {
        account,
        requires_openai_auth,
    })
    .into())
}
