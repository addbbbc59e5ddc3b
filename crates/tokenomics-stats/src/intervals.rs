//! How sure a figure is: confidence intervals.
//!
//! * A mean over a few runs (throughput per run) gets Student's t interval,
//!   `mean ± t(n−1) · std / √n`, when there are at least two runs.
//! * A latency mean over many requests gets the same interval (the central limit theorem makes
//!   it close to exact at the request counts a level has).
//! * A percentile gets a distribution-free *order-statistic* interval: the `q` quantile of the
//!   population lies between the sample's order statistics of ranks
//!   `⌊nq − z·√(nq(1−q))⌋` and `⌈nq + z·√(nq(1−q))⌉` with the stated confidence (the normal
//!   approximation to the binomial count of samples below it). It needs no resampling and no
//!   assumption about the shape of the distribution; when those ranks fall outside the sample,
//!   there are too few samples for the percentile to be meaningful, and [`needed_samples`] says
//!   how many it takes.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// The percentiles a [`crate::Distribution`] reports, as fractions, with their field names.
pub const PERCENTILES: [(&str, f64); 5] = [
    ("p50", 0.50),
    ("p90", 0.90),
    ("p95", 0.95),
    ("p99", 0.99),
    ("p99.9", 0.999),
];

/// A confidence level is usable when it lies strictly between 0 and 1.
fn usable(confidence: f64) -> bool {
    confidence.is_finite() && confidence > 0.0 && confidence < 1.0
}

/// The two-sided normal quantile `z` of `confidence` (1.96 at 0.95).
pub fn z(confidence: f64) -> Option<f64> {
    if !usable(confidence) {
        return None;
    }
    let normal = Normal::new(0.0, 1.0).ok()?;
    Some(normal.inverse_cdf(0.5 + confidence / 2.0))
}

/// Student's t interval of a mean of `n` values with sample standard deviation `std`
/// (`None` for fewer than two values or an unusable input).
pub fn t_interval(mean: f64, std: f64, n: usize, confidence: f64) -> Option<[f64; 2]> {
    if n < 2 || !usable(confidence) || !mean.is_finite() || !std.is_finite() {
        return None;
    }
    let half = t_quantile(n - 1, confidence)? * std / (n as f64).sqrt();
    Some([mean - half, mean + half])
}

/// Degrees of freedom past which Student's t is the normal: at 10⁵ their 97.5% quantiles agree to
/// five digits (1.95998 against 1.95996). statrs' t quantile loses precision past about 10⁶
/// (1.83 at 10⁷) and does not return at 10⁸, which a long run's inter-token latencies reach.
const T_IS_NORMAL_DF: usize = 100_000;

/// The two-sided quantile of Student's t with `df` degrees of freedom at `confidence`.
fn t_quantile(df: usize, confidence: f64) -> Option<f64> {
    if df > T_IS_NORMAL_DF {
        return z(confidence);
    }
    let t = StudentsT::new(0.0, 1.0, df as f64).ok()?;
    Some(t.inverse_cdf(0.5 + confidence / 2.0))
}

/// The 0-based ranks `(lo, hi)` of the order statistics that bound the `q` quantile (`q` in
/// 0..1) of `n` samples with `confidence`; `None` when they fall outside the sample (too few
/// samples for this percentile).
pub fn quantile_ranks(n: usize, q: f64, confidence: f64) -> Option<(usize, usize)> {
    let z = z(confidence)?;
    if n == 0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let nf = n as f64;
    let spread = z * (nf * q * (1.0 - q)).sqrt();
    // 1-based ranks l and u; l ≥ 1 and u ≤ n are needed.
    let l = (nf * q - spread).floor();
    let u = (nf * q + spread).ceil();
    if l < 1.0 || u > nf {
        return None;
    }
    Some((l as usize - 1, u as usize - 1))
}

/// The fewest samples for which [`quantile_ranks`] exists for the `q` quantile.
pub fn needed_samples(q: f64, confidence: f64) -> Option<usize> {
    z(confidence)?;
    if !(q > 0.0 && q < 1.0) {
        return None;
    }
    // The ranks exist from some n on and keep existing: find the first by doubling, then
    // bisecting.
    let mut hi = 2usize;
    while quantile_ranks(hi, q, confidence).is_none() {
        hi = hi.checked_mul(2)?;
    }
    let mut lo = hi / 2;
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        if quantile_ranks(mid, q, confidence).is_some() {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// A distribution's confidence intervals (its `ci` block): the mean's, each percentile's
/// (`null` when there are too few samples), and for those, how many more samples they need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistributionCi {
    /// The confidence level of every interval here, strictly between 0 and 1 (e.g. 0.95).
    pub confidence: f64,
    /// Student's t interval `[lo, hi]` of the mean, in the samples' unit; `None` below two
    /// samples.
    pub mean: Option<[f64; 2]>,
    /// Order-statistic interval `[lo, hi]` of the median; `None` with too few samples.
    pub p50: Option<[f64; 2]>,
    /// Order-statistic interval of the 90th percentile.
    pub p90: Option<[f64; 2]>,
    /// Order-statistic interval of the 95th percentile.
    pub p95: Option<[f64; 2]>,
    /// Order-statistic interval of the 99th percentile.
    pub p99: Option<[f64; 2]>,
    /// Order-statistic interval of the 99.9th percentile (JSON key `p99.9`).
    #[serde(rename = "p99.9")]
    pub p99_9: Option<[f64; 2]>,
    /// Percentiles without an interval, and how many more samples each needs for one.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub needs: IndexMap<String, u64>,
}

impl DistributionCi {
    /// The intervals of a distribution of `n` samples with `mean` and `std`, whose order
    /// statistic of 0-based rank `r` is `at(r)`.
    pub fn new(
        n: usize,
        mean: f64,
        std: f64,
        confidence: f64,
        at: impl Fn(usize) -> f64,
    ) -> Option<Self> {
        if !usable(confidence) || n == 0 {
            return None;
        }
        let mut needs = IndexMap::new();
        let mut interval = |name: &str, q: f64| match quantile_ranks(n, q, confidence) {
            Some((lo, hi)) => Some([at(lo), at(hi)]),
            None => {
                if let Some(k) = needed_samples(q, confidence) {
                    needs.insert(name.to_string(), k.saturating_sub(n) as u64);
                }
                None
            }
        };
        let [p50, p90, p95, p99, p99_9] = PERCENTILES.map(|(name, q)| interval(name, q));
        Some(Self {
            confidence,
            mean: t_interval(mean, std, n, confidence),
            p50,
            p90,
            p95,
            p99,
            p99_9,
            needs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn t_and_z_quantiles() {
        assert!((z(0.95).unwrap() - 1.959964).abs() < 1e-5);
        // t(4) at 97.5%: 2.776445.
        let [lo, hi] = t_interval(10.0, 2.0, 5, 0.95).unwrap();
        assert!((hi - 10.0 - 2.776445 * 2.0 / 5f64.sqrt()).abs() < 1e-5);
        assert!((10.0 - lo - (hi - 10.0)).abs() < 1e-12);
        assert!(t_interval(10.0, 2.0, 1, 0.95).is_none());
        for bad in [0.0, 1.0, -0.5, f64::NAN, 95.0] {
            assert!(z(bad).is_none() && t_interval(1.0, 1.0, 3, bad).is_none());
        }
        // A long run's inter-token latencies: 128 million values. statrs' t quantile never
        // returned at 10^8 degrees of freedom; past 10^5 the normal's is used (it returns at once,
        // and a hang here would hang the test).
        let t1e3 = t_quantile(1_000, 0.95).unwrap();
        assert!((t1e3 - 1.962339).abs() < 1e-5, "{t1e3}");
        for n in [100_001, 10_000_000, 128_000_000, usize::MAX] {
            let q = t_quantile(n, 0.95).unwrap();
            assert!((q - 1.959964).abs() < 1e-5, "{n}: {q}");
        }
        let [lo, hi] = t_interval(1.0, 1.0, 128_000_000, 0.95).unwrap();
        assert!((hi - lo - 2.0 * 1.959964 / 128e6f64.sqrt()).abs() < 1e-9);
    }

    #[test]
    fn a_p99_needs_a_few_hundred_samples() {
        let n = needed_samples(0.99, 0.95).unwrap();
        assert_eq!(n, 381);
        assert!(quantile_ranks(n, 0.99, 0.95).is_some());
        assert!(quantile_ranks(n - 1, 0.99, 0.95).is_none());
        assert!(needed_samples(0.5, 0.95).unwrap() < 20);
        assert_eq!(needed_samples(0.999, 0.95), Some(3_838));
    }

    /// Coverage by simulation: over many seeded samples from a known distribution (exponential,
    /// whose p99 is ln(100)), the 95% interval of the p99 contains the true p99 in 93–97% of
    /// them.
    #[test]
    fn the_p99_interval_covers_the_true_p99_as_often_as_it_says() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
        let truth = 100f64.ln();
        let (trials, n) = (2_000, 2_000);
        let mut covered = 0;
        let mut sample = vec![0.0f64; n];
        for _ in 0..trials {
            for x in &mut sample {
                *x = -(1.0 - rng.gen::<f64>()).ln();
            }
            sample.sort_by(f64::total_cmp);
            let (lo, hi) = quantile_ranks(n, 0.99, 0.95).unwrap();
            if sample[lo] <= truth && truth <= sample[hi] {
                covered += 1;
            }
        }
        let share = covered as f64 / trials as f64;
        eprintln!("p99 interval coverage over {trials} samples of {n}: {share}");
        assert!((0.93..=0.97).contains(&share), "coverage {share}");
    }

    #[test]
    fn a_distribution_says_what_it_cannot_bound() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let ci = DistributionCi::new(100, 50.5, 29.0, 0.95, |r| values[r]).unwrap();
        let [lo, hi] = ci.p50.unwrap();
        assert!(lo < 50.5 && 50.5 < hi);
        assert!(ci.p99.is_none() && ci.p99_9.is_none());
        assert!(ci.needs["p99"] > 200);
        assert!(!ci.needs.contains_key("p50"));
    }
}
