//! The ingest decoder: bytes of a POST body (gzip or plain) → wire events and quarantined events.
//! A batch that cannot be read at all is an error; an event that is wrong on its own is rejected
//! with its index and field while the rest of the batch goes on.

use std::borrow::Cow;
use std::io::Read;

use bytes::Bytes;
use bytestring::ByteString;
use flate2::read::MultiGzDecoder;
use serde_json_borrow::KeyStrType;

use crate::event::{truncate, IncomingEvent, Receipt, RejectedEvent};
use crate::family::raw_json_type;
use crate::params_scan::{parse_params, read_params_at, ParamsRules, ParsedParams};
use crate::wire::{read_root, EventParts, EventSink, ParamsRead, RawEvent, ReadAhead, Shaped};

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
    /// `event_params`: as sent, and what the collector reads out of them.
    pub params: ParsedParams<'a>,
}

impl WireEvent<'_> {
    /// The event as a store keeps it: id (derived when not sent), typed columns, client, time.
    /// `body` is the text it was decoded from, whose slices the event shares (see
    /// [`IncomingEvent::from_parts`]).
    pub fn into_incoming(self, receipt: &Receipt, body: &ByteString) -> IncomingEvent {
        IncomingEvent::from_parts(
            &self.event_type,
            self.event_id.as_deref(),
            self.params,
            receipt,
            body,
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
    body: Bytes,
    encoding: ContentEncoding,
    limit: usize,
) -> Result<Bytes, DecodeError> {
    match encoding {
        ContentEncoding::Identity => {
            if body.len() > limit {
                return Err(DecodeError::DecompressedTooLarge { limit });
            }
            Ok(body)
        }
        ContentEncoding::Gzip => {
            let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
            MultiGzDecoder::new(&body[..])
                .take(cap)
                .read_to_end(&mut out)
                .map_err(|e| DecodeError::NotGzip(e.to_string()))?;
            if out.len() > limit {
                return Err(DecodeError::DecompressedTooLarge { limit });
            }
            Ok(Bytes::from(out))
        }
    }
}

/// Decodes a batch body (already decompressed).
pub fn decode_batch<'a>(
    bytes: &'a [u8],
    limits: &DecodeLimits,
) -> Result<DecodedBatch<'a>, DecodeError> {
    let text = std::str::from_utf8(bytes).map_err(|e| not_utf8(bytes, e))?;
    decode_text(text, limits)
}

/// A body as text, checked to be UTF-8 once: the buffer the decoded events share.
pub fn body_text(bytes: Bytes) -> Result<ByteString, DecodeError> {
    ByteString::try_from(bytes.clone()).map_err(|e| not_utf8(&bytes, e))
}

/// Decodes a batch body that is already text.
pub fn decode_text<'a>(
    text: &'a str,
    limits: &DecodeLimits,
) -> Result<DecodedBatch<'a>, DecodeError> {
    let mut decoder = BatchDecoder {
        limits,
        rules: params_rules(limits),
        batch: DecodedBatch::default(),
    };
    let root = read_root(text, limits.max_events_per_batch, &mut decoder).map_err(|e| {
        DecodeError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        }
    })?;
    let shape = |field: &str, reason: String| DecodeError::Shape {
        field: field.into(),
        reason,
    };
    let root = match root {
        Shaped::Found(root) => root,
        Shaped::Wrong(ty) => return Err(shape("$", format!("expected an object, got {ty}"))),
    };
    let count = match root.events {
        _ if root.events_repeated => return Err(shape("events", "given more than once".into())),
        Some(Shaped::Found(count)) => count,
        Some(Shaped::Wrong(ty)) => {
            return Err(shape("events", format!("expected an array, got {ty}")))
        }
        None => return Err(shape("events", "missing".into())),
    };
    if count > limits.max_events_per_batch {
        return Err(DecodeError::TooManyEvents {
            count,
            limit: limits.max_events_per_batch,
        });
    }
    Ok(decoder.batch)
}

/// Decodes each event as the walk reaches it.
struct BatchDecoder<'l, 'a> {
    limits: &'l DecodeLimits,
    rules: ParamsRules,
    batch: DecodedBatch<'a>,
}

impl<'a> EventSink<'a> for BatchDecoder<'_, 'a> {
    fn read_params(&mut self, event_type: &'a str, rest: &'a str) -> Option<ReadAhead<'a>> {
        let event_type = read_string(event_type).ok()?;
        rest.starts_with('{')
            .then(|| read_params_at(rest, &event_type, self.rules))
    }

    fn event(&mut self, index: usize, event: RawEvent<'a>) {
        match decode_event(index, event, self.limits) {
            Ok(e) => self.batch.events.push(e),
            Err(r) => self.batch.rejects.push(*r),
        }
    }
}

/// A body that is not UTF-8, reported like a JSON syntax error at the first bad byte.
fn not_utf8(bytes: &[u8], error: std::str::Utf8Error) -> DecodeError {
    let valid = bytes.get(..error.valid_up_to()).unwrap_or_default();
    let line = 1 + valid.iter().filter(|b| **b == b'\n').count();
    let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    DecodeError::Json {
        line,
        column: valid.len() - line_start + 1,
        message: format!("invalid UTF-8 at byte {}", error.valid_up_to()),
    }
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
    let mut parts = match event {
        RawEvent::Object(parts) => parts,
        RawEvent::Other(raw) => {
            let refusal = (
                String::new(),
                format!("expected an object, got {}", raw_json_type(raw)),
            );
            return Err(reject(raw.to_owned(), None, refusal));
        }
    };
    let event_type = match read_event_type(parts.event_type) {
        Ok(t) => t,
        Err(refusal) => return Err(reject(parts.to_json(), None, refusal)),
    };
    let params_read = parts.params_read.take();
    let checked = read_event_id(parts.event_id).and_then(|id| {
        let params = read_params(&parts, params_read, &event_type, limits)?;
        Ok((id, params))
    });
    match checked {
        Ok((event_id, params)) => Ok(WireEvent {
            index,
            event_type,
            event_id,
            params,
        }),
        Err(refusal) => {
            let ty = Some(event_type.into_owned());
            Err(reject(parts.to_json(), ty, refusal))
        }
    }
}

fn read_event_type(raw: Option<&str>) -> Result<Cow<'_, str>, Refusal> {
    let refuse = |reason: String| (".event_type".to_owned(), reason);
    let text = read_string(raw.ok_or_else(|| refuse("missing".into()))?).map_err(refuse)?;
    check_event_type(&text).map_err(refuse)?;
    Ok(text)
}

fn read_event_id(raw: Option<&str>) -> Result<Option<Cow<'_, str>>, Refusal> {
    let refuse = |reason: String| (".event_id".to_owned(), reason);
    match raw {
        None | Some("null") => Ok(None),
        Some(raw) => {
            let id = read_string(raw).map_err(refuse)?;
            check_event_id(&id).map_err(refuse)?;
            Ok(Some(id))
        }
    }
}

/// A JSON string's text (`raw` is JSON), borrowed unless it holds escapes.
fn read_string(raw: &str) -> Result<Cow<'_, str>, String> {
    match serde_json::from_str::<KeyStrType<'_>>(raw) {
        Ok(s) => Ok(s.into()),
        Err(_) => Err(format!("expected a string, got {}", raw_json_type(raw))),
    }
}

fn params_rules(limits: &DecodeLimits) -> ParamsRules {
    ParamsRules {
        max_string_bytes: limits.max_string_bytes,
        strict_types: true,
    }
}

/// The event's params: as read during the walk when that was for this event's type, else read
/// now; with their tree when the event's id is derived from them.
fn read_params<'a>(
    parts: &EventParts<'a>,
    read_during_walk: Option<(&'a str, ParamsRead<'a>)>,
    event_type: &str,
    limits: &DecodeLimits,
) -> Result<ParsedParams<'a>, Refusal> {
    let refuse = |(field, reason): Refusal| (format!(".event_params{field}"), reason);
    let text = parts
        .event_params
        .ok_or_else(|| refuse((String::new(), "missing".into())))?;
    let ty = raw_json_type(text);
    if ty != "object" {
        return Err(refuse((
            String::new(),
            format!("expected an object, got {ty}"),
        )));
    }
    let read = match read_during_walk {
        Some((for_type, read)) if Some(for_type) == parts.event_type => read,
        _ => parse_params(text, event_type, params_rules(limits)),
    };
    read.map_err(refuse)
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

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
