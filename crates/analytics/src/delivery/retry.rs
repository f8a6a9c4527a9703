//! Retry timing: exponential backoff with jitter, and how long a `Retry-After` is honoured.

use std::time::Duration;

use rand::Rng;

/// The delay before retry number `attempt + 1`: `initial * 2^attempt`, capped at `max`, with equal
/// jitter (half fixed, half random) so many servers retrying at once spread out but never hammer.
pub(crate) fn backoff(attempt: u32, initial: Duration, max: Duration) -> Duration {
    backoff_with_jitter(attempt, initial, max, rand::rng().random_range(0.0..=1.0))
}

/// [`backoff`] with the random part supplied (`jitter` in `0.0..=1.0`), for tests.
pub(crate) fn backoff_with_jitter(
    attempt: u32,
    initial: Duration,
    max: Duration,
    jitter: f64,
) -> Duration {
    let factor = 2u32.saturating_pow(attempt.min(31));
    let capped = initial.saturating_mul(factor).min(max);
    let half = capped / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

/// The delay after a retryable failure: the sink's `Retry-After` when given (capped so a bad header
/// cannot park delivery for days), else backoff.
pub(crate) fn retry_delay(
    retry_after: Option<Duration>,
    attempt: u32,
    initial: Duration,
    max_backoff: Duration,
    max_retry_after: Duration,
) -> Duration {
    let backoff = backoff(attempt, initial, max_backoff);
    match retry_after {
        // At least what the server asks, and never less than the backoff: a `Retry-After: 0`
        // (or a date already past by this clock) repeated would otherwise be a tight loop.
        Some(d) => d.min(max_retry_after).max(backoff),
        None => backoff,
    }
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
