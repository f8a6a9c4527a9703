//! Cuts the stream of encoded events into batches by count, bytes and age (pure; no I/O, no clock).

use tokio::time::Instant;

use super::envelope::WIRE_OVERHEAD;

/// A batch ready for the spool: a JSON array of events, as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    /// `[event,event,...]`, each event serialized once by the batcher.
    pub(crate) payload: Vec<u8>,
    /// Number of events in `payload`.
    pub(crate) events: usize,
    /// A drop report: the spool keeps it past its cap, within [`super::spool::REPORT_RESERVE`].
    pub(crate) report: bool,
}

/// Accumulates encoded events and says when a batch must be cut.
pub(crate) struct Batcher {
    max_events: usize,
    max_bytes: usize,
    /// `[` followed by comma-separated events; `]` is added when the batch is cut.
    buf: Vec<u8>,
    events: usize,
    opened_at: Option<Instant>,
}

impl Batcher {
    /// A batcher cutting at `max_events` events or `max_bytes` bytes of POST body.
    pub(crate) fn new(max_events: usize, max_bytes: usize) -> Self {
        Self {
            max_events: max_events.max(1),
            max_bytes,
            buf: Vec::new(),
            events: 0,
            opened_at: None,
        }
    }

    /// Adds one encoded event; returns the batches this cut (0, 1 or 2).
    ///
    /// An event that would push the body past the byte limit closes the current batch first; an
    /// event bigger than the limit on its own still goes, alone (the sink's 413 decides its fate).
    pub(crate) fn push(&mut self, encoded: &[u8], now: Instant) -> Vec<Batch> {
        let mut cut = Vec::new();
        if self.events > 0 && self.body_len() + 1 + encoded.len() > self.max_bytes {
            cut.extend(self.take());
        }
        if self.events == 0 {
            self.buf.clear();
            self.buf.push(b'[');
            self.opened_at = Some(now);
        } else {
            self.buf.push(b',');
        }
        self.buf.extend_from_slice(encoded);
        self.events += 1;
        if self.events >= self.max_events || self.body_len() >= self.max_bytes {
            cut.extend(self.take());
        }
        cut
    }

    /// Adds an event that travels alone: cuts the open batch (if any), then a batch of just this
    /// event; returns them in that order.
    pub(crate) fn push_alone(&mut self, encoded: &[u8]) -> Vec<Batch> {
        let mut cut: Vec<Batch> = self.take().into_iter().collect();
        let mut payload = Vec::with_capacity(encoded.len() + 2);
        payload.push(b'[');
        payload.extend_from_slice(encoded);
        payload.push(b']');
        cut.push(Batch {
            payload,
            events: 1,
            report: false,
        });
        cut
    }

    /// When the open batch must be cut by age, if one is open.
    pub(crate) fn due_at(&self, max_age: std::time::Duration) -> Option<Instant> {
        self.opened_at.map(|t| t + max_age)
    }

    /// Cuts the open batch, if any.
    pub(crate) fn take(&mut self) -> Option<Batch> {
        if self.events == 0 {
            return None;
        }
        let mut payload = std::mem::take(&mut self.buf);
        payload.push(b']');
        let events = std::mem::replace(&mut self.events, 0);
        self.opened_at = None;
        Some(Batch {
            payload,
            events,
            report: false,
        })
    }

    /// Size of the `{"events":[...]}` body the open batch would make.
    fn body_len(&self) -> usize {
        // `buf` holds `[` and the events; the wrapper adds `{"events":` `]}`.
        if self.events == 0 {
            WIRE_OVERHEAD
        } else {
            self.buf.len() - 1 + WIRE_OVERHEAD
        }
    }
}

#[cfg(test)]
#[path = "batcher_tests.rs"]
mod tests;
