use super::Utf8Stream;

#[test]
fn a_character_split_across_chunks_arrives_whole() {
    let text = "naïve → 日本 🚀 done";
    let bytes = text.as_bytes();
    // Every split point, including inside each multi-byte character.
    for split in 0..=bytes.len() {
        let mut stream = Utf8Stream::default();
        let mut out = stream.push(&bytes[..split]);
        out.push_str(&stream.push(&bytes[split..]));
        assert_eq!(out, text, "split at byte {split}");
    }
}

#[test]
fn byte_at_a_time_still_decodes() {
    let text = "emoji 🚀 and ü";
    let mut stream = Utf8Stream::default();
    let out: String = text.as_bytes().iter().map(|b| stream.push(&[*b])).collect();
    assert_eq!(out, text);
}

#[test]
fn invalid_bytes_become_replacement_characters_without_stalling() {
    let mut stream = Utf8Stream::default();
    assert_eq!(stream.push(b"a\xffb"), "a\u{fffd}b");
    // A stray continuation byte is not held back.
    assert_eq!(stream.push(b"\x80c"), "\u{fffd}c");
}
