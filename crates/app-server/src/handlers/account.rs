//! `account/read`, `account/login/start`, `account/logout`, and the `account/updated` broadcast.

use super::{AfterSend, Ctx, HandlerReply, HandlerResult};
use std::sync::Arc;
use tally_auth::{AuthManager, AuthMode as Mode};
use tally_core::config::ProviderKind;
use tally_protocol::types::*;
use tally_protocol::ClientResponsePayload as P;
use tally_protocol::{JsonRpcErrorBody, ServerNotification};

pub(crate) async fn read(ctx: &Ctx, p: GetAccountParams) -> HandlerResult {
    if p.refresh_token {
        // A failed refresh still answers with what is known; the next backend call retries.
        if let Err(e) = ctx.auth.ensure_fresh().await {
            tracing::warn!(error = %e, "account/read: token refresh failed");
        }
    }
    let requires_openai_auth = matches!(
        ctx.config.model_provider.kind,
        ProviderKind::Responses {
            requires_openai_auth: true,
            ..
        }
    );
    let status = ctx.auth.status();
    let account = status.mode.map(|mode| match mode {
        Mode::ApiKey => Account::ApiKey,
        Mode::Chatgpt | Mode::ChatgptAuthTokens => Account::Chatgpt {
            email: status.email.clone(),
            plan_type: status.plan_type.clone().unwrap_or_else(|| "unknown".into()),
        },
    });
    Ok(P::AccountRead(GetAccountResponse {
        account,
        requires_openai_auth,
    })
    .into())
}

pub(crate) async fn login_start(ctx: &Ctx, p: LoginAccountParams) -> HandlerResult {
    let (result, response) = match p {
        LoginAccountParams::ApiKey { api_key } => (
            ctx.auth.login_api_key(&api_key),
            LoginAccountResponse::ApiKey,
        ),
        LoginAccountParams::ChatgptAuthTokens {
            access_token,
            chatgpt_account_id,
            chatgpt_plan_type,
        } => (
            ctx.auth
                .login_external_tokens(&access_token, &chatgpt_account_id, chatgpt_plan_type),
            LoginAccountResponse::ChatgptAuthTokens,
        ),
    };
    result.map_err(|e| match e {
        tally_auth::AuthError::Invalid(m) => JsonRpcErrorBody::invalid_params(m),
        other => JsonRpcErrorBody::internal(other.to_string()),
    })?;
    Ok(HandlerReply::then(
        P::AccountLoginStart(response),
        broadcast_update(ctx),
    ))
}

pub(crate) async fn logout(ctx: &Ctx) -> HandlerResult {
    ctx.auth
        .logout()
        .map_err(|e| JsonRpcErrorBody::internal(e.to_string()))?;
    Ok(HandlerReply::then(
        P::AccountLogout(EmptyResponse {}),
        broadcast_update(ctx),
    ))
}

/// `account/updated` to every initialized client, after the response.
fn broadcast_update(ctx: &Ctx) -> AfterSend {
    let outgoing = ctx.outgoing.clone();
    let auth = ctx.auth.clone();
    Box::new(move || {
        Box::pin(async move {
            let n = ServerNotification::AccountUpdated(account_updated(&auth));
            for connection in outgoing.registry().initialized_connections() {
                outgoing.send_notification(connection, &n).await;
            }
        })
    })
}

fn account_updated(auth: &Arc<AuthManager>) -> AccountUpdatedNotification {
    let status = auth.status();
    AccountUpdatedNotification {
        auth_mode: status.mode.map(|m| match m {
            Mode::ApiKey => AuthMode::ApiKey,
            Mode::Chatgpt => AuthMode::Chatgpt,
            Mode::ChatgptAuthTokens => AuthMode::ChatgptAuthTokens,
        }),
        plan_type: status.plan_type,
    }
}
