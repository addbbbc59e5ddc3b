//! Summaries built as samples arrive, in memory that does not grow with the run.
//!
//! [`Moments`] keeps a count, mean, sample standard deviation (Welford), min and max — exact, in
//! constant memory. [`Samples`] adds percentiles: it keeps every value while there are at most
//! `limit` of them (percentiles then are exact, as numpy's linear interpolation computes them),
//! and past that moves to an HDR histogram of 1 µs … 1 h at three significant digits, whose
//! percentiles are within [`HISTOGRAM_RELATIVE_ERROR`] of the exact ones (or within 1 µs below
//! it); count, mean, std, min and max stay exact either way.

use hdrhistogram::Histogram;
use tokenomics_stats::{Distribution, DistributionCi, Stat, Summary};

/// The relative error of a histogram-based percentile: three significant digits resolve a value
/// to one part in 2,048 of its power of two; the middle of the bucket is reported, so the error
/// is at most half of that.
pub const HISTOGRAM_RELATIVE_ERROR: f64 = 1.0 / 2048.0;

/// The histogram's range, nanoseconds: 1 µs to 1 hour. Values outside are recorded at the bound.
const LOWEST_NS: u64 = 1_000;
const HIGHEST_NS: u64 = 3_600_000_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

/// How many values a sustained level keeps per figure before it summarises them in a histogram.
pub const EXACT_LIMIT: usize = 100_000;

/// Count, mean, sample standard deviation, min and max, without keeping the values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    n: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Default for Moments {
    fn default() -> Self {
        Self {
            n: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Moments {
    /// Adds `x` (a NaN is ignored, as [`Summary`] ignores it).
    pub fn push(&mut self, x: f64) {
        if x.is_nan() {
            return;
        }
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    /// Values pushed, NaNs not counted.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// `{mean, std}` by the documents' rules: sample std (n − 1), 0 for one value, NaN for none.
    pub fn stat(&self) -> Stat {
        let (mean, std) = match self.n {
            0 => (f64::NAN, f64::NAN),
            1 => (self.mean, 0.0),
            n => (self.mean, (self.m2 / (n - 1) as f64).max(0.0).sqrt()),
        };
        Stat {
            mean,
            std,
            min: None,
            max: None,
            ci: None,
        }
    }

    fn min(&self) -> f64 {
        if self.n == 0 {
            f64::NAN
        } else {
            self.min
        }
    }

    fn max(&self) -> f64 {
        if self.n == 0 {
            f64::NAN
        } else {
            self.max
        }
    }
}

/// Values pooled for `{mean, std}` only (tokens per request, tokens/s): kept while there are at
/// most `limit` of them, so the figures are exactly those [`Summary`] computes (as before),
/// and past that summarised by [`Moments`] (the same mean and std up to rounding).
#[derive(Debug, Clone)]
pub struct Pooled {
    exact: Option<Vec<f64>>,
    limit: usize,
    moments: Moments,
}

impl Pooled {
    /// No values yet; every value is kept until there are more than `limit`.
    pub fn new(limit: usize) -> Self {
        Self {
            exact: Some(Vec::new()),
            limit,
            moments: Moments::default(),
        }
    }

    /// Adds one value (NaN is ignored).
    pub fn push(&mut self, x: f64) {
        if x.is_nan() {
            return;
        }
        self.moments.push(x);
        if let Some(v) = &mut self.exact {
            if v.len() < self.limit {
                v.push(x);
            } else {
                self.exact = None;
            }
        }
    }

    /// How many values are kept exactly before the summary takes over.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// `{mean, std}` by the documents' rules.
    pub fn stat(&self) -> Stat {
        match &self.exact {
            Some(v) => Summary::new(v.iter().copied()).mean_std(),
            None => self.moments.stat(),
        }
    }
}

/// Samples of one figure, in seconds: exact up to a limit, then a histogram.
#[derive(Debug, Clone)]
pub struct Samples {
    exact: Option<Vec<f64>>,
    limit: usize,
    moments: Moments,
    histogram: Option<Histogram<u64>>,
}

impl Samples {
    /// Samples kept exactly up to `limit` values (`usize::MAX`: always exact).
    pub fn new(limit: usize) -> Self {
        Self {
            exact: Some(Vec::new()),
            limit,
            moments: Moments::default(),
            histogram: None,
        }
    }

    /// Adds one value, seconds (NaN is ignored).
    pub fn push(&mut self, x: f64) {
        if x.is_nan() {
            return;
        }
        self.moments.push(x);
        if let Some(v) = &mut self.exact {
            if v.len() < self.limit {
                v.push(x);
                return;
            }
            // Past the limit: from here on, a histogram of every value. (Were the histogram's
            // constant bounds ever refused, the values would simply stay exact.)
            let Some(mut h) = empty_histogram() else {
                v.push(x);
                return;
            };
            for &y in v.iter() {
                record(&mut h, y);
            }
            self.exact = None;
            self.histogram = Some(h);
        }
        if let Some(h) = &mut self.histogram {
            record(h, x);
        }
    }

    /// Whether the percentiles are exact (every value kept).
    pub fn is_exact(&self) -> bool {
        self.exact.is_some()
    }

    /// Values pooled so far (NaNs not counted).
    pub fn count(&self) -> u64 {
        self.moments.count()
    }

    /// `{mean, std}` (exact).
    pub fn stat(&self) -> Stat {
        match &self.exact {
            Some(v) => Summary::new(v.iter().copied()).mean_std(),
            None => self.moments.stat(),
        }
    }

    /// Count, mean, std, min, max (exact) and percentiles (exact, or from the histogram), with
    /// their confidence intervals when `confidence` is given (order statistics read from the
    /// values, or from the histogram at the same ranks).
    pub fn distribution(&self, confidence: Option<f64>) -> Distribution {
        if let Some(v) = &self.exact {
            let s = Summary::new(v.iter().copied());
            return match confidence {
                Some(c) => s.distribution_ci(c),
                None => s.distribution(),
            };
        }
        let m = &self.moments;
        let stat = m.stat();
        let q = |p: f64| match &self.histogram {
            Some(h) => {
                let ns = h.median_equivalent(h.value_at_quantile(p / 100.0));
                (ns as f64 / 1e9).clamp(m.min(), m.max())
            }
            None => f64::NAN,
        };
        let n = m.count() as usize;
        let ci = confidence.and_then(|c| {
            DistributionCi::new(n, stat.mean, stat.std, c, |rank| {
                q(100.0 * (rank as f64 + 0.5) / n as f64)
            })
        });
        Distribution {
            count: m.count(),
            mean: stat.mean,
            std: stat.std,
            min: m.min(),
            max: m.max(),
            p50: q(50.0),
            p90: q(90.0),
            p95: q(95.0),
            p99: q(99.0),
            p99_9: q(99.9),
            ci,
        }
    }
}

fn empty_histogram() -> Option<Histogram<u64>> {
    Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS).ok()
}

fn record(h: &mut Histogram<u64>, seconds: f64) {
    // `as` saturates; negative values (a send a few ns before its scheduled time) become 0.
    let ns = (seconds * 1e9) as u64;
    h.saturating_record(ns.clamp(LOWEST_NS, HIGHEST_NS));
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn moments_match_the_summary() {
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let mut m = Moments::default();
        xs.iter().for_each(|&x| m.push(x));
        let s = Summary::new(xs).mean_std();
        assert!((m.stat().mean - s.mean).abs() < 1e-12);
        assert!((m.stat().std - s.std).abs() < 1e-12);
        let mut one = Moments::default();
        one.push(3.5);
        assert_eq!((one.stat().mean, one.stat().std), (3.5, 0.0));
        assert!(Moments::default().stat().mean.is_nan());
    }

    #[test]
    fn exact_below_the_limit_histogram_above_within_its_error() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        // Latencies from 1 ms to ~2 s, heavy-tailed.
        let xs: Vec<f64> = (0..50_000)
            .map(|_| 0.001 * (1.0 / (1.0 - rng.gen::<f64>() * 0.9995)))
            .collect();
        let mut exact = Samples::new(usize::MAX);
        let mut hist = Samples::new(1_000);
        for &x in &xs {
            exact.push(x);
            hist.push(x);
        }
        assert!(exact.is_exact() && !hist.is_exact());
        let (e, h) = (exact.distribution(None), hist.distribution(None));
        assert_eq!(e.count, h.count);
        assert!((e.mean - h.mean).abs() < 1e-12 * e.mean.abs().max(1.0));
        assert!((e.std - h.std).abs() < 1e-9 * e.std);
        assert_eq!((e.min, e.max), (h.min, h.max));
        for (a, b) in [
            (e.p50, h.p50),
            (e.p90, h.p90),
            (e.p99, h.p99),
            (e.p99_9, h.p99_9),
        ] {
            // Within the histogram's error plus the spacing of neighbouring ranks.
            assert!(
                (a - b).abs() <= a * (HISTOGRAM_RELATIVE_ERROR + 0.01),
                "{a} vs {b}"
            );
        }
    }

    #[test]
    fn values_outside_the_range_are_held_by_min_and_max() {
        let mut s = Samples::new(0);
        for x in [0.0, -1e-9, 5e-7, 7200.0] {
            s.push(x);
        }
        let d = s.distribution(Some(0.95));
        assert_eq!((d.min, d.max), (-1e-9, 7200.0));
        assert!(d.p50 >= d.min && d.p99_9 <= d.max);
    }
}
