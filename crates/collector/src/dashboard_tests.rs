use super::*;
use crate::report::{HookRunRow, TimelineRow, Totals, DAY_MS, HOUR_MS};

const EVIL: &str = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>";

fn report() -> Report {
    let since = 1_760_000_000_000 / HOUR_MS * HOUR_MS;
    Report {
        since_ms: since,
        until_ms: since + 24 * HOUR_MS,
        bucket_ms: HOUR_MS,
        client: Some(EVIL.into()),
        clients: vec!["vscode".into(), EVIL.into()],
        totals: Totals {
            turns: 5,
            ..Totals::default()
        },
        timeline: vec![
            TimelineRow {
                bucket_start_ms: since + 2 * HOUR_MS,
                bucket: "b".into(),
                client: EVIL.into(),
                sessions: 1,
                turns: 3,
                tool_calls: 4,
                total_tokens: 100,
            },
            TimelineRow {
                bucket_start_ms: since + 2 * HOUR_MS,
                bucket: "b".into(),
                client: "vscode".into(),
                sessions: 1,
                turns: 2,
                tool_calls: 0,
                total_tokens: 50,
            },
        ],
        hook_runs: vec![HookRunRow {
            hook_source: EVIL.into(),
            status: "completed".into(),
            count: 1,
        }],
        ..Report::default()
    }
}

#[test]
fn event_strings_are_escaped_everywhere() {
    let html = render(&report(), "24h");
    assert!(!html.contains("<script>"), "raw script tag in the page");
    assert!(!html.contains("<img"), "raw img tag in the page");
    assert!(!html.contains("onerror=alert(1)>"));
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    // The selected client survives into the JSON link, percent-encoded.
    assert!(html.contains("client=%3Cscript%3E"));
}

#[test]
fn timeline_charts_have_one_bar_per_bucket_summed_over_clients() {
    let html = render(&report(), "24h");
    let turns = html
        .split("id=\"turns-over-time\"")
        .nth(1)
        .and_then(|rest| rest.split("</figure>").next())
        .unwrap_or_default();
    assert!(turns.contains("data-points=\"24\""), "{turns}");
    assert_eq!(turns.matches("class=\"bar\"").count(), 24);
    assert!(
        turns.contains("data-value=\"5\""),
        "3 + 2 turns in bucket 2"
    );
    assert!(html.contains("<meta http-equiv=\"refresh\""));
}

#[test]
fn filters_keep_the_current_choice() {
    let html = render(&report(), "24h");
    assert!(html.contains("<option value=\"24h\" selected>"));
    let custom = render(&report(), "3d");
    assert!(custom.contains("<option value=\"3d\" selected>last 3d</option>"));
    let mut r = report();
    r.client = Some("vscode".into());
    r.bucket_ms = DAY_MS;
    let html = render(&r, "7d");
    assert!(html.contains("<option value=\"vscode\" selected>vscode</option>"));
}

#[test]
fn escape_covers_html_metacharacters() {
    assert_eq!(
        escape("<a href=\"x\">'&'</a>"),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
    assert_eq!(escape("a\u{0}b"), "a\u{FFFD}b");
}

#[test]
fn links_are_relative_so_a_proxy_may_serve_the_page_under_a_path() {
    let html = render(&report(), "7d");
    for absolute in ["href=\"/", "action=\"/", "src=\"/"] {
        assert!(!html.contains(absolute), "{absolute} in the page");
    }
    assert!(html.contains("href=\"api/report?since=7d"));
    assert!(html.contains("action=\"./\""));
}

#[test]
fn characters_that_reorder_or_hide_text_are_replaced() {
    // Bidi overrides and isolates, marks, zero-width characters.
    for c in [
        '\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}',
    ] {
        assert_eq!(
            escape(&format!("a{c}b")),
            "a\u{FFFD}b",
            "U+{:04X}",
            c as u32
        );
    }
    let mut r = report();
    r.clients.push("vscode\u{202E}edoc".into());
    r.hook_runs[0].hook_source = "user\u{2066}\u{200B}".into();
    let html = render(&r, "24h");
    for c in ['\u{202E}', '\u{2066}', '\u{200B}'] {
        assert!(!html.contains(c), "U+{:04X} in the page", c as u32);
    }
    assert!(html.contains("vscode\u{FFFD}edoc"));
}
