//! Summaries of samples.
//!
//! Conventions (fixed, documented in the book's Metrics chapter): the standard deviation is the
//! *sample* standard deviation (n − 1 in the denominator) and is 0 for a single value; percentiles
//! use linear interpolation between the two closest ranks, as numpy's `percentile` does by default.
//! An empty sample set has no figures: every field is NaN, which the JSON documents write as
//! `null`.

use serde::{Deserialize, Serialize};
use statrs::statistics::Statistics;

/// The figures of one sample set, computed once.
#[derive(Debug, Clone)]
pub struct Summary {
    sorted: Vec<f64>,
    mean: f64,
    std: f64,
}

impl Summary {
    /// Summarises `samples`. NaN samples are ignored.
    pub fn new(samples: impl IntoIterator<Item = f64>) -> Self {
        let mut sorted: Vec<f64> = samples.into_iter().filter(|x| !x.is_nan()).collect();
        sorted.sort_by(f64::total_cmp);
        let (mean, std) = match sorted.len() {
            0 => (f64::NAN, f64::NAN),
            1 => (sorted[0], 0.0),
            _ => (sorted.iter().mean(), sorted.iter().std_dev()),
        };
        Self { sorted, mean, std }
    }

    /// The number of samples kept (NaN samples excluded).
    pub fn count(&self) -> usize {
        self.sorted.len()
    }
    /// Arithmetic mean; NaN for no samples.
    pub fn mean(&self) -> f64 {
        self.mean
    }
    /// Sample standard deviation (n − 1), 0 for one value, NaN for none.
    pub fn std(&self) -> f64 {
        self.std
    }
    /// Smallest sample; NaN for no samples.
    pub fn min(&self) -> f64 {
        self.sorted.first().copied().unwrap_or(f64::NAN)
    }
    /// Largest sample; NaN for no samples.
    pub fn max(&self) -> f64 {
        self.sorted.last().copied().unwrap_or(f64::NAN)
    }
    /// The `q`-th percentile (`q` in 0..=100), linear interpolation; NaN when empty.
    pub fn percentile(&self, q: f64) -> f64 {
        percentile(&self.sorted, q)
    }

    /// Mean and std only: the shape of every statistic in the original chat document.
    pub fn mean_std(&self) -> Stat {
        Stat {
            mean: self.mean,
            std: self.std,
            min: None,
            max: None,
            ci: None,
        }
    }

    /// [`Summary::mean_std`] with the mean's Student's t interval at `confidence` (two values
    /// or more).
    pub fn mean_std_ci(&self, confidence: f64) -> Stat {
        Stat {
            ci: crate::intervals::t_interval(self.mean, self.std, self.count(), confidence),
            ..self.mean_std()
        }
    }

    /// Mean, std, min and max: the shape of the embedding document's statistics.
    pub fn stat(&self) -> Stat {
        Stat {
            mean: self.mean,
            std: self.std,
            min: Some(self.min()),
            max: Some(self.max()),
            ci: None,
        }
    }

    /// [`Summary::stat`] with the mean's Student's t interval at `confidence` (two values or
    /// more).
    pub fn stat_ci(&self, confidence: f64) -> Stat {
        Stat {
            ci: crate::intervals::t_interval(self.mean, self.std, self.count(), confidence),
            ..self.stat()
        }
    }

    /// Mean, std, min, max and the latency percentiles.
    pub fn distribution(&self) -> Distribution {
        Distribution {
            count: self.count() as u64,
            mean: self.mean,
            std: self.std,
            min: self.min(),
            max: self.max(),
            p50: self.percentile(50.0),
            p90: self.percentile(90.0),
            p95: self.percentile(95.0),
            p99: self.percentile(99.0),
            p99_9: self.percentile(99.9),
            ci: None,
        }
    }

    /// [`Summary::distribution`] with its confidence intervals at `confidence` (the mean's t
    /// interval, each percentile's order-statistic interval).
    pub fn distribution_ci(&self, confidence: f64) -> Distribution {
        Distribution {
            ci: crate::intervals::DistributionCi::new(
                self.count(),
                self.mean,
                self.std,
                confidence,
                |r| self.sorted[r],
            ),
            ..self.distribution()
        }
    }
}

/// The `q`-th percentile (0..=100) of already sorted values, interpolating linearly between the
/// closest ranks (numpy's default). NaN for an empty slice; the single value for one sample.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let rank = (q.clamp(0.0, 100.0) / 100.0) * (n - 1) as f64;
            let lo = rank.floor() as usize;
            let hi = rank.ceil() as usize;
            sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
        }
    }
}

/// `{"mean": …, "std": …}` with optional `min`/`max`. NaN is written as `null` and read back as
/// NaN, so a level where nothing succeeded still has every field the original had.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// Mean of the samples, in their unit; NaN (`null`) when there were none.
    #[serde(deserialize_with = "nullable_f64")]
    pub mean: f64,
    /// Sample standard deviation (n − 1), 0 for one sample; NaN (`null`) for none.
    #[serde(deserialize_with = "nullable_f64")]
    pub std: f64,
    /// Smallest sample; absent from the mean ± std shape.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "nullable_opt_f64"
    )]
    pub min: Option<f64>,
    /// Largest sample; absent from the mean ± std shape.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "nullable_opt_f64"
    )]
    pub max: Option<f64>,
    /// The mean's confidence interval over runs (Student's t; two runs or more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<[f64; 2]>,
}

/// A latency distribution: count, mean, std, min, max and percentiles, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Number of samples.
    pub count: u64,
    /// Mean, seconds; NaN (`null`) when `count` is 0, as are all the figures below.
    #[serde(deserialize_with = "nullable_f64")]
    pub mean: f64,
    /// Sample standard deviation (n − 1), seconds; 0 for one sample.
    #[serde(deserialize_with = "nullable_f64")]
    pub std: f64,
    /// Smallest sample, seconds.
    #[serde(deserialize_with = "nullable_f64")]
    pub min: f64,
    /// Largest sample, seconds.
    #[serde(deserialize_with = "nullable_f64")]
    pub max: f64,
    /// Median (linear interpolation, see [`percentile`]), seconds.
    #[serde(deserialize_with = "nullable_f64")]
    pub p50: f64,
    /// 90th percentile, seconds.
    #[serde(deserialize_with = "nullable_f64")]
    pub p90: f64,
    /// 95th percentile, seconds.
    #[serde(deserialize_with = "nullable_f64")]
    pub p95: f64,
    /// 99th percentile, seconds.
    #[serde(deserialize_with = "nullable_f64")]
    pub p99: f64,
    /// 99.9th percentile, seconds (JSON key `p99.9`).
    #[serde(rename = "p99.9", deserialize_with = "nullable_f64")]
    pub p99_9: f64,
    /// How sure the mean and each percentile are (absent when not asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<crate::intervals::DistributionCi>,
}

pub(crate) fn nullable_f64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

fn nullable_opt_f64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(Some(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_std_uses_n_minus_one() {
        let s = Summary::new([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(s.mean(), 5.0);
        // Population std is 2.0; the sample std is sqrt(32/7).
        assert!((s.std() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn one_value_has_zero_std_and_empty_is_nan() {
        let one = Summary::new([3.5]);
        assert_eq!(
            (one.mean(), one.std(), one.percentile(99.0)),
            (3.5, 0.0, 3.5)
        );
        let none = Summary::new([]);
        assert!(none.mean().is_nan() && none.std().is_nan() && none.percentile(50.0).is_nan());
    }

    #[test]
    fn percentiles_match_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], [50, 90, 99]) == [2.5, 3.7, 3.97]
        let s = Summary::new([4.0, 1.0, 3.0, 2.0]);
        assert!((s.percentile(50.0) - 2.5).abs() < 1e-12);
        assert!((s.percentile(90.0) - 3.7).abs() < 1e-12);
        assert!((s.percentile(99.0) - 3.97).abs() < 1e-12);
        assert_eq!(s.percentile(0.0), 1.0);
        assert_eq!(s.percentile(100.0), 4.0);
    }

    #[test]
    fn nan_round_trips_as_null() {
        let stat = Summary::new([]).mean_std();
        let json = serde_json::to_string(&stat).unwrap();
        assert_eq!(json, r#"{"mean":null,"std":null}"#);
        let back: Stat = serde_json::from_str(&json).unwrap();
        assert!(back.mean.is_nan());
    }
}
