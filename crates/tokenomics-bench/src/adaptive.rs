//! Experiments whose next level depends on the last: a sweep and an SLO search.
//!
//! **A sweep** (`--sweep`) finds the two ends of a server's range and fills the space between:
//! the synchronous point (a closed loop of one request at a time), the saturation point (a closed
//! loop at high concurrency, or the rate `--sweep_max` gives), then open-loop rates spaced
//! linearly or geometrically between them. It stops early when a level shows the server is past
//! what it can serve: its latency grew through the level ([`tokenomics_stats::LatencyTrend`]),
//! the client could not keep to the schedule, or too many requests failed.
//!
//! **An SLO search** (`--slo`) finds the highest load at which every objective holds — a
//! statistic of TTFT, TPOT, ITL or E2EL at most a threshold, optionally a share of requests
//! meeting every threshold at once — by bracketing (doubling or halving from a start) and then
//! bisecting (geometric midpoints for rates, integers for concurrency), until the highest load
//! seen passing and the lowest seen failing are within a tolerance. A load the server cannot
//! sustain fails whatever its percentiles said: its latencies grow for as long as it lasts. Each
//! probe measures enough requests for its highest percentile to have a confidence interval.
//!
//! Both are pure state machines over finished levels ([`Sweep`], [`SloSearch`]), driven by the
//! benchmark's level loop through [`Experiment`]; the synchronous and saturation anchors they
//! measure are recorded in their metadata block, not as levels, so the results hold one kind of
//! load (the x axis of every plot).

use tokenomics_stats::{
    intervals, Arrival, ChatDocument, ChatLevel, Distribution, LatencyTrend, Load, Mode, Objective,
    SearchAxis, SloProbe, SloSearchBlock, Spacing, SweepBlock,
};

use crate::driver::LevelSource;
use crate::load::{format_rate, OpenLoop, Shape};
use crate::metrics::Slo;
use crate::plan::refuse_any;
use crate::{Error, Result};

/// The statistics an objective may name: those every latency distribution keeps.
const STATISTICS: [&str; 7] = ["mean", "median", "p50", "p90", "p95", "p99", "p99.9"];

/// An achieved sending rate below this share of the schedule means the client fell behind.
pub const MIN_ACHIEVED_SHARE: f64 = 0.95;

/// The shape of the open loops an experiment runs (the rate is the experiment's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenTemplate {
    /// The arrival process of the open loops (`--arrival`).
    pub arrival: Arrival,
    /// Gamma shape of gamma arrivals (`--burstiness`); 1 is Poisson, unused by the others.
    pub burstiness: f64,
}

impl OpenTemplate {
    fn at(&self, rate: f64) -> Shape {
        Shape::Open(OpenLoop {
            rate,
            arrival: self.arrival,
            burstiness: self.burstiness,
            max_concurrency: None,
            ramp: None,
        })
    }
}

/// Parses `--slo`: `METRIC_STAT:MILLISECONDS,…` (e.g. `ttft_p99:500,tpot_mean:50`).
pub fn parse_objectives(s: &str) -> Result<Vec<Objective>> {
    let bad = |m: String| Error::Invalid(format!("--slo: {m}"));
    let mut out: Vec<Objective> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once(':').ok_or_else(|| {
            bad(format!(
                "{part:?} is not METRIC_STATISTIC:MILLISECONDS (e.g. ttft_p99:500)"
            ))
        })?;
        let (metric, statistic) = name.trim().split_once('_').ok_or_else(|| {
            bad(format!(
                "{name:?} names no statistic: write e.g. {name}_p99 (one of {})",
                STATISTICS.join(", ")
            ))
        })?;
        if !["ttft", "tpot", "itl", "e2el"].contains(&metric) {
            return Err(bad(format!(
                "unknown metric {metric:?} (ttft, tpot, itl or e2el)"
            )));
        }
        let statistic = statistic.to_ascii_lowercase();
        if let Some(p) = statistic.strip_prefix('p') {
            let q: f64 = p
                .parse()
                .map_err(|_| bad(format!("{statistic:?} is not a percentile like p99")))?;
            if !(q > 0.0 && q < 100.0) {
                return Err(bad(format!(
                    "percentile {statistic} is outside 0–100 (exclusive)"
                )));
            }
        }
        if !STATISTICS.contains(&statistic.as_str()) {
            return Err(bad(format!(
                "{statistic:?} is not kept in the results: use one of {}",
                STATISTICS.join(", ")
            )));
        }
        let ms: f64 = value
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v > 0.0 && *v <= 3.2e10)
            .ok_or_else(|| {
                bad(format!(
                    "{value:?} is not a positive number of milliseconds"
                ))
            })?;
        if out
            .iter()
            .any(|o| o.metric == metric && o.statistic == statistic)
        {
            return Err(bad(format!("{metric}_{statistic} is given twice")));
        }
        out.push(Objective {
            metric: metric.to_string(),
            statistic,
            threshold_ms: ms,
        });
    }
    if out.is_empty() {
        return Err(bad(
            "no objective given (e.g. ttft_p99:500,tpot_p99:50)".into()
        ));
    }
    Ok(out)
}

/// The per-request objectives behind `objectives` (for the attainment count): each metric's
/// threshold; ITL has no per-request value and is refused.
pub fn per_request_slo(objectives: &[Objective]) -> Result<Slo> {
    let mut slo = Slo::default();
    for o in objectives {
        let limit = o.threshold_ms / 1e3;
        let slot = match o.metric.as_str() {
            "ttft" => &mut slo.ttft,
            "tpot" => &mut slo.tpot,
            "e2el" => &mut slo.e2el,
            _ => {
                return Err(Error::Invalid(
                    "--slo_attainment counts requests that meet every threshold; ITL has none per request (use tpot)".into(),
                ))
            }
        };
        // Two statistics of one metric: a request must meet the tighter threshold.
        *slot = Some(slot.map_or(limit, |s: f64| s.min(limit)));
    }
    Ok(slo)
}

/// Requests a probe needs for the highest percentile among `objectives` to have a confidence
/// interval at `confidence` (at least 20).
pub fn min_requests(objectives: &[Objective], confidence: f64) -> u64 {
    objectives
        .iter()
        .filter_map(|o| quantile(&o.statistic))
        .filter_map(|q| intervals::needed_samples(q, confidence))
        .map(|n| n as u64)
        .max()
        .unwrap_or(0)
        .max(20)
}

fn quantile(statistic: &str) -> Option<f64> {
    match statistic {
        "median" => Some(0.5),
        s => s.strip_prefix('p')?.parse::<f64>().ok().map(|p| p / 100.0),
    }
}

fn statistic_of(d: &Distribution, statistic: &str) -> f64 {
    match statistic {
        "mean" => d.mean,
        "median" | "p50" => d.p50,
        "p90" => d.p90,
        "p95" => d.p95,
        "p99" => d.p99,
        "p99.9" => d.p99_9,
        _ => f64::NAN,
    }
}

/// `ttft p99 ≤ 500 ms, tpot mean ≤ 50 ms`.
pub fn objectives_text(objectives: &[Objective]) -> String {
    objectives
        .iter()
        .map(|o| format!("{} {} ≤ {} ms", o.metric, o.statistic, o.threshold_ms))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The experiment's answer in a few lines, for the end of a run (`None`: no experiment).
pub fn summary(doc: &ChatDocument) -> Option<String> {
    if let Some(s) = &doc.metadata.sweep {
        let mut t = format!(
            "Sweep: {} requests/s at concurrency 1, {} requests/s at saturation{}{}; rates {}",
            s.synchronous_rps.map_or("–".into(), |r| format!("{r:.2}")),
            s.saturation_rps.map_or("–".into(), |r| format!("{r:.2}")),
            s.saturation_concurrency
                .map(|c| format!(" (concurrency {c})"))
                .unwrap_or_else(|| " (--sweep_max)".into()),
            s.predicted_saturation_rps
                .map(|p| format!(" ({p:.2} predicted by the simulator's roofline)"))
                .unwrap_or_default(),
            s.rates
                .iter()
                .map(|r| format_rate(*r))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(why) = &s.stopped_early {
            t.push_str(&format!("\nThe sweep stopped early: {why}"));
        }
        return Some(t);
    }
    let s = doc.metadata.slo_search.as_ref()?;
    let unit = match s.axis {
        SearchAxis::Rate => "requests/s",
        SearchAxis::Concurrency => "concurrent requests",
    };
    let show = |v: f64| match s.axis {
        SearchAxis::Rate => format!("{v:.2}"),
        SearchAxis::Concurrency => format!("{v:.0}"),
    };
    let answer = match (s.highest_passing, s.lowest_failing) {
        (Some(l), Some(h)) => format!(
            "{} {unit} — the objectives hold there and fail at {} (the capacity lies between)",
            show(l),
            show(h)
        ),
        (Some(l), None) => format!("at least {} {unit} (no probe failed)", show(l)),
        (None, Some(h)) => format!("none: every probe failed, down to {} {unit}", show(h)),
        (None, None) => "none".into(),
    };
    let mut t = format!(
        "SLO capacity ({}): {answer}",
        objectives_text(&s.objectives)
    );
    if let Some(g) = s.goodput_rps.filter(|g| g.is_finite()) {
        t.push_str(&format!("; goodput there {g:.2} requests/s"));
    }
    t.push_str(&format!(
        "\n{} probes of at least {} requests each; {}",
        s.probes.len(),
        s.min_requests,
        s.outcome
    ));
    Some(t)
}

/// Successful requests per second of a level (NaN when none).
pub fn level_rps(level: &ChatLevel) -> f64 {
    level
        .throughput
        .requests_per_second
        .as_ref()
        .map_or(f64::NAN, |s| s.mean)
}

/// Why a level shows the server past what it serves, if it does: failures above
/// `max_error_rate`, an open loop whose client fell behind its schedule, or latency that grew
/// through the level.
pub fn saturation(level: &ChatLevel, max_error_rate: f64) -> Option<String> {
    if let Some(c) = &level.requests {
        let total = c.succeeded + c.failed;
        if total > 0 {
            let share = c.failed as f64 / total as f64;
            if share > max_error_rate {
                return Some(format!(
                    "{:.1}% of requests failed (more than --max_error_rate {}%)",
                    share * 100.0,
                    max_error_rate * 100.0
                ));
            }
        }
    }
    let schedule = level.load.as_ref()?.schedule()?;
    if let (Some(s), Some(a)) = (&schedule.scheduled_rate, &schedule.achieved_rate) {
        if s.mean.is_finite() && a.mean.is_finite() && a.mean < MIN_ACHIEVED_SHARE * s.mean {
            return Some(format!(
                "the client sent {:.1} requests/s of the {:.1} scheduled",
                a.mean, s.mean
            ));
        }
    }
    let t: &LatencyTrend = schedule.latency_trend.as_ref()?;
    t.oversaturated.then(|| {
        format!(
            "over-saturated: latency grew {:.0} ms through the level (from a mean of {:.0} ms, t = {})",
            t.growth_seconds * 1e3,
            t.mean_seconds * 1e3,
            if t.t.is_finite() { format!("{:.0}", t.t) } else { "∞".into() }
        )
    })
}

/// Judges one level against the objectives.
pub fn judge(
    level: &ChatLevel,
    objectives: &[Objective],
    attainment: Option<f64>,
    max_error_rate: f64,
) -> (bool, Vec<Option<f64>>, Option<f64>, Option<String>) {
    let mut reasons: Vec<String> = Vec::new();
    let measured: Vec<Option<f64>> = objectives
        .iter()
        .map(|o| {
            let lat = level.latency.as_ref()?;
            let d = match o.metric.as_str() {
                "ttft" => &lat.ttft,
                "tpot" => &lat.tpot,
                "itl" => &lat.itl,
                _ => &lat.e2el,
            };
            let v = statistic_of(d, &o.statistic) * 1e3;
            v.is_finite().then_some(v)
        })
        .collect();
    for (o, m) in objectives.iter().zip(&measured) {
        match m {
            None => reasons.push(format!("no {} measured", o.metric)),
            Some(v) if *v > o.threshold_ms => reasons.push(format!(
                "{} {} {:.1} ms > {} ms",
                o.metric, o.statistic, v, o.threshold_ms
            )),
            _ => {}
        }
    }
    let share = level.goodput.as_ref().map(|g| g.share);
    if let Some(a) = attainment {
        match share {
            Some(s) if s >= a => {}
            Some(s) => reasons.push(format!(
                "{:.2}% of requests met every threshold (< {}%)",
                s * 100.0,
                a * 100.0
            )),
            None => reasons.push("no attainment measured".into()),
        }
    }
    if let Some(why) = saturation(level, max_error_rate) {
        reasons.push(why);
    }
    let passed = reasons.is_empty();
    (
        passed,
        measured,
        attainment.and(share),
        (!passed).then(|| reasons.join("; ")),
    )
}

/// How a sweep is asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPlan {
    /// Open-loop rates between the end points (at least 2).
    pub points: u64,
    /// How the open-loop rates are spaced between the end points (`--sweep_spacing`).
    pub spacing: Spacing,
    /// The closed loop's concurrency at the saturation point.
    pub saturation_concurrency: u64,
    /// The saturation rate, requests/s, instead of measuring one.
    pub max_rate: Option<f64>,
    /// A level whose share of failed requests exceeds this (0–1) ends the sweep early.
    pub max_error_rate: f64,
    /// The shape of the sweep's open loops.
    pub open: OpenTemplate,
    /// The simulator's predicted saturation rate, for the record.
    pub predicted_saturation: Option<f64>,
}

/// The open-loop rates of a sweep: `points` from `lo` to `hi` (both included), spaced as asked.
pub fn sweep_rates(lo: f64, hi: f64, points: u64, spacing: Spacing) -> Vec<f64> {
    if points < 2 || hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return vec![lo];
    }
    let steps = (points - 1) as f64;
    (0..points)
        .map(|i| {
            let f = i as f64 / steps;
            let r = match spacing {
                Spacing::Linear => lo + (hi - lo) * f,
                Spacing::Geometric => lo * (hi / lo).powf(f),
            };
            // Keys are rates to six decimals: keep the rate the key names.
            format_rate(r).parse().unwrap_or(r)
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
enum SweepStage {
    Synchronous,
    Saturation,
    Rates(usize),
    Done,
}

/// A sweep in progress.
#[derive(Debug, Clone)]
pub struct Sweep {
    plan: SweepPlan,
    stage: SweepStage,
    block: SweepBlock,
    /// Keys of the anchor levels, kept out of the results.
    anchors: Vec<String>,
}

impl Sweep {
    /// A sweep at its start: the synchronous point is measured first.
    pub fn new(plan: SweepPlan) -> Self {
        let block = SweepBlock {
            points: plan.points,
            spacing: plan.spacing,
            synchronous_rps: None,
            saturation_rps: plan.max_rate,
            saturation_concurrency: plan
                .max_rate
                .is_none()
                .then_some(plan.saturation_concurrency),
            predicted_saturation_rps: plan.predicted_saturation,
            rates: Vec::new(),
            stopped_early: None,
        };
        Self {
            plan,
            stage: SweepStage::Synchronous,
            block,
            anchors: Vec::new(),
        }
    }

    /// The sweep's metadata block as measured so far: its anchors (requests/s), the rates run
    /// and why it stopped early, if it did.
    pub fn block(&self) -> &SweepBlock {
        &self.block
    }

    /// What the sweep decided after the last level, for people.
    fn step(&self) -> Option<String> {
        if let Some(why) = &self.block.stopped_early {
            return Some(format!("sweep stopped: {why}"));
        }
        match self.stage {
            SweepStage::Saturation => Some(format!(
                "synchronous: {:.2} requests/s; next, saturation at concurrency {}",
                self.block.synchronous_rps.unwrap_or(f64::NAN),
                self.plan.saturation_concurrency
            )),
            SweepStage::Rates(0) => Some(format!(
                "saturation: {:.2} requests/s; rates to run: {}",
                self.block.saturation_rps.unwrap_or(f64::NAN),
                self.block
                    .rates
                    .iter()
                    .map(|r| format_rate(*r))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => None,
        }
    }

    /// The next level to run.
    pub fn next_shape(&mut self) -> Option<Shape> {
        match self.stage {
            SweepStage::Synchronous => Some(Shape::Closed { concurrency: 1 }),
            SweepStage::Saturation => Some(Shape::Closed {
                concurrency: self.plan.saturation_concurrency,
            }),
            SweepStage::Rates(i) => self.block.rates.get(i).map(|&r| self.plan.open.at(r)),
            SweepStage::Done => None,
        }
    }

    fn stop(&mut self, why: String) {
        self.block.stopped_early = Some(why);
        self.stage = SweepStage::Done;
    }

    fn plan_rates(&mut self) {
        let (Some(lo), Some(hi)) = (self.block.synchronous_rps, self.block.saturation_rps) else {
            return;
        };
        self.block.rates = sweep_rates(lo, hi.max(lo), self.plan.points, self.plan.spacing);
        self.stage = SweepStage::Rates(0);
    }

    /// A level ended (`None`: nothing was measured).
    pub fn ended(&mut self, key: &str, level: Option<&ChatLevel>) {
        let rps = level.map_or(f64::NAN, level_rps);
        match self.stage.clone() {
            SweepStage::Synchronous => {
                self.anchors.push(key.to_string());
                if !(rps.is_finite() && rps > 0.0) {
                    return self.stop("no request succeeded at concurrency 1".into());
                }
                self.block.synchronous_rps = Some(rps);
                if self.plan.max_rate.is_some() {
                    self.plan_rates();
                } else {
                    self.stage = SweepStage::Saturation;
                }
            }
            SweepStage::Saturation => {
                self.anchors.push(key.to_string());
                if !(rps.is_finite() && rps > 0.0) {
                    return self.stop(format!(
                        "no request succeeded at concurrency {}",
                        self.plan.saturation_concurrency
                    ));
                }
                self.block.saturation_rps = Some(rps);
                self.plan_rates();
            }
            SweepStage::Rates(i) => {
                let Some(level) = level else {
                    return self.stop(format!("nothing was measured at {key} requests/s"));
                };
                if let Some(why) = saturation(level, self.plan.max_error_rate) {
                    // Past the last rate there is nothing to skip.
                    if i + 1 < self.block.rates.len() {
                        return self.stop(format!("at {key} requests/s: {why}"));
                    }
                }
                self.stage = if i + 1 < self.block.rates.len() {
                    SweepStage::Rates(i + 1)
                } else {
                    SweepStage::Done
                };
            }
            SweepStage::Done => {}
        }
    }
}

/// How an SLO search is asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPlan {
    /// The load the search varies: the request rate (open loops) or the concurrency (closed
    /// loops).
    pub axis: SearchAxis,
    /// The thresholds a probe must meet to pass (`--slo`), in milliseconds.
    pub objectives: Vec<Objective>,
    /// The least share (0–1) of requests that must meet every threshold at once
    /// (`--slo_attainment`); `None`: only the statistics are judged.
    pub attainment: Option<f64>,
    /// Done when `lowest_failing / highest_passing − 1` is at most this.
    pub tolerance: f64,
    /// At most this many probes.
    pub max_probes: u64,
    /// Where to start (a rate or a concurrency); `None`: the rate measured at concurrency 1
    /// (or concurrency 1).
    pub start: Option<f64>,
    /// Each step of the bracketing multiplies or divides the load by this (2 by default; less
    /// when the start is a prediction).
    pub step: f64,
    /// A probe whose share of failed requests exceeds this (0–1) fails.
    pub max_error_rate: f64,
    /// The shape of the open loops of a rate search.
    pub open: OpenTemplate,
    /// The least measured requests per probe, for the highest percentile among the objectives
    /// to have a confidence interval ([`min_requests`]).
    pub min_requests: u64,
}

/// An SLO search in progress.
#[derive(Debug, Clone)]
pub struct SloSearch {
    plan: SearchPlan,
    /// The synchronous anchor's key when one is being measured.
    anchor: Option<String>,
    next: Option<f64>,
    block: SloSearchBlock,
    /// The load the search started from, for the bound on halving.
    start: Option<f64>,
}

impl SloSearch {
    /// A search at its start: at the plan's start, or, for a rate search without one, after
    /// measuring the rate at concurrency 1.
    pub fn new(plan: SearchPlan) -> Self {
        let start = match (plan.axis, plan.start) {
            (_, Some(s)) => Some(s),
            (SearchAxis::Concurrency, None) => Some(1.0),
            (SearchAxis::Rate, None) => None,
        };
        let block = SloSearchBlock {
            axis: plan.axis,
            objectives: plan.objectives.clone(),
            attainment: plan.attainment,
            min_requests: plan.min_requests,
            tolerance: plan.tolerance,
            highest_passing: None,
            lowest_failing: None,
            level: None,
            goodput_rps: None,
            probes: Vec::new(),
            outcome: "the search has not finished".into(),
        };
        Self {
            plan,
            anchor: None,
            next: start,
            block,
            start,
        }
    }

    /// The search's metadata block as measured so far: every probe, the bracket of highest
    /// passing and lowest failing load, and its outcome in words.
    pub fn block(&self) -> &SloSearchBlock {
        &self.block
    }

    /// What the search decided after the last level, for people.
    fn step(&self) -> Option<String> {
        let verdict = self.block.probes.last().map(|p| match &p.reason {
            None => "passes".to_string(),
            Some(r) => format!("fails: {r}"),
        });
        let next = match self.next {
            Some(v) => format!("next probe: {} {}", self.show(v), self.unit()),
            None => format!("done: {}", self.block.outcome),
        };
        Some(match verdict {
            Some(v) => format!("{v}; {next}"),
            None => next,
        })
    }

    fn shape(&self, value: f64) -> Shape {
        match self.plan.axis {
            SearchAxis::Rate => self.plan.open.at(value),
            SearchAxis::Concurrency => Shape::Closed {
                concurrency: value as u64,
            },
        }
    }

    /// The next level to run.
    pub fn next_shape(&mut self) -> Option<Shape> {
        if self.start.is_none() && self.block.probes.is_empty() && self.anchor.is_none() {
            let s = Shape::Closed { concurrency: 1 };
            self.anchor = Some(s.key());
            return Some(s);
        }
        self.next.map(|v| self.shape(v))
    }

    fn finish(&mut self, outcome: String) {
        self.block.outcome = outcome;
        self.next = None;
    }

    fn unit(&self) -> &'static str {
        match self.plan.axis {
            SearchAxis::Rate => "requests/s",
            SearchAxis::Concurrency => "concurrent requests",
        }
    }

    fn show(&self, v: f64) -> String {
        match self.plan.axis {
            SearchAxis::Rate => format_rate((v * 1000.0).round() / 1000.0),
            SearchAxis::Concurrency => format!("{v:.0}"),
        }
    }

    /// A level ended (`None`: nothing was measured).
    pub fn ended(&mut self, key: &str, level: Option<&ChatLevel>) {
        if self.start.is_none()
            && self.anchor.as_deref() == Some(key)
            && self.block.probes.is_empty()
        {
            // The synchronous anchor: the SLO must hold at concurrency 1, and its rate is where
            // the search starts.
            let Some(level) = level else {
                return self.finish("nothing was measured at concurrency 1".into());
            };
            let (passed, _, _, reason) = judge(
                level,
                &self.plan.objectives,
                self.plan.attainment,
                self.plan.max_error_rate,
            );
            let rps = level_rps(level);
            if !passed {
                return self.finish(format!(
                    "the objectives fail even at concurrency 1: {}",
                    reason.unwrap_or_default()
                ));
            }
            if !(rps.is_finite() && rps > 0.0) {
                return self.finish("no request succeeded at concurrency 1".into());
            }
            let start = (rps * 1000.0).round() / 1000.0;
            self.start = Some(start.max(0.001));
            self.next = self.start;
            return;
        }
        let Some(value) = self.next else { return };
        let (passed, measured_ms, attainment, reason) = match level {
            Some(l) => judge(
                l,
                &self.plan.objectives,
                self.plan.attainment,
                self.plan.max_error_rate,
            ),
            None => (
                false,
                vec![None; self.plan.objectives.len()],
                None,
                Some("nothing measured".into()),
            ),
        };
        self.block.probes.push(SloProbe {
            level: key.to_string(),
            value,
            passed,
            measured_ms,
            attainment,
            reason,
        });
        if passed {
            if self.block.highest_passing.is_none_or(|h| value > h) {
                self.block.highest_passing = Some(value);
                self.block.level = Some(key.to_string());
                self.block.goodput_rps = level
                    .and_then(|l| l.goodput.as_ref())
                    .map(|g| g.requests_per_second);
            }
        } else if self.block.lowest_failing.is_none_or(|l| value < l) {
            self.block.lowest_failing = Some(value);
        }
        self.decide();
    }

    fn decide(&mut self) {
        let (lo, hi) = (self.block.highest_passing, self.block.lowest_failing);
        let unit = self.unit();
        if self.block.probes.len() as u64 >= self.plan.max_probes {
            let what = match (lo, hi) {
                (Some(l), Some(h)) => {
                    format!("between {} and {} {unit}", self.show(l), self.show(h))
                }
                (Some(l), None) => format!("at least {} {unit}", self.show(l)),
                (None, Some(h)) => format!("below {} {unit}", self.show(h)),
                (None, None) => "unknown".into(),
            };
            return self.finish(format!(
                "stopped after {} probes (--slo_max_probes): the capacity is {what}",
                self.block.probes.len()
            ));
        }
        let integer = self.plan.axis == SearchAxis::Concurrency;
        let next = match (lo, hi) {
            (Some(l), Some(h)) => {
                if h / l - 1.0 <= self.plan.tolerance || (integer && h - l <= 1.0) {
                    return self.finish(format!(
                        "the objectives hold at {} {unit} and fail at {}",
                        self.show(l),
                        self.show(h)
                    ));
                }
                if integer {
                    ((l + h) / 2.0).floor()
                } else {
                    (l * h).sqrt()
                }
            }
            (Some(l), None) => {
                let n = l * self.plan.step;
                if integer {
                    n.ceil().max(l + 1.0)
                } else {
                    n
                }
            }
            (None, Some(h)) => {
                let start = self.start.unwrap_or(h);
                if integer && h <= 1.0 {
                    return self.finish(format!(
                        "the objectives fail even at concurrency 1: {}",
                        self.block
                            .probes
                            .last()
                            .and_then(|p| p.reason.clone())
                            .unwrap_or_default()
                    ));
                }
                if !integer && h < start / 64.0 {
                    return self.finish(format!("no load passed, down to {} {unit}", self.show(h)));
                }
                let n = h / self.plan.step;
                if integer {
                    n.floor().max(1.0)
                } else {
                    n
                }
            }
            (None, None) => return self.finish("nothing was measured".into()),
        };
        // A rate is run as its key says (six decimals).
        let next = if integer {
            next
        } else {
            format_rate(next).parse().unwrap_or(next)
        };
        self.next = Some(next);
    }
}

/// The experiment flags as given (`None`/`false`: not given).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExperimentFlags {
    /// `--sweep`.
    pub sweep: bool,
    /// `--sweep_points`: open-loop rates between the end points.
    pub sweep_points: Option<u64>,
    /// `--sweep_spacing`: linear or geometric rates.
    pub sweep_spacing: Option<Spacing>,
    /// `--sweep_max`: the saturation rate, requests/s.
    pub sweep_max: Option<f64>,
    /// `--slo`.
    pub slo: Option<Vec<Objective>>,
    /// `--slo_attainment`: the least share (0–1) of requests meeting every threshold at once.
    pub slo_attainment: Option<f64>,
    /// `--slo_search`: search by request rate or by concurrency.
    pub slo_search: Option<SearchAxis>,
    /// `--slo_tolerance`: done when the bracket is at most this wide, relatively.
    pub slo_tolerance: Option<f64>,
    /// `--slo_max_probes`: at most this many probes.
    pub slo_max_probes: Option<u64>,
    /// `--max_error_rate`: the share (0–1) of failed requests above which a level counts as
    /// saturated.
    pub max_error_rate: Option<f64>,
    /// A start for the search (a rate from the simulator's prediction, `--sweep_from_sim`).
    pub predicted_start: Option<f64>,
    /// The saturation rate the simulator predicts, recorded beside a sweep's measured one.
    pub predicted_saturation: Option<f64>,
}

/// Sweep points when `--sweep_points` is not given.
pub const DEFAULT_SWEEP_POINTS: u64 = 5;
/// The saturation point's concurrency when `--max_concurrency` is not given.
pub const DEFAULT_SATURATION_CONCURRENCY: u64 = 256;
/// The search's tolerance when `--slo_tolerance` is not given: the answer's interval is at most
/// 5% wide.
pub const DEFAULT_TOLERANCE: f64 = 0.05;
/// The search's most probes when `--slo_max_probes` is not given.
pub const DEFAULT_MAX_PROBES: u64 = 16;
/// The share of failed requests above which a level is saturated when `--max_error_rate` is not
/// given: 1%.
pub const DEFAULT_MAX_ERROR_RATE: f64 = 0.01;

impl ExperimentFlags {
    /// Whether a sweep or a search is asked for.
    pub fn any(&self) -> bool {
        self.sweep || self.slo.is_some()
    }

    /// Checks how the experiment flags go with each other and with the load flags, and builds the
    /// experiment (`None`: the levels are the load flags').
    pub fn plan(
        &self,
        batch_sizes: bool,
        max_concurrency: Option<&[u64]>,
        request_rate: Option<&[f64]>,
        open: OpenTemplate,
        confidence: f64,
    ) -> Result<Option<Adaptive>> {
        let invalid = |m: &str| Err(Error::Invalid(m.to_string()));
        if !self.sweep {
            refuse_any(
                &[
                    ("--sweep_points", self.sweep_points.is_some()),
                    ("--sweep_spacing", self.sweep_spacing.is_some()),
                    ("--sweep_max", self.sweep_max.is_some()),
                ],
                |flag| format!("{flag} shapes a sweep: give --sweep"),
            )?;
        }
        if self.slo.is_none() {
            refuse_any(
                &[
                    ("--slo_attainment", self.slo_attainment.is_some()),
                    ("--slo_search", self.slo_search.is_some()),
                    ("--slo_tolerance", self.slo_tolerance.is_some()),
                    ("--slo_max_probes", self.slo_max_probes.is_some()),
                ],
                |flag| format!("{flag} shapes an SLO search: give --slo"),
            )?;
        }
        if !self.any() {
            if self.max_error_rate.is_some() {
                return invalid(
                    "--max_error_rate stops a sweep or an SLO search: give --sweep or --slo",
                );
            }
            return Ok(None);
        }
        if self.sweep && self.slo.is_some() {
            return invalid("--sweep and --slo are two experiments: give one");
        }
        if batch_sizes {
            return invalid(
                "--sweep and --slo choose their own levels; --batch_sizes is for bursts",
            );
        }
        let max_error_rate = self.max_error_rate.unwrap_or(DEFAULT_MAX_ERROR_RATE);
        if self.sweep {
            if request_rate.is_some() {
                return invalid("--sweep chooses its own rates: leave out --request_rate");
            }
            let saturation_concurrency = match max_concurrency {
                None => DEFAULT_SATURATION_CONCURRENCY,
                Some([c]) if self.sweep_max.is_none() => *c,
                Some([_]) => {
                    return invalid(
                        "--sweep_max gives the saturation rate; --max_concurrency would measure it: give one",
                    )
                }
                Some(_) => {
                    return invalid(
                        "with --sweep, --max_concurrency is one value: the closed loop that finds the saturation point",
                    )
                }
            };
            return Ok(Some(Adaptive::Sweep(SweepPlan {
                predicted_saturation: self.predicted_saturation,
                points: self.sweep_points.unwrap_or(DEFAULT_SWEEP_POINTS),
                spacing: self.sweep_spacing.unwrap_or_default(),
                saturation_concurrency,
                max_rate: self.sweep_max,
                max_error_rate,
                open,
            })));
        }
        let objectives = self.slo.clone().unwrap_or_default();
        let axis = self.slo_search.unwrap_or_default();
        let given_start = match (axis, request_rate, max_concurrency) {
            (SearchAxis::Rate, Some(_), Some(_)) | (SearchAxis::Concurrency, Some(_), _) => {
                return invalid(
                    "an SLO search varies one load: --request_rate (one start rate) for --slo_search rate, --max_concurrency (one start) for --slo_search concurrency",
                )
            }
            (SearchAxis::Rate, None, Some(_)) => {
                return invalid(
                    "--max_concurrency starts a concurrency search: add --slo_search concurrency, or give --request_rate to start a rate search",
                )
            }
            (_, Some([r]), None) => Some(*r),
            (_, None, Some([c])) => Some(*c as f64),
            (_, Some(_), None) | (_, None, Some(_)) => {
                return invalid("an SLO search starts from one value, not a list")
            }
            (_, None, None) => None,
        };
        if axis == SearchAxis::Concurrency && self.predicted_start.is_some() {
            return invalid("--sweep_from_sim predicts a rate: it starts a rate search, not a concurrency search");
        }
        let start = given_start.or(self.predicted_start);
        if self.slo_attainment.is_some() {
            per_request_slo(&objectives)?;
        }
        Ok(Some(Adaptive::Search(SearchPlan {
            axis,
            min_requests: min_requests(&objectives, confidence),
            objectives,
            attainment: self.slo_attainment,
            tolerance: self.slo_tolerance.unwrap_or(DEFAULT_TOLERANCE),
            max_probes: self.slo_max_probes.unwrap_or(DEFAULT_MAX_PROBES),
            start,
            // A start the simulator predicted is close: brackets in 25% steps.
            step: if given_start.is_none() && self.predicted_start.is_some() {
                1.25
            } else {
                2.0
            },
            max_error_rate,
            open,
        })))
    }
}

/// An experiment that decides its levels as it goes, as configured.
#[derive(Debug, Clone, PartialEq)]
pub enum Adaptive {
    /// A sweep (`--sweep`).
    Sweep(SweepPlan),
    /// An SLO search (`--slo`).
    Search(SearchPlan),
}

impl Adaptive {
    /// The experiment, ready to run.
    pub fn start(&self) -> Experiment {
        match self {
            Adaptive::Sweep(p) => Experiment::Sweep(Sweep::new(p.clone())),
            Adaptive::Search(p) => Experiment::Search(SloSearch::new(p.clone())),
        }
    }

    /// The least requests a level measures (an SLO search's probes: enough for the highest
    /// percentile's interval).
    pub fn min_requests(&self) -> u64 {
        match self {
            Adaptive::Sweep(_) => 0,
            Adaptive::Search(p) => p.min_requests,
        }
    }

    /// The per-request objectives of a search (for its attainment and goodput), when every
    /// objective has one.
    pub fn per_request_slo(&self) -> Option<Slo> {
        match self {
            Adaptive::Sweep(_) => None,
            Adaptive::Search(p) => per_request_slo(&p.objectives).ok(),
        }
    }

    /// The experiment in a phrase, for the banner.
    pub fn describe(&self) -> String {
        match self {
            Adaptive::Sweep(p) => format!(
                "a sweep: concurrency 1, then {}, then {} {} open-loop rates ({} arrivals) between them",
                match p.max_rate {
                    Some(r) => format!("up to {} requests/s (--sweep_max)", format_rate(r)),
                    None => format!("saturation at concurrency {}", p.saturation_concurrency),
                },
                p.points,
                match p.spacing {
                    Spacing::Linear => "linearly spaced",
                    Spacing::Geometric => "geometrically spaced",
                },
                p.open.arrival.name()
            ),
            Adaptive::Search(p) => format!(
                "an SLO search by {} for {}{}: each probe at least {} requests, until the answer is within {}%",
                match p.axis {
                    SearchAxis::Rate => format!("request rate ({} arrivals)", p.open.arrival.name()),
                    SearchAxis::Concurrency => "concurrency".into(),
                },
                objectives_text(&p.objectives),
                p.attainment
                    .map(|a| format!(", met together by {}% of requests", a * 100.0))
                    .unwrap_or_default(),
                p.min_requests,
                p.tolerance * 100.0
            ),
        }
    }

    /// The open loops' shape, when the experiment runs open loops.
    pub fn open(&self) -> Option<OpenTemplate> {
        match self {
            Adaptive::Sweep(p) => Some(p.open),
            Adaptive::Search(p) => (p.axis == SearchAxis::Rate).then_some(p.open),
        }
    }
}

/// The experiment a chat benchmark runs.
#[derive(Debug, Clone)]
pub enum Experiment {
    /// The levels given, in order.
    Levels(std::vec::IntoIter<Shape>),
    /// A sweep, choosing its rates as it goes.
    Sweep(Sweep),
    /// An SLO search, choosing each probe from the verdicts so far.
    Search(SloSearch),
}

impl Experiment {
    /// The mode of the levels the results will hold.
    pub fn mode(&self) -> Option<Mode> {
        match self {
            Experiment::Levels(_) => None,
            Experiment::Sweep(_) => Some(Mode::OpenLoop),
            Experiment::Search(s) => Some(match s.plan.axis {
                SearchAxis::Rate => Mode::OpenLoop,
                SearchAxis::Concurrency => Mode::ClosedLoop,
            }),
        }
    }
}

impl LevelSource<Shape, ChatLevel, ChatDocument> for Experiment {
    fn next_level(&mut self) -> Option<Shape> {
        match self {
            Experiment::Levels(l) => l.next(),
            Experiment::Sweep(s) => s.next_shape(),
            Experiment::Search(s) => s.next_shape(),
        }
    }

    fn ended(&mut self, _spec: &Shape, key: &str, level: Option<&ChatLevel>) -> Option<String> {
        match self {
            Experiment::Levels(_) => None,
            Experiment::Sweep(s) => {
                s.ended(key, level);
                s.step()
            }
            Experiment::Search(s) => {
                s.ended(key, level);
                s.step()
            }
        }
    }

    fn annotate(&self, doc: &mut ChatDocument) {
        let anchors: Vec<String> = match self {
            Experiment::Levels(_) => return,
            Experiment::Sweep(s) => {
                doc.metadata.sweep = Some(s.block.clone());
                s.anchors.clone()
            }
            Experiment::Search(s) => {
                doc.metadata.slo_search = Some(s.block.clone());
                s.anchor.iter().cloned().collect()
            }
        };
        // The anchors were closed loops measured to place the experiment; the results hold its
        // levels only, one kind of load.
        if self.mode() == Some(Mode::OpenLoop) {
            for a in &anchors {
                // Only while the key still holds the closed loop: an open loop at the same
                // number (1 request/s after concurrency 1) is one of the experiment's levels.
                let anchor = doc.results.get(a).and_then(|l| l.load.as_ref());
                if matches!(anchor, Some(Load::ClosedLoop { .. })) {
                    doc.results.shift_remove(a);
                }
            }
        }
        doc.metadata.mode = self.mode();
        doc.metadata.levels = Some(doc.results.keys().cloned().collect());
        doc.metadata.batch_sizes = match self.mode() {
            Some(Mode::ClosedLoop) => doc.results.keys().filter_map(|k| k.parse().ok()).collect(),
            _ => Vec::new(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_parse_and_bad_ones_are_refused_in_one_line() {
        let o = parse_objectives("ttft_p99:500, tpot_mean:50,e2el_p99.9:4000").unwrap();
        assert_eq!(o.len(), 3);
        assert_eq!(
            (
                o[0].metric.as_str(),
                o[0].statistic.as_str(),
                o[0].threshold_ms
            ),
            ("ttft", "p99", 500.0)
        );
        assert_eq!(o[2].statistic, "p99.9");
        for (bad, says) in [
            ("latency_p99:5", "unknown metric"),
            ("ttft_p120:5", "outside 0–100"),
            ("ttft_p0:5", "outside 0–100"),
            ("ttft_p97:5", "not kept"),
            ("ttft:500", "names no statistic"),
            ("ttft_p99:-1", "positive number"),
            ("ttft_p99:500,ttft_p99:400", "twice"),
            ("", "no objective"),
        ] {
            let e = parse_objectives(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn a_p99_probe_needs_hundreds_of_requests() {
        let o = parse_objectives("ttft_p99:500,tpot_mean:50").unwrap();
        let n = min_requests(&o, 0.95);
        assert_eq!(n as usize, intervals::needed_samples(0.99, 0.95).unwrap());
        assert!(n > 200, "{n}");
        assert_eq!(
            min_requests(&parse_objectives("tpot_mean:5").unwrap(), 0.95),
            20
        );
    }

    #[test]
    fn attainment_takes_the_tighter_threshold_and_refuses_itl() {
        let slo =
            per_request_slo(&parse_objectives("ttft_p99:500,ttft_p50:200,e2el_p90:900").unwrap())
                .unwrap();
        assert_eq!(slo.ttft, Some(0.2));
        assert_eq!(slo.e2el, Some(0.9));
        assert!(per_request_slo(&parse_objectives("itl_p99:50").unwrap()).is_err());
    }

    #[test]
    fn sweep_rates_include_both_ends() {
        assert_eq!(
            sweep_rates(1.0, 5.0, 5, Spacing::Linear),
            vec![1.0, 2.0, 3.0, 4.0, 5.0]
        );
        let g = sweep_rates(1.0, 16.0, 5, Spacing::Geometric);
        assert_eq!(g, vec![1.0, 2.0, 4.0, 8.0, 16.0]);
        assert_eq!(sweep_rates(3.0, 3.0, 4, Spacing::Linear), vec![3.0]);
    }

    fn plan(axis: SearchAxis, start: Option<f64>) -> SearchPlan {
        SearchPlan {
            axis,
            objectives: parse_objectives("ttft_p99:500").unwrap(),
            attainment: None,
            tolerance: 0.05,
            max_probes: 30,
            start,
            step: 2.0,
            max_error_rate: 0.01,
            open: OpenTemplate {
                arrival: Arrival::Constant,
                burstiness: 1.0,
            },
            min_requests: 20,
        }
    }

    /// Drives a search with a verdict function instead of levels.
    fn drive(search: &mut SloSearch, capacity: f64) -> (Option<f64>, Option<f64>, usize) {
        let mut probes = 0;
        while let Some(shape) = search.next_shape() {
            let v = shape.level_number();
            let passed = v <= capacity;
            // Record as `ended` would, without a level: pass/fail by hand.
            search.block.probes.push(SloProbe {
                level: shape.key(),
                value: v,
                passed,
                measured_ms: vec![],
                attainment: None,
                reason: None,
            });
            if passed {
                if search.block.highest_passing.is_none_or(|h| v > h) {
                    search.block.highest_passing = Some(v);
                }
            } else if search.block.lowest_failing.is_none_or(|l| v < l) {
                search.block.lowest_failing = Some(v);
            }
            search.decide();
            probes += 1;
            assert!(probes < 40, "runaway search");
        }
        (
            search.block.highest_passing,
            search.block.lowest_failing,
            probes,
        )
    }

    #[test]
    fn a_rate_search_brackets_then_bisects_to_the_tolerance() {
        for capacity in [0.3, 3.7, 57.14, 1234.5] {
            let mut s = SloSearch::new(plan(SearchAxis::Rate, Some(5.0)));
            let (lo, hi, probes) = drive(&mut s, capacity);
            let (lo, hi) = (lo.unwrap(), hi.unwrap());
            assert!(lo <= capacity && capacity < hi, "{capacity}: [{lo}, {hi}]");
            assert!(hi / lo - 1.0 <= 0.05 + 1e-6, "{capacity}: [{lo}, {hi}]");
            assert!(probes <= 16, "{capacity}: {probes} probes");
            assert!(s.block.outcome.contains("hold at"), "{}", s.block.outcome);
        }
    }

    #[test]
    fn a_concurrency_search_ends_on_neighbours() {
        let mut s = SloSearch::new(plan(SearchAxis::Concurrency, None));
        let (lo, hi, _) = drive(&mut s, 37.0);
        assert_eq!((lo, hi), (Some(37.0), Some(38.0)));
        let mut s = SloSearch::new(plan(SearchAxis::Concurrency, None));
        let (lo, hi, _) = drive(&mut s, 0.5);
        assert_eq!((lo, hi), (None, Some(1.0)));
        assert!(s.block.outcome.contains("even at concurrency 1"));
    }

    #[test]
    fn a_search_that_never_passes_gives_up_and_says_so() {
        let mut s = SloSearch::new(plan(SearchAxis::Rate, Some(8.0)));
        let (lo, hi, probes) = drive(&mut s, 0.0);
        assert_eq!(lo, None);
        assert!(hi.unwrap() < 8.0 / 64.0);
        assert!(probes <= 8);
        assert!(
            s.block.outcome.contains("no load passed"),
            "{}",
            s.block.outcome
        );
    }
}
