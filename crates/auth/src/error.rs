//! Errors of the auth crate; none carries a secret.

use std::path::{Path, PathBuf};

/// Why a credential could not be read, written, refreshed or used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file exists but is not what it should be.
    #[error("{path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the content).
        message: String,
    },
    /// The operation needs credentials and there are none.
    #[error("not logged in")]
    NotLoggedIn,
    /// An argument was refused.
    #[error("{0}")]
    Invalid(String),
    /// A token refresh failed; the caller gets an auth error, never a hang.
    #[error("token refresh failed: {0}")]
    Refresh(String),
    /// Agent identity could not be registered or used.
    #[error("agent identity: {0}")]
    AgentIdentity(String),
}

impl AuthError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        AuthError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
