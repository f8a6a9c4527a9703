//! Core errors; the app-server maps each to a JSON-RPC error in one place.

/// What can go wrong in a thread or turn operation.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("invalid thread id: {0}")]
    InvalidThreadId(String),
    #[error("thread not found: {0}")]
    ThreadNotFound(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<std::io::Error> for CoreError {
    fn from(e: std::io::Error) -> Self {
        CoreError::Storage(e.to_string())
    }
}
