//! Counters the collector keeps about itself, rendered in the Prometheus text format at `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the store-latency histogram buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Why a request was refused before its events reached the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// 401/403.
    Auth,
    /// 413.
    TooLarge,
    /// 400 for an unreadable batch.
    Malformed,
    /// 415.
    UnsupportedEncoding,
    /// 429: the ingest queue (or the in-flight cap) is full.
    QueueFull,
    /// 429: an agent runtime over its rate limit.
    AgentRateLimited,
    /// 503: store failed or timed out.
    StoreUnavailable,
    /// 503: a report asked for while as many as are computed at once were being computed.
    ReportsBusy,
    /// 503: a report not ready within its deadline.
    ReportTimeout,
}

impl RefusalReason {
    const ALL: [RefusalReason; 9] = [
        RefusalReason::Auth,
        RefusalReason::TooLarge,
        RefusalReason::Malformed,
        RefusalReason::UnsupportedEncoding,
        RefusalReason::QueueFull,
        RefusalReason::AgentRateLimited,
        RefusalReason::StoreUnavailable,
        RefusalReason::ReportsBusy,
        RefusalReason::ReportTimeout,
    ];

    fn label(self) -> &'static str {
        match self {
            RefusalReason::Auth => "auth",
            RefusalReason::TooLarge => "too_large",
            RefusalReason::Malformed => "malformed",
            RefusalReason::UnsupportedEncoding => "unsupported_encoding",
            RefusalReason::QueueFull => "queue_full",
            RefusalReason::AgentRateLimited => "agent_rate_limited",
            RefusalReason::StoreUnavailable => "store_unavailable",
            RefusalReason::ReportsBusy => "reports_busy",
            RefusalReason::ReportTimeout => "report_timeout",
        }
    }

    fn index(self) -> usize {
        match self {
            RefusalReason::Auth => 0,
            RefusalReason::TooLarge => 1,
            RefusalReason::Malformed => 2,
            RefusalReason::UnsupportedEncoding => 3,
            RefusalReason::QueueFull => 4,
            RefusalReason::StoreUnavailable => 5,
            RefusalReason::AgentRateLimited => 6,
            RefusalReason::ReportsBusy => 7,
            RefusalReason::ReportTimeout => 8,
        }
    }
}

/// The collector's counters; cheap to update from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    ingested: AtomicU64,
    deduplicated: AtomicU64,
    rejected: AtomicU64,
    untyped: AtomicU64,
    batches: AtomicU64,
    refused: [AtomicU64; 9],
    refused_events: AtomicU64,
    store_errors: AtomicU64,
    abandoned_replies: AtomicU64,
    not_found: AtomicU64,
    retention_deleted: AtomicU64,
    latency_buckets: [AtomicU64; 12],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

impl Metrics {
    /// Records rows deleted by the retention sweep.
    pub fn record_retention_deleted(&self, rows: u64) {
        self.retention_deleted.fetch_add(rows, Ordering::Relaxed);
    }

    /// Records a stored batch.
    pub fn record_stored(&self, inserted: usize, duplicates: usize, untyped: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.ingested.fetch_add(inserted as u64, Ordering::Relaxed);
        self.deduplicated
            .fetch_add(duplicates as u64, Ordering::Relaxed);
        self.untyped.fetch_add(untyped as u64, Ordering::Relaxed);
    }

    /// Records events quarantined by validation.
    pub fn record_rejected(&self, events: usize) {
        self.rejected.fetch_add(events as u64, Ordering::Relaxed);
    }

    /// Records a refused request and how many events it carried, when known.
    pub fn record_refused(&self, reason: RefusalReason, events: usize) {
        if let Some(c) = self.refused.get(reason.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.refused_events
            .fetch_add(events as u64, Ordering::Relaxed);
    }

    /// Records a failed store call.
    pub fn record_store_error(&self) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a stored batch whose request had already given up waiting.
    pub fn record_abandoned_reply(&self) {
        self.abandoned_replies.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a request for a path the collector does not serve.
    pub fn record_not_found(&self) {
        self.not_found.fetch_add(1, Ordering::Relaxed);
    }

    /// Records how long one store call took.
    pub fn observe_store_latency(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(self.latency_buckets.iter()) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Events stored so far.
    pub fn ingested(&self) -> u64 {
        self.ingested.load(Ordering::Relaxed)
    }

    /// Duplicate events skipped so far.
    pub fn deduplicated(&self) -> u64 {
        self.deduplicated.load(Ordering::Relaxed)
    }

    /// Events quarantined so far.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Requests refused for `reason` so far.
    pub fn refused(&self, reason: RefusalReason) -> u64 {
        self.refused
            .get(reason.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Prometheus text exposition.
    pub fn render(&self, queue_depth: usize, queue_capacity: usize) -> String {
        let mut out = String::with_capacity(2048);
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            "tally_collector_events_ingested_total",
            "Events stored (first time seen).",
            load(&self.ingested),
        );
        counter(
            "tally_collector_events_deduplicated_total",
            "Events skipped because their id was already stored.",
            load(&self.deduplicated),
        );
        counter(
            "tally_collector_events_rejected_total",
            "Events quarantined in the rejects table by validation.",
            load(&self.rejected),
        );
        counter(
            "tally_collector_events_untyped_total",
            "Stored events of a type without a typed table (kept raw).",
            load(&self.untyped),
        );
        counter(
            "tally_collector_batches_stored_total",
            "Batches written to the store.",
            load(&self.batches),
        );
        counter(
            "tally_collector_refused_events_total",
            "Events in requests refused before the store (the sender keeps or drops them).",
            load(&self.refused_events),
        );
        counter(
            "tally_collector_store_errors_total",
            "Store calls that failed.",
            load(&self.store_errors),
        );
        counter(
            "tally_collector_abandoned_replies_total",
            "Batches stored after their request had timed out waiting.",
            load(&self.abandoned_replies),
        );
        counter(
            "tally_collector_not_found_total",
            "Requests for paths the collector does not serve (logged at info level).",
            load(&self.not_found),
        );
        counter(
            "tally_collector_retention_deleted_total",
            "Events (and quarantined events) deleted as older than retention_days.",
            load(&self.retention_deleted),
        );
        let _ = writeln!(
            out,
            "# HELP tally_collector_requests_refused_total Requests refused, by reason (ingest; reports_busy and report_timeout: the dashboard and /api/report).\n\
             # TYPE tally_collector_requests_refused_total counter"
        );
        for reason in RefusalReason::ALL {
            let _ = writeln!(
                out,
                "tally_collector_requests_refused_total{{reason=\"{}\"}} {}",
                reason.label(),
                self.refused(reason)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tally_collector_queue_depth Batches waiting for the store.\n\
             # TYPE tally_collector_queue_depth gauge\ntally_collector_queue_depth {queue_depth}\n\
             # HELP tally_collector_queue_capacity Batches the ingest queue holds at most.\n\
             # TYPE tally_collector_queue_capacity gauge\ntally_collector_queue_capacity {queue_capacity}"
        );
        let _ = writeln!(
            out,
            "# HELP tally_collector_store_latency_seconds Time to write one batch.\n\
             # TYPE tally_collector_store_latency_seconds histogram"
        );
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(self.latency_buckets.iter()) {
            let _ = writeln!(
                out,
                "tally_collector_store_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                load(bucket)
            );
        }
        let count = load(&self.latency_count);
        let sum = load(&self.latency_sum_us) as f64 / 1e6;
        let _ = writeln!(
            out,
            "tally_collector_store_latency_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             tally_collector_store_latency_seconds_sum {sum}\n\
             tally_collector_store_latency_seconds_count {count}"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_is_prometheus_text_with_the_recorded_values() {
        let m = Metrics::default();
        m.record_stored(5, 2, 1);
        m.record_rejected(3);
        m.record_refused(RefusalReason::QueueFull, 10);
        m.observe_store_latency(Duration::from_millis(3));
        let text = m.render(4, 64);
        assert!(text.contains("tally_collector_events_ingested_total 5\n"));
        assert!(text.contains("tally_collector_events_deduplicated_total 2\n"));
        assert!(text.contains("tally_collector_events_rejected_total 3\n"));
        assert!(text.contains("tally_collector_requests_refused_total{reason=\"queue_full\"} 1\n"));
        assert!(text.contains("tally_collector_queue_depth 4\n"));
        assert!(text.contains("tally_collector_store_latency_seconds_bucket{le=\"0.0025\"} 0\n"));
        assert!(text.contains("tally_collector_store_latency_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("tally_collector_store_latency_seconds_count 1\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap_or("");
            assert!(value.parse::<f64>().is_ok(), "bad sample line: {line}");
        }
    }
}
