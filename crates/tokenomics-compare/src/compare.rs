//! Comparing result documents level by level, metric by metric.
//!
//! The first input is the baseline; every other one is compared with it. Levels match when
//! they have the same mode and the same key (batch size, concurrency or request rate). For
//! each metric of a matched level a [`Row`] holds the baseline's value, the other's, the
//! relative change B/A − 1 with its confidence interval, the p-value of the test that fits the
//! data, that p-value corrected over every test of the comparison (Holm), and the verdict:
//!
//! | data at hand | test |
//! |---|---|
//! | per-request records on both sides, two runs or more each (`--num_runs`) | each run's figure from its own requests (latency mean and p50/p90/p95/p99, request tokens/s), compared across runs: Mann–Whitney U from six runs a side, Welch's t below |
//! | per-request records on both sides, one run on a side (`--requests_file`, or a tool's per-request data) | seeded bootstrap over requests: latency mean and p50/p90/p95/p99, request tokens/s |
//! | the documents only | Welch's t on means: per-run figures over runs (output tokens/s, requests/s, steady state), per-request figures over requests (latency means, request tokens/s) |
//! | goodput | two-proportion z-test on good / measured requests (same objectives only) |
//!
//! A percentile is tested only with enough values for it to mean something (at least
//! 3 / (1 − q): 300 for a p99), and never from summaries. A figure that cannot be tested is
//! shown with why.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;
use tokenomics_stats::{ChatDocument, ChatLatency, ChatLevel, Distribution, Load, Mode, Stat};

use crate::import::{Format, Imported, Input};
use crate::records::{Clusters, LevelSamples, RequestRecord};
use crate::stats::{self, MeanStd, Outcome, Summary};
use crate::{Error, Result};

/// How a comparison is made.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareOptions {
    /// Confidence of the intervals; the tests' level is 1 − confidence.
    pub confidence: f64,
    /// Bootstrap resamples per metric.
    pub resamples: usize,
    /// Seed of the bootstrap (the same inputs and seed give the same comparison).
    pub seed: u64,
    /// Noise threshold, as a share (0.02: 2%): a change is called faster or slower only when
    /// its whole interval lies beyond ± this (criterion's rule). Two setups are never exactly
    /// alike: two benchmarks of one server on one machine differ by a few percent in a figure
    /// now and then (on the simulator, in a tail percentile or in E2EL, by 3–5%), and with
    /// enough data such a difference is significant but says nothing about the servers.
    pub threshold: f64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        Self {
            confidence: 0.95,
            resamples: 1000,
            seed: 0x746f_6b65_6e73,
            threshold: 0.02,
        }
    }
}

/// A figure of a level, in this project's definitions (an imported file's figures are mapped
/// onto them). Throughput is per second of wall-clock time, latencies are seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// `throughput.batch_tokens_per_second`: output tokens / run time, per run.
    OutputTokensPerSecond,
    /// `throughput.requests_per_second`: successful requests / the run's first send → last
    /// end, per run.
    RequestsPerSecond,
    /// `throughput.steady_state.output_tokens_per_second`: output tokens per second inside the
    /// window in which requests in flight stayed near the target, per run.
    SteadyOutputTokensPerSecond,
    /// `throughput.request_tokens_per_second`: each request's tokens / its E2EL.
    RequestTokensPerSecond,
    /// Time to first token: send → first content, seconds, per request.
    Ttft,
    /// Inter-token latency: the gaps between a request's tokens, seconds (a request's gaps
    /// stay together when resampled).
    Itl,
    /// Time per output token after the first: (E2EL − TTFT) / (tokens − 1), seconds, per
    /// request.
    Tpot,
    /// End-to-end latency: send → end of the response, seconds, per request.
    E2el,
    /// `goodput.share`: measured requests that met every objective, a share from 0 to 1.
    GoodputShare,
}

impl Metric {
    /// The name reports give it (`"TTFT"`, `"output tokens/s"`).
    pub fn label(self) -> &'static str {
        match self {
            Metric::OutputTokensPerSecond => "output tokens/s",
            Metric::RequestsPerSecond => "requests/s",
            Metric::SteadyOutputTokensPerSecond => "steady-state output tokens/s",
            Metric::RequestTokensPerSecond => "request tokens/s",
            Metric::Ttft => "TTFT",
            Metric::Itl => "ITL",
            Metric::Tpot => "TPOT",
            Metric::E2el => "E2EL",
            Metric::GoodputShare => "goodput share",
        }
    }

    /// Whether a higher value is better (throughput, goodput) or worse (latency).
    pub fn higher_is_better(self) -> bool {
        !matches!(
            self,
            Metric::Ttft | Metric::Itl | Metric::Tpot | Metric::E2el
        )
    }

    /// Whether values are seconds.
    pub fn is_latency(self) -> bool {
        !self.higher_is_better()
    }
}

/// Which statistic of a metric a row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// The mean (the only statistic of throughput and goodput).
    Mean,
    /// The median. Percentiles interpolate linearly between closest ranks (numpy's default).
    P50,
    /// The 90th percentile.
    P90,
    /// The 95th percentile.
    P95,
    /// The 99th percentile.
    P99,
}

impl Statistic {
    /// Every statistic, the mean first and then the percentiles ascending: the rows of a
    /// latency metric, in their order.
    pub const ALL: [Statistic; 5] = [
        Statistic::Mean,
        Statistic::P50,
        Statistic::P90,
        Statistic::P95,
        Statistic::P99,
    ];

    /// The name reports give it (`"mean"`, `"p99"`).
    pub fn label(self) -> &'static str {
        match self {
            Statistic::Mean => "mean",
            Statistic::P50 => "p50",
            Statistic::P90 => "p90",
            Statistic::P95 => "p95",
            Statistic::P99 => "p99",
        }
    }

    fn summary(self) -> Summary {
        match self {
            Statistic::Mean => Summary::Mean,
            Statistic::P50 => Summary::Percentile(50.0),
            Statistic::P90 => Summary::Percentile(90.0),
            Statistic::P95 => Summary::Percentile(95.0),
            Statistic::P99 => Summary::Percentile(99.0),
        }
    }

    /// Values a sample needs for the statistic to be tested: 3 / (1 − q) for a percentile q
    /// (three values beyond it), two for a mean.
    pub fn min_values(self) -> usize {
        match self {
            Statistic::Mean => 2,
            Statistic::P50 => 6,
            Statistic::P90 => 30,
            Statistic::P95 => 60,
            Statistic::P99 => 300,
        }
    }

    fn of(self, d: &Distribution) -> f64 {
        match self {
            Statistic::Mean => d.mean,
            Statistic::P50 => d.p50,
            Statistic::P90 => d.p90,
            Statistic::P95 => d.p95,
            Statistic::P99 => d.p99,
        }
    }
}

/// The test behind a row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Test {
    /// Seeded bootstrap over requests (whole requests resampled).
    Bootstrap {
        /// Requests in the baseline's sample (the units drawn).
        requests_a: usize,
        /// Requests in the other's sample.
        requests_b: usize,
        /// Values in the baseline's sample: one per request, except for ITL from token times
        /// (every gap).
        values_a: usize,
        /// Values in the other's sample.
        values_b: usize,
        /// Resamples drawn of each side.
        resamples: usize,
    },
    /// Welch's t on means of `n_a` and `n_b` values (`of`: runs or requests).
    Welch {
        /// Values behind the baseline's mean.
        n_a: u64,
        /// Values behind the other's mean.
        n_b: u64,
        /// What one value is: `"runs"` (a per-run figure) or `"requests"` (a per-request one).
        of: String,
    },
    /// Each run's figure computed from its requests, then the Mann–Whitney U test across runs
    /// (from [`RANK_RUNS`] runs a side; with fewer, Welch's t on the runs' figures, as
    /// [`Test::Welch`] of runs). A and B are the medians of the runs' figures.
    Runs {
        /// Runs of the baseline with enough values for the statistic.
        runs_a: usize,
        /// Runs of the other with enough values for the statistic.
        runs_b: usize,
    },
    /// Two-proportion z-test on `n_a` and `n_b` requests.
    TwoProportions {
        /// Measured requests of the baseline (failed ones included).
        n_a: u64,
        /// Measured requests of the other.
        n_b: u64,
    },
    /// Not tested, and why.
    None {
        /// Why, as the report prints it (`"too few values (12 vs 14); a p99 needs 300 or more"`).
        reason: String,
    },
}

impl Test {
    /// A short description for a report.
    pub fn describe(&self) -> String {
        match self {
            Test::Bootstrap {
                requests_a,
                requests_b,
                values_a,
                values_b,
                ..
            } if values_a != requests_a || values_b != requests_b => format!(
                "bootstrap, {requests_a} vs {requests_b} requests ({values_a} vs {values_b} values)"
            ),
            Test::Bootstrap {
                requests_a,
                requests_b,
                ..
            } => format!("bootstrap, {requests_a} vs {requests_b} requests"),
            Test::Welch { n_a, n_b, of } => format!("Welch t, {n_a} vs {n_b} {of}"),
            Test::Runs { runs_a, runs_b } => {
                format!("Mann–Whitney U across runs, {runs_a} vs {runs_b}")
            }
            Test::TwoProportions { n_a, n_b } => {
                format!("two-proportion z, {n_a} vs {n_b} requests")
            }
            Test::None { reason } => reason.clone(),
        }
    }
}

/// What a row concludes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Significantly better (higher throughput or goodput, lower latency) after the Holm
    /// correction, with the whole interval beyond the noise threshold.
    Faster,
    /// Significantly worse, with the whole interval beyond the noise threshold.
    Slower,
    /// Tested, but not significant after the Holm correction, or significant with an interval
    /// that reaches inside the noise threshold ([`Row::within_threshold`]).
    NoSignificantDifference,
    /// No test could be made (see the row's test).
    NotTested,
}

impl Verdict {
    /// The verdict as reports write it (`"no significant difference"`).
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Faster => "faster",
            Verdict::Slower => "slower",
            Verdict::NoSignificantDifference => "no significant difference",
            Verdict::NotTested => "not tested",
        }
    }
}

/// One figure of one level: baseline (A) against the other (B). Values are in seconds
/// (latencies), per second (throughput) or a share (goodput); NaN (`null` in JSON) where not
/// measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The figure compared.
    pub metric: Metric,
    /// Which statistic of it.
    pub statistic: Statistic,
    /// The baseline's value: the statistic over its requests or from its document; in a test
    /// across runs, the mean of the runs' figures ([`Test::Welch`] of runs) or their median
    /// ([`Test::Runs`]).
    pub a: f64,
    /// The other's value, the same way.
    pub b: f64,
    /// The relative change as a share (0.05: 5% higher): B/A − 1, or for [`Test::Runs`] the
    /// Hodges–Lehmann shift of the runs' figures over A's median.
    pub change: f64,
    /// The low end of the change's interval at the comparison's confidence, a share (NaN when
    /// not tested or too few values for an interval).
    pub low: f64,
    /// The high end of that interval.
    pub high: f64,
    /// The test's two-sided p-value (NaN when not tested).
    pub p: f64,
    /// The p-value corrected over every test of the comparison (Holm); NaN when not tested.
    pub p_holm: f64,
    /// What the row concludes from `p_holm`, the interval and the noise threshold.
    pub verdict: Verdict,
    /// Significant, but the interval reaches inside the noise threshold, so the verdict is no
    /// significant difference.
    pub within_threshold: bool,
    /// The test made, with its sample sizes, or why none was.
    pub test: Test,
}

impl Row {
    /// How much worse B is, in percent (positive: worse), from the point estimate.
    pub fn worse_by_percent(&self) -> f64 {
        let c = self.change * 100.0;
        if self.metric.higher_is_better() {
            -c
        } else {
            c
        }
    }
}

/// The rows of one matched level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelComparison {
    /// The load mode both sides ran the level in (levels of different modes are not compared).
    pub mode: Mode,
    /// The level's key in both documents' `results`: batch size, concurrency or request rate
    /// (requests per second), by the mode.
    pub level: String,
    /// The baseline's label (its file name).
    pub baseline: String,
    /// The compared input's label (its file name).
    pub candidate: String,
    /// Output tokens/s, requests/s and steady-state output tokens/s (means), then request
    /// tokens/s (mean) and TTFT, ITL, TPOT and E2EL (mean, p50, p90, p95, p99), then the
    /// goodput share; a metric that not both sides measured has no rows.
    pub rows: Vec<Row>,
}

/// A configuration field in which a compared file differs from the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigDifference {
    /// The label of the compared input that differs.
    pub candidate: String,
    /// The `metadata` field (`model`, `max_tokens`, `arrival`, …), or `mode` / `levels` for the
    /// documents' modes and level keys.
    pub field: String,
    /// The baseline's value as JSON text (a string keeps its quotes).
    pub baseline_value: String,
    /// The compared input's value as JSON text.
    pub candidate_value: String,
}

/// One input as the report describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputSummary {
    /// How the report names it: its file name.
    pub label: String,
    /// The results file as it was given.
    pub path: String,
    /// The tool that wrote it.
    pub format: Format,
    /// `metadata.tool`: the program and version that wrote it (`None` for the original scripts
    /// and imported files).
    pub tool: Option<String>,
    /// Whether per-request records came with it, so that its percentiles could be tested.
    pub per_request_records: bool,
    /// Where its records came from, or why a file beside it was not used.
    pub notes: Vec<String>,
    /// `metadata.imported` of a file converted from another tool: what did not map.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imported: Option<Imported>,
}

/// A whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The confidence of every interval (0.95); a corrected p-value below 1 − confidence is
    /// significant.
    pub confidence: f64,
    /// The noise threshold, as a share.
    pub threshold: f64,
    /// Bootstrap resamples per metric.
    pub resamples: usize,
    /// The bootstrap's seed: the same inputs and seed give the same comparison.
    pub seed: u64,
    /// Tests in the family the p-values were corrected over.
    pub tests: usize,
    /// Every input in the order given; the first is the baseline.
    pub inputs: Vec<InputSummary>,
    /// Configuration differences other than the server's.
    pub differences: Vec<ConfigDifference>,
    /// What a reader should know before trusting the rows, a sentence each: levels in one file
    /// only, runs cut short, one run on a side, records on one side only, fields not compared.
    pub warnings: Vec<String>,
    /// The matched levels: for each compared input in turn, in the baseline's level order.
    pub levels: Vec<LevelComparison>,
}

impl Comparison {
    /// Every row of every level.
    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.levels.iter().flat_map(|l| l.rows.iter())
    }

    /// Rows with a significant slowdown of more than `percent` (point estimate).
    pub fn regressions(&self, percent: f64) -> impl Iterator<Item = &Row> {
        self.rows()
            .filter(move |r| r.verdict == Verdict::Slower && r.worse_by_percent() > percent)
    }
}

/// The mode of a level: its `load` block, else the document's, else the original's bursts.
fn level_mode(doc: &ChatDocument, level: &ChatLevel) -> Mode {
    level
        .load
        .as_ref()
        .map(Load::mode)
        .or(doc.metadata.mode)
        .unwrap_or(Mode::Burst)
}

fn mix(seed: u64, a: usize, b: usize, c: usize) -> u64 {
    // splitmix64 of the seed and the position, so every test draws its own stream.
    let mut z = seed
        .wrapping_add((a as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_add((b as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9))
        .wrapping_add((c as u64).wrapping_mul(0x94d0_49bb_1331_11eb));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Compares every input after the first with the first.
pub fn compare(inputs: &[Input], opts: &CompareOptions) -> Result<Comparison> {
    if inputs.len() < 2 {
        return Err(Error::Incomparable(
            "give at least two result files: a baseline and one to compare with it".into(),
        ));
    }
    if !(opts.confidence > 0.0 && opts.confidence < 1.0)
        || opts.resamples < 100
        || !(0.0..1.0).contains(&opts.threshold)
    {
        return Err(Error::Incomparable(format!(
            "confidence must be between 0 and 1, resamples at least 100 and the threshold from 0 to 1 (got {}, {} and {})",
            opts.confidence, opts.resamples, opts.threshold
        )));
    }
    let base = &inputs[0];
    let mut levels = Vec::new();
    let mut warnings = Vec::new();
    let mut differences = Vec::new();
    for (ci, cand) in inputs[1..].iter().enumerate() {
        differences.extend(config_differences(base, cand, &mut warnings));
        let mut matched = 0;
        for (li, (key, la)) in base.document.results.iter().enumerate() {
            let mode_a = level_mode(&base.document, la);
            let Some(lb) = cand.document.results.get(key) else {
                warnings.push(format!("{} {key} is in {} only", mode_a.name(), base.label));
                continue;
            };
            let mode_b = level_mode(&cand.document, lb);
            if mode_a != mode_b {
                warnings.push(format!(
                    "level {key} is {} in {} but {} in {}: not compared",
                    mode_a.name(),
                    base.label,
                    mode_b.name(),
                    cand.label
                ));
                continue;
            }
            for (l, input) in [(la, base), (lb, cand)] {
                let who = &input.label;
                if l.incomplete {
                    warnings.push(format!(
                        "{} {key} of {who} was cut short by an interruption",
                        mode_a.name()
                    ));
                }
                // The client's own doubts about the level (its `client_load` block): a
                // difference there may be the load machine's, not the server's.
                for w in l.client_load.iter().flat_map(|c| &c.warnings) {
                    warnings.push(format!("{} {key} of {who}: {w}", mode_a.name()));
                }
                // A merged run's: each load machine's, kept by the merge.
                let shards = input
                    .document
                    .metadata
                    .merged
                    .iter()
                    .flat_map(|m| &m.shards);
                for shard in shards {
                    for w in shard.client_load.get(key).iter().flat_map(|c| &c.warnings) {
                        warnings.push(format!(
                            "{} {key} of {who}, shard {} ({}): {w}",
                            mode_a.name(),
                            shard.index,
                            shard.host
                        ));
                    }
                }
            }
            matched += 1;
            let ctx = LevelCtx {
                key,
                la,
                lb,
                base,
                cand,
                opts,
                seed: mix(opts.seed, ci, li, 0),
            };
            levels.push(LevelComparison {
                mode: mode_a,
                level: key.clone(),
                baseline: base.label.clone(),
                candidate: cand.label.clone(),
                rows: ctx.rows(&mut warnings),
            });
        }
        for (key, lb) in &cand.document.results {
            if !base.document.results.contains_key(key) {
                warnings.push(format!(
                    "{} {key} is in {} only",
                    level_mode(&cand.document, lb).name(),
                    cand.label
                ));
            }
        }
        if matched == 0 {
            let shape = |i: &Input| {
                i.document
                    .results
                    .iter()
                    .map(|(k, l)| format!("{} {k}", level_mode(&i.document, l).name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(Error::Incomparable(format!(
                "{} and {} have no level in common (same mode and level key): {} has {}; {} has {}",
                base.label,
                cand.label,
                base.label,
                shape(base),
                cand.label,
                shape(cand)
            )));
        }
    }
    let ps: Vec<f64> = levels
        .iter()
        .flat_map(|l: &LevelComparison| l.rows.iter().map(|r| r.p))
        .collect();
    let adjusted = stats::holm(&ps);
    let alpha = 1.0 - opts.confidence;
    let mut k = 0;
    for l in &mut levels {
        for r in &mut l.rows {
            r.p_holm = adjusted[k];
            k += 1;
            let beyond = r.low > opts.threshold || r.high < -opts.threshold;
            r.within_threshold = r.p_holm < alpha && !beyond;
            r.verdict = if r.p.is_nan() {
                Verdict::NotTested
            } else if r.p_holm < alpha && beyond {
                let b_higher = r.change > 0.0;
                if b_higher == r.metric.higher_is_better() {
                    Verdict::Faster
                } else {
                    Verdict::Slower
                }
            } else {
                Verdict::NoSignificantDifference
            };
        }
    }
    Ok(Comparison {
        confidence: opts.confidence,
        threshold: opts.threshold,
        resamples: opts.resamples,
        seed: opts.seed,
        tests: ps.iter().filter(|p| !p.is_nan()).count(),
        inputs: inputs.iter().map(summary).collect(),
        differences,
        warnings,
        levels,
    })
}

fn summary(i: &Input) -> InputSummary {
    InputSummary {
        label: i.label.clone(),
        path: i.path.display().to_string(),
        format: i.format,
        tool: i.document.metadata.tool.clone(),
        per_request_records: i.records.is_some(),
        notes: i.notes.clone(),
        imported: Imported::of(&i.document.metadata),
    }
}

/// A row not yet corrected or judged.
fn row(
    metric: Metric,
    statistic: Statistic,
    a: f64,
    b: f64,
    outcome: Option<Outcome>,
    test: Test,
) -> Row {
    let o = outcome.unwrap_or(Outcome {
        change: b / a - 1.0,
        low: f64::NAN,
        high: f64::NAN,
        p: f64::NAN,
    });
    Row {
        metric,
        statistic,
        a,
        b,
        change: o.change,
        low: o.low,
        high: o.high,
        p: o.p,
        p_holm: f64::NAN,
        verdict: Verdict::NotTested,
        within_threshold: false,
        test,
    }
}

fn untested(
    metric: Metric,
    statistic: Statistic,
    a: f64,
    b: f64,
    reason: impl Into<String>,
) -> Row {
    row(
        metric,
        statistic,
        a,
        b,
        None,
        Test::None {
            reason: reason.into(),
        },
    )
}

struct LevelCtx<'a> {
    key: &'a str,
    la: &'a ChatLevel,
    lb: &'a ChatLevel,
    base: &'a Input,
    cand: &'a Input,
    opts: &'a CompareOptions,
    seed: u64,
}

/// The per-request values of one side of a level, one entry per run (in run order).
struct Side {
    runs: Vec<LevelSamples>,
    pooled: LevelSamples,
}

impl Side {
    fn of(input: &Input, key: &str) -> Option<Side> {
        let records = input.records.as_ref()?;
        let ok = records.successes(key);
        if ok.is_empty() {
            return None;
        }
        let mut by_run: BTreeMap<u64, Vec<&RequestRecord>> = BTreeMap::new();
        for r in &ok {
            by_run.entry(r.run).or_default().push(r);
        }
        Some(Side {
            runs: by_run.values().map(|v| LevelSamples::of(v)).collect(),
            pooled: LevelSamples::of(&ok),
        })
    }
}

/// Which per-request values a metric's rows are about.
fn clusters(metric: Metric, s: &LevelSamples) -> &Clusters {
    match metric {
        Metric::Ttft => &s.ttft,
        Metric::Tpot => &s.tpot,
        Metric::E2el => &s.e2el,
        Metric::Itl => &s.itl,
        _ => &s.request_tokens_per_second,
    }
}

/// Σ span / Σ gaps: the mean inter-token latency of requests whose token times are unknown.
fn span_ratio(spans: &[(f64, f64)]) -> f64 {
    let (s, g) = spans
        .iter()
        .fold((0.0, 0.0), |(s, g), (x, y)| (s + x, g + y));
    s / g
}

/// Runs a side from which figures computed run by run are compared by rank (Mann–Whitney U):
/// from six a side its p-value can reach the 0.0022 that Holm's correction over a comparison's
/// tests asks; with fewer runs Welch's t, which assumes the runs' figures roughly normal, is
/// the only test that can find anything.
pub const RANK_RUNS: usize = 6;

fn statistics_of(metric: Metric) -> &'static [Statistic] {
    if metric.is_latency() {
        &Statistic::ALL
    } else {
        &Statistic::ALL[..1]
    }
}

impl LevelCtx<'_> {
    fn succeeded(level: &ChatLevel) -> u64 {
        level.requests.as_ref().map_or(0, |r| r.succeeded)
    }

    /// Why a Welch test of these two means cannot be made, or its outcome.
    fn welch_row(
        &self,
        metric: Metric,
        statistic: Statistic,
        a: MeanStd,
        b: MeanStd,
        of: &str,
    ) -> Row {
        let missing = |x: &MeanStd, who: &str| {
            (!x.mean.is_finite() || !x.std.is_finite()).then(|| format!("not measured in {who}"))
        };
        let reason = missing(&a, &self.base.label)
            .or_else(|| missing(&b, &self.cand.label))
            .or_else(|| {
                (a.n < 2 || b.n < 2).then(|| {
                    if of == "runs" {
                        format!(
                            "{} vs {} runs: a test across runs needs --num_runs 2 or more on both sides",
                            a.n, b.n
                        )
                    } else {
                        format!("too few {of} ({} vs {})", a.n, b.n)
                    }
                })
            });
        if let Some(reason) = reason {
            return untested(metric, statistic, a.mean, b.mean, reason);
        }
        match stats::welch(a, b, self.opts.confidence) {
            Some(o) => row(
                metric,
                statistic,
                a.mean,
                b.mean,
                Some(o),
                Test::Welch {
                    n_a: a.n,
                    n_b: b.n,
                    of: of.to_string(),
                },
            ),
            None => untested(
                metric,
                statistic,
                a.mean,
                b.mean,
                "a zero baseline has no relative change",
            ),
        }
    }

    fn stat_runs(s: &Stat, n: u64) -> MeanStd {
        MeanStd {
            mean: s.mean,
            std: s.std,
            n,
        }
    }

    /// Rows of a metric from runs on both sides: each run's statistic computed from its own
    /// requests, then compared across runs (the run is the unit that repeats; the requests of
    /// one run share its server state and are not independent of each other): by rank from
    /// [`RANK_RUNS`] runs a side, by Welch's t below that.
    fn run_rows(&self, metric: Metric, a: &Side, b: &Side) -> Vec<Row> {
        statistics_of(metric)
            .iter()
            .map(|&s| {
                let per_run = |side: &Side| -> Vec<f64> {
                    side.runs
                        .iter()
                        .filter_map(|r| {
                            if metric == Metric::Itl && clusters(metric, r).is_empty() {
                                // No token times: the mean from the requests' spans only.
                                return (s == Statistic::Mean && !r.itl_spans.is_empty())
                                    .then(|| span_ratio(&r.itl_spans));
                            }
                            let c = clusters(metric, r);
                            (c.len() >= s.min_values()).then(|| {
                                let mut v = c.values.clone();
                                v.sort_by(f64::total_cmp);
                                s.summary().of_sorted(&v)
                            })
                        })
                        .collect()
                };
                let (va, vb) = (per_run(a), per_run(b));
                let plain = |v: &[f64]| tokenomics_stats::Summary::new(v.iter().copied());
                // An untested row still shows the figure over every request of every run.
                let pooled = |side: &Side| {
                    let c = clusters(metric, &side.pooled);
                    if metric == Metric::Itl && c.is_empty() {
                        return if s == Statistic::Mean {
                            span_ratio(&side.pooled.itl_spans)
                        } else {
                            f64::NAN
                        };
                    }
                    let mut v = c.values.clone();
                    v.sort_by(f64::total_cmp);
                    s.summary().of_sorted(&v)
                };
                let untested_because =
                    |reason: String| untested(metric, s, pooled(a), pooled(b), reason);
                if va.len() < 2 || vb.len() < 2 {
                    let reason = if metric == Metric::Itl
                        && s != Statistic::Mean
                        && clusters(metric, &a.pooled).is_empty()
                    {
                        "needs each token's time in the records (--token_times)".to_string()
                    } else {
                        format!(
                            "too few values per run for a {} ({} per run needed; shown over all runs)",
                            s.label(),
                            s.min_values()
                        )
                    };
                    return untested_because(reason);
                }
                if va.len() < RANK_RUNS
                    || vb.len() < RANK_RUNS
                    || va.len().saturating_mul(vb.len()) > stats::MAX_PAIRS
                {
                    let (ma, mb) = (plain(&va), plain(&vb));
                    let stat = |x: &tokenomics_stats::Summary, n: usize| MeanStd {
                        mean: x.mean(),
                        std: x.mean_std().std,
                        n: n as u64,
                    };
                    return self.welch_row(metric, s, stat(&ma, va.len()), stat(&mb, vb.len()), "runs");
                }
                match stats::mann_whitney(&va, &vb, self.opts.confidence) {
                    Some(r) => row(
                        metric,
                        s,
                        r.median_a,
                        r.median_b,
                        Some(r.outcome),
                        Test::Runs {
                            runs_a: va.len(),
                            runs_b: vb.len(),
                        },
                    ),
                    None => untested_because("a zero baseline has no relative change".into()),
                }
            })
            .collect()
    }

    /// Rows of a metric when a side has one run: a seeded bootstrap over its requests.
    fn bootstrap_rows(
        &self,
        metric: Metric,
        a: &LevelSamples,
        b: &LevelSamples,
        salt: usize,
    ) -> Vec<Row> {
        let (ca, cb) = (clusters(metric, a), clusters(metric, b));
        if metric == Metric::Itl && (ca.is_empty() || cb.is_empty()) {
            // No token times: the mean from each request's span, no percentiles.
            let (pa, pb) = (span_ratio(&a.itl_spans), span_ratio(&b.itl_spans));
            let mean = if a.itl_spans.len() >= 2 && b.itl_spans.len() >= 2 {
                let o = stats::bootstrap_ratio_of_sums(
                    &a.itl_spans,
                    &b.itl_spans,
                    self.opts.resamples,
                    self.opts.confidence,
                    mix(self.seed, salt, 2, 0),
                );
                let n = (a.itl_spans.len(), b.itl_spans.len());
                row(
                    metric,
                    Statistic::Mean,
                    pa,
                    pb,
                    Some(o),
                    Test::Bootstrap {
                        requests_a: n.0,
                        requests_b: n.1,
                        values_a: n.0,
                        values_b: n.1,
                        resamples: self.opts.resamples,
                    },
                )
            } else {
                untested(
                    metric,
                    Statistic::Mean,
                    pa,
                    pb,
                    "no request with two tokens or more",
                )
            };
            let mut rows = vec![mean];
            for &s in &Statistic::ALL[1..] {
                rows.push(untested(
                    metric,
                    s,
                    f64::NAN,
                    f64::NAN,
                    "needs each token's time in the records (--token_times)",
                ));
            }
            return rows;
        }
        let mut sorted_a = ca.values.clone();
        sorted_a.sort_by(f64::total_cmp);
        let mut sorted_b = cb.values.clone();
        sorted_b.sort_by(f64::total_cmp);
        let testable: Vec<Statistic> = statistics_of(metric)
            .iter()
            .copied()
            .filter(|s| {
                ca.len().min(cb.len()) >= s.min_values() && ca.clusters().min(cb.clusters()) >= 2
            })
            .collect();
        let outcomes = if testable.is_empty() {
            Vec::new()
        } else {
            let summaries: Vec<Summary> = testable.iter().map(|s| s.summary()).collect();
            stats::bootstrap(
                ca,
                cb,
                &summaries,
                self.opts.resamples,
                self.opts.confidence,
                mix(self.seed, salt, 1, 0),
            )
        };
        let test = Test::Bootstrap {
            requests_a: ca.clusters(),
            requests_b: cb.clusters(),
            values_a: ca.len(),
            values_b: cb.len(),
            resamples: self.opts.resamples,
        };
        statistics_of(metric)
            .iter()
            .map(|&s| {
                let (pa, pb) = (
                    s.summary().of_sorted(&sorted_a),
                    s.summary().of_sorted(&sorted_b),
                );
                match testable.iter().position(|t| *t == s) {
                    Some(i) => row(metric, s, pa, pb, Some(outcomes[i]), test.clone()),
                    None => untested(
                        metric,
                        s,
                        pa,
                        pb,
                        if ca.is_empty() || cb.is_empty() {
                            "not in the per-request records".to_string()
                        } else {
                            format!(
                                "too few values ({} vs {}); a {} needs {} or more",
                                ca.len(),
                                cb.len(),
                                s.label(),
                                s.min_values()
                            )
                        },
                    ),
                }
            })
            .collect()
    }

    fn rows(&self, warnings: &mut Vec<String>) -> Vec<Row> {
        let (la, lb) = (self.la, self.lb);
        let runs = |i: &Input| i.document.metadata.num_runs;
        let mut rows = Vec::new();
        let throughput = [
            (
                Metric::OutputTokensPerSecond,
                Some(&la.throughput.batch_tokens_per_second),
                Some(&lb.throughput.batch_tokens_per_second),
            ),
            (
                Metric::RequestsPerSecond,
                la.throughput.requests_per_second.as_ref(),
                lb.throughput.requests_per_second.as_ref(),
            ),
        ];
        for (metric, a, b) in throughput {
            if let (Some(a), Some(b)) = (a, b) {
                rows.push(self.welch_row(
                    metric,
                    Statistic::Mean,
                    Self::stat_runs(a, runs(self.base)),
                    Self::stat_runs(b, runs(self.cand)),
                    "runs",
                ));
            }
        }
        if let (Some(a), Some(b)) = (&la.throughput.steady_state, &lb.throughput.steady_state) {
            rows.push(self.welch_row(
                Metric::SteadyOutputTokensPerSecond,
                Statistic::Mean,
                Self::stat_runs(&a.output_tokens_per_second, a.windows.len() as u64),
                Self::stat_runs(&b.output_tokens_per_second, b.windows.len() as u64),
                "runs",
            ));
        }
        let (sa, sb) = (Side::of(self.base, self.key), Side::of(self.cand, self.key));
        let both = match (&sa, &sb) {
            (Some(a), Some(b)) => Some((a, b)),
            (Some(_), None) | (None, Some(_)) => {
                let (has, lacks) = if sa.is_some() {
                    (&self.base.label, &self.cand.label)
                } else {
                    (&self.cand.label, &self.base.label)
                };
                warnings.push(format!(
                    "level {}: {has} has per-request records but {lacks} has none; the tests use the documents' summaries",
                    self.key
                ));
                None
            }
            (None, None) => None,
        };
        let across_runs = both.is_some_and(|(a, b)| a.runs.len() >= 2 && b.runs.len() >= 2);
        if both.is_some() && !across_runs {
            warnings.push(format!(
                "level {}: one run on a side, so its tests take the requests of that run as independent; a server's own run-to-run variation can then look significant (run both with --num_runs 2 or more)",
                self.key
            ));
        }
        let mut per_request = vec![Metric::RequestTokensPerSecond];
        let latency = match (&la.latency, &lb.latency) {
            (Some(ta), Some(tb)) => {
                per_request.extend([Metric::Ttft, Metric::Itl, Metric::Tpot, Metric::E2el]);
                Some((ta, tb))
            }
            (None, None) => None,
            _ => {
                warnings.push(format!(
                    "level {}: only one of the runs streamed, so its latencies are not compared",
                    self.key
                ));
                None
            }
        };
        for (salt, metric) in per_request.into_iter().enumerate() {
            match both {
                Some((a, b)) if across_runs => rows.extend(self.run_rows(metric, a, b)),
                Some((a, b)) => {
                    rows.extend(self.bootstrap_rows(metric, &a.pooled, &b.pooled, salt))
                }
                None => match (metric, latency) {
                    (Metric::RequestTokensPerSecond, _) => rows.push(self.welch_row(
                        metric,
                        Statistic::Mean,
                        Self::stat_runs(
                            &la.throughput.request_tokens_per_second,
                            Self::succeeded(la),
                        ),
                        Self::stat_runs(
                            &lb.throughput.request_tokens_per_second,
                            Self::succeeded(lb),
                        ),
                        "requests",
                    )),
                    (_, Some((ta, tb))) => {
                        let pick = |l: &ChatLatency| -> Distribution {
                            match metric {
                                Metric::Ttft => l.ttft.clone(),
                                Metric::Itl => l.itl.clone(),
                                Metric::Tpot => l.tpot.clone(),
                                _ => l.e2el.clone(),
                            }
                        };
                        rows.extend(self.latency_from_summaries(metric, &pick(ta), &pick(tb)));
                    }
                    _ => {}
                },
            }
        }
        if both.is_none() {
            warnings.push(format!(
                "level {}: no per-request records on both sides, so latency means are tested over requests taken as independent and percentiles are not tested (give --requests_file files)",
                self.key
            ));
        }
        if let (Some(ga), Some(gb)) = (&la.goodput, &lb.goodput) {
            let r = if ga.slo_ms != gb.slo_ms {
                untested(
                    Metric::GoodputShare,
                    Statistic::Mean,
                    ga.share,
                    gb.share,
                    "the goodput objectives differ",
                )
            } else {
                match stats::two_proportions(
                    ga.good,
                    ga.total,
                    gb.good,
                    gb.total,
                    self.opts.confidence,
                ) {
                    Some(o) => row(
                        Metric::GoodputShare,
                        Statistic::Mean,
                        ga.share,
                        gb.share,
                        Some(o),
                        Test::TwoProportions {
                            n_a: ga.total,
                            n_b: gb.total,
                        },
                    ),
                    None => untested(
                        Metric::GoodputShare,
                        Statistic::Mean,
                        ga.share,
                        gb.share,
                        "no good request in the baseline",
                    ),
                }
            };
            rows.push(r);
        }
        rows
    }

    fn latency_from_summaries(
        &self,
        metric: Metric,
        da: &Distribution,
        db: &Distribution,
    ) -> Vec<Row> {
        // The inter-token latencies of one request are not independent: their mean is tested
        // over requests, not gaps.
        let n = |d: &Distribution, l: &ChatLevel| {
            if metric == Metric::Itl {
                Self::succeeded(l)
            } else {
                d.count
            }
        };
        let mut rows = vec![self.welch_row(
            metric,
            Statistic::Mean,
            MeanStd {
                mean: da.mean,
                std: da.std,
                n: n(da, self.la),
            },
            MeanStd {
                mean: db.mean,
                std: db.std,
                n: n(db, self.lb),
            },
            "requests",
        )];
        for &s in &Statistic::ALL[1..] {
            rows.push(untested(
                metric,
                s,
                s.of(da),
                s.of(db),
                "needs per-request records (--requests_file)",
            ));
        }
        rows
    }
}

/// Configuration differences between the baseline and a compared file, other than the server:
/// the model, the prompts, the generation settings and the load shape. A field that one of the
/// files does not record is not compared (and said so).
fn config_differences(
    base: &Input,
    cand: &Input,
    warnings: &mut Vec<String>,
) -> Vec<ConfigDifference> {
    let (ma, mb) = (&base.document.metadata, &cand.document.metadata);
    let unknown = |i: &Input| -> BTreeSet<String> {
        Imported::of(&i.document.metadata)
            .map(|x| x.not_recorded.into_iter().collect())
            .unwrap_or_default()
    };
    let (ua, ub) = (unknown(base), unknown(cand));
    let modes = |d: &ChatDocument| -> Value {
        let set: BTreeSet<&str> = d
            .results
            .values()
            .map(|l| level_mode(d, l).name())
            .collect();
        Value::from(set.into_iter().collect::<Vec<_>>())
    };
    let levels = |d: &ChatDocument| Value::from(d.results.keys().cloned().collect::<Vec<_>>());
    let opt = |v: Option<Value>| v.unwrap_or(Value::Null);
    let fields: Vec<(&str, Value, Value)> = vec![
        (
            "model",
            Value::from(ma.model.clone()),
            Value::from(mb.model.clone()),
        ),
        (
            "dataset_key",
            Value::from(ma.dataset_key.clone()),
            Value::from(mb.dataset_key.clone()),
        ),
        ("dataset", opt(ma.dataset.clone()), opt(mb.dataset.clone())),
        (
            "max_tokens",
            Value::from(ma.max_tokens),
            Value::from(mb.max_tokens),
        ),
        (
            "temperature",
            Value::from(ma.temperature),
            Value::from(mb.temperature),
        ),
        ("seed", Value::from(ma.seed), Value::from(mb.seed)),
        ("mode", modes(&base.document), modes(&cand.document)),
        ("levels", levels(&base.document), levels(&cand.document)),
        ("limits", value_of(&ma.limits), value_of(&mb.limits)),
        ("arrival", value_of(&ma.arrival), value_of(&mb.arrival)),
        ("stream", value_of(&ma.stream), value_of(&mb.stream)),
        ("endpoint", value_of(&ma.endpoint), value_of(&mb.endpoint)),
        (
            "outputs_forced",
            value_of(&ma.outputs_forced),
            value_of(&mb.outputs_forced),
        ),
        (
            "extra_body",
            value_of(&ma.extra_body),
            value_of(&mb.extra_body),
        ),
    ];
    let mut out = Vec::new();
    let mut not_compared = Vec::new();
    for (field, a, b) in fields {
        if ua.contains(field) || ub.contains(field) {
            not_compared.push(field);
            continue;
        }
        // A field absent on one side (an older file, another tool) is not a difference.
        if a.is_null() || b.is_null() || a == b {
            continue;
        }
        out.push(ConfigDifference {
            candidate: cand.label.clone(),
            field: field.to_string(),
            baseline_value: a.to_string(),
            candidate_value: b.to_string(),
        });
    }
    if !not_compared.is_empty() {
        let silent: Vec<&str> = [(&ua, &base.label), (&ub, &cand.label)]
            .into_iter()
            .filter(|(u, _)| !u.is_empty())
            .map(|(_, l)| l.as_str())
            .collect();
        warnings.push(format!(
            "not compared, because {} {} not record them: {}",
            silent.join(" and "),
            if silent.len() > 1 { "do" } else { "does" },
            not_compared.join(", ")
        ));
    }
    out
}

/// An optional metadata block as JSON (`null` when absent).
fn value_of<T: Serialize>(x: &Option<T>) -> Value {
    x.as_ref()
        .and_then(|x| serde_json::to_value(x).ok())
        .unwrap_or(Value::Null)
}
