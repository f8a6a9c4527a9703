//! The shape of an ingest body, read in one pass without building a JSON tree: the root object,
//! its `events` array, and each event's fields as raw JSON slices of the body. Anything of the
//! wrong JSON type is recorded (with the type found) rather than failing the whole body, so the
//! decoder can quarantine one event and keep the rest.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json_borrow::KeyStrType;

/// Visits of every non-object JSON type, answering `Shaped::Wrong(type)`.
macro_rules! wrong_type_visits {
    () => {
        fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Self::Value, S::Error> {
            IgnoredAny.visit_seq(seq)?;
            Ok(Shaped::Wrong("array"))
        }

        scalar_wrong_type_visits!();
    };
}

/// Visits of every scalar JSON type, answering `Shaped::Wrong(type)`.
macro_rules! scalar_wrong_type_visits {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Shaped::Wrong("boolean"))
        }

        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Shaped::Wrong("integer"))
        }

        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Shaped::Wrong("integer"))
        }

        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Shaped::Wrong("number"))
        }

        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Shaped::Wrong("string"))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Shaped::Wrong("null"))
        }
    };
}

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
pub struct Root<'a> {
    /// `events`, when present (the last one when repeated).
    pub events: Option<Shaped<EventList<'a>>>,
}

/// The `events` array: its first `max` events, and how many it held in all.
#[derive(Debug, Default)]
pub struct EventList<'a> {
    /// Events up to the cap.
    pub items: Vec<RawEvent<'a>>,
    /// Elements in the array, including those past the cap (skipped unread).
    pub count: usize,
}

/// One element of `events`.
#[derive(Debug)]
pub enum RawEvent<'a> {
    /// An object, split into the fields the collector reads.
    Object(EventParts<'a>),
    /// Anything else, kept whole for the quarantine.
    Other(serde_json::Value),
}

/// An event object's fields as raw JSON text (of any type; the decoder checks them).
#[derive(Debug, Default)]
pub struct EventParts<'a> {
    /// `event_type`.
    pub event_type: Option<&'a RawValue>,
    /// `event_id`.
    pub event_id: Option<&'a RawValue>,
    /// `event_params`.
    pub event_params: Option<&'a RawValue>,
    /// Any other field, kept so a quarantined event is stored whole.
    pub other: Vec<(KeyStrType<'a>, &'a RawValue)>,
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
            out.push_str(value.get());
        }
        out.push('}');
        out
    }
}

/// Reads a body's root (already known to be UTF-8, so raw slices need no checking of their own),
/// keeping at most `max_events` events.
pub fn read_root(text: &str, max_events: usize) -> Result<Shaped<Root<'_>>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let root = RootSeed { max_events }.deserialize(&mut de)?;
    de.end()?;
    Ok(root)
}

struct RootSeed {
    max_events: usize,
}

impl<'de> DeserializeSeed<'de> for RootSeed {
    type Value = Shaped<Root<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(RootVisitor(self.max_events))
    }
}

struct RootVisitor(usize);

impl<'de> Visitor<'de> for RootVisitor {
    type Value = Shaped<Root<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut root = Root::default();
        while let Some(key) = map.next_key::<KeyStrType<'de>>()? {
            if &*key == "events" {
                root.events = Some(map.next_value_seed(EventsSeed(self.0))?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Shaped::Found(root))
    }

    wrong_type_visits!();
}

struct EventsSeed(usize);

impl<'de> DeserializeSeed<'de> for EventsSeed {
    type Value = Shaped<EventList<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(EventsVisitor(self.0))
    }
}

struct EventsVisitor(usize);

impl<'de> Visitor<'de> for EventsVisitor {
    type Value = Shaped<EventList<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let mut list = EventList {
            items: Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.0)),
            count: 0,
        };
        loop {
            let more = if list.items.len() < self.0 {
                seq.next_element::<RawEvent<'de>>()?
                    .map(|e| list.items.push(e))
                    .is_some()
            } else {
                // Past the cap: count the rest without reading them.
                seq.next_element::<IgnoredAny>()?.is_some()
            };
            if !more {
                break;
            }
            list.count += 1;
        }
        Ok(Shaped::Found(list))
    }

    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
        IgnoredAny.visit_map(map)?;
        Ok(Shaped::Wrong("object"))
    }

    scalar_wrong_type_visits!();
}

impl<'de> Deserialize<'de> for RawEvent<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawEventVisitor)
    }
}

struct RawEventVisitor;

impl<'de> Visitor<'de> for RawEventVisitor {
    type Value = RawEvent<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut parts = EventParts::default();
        while let Some(key) = map.next_key::<KeyStrType<'de>>()? {
            let value = map.next_value::<&'de RawValue>()?;
            match &*key {
                "event_type" => parts.event_type = Some(value),
                "event_id" => parts.event_id = Some(value),
                "event_params" => parts.event_params = Some(value),
                _ => parts.other.push((key, value)),
            }
        }
        Ok(RawEvent::Object(parts))
    }

    fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Self::Value, S::Error> {
        let value = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(RawEvent::Other(value))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(RawEvent::Other(v.into()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(RawEvent::Other(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(RawEvent::Other(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(RawEvent::Other(v.into()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(RawEvent::Other(v.into()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(RawEvent::Other(serde_json::Value::Null))
    }
}
