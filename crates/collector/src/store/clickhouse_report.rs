//! The report queries for ClickHouse: the same questions as `sqlite_report.rs` in ClickHouse's
//! dialect (18.16-compatible: no positional GROUP BY, `intDiv`, `FINAL` for the merge trees).
//! Literals are bound through [`sql_string`] and integer formatting only.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::clickhouse::{as_i64, sql_string, ClickHouseStore};
use super::sqlite_report::{
    field_label, percentiles_by, saturating_u64, to_u64, tool_kind, BY_PEOPLE,
};
use super::StoreError;
use crate::report::{
    bucket_label, ApprovalRow, DropRow, ErrorRow, EventTypeRow, GuardianRow, HookRunRow,
    QuarantineRow, Report, ReportQuery, ThreadSourceRow, TimelineRow, TokenRow, ToolCallRow,
    Totals, TurnOutcomeRow,
};

fn int(row: &Map<String, Value>, key: &str) -> i64 {
    row.get(key).and_then(as_i64).unwrap_or(0)
}

fn count(row: &Map<String, Value>, key: &str) -> u64 {
    to_u64(int(row, key))
}

/// A `sum` of senders' numbers, taken over `Float64` (an `Int64` sum wraps past i64), as a
/// saturated count, as SQLite's `TOTAL()` gives it.
fn total(row: &Map<String, Value>, key: &str) -> u64 {
    let sum = match row.get(key) {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    sum.map_or(0, saturating_u64)
}

fn text(row: &Map<String, Value>, key: &str) -> String {
    match row.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_owned(),
        Some(other) => other.to_string(),
    }
}

pub(crate) async fn build(
    store: &ClickHouseStore,
    query: &ReportQuery,
) -> Result<Report, StoreError> {
    let db = store.database();
    let bucket_ms = query.bucket_ms.max(60_000);
    let range = format!(
        "ts_ms >= {} AND ts_ms < {}{}",
        query.since_ms,
        query.until_ms,
        query
            .client
            .as_deref()
            .map(|c| format!(" AND client = {}", sql_string(c)))
            .unwrap_or_default()
    );
    let t = |table: &str| format!("{db}.{table} FINAL");
    let one = |rows: Vec<Map<String, Value>>| rows.first().map(|r| count(r, "n")).unwrap_or(0);

    let mut totals = Totals {
        events: one(store
            .rows(&format!(
                "SELECT count() AS n FROM {} WHERE {range}",
                t("events")
            ))
            .await?),
        sessions: one(store
            .rows(&format!(
                "SELECT uniqExact(session_id) AS n FROM (
                SELECT session_id FROM {} WHERE {range} AND session_id IS NOT NULL AND {BY_PEOPLE}
                UNION ALL
                SELECT session_id FROM {} WHERE {range} AND session_id IS NOT NULL AND {BY_PEOPLE})",
                t("thread_inits"),
                t("turns")
            ))
            .await?),
        turns: 0, // with total_tokens, summed from the timeline (add_turns_of)
        tool_calls: one(store
            .rows(&format!(
                "SELECT count() AS n FROM {} WHERE {range}",
                t("tool_calls")
            ))
            .await?),
        approvals: one(store
            .rows(&format!(
                "SELECT count() AS n FROM {} WHERE {range}",
                t("reviews")
            ))
            .await?),
        hook_runs: one(store
            .rows(&format!(
                "SELECT count() AS n FROM {} WHERE {range}",
                t("hook_runs")
            ))
            .await?),
        guardian_reviews: one(store
            .rows(&format!(
                "SELECT count() AS n FROM {} WHERE {range}",
                t("guardian_reviews")
            ))
            .await?),
        total_tokens: 0,
        quarantined: 0,
        untyped_events: 0,
    };

    let clients: Vec<String> = store
        .rows(&format!(
            "SELECT DISTINCT client FROM {} WHERE ts_ms >= {} AND ts_ms < {}
             AND event_type NOT IN ({}) ORDER BY client LIMIT 200",
            t("events"),
            query.since_ms,
            query.until_ms,
            crate::family::CLIENTLESS_EVENT_TYPES
                .iter()
                .map(|e| sql_string(e))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .await?
        .iter()
        .map(|r| text(r, "client"))
        .collect();

    let mut timeline: BTreeMap<(i64, String), TimelineRow> = BTreeMap::new();
    for r in store
        .rows(&format!(
            "SELECT intDiv(ts_ms, {bucket_ms}) * {bucket_ms} AS b, client, countIf({BY_PEOPLE}) AS n,
                sum(toFloat64(coalesce(total_tokens, 0))) AS tokens
         FROM {} WHERE {range} GROUP BY b, client",
            t("turns")
        ))
        .await?
    {
        let key = (int(&r, "b"), text(&r, "client"));
        let row = timeline
            .entry(key.clone())
            .or_insert_with(|| empty_row(key.0, key.1, bucket_ms));
        row.turns = count(&r, "n");
        row.total_tokens = total(&r, "tokens");
    }
    for r in store
        .rows(&format!(
            "SELECT intDiv(ts_ms, {bucket_ms}) * {bucket_ms} AS b, client, count() AS n
         FROM {} WHERE {range} GROUP BY b, client",
            t("tool_calls")
        ))
        .await?
    {
        let key = (int(&r, "b"), text(&r, "client"));
        let row = timeline
            .entry(key.clone())
            .or_insert_with(|| empty_row(key.0, key.1, bucket_ms));
        row.tool_calls = count(&r, "n");
    }
    for r in store
        .rows(&format!(
            "SELECT b, client, uniqExact(session_id) AS n FROM (
            SELECT intDiv(ts_ms, {bucket_ms}) * {bucket_ms} AS b, client, session_id FROM {}
                WHERE {range} AND session_id IS NOT NULL AND {BY_PEOPLE}
            UNION ALL
            SELECT intDiv(ts_ms, {bucket_ms}) * {bucket_ms} AS b, client, session_id FROM {}
                WHERE {range} AND session_id IS NOT NULL AND {BY_PEOPLE})
         GROUP BY b, client",
            t("thread_inits"),
            t("turns")
        ))
        .await?
    {
        let key = (int(&r, "b"), text(&r, "client"));
        let row = timeline
            .entry(key.clone())
            .or_insert_with(|| empty_row(key.0, key.1, bucket_ms));
        row.sessions = count(&r, "n");
    }

    let thread_sources = store
        .rows(&format!(
            "SELECT coalesce(thread_source, '-') AS s, uniqExact(thread_id) AS threads,
                    toInt64(sum(turn)) AS turn_count, sum(tokens) AS token_sum
             FROM (
                SELECT thread_source, thread_id, toInt64(0) AS turn, toFloat64(0) AS tokens
                    FROM {} WHERE {range}
                UNION ALL
                SELECT thread_source, thread_id, toInt64(1) AS turn,
                       toFloat64(coalesce(total_tokens, 0)) AS tokens
                    FROM {} WHERE {range})
             GROUP BY s ORDER BY turn_count DESC, s",
            t("thread_inits"),
            t("turns")
        ))
        .await?
        .iter()
        .map(|r| ThreadSourceRow {
            source: text(r, "s"),
            threads: count(r, "threads"),
            turns: count(r, "turn_count"),
            total_tokens: total(r, "token_sum"),
        })
        .collect();

    let durations = percentiles_by(
        store
            .rows(&format!(
                "SELECT coalesce(status, '-') AS k, duration_ms AS v FROM {}
                 WHERE {range} AND duration_ms IS NOT NULL AND {BY_PEOPLE}",
                t("turns")
            ))
            .await?
            .iter()
            .map(|r| (text(r, "k"), int(r, "v")))
            .collect(),
    );
    let turn_outcomes = store
        .rows(&format!(
            "SELECT coalesce(status, '-') AS k, count() AS n FROM {} WHERE {range} AND {BY_PEOPLE}
             GROUP BY k ORDER BY n DESC, k",
            t("turns")
        ))
        .await?
        .iter()
        .map(|r| {
            let status = text(r, "k");
            TurnOutcomeRow {
                duration_ms: durations.get(&status).copied().unwrap_or_default(),
                status,
                count: count(r, "n"),
            }
        })
        .collect();

    let tokens = store
        .rows(&format!(
            "SELECT coalesce(model, '-') AS model, count() AS n,
                    sum(toFloat64(coalesce(input_tokens, 0))) AS input,
                    sum(toFloat64(coalesce(cached_input_tokens, 0))) AS cached,
                    sum(toFloat64(coalesce(output_tokens, 0))) AS output,
                    sum(toFloat64(coalesce(reasoning_output_tokens, 0))) AS reasoning,
                    sum(toFloat64(coalesce(total_tokens, 0))) AS total
             FROM {} WHERE {range} GROUP BY model ORDER BY total DESC, model",
            t("turns")
        ))
        .await?
        .iter()
        .map(|r| TokenRow {
            model: text(r, "model"),
            turns: count(r, "n"),
            input_tokens: total(r, "input"),
            cached_input_tokens: total(r, "cached"),
            output_tokens: total(r, "output"),
            reasoning_output_tokens: total(r, "reasoning"),
            total_tokens: total(r, "total"),
        })
        .collect();

    let tool_durations = percentiles_by(
        store
            .rows(&format!(
                "SELECT event_type AS t, coalesce(terminal_status, '-') AS s, duration_ms AS v
                 FROM {} WHERE {range} AND duration_ms IS NOT NULL",
                t("tool_calls")
            ))
            .await?
            .iter()
            .map(|r| ((text(r, "t"), text(r, "s")), int(r, "v")))
            .collect(),
    );
    let tool_calls = store
        .rows(&format!(
            "SELECT event_type AS t, coalesce(terminal_status, '-') AS s, count() AS n
             FROM {} WHERE {range} GROUP BY t, s ORDER BY n DESC, t, s",
            t("tool_calls")
        ))
        .await?
        .iter()
        .map(|r| {
            let key = (text(r, "t"), text(r, "s"));
            ToolCallRow {
                duration_ms: tool_durations.get(&key).copied().unwrap_or_default(),
                kind: tool_kind(&key.0),
                terminal_status: key.1,
                count: count(r, "n"),
            }
        })
        .collect();

    let approval_latency = percentiles_by(
        store
            .rows(&format!(
                "SELECT coalesce(reviewer, '-') AS r, coalesce(subject_kind, '-') AS k,
                        duration_ms AS v
                 FROM {} WHERE {range} AND duration_ms IS NOT NULL",
                t("reviews")
            ))
            .await?
            .iter()
            .map(|r| ((text(r, "r"), text(r, "k")), int(r, "v")))
            .collect(),
    );
    let approvals = store
        .rows(&format!(
            "SELECT coalesce(reviewer, '-') AS r, coalesce(subject_kind, '-') AS k, count() AS n,
                    countIf(status = 'approved') AS approved, countIf(status = 'denied') AS denied,
                    countIf(status = 'aborted') AS aborted, countIf(status = 'timed_out') AS timed_out
             FROM {} WHERE {range} GROUP BY r, k ORDER BY n DESC, r, k", t("reviews")
        ))
        .await?
        .iter()
        .map(|r| {
            let key = (text(r, "r"), text(r, "k"));
            ApprovalRow {
                latency_ms: approval_latency.get(&key).copied().unwrap_or_default(),
                reviewer: key.0,
                subject_kind: key.1,
                total: count(r, "n"),
                approved: count(r, "approved"),
                denied: count(r, "denied"),
                aborted: count(r, "aborted"),
                timed_out: count(r, "timed_out"),
            }
        })
        .collect();

    let hook_runs = store
        .rows(&format!(
            "SELECT coalesce(hook_source, '-') AS src, coalesce(status, '-') AS s, count() AS n
             FROM {} WHERE {range} GROUP BY src, s ORDER BY n DESC, src, s",
            t("hook_runs")
        ))
        .await?
        .iter()
        .map(|r| HookRunRow {
            hook_source: text(r, "src"),
            status: text(r, "s"),
            count: count(r, "n"),
        })
        .collect();

    let guardian_latency = percentiles_by(
        store
            .rows(&format!(
                "SELECT coalesce(decision, '-') AS d, coalesce(failure_reason, '-') AS f,
                        completion_latency_ms AS v
                 FROM {} WHERE {range} AND completion_latency_ms IS NOT NULL",
                t("guardian_reviews")
            ))
            .await?
            .iter()
            .map(|r| ((text(r, "d"), text(r, "f")), int(r, "v")))
            .collect(),
    );
    let guardian_reviews = store
        .rows(&format!(
            "SELECT coalesce(decision, '-') AS d, coalesce(failure_reason, '-') AS f, count() AS n
             FROM {} WHERE {range} GROUP BY d, f ORDER BY n DESC, d, f",
            t("guardian_reviews")
        ))
        .await?
        .iter()
        .map(|r| {
            let key = (text(r, "d"), text(r, "f"));
            GuardianRow {
                latency_ms: guardian_latency.get(&key).copied().unwrap_or_default(),
                decision: key.0,
                failure_reason: key.1,
                count: count(r, "n"),
            }
        })
        .collect();

    let top_errors = store
        .rows(&format!(
            "SELECT source, kind, count() AS n FROM (
                SELECT 'turn' AS source, assumeNotNull(codex_error_kind) AS kind FROM {turns}
                    WHERE {range} AND codex_error_kind IS NOT NULL
                UNION ALL
                SELECT 'turn' AS source, concat('status:', assumeNotNull(status)) AS kind FROM {turns}
                    WHERE {range} AND status = 'failed' AND codex_error_kind IS NULL
                UNION ALL
                SELECT 'tool' AS source, assumeNotNull(failure_kind) AS kind FROM {tools}
                    WHERE {range} AND failure_kind IS NOT NULL
                UNION ALL
                SELECT 'compaction' AS source,
                       coalesce(codex_error_kind, concat('status:', assumeNotNull(status))) AS kind
                    FROM {compactions}
                    WHERE {range} AND (codex_error_kind IS NOT NULL OR status = 'failed')
                UNION ALL
                SELECT 'guardian' AS source, assumeNotNull(failure_reason) AS kind FROM {guardian}
                    WHERE {range} AND failure_reason IS NOT NULL
                UNION ALL
                SELECT 'hook' AS source, concat('status:', assumeNotNull(status)) AS kind FROM {hooks}
                    WHERE {range} AND status IN ('failed', 'blocked', 'stopped')
                UNION ALL
                SELECT 'server_request' AS source, assumeNotNull(outcome) AS kind FROM {requests}
                    WHERE {range}
                      AND outcome IN ('error_response', 'aborted', 'connection_closed', 'decode_failed'))
             GROUP BY source, kind ORDER BY n DESC, source, kind LIMIT 10",
            turns = t("turns"),
            tools = t("tool_calls"),
            compactions = t("compactions"),
            guardian = t("guardian_reviews"),
            hooks = t("hook_runs"),
            requests = t("server_requests"),
        ))
        .await?
        .iter()
        .map(|r| ErrorRow {
            source: text(r, "source"),
            kind: text(r, "kind"),
            count: count(r, "n"),
        })
        .collect();

    // An app-server's drops belong to no one client: shown whatever client is asked for.
    let analytics_drops = store
        .rows(&format!(
            "SELECT coalesce(stage, '-') AS st, coalesce(reason, '-') AS r,
                    coalesce(dropped_event_type, '-') AS et, sum(toFloat64(coalesce(count, 0))) AS n
             FROM {} WHERE ts_ms >= {} AND ts_ms < {}
             GROUP BY st, r, et ORDER BY n DESC, st, r, et",
            t("analytics_drops"),
            query.since_ms,
            query.until_ms
        ))
        .await?
        .iter()
        .map(|r| DropRow {
            stage: text(r, "st"),
            reason: text(r, "r"),
            dropped_event_type: text(r, "et"),
            count: total(r, "n"),
        })
        .collect();

    let mut quarantined: Vec<QuarantineRow> = Vec::new();
    let mut quarantined_total = 0;
    if query.client.is_none() {
        let when = format!(
            "received_at_ms >= {} AND received_at_ms < {}",
            query.since_ms, query.until_ms
        );
        quarantined = store
            .rows(&format!(
                "SELECT coalesce(event_type, '-') AS t,
                        if(field LIKE 'events[%', substring(field, position(field, ']') + 2, 1000), field) AS f,
                        count() AS n
                 FROM {} WHERE {when} GROUP BY t, f ORDER BY n DESC, t, f LIMIT 50",
                t("rejects")
            ))
            .await?
            .iter()
            .map(|r| QuarantineRow {
                event_type: text(r, "t"),
                field: field_label(text(r, "f")),
                count: count(r, "n"),
            })
            .collect();
        quarantined_total = one(store
            .rows(&format!(
                "SELECT count() AS n FROM {} WHERE {when}",
                t("rejects")
            ))
            .await?);
    }

    let typed: Vec<String> = crate::family::FAMILIES
        .iter()
        .flat_map(|f| f.event_types.iter().map(|t| sql_string(t)))
        .collect();
    let other_event_types: Vec<EventTypeRow> = store
        .rows(&format!(
            "SELECT event_type AS t, count() AS n FROM {} WHERE {range} AND event_type NOT IN ({})
             GROUP BY t ORDER BY n DESC, t LIMIT 50",
            t("events"),
            typed.join(", ")
        ))
        .await?
        .iter()
        .map(|r| EventTypeRow {
            event_type: text(r, "t"),
            count: count(r, "n"),
        })
        .collect();

    let timeline: Vec<TimelineRow> = timeline.into_values().collect();
    totals.add_turns_of(&timeline);
    totals.quarantined = quarantined_total;
    // Counted on its own: the list above stops at 50 types.
    totals.untyped_events = one(store
        .rows(&format!(
            "SELECT count() AS n FROM {} WHERE {range} AND event_type NOT IN ({})",
            t("events"),
            typed.join(", ")
        ))
        .await?);
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

fn empty_row(b: i64, client: String, bucket_ms: i64) -> TimelineRow {
    TimelineRow {
        bucket_start_ms: b,
        bucket: bucket_label(b, bucket_ms),
        client,
        sessions: 0,
        turns: 0,
        tool_calls: 0,
        total_tokens: 0,
    }
}
