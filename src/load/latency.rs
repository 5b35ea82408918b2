//! Request-to-result latencies in an HDR histogram: fixed memory for any count, percentiles
//! within 0.1 % of the exact value.

use std::time::Duration;

use hdrhistogram::Histogram;

/// The longest latency told apart; slower ones are recorded as this (the max keeps the truth).
const HIGHEST: Duration = Duration::from_secs(3600);

/// Latencies of one run.
pub(super) struct LatencyHistogram {
    histogram: Histogram<u64>,
    max: Duration,
}

impl LatencyHistogram {
    pub(super) fn new() -> LatencyHistogram {
        let highest = u64::try_from(HIGHEST.as_nanos()).unwrap_or(u64::MAX);
        LatencyHistogram {
            histogram: Histogram::new_with_bounds(1, highest, 3)
                .expect("1 ns .. 1 h at 3 significant digits is a valid histogram"),
            max: Duration::ZERO,
        }
    }

    pub(super) fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(nanos.max(1));
        self.max = self.max.max(latency);
    }

    /// The value below which a fraction `q` (0..=1) of the recorded latencies lie.
    pub(super) fn percentile(&self, q: f64) -> Duration {
        if self.histogram.is_empty() {
            return Duration::ZERO;
        }
        let nanos = self.histogram.value_at_quantile(q.clamp(0.0, 1.0));
        Duration::from_nanos(nanos).min(self.max)
    }

    pub(super) fn max(&self) -> Duration {
        self.max
    }

    /// Forgets everything recorded, keeping the memory.
    pub(super) fn reset(&mut self) {
        self.histogram.reset();
        self.max = Duration::ZERO;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers (xorshift64), so the tests need no crate.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    fn exact(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted[rank - 1]
    }

    fn histogram_of(values: &[u64]) -> LatencyHistogram {
        let mut histogram = LatencyHistogram::new();
        for &v in values {
            histogram.record(Duration::from_nanos(v));
        }
        histogram
    }

    #[test]
    fn percentiles_are_within_a_percent_on_a_long_tail() {
        let mut state = 0x2545_f491_4f6c_dd1d;
        // Mostly ~1 ms, a tail to ~2 s.
        let mut values: Vec<u64> = (0..100_000)
            .map(|_| {
                let r = xorshift(&mut state);
                if r.is_multiple_of(100) {
                    1_000_000 + r % 2_000_000_000
                } else {
                    500_000 + r % 1_000_000
                }
            })
            .collect();
        let histogram = histogram_of(&values);
        values.sort_unstable();
        for q in [0.5, 0.9, 0.99, 0.999] {
            let want = exact(&values, q) as f64;
            let got = histogram.percentile(q).as_nanos() as f64;
            assert!(
                (got - want).abs() / want <= 0.01,
                "p{q}: got {got}, exact {want}"
            );
        }
        assert_eq!(
            histogram.max(),
            Duration::from_nanos(*values.last().unwrap())
        );
    }

    #[test]
    fn a_rare_slow_outlier_stays_out_of_p99_but_in_max() {
        let mut values = vec![1_000_000u64; 999];
        values.push(30_000_000_000);
        let histogram = histogram_of(&values);
        assert!(histogram.percentile(0.99) < Duration::from_millis(2));
        assert_eq!(histogram.max(), Duration::from_secs(30));
    }

    #[test]
    fn beyond_an_hour_percentiles_saturate_and_the_max_is_exact() {
        let histogram = histogram_of(&[u64::MAX / 2]);
        assert!(histogram.percentile(1.0) >= HIGHEST);
        assert_eq!(histogram.max(), Duration::from_nanos(u64::MAX / 2));
    }

    #[test]
    fn an_empty_histogram_reports_zero() {
        let histogram = LatencyHistogram::new();
        assert_eq!(histogram.percentile(0.5), Duration::ZERO);
        assert_eq!(histogram.max(), Duration::ZERO);
    }
}
