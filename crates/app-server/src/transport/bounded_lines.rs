//! Reads `\n`-terminated lines without ever buffering more than a bound.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// One read from a line stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A whole line, without its terminator.
    Text(String),
    /// A line longer than the bound; its bytes were discarded up to the next newline.
    TooLong,
    /// End of input.
    Eof,
}

/// A line reader that discards overlong lines instead of growing without bound.
pub struct BoundedLines<R> {
    reader: R,
    max: usize,
    buf: Vec<u8>,
}

impl<R: AsyncBufRead + Unpin> BoundedLines<R> {
    pub fn new(reader: R, max: usize) -> Self {
        Self {
            reader,
            max,
            buf: Vec::new(),
        }
    }

    /// The next line; invalid UTF-8 is replaced (the JSON parser will then reject it).
    pub async fn next_line(&mut self) -> std::io::Result<Line> {
        self.buf.clear();
        let mut overflow = false;
        loop {
            let chunk = self.reader.fill_buf().await?;
            if chunk.is_empty() {
                if overflow {
                    return Ok(Line::TooLong);
                }
                if self.buf.is_empty() {
                    return Ok(Line::Eof);
                }
                return Ok(Line::Text(self.take()));
            }
            let (piece, found) = match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (&chunk[..i], Some(i + 1)),
                None => (chunk, None),
            };
            if !overflow {
                if self.buf.len() + piece.len() > self.max {
                    overflow = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(piece);
                }
            }
            let used = found.unwrap_or(chunk.len());
            self.reader.consume(used);
            if found.is_some() {
                return Ok(if overflow {
                    Line::TooLong
                } else {
                    Line::Text(self.take())
                });
            }
        }
    }

    fn take(&mut self) -> String {
        let mut bytes = std::mem::take(&mut self.buf);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn splits_lines_and_discards_overlong_ones_without_losing_the_next() {
        let input: &[u8] = b"{\"a\":1}\r\n0123456789abcdef\n{\"b\":2}\nlast";
        let mut lines = BoundedLines::new(tokio::io::BufReader::with_capacity(4, input), 10);
        assert_eq!(
            lines.next_line().await.expect("io"),
            Line::Text("{\"a\":1}".into())
        );
        assert_eq!(lines.next_line().await.expect("io"), Line::TooLong);
        assert_eq!(
            lines.next_line().await.expect("io"),
            Line::Text("{\"b\":2}".into())
        );
        assert_eq!(
            lines.next_line().await.expect("io"),
            Line::Text("last".into())
        );
        assert_eq!(lines.next_line().await.expect("io"), Line::Eof);
    }
}
