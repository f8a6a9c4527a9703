use std::time::Duration;

use super::*;

const MS: Duration = Duration::from_millis(1);

#[test]
fn backoff_doubles_then_caps() {
    let (initial, max) = (100 * MS, 1000 * MS);
    let full: Vec<_> = (0..6)
        .map(|a| backoff_with_jitter(a, initial, max, 1.0))
        .collect();
    assert_eq!(
        full,
        [100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS, 1000 * MS]
    );
    let low: Vec<_> = (0..3)
        .map(|a| backoff_with_jitter(a, initial, max, 0.0))
        .collect();
    assert_eq!(low, [50 * MS, 100 * MS, 200 * MS]);
}

#[test]
fn random_backoff_stays_within_half_and_full() {
    for attempt in 0..40 {
        let d = backoff(attempt, 100 * MS, 60_000 * MS);
        let full = (100 * MS)
            .saturating_mul(2u32.saturating_pow(attempt.min(31)))
            .min(60_000 * MS);
        assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
    }
}

#[test]
fn retry_after_wins_over_backoff_but_is_capped() {
    let secs = Duration::from_secs;
    assert_eq!(
        retry_delay(Some(secs(7)), 0, 100 * MS, secs(60), secs(600)),
        secs(7)
    );
    assert_eq!(
        retry_delay(Some(secs(86_400)), 0, 100 * MS, secs(60), secs(600)),
        secs(600)
    );
    let d = retry_delay(None, 2, 100 * MS, secs(60), secs(600));
    assert!(d >= 200 * MS && d <= 400 * MS);
}

#[test]
fn a_retry_after_of_zero_still_backs_off() {
    let secs = Duration::from_secs;
    let d = retry_delay(Some(Duration::ZERO), 5, 100 * MS, secs(60), secs(600));
    assert!(d >= 1_600 * MS && d <= 3_200 * MS, "{d:?}");
    assert!(retry_delay(Some(Duration::ZERO), 0, 100 * MS, secs(60), secs(600)) > Duration::ZERO);
}
