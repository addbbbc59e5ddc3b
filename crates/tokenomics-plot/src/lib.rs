//! Charts of Tokenomics result files, drawn with plotters.
//!
//! [`plot_files`] reads one or more result files (written by `oai-bench`, `embed-bench`, or the
//! original Python scripts), recognises their kind, and draws:
//!
//! * **chat** — batch tokens/s and request tokens/s against batch size, stacked (the original's
//!   figure), each a line with markers, a shaded ±std band and every point annotated `mean ± std`;
//!   batch sizes are evenly spaced categorical ticks. Files with a `latency` block (streaming runs)
//!   add a column with TTFT and inter-token latency: the p50 line in a p90–p99 band.
//! * **embeddings** — a 2×2 grid with one line per sequence length against batch size on a log2
//!   axis: batch embeddings/s, batch tokens/s, batch time, and request latency.
//!
//! Several files overlay as labelled series. The output format follows the extension (`.png` or
//! `.svg`); text is drawn with the DejaVu Sans font embedded in the binary, so a machine without
//! fonts draws the same picture. Annotations are placed in pixel space and pushed apart so they
//! never overlap; numbers are written compactly (`3.7k`, not `3729.2952`).

mod chart;
pub mod figures;

pub use figures::{chat_figure, embed_figure, Figure};

use std::path::{Path, PathBuf};

use tokenomics_stats::AnyDocument;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Stats(#[from] tokenomics_stats::Error),
    #[error("{path} is not a chat or embedding result file: {source}")]
    NotResults {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{0} holds no results to plot")]
    Empty(PathBuf),
    #[error("cannot mix chat and embedding result files in one figure ({0} is the odd one out)")]
    Mixed(PathBuf),
    #[error("output {0} must end in .png or .svg")]
    Format(PathBuf),
    #[error("cannot draw {path}: {message}")]
    Draw { path: PathBuf, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Image formats, chosen by the output's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
}

impl Format {
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
    pub label: String,
    pub document: AnyDocument,
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

/// Reads `inputs` (with optional labels, one per input) and draws them into `output`.
pub fn plot_files(
    inputs: &[PathBuf],
    labels: Option<&[String]>,
    title: Option<&str>,
    output: &Path,
) -> Result<Figure> {
    let format = Format::from_path(output)?;
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
    let figure = figures::figure_for(&loaded, title)?;
    chart::render(&figure, format, output)?;
    Ok(figure)
}

/// Draws a figure into `output` (format from the extension).
pub fn render(figure: &Figure, output: &Path) -> Result<()> {
    chart::render(figure, Format::from_path(output)?, output)
}

/// Compact numbers for labels: `3.7k`, `159`, `15.9`, `1.59`, `0.0123`, `1.2M`.
pub fn compact(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let a = x.abs();
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if a >= 1e9 {
        format!("{}G", trim(format!("{:.1}", x / 1e9)))
    } else if a >= 1e6 {
        format!("{}M", trim(format!("{:.1}", x / 1e6)))
    } else if a >= 1e4 {
        format!("{}k", trim(format!("{:.0}", x / 1e3)))
    } else if a >= 1e3 {
        format!("{}k", trim(format!("{:.1}", x / 1e3)))
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        trim(format!("{x:.1}"))
    } else if a >= 1.0 {
        trim(format!("{x:.2}"))
    } else if a == 0.0 {
        "0".into()
    } else {
        // Three significant digits: 0.0123, 0.000412.
        let decimals = (2.0 - a.log10().floor()).clamp(0.0, 12.0) as usize;
        trim(format!("{x:.decimals$}"))
    }
}

#[cfg(test)]
mod tests {
    use super::compact;

    #[test]
    fn compact_numbers() {
        assert_eq!(compact(3729.295223546461), "3.7k");
        assert_eq!(compact(12345.0), "12k");
        assert_eq!(compact(159.1587), "159");
        assert_eq!(compact(15.94), "15.9");
        assert_eq!(compact(5.344), "5.34");
        assert_eq!(compact(2.0), "2");
        assert_eq!(compact(0.01234), "0.0123");
        assert_eq!(compact(0.000412), "0.000412");
        assert_eq!(compact(0.5), "0.5");
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(1_250_000.0), "1.2M");
        assert_eq!(compact(f64::NAN), "n/a");
    }
}
