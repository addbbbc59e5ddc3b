//! What a figure shows, independent of how it is drawn: panels, series, points, the gaps where a
//! level failed entirely, and the unit each panel is drawn in — built from result documents.
//!
//! Values are kept in the unit their panel is drawn in ([`Panel::unit`]); each point's note is
//! written in the unit that suits that point (`1.2 s` on a panel drawn in milliseconds is fine).

use tokenomics_stats::{
    ChatDocument, ChatLevel, Distribution, EmbedDocument, EmbedLevel, Load, Mode, RequestCounts,
    SearchAxis, Stat,
};

use crate::units::{self, Quantity, Unit};

/// A whole figure: a title and panels laid out row by row in `columns` columns.
#[derive(Debug, Clone)]
pub struct Figure {
    /// The title over every panel (a single file's description, or the one given).
    pub title: String,
    /// Panels per row (at least 1 when drawn).
    pub columns: usize,
    /// The panels, row by row.
    pub panels: Vec<Panel>,
    /// Pixel size of one panel.
    pub panel_size: (u32, u32),
    /// Levels with nothing to draw, worth telling the user: levels in which no request
    /// succeeded (drawn as gaps), and on the frontier also levels without its figures (left out).
    pub failed_levels: Vec<FailedLevel>,
    /// Lines written under the title, one each: what the figure's data cannot say itself (a
    /// sweep that stopped early, a stand-in figure, the price behind cost lines).
    pub remarks: Vec<String>,
}

impl Figure {
    /// Pixel size of the whole image (panels plus the title band).
    pub fn size(&self) -> (u32, u32) {
        let rows = self.panels.len().div_ceil(self.columns.max(1)) as u32;
        (
            self.panel_size.0 * self.columns as u32,
            self.panel_size.1 * rows + self.header_height(),
        )
    }

    /// Height of the band above the panels: the title, and a row per remark, pixels.
    pub fn header_height(&self) -> u32 {
        TITLE_HEIGHT + REMARK_ROW * self.remarks.len() as u32
    }
}

/// Height of the band that holds the figure's title, pixels.
pub const TITLE_HEIGHT: u32 = 100;
/// Height of a remark's row under the title, pixels.
pub const REMARK_ROW: u32 = 32;

/// One level of load along the x axis: a batch size, a concurrency or a request rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    /// The level's number: requests at once, concurrency, or requests per second (seconds
    /// since the run's start on a timeline).
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
    /// A linear axis of values (a point's [`Level::value`] is its x), from the first tick to the
    /// last; the ticks are evenly spaced round numbers ([`XAxis::linear`]).
    Linear(Vec<Level>),
}

impl XAxis {
    /// A linear axis from 0 to a round number above `data_max`, ticked as the value axis is
    /// (about six round steps, room above the data for notes).
    pub fn linear(data_max: f64) -> XAxis {
        let (top, step) = crate::layout::y_scale(data_max);
        let n = (top / step).round() as usize;
        XAxis::Linear(
            (0..=n)
                .map(|i| {
                    let value = i as f64 * step;
                    Level {
                        value,
                        label: units::tick(value, step),
                    }
                })
                .collect(),
        )
    }

    /// A linear axis from 0 to the first round tick at or above `data_max` (a timeline, whose
    /// data need no room above them), about six ticks.
    pub fn linear_to(data_max: f64) -> XAxis {
        let max = if data_max > 0.0 && data_max.is_finite() {
            data_max
        } else {
            1.0
        };
        let step = crate::layout::nice_step(max / 6.0);
        let n = (max / step - 1e-9).ceil().max(1.0) as usize;
        XAxis::Linear(
            (0..=n)
                .map(|i| {
                    let value = i as f64 * step;
                    Level {
                        value,
                        label: units::tick(value, step),
                    }
                })
                .collect(),
        )
    }

    /// The levels with a tick, in order.
    pub fn levels(&self) -> &[Level] {
        match self {
            XAxis::Categories(v) | XAxis::Log2(v) | XAxis::Linear(v) => v,
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
            XAxis::Linear(_) => value.is_finite().then_some(value),
        }
    }

    /// The span the axis draws, in positions: half a step beyond the outer levels of
    /// categories and log2 axes, the first tick to the last of a linear one.
    pub fn span(&self) -> (f64, f64) {
        if let XAxis::Linear(ticks) = self {
            if let (Some(a), Some(b)) = (ticks.first(), ticks.last()) {
                if b.value > a.value {
                    return (a.value, b.value);
                }
            }
        }
        let positions = self.levels().iter().filter_map(|l| self.position(l.value));
        match positions.fold(None, |acc: Option<(f64, f64)>, p| {
            Some(acc.map_or((p, p), |(a, b)| (a.min(p), b.max(p))))
        }) {
            Some((a, b)) => (a - 0.5, b + 0.5),
            None => (-0.5, 0.5),
        }
    }
}

pub(crate) fn same(a: f64, b: f64) -> bool {
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

/// One plot of a figure: its axes, series, reference lines and shaded spans.
#[derive(Debug, Clone)]
pub struct Panel {
    /// The title over the plot.
    pub title: String,
    /// The x axis' label (`batch size`, `request rate (requests/s)`, `time (s)`).
    pub x_label: String,
    /// With the unit, when the values have one: `TTFT (ms)`.
    pub y_label: String,
    /// The unit of every value (and range) of the panel's points.
    pub unit: Unit,
    /// What the points' ranges are (a band of mean ± std, or percentile whiskers).
    pub spread: Spread,
    /// How levels are placed along the x axis.
    pub x: XAxis,
    /// The lines of the panel, one per file (and per quantity where a panel shows several).
    pub series: Vec<Series>,
    /// Reference lines across the plot, each with its label.
    pub rules: Vec<Rule>,
    /// Shaded stretches of the x axis, under the data (a level's warm-up on a timeline).
    pub spans: Vec<Span>,
    /// The legend's entries when the series cannot say it themselves (several files' timelines:
    /// one entry per file, one per quantity); `None`: the legend follows from the series.
    pub legend: Option<Vec<LegendItem>>,
}

/// A shaded stretch of the x axis, from one value of it to another.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Where it starts, a value of the x axis.
    pub from: f64,
    /// Where it ends, a value of the x axis.
    pub to: f64,
    /// The palette colour it takes; `None`: a neutral grey.
    pub color: Option<usize>,
}

/// An entry of a legend given by the figure ([`Panel::legend`]): a line in a colour and stroke.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendItem {
    /// The entry's text.
    pub label: String,
    /// A palette colour; `None`: the muted grey of an entry that stands for every colour.
    pub color: Option<usize>,
    /// How its line is drawn.
    pub stroke: Stroke,
}

/// How a series' line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stroke {
    /// A continuous line (the default).
    #[default]
    Solid,
    /// Long dashes.
    Dashed,
    /// Dots.
    Dotted,
}

/// One line of a panel: a file's values of one quantity, one point per level.
#[derive(Debug, Clone)]
pub struct Series {
    /// Its name in the legend (the file's label, or the quantity's).
    pub label: String,
    /// Its points, in x order.
    pub points: Vec<Point>,
    /// Levels in which no request succeeded: the line is broken there and the level marked.
    pub gaps: Vec<Level>,
    /// Which points the series' line joins.
    pub line: Line,
    /// Its colour, an index into the palette; `None`: its index among the panel's series.
    pub color: Option<usize>,
    /// How its line is drawn.
    pub stroke: Stroke,
}

/// Which points a series' line joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Every point, in x order, broken at the gaps.
    Levels,
    /// These points (indices into [`Series::points`]), in this order: a Pareto frontier. The
    /// other points are drawn as hollow markers.
    Through(Vec<usize>),
    /// A time series: each run of points (indices into [`Series::points`], in x order) joined by
    /// a line, without markers; a run of one point is a dot. A missing value is where one run
    /// ends and the next begins, so it is a gap, never a zero.
    Trace(Vec<Vec<usize>>),
}

/// A reference line across a panel: a value of the y axis (an iso-cost line) or a level of the
/// x axis (the capacity an SLO search found), with its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Where it is.
    pub at: RuleAt,
    /// The text written beside it (may be empty for a [`RuleKind::Boundary`]).
    pub label: String,
    /// The series whose colour it takes; `None`: a neutral grey.
    pub series: Option<usize>,
    /// What it marks, and so how it is drawn.
    pub kind: RuleKind,
}

/// What a [`Rule`] marks, and so how it is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// A finding (an SLO capacity, an iso-cost line): dashed, and left out with its label when
    /// the label fits nowhere.
    Mark,
    /// Where something starts (a level on a timeline): a thin solid line, drawn even when its
    /// label (which may be empty) fits nowhere.
    Boundary,
}

/// Where a [`Rule`] is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RuleAt {
    /// Horizontal, at this value of the y axis (in the panel's unit).
    Y(f64),
    /// Vertical, at this value of the x axis (a level's value, placed by [`XAxis::position`]).
    X(f64),
}

/// One value of a series at one level.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Where it is on the x axis.
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
                line: Line::Levels,
                color: None,
                stroke: Stroke::Solid,
            })
            .collect(),
        rules: Vec::new(),
        spans: Vec::new(),
        legend: None,
    }
}

/// Why a level has nothing to draw, or `None` when some request succeeded. Files without a
/// `requests` block (the original's) have nothing to draw when their headline figure is null.
pub(crate) fn failure(requests: Option<&RequestCounts>, headline: f64) -> Option<String> {
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

pub(crate) fn level_name(mode: Mode, label: &str) -> String {
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
pub(crate) fn chat_level(key: &str, level: &ChatLevel) -> Option<f64> {
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

/// Whether a key is a rate of many decimals (a sweep's or a search's), read better to three
/// significant digits.
fn many_decimals(key: &str) -> bool {
    key.split_once('.').is_some_and(|(_, d)| d.len() > 3)
}

/// A key as it is read: itself, or a rate of many decimals to three significant digits.
pub(crate) fn readable_key(key: &str) -> String {
    let key = key.trim();
    match key.parse::<f64>() {
        Ok(rate) => tick_label(key, rate),
        Err(_) => key.to_string(),
    }
}

/// A level's tick: its key, or for a key of many decimals its value to three significant digits.
fn tick_label(key: &str, value: f64) -> String {
    if many_decimals(key) && value.is_finite() {
        crate::units::compact(value)
    } else {
        key.to_string()
    }
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
        embed_level(k, l).is_some()
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
                            label: tick_label(key.trim(), value),
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
    let mut panels: Vec<Panel> = specs
        .iter()
        .map(|s| build_panel(s, &x, &x_label, &series))
        .collect();
    // What a sweep and an SLO search decided: the capacity marked on the throughput panels,
    // an early stop said under the title.
    let several = inputs.len() > 1;
    let mut remarks = Vec::new();
    for (i, (label, doc)) in inputs.iter().enumerate() {
        if let Some(rule) = slo_rule(doc, several.then_some(i)) {
            for p in panels.iter_mut().filter(|p| p.unit == Unit::PerSecond) {
                p.rules.push(rule.clone());
            }
        }
        let stopped = doc.metadata.sweep.as_ref();
        if let Some(reason) = stopped.and_then(|s| s.stopped_early.as_deref()) {
            remarks.push(if several {
                format!("{label}: sweep stopped: {reason}")
            } else {
                format!("sweep stopped: {reason}")
            });
        }
    }
    Figure {
        title: title.to_string(),
        columns: if streamed { 2 } else { 1 },
        panels,
        panel_size: (1800, 1000),
        failed_levels,
        remarks,
    }
}

/// The mark of an SLO search (`metadata.slo_search`) on the level axis: a vertical line at the
/// highest level that met the objectives, labelled with it and the lowest that did not
/// (`SLO capacity 12.3 req/s (fails at 13.1)`); at the lowest failing level when none passed.
/// `None` when the file has no search, or its level is not one of the file's results.
pub fn slo_rule(doc: &ChatDocument, series: Option<usize>) -> Option<Rule> {
    let slo = doc.metadata.slo_search.as_ref()?;
    let load = |v: f64| match slo.axis {
        SearchAxis::Rate => format!("{} req/s", units::compact(v)),
        SearchAxis::Concurrency => format!("at concurrency {}", units::compact(v)),
    };
    let (key, label) = match (&slo.level, slo.highest_passing) {
        (Some(key), Some(passing)) => {
            let tail = match slo.lowest_failing {
                Some(failing) => format!("fails at {}", units::compact(failing)),
                None => "no level tried failed".to_string(),
            };
            (
                key.clone(),
                format!("SLO capacity {} ({tail})", load(passing)),
            )
        }
        _ => {
            let failing = slo.lowest_failing?;
            let probe = slo
                .probes
                .iter()
                .find(|p| !p.passed && same(p.value, failing))?;
            (
                probe.level.clone(),
                format!("SLO missed from {} (no level passed)", load(failing)),
            )
        }
    };
    let (key, level) = doc
        .results
        .get_key_value(&key)
        .or_else(|| doc.results.iter().find(|(k, _)| k.trim() == key.trim()))?;
    let value = chat_level(key, level)?;
    Some(Rule {
        at: RuleAt::X(value),
        label,
        series,
        kind: RuleKind::Mark,
    })
}

/// An embedding level's key split into its load and its input: `batch_{B}_seq_{L}` (a burst),
/// `concurrency_{C}_seq_{L}` (a closed loop) or `rate_{R}_seq_{L}` (an open loop) → (the mode,
/// the number as written, `L`); with token lengths (`--input_tokens`) `tok_{N}` stands for
/// `seq_{L}` and is kept whole (`batch_8_tok_512` → (burst, `8`, `tok_512`)).
fn embed_key(key: &str) -> Option<(Mode, &str, &str)> {
    let (mode, rest) = [
        ("batch_", Mode::Burst),
        ("concurrency_", Mode::ClosedLoop),
        ("rate_", Mode::OpenLoop),
    ]
    .into_iter()
    .find_map(|(prefix, mode)| Some((mode, key.strip_prefix(prefix)?)))?;
    let (number, length) = match rest.split_once("_seq_") {
        Some(parts) => parts,
        None => {
            let (number, n) = rest.split_once("_tok_")?;
            n.parse::<u64>().ok()?;
            (number, &rest[number.len() + 1..])
        }
    };
    let value: f64 = number.parse().ok()?;
    let whole = mode != Mode::OpenLoop;
    (value.is_finite() && value > 0.0 && (!whole || number.parse::<u64>().is_ok()))
        .then_some((mode, number, length))
}

/// An embedding level's place: its mode (the load block's, else the key's), its number on the
/// x axis (the load block's, else the key's) with its tick label, and its input part.
fn embed_level<'a>(key: &'a str, level: &EmbedLevel) -> Option<(Mode, Level, &'a str)> {
    let (key_mode, number, length) = embed_key(key)?;
    let (mode, value) = match &level.load {
        Some(Load::Burst { batch_size }) => (Mode::Burst, *batch_size as f64),
        Some(Load::ClosedLoop {
            max_concurrency, ..
        }) => (Mode::ClosedLoop, *max_concurrency as f64),
        Some(Load::OpenLoop { request_rate, .. }) => (Mode::OpenLoop, *request_rate),
        None => (key_mode, number.parse().ok()?),
    };
    (value.is_finite() && value > 0.0).then(|| {
        let label = tick_label(number, value);
        (mode, Level { value, label }, length)
    })
}

/// The embedding figure: a 2×2 grid, one line per sequence length (per input). Bursts alone
/// (the original's sweep) put the batch size on a log2 axis; closed and open loops put their
/// levels (concurrency, request rate) side by side, and their panels say "whole run".
pub fn embed_figure(inputs: &[(String, &EmbedDocument)], title: &str) -> Figure {
    // Series: every (input, sequence length) in order of first appearance.
    let mut keys: Vec<(usize, String)> = Vec::new();
    let mut modes: Vec<Mode> = Vec::new();
    for (i, (_, d)) in inputs.iter().enumerate() {
        for (k, level) in &d.results {
            if let Some((mode, _, l)) = embed_level(k, level) {
                if !keys.iter().any(|(j, m)| *j == i && m == l) {
                    keys.push((i, l.to_string()));
                }
                if !modes.contains(&mode) {
                    modes.push(mode);
                }
            }
        }
    }
    let sustained = modes.iter().any(|m| *m != Mode::Burst);
    let several = inputs.len() > 1;
    let mut failed_levels = Vec::new();
    let series: Vec<SeriesData<EmbedLevel>> = keys
        .iter()
        .map(|(i, length)| {
            let (label, doc) = &inputs[*i];
            let name = if length.chars().all(|c| c.is_ascii_digit()) {
                format!("{length} words")
            } else if let Some(n) = length.strip_prefix("tok_") {
                format!("{n} tokens")
            } else {
                length.clone()
            };
            let levels = doc
                .results
                .iter()
                .filter_map(|(k, l)| {
                    let (mode, level, _) = embed_level(k, l).filter(|(_, _, m)| m == length)?;
                    let data = match failure(
                        l.requests.as_ref(),
                        l.throughput.batch_embeddings_per_second.mean,
                    ) {
                        None => Ok(l),
                        Some(reason) => {
                            failed_levels.push(FailedLevel {
                                input: *i,
                                level: format!(
                                    "{}, sequence length {length}",
                                    level_name(mode, &level.label)
                                ),
                                reason: reason.clone(),
                            });
                            Err(reason)
                        }
                    };
                    Some(LevelOf { level, data })
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
    let levels = sorted_levels(
        series
            .iter()
            .flat_map(|s| s.levels.iter().map(|l| l.level.clone())),
    );
    let (x, x_label) = if sustained {
        (XAxis::Categories(levels), x_label(&modes))
    } else {
        (
            XAxis::Log2(levels),
            "batch size (concurrent requests, log2 scale)".to_string(),
        )
    };
    let has_latency = inputs
        .iter()
        .any(|(_, d)| d.results.values().any(|l| l.latency.is_some()));
    let (whole, over) = if sustained {
        ("whole run", "Run time (first send → last response")
    } else {
        ("whole batch", "Batch time (first send → last response")
    };
    let mut specs = vec![
        PanelSpec::<EmbedLevel> {
            title: if sustained {
                "Embedding throughput (whole run, mean ± std over runs)".into()
            } else {
                "Batch embedding throughput (mean ± std over runs)".into()
            },
            name: format!("embeddings/s, {whole}"),
            quantity: Quantity::Rate,
            spread: Spread::StdDev,
            read: |l| mean_std(&l.throughput.batch_embeddings_per_second),
        },
        PanelSpec::<EmbedLevel> {
            title: if sustained {
                "Token throughput (whole run, mean ± std over runs)".into()
            } else {
                "Batch token throughput (mean ± std over runs)".into()
            },
            name: format!("tokens/s, {whole}"),
            quantity: Quantity::Rate,
            spread: Spread::StdDev,
            read: |l| mean_std(&l.throughput.batch_tokens_per_second),
        },
        PanelSpec::<EmbedLevel> {
            title: format!("{over}, mean ± std over runs)"),
            name: if sustained { "run time" } else { "batch time" }.into(),
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
            .map(|s| build_panel(s, &x, &x_label, &series))
            .collect(),
        panel_size: (1800, 1000),
        failed_levels,
        remarks: Vec::new(),
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
    fn embedding_keys_of_word_and_token_lengths_and_every_load() {
        use Mode::*;
        assert_eq!(embed_key("batch_8_seq_short"), Some((Burst, "8", "short")));
        assert_eq!(embed_key("batch_16_seq_200"), Some((Burst, "16", "200")));
        assert_eq!(embed_key("batch_8_tok_512"), Some((Burst, "8", "tok_512")));
        assert_eq!(embed_key("batch_8_tok_x"), None);
        assert_eq!(embed_key("batch_0_tok_64"), None);
        assert_eq!(embed_key("batch_2.5_seq_short"), None);
        assert_eq!(
            embed_key("concurrency_4_tok_64"),
            Some((ClosedLoop, "4", "tok_64"))
        );
        assert_eq!(
            embed_key("rate_2.5_seq_short"),
            Some((OpenLoop, "2.5", "short"))
        );
        assert_eq!(embed_key("rate_0_seq_short"), None);
        assert_eq!(embed_key("concurrency_x_seq_short"), None);
        assert_eq!(embed_key("burst_8_seq_short"), None);
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
