//! A run over time (`--timeline`): the `timeline` blocks of a chat file's levels on one time
//! axis, in stacked panels — requests/s sent and completed (and failed, when any did), requests
//! in flight (with the server's running and waiting gauges), output tokens/s, TTFT p50 and p99,
//! and the server's KV-cache usage — so a rise in time to first token can be read against the
//! queue that caused it.
//!
//! The levels of a run share its clock, so they follow each other on the axis: x is seconds
//! since the file's first bucket. Each level starts at a thin vertical line named after it
//! (`concurrency 8`, `2.5 req/s`), and its warm-up (before `measured_from_seconds`) is shaded.
//! Counts become rates over the bucket (count / `interval_seconds`), drawn at the bucket's
//! middle; the requests in flight at its end. A bucket without a value (no first token in it,
//! no scrape of the server) and the time between levels are gaps in the line, never zeros.
//! Several files overlay, each in its own colour on its own axis from its own first bucket, the
//! quantities of a panel told apart by their stroke.

use tokenomics_stats::{ChatDocument, ChatLevel, Load, Mode, TimelineBlock};

use crate::figures::{
    Figure, LegendItem, Level, Line, Panel, Point, Rule, RuleAt, RuleKind, Series, Span, Spread,
    Stroke, XAxis,
};
use crate::units::Unit;

/// A column of one level over time: seconds since the file's first bucket, and the value there
/// (`None`: a gap).
pub type Column = Vec<(f64, Option<f64>)>;

/// One level's timeline, on its file's time axis.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelTimeline {
    /// The level's key in `results`.
    pub key: String,
    /// As a reader names it: `concurrency 8`, `2.5 req/s`, `batch size 16`.
    pub name: String,
    /// Where its first bucket starts, seconds since the file's first bucket.
    pub start: f64,
    /// Where its measurement started (the end of its warm-up), same clock.
    pub measured_from: f64,
    /// Where its last bucket ends, same clock.
    pub end: f64,
    /// Requests sent per second, at each bucket's middle.
    pub sent_per_second: Column,
    /// Requests that ended successfully, per second.
    pub completed_per_second: Column,
    /// Requests that failed, per second.
    pub errors_per_second: Column,
    /// Requests in flight at each bucket's end.
    pub in_flight: Column,
    /// Output tokens per second.
    pub output_tokens_per_second: Column,
    /// TTFT p50 and p99 of the requests whose first token arrived in the bucket, seconds.
    pub ttft_p50: Column,
    /// TTFT p99 of the same requests, seconds.
    pub ttft_p99: Column,
    /// The server's gauges (with `--server_metrics`): requests running and waiting, and the
    /// share of the KV cache in use (0 to 1), at each bucket's middle.
    pub server: Option<ServerColumns>,
}

/// The server's gauges of a level over time.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerColumns {
    /// Requests the server was running (`vllm:num_requests_running`).
    pub running: Column,
    /// Requests waiting in the server's queue (`vllm:num_requests_waiting`).
    pub waiting: Column,
    /// The share of the KV cache in use, 0 to 1.
    pub kv_usage: Column,
}

/// What a chat file has to draw over time.
#[derive(Debug, Clone, PartialEq)]
pub struct FileTimeline {
    /// Its levels with a timeline, in order of their start.
    pub levels: Vec<LevelTimeline>,
    /// Levels without one (named as a reader names them), left out.
    pub skipped: Vec<String>,
}

fn running(l: &LevelTimeline) -> Option<&Column> {
    l.server.as_ref().map(|s| &s.running)
}

fn waiting(l: &LevelTimeline) -> Option<&Column> {
    l.server.as_ref().map(|s| &s.waiting)
}

fn kv(l: &LevelTimeline) -> Option<&Column> {
    l.server.as_ref().map(|s| &s.kv_usage)
}

/// A `timeline` block that cannot be read: its level (as a reader names it) and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Malformed {
    /// The level, as a reader names it (`concurrency 64`).
    pub level: String,
    /// What is wrong with its timeline.
    pub reason: String,
}

fn mode_of(doc: &ChatDocument, level: &ChatLevel) -> Mode {
    level
        .load
        .as_ref()
        .map(Load::mode)
        .or(doc.metadata.mode)
        .unwrap_or(Mode::Burst)
}

/// A level's name on a timeline: `batch size 16`, `concurrency 8`, `2.5 requests/s` (a sweep's rate
/// of many decimals to three significant digits).
pub fn level_label(mode: Mode, key: &str) -> String {
    crate::figures::level_name(mode, &crate::figures::readable_key(key))
}

/// A value that is a number, else a gap.
fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

/// The columns of one block, on a clock whose zero is `origin` (seconds on the run's clock).
/// Checks what a file controls: a positive, finite bucket width, finite times, and every
/// column as long as `sent`.
pub fn level_timeline(
    key: &str,
    name: &str,
    block: &TimelineBlock,
    origin: f64,
) -> Result<LevelTimeline, Malformed> {
    let bad = |reason: String| Malformed {
        level: name.to_string(),
        reason,
    };
    let dt = block.interval_seconds;
    if !(dt.is_finite() && dt > 0.0) {
        return Err(bad(format!(
            "interval_seconds is {dt}, not a positive number of seconds"
        )));
    }
    for (field, v) in [
        ("start_seconds", block.start_seconds),
        ("measured_from_seconds", block.measured_from_seconds),
    ] {
        if !v.is_finite() {
            return Err(bad(format!("{field} is not a number")));
        }
    }
    let n = block.len();
    let mut lengths = vec![
        ("completed", block.completed.len()),
        ("errors", block.errors.len()),
        ("in_flight", block.in_flight.len()),
        ("output_tokens", block.output_tokens.len()),
        ("ttft_p50_seconds", block.ttft_p50_seconds.len()),
        ("ttft_p99_seconds", block.ttft_p99_seconds.len()),
    ];
    if let Some(s) = &block.server {
        lengths.extend([
            ("server.running", s.running.len()),
            ("server.waiting", s.waiting.len()),
            ("server.kv_usage", s.kv_usage.len()),
        ]);
    }
    if let Some((field, len)) = lengths.iter().find(|(_, len)| *len != n) {
        return Err(bad(format!("{field} has {len} buckets where sent has {n}")));
    }
    let start = block.start_seconds - origin;
    let mid = |i: usize| start + (i as f64 + 0.5) * dt;
    let end_of = |i: usize| start + (i as f64 + 1.0) * dt;
    let rate = |counts: &[u64]| -> Column {
        counts
            .iter()
            .enumerate()
            .map(|(i, &c)| (mid(i), Some(c as f64 / dt)))
            .collect()
    };
    let gauge = |values: &[Option<f64>]| -> Column {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| (mid(i), finite(v)))
            .collect()
    };
    Ok(LevelTimeline {
        key: key.to_string(),
        name: name.to_string(),
        start,
        measured_from: block.measured_from_seconds - origin,
        end: end_of(n.saturating_sub(1)).max(start),
        sent_per_second: rate(&block.sent),
        completed_per_second: rate(&block.completed),
        errors_per_second: rate(&block.errors),
        in_flight: block
            .in_flight
            .iter()
            .enumerate()
            .map(|(i, &c)| (end_of(i), Some(c as f64)))
            .collect(),
        output_tokens_per_second: rate(&block.output_tokens),
        ttft_p50: gauge(&block.ttft_p50_seconds),
        ttft_p99: gauge(&block.ttft_p99_seconds),
        server: block.server.as_ref().map(|s| ServerColumns {
            running: gauge(&s.running),
            waiting: gauge(&s.waiting),
            kv_usage: gauge(&s.kv_usage),
        }),
    })
}

/// The timelines of a chat document's levels, on one axis from the first bucket of any of them.
/// A level without a timeline (or with an empty one) is skipped; a malformed block is an error.
pub fn file_timeline(doc: &ChatDocument) -> Result<FileTimeline, Malformed> {
    let mut with: Vec<(&String, &ChatLevel, &TimelineBlock)> = Vec::new();
    let mut skipped = Vec::new();
    for (key, level) in &doc.results {
        match &level.timeline {
            Some(t) if !t.is_empty() => with.push((key, level, t)),
            _ => skipped.push(level_label(mode_of(doc, level), key)),
        }
    }
    let origin = with
        .iter()
        .map(|(_, _, t)| t.start_seconds)
        .filter(|s| s.is_finite())
        .fold(f64::INFINITY, f64::min);
    let mut levels = with
        .into_iter()
        .map(|(key, level, t)| {
            level_timeline(
                key.trim(),
                &level_label(mode_of(doc, level), key),
                t,
                origin,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    levels.sort_by(|a, b| a.start.total_cmp(&b.start));
    Ok(FileTimeline { levels, skipped })
}

/// One quantity of a panel: its name, stroke, colour when one file is drawn, and its column.
struct Quantity {
    name: &'static str,
    stroke: Stroke,
    color: usize,
    column: fn(&LevelTimeline) -> Option<&Column>,
}

/// A file's series of one quantity: every level's column, each stretch between gaps (and each
/// level) a run of its own, values times `scale`.
fn series_of(
    label: String,
    color: usize,
    stroke: Stroke,
    file: &FileTimeline,
    column: fn(&LevelTimeline) -> Option<&Column>,
    scale: f64,
) -> Series {
    let mut points = Vec::new();
    let mut runs: Vec<Vec<usize>> = Vec::new();
    for level in &file.levels {
        let mut run: Vec<usize> = Vec::new();
        for &(x, v) in column(level).into_iter().flatten() {
            match v {
                Some(y) => {
                    run.push(points.len());
                    points.push(Point {
                        level: Level {
                            value: x,
                            label: String::new(),
                        },
                        y: y * scale,
                        range: None,
                        note: None,
                    });
                }
                None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
                None => {}
            }
        }
        if !run.is_empty() {
            runs.push(run);
        }
    }
    Series {
        label,
        points,
        gaps: Vec::new(),
        line: Line::Trace(runs),
        color: Some(color),
        stroke,
    }
}

fn has_value(
    files: &[(String, &FileTimeline)],
    column: fn(&LevelTimeline) -> Option<&Column>,
) -> bool {
    files.iter().any(|(_, f)| {
        f.levels
            .iter()
            .filter_map(column)
            .flatten()
            .any(|(_, v)| v.is_some_and(|v| v != 0.0))
    })
}

/// A panel of `quantities` for every file: with one file, each quantity in its own colour and
/// stroke; with several, each file in its colour and each quantity in its stroke, the legend
/// naming both.
fn panel(
    files: &[(String, &FileTimeline)],
    title: String,
    y_label: String,
    unit: Unit,
    quantities: &[Quantity],
    x: &XAxis,
    x_label: &str,
) -> Panel {
    let several = files.len() > 1;
    let mut series = Vec::new();
    for (i, (label, file)) in files.iter().enumerate() {
        for q in quantities {
            let (name, color) = match (several, quantities.len()) {
                (false, _) => (q.name.to_string(), q.color),
                (true, 1) => (label.clone(), i),
                (true, _) => (format!("{label} · {}", q.name), i),
            };
            series.push(series_of(
                name,
                color,
                q.stroke,
                file,
                q.column,
                unit.per_base(),
            ));
        }
    }
    let legend = several.then(|| {
        // The files with something in this panel (the server's gauges may be one file's only).
        let drawn = |i: usize| {
            series[i * quantities.len()..(i + 1) * quantities.len()]
                .iter()
                .any(|s| !s.points.is_empty())
        };
        let mut items: Vec<LegendItem> = files
            .iter()
            .enumerate()
            .filter(|(i, _)| drawn(*i))
            .map(|(i, (label, _))| LegendItem {
                label: label.clone(),
                color: Some(i),
                stroke: Stroke::Solid,
            })
            .collect();
        if quantities.len() > 1 {
            items.extend(quantities.iter().map(|q| LegendItem {
                label: q.name.to_string(),
                color: None,
                stroke: q.stroke,
            }));
        }
        items
    });
    Panel {
        title,
        x_label: x_label.to_string(),
        y_label,
        unit,
        spread: Spread::StdDev,
        x: x.clone(),
        series,
        rules: Vec::new(),
        spans: Vec::new(),
        legend,
    }
}

/// The timeline figure of chat files given as (label, timeline): stacked panels sharing the time
/// axis, each level's start marked (named on the top panel), its warm-up shaded.
pub fn timeline_figure(files: &[(String, &FileTimeline)], title: &str) -> Figure {
    let several = files.len() > 1;
    let x_max = files
        .iter()
        .flat_map(|(_, f)| f.levels.iter().map(|l| l.end))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let x = XAxis::linear_to(x_max);
    let x_label = if several {
        "seconds since each run's first request was sent"
    } else {
        "seconds since the run's first request was sent"
    };

    let errors = has_value(files, |l| Some(&l.errors_per_second));
    let mut requests = vec![
        Quantity {
            name: "sent",
            stroke: Stroke::Solid,
            color: 0,
            column: |l| Some(&l.sent_per_second),
        },
        Quantity {
            name: "completed",
            stroke: Stroke::Dashed,
            color: 2,
            column: |l| Some(&l.completed_per_second),
        },
    ];
    if errors {
        requests.push(Quantity {
            name: "errors",
            stroke: Stroke::Dotted,
            color: 1,
            column: |l| Some(&l.errors_per_second),
        });
    }
    let any_gauge = |column: fn(&LevelTimeline) -> Option<&Column>| {
        files.iter().any(|(_, f)| {
            f.levels
                .iter()
                .filter_map(column)
                .flatten()
                .any(|(_, v)| v.is_some())
        })
    };
    let mut in_flight = vec![Quantity {
        name: "in flight (client)",
        stroke: Stroke::Solid,
        color: 0,
        column: |l| Some(&l.in_flight),
    }];
    if any_gauge(running) {
        in_flight.push(Quantity {
            name: "running (server)",
            stroke: Stroke::Dashed,
            color: 2,
            column: running,
        });
    }
    if any_gauge(waiting) {
        in_flight.push(Quantity {
            name: "waiting (server)",
            stroke: Stroke::Dotted,
            color: 1,
            column: waiting,
        });
    }
    let ttft_max = files
        .iter()
        .flat_map(|(_, f)| f.levels.iter())
        .flat_map(|l| l.ttft_p50.iter().chain(&l.ttft_p99))
        .filter_map(|(_, v)| *v)
        .fold(0.0, f64::max);
    let ttft_unit = Unit::for_seconds(ttft_max);

    let mut panels = vec![
        panel(
            files,
            if errors {
                "Requests per second: sent, completed and failed".into()
            } else {
                "Requests per second: sent and completed".into()
            },
            "requests/s".into(),
            Unit::PerSecond,
            &requests,
            &x,
            x_label,
        ),
        panel(
            files,
            if in_flight.len() > 1 {
                "Requests in flight (client), running and waiting (server)".into()
            } else {
                "Requests in flight (client)".into()
            },
            "requests".into(),
            Unit::Count,
            &in_flight,
            &x,
            x_label,
        ),
        panel(
            files,
            "Output tokens per second".into(),
            "output tokens/s".into(),
            Unit::PerSecond,
            &[Quantity {
                name: "output tokens/s",
                stroke: Stroke::Solid,
                color: 0,
                column: |l| Some(&l.output_tokens_per_second),
            }],
            &x,
            x_label,
        ),
        panel(
            files,
            "Time to first token (p50 and p99 of the requests whose first token came in the interval)"
                .into(),
            format!("TTFT ({})", ttft_unit.symbol().unwrap_or_default()),
            ttft_unit,
            &[
                Quantity {
                    name: "p50",
                    stroke: Stroke::Solid,
                    color: 0,
                    column: |l| Some(&l.ttft_p50),
                },
                Quantity {
                    name: "p99",
                    stroke: Stroke::Dashed,
                    color: 1,
                    column: |l| Some(&l.ttft_p99),
                },
            ],
            &x,
            x_label,
        ),
    ];
    if any_gauge(kv) {
        panels.push(panel(
            files,
            "KV cache in use (server)".into(),
            "KV cache in use (%)".into(),
            Unit::Percent,
            &[Quantity {
                name: "KV cache in use",
                stroke: Stroke::Solid,
                color: 0,
                column: kv,
            }],
            &x,
            x_label,
        ));
    }

    // Each level's start on every panel, named on the top one; its warm-up shaded.
    let mut warm_up = false;
    for (k, p) in panels.iter_mut().enumerate() {
        for (i, (_, f)) in files.iter().enumerate() {
            for l in &f.levels {
                p.rules.push(Rule {
                    at: RuleAt::X(l.start),
                    label: if k == 0 {
                        l.name.clone()
                    } else {
                        String::new()
                    },
                    series: several.then_some(i),
                    kind: RuleKind::Boundary,
                });
                let to = l.measured_from.min(l.end);
                if to > l.start {
                    warm_up = true;
                    p.spans.push(Span {
                        from: l.start,
                        to,
                        color: several.then_some(i),
                    });
                }
            }
        }
    }
    let mut remarks = vec![if warm_up {
        "vertical lines: where each level starts; shaded: its warm-up, not measured".to_string()
    } else {
        "vertical lines: where each level starts".to_string()
    }];
    if several {
        remarks.push(
            "each file on its own clock, from its first request; colours: files, strokes: quantities"
                .into(),
        );
    }
    Figure {
        title: title.to_string(),
        columns: 1,
        panels,
        panel_size: (2000, 640),
        failed_levels: Vec::new(),
        remarks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_levels() {
        assert_eq!(level_label(Mode::ClosedLoop, "8"), "concurrency 8");
        assert_eq!(level_label(Mode::Burst, "16"), "batch size 16");
        assert_eq!(level_label(Mode::OpenLoop, "2.5"), "2.5 requests/s");
        assert_eq!(level_label(Mode::OpenLoop, "19.022149"), "19 requests/s");
        assert_eq!(level_label(Mode::OpenLoop, "2..60"), "2..60 requests/s");
    }
}
