use super::*;
use serde_json::json;

/// A controlled clock: instants at fixed offsets from one origin.
struct Clock(Instant);

impl Clock {
    fn new() -> Self {
        Self(Instant::now())
    }
    fn at(&self, ms: u64) -> Instant {
        self.0 + Duration::from_millis(ms)
    }
}

#[test]
fn plain_text_turn_splits_into_before_sampling_and_after() {
    let c = Clock::new();
    let mut p = TurnProfile::new(c.at(0));
    p.tools_offered(&[json!({"name": "shell"})]);
    p.sampling_started(c.at(40), false);
    p.sampling_ended(c.at(1_040));
    let s = p.finish(c.at(1_065));
    assert_eq!(
        s,
        TurnProfileSummary {
            before_first_sampling_ms: 40,
            sampling_ms: 1_000,
            after_last_sampling_ms: 25,
            sampling_request_count: 1,
            ..TurnProfileSummary::default()
        }
    );
    assert_eq!(s.total_ms(), 1_065);
}

#[test]
fn tool_call_waiting_on_approval_counts_as_tool_blocking() {
    let c = Clock::new();
    let mut p = TurnProfile::new(c.at(0));
    p.sampling_started(c.at(10), false);
    // The model streams a function call, then the turn waits on the approval and the command.
    p.tool_started(c.at(300));
    p.tool_ended(c.at(5_300));
    p.sampling_ended(c.at(5_310));
    p.sampling_started(c.at(5_330), false);
    p.sampling_ended(c.at(5_830));
    let s = p.finish(c.at(5_835));
    assert_eq!(
        s,
        TurnProfileSummary {
            before_first_sampling_ms: 10,
            sampling_ms: 290 + 10 + 500,
            between_sampling_overhead_ms: 20,
            tool_blocking_ms: 5_000,
            after_last_sampling_ms: 5,
            sampling_request_count: 2,
            ..TurnProfileSummary::default()
        }
    );
    assert_eq!(s.total_ms(), 5_835);
}

#[test]
fn retried_sampling_counts_the_retries_and_the_backoff_between() {
    let c = Clock::new();
    let mut p = TurnProfile::new(c.at(0));
    p.sampling_started(c.at(5), false);
    // The client sent the request twice more before the stream opened, then the stream broke.
    p.request_retries(2);
    p.sampling_ended(c.at(905));
    // The turn waits its backoff, then retries the stream.
    p.sampling_started(c.at(1_105), true);
    p.sampling_ended(c.at(1_605));
    let s = p.finish(c.at(1_610));
    assert_eq!(
        s,
        TurnProfileSummary {
            before_first_sampling_ms: 5,
            sampling_ms: 900 + 500,
            between_sampling_overhead_ms: 200,
            after_last_sampling_ms: 5,
            sampling_request_count: 1,
            sampling_retry_count: 3,
            ..TurnProfileSummary::default()
        }
    );
    assert_eq!(s.total_ms(), 1_610);
}

#[test]
fn turn_that_never_samples_is_all_before_first_sampling() {
    let c = Clock::new();
    let mut p = TurnProfile::new(c.at(0));
    let s = p.finish(c.at(70));
    assert_eq!(s.before_first_sampling_ms, 70);
    assert_eq!(s.total_ms(), 70);
    assert_eq!(s.sampling_request_count, 0);
}

#[test]
fn compaction_inside_the_turn_is_its_own_bucket() {
    let c = Clock::new();
    let mut p = TurnProfile::new(c.at(0));
    p.sampling_started(c.at(0), false);
    p.sampling_ended(c.at(100));
    p.compaction_started(c.at(110));
    p.compaction_ended(c.at(410));
    p.sampling_started(c.at(420), false);
    p.sampling_ended(c.at(520));
    let s = p.finish(c.at(520));
    assert_eq!(s.compaction_ms, 300);
    assert_eq!(s.between_sampling_overhead_ms, 20);
    assert_eq!(s.sampling_ms, 200);
    assert_eq!(s.total_ms(), 520);
}

#[test]
fn a_changed_tool_list_counts_once_per_sampling_that_sees_it() {
    let c = Clock::new();
    let mut p = TurnProfile::new(c.at(0));
    p.tools_offered(&[json!({"name": "shell"})]);
    p.tools_offered(&[json!({"name": "shell"})]);
    p.tools_offered(&[json!({"name": "shell"}), json!({"name": "lookup"})]);
    p.tools_offered(&[json!({"name": "shell"}), json!({"name": "lookup"})]);
    assert_eq!(p.finish(c.at(1)).tools_change_count, 1);
}

#[test]
fn fractional_milliseconds_still_add_up_to_the_duration() {
    let c = Clock::new();
    let us = |n: u64| c.0 + Duration::from_micros(n);
    let mut p = TurnProfile::new(us(0));
    p.sampling_started(us(1_600), false);
    p.tool_started(us(3_300));
    p.tool_ended(us(4_900));
    p.sampling_ended(us(6_700));
    let s = p.finish(us(8_400));
    assert_eq!(s.total_ms(), 8);
}
