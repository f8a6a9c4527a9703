use std::time::{Duration, SystemTime};

use super::*;

fn classify(status: u16) -> SinkResult {
    classify_status(status, None, SystemTime::now())
}

fn retryable(status: u16) -> SinkResult {
    SinkResult::Retryable {
        retry_after: None,
        class: ErrorClass::Http { status },
    }
}

#[test]
fn statuses_map_to_tallys_rule() {
    assert_eq!(classify(200), SinkResult::Ok);
    assert_eq!(classify(202), SinkResult::Ok);
    assert_eq!(classify(204), SinkResult::Ok);
    for s in [408, 429, 500, 502, 503, 504] {
        assert_eq!(classify(s), retryable(s), "{s}");
    }
    assert_eq!(classify(413), SinkResult::TooLarge);
    assert_eq!(classify(401), SinkResult::Auth(401));
    assert_eq!(classify(403), SinkResult::Auth(403));
    for s in [400, 404, 405, 409, 415, 422] {
        assert_eq!(classify(s), SinkResult::Rejected(s), "{s}");
    }
    // A redirect is a misconfigured endpoint, not a verdict on the batch: keep it.
    assert_eq!(classify(302), retryable(302));
}

#[test]
fn retry_after_accepts_seconds_and_http_dates() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let header = |s: &str| HeaderValue::from_str(s).unwrap();
    assert_eq!(
        parse_retry_after(&header("120"), now),
        Some(Duration::from_secs(120))
    );
    let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
    assert_eq!(
        parse_retry_after(&header(&later), now),
        Some(Duration::from_secs(30))
    );
    let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
    assert_eq!(
        parse_retry_after(&header(&earlier), now),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after(&header("soon"), now), None);
    assert_eq!(parse_retry_after(&header("-1"), now), None);
    assert_eq!(
        classify_status(429, Some(&header("3")), now),
        SinkResult::Retryable {
            retry_after: Some(Duration::from_secs(3)),
            class: ErrorClass::Http { status: 429 },
        }
    );
}

#[test]
fn ingest_url_trims_the_trailing_slash_of_the_base() {
    let url = |b: &str| ingest_url(b).map(|u| u.to_string());
    assert_eq!(
        url("https://chatgpt.com/backend-api/").unwrap(),
        "https://chatgpt.com/backend-api/codex/analytics-events/events"
    );
    assert_eq!(
        url("http://127.0.0.1:8080").unwrap(),
        "http://127.0.0.1:8080/codex/analytics-events/events"
    );
    assert_eq!(
        url("http://127.0.0.1:8080//").unwrap(),
        "http://127.0.0.1:8080/codex/analytics-events/events"
    );
    assert!(url("ftp://example.com").is_err());
    assert!(url("not a url").is_err());
}

#[test]
fn bad_header_values_are_refused_at_construction() {
    let cfg = HttpSinkConfig::new("http://127.0.0.1:1", "bad\norigin", "ua");
    assert!(matches!(
        HttpSink::new(cfg, HttpSink::no_auth()),
        Err(HttpSinkError::InvalidHeader("originator"))
    ));
}

#[test]
fn gzip_bodies_decompress_to_the_wire_json() {
    use std::io::Read;
    let mut cfg = HttpSinkConfig::new("http://127.0.0.1:1", "tally", "tally/0.1.0");
    cfg.gzip = true;
    let sink = HttpSink::new(cfg, HttpSink::no_auth()).unwrap();
    let events = [EventEnvelope {
        event_type: "codex_hook_run".into(),
        event_params: serde_json::json!({"hook_event": "stop"}),
        event_id: "id-1".into(),
    }];
    let body = sink.body(&events).unwrap();
    let mut json = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut json)
        .unwrap();
    assert_eq!(
        json,
        r#"{"events":[{"event_type":"codex_hook_run","event_params":{"hook_event":"stop"},"event_id":"id-1"}]}"#
    );
}
