//! What a sweep and an SLO search decided, beside the levels they ran: `metadata.sweep` and
//! `metadata.slo_search`.
//!
//! Both are experiments whose next level depends on the last one, so the levels alone do not say
//! why they are the levels they are. These blocks do: the sweep's end points and why it stopped,
//! the search's objectives, every probe with its verdict, and the answer as an interval.

use serde::{Deserialize, Serialize};

/// How a sweep spaces its open-loop rates between the synchronous and the saturation point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Spacing {
    /// Equal steps in requests per second.
    #[default]
    Linear,
    /// Equal ratios.
    Geometric,
}

/// `metadata.sweep`: how a sweep (`--sweep`) chose its levels, and why it stopped early if it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepBlock {
    /// Open-loop rates asked for between the end points.
    pub points: u64,
    /// How the rates between the end points are spaced.
    pub spacing: Spacing,
    /// Successful requests per second at concurrency 1 (the synchronous point).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronous_rps: Option<f64>,
    /// Successful requests per second at saturation: the closed loop at
    /// `saturation_concurrency`, or `--sweep_max` when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturation_rps: Option<f64>,
    /// The closed loop's concurrency at the saturation point (absent with `--sweep_max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturation_concurrency: Option<u64>,
    /// The saturation rate the simulator's roofline predicts for the workload (runs against the
    /// simulator): theory beside the measured `saturation_rps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_saturation_rps: Option<f64>,
    /// The open-loop rates, requests per second, in the order planned.
    #[serde(default)]
    pub rates: Vec<f64>,
    /// Why the sweep stopped before its last rate (absent: it ran them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<String>,
}

/// Which load an SLO search varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SearchAxis {
    /// Open-loop request rate, requests per second.
    #[default]
    Rate,
    /// Closed-loop concurrency.
    Concurrency,
}

/// One objective of an SLO: a statistic of a latency at most a threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// `ttft`, `tpot`, `itl` or `e2el`.
    pub metric: String,
    /// `mean`, `median`, or `pNN` (a percentile between 0 and 100).
    pub statistic: String,
    /// The most the statistic may be, milliseconds.
    pub threshold_ms: f64,
}

/// One level an SLO search ran, with its verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloProbe {
    /// The level's key in `results`.
    pub level: String,
    /// The load: requests per second or concurrency.
    pub value: f64,
    /// Whether every objective (and the attainment share, when set) held at this level.
    pub passed: bool,
    /// Each objective's measured statistic, milliseconds, in the order of `objectives` (`null`
    /// when the level did not measure it).
    pub measured_ms: Vec<Option<f64>>,
    /// The share of successful requests that met every threshold (with `attainment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attainment: Option<f64>,
    /// Why the probe failed (absent when it passed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `metadata.slo_search`: the highest load at which the objectives held (`--slo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloSearchBlock {
    /// The load the search varied.
    pub axis: SearchAxis,
    /// The objectives every probe was judged against, in the order of `measured_ms`.
    pub objectives: Vec<Objective>,
    /// The least share of requests that must meet every threshold at once (`--slo_attainment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attainment: Option<f64>,
    /// Requests each probe measured at least, so that its highest percentile is meaningful.
    pub min_requests: u64,
    /// The search stops when `lowest_failing / highest_passing - 1` is at most this.
    pub tolerance: f64,
    /// The highest load seen passing (absent: none passed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highest_passing: Option<f64>,
    /// The lowest load seen failing above it (absent: none failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lowest_failing: Option<f64>,
    /// The key of the level at `highest_passing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Requests per second that met every objective at `highest_passing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goodput_rps: Option<f64>,
    /// Every probe, in the order run.
    pub probes: Vec<SloProbe>,
    /// How the search ended, in a sentence.
    pub outcome: String,
}
