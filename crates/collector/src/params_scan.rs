//! One pass over an event's `event_params` text, without building a JSON tree: every string and
//! key is checked against the size cap, and the few values the collector reads are kept (the
//! family's typed columns, the client id, the event's own timestamps), borrowed from the body.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json_borrow::KeyStrType;

use crate::event::truncate;
use crate::family::{family_index, typed_values, Family, TypedText, TypedValue, FAMILIES};

/// An event's params as the collector keeps them: the text as sent and what it reads out of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedParams<'a> {
    /// `event_params` as sent.
    pub json: &'a str,
    /// The event type's family (its index in [`FAMILIES`]), which `typed` belongs to.
    pub family: Option<usize>,
    /// The family's typed columns, in column order (empty without a family); their text is a
    /// place in `json`.
    pub typed: Vec<TypedValue<TypedText>>,
    /// `app_server_client.product_client_id`, else `product_client_id`, when not empty.
    pub client: Option<Cow<'a, str>>,
    /// The integer value of each of [`TIME_FIELDS`].
    pub times: [Option<i64>; TIME_FIELDS.len()],
}

/// How strictly params are read.
#[derive(Debug, Clone, Copy)]
pub struct ParamsRules {
    /// Longest string or key accepted.
    pub max_string_bytes: usize,
    /// A typed field of the wrong JSON type refuses the event (else it is stored as NULL).
    pub strict_types: bool,
}

/// Reads `json` (known to be a valid JSON object) as the params of an `event_type` event.
pub fn parse_params<'a>(
    json: &'a str,
    event_type: &str,
    rules: ParamsRules,
) -> Result<ParsedParams<'a>, ParamsRefusal> {
    read_params_at(json, event_type, rules).0
}

/// Reads the params value at the start of `text` (which may go on after it, as a body does):
/// what [`parse_params`] gives for it, and the value's length when it was
/// read to its end (not when refused part way).
pub fn read_params_at<'a>(
    text: &'a str,
    event_type: &str,
    rules: ParamsRules,
) -> (Result<ParsedParams<'a>, ParamsRefusal>, Option<usize>) {
    let family = family_index(event_type);
    let max = rules.max_string_bytes;
    // The value's length is known only once it is read: skip what is not kept, and measure every
    // string in a second pass only when the value is long enough to hold one over the cap.
    let (scan, len) = match scan_at(text, family, max, false) {
        Ok(read) => read,
        Err(refusal) => return (Err(refusal), None),
    };
    let json = text.get(..len).unwrap_or(text);
    if len > max {
        if let Err(refusal) = scan_at(json, family, max, true) {
            return (Err(refusal), Some(len));
        }
    }
    let typed = match family.and_then(|i| FAMILIES.get(i)) {
        Some(f) => typed_values(f, &scan.columns, rules.strict_types, |t| {
            TypedText::new(json, t)
        })
        .map_err(|(field, reason)| (format!(".{field}"), reason)),
        None => Ok(Vec::new()),
    };
    let parsed = typed.map(|typed| ParsedParams {
        json,
        family,
        typed,
        client: scan
            .nested_client
            .or(scan.flat_client)
            .filter(|c| !c.is_empty()),
        times: scan.times,
    });
    (parsed, Some(len))
}

/// Timestamp fields an event's own time is read from, in order of preference (see
/// [`crate::event`]).
pub const TIME_FIELDS: [&str; 8] = [
    "completed_at_ms",
    "occurred_at_ms",
    "resolved_at_ms",
    "started_at_ms",
    "completed_at",
    "created_at",
    "started_at",
    "window_end_ms",
];

/// The shape of one value, with scalars kept.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits an i64.
    Int(i64),
    /// An integer above i64's range.
    BigInt,
    /// A number with a fraction or exponent.
    Float,
    /// A string, borrowed unless it held escapes.
    Str(Cow<'a, str>),
    /// An array (contents checked, not kept).
    Array,
    /// An object (contents checked; only wanted children kept).
    Object,
}

impl Scalar<'_> {
    /// The JSON type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Bool(_) => "boolean",
            Scalar::Int(_) | Scalar::BigInt => "integer",
            Scalar::Float => "number",
            Scalar::Str(_) => "string",
            Scalar::Array => "array",
            Scalar::Object => "object",
        }
    }

    fn as_i64(&self) -> Option<i64> {
        match self {
            Scalar::Int(i) => Some(*i),
            _ => None,
        }
    }
}

/// What one pass over `event_params` kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamsScan<'a> {
    /// The last value sent for each typed column of the event's family (`None`: absent).
    pub columns: Vec<Option<Scalar<'a>>>,
    /// `app_server_client.product_client_id`, when a string.
    pub nested_client: Option<Cow<'a, str>>,
    /// `product_client_id`, when a string.
    pub flat_client: Option<Cow<'a, str>>,
    /// The integer value of each of [`TIME_FIELDS`].
    pub times: [Option<i64>; TIME_FIELDS.len()],
}

/// Why the params were refused: the field below `event_params` (e.g. `.a.b[2]`) and the reason.
pub type ParamsRefusal = (String, String);

/// Scans `text` (known to be a valid JSON object) for the family at `family` in [`FAMILIES`].
pub fn scan_params(
    text: &str,
    family: Option<usize>,
    max_string_bytes: usize,
) -> Result<ParamsScan<'_>, ParamsRefusal> {
    let check_lengths = text.len() > max_string_bytes;
    scan_at(text, family, max_string_bytes, check_lengths).map(|(scan, _)| scan)
}

/// Scans the object at the start of `text`, and says how long it was. Without `check_lengths`,
/// values the collector does not keep are only skipped, their strings unmeasured.
fn scan_at(
    text: &str,
    family: Option<usize>,
    max_string_bytes: usize,
    check_lengths: bool,
) -> Result<(ParamsScan<'_>, usize), ParamsRefusal> {
    let columns = family
        .and_then(|i| FAMILIES.get(i))
        .map_or(0, |f| f.columns.len());
    let mut scan = ParamsScan {
        columns: vec![None; columns],
        ..ParamsScan::default()
    };
    let mut failure = Failure::default();
    let mut de = serde_json::Deserializer::from_str(text);
    let seed = TopSeed {
        family,
        max: max_string_bytes,
        check_lengths,
        scan: &mut scan,
        failure: &mut failure,
    };
    match seed.deserialize(&mut de) {
        // A stream started on a deserializer begins where that deserializer stopped.
        Ok(()) => Ok((scan, de.into_iter::<de::IgnoredAny>().byte_offset())),
        Err(e) => Err(failure.into_refusal(e)),
    }
}

/// A failure met deep inside the value: the reason, and the path built while unwinding.
#[derive(Default)]
struct Failure {
    reason: Option<String>,
    /// Path segments, innermost first.
    path: Vec<String>,
}

impl Failure {
    fn fail<E: de::Error>(&mut self, reason: String) -> E {
        self.reason = Some(reason);
        E::custom("event_params refused")
    }

    fn into_refusal(self, error: serde_json::Error) -> ParamsRefusal {
        let path: String = self.path.iter().rev().map(String::as_str).collect();
        let reason = self.reason.unwrap_or_else(|| error.to_string());
        (path, reason)
    }
}

/// What a top-level key of the params feeds.
#[derive(Debug, Default)]
struct Role {
    /// The typed column it is.
    column: Option<usize>,
    /// Its position in [`TIME_FIELDS`].
    time: Option<usize>,
    /// It is `product_client_id`.
    flat_client: bool,
    /// Children wanted when its value is an object: (child key, what it feeds).
    children: Vec<(&'static str, Feeds)>,
}

/// The keys the collector reads at the top of an event's params, per family (and, last, for
/// event types without one), built once: one lookup per key while scanning.
fn roles(family: Option<usize>) -> &'static RoleTable {
    static ROLES: OnceLock<Vec<RoleTable>> = OnceLock::new();
    let all = ROLES.get_or_init(|| {
        let families = FAMILIES.iter().map(Some).chain([None]);
        families.map(roles_of).collect()
    });
    let at = family
        .unwrap_or(FAMILIES.len())
        .min(all.len().saturating_sub(1));
    &all[at]
}

/// Read-only once built, so a fixed-seed hash is safe against crafted keys.
type RoleTable = HashMap<&'static str, Role, foldhash::fast::FixedState>;

fn roles_of(family: Option<&Family>) -> RoleTable {
    let mut roles = RoleTable::default();
    for (i, name) in TIME_FIELDS.iter().enumerate() {
        roles.entry(name).or_default().time = Some(i);
    }
    roles.entry("product_client_id").or_default().flat_client = true;
    roles
        .entry("app_server_client")
        .or_default()
        .children
        .push(("product_client_id", Feeds::Client));
    for (i, column) in family.map_or(&[][..], |f| f.columns).iter().enumerate() {
        match column.path {
            [] => roles.entry(column.name).or_default().column = Some(i),
            [parent, child, ..] => roles
                .entry(parent)
                .or_default()
                .children
                .push((child, Feeds::Column(i))),
            [_] => {}
        }
    }
    roles
}

#[derive(Debug, Clone, Copy)]
enum Feeds {
    Client,
    Column(usize),
}

struct TopSeed<'s, 'a> {
    family: Option<usize>,
    max: usize,
    /// Whether a string or key could be over `max` (none can in a text no longer than `max`).
    check_lengths: bool,
    scan: &'s mut ParamsScan<'a>,
    failure: &'s mut Failure,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<M: MapAccess<'de>>(mut self, mut map: M) -> Result<(), M::Error> {
        let roles = roles(self.family);
        while let Some(key) = map.next_key::<KeyStrType<'de>>()? {
            let key: &str = &key;
            let role = roles.get(key);
            if role.is_none() && !self.check_lengths {
                // Nothing to keep or check in it: skipped at the parser's own pace.
                if let Err(e) = map.next_value::<de::IgnoredAny>() {
                    self.failure.path.push(format!(".{}", truncate(key, 64)));
                    return Err(e);
                }
                continue;
            }
            if key.len() > self.max {
                self.failure.path.push(format!(".{}", truncate(key, 64)));
                return Err(self
                    .failure
                    .fail(format!("key longer than {} bytes", self.max)));
            }
            let seed = ValueSeed {
                max: self.max,
                wanted: role.map_or(&[][..], |r| r.children.as_slice()),
                found: Vec::new(),
                failure: &mut *self.failure,
            };
            let (value, found) = match map.next_value_seed(seed) {
                Ok(v) => v,
                Err(e) => {
                    self.failure.path.push(format!(".{}", truncate(key, 64)));
                    return Err(e);
                }
            };
            if let Some(role) = role {
                self.keep(role, value, found);
            }
        }
        Ok(())
    }
}

impl<'a> TopSeed<'_, 'a> {
    /// Keeps what the collector reads from one top-level field (a repeated key overwrites).
    fn keep(&mut self, role: &Role, value: Scalar<'a>, found: Vec<(Feeds, Scalar<'a>)>) {
        if let Some(t) = role.time.and_then(|t| self.scan.times.get_mut(t)) {
            *t = value.as_i64();
        }
        if role.flat_client {
            self.scan.flat_client = as_text(&value);
        }
        for (feeds, child) in found {
            match feeds {
                Feeds::Client => self.scan.nested_client = as_text(&child),
                Feeds::Column(i) => {
                    if let Some(slot) = self.scan.columns.get_mut(i) {
                        *slot = Some(child);
                    }
                }
            }
        }
        if let Some(slot) = role.column.and_then(|i| self.scan.columns.get_mut(i)) {
            *slot = Some(value);
        }
    }
}

fn as_text<'a>(value: &Scalar<'a>) -> Option<Cow<'a, str>> {
    match value {
        Scalar::Str(s) => Some(s.clone()),
        _ => None,
    }
}

/// Checks one value at any depth and keeps it as a [`Scalar`]; when it is an object, also keeps
/// the `wanted` children.
struct ValueSeed<'s, 'a> {
    max: usize,
    wanted: &'s [(&'static str, Feeds)],
    found: Vec<(Feeds, Scalar<'a>)>,
    failure: &'s mut Failure,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, 'de> {
    type Value = (Scalar<'de>, Vec<(Feeds, Scalar<'de>)>);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> ValueSeed<'_, 'de> {
    fn string<E: de::Error>(self, s: Cow<'de, str>) -> Result<<Self as Visitor<'de>>::Value, E> {
        if s.len() > self.max {
            let reason = format!(
                "string of {} bytes is longer than the limit of {}",
                s.len(),
                self.max
            );
            return Err(self.failure.fail(reason));
        }
        Ok((Scalar::Str(s), Vec::new()))
    }

    fn child(&mut self) -> ValueSeed<'_, 'de> {
        ValueSeed {
            max: self.max,
            wanted: &[],
            found: Vec::new(),
            failure: &mut *self.failure,
        }
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, 'de> {
    type Value = (Scalar<'de>, Vec<(Feeds, Scalar<'de>)>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok((Scalar::Null, Vec::new()))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok((Scalar::Bool(v), Vec::new()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok((Scalar::Int(v), Vec::new()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        let scalar = i64::try_from(v).map_or(Scalar::BigInt, Scalar::Int);
        Ok((scalar, Vec::new()))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok((Scalar::Float, Vec::new()))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        self.string(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.string(Cow::Owned(v.to_owned()))
    }

    fn visit_seq<S: SeqAccess<'de>>(mut self, mut seq: S) -> Result<Self::Value, S::Error> {
        let mut i = 0usize;
        loop {
            match seq.next_element_seed(self.child()) {
                Ok(Some(_)) => i += 1,
                Ok(None) => break,
                Err(e) => {
                    self.failure.path.push(format!("[{i}]"));
                    return Err(e);
                }
            }
        }
        Ok((Scalar::Array, Vec::new()))
    }

    fn visit_map<M: MapAccess<'de>>(mut self, mut map: M) -> Result<Self::Value, M::Error> {
        while let Some(key) = map.next_key::<KeyStrType<'de>>()? {
            let key: &str = &key;
            let result = if key.len() > self.max {
                let reason = format!("key longer than {} bytes", self.max);
                Err(self.failure.fail(reason))
            } else {
                map.next_value_seed(self.child())
            };
            match result {
                Ok((value, _)) => {
                    if let Some((_, feeds)) = self.wanted.iter().find(|(k, _)| *k == key) {
                        self.found.push((*feeds, value));
                    }
                }
                Err(e) => {
                    self.failure.path.push(format!(".{}", truncate(key, 64)));
                    return Err(e);
                }
            }
        }
        Ok((Scalar::Object, self.found))
    }
}

#[cfg(test)]
#[path = "params_scan_tests.rs"]
mod tests;
