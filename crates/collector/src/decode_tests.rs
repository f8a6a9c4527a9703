use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::arb_json::{arb_json, longest_string};
use crate::event::Receipt;

fn limits() -> DecodeLimits {
    DecodeLimits {
        max_decompressed_bytes: 1024 * 1024,
        max_events_per_batch: 100,
        max_string_bytes: 256,
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn good_events_decode_with_and_without_ids() {
    let body = json!({"events": [
        {"event_type": "codex_hook_run", "event_params": {"status": "completed"}},
        {"event_type": "codex_turn_event", "event_id": "0190-abc", "event_params": {"turn_id": "t1"}},
    ]});
    let text = body.to_string();
    let batch = decode_batch(text.as_bytes(), &limits()).unwrap();
    assert!(batch.rejects.is_empty());
    assert_eq!(batch.events.len(), 2);
    assert_eq!(batch.events[0].event_id, None);
    assert_eq!(batch.events[1].event_id.as_deref(), Some("0190-abc"));
    assert_eq!(batch.events[1].index, 1);
}

#[test]
fn unreadable_batches_are_errors_that_say_why() {
    let l = limits();
    assert!(matches!(
        decode_batch(b"{\"events\": [", &l),
        Err(DecodeError::Json { line: 1, .. })
    ));
    assert_eq!(
        decode_batch(b"[]", &l),
        Err(DecodeError::Shape {
            field: "$".into(),
            reason: "expected an object, got array".into()
        })
    );
    assert_eq!(
        decode_batch(br#"{"events": {}}"#, &l),
        Err(DecodeError::Shape {
            field: "events".into(),
            reason: "expected an array, got object".into()
        })
    );
    assert!(matches!(
        decode_batch(br#"{"evts": []}"#, &l),
        Err(DecodeError::Shape { .. })
    ));
}

#[test]
fn too_many_events_is_refused_whole() {
    let events: Vec<_> = (0..101)
        .map(|_| json!({"event_type": "x", "event_params": {}}))
        .collect();
    let body = json!({ "events": events }).to_string();
    assert_eq!(
        decode_batch(body.as_bytes(), &limits()),
        Err(DecodeError::TooManyEvents {
            count: 101,
            limit: 100
        })
    );
}

#[test]
fn bad_events_are_rejected_with_index_and_field_and_the_rest_kept() {
    let long = "x".repeat(300);
    let body = json!({"events": [
        {"event_type": "codex_hook_run", "event_params": {}},
        "not an object",
        {"event_params": {}},
        {"event_type": 5, "event_params": {}},
        {"event_type": "Bad Type!", "event_params": {}},
        {"event_type": "codex_hook_run", "event_params": []},
        {"event_type": "codex_turn_event", "event_params": {"duration_ms": "slow"}},
        {"event_type": "codex_hook_run", "event_params": {"hook_name": long}},
        {"event_type": "x", "event_id": 7, "event_params": {}},
        {"event_type": "x", "event_id": "sha256:abc", "event_params": {}},
        {"event_type": "other_event", "event_params": {"nested": [{"deep": long}]}},
        {"event_type": "codex_hook_run", "event_params": {"status": "ok"}},
    ]});
    let text = body.to_string();
    let batch = decode_batch(text.as_bytes(), &limits()).unwrap();
    let kept: Vec<usize> = batch.events.iter().map(|e| e.index).collect();
    assert_eq!(kept, vec![0, 11]);
    let fields: Vec<(usize, &str)> = batch
        .rejects
        .iter()
        .map(|r| (r.index, r.field.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![
            (1, "events[1]"),
            (2, "events[2].event_type"),
            (3, "events[3].event_type"),
            (4, "events[4].event_type"),
            (5, "events[5].event_params"),
            (6, "events[6].event_params.duration_ms"),
            (7, "events[7].event_params.hook_name"),
            (8, "events[8].event_id"),
            (9, "events[9].event_id"),
            (10, "events[10].event_params.nested[0].deep"),
        ]
    );
    // The quarantined copy keeps what was sent.
    assert!(batch.rejects[5].raw.contains("\"slow\""));
    assert_eq!(
        batch.rejects[5].event_type.as_deref(),
        Some("codex_turn_event")
    );
}

#[test]
fn gzip_round_trips_and_bad_gzip_is_an_error() {
    let body = br#"{"events":[{"event_type":"x","event_params":{}}]}"#;
    let gz = gzip(body);
    let plain = decompress(gz.into(), ContentEncoding::Gzip, 1024).unwrap();
    assert_eq!(&plain[..], &body[..]);
    assert!(matches!(
        decompress(Bytes::from_static(body), ContentEncoding::Gzip, 1024),
        Err(DecodeError::NotGzip(_))
    ));
}

#[test]
fn gzip_bomb_stops_at_the_cap() {
    let zeros = vec![b' '; 10 * 1024 * 1024];
    let bomb = gzip(&zeros);
    assert!(bomb.len() < 64 * 1024, "bomb is {} bytes", bomb.len());
    assert_eq!(
        decompress(bomb.into(), ContentEncoding::Gzip, 1024 * 1024),
        Err(DecodeError::DecompressedTooLarge { limit: 1024 * 1024 })
    );
}

#[test]
fn content_encoding_parsing() {
    assert_eq!(
        ContentEncoding::parse(None),
        Some(ContentEncoding::Identity)
    );
    assert_eq!(
        ContentEncoding::parse(Some("GZIP")),
        Some(ContentEncoding::Gzip)
    );
    assert_eq!(
        ContentEncoding::parse(Some("identity")),
        Some(ContentEncoding::Identity)
    );
    assert_eq!(ContentEncoding::parse(Some("br")), None);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Arbitrary bytes, plain or claimed gzip, never panic the decoder.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let l = limits();
        let _ = decode_batch(&bytes, &l);
        if let Ok(b) = decompress(bytes.clone().into(), ContentEncoding::Gzip, 4096) {
            let _ = decode_batch(&b, &l);
        }
    }

    /// Every event of a batch of arbitrary JSON values ends up either accepted or rejected,
    /// exactly once, in order, and gzip does not change the outcome.
    #[test]
    fn every_event_is_accepted_or_rejected_exactly_once(
        events in prop::collection::vec(arb_json(40), 0..12),
        typed in prop::collection::vec(("[a-z_]{1,20}", arb_json(40)), 0..12),
    ) {
        let mut all: Vec<serde_json::Value> = events;
        for (ty, params) in typed {
            all.push(json!({"event_type": ty, "event_params": params}));
        }
        let body = json!({ "events": all }).to_string();
        let l = limits();
        let batch = decode_batch(body.as_bytes(), &l).unwrap();
        let mut seen: Vec<usize> = batch.events.iter().map(|e| e.index)
            .chain(batch.rejects.iter().map(|r| r.index)).collect();
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..all.len()).collect::<Vec<_>>());
        for r in &batch.rejects {
            let prefix = format!("events[{}]", r.index);
            prop_assert!(r.field.starts_with(&prefix));
        }
        let gz = gzip(body.as_bytes());
        let unzipped = decompress(gz.into(), ContentEncoding::Gzip, l.max_decompressed_bytes).unwrap();
        prop_assert_eq!(decode_batch(&unzipped, &l).unwrap(), batch);
    }
}

#[test]
fn params_are_kept_as_sent_and_typed_columns_extracted_once() {
    let body = br#"{"events": [
        {"event_type": "codex_turn_\u0065vent", "event_id": "id-1",
         "event_params": { "turn_id" : "t-1", "duration_ms": 42, "is_first_turn": true,
                           "app_server_client": {"product_client_id": "vscode"} }}
    ]}"#;
    let text = body_text(Bytes::from_static(body)).unwrap();
    let batch = decode_text(&text, &limits()).unwrap();
    assert!(batch.rejects.is_empty(), "{:?}", batch.rejects);
    let wire = &batch.events[0];
    assert_eq!(wire.event_type, "codex_turn_event");
    assert!(wire.params.json.starts_with("{ \"turn_id\" : \"t-1\""));
    let receipt = Receipt::new("acct", Some("orig"), 1_800_000_000_000);
    let event = wire.clone().into_incoming(&receipt, &text);
    assert_eq!(event.params_json, wire.params.json);
    // Text is shared with the body, not copied; an event built against any other body is equal.
    let inside = |s: &str| text.as_bytes().as_ptr_range().contains(&s.as_ptr());
    assert!(inside(&event.params_json) && inside(event.event_id.as_str()));
    assert!(
        !inside(&event.event_type),
        "the sent type held an escape, so it was copied"
    );
    let copied = wire.clone().into_incoming(&receipt, &ByteString::new());
    assert!(!inside(&copied.params_json));
    assert_eq!(copied, event);
    assert_eq!(event.client, "vscode");
    assert_eq!(event.event_id.as_str(), "id-1");
    let family = crate::family::family_for("codex_turn_event").unwrap();
    let column = |name: &str| {
        let i = family.columns.iter().position(|c| c.name == name).unwrap();
        event.typed_value(i)
    };
    use crate::family::TypedValue;
    assert_eq!(column("turn_id"), TypedValue::Text("t-1"));
    assert_eq!(column("duration_ms"), TypedValue::Int(42));
    assert_eq!(column("is_first_turn"), TypedValue::Int(1));
    assert_eq!(column("model"), TypedValue::Null);
}

#[test]
fn a_quarantined_event_keeps_every_field_it_was_sent_with() {
    let body = br#"{"events": [
        {"event_type": "codex_turn_event", "extra": {"why": "kept"}, "event_params": {"duration_ms": "slow"}}
    ], "ignored_root_field": [1, 2]}"#;
    let batch = decode_batch(body, &limits()).unwrap();
    let reject = &batch.rejects[0];
    assert_eq!(reject.field, "events[0].event_params.duration_ms");
    let raw: serde_json::Value = serde_json::from_str(&reject.raw).unwrap();
    assert_eq!(
        raw,
        json!({"event_type": "codex_turn_event", "extra": {"why": "kept"},
               "event_params": {"duration_ms": "slow"}})
    );
}

#[test]
fn events_without_ids_get_the_same_derived_id_whatever_the_key_order() {
    let a = br#"{"events": [{"event_type": "codex_hook_run", "event_params": {"a": 1, "b": [true, null]}}]}"#;
    let b = br#"{"events": [{"event_params": {"b": [true, null], "a": 1}, "event_type": "codex_hook_run"}]}"#;
    let receipt = Receipt::new("acct", None, 0);
    let id = |body: &[u8]| {
        let batch = decode_batch(body, &limits()).unwrap();
        let none = ByteString::new();
        batch.events[0]
            .clone()
            .into_incoming(&receipt, &none)
            .event_id
    };
    assert_eq!(id(a), id(b));
    assert!(id(a).as_str().starts_with("sha256:"));
}

#[test]
fn events_without_ids_whose_params_serde_json_cannot_hold_as_values_are_kept() {
    // Valid JSON all the same (a number beyond f64, a lone surrogate escape): such an event was
    // refused while ids were hashed from a tree of values; it is stored like any other now.
    let body = br#"{"events": [
        {"event_type": "codex_hook_run", "event_params": {"x": 1e400, "s": "\ud800"}},
        {"event_type": "codex_hook_run", "event_params": {"s": "\ud800", "x": 1e400}}
    ]}"#;
    let batch = decode_batch(body, &limits()).unwrap();
    assert!(batch.rejects.is_empty(), "{:?}", batch.rejects);
    let receipt = Receipt::new("acct", None, 0);
    let none = ByteString::new();
    let ids: Vec<_> = batch
        .events
        .into_iter()
        .map(|e| e.into_incoming(&receipt, &none).event_id)
        .collect();
    assert_eq!(ids[0], ids[1]);
}

#[test]
fn a_body_that_is_not_utf8_is_a_json_error_at_the_bad_byte() {
    let mut body = b"{\"events\": [\n  {\"event_type\": \"x".to_vec();
    body.push(0xff);
    body.extend_from_slice(b"\", \"event_params\": {}}]}");
    match decode_batch(&body, &limits()) {
        Err(DecodeError::Json {
            line,
            column,
            message,
        }) => {
            assert_eq!((line, column), (2, 20), "{message}");
            assert!(message.contains("UTF-8"), "{message}");
        }
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

/// What a real Codex 0.169 posted in one session, with the ids the collector derived for them when
/// it first stored them: a decoder change must keep every event valid and every id the same, or
/// a Codex retry after an upgrade would be stored twice.
#[test]
fn real_codex_events_decode_and_keep_their_derived_ids() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../tests/fixtures/codex_0169_session.json")).unwrap();
    let body = ByteString::from(fixture["body"].to_string());
    let limits = DecodeLimits::default();
    let batch = decode_text(&body, &limits).unwrap();
    assert!(batch.rejects.is_empty(), "{:?}", batch.rejects);
    let receipt = Receipt::new(
        fixture["account"].as_str().unwrap(),
        Some("codex_cli_rs"),
        1_795_660_200_000,
    );
    let events: Vec<IncomingEvent> = batch
        .events
        .into_iter()
        .map(|e| e.into_incoming(&receipt, &body))
        .collect();
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let expected: Vec<&str> = fixture["derived_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ids, expected);
    assert!(events.iter().all(|e| e.client == "peer-capture"));
    assert!(
        events.iter().all(|e| !e.typed.is_empty()),
        "all five are typed"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Params read as the walk reaches them (type first, as senders write events) decode exactly
    /// as params read after the walk (type last), refusals included, whatever their size.
    #[test]
    fn params_decode_the_same_whichever_field_comes_first(
        params in prop::collection::vec(
            (prop::sample::select(vec!["codex_turn_event", "codex_hook_run", "other_event"]),
             arb_json(40), any::<bool>()),
            1..8,
        ),
        max_string_bytes in prop::sample::select(vec![16usize, 64, 4096]),
    ) {
        let l = DecodeLimits { max_string_bytes, ..limits() };
        let event = |first: bool, ty: &str, p: &serde_json::Value, id: bool| {
            let ty = serde_json::to_string(ty).unwrap();
            let id = if id { r#""event_id":"e-1","# } else { "" };
            match first {
                true => format!(r#"{{"event_type":{ty},{id}"event_params":{p}}}"#),
                false => format!(r#"{{{id}"event_params":{p},"event_type":{ty}}}"#),
            }
        };
        let body = |first: bool| {
            let events: Vec<String> =
                params.iter().map(|(ty, p, id)| event(first, ty, p, *id)).collect();
            format!(r#"{{"events":[{}]}}"#, events.join(","))
        };
        let (ahead, after) = (body(true), body(false));
        let ahead = decode_batch(ahead.as_bytes(), &l).unwrap();
        let after = decode_batch(after.as_bytes(), &l).unwrap();
        prop_assert_eq!(&ahead, &after);
        // Without a family only the object shape and the string cap decide.
        for (i, (ty, p, _)) in params.iter().enumerate() {
            if *ty == "other_event" {
                let ok = p.is_object() && longest_string(p) <= max_string_bytes;
                prop_assert_eq!(ahead.events.iter().any(|e| e.index == i), ok, "{}", p);
            }
        }
    }
}
