//! Charts of Tokenomics result files, drawn with plotters.
//!
//! [`plot_files`] reads one or more result files (written by `oai-bench`, `embed-bench`, or the
//! original Python scripts), recognises their kind, and draws:
//!
//! * **chat** — batch (or whole-run) tokens/s and request tokens/s against the load level
//!   (batch size, concurrency or request rate, whichever the file's mode says), stacked, each a
//!   line with markers inside a shaded mean ± std band, each point annotated where its note fits
//!   (notes never overlap each other or the data); levels are evenly spaced categorical ticks,
//!   fractional request rates included; a level in which every request failed is a marked gap
//!   that breaks the line. Files with a `latency` block (streaming runs) add a column with TTFT
//!   and inter-token latency: the p50 line, with the p90–p99 range of each level as a whisker
//!   that the legend names. A file with an SLO search (`metadata.slo_search`) has its capacity
//!   marked on the throughput panels (a dashed line at the level, labelled with the capacity and
//!   the load that failed); a sweep that stopped early says why under the title.
//! * **the throughput–interactivity frontier** ([`frontier`], chat files only) — output tokens/s
//!   per GPU against output tokens/s per user (1 / mean TPOT), one point per level noted with its
//!   name, each file's Pareto frontier as its line (the other levels hollow), and the cost per
//!   million output tokens as labelled iso-cost lines (files of one GPU price) or in the notes of
//!   the frontier's points (several prices).
//! * **a run over time** ([`timeline`], chat files whose levels carry a `timeline` block) —
//!   stacked panels on one time axis: requests/s sent and completed (and failed), requests in
//!   flight with the server's running and waiting gauges, output tokens/s, TTFT p50 and p99, and
//!   the server's KV-cache usage; each level's start a thin line named after it, its warm-up
//!   shaded, missing values gaps in the line.
//! * **embeddings** — a 2×2 grid with one line per sequence length against batch size on a log2
//!   axis: batch embeddings/s, batch tokens/s, batch time, and request latency.
//!
//! The work is split in three steps, each testable on its own: [`figures`] turns documents into
//! a [`Figure`] (panels, series, points in the unit chosen for each panel, notes, and the gaps
//! where a level failed entirely, reference lines); [`mod@layout`] puts every shape and piece of
//! text of a figure at its pixel position, keeping notes and the labels of reference lines off
//! each other and off the data; the renderer draws that
//! layout — shapes through plotters' bitmap or SVG backend, text from the DejaVu Sans faces
//! embedded in this crate ([`text`]): rasterised for PNG, as glyph outlines for SVG, so every
//! machine draws the same picture. The output is written once, atomically, after its path was
//! checked before drawing and everything else succeeded. [`html`] puts every figure of a set of
//! files, inlined as SVG, in one self-contained page with their metadata, summary tables and
//! errors.
//!
//! Everything here works from result documents alone (`tokenomics-stats`' types): no network, no
//! clock. Durations arrive in seconds and are drawn in the unit that suits each panel
//! ([`units`]); sizes are pixels of the image, which a PNG marks as 300 dpi.
//!
//! # Examples
//!
//! Drawing a chat result document of two burst levels as an SVG string:
//!
//! ```
//! use std::path::PathBuf;
//!
//! use tokenomics_plot::{figure_for, render_svg, Input};
//! use tokenomics_stats::AnyDocument;
//!
//! let level = |tokens_per_s: f64| {
//!     serde_json::json!({
//!         "tokens": {"input_per_request": {"mean": 12, "std": 0},
//!                    "output_per_request": {"mean": 64, "std": 0}},
//!         "timings": {"batch_total_seconds": {"mean": 0.5, "std": 0},
//!                     "fastest_seconds": {"mean": 0.5, "std": 0},
//!                     "slowest_seconds": {"mean": 0.5, "std": 0},
//!                     "spread_seconds": {"mean": 0, "std": 0}},
//!         "throughput": {"batch_tokens_per_second": {"mean": tokens_per_s, "std": 3.0},
//!                        "request_tokens_per_second": {"mean": 120.0, "std": 2.0}},
//!         "requests": {"succeeded": 4, "failed": 0}
//!     })
//! };
//! let json = serde_json::json!({
//!     "metadata": {
//!         "timestamp": "2026-11-27T21:33:32.902353", "model": "m", "dataset_key": "synthetic",
//!         "api_base": "http://127.0.0.1:8000/v1", "batch_sizes": [1, 4], "num_runs": 2,
//!         "max_tokens": 64, "temperature": 0.0, "seed": 42, "warmup_runs": 0, "n_cores": 1,
//!         "description": "Two levels"
//!     },
//!     "results": {"1": level(128.0), "4": level(480.0)}
//! });
//! let document = AnyDocument::from_value(json)?;
//! let input = Input { label: "m".into(), document, path: PathBuf::from("two_levels.json") };
//!
//! let plotted = figure_for(&[input], None)?;
//! assert_eq!(plotted.figure.title, "m");
//! assert!(plotted.warnings.is_empty());
//! // Throughput and per-request throughput, stacked (no latency block: no second column).
//! assert_eq!(plotted.figure.panels.len(), 2);
//! let svg = render_svg(&plotted.figure)?;
//! let (width, height) = plotted.figure.size();
//! assert!(svg.starts_with(&format!("<svg width=\"{width}\" height=\"{height}\"")));
//! // Text is drawn as glyph outlines, each run named for readers and search.
//! let x_label = &plotted.figure.panels[0].x_label;
//! assert!(svg.contains(&format!("aria-label=\"{x_label}\"")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod chart;
pub mod figures;
pub mod frontier;
pub mod html;
pub mod layout;
pub mod text;
pub mod timeline;
pub mod units;

pub use figures::{chat_figure, embed_figure, Figure};
pub use frontier::{frontier_figure, pareto_frontier};
pub use layout::{layout, Layout};
pub use timeline::{file_timeline, timeline_figure};
pub use units::compact;

use std::path::{Path, PathBuf};

use tokenomics_stats::AnyDocument;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A result file could not be read or parsed.
    #[error("{0}")]
    Read(tokenomics_stats::Error),
    /// A JSON file that is not a result document of either kind.
    #[error("{path} is not a chat or embedding result file: {source}")]
    NotResults {
        /// The file.
        path: PathBuf,
        /// Where and why decoding it as a result document failed.
        source: serde_json::Error,
    },
    /// A result file without levels (or no input at all).
    #[error("{0} holds no results to plot")]
    Empty(PathBuf),
    /// Every level of every input failed: there is nothing to draw, and nothing is written.
    #[error("nothing to draw: no request succeeded in any level of {}", list(.0))]
    NothingToDraw(Vec<PathBuf>),
    /// Chat and embedding files given together; the path is the first of the other kind.
    #[error("cannot mix chat and embedding result files in one figure ({0} is the odd one out)")]
    Mixed(PathBuf),
    /// The throughput–interactivity frontier was asked of an embedding result file.
    #[error("{0} is an embedding result file: the throughput–interactivity frontier draws chat result files only")]
    FrontierOfEmbeddings(PathBuf),
    /// A chat file none of whose levels has the figures a frontier point needs.
    #[error("{0} has no level to place on the frontier (each needs output tokens/s, and a TPOT or request tokens/s)")]
    NoFrontierLevel(PathBuf),
    /// A timeline was asked of an embedding result file.
    #[error("{0} is an embedding result file: --timeline draws chat result files only")]
    TimelineOfEmbeddings(PathBuf),
    /// A chat file none of whose levels carries a `timeline` block.
    #[error("{0}: no level has a timeline (written by oai-bench since --timeline_interval; rerun the benchmark)")]
    NoTimeline(PathBuf),
    /// A level's `timeline` block that cannot be drawn (columns of different lengths, a bucket
    /// width that is not a positive number).
    #[error("{}: {level}: malformed timeline: {reason}", .path.display())]
    BadTimeline {
        /// The file.
        path: PathBuf,
        /// The level's key.
        level: String,
        /// What is wrong with its timeline.
        reason: String,
    },
    /// An image path that does not end in `.png` or `.svg`.
    #[error("output {0} must end in .png or .svg")]
    Format(PathBuf),
    /// The HTML report's path does not end in `.html` or `.htm`.
    #[error("report {0} must end in .html or .htm")]
    HtmlFormat(PathBuf),
    /// The output cannot be written (checked before drawing, and when writing).
    #[error("cannot write {}: {}", .path.display(), os_message(.source))]
    Write {
        /// The output.
        path: PathBuf,
        /// Why it cannot be written.
        source: std::io::Error,
    },
    /// plotters failed to draw a shape (a failure of this program, not of the input).
    #[error("cannot draw the figure: {0}")]
    Draw(String),
    /// The PNG encoder failed.
    #[error("cannot encode the PNG: {0}")]
    Png(#[from] png::EncodingError),
}

impl Error {
    /// Whether the error is the user's input (a file, a path, a mix of files) rather than a
    /// failure of this program.
    pub fn is_bad_input(&self) -> bool {
        !matches!(
            self,
            Error::Draw(_) | Error::Png(_) | Error::NothingToDraw(_)
        )
    }
}

impl From<tokenomics_stats::Error> for Error {
    fn from(e: tokenomics_stats::Error) -> Self {
        match e {
            tokenomics_stats::Error::Write { path, source } => Error::Write { path, source },
            other => Error::Read(other),
        }
    }
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An I/O error as people read it: `No such file or directory`, without `(os error 2)`.
fn os_message(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    }
}

/// `Result` with this crate's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Image formats, chosen by the output's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A 300 dpi PNG, text rasterised from the embedded font.
    Png,
    /// An SVG document, text as the embedded font's glyph outlines.
    Svg,
}

impl Format {
    /// The format named by `path`'s extension (`.png` or `.svg`, any case); else
    /// [`Error::Format`].
    pub fn from_path(path: &Path) -> Result<Self> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("png") => Ok(Format::Png),
            Some("svg") => Ok(Format::Svg),
            _ => Err(Error::Format(path.to_path_buf())),
        }
    }
}

/// A result file to draw, with the label its series carry in a comparison.
pub struct Input {
    /// The label of the file's series in legends (and its section's heading in a report).
    pub label: String,
    /// The file's content.
    pub document: AnyDocument,
    /// Where it was read from, for messages.
    pub path: PathBuf,
}

/// Reads and recognises a result file.
pub fn load(path: &Path) -> Result<AnyDocument> {
    let value: serde_json::Value = tokenomics_stats::read_json(path)?;
    let doc = AnyDocument::from_value(value).map_err(|source| Error::NotResults {
        path: path.to_path_buf(),
        source,
    })?;
    let empty = match &doc {
        AnyDocument::Chat(d) => d.results.is_empty(),
        AnyDocument::Embed(d) => d.results.is_empty(),
    };
    if empty {
        return Err(Error::Empty(path.to_path_buf()));
    }
    Ok(doc)
}

/// The label of a file's series: its description, else its file name.
pub fn default_label(path: &Path, doc: &AnyDocument) -> String {
    let description = match doc {
        AnyDocument::Chat(d) => d.metadata.description.trim(),
        AnyDocument::Embed(d) => d.metadata.description.trim(),
    };
    if description.is_empty() {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string())
    } else {
        description.to_string()
    }
}

/// A figure drawn from files, and what the user should hear about it.
#[derive(Debug, Clone)]
pub struct Plotted {
    /// The figure, ready for [`render`], [`render_png`] or [`render_svg`].
    pub figure: Figure,
    /// One line each: levels drawn as gaps, levels that could not be placed, files left out.
    pub warnings: Vec<String>,
    /// Files in which no level had a successful request: left out of the figure (the others were
    /// drawn). A caller should not report plain success.
    pub left_out: Vec<PathBuf>,
}

/// Reads `inputs` (with optional labels, one per input) and draws them into `output`: the
/// output path is checked first, the file written once, atomically, at the end.
pub fn plot_files(
    inputs: &[PathBuf],
    labels: Option<&[String]>,
    title: Option<&str>,
    output: &Path,
) -> Result<Plotted> {
    let format = Format::from_path(output)?;
    tokenomics_stats::check_writable(output)?;
    let mut loaded = Vec::with_capacity(inputs.len());
    for (i, path) in inputs.iter().enumerate() {
        let document = load(path)?;
        let label = labels
            .and_then(|l| l.get(i).cloned())
            .unwrap_or_else(|| default_label(path, &document));
        loaded.push(Input {
            label,
            document,
            path: path.clone(),
        });
    }
    let plotted = figure_for(&loaded, title)?;
    let bytes = match format {
        Format::Png => render_png(&plotted.figure)?,
        Format::Svg => render_svg(&plotted.figure)?.into_bytes(),
    };
    tokenomics_stats::write_atomic(output, &bytes)?;
    Ok(plotted)
}

/// Draws a figure into `output` (format from the extension), written atomically.
pub fn render(figure: &Figure, output: &Path) -> Result<()> {
    let format = Format::from_path(output)?;
    tokenomics_stats::check_writable(output)?;
    let bytes = match format {
        Format::Png => render_png(figure)?,
        Format::Svg => render_svg(figure)?.into_bytes(),
    };
    tokenomics_stats::write_atomic(output, &bytes)?;
    Ok(())
}

/// A figure as PNG bytes (300 dpi).
pub fn render_png(figure: &Figure) -> Result<Vec<u8>> {
    chart::png(&layout(figure))
}

/// A figure as an SVG document; its text is drawn as the embedded font's outlines (each run a
/// `<g aria-label="…">`), so it needs no font on the viewer's machine.
pub fn render_svg(figure: &Figure) -> Result<String> {
    chart::svg(&layout(figure))
}

/// Whether a document has a level with something to draw.
fn has_data(doc: &AnyDocument) -> bool {
    match doc {
        AnyDocument::Chat(d) => figures::chat_has_data(d),
        AnyDocument::Embed(d) => figures::embed_has_data(d),
    }
}

/// The figure for a set of loaded inputs, all of one kind; inputs with nothing to draw are
/// left out (an error when that is all of them).
pub fn figure_for(inputs: &[Input], title: Option<&str>) -> Result<Plotted> {
    let first = inputs
        .first()
        .ok_or_else(|| Error::Empty(PathBuf::from("(no input)")))?;
    let chat = matches!(first.document, AnyDocument::Chat(_));
    for i in inputs {
        if matches!(i.document, AnyDocument::Chat(_)) != chat {
            return Err(Error::Mixed(i.path.clone()));
        }
    }
    let (drawn, left_out): (Vec<&Input>, Vec<&Input>) =
        inputs.iter().partition(|i| has_data(&i.document));
    if drawn.is_empty() {
        return Err(Error::NothingToDraw(
            inputs.iter().map(|i| i.path.clone()).collect(),
        ));
    }
    let title = match (title, inputs) {
        (Some(t), _) => t.to_string(),
        (None, [one]) => one.label.clone(),
        (None, many) => format!("Comparison of {} result files", many.len()),
    };
    let mut warnings = Vec::new();
    let mut chat_docs = None;
    let figure = if chat {
        let docs: Vec<(String, &tokenomics_stats::ChatDocument)> = drawn
            .iter()
            .filter_map(|i| match &i.document {
                AnyDocument::Chat(d) => Some((i.label.clone(), d)),
                AnyDocument::Embed(_) => None,
            })
            .collect();
        for (i, (_, d)) in drawn.iter().zip(&docs) {
            for key in figures::chat_keys_skipped(d) {
                warnings.push(format!(
                    "{}: level {key:?} is not a number and has no load block; left out",
                    i.path.display()
                ));
            }
        }
        let figure = chat_figure(&docs, &title);
        chat_docs = Some(docs.iter().map(|(_, d)| *d).collect::<Vec<_>>());
        figure
    } else {
        let docs: Vec<(String, &tokenomics_stats::EmbedDocument)> = drawn
            .iter()
            .filter_map(|i| match &i.document {
                AnyDocument::Embed(d) => Some((i.label.clone(), d)),
                AnyDocument::Chat(_) => None,
            })
            .collect();
        embed_figure(&docs, &title)
    };
    for f in &figure.failed_levels {
        warnings.push(format!(
            "{}: {}: {}; drawn as a gap",
            drawn[f.input].path.display(),
            f.level,
            f.reason
        ));
    }
    if let Some(docs) = chat_docs {
        for (i, doc) in drawn.iter().zip(docs) {
            let searched = doc
                .metadata
                .slo_search
                .as_ref()
                .is_some_and(|s| s.highest_passing.is_some() || s.lowest_failing.is_some());
            if searched && figures::slo_rule(doc, None).is_none() {
                warnings.push(format!(
                    "{}: the level the SLO search found is not among its results; not marked",
                    i.path.display()
                ));
            }
        }
    }
    for i in &left_out {
        warnings.push(format!(
            "{}: no request succeeded in any level; left out of the figure",
            i.path.display()
        ));
    }
    Ok(Plotted {
        figure,
        warnings,
        left_out: left_out.iter().map(|i| i.path.clone()).collect(),
    })
}

/// The timeline figure of a set of loaded chat inputs ([`timeline`]): an embedding file, a file
/// with no level carrying a timeline, or a malformed timeline is an error; a level without a
/// timeline beside others with one is left out with a warning.
pub fn timeline_for(inputs: &[Input], title: Option<&str>) -> Result<Plotted> {
    if inputs.is_empty() {
        return Err(Error::Empty(PathBuf::from("(no input)")));
    }
    let mut files = Vec::with_capacity(inputs.len());
    let mut warnings = Vec::new();
    for i in inputs {
        let doc = match &i.document {
            AnyDocument::Chat(d) => d,
            AnyDocument::Embed(_) => return Err(Error::TimelineOfEmbeddings(i.path.clone())),
        };
        let file = timeline::file_timeline(doc).map_err(|m| Error::BadTimeline {
            path: i.path.clone(),
            level: m.level,
            reason: m.reason,
        })?;
        if file.levels.is_empty() {
            return Err(Error::NoTimeline(i.path.clone()));
        }
        for level in &file.skipped {
            warnings.push(format!(
                "{}: {level} has no timeline; left out",
                i.path.display()
            ));
        }
        files.push((i.label.clone(), file));
    }
    let title = match (title, inputs) {
        (Some(t), _) => t.to_string(),
        (None, [one]) => one.label.clone(),
        (None, many) => format!("Comparison of {} result files", many.len()),
    };
    let refs: Vec<(String, &timeline::FileTimeline)> =
        files.iter().map(|(l, f)| (l.clone(), f)).collect();
    Ok(Plotted {
        figure: timeline_figure(&refs, &title),
        warnings,
        left_out: Vec::new(),
    })
}

/// The throughput–interactivity frontier of a set of loaded chat inputs ([`frontier`]): an
/// embedding file, or a file with levels that succeeded but none with a frontier point, is an
/// error; files in which no request succeeded are left out, as in [`figure_for`].
pub fn frontier_for(inputs: &[Input], title: Option<&str>) -> Result<Plotted> {
    if inputs.is_empty() {
        return Err(Error::Empty(PathBuf::from("(no input)")));
    }
    let mut chat: Vec<(&Input, &tokenomics_stats::ChatDocument)> = Vec::new();
    for i in inputs {
        match &i.document {
            AnyDocument::Chat(d) => chat.push((i, d)),
            AnyDocument::Embed(_) => return Err(Error::FrontierOfEmbeddings(i.path.clone())),
        }
    }
    let (drawn, left_out): (Vec<_>, Vec<_>) = chat
        .into_iter()
        .partition(|(_, d)| figures::chat_has_data(d));
    if drawn.is_empty() {
        return Err(Error::NothingToDraw(
            inputs.iter().map(|i| i.path.clone()).collect(),
        ));
    }
    for (i, d) in &drawn {
        if frontier::file_points(d).points.is_empty() {
            return Err(Error::NoFrontierLevel(i.path.clone()));
        }
    }
    let title = match (title, inputs) {
        (Some(t), _) => t.to_string(),
        (None, [one]) => one.label.clone(),
        (None, many) => format!("Comparison of {} result files", many.len()),
    };
    let docs: Vec<(String, &tokenomics_stats::ChatDocument)> =
        drawn.iter().map(|(i, d)| (i.label.clone(), *d)).collect();
    let figure = frontier_figure(&docs, &title);
    let mut warnings: Vec<String> = figure
        .failed_levels
        .iter()
        .map(|f| {
            format!(
                "{}: {}: {}; left out of the frontier",
                drawn[f.input].0.path.display(),
                f.level,
                f.reason
            )
        })
        .collect();
    for (i, _) in &left_out {
        warnings.push(format!(
            "{}: no request succeeded in any level; left out of the figure",
            i.path.display()
        ));
    }
    Ok(Plotted {
        figure,
        warnings,
        left_out: left_out.iter().map(|(i, _)| i.path.clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_read_as_one_plain_line() {
        let dir = std::env::temp_dir().join("tokenomics-plot-no-such-dir-for-this-test");
        let out = dir.join("x.png");
        let e: Error = tokenomics_stats::check_writable(&out).unwrap_err().into();
        assert_eq!(
            e.to_string(),
            format!("cannot write {}: No such file or directory", out.display())
        );
    }
}
