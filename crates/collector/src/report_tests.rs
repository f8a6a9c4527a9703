use super::*;

#[test]
fn durations_parse_with_units() {
    assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
    assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
    assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1_800)));
    assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86_400)));
    assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3 * 86_400)));
    assert!(parse_duration("0d").is_err());
    assert!(parse_duration("7y").unwrap_err().contains("unknown unit"));
    assert!(parse_duration("").is_err());
    assert!(parse_duration("99999999999999999999d").is_err());
}

#[test]
fn percentiles_use_nearest_rank() {
    let v: Vec<i64> = (1..=100).collect();
    let p = Percentiles::of_sorted(&v);
    assert_eq!((p.count, p.p50, p.p95), (100, Some(50), Some(95)));
    let p = Percentiles::of_sorted(&[7]);
    assert_eq!((p.p50, p.p95), (Some(7), Some(7)));
    assert_eq!(Percentiles::of_sorted(&[]).p50, None);
}

#[test]
fn short_ranges_use_hour_buckets() {
    assert_eq!(
        ReportQuery::last(Duration::from_secs(86_400)).bucket_ms,
        HOUR_MS
    );
    assert_eq!(
        ReportQuery::last(Duration::from_secs(7 * 86_400)).bucket_ms,
        DAY_MS
    );
}

#[test]
fn a_range_starts_on_a_bucket_boundary_so_no_first_bar_is_cut_short() {
    for (span, bucket) in [
        (7 * DAY_MS, DAY_MS),
        (DAY_MS, HOUR_MS),
        (30 * DAY_MS, DAY_MS),
    ] {
        let q = ReportQuery::last(Duration::from_millis(span.unsigned_abs()));
        assert_eq!(q.since_ms.rem_euclid(bucket), 0, "{span}: {q:?}");
        let covered = q.until_ms - q.since_ms;
        assert!(covered <= span && covered > span - bucket, "{span}: {q:?}");
    }
    // Shorter than two buckets: as asked.
    let q = ReportQuery::last(Duration::from_secs(90));
    assert_eq!(q.until_ms - q.since_ms, 90_000);
}

#[test]
fn a_short_range_says_its_buckets_are_hours() {
    let report = Report {
        bucket_ms: HOUR_MS,
        ..Report::default()
    };
    assert!(report
        .to_string()
        .contains("Sessions and turns per hour and client"));
}

#[test]
fn the_text_report_shows_every_section_and_its_numbers() {
    let report = Report {
        since_ms: 1_760_000_000_000,
        until_ms: 1_760_086_400_000,
        bucket_ms: DAY_MS,
        totals: Totals {
            turns: 12,
            ..Totals::default()
        },
        turn_outcomes: vec![TurnOutcomeRow {
            status: "completed".into(),
            count: 12,
            duration_ms: Percentiles {
                count: 12,
                p50: Some(1500),
                p95: Some(4200),
            },
        }],
        hook_runs: vec![HookRunRow {
            hook_source: "user\u{1b}[31m".into(),
            status: "failed".into(),
            count: 2,
        }],
        ..Report::default()
    };
    let text = report.to_string();
    for title in [
        "Sessions and turns per day and client",
        "Threads by source",
        "Turn outcomes",
        "Token usage by model",
        "Tool calls by kind and outcome",
        "Approval requests",
        "Hook runs by source and status",
        "Guardian reviews",
        "Top error and failure kinds",
        "Analytics dropped by app-servers",
        "Quarantined by the collector",
    ] {
        assert!(text.contains(title), "missing {title}:\n{text}");
    }
    assert!(text.contains("turns 12"), "{text}");
    assert!(text.contains("1500 / 4200"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "control characters from events reach the terminal"
    );
}

/// Bidi overrides and isolates, and zero-width characters: each reorders or hides text.
const SPOOFING: [char; 16] = [
    '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}',
    '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}', '\u{200B}', '\u{200D}', '\u{2060}', '\u{FEFF}',
];

#[test]
fn the_text_report_shows_no_character_that_reorders_or_hides_text() {
    // A right-to-left override in a client name made its row read backwards in a terminal.
    let evil: String = SPOOFING.iter().map(|c| format!("x{c}")).collect();
    let report = Report {
        client: Some(evil.clone()),
        hook_runs: vec![HookRunRow {
            hook_source: evil.clone(),
            status: "\u{202E}deliated".into(),
            count: 2,
        }],
        other_event_types: vec![EventTypeRow {
            event_type: evil,
            count: 1,
        }],
        ..Report::default()
    };
    let text = report.to_string();
    for c in SPOOFING {
        assert!(!text.contains(c), "U+{:04X} reached the terminal", c as u32);
    }
    assert!(text.contains("?deliated"), "{text}");
    assert!(text.contains(&"x?".repeat(SPOOFING.len())), "{text}");
}
