//! Every way an HTTP request can fail, mapped to a status and a JSON body in one place.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::auth::AuthError;
use crate::decode::DecodeError;

/// A refused HTTP request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401 / 403.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// 413: the body (compressed) is over the cap.
    #[error("request body exceeds {limit} bytes")]
    BodyTooLarge {
        /// The cap.
        limit: usize,
    },
    /// 400 or 413: the batch could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// 415: a `Content-Encoding` other than gzip or identity.
    #[error("unsupported Content-Encoding `{0}` (use gzip or none)")]
    UnsupportedEncoding(String),
    /// 400: the body could not be read.
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    /// 408: the body did not arrive within the deadline.
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    /// 429: the ingest queue is full.
    #[error("ingest queue is full; retry after {retry_after_seconds} s")]
    QueueFull {
        /// Seconds for `Retry-After`.
        retry_after_seconds: u32,
    },
    /// 503: the store failed or did not answer in time; nothing was acknowledged.
    #[error("store unavailable: {reason}")]
    StoreUnavailable {
        /// What happened.
        reason: String,
        /// Seconds for `Retry-After`.
        retry_after_seconds: u32,
    },
    /// 503: as many reports as are computed at once are being computed.
    #[error(
        "{} reports are being computed already; retry after {retry_after_seconds} s",
        crate::report_gate::MAX_CONCURRENT_REPORTS
    )]
    ReportsBusy {
        /// Seconds for `Retry-After`.
        retry_after_seconds: u32,
    },
    /// 503: the report was not ready within the deadline.
    #[error(
        "the report took longer than {} s; retry after {retry_after_seconds} s",
        crate::report_gate::REPORT_DEADLINE.as_secs()
    )]
    ReportTimeout {
        /// Seconds for `Retry-After`.
        retry_after_seconds: u32,
    },
    /// 403: allowed in general, refused here (a registration past its limit).
    #[error("{reason}")]
    Refused {
        /// The machine-readable code.
        code: &'static str,
        /// What is refused and why.
        reason: String,
    },
    /// 500: a bug (a worker task failed); nothing was stored.
    #[error("internal error: {0}")]
    Internal(String),
    /// 400: a query parameter is invalid.
    #[error("{field}: {reason}")]
    BadQuery {
        /// The parameter.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Auth(e) => e.status(),
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Decode(DecodeError::DecompressedTooLarge { .. })
            | ApiError::Decode(DecodeError::TooManyEvents { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Decode(_) | ApiError::BodyRead(_) | ApiError::BadQuery { .. } => {
                StatusCode::BAD_REQUEST
            }
            ApiError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::QueueFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::StoreUnavailable { .. }
            | ApiError::ReportsBusy { .. }
            | ApiError::ReportTimeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Refused { .. } => StatusCode::FORBIDDEN,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `Retry-After` seconds this answer carries, if any.
    pub fn retry_after_seconds(&self) -> Option<u32> {
        match self {
            ApiError::QueueFull {
                retry_after_seconds,
            }
            | ApiError::StoreUnavailable {
                retry_after_seconds,
                ..
            }
            | ApiError::ReportsBusy {
                retry_after_seconds,
            }
            | ApiError::ReportTimeout {
                retry_after_seconds,
            }
            | ApiError::Auth(AuthError::AgentRateLimited {
                retry_after_seconds,
            }) => Some(*retry_after_seconds),
            _ => None,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Auth(e) => e.code(),
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::Decode(DecodeError::NotGzip(_)) => "invalid_gzip",
            ApiError::Decode(DecodeError::DecompressedTooLarge { .. }) => "decompressed_too_large",
            ApiError::Decode(DecodeError::Json { .. }) => "invalid_json",
            ApiError::Decode(DecodeError::Shape { .. }) => "invalid_batch",
            ApiError::Decode(DecodeError::TooManyEvents { .. }) => "too_many_events",
            ApiError::UnsupportedEncoding(_) => "unsupported_encoding",
            ApiError::BodyRead(_) => "body_read_error",
            ApiError::BodyTimeout => "body_timeout",
            ApiError::QueueFull { .. } => "queue_full",
            ApiError::StoreUnavailable { .. } => "store_unavailable",
            ApiError::ReportsBusy { .. } => "reports_busy",
            ApiError::ReportTimeout { .. } => "report_timeout",
            ApiError::BadQuery { .. } => "invalid_query",
            ApiError::Refused { code, .. } => code,
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.code(), "message": self.to_string() });
        if let ApiError::Decode(DecodeError::Shape { field, .. }) = &self {
            body["field"] = json!(field);
        }
        if let ApiError::BadQuery { field, .. } = &self {
            body["field"] = json!(field);
        }
        let retry_after = self.retry_after_seconds();
        let mut response = (self.status(), Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if matches!(self, ApiError::Auth(_)) && self.status() == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tally-collector\""),
            );
        }
        response
    }
}
