//! Drawing a [`Figure`] with plotters, on a bitmap or SVG backend.

use std::path::Path;
use std::sync::Once;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::figures::{Figure, Panel, Point, TITLE_HEIGHT};
use crate::{compact, Error, Format, Result};

const FONT: &str = "sans-serif";

/// Distinct, colour-blind-friendly colours (Okabe–Ito, then Tableau).
const PALETTE: &[RGBColor] = &[
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
    RGBColor(240, 228, 66),
];

/// A linear axis whose ticks (and grid lines) are exactly the given values.
#[derive(Clone)]
struct KeyedAxis {
    lo: f64,
    hi: f64,
    keys: Vec<f64>,
}

impl Ranged for KeyedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        let frac = if span > 0.0 {
            (value - self.lo) / span
        } else {
            0.5
        };
        limit.0 + (frac * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.keys.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are valid TrueType fonts shipped with this crate; a failure would only
        // leave text undrawn, which the tests would catch.
        let _ = plotters::style::register_font(
            FONT,
            FontStyle::Normal,
            include_bytes!("../fonts/DejaVuSans.ttf"),
        );
        let _ = plotters::style::register_font(
            FONT,
            FontStyle::Bold,
            include_bytes!("../fonts/DejaVuSans-Bold.ttf"),
        );
    });
}

pub(crate) fn render(figure: &Figure, format: Format, path: &Path) -> Result<()> {
    register_fonts();
    let size = figure.size();
    let draw_err = |message: String| Error::Draw {
        path: path.to_path_buf(),
        message,
    };
    match format {
        Format::Png => {
            let root = BitMapBackend::new(path, size).into_drawing_area();
            draw(&root, figure).map_err(draw_err)?;
            root.present().map_err(|e| draw_err(e.to_string()))
        }
        Format::Svg => {
            let root = SVGBackend::new(path, size).into_drawing_area();
            draw(&root, figure).map_err(draw_err)?;
            root.present().map_err(|e| draw_err(e.to_string()))
        }
    }
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, figure: &Figure) -> Result<(), String> {
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    root.fill(&WHITE).map_err(e)?;
    let (title_area, body) = root.split_vertically(TITLE_HEIGHT);
    let (w, _) = title_area.dim_in_pixel();
    title_area
        .draw_text(
            &figure.title,
            &TextStyle::from((FONT, 44).into_font().style(FontStyle::Bold))
                .pos(Pos::new(HPos::Center, VPos::Center)),
            (w as i32 / 2, TITLE_HEIGHT as i32 / 2),
        )
        .map_err(e)?;
    let columns = figure.columns.max(1);
    let rows = figure.panels.len().div_ceil(columns);
    let areas = body.split_evenly((rows, columns));
    for (panel, area) in figure.panels.iter().zip(areas.iter()) {
        draw_panel(area, panel)?;
    }
    Ok(())
}

/// Tick values: a "nice" step (1, 2 or 5 × 10^k) giving about six ticks from 0 to `top`.
fn y_ticks(top: f64) -> Vec<f64> {
    let raw = top / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(raw);
    (0..)
        .map(|i| i as f64 * step)
        .take_while(|v| *v <= top + step * 1e-9)
        .collect()
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
) -> Result<(), String> {
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    let ticks = panel.x.ticks().to_vec();
    let xs: Vec<f64> = ticks.iter().filter_map(|&b| panel.x.position(b)).collect();
    let (x_lo, x_hi) = match (xs.first(), xs.last()) {
        (Some(&a), Some(&b)) => (a - 0.5, b + 0.5),
        _ => (-0.5, 0.5),
    };
    // Headroom above the data keeps the legend and the annotations clear of it.
    let data_max = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter())
        .flat_map(|p| [Some(p.y), p.band.map(|b| b.1)])
        .flatten()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let top = if data_max > 0.0 { data_max * 1.3 } else { 1.0 };
    let yt = y_ticks(top);
    let top = yt.last().copied().unwrap_or(top).max(top);
    let label_font = (FONT, 26).into_font();
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 32).into_font().style(FontStyle::Bold))
        .margin(24)
        .margin_right(48)
        .x_label_area_size(80)
        .y_label_area_size(120)
        .build_cartesian_2d(
            KeyedAxis {
                lo: x_lo,
                hi: x_hi,
                keys: xs.clone(),
            },
            KeyedAxis {
                lo: 0.0,
                hi: top,
                keys: yt.clone(),
            },
        )
        .map_err(e)?;
    let tick_label = |x: &f64| {
        ticks
            .iter()
            .find(|&&b| panel.x.position(b).is_some_and(|p| (p - x).abs() < 1e-9))
            .map(|b| b.to_string())
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .axis_desc_style(label_font.clone())
        .label_style((FONT, 24).into_font())
        .x_label_formatter(&tick_label)
        .y_label_formatter(&|y| compact(*y))
        .draw()
        .map_err(e)?;
    // The dashed grid, at the same ticks as the labels.
    let grid = BLACK.mix(0.18).stroke_width(1);
    for &x in &xs {
        chart
            .draw_series(DashedLineSeries::new(vec![(x, 0.0), (x, top)], 8, 6, grid))
            .map_err(e)?;
    }
    for &y in yt.iter().skip(1) {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x_lo, y), (x_hi, y)],
                8,
                6,
                grid,
            ))
            .map_err(e)?;
    }
    let mut notes: Vec<(i32, i32, String, RGBColor)> = Vec::new();
    for (i, series) in panel.series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        // Points in x order, whatever order the file listed its levels in.
        let mut pts: Vec<(f64, &Point)> = series
            .points
            .iter()
            .filter_map(|p| panel.x.position(p.batch).map(|x| (x, p)))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let band: Vec<(f64, (f64, f64))> = pts
            .iter()
            .filter_map(|&(x, p)| p.band.map(|b| (x, b)))
            .collect();
        if band.len() >= 2 {
            let mut poly: Vec<(f64, f64)> = band.iter().map(|&(x, (_, hi))| (x, hi)).collect();
            poly.extend(band.iter().rev().map(|&(x, (lo, _))| (x, lo)));
            chart
                .draw_series(std::iter::once(Polygon::new(
                    poly,
                    color.mix(0.16).filled(),
                )))
                .map_err(e)?;
        } else if let Some(&(x, (lo, hi))) = band.first() {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, lo), (x, hi)],
                    color.mix(0.5).stroke_width(6),
                )))
                .map_err(e)?;
        }
        let line: Vec<(f64, f64)> = pts.iter().map(|&(x, p)| (x, p.y)).collect();
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(3)))
            .map_err(e)?
            .label(&series.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 30, y)], color.stroke_width(4))
            });
        chart
            .draw_series(line.iter().map(|&p| Circle::new(p, 7, color.filled())))
            .map_err(e)?;
        let (bx, by) = area.get_base_pixel();
        for &(x, p) in &pts {
            if let Some(note) = &p.note {
                let (px, py) = chart.backend_coord(&(x, p.y));
                notes.push((px - bx, py - by, note.clone(), color));
            }
        }
    }
    draw_notes(area, notes).map_err(e)?;
    if panel.series.len() > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT, 22).into_font())
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.4))
            .margin(12)
            .draw()
            .map_err(e)?;
    }
    Ok(())
}

/// Height of one annotation line, pixels.
const NOTE_LINE: i32 = 27;

/// Places notes: each just above its point, and notes that share an x position (several series
/// at one batch size) stacked upward at least one line apart, so none overlaps another and none
/// drops below its own point. Input and output are (x, y) pixel positions (y grows downward) of
/// the points and of the notes' bottom edges.
pub(crate) fn layout_notes(points: &[(i32, i32)]) -> Vec<(i32, i32)> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    // By x, then from the lowest point on screen (largest y) up.
    order.sort_by_key(|&i| (points[i].0, std::cmp::Reverse(points[i].1)));
    let mut placed = points.to_vec();
    let mut k = 0;
    while k < order.len() {
        let x = points[order[k]].0;
        let end = order[k..]
            .iter()
            .position(|&i| (points[i].0 - x).abs() > 4)
            .map_or(order.len(), |p| k + p);
        let mut ceiling = i32::MAX / 2;
        for &i in &order[k..end] {
            let y = (points[i].1 - 12).min(ceiling - NOTE_LINE);
            placed[i] = (points[i].0, y);
            ceiling = y;
        }
        k = end;
    }
    placed
}

fn draw_notes<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    notes: Vec<(i32, i32, String, RGBColor)>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let points: Vec<(i32, i32)> = notes.iter().map(|n| (n.0, n.1)).collect();
    for ((_, _, text, color), at) in notes.into_iter().zip(layout_notes(&points)) {
        let style = TextStyle::from((FONT, 22).into_font())
            .color(&color)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        area.draw_text(&text, &style, at)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{layout_notes, y_ticks, NOTE_LINE};

    #[test]
    fn notes_at_one_x_never_overlap() {
        // Four series whose points nearly coincide at x = 100, two more at x = 300.
        let points = [
            (100, 500),
            (100, 505),
            (300, 200),
            (100, 498),
            (100, 700),
            (300, 201),
        ];
        let placed = layout_notes(&points);
        for (i, a) in placed.iter().enumerate() {
            for b in &placed[i + 1..] {
                if a.0 == b.0 {
                    assert!((a.1 - b.1).abs() >= NOTE_LINE, "{a:?} and {b:?} overlap");
                }
            }
        }
        // No note falls below its own point.
        for (p, n) in points.iter().zip(&placed) {
            assert!(n.1 <= p.1 - 12, "{p:?} → {n:?}");
        }
        // A note alone stays just above its point.
        assert_eq!(layout_notes(&[(10, 400)]), vec![(10, 388)]);
    }

    #[test]
    fn nice_ticks() {
        assert_eq!(y_ticks(6.0), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let t = y_ticks(4800.0);
        assert_eq!(t[1], 1000.0);
        assert!(*t.last().unwrap() <= 4800.0);
    }
}
