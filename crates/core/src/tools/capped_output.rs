//! A command's output kept within a byte budget: the head and the tail survive, the middle is
//! counted and dropped, so a chatty command cannot exhaust memory.

use std::collections::VecDeque;

/// Output aggregated from stdout and stderr in arrival order.
#[derive(Debug)]
pub(crate) struct CappedOutput {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_cap: usize,
    tail_cap: usize,
    omitted: usize,
}

impl CappedOutput {
    /// Keeps at most `cap` bytes: half from the start, half from the end.
    pub fn new(cap: usize) -> Self {
        let head_cap = cap / 2;
        Self {
            head: Vec::new(),
            tail: VecDeque::new(),
            head_cap,
            tail_cap: cap - head_cap,
            omitted: 0,
        }
    }

    /// Appends a chunk; returns the part that landed in the head (what may still be streamed).
    pub fn push<'a>(&mut self, chunk: &'a [u8]) -> &'a [u8] {
        let room = self.head_cap - self.head.len();
        let (to_head, rest) = chunk.split_at(room.min(chunk.len()));
        self.head.extend_from_slice(to_head);
        for &b in rest {
            if self.tail.len() == self.tail_cap {
                self.tail.pop_front();
                self.omitted += 1;
            }
            self.tail.push_back(b);
        }
        to_head
    }

    /// Bytes dropped from the middle.
    pub fn omitted(&self) -> usize {
        self.omitted
    }

    /// The kept output as text, with a marker where bytes were dropped.
    pub fn text(&self) -> String {
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        if self.omitted > 0 {
            out.push_str(&format!("\n[... {} bytes omitted ...]\n", self.omitted));
        }
        let (a, b) = self.tail.as_slices();
        let tail: Vec<u8> = a.iter().chain(b).copied().collect();
        out.push_str(&String::from_utf8_lossy(&tail));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::CappedOutput;

    #[test]
    fn small_output_is_kept_whole() {
        let mut out = CappedOutput::new(16);
        assert_eq!(out.push(b"hello"), b"hello");
        assert_eq!(out.text(), "hello");
        assert_eq!(out.omitted(), 0);
    }

    #[test]
    fn large_output_keeps_head_and_tail_and_counts_the_middle() {
        let mut out = CappedOutput::new(8);
        let streamed = out.push(b"abcdefghijklmnopqrstuvwxyz");
        assert_eq!(streamed, b"abcd", "only the head is streamed");
        assert_eq!(out.omitted(), 26 - 8);
        assert_eq!(out.text(), "abcd\n[... 18 bytes omitted ...]\nwxyz");
    }
}
