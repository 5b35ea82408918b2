//! Retry delays: interval, backoff, MaxDelaySeconds and jitter.

use std::time::Duration;

use crate::asl::model::Retrier;
use crate::error::WorkflowError;

/// Decides whether `err` is retried. `attempts[i]` counts retries already made by retrier `i`.
/// AWS uses the first retrier whose ErrorEquals matches; once it is exhausted, no later one applies.
pub fn next_delay(
    retriers: &[Retrier],
    attempts: &mut [u32],
    err: &WorkflowError,
) -> Option<Duration> {
    let (i, r) = retriers
        .iter()
        .enumerate()
        .find(|(_, r)| r.error_equals.iter().any(|e| err.matches(e)))?;
    if attempts[i] >= r.max_attempts {
        return None;
    }
    let n = attempts[i];
    attempts[i] += 1;
    Some(delay(r, n))
}

/// The delay before retry number `n` (0-based) of retrier `r`.
pub fn delay(r: &Retrier, n: u32) -> Duration {
    let mut secs = r.interval_seconds * r.backoff_rate.powi(n.min(1024) as i32);
    if let Some(max) = r.max_delay_seconds {
        secs = secs.min(max);
    }
    if r.jitter_full {
        secs *= rand::random::<f64>();
    }
    // Cap at a year so a huge backoff cannot overflow Duration; 0 × ∞ (NaN) is no wait.
    if secs.is_nan() {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(secs.clamp(0.0, 31_536_000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retrier(max_delay: Option<f64>) -> Retrier {
        Retrier {
            error_equals: vec!["States.ALL".into()],
            interval_seconds: 1.0,
            max_attempts: 5,
            backoff_rate: 3.0,
            max_delay_seconds: max_delay,
            jitter_full: false,
        }
    }

    #[test]
    fn retry_backoff_grows_and_caps_at_max_delay() {
        let r = retrier(Some(5.0));
        let d: Vec<_> = (0..4).map(|n| delay(&r, n).as_secs_f64()).collect();
        assert_eq!(d, [1.0, 3.0, 5.0, 5.0]);
    }

    #[test]
    fn first_matching_retrier_is_used_until_exhausted() {
        let mut a = retrier(None);
        a.error_equals = vec!["A".into()];
        a.max_attempts = 1;
        let rs = [a, retrier(None)];
        let mut attempts = [0, 0];
        let e = WorkflowError::new("A", "x");
        assert!(next_delay(&rs, &mut attempts, &e).is_some());
        assert!(next_delay(&rs, &mut attempts, &e).is_none());
        assert_eq!(attempts, [1, 0]);
    }
}
