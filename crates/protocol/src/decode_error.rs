//! Why a request's method or params could not be decoded into a typed request.

use crate::jsonrpc::{JsonRpcErrorBody, INVALID_PARAMS, METHOD_NOT_FOUND};

/// A method-table decoding failure, mapped to its JSON-RPC code in one place.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("method not found: {0}")]
    UnknownMethod(String),
    #[error("Invalid params for {method}: {reason}")]
    InvalidParams { method: String, reason: String },
}

impl DecodeError {
    /// The JSON-RPC error body a client gets for this failure.
    pub fn to_error_body(&self) -> JsonRpcErrorBody {
        let code = match self {
            DecodeError::UnknownMethod(_) => METHOD_NOT_FOUND,
            DecodeError::InvalidParams { .. } => INVALID_PARAMS,
        };
        JsonRpcErrorBody::new(code, self.to_string())
    }
}

/// Decodes params of `method` into `T`, naming the failing field in the error.
/// Absent or null params decode as an empty object, so all-optional params work without them.
pub fn decode_params<T: serde::de::DeserializeOwned>(
    method: &str,
    params: Option<serde_json::Value>,
) -> Result<T, DecodeError> {
    let value = match params {
        None | Some(serde_json::Value::Null) => serde_json::Value::Object(Default::default()),
        Some(v) => v,
    };
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let reason = if path == "." || path.is_empty() {
            inner.to_string()
        } else {
            format!("field `{path}`: {inner}")
        };
        DecodeError::InvalidParams {
            method: method.to_string(),
            reason,
        }
    })
}
