//! The ingest decoder: bytes of a POST body (gzip or plain) → wire events and quarantined events.
//! A batch that cannot be read at all is an error; an event that is wrong on its own is rejected
//! with its index and field while the rest of the batch goes on.

use std::borrow::Cow;
use std::io::Read;

use flate2::read::MultiGzDecoder;
use serde_json::value::RawValue;
use serde_json_borrow::{KeyStrType, ObjectAsVec, Value};

use crate::event::{truncate, IncomingEvent, Receipt, RejectedEvent};
use crate::family::{family_for, raw_json_type, validate_typed_fields};
use crate::wire::{read_root, EventParts, RawEvent, Shaped};

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

/// One well-formed event as it came off the wire, borrowing from the body.
#[derive(Debug, Clone, PartialEq)]
pub struct WireEvent<'a> {
    /// Position in the batch.
    pub index: usize,
    /// `event_type`.
    pub event_type: Cow<'a, str>,
    /// `event_id`, when sent.
    pub event_id: Option<Cow<'a, str>>,
    /// `event_params` as sent.
    pub params_json: &'a str,
    /// `event_params`, parsed.
    pub params: ObjectAsVec<'a>,
}

impl WireEvent<'_> {
    /// The event as a store keeps it: id (derived when not sent), typed columns, client, time.
    pub fn to_incoming(&self, receipt: Receipt<'_>) -> IncomingEvent {
        IncomingEvent::from_parts(
            &self.event_type,
            self.event_id.as_deref(),
            self.params_json,
            &self.params,
            receipt,
        )
    }
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
pub struct DecodedBatch<'a> {
    /// Events that passed every check.
    pub events: Vec<WireEvent<'a>>,
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
pub fn decode_batch<'a>(
    bytes: &'a [u8],
    limits: &DecodeLimits,
) -> Result<DecodedBatch<'a>, DecodeError> {
    let root = read_root(bytes, limits.max_events_per_batch).map_err(|e| DecodeError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let shape = |field: &str, reason: String| DecodeError::Shape {
        field: field.into(),
        reason,
    };
    let root = match root {
        Shaped::Found(root) => root,
        Shaped::Wrong(ty) => return Err(shape("$", format!("expected an object, got {ty}"))),
    };
    let events = match root.events {
        Some(Shaped::Found(events)) => events,
        Some(Shaped::Wrong(ty)) => {
            return Err(shape("events", format!("expected an array, got {ty}")))
        }
        None => return Err(shape("events", "missing".into())),
    };
    if events.count > limits.max_events_per_batch {
        return Err(DecodeError::TooManyEvents {
            count: events.count,
            limit: limits.max_events_per_batch,
        });
    }
    let mut batch = DecodedBatch {
        events: Vec::with_capacity(events.items.len()),
        rejects: Vec::new(),
    };
    for (index, event) in events.items.into_iter().enumerate() {
        match decode_event(index, event, limits) {
            Ok(e) => batch.events.push(e),
            Err(r) => batch.rejects.push(*r),
        }
    }
    Ok(batch)
}

/// Why an event was rejected: the field below `events[i]` and the reason.
type Refusal = (String, String);

fn decode_event<'a>(
    index: usize,
    event: RawEvent<'a>,
    limits: &DecodeLimits,
) -> Result<WireEvent<'a>, Box<WireReject>> {
    let reject = |raw: String, event_type: Option<String>, (field, reason): Refusal| {
        Box::new(WireReject {
            index,
            event_type,
            field: format!("events[{index}]{field}"),
            reason,
            raw: truncate(&raw, RejectedEvent::MAX_RAW_BYTES).to_owned(),
        })
    };
    let parts = match event {
        RawEvent::Object(parts) => parts,
        RawEvent::Other(value) => {
            let ty = raw_json_type(&value.to_string());
            let refusal = (String::new(), format!("expected an object, got {ty}"));
            return Err(reject(value.to_string(), None, refusal));
        }
    };
    let event_type = match read_event_type(parts.event_type) {
        Ok(t) => t,
        Err(refusal) => return Err(reject(parts.to_json(), None, refusal)),
    };
    let checked = read_event_id(parts.event_id)
        .and_then(|id| Ok((id, read_params(&parts, &event_type, limits)?)));
    match checked {
        Ok((event_id, (params_json, params))) => Ok(WireEvent {
            index,
            event_type,
            event_id,
            params_json,
            params,
        }),
        Err(refusal) => {
            let ty = Some(event_type.into_owned());
            Err(reject(parts.to_json(), ty, refusal))
        }
    }
}

fn read_event_type(raw: Option<&RawValue>) -> Result<Cow<'_, str>, Refusal> {
    let refuse = |reason: String| (".event_type".to_owned(), reason);
    let text = read_string(raw.ok_or_else(|| refuse("missing".into()))?).map_err(refuse)?;
    check_event_type(&text).map_err(refuse)?;
    Ok(text)
}

fn read_event_id(raw: Option<&RawValue>) -> Result<Option<Cow<'_, str>>, Refusal> {
    let refuse = |reason: String| (".event_id".to_owned(), reason);
    match raw {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => {
            let id = read_string(raw).map_err(refuse)?;
            check_event_id(&id).map_err(refuse)?;
            Ok(Some(id))
        }
    }
}

/// A JSON string's text, borrowed unless it holds escapes.
fn read_string(raw: &RawValue) -> Result<Cow<'_, str>, String> {
    match serde_json::from_str::<KeyStrType<'_>>(raw.get()) {
        Ok(s) => Ok(s.into()),
        Err(_) => Err(format!(
            "expected a string, got {}",
            raw_json_type(raw.get())
        )),
    }
}

fn read_params<'a>(
    parts: &EventParts<'a>,
    event_type: &str,
    limits: &DecodeLimits,
) -> Result<(&'a str, ObjectAsVec<'a>), Refusal> {
    let refuse = |field: String, reason: String| (format!(".event_params{field}"), reason);
    let raw = parts
        .event_params
        .ok_or_else(|| refuse(String::new(), "missing".into()))?;
    let params = match serde_json::from_str::<Value<'a>>(raw.get()) {
        Ok(Value::Object(params)) => params,
        _ => {
            let reason = format!("expected an object, got {}", raw_json_type(raw.get()));
            return Err(refuse(String::new(), reason));
        }
    };
    let mut path = String::new();
    check_strings(&params, limits.max_string_bytes, &mut path).map_err(|r| refuse(path, r))?;
    if let Some(family) = family_for(event_type) {
        validate_typed_fields(family, &params).map_err(|(f, r)| refuse(format!(".{f}"), r))?;
    }
    Ok((raw.get(), params))
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
fn check_strings(params: &ObjectAsVec<'_>, max: usize, path: &mut String) -> Result<(), String> {
    let mut segments = Vec::new();
    let result = check_map(params, max, &mut segments);
    if result.is_err() {
        for segment in segments.iter().rev() {
            path.push_str(segment);
        }
    }
    result
}

fn check_map(map: &ObjectAsVec<'_>, max: usize, at: &mut Vec<String>) -> Result<(), String> {
    for (key, value) in map.iter() {
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

fn check_value(value: &Value<'_>, max: usize, at: &mut Vec<String>) -> Result<(), String> {
    match value {
        Value::Str(s) if s.len() > max => Err(format!(
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
