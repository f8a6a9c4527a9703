//! The report queries for SQLite. Every query filters on `ts_ms` in `[?1, ?2)` and, when `?3` is not
//! null, on `client = ?3`; values are bound, never spliced.

use std::collections::BTreeMap;

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection, Row};

use super::sqlite_schema::event_tables;
use super::StoreError;
use crate::report::{
    bucket_label, ApprovalRow, DropRow, ErrorRow, EventTypeRow, GuardianRow, HookRunRow,
    Percentiles, QuarantineRow, Report, ReportQuery, ThreadSourceRow, TimelineRow, TokenRow,
    ToolCallRow, Totals, TurnOutcomeRow,
};

const RANGE: &str = "ts_ms >= ?1 AND ts_ms < ?2 AND (?3 IS NULL OR client = ?3)";

/// A thread (or turn) someone started: `thread_source` `user`, or none given. Helper threads a
/// client or server starts on its own (title generation, Guardian reviewers, subagents) are not
/// sessions or turns of their own; their work is in "Threads by source" and in the token and tool
/// totals. The same text serves both engines (no NULL left for ClickHouse's `countIf`).
pub(super) const BY_PEOPLE: &str = "coalesce(thread_source, 'user') = 'user'";

struct Q<'a> {
    conn: &'a Connection,
    args: Vec<SqlValue>,
}

impl Q<'_> {
    fn rows<T>(
        &self,
        sql: &str,
        extra: &[SqlValue],
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        // Each statement binds the leading arguments it uses (`?1`..`?n`).
        let wanted = stmt.parameter_count();
        let args = self.args.iter().chain(extra.iter()).take(wanted);
        let rows = stmt.query_map(params_from_iter(args), map)?;
        Ok(rows.collect::<Result<Vec<T>, _>>()?)
    }

    fn count(&self, sql: &str) -> Result<u64, StoreError> {
        Ok(self
            .rows(sql, &[], |r| r.get::<_, i64>(0))?
            .first()
            .copied()
            .map(to_u64)
            .unwrap_or(0))
    }
}

/// Events in the range, counted table by table rather than through `all_events`: each count
/// reads only its time index, where the view would have every row read in full.
pub(super) fn events_count_sql() -> String {
    let counts = each_table(
        |t| format!("(SELECT COUNT(*) FROM {t} WHERE {RANGE})"),
        " + ",
    );
    format!("SELECT {counts}")
}

/// The clients seen in the range (whichever client is asked for), from the time indexes; not
/// the sender names of events that name no client.
pub(super) fn clients_sql() -> String {
    let each = event_tables()
        .filter(|t| !crate::family::is_clientless_table(t))
        .map(|t| format!("SELECT client FROM {t} WHERE ts_ms >= ?1 AND ts_ms < ?2"))
        .collect::<Vec<_>>()
        .join(" UNION ");
    format!("{each} ORDER BY 1 LIMIT 200")
}

/// `part` for every table that holds events, joined by `joiner`.
fn each_table(part: impl Fn(&str) -> String, joiner: &str) -> String {
    event_tables().map(part).collect::<Vec<_>>().join(joiner)
}

pub(super) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A sum taken as a float (SQLite's `TOTAL()`, ClickHouse's `sum` of `Float64`): an integer `SUM`
/// of senders' numbers errors (SQLite) or wraps (ClickHouse) past i64, and one such ingest broke
/// every report covering it. Exact below 2^53; `as` saturates (and reads NaN and negatives as 0).
pub(super) fn saturating_u64(total: f64) -> u64 {
    total as u64
}

/// Column `i`, a `TOTAL()`, as a saturated count.
fn total(r: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    Ok(saturating_u64(r.get::<_, f64>(i)?))
}

fn text(r: &Row<'_>, i: usize) -> rusqlite::Result<String> {
    Ok(r.get::<_, Option<String>>(i)?
        .unwrap_or_else(|| "-".to_owned()))
}

/// Groups `(key, value)` pairs already sorted by key then value into percentiles per key.
pub(super) fn percentiles_by<K: Ord + Clone>(pairs: Vec<(K, i64)>) -> BTreeMap<K, Percentiles> {
    let mut groups: BTreeMap<K, Vec<i64>> = BTreeMap::new();
    for (k, v) in pairs {
        groups.entry(k).or_default().push(v);
    }
    groups
        .into_iter()
        .map(|(k, mut v)| {
            v.sort_unstable();
            (k, Percentiles::of_sorted(&v))
        })
        .collect()
}

pub(crate) fn build(conn: &Connection, query: &ReportQuery) -> Result<Report, StoreError> {
    let bucket_ms = query.bucket_ms.max(60_000);
    let q = Q {
        conn,
        args: vec![
            SqlValue::Integer(query.since_ms),
            SqlValue::Integer(query.until_ms),
            query.client.clone().map_or(SqlValue::Null, SqlValue::Text),
        ],
    };
    let bucket = [SqlValue::Integer(bucket_ms)];

    let totals = Totals {
        events: q.count(&events_count_sql())?,
        sessions: q.count(&format!(
            "SELECT COUNT(DISTINCT session_id) FROM (
                SELECT session_id FROM thread_inits
                    WHERE {RANGE} AND session_id IS NOT NULL AND {BY_PEOPLE}
                UNION ALL
                SELECT session_id FROM turns
                    WHERE {RANGE} AND session_id IS NOT NULL AND {BY_PEOPLE})"
        ))?,
        turns: 0, // with total_tokens, summed from the timeline (add_turns_of)
        tool_calls: q.count(&format!("SELECT COUNT(*) FROM tool_calls WHERE {RANGE}"))?,
        approvals: q.count(&format!("SELECT COUNT(*) FROM reviews WHERE {RANGE}"))?,
        hook_runs: q.count(&format!("SELECT COUNT(*) FROM hook_runs WHERE {RANGE}"))?,
        guardian_reviews: q.count(&format!(
            "SELECT COUNT(*) FROM guardian_reviews WHERE {RANGE}"
        ))?,
        total_tokens: 0,
        quarantined: 0,
        untyped_events: 0,
    };

    let clients = q.rows(&clients_sql(), &[], |r| r.get::<_, String>(0))?;

    // Timeline: sessions, turns, tokens and tool calls per (bucket, client).
    let mut timeline: BTreeMap<(i64, String), TimelineRow> = BTreeMap::new();
    fn row_for(
        timeline: &mut BTreeMap<(i64, String), TimelineRow>,
        b: i64,
        client: String,
        bucket_ms: i64,
    ) -> &mut TimelineRow {
        timeline
            .entry((b, client.clone()))
            .or_insert_with(|| TimelineRow {
                bucket_start_ms: b,
                bucket: bucket_label(b, bucket_ms),
                client,
                sessions: 0,
                turns: 0,
                tool_calls: 0,
                total_tokens: 0,
            })
    }
    for (b, client, turns, tokens) in q.rows(
        &format!(
            "SELECT (ts_ms / ?4) * ?4, client, COUNT(*) FILTER (WHERE {BY_PEOPLE}),
                    TOTAL(total_tokens)
             FROM turns WHERE {RANGE} GROUP BY 1, 2"
        ),
        &bucket,
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                total(r, 3)?,
            ))
        },
    )? {
        let row = row_for(&mut timeline, b, client, bucket_ms);
        row.turns = to_u64(turns);
        row.total_tokens = tokens;
    }
    for (b, client, calls) in q.rows(
        &format!(
            "SELECT (ts_ms / ?4) * ?4, client, COUNT(*) FROM tool_calls WHERE {RANGE} GROUP BY 1, 2"
        ),
        &bucket,
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        },
    )? {
        row_for(&mut timeline, b, client, bucket_ms).tool_calls = to_u64(calls);
    }
    for (b, client, sessions) in q.rows(
        &format!(
            "SELECT b, client, COUNT(DISTINCT session_id) FROM (
                SELECT (ts_ms / ?4) * ?4 AS b, client, session_id FROM thread_inits
                    WHERE {RANGE} AND session_id IS NOT NULL AND {BY_PEOPLE}
                UNION ALL
                SELECT (ts_ms / ?4) * ?4 AS b, client, session_id FROM turns
                    WHERE {RANGE} AND session_id IS NOT NULL AND {BY_PEOPLE})
             GROUP BY 1, 2"
        ),
        &bucket,
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        },
    )? {
        row_for(&mut timeline, b, client, bucket_ms).sessions = to_u64(sessions);
    }

    let thread_sources = q.rows(
        &format!(
            "SELECT COALESCE(thread_source, '-'), COUNT(DISTINCT thread_id), SUM(turn), TOTAL(tokens)
             FROM (
                SELECT thread_source, thread_id, 0 AS turn, 0 AS tokens FROM thread_inits
                    WHERE {RANGE}
                UNION ALL
                SELECT thread_source, thread_id, 1, COALESCE(total_tokens, 0) FROM turns
                    WHERE {RANGE})
             GROUP BY 1 ORDER BY 3 DESC, 1"
        ),
        &[],
        |r| {
            Ok(ThreadSourceRow {
                source: r.get(0)?,
                threads: to_u64(r.get(1)?),
                turns: to_u64(r.get(2)?),
                total_tokens: total(r, 3)?,
            })
        },
    )?;

    // Turn outcomes with duration percentiles.
    let counts = q.rows(
        &format!(
            "SELECT COALESCE(status, '-'), COUNT(*) FROM turns WHERE {RANGE} AND {BY_PEOPLE}
             GROUP BY 1 ORDER BY 2 DESC"
        ),
        &[],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
    )?;
    let durations = percentiles_by(q.rows(
        &format!(
            "SELECT COALESCE(status, '-'), duration_ms FROM turns
             WHERE {RANGE} AND duration_ms IS NOT NULL AND {BY_PEOPLE}"
        ),
        &[],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
    )?);
    let turn_outcomes = counts
        .into_iter()
        .map(|(status, count)| TurnOutcomeRow {
            duration_ms: durations.get(&status).copied().unwrap_or_default(),
            status,
            count: to_u64(count),
        })
        .collect();

    let tokens = q.rows(
        &format!(
            "SELECT COALESCE(model, '-'), COUNT(*), TOTAL(input_tokens),
                    TOTAL(cached_input_tokens), TOTAL(output_tokens),
                    TOTAL(reasoning_output_tokens), TOTAL(total_tokens)
             FROM turns WHERE {RANGE} GROUP BY 1 ORDER BY 7 DESC, 1"
        ),
        &[],
        |r| {
            Ok(TokenRow {
                model: r.get(0)?,
                turns: to_u64(r.get(1)?),
                input_tokens: total(r, 2)?,
                cached_input_tokens: total(r, 3)?,
                output_tokens: total(r, 4)?,
                reasoning_output_tokens: total(r, 5)?,
                total_tokens: total(r, 6)?,
            })
        },
    )?;

    // Tool calls by kind (event type without `codex_` and `_event`) and status.
    let tool_counts = q.rows(
        &format!(
            "SELECT event_type, COALESCE(terminal_status, '-'), COUNT(*) FROM tool_calls
             WHERE {RANGE} GROUP BY 1, 2 ORDER BY 3 DESC"
        ),
        &[],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        },
    )?;
    let tool_durations = percentiles_by(q.rows(
        &format!(
            "SELECT event_type, COALESCE(terminal_status, '-'), duration_ms FROM tool_calls
             WHERE {RANGE} AND duration_ms IS NOT NULL"
        ),
        &[],
        |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                r.get::<_, i64>(2)?,
            ))
        },
    )?);
    let tool_calls = tool_counts
        .into_iter()
        .map(|(ty, status, count)| ToolCallRow {
            duration_ms: tool_durations
                .get(&(ty.clone(), status.clone()))
                .copied()
                .unwrap_or_default(),
            kind: tool_kind(&ty),
            terminal_status: status,
            count: to_u64(count),
        })
        .collect();

    let approval_counts = q.rows(
        &format!(
            "SELECT COALESCE(reviewer, '-'), COALESCE(subject_kind, '-'), COUNT(*),
                    COUNT(*) FILTER (WHERE status = 'approved'),
                    COUNT(*) FILTER (WHERE status = 'denied'),
                    COUNT(*) FILTER (WHERE status = 'aborted'),
                    COUNT(*) FILTER (WHERE status = 'timed_out')
             FROM reviews WHERE {RANGE} GROUP BY 1, 2 ORDER BY 3 DESC"
        ),
        &[],
        |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                [
                    r.get::<_, i64>(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ],
            ))
        },
    )?;
    let approval_latency = percentiles_by(q.rows(
        &format!(
            "SELECT COALESCE(reviewer, '-'), COALESCE(subject_kind, '-'), duration_ms FROM reviews
             WHERE {RANGE} AND duration_ms IS NOT NULL"
        ),
        &[],
        |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                r.get::<_, i64>(2)?,
            ))
        },
    )?);
    let approvals = approval_counts
        .into_iter()
        .map(|(key, c)| ApprovalRow {
            latency_ms: approval_latency.get(&key).copied().unwrap_or_default(),
            reviewer: key.0,
            subject_kind: key.1,
            total: to_u64(c[0]),
            approved: to_u64(c[1]),
            denied: to_u64(c[2]),
            aborted: to_u64(c[3]),
            timed_out: to_u64(c[4]),
        })
        .collect();

    let hook_runs = q.rows(
        &format!(
            "SELECT COALESCE(hook_source, '-'), COALESCE(status, '-'), COUNT(*) FROM hook_runs
             WHERE {RANGE} GROUP BY 1, 2 ORDER BY 3 DESC"
        ),
        &[],
        |r| {
            Ok(HookRunRow {
                hook_source: r.get(0)?,
                status: r.get(1)?,
                count: to_u64(r.get(2)?),
            })
        },
    )?;

    let guardian_counts = q.rows(
        &format!(
            "SELECT COALESCE(decision, '-'), COALESCE(failure_reason, '-'), COUNT(*)
             FROM guardian_reviews WHERE {RANGE} GROUP BY 1, 2 ORDER BY 3 DESC"
        ),
        &[],
        |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                r.get::<_, i64>(2)?,
            ))
        },
    )?;
    let guardian_latency = percentiles_by(q.rows(
        &format!(
            "SELECT COALESCE(decision, '-'), COALESCE(failure_reason, '-'), completion_latency_ms
             FROM guardian_reviews WHERE {RANGE} AND completion_latency_ms IS NOT NULL"
        ),
        &[],
        |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                r.get::<_, i64>(2)?,
            ))
        },
    )?);
    let guardian_reviews = guardian_counts
        .into_iter()
        .map(|(key, count)| GuardianRow {
            latency_ms: guardian_latency.get(&key).copied().unwrap_or_default(),
            decision: key.0,
            failure_reason: key.1,
            count: to_u64(count),
        })
        .collect();

    let top_errors = q.rows(
        &format!(
            "SELECT source, kind, COUNT(*) FROM (
                SELECT 'turn' AS source, codex_error_kind AS kind FROM turns
                    WHERE {RANGE} AND codex_error_kind IS NOT NULL
                UNION ALL
                SELECT 'turn', 'status:' || status FROM turns
                    WHERE {RANGE} AND status = 'failed' AND codex_error_kind IS NULL
                UNION ALL
                SELECT 'tool', failure_kind FROM tool_calls
                    WHERE {RANGE} AND failure_kind IS NOT NULL
                UNION ALL
                SELECT 'compaction', COALESCE(codex_error_kind, 'status:' || status) FROM compactions
                    WHERE {RANGE} AND (codex_error_kind IS NOT NULL OR status = 'failed')
                UNION ALL
                SELECT 'guardian', failure_reason FROM guardian_reviews
                    WHERE {RANGE} AND failure_reason IS NOT NULL
                UNION ALL
                SELECT 'hook', 'status:' || status FROM hook_runs
                    WHERE {RANGE} AND status IN ('failed', 'blocked', 'stopped')
                UNION ALL
                SELECT 'server_request', outcome FROM server_requests
                    WHERE {RANGE} AND outcome IN ('error_response', 'aborted', 'connection_closed', 'decode_failed'))
             GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 10"
        ),
        &[],
        |r| {
            Ok(ErrorRow {
                source: r.get(0)?,
                kind: text(r, 1)?,
                count: to_u64(r.get(2)?),
            })
        },
    )?;

    // An app-server's drops belong to no one client: shown whatever client is asked for.
    let analytics_drops = q.rows(
        "SELECT COALESCE(stage, '-'), COALESCE(reason, '-'), COALESCE(dropped_event_type, '-'),
                    TOTAL(count)
             FROM analytics_drops WHERE ts_ms >= ?1 AND ts_ms < ?2
             GROUP BY 1, 2, 3 ORDER BY 4 DESC",
        &[],
        |r| {
            Ok(DropRow {
                stage: r.get(0)?,
                reason: r.get(1)?,
                dropped_event_type: r.get(2)?,
                count: total(r, 3)?,
            })
        },
    )?;

    // Quarantine has no client column (a rejected event's client is unknown); it is shown only
    // in the unfiltered report. Fields are grouped without their batch index.
    let (quarantined, quarantined_total) = if query.client.is_none() {
        let rows = q.rows(
            "SELECT COALESCE(event_type, '-'),
                    CASE WHEN field LIKE 'events[%' THEN substr(field, instr(field, ']') + 2)
                         ELSE field END AS f,
                    COUNT(*)
             FROM rejects WHERE received_at_ms >= ?1 AND received_at_ms < ?2
             GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 50",
            &[],
            |r| {
                Ok(QuarantineRow {
                    event_type: r.get(0)?,
                    field: field_label(r.get::<_, String>(1)?),
                    count: to_u64(r.get(2)?),
                })
            },
        )?;
        let total = q.count(
            "SELECT COUNT(*) FROM rejects WHERE received_at_ms >= ?1 AND received_at_ms < ?2",
        )?;
        (rows, total)
    } else {
        (Vec::new(), 0)
    };

    let typed: Vec<&str> = crate::family::FAMILIES
        .iter()
        .flat_map(|f| f.event_types.iter().copied())
        .collect();
    let placeholders: Vec<String> = (0..typed.len()).map(|i| format!("?{}", i + 4)).collect();
    let typed_args: Vec<SqlValue> = typed
        .iter()
        .map(|t| SqlValue::Text((*t).to_owned()))
        .collect();
    let other_event_types: Vec<EventTypeRow> = q.rows(
        &format!(
            "SELECT event_type, COUNT(*) FROM events
             WHERE {RANGE} AND event_type NOT IN ({})
             GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 50",
            placeholders.join(", ")
        ),
        &typed_args,
        |r| {
            Ok(EventTypeRow {
                event_type: r.get(0)?,
                count: to_u64(r.get(1)?),
            })
        },
    )?;

    let timeline: Vec<TimelineRow> = timeline.into_values().collect();
    let mut totals = totals;
    totals.add_turns_of(&timeline);
    totals.quarantined = quarantined_total;
    // Counted on its own: the list above stops at 50 types.
    totals.untyped_events = q
        .rows(
            &format!(
                "SELECT COUNT(*) FROM events WHERE {RANGE} AND event_type NOT IN ({})",
                placeholders.join(", ")
            ),
            &typed_args,
            |r| r.get::<_, i64>(0),
        )?
        .first()
        .copied()
        .map_or(0, to_u64);

    Ok(Report {
        since_ms: query.since_ms,
        until_ms: query.until_ms,
        client: query.client.clone(),
        bucket_ms,
        totals,
        clients,
        timeline,
        thread_sources,
        turn_outcomes,
        tokens,
        tool_calls,
        approvals,
        hook_runs,
        guardian_reviews,
        top_errors,
        analytics_drops,
        quarantined,
        other_event_types,
    })
}

/// `codex_command_execution_event` → `command_execution`.
pub(super) fn tool_kind(event_type: &str) -> String {
    let s = event_type.strip_prefix("codex_").unwrap_or(event_type);
    s.strip_suffix("_event").unwrap_or(s).to_owned()
}

/// A quarantine field without its batch index; `(event)` when the event itself was wrong.
pub(super) fn field_label(field: String) -> String {
    if field.is_empty() {
        "(event)".to_owned()
    } else {
        field
    }
}
