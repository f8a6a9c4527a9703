//! Where a turn's wall time went: a small accumulator the turn loop feeds with monotonic
//! instants, summarized into `TurnProfileSummary` when the turn ends (the `TurnProfile` fact).
//!
//! Every instant between the turn's start and its end belongs to exactly one bucket, so the
//! buckets add up to the turn's duration:
//!
//! - `before_first_sampling`: from the turn's start (its runner was created, so the wait for the
//!   `turn/start` response to go out is included) to the start of its first sampling: the
//!   `turn/started` notification, SessionStart/UserPromptSubmit hooks, recording the prompt. A turn
//!   that never samples (a prompt hook stopped it) spends all its time here.
//! - `sampling`: from the moment the turn builds a model request until that stream ends
//!   (completed, failed, steered or interrupted), minus the tool and compaction time inside it.
//!   Request-level retries inside the model client (and their backoff) are sampling time.
//! - `tool_blocking`: the turn waiting on a tool call the model made, from the end of the call's
//!   stream item to its output being recorded: PreToolUse hooks, waiting for an approval (user or
//!   Guardian) or a `request_user_input` answer, running the command or patch, PostToolUse hooks.
//! - `compaction`: an automatic compaction inside the turn (none run today, so it stays 0).
//! - `between_sampling_overhead`: from the end of one sampling to the start of the next: Stop
//!   hooks, recording steered input, the backoff before a stream retry.
//! - `after_last_sampling`: from the end of the last sampling to the turn's end: withdrawing
//!   pending requests, the `turn/interrupt` handshake, interrupt hooks, usage and errors reported.
//!
//! Counts: `sampling_request_count` is the samplings the turn started, a retry not counted as a
//! new one; `sampling_retry_count` is every extra attempt (a broken stream retried by the turn,
//! or a request the model client sent again); `tools_change_count` is the samplings whose
//! model-visible tool list differed from the previous sampling's in the same turn.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

/// The turn's time split into buckets (whole milliseconds) and its sampling counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TurnProfileSummary {
    pub before_first_sampling_ms: i64,
    pub sampling_ms: i64,
    pub compaction_ms: i64,
    pub between_sampling_overhead_ms: i64,
    pub tool_blocking_ms: i64,
    pub after_last_sampling_ms: i64,
    pub sampling_request_count: i64,
    pub sampling_retry_count: i64,
    pub tools_change_count: i64,
}

impl TurnProfileSummary {
    /// The sum of the time buckets: the turn's duration in milliseconds.
    pub fn total_ms(&self) -> i64 {
        self.before_first_sampling_ms
            + self.sampling_ms
            + self.compaction_ms
            + self.between_sampling_overhead_ms
            + self.tool_blocking_ms
            + self.after_last_sampling_ms
    }
}

/// What the turn is doing now, i.e. which bucket the running segment goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not sampled yet.
    BeforeFirstSampling,
    Sampling,
    /// Sampled at least once and not sampling now: between samplings, or after the last one.
    AfterSampling,
}

/// A segment nested inside a phase: a tool call or a compaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nested {
    None,
    Tool,
    Compaction,
}

/// Accumulates a turn's profile from the instants the turn loop reports.
#[derive(Debug, Clone)]
pub struct TurnProfile {
    phase: Phase,
    nested: Nested,
    /// Start of the running segment.
    since: Instant,
    before_first_sampling: Duration,
    sampling: Duration,
    compaction: Duration,
    tool_blocking: Duration,
    between_sampling: Duration,
    /// Time since the last sampling ended: between-sampling overhead if another sampling starts,
    /// else after-last-sampling time.
    gap: Duration,
    sampling_requests: i64,
    retries: i64,
    tools_changes: i64,
    last_tools: Option<u64>,
}

impl TurnProfile {
    /// A profile for a turn that started at `start`.
    pub fn new(start: Instant) -> Self {
        Self {
            phase: Phase::BeforeFirstSampling,
            nested: Nested::None,
            since: start,
            before_first_sampling: Duration::ZERO,
            sampling: Duration::ZERO,
            compaction: Duration::ZERO,
            tool_blocking: Duration::ZERO,
            between_sampling: Duration::ZERO,
            gap: Duration::ZERO,
            sampling_requests: 0,
            retries: 0,
            tools_changes: 0,
            last_tools: None,
        }
    }

    /// A sampling starts at `now`; `retry` when it is a new attempt of a sampling that failed.
    pub fn sampling_started(&mut self, now: Instant, retry: bool) {
        self.close_segment(now);
        self.between_sampling += std::mem::take(&mut self.gap);
        self.phase = Phase::Sampling;
        if retry {
            self.retries += 1;
        } else {
            self.sampling_requests += 1;
        }
    }

    /// The running sampling's stream ended at `now`.
    pub fn sampling_ended(&mut self, now: Instant) {
        self.close_segment(now);
        if self.phase == Phase::Sampling {
            self.phase = Phase::AfterSampling;
        }
    }

    /// The model client sent a request again `count` times inside the running sampling.
    pub fn request_retries(&mut self, count: u32) {
        self.retries += i64::from(count);
    }

    /// The model-visible tool list of the sampling being started; a change from the previous
    /// sampling's list counts once.
    pub fn tools_offered(&mut self, tools: &[serde_json::Value]) {
        let mut hasher = DefaultHasher::new();
        serde_json::to_string(tools)
            .unwrap_or_default()
            .hash(&mut hasher);
        let fingerprint = hasher.finish();
        if self.last_tools.is_some_and(|last| last != fingerprint) {
            self.tools_changes += 1;
        }
        self.last_tools = Some(fingerprint);
    }

    /// The turn starts waiting on a tool call at `now`.
    pub fn tool_started(&mut self, now: Instant) {
        self.enter_nested(now, Nested::Tool);
    }

    /// The tool call's output is recorded at `now`.
    pub fn tool_ended(&mut self, now: Instant) {
        self.leave_nested(now, Nested::Tool);
    }

    /// An automatic compaction starts inside the turn at `now`.
    pub fn compaction_started(&mut self, now: Instant) {
        self.enter_nested(now, Nested::Compaction);
    }

    /// The automatic compaction ended at `now`.
    pub fn compaction_ended(&mut self, now: Instant) {
        self.leave_nested(now, Nested::Compaction);
    }

    /// The turn ended at `now`: the buckets in whole milliseconds, adding up to the floor of the
    /// turn's duration (leftover fractions go to the buckets they were cut from, largest first).
    pub fn finish(&mut self, now: Instant) -> TurnProfileSummary {
        self.close_segment(now);
        self.nested = Nested::None;
        // What followed the last sampling (nothing, for a turn that never sampled).
        let after_last = self.gap;
        let ms = whole_ms_summing_to_total([
            self.before_first_sampling,
            self.sampling,
            self.compaction,
            self.between_sampling,
            self.tool_blocking,
            after_last,
        ]);
        TurnProfileSummary {
            before_first_sampling_ms: ms[0],
            sampling_ms: ms[1],
            compaction_ms: ms[2],
            between_sampling_overhead_ms: ms[3],
            tool_blocking_ms: ms[4],
            after_last_sampling_ms: ms[5],
            sampling_request_count: self.sampling_requests,
            sampling_retry_count: self.retries,
            tools_change_count: self.tools_changes,
        }
    }

    fn enter_nested(&mut self, now: Instant, nested: Nested) {
        self.close_segment(now);
        self.nested = nested;
    }

    fn leave_nested(&mut self, now: Instant, nested: Nested) {
        if self.nested == nested {
            self.close_segment(now);
            self.nested = Nested::None;
        }
    }

    /// Adds the running segment, up to `now`, to its bucket and starts a new one at `now`.
    fn close_segment(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.since);
        self.since = self.since.max(now);
        let bucket = match (self.nested, self.phase) {
            (Nested::Tool, _) => &mut self.tool_blocking,
            (Nested::Compaction, _) => &mut self.compaction,
            (Nested::None, Phase::BeforeFirstSampling) => &mut self.before_first_sampling,
            (Nested::None, Phase::Sampling) => &mut self.sampling,
            (Nested::None, Phase::AfterSampling) => &mut self.gap,
        };
        *bucket += elapsed;
    }
}

/// Whole milliseconds per part whose sum is the floor of the parts' total (largest remainder).
fn whole_ms_summing_to_total(parts: [Duration; 6]) -> [i64; 6] {
    let total_ms = parts.iter().sum::<Duration>().as_millis() as i64;
    let mut ms = parts.map(|d| d.as_millis() as i64);
    let mut short = total_ms - ms.iter().sum::<i64>();
    let mut by_remainder: Vec<usize> = (0..parts.len()).collect();
    by_remainder.sort_by_key(|&i| std::cmp::Reverse(parts[i].as_nanos() % 1_000_000));
    for i in by_remainder {
        if short <= 0 {
            break;
        }
        ms[i] += 1;
        short -= 1;
    }
    ms
}

#[cfg(test)]
#[path = "turn_profile_tests.rs"]
mod tests;
