//! Maps core errors to JSON-RPC errors, in one place.

use tally_core::CoreError;
use tally_protocol::jsonrpc::{INTERNAL_ERROR, INVALID_REQUEST};
use tally_protocol::JsonRpcErrorBody;

/// The JSON-RPC error a client gets for a core failure; internal details stay in the log.
pub(crate) fn core_error(e: CoreError) -> JsonRpcErrorBody {
    match e {
        CoreError::InvalidThreadId(_)
        | CoreError::ThreadNotFound(_)
        | CoreError::InvalidRequest(_) => JsonRpcErrorBody::new(INVALID_REQUEST, e.to_string()),
        CoreError::Storage(_) | CoreError::Internal(_) => {
            tracing::error!(error = %e, "request failed inside the server");
            JsonRpcErrorBody::new(INTERNAL_ERROR, "internal error; see the server log")
        }
    }
}
