//! Where everything of a [`Figure`] goes, in pixels: panels, axes, ticks, lines broken at
//! failed levels, bands, whiskers, markers, the legend, and the notes — placed so that no two
//! notes intersect and none sits on a line, a whisker, a marker, the legend or a gap (a note
//! that fits nowhere is left out: the axis still carries its value).
//!
//! Every text box comes from [`Face::width`] and the face's size, the metrics the renderer draws
//! with, so what this module reports is what the image shows. [`crate::render_png`] and
//! [`crate::render_svg`] draw a [`Layout`] and nothing else.

use plotters::style::RGBColor;

use crate::figures::{Figure, Line, RuleAt, RuleKind, Spread, Stroke, REMARK_ROW, TITLE_HEIGHT};
use crate::text::{Align, Face, TextRun};
use crate::units;

/// Series colours: distinct and colour-blind friendly (Okabe–Ito), dark enough for text.
pub const PALETTE: &[RGBColor] = &[
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(200, 140, 0),
    RGBColor(86, 180, 233),
    RGBColor(110, 110, 110),
    RGBColor(150, 100, 50),
];

/// Text that is not a series': titles, ticks, axis labels.
pub const INK: RGBColor = RGBColor(25, 25, 25);
/// Legend entries and gaps that stand for several series.
pub const MUTED: RGBColor = RGBColor(90, 90, 90);

/// The figure's title (sizes in pixels of the image, 300 dpi in a PNG).
pub const TITLE_FACE: Face = Face::bold(44.0);
/// A panel's title.
pub const PANEL_TITLE_FACE: Face = Face::bold(32.0);
/// The axes' labels.
pub const AXIS_LABEL_FACE: Face = Face::regular(26.0);
/// The ticks' values.
pub const TICK_FACE: Face = Face::regular(24.0);
/// Legend entries.
pub const LEGEND_FACE: Face = Face::regular(22.0);
/// The notes beside points.
pub const NOTE_FACE: Face = Face::regular(22.0);
/// The mark of a failed level ([`GAP_TEXT`]).
pub const GAP_FACE: Face = Face::regular(20.0);
/// The remarks under the title.
pub const REMARK_FACE: Face = Face::regular(22.0);
/// The labels of reference lines.
pub const RULE_FACE: Face = Face::regular(22.0);
/// Reference lines that stand for no series (iso-cost lines), and their labels.
pub const RULE_GREY: RGBColor = RGBColor(120, 120, 120);

/// Radius of a point's marker, pixels.
pub const MARKER_RADIUS: f64 = 7.0;
/// Radius of the dot of a time series' value with no neighbour to join, pixels.
pub const TRACE_DOT_RADIUS: f64 = 4.0;
/// Half the width of a whisker's caps, pixels.
pub const CAP_HALF_WIDTH: f64 = 7.0;
/// The least room kept between two notes, pixels.
pub const NOTE_GAP: f64 = 4.0;
/// Text of the mark on a failed level.
pub const GAP_TEXT: &str = "all failed";

/// A straight line between two pixel positions.
pub type Segment = ((f64, f64), (f64, f64));

/// An axis-aligned box in pixels (y grows downward).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    /// Left edge.
    pub x0: f64,
    /// Top edge.
    pub y0: f64,
    /// Right edge (at least `x0`).
    pub x1: f64,
    /// Bottom edge (at least `y0`).
    pub y1: f64,
}

impl Rect {
    /// The box from the top left `(x0, y0)` to the bottom right `(x1, y1)`.
    pub fn new(x0: f64, y0: f64, x1: f64, y1: f64) -> Self {
        Rect { x0, y0, x1, y1 }
    }

    /// Width, pixels.
    pub fn width(&self) -> f64 {
        self.x1 - self.x0
    }

    /// Height, pixels.
    pub fn height(&self) -> f64 {
        self.y1 - self.y0
    }

    /// The centre, `(x, y)`.
    pub fn center(&self) -> (f64, f64) {
        ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)
    }

    /// Grown by `d` on every side (shrunk for a negative `d`).
    pub fn inflate(&self, d: f64) -> Rect {
        Rect::new(self.x0 - d, self.y0 - d, self.x1 + d, self.y1 + d)
    }

    /// Whether the two boxes share any area (boxes that only touch do not).
    pub fn intersects(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }

    /// Whether `o` lies wholly inside.
    pub fn contains(&self, o: &Rect) -> bool {
        o.x0 >= self.x0 && o.x1 <= self.x1 && o.y0 >= self.y0 && o.y1 <= self.y1
    }

    /// The part of the segment `a`–`b` inside the box (Liang–Barsky), if any.
    pub fn clip(&self, a: (f64, f64), b: (f64, f64)) -> Option<((f64, f64), (f64, f64))> {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        for (p, q) in [
            (-dx, a.0 - self.x0),
            (dx, self.x1 - a.0),
            (-dy, a.1 - self.y0),
            (dy, self.y1 - a.1),
        ] {
            if p == 0.0 {
                if q < 0.0 {
                    return None;
                }
            } else {
                let t = q / p;
                if p < 0.0 {
                    t0 = t0.max(t);
                } else {
                    t1 = t1.min(t);
                }
                if t0 > t1 {
                    return None;
                }
            }
        }
        Some((
            (a.0 + t0 * dx, a.1 + t0 * dy),
            (a.0 + t1 * dx, a.1 + t1 * dy),
        ))
    }

    /// Whether the segment `a`–`b` passes through the box.
    pub fn crosses(&self, a: (f64, f64), b: (f64, f64)) -> bool {
        self.clip(a, b).is_some()
    }
}

/// A whole figure in pixels.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Width and height of the image, pixels ([`Figure::size`]).
    pub size: (u32, u32),
    /// The figure's title (also the SVG's `<title>`).
    pub title: String,
    /// Every panel, in the figure's order.
    pub panels: Vec<PanelLayout>,
    /// Every piece of text, in drawing order (drawn over the shapes).
    pub texts: Vec<TextRun>,
}

/// One panel in pixels.
#[derive(Debug, Clone)]
pub struct PanelLayout {
    /// The panel's share of the figure.
    pub frame: Rect,
    /// The plotting area, inside the axes.
    pub plot: Rect,
    /// X of each level's tick (and dashed grid line).
    pub x_ticks: Vec<f64>,
    /// Y of each value tick, the axis (0) first.
    pub y_ticks: Vec<f64>,
    /// The value at the top of the plotting area, in the panel's unit.
    pub y_top: f64,
    /// The failed levels' hatched bands.
    pub gaps: Vec<GapMark>,
    /// Each series' shapes, in the panel's order.
    pub series: Vec<SeriesShapes>,
    /// The legend, where the panel has one.
    pub legend: Option<Legend>,
    /// The notes that found a place: none intersects another, or covers a marker, a line, a
    /// whisker, the legend or a gap.
    pub notes: Vec<PlacedNote>,
    /// Notes left out because they fit nowhere without covering something.
    pub notes_dropped: usize,
    /// Reference lines with their labels, in the order of the panel's rules.
    pub rules: Vec<PlacedRule>,
    /// Rules left out because their label fit nowhere.
    pub rules_dropped: usize,
    /// Boundaries drawn without their label, which fit nowhere.
    pub rule_labels_dropped: usize,
    /// Shaded stretches of the x axis ([`crate::figures::Span`]), clipped to the plot.
    pub spans: Vec<ShadedSpan>,
}

/// A shaded stretch of the plot, drawn under everything else.
#[derive(Debug, Clone, PartialEq)]
pub struct ShadedSpan {
    /// The shaded box (the plot's height).
    pub rect: Rect,
    /// Its fill, drawn translucent.
    pub color: RGBColor,
}

/// A reference line ([`crate::figures::Rule`]) across the plot, dashed, with its label.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedRule {
    /// One end, pixels.
    pub from: (f64, f64),
    /// The other end, pixels.
    pub to: (f64, f64),
    /// Horizontal (a value of the y axis) or vertical (a level).
    pub horizontal: bool,
    /// Its colour (its series', or [`RULE_GREY`]).
    pub color: RGBColor,
    /// What it marks, and so how it is drawn.
    pub kind: RuleKind,
    /// Its label's text.
    pub text: String,
    /// Its label's box: [`RULE_FACE`]'s advance width of `text` × the face's size; `None` for a
    /// boundary whose label is empty or fit nowhere.
    pub label: Option<Rect>,
}

/// A failed level: a hatched band across the plot at the level, labelled [`GAP_TEXT`].
#[derive(Debug, Clone)]
pub struct GapMark {
    /// The hatched band, the plot's height.
    pub rect: Rect,
    /// The hatching's colour (the series', or [`MUTED`] when several failed there).
    pub color: RGBColor,
    /// The boxes of its labels, kept clear of the hatching.
    pub labels: Vec<Rect>,
    /// The series that failed there.
    pub series: Vec<usize>,
}

/// What one series draws, in pixels.
#[derive(Debug, Clone)]
pub struct SeriesShapes {
    /// The series' colour.
    pub color: RGBColor,
    /// How its line is drawn.
    pub stroke: Stroke,
    /// Radius of its markers, pixels ([`MARKER_RADIUS`], smaller for a time series' dots).
    pub marker_radius: f64,
    /// The line, one polyline per stretch between failed levels.
    pub lines: Vec<Vec<(f64, f64)>>,
    /// The centre of each point's marker, in the series' order.
    pub markers: Vec<(f64, f64)>,
    /// Indices into `markers` of points the line does not join (levels off a Pareto frontier):
    /// drawn hollow.
    pub hollow: Vec<usize>,
    /// Shaded mean ± std polygons (each around a stretch of the line).
    pub bands: Vec<Vec<(f64, f64)>>,
    /// Mean ± std of a point with no neighbour to share a band with: a vertical bar.
    pub bars: Vec<((f64, f64), (f64, f64))>,
    /// Percentile ranges beside their points.
    pub whiskers: Vec<Whisker>,
}

/// A percentile range drawn beside its point: a vertical line with caps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Whisker {
    /// X of the stem.
    pub x: f64,
    /// Y of the lower percentile (the larger pixel y).
    pub low: f64,
    /// Y of the higher percentile.
    pub high: f64,
}

impl Whisker {
    /// The stem and the two caps.
    pub fn segments(&self) -> [Segment; 3] {
        let cap = |y: f64| ((self.x - CAP_HALF_WIDTH, y), (self.x + CAP_HALF_WIDTH, y));
        [
            ((self.x, self.low), (self.x, self.high)),
            cap(self.low),
            cap(self.high),
        ]
    }
}

/// A panel's legend: a framed box of entries, placed where it covers the least data.
#[derive(Debug, Clone)]
pub struct Legend {
    /// Its frame.
    pub rect: Rect,
    /// Its entries, top to bottom.
    pub entries: Vec<LegendEntry>,
}

/// One entry of a [`Legend`].
#[derive(Debug, Clone)]
pub struct LegendEntry {
    /// The sample drawn before the label.
    pub swatch: Swatch,
    /// The sample's colour.
    pub color: RGBColor,
    /// The entry's text.
    pub label: String,
    /// Left end of the swatch, on the entry's centre line.
    pub at: (f64, f64),
}

/// The sample drawn before a legend label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swatch {
    /// A line through a marker.
    Line,
    /// A whisker.
    Whisker,
    /// A hollow marker (a point off the line).
    Hollow,
    /// A line alone, in this stroke (a time series).
    Trace(Stroke),
}

/// Width of a legend swatch, pixels.
pub const SWATCH_WIDTH: f64 = 44.0;

/// A note at its place.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedNote {
    /// Index of the series of its point in the panel.
    pub series: usize,
    /// The point it belongs to.
    pub point: (f64, f64),
    /// What it says (the point's [`crate::figures::Point::note`]).
    pub text: String,
    /// Its text box: [`NOTE_FACE`]'s advance width of `text` × the face's size.
    pub rect: Rect,
}

/// Lays a figure out.
pub fn layout(figure: &Figure) -> Layout {
    let (w, h) = figure.size();
    let mut texts = vec![TextRun::at(
        figure.title.clone(),
        TITLE_FACE,
        INK,
        (f64::from(w) / 2.0, f64::from(TITLE_HEIGHT) / 2.0),
        Align::Middle,
        Align::Middle,
    )];
    for (i, remark) in figure.remarks.iter().enumerate() {
        texts.push(TextRun::at(
            fit(remark, REMARK_FACE, f64::from(w) - 80.0),
            REMARK_FACE,
            MUTED,
            (
                f64::from(w) / 2.0,
                f64::from(TITLE_HEIGHT) - 16.0 + (i as u32 * REMARK_ROW) as f64,
            ),
            Align::Middle,
            Align::Start,
        ));
    }
    let header = f64::from(figure.header_height());
    let columns = figure.columns.max(1);
    let (pw, ph) = (
        f64::from(figure.panel_size.0),
        f64::from(figure.panel_size.1),
    );
    // The panels of a column share their x axis' place: the widest tick labels of any of them
    // set the left margin of all.
    let mut tick_widths = vec![0.0f64; columns];
    for (i, panel) in figure.panels.iter().enumerate() {
        let w = &mut tick_widths[i % columns];
        *w = w.max(value_axis(panel).3);
    }
    let panels = figure
        .panels
        .iter()
        .enumerate()
        .map(|(i, panel)| {
            let (col, row) = ((i % columns) as f64, (i / columns) as f64);
            let y0 = header + row * ph;
            let frame = Rect::new(col * pw, y0, (col + 1.0) * pw, y0 + ph);
            layout_panel(panel, frame, tick_widths[i % columns], &mut texts)
        })
        .collect();
    Layout {
        size: (w, h),
        title: figure.title.clone(),
        panels,
        texts,
    }
}

/// Top of the value axis and its tick step: a "nice" step (1, 2 or 5 × 10^k) giving about six
/// ticks, with room above the data for notes.
pub fn y_scale(data_max: f64) -> (f64, f64) {
    let raw_top = if data_max > 0.0 && data_max.is_finite() {
        data_max * 1.12
    } else {
        1.0
    };
    let step = nice_step(raw_top / 6.0);
    ((raw_top / step - 1e-9).ceil() * step, step)
}

/// The smallest "nice" step (1, 2 or 5 × 10^k) at least `raw` (positive and finite).
pub fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(raw)
}

/// A panel's value axis: its top, its tick step, the ticks' values and labels, and the width of
/// the widest label.
fn value_axis(panel: &crate::figures::Panel) -> (f64, f64, Vec<(f64, String)>, f64) {
    let data_max = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter())
        .flat_map(|p| [Some(p.y), p.range.map(|r| r.1)])
        .flatten()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let (top, step) = y_scale(data_max);
    let n_ticks = (top / step).round() as usize;
    let ticks: Vec<(f64, String)> = (0..=n_ticks)
        .map(|i| {
            let v = i as f64 * step;
            (v, units::tick(v, step))
        })
        .collect();
    let width = ticks
        .iter()
        .map(|(_, t)| TICK_FACE.width(t))
        .fold(0.0, f64::max);
    (top, step, ticks, width)
}

fn layout_panel(
    panel: &crate::figures::Panel,
    frame: Rect,
    tick_width: f64,
    texts: &mut Vec<TextRun>,
) -> PanelLayout {
    texts.push(TextRun::at(
        panel.title.clone(),
        PANEL_TITLE_FACE,
        INK,
        (frame.center().0, frame.y0 + 20.0),
        Align::Middle,
        Align::Start,
    ));

    // The value axis.
    let (top, _, ticks, _) = value_axis(panel);
    let (tick_values, tick_labels): (Vec<f64>, Vec<String>) = ticks.into_iter().unzip();

    let plot = Rect::new(
        frame.x0 + 24.0 + AXIS_LABEL_FACE.size + 20.0 + tick_width + 16.0,
        frame.y0 + 20.0 + PANEL_TITLE_FACE.size + 28.0,
        frame.x1 - 48.0,
        frame.y1 - 20.0 - AXIS_LABEL_FACE.size - 18.0 - TICK_FACE.size - 16.0,
    );
    let y_px = |v: f64| plot.y1 - v / top * plot.height();

    // The level axis.
    let levels = panel.x.levels();
    let positions: Vec<f64> = levels
        .iter()
        .filter_map(|l| panel.x.position(l.value))
        .collect();
    let (lo, hi) = panel.x.span();
    let unit_px = plot.width() / (hi - lo);
    let x_px = |pos: f64| plot.x0 + (pos - lo) * unit_px;
    let x_ticks: Vec<f64> = positions.iter().map(|p| x_px(*p)).collect();
    let y_ticks: Vec<f64> = tick_values.iter().map(|v| y_px(*v)).collect();

    // Tick labels and axis labels.
    for (y, label) in y_ticks.iter().zip(&tick_labels) {
        texts.push(TextRun::at(
            label.clone(),
            TICK_FACE,
            INK,
            (plot.x0 - 14.0, *y),
            Align::End,
            Align::Middle,
        ));
    }
    let stride = tick_stride(&x_ticks, levels);
    for (i, (x, level)) in x_ticks.iter().zip(levels).enumerate() {
        if i % stride == 0 {
            texts.push(TextRun::at(
                level.label.clone(),
                TICK_FACE,
                INK,
                (*x, plot.y1 + 14.0),
                Align::Middle,
                Align::Start,
            ));
        }
    }
    texts.push(TextRun::at(
        panel.x_label.clone(),
        AXIS_LABEL_FACE,
        INK,
        (plot.center().0, frame.y1 - 20.0),
        Align::Middle,
        Align::End,
    ));
    texts.push(TextRun::upward(
        panel.y_label.clone(),
        AXIS_LABEL_FACE,
        INK,
        (
            frame.x0 + 24.0 + AXIS_LABEL_FACE.size / 2.0,
            plot.center().1,
        ),
    ));

    let n_series = panel.series.len();
    let color = |k: usize| PALETTE[k % PALETTE.len()];
    // A series' colour: its own, else its index's.
    let series_color = |i: usize| color(panel.series.get(i).and_then(|s| s.color).unwrap_or(i));

    // Shaded spans, under everything.
    let spans: Vec<ShadedSpan> = panel
        .spans
        .iter()
        .filter_map(|sp| {
            let (a, b) = (panel.x.position(sp.from)?, panel.x.position(sp.to)?);
            let (a, b) = (x_px(a.min(b)).max(plot.x0), x_px(a.max(b)).min(plot.x1));
            (b > a).then(|| ShadedSpan {
                rect: Rect::new(a, plot.y0, b, plot.y1),
                color: sp.color.map_or(MUTED, color),
            })
        })
        .collect();

    // Failed levels: one band per level, labelled once per series that failed there.
    let mut gaps: Vec<GapMark> = Vec::new();
    let mut gap_positions: Vec<(f64, Vec<usize>)> = Vec::new();
    for (i, s) in panel.series.iter().enumerate() {
        for g in &s.gaps {
            if let Some(pos) = panel.x.position(g.value) {
                match gap_positions
                    .iter_mut()
                    .find(|(p, _)| (p - pos).abs() < 1e-9)
                {
                    Some((_, v)) => v.push(i),
                    None => gap_positions.push((pos, vec![i])),
                }
            }
        }
    }
    let mut obstacles: Vec<Rect> = Vec::new();
    for (pos, who) in gap_positions {
        let cx = x_px(pos);
        let half = (0.25 * unit_px).max(GAP_FACE.size);
        let rect = Rect::new(
            (cx - half).max(plot.x0),
            plot.y0,
            (cx + half).min(plot.x1),
            plot.y1,
        );
        let flat = GAP_FACE.width(GAP_TEXT) <= rect.width() - 8.0;
        let mut labels = Vec::new();
        for (j, &s) in who.iter().enumerate() {
            let run = if flat {
                TextRun::at(
                    GAP_TEXT,
                    GAP_FACE,
                    series_color(s),
                    (cx, plot.y0 + 8.0 + j as f64 * (GAP_FACE.size + 2.0)),
                    Align::Middle,
                    Align::Start,
                )
            } else {
                let offset = (j as f64 - (who.len() - 1) as f64 / 2.0) * (GAP_FACE.size + 2.0);
                TextRun::upward(
                    GAP_TEXT,
                    GAP_FACE,
                    series_color(s),
                    (cx + offset, plot.y0 + 8.0 + GAP_FACE.width(GAP_TEXT) / 2.0),
                )
            };
            labels.push(run.bounds());
            texts.push(run);
        }
        obstacles.push(rect);
        gaps.push(GapMark {
            rect,
            labels,
            color: if who.len() == 1 {
                series_color(who[0])
            } else {
                MUTED
            },
            series: who,
        });
    }

    // Series: lines broken at failed levels, bands or whiskers, markers.
    let mut shapes: Vec<SeriesShapes> = Vec::new();
    for (i, s) in panel.series.iter().enumerate() {
        let mut pts: Vec<(f64, &crate::figures::Point)> = s
            .points
            .iter()
            .filter_map(|p| panel.x.position(p.level.value).map(|x| (x, p)))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let gap_pos: Vec<f64> = s
            .gaps
            .iter()
            .filter_map(|g| panel.x.position(g.value))
            .collect();
        let mut stretches: Vec<Vec<(f64, &crate::figures::Point)>> = Vec::new();
        for (k, &(x, p)) in pts.iter().enumerate() {
            let broken = k == 0 || gap_pos.iter().any(|g| *g > pts[k - 1].0 && *g < x);
            if broken {
                stretches.push(Vec::new());
            }
            if let Some(last) = stretches.last_mut() {
                last.push((x, p));
            }
        }
        let dodge = if panel.spread == Spread::Percentiles && n_series > 1 {
            (i as f64 - (n_series - 1) as f64 / 2.0) * 9.0
        } else {
            0.0
        };
        let mut sh = SeriesShapes {
            color: series_color(i),
            stroke: s.stroke,
            marker_radius: MARKER_RADIUS,
            lines: Vec::new(),
            markers: Vec::new(),
            hollow: Vec::new(),
            bands: Vec::new(),
            bars: Vec::new(),
            whiskers: Vec::new(),
        };
        if let Line::Trace(runs) = &s.line {
            // A time series: a line along each run, a dot for a run of one point.
            sh.marker_radius = TRACE_DOT_RADIUS;
            for run in runs {
                let line: Vec<(f64, f64)> = run
                    .iter()
                    .filter_map(|&k| s.points.get(k))
                    .filter_map(|p| {
                        let x = panel.x.position(p.level.value)?;
                        p.y.is_finite().then(|| (x_px(x), y_px(p.y)))
                    })
                    .collect();
                match line.len() {
                    0 => {}
                    1 => sh.markers.push(line[0]),
                    _ => sh.lines.push(line),
                }
            }
            shapes.push(sh);
            continue;
        }
        if let Line::Through(on) = &s.line {
            // A frontier: the line through its points in their order, every point a marker,
            // hollow when off the line.
            let at = |p: &crate::figures::Point| {
                panel
                    .x
                    .position(p.level.value)
                    .map(|x| (x_px(x), y_px(p.y)))
            };
            let line: Vec<(f64, f64)> = on
                .iter()
                .filter_map(|&k| s.points.get(k))
                .filter_map(at)
                .collect();
            for (k, p) in s.points.iter().enumerate() {
                if let Some(m) = at(p) {
                    if !on.contains(&k) {
                        sh.hollow.push(sh.markers.len());
                    }
                    sh.markers.push(m);
                }
            }
            if line.len() >= 2 {
                sh.lines.push(line);
            }
            shapes.push(sh);
            continue;
        }
        for stretch in &stretches {
            let line: Vec<(f64, f64)> =
                stretch.iter().map(|(x, p)| (x_px(*x), y_px(p.y))).collect();
            sh.markers.extend(line.iter().copied());
            if line.len() >= 2 {
                sh.lines.push(line);
            }
            match panel.spread {
                Spread::StdDev => {
                    // Bands over runs of neighbouring points that have a spread.
                    let mut run: Vec<(f64, (f64, f64))> = Vec::new();
                    let flush = |run: &mut Vec<(f64, (f64, f64))>, sh: &mut SeriesShapes| {
                        match run.len() {
                            0 => {}
                            1 => {
                                let (x, (lo, hi)) = run[0];
                                sh.bars.push(((x, y_px(lo)), (x, y_px(hi))));
                            }
                            _ => {
                                let mut poly: Vec<(f64, f64)> =
                                    run.iter().map(|&(x, (_, hi))| (x, y_px(hi))).collect();
                                poly.extend(run.iter().rev().map(|&(x, (lo, _))| (x, y_px(lo))));
                                sh.bands.push(poly);
                            }
                        }
                        run.clear();
                    };
                    for (x, p) in stretch {
                        match p.range {
                            Some(r) => run.push((x_px(*x), r)),
                            None => flush(&mut run, &mut sh),
                        }
                    }
                    flush(&mut run, &mut sh);
                }
                Spread::Percentiles => {
                    for (x, p) in stretch {
                        if let Some((lo, hi)) = p.range {
                            sh.whiskers.push(Whisker {
                                x: x_px(*x) + dodge,
                                low: y_px(lo),
                                high: y_px(hi),
                            });
                        }
                    }
                }
            }
        }
        shapes.push(sh);
    }

    // What notes and the legend must keep off: markers, line segments, whiskers, gaps.
    let marker_boxes: Vec<Rect> = shapes
        .iter()
        .flat_map(|s| s.markers.iter())
        .map(|&(x, y)| Rect::new(x, y, x, y).inflate(MARKER_RADIUS + 3.0))
        .collect();
    let mut segments: Vec<Segment> = Vec::new();
    for s in &shapes {
        for line in &s.lines {
            segments.extend(line.windows(2).map(|w| (w[0], w[1])));
        }
        for wh in &s.whiskers {
            segments.extend(wh.segments());
        }
        segments.extend(s.bars.iter().copied());
    }
    obstacles.extend(marker_boxes.iter().copied());

    // Reference lines: where they run (their labels are placed after the legend); a rule
    // outside the plot is left out.
    let rule_color = |r: &crate::figures::Rule| r.series.map_or(RULE_GREY, color);
    let rule_lines: Vec<Option<Segment>> = panel
        .rules
        .iter()
        .map(|r| {
            let line = match r.at {
                RuleAt::Y(v) => ((plot.x0, y_px(v)), (plot.x1, y_px(v))),
                RuleAt::X(v) => {
                    let x = x_px(panel.x.position(v)?);
                    ((x, plot.y0), (x, plot.y1))
                }
            };
            let inside = |(x, y): (f64, f64)| {
                x >= plot.x0 - 0.5 && x <= plot.x1 + 0.5 && y >= plot.y0 - 0.5 && y <= plot.y1 + 0.5
            };
            (inside(line.0) && inside(line.1)).then_some(line)
        })
        .collect();
    let rule_segments: Vec<Segment> = rule_lines.iter().flatten().copied().collect();

    // The legend: series when there are several, what whiskers mean, what a frontier is.
    let mut entries: Vec<(Swatch, RGBColor, String)> = Vec::new();
    let has_whiskers = shapes.iter().any(|s| !s.whiskers.is_empty());
    let frontier = panel
        .series
        .iter()
        .any(|s| matches!(s.line, Line::Through(_)));
    let has_hollow = shapes.iter().any(|s| !s.hollow.is_empty());
    if let Some(items) = &panel.legend {
        for item in items {
            entries.push((
                Swatch::Trace(item.stroke),
                item.color.map_or(MUTED, color),
                item.label.clone(),
            ));
        }
    } else if n_series > 1 {
        for (i, s) in panel.series.iter().enumerate() {
            let swatch = match s.line {
                Line::Trace(_) => Swatch::Trace(s.stroke),
                _ => Swatch::Line,
            };
            entries.push((swatch, series_color(i), s.label.clone()));
        }
        if has_whiskers {
            entries.push((Swatch::Whisker, MUTED, "p90–p99 (whiskers)".into()));
        }
        if has_hollow {
            entries.push((Swatch::Hollow, MUTED, "level off the frontier".into()));
        }
    } else if has_whiskers {
        entries.push((Swatch::Line, series_color(0), "p50".into()));
        entries.push((Swatch::Whisker, series_color(0), "p90–p99".into()));
    } else if frontier {
        entries.push((Swatch::Line, series_color(0), "Pareto frontier".into()));
        if has_hollow {
            entries.push((
                Swatch::Hollow,
                series_color(0),
                "level off the frontier".into(),
            ));
        }
    }
    let all_segments: Vec<Segment> = segments.iter().chain(&rule_segments).copied().collect();
    let legend = (!entries.is_empty())
        .then(|| place_legend(entries, plot, &obstacles, &all_segments, texts));
    if let Some(l) = &legend {
        obstacles.push(l.rect);
    }

    // Rule labels, before the notes: a line without its label says nothing. A label keeps off
    // everything a note keeps off; when nothing else fits, a level's label may cross a series
    // line or a gap's band (never its label: the rule's label is drawn on white), while an
    // iso-cost line is left out instead.
    let area = plot.inflate(-2.0);
    let mut firm: Vec<Rect> = marker_boxes.clone();
    firm.extend(
        gaps.iter()
            .flat_map(|g| g.labels.iter().map(|r| r.inflate(3.0))),
    );
    firm.extend(legend.iter().map(|l| l.rect));
    let mut rules: Vec<PlacedRule> = Vec::new();
    let mut rules_dropped = 0;
    let mut rule_labels_dropped = 0;
    for (r, line) in panel.rules.iter().zip(&rule_lines) {
        let Some((a, b)) = *line else {
            rules_dropped += 1;
            continue;
        };
        let horizontal = matches!(r.at, RuleAt::Y(_));
        let c = rule_color(r);
        if r.label.is_empty() {
            rules.push(PlacedRule {
                from: a,
                to: b,
                horizontal,
                color: c,
                kind: r.kind,
                text: String::new(),
                label: None,
            });
            continue;
        }
        let (w, h) = (RULE_FACE.width(&r.label), RULE_FACE.size);
        let candidates = if horizontal {
            rule_label_candidates_h(a.1, plot, w, h)
        } else {
            rule_label_candidates_v(a.0, plot, w, h)
        };
        let on_rule_label = |q: &Rect| {
            rules
                .iter()
                .filter_map(|p: &PlacedRule| p.label)
                .any(|l| l.inflate(NOTE_GAP).intersects(q))
        };
        let strict = candidates.iter().find(|q| {
            area.contains(q)
                && !obstacles.iter().any(|o| o.intersects(q))
                && !on_rule_label(q)
                && !segments
                    .iter()
                    .chain(&rule_segments)
                    .any(|&(s0, s1)| q.crosses(s0, s1))
        });
        let place = match strict {
            Some(q) => Some(*q),
            None if !horizontal => candidates
                .iter()
                .find(|q| {
                    area.contains(q) && !firm.iter().any(|o| o.intersects(q)) && !on_rule_label(q)
                })
                .copied(),
            None => None,
        };
        let Some(label) = place else {
            if r.kind == RuleKind::Boundary {
                // A boundary says where something starts even without its label.
                rule_labels_dropped += 1;
                rules.push(PlacedRule {
                    from: a,
                    to: b,
                    horizontal,
                    color: c,
                    kind: r.kind,
                    text: r.label.clone(),
                    label: None,
                });
            } else {
                rules_dropped += 1;
            }
            continue;
        };
        texts.push(TextRun::at(
            r.label.clone(),
            RULE_FACE,
            if r.series.is_some() { c } else { MUTED },
            (label.x0, label.y0),
            Align::Start,
            Align::Start,
        ));
        obstacles.push(label);
        rules.push(PlacedRule {
            from: a,
            to: b,
            horizontal,
            color: c,
            kind: r.kind,
            text: r.label.clone(),
            label: Some(label),
        });
    }
    // Notes keep off the rules' lines where they can, and may cross them where nothing else
    // fits (never their labels).
    let placed_rule_segments: Vec<Segment> = rules.iter().map(|r| (r.from, r.to)).collect();

    // Notes, greedily, series by series and left to right.
    let mut notes: Vec<PlacedNote> = Vec::new();
    let mut dropped = 0;
    for (i, s) in panel.series.iter().enumerate() {
        let mut pts: Vec<(f64, &crate::figures::Point)> = s
            .points
            .iter()
            .filter_map(|p| panel.x.position(p.level.value).map(|x| (x, p)))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (x, p) in pts {
            let Some(text) = &p.note else { continue };
            let point = (x_px(x), y_px(p.y));
            let candidates = note_candidates(point, NOTE_FACE.width(text), NOTE_FACE.size);
            let free = |r: &Rect| {
                area.contains(r)
                    && !obstacles.iter().any(|o| o.intersects(r))
                    && !segments.iter().any(|&(a, b)| r.crosses(a, b))
                    && !notes.iter().any(|n| n.rect.inflate(NOTE_GAP).intersects(r))
            };
            let place = candidates
                .iter()
                .find(|r| free(r) && !placed_rule_segments.iter().any(|&(a, b)| r.crosses(a, b)))
                .or_else(|| candidates.iter().find(|r| free(r)))
                .copied();
            match place {
                Some(rect) => {
                    texts.push(TextRun::at(
                        text.clone(),
                        NOTE_FACE,
                        series_color(i),
                        (rect.x0, rect.y0),
                        Align::Start,
                        Align::Start,
                    ));
                    notes.push(PlacedNote {
                        series: i,
                        point,
                        text: text.clone(),
                        rect,
                    });
                }
                None => dropped += 1,
            }
        }
    }

    PanelLayout {
        frame,
        plot,
        x_ticks,
        y_ticks,
        y_top: top,
        gaps,
        series: shapes,
        legend,
        notes,
        notes_dropped: dropped,
        rules,
        rules_dropped,
        rule_labels_dropped,
        spans,
    }
}

/// Places for the label of a horizontal rule at `y`, best first: just above the line at its
/// right end, below it there, then at its left end, then along it.
fn rule_label_candidates_h(y: f64, plot: Rect, w: f64, h: f64) -> Vec<Rect> {
    let gap = 4.0;
    let mut out = Vec::new();
    for x0 in [
        plot.x1 - 10.0 - w,
        plot.x0 + 10.0,
        plot.x0 + 0.75 * plot.width() - w / 2.0,
        plot.x0 + 0.5 * plot.width() - w / 2.0,
        plot.x0 + 0.25 * plot.width() - w / 2.0,
    ] {
        out.push(Rect::new(x0, y - gap - h, x0 + w, y - gap));
        out.push(Rect::new(x0, y + gap, x0 + w, y + gap + h));
    }
    out
}

/// Places for the label of a vertical rule at `x`, best first: beside the line at the top of
/// the plot, right then left, then lower down.
fn rule_label_candidates_v(x: f64, plot: Rect, w: f64, h: f64) -> Vec<Rect> {
    let gap = 8.0;
    let mut out = Vec::new();
    let mut y0 = plot.y0 + 8.0;
    while y0 + h <= plot.y1 - 8.0 {
        out.push(Rect::new(x + gap, y0, x + gap + w, y0 + h));
        out.push(Rect::new(x - gap - w, y0, x - gap, y0 + h));
        y0 += h / 2.0;
    }
    out
}

/// Every how many levels a tick label is written, so that neighbours keep 12 px apart.
fn tick_stride(xs: &[f64], levels: &[crate::figures::Level]) -> usize {
    let widths: Vec<f64> = levels.iter().map(|l| TICK_FACE.width(&l.label)).collect();
    (1..=xs.len().max(1))
        .find(|&k| {
            (k..xs.len()).step_by(k).all(|i| {
                let gap = xs[i] - xs[i - k];
                gap >= (widths[i] + widths[i - k]) / 2.0 + 12.0
            })
        })
        .unwrap_or(1)
}

/// Places for a note of `w` × `h` around its point, best first: above, below, the four
/// diagonals, the sides, then further above and below.
fn note_candidates((x, y): (f64, f64), w: f64, h: f64) -> Vec<Rect> {
    let d = MARKER_RADIUS + 4.0;
    let at = |x0: f64, y0: f64| Rect::new(x0, y0, x0 + w, y0 + h);
    vec![
        at(x - w / 2.0, y - d - h),
        at(x - w / 2.0, y + d),
        at(x + d, y - d - h),
        at(x - d - w, y - d - h),
        at(x + d, y + d),
        at(x - d - w, y + d),
        at(x + d + 2.0, y - h / 2.0),
        at(x - d - 2.0 - w, y - h / 2.0),
        at(x - w / 2.0, y - d - 2.0 * h - NOTE_GAP),
        at(x - w / 2.0, y + d + h + NOTE_GAP),
        at(x + d, y - d - 2.0 * h - NOTE_GAP),
        at(x - d - w, y - d - 2.0 * h - NOTE_GAP),
    ]
}

/// Puts the legend in the corner of the plot where it covers the least (markers, lines,
/// whiskers, gaps), upper left on a tie.
fn place_legend(
    entries: Vec<(Swatch, RGBColor, String)>,
    plot: Rect,
    obstacles: &[Rect],
    segments: &[Segment],
    texts: &mut Vec<TextRun>,
) -> Legend {
    const ROW: f64 = 32.0;
    const PAD: f64 = 14.0;
    let max_label = plot.width() * 0.55;
    let labels: Vec<String> = entries
        .iter()
        .map(|(_, _, l)| fit(l, LEGEND_FACE, max_label))
        .collect();
    let label_w = labels
        .iter()
        .map(|l| LEGEND_FACE.width(l))
        .fold(0.0, f64::max);
    let (w, h) = (
        PAD + SWATCH_WIDTH + 12.0 + label_w + PAD,
        PAD + ROW * entries.len() as f64 + PAD - (ROW - LEGEND_FACE.size),
    );
    let inset = 14.0;
    let corners = [
        (plot.x0 + inset, plot.y0 + inset),
        (plot.x1 - inset - w, plot.y0 + inset),
        (plot.x1 - inset - w, plot.y1 - inset - h),
        (plot.x0 + inset, plot.y1 - inset - h),
    ];
    let cost = |r: &Rect| {
        obstacles.iter().filter(|o| o.intersects(r)).count()
            + segments.iter().filter(|&&(a, b)| r.crosses(a, b)).count()
    };
    let rect = corners
        .iter()
        .map(|&(x, y)| Rect::new(x, y, x + w, y + h))
        .min_by_key(cost)
        .unwrap_or(Rect::new(plot.x0, plot.y0, plot.x0 + w, plot.y0 + h));
    let entries = entries
        .into_iter()
        .zip(labels)
        .enumerate()
        .map(|(k, ((swatch, color, _), label))| {
            let cy = rect.y0 + PAD + LEGEND_FACE.size / 2.0 + k as f64 * ROW;
            let at = (rect.x0 + PAD, cy);
            texts.push(TextRun::at(
                label.clone(),
                LEGEND_FACE,
                INK,
                (at.0 + SWATCH_WIDTH + 12.0, cy),
                Align::Start,
                Align::Middle,
            ));
            LegendEntry {
                swatch,
                color,
                label,
                at,
            }
        })
        .collect();
    Legend { rect, entries }
}

/// `text`, shortened with an ellipsis to fit `max` pixels.
fn fit(text: &str, face: Face, max: f64) -> String {
    if face.width(text) <= max {
        return text.to_string();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let s: String = chars.iter().collect::<String>().trim_end().to_string() + "…";
        if face.width(&s) <= max {
            return s;
        }
    }
    "…".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_scales() {
        assert_eq!(y_scale(5.0), (6.0, 1.0));
        let (top, step) = y_scale(4000.0);
        assert_eq!((top, step), (5000.0, 1000.0));
        let (top, step) = y_scale(0.9);
        assert!(
            (step - 0.2).abs() < 1e-12 && (top - 1.2).abs() < 1e-9,
            "{top} {step}"
        );
        assert_eq!(y_scale(0.0), (1.0, 0.2));
    }

    #[test]
    fn boxes_and_segments() {
        let r = Rect::new(10.0, 10.0, 20.0, 20.0);
        assert!(r.intersects(&Rect::new(19.0, 19.0, 30.0, 30.0)));
        assert!(
            !r.intersects(&Rect::new(20.0, 10.0, 30.0, 20.0)),
            "touching is not overlapping"
        );
        assert!(r.crosses((0.0, 0.0), (30.0, 30.0)));
        assert!(r.crosses((15.0, 0.0), (15.0, 12.0)));
        assert!(!r.crosses((0.0, 0.0), (30.0, 5.0)));
        assert!(!r.crosses((0.0, 30.0), (30.0, 25.0)));
        let ((ax, ay), (bx, by)) = r.clip((0.0, 15.0), (30.0, 15.0)).unwrap();
        assert_eq!((ax, ay, bx, by), (10.0, 15.0, 20.0, 15.0));
    }

    #[test]
    fn long_labels_are_shortened() {
        let s = fit(
            "a very long description of a benchmark run",
            LEGEND_FACE,
            120.0,
        );
        assert!(s.ends_with('…') && LEGEND_FACE.width(&s) <= 120.0, "{s}");
        assert_eq!(fit("short", LEGEND_FACE, 120.0), "short");
    }
}
