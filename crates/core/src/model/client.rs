use crate::config::{ModelProviderInfo, ProviderKind};
use crate::model::{ModelRequest, OfflineModel, ResponseEvent, ResponsesClient};
use futures::stream::BoxStream;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

/// The events of one model response, ending after `Completed` or an error.
pub type ResponseStream = BoxStream<'static, Result<ResponseEvent, ModelError>>;

/// A model that streams Responses-API events for a request.
#[async_trait::async_trait]
pub trait ModelClient: Send + Sync {
    /// Opens a stream for `request`; request-level retries happen inside.
    async fn stream(&self, request: ModelRequest) -> Result<ResponseStream, ModelError>;

    /// Like `stream`, adding one to `retries` each time the request is sent again after a
    /// transient failure; a client that never retries inside uses the default.
    async fn stream_counting_retries(
        &self,
        request: ModelRequest,
        retries: &AtomicU32,
    ) -> Result<ResponseStream, ModelError> {
        let _ = retries;
        self.stream(request).await
    }

    /// How many times a stream that breaks mid-way may be retried by the turn.
    fn stream_max_retries(&self) -> u32;
}

/// Why a model request or stream failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelError {
    #[error("model request failed with HTTP {status}: {message}")]
    Http {
        status: u16,
        message: String,
        retryable: bool,
    },
    #[error("could not reach the model: {0}")]
    Connect(String),
    #[error("model stream disconnected before completion: {0}")]
    StreamDisconnected(String),
    #[error("model stream idle for longer than {0:?}")]
    IdleTimeout(std::time::Duration),
    #[error("model response failed: {0}")]
    ResponseFailed(String),
    #[error("missing credentials: set {0}")]
    MissingCredentials(String),
}

impl ModelError {
    /// Whether a new attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ModelError::Http { retryable, .. } => *retryable,
            ModelError::Connect(_)
            | ModelError::StreamDisconnected(_)
            | ModelError::IdleTimeout(_) => true,
            ModelError::ResponseFailed(_) | ModelError::MissingCredentials(_) => false,
        }
    }

    /// The HTTP status behind the failure, if any.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            ModelError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Builds the client for a provider.
pub fn client_for_provider(
    provider: &ModelProviderInfo,
    auth: Option<Arc<tally_auth::AuthManager>>,
) -> Arc<dyn ModelClient> {
    match &provider.kind {
        ProviderKind::Offline => Arc::new(OfflineModel),
        ProviderKind::Responses { .. } => {
            Arc::new(ResponsesClient::new(provider.clone()).with_auth(auth))
        }
    }
}
