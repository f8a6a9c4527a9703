//! `POST {prefix}/v1/agent/register` and `POST {prefix}/v1/agent/{agent_runtime_id}/task/register`:
//! the agent-identity endpoints Codex calls at `CODEX_AGENT_IDENTITY_AUTHAPI_BASE_URL`.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::auth::AuthError;
use crate::config::Scope;
use crate::error::ApiError;
use crate::server::AppState;

#[derive(Deserialize)]
struct RegisterBody {
    agent_public_key: String,
    #[serde(default)]
    abom: Option<Abom>,
}

#[derive(Deserialize)]
struct Abom {
    #[serde(default)]
    agent_harness_id: String,
}

#[derive(Deserialize)]
struct TaskRegisterBody {
    timestamp: String,
    signature: String,
}

/// Adds both endpoints under `prefix`.
pub fn routes(router: Router<Arc<AppState>>, prefix: &str) -> Router<Arc<AppState>> {
    router
        .route(&format!("{prefix}/v1/agent/register"), post(register))
        .route(
            &format!("{prefix}/v1/agent/{{agent_runtime_id}}/task/register"),
            post(register_task),
        )
}

fn bad_body(field: &str, reason: &str) -> ApiError {
    ApiError::BadQuery {
        field: field.into(),
        reason: reason.into(),
    }
}

async fn register(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = (|| {
        // Registration binds a key to an account: only a configured bearer token may do it.
        let principal = state.auth.authenticate_account(&headers, Scope::Ingest)?;
        let registry = state
            .auth
            .identities()
            .ok_or(AuthError::AgentAssertionUnsupported)?;
        let body: RegisterBody = serde_json::from_slice(&body).map_err(|_| {
            bad_body(
                "body",
                "expected {abom, agent_public_key, capabilities, ttl}",
            )
        })?;
        let harness = body.abom.map(|a| a.agent_harness_id).unwrap_or_default();
        let id = registry
            .register_runtime(&principal.account, &body.agent_public_key, &harness)
            .ok_or_else(|| bad_body("agent_public_key", "expected `ssh-ed25519 <base64>`"))?;
        tracing::info!(agent_runtime_id = %id, token = %principal.label, "agent runtime registered");
        Ok::<_, ApiError>(Json(json!({ "agent_runtime_id": id })))
    })();
    match result {
        Ok(answer) => answer.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn register_task(
    State(state): State<Arc<AppState>>,
    Path(agent_runtime_id): Path<String>,
    body: Bytes,
) -> Response {
    let result = (|| {
        let registry = state
            .auth
            .identities()
            .ok_or(AuthError::AgentAssertionUnsupported)?;
        let body: TaskRegisterBody = serde_json::from_slice(&body)
            .map_err(|_| bad_body("body", "expected {timestamp, signature}"))?;
        let task = registry
            .register_task(
                &agent_runtime_id,
                &body.timestamp,
                &body.signature,
                SystemTime::now(),
            )
            .map_err(|r| AuthError::agent(r, registry))?;
        if !state.config.agent_identity.encrypt_task_ids {
            return Ok::<_, ApiError>(Json(json!({ "task_id": task })));
        }
        // Sealed to the key that just signed the registration; only a bug can make this fail.
        let sealed = registry
            .seal_task_id(&agent_runtime_id, &task)
            .ok_or_else(|| ApiError::Internal("cannot seal the task id".into()))?;
        Ok(Json(json!({ "encrypted_task_id": sealed })))
    })();
    match result {
        Ok(answer) => answer.into_response(),
        Err(e) => e.into_response(),
    }
}
