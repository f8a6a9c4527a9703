//! Turns drop counters into `tally_analytics_dropped` events: each report window, every counter
//! that grew yields one event with the growth, so drops reach the collector like any other data.

use crate::client::ClientStats;
use crate::delivery::DeliveryStats;
use crate::events::{AnalyticsDroppedEvent, AnalyticsEvent};
use crate::reducer::ReducerStats;
use std::collections::BTreeMap;

/// (stage, reason, dropped event type).
type DropKey = (&'static str, String, Option<String>);

/// Remembers the counters last reported.
#[derive(Debug, Default)]
pub struct DropReporter {
    last: BTreeMap<DropKey, u64>,
    window_start_ms: i64,
}

impl DropReporter {
    /// A reporter whose first window starts at `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        Self {
            last: BTreeMap::new(),
            window_start_ms: now_ms,
        }
    }

    /// The events for every counter that grew since the last call.
    pub fn report(
        &mut self,
        now_ms: i64,
        client: &ClientStats,
        reducer: &ReducerStats,
        delivery: &DeliveryStats,
    ) -> Vec<AnalyticsEvent> {
        let mut current: Vec<(DropKey, u64)> = vec![
            (
                ("queue", "fact_queue_full".into(), None),
                client.dropped_queue_full,
            ),
            (
                ("queue", "fact_queue_closed".into(), None),
                client.dropped_closed,
            ),
        ];
        for (key, n) in &reducer.missing_context {
            let (event, reason) = key.split_once(':').unwrap_or((key.as_str(), "unknown"));
            current.push((
                (
                    "reducer",
                    format!("missing_context_{reason}"),
                    Some(event.to_string()),
                ),
                *n,
            ));
        }
        for (map, n) in &reducer.evicted {
            current.push((("reducer", format!("evicted_{map}"), None), *n));
        }
        let d = &delivery.dropped;
        for (stage, reason, n) in [
            ("delivery", "queue_full", d.queue_full),
            ("delivery", "closed", d.closed),
            ("delivery", "encode", d.encode),
            ("spool", "spool_full", d.spool_full),
            ("spool", "spool_io", d.spool_io),
            ("spool", "corrupt_records", d.corrupt_records),
            ("delivery", "too_large", d.too_large),
            ("delivery", "rejected", d.rejected),
        ] {
            current.push(((stage, reason.to_string(), None), n));
        }
        let mut events = Vec::new();
        for (key, n) in current {
            let before = self.last.insert(key.clone(), n).unwrap_or(0);
            if n > before {
                let (stage, reason, dropped_event_type) = key;
                events.push(AnalyticsEvent::AnalyticsDropped(AnalyticsDroppedEvent {
                    stage,
                    reason,
                    dropped_event_type,
                    count: n - before,
                    window_start_ms: self.window_start_ms,
                    window_end_ms: now_ms,
                }));
            }
        }
        self.window_start_ms = now_ms;
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_growth_is_reported_once_per_window() {
        let mut r = DropReporter::new(0);
        let mut client = ClientStats::default();
        let reducer = ReducerStats::default();
        let delivery = DeliveryStats::default();
        assert!(r.report(10, &client, &reducer, &delivery).is_empty());
        client.dropped_queue_full = 5;
        let events = r.report(20, &client, &reducer, &delivery);
        assert_eq!(events.len(), 1);
        let p = events[0].params().expect("params");
        assert_eq!(p["stage"], "queue");
        assert_eq!(p["reason"], "fact_queue_full");
        assert_eq!(p["count"], 5);
        assert_eq!(
            (p["window_start_ms"].as_i64(), p["window_end_ms"].as_i64()),
            (Some(10), Some(20))
        );
        assert!(
            r.report(30, &client, &reducer, &delivery).is_empty(),
            "no growth, no event"
        );
        client.dropped_queue_full = 7;
        let p = r.report(40, &client, &reducer, &delivery)[0]
            .params()
            .expect("params");
        assert_eq!(p["count"], 2);
    }
}
