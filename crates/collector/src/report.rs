//! The answers a product team asks for, as one typed [`Report`]: built by the store engine for a
//! time range and client, rendered as a text table (`Display`) or JSON (`Serialize`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::{EventStore, StoreError};

/// What to report on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportQuery {
    /// Start of the range (Unix ms, inclusive).
    pub since_ms: i64,
    /// End of the range (Unix ms, exclusive).
    pub until_ms: i64,
    /// Only this client (`product_client_id`), or all.
    pub client: Option<String>,
    /// Width of a timeline bucket in ms (a day unless the range is short).
    pub bucket_ms: i64,
}

impl ReportQuery {
    /// The last `since` up to now, in day buckets (hour buckets for ranges of two days or less),
    /// starting on a bucket boundary: every bucket is whole but the current one (a first bar
    /// holding part of a day would read as a dip). Ranges shorter than two buckets are as asked.
    pub fn last(since: Duration) -> Self {
        let until_ms = crate::time::now_ms().saturating_add(1);
        let span = i64::try_from(since.as_millis()).unwrap_or(i64::MAX);
        let bucket_ms = if span <= 2 * DAY_MS { HOUR_MS } else { DAY_MS };
        let since_ms = until_ms.saturating_sub(span);
        let since_ms = if span >= 2 * bucket_ms {
            since_ms
                .div_euclid(bucket_ms)
                .saturating_add(i64::from(since_ms.rem_euclid(bucket_ms) > 0))
                .saturating_mul(bucket_ms)
        } else {
            since_ms
        };
        ReportQuery {
            since_ms,
            until_ms,
            client: None,
            bucket_ms,
        }
    }

    /// The same query for one client.
    pub fn for_client(mut self, client: Option<String>) -> Self {
        self.client = client.filter(|c| !c.is_empty());
        self
    }
}

/// One hour in ms.
pub const HOUR_MS: i64 = 3_600_000;
/// One day in ms.
pub const DAY_MS: i64 = 86_400_000;

/// Builds the report of the last `since` from any store.
pub async fn build_report(store: &dyn EventStore, since: Duration) -> Result<Report, StoreError> {
    store.report(ReportQuery::last(since)).await
}

/// Parses `90s`, `30m`, `24h`, `7d`, `2w` (a bare number is days).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a number followed by s, m, h, d or w"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "" | "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use s, m, h, d or w)"
            ))
        }
    };
    n.checked_mul(secs)
        .filter(|s| *s > 0 && *s <= 10 * 365 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{text}`: must be between 1s and 10 years"))
}

/// p50 / p95 of a set of durations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Values the percentiles are computed over.
    pub count: u64,
    /// Median (ms).
    pub p50: Option<i64>,
    /// 95th percentile (ms).
    pub p95: Option<i64>,
}

impl Percentiles {
    /// Nearest-rank percentiles of ascending `sorted` values.
    pub fn of_sorted(sorted: &[i64]) -> Self {
        let rank = |p: f64| -> Option<i64> {
            if sorted.is_empty() {
                return None;
            }
            let n = sorted.len() as f64;
            let idx = ((p * n).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted.get(idx).copied()
        };
        Percentiles {
            count: sorted.len() as u64,
            p50: rank(0.50),
            p95: rank(0.95),
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The query it answers.
    pub since_ms: i64,
    /// End of range (exclusive).
    pub until_ms: i64,
    /// Client filter, if any.
    pub client: Option<String>,
    /// Timeline bucket width (ms).
    pub bucket_ms: i64,
    /// Headline counts.
    pub totals: Totals,
    /// Clients seen in the range (for filters).
    pub clients: Vec<String>,
    /// Sessions, turns, tool calls and tokens per bucket and client.
    pub timeline: Vec<TimelineRow>,
    /// Threads, turns and tokens by `thread_source`: the people's (`user`, or `-` when not given)
    /// and the helper threads clients and servers start on their own.
    pub thread_sources: Vec<ThreadSourceRow>,
    /// Turns by status (of the threads [`Totals::turns`] counts), with duration percentiles.
    pub turn_outcomes: Vec<TurnOutcomeRow>,
    /// Token usage by model.
    pub tokens: Vec<TokenRow>,
    /// Tool calls by kind and terminal status.
    pub tool_calls: Vec<ToolCallRow>,
    /// Approval requests by reviewer and subject kind, with decision mix and latency.
    pub approvals: Vec<ApprovalRow>,
    /// Hook runs by source and status.
    pub hook_runs: Vec<HookRunRow>,
    /// Guardian reviews by decision and failure reason.
    pub guardian_reviews: Vec<GuardianRow>,
    /// Most frequent error and failure kinds.
    pub top_errors: Vec<ErrorRow>,
    /// Analytics the app-servers reported dropping (`tally_analytics_dropped`).
    pub analytics_drops: Vec<DropRow>,
    /// Events the collector quarantined, by field.
    pub quarantined: Vec<QuarantineRow>,
    /// Event types without a typed table, kept raw.
    pub other_event_types: Vec<EventTypeRow>,
}

/// Headline counts of the range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Stored events.
    pub events: u64,
    /// Distinct sessions with a thread start or a turn started by someone (`thread_source`
    /// `user` or not given): helper threads (a title, a Guardian reviewer, a subagent) are not
    /// sessions of their own.
    pub sessions: u64,
    /// Turn events of those threads.
    pub turns: u64,
    /// Tool item events.
    pub tool_calls: u64,
    /// Review (approval) events.
    pub approvals: u64,
    /// Hook runs.
    pub hook_runs: u64,
    /// Guardian reviews.
    pub guardian_reviews: u64,
    /// Total tokens of every turn, helper threads' too.
    pub total_tokens: u64,
    /// Quarantined events received in the range.
    pub quarantined: u64,
    /// Events of types without a typed table.
    pub untyped_events: u64,
}

impl Totals {
    /// Counts the turns and tokens of `timeline`, which holds every turn of the range: one read
    /// of the turns instead of one more per total.
    pub(crate) fn add_turns_of(&mut self, timeline: &[TimelineRow]) {
        for row in timeline {
            self.turns = self.turns.saturating_add(row.turns);
            // Each bucket's tokens may already be saturated (a sender's numbers).
            self.total_tokens = self.total_tokens.saturating_add(row.total_tokens);
        }
    }
}

/// One timeline bucket for one client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineRow {
    /// Bucket start (Unix ms).
    pub bucket_start_ms: i64,
    /// Bucket label (`YYYY-MM-DD` or `YYYY-MM-DD HH:MM`, UTC).
    pub bucket: String,
    /// Client.
    pub client: String,
    /// Distinct sessions active (as [`Totals::sessions`] counts them).
    pub sessions: u64,
    /// Turns of those sessions' threads.
    pub turns: u64,
    /// Tool calls completed.
    pub tool_calls: u64,
    /// Tokens used by every turn, helper threads' too.
    pub total_tokens: u64,
}

/// The threads of one `thread_source`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadSourceRow {
    /// `user`, `subagent`, `guardian_review`, `thread_title`, ... or `-` when not given.
    pub source: String,
    /// Distinct threads with a start or a turn in the range.
    pub threads: u64,
    /// Turn events.
    pub turns: u64,
    /// Tokens of those turns.
    pub total_tokens: u64,
}

/// Turns of one status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnOutcomeRow {
    /// `completed`, `interrupted`, `failed`, ...
    pub status: String,
    /// Turns.
    pub count: u64,
    /// `duration_ms` percentiles.
    pub duration_ms: Percentiles,
}

/// Token usage of one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRow {
    /// Model slug.
    pub model: String,
    /// Turns.
    pub turns: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Cached input tokens.
    pub cached_input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Reasoning output tokens.
    pub reasoning_output_tokens: u64,
    /// Total tokens.
    pub total_tokens: u64,
}

/// Tool calls of one kind and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallRow {
    /// Kind: `command_execution`, `file_change`, `dynamic_tool_call`, ...
    pub kind: String,
    /// `completed`, `rejected`, `failed`, `interrupted`.
    pub terminal_status: String,
    /// Calls.
    pub count: u64,
    /// `duration_ms` percentiles.
    pub duration_ms: Percentiles,
}

/// Approval requests of one reviewer and subject kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRow {
    /// `user` or `guardian`.
    pub reviewer: String,
    /// `command_execution`, `file_change`, ...
    pub subject_kind: String,
    /// Requests.
    pub total: u64,
    /// Approved.
    pub approved: u64,
    /// Denied.
    pub denied: u64,
    /// Aborted.
    pub aborted: u64,
    /// Timed out.
    pub timed_out: u64,
    /// Decision latency percentiles (ms).
    pub latency_ms: Percentiles,
}

/// Hook runs of one source and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookRunRow {
    /// `user`, `project`, `system`, ...
    pub hook_source: String,
    /// `completed`, `failed`, `stopped`, `blocked`.
    pub status: String,
    /// Runs.
    pub count: u64,
}

/// Guardian reviews of one decision and failure reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardianRow {
    /// `approved`, `denied`, `aborted`.
    pub decision: String,
    /// `parse_error`, `timeout`, ... or `-`.
    pub failure_reason: String,
    /// Reviews.
    pub count: u64,
    /// `completion_latency_ms` percentiles.
    pub latency_ms: Percentiles,
}

/// One error or failure kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRow {
    /// Where it was seen: `turn`, `tool`, `compaction`, `guardian`, `server_request`.
    pub source: String,
    /// The kind.
    pub kind: String,
    /// Occurrences.
    pub count: u64,
}

/// Analytics an app-server reported dropping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropRow {
    /// Pipeline stage (`queue`, `reducer`, `spool`, `delivery`).
    pub stage: String,
    /// Why.
    pub reason: String,
    /// Which event type was lost (`-` when unknown).
    pub dropped_event_type: String,
    /// Events lost.
    pub count: u64,
}

/// Quarantined events of one field and reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineRow {
    /// Event type (`-` when unreadable).
    pub event_type: String,
    /// Field, without the batch index (e.g. `event_params.duration_ms`).
    pub field: String,
    /// Events.
    pub count: u64,
}

/// Count of one event type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventTypeRow {
    /// Event type.
    pub event_type: String,
    /// Events.
    pub count: u64,
}

impl Report {
    /// Label of a timeline bucket start.
    pub fn bucket_label(&self, start_ms: i64) -> String {
        bucket_label(start_ms, self.bucket_ms)
    }
}

/// Label of a bucket: a date for day buckets, date and time otherwise.
pub fn bucket_label(start_ms: i64, bucket_ms: i64) -> String {
    if bucket_ms >= DAY_MS {
        crate::time::day_of_ms(start_ms)
    } else {
        crate::time::minute_of_ms(start_ms)
    }
}

fn pct(p: &Percentiles) -> String {
    match (p.p50, p.p95) {
        (Some(a), Some(b)) => format!("{a} / {b}"),
        _ => "-".into(),
    }
}

/// One section of a report as a table, rendered as text by `tally report` (columns padded to
/// width) and as HTML by the dashboard.
pub(crate) struct Table {
    pub(crate) title: String,
    pub(crate) header: Vec<&'static str>,
    pub(crate) rows: Vec<Vec<String>>,
}

/// Whether `c`, from an event string, must not be shown as it is (by `tally report` or the
/// dashboard): control characters (terminal escapes), and the invisible format characters that
/// reorder or hide text (bidi embeddings, overrides, isolates and marks, zero-width characters,
/// line and paragraph separators, tags), with which a sender could make rows read differently.
pub(crate) fn is_unsafe_to_show(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// Replaces what [`is_unsafe_to_show`] names (terminal escapes, bidi overrides) with `?`, for
/// text a sender chose that goes to a terminal.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if is_unsafe_to_show(c) { '?' } else { c })
        .collect()
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\n{}", self.title)?;
        if self.rows.is_empty() {
            return writeln!(f, "  (none)");
        }
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(|c| printable(c)).collect())
            .collect();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let line = |cells: Vec<&str>, f: &mut fmt::Formatter<'_>| -> fmt::Result {
            write!(f, " ")?;
            for (i, cell) in cells.iter().enumerate() {
                let w = widths.get(i).copied().unwrap_or(0);
                write!(f, " {cell:<w$}")?;
            }
            writeln!(f)
        };
        line(self.header.clone(), f)?;
        for row in &rows {
            line(row.iter().map(String::as_str).collect(), f)?;
        }
        Ok(())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Tally report {} .. {} (UTC){}",
            crate::time::minute_of_ms(self.since_ms),
            crate::time::minute_of_ms(self.until_ms),
            self.client
                .as_deref()
                .map(|c| format!(", client {}", printable(c)))
                .unwrap_or_default()
        )?;
        let t = &self.totals;
        writeln!(
            f,
            "  events {}  sessions {}  turns {}  tool calls {}  approvals {}  hook runs {}  \
             guardian reviews {}  tokens {}  quarantined {}  untyped {}",
            t.events,
            t.sessions,
            t.turns,
            t.tool_calls,
            t.approvals,
            t.hook_runs,
            t.guardian_reviews,
            t.total_tokens,
            t.quarantined,
            t.untyped_events
        )?;
        for table in &self.tables() {
            write!(f, "{table}")?;
        }
        Ok(())
    }
}

impl Report {
    /// What one timeline bucket is: `hour` or `day`.
    pub fn bucket_name(&self) -> &'static str {
        if self.bucket_ms >= DAY_MS {
            "day"
        } else {
            "hour"
        }
    }

    /// The report's sections, in the order both the text report and the dashboard show them.
    pub(crate) fn tables(&self) -> Vec<Table> {
        let n = |v: u64| v.to_string();
        vec![
            Table {
                title: format!("Sessions and turns per {} and client", self.bucket_name()),
                header: vec![
                    "bucket",
                    "client",
                    "sessions",
                    "turns",
                    "tool calls",
                    "tokens",
                ],
                rows: self
                    .timeline
                    .iter()
                    .map(|r| {
                        vec![
                            r.bucket.clone(),
                            r.client.clone(),
                            n(r.sessions),
                            n(r.turns),
                            n(r.tool_calls),
                            n(r.total_tokens),
                        ]
                    })
                    .collect(),
            },
            Table {
                title: "Threads by source (sessions and turns count user threads and those without a source)".into(),
                header: vec!["source", "threads", "turns", "tokens"],
                rows: self
                    .thread_sources
                    .iter()
                    .map(|r| {
                        vec![
                            r.source.clone(),
                            n(r.threads),
                            n(r.turns),
                            n(r.total_tokens),
                        ]
                    })
                    .collect(),
            },
            Table {
                title: "Turn outcomes (duration ms p50 / p95)".into(),
                header: vec!["status", "turns", "duration"],
                rows: self
                    .turn_outcomes
                    .iter()
                    .map(|r| vec![r.status.clone(), n(r.count), pct(&r.duration_ms)])
                    .collect(),
            },
            Table {
                title: "Token usage by model (turns of every source: people's, subagents', reviewers')"
                    .into(),
                header: vec![
                    "model",
                    "turns",
                    "input",
                    "cached",
                    "output",
                    "reasoning",
                    "total",
                ],
                rows: self
                    .tokens
                    .iter()
                    .map(|r| {
                        vec![
                            r.model.clone(),
                            n(r.turns),
                            n(r.input_tokens),
                            n(r.cached_input_tokens),
                            n(r.output_tokens),
                            n(r.reasoning_output_tokens),
                            n(r.total_tokens),
                        ]
                    })
                    .collect(),
            },
            Table {
                title: "Tool calls by kind and outcome (duration ms p50 / p95)".into(),
                header: vec!["kind", "status", "calls", "duration"],
                rows: self
                    .tool_calls
                    .iter()
                    .map(|r| {
                        vec![
                            r.kind.clone(),
                            r.terminal_status.clone(),
                            n(r.count),
                            pct(&r.duration_ms),
                        ]
                    })
                    .collect(),
            },
            Table {
                title: "Approval requests (decision latency ms p50 / p95)".into(),
                header: vec![
                    "reviewer",
                    "kind",
                    "total",
                    "approved",
                    "denied",
                    "aborted",
                    "timed out",
                    "latency",
                ],
                rows: self
                    .approvals
                    .iter()
                    .map(|r| {
                        vec![
                            r.reviewer.clone(),
                            r.subject_kind.clone(),
                            n(r.total),
                            n(r.approved),
                            n(r.denied),
                            n(r.aborted),
                            n(r.timed_out),
                            pct(&r.latency_ms),
                        ]
                    })
                    .collect(),
            },
            Table {
                title: "Hook runs by source and status".into(),
                header: vec!["source", "status", "runs"],
                rows: self
                    .hook_runs
                    .iter()
                    .map(|r| vec![r.hook_source.clone(), r.status.clone(), n(r.count)])
                    .collect(),
            },
            Table {
                title: "Guardian reviews by decision and failure reason (latency ms p50 / p95)".into(),
                header: vec!["decision", "failure", "reviews", "latency"],
                rows: self
                    .guardian_reviews
                    .iter()
                    .map(|r| {
                        vec![
                            r.decision.clone(),
                            r.failure_reason.clone(),
                            n(r.count),
                            pct(&r.latency_ms),
                        ]
                    })
                    .collect(),
            },
            Table {
                title: "Top error and failure kinds".into(),
                header: vec!["source", "kind", "count"],
                rows: self
                    .top_errors
                    .iter()
                    .map(|r| vec![r.source.clone(), r.kind.clone(), n(r.count)])
                    .collect(),
            },
            Table {
                title: match self.client {
                    // An app-server's drops belong to no one client: the filter does not apply.
                    Some(_) => "Analytics dropped by app-servers (all clients)".into(),
                    None => "Analytics dropped by app-servers".into(),
                },
                header: vec!["stage", "reason", "event type", "count"],
                rows: self
                    .analytics_drops
                    .iter()
                    .map(|r| {
                        vec![
                            r.stage.clone(),
                            r.reason.clone(),
                            r.dropped_event_type.clone(),
                            n(r.count),
                        ]
                    })
                    .collect(),
            },
            Table {
                title: "Quarantined by the collector".into(),
                header: vec!["event type", "field", "count"],
                rows: self
                    .quarantined
                    .iter()
                    .map(|r| vec![r.event_type.clone(), r.field.clone(), n(r.count)])
                    .collect(),
            },
            Table {
                title: "Other event types (kept raw)".into(),
                header: vec!["event type", "count"],
                rows: self
                    .other_event_types
                    .iter()
                    .map(|r| vec![r.event_type.clone(), n(r.count)])
                    .collect(),
            },
        ]
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
