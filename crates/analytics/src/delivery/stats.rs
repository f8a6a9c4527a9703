//! Counters every stage updates and [`DeliveryHandle::stats`](super::DeliveryHandle::stats) reads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::watch;

use super::spool::SpoolStats;

/// What went wrong last, as a class only: no messages, URLs or header values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "class")]
pub enum ErrorClass {
    /// Connection refused, reset, DNS, TLS: no HTTP status.
    Network,
    /// The attempt hit its deadline.
    Timeout,
    /// The sink answered with this HTTP status.
    Http {
        /// The status code.
        status: u16,
    },
    /// A local sink (file, store) failed.
    SinkIo,
    /// The spool could not be read or written.
    SpoolIo,
}

/// Events dropped, by reason; each one is also in the total.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DroppedStats {
    /// `try_enqueue` found the queue full.
    pub queue_full: u64,
    /// `try_enqueue` after the pipeline stopped.
    pub closed: u64,
    /// The event could not be serialized.
    pub encode: u64,
    /// The spool was at its cap; the new batch was refused.
    pub spool_full: u64,
    /// The spool could not be written.
    pub spool_io: u64,
    /// A single event still drew a 413.
    pub too_large: u64,
    /// The sink refused the batch for good (4xx other than 401/403/408/413/429).
    pub rejected: u64,
    /// Damaged spool records skipped (counted in records: their events are unreadable).
    pub corrupt_records: u64,
}

impl DroppedStats {
    /// All dropped events (damaged records count as one each).
    pub fn total(&self) -> u64 {
        self.queue_full
            + self.closed
            + self.encode
            + self.spool_full
            + self.spool_io
            + self.too_large
            + self.rejected
            + self.corrupt_records
    }
}

/// A snapshot of the delivery pipeline, safe to print: counts and classes only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryStats {
    /// Events waiting in the in-memory queue.
    pub queue_depth: u64,
    /// Events accepted by `try_enqueue`.
    pub enqueued: u64,
    /// What the spool holds.
    pub spool: SpoolStats,
    /// Events acknowledged with a 2xx.
    pub sent_events: u64,
    /// Requests acknowledged with a 2xx.
    pub sent_batches: u64,
    /// Attempts that failed and were retried (network, timeout, 408, 429, 5xx, 401/403).
    pub retried: u64,
    /// Batches split in halves after a 413.
    pub split: u64,
    /// Events dropped, by reason.
    pub dropped: DroppedStats,
    /// The sink's last answer was 401/403: delivery waits for valid credentials.
    pub auth_error: bool,
    /// The last failure's class, if any failure happened.
    pub last_error: Option<ErrorClass>,
}

/// Shared counters; every change bumps a version that [`Stats::changed`] waiters see.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) enqueued: AtomicU64,
    pub(crate) sent_events: AtomicU64,
    pub(crate) sent_batches: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) split: AtomicU64,
    pub(crate) queue_full: AtomicU64,
    pub(crate) closed: AtomicU64,
    pub(crate) encode: AtomicU64,
    pub(crate) spool_full: AtomicU64,
    pub(crate) spool_io: AtomicU64,
    pub(crate) too_large: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) corrupt_records: AtomicU64,
    pub(crate) auth_error: AtomicBool,
    last_error: Mutex<Option<ErrorClass>>,
    spool: Mutex<SpoolStats>,
    version: watchable::Version,
}

impl Stats {
    /// Adds `n` to a counter and wakes waiters.
    pub(crate) fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
        self.version.bump();
    }

    /// Records the class of the latest failure.
    pub(crate) fn set_error(&self, class: ErrorClass) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(class);
        self.version.bump();
    }

    /// Records what the spool holds now.
    pub(crate) fn set_spool(&self, spool: SpoolStats) {
        *self
            .spool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = spool;
        self.version.bump();
    }

    /// Sets or clears the auth-error flag.
    pub(crate) fn set_auth_error(&self, on: bool) {
        self.auth_error.store(on, Relaxed);
        self.version.bump();
    }

    /// A receiver that sees a new value whenever a counter changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// A snapshot, with the queue depth supplied by the handle that owns the queue.
    pub(crate) fn snapshot(&self, queue_depth: u64) -> DeliveryStats {
        let mut spool = *self
            .spool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The spool hands its damaged-record count over to the drop counters; show the total.
        spool.corrupt_records = self.corrupt_records.load(Relaxed);
        DeliveryStats {
            queue_depth,
            enqueued: self.enqueued.load(Relaxed),
            spool,
            sent_events: self.sent_events.load(Relaxed),
            sent_batches: self.sent_batches.load(Relaxed),
            retried: self.retried.load(Relaxed),
            split: self.split.load(Relaxed),
            dropped: DroppedStats {
                queue_full: self.queue_full.load(Relaxed),
                closed: self.closed.load(Relaxed),
                encode: self.encode.load(Relaxed),
                spool_full: self.spool_full.load(Relaxed),
                spool_io: self.spool_io.load(Relaxed),
                too_large: self.too_large.load(Relaxed),
                rejected: self.rejected.load(Relaxed),
                corrupt_records: self.corrupt_records.load(Relaxed),
            },
            auth_error: self.auth_error.load(Relaxed),
            last_error: *self
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        }
    }
}

mod watchable {
    use tokio::sync::watch;

    /// A change counter with async waiters.
    pub(crate) struct Version(watch::Sender<u64>);

    impl Default for Version {
        fn default() -> Self {
            Self(watch::Sender::new(0))
        }
    }

    impl Version {
        pub(crate) fn bump(&self) {
            self.0.send_modify(|v| *v = v.wrapping_add(1));
        }

        pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
            self.0.subscribe()
        }
    }
}
