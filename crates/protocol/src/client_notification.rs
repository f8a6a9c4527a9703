//! Client-to-server notifications.

use crate::DecodeError;

/// A typed client notification; `initialized` is the only one defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNotification {
    Initialized,
}

impl ClientNotification {
    /// Decodes a notification by method.
    pub fn decode(method: &str) -> Result<Self, DecodeError> {
        match method {
            "initialized" => Ok(ClientNotification::Initialized),
            other => Err(DecodeError::UnknownMethod(other.to_string())),
        }
    }
}
