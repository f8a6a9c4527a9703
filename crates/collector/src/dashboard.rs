//! `GET /`: the dashboard, server-rendered HTML with inline SVG charts (works offline, no script),
//! filters by client and time range, and a meta refresh. Every string from events is escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::report::{bucket_label, is_unsafe_to_show, Report};
use crate::server::{authorize_read, html_error, html_refusal, AppState, ReportParams};
use crate::svg::{bar_chart, hbar_chart};

/// Seconds between automatic refreshes of the page.
pub const REFRESH_SECONDS: u32 = 30;

/// Ranges offered in the filter.
const RANGES: &[(&str, &str)] = &[
    ("1h", "last hour"),
    ("24h", "last 24 hours"),
    ("7d", "last 7 days"),
    ("30d", "last 30 days"),
    ("90d", "last 90 days"),
];

/// Escapes text for HTML element content and double-quoted attributes; what must not be shown
/// as it is (control characters, bidi overrides) becomes U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if is_unsafe_to_show(c) && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The dashboard handler.
pub async fn page(
    State(state): State<Arc<AppState>>,
    Query(params): Query<ReportParams>,
    request: Request,
) -> Response {
    if let Err(e) = authorize_read(&state, request.headers()) {
        let mut refused = html_error(e.status(), &e.to_string());
        if e.status() == StatusCode::UNAUTHORIZED {
            // A browser asks its user for a read token (as the password) and sends it as Basic.
            refused.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(
                    "Basic realm=\"tally-collector\", charset=\"UTF-8\"",
                ),
            );
        }
        return refused;
    }
    let query = match params.to_query() {
        Ok(q) => q,
        Err(e) => return html_error(e.status(), &e.to_string()),
    };
    match state.reports.report(&state.store, query).await {
        Ok(report) => {
            Html(render(&report, params.since.as_deref().unwrap_or("7d"))).into_response()
        }
        Err(e) => html_refusal(&e),
    }
}

/// Renders the whole page for a report.
pub fn render(report: &Report, since: &str) -> String {
    let mut html = String::with_capacity(32 * 1024);
    let _ = write!(
        html,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{REFRESH_SECONDS}"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Tally analytics</title><style>{CSS}</style></head><body><header><h1>Tally analytics</h1>"#
    );
    html.push_str(&filters(report, since));
    html.push_str("</header><main>");
    html.push_str(&headline(report));
    html.push_str(r#"<section class="grid">"#);
    for (id, title, series) in timeline_series(report) {
        html.push_str(&bar_chart(id, title, &series));
    }
    html.push_str("</section><section class=\"grid\">");
    html.push_str(&hbar_chart(
        "turn-outcomes",
        "Turn outcomes",
        &report
            .turn_outcomes
            .iter()
            .map(|r| (r.status.clone(), r.count))
            .collect::<Vec<_>>(),
    ));
    html.push_str(&hbar_chart(
        "tool-calls",
        "Tool calls by kind and outcome",
        &report
            .tool_calls
            .iter()
            .map(|r| (format!("{} · {}", r.kind, r.terminal_status), r.count))
            .collect::<Vec<_>>(),
    ));
    html.push_str(&hbar_chart(
        "approvals",
        "Approval decisions",
        &approval_mix(report),
    ));
    html.push_str(&hbar_chart(
        "top-errors",
        "Top error and failure kinds",
        &report
            .top_errors
            .iter()
            .map(|r| (format!("{} · {}", r.source, r.kind), r.count))
            .collect::<Vec<_>>(),
    ));
    html.push_str("</section>");
    html.push_str(&tables(report));
    let _ = write!(
        html,
        "</main><footer>Generated {} UTC · refreshes every {REFRESH_SECONDS} s · <a href=\"api/report?since={}{}\">JSON</a> · <a href=\"metrics\">metrics</a></footer></body></html>",
        escape(&crate::time::minute_of_ms(crate::time::now_ms())),
        escape(&url_encode(since)),
        report
            .client
            .as_deref()
            .map(|c| format!("&amp;client={}", escape(&url_encode(c))))
            .unwrap_or_default(),
    );
    html
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}\
header{display:flex;flex-wrap:wrap;align-items:center;gap:1rem;padding:.5rem 1rem;background:#fff;border-bottom:1px solid #ddd}\
h1{font-size:1.2rem;margin:0}main{padding:1rem}form{display:flex;gap:.5rem;align-items:center}\
.cards{display:flex;flex-wrap:wrap;gap:.5rem;margin-bottom:1rem}.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.5rem .8rem;min-width:7rem}\
.card b{display:block;font-size:1.3rem}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:1rem;margin-bottom:1rem}\
figure.chart{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:.5rem}figcaption{font-weight:600;margin-bottom:.3rem}\
table{border-collapse:collapse;background:#fff;margin-bottom:1rem}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}\
th{background:#f0f0f0}td.n{text-align:right}footer{padding:1rem;color:#666;font-size:.85rem}";

fn filters(report: &Report, since: &str) -> String {
    // Links are relative, so the page works behind a proxy that serves it under a path.
    let mut f =
        String::from(r#"<form method="get" action="./"><label>Range <select name="since">"#);
    let mut known = false;
    for (value, label) in RANGES {
        let selected = if *value == since {
            known = true;
            " selected"
        } else {
            ""
        };
        let _ = write!(f, r#"<option value="{value}"{selected}>{label}</option>"#);
    }
    if !known {
        let _ = write!(
            f,
            r#"<option value="{0}" selected>last {0}</option>"#,
            escape(since)
        );
    }
    f.push_str(r#"</select></label><label>Client <select name="client"><option value="">all clients</option>"#);
    let mut clients = report.clients.clone();
    if let Some(c) = &report.client {
        if !clients.contains(c) {
            clients.push(c.clone());
        }
    }
    for client in &clients {
        let selected = if report.client.as_deref() == Some(client.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            f,
            r#"<option value="{0}"{selected}>{0}</option>"#,
            escape(client)
        );
    }
    f.push_str(r#"</select></label><button type="submit">Apply</button></form>"#);
    f
}

fn headline(report: &Report) -> String {
    let t = &report.totals;
    let cards = [
        ("Sessions", t.sessions),
        ("Turns", t.turns),
        ("Tool calls", t.tool_calls),
        ("Approvals", t.approvals),
        ("Hook runs", t.hook_runs),
        ("Guardian reviews", t.guardian_reviews),
        ("Tokens", t.total_tokens),
        ("Events", t.events),
        ("Quarantined", t.quarantined),
    ];
    let mut html = String::from(r#"<section class="cards">"#);
    for (label, value) in cards {
        let _ = write!(html, r#"<div class="card">{label}<b>{value}</b></div>"#);
    }
    html.push_str("</section>");
    html
}

/// One chart: element id, title, `(bucket label, value)` points.
type Series = (&'static str, &'static str, Vec<(String, u64)>);

/// Sessions, turns, tool calls and tokens per bucket, summed over clients, every bucket of the
/// range present (zeros included).
fn timeline_series(report: &Report) -> Vec<Series> {
    let bucket = report.bucket_ms.max(60_000);
    let start = report.since_ms.div_euclid(bucket) * bucket;
    let mut sums: BTreeMap<i64, [u64; 4]> = BTreeMap::new();
    let mut b = start;
    while b < report.until_ms && sums.len() < 2_000 {
        sums.insert(b, [0; 4]);
        b += bucket;
    }
    for row in &report.timeline {
        let entry = sums.entry(row.bucket_start_ms).or_insert([0; 4]);
        // Saturating: a bucket's tokens may already be u64::MAX (a sender's numbers).
        for (sum, value) in
            entry
                .iter_mut()
                .zip([row.sessions, row.turns, row.tool_calls, row.total_tokens])
        {
            *sum = sum.saturating_add(value);
        }
    }
    let series = |i: usize| -> Vec<(String, u64)> {
        sums.iter()
            .map(|(b, v)| (bucket_label(*b, bucket), v[i]))
            .collect()
    };
    vec![
        ("sessions-over-time", "Sessions", series(0)),
        ("turns-over-time", "Turns", series(1)),
        ("tool-calls-over-time", "Tool calls", series(2)),
        ("tokens-over-time", "Tokens", series(3)),
    ]
}

fn approval_mix(report: &Report) -> Vec<(String, u64)> {
    let mut rows = Vec::new();
    for r in &report.approvals {
        for (decision, n) in [
            ("approved", r.approved),
            ("denied", r.denied),
            ("aborted", r.aborted),
            ("timed out", r.timed_out),
        ] {
            if n > 0 {
                rows.push((format!("{} {} · {decision}", r.reviewer, r.subject_kind), n));
            }
        }
    }
    rows
}

/// Every section of the report as an HTML table, the same list `tally report` prints.
fn tables(report: &Report) -> String {
    let mut html = String::new();
    for t in report.tables() {
        let _ = write!(html, "<h2>{}</h2>", escape(&t.title));
        if t.rows.is_empty() {
            html.push_str("<p class=\"empty\">none in this range</p>");
            continue;
        }
        html.push_str("<table><tr>");
        for h in &t.header {
            let _ = write!(html, "<th>{}</th>", escape(h));
        }
        html.push_str("</tr>");
        for row in &t.rows {
            html.push_str("<tr>");
            for cell in row {
                let numeric = !cell.is_empty() && cell.chars().all(|c| c.is_ascii_digit());
                let class = if numeric { " class=\"n\"" } else { "" };
                let _ = write!(html, "<td{class}>{}</td>", escape(cell));
            }
            html.push_str("</tr>");
        }
        html.push_str("</table>");
    }
    html
}

/// Percent-encodes a query value.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
#[path = "dashboard_tests.rs"]
mod tests;
