//! Text from a byte stream that arrives in arbitrary chunks. A pipe read can end in the middle
//! of a multi-byte character; decoding each chunk on its own would turn both halves into U+FFFD
//! in the streamed output deltas, so the incomplete tail is held back for the next chunk.

/// Incremental UTF-8 decoder for one stream.
#[derive(Debug, Default)]
pub(crate) struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// The text `bytes` complete; an unfinished character at the end waits for the next call.
    /// Invalid bytes become U+FFFD, as in `String::from_utf8_lossy`.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let ready = self.pending.len() - incomplete_tail_len(&self.pending);
        let text = String::from_utf8_lossy(&self.pending[..ready]).into_owned();
        self.pending.drain(..ready);
        text
    }
}

/// How many bytes at the end of `bytes` start a character that is not complete yet.
fn incomplete_tail_len(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let byte = bytes[bytes.len() - back];
        if byte & 0b1100_0000 == 0b1000_0000 {
            continue; // a continuation byte: look further back for the lead byte
        }
        let needed = match byte {
            0xF0..=0xF7 => 4,
            0xE0..=0xEF => 3,
            0xC0..=0xDF => 2,
            _ => 1,
        };
        return if needed > back { back } else { 0 };
    }
    0
}

#[cfg(test)]
#[path = "utf8_stream_tests.rs"]
mod tests;
