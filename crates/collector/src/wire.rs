//! The shape of an ingest body, walked in one pass without building a JSON tree: the root object,
//! its `events` array, and each event's fields as raw JSON slices of the body, handed on as the
//! walk reaches them. Anything of the wrong JSON type is recorded (with the type found) rather
//! than failing the whole body, so the decoder can quarantine one event and keep the rest.
//!
//! The walk reads the structure itself and hands each value to serde_json, starting where the
//! value starts. That lets an event's params be read by their scan as the walk reaches them (when
//! the event's type came first, as senders write it), instead of being skipped once to find their
//! end and read again.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json_borrow::KeyStrType;

use crate::family::raw_json_type;
use crate::params_scan::{ParamsRefusal, ParsedParams};

/// A value that was of the expected JSON type, or the name of the type found instead.
#[derive(Debug)]
pub enum Shaped<T> {
    /// The expected type.
    Found(T),
    /// Another type: `"array"`, `"string"`, …
    Wrong(&'static str),
}

/// The body's root object.
#[derive(Debug, Default)]
pub struct Root {
    /// `events`, when present: how many elements the array held, including those past the cap
    /// (skipped unread).
    pub events: Option<Shaped<usize>>,
    /// `events` was given more than once (only the first one's events were handed on).
    pub events_repeated: bool,
}

/// One element of `events`.
#[derive(Debug)]
// Handed to the sink by value once and never stored: boxing the object would cost an allocation
// per event for nothing.
#[allow(clippy::large_enum_variant)]
pub enum RawEvent<'a> {
    /// An object, split into the fields the collector reads.
    Object(EventParts<'a>),
    /// Anything else, as sent (raw JSON text), kept whole for the quarantine. Not parsed: a
    /// number beyond f64 is valid JSON that serde_json would refuse to make a value of.
    Other(&'a str),
}

/// What the params reader made of an event's `event_params`.
pub type ParamsRead<'a> = Result<ParsedParams<'a>, ParamsRefusal>;

/// An event object's fields as raw JSON text (of any type; the decoder checks them).
#[derive(Debug, Default)]
pub struct EventParts<'a> {
    /// `event_type`.
    pub event_type: Option<&'a str>,
    /// `event_id`.
    pub event_id: Option<&'a str>,
    /// `event_params`.
    pub event_params: Option<&'a str>,
    /// Any other field, kept so a quarantined event is stored whole.
    pub other: Vec<(KeyStrType<'a>, &'a str)>,
    /// `event_params` as read during the walk, with the `event_type` text it was read for; `None`
    /// when the walk did not read them (the type came after them, or was not a string).
    pub params_read: Option<(&'a str, ParamsRead<'a>)>,
}

impl EventParts<'_> {
    /// The event as JSON text again (compact between fields, each field as sent).
    pub fn to_json(&self) -> String {
        let named = [
            ("event_type", self.event_type),
            ("event_id", self.event_id),
            ("event_params", self.event_params),
        ];
        let fields = named
            .iter()
            .filter_map(|(k, v)| Some((*k, (*v)?)))
            .chain(self.other.iter().map(|(k, v)| (&**k, *v)));
        let mut out = String::from("{");
        for (i, (key, value)) in fields.enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(key).unwrap_or_default());
            out.push(':');
            out.push_str(value);
        }
        out.push('}');
        out
    }
}

/// What the walk hands the events to, as it reaches them.
pub trait EventSink<'a> {
    /// Reads an event's params where they start: given the event's `event_type` (raw JSON) and
    /// the body from the params on, `None` to leave them unread, else what was read and, when
    /// the value was read to its end, its length. (A refusal may stop mid-value; the walk then
    /// skips the rest.)
    fn read_params(&mut self, event_type: &'a str, rest: &'a str) -> Option<ReadAhead<'a>>;

    /// Takes event `index` of the batch (one of the first `max_events`, in order).
    fn event(&mut self, index: usize, event: RawEvent<'a>);
}

/// What [`EventSink::read_params`] read, and the length of the value when it read all of it.
pub type ReadAhead<'a> = (ParamsRead<'a>, Option<usize>);

/// Walks a body (already known to be UTF-8, so raw slices need no checking of their own),
/// handing `sink` its first `max_events` events. A body that is not JSON gets serde_json's own
/// error for it (the sink may have been handed events before the walk found that out).
pub fn read_root<'a>(
    text: &'a str,
    max_events: usize,
    sink: &mut impl EventSink<'a>,
) -> Result<Shaped<Root>, serde_json::Error> {
    let mut walk = Walk { text, pos: 0, sink };
    walk.root(max_events).map_err(|Invalid| syntax_error(text))
}

/// The error serde_json gives for the whole body (its message and place, as a client expects).
fn syntax_error(text: &str) -> serde_json::Error {
    match serde_json::from_str::<IgnoredAny>(text) {
        Err(e) => e,
        // Only when the walk is stricter than serde_json (a bug): still an error, not a panic.
        Ok(_) => serde::de::Error::custom("the body's structure could not be read"),
    }
}

/// The walk met text that is not JSON (serde_json says where and why).
struct Invalid;

struct Walk<'a, 's, S> {
    text: &'a str,
    /// Where the walk stands: always at a character boundary (it only steps over ASCII tokens
    /// and whole values).
    pos: usize,
    sink: &'s mut S,
}

impl<'a, S: EventSink<'a>> Walk<'a, '_, S> {
    fn root(&mut self, max_events: usize) -> Result<Shaped<Root>, Invalid> {
        let root = match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                let mut root = Root::default();
                self.members(|walk, key| {
                    match &*key {
                        "events" if root.events.is_some() => {
                            root.events_repeated = true;
                            walk.skip()?;
                        }
                        "events" => root.events = Some(walk.events(max_events)?),
                        _ => walk.skip()?,
                    }
                    Ok(())
                })?;
                Shaped::Found(root)
            }
            _ => Shaped::Wrong(raw_json_type(self.raw()?)),
        };
        match self.peek() {
            None => Ok(root),
            Some(_) => Err(Invalid),
        }
    }

    fn events(&mut self, max: usize) -> Result<Shaped<usize>, Invalid> {
        if self.peek() != Some(b'[') {
            return Ok(Shaped::Wrong(raw_json_type(self.raw()?)));
        }
        self.pos += 1;
        let mut count = 0;
        self.elements(|walk| {
            if count < max {
                let event = walk.event()?;
                walk.sink.event(count, event);
            } else {
                // Past the cap: counted, not read.
                walk.skip()?;
            }
            count += 1;
            Ok(())
        })?;
        Ok(Shaped::Found(count))
    }

    fn event(&mut self) -> Result<RawEvent<'a>, Invalid> {
        if self.peek() != Some(b'{') {
            return Ok(RawEvent::Other(self.raw()?));
        }
        self.pos += 1;
        let mut parts = EventParts::default();
        self.members(|walk, key| {
            match &*key {
                "event_type" => parts.event_type = Some(walk.raw()?),
                "event_id" => parts.event_id = Some(walk.raw()?),
                "event_params" => walk.event_params(&mut parts)?,
                _ => {
                    let value = walk.raw()?;
                    parts.other.push((key, value));
                }
            }
            Ok(())
        })?;
        Ok(RawEvent::Object(parts))
    }

    /// Reads `event_params` with the params reader when the event's type is known, else keeps
    /// them unread (the decoder reads them once the whole event is known).
    fn event_params(&mut self, parts: &mut EventParts<'a>) -> Result<(), Invalid> {
        self.peek();
        let rest = self.text.get(self.pos..).ok_or(Invalid)?;
        let read = parts
            .event_type
            .and_then(|ty| Some((ty, self.sink.read_params(ty, rest)?)));
        let Some((ty, (result, len))) = read else {
            parts.event_params = Some(self.raw()?);
            parts.params_read = None;
            return Ok(());
        };
        let text = match len.and_then(|n| rest.get(..n)) {
            Some(text) => {
                self.pos += text.len();
                text
            }
            None => self.raw()?,
        };
        parts.event_params = Some(text);
        parts.params_read = Some((ty, result));
        Ok(())
    }

    /// Walks an object's members (its `{` already passed), calling `member` with the walk at
    /// each member's value, which it must read.
    fn members(
        &mut self,
        mut member: impl FnMut(&mut Self, KeyStrType<'a>) -> Result<(), Invalid>,
    ) -> Result<(), Invalid> {
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(Invalid);
            }
            let key = self.value::<KeyStrType<'a>>()?;
            self.expect(b':')?;
            member(self, key)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Invalid),
            }
        }
    }

    /// Walks an array's elements (its `[` already passed), calling `element` with the walk at
    /// each element, which it must read.
    fn elements(
        &mut self,
        mut element: impl FnMut(&mut Self) -> Result<(), Invalid>,
    ) -> Result<(), Invalid> {
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            element(self)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Invalid),
            }
        }
    }

    /// The next byte after whitespace (the walk then stands on it).
    fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        while let Some(b) = bytes.get(self.pos) {
            if !matches!(b, b' ' | b'\n' | b'\t' | b'\r') {
                return Some(*b);
            }
            self.pos += 1;
        }
        None
    }

    fn expect(&mut self, byte: u8) -> Result<(), Invalid> {
        if self.peek() != Some(byte) {
            return Err(Invalid);
        }
        self.pos += 1;
        Ok(())
    }

    /// Reads the value the walk stands at with serde_json, and steps past it.
    fn value<T: Deserialize<'a>>(&mut self) -> Result<T, Invalid> {
        let rest = self.text.get(self.pos..).ok_or(Invalid)?;
        let mut de = serde_json::Deserializer::from_str(rest);
        let value = T::deserialize(&mut de).map_err(|_| Invalid)?;
        // A stream started on a deserializer begins where that deserializer stopped.
        self.pos += de.into_iter::<IgnoredAny>().byte_offset();
        Ok(value)
    }

    /// The value the walk stands at, as raw JSON text.
    fn raw(&mut self) -> Result<&'a str, Invalid> {
        Ok(self.value::<&'a RawValue>()?.get())
    }

    fn skip(&mut self) -> Result<(), Invalid> {
        self.value::<IgnoredAny>().map(|_| ())
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
