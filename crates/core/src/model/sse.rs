//! An incremental Server-Sent Events parser with a bound on buffered bytes.

/// One SSE event: its `event:` name and joined `data:` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Feeds bytes in, gets whole events out; comment lines (`: keepalive`) are ignored.
#[derive(Debug)]
pub struct SseParser {
    buffer: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
    max_event_bytes: usize,
    pending_bytes: usize,
}

/// An event grew beyond the parser's bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SSE event larger than {0} bytes")]
pub struct SseTooLarge(pub usize);

impl SseParser {
    /// A parser that refuses events larger than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            buffer: Vec::new(),
            event: None,
            data: Vec::new(),
            max_event_bytes,
            pending_bytes: 0,
        }
    }

    /// Consumes a chunk and returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseTooLarge> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(pos) = self.buffer.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buffer.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            if let Some(ev) = self.take_line(line)? {
                events.push(ev);
            }
        }
        if self.buffer.len() + self.pending_bytes > self.max_event_bytes {
            return Err(SseTooLarge(self.max_event_bytes));
        }
        Ok(events)
    }

    fn take_line(&mut self, line: String) -> Result<Option<SseEvent>, SseTooLarge> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => {
                self.pending_bytes += value.len();
                if self.pending_bytes > self.max_event_bytes {
                    return Err(SseTooLarge(self.max_event_bytes));
                }
                self.data.push(value.to_string());
            }
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        if self.data.is_empty() && event.is_none() {
            return None;
        }
        let data = std::mem::take(&mut self.data).join("\n");
        self.pending_bytes = 0;
        Some(SseEvent {
            event: event.unwrap_or_else(|| "message".to_string()),
            data,
        })
    }
}

#[cfg(test)]
#[path = "sse_tests.rs"]
mod tests;
