//! `POST {prefix}/codex/analytics-events/events`: authenticate, read the body under its cap,
//! decompress, decode, queue, and answer only once the batch is durable.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use futures::StreamExt;
use serde::Serialize;

use crate::body_buffers::BodyBuffers;
use crate::config::Scope;
use crate::decode::{body_text, decode_text, decompress, ContentEncoding};
use crate::error::ApiError;
use crate::event::Receipt;
use crate::metrics::RefusalReason;
use crate::server::AppState;
use crate::store::{IngestBatch, InsertOutcome};

/// How long a client may take to send its body.
pub const BODY_READ_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Path of the ingest endpoint below the base URL.
pub const INGEST_PATH: &str = "/codex/analytics-events/events";

/// Success body: how many events were new and how many were already stored.
#[derive(Debug, Clone, Serialize)]
pub struct IngestResponse {
    /// Events stored for the first time.
    pub accepted: usize,
    /// Events already stored (same id), skipped.
    pub duplicates: usize,
}

/// One quarantined event in a 400 answer.
#[derive(Debug, Clone, Serialize)]
pub struct RejectSummary {
    /// Position of the event in the batch.
    pub index: usize,
    /// Offending field, e.g. `events[2].event_params.duration_ms`.
    pub field: String,
    /// What was wrong.
    pub reason: String,
}

/// 400 body for a batch with invalid events: the valid ones were stored, the rest quarantined.
#[derive(Debug, Clone, Serialize)]
pub struct PartialResponse {
    /// Always `invalid_events`.
    pub error: &'static str,
    /// Human summary.
    pub message: String,
    /// Events stored for the first time.
    pub accepted: usize,
    /// Events already stored.
    pub duplicates: usize,
    /// Events quarantined in all.
    pub rejected_total: usize,
    /// The first [`MAX_LISTED_REJECTS`] of them, with index, field and reason.
    pub rejected: Vec<RejectSummary>,
}

/// The ingest handler.
pub async fn ingest(State(state): State<Arc<AppState>>, request: Request) -> Response {
    match handle(&state, request).await {
        Ok(response) => response,
        Err(error) => {
            let reason = match &error {
                ApiError::Auth(crate::auth::AuthError::AgentRateLimited { .. }) => {
                    RefusalReason::AgentRateLimited
                }
                ApiError::Auth(_) => RefusalReason::Auth,
                ApiError::BodyTooLarge { .. } => RefusalReason::TooLarge,
                ApiError::Decode(crate::decode::DecodeError::DecompressedTooLarge { .. })
                | ApiError::Decode(crate::decode::DecodeError::TooManyEvents { .. }) => {
                    RefusalReason::TooLarge
                }
                ApiError::UnsupportedEncoding(_) => RefusalReason::UnsupportedEncoding,
                ApiError::QueueFull { .. } => RefusalReason::QueueFull,
                ApiError::StoreUnavailable { .. } => RefusalReason::StoreUnavailable,
                _ => RefusalReason::Malformed,
            };
            state.metrics.record_refused(reason, 0);
            error.into_response()
        }
    }
}

async fn handle(state: &AppState, request: Request) -> Result<Response, ApiError> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    state.auth.look_up_agent(headers).await;
    let principal = state.auth.authenticate(headers, peer, Scope::Ingest)?;
    let config = &state.config;
    // Held until the answer: bounds the bodies and decoded batches in memory at once.
    let Ok(_permit) = state.inflight.clone().try_acquire_owned() else {
        return Err(ApiError::QueueFull {
            retry_after_seconds: config.retry_after_seconds,
        });
    };

    let encoding_header = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let encoding = ContentEncoding::parse(encoding_header).ok_or_else(|| {
        ApiError::UnsupportedEncoding(
            crate::event::truncate(encoding_header.unwrap_or(""), 64).to_owned(),
        )
    })?;
    let limit = config.max_body_bytes;
    if content_length(headers).is_some_and(|len| len > limit) {
        return Err(ApiError::BodyTooLarge { limit });
    }
    let expected = content_length(headers).unwrap_or(0);
    let buffer = state.body_buffers.take(expected.min(limit));
    let body = read_body_in_time(body, buffer, limit).await?;
    // Given back when this request ends: by then its batch is written and its events, which
    // share the body, are gone (if not, the buffer is simply dropped).
    let _give_back = GiveBack(&state.body_buffers, body.clone());
    let limits = config.decode_limits();
    let received_at_ms = crate::time::now_ms();
    let originator = headers
        .get("originator")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let account = principal.account;
    // Decompressing, parsing and hashing a large batch is CPU work: keep it off the async workers.
    let (batch, rejected) = tokio::task::spawn_blocking(move || {
        let plain = decompress(body, encoding, limits.max_decompressed_bytes)?;
        let text = body_text(plain)?;
        let decoded = decode_text(&text, &limits)?;
        let receipt = Receipt::new(&account, originator.as_deref(), received_at_ms);
        Ok::<_, ApiError>(build_batch(decoded, &receipt, &text))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("decoder task failed: {e}")))??;
    let outcome = match store_batch(state, batch).await {
        Ok(outcome) => outcome,
        // Counted with the events it turned away: answered here, not by the caller's count.
        Err(e @ ApiError::QueueFull { .. }) => return Ok(e.into_response()),
        Err(e) => return Err(e),
    };
    state.metrics.record_rejected(rejected.len());
    if rejected.is_empty() {
        return Ok(Json(IngestResponse {
            accepted: outcome.inserted,
            duplicates: outcome.duplicates,
        })
        .into_response());
    }
    let mut rejected = rejected;
    let rejected_total = rejected.len();
    rejected.truncate(MAX_LISTED_REJECTS);
    let body = PartialResponse {
        error: "invalid_events",
        message: format!(
            "{rejected_total} event(s) rejected and quarantined; the {} valid event(s) were stored",
            outcome.inserted + outcome.duplicates
        ),
        accepted: outcome.inserted,
        duplicates: outcome.duplicates,
        rejected_total,
        rejected,
    };
    Ok((StatusCode::BAD_REQUEST, Json(body)).into_response())
}

/// Gives a body buffer back to the spares when dropped.
struct GiveBack<'a>(&'a BodyBuffers, Bytes);

impl Drop for GiveBack<'_> {
    fn drop(&mut self) {
        self.0.give_back(std::mem::take(&mut self.1));
    }
}

/// Queues `batch` for the store writer and waits until it is stored, at most the store timeout
/// (posted batches and `tally serve`'s own, [`crate::local_ingest`]). A full queue is counted
/// here, with the events it turned away.
pub(crate) async fn store_batch(
    state: &AppState,
    batch: IngestBatch,
) -> Result<InsertOutcome, ApiError> {
    if batch.is_empty() {
        return Ok(InsertOutcome::default());
    }
    let config = &state.config;
    let events = batch.events.len() + batch.rejects.len();
    let reply = state.queue.try_submit(batch).map_err(|_| {
        state
            .metrics
            .record_refused(RefusalReason::QueueFull, events);
        ApiError::QueueFull {
            retry_after_seconds: config.retry_after_seconds,
        }
    })?;
    let unavailable = |reason: String| ApiError::StoreUnavailable {
        reason,
        retry_after_seconds: config.retry_after_seconds,
    };
    match tokio::time::timeout(config.store_timeout(), reply).await {
        Ok(Ok(Ok(outcome))) => Ok(outcome),
        Ok(Ok(Err(e))) => Err(unavailable(e.to_string())),
        Ok(Err(_)) => Err(unavailable("store writer stopped".into())),
        Err(_) => Err(unavailable(format!(
            "not stored within {} ms",
            config.store_timeout_ms
        ))),
    }
}

/// Most rejects listed one by one in a 400 answer (all are quarantined and counted).
pub const MAX_LISTED_REJECTS: usize = 100;

/// Turns the wire events decoded from `body` into store events and quarantined events, plus the
/// summary of the rejects for the answer.
fn build_batch(
    decoded: crate::decode::DecodedBatch,
    receipt: &Receipt,
    body: &ByteString,
) -> (IngestBatch, Vec<RejectSummary>) {
    let events = decoded
        .events
        .into_iter()
        .map(|e| e.into_incoming(receipt, body))
        .collect();
    let rejected = decoded
        .rejects
        .iter()
        .map(|r| RejectSummary {
            index: r.index,
            field: r.field.clone(),
            reason: r.reason.clone(),
        })
        .collect();
    let rejects = decoded
        .rejects
        .into_iter()
        .map(|r| r.into_rejected(&receipt.account, receipt.received_at_ms))
        .collect();
    (IngestBatch { events, rejects }, rejected)
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Reads a request body into `out` within [`BODY_READ_DEADLINE`], stopping as soon as it passes
/// `limit` bytes: 408 for a sender that stalls, 413 past the cap. Every endpoint that reads a
/// body reads it so, or connections trickling bodies would each be held for ever.
pub(crate) async fn read_body_in_time(
    body: axum::body::Body,
    out: BytesMut,
    limit: usize,
) -> Result<Bytes, ApiError> {
    tokio::time::timeout(BODY_READ_DEADLINE, read_body(body, out, limit))
        .await
        .map_err(|_| ApiError::BodyTimeout)?
}

/// Reads the body into `out` (made with room for the bytes the client announced), stopping as
/// soon as it passes `limit` bytes.
async fn read_body(
    body: axum::body::Body,
    mut out: BytesMut,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::BodyRead(e.to_string()))?;
        if out.len() + chunk.len() > limit {
            return Err(ApiError::BodyTooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}
