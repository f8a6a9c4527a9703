//! Maps core errors to JSON-RPC errors, in one place.

use tally_core::CoreError;
use tally_protocol::jsonrpc::{INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST};
use tally_protocol::types::CodexErrorInfo;
use tally_protocol::JsonRpcErrorBody;

/// The JSON-RPC error a client gets for a core failure; internal details stay in the log.
pub(crate) fn core_error(e: CoreError) -> JsonRpcErrorBody {
    match e {
        CoreError::InvalidThreadId(_)
        | CoreError::ThreadNotFound(_)
        | CoreError::InvalidRequest(_)
        | CoreError::TurnRunning => JsonRpcErrorBody::new(INVALID_REQUEST, e.to_string()),
        CoreError::InvalidParams(_) => JsonRpcErrorBody::new(INVALID_PARAMS, e.to_string()),
        CoreError::ActiveTurnNotSteerable(turn_kind) => {
            let info = CodexErrorInfo::ActiveTurnNotSteerable { turn_kind };
            let body = JsonRpcErrorBody::new(INVALID_REQUEST, e.to_string());
            match serde_json::to_value(info) {
                Ok(info) => body.with_data(serde_json::json!({ "codexErrorInfo": info })),
                Err(_) => body,
            }
        }
        CoreError::Storage(_) | CoreError::Internal(_) => {
            tracing::error!(error = %e, "request failed inside the server");
            JsonRpcErrorBody::new(INTERNAL_ERROR, "internal error; see the server log")
        }
    }
}
