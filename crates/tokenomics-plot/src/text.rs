//! Text, laid out and drawn from the DejaVu Sans faces embedded in this crate — the same glyphs,
//! at the same positions, in both formats.
//!
//! Plotters is not asked to draw text. Its `ab_glyph` text path places each glyph at the pen
//! position without the glyph's left side bearing, so a glyph with a wide bearing (`F`, many
//! lower-case letters) is drawn too far left and the gap after it opens up ("TTFT" read
//! "TTF T"); and its SVG backend writes `<text font-family="sans-serif">`, which the viewer draws
//! with whatever font it has. Here a run of text is laid out once (advances and kerning of the
//! embedded face), rasterised with that layout for PNG, and written as the faces' own glyph
//! outlines for SVG (each glyph once in `<defs>`, placed with `<use>`, as matplotlib does), so
//! an SVG looks the same on a machine without fonts. Layout code measures text with the same
//! functions ([`Face::width`]), which is what lets it keep notes apart in pixel space.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::LazyLock;

use ab_glyph::{point, Font, FontRef, GlyphId, OutlineCurve, PxScale, ScaleFont};
use plotters::style::RGBColor;

use crate::layout::Rect;

static REGULAR: LazyLock<FontRef<'static>> =
    LazyLock::new(|| parse(include_bytes!("../fonts/DejaVuSans.ttf")));
static BOLD: LazyLock<FontRef<'static>> =
    LazyLock::new(|| parse(include_bytes!("../fonts/DejaVuSans-Bold.ttf")));

fn parse(bytes: &'static [u8]) -> FontRef<'static> {
    // The bytes are the font files shipped inside this crate, not input; a unit test parses both.
    FontRef::try_from_slice(bytes).expect("the embedded DejaVu Sans faces are valid TrueType")
}

/// Regular or bold DejaVu Sans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Weight {
    /// DejaVu Sans.
    Regular,
    /// DejaVu Sans Bold.
    Bold,
}

/// A face at a size. `size` is in pixels from the face's highest ascender to its lowest
/// descender (the height of a line of text without leading), which is also the height of every
/// text box this module reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Face {
    /// Pixels from the highest ascender to the lowest descender.
    pub size: f64,
    /// Regular or bold.
    pub weight: Weight,
}

impl Face {
    /// The regular face at `size` pixels.
    pub const fn regular(size: f64) -> Self {
        Face {
            size,
            weight: Weight::Regular,
        }
    }

    /// The bold face at `size` pixels.
    pub const fn bold(size: f64) -> Self {
        Face {
            size,
            weight: Weight::Bold,
        }
    }

    fn font(&self) -> &'static FontRef<'static> {
        match self.weight {
            Weight::Regular => &REGULAR,
            Weight::Bold => &BOLD,
        }
    }

    fn scale(&self) -> PxScale {
        PxScale::from(self.size as f32)
    }

    /// Pixels from the top of a text box to the baseline.
    pub fn ascent(&self) -> f64 {
        f64::from(self.font().as_scaled(self.scale()).ascent())
    }

    /// The glyphs of `text` with their pen positions (pixels from the start of the run, kerning
    /// applied), and the advance width of the whole run.
    pub fn glyphs(&self, text: &str) -> (Vec<(GlyphId, f64)>, f64) {
        let font = self.font().as_scaled(self.scale());
        let mut pen = 0f32;
        let mut prev: Option<GlyphId> = None;
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                pen += font.kern(p, id);
            }
            out.push((id, f64::from(pen)));
            pen += font.h_advance(id);
            prev = Some(id);
        }
        (out, f64::from(pen))
    }

    /// The advance width of `text`, pixels: the width of its box.
    pub fn width(&self, text: &str) -> f64 {
        self.glyphs(text).1
    }
}

/// One line of text at its final place.
#[derive(Debug, Clone, PartialEq)]
pub struct TextRun {
    /// What it says (one line).
    pub text: String,
    /// Its face and size.
    pub face: Face,
    /// Its colour.
    pub color: RGBColor,
    /// Left edge of the run's box (after rotation), pixels.
    pub x: f64,
    /// Top edge of the run's box (after rotation), pixels.
    pub y: f64,
    /// Turned a quarter counter-clockwise, reading upward (a y axis label).
    pub rotated: bool,
}

/// Where a horizontal run's anchor point sits on its box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// The anchor is the box's left edge.
    Start,
    /// The anchor is the box's horizontal centre.
    Middle,
    /// The anchor is the box's right edge.
    End,
}

impl TextRun {
    /// A horizontal run whose box has the point `(x, y)` at `h` horizontally and `v` vertically.
    pub fn at(
        text: impl Into<String>,
        face: Face,
        color: RGBColor,
        (x, y): (f64, f64),
        h: Align,
        v: Align,
    ) -> Self {
        let text = text.into();
        let w = face.width(&text);
        let shift = |a: Align, len: f64| match a {
            Align::Start => 0.0,
            Align::Middle => len / 2.0,
            Align::End => len,
        };
        TextRun {
            x: x - shift(h, w),
            y: y - shift(v, face.size),
            text,
            face,
            color,
            rotated: false,
        }
    }

    /// A run reading upward, its box centred on `(x, y)`.
    pub fn upward(
        text: impl Into<String>,
        face: Face,
        color: RGBColor,
        (x, y): (f64, f64),
    ) -> Self {
        let text = text.into();
        let w = face.width(&text);
        TextRun {
            x: x - face.size / 2.0,
            y: y - w / 2.0,
            text,
            face,
            color,
            rotated: true,
        }
    }

    /// The run's box, pixels: advance width × face size (turned with the run).
    pub fn bounds(&self) -> Rect {
        let (w, h) = (self.face.width(&self.text), self.face.size);
        let (w, h) = if self.rotated { (h, w) } else { (w, h) };
        Rect::new(self.x, self.y, self.x + w, self.y + h)
    }
}

/// Draws `runs` onto an RGB buffer of `width` × `height` pixels (3 bytes a pixel, row by row),
/// blending each glyph's coverage with the pixels under it.
pub fn rasterize(runs: &[TextRun], rgb: &mut [u8], width: u32, height: u32) {
    let (width, height) = (i64::from(width), i64::from(height));
    for run in runs {
        let font = run.face.font();
        let scale = run.face.scale();
        let ascent = run.face.ascent();
        let (glyphs, advance) = run.face.glyphs(&run.text);
        // Glyphs are placed in the run's own frame (x along the text, y down from the box top),
        // keeping the fractional part of a horizontal run's position for sub-pixel placement.
        let (bx, by) = (run.x.floor(), run.y.floor());
        let (fx, fy) = if run.rotated {
            (0.0, 0.0)
        } else {
            (run.x - bx, run.y - by)
        };
        let length = advance.ceil() as i64;
        let (r, g, b) = (
            f32::from(run.color.0),
            f32::from(run.color.1),
            f32::from(run.color.2),
        );
        for (id, pen) in glyphs {
            let glyph =
                id.with_scale_and_position(scale, point((fx + pen) as f32, (fy + ascent) as f32));
            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                let u = bounds.min.x as i64 + i64::from(gx);
                let v = bounds.min.y as i64 + i64::from(gy);
                let (px, py) = if run.rotated {
                    (bx as i64 + v, by as i64 + length - 1 - u)
                } else {
                    (bx as i64 + u, by as i64 + v)
                };
                if px < 0 || py < 0 || px >= width || py >= height {
                    return;
                }
                let a = coverage.clamp(0.0, 1.0);
                if a == 0.0 {
                    return;
                }
                let i = ((py * width + px) * 3) as usize;
                for (k, c) in [r, g, b].into_iter().enumerate() {
                    let old = f32::from(rgb[i + k]);
                    rgb[i + k] = (old + (c - old) * a).round() as u8;
                }
            });
        }
    }
}

/// The SVG for `runs`: a `<defs>` block with each glyph used (outlines in font units) and one
/// `<g aria-label="…">` per run placing them. Needs `xmlns:xlink` on the root element.
pub fn svg(runs: &[TextRun]) -> String {
    svg_with_ids(runs, "")
}

/// [`svg`] with `id_prefix` before every glyph's id (and every reference to it), so that several
/// figures inlined in one HTML page keep their ids unique.
pub fn svg_with_ids(runs: &[TextRun], id_prefix: &str) -> String {
    let mut defs: BTreeMap<(Weight, u16), String> = BTreeMap::new();
    let mut body = String::new();
    for run in runs {
        let font = run.face.font();
        let scaled = font.as_scaled(run.face.scale());
        let factor = f64::from(scaled.h_scale_factor());
        let ascent = run.face.ascent();
        let (glyphs, advance) = run.face.glyphs(&run.text);
        let transform = if run.rotated {
            // (along, down) in the run's frame → (x + down, y + length − along).
            format!("matrix(0 -1 1 0 {} {})", num(run.x), num(run.y + advance))
        } else {
            format!("translate({} {})", num(run.x), num(run.y))
        };
        let _ = write!(
            body,
            r#"<g aria-label="{}" fill="{}" transform="{transform}">"#,
            escape(&run.text),
            hex(run.color)
        );
        for (id, pen) in glyphs {
            let key = (run.face.weight, id.0);
            if let Entry::Vacant(slot) = defs.entry(key) {
                match font.outline(id) {
                    Some(outline) => {
                        slot.insert(path_data(&outline.curves));
                    }
                    None => continue, // a space: nothing to draw
                }
            }
            let _ = write!(
                body,
                r##"<use xlink:href="#{id_prefix}{}" transform="translate({} {}) scale({} {})"/>"##,
                glyph_id(key),
                num(pen),
                num(ascent),
                num(factor),
                num(-factor)
            );
        }
        body.push_str("</g>\n");
    }
    let mut out = String::from("<defs>\n");
    for (key, d) in &defs {
        let _ = writeln!(out, r#"<path id="{id_prefix}{}" d="{d}"/>"#, glyph_id(*key));
    }
    out.push_str("</defs>\n");
    out.push_str(&body);
    out
}

fn glyph_id((weight, id): (Weight, u16)) -> String {
    match weight {
        Weight::Regular => format!("dejavu-r-{id}"),
        Weight::Bold => format!("dejavu-b-{id}"),
    }
}

/// A glyph outline as SVG path data, in font units (y up), one closed subpath per contour.
fn path_data(curves: &[OutlineCurve]) -> String {
    let mut d = String::new();
    let mut end: Option<ab_glyph::Point> = None;
    let p = |q: ab_glyph::Point| format!("{} {}", num(f64::from(q.x)), num(f64::from(q.y)));
    for curve in curves {
        let (start, last) = match curve {
            OutlineCurve::Line(a, b) => (*a, *b),
            OutlineCurve::Quad(a, _, c) => (*a, *c),
            OutlineCurve::Cubic(a, _, _, d) => (*a, *d),
        };
        if end != Some(start) {
            if end.is_some() {
                d.push('Z');
            }
            let _ = write!(d, "M{}", p(start));
        }
        let _ = match curve {
            OutlineCurve::Line(_, b) => write!(d, "L{}", p(*b)),
            OutlineCurve::Quad(_, b, c) => write!(d, "Q{} {}", p(*b), p(*c)),
            OutlineCurve::Cubic(_, b, c, e) => write!(d, "C{} {} {}", p(*b), p(*c), p(*e)),
        };
        end = Some(last);
    }
    if end.is_some() {
        d.push('Z');
    }
    d
}

/// A number for SVG: at most four decimals, no trailing zeros.
fn num(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

pub(crate) fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ab_glyph::Font;

    #[test]
    fn both_faces_parse() {
        assert!(REGULAR.glyph_id('T').0 != 0);
        assert!(BOLD.glyph_id('±').0 != 0);
    }

    /// Why "TTFT" used to read "TTF T": `F` has a wide left side bearing and `T` almost none, so
    /// drawing each glyph's ink at the pen position (ignoring the bearing) pulls the `F` left
    /// and leaves its bearing as a gap before the next `T`.
    #[test]
    fn side_bearings_explain_the_old_gap() {
        let f = REGULAR.glyph_id('F');
        let t = REGULAR.glyph_id('T');
        let lsb_f = REGULAR.h_side_bearing_unscaled(f);
        let lsb_t = REGULAR.h_side_bearing_unscaled(t);
        assert!(lsb_f > 150.0, "F's bearing {lsb_f}");
        assert!(lsb_t.abs() < 20.0, "T's bearing {lsb_t}");
    }

    /// The ink of a glyph starts at its pen position plus its left side bearing: an `F` drawn
    /// at x = 10 has no ink before 10 + bearing (the old drawing put it at 10).
    #[test]
    fn glyphs_are_placed_with_their_bearings() {
        let face = Face::regular(100.0);
        let font = REGULAR.as_scaled(face.scale());
        let bearing = f64::from(font.h_side_bearing(REGULAR.glyph_id('F')));
        assert!(bearing > 6.0, "{bearing}");
        let first_ink = |text: &str| {
            let runs = [TextRun::at(
                text,
                face,
                RGBColor(0, 0, 0),
                (10.0, 10.0),
                Align::Start,
                Align::Start,
            )];
            let (w, h) = (400u32, 130u32);
            let mut rgb = vec![255u8; (w * h * 3) as usize];
            rasterize(&runs, &mut rgb, w, h);
            (0..w)
                .position(|x| (0..h).any(|y| rgb[((y * w + x) * 3) as usize] < 128))
                .unwrap() as f64
        };
        let f = first_ink("F");
        assert!((f - (10.0 + bearing)).abs() <= 1.0, "F inked from {f}");
    }

    #[test]
    fn svg_has_outlines_not_font_names() {
        let runs = [TextRun::at(
            "TTFT (ms)",
            Face::regular(26.0),
            RGBColor(1, 2, 3),
            (0.0, 0.0),
            Align::Start,
            Align::Start,
        )];
        let s = svg(&runs);
        assert!(s.contains(r#"aria-label="TTFT (ms)""#));
        assert!(s.contains("fill=\"#010203\""));
        assert!(!s.contains("font-family") && !s.contains("<text"));
        // "T" is used three times but defined once; the space has no outline.
        let t = REGULAR.glyph_id('T').0;
        assert_eq!(s.matches(&format!("id=\"dejavu-r-{t}\"")).count(), 1);
        assert_eq!(s.matches(&format!("#dejavu-r-{t}\"")).count(), 3);
        assert_eq!(s.matches("<use").count(), 8);
    }

    #[test]
    fn boxes_turn_with_the_run() {
        let face = Face::regular(20.0);
        let flat = TextRun::at(
            "latency",
            face,
            RGBColor(0, 0, 0),
            (100.0, 50.0),
            Align::Middle,
            Align::Middle,
        );
        let up = TextRun::upward("latency", face, RGBColor(0, 0, 0), (100.0, 50.0));
        let (a, b) = (flat.bounds(), up.bounds());
        assert!((a.width() - b.height()).abs() < 1e-9 && (a.height() - b.width()).abs() < 1e-9);
        assert!((a.center().0 - 100.0).abs() < 1e-9 && (b.center().1 - 50.0).abs() < 1e-9);
    }
}
