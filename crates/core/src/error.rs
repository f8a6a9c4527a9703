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
    /// Params decoded but break a rule; the message names the field.
    #[error("{0}")]
    InvalidParams(String),
    /// `turn/start` or `turn/steer` while a turn that takes no input runs.
    #[error("active turn is not steerable: a {} turn is running", turn_kind_name(*.0))]
    ActiveTurnNotSteerable(tally_protocol::types::NonSteerableTurnKind),
    /// A new turn was asked for while another runs (one that takes no input, or one that
    /// started while the request waited).
    #[error("a turn is running in this thread; wait for it or interrupt it")]
    TurnRunning,
    #[error("storage error: {0}")]
    Storage(String),
    #[error("internal error: {0}")]
    Internal(String),
}

fn turn_kind_name(kind: tally_protocol::types::NonSteerableTurnKind) -> &'static str {
    match kind {
        tally_protocol::types::NonSteerableTurnKind::Review => "review",
        tally_protocol::types::NonSteerableTurnKind::Compact => "manual compaction",
    }
}

impl From<std::io::Error> for CoreError {
    fn from(e: std::io::Error) -> Self {
        CoreError::Storage(e.to_string())
    }
}
