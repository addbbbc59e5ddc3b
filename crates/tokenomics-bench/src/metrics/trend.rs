//! Whether a level's server kept up: a least-squares line of latency against time, built as
//! requests finish (bounded memory: sums per time bucket, at most a thousand buckets).
//!
//! Below its capacity a server's latencies scatter around a level; past it, the excess queues and
//! each request waits a little longer than the one before, for as long as the level lasts. The
//! slope of latency against scheduled time, its standard error, and the growth it implies over
//! the level tell the two apart; see [`LatencyTrend`] for the rule.

use tokenomics_stats::LatencyTrend;

/// The most time buckets a fit keeps; past it, neighbours merge and the width doubles.
const MAX_BUCKETS: usize = 1024;

/// Sums of one time bucket's points, relative to the bucket's start (small numbers, so the
/// sums keep their precision however long the run).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sums {
    n: u64,
    x: f64,
    y: f64,
    xx: f64,
    xy: f64,
    yy: f64,
}

impl Sums {
    /// Adds `other`, whose x values are `shift` seconds further along than this one's origin.
    fn absorb(&mut self, other: &Sums, shift: f64) {
        let n = other.n as f64;
        self.n += other.n;
        self.xx += other.xx + 2.0 * shift * other.x + shift * shift * n;
        self.xy += other.xy + shift * other.y;
        self.x += other.x + shift * n;
        self.y += other.y;
        self.yy += other.yy;
    }
}

/// A line fitted, as points arrive, to the second half of the level (the points from the middle
/// of the time span on): a server that starts empty fills up through the first part of a level,
/// and its latencies rise with the load until it is steady, which is not falling behind; a
/// server that cannot keep up is still falling behind in the second half.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendFit {
    width: f64,
    buckets: Vec<Sums>,
    max_x: f64,
}

impl Default for TrendFit {
    fn default() -> Self {
        Self {
            width: 1.0,
            buckets: Vec::new(),
            max_x: f64::NEG_INFINITY,
        }
    }
}

impl TrendFit {
    /// Adds a point: `x` seconds from the run's start (not negative), `y` the latency, seconds.
    pub fn push(&mut self, x: f64, y: f64) {
        if !(x.is_finite() && y.is_finite() && x >= 0.0) {
            return;
        }
        let mut i = (x / self.width) as usize;
        while i >= MAX_BUCKETS {
            self.coarsen();
            i = (x / self.width) as usize;
        }
        if i >= self.buckets.len() {
            self.buckets.resize(i + 1, Sums::default());
        }
        let dx = x - i as f64 * self.width;
        let b = &mut self.buckets[i];
        b.n += 1;
        b.x += dx;
        b.y += y;
        b.xx += dx * dx;
        b.xy += dx * y;
        b.yy += y * y;
        self.max_x = self.max_x.max(x);
    }

    fn coarsen(&mut self) {
        let width = self.width;
        let merged = self
            .buckets
            .chunks(2)
            .map(|pair| {
                let mut s = pair[0];
                if let Some(second) = pair.get(1) {
                    s.absorb(second, width);
                }
                s
            })
            .collect();
        self.buckets = merged;
        self.width *= 2.0;
    }

    /// The fitted trend (`None` with fewer than three points in the second half, or no spread in
    /// time there).
    pub fn trend(&self) -> Option<LatencyTrend> {
        if self.buckets.is_empty() {
            return None;
        }
        // The buckets from the middle of the span on, summed with x from the first one's start.
        let first = ((self.max_x / 2.0) / self.width) as usize;
        let origin = first as f64 * self.width;
        let mut s = Sums::default();
        for (k, b) in self.buckets.iter().enumerate().skip(first) {
            s.absorb(b, k as f64 * self.width - origin);
        }
        if s.n < 3 {
            return None;
        }
        let n = s.n as f64;
        let (mean_x, mean_y) = (s.x / n, s.y / n);
        let sxx = s.xx - n * mean_x * mean_x;
        let sxy = s.xy - n * mean_x * mean_y;
        let syy = s.yy - n * mean_y * mean_y;
        if sxx <= 1e-12 * n {
            return None;
        }
        let slope = sxy / sxx;
        // Residual variance with n − 2 degrees of freedom; the slope's standard error from it.
        let residual = (syy - slope * sxy).max(0.0) / (n - 2.0);
        let se = (residual / sxx).sqrt();
        let t = if se > 0.0 {
            slope / se
        } else if slope > 0.0 {
            f64::INFINITY
        } else {
            f64::NAN
        };
        // What the second half's slope implies over the whole level.
        let growth = slope * self.max_x;
        let oversaturated = t > LatencyTrend::SIGNIFICANT_T
            && growth > LatencyTrend::MATERIAL_SHARE * mean_y.max(0.0);
        Some(LatencyTrend {
            samples: s.n,
            mean_seconds: mean_y,
            slope,
            // An exact line (no scatter) has no finite t; JSON keeps it as null.
            t: if t.is_finite() { t } else { f64::NAN },
            growth_seconds: growth,
            oversaturated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_scatter_is_not_oversaturated() {
        let mut f = TrendFit::default();
        for i in 0..1000 {
            // 50 ms ± 5 ms, alternating: no trend.
            let y = 0.050 + if i % 2 == 0 { 0.005 } else { -0.005 };
            f.push(i as f64 * 0.01, y);
        }
        let t = f.trend().unwrap();
        assert!(t.slope.abs() < 1e-4, "{t:?}");
        assert!(!t.oversaturated);
        assert!((t.mean_seconds - 0.050).abs() < 1e-9);
    }

    #[test]
    fn a_growing_queue_is_oversaturated_and_its_growth_is_the_slope_times_the_span() {
        let mut f = TrendFit::default();
        // 10 s of sends; the wait grows 20 ms per second (200 ms over the level) above 50 ms,
        // with ± 5 ms of scatter.
        for i in 0..=1000 {
            let x = i as f64 * 0.01;
            let y = 0.050 + 0.020 * x + if i % 2 == 0 { 0.005 } else { -0.005 };
            f.push(x, y);
        }
        let t = f.trend().unwrap();
        assert!((t.slope - 0.020).abs() < 1e-4, "{t:?}");
        assert!((t.growth_seconds - 0.200).abs() < 1e-3, "{t:?}");
        assert!(t.t > 100.0 && t.oversaturated, "{t:?}");
    }

    #[test]
    fn a_small_certain_growth_is_not_called_oversaturation() {
        // 2 ms of growth over a 100 ms mean: certain, but not material.
        let mut f = TrendFit::default();
        for i in 0..=1000 {
            let x = i as f64 * 0.01;
            f.push(x, 0.100 + 0.0002 * x);
        }
        let t = f.trend().unwrap();
        assert!(t.t.is_nan() || t.t > 4.0);
        assert!(!t.oversaturated, "{t:?}");
    }

    #[test]
    fn a_server_filling_up_then_steady_is_not_oversaturated() {
        // Latency rises from 30 to 60 ms over the first 8 s (the batch filling), then stays.
        let mut f = TrendFit::default();
        for i in 0..=2000 {
            let x = i as f64 * 0.01;
            let y = 0.030 + 0.030 * (x / 8.0).min(1.0) + if i % 2 == 0 { 0.002 } else { -0.002 };
            f.push(x, y);
        }
        let t = f.trend().unwrap();
        assert!(!t.oversaturated, "{t:?}");
        assert!((t.mean_seconds - 0.060).abs() < 1e-3, "{t:?}");
    }

    #[test]
    fn a_long_run_coarsens_its_buckets_and_keeps_the_slope() {
        let mut f = TrendFit::default();
        for i in 0..=50_000 {
            let x = i as f64 * 0.1; // 5,000 s
            f.push(x, 0.1 + 0.001 * x + if i % 2 == 0 { 0.01 } else { -0.01 });
        }
        assert!(f.buckets.len() <= MAX_BUCKETS);
        let t = f.trend().unwrap();
        assert!((t.slope - 0.001).abs() < 1e-6, "{t:?}");
        assert!((t.growth_seconds - 5.0).abs() < 0.01, "{t:?}");
        assert!(t.oversaturated);
    }

    #[test]
    fn too_few_points_or_one_instant_give_no_trend() {
        let mut f = TrendFit::default();
        f.push(0.0, 0.1);
        f.push(1.0, 0.2);
        assert!(f.trend().is_none());
        let mut g = TrendFit::default();
        for _ in 0..10 {
            g.push(1.0, 0.1);
        }
        assert!(g.trend().is_none());
    }
}
