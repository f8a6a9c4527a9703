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
