//! `POST {prefix}/v1/agent/register` and `POST {prefix}/v1/agent/{agent_runtime_id}/task/register`:
//! the agent-identity endpoints Codex calls at `CODEX_AGENT_IDENTITY_AUTHAPI_BASE_URL`.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::agent_identity::{IdentityRegistry, RegistryError};
use crate::auth::AuthError;
use crate::config::Scope;
use crate::error::ApiError;
use crate::ingest::read_body_in_time;
use crate::server::AppState;

/// Largest registration body read (a key, a timestamp and a signature are a few hundred bytes).
const MAX_BODY_BYTES: usize = 64 * 1024;

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

/// A registry error as an answer: 400 for a bad key, 401/429 for a refusal, 503 (with
/// `Retry-After`) when nothing could be kept.
fn registry_error(state: &AppState, registry: &IdentityRegistry, e: RegistryError) -> ApiError {
    match e {
        RegistryError::BadKey => bad_body("agent_public_key", "expected `ssh-ed25519 <base64>`"),
        RegistryError::Rejected(r) => AuthError::agent(r, registry).into(),
        RegistryError::NotKept(reason) => ApiError::StoreUnavailable {
            reason,
            retry_after_seconds: state.config.retry_after_seconds,
        },
        e @ RegistryError::Limit { code, .. } => ApiError::Refused {
            code,
            reason: e.to_string(),
        },
    }
}

async fn register(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    match register_runtime(&state, &headers, body).await {
        Ok(answer) => answer.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn register_runtime(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    // Registration binds a key to an account: only a configured bearer token may do it.
    let principal = state.auth.authenticate_account(headers, Scope::Ingest)?;
    let registry = state
        .auth
        .identities()
        .ok_or(AuthError::AgentAssertionUnsupported)?;
    let body = read_body_in_time(body, Default::default(), MAX_BODY_BYTES).await?;
    let body: RegisterBody = serde_json::from_slice(&body).map_err(|_| {
        bad_body(
            "body",
            "expected {abom, agent_public_key, capabilities, ttl}",
        )
    })?;
    let harness = body.abom.map(|a| a.agent_harness_id).unwrap_or_default();
    let id = registry
        .register_runtime(&principal.account, &body.agent_public_key, &harness)
        .await
        .map_err(|e| registry_error(state, registry, e))?;
    tracing::info!(agent_runtime_id = %id, token = %principal.label, "agent runtime registered");
    Ok(Json(json!({ "agent_runtime_id": id })))
}

async fn register_task(
    State(state): State<Arc<AppState>>,
    Path(agent_runtime_id): Path<String>,
    body: Body,
) -> Response {
    match register_task_of(&state, &agent_runtime_id, body).await {
        Ok(answer) => answer.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn register_task_of(
    state: &AppState,
    agent_runtime_id: &str,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let registry = state
        .auth
        .identities()
        .ok_or(AuthError::AgentAssertionUnsupported)?;
    // Anyone may call this (the signature is in the body): the read has a deadline and a cap.
    let body = read_body_in_time(body, Default::default(), MAX_BODY_BYTES).await?;
    let body: TaskRegisterBody = serde_json::from_slice(&body)
        .map_err(|_| bad_body("body", "expected {timestamp, signature}"))?;
    let task = registry
        .register_task(
            agent_runtime_id,
            &body.timestamp,
            &body.signature,
            SystemTime::now(),
        )
        .await
        .map_err(|e| registry_error(state, registry, e))?;
    if !state.config.agent_identity.encrypt_task_ids {
        return Ok(Json(json!({ "task_id": task })));
    }
    // Sealed to the key that just signed the registration; only a bug can make this fail.
    let sealed = registry
        .seal_task_id(agent_runtime_id, &task)
        .ok_or_else(|| ApiError::Internal("cannot seal the task id".into()))?;
    Ok(Json(json!({ "encrypted_task_id": sealed })))
}
