use super::*;

#[test]
fn a_body_nothing_else_holds_is_reused_by_the_next_request() {
    let buffers = BodyBuffers::new(2, 1 << 20);
    let mut first = buffers.take(1000);
    first.extend_from_slice(b"{\"events\":[]}");
    let address = first.as_ptr();
    buffers.give_back(first.freeze());
    assert_eq!(buffers.kept(), 1);

    let second = buffers.take(500);
    assert!(second.is_empty(), "a reused buffer starts empty");
    assert!(second.capacity() >= 1000);
    assert_eq!(
        second.as_ptr(),
        address,
        "the same memory, not a fresh buffer"
    );
    assert_eq!(buffers.kept(), 0);
}

#[test]
fn a_body_still_shared_by_its_events_is_not_reused() {
    let buffers = BodyBuffers::new(2, 1 << 20);
    let mut body = buffers.take(100);
    body.extend_from_slice(b"shared text");
    let body = body.freeze();
    let event_text = body.slice(0..6);
    buffers.give_back(body);
    assert_eq!(buffers.kept(), 0);
    assert_eq!(&event_text[..], b"shared", "the event's text is untouched");
}

#[test]
fn the_set_is_bounded_in_count_and_in_buffer_size() {
    let buffers = BodyBuffers::new(2, 4096);
    for _ in 0..3 {
        buffers.give_back(BytesMut::with_capacity(1024).freeze());
    }
    assert_eq!(buffers.kept(), 2);

    let huge = BodyBuffers::new(2, 4096);
    huge.give_back(BytesMut::with_capacity(1 << 20).freeze());
    assert_eq!(huge.kept(), 0, "a buffer over the size cap is dropped");
}

#[test]
fn a_spare_too_small_for_the_body_is_let_go() {
    let buffers = BodyBuffers::new(2, 1 << 20);
    buffers.give_back(BytesMut::with_capacity(100).freeze());
    let big = buffers.take(10_000);
    assert!(big.capacity() >= 10_000);
    assert_eq!(buffers.kept(), 0);
}
