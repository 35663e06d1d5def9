//! The retry policy: whether a failed step is tried again, and after how long.

use std::time::Duration;

/// No retry waits longer than this, however many attempts came before.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(5 * 60);

/// What to do after an attempt failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again after `delay`.
    Retry { delay: Duration, reason: String },
    /// Stop: the step has failed for good.
    GiveUp { reason: String },
}

/// Decides after the `attempt`-th attempt (1-based) failed, for a step allowed `retries`
/// retries with a first delay of `first_delay`. Delays double from `first_delay` and are
/// capped at [`MAX_RETRY_DELAY`].
pub fn after_failure(attempt: u32, retries: u32, first_delay: Duration) -> RetryDecision {
    let attempts_allowed = retries.saturating_add(1);
    if attempt >= attempts_allowed {
        let reason = match retries {
            0 => "no retries configured".to_owned(),
            1 => "the 1 retry is used up".to_owned(),
            n => format!("all {n} retries are used up"),
        };
        return RetryDecision::GiveUp { reason };
    }
    let doublings = attempt.saturating_sub(1);
    let factor = 2u32.checked_pow(doublings).unwrap_or(u32::MAX);
    let delay = first_delay.saturating_mul(factor).min(MAX_RETRY_DELAY);
    RetryDecision::Retry {
        delay,
        reason: format!("retry {attempt} of {retries}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delay(attempt: u32, retries: u32, first: u64) -> Option<u64> {
        match after_failure(attempt, retries, Duration::from_secs(first)) {
            RetryDecision::Retry { delay, .. } => Some(delay.as_secs()),
            RetryDecision::GiveUp { .. } => None,
        }
    }

    #[test]
    fn delays_double_from_the_first() {
        assert_eq!(delay(1, 5, 1), Some(1));
        assert_eq!(delay(2, 5, 1), Some(2));
        assert_eq!(delay(3, 5, 1), Some(4));
        assert_eq!(delay(4, 5, 1), Some(8));
    }

    #[test]
    fn delays_are_capped() {
        assert_eq!(delay(6, 100, 30), Some(300));
        assert_eq!(delay(99, 100, 1), Some(300));
        assert_eq!(
            after_failure(40, 100, Duration::MAX),
            RetryDecision::Retry {
                delay: MAX_RETRY_DELAY,
                reason: "retry 40 of 100".into()
            }
        );
    }

    #[test]
    fn gives_up_when_retries_are_used_up() {
        assert_eq!(delay(1, 0, 1), None);
        assert_eq!(delay(3, 2, 1), None);
        assert_eq!(
            after_failure(2, 1, Duration::from_secs(1)),
            RetryDecision::GiveUp {
                reason: "the 1 retry is used up".into()
            }
        );
    }
}
