//! The tests behind a verdict, each returning the relative change B/A − 1 with its interval and
//! a two-sided p-value.
//!
//! * [`bootstrap`]: per-request values of both runs resampled (whole requests, with
//!   replacement, from a seeded generator so a comparison is reproducible), the statistic (mean
//!   or a percentile) computed on each resample; the interval is the percentile interval of the
//!   resampled ratios, the p-value comes from the bootstrap standard error of the log ratio
//!   (a normal test, so that it resolves p-values far below 1/resamples, which the Holm
//!   correction over many metrics needs).
//! * [`welch`]: Welch's unequal-variance t-test on two means given as mean, sample standard
//!   deviation and count (run-level figures: one value per run); the interval is the difference's
//!   t-interval over the baseline's mean.
//! * [`mann_whitney`]: the Mann–Whitney U test with the Hodges–Lehmann shift and its
//!   distribution-free interval, for figures computed run by run from per-request records
//!   (exact for small samples, and indifferent to how those figures are distributed).
//! * [`two_proportions`]: the pooled two-proportion z-test (goodput shares).
//! * [`holm`]: the Holm–Bonferroni step-down adjustment of a family of p-values.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use crate::records::Clusters;

/// The outcome of one test: the relative change B/A − 1, its interval, and the p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// The relative change as a share (0.05: B 5% higher): B/A − 1, or for
    /// [`mann_whitney`] the Hodges–Lehmann shift over A's median.
    pub change: f64,
    /// The low end of the change's interval at the confidence asked, a share (NaN where no
    /// interval can be made).
    pub low: f64,
    /// The high end of that interval.
    pub high: f64,
    /// The two-sided p-value (NaN where the test cannot be made).
    pub p: f64,
}

/// A statistic of a sample: its mean or its `q`-th percentile (numpy's linear interpolation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Summary {
    /// The arithmetic mean.
    Mean,
    /// The percentile `q`, from 0 to 100 (99.0: the p99).
    Percentile(f64),
}

impl Summary {
    /// The statistic of sorted values (NaN for none).
    pub fn of_sorted(self, sorted: &[f64]) -> f64 {
        match self {
            Summary::Mean if sorted.is_empty() => f64::NAN,
            Summary::Mean => sorted.iter().sum::<f64>() / sorted.len() as f64,
            Summary::Percentile(q) => tokenomics_stats::percentile(sorted, q),
        }
    }
}

fn z_quantile(confidence: f64) -> f64 {
    // The standard normal always exists.
    let n = Normal::new(0.0, 1.0).expect("standard normal");
    n.inverse_cdf(0.5 + confidence / 2.0)
}

fn two_sided_normal_p(z: f64) -> f64 {
    let n = Normal::new(0.0, 1.0).expect("standard normal");
    (2.0 * (1.0 - n.cdf(z.abs()))).clamp(0.0, 1.0)
}

/// Resamples of the statistics `stats` of `sample` (whole clusters drawn with replacement):
/// one row per resample, one column per statistic. The point estimates come first (row 0 is the
/// sample itself).
fn resample(
    sample: &Clusters,
    stats: &[Summary],
    resamples: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<f64>> {
    let k = sample.clusters();
    let mut rows = Vec::with_capacity(resamples + 1);
    let mut pooled: Vec<f64> = sample.values.clone();
    pooled.sort_by(f64::total_cmp);
    rows.push(stats.iter().map(|s| s.of_sorted(&pooled)).collect());
    for _ in 0..resamples {
        pooled.clear();
        for _ in 0..k {
            pooled.extend_from_slice(sample.cluster(rng.gen_range(0..k)));
        }
        pooled.sort_by(f64::total_cmp);
        rows.push(stats.iter().map(|s| s.of_sorted(&pooled)).collect());
    }
    rows
}

/// The seeded bootstrap of the ratios B/A of several statistics at once (one resampling serves
/// every statistic of a metric). Both samples must be non-empty.
///
/// Each side is resampled `resamples` times by drawing as many whole clusters as it has, with
/// replacement, from one ChaCha8 stream seeded with `seed`; clusters (requests) are assumed
/// independent of each other, the values inside one need not be. Per statistic, in the order of
/// `stats`: the change from the samples themselves, the percentile interval of the resampled
/// ratios, and a two-sided normal test of the log ratio with the bootstrap's standard error.
/// Interval and p-value are NaN when a point estimate is not positive or fewer than two
/// resampled ratios are finite and positive.
pub fn bootstrap(
    a: &Clusters,
    b: &Clusters,
    stats: &[Summary],
    resamples: usize,
    confidence: f64,
    seed: u64,
) -> Vec<Outcome> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ra = resample(a, stats, resamples, &mut rng);
    let rb = resample(b, stats, resamples, &mut rng);
    (0..stats.len())
        .map(|j| ratio_outcome(&ra, &rb, j, confidence))
        .collect()
}

/// The same for a statistic that is a ratio of sums over clusters (the mean inter-token latency:
/// Σ span / Σ gaps over requests), from (numerator, denominator) pairs.
pub fn bootstrap_ratio_of_sums(
    a: &[(f64, f64)],
    b: &[(f64, f64)],
    resamples: usize,
    confidence: f64,
    seed: u64,
) -> Outcome {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut side = |pairs: &[(f64, f64)]| {
        let ratio = |it: &mut dyn Iterator<Item = (f64, f64)>| {
            let (n, d) = it.fold((0.0, 0.0), |(n, d), (x, y)| (n + x, d + y));
            vec![n / d]
        };
        let mut rows = vec![ratio(&mut pairs.iter().copied())];
        for _ in 0..resamples {
            let k = pairs.len();
            rows.push(ratio(&mut (0..k).map(|_| pairs[rng.gen_range(0..k)])));
        }
        rows
    };
    let ra = side(a);
    let rb = side(b);
    ratio_outcome(&ra, &rb, 0, confidence)
}

fn ratio_outcome(ra: &[Vec<f64>], rb: &[Vec<f64>], j: usize, confidence: f64) -> Outcome {
    let point_a = ra[0][j];
    let point_b = rb[0][j];
    let change = point_b / point_a - 1.0;
    let mut ratios: Vec<f64> = ra[1..]
        .iter()
        .zip(&rb[1..])
        .map(|(x, y)| y[j] / x[j])
        .filter(|r| r.is_finite() && *r > 0.0)
        .collect();
    if ratios.len() < 2 || !(point_a > 0.0 && point_b > 0.0) {
        return Outcome {
            change,
            low: f64::NAN,
            high: f64::NAN,
            p: f64::NAN,
        };
    }
    ratios.sort_by(f64::total_cmp);
    let alpha = 1.0 - confidence;
    let low = tokenomics_stats::percentile(&ratios, 100.0 * alpha / 2.0) - 1.0;
    let high = tokenomics_stats::percentile(&ratios, 100.0 * (1.0 - alpha / 2.0)) - 1.0;
    let logs: Vec<f64> = ratios.iter().map(|r| r.ln()).collect();
    let mean = logs.iter().sum::<f64>() / logs.len() as f64;
    let var = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (logs.len() - 1) as f64;
    let log_change = (point_b / point_a).ln();
    let p = if var > 0.0 {
        two_sided_normal_p(log_change / var.sqrt())
    } else if log_change == 0.0 {
        1.0
    } else {
        0.0
    };
    Outcome {
        change,
        low,
        high,
        p,
    }
}

/// A mean given as its sample mean, sample standard deviation and count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanStd {
    /// The sample mean.
    pub mean: f64,
    /// The sample standard deviation (n − 1 in the denominator), in the mean's unit.
    pub std: f64,
    /// Values the mean is over.
    pub n: u64,
}

/// Welch's t-test of B's mean against A's. Needs at least two values on each side, finite
/// figures and a non-zero mean of A (else `None`). With no spread on either side the difference
/// is certain: p = 0 when the means differ, 1 when they are equal.
///
/// It assumes independent values and means roughly normal (many values, or values roughly
/// normal themselves). The degrees of freedom are Welch–Satterthwaite's (past 10⁵ the normal is
/// used); the p-value is two-sided, and the interval is the difference's t-interval over
/// |A's mean|.
pub fn welch(a: MeanStd, b: MeanStd, confidence: f64) -> Option<Outcome> {
    if a.n < 2 || b.n < 2 {
        return None;
    }
    if ![a.mean, a.std, b.mean, b.std].iter().all(|x| x.is_finite()) || a.mean == 0.0 {
        return None;
    }
    let (na, nb) = (a.n as f64, b.n as f64);
    let (va, vb) = (a.std * a.std / na, b.std * b.std / nb);
    let diff = b.mean - a.mean;
    let se = (va + vb).sqrt();
    let change = diff / a.mean;
    if se == 0.0 {
        return Some(Outcome {
            change,
            low: change,
            high: change,
            p: if diff == 0.0 { 1.0 } else { 0.0 },
        });
    }
    let df = (va + vb).powi(2) / (va * va / (na - 1.0) + vb * vb / (nb - 1.0));
    let t = diff / se;
    // Past 10^5 degrees of freedom t is the normal (statrs' t quantile does not return at 10^8,
    // which a latency mean over a long run's requests reaches).
    let (p, quantile) = if df > 1e5 {
        let n = Normal::new(0.0, 1.0).ok()?;
        (
            2.0 * (1.0 - n.cdf(t.abs())),
            n.inverse_cdf(0.5 + confidence / 2.0),
        )
    } else {
        let t_dist = StudentsT::new(0.0, 1.0, df).ok()?;
        (
            2.0 * (1.0 - t_dist.cdf(t.abs())),
            t_dist.inverse_cdf(0.5 + confidence / 2.0),
        )
    };
    let p = p.clamp(0.0, 1.0);
    let half = quantile * se;
    let scale = a.mean.abs();
    Some(Outcome {
        change,
        low: (diff - half) / scale,
        high: (diff + half) / scale,
        p,
    })
}

/// The outcome of a rank test across runs, with the runs' medians.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankOutcome {
    /// The change is the Hodges–Lehmann shift over A's median, its interval the shift's
    /// distribution-free interval over A's median (NaN ends where the samples are too small
    /// for an interval at this confidence).
    pub outcome: Outcome,
    /// The median of A's values, in their unit.
    pub median_a: f64,
    /// The median of B's values.
    pub median_b: f64,
}

/// The most pairs (n · m) [`mann_whitney`] takes: its shift and interval sort every pairwise
/// difference. A thousand runs a side; figures of more runs than that are compared by Welch's t.
pub const MAX_PAIRS: usize = 1_000_000;

/// Samples up to this many values in all get the exact distribution of U (when they have no
/// ties); larger ones its normal approximation, which is within a few thousandths there.
const EXACT_LIMIT: usize = 60;

/// The number of arrangements of `n` A-values and `m` B-values with U = u (pairs in which the
/// B-value is the larger), for every u in 0..=n·m: the exact null distribution of U, in counts
/// (as `f64`: C(60, 30) ≈ 1.2·10¹⁷ is exact enough there).
fn u_counts(n: usize, m: usize) -> Vec<f64> {
    // f[i][j] is the distribution for i A-values and j B-values; the largest value of all is
    // either a B-value, above all i A-values (U grows by i), or an A-value (U unchanged).
    let mut f: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); m + 1]; n + 1];
    for i in 0..=n {
        for j in 0..=m {
            let mut d = vec![0.0; i * j + 1];
            if i == 0 || j == 0 {
                d[0] = 1.0;
            } else {
                for (u, x) in f[i][j - 1].iter().enumerate() {
                    d[u + i] += x;
                }
                for (u, x) in f[i - 1][j].iter().enumerate() {
                    d[u] += x;
                }
            }
            f[i][j] = d;
        }
    }
    std::mem::take(&mut f[n][m])
}

/// The median of values (NaN for none).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    tokenomics_stats::percentile(&v, 50.0)
}

/// The Mann–Whitney U test of B's values against A's (two-sided), for figures computed run by
/// run: rank-based, so it assumes nothing of their distribution (a figure that jumps between
/// two levels from run to run, or one disturbed run, cannot decide it), and exact under the
/// null hypothesis that the runs of A and B are exchangeable. The change is the Hodges–Lehmann
/// estimate of the shift B − A (the median of every difference) over A's median, with the
/// shift's distribution-free (Moses) interval. `None` with fewer than two values a side, more
/// than [`MAX_PAIRS`] pairs, a value that is not finite, or a zero median of A.
///
/// The smallest p-value it can give is 2 / C(n + m, n): 0.1 with three runs a side, 0.0022
/// with six.
pub fn mann_whitney(a: &[f64], b: &[f64], confidence: f64) -> Option<RankOutcome> {
    let (n, m) = (a.len(), b.len());
    if n < 2
        || m < 2
        || n.saturating_mul(m) > MAX_PAIRS
        || a.iter().chain(b).any(|x| !x.is_finite())
    {
        return None;
    }
    let (median_a, median_b) = (median(a), median(b));
    if median_a == 0.0 {
        return None;
    }
    let mut diffs: Vec<f64> = b
        .iter()
        .flat_map(|y| a.iter().map(move |x| y - x))
        .collect();
    diffs.sort_by(f64::total_cmp);
    let u: f64 = diffs
        .iter()
        .map(|d| match d.partial_cmp(&0.0) {
            Some(std::cmp::Ordering::Greater) => 1.0,
            Some(std::cmp::Ordering::Equal) => 0.5,
            _ => 0.0,
        })
        .sum();
    let nm = (n * m) as f64;
    let ties = {
        let mut all: Vec<f64> = a.iter().chain(b).copied().collect();
        all.sort_by(f64::total_cmp);
        let mut groups = Vec::new();
        let mut run = 1usize;
        for w in all.windows(2) {
            if w[0] == w[1] {
                run += 1;
            } else {
                groups.push(run);
                run = 1;
            }
        }
        groups.push(run);
        groups
    };
    let tied = ties.iter().any(|&t| t > 1);
    let alpha = 1.0 - confidence;
    // `p` two-sided; `c`: the interval is [D(c), D(nm − c + 1)] (1-based) of the sorted
    // differences D, with c the largest whole number for which P(U < c) ≤ α / 2.
    let (p, c) = if !tied && n + m <= EXACT_LIMIT {
        let counts = u_counts(n, m);
        let total: f64 = counts.iter().sum();
        let cdf: Vec<f64> = counts
            .iter()
            .scan(0.0, |acc, x| {
                *acc += x;
                Some(*acc / total)
            })
            .collect();
        let k = u.round() as usize;
        let below = cdf[k];
        let above = 1.0 - if k == 0 { 0.0 } else { cdf[k - 1] };
        let p = (2.0 * below.min(above)).min(1.0);
        let c = cdf.iter().take_while(|&&x| x <= alpha / 2.0).count();
        (p, c)
    } else {
        let nf = n as f64;
        let mf = m as f64;
        let total = nf + mf;
        let tie_term: f64 =
            ties.iter().map(|&t| (t * t * t - t) as f64).sum::<f64>() / (total * (total - 1.0));
        let var = nm / 12.0 * ((total + 1.0) - tie_term);
        let z_crit = z_quantile(confidence);
        let p = if var > 0.0 {
            // With a continuity correction.
            let z = ((u - nm / 2.0).abs() - 0.5).max(0.0) / var.sqrt();
            two_sided_normal_p(z)
        } else {
            1.0
        };
        let c = (nm / 2.0 - z_crit * (nm * (total + 1.0) / 12.0).sqrt()).floor();
        (p, c.max(0.0) as usize)
    };
    let hl = tokenomics_stats::percentile(&diffs, 50.0);
    let scale = median_a.abs();
    let (low, high) = if c >= 1 && c <= diffs.len() {
        (diffs[c - 1] / scale, diffs[diffs.len() - c] / scale)
    } else {
        (f64::NAN, f64::NAN)
    };
    Some(RankOutcome {
        outcome: Outcome {
            change: hl / scale,
            low,
            high,
            p,
        },
        median_a,
        median_b,
    })
}

/// The pooled two-proportion z-test of B's share `good_b / total_b` against A's: two-sided, a
/// normal approximation that assumes independent requests and more than a handful of good and
/// of bad ones a side. The interval is the Wald interval of the difference over A's share.
/// `None` when a side has no requests or A's share is zero (no relative change).
pub fn two_proportions(
    good_a: u64,
    total_a: u64,
    good_b: u64,
    total_b: u64,
    confidence: f64,
) -> Option<Outcome> {
    if total_a == 0 || total_b == 0 || good_a == 0 {
        return None;
    }
    let (na, nb) = (total_a as f64, total_b as f64);
    let (pa, pb) = (good_a as f64 / na, good_b as f64 / nb);
    let pooled = (good_a + good_b) as f64 / (na + nb);
    let se0 = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    let diff = pb - pa;
    let p = if se0 > 0.0 {
        two_sided_normal_p(diff / se0)
    } else {
        1.0
    };
    let se = (pa * (1.0 - pa) / na + pb * (1.0 - pb) / nb).sqrt();
    let half = z_quantile(confidence) * se;
    Some(Outcome {
        change: diff / pa,
        low: (diff - half) / pa,
        high: (diff + half) / pa,
        p,
    })
}

/// Holm's step-down adjustment: the p-values sorted ascending, the i-th (from 0) multiplied by
/// m − i, made monotone and capped at 1; returned in the input's order. NaN stays NaN and is
/// not counted in the family.
///
/// ```
/// use tokenomics_compare::stats::holm;
///
/// // Sorted: 0.005 · 4, 0.01 · 3, 0.03 · 2, 0.04 · 1 → 0.02, 0.03, 0.06, 0.06 (made monotone).
/// let adjusted = holm(&[0.01, 0.04, 0.03, 0.005, f64::NAN]);
/// let expected = [0.03, 0.06, 0.06, 0.02];
/// for (a, e) in adjusted.iter().zip(expected) {
///     assert!((a - e).abs() < 1e-12);
/// }
/// assert!(adjusted[4].is_nan());
/// ```
pub fn holm(p: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..p.len()).filter(|&i| !p[i].is_nan()).collect();
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
    let m = order.len();
    let mut out = vec![f64::NAN; p.len()];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn holm_matches_the_textbook_example() {
        // p = 0.01, 0.04, 0.03, 0.005 → sorted 0.005·4, 0.01·3, 0.03·2, 0.04·1 = 0.02, 0.03,
        // 0.06, 0.06 (monotone).
        let adj = holm(&[0.01, 0.04, 0.03, 0.005]);
        let want = [0.03, 0.06, 0.06, 0.02];
        for (a, w) in adj.iter().zip(want) {
            assert!(close(*a, w, 1e-12), "{adj:?}");
        }
        let with_nan = holm(&[0.5, f64::NAN, 0.01]);
        assert!(with_nan[1].is_nan());
        assert!(close(with_nan[2], 0.02, 1e-12) && close(with_nan[0], 0.5, 1e-12));
    }

    #[test]
    fn welch_matches_a_worked_example() {
        // Two samples: A = 1..=5 (mean 3, s² 2.5), B = 3..=9 step 1.5 → mean 6, s² 5.625.
        let a = MeanStd {
            mean: 3.0,
            std: 2.5f64.sqrt(),
            n: 5,
        };
        let b = MeanStd {
            mean: 6.0,
            std: 5.625f64.sqrt(),
            n: 5,
        };
        let o = welch(a, b, 0.95).unwrap();
        // t = 3 / sqrt(0.5 + 1.125) = 2.3534; df = 1.625² / (0.25/4 + 1.265625/4) = 6.97;
        // two-sided p = 0.05099, t(0.975, 6.97) = 2.3668: the difference's interval is
        // 3 ± 3.017, over A's mean 3: [−0.00568, 2.00568].
        assert!(close(o.p, 0.05099, 2e-4), "{o:?}");
        assert!(close(o.change, 1.0, 1e-12));
        assert!(
            close(o.low, -0.00568, 2e-4) && close(o.high, 2.00568, 2e-4),
            "{o:?}"
        );
        assert!(welch(MeanStd { n: 1, ..a }, b, 0.95).is_none());
        let flat = MeanStd {
            mean: 3.0,
            std: 0.0,
            n: 3,
        };
        assert_eq!(welch(flat, flat, 0.95).unwrap().p, 1.0);
        assert_eq!(
            welch(flat, MeanStd { mean: 4.0, ..flat }, 0.95).unwrap().p,
            0.0
        );
        // Means over a long run's 128 million values each: the normal's quantile (1.96), at once.
        let big = MeanStd {
            mean: 1.0,
            std: 1.0,
            n: 128_000_000,
        };
        let o = welch(big, MeanStd { mean: 1.001, ..big }, 0.95).unwrap();
        let se = (2.0f64 / 128e6).sqrt();
        assert!(close(o.high - o.change, 1.959964 * se, 1e-4), "{o:?}");
        assert!(o.p < 0.05, "{o:?}");
    }

    /// Every split of the pooled values into n and m, for the exact p-value by brute force.
    fn brute_force_p(a: &[f64], b: &[f64]) -> f64 {
        let all: Vec<f64> = a.iter().chain(b).copied().collect();
        let (n, total) = (a.len(), all.len());
        let u_of = |xa: &[f64], xb: &[f64]| {
            xb.iter()
                .flat_map(|y| xa.iter().map(move |x| usize::from(y > x)))
                .sum::<usize>()
        };
        let observed = u_of(a, b);
        let (mut below, mut above, mut splits) = (0usize, 0usize, 0usize);
        for mask in 0u32..(1 << total) {
            if mask.count_ones() as usize != n {
                continue;
            }
            let xa: Vec<f64> = (0..total)
                .filter(|i| mask >> i & 1 == 1)
                .map(|i| all[i])
                .collect();
            let xb: Vec<f64> = (0..total)
                .filter(|i| mask >> i & 1 == 0)
                .map(|i| all[i])
                .collect();
            let u = u_of(&xa, &xb);
            below += usize::from(u <= observed);
            above += usize::from(u >= observed);
            splits += 1;
        }
        (2.0 * below.min(above) as f64 / splits as f64).min(1.0)
    }

    #[test]
    fn mann_whitney_is_exact_for_small_samples() {
        // Complete separation of five and five: p = 2 / C(10, 5) = 2 / 252.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [6.0, 7.0, 8.0, 9.0, 10.0];
        let r = mann_whitney(&a, &b, 0.95).unwrap();
        assert!(close(r.outcome.p, 2.0 / 252.0, 1e-12), "{r:?}");
        // Hodges–Lehmann: the median of the 25 differences 1..=9 is 5, over A's median 3.
        assert!(close(r.outcome.change, 5.0 / 3.0, 1e-12), "{r:?}");
        assert_eq!((r.median_a, r.median_b), (3.0, 8.0));
        // Interleaved samples against the brute force over every split.
        let a = [1.1, 2.3, 3.2, 4.8, 7.5];
        let b = [2.0, 3.9, 5.5, 6.1, 7.0, 8.2];
        let r = mann_whitney(&a, &b, 0.95).unwrap();
        assert!(close(r.outcome.p, brute_force_p(&a, &b), 1e-12), "{r:?}");
        assert!(mann_whitney(&[1.0], &b, 0.95).is_none());
        assert!(mann_whitney(&[0.0, 0.0], &b, 0.95).is_none());
        // Three runs a side can never be significant: 2 / C(6, 3) = 0.1.
        let r = mann_whitney(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], 0.95).unwrap();
        assert!(
            close(r.outcome.p, 0.1, 1e-12) && r.outcome.low.is_nan(),
            "{r:?}"
        );
    }

    #[test]
    fn the_shifts_interval_covers_the_shift_and_one_wild_run_does_not_decide() {
        // Ten runs 10% apart (a shift of 10 on 100), one of A's disturbed.
        let mut runs_a: Vec<f64> = (0..10).map(|i| 100.0 + (i * 7 % 10) as f64 * 0.3).collect();
        let runs_b: Vec<f64> = runs_a.iter().map(|x| x + 10.0).collect();
        runs_a[4] = 160.0;
        let r = mann_whitney(&runs_a, &runs_b, 0.95).unwrap();
        assert!(r.outcome.p < 0.002, "{r:?}");
        assert!(
            r.outcome.low < 0.1 && 0.1 < r.outcome.high && r.outcome.low > 0.0,
            "{r:?}"
        );
        // The same runs against themselves: no shift, p = 1.
        let same = mann_whitney(&runs_b, &runs_b, 0.95).unwrap();
        assert!(
            same.outcome.change == 0.0 && same.outcome.p > 0.9,
            "{same:?}"
        );
        // Large samples take the normal approximation: close to the exact p-value.
        let a: Vec<f64> = (0..40).map(|i| f64::from(i * 37 % 40)).collect();
        let b: Vec<f64> = (0..40).map(|i| f64::from(i * 13 % 40) + 6.5).collect();
        let r = mann_whitney(&a, &b, 0.95).unwrap();
        let counts = u_counts(40, 40);
        let total: f64 = counts.iter().sum();
        let u = b
            .iter()
            .flat_map(|y| a.iter().map(move |x| usize::from(y > x)))
            .sum::<usize>();
        let exact = 2.0 * counts[u..].iter().sum::<f64>() / total;
        assert!(
            (r.outcome.p - exact).abs() < 0.1 * exact,
            "{} vs {exact}",
            r.outcome.p
        );
    }

    #[test]
    fn two_proportions_matches_a_worked_example() {
        // 90/100 against 80/100: pooled 0.85, z = −0.1 / sqrt(0.1275·0.02) = −1.980, p = 0.0477.
        let o = two_proportions(90, 100, 80, 100, 0.95).unwrap();
        assert!(close(o.p, 0.0477, 5e-4), "{o:?}");
        assert!(close(o.change, -0.1 / 0.9, 1e-12));
        assert!(o.high < 0.0);
    }

    #[test]
    fn the_bootstrap_is_reproducible_and_finds_a_shift() {
        // Two samples of 300 values, B shifted up by 10%.
        let a = Clusters::singles((0..300).map(|i| 1.0 + (i * 7 % 300) as f64 / 300.0));
        let b = Clusters::singles(a.values.iter().map(|x| x * 1.1));
        let stats = [
            Summary::Mean,
            Summary::Percentile(50.0),
            Summary::Percentile(99.0),
        ];
        let o1 = bootstrap(&a, &b, &stats, 500, 0.95, 7);
        let o2 = bootstrap(&a, &b, &stats, 500, 0.95, 7);
        assert_eq!(o1, o2, "the same seed gives the same answer");
        for o in &o1 {
            assert!(close(o.change, 0.1, 1e-9), "{o:?}");
            assert!(o.low < 0.1 && o.high > 0.1 && o.low > 0.0, "{o:?}");
            assert!(o.p < 1e-3, "{o:?}");
        }
        // A sample against itself: no change, p = 1.
        let same = bootstrap(&a, &a, &stats, 500, 0.95, 7);
        assert!(
            same.iter().all(|o| o.change == 0.0 && o.p > 0.5),
            "{same:?}"
        );
    }

    #[test]
    fn the_ratio_of_sums_bootstrap_weighs_requests_by_their_tokens() {
        // Request spans and gaps: the mean is Σ span / Σ gaps, not the mean of the ratios.
        let a: Vec<(f64, f64)> = (0..200)
            .map(|i| (0.01 * (1 + i % 3) as f64, (1 + i % 3) as f64))
            .collect();
        let b: Vec<(f64, f64)> = a.iter().map(|&(s, g)| (s * 1.2, g)).collect();
        let o = bootstrap_ratio_of_sums(&a, &b, 300, 0.95, 1);
        assert!(close(o.change, 0.2, 1e-9) && o.p < 1e-3, "{o:?}");
    }
}
