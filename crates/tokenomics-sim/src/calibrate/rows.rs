//! The calibration set as data: the rows of `calibration/rows.json` (embedded at build time),
//! their types, and the checks that make a row usable (a known engine preset, positive figures, a
//! reason for every unmet figure, a well-formed load).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The calibration rows, as published in the repository (`calibration/rows.json` at the crate
/// root), embedded when the crate is built.
pub const ROWS_JSON: &str = include_str!("../../calibration/rows.json");

/// The file's top level.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RowsFile {
    rows: Vec<Row>,
}

/// One public measurement: where it was published, what was measured, and what it reported.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    /// A stable name for the row, unique in the set; presets' `--describe` and the table use it.
    pub id: String,
    /// Who published it, and what it is (a CI job, a README, a blog post); the part before the
    /// first comma names the publisher.
    pub source: String,
    /// Where it can be read.
    pub url: String,
    /// The serving software and how it was driven.
    pub engine: String,
    /// As the source states it (or says that it does not).
    pub engine_version: String,
    /// The GPU, as the source names it.
    pub gpu: String,
    /// GPUs serving one model instance (the tensor-parallel size).
    pub gpus: u64,
    /// The model, as the source names it.
    pub model: String,
    /// Weight precision, as the source states it.
    pub precision: String,
    /// The preset that simulates this setup (an engine preset; checked by [`rows`]).
    pub preset: String,
    /// The lengths and the load to replay.
    pub workload: Workload,
    /// The figures the source reports, each with its status.
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
    /// Standard deviation of the output lengths, tokens: > 0 draws each length from a Gamma
    /// distribution with this mean and standard deviation (seeded by `seed`).
    #[serde(default)]
    pub output_tokens_std: f64,
    /// How the requests arrive.
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
    Batch {
        /// Requests in the burst.
        requests: usize,
    },
    /// `concurrency` requests at once; each completion sends the next, `requests` in all.
    ClosedLoop {
        /// Requests in flight at any time (until the last ones end).
        concurrency: usize,
        /// Requests in all.
        requests: usize,
    },
    /// `requests` requests with Poisson arrivals at `rate_per_s` per second.
    OpenLoop {
        /// Mean arrivals per second.
        rate_per_s: f64,
        /// Requests in all.
        requests: usize,
    },
}

impl Load {
    /// Requests in all.
    pub fn requests(&self) -> usize {
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
    /// First request sent → last response ended, ms.
    BatchLatencyMs,
    /// Mean of send → first token, ms.
    MeanTtftMs,
    /// Median of send → first token, ms.
    MedianTtftMs,
    /// Mean over requests of (end − first token) / (tokens − 1), ms.
    MeanTpotMs,
    /// Median over requests of (end − first token) / (tokens − 1), ms.
    MedianTpotMs,
    /// Mean of every gap between consecutive tokens, pooled over requests, ms.
    MeanItlMs,
    /// Median of every gap between consecutive tokens, pooled over requests, ms.
    MedianItlMs,
    /// Per request output tokens / (end − send), averaged, tokens per second.
    MeanRequestTokensPerS,
    /// All output tokens / (first send → last end), tokens per second.
    OutputTokensPerS,
    /// Requests / (first send → last end), per second.
    RequestsPerS,
}

impl Metric {
    /// The figure's name in tables, with its unit.
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
    /// The status as the data and the table spell it.
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
    /// What was measured (its unit is in the metric's name).
    pub metric: Metric,
    /// The value exactly as the source prints it, in the metric's unit.
    pub measured: f64,
    /// What the calibration claims about it.
    pub status: Status,
    /// Why an unmet figure is unmet (present exactly when the status is unmet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The calibration rows, checked: unique ids, known presets with engines, positive figures, a
/// reason for every unmet figure and for no other, a well-formed workload.
pub fn rows() -> Result<Vec<Row>, Error> {
    let file: RowsFile = serde_json::from_str(ROWS_JSON)
        .map_err(|e| Error::Invalid(format!("calibration/rows.json: {e}")))?;
    let mut seen = HashSet::new();
    for row in &file.rows {
        let bad = |what: String| Error::Invalid(format!("calibration row {:?}: {what}", row.id));
        if !seen.insert(row.id.as_str()) {
            return Err(bad("the id is used twice".into()));
        }
        if crate::preset::engine(&row.preset).is_none() {
            return Err(Error::UnknownPreset(
                row.preset.clone(),
                crate::preset::preset_names(),
            ));
        }
        validate(&row.workload).map_err(|e| bad(e.to_string()))?;
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

/// A workload the replay can run: at least one token in and out, a non-negative spread, and a
/// load with requests (a closed loop with at least as many as its concurrency, an open loop
/// with a positive finite rate). [`Error::Invalid`] says what is wrong.
pub(crate) fn validate(w: &Workload) -> Result<(), Error> {
    if w.input_tokens == 0 || w.output_tokens == 0 {
        return Err(Error::Invalid(
            "input and output tokens must be at least 1".into(),
        ));
    }
    if !(w.output_tokens_std.is_finite() && w.output_tokens_std >= 0.0) {
        return Err(Error::Invalid(
            "output_tokens_std must be a non-negative number".into(),
        ));
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
        _ => Err(Error::Invalid(format!(
            "the load {:?} is empty or malformed",
            w.load
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(load: Load) -> Workload {
        Workload {
            input_tokens: 10,
            output_tokens: 10,
            output_tokens_std: 0.0,
            load,
            seed: 0,
        }
    }

    #[test]
    fn the_published_rows_load() {
        let rows = rows().unwrap();
        assert!(!rows.is_empty());
        assert!(rows.iter().all(|r| !r.figures.is_empty()));
    }

    #[test]
    fn malformed_workloads_are_invalid_errors() {
        let bad = [
            workload(Load::Batch { requests: 0 }),
            workload(Load::ClosedLoop {
                concurrency: 4,
                requests: 3,
            }),
            workload(Load::OpenLoop {
                rate_per_s: f64::NAN,
                requests: 10,
            }),
            Workload {
                input_tokens: 0,
                ..workload(Load::Batch { requests: 1 })
            },
            Workload {
                output_tokens_std: -1.0,
                ..workload(Load::Batch { requests: 1 })
            },
        ];
        for w in bad {
            assert!(matches!(validate(&w), Err(Error::Invalid(_))), "{w:?}");
        }
        assert!(validate(&workload(Load::ClosedLoop {
            concurrency: 4,
            requests: 4
        }))
        .is_ok());
    }
}
