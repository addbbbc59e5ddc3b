//! What a figure shows, independent of how it is drawn: panels, series, points, the gaps where a
//! level failed entirely, and the unit each panel is drawn in — built from result documents.
//!
//! Values are kept in the unit their panel is drawn in ([`Panel::unit`]); each point's note is
//! written in the unit that suits that point (`1.2 s` on a panel drawn in milliseconds is fine).

use tokenomics_stats::{
    ChatDocument, ChatLevel, Distribution, EmbedDocument, EmbedLevel, Load, Mode, RequestCounts,
    Stat,
};

use crate::units::{self, Quantity, Unit};

/// A whole figure: a title and panels laid out row by row in `columns` columns.
#[derive(Debug, Clone)]
pub struct Figure {
    pub title: String,
    pub columns: usize,
    pub panels: Vec<Panel>,
    /// Pixel size of one panel.
    pub panel_size: (u32, u32),
    /// Levels in which no request succeeded: drawn as gaps, and worth telling the user.
    pub failed_levels: Vec<FailedLevel>,
}

impl Figure {
    /// Pixel size of the whole image (panels plus the title band).
    pub fn size(&self) -> (u32, u32) {
        let rows = self.panels.len().div_ceil(self.columns.max(1)) as u32;
        (
            self.panel_size.0 * self.columns as u32,
            self.panel_size.1 * rows + TITLE_HEIGHT,
        )
    }
}

/// Height of the band that holds the figure's title, pixels.
pub const TITLE_HEIGHT: u32 = 100;

/// One level of load along the x axis: a batch size, a concurrency or a request rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    pub value: f64,
    /// As the result file writes it (`16`, `2.5`).
    pub label: String,
}

/// How levels are placed along the x axis.
#[derive(Debug, Clone, PartialEq)]
pub enum XAxis {
    /// Evenly spaced categories, in this order.
    Categories(Vec<Level>),
    /// A log2 axis with ticks at these levels.
    Log2(Vec<Level>),
}

impl XAxis {
    /// The levels with a tick, in order.
    pub fn levels(&self) -> &[Level] {
        match self {
            XAxis::Categories(v) | XAxis::Log2(v) => v,
        }
    }

    /// The labels of the ticks, in order.
    pub fn tick_labels(&self) -> Vec<&str> {
        self.levels().iter().map(|l| l.label.as_str()).collect()
    }

    /// Where a level sits on the axis (category index, or log2 of the value).
    pub fn position(&self, value: f64) -> Option<f64> {
        match self {
            XAxis::Categories(v) => v
                .iter()
                .position(|l| same(l.value, value))
                .map(|i| i as f64),
            XAxis::Log2(_) => (value > 0.0 && value.is_finite()).then(|| value.log2()),
        }
    }
}

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// What a point's range is, for every point of a panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spread {
    /// Mean ± std: a band around the line, which it always contains; drawn shaded.
    StdDev,
    /// The p90 and p99 of the requests, at or above the p50 line: drawn as whiskers and named in
    /// the legend, never as a band the line should be inside.
    Percentiles,
}

#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    /// With the unit, when the values have one: `TTFT (ms)`.
    pub y_label: String,
    /// The unit of every value (and range) of the panel's points.
    pub unit: Unit,
    pub spread: Spread,
    pub x: XAxis,
    pub series: Vec<Series>,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<Point>,
    /// Levels in which no request succeeded: the line is broken there and the level marked.
    pub gaps: Vec<Level>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub level: Level,
    /// In the panel's unit.
    pub y: f64,
    /// Low and high end of the point's range ([`Panel::spread`] says which), in the panel's unit.
    pub range: Option<(f64, f64)>,
    /// The note written next to the point, in the unit that suits it.
    pub note: Option<String>,
}

/// A level of one input in which no request succeeded.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedLevel {
    /// Index of the input (result file) among those drawn.
    pub input: usize,
    /// The level, as a reader names it: `batch size 16`, `2.5 requests/s`.
    pub level: String,
    /// What happened: `all 16 requests failed (http_status ×16: HTTP 500 …)`.
    pub reason: String,
}

/// A value read from a level for a panel, in the files' units. (A distribution is larger than a
/// statistic since it may carry its intervals; one lives for a moment per point.)
#[allow(clippy::large_enum_variant)]
enum Reading {
    MeanStd(Stat),
    Percentiles(Distribution),
}

/// A point in the files' units, before its panel's unit is chosen.
struct RawPoint {
    level: Level,
    y: f64,
    range: Option<(f64, f64)>,
    note: String,
}

/// A panel before its unit is chosen.
struct PanelSpec<L> {
    title: String,
    name: String,
    quantity: Quantity,
    spread: Spread,
    read: fn(&L) -> Option<Reading>,
}

/// One level of a series: where it sits, and either its data or why it has none.
struct LevelOf<'a, L> {
    level: Level,
    data: Result<&'a L, String>,
}

struct SeriesData<'a, L> {
    label: String,
    levels: Vec<LevelOf<'a, L>>,
}

fn build_panel<L>(
    spec: &PanelSpec<L>,
    x: &XAxis,
    x_label: &str,
    series: &[SeriesData<L>],
) -> Panel {
    // Values in the files' units first; the panel's unit follows from the largest.
    let raw: Vec<Vec<RawPoint>> = series
        .iter()
        .map(|s| {
            s.levels
                .iter()
                .filter_map(|l| {
                    let data = l.data.as_ref().ok()?;
                    let (y, range, note) = match (spec.read)(data)? {
                        Reading::MeanStd(st) => {
                            if !st.mean.is_finite() {
                                return None;
                            }
                            let has_std = st.std.is_finite() && st.std > 0.0;
                            let range =
                                has_std.then(|| ((st.mean - st.std).max(0.0), st.mean + st.std));
                            let note = match spec.quantity {
                                Quantity::Time => units::time_mean_std(st.mean, st.std),
                                Quantity::Rate => units::rate_mean_std(st.mean, st.std),
                            };
                            (st.mean, range, note)
                        }
                        Reading::Percentiles(d) => {
                            if !d.p50.is_finite() {
                                return None;
                            }
                            let range =
                                (d.p90.is_finite() && d.p99.is_finite()).then_some((d.p90, d.p99));
                            let note = match spec.quantity {
                                Quantity::Time => units::time(d.p50),
                                Quantity::Rate => units::rate(d.p50),
                            };
                            (d.p50, range, note)
                        }
                    };
                    Some(RawPoint {
                        level: l.level.clone(),
                        y,
                        range,
                        note,
                    })
                })
                .collect()
        })
        .collect();
    let unit = match spec.quantity {
        Quantity::Rate => Unit::PerSecond,
        Quantity::Time => {
            let max = raw
                .iter()
                .flatten()
                .flat_map(|p| [Some(p.y), p.range.map(|r| r.1)])
                .flatten()
                .filter(|v| v.is_finite())
                .fold(0.0f64, f64::max);
            Unit::for_seconds(max)
        }
    };
    let k = unit.per_base();
    let y_label = match unit.symbol() {
        Some(s) => format!("{} ({s})", spec.name),
        None => spec.name.clone(),
    };
    Panel {
        title: spec.title.clone(),
        x_label: x_label.to_string(),
        y_label,
        unit,
        spread: spec.spread,
        x: x.clone(),
        series: series
            .iter()
            .zip(raw)
            .map(|(s, points)| Series {
                label: s.label.clone(),
                points: points
                    .into_iter()
                    .map(|p| Point {
                        level: p.level,
                        y: p.y * k,
                        range: p.range.map(|(lo, hi)| (lo * k, hi * k)),
                        note: Some(p.note),
                    })
                    .collect(),
                gaps: s
                    .levels
                    .iter()
                    .filter(|l| l.data.is_err())
                    .map(|l| l.level.clone())
                    .collect(),
            })
            .collect(),
    }
}

/// Why a level has nothing to draw, or `None` when some request succeeded. Files without a
/// `requests` block (the original's) have nothing to draw when their headline figure is null.
fn failure(requests: Option<&RequestCounts>, headline: f64) -> Option<String> {
    match requests {
        Some(r) if r.succeeded == 0 => Some(describe_failure(r)),
        Some(_) => None,
        None if headline.is_nan() => Some("no request succeeded (its figures are null)".into()),
        None => None,
    }
}

fn describe_failure(r: &RequestCounts) -> String {
    let mut s = match (r.failed, r.cancelled) {
        (0, 0) => "no request was measured".to_string(),
        (0, c) => format!("all {c} requests were cancelled"),
        (1, 0) => "its one request failed".to_string(),
        (f, 0) => format!("all {f} requests failed"),
        (f, c) => format!("{f} requests failed and {c} were cancelled"),
    };
    if let Some((kind, e)) = r.errors.iter().max_by_key(|(_, e)| e.count) {
        let mut message: String = e.first_message.chars().take(80).collect();
        if e.first_message.chars().count() > 80 {
            message.push('…');
        }
        s.push_str(&format!(" ({kind} ×{}: {message})", e.count));
    }
    s
}

/// What a mode's levels are, for axis labels and messages.
fn level_word(mode: Mode) -> &'static str {
    match mode {
        Mode::Burst => "batch size",
        Mode::ClosedLoop => "concurrency",
        Mode::OpenLoop => "request rate",
    }
}

fn level_name(mode: Mode, label: &str) -> String {
    match mode {
        Mode::OpenLoop => format!("{label} requests/s"),
        m => format!("{} {label}", level_word(m)),
    }
}

fn x_label(modes: &[Mode]) -> String {
    match modes {
        [Mode::Burst] | [] => "batch size (concurrent requests)".into(),
        [Mode::ClosedLoop] => "concurrency (requests kept in flight)".into(),
        [Mode::OpenLoop] => "request rate (requests/s)".into(),
        several => several
            .iter()
            .map(|m| level_word(*m))
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

/// A chat level's place on the x axis: its load block's number, else its key's.
fn chat_level(key: &str, level: &ChatLevel) -> Option<f64> {
    let value = match &level.load {
        Some(Load::Burst { batch_size }) => *batch_size as f64,
        Some(Load::ClosedLoop {
            max_concurrency, ..
        }) => *max_concurrency as f64,
        Some(Load::OpenLoop { request_rate, .. }) => *request_rate,
        None => key.trim().parse::<f64>().ok()?,
    };
    (value.is_finite() && value > 0.0).then_some(value)
}

fn sorted_levels(levels: impl IntoIterator<Item = Level>) -> Vec<Level> {
    let mut v: Vec<Level> = Vec::new();
    for l in levels {
        if !v.iter().any(|m| same(m.value, l.value)) {
            v.push(l);
        }
    }
    v.sort_by(|a, b| a.value.total_cmp(&b.value));
    v
}

/// Levels of a chat document that could be drawn (their keys are numbers, or they say what they
/// are in `load`), and those that could not, for a warning.
pub fn chat_keys_skipped(doc: &ChatDocument) -> Vec<String> {
    doc.results
        .iter()
        .filter(|(k, l)| chat_level(k, l).is_none())
        .map(|(k, _)| k.clone())
        .collect()
}

/// Whether a chat document has at least one level with something to draw.
pub fn chat_has_data(doc: &ChatDocument) -> bool {
    doc.results.iter().any(|(k, l)| {
        chat_level(k, l).is_some()
            && failure(
                l.requests.as_ref(),
                l.throughput.batch_tokens_per_second.mean,
            )
            .is_none()
    })
}

/// Whether an embedding document has at least one level with something to draw.
pub fn embed_has_data(doc: &EmbedDocument) -> bool {
    doc.results.iter().any(|(k, l)| {
        embed_key(k).is_some()
            && failure(
                l.requests.as_ref(),
                l.throughput.batch_embeddings_per_second.mean,
            )
            .is_none()
    })
}

fn mean_std(s: &Stat) -> Option<Reading> {
    Some(Reading::MeanStd(*s))
}

/// The chat figure: batch (or whole-run) and request tokens/s stacked; TTFT and ITL beside them
/// when any input has a `latency` block.
pub fn chat_figure(inputs: &[(String, &ChatDocument)], title: &str) -> Figure {
    let mut modes: Vec<Mode> = Vec::new();
    let mut failed_levels = Vec::new();
    let series: Vec<SeriesData<ChatLevel>> = inputs
        .iter()
        .enumerate()
        .map(|(i, (label, doc))| {
            let levels = doc
                .results
                .iter()
                .filter_map(|(key, l)| {
                    let value = chat_level(key, l)?;
                    let mode = l
                        .load
                        .as_ref()
                        .map(Load::mode)
                        .or(doc.metadata.mode)
                        .unwrap_or(Mode::Burst);
                    if !modes.contains(&mode) {
                        modes.push(mode);
                    }
                    let data = match failure(
                        l.requests.as_ref(),
                        l.throughput.batch_tokens_per_second.mean,
                    ) {
                        None => Ok(l),
                        Some(reason) => {
                            failed_levels.push(FailedLevel {
                                input: i,
                                level: level_name(mode, key.trim()),
                                reason: reason.clone(),
                            });
                            Err(reason)
                        }
                    };
                    Some(LevelOf {
                        level: Level {
                            value,
                            label: key.trim().to_string(),
                        },
                        data,
                    })
                })
                .collect();
            SeriesData {
                label: label.clone(),
                levels,
            }
        })
        .collect();
    let x = XAxis::Categories(sorted_levels(
        series
            .iter()
            .flat_map(|s| s.levels.iter().map(|l| l.level.clone())),
    ));
    let x_label = x_label(&modes);
    let sustained = modes.iter().any(|m| *m != Mode::Burst);
    let (tps_title, tps_name) = if sustained {
        (
            "Throughput (whole run, mean ± std over runs)",
            "output tokens/s, whole run",
        )
    } else {
        (
            "Batch throughput (mean ± std over runs)",
            "output tokens/s, whole batch",
        )
    };
    let batch_tps = PanelSpec::<ChatLevel> {
        title: tps_title.into(),
        name: tps_name.into(),
        quantity: Quantity::Rate,
        spread: Spread::StdDev,
        read: |l| mean_std(&l.throughput.batch_tokens_per_second),
    };
    let request_tps = PanelSpec::<ChatLevel> {
        title: "Per-request throughput (mean ± std over requests)".into(),
        name: "output tokens/s per request".into(),
        quantity: Quantity::Rate,
        spread: Spread::StdDev,
        read: |l| mean_std(&l.throughput.request_tokens_per_second),
    };
    let streamed = inputs
        .iter()
        .any(|(_, d)| d.results.values().any(|l| l.latency.is_some()));
    let specs = if streamed {
        let ttft = PanelSpec::<ChatLevel> {
            title: "Time to first token (p50 line, p90–p99 whiskers)".into(),
            name: "TTFT".into(),
            quantity: Quantity::Time,
            spread: Spread::Percentiles,
            read: |l| {
                l.latency
                    .as_ref()
                    .map(|d| Reading::Percentiles(d.ttft.clone()))
            },
        };
        let itl = PanelSpec::<ChatLevel> {
            title: "Inter-token latency (p50 line, p90–p99 whiskers)".into(),
            name: "ITL".into(),
            quantity: Quantity::Time,
            spread: Spread::Percentiles,
            read: |l| {
                l.latency
                    .as_ref()
                    .map(|d| Reading::Percentiles(d.itl.clone()))
            },
        };
        vec![batch_tps, ttft, request_tps, itl]
    } else {
        vec![batch_tps, request_tps]
    };
    Figure {
        title: title.to_string(),
        columns: if streamed { 2 } else { 1 },
        panels: specs
            .iter()
            .map(|s| build_panel(s, &x, &x_label, &series))
            .collect(),
        panel_size: (1800, 1000),
        failed_levels,
    }
}

/// `batch_{B}_seq_{L}` → (B, L).
fn embed_key(key: &str) -> Option<(u64, &str)> {
    let rest = key.strip_prefix("batch_")?;
    let (b, l) = rest.split_once("_seq_")?;
    let b: u64 = b.parse().ok()?;
    (b > 0).then_some((b, l))
}

/// The embedding figure: a 2×2 grid, one line per sequence length (per input), batch size on a
/// log2 axis.
pub fn embed_figure(inputs: &[(String, &EmbedDocument)], title: &str) -> Figure {
    // Series: every (input, sequence length) in order of first appearance.
    let mut keys: Vec<(usize, String)> = Vec::new();
    for (i, (_, d)) in inputs.iter().enumerate() {
        for k in d.results.keys() {
            if let Some((_, l)) = embed_key(k) {
                if !keys.iter().any(|(j, m)| *j == i && m == l) {
                    keys.push((i, l.to_string()));
                }
            }
        }
    }
    let several = inputs.len() > 1;
    let mut failed_levels = Vec::new();
    let series: Vec<SeriesData<EmbedLevel>> = keys
        .iter()
        .map(|(i, length)| {
            let (label, doc) = &inputs[*i];
            let name = if length.chars().all(|c| c.is_ascii_digit()) {
                format!("{length} words")
            } else {
                length.clone()
            };
            let levels = doc
                .results
                .iter()
                .filter_map(|(k, l)| {
                    let (b, _) = embed_key(k).filter(|(_, m)| m == length)?;
                    let data = match failure(
                        l.requests.as_ref(),
                        l.throughput.batch_embeddings_per_second.mean,
                    ) {
                        None => Ok(l),
                        Some(reason) => {
                            failed_levels.push(FailedLevel {
                                input: *i,
                                level: format!("batch size {b}, sequence length {length}"),
                                reason: reason.clone(),
                            });
                            Err(reason)
                        }
                    };
                    Some(LevelOf {
                        level: Level {
                            value: b as f64,
                            label: b.to_string(),
                        },
                        data,
                    })
                })
                .collect();
            SeriesData {
                label: if several {
                    format!("{label} · {name}")
                } else {
                    name
                },
                levels,
            }
        })
        .collect();
    let x = XAxis::Log2(sorted_levels(
        series
            .iter()
            .flat_map(|s| s.levels.iter().map(|l| l.level.clone())),
    ));
    let x_label = "batch size (concurrent requests, log2 scale)";
    let has_latency = inputs
        .iter()
        .any(|(_, d)| d.results.values().any(|l| l.latency.is_some()));
    let mut specs = vec![
        PanelSpec::<EmbedLevel> {
            title: "Batch embedding throughput (mean ± std over runs)".into(),
            name: "embeddings/s, whole batch".into(),
            quantity: Quantity::Rate,
            spread: Spread::StdDev,
            read: |l| mean_std(&l.throughput.batch_embeddings_per_second),
        },
        PanelSpec::<EmbedLevel> {
            title: "Batch token throughput (mean ± std over runs)".into(),
            name: "tokens/s, whole batch".into(),
            quantity: Quantity::Rate,
            spread: Spread::StdDev,
            read: |l| mean_std(&l.throughput.batch_tokens_per_second),
        },
        PanelSpec::<EmbedLevel> {
            title: "Batch time (first send → last response, mean ± std over runs)".into(),
            name: "batch time".into(),
            quantity: Quantity::Time,
            spread: Spread::StdDev,
            read: |l| mean_std(&l.timings.batch_total_seconds),
        },
    ];
    specs.push(if has_latency {
        PanelSpec::<EmbedLevel> {
            title: "Request latency (p50 line, p90–p99 whiskers)".into(),
            name: "latency".into(),
            quantity: Quantity::Time,
            spread: Spread::Percentiles,
            read: |l| l.latency.clone().map(Reading::Percentiles),
        }
    } else {
        PanelSpec::<EmbedLevel> {
            title: "Slowest request (mean ± std over runs)".into(),
            name: "slowest request".into(),
            quantity: Quantity::Time,
            spread: Spread::StdDev,
            read: |l| mean_std(&l.timings.slowest_seconds),
        }
    });
    Figure {
        title: title.to_string(),
        columns: 2,
        panels: specs
            .iter()
            .map(|s| build_panel(s, &x, x_label, &series))
            .collect(),
        panel_size: (1800, 1000),
        failed_levels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_x_axis_says_what_the_levels_are() {
        assert_eq!(x_label(&[]), "batch size (concurrent requests)");
        assert_eq!(
            x_label(&[Mode::ClosedLoop]),
            "concurrency (requests kept in flight)"
        );
        assert_eq!(x_label(&[Mode::OpenLoop]), "request rate (requests/s)");
        assert_eq!(
            x_label(&[Mode::Burst, Mode::ClosedLoop]),
            "batch size or concurrency"
        );
        assert_eq!(level_name(Mode::OpenLoop, "2.5"), "2.5 requests/s");
        assert_eq!(level_name(Mode::ClosedLoop, "64"), "concurrency 64");
    }

    #[test]
    fn failures_name_their_cause() {
        let mut r = RequestCounts::default();
        for _ in 0..3 {
            r.record_failure("timeout", || "no response within 600 s".into());
        }
        assert_eq!(
            failure(Some(&r), f64::NAN).as_deref(),
            Some("all 3 requests failed (timeout ×3: no response within 600 s)")
        );
        r.record_success();
        assert_eq!(failure(Some(&r), 1.0), None);
        // The original's files have no request counts: null figures mean nothing succeeded.
        assert!(failure(None, f64::NAN).is_some());
        assert_eq!(failure(None, 12.0), None);
    }
}
