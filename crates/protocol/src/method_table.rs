//! The macro that turns one table of `Variant => "method", Params, Response` rows into
//! `ClientRequest`, `ClientResponsePayload` and their method lookups, so the two can never drift.

macro_rules! client_method_table {
    ($( $(#[$doc:meta])* $variant:ident => $method:literal, $params:ty, $response:ty; )*) => {
        /// A typed request from the client, one variant per method.
        #[derive(Debug, Clone, PartialEq)]
        pub enum ClientRequest {
            $( $(#[$doc])* $variant($params), )*
        }

        /// The typed, pre-serialization body of a successful response, one variant per client method.
        #[derive(Debug, Clone, PartialEq)]
        pub enum ClientResponsePayload {
            $( $(#[$doc])* $variant($response), )*
        }

        /// Every client request method Tally implements.
        pub const CLIENT_REQUEST_METHODS: &[&str] = &[$($method),*];

        impl ClientRequest {
            /// The wire method name.
            pub fn method(&self) -> &'static str {
                match self { $( Self::$variant(_) => $method, )* }
            }

            /// Decodes a request's params by its method; unknown methods and bad params are errors.
            pub fn decode(
                method: &str,
                params: Option<serde_json::Value>,
            ) -> Result<Self, $crate::DecodeError> {
                match method {
                    $( $method => Ok(Self::$variant($crate::decode_error::decode_params($method, params)?)), )*
                    other => Err($crate::DecodeError::UnknownMethod(other.to_string())),
                }
            }

            /// The params as JSON, as a client would send them.
            pub fn params_json(&self) -> Result<serde_json::Value, serde_json::Error> {
                match self { $( Self::$variant(p) => serde_json::to_value(p), )* }
            }
        }

        impl ClientResponsePayload {
            /// The client method this payload answers.
            pub fn method(&self) -> &'static str {
                match self { $( Self::$variant(_) => $method, )* }
            }

            /// Serializes the payload into the JSON-RPC `result` value.
            pub fn to_result(&self) -> Result<serde_json::Value, serde_json::Error> {
                match self { $( Self::$variant(r) => serde_json::to_value(r), )* }
            }

            /// Decodes a `result` value of `method` (used by clients and tests).
            pub fn decode(method: &str, result: serde_json::Value) -> Result<Self, $crate::DecodeError> {
                match method {
                    $( $method => serde_json::from_value(result).map(Self::$variant).map_err(|e| {
                        $crate::DecodeError::InvalidParams { method: $method.to_string(), reason: e.to_string() }
                    }), )*
                    other => Err($crate::DecodeError::UnknownMethod(other.to_string())),
                }
            }
        }

        /// JSON Schemas of every params and response type, keyed by method.
        pub fn client_method_schemas() -> Vec<(&'static str, schemars::Schema, schemars::Schema)> {
            vec![ $( ($method, schemars::schema_for!($params), schemars::schema_for!($response)), )* ]
        }
    };
}

pub(crate) use client_method_table;
