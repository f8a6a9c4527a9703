//! The ingest decoder: bytes of a POST body (gzip or plain) → wire events and quarantined events.
//! A batch that cannot be read at all is an error; an event that is wrong on its own is rejected
//! with its index and field while the rest of the batch goes on.

use std::io::Read;

use flate2::read::MultiGzDecoder;
use serde_json::{Map, Value};

use crate::event::{truncate, RejectedEvent};
use crate::family::{family_for, json_type, validate_typed_fields};

/// Caps the decoder enforces.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Largest decompressed body accepted (the gzip-bomb cap).
    pub max_decompressed_bytes: usize,
    /// Most events in one batch.
    pub max_events_per_batch: usize,
    /// Longest string value (in bytes) anywhere in an event.
    pub max_string_bytes: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_decompressed_bytes: 32 * 1024 * 1024,
            max_events_per_batch: 10_000,
            max_string_bytes: 4096,
        }
    }
}

/// Longest `event_type` accepted.
pub const MAX_EVENT_TYPE_LEN: usize = 128;
/// Longest `event_id` accepted.
pub const MAX_EVENT_ID_LEN: usize = 128;

/// A batch that could not be decoded at all (nothing in it is stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// `Content-Encoding: gzip` but the body is not valid gzip.
    #[error("body is not valid gzip: {0}")]
    NotGzip(String),
    /// The decompressed body is over the cap.
    #[error("decompressed body exceeds {limit} bytes")]
    DecompressedTooLarge {
        /// The cap.
        limit: usize,
    },
    /// The body is not JSON.
    #[error("body is not valid JSON at line {line} column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// The JSON does not have the batch shape.
    #[error("{field}: {reason}")]
    Shape {
        /// The offending field, e.g. `events`.
        field: String,
        /// What was wrong.
        reason: String,
    },
    /// More events than a batch may hold.
    #[error("batch holds {count} events, more than the limit of {limit}")]
    TooManyEvents {
        /// Events in the batch.
        count: usize,
        /// The cap.
        limit: usize,
    },
}

/// One well-formed event as it came off the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct WireEvent {
    /// Position in the batch.
    pub index: usize,
    /// `event_type`.
    pub event_type: String,
    /// `event_params`.
    pub event_params: Map<String, Value>,
    /// `event_id`, when sent.
    pub event_id: Option<String>,
}

/// A rejected event before account and time are attached.
#[derive(Debug, Clone, PartialEq)]
pub struct WireReject {
    /// Position in the batch.
    pub index: usize,
    /// `event_type` when readable.
    pub event_type: Option<String>,
    /// Field path, e.g. `events[2].event_params.duration_ms`.
    pub field: String,
    /// What was wrong.
    pub reason: String,
    /// The event re-serialized, capped.
    pub raw: String,
}

impl WireReject {
    /// Attaches the sender's account and the receive time.
    pub fn into_rejected(self, account: &str, received_at_ms: i64) -> RejectedEvent {
        RejectedEvent {
            index: self.index,
            event_type: self.event_type,
            field: self.field,
            reason: self.reason,
            raw: self.raw,
            account: account.to_owned(),
            received_at_ms,
        }
    }
}

/// The result of decoding a batch: its good events and its quarantined ones, in batch order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecodedBatch {
    /// Events that passed every check.
    pub events: Vec<WireEvent>,
    /// Events that failed one, with the reason.
    pub rejects: Vec<WireReject>,
}

/// How the body is encoded, from `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncoding {
    /// No header, or `identity`.
    Identity,
    /// `gzip` or `x-gzip`.
    Gzip,
}

impl ContentEncoding {
    /// Parses a `Content-Encoding` value; `None` for encodings the collector does not accept.
    pub fn parse(header: Option<&str>) -> Option<Self> {
        match header.map(|h| h.trim().to_ascii_lowercase()) {
            None => Some(ContentEncoding::Identity),
            Some(h) if h.is_empty() || h == "identity" => Some(ContentEncoding::Identity),
            Some(h) if h == "gzip" || h == "x-gzip" => Some(ContentEncoding::Gzip),
            Some(_) => None,
        }
    }
}

/// Decompresses a body, refusing to inflate past `limit` bytes (a gzip bomb stops at the cap).
pub fn decompress(
    body: &[u8],
    encoding: ContentEncoding,
    limit: usize,
) -> Result<std::borrow::Cow<'_, [u8]>, DecodeError> {
    match encoding {
        ContentEncoding::Identity => {
            if body.len() > limit {
                return Err(DecodeError::DecompressedTooLarge { limit });
            }
            Ok(std::borrow::Cow::Borrowed(body))
        }
        ContentEncoding::Gzip => {
            let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
            MultiGzDecoder::new(body)
                .take(cap)
                .read_to_end(&mut out)
                .map_err(|e| DecodeError::NotGzip(e.to_string()))?;
            if out.len() > limit {
                return Err(DecodeError::DecompressedTooLarge { limit });
            }
            Ok(std::borrow::Cow::Owned(out))
        }
    }
}

/// Decodes a batch body (already decompressed).
pub fn decode_batch(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedBatch, DecodeError> {
    let root: Value = serde_json::from_slice(bytes).map_err(|e| DecodeError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let Value::Object(mut root) = root else {
        return Err(DecodeError::Shape {
            field: "$".into(),
            reason: format!("expected an object, got {}", json_type(&root)),
        });
    };
    let events = match root.remove("events") {
        Some(Value::Array(events)) => events,
        Some(other) => {
            return Err(DecodeError::Shape {
                field: "events".into(),
                reason: format!("expected an array, got {}", json_type(&other)),
            })
        }
        None => {
            return Err(DecodeError::Shape {
                field: "events".into(),
                reason: "missing".into(),
            })
        }
    };
    if events.len() > limits.max_events_per_batch {
        return Err(DecodeError::TooManyEvents {
            count: events.len(),
            limit: limits.max_events_per_batch,
        });
    }
    let mut batch = DecodedBatch {
        events: Vec::with_capacity(events.len()),
        rejects: Vec::new(),
    };
    for (index, event) in events.into_iter().enumerate() {
        match decode_event(index, event, limits) {
            Ok(e) => batch.events.push(e),
            Err(r) => batch.rejects.push(*r),
        }
    }
    Ok(batch)
}

fn decode_event(
    index: usize,
    event: Value,
    limits: &DecodeLimits,
) -> Result<WireEvent, Box<WireReject>> {
    let reject = |raw: &Value, event_type: Option<String>, field: &str, reason: String| {
        let raw = raw.to_string();
        Box::new(WireReject {
            index,
            event_type,
            field: format!("events[{index}]{field}"),
            reason,
            raw: truncate(&raw, RejectedEvent::MAX_RAW_BYTES).to_owned(),
        })
    };
    let mut map = match event {
        Value::Object(map) => map,
        other => {
            let reason = format!("expected an object, got {}", json_type(&other));
            return Err(reject(&other, None, "", reason));
        }
    };
    let event_type = match map.get("event_type") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            let reason = format!("expected a string, got {}", json_type(other));
            return Err(reject(&Value::Object(map), None, ".event_type", reason));
        }
        None => {
            let reason = "missing".to_owned();
            return Err(reject(&Value::Object(map), None, ".event_type", reason));
        }
    };
    if let Err(reason) = check_event_type(&event_type) {
        let ty = truncate(&event_type, MAX_EVENT_TYPE_LEN).to_owned();
        return Err(reject(&Value::Object(map), Some(ty), ".event_type", reason));
    }
    let ty = Some(event_type.clone());
    let event_id = match map.get("event_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match check_event_id(s) {
            Ok(()) => Some(s.clone()),
            Err(reason) => return Err(reject(&Value::Object(map), ty, ".event_id", reason)),
        },
        Some(other) => {
            let reason = format!("expected a string, got {}", json_type(other));
            return Err(reject(&Value::Object(map), ty, ".event_id", reason));
        }
    };
    let params = match map.remove("event_params") {
        Some(Value::Object(p)) => p,
        Some(other) => {
            let reason = format!("expected an object, got {}", json_type(&other));
            map.insert("event_params".into(), other);
            return Err(reject(&Value::Object(map), ty, ".event_params", reason));
        }
        None => {
            let reason = "missing".to_owned();
            return Err(reject(&Value::Object(map), ty, ".event_params", reason));
        }
    };
    let mut path = String::from(".event_params");
    let mut failure = check_strings(&params, limits.max_string_bytes, &mut path).err();
    if failure.is_none() {
        if let Some(family) = family_for(&event_type) {
            if let Err((field, reason)) = validate_typed_fields(family, &params) {
                path = format!(".event_params.{field}");
                failure = Some(reason);
            }
        }
    }
    if let Some(reason) = failure {
        map.insert("event_params".into(), Value::Object(params));
        return Err(reject(&Value::Object(map), ty, &path, reason));
    }
    Ok(WireEvent {
        index,
        event_type,
        event_params: params,
        event_id,
    })
}

fn check_event_type(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > MAX_EVENT_TYPE_LEN {
        return Err(format!("longer than {MAX_EVENT_TYPE_LEN} bytes"));
    }
    if !s
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'.')
    {
        return Err("may only hold a-z, 0-9, '_' and '.'".into());
    }
    Ok(())
}

fn check_event_id(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > MAX_EVENT_ID_LEN {
        return Err(format!("longer than {MAX_EVENT_ID_LEN} bytes"));
    }
    if s.starts_with(crate::dedup::DERIVED_PREFIX) {
        return Err("the sha256: prefix is reserved for derived ids".into());
    }
    if !s
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
    {
        return Err("may only hold A-Z, a-z, 0-9, '-', '_', '.' and ':'".into());
    }
    Ok(())
}

/// Rejects any string (value or key) longer than `max`; on failure `path` gets the offending
/// field appended (the path is only built on failure, so the common case allocates nothing).
fn check_strings(params: &Map<String, Value>, max: usize, path: &mut String) -> Result<(), String> {
    let mut segments = Vec::new();
    let result = check_map(params, max, &mut segments);
    if result.is_err() {
        for segment in segments.iter().rev() {
            path.push_str(segment);
        }
    }
    result
}

fn check_map(map: &Map<String, Value>, max: usize, at: &mut Vec<String>) -> Result<(), String> {
    for (key, value) in map {
        let result = if key.len() > max {
            Err(format!("key longer than {max} bytes"))
        } else {
            check_value(value, max, at)
        };
        if result.is_err() {
            at.push(format!(".{}", truncate(key, 64)));
            return result;
        }
    }
    Ok(())
}

fn check_value(value: &Value, max: usize, at: &mut Vec<String>) -> Result<(), String> {
    match value {
        Value::String(s) if s.len() > max => Err(format!(
            "string of {} bytes is longer than the limit of {max}",
            s.len()
        )),
        Value::Object(map) => check_map(map, max, at),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let result = check_value(item, max, at);
                if result.is_err() {
                    at.push(format!("[{i}]"));
                    return result;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
