//! Drawing a [`Layout`]: shapes through a plotters backend (bitmap or SVG), then the text from
//! [`crate::text`] over them — rasterised into the bitmap, or written as glyph outlines into the
//! SVG.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::figures::{RuleKind, Stroke};
use crate::layout::{Layout, PanelLayout, Rect, Swatch, CAP_HALF_WIDTH, SWATCH_WIDTH};
use crate::{text, Error, Result};

/// Pixels per metre of 300 dpi, written into the PNG so that viewers print the figure at the
/// original's resolution.
const PIXELS_PER_METRE: u32 = 11_811;

fn draw_err(e: impl std::fmt::Display) -> Error {
    Error::Draw(e.to_string())
}

fn px((x, y): (f64, f64)) -> (i32, i32) {
    (x.round() as i32, y.round() as i32)
}

/// The figure as PNG bytes.
pub(crate) fn png(layout: &Layout) -> Result<Vec<u8>> {
    let (w, h) = layout.size;
    let mut rgb = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        for panel in &layout.panels {
            draw_grid(&root, panel)?;
        }
        draw(&root, layout)?;
        root.present().map_err(draw_err)?;
    }
    text::rasterize(&layout.texts, &mut rgb, w, h);
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Figures are mostly flat colour: the best compression with per-row filters halves the file
    // for a few tens of milliseconds.
    encoder.set_compression(png::Compression::Best);
    encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    encoder.set_pixel_dims(Some(png::PixelDimensions {
        xppu: PIXELS_PER_METRE,
        yppu: PIXELS_PER_METRE,
        unit: png::Unit::Meter,
    }));
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rgb)?;
    writer.finish()?;
    Ok(out)
}

/// The figure as an SVG document whose text is the embedded font's glyph outlines.
pub(crate) fn svg(layout: &Layout) -> Result<String> {
    svg_with_ids(layout, "")
}

/// [`svg`] with `id_prefix` before every id the document defines (the glyphs'), for several
/// figures in one page.
pub(crate) fn svg_with_ids(layout: &Layout, id_prefix: &str) -> Result<String> {
    let mut doc = String::new();
    {
        let root = SVGBackend::with_string(&mut doc, layout.size).into_drawing_area();
        draw(&root, layout)?;
        root.present().map_err(draw_err)?;
    }
    // The glyphs are placed with `xlink:href`, which needs its namespace on the root; the title
    // goes first, for readers and search, then the background and the dashed grid (one path
    // per panel with a dash pattern, where plotters would write every dash as an element); the
    // text goes last, over the shapes.
    let svg_ns = r#"xmlns="http://www.w3.org/2000/svg""#;
    let root_end = doc
        .find("<svg")
        .and_then(|s| doc[s..].find('>').map(|e| s + e + 1))
        .filter(|_| doc.contains(svg_ns))
        .ok_or_else(|| draw_err("the SVG backend wrote no <svg> element"))?;
    let close = doc
        .rfind("</svg>")
        .ok_or_else(|| draw_err("the SVG backend wrote no </svg>"))?;
    let mut out = String::with_capacity(doc.len() * 2);
    out.push_str(&doc[..root_end].replacen(
        svg_ns,
        &format!(r#"{svg_ns} xmlns:xlink="http://www.w3.org/1999/xlink""#),
        1,
    ));
    out.push_str(&format!(
        "\n<title>{}</title>\n",
        text::escape(&layout.title)
    ));
    out.push_str(&svg_background_and_grid(layout));
    out.push_str(&doc[root_end..close]);
    out.push_str(&text::svg_with_ids(&layout.texts, id_prefix));
    out.push_str(&doc[close..]);
    Ok(out)
}

/// The white background and every panel's dashed grid, as SVG.
fn svg_background_and_grid(layout: &Layout) -> String {
    let (w, h) = layout.size;
    let mut out = format!(r##"<rect x="0" y="0" width="{w}" height="{h}" fill="#FFFFFF"/>"##);
    out.push('\n');
    for p in &layout.panels {
        let mut d = String::new();
        for &x in &p.x_ticks {
            d.push_str(&format!(
                "M{} {}V{}",
                x.round(),
                p.plot.y0.round(),
                p.plot.y1.round()
            ));
        }
        for &y in p.y_ticks.iter().skip(1) {
            d.push_str(&format!(
                "M{} {}H{}",
                p.plot.x0.round(),
                y.round(),
                p.plot.x1.round()
            ));
        }
        out.push_str(&format!(
            r##"<path d="{d}" fill="none" stroke="#000000" stroke-opacity="{GRID_OPACITY}" stroke-width="1" stroke-dasharray="{GRID_DASH} {GRID_SPACE}"/>"##
        ));
        out.push('\n');
    }
    out
}

/// The dashed grid, dash by dash (bitmaps).
fn draw_grid<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, p: &PanelLayout) -> Result<()> {
    let plot = p.plot;
    let grid = BLACK.mix(GRID_OPACITY).stroke_width(1);
    let pattern = (GRID_DASH, GRID_SPACE);
    for &x in &p.x_ticks {
        dashed(
            root,
            (x.round(), plot.y0.round()),
            (x.round(), plot.y1.round()),
            pattern,
            grid,
        )?;
    }
    for &y in p.y_ticks.iter().skip(1) {
        dashed(
            root,
            (plot.x0.round(), y.round()),
            (plot.x1.round(), y.round()),
            pattern,
            grid,
        )?;
    }
    Ok(())
}

const GRID_OPACITY: f64 = 0.16;
const GRID_DASH: f64 = 8.0;
const GRID_SPACE: f64 = 6.0;

/// Everything but the background, the grid and the text.
fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, layout: &Layout) -> Result<()> {
    for panel in &layout.panels {
        draw_panel(root, panel)?;
    }
    Ok(())
}

fn line<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    points: &[(f64, f64)],
    style: ShapeStyle,
) -> Result<()> {
    let pts: Vec<(i32, i32)> = points.iter().map(|p| px(*p)).collect();
    root.draw(&PathElement::new(pts, style)).map_err(draw_err)
}

/// A dashed straight line, `dash` on and `gap` off.
fn dashed<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    a: (f64, f64),
    b: (f64, f64),
    (dash, gap): (f64, f64),
    style: ShapeStyle,
) -> Result<()> {
    let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
    if len == 0.0 {
        return Ok(());
    }
    let (ux, uy) = ((b.0 - a.0) / len, (b.1 - a.1) / len);
    let mut t = 0.0;
    while t < len {
        let e = (t + dash).min(len);
        line(
            root,
            &[(a.0 + ux * t, a.1 + uy * t), (a.0 + ux * e, a.1 + uy * e)],
            style,
        )?;
        t += dash + gap;
    }
    Ok(())
}

/// A polyline dashed `dash` on and `gap` off, the pattern carried from one segment to the next
/// (a time series' segments are often shorter than a dash).
fn dashed_path<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    points: &[(f64, f64)],
    (dash, gap): (f64, f64),
    style: ShapeStyle,
) -> Result<()> {
    let period = dash + gap;
    // Where along the pattern the current segment starts.
    let mut phase = 0.0f64;
    let mut piece: Vec<(f64, f64)> = Vec::new();
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        let at = |t: f64| (a.0 + (b.0 - a.0) * t / len, a.1 + (b.1 - a.1) * t / len);
        let mut t = 0.0;
        while t < len {
            let in_dash = phase < dash;
            let left = if in_dash {
                dash - phase
            } else {
                period - phase
            };
            let step = left.min(len - t);
            if in_dash {
                if piece.is_empty() {
                    piece.push(at(t));
                }
                piece.push(at(t + step));
            }
            t += step;
            phase += step;
            if phase >= dash && in_dash && piece.len() >= 2 {
                line(root, &piece, style)?;
                piece.clear();
            }
            if phase >= period - 1e-9 {
                phase = 0.0;
            }
        }
    }
    if piece.len() >= 2 {
        line(root, &piece, style)?;
    }
    Ok(())
}

/// A series' line in its stroke.
fn stroked<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    points: &[(f64, f64)],
    stroke: Stroke,
    style: ShapeStyle,
) -> Result<()> {
    match stroke {
        Stroke::Solid => line(root, points, style),
        Stroke::Dashed => dashed_path(root, points, (16.0, 9.0), style),
        Stroke::Dotted => dashed_path(root, points, (4.0, 7.0), style),
    }
}

/// Diagonal hatching inside `rect`.
fn hatch<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rect: Rect,
    spacing: f64,
    style: ShapeStyle,
) -> Result<()> {
    let span = rect.width() + rect.height();
    let mut t = spacing / 2.0;
    while t < span {
        // Lines from lower left to upper right: x − (y1 − y) = x0 + t − h.
        let a = (rect.x0 + t - rect.height(), rect.y1);
        let b = (rect.x0 + t, rect.y0);
        if let Some((p, q)) = rect.clip(a, b) {
            line(root, &[p, q], style)?;
        }
        t += spacing;
    }
    Ok(())
}

/// A marker drawn as a ring: a point off its series' line.
fn hollow_marker<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    at: (f64, f64),
    radius: f64,
    color: RGBColor,
) -> Result<()> {
    root.draw(&Circle::new(px(at), radius as i32, WHITE.filled()))
        .map_err(draw_err)?;
    root.draw(&Circle::new(
        px(at),
        (radius - 1.0) as i32,
        color.stroke_width(3),
    ))
    .map_err(draw_err)
}

fn draw_panel<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, p: &PanelLayout) -> Result<()> {
    let plot = p.plot;
    for span in &p.spans {
        let r = span.rect;
        root.draw(&Rectangle::new(
            [px((r.x0, r.y0)), px((r.x1, r.y1))],
            span.color.mix(0.12).filled(),
        ))
        .map_err(draw_err)?;
    }
    for g in &p.gaps {
        let r = g.rect;
        root.draw(&Rectangle::new(
            [px((r.x0, r.y0)), px((r.x1, r.y1))],
            g.color.mix(0.06).filled(),
        ))
        .map_err(draw_err)?;
        hatch(root, r, 16.0, g.color.mix(0.3).stroke_width(2))?;
        for x in [r.x0, r.x1] {
            line(
                root,
                &[(x, r.y0), (x, r.y1)],
                g.color.mix(0.5).stroke_width(1),
            )?;
        }
        // The labels stay readable: no hatching under them.
        for label in &g.labels {
            let b = label.inflate(3.0);
            root.draw(&Rectangle::new(
                [px((b.x0, b.y0)), px((b.x1, b.y1))],
                WHITE.filled(),
            ))
            .map_err(draw_err)?;
        }
    }
    for s in &p.series {
        for band in &s.bands {
            let pts: Vec<(i32, i32)> = band.iter().map(|q| px(*q)).collect();
            root.draw(&Polygon::new(pts, s.color.mix(0.16).filled()))
                .map_err(draw_err)?;
        }
        for &(a, b) in &s.bars {
            line(root, &[a, b], s.color.mix(0.35).stroke_width(6))?;
        }
    }
    // Reference lines under the data: iso-cost lines thin and grey, a marked level in its
    // series' colour; a level's label on white, since it may lie across a gap's hatching.
    for r in &p.rules {
        if r.kind == RuleKind::Boundary {
            line(root, &[r.from, r.to], r.color.mix(0.6).stroke_width(2))?;
        } else {
            let (style, pattern) = if r.horizontal {
                (r.color.mix(0.7).stroke_width(2), (10.0, 8.0))
            } else {
                (r.color.stroke_width(3), (14.0, 8.0))
            };
            dashed(root, r.from, r.to, pattern, style)?;
        }
        if let (false, Some(label)) = (r.horizontal, r.label) {
            let b = label.inflate(3.0);
            root.draw(&Rectangle::new(
                [px((b.x0, b.y0)), px((b.x1, b.y1))],
                WHITE.filled(),
            ))
            .map_err(draw_err)?;
        }
    }
    for s in &p.series {
        for l in &s.lines {
            stroked(root, l, s.stroke, s.color.stroke_width(3))?;
        }
        for w in &s.whiskers {
            for (a, b) in w.segments() {
                line(root, &[a, b], s.color.mix(0.85).stroke_width(2))?;
            }
        }
        for (k, &m) in s.markers.iter().enumerate() {
            if s.hollow.contains(&k) {
                hollow_marker(root, m, s.marker_radius, s.color)?;
            } else {
                root.draw(&Circle::new(
                    px(m),
                    s.marker_radius as i32,
                    s.color.filled(),
                ))
                .map_err(draw_err)?;
            }
        }
    }
    // Axes and tick marks.
    let axis = RGBColor(40, 40, 40).stroke_width(2);
    line(
        root,
        &[(plot.x0, plot.y0), (plot.x0, plot.y1), (plot.x1, plot.y1)],
        axis,
    )?;
    for &x in &p.x_ticks {
        line(root, &[(x, plot.y1), (x, plot.y1 + 8.0)], axis)?;
    }
    for &y in &p.y_ticks {
        line(root, &[(plot.x0 - 8.0, y), (plot.x0, y)], axis)?;
    }
    if let Some(legend) = &p.legend {
        let r = legend.rect;
        root.draw(&Rectangle::new(
            [px((r.x0, r.y0)), px((r.x1, r.y1))],
            WHITE.mix(0.92).filled(),
        ))
        .map_err(draw_err)?;
        root.draw(&Rectangle::new(
            [px((r.x0, r.y0)), px((r.x1, r.y1))],
            BLACK.mix(0.35).stroke_width(1),
        ))
        .map_err(draw_err)?;
        for e in &legend.entries {
            let (x, y) = e.at;
            match e.swatch {
                Swatch::Line => {
                    line(
                        root,
                        &[(x, y), (x + SWATCH_WIDTH, y)],
                        e.color.stroke_width(3),
                    )?;
                    root.draw(&Circle::new(
                        px((x + SWATCH_WIDTH / 2.0, y)),
                        6,
                        e.color.filled(),
                    ))
                    .map_err(draw_err)?;
                }
                Swatch::Trace(stroke) => {
                    stroked(
                        root,
                        &[(x, y), (x + SWATCH_WIDTH, y)],
                        stroke,
                        e.color.stroke_width(3),
                    )?;
                }
                Swatch::Hollow => {
                    hollow_marker(root, (x + SWATCH_WIDTH / 2.0, y), 6.0, e.color)?;
                }
                Swatch::Whisker => {
                    let cx = x + SWATCH_WIDTH / 2.0;
                    let style = e.color.mix(0.85).stroke_width(2);
                    line(root, &[(cx, y - 11.0), (cx, y + 11.0)], style)?;
                    for cy in [y - 11.0, y + 11.0] {
                        line(
                            root,
                            &[(cx - CAP_HALF_WIDTH, cy), (cx + CAP_HALF_WIDTH, cy)],
                            style,
                        )?;
                    }
                }
            }
        }
    }
    Ok(())
}
