//! Canonical JSON written straight from JSON text: compact, object keys sorted by bytes at every
//! depth (the last of a repeated key wins), strings and numbers in serde_json's compact form.
//! Derived event ids are the hash of this form, so it must never change: the tests hold it to
//! the form of the text read into a tree of values, which is how it was first computed.
//!
//! One pass, no tree: each object's members are written to a scratch buffer as they are read,
//! then copied out in key order (a buffer and a list of members per depth, kept by each thread
//! for its next event).

use std::borrow::Cow;
use std::cell::RefCell;
use std::ops::Range;

/// Deeper than serde_json reads (128), so text the decoder accepted is never cut short; deeper
/// values are copied as written rather than recursed into.
const MAX_DEPTH: usize = 160;

/// Appends the canonical form of `text` to `out`. `text` is one valid JSON value (with any
/// whitespace around it), such as params the decoder has read in full; for other text the
/// result means nothing, but it is written in one bounded pass all the same.
pub fn write_canonical_text(text: &str, out: &mut Vec<u8>) {
    let start = skip_ws(text.as_bytes(), 0);
    // `try_`: a thread being torn down has no scratch left, and one just allocates.
    let scratch = SCRATCH
        .try_with(|s| s.try_borrow_mut().map(|mut s| std::mem::take(&mut *s)).ok())
        .ok()
        .flatten();
    let mut canonical = Canonical {
        text,
        scratch: scratch.unwrap_or_default(),
    };
    canonical.value(start, 0, out);
    let mut scratch = canonical.scratch;
    // A rare huge event is not held on to by the thread that wrote it.
    scratch.retain(|(_, values)| values.capacity() <= MAX_KEPT_SCRATCH_BYTES);
    let _ = SCRATCH.try_with(|s| s.try_borrow_mut().map(|mut s| *s = scratch));
}

/// Largest scratch buffer a thread keeps for its next event (params are ~1 KB).
const MAX_KEPT_SCRATCH_BYTES: usize = 256 * 1024;

/// Per depth: the members of the object being read there, and their values, written.
type Scratch = Vec<(Vec<Member>, Vec<u8>)>;

thread_local! {
    static SCRATCH: RefCell<Scratch> = const { RefCell::new(Vec::new()) };
}

struct Canonical<'a> {
    text: &'a str,
    scratch: Scratch,
}

/// One member of an object: its key, as sorted and as written, and its written value.
struct Member {
    key: Key,
    value: Range<usize>,
}

enum Key {
    /// A key without escapes: where its text is, with the quotes (written as it came).
    Plain(Range<usize>),
    /// A key with escapes, unescaped (serde_json writes it).
    Escaped(String),
}

impl<'a> Canonical<'a> {
    fn key_text<'k>(&'k self, key: &'k Key) -> &'k str {
        match key {
            Key::Plain(quoted) => self
                .text
                .get(quoted.start + 1..quoted.end.saturating_sub(1))
                .unwrap_or_default(),
            Key::Escaped(text) => text,
        }
    }

    /// Writes the value starting at `at`; returns where it ends.
    fn value(&mut self, at: usize, depth: usize, out: &mut Vec<u8>) -> usize {
        let bytes = self.text.as_bytes();
        match bytes.get(at) {
            Some(b'{' | b'[') if depth >= MAX_DEPTH => {
                let end = container_end(bytes, at);
                out.extend_from_slice(bytes.get(at..end).unwrap_or_default());
                end
            }
            Some(b'{') => self.object(at, depth, out),
            Some(b'[') => self.array(at, depth, out),
            Some(b'"') => {
                let (end, escaped) = string_end(bytes, at);
                write_string(self.text.get(at..end).unwrap_or("\"\""), escaped, out);
                end
            }
            Some(b't' | b'f' | b'n') => {
                let end = scalar_end(bytes, at);
                out.extend_from_slice(bytes.get(at..end).unwrap_or_default());
                end
            }
            Some(_) => {
                let end = scalar_end(bytes, at);
                write_number(self.text.get(at..end).unwrap_or("0"), out);
                end
            }
            None => at,
        }
    }

    fn object(&mut self, at: usize, depth: usize, out: &mut Vec<u8>) -> usize {
        let text = self.text;
        let bytes = text.as_bytes();
        let (mut members, mut values) = self.take_scratch(depth);
        let mut pos = skip_ws(bytes, at + 1);
        while bytes.get(pos) == Some(&b'"') {
            let (key_end, escaped) = string_end(bytes, pos);
            let key = read_key(text, pos..key_end, escaped);
            let colon = skip_ws(bytes, key_end);
            let from = values.len();
            let value_end = self.value(skip_ws(bytes, colon + 1), depth + 1, &mut values);
            members.push(Member {
                key,
                value: from..values.len(),
            });
            pos = skip_ws(bytes, value_end);
            if bytes.get(pos) == Some(&b',') {
                pos = skip_ws(bytes, pos + 1);
            }
        }
        // Stable: repeated keys keep their sending order, so the last of each run is the one kept.
        members.sort_by(|a, b| self.key_text(&a.key).cmp(self.key_text(&b.key)));
        out.push(b'{');
        let mut first = true;
        for (i, member) in members.iter().enumerate() {
            let key = self.key_text(&member.key);
            if members
                .get(i + 1)
                .is_some_and(|next| self.key_text(&next.key) == key)
            {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            match &member.key {
                Key::Plain(quoted) => {
                    out.extend_from_slice(bytes.get(quoted.clone()).unwrap_or_default())
                }
                Key::Escaped(key) => write_escaped(key, out),
            }
            out.push(b':');
            out.extend_from_slice(values.get(member.value.clone()).unwrap_or_default());
        }
        out.push(b'}');
        self.give_back(depth, members, values);
        pos + 1
    }

    fn array(&mut self, at: usize, depth: usize, out: &mut Vec<u8>) -> usize {
        let bytes = self.text.as_bytes();
        out.push(b'[');
        let mut pos = skip_ws(bytes, at + 1);
        let mut first = true;
        while pos < bytes.len() && bytes.get(pos) != Some(&b']') {
            if !first {
                out.push(b',');
            }
            first = false;
            let end = self.value(pos, depth + 1, out);
            let next = skip_ws(bytes, end);
            pos = match bytes.get(next) {
                Some(b',') => skip_ws(bytes, next + 1),
                // Not JSON after all (a stray `}`): stop rather than read the same byte again.
                _ if end == pos => break,
                _ => next,
            };
        }
        out.push(b']');
        pos + 1
    }

    fn take_scratch(&mut self, depth: usize) -> (Vec<Member>, Vec<u8>) {
        self.scratch
            .get_mut(depth)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn give_back(&mut self, depth: usize, mut members: Vec<Member>, mut values: Vec<u8>) {
        members.clear();
        values.clear();
        while self.scratch.len() <= depth {
            self.scratch.push(Default::default());
        }
        if let Some(slot) = self.scratch.get_mut(depth) {
            *slot = (members, values);
        }
    }
}

fn read_key(text: &str, quoted: Range<usize>, escaped: bool) -> Key {
    if !escaped {
        return Key::Plain(quoted);
    }
    match serde_json::from_str::<Cow<'_, str>>(text.get(quoted.clone()).unwrap_or("\"\"")) {
        Ok(key) => Key::Escaped(key.into_owned()),
        // A lone surrogate escape: valid JSON text, but no string; kept as written.
        Err(_) => Key::Plain(quoted),
    }
}

fn write_string(quoted: &str, escaped: bool, out: &mut Vec<u8>) {
    // Without escapes the text needs none (JSON has no raw quote, backslash or control character
    // inside a string), so serde_json would write it back unchanged.
    if !escaped {
        return out.extend_from_slice(quoted.as_bytes());
    }
    match serde_json::from_str::<Cow<'_, str>>(quoted) {
        Ok(s) => write_escaped(&s, out),
        // A lone surrogate escape: kept as written.
        Err(_) => out.extend_from_slice(quoted.as_bytes()),
    }
}

/// Appends `s` as a JSON string, escaped as serde_json escapes.
pub fn write_escaped(s: &str, out: &mut Vec<u8>) {
    // Writing a string to a Vec does not fail.
    let _ = serde_json::to_writer(out, s);
}

fn write_number(raw: &str, out: &mut Vec<u8>) {
    if is_plain_integer(raw) {
        return out.extend_from_slice(raw.as_bytes());
    }
    match serde_json::from_str::<serde_json_borrow::Value<'_>>(raw) {
        Ok(number) => {
            // Writing a number to a Vec does not fail.
            let _ = serde_json::to_writer(out, &number);
        }
        // Beyond f64 (1e400): valid JSON text, but no number serde_json holds; kept as written.
        Err(_) => out.extend_from_slice(raw.as_bytes()),
    }
}

/// An integer serde_json reads as an i64 or u64 and writes back digit for digit ("-0" it reads
/// as the float -0.0; from 19 digits it may pass i64, and past u64 it is a float).
fn is_plain_integer(raw: &str) -> bool {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    !digits.is_empty()
        && digits.len() < 19
        && digits.bytes().all(|b| b.is_ascii_digit())
        && raw != "-0"
}

fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// Just past the number or literal starting at `start`.
fn scalar_end(bytes: &[u8], start: usize) -> usize {
    let rest = bytes.get(start..).unwrap_or_default();
    let len = rest
        .iter()
        .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
        .unwrap_or(rest.len());
    start + len
}

/// Just past the closing quote of the string starting at `start`, and whether it held escapes.
fn string_end(bytes: &[u8], start: usize) -> (usize, bool) {
    let mut at = start + 1;
    let mut escaped = false;
    while let Some(found) = bytes
        .get(at..)
        .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
    {
        at += found;
        if bytes.get(at) == Some(&b'"') {
            return (at + 1, escaped);
        }
        // A backslash: the escaped character cannot end the string (`\u` digits hold no quote).
        escaped = true;
        at += 2;
    }
    (bytes.len(), escaped)
}

/// Just past the bracket closing the object or array starting at `start`.
fn container_end(bytes: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut at = start;
    while let Some(&b) = bytes.get(at) {
        match b {
            b'"' => {
                at = string_end(bytes, at).0;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return at + 1;
                }
            }
            _ => {}
        }
        at += 1;
    }
    bytes.len()
}

#[cfg(test)]
#[path = "canonical_tests.rs"]
mod tests;
