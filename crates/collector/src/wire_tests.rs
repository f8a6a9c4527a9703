use proptest::prelude::*;
use serde::de::IgnoredAny;
use serde_json::json;

use super::*;
use crate::arb_json::arb_json;

/// Keeps the events it is handed; reads params with `reader` (by default, reads none).
#[derive(Default)]
struct Kept<'a> {
    events: Vec<(usize, RawEvent<'a>)>,
    reader: Option<fn(&'a str, &'a str) -> Option<ReadAhead<'a>>>,
    calls: Vec<(String, String)>,
}

impl<'a> EventSink<'a> for Kept<'a> {
    fn read_params(&mut self, event_type: &'a str, rest: &'a str) -> Option<ReadAhead<'a>> {
        self.calls.push((event_type.to_owned(), rest.to_owned()));
        self.reader.and_then(|read| read(event_type, rest))
    }

    fn event(&mut self, index: usize, event: RawEvent<'a>) {
        self.events.push((index, event));
    }
}

/// Walks `body`, keeping its events.
fn walk(body: &str, max: usize) -> Result<(Shaped<Root>, Vec<RawEvent<'_>>), serde_json::Error> {
    let mut kept = Kept::default();
    let root = read_root(body, max, &mut kept)?;
    for (i, (index, _)) in kept.events.iter().enumerate() {
        assert_eq!(*index, i, "events are handed on in order");
    }
    Ok((root, kept.events.into_iter().map(|(_, e)| e).collect()))
}

fn serde_json_error(text: &str) -> String {
    serde_json::from_str::<IgnoredAny>(text)
        .expect_err("not JSON")
        .to_string()
}

#[test]
fn a_body_that_is_not_json_gets_serde_jsons_own_error() {
    let bodies = [
        "",
        "   ",
        "{\"events\": [",
        "{\"events\": [1,]}",
        "{\"a\": 1,}",
        "{\"events\": [{\"event_type\": \"x\",}]}",
        "{\"events\": []} x",
        "{\"events\": [{\"event_type\": \"a\", \"event_params\": {\"a\": tru}}]}",
        "{\"events\" 1}",
        "{events: []}",
        "{\"events\": [{\"event_params\": {\"a\": 1}]}",
        "[1, 2",
        "\"unterminated",
    ];
    for body in bodies {
        let error = walk(body, 10).expect_err(body);
        assert_eq!(error.to_string(), serde_json_error(body), "{body}");
    }
}

#[test]
fn whitespace_and_escaped_keys_are_read_like_serde_json_reads_them() {
    let body = " {\n \"ev\\u0065nts\" :\t[ { \"event_type\" : \"a\" , \"x\" : [ 1 , {} ] } , 3 ] ,\r\n\"more\": {\"k\": [null]} } \n";
    let (Shaped::Found(root), events) = walk(body, 10).unwrap() else {
        panic!("root is an object")
    };
    assert!(matches!(root.events, Some(Shaped::Found(2))));
    let RawEvent::Object(parts) = &events[0] else {
        panic!("first event is an object")
    };
    assert_eq!(parts.event_type, Some("\"a\""));
    assert_eq!(parts.other.len(), 1);
    assert_eq!(&*parts.other[0].0, "x");
    assert_eq!(parts.other[0].1, "[ 1 , {} ]");
    assert!(matches!(&events[1], RawEvent::Other("3")));
}

#[test]
fn numbers_beyond_f64_are_valid_json_wherever_they_are() {
    let body = r#"{"events": [[1.8e309], -2e400, {"event_type": "a", "x": 1e999}], "n": 9e999}"#;
    let (Shaped::Found(root), events) = walk(body, 10).unwrap() else {
        panic!("object")
    };
    assert!(matches!(root.events, Some(Shaped::Found(3))));
    assert!(matches!(&events[0], RawEvent::Other("[1.8e309]")));
    assert!(matches!(&events[1], RawEvent::Other("-2e400")));
}

#[test]
fn values_of_the_wrong_type_name_their_type() {
    let wrong = |body: &str| match walk(body, 10).unwrap().0 {
        Shaped::Wrong(ty) => ty,
        Shaped::Found(root) => match root.events {
            Some(Shaped::Wrong(ty)) => ty,
            other => panic!("{body}: {other:?}"),
        },
    };
    assert_eq!(wrong("[1]"), "array");
    assert_eq!(wrong(" \"x\" "), "string");
    assert_eq!(wrong("null"), "null");
    assert_eq!(wrong("{\"events\": {\"a\": [1]}}"), "object");
    assert_eq!(wrong("{\"events\": 1.5}"), "number");
    assert_eq!(wrong("{\"events\": false}"), "boolean");
}

#[test]
fn events_past_the_cap_are_counted_not_kept() {
    let body = json!({"events": [{"a": 1}, {"b": 2}, {"c": 3}, 4]}).to_string();
    let (Shaped::Found(root), events) = walk(&body, 2).unwrap() else {
        panic!("object")
    };
    assert!(matches!(root.events, Some(Shaped::Found(4))));
    assert_eq!(events.len(), 2);
}

#[test]
fn a_repeated_events_array_is_noticed_and_its_events_not_handed_on() {
    let body = json!({"events": [1, 2]})
        .to_string()
        .replace('}', r#","events":[3]}"#);
    let (Shaped::Found(root), events) = walk(&body, 10).unwrap() else {
        panic!("object")
    };
    assert!(root.events_repeated);
    assert_eq!(events.len(), 2);
}

#[test]
fn the_reader_sees_each_events_type_and_the_body_from_its_params_on() {
    let body = r#"{"events": [{"event_type": "t1", "event_params": {"a": 1}, "z": 0},
        {"event_params": {"b": 2}, "event_type": "t2"}]}"#;
    let mut kept = Kept {
        // Refused part way: the walk must find the value's end itself.
        reader: Some(|_, _| Some((Err((".a".to_owned(), "no".to_owned())), None))),
        ..Kept::default()
    };
    read_root(body, 10, &mut kept).unwrap();
    let calls: Vec<(&str, &str)> = kept
        .calls
        .iter()
        .map(|(ty, rest)| (ty.as_str(), &rest[..8]))
        .collect();
    assert_eq!(calls, [("\"t1\"", "{\"a\": 1}")]);
    let RawEvent::Object(first) = &kept.events[0].1 else {
        panic!("object")
    };
    assert_eq!(first.event_params, Some("{\"a\": 1}"));
    assert!(matches!(first.params_read, Some(("\"t1\"", Err(_)))));
    assert_eq!(first.other.len(), 1);
    let RawEvent::Object(second) = &kept.events[1].1 else {
        panic!("object")
    };
    assert_eq!(second.event_params, Some("{\"b\": 2}"));
    assert!(second.params_read.is_none());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    /// A body with one byte taken out or put in is refused exactly when serde_json refuses it,
    /// with serde_json's error.
    #[test]
    fn the_walk_accepts_what_serde_json_accepts(
        events in prop::collection::vec(arb_json(8), 0..4),
        typed in prop::collection::vec(("[a-z_]{1,8}", arb_json(8)), 0..3),
        at in any::<prop::sample::Index>(),
        edit in prop::option::of(prop::sample::select(
            vec![b'{', b'}', b'[', b']', b',', b':', b'"', b' ', b'x', b'1', b'9', b'e', b'-', b'.', b'\\'],
        )),
        pretty in any::<bool>(),
    ) {
        let mut all = events;
        for (ty, params) in typed {
            all.push(json!({"event_type": ty, "event_params": params}));
        }
        let body = json!({"events": all, "n": 1});
        let text = if pretty { serde_json::to_string_pretty(&body).unwrap() } else { body.to_string() };
        let mut bytes = text.into_bytes();
        let i = at.index(bytes.len());
        match edit {
            Some(b) => bytes.insert(i, b),
            None => { bytes.remove(i); }
        }
        let Ok(text) = String::from_utf8(bytes) else { return Ok(()) };
        let walked = walk(&text, 100).map(|_| ()).map_err(|e| e.to_string());
        let serde = serde_json::from_str::<IgnoredAny>(&text).map(|_| ()).map_err(|e| e.to_string());
        prop_assert_eq!(walked, serde, "{}", text);
    }
}
