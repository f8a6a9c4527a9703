//! The JSON-RPC "lite" envelope: JSON-RPC 2.0 without the `jsonrpc` member.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Parse error: the line or frame is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// The message is not a valid request, or the request is not allowed now.
pub const INVALID_REQUEST: i64 = -32600;
/// The method is unknown to this server.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The params of a known method do not decode.
pub const INVALID_PARAMS: i64 = -32602;
/// Something failed inside the server.
pub const INTERNAL_ERROR: i64 = -32603;
/// The server's request ingress is full; the client should retry.
pub const SERVER_OVERLOADED: i64 = -32001;

/// A request id: a string or a 64-bit integer, echoed verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RequestId {
    Integer(i64),
    String(String),
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Integer(n) => write!(f, "{n}"),
            RequestId::String(s) => write!(f, "{s:?}"),
        }
    }
}

/// The body of a JSON-RPC error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JsonRpcErrorBody {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl JsonRpcErrorBody {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(INVALID_REQUEST, message)
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(INTERNAL_ERROR, message)
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// An error answer; `id` is null when the request's id could not be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JsonRpcError {
    pub id: Option<RequestId>,
    pub error: JsonRpcErrorBody,
}

/// One message as it arrives, classified by its members but not yet typed by method.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonRpcMessage {
    Request {
        id: RequestId,
        method: String,
        params: Option<Value>,
    },
    Notification {
        method: String,
        params: Option<Value>,
    },
    Response {
        id: RequestId,
        result: Value,
    },
    Error {
        id: Option<RequestId>,
        error: JsonRpcErrorBody,
    },
}

/// Why an incoming message could not be classified.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("Parse error: {0}")]
    Parse(String),
    #[error("Invalid request: {reason}")]
    Invalid {
        id: Option<RequestId>,
        reason: String,
    },
}

impl EnvelopeError {
    /// The JSON-RPC error answer for this failure.
    pub fn to_error(&self) -> JsonRpcError {
        match self {
            EnvelopeError::Parse(_) => JsonRpcError {
                id: None,
                error: JsonRpcErrorBody::new(PARSE_ERROR, self.to_string()),
            },
            EnvelopeError::Invalid { id, .. } => JsonRpcError {
                id: id.clone(),
                error: JsonRpcErrorBody::invalid_request(self.to_string()),
            },
        }
    }
}

impl JsonRpcMessage {
    /// Classifies one line or frame of text.
    pub fn parse(text: &str) -> Result<Self, EnvelopeError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| EnvelopeError::Parse(e.to_string()))?;
        Self::from_value(value)
    }

    /// Classifies an already-parsed JSON value.
    pub fn from_value(value: Value) -> Result<Self, EnvelopeError> {
        let Value::Object(mut obj) = value else {
            return Err(EnvelopeError::Invalid {
                id: None,
                reason: "message must be a JSON object".into(),
            });
        };
        let id = match obj.remove("id") {
            None | Some(Value::Null) => None,
            Some(raw) => Some(serde_json::from_value::<RequestId>(raw).map_err(|_| {
                EnvelopeError::Invalid {
                    id: None,
                    reason: "`id` must be a string or an integer".into(),
                }
            })?),
        };
        let method = match obj.remove("method") {
            None => None,
            Some(Value::String(m)) => Some(m),
            Some(_) => {
                return Err(EnvelopeError::Invalid {
                    id,
                    reason: "`method` must be a string".into(),
                })
            }
        };
        let params = obj.remove("params");
        match (id, method) {
            (Some(id), Some(method)) => Ok(Self::Request { id, method, params }),
            (None, Some(method)) => Ok(Self::Notification { method, params }),
            (id, None) => Self::answer_from(id, obj),
        }
    }

    fn answer_from(
        id: Option<RequestId>,
        mut obj: serde_json::Map<String, Value>,
    ) -> Result<Self, EnvelopeError> {
        if let Some(raw) = obj.remove("error") {
            let error = serde_json::from_value::<JsonRpcErrorBody>(raw).map_err(|e| {
                EnvelopeError::Invalid {
                    id: id.clone(),
                    reason: format!("malformed `error`: {e}"),
                }
            })?;
            return Ok(Self::Error { id, error });
        }
        match (id, obj.remove("result")) {
            (Some(id), Some(result)) => Ok(Self::Response { id, result }),
            (id, _) => Err(EnvelopeError::Invalid {
                id,
                reason: "message has neither `method` nor `result`/`error`".into(),
            }),
        }
    }
}

#[cfg(test)]
#[path = "jsonrpc_tests.rs"]
mod tests;
