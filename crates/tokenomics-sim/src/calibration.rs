//! The presets held against public measurements of real GPUs.
//!
//! `calibration/rows.json` (embedded here) holds one row per public measurement: where it was
//! published, the engine and GPU, the model and precision, the lengths and the load, and the
//! figures the source reports. [`replay`] plays a row's load against an engine in *virtual time*:
//! the live engine's own scheduler (admission, step planning, applying a step; see
//! [`crate::engine`]) runs as a discrete-event simulation whose clock advances by each step's
//! model time instead of sleeping, so the result is exact, deterministic and takes milliseconds.
//! [`compare`] turns a replay into the row's figures, each beside its measured value, with the
//! ratio and whether it lies within [`BAND`].
//!
//! Every figure in the data carries a status: `fitted` (a preset constant was chosen with it),
//! `checked` (it was not used to choose anything) or `unmet` (the model cannot reach it, and the
//! row says why). A calibration is *consistent* when every fitted or checked figure is within the
//! band and every unmet one is not; `tests/calibration.rs` fails otherwise, so a change to the
//! engine cannot silently undo the fit, and a table that says "unmet" cannot hide a figure that
//! has come within the band.

use std::collections::VecDeque;
use std::fmt::Write;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Gamma};
use serde::{Deserialize, Serialize};

use crate::engine::{Emit, Pending, Scheduler};
use crate::preset::EngineSpec;
use crate::Error;

/// A simulated figure agrees with its measurement when `|simulated / measured − 1| ≤ BAND`.
pub const BAND: f64 = 0.15;

/// The calibration rows, as published in the repository.
pub const ROWS_JSON: &str = include_str!("../calibration/rows.json");

/// The file's top level.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RowsFile {
    rows: Vec<Row>,
}

/// One public measurement.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    /// A stable name for the row, used by presets and the table.
    pub id: String,
    /// Who published it, and what it is (a CI job, a README, a blog post).
    pub source: String,
    pub url: String,
    pub engine: String,
    /// As the source states it (or says that it does not).
    pub engine_version: String,
    pub gpu: String,
    /// GPUs serving one model instance (the tensor-parallel size).
    pub gpus: u64,
    pub model: String,
    pub precision: String,
    /// The preset that simulates this setup.
    pub preset: String,
    pub workload: Workload,
    pub figures: Vec<Figure>,
    /// Ambiguities, derivations and assumptions, in words.
    pub notes: String,
}

/// The lengths and the load of a row.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Prompt tokens of every request.
    pub input_tokens: u64,
    /// Output tokens of every request, or their mean when `output_tokens_std` > 0.
    pub output_tokens: u64,
    /// Standard deviation of the output lengths: > 0 draws each length from a Gamma
    /// distribution with this mean and standard deviation (seeded by `seed`).
    #[serde(default)]
    pub output_tokens_std: f64,
    pub load: Load,
    /// Seed of the Poisson arrivals and the length draws.
    #[serde(default)]
    pub seed: u64,
}

/// How requests arrive.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Load {
    /// `requests` requests at once (a burst, or an offline `generate` of that many prompts).
    Batch { requests: usize },
    /// `concurrency` requests at once; each completion sends the next, `requests` in all.
    ClosedLoop { concurrency: usize, requests: usize },
    /// `requests` requests with Poisson arrivals at `rate_per_s`.
    OpenLoop { rate_per_s: f64, requests: usize },
}

impl Load {
    fn requests(&self) -> usize {
        match *self {
            Load::Batch { requests }
            | Load::ClosedLoop { requests, .. }
            | Load::OpenLoop { requests, .. } => requests,
        }
    }
}

/// A figure a source reports. Times in milliseconds, rates per second, as the sources print them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// First request sent → last response ended.
    BatchLatencyMs,
    MeanTtftMs,
    MedianTtftMs,
    /// Per request (end − first token) / (tokens − 1).
    MeanTpotMs,
    MedianTpotMs,
    /// Every gap between consecutive tokens, pooled over requests.
    MeanItlMs,
    MedianItlMs,
    /// Per request output tokens / (end − send), averaged.
    MeanRequestTokensPerS,
    /// All output tokens / (first send → last end).
    OutputTokensPerS,
    /// Requests / (first send → last end).
    RequestsPerS,
}

impl Metric {
    pub fn label(self) -> &'static str {
        match self {
            Metric::BatchLatencyMs => "batch latency ms",
            Metric::MeanTtftMs => "mean TTFT ms",
            Metric::MedianTtftMs => "median TTFT ms",
            Metric::MeanTpotMs => "mean TPOT ms",
            Metric::MedianTpotMs => "median TPOT ms",
            Metric::MeanItlMs => "mean ITL ms",
            Metric::MedianItlMs => "median ITL ms",
            Metric::MeanRequestTokensPerS => "request tok/s",
            Metric::OutputTokensPerS => "output tok/s",
            Metric::RequestsPerS => "requests/s",
        }
    }
}

/// What the calibration claims about a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A preset constant was chosen with this figure; it must stay within the band.
    Fitted,
    /// Not used to choose anything; it must stay within the band.
    Checked,
    /// The model cannot meet it (`reason` says why); it must stay outside the band, or the
    /// table is out of date.
    Unmet,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Fitted => "fitted",
            Status::Checked => "checked",
            Status::Unmet => "unmet",
        }
    }
}

/// One reported figure of a row.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Figure {
    pub metric: Metric,
    /// The value as the source prints it.
    pub measured: f64,
    pub status: Status,
    /// Why an unmet figure is unmet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The calibration rows, checked: known presets with engines, positive figures, a reason for
/// every unmet figure, a sane workload.
pub fn rows() -> Result<Vec<Row>, Error> {
    let file: RowsFile = serde_json::from_str(ROWS_JSON)
        .map_err(|e| Error::Invalid(format!("calibration/rows.json: {e}")))?;
    let mut seen = std::collections::HashSet::new();
    for row in &file.rows {
        let bad = |what: String| Error::Invalid(format!("calibration row {:?}: {what}", row.id));
        if !seen.insert(row.id.clone()) {
            return Err(bad("the id is used twice".into()));
        }
        if crate::preset::engine(&row.preset).is_none() {
            return Err(Error::UnknownPreset(
                row.preset.clone(),
                crate::preset::preset_names(),
            ));
        }
        validate(&row.workload).map_err(bad)?;
        if row.figures.is_empty() {
            return Err(bad("no figures".into()));
        }
        for f in &row.figures {
            if !(f.measured.is_finite() && f.measured > 0.0) {
                return Err(bad(format!(
                    "{} is not a positive number",
                    f.metric.label()
                )));
            }
            let has_reason = f.reason.as_deref().is_some_and(|r| !r.trim().is_empty());
            if (f.status == Status::Unmet) != has_reason {
                return Err(bad(format!(
                    "{}: an unmet figure needs a reason, and only an unmet one has one",
                    f.metric.label()
                )));
            }
        }
    }
    Ok(file.rows)
}

fn validate(w: &Workload) -> Result<(), String> {
    if w.input_tokens == 0 || w.output_tokens == 0 {
        return Err("input and output tokens must be at least 1".into());
    }
    if !(w.output_tokens_std.is_finite() && w.output_tokens_std >= 0.0) {
        return Err("output_tokens_std must be a non-negative number".into());
    }
    match w.load {
        Load::Batch { requests } if requests > 0 => Ok(()),
        Load::ClosedLoop {
            concurrency,
            requests,
        } if concurrency > 0 && requests >= concurrency => Ok(()),
        Load::OpenLoop {
            rate_per_s,
            requests,
        } if requests > 0 && rate_per_s.is_finite() && rate_per_s > 0.0 => Ok(()),
        _ => Err(format!("the load {:?} is empty or malformed", w.load)),
    }
}

/// One request as the replayed engine served it. Times in seconds of model time since the
/// replay began.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestTiming {
    pub arrival_s: f64,
    /// The end of every step that produced one of its tokens.
    pub token_s: Vec<f64>,
    pub end_s: f64,
}

/// A replayed workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    pub requests: Vec<RequestTiming>,
    /// Engine steps run.
    pub steps: u64,
}

/// Plays `workload` against `spec` in virtual time with the live engine's scheduler.
pub fn replay(spec: &EngineSpec, workload: &Workload) -> Result<Replay, Error> {
    validate(workload).map_err(Error::Invalid)?;
    crate::engine::fits(spec, workload.input_tokens, output_cap(workload))?;
    let n = workload.load.requests();
    let outputs = output_lengths(workload, n)?;
    let mut arrivals: VecDeque<(f64, usize)> = match workload.load {
        Load::Batch { requests } => (0..requests).map(|i| (0.0, i)).collect(),
        Load::ClosedLoop { concurrency, .. } => (0..concurrency).map(|i| (0.0, i)).collect(),
        Load::OpenLoop { rate_per_s, .. } => {
            let gap = Exp::new(rate_per_s).map_err(|e| Error::Invalid(e.to_string()))?;
            let mut rng = ChaCha8Rng::seed_from_u64(workload.seed);
            let mut t = 0.0;
            (0..n)
                .map(|i| {
                    let at = t;
                    t += gap.sample(&mut rng);
                    (at, i)
                })
                .collect()
        }
    };
    let mut next_closed = match workload.load {
        Load::ClosedLoop { concurrency, .. } => concurrency,
        _ => n,
    };
    let mut timings: Vec<RequestTiming> = vec![
        RequestTiming {
            arrival_s: f64::NAN,
            token_s: Vec::new(),
            end_s: f64::NAN,
        };
        n
    ];
    let mut scheduler = Scheduler::<usize>::new(spec.clone());
    let (mut now, mut steps) = (0.0f64, 0u64);
    let mut finished = Vec::new();
    loop {
        // Like the live engine: requests that arrived during a step join before the next one.
        while let Some(&(at, i)) = arrivals.front() {
            if at > now {
                break;
            }
            arrivals.pop_front();
            timings[i].arrival_s = at;
            scheduler.enqueue(Pending {
                prompt: workload.input_tokens,
                output: outputs[i],
                handle: i,
            });
        }
        if scheduler.is_idle() {
            match arrivals.front() {
                // An idle engine starts its next step when the next request arrives.
                Some(&(at, _)) => {
                    now = now.max(at);
                    continue;
                }
                None => break,
            }
        }
        let Some(load) = scheduler.plan_step(|_| false) else {
            return Err(Error::Invalid(
                "the replay stalled: requests wait that can never be admitted".into(),
            ));
        };
        now += spec.step_time(load).total();
        steps += 1;
        scheduler.apply_step(|&mut i, emit| {
            match emit {
                Emit::Token => timings[i].token_s.push(now),
                Emit::Finished => {
                    timings[i].end_s = now;
                    finished.push(i);
                }
            }
            true
        });
        // A closed loop sends the next request the moment one ends.
        for _ in finished.drain(..) {
            if next_closed < n {
                arrivals.push_back((now, next_closed));
                next_closed += 1;
            }
        }
    }
    Ok(Replay {
        requests: timings,
        steps,
    })
}

/// The longest output the workload can ask for (for the KV-cache check).
fn output_cap(w: &Workload) -> u64 {
    if w.output_tokens_std > 0.0 {
        // Gamma draws are capped at mean + 6 standard deviations.
        w.output_tokens + (6.0 * w.output_tokens_std).ceil() as u64
    } else {
        w.output_tokens
    }
}

/// Every request's output length: the row's length, or seeded Gamma draws with its mean and
/// standard deviation (at least 1 token, at most [`output_cap`]).
fn output_lengths(w: &Workload, n: usize) -> Result<Vec<u64>, Error> {
    if w.output_tokens_std <= 0.0 {
        return Ok(vec![w.output_tokens; n]);
    }
    let mean = w.output_tokens as f64;
    let shape = (mean / w.output_tokens_std).powi(2);
    let gamma =
        Gamma::new(shape, mean / shape).map_err(|e| Error::Invalid(format!("lengths: {e}")))?;
    // Its own stream, so changing the arrivals does not change the lengths.
    let mut rng = ChaCha8Rng::seed_from_u64(w.seed ^ 0x6C65_6E67_7468_7321);
    let cap = output_cap(w);
    Ok((0..n)
        .map(|_| (gamma.sample(&mut rng).round() as u64).clamp(1, cap))
        .collect())
}

/// The median as numpy computes it (the mean of the two middle values of an even count).
fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

impl Replay {
    /// First arrival → last end, seconds.
    pub fn duration_s(&self) -> f64 {
        let start = self
            .requests
            .iter()
            .map(|r| r.arrival_s)
            .fold(f64::INFINITY, f64::min);
        let end = self
            .requests
            .iter()
            .map(|r| r.end_s)
            .fold(f64::NEG_INFINITY, f64::max);
        end - start
    }

    fn ttfts(&self) -> Vec<f64> {
        self.requests
            .iter()
            .filter_map(|r| Some(r.token_s.first()? - r.arrival_s))
            .collect()
    }

    fn tpots(&self) -> Vec<f64> {
        self.requests
            .iter()
            .filter(|r| r.token_s.len() > 1)
            .map(|r| (r.end_s - r.token_s[0]) / (r.token_s.len() - 1) as f64)
            .collect()
    }

    fn itls(&self) -> Vec<f64> {
        self.requests
            .iter()
            .flat_map(|r| r.token_s.windows(2).map(|w| w[1] - w[0]))
            .collect()
    }

    /// The replay's value of `metric`, in the metric's unit (None when it has no data, such as
    /// TPOT of one-token answers).
    pub fn figure(&self, metric: Metric) -> Option<f64> {
        let ms = |s: Option<f64>| s.map(|s| s * 1e3);
        let tokens: usize = self.requests.iter().map(|r| r.token_s.len()).sum();
        match metric {
            Metric::BatchLatencyMs => Some(self.duration_s() * 1e3),
            Metric::MeanTtftMs => ms(mean(&self.ttfts())),
            Metric::MedianTtftMs => ms(median(self.ttfts())),
            Metric::MeanTpotMs => ms(mean(&self.tpots())),
            Metric::MedianTpotMs => ms(median(self.tpots())),
            Metric::MeanItlMs => ms(mean(&self.itls())),
            Metric::MedianItlMs => ms(median(self.itls())),
            Metric::MeanRequestTokensPerS => mean(
                &self
                    .requests
                    .iter()
                    .map(|r| r.token_s.len() as f64 / (r.end_s - r.arrival_s))
                    .collect::<Vec<_>>(),
            ),
            Metric::OutputTokensPerS => Some(tokens as f64 / self.duration_s()),
            Metric::RequestsPerS => Some(self.requests.len() as f64 / self.duration_s()),
        }
    }
}

/// One figure of a row, measured against simulated.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub row: String,
    pub preset: String,
    pub gpu: String,
    pub metric: Metric,
    pub measured: f64,
    pub simulated: f64,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Comparison {
    /// Simulated over measured.
    pub fn ratio(&self) -> f64 {
        self.simulated / self.measured
    }

    pub fn within_band(&self) -> bool {
        (self.ratio() - 1.0).abs() <= BAND
    }

    /// The status agrees with the replay: fitted and checked figures within the band, unmet
    /// ones outside it.
    pub fn consistent(&self) -> bool {
        match self.status {
            Status::Fitted | Status::Checked => self.within_band(),
            Status::Unmet => !self.within_band(),
        }
    }
}

/// Replays `row` against `spec` and sets each reported figure beside its simulated value.
pub fn compare(row: &Row, spec: &EngineSpec) -> Result<Vec<Comparison>, Error> {
    let replay = replay(spec, &row.workload)
        .map_err(|e| Error::Invalid(format!("calibration row {:?}: {e}", row.id)))?;
    row.figures
        .iter()
        .map(|f| {
            let simulated = replay.figure(f.metric).ok_or_else(|| {
                Error::Invalid(format!(
                    "calibration row {:?}: the replay has no {}",
                    row.id,
                    f.metric.label()
                ))
            })?;
            Ok(Comparison {
                row: row.id.clone(),
                preset: row.preset.clone(),
                gpu: row.gpu.clone(),
                metric: f.metric,
                measured: f.measured,
                simulated,
                status: f.status,
                reason: f.reason.clone(),
            })
        })
        .collect()
}

/// Every row against the preset it names.
pub fn compare_all() -> Result<Vec<Comparison>, Error> {
    let mut out = Vec::new();
    for row in rows()? {
        let spec = crate::preset::engine(&row.preset).ok_or_else(|| {
            Error::UnknownPreset(row.preset.clone(), crate::preset::preset_names())
        })?;
        out.extend(compare(&row, &spec)?);
    }
    Ok(out)
}

/// How [`render`] lays a table out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for a terminal.
    Text,
    /// A Markdown table (the README's).
    Markdown,
}

/// The comparison table: row, preset, figure, measured, simulated, ratio, status, and whether
/// it is within the band; unmet figures' reasons follow the table.
pub fn render(comparisons: &[Comparison], format: Format) -> String {
    let header = [
        "row",
        "preset",
        "figure",
        "measured",
        "simulated",
        "ratio",
        "status",
        "±15%",
    ];
    let cells: Vec<[String; 8]> = comparisons
        .iter()
        .map(|c| {
            [
                c.row.clone(),
                c.preset.clone(),
                c.metric.label().to_string(),
                number(c.measured),
                number(c.simulated),
                format!("{:.3}", c.ratio()),
                c.status.label().to_string(),
                if c.within_band() { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect();
    let mut s = String::new();
    match format {
        Format::Markdown => {
            let _ = writeln!(s, "| {} |", header.join(" | "));
            let _ = writeln!(s, "|{}", "---|".repeat(header.len()));
            for row in &cells {
                let _ = writeln!(s, "| {} |", row.join(" | "));
            }
        }
        Format::Text => {
            let mut widths = header.map(str::len);
            for row in &cells {
                for (w, c) in widths.iter_mut().zip(row) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let line = |cols: &[String]| {
                let mut l = String::new();
                for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
                    // Text left, numbers right.
                    if (3..=5).contains(&i) {
                        let _ = write!(l, "{c:>w$}  ");
                    } else {
                        let _ = write!(l, "{c:<w$}  ");
                    }
                }
                l.trim_end().to_string()
            };
            let _ = writeln!(s, "{}", line(&header.map(String::from)));
            for row in &cells {
                let _ = writeln!(s, "{}", line(row));
            }
        }
    }
    let unmet: Vec<&Comparison> = comparisons
        .iter()
        .filter(|c| c.status == Status::Unmet)
        .collect();
    if !unmet.is_empty() {
        let _ = writeln!(s);
        for c in unmet {
            let _ = writeln!(
                s,
                "unmet: {} {}: {}",
                c.row,
                c.metric.label(),
                c.reason.as_deref().unwrap_or("")
            );
        }
    }
    s
}

fn number(v: f64) -> String {
    if v >= 1000.0 {
        format!("{v:.0}")
    } else if v >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The calibration part of `--describe`: the rows that name `spec`'s preset, replayed against
/// `spec` now, and which were fitted, checked or unmet.
pub(crate) fn describe_fit(spec: &EngineSpec) -> String {
    let mut s = String::from("\ncalibration (public measurements replayed in virtual time, band ±15%; calibration/rows.json):\n");
    let rows = match rows() {
        Ok(rows) => rows,
        Err(e) => {
            let _ = writeln!(s, "  the calibration data does not load: {e}");
            return s;
        }
    };
    let mine: Vec<&Row> = rows.iter().filter(|r| r.preset == spec.name).collect();
    if mine.is_empty() {
        let _ = writeln!(
            s,
            "  no public row names this preset: its constants are the fitted ones of the presets it shares an engine with"
        );
        return s;
    }
    let mut comparisons = Vec::new();
    for row in &mine {
        match compare(row, spec) {
            Ok(c) => comparisons.extend(c),
            Err(e) => {
                let _ = writeln!(s, "  {e}");
            }
        }
    }
    for line in render(&comparisons, Format::Text).lines() {
        if line.is_empty() {
            s.push('\n');
        } else {
            let _ = writeln!(s, "  {line}");
        }
    }
    let ids = |status: Status| {
        let mut v: Vec<&str> = comparisons
            .iter()
            .filter(|c| c.status == status)
            .map(|c| c.row.as_str())
            .collect();
        v.dedup();
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let _ = writeln!(
        s,
        "  fitted on: {}\n  checked only against: {}\n  unmet: {}",
        ids(Status::Fitted),
        ids(Status::Checked),
        ids(Status::Unmet)
    );
    for row in mine {
        let _ = writeln!(s, "  {}: {} — {}", row.id, row.source, row.url);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset::{SchedulingPolicy, H100, LLAMA_3_1_8B};

    fn spec() -> EngineSpec {
        crate::preset::engine("h100-llama-3.1-8b").unwrap()
    }

    fn batch(requests: usize, input: u64, output: u64) -> Workload {
        Workload {
            input_tokens: input,
            output_tokens: output,
            output_tokens_std: 0.0,
            load: Load::Batch { requests },
            seed: 0,
        }
    }

    #[test]
    fn a_batch_is_one_prefill_then_decode_steps_of_the_step_model() {
        let s = spec();
        let r = replay(&s, &batch(8, 32, 128)).unwrap();
        assert_eq!(r.steps, 128);
        let mut expected = s.step_time(EngineSpec::prefill_load(8, 32)).total();
        for k in 1..128u64 {
            expected += s.step_time(EngineSpec::decode_load(8, 32 + k + 1)).total();
        }
        let got = r.figure(Metric::BatchLatencyMs).unwrap() / 1e3;
        assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
        assert!(r.requests.iter().all(|q| q.token_s.len() == 128));
        // TTFT is the prefill step; TPOT the mean decode step.
        let ttft = r.figure(Metric::MeanTtftMs).unwrap() / 1e3;
        let prefill = s.step_time(EngineSpec::prefill_load(8, 32)).total();
        assert!((ttft - prefill).abs() < 1e-12);
        let tpot = r.figure(Metric::MedianTpotMs).unwrap() / 1e3;
        assert!((tpot - (expected - prefill) / 127.0).abs() < 1e-12);
        let tps = r.figure(Metric::OutputTokensPerS).unwrap();
        assert!((tps - 8.0 * 128.0 / expected).abs() < 1e-6);
    }

    #[test]
    fn a_closed_loop_keeps_the_concurrency() {
        let s = spec();
        let w = Workload {
            load: Load::ClosedLoop {
                concurrency: 4,
                requests: 12,
            },
            ..batch(0, 100, 20)
        };
        let r = replay(&s, &w).unwrap();
        // Three waves of four: each wave starts when the previous one ends.
        let mut arrivals: Vec<f64> = r.requests.iter().map(|q| q.arrival_s).collect();
        arrivals.dedup();
        assert_eq!(arrivals.len(), 3, "{arrivals:?}");
        assert_eq!(r.requests[4].arrival_s, r.requests[0].end_s);
        assert!(r.requests.iter().all(|q| q.token_s.len() == 20));
    }

    #[test]
    fn an_open_loop_follows_its_seeded_poisson_schedule() {
        let s = spec();
        let w = Workload {
            load: Load::OpenLoop {
                rate_per_s: 10.0,
                requests: 400,
            },
            seed: 7,
            ..batch(0, 100, 20)
        };
        let a = replay(&s, &w).unwrap();
        assert_eq!(a, replay(&s, &w).unwrap(), "deterministic");
        let last = a.requests.last().unwrap().arrival_s;
        // 399 gaps of mean 0.1 s: within a few standard errors of 39.9 s.
        assert!((last - 39.9).abs() < 4.0, "{last}");
        // Light load: about one token's wait beside the prefill.
        let ttft = a.figure(Metric::MedianTtftMs).unwrap();
        assert!(ttft < 30.0, "{ttft}");
    }

    #[test]
    fn drawn_lengths_have_the_rows_mean_and_spread() {
        let w = Workload {
            output_tokens_std: 3030.0,
            seed: 1,
            ..batch(2000, 113, 6211)
        };
        let lengths = output_lengths(&w, 2000).unwrap();
        let m = lengths.iter().sum::<u64>() as f64 / 2000.0;
        let var = lengths.iter().map(|&l| (l as f64 - m).powi(2)).sum::<f64>() / 1999.0;
        assert!((m - 6211.0).abs() < 200.0, "{m}");
        assert!((var.sqrt() - 3030.0).abs() < 200.0, "{}", var.sqrt());
    }

    #[test]
    fn the_scheduling_policy_changes_what_decoders_see() {
        // A decoder streaming while long prompts keep arriving: prefill-first stalls it for a
        // whole prompt per arrival, chunked prefill spreads the prompt over the decoders' steps.
        let mut chunked = EngineSpec {
            scheduling: SchedulingPolicy::ChunkedPrefill,
            max_num_batched_tokens: 512,
            ..spec()
        };
        chunked.gpu = H100;
        chunked.model = LLAMA_3_1_8B;
        let first = EngineSpec {
            scheduling: SchedulingPolicy::PrefillFirst,
            ..chunked.clone()
        };
        let w = Workload {
            load: Load::OpenLoop {
                rate_per_s: 5.0,
                requests: 50,
            },
            seed: 3,
            ..batch(0, 4000, 200)
        };
        let itl_max = |s: &EngineSpec| {
            replay(s, &w)
                .unwrap()
                .itls()
                .into_iter()
                .fold(0.0, f64::max)
        };
        let (c, f) = (itl_max(&chunked), itl_max(&first));
        assert!(f > 1.5 * c, "prefill-first {f} vs chunked {c}");
    }

    #[test]
    fn median_is_numpys() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn a_request_that_cannot_fit_is_an_error_not_a_hang() {
        let s = EngineSpec {
            kv_capacity_tokens: 100,
            ..spec()
        };
        assert!(replay(&s, &batch(2, 80, 40)).is_err());
    }

    #[test]
    fn status_and_band_agree_both_ways() {
        let c = |simulated: f64, status: Status| Comparison {
            row: "r".into(),
            preset: "p".into(),
            gpu: "g".into(),
            metric: Metric::MeanTpotMs,
            measured: 10.0,
            simulated,
            status,
            reason: None,
        };
        assert!(c(11.4, Status::Fitted).consistent());
        assert!(!c(11.6, Status::Checked).consistent());
        assert!(c(8.4, Status::Unmet).consistent());
        assert!(!c(9.0, Status::Unmet).consistent());
    }
}
