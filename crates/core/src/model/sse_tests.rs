use super::*;

#[test]
fn parses_events_split_across_chunks_and_ignores_comments() {
    let mut p = SseParser::new(1024);
    let mut out = p.feed(b": keepalive\n\nevent: response.cre").expect("ok");
    assert!(out.is_empty());
    out.extend(
        p.feed(b"ated\ndata: {\"a\":1}\r\n\r\nevent: x\ndata: l1\ndata: l2\n\n")
            .expect("ok"),
    );
    assert_eq!(
        out,
        vec![
            SseEvent {
                event: "response.created".into(),
                data: "{\"a\":1}".into()
            },
            SseEvent {
                event: "x".into(),
                data: "l1\nl2".into()
            },
        ]
    );
}

#[test]
fn refuses_an_event_beyond_the_bound() {
    let mut p = SseParser::new(16);
    let err = p
        .feed(b"data: 0123456789abcdefghij")
        .expect_err("too large");
    assert_eq!(err, SseTooLarge(16));
}
