//! The throughput–interactivity frontier of chat result files: one point per level, output
//! tokens/s per GPU (what the hardware earns) against output tokens/s per user (what each user
//! sees), and each file's Pareto frontier — the levels no other level of the file beats on both.
//!
//! Interactivity is 1 / mean TPOT (time per output token after the first, from the level's
//! `latency` block); a level without one (a non-streamed run) falls back to its mean request
//! tokens/s, which counts the wait for the first token too, and the figure says so. Throughput is
//! the level's `cost.output_tokens_per_second_per_gpu`, else its whole-run tokens/s over
//! `metadata.cost.gpus`, else the whole deployment's tokens/s (and the axis says so).
//!
//! With a GPU price (`metadata.cost`) a level's cost per million output tokens depends on its
//! throughput per GPU alone: `usd_per_gpu_hour · (1 − input share) / 3600 / y · 10⁶`. Files of
//! one price get horizontal iso-cost lines at round costs ("$0.50 / M tok"); files of different
//! prices get the cost written in the note of each frontier point instead.

use tokenomics_stats::{ChatDocument, ChatLevel, CostBasis, Load, Mode};

use crate::figures::{
    failure, level_name, same, FailedLevel, Figure, Level, Line, Panel, Point, Rule, RuleAt,
    RuleKind, Series, Spread, Stroke, XAxis,
};
use crate::layout::y_scale;
use crate::units::{self, Unit};

/// Indices of the points on the Pareto frontier of `points` (x, y; both larger is better): those
/// that no other point matches on both and beats on one, in increasing x (equal x: larger y
/// first). Points with a coordinate that is not finite are never on it; equal points are both on
/// it.
pub fn pareto_frontier(points: &[(f64, f64)]) -> Vec<usize> {
    let finite = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
    let mut on: Vec<usize> = (0..points.len())
        .filter(|&i| finite(&points[i]))
        .filter(|&i| {
            let (x, y) = points[i];
            !points
                .iter()
                .filter(|p| finite(p))
                .any(|&(ox, oy)| ox >= x && oy >= y && (ox > x || oy > y))
        })
        .collect();
    on.sort_by(|&a, &b| {
        points[a]
            .0
            .total_cmp(&points[b].0)
            .then(points[b].1.total_cmp(&points[a].1))
    });
    on
}

/// Dollars per million output tokens per (output token/s per GPU): a level producing `y` output
/// tokens/s per GPU costs `usd_per_million_factor(basis) / y` dollars per million output tokens.
pub fn usd_per_million_factor(basis: &CostBasis) -> f64 {
    basis.usd_per_gpu_hour * (1.0 - basis.input_cost_share.unwrap_or(0.0)) / 3600.0 * 1e6
}

/// Dollars per million output tokens at `tokens_per_second_per_gpu` (`None` for no output).
pub fn usd_per_million(basis: &CostBasis, tokens_per_second_per_gpu: f64) -> Option<f64> {
    (tokens_per_second_per_gpu.is_finite() && tokens_per_second_per_gpu > 0.0)
        .then(|| usd_per_million_factor(basis) / tokens_per_second_per_gpu)
}

/// An iso-cost line: the output tokens/s per GPU at which output tokens cost `usd_per_million`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IsoCost {
    /// Dollars per million output tokens along the line.
    pub usd_per_million: f64,
    /// Output tokens per second per GPU at which tokens cost that much (the line's y).
    pub tokens_per_second_per_gpu: f64,
}

impl IsoCost {
    /// Its label: `$0.50 / M tok`.
    pub fn label(&self) -> String {
        format!("{} / M tok", units::usd(self.usd_per_million))
    }
}

/// Iso-cost lines at round costs (1, 2, 5 × 10ᵏ dollars per million output tokens) across a
/// throughput axis from 0 to `y_top`: each between 6 % and 96 % of the axis, at least 7 % of it
/// from the next, the cheapest (highest) first, six at most.
pub fn iso_cost_lines(basis: &CostBasis, y_top: f64) -> Vec<IsoCost> {
    let factor = usd_per_million_factor(basis);
    if !(factor.is_finite() && factor > 0.0 && y_top.is_finite() && y_top > 0.0) {
        return Vec::new();
    }
    let (lo, hi) = (0.06 * y_top, 0.96 * y_top);
    let first = (factor / hi).log10().floor() as i32 - 1;
    let last = (factor / lo).log10().ceil() as i32 + 1;
    let mut lines: Vec<IsoCost> = Vec::new();
    for e in first..=last {
        for m in [1.0, 2.0, 5.0] {
            // Written as m / 10^-e for negative powers, so that 0.2 is 2 / 10, not 2 × 0.1.
            let cost = if e < 0 {
                m / 10f64.powi(-e)
            } else {
                m * 10f64.powi(e)
            };
            let y = factor / cost;
            if y < lo || y > hi {
                continue;
            }
            if let Some(prev) = lines.last() {
                if prev.tokens_per_second_per_gpu - y < 0.07 * y_top {
                    continue;
                }
            }
            lines.push(IsoCost {
                usd_per_million: cost,
                tokens_per_second_per_gpu: y,
            });
        }
    }
    lines.truncate(6);
    lines
}

/// Where a point's output tokens/s per user came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interactivity {
    /// 1 / mean TPOT of the level's streamed requests.
    Tpot,
    /// The level's mean request tokens/s (no latency block): the wait for the first token is in
    /// it, so it reads lower than 1 / TPOT would.
    RequestTokens,
}

/// One level of a file on the frontier figure.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontierPoint {
    /// The level's key in `results`.
    pub key: String,
    /// Its name in a note: `c=64`, `b=16`, `8 req/s`.
    pub name: String,
    /// Output tokens/s per user.
    pub interactivity: f64,
    /// Which figure of the level `interactivity` was taken from.
    pub interactivity_from: Interactivity,
    /// Output tokens/s per GPU (of the whole deployment when the file has no GPU count).
    pub throughput: f64,
    /// Dollars per million output tokens (with a GPU price).
    pub usd_per_million: Option<f64>,
}

/// What a file contributes to the frontier figure.
#[derive(Debug, Clone)]
pub struct FilePoints {
    /// One point per level that has the figures a point needs, in the file's order.
    pub points: Vec<FrontierPoint>,
    /// Levels left out, each with why (named as a reader names them: `concurrency 64`).
    pub skipped: Vec<(String, String)>,
    /// Throughput is per GPU (the file says how many GPUs served it).
    pub per_gpu: bool,
    /// The GPU price, when the file has one with at least one GPU.
    pub basis: Option<CostBasis>,
}

impl FilePoints {
    /// Indices of [`FilePoints::points`] on the file's Pareto frontier, in increasing x.
    pub fn frontier(&self) -> Vec<usize> {
        let xy: Vec<(f64, f64)> = self
            .points
            .iter()
            .map(|p| (p.interactivity, p.throughput))
            .collect();
        pareto_frontier(&xy)
    }
}

fn level_mode(doc: &ChatDocument, level: &ChatLevel) -> Mode {
    level
        .load
        .as_ref()
        .map(Load::mode)
        .or(doc.metadata.mode)
        .unwrap_or(Mode::Burst)
}

/// A level's name in a note: `b=16`, `c=64`, `8 req/s`.
fn short_name(mode: Mode, key: &str) -> String {
    match mode {
        Mode::Burst => format!("b={key}"),
        Mode::ClosedLoop => format!("c={key}"),
        Mode::OpenLoop => format!("{} req/s", crate::figures::readable_key(key)),
    }
}

fn positive(x: f64) -> Option<f64> {
    (x.is_finite() && x > 0.0).then_some(x)
}

/// A level's output tokens/s per user, and where it came from.
pub fn interactivity(level: &ChatLevel) -> Option<(f64, Interactivity)> {
    let tpot = level
        .latency
        .as_ref()
        .and_then(|l| positive(l.tpot.mean))
        .map(|t| (1.0 / t, Interactivity::Tpot));
    tpot.or_else(|| {
        positive(level.throughput.request_tokens_per_second.mean)
            .map(|r| (r, Interactivity::RequestTokens))
    })
}

/// The points of a chat document, in the order of its levels.
pub fn file_points(doc: &ChatDocument) -> FilePoints {
    let basis = doc.metadata.cost.filter(|c| c.gpus > 0);
    let mut points = Vec::new();
    let mut skipped = Vec::new();
    for (key, level) in &doc.results {
        let mode = level_mode(doc, level);
        let key = key.trim();
        let batch = level.throughput.batch_tokens_per_second.mean;
        if let Some(reason) = failure(level.requests.as_ref(), batch) {
            skipped.push((level_name(mode, key), reason));
            continue;
        }
        let throughput = match (level.cost, basis) {
            (Some(c), _) if positive(c.output_tokens_per_second_per_gpu).is_some() => {
                Some(c.output_tokens_per_second_per_gpu)
            }
            (_, Some(b)) => positive(batch).map(|t| t / b.gpus as f64),
            (_, None) => positive(batch),
        };
        let (Some(throughput), Some((x, from))) = (throughput, interactivity(level)) else {
            skipped.push((
                level_name(mode, key),
                "no output tokens/s, or no TPOT and no request tokens/s".into(),
            ));
            continue;
        };
        points.push(FrontierPoint {
            key: key.to_string(),
            name: short_name(mode, key),
            interactivity: x,
            interactivity_from: from,
            throughput,
            usd_per_million: basis.and_then(|b| usd_per_million(&b, throughput)),
        });
    }
    FilePoints {
        points,
        skipped,
        per_gpu: basis.is_some(),
        basis,
    }
}

/// The frontier figure: one panel, output tokens/s per GPU against output tokens/s per user,
/// every level a marker with its name, each file's Pareto frontier a line (the other levels
/// hollow), several files in distinct colours with a legend, and the cost per million output
/// tokens as iso-cost lines (files of one price) or in the frontier's notes (several prices).
/// Files are given as (label, document); those with no point add nothing.
pub fn frontier_figure(inputs: &[(String, &ChatDocument)], title: &str) -> Figure {
    let files: Vec<FilePoints> = inputs.iter().map(|(_, d)| file_points(d)).collect();
    let several = inputs.len() > 1;
    let named = |i: usize, text: String| {
        if several {
            format!("{}: {text}", inputs[i].0)
        } else {
            text
        }
    };

    // One price for every priced file: iso-cost lines; several: the cost in the notes.
    let priced: Vec<(usize, CostBasis)> = files
        .iter()
        .enumerate()
        .filter_map(|(i, f)| f.basis.map(|b| (i, b)))
        .collect();
    let one_price = priced.first().map(|(_, b)| *b).filter(|first| {
        priced
            .iter()
            .all(|(_, b)| same(usd_per_million_factor(b), usd_per_million_factor(first)))
    });
    let cost_in_notes = !priced.is_empty() && one_price.is_none();

    let mut remarks = Vec::new();
    let mut failed_levels = Vec::new();
    let mut series = Vec::new();
    for (i, ((label, _), f)) in inputs.iter().zip(&files).enumerate() {
        for (level, reason) in &f.skipped {
            failed_levels.push(FailedLevel {
                input: i,
                level: level.clone(),
                reason: reason.clone(),
            });
        }
        if f.points
            .iter()
            .any(|p| p.interactivity_from == Interactivity::RequestTokens)
        {
            remarks.push(named(
                i,
                "no TPOT (not streamed): tokens/s per user is the mean request tokens/s, \
                 time to first token included"
                    .into(),
            ));
        }
        let frontier = f.frontier();
        let points = f
            .points
            .iter()
            .enumerate()
            .map(|(k, p)| {
                let note = match p.usd_per_million {
                    Some(usd) if cost_in_notes && frontier.contains(&k) => {
                        format!("{} · {}/M", p.name, units::usd(usd))
                    }
                    _ => p.name.clone(),
                };
                Point {
                    level: Level {
                        value: p.interactivity,
                        label: p.key.clone(),
                    },
                    y: p.throughput,
                    range: None,
                    note: Some(note),
                }
            })
            .collect();
        let mixed = files.iter().any(|g| g.per_gpu) && !f.per_gpu;
        series.push(Series {
            label: if mixed {
                format!("{label} (whole deployment)")
            } else {
                label.clone()
            },
            points,
            gaps: Vec::new(),
            line: Line::Through(frontier),
            color: None,
            stroke: Stroke::Solid,
        });
    }

    let all = || files.iter().flat_map(|f| f.points.iter());
    let x_max = all().map(|p| p.interactivity).fold(0.0, f64::max);
    let y_max = all().map(|p| p.throughput).fold(0.0, f64::max);
    let (y_top, _) = y_scale(y_max);

    let mut rules = Vec::new();
    if let Some(basis) = one_price {
        for line in iso_cost_lines(&basis, y_top) {
            rules.push(Rule {
                at: RuleAt::Y(line.tokens_per_second_per_gpu),
                label: line.label(),
                series: None,
                kind: RuleKind::Mark,
            });
        }
        let mut remark = format!(
            "dashed grey lines: cost per million output tokens at {} per GPU-hour",
            units::usd(basis.usd_per_gpu_hour)
        );
        if let Some(share) = basis.input_cost_share.filter(|s| *s > 0.0) {
            remark.push_str(&format!(
                ", {}% of it charged to output tokens",
                units::compact((1.0 - share) * 100.0)
            ));
        }
        let unpriced: Vec<&str> = files
            .iter()
            .zip(inputs)
            .filter(|(f, _)| f.basis.is_none())
            .map(|(_, (l, _))| l.as_str())
            .collect();
        if !unpriced.is_empty() {
            remark.push_str(&format!(" (no price for {})", unpriced.join(", ")));
        }
        remarks.push(remark);
    } else if cost_in_notes {
        remarks.push(
            "the notes of each frontier give the cost per million output tokens at its \
             file's GPU price"
                .into(),
        );
    }

    let fallback = all().filter(|p| p.interactivity_from == Interactivity::RequestTokens);
    let x_label = match (fallback.count(), all().count()) {
        (0, _) => "interactivity: output tokens/s per user (1 / mean TPOT)",
        (n, total) if n == total => {
            "interactivity: output tokens/s per user (mean request tokens/s)"
        }
        _ => "interactivity: output tokens/s per user (1 / mean TPOT, else mean request tokens/s)",
    };
    let y_label = match (
        files.iter().all(|f| f.per_gpu),
        files.iter().any(|f| f.per_gpu),
    ) {
        (true, _) => "output tokens/s per GPU",
        (false, true) => "output tokens/s per GPU (whole deployment where no --gpus given)",
        (false, false) => "output tokens/s (whole deployment; no --gpus given)",
    };
    let panel = Panel {
        title: if several {
            "Throughput against interactivity (lines: each file's Pareto frontier)".into()
        } else {
            "Throughput against interactivity (line: the Pareto frontier)".into()
        },
        x_label: x_label.into(),
        y_label: y_label.into(),
        unit: Unit::PerSecond,
        spread: Spread::StdDev,
        x: XAxis::linear(x_max),
        series,
        rules,
        spans: Vec::new(),
        legend: None,
    };
    Figure {
        title: title.to_string(),
        columns: 1,
        panels: vec![panel],
        panel_size: (1800, 1150),
        failed_levels,
        remarks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_levels() {
        assert_eq!(short_name(Mode::ClosedLoop, "64"), "c=64");
        assert_eq!(short_name(Mode::Burst, "16"), "b=16");
        assert_eq!(short_name(Mode::OpenLoop, "8"), "8 req/s");
        assert_eq!(short_name(Mode::OpenLoop, "19.022149"), "19 req/s");
        assert_eq!(short_name(Mode::OpenLoop, "0.636149"), "0.636 req/s");
    }
}
