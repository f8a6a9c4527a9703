//! Delivery settings: batch limits, spool cap and durability, retry timing, shutdown deadline.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// When the spool forces appended batches to stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// fsync after every appended batch: a batch in the spool survives power loss.
    EveryBatch,
    /// fsync at most once per interval (checked on append and on close).
    Interval(Duration),
    /// Leave it to the OS: survives a process crash, not a power loss.
    Never,
}

/// Everything [`crate::delivery::start`] needs to know, with defaults that follow ANALYTICS-EVENTS.md 2.2.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// Where batches wait until a 2xx: `$TALLY_HOME/analytics/spool` (see [`DeliveryConfig::for_home`]).
    pub spool_dir: PathBuf,
    /// A batch is cut at this many events (default 100).
    pub max_batch_events: usize,
    /// A batch is cut before its `{"events":[...]}` body would exceed this many bytes (default 256 KiB).
    pub max_batch_bytes: usize,
    /// A non-empty batch is cut this long after its first event arrived (default 2 s).
    pub max_batch_age: Duration,
    /// Events waiting for the batcher; `try_enqueue` drops (and counts) beyond this (default 4096).
    pub queue_capacity: usize,
    /// Spool size on disk beyond which new batches are refused and counted (default 64 MiB).
    pub spool_max_bytes: u64,
    /// A spool segment file is closed once it reaches this size (default 1 MiB).
    pub segment_max_bytes: u64,
    /// When appended batches are fsynced (default every batch).
    pub fsync: FsyncPolicy,
    /// Deadline for one send attempt (default 10 s, as Codex).
    pub attempt_timeout: Duration,
    /// First retry delay; doubles per failed attempt, with jitter (default 500 ms).
    pub initial_backoff: Duration,
    /// Longest delay between attempts from backoff (default 60 s).
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured, so a bad header cannot park delivery for days (default 10 min).
    pub max_retry_after: Duration,
    /// How long shutdown keeps sending before leaving the rest in the spool (default 2 s).
    pub shutdown_flush_deadline: Duration,
}

impl Default for DeliveryConfig {
    /// Defaults with an empty `spool_dir`, which `start` refuses: the home is the caller's to resolve.
    fn default() -> Self {
        Self {
            spool_dir: PathBuf::new(),
            max_batch_events: 100,
            max_batch_bytes: 256 * 1024,
            max_batch_age: Duration::from_secs(2),
            queue_capacity: 4096,
            spool_max_bytes: 64 * 1024 * 1024,
            segment_max_bytes: 1024 * 1024,
            fsync: FsyncPolicy::EveryBatch,
            attempt_timeout: Duration::from_secs(10),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(600),
            shutdown_flush_deadline: Duration::from_secs(2),
        }
    }
}

/// The spool folder under a Tally home: `{home}/analytics/spool`.
pub fn spool_dir_for_home(home: &Path) -> PathBuf {
    home.join("analytics").join("spool")
}

impl DeliveryConfig {
    /// Defaults with the spool under `{home}/analytics/spool`.
    pub fn for_home(home: &Path) -> Self {
        Self {
            spool_dir: spool_dir_for_home(home),
            ..Self::default()
        }
    }

    /// Checks that every limit can be met, naming the offending key.
    pub fn validate(&self) -> io::Result<()> {
        let bad = |key: &str, why: &str| {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("analytics.delivery.{key}: {why}"),
            ))
        };
        if self.spool_dir.as_os_str().is_empty() {
            return bad("spool_dir", "must be set");
        }
        if self.max_batch_events == 0 {
            return bad("max_batch_events", "must be at least 1");
        }
        if self.max_batch_bytes == 0 {
            return bad("max_batch_bytes", "must be greater than 0");
        }
        if self.queue_capacity == 0 {
            return bad("queue_capacity", "must be at least 1");
        }
        if self.spool_max_bytes == 0 {
            return bad("spool_max_bytes", "must be greater than 0");
        }
        if self.segment_max_bytes == 0 {
            return bad("segment_max_bytes", "must be greater than 0");
        }
        if self.attempt_timeout.is_zero() {
            return bad("attempt_timeout", "must be greater than 0");
        }
        if self.initial_backoff.is_zero() || self.max_backoff < self.initial_backoff {
            return bad(
                "initial_backoff",
                "must be greater than 0 and at most max_backoff",
            );
        }
        Ok(())
    }
}
