//! `plot-throughput`: draw result files. Argument parsing and printing only; the drawing is in
//! `tokenomics-plot`, and other tools' result files are read by `tokenomics-compare`'s importer.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use tokenomics_cli::{self as cli, exit};
use tokenomics_compare::import::AnyResult;
use tokenomics_stats::AnyDocument;

const NAME: &str = "plot-throughput";

/// Plot chat or embedding benchmark results (files from oai-bench, embed-bench or the original
/// Python scripts, and the result files of vLLM bench serve, GuideLLM, AIPerf and
/// inference-benchmarker). `plot-throughput RESULTS.json OUT.png`, or several files overlaid:
/// `plot-throughput a.json b.json -o OUT.png`. The format follows OUT's extension: .png or .svg.
/// `--html REPORT.html` writes a one-file report of the same files (with or without an image).
#[derive(Debug, Parser)]
#[command(
    name = "plot-throughput",
    version,
    after_help = "Exit codes: 0 success (levels in which every request failed are drawn as gaps, with a warning), 1 error, 2 bad usage (an unreadable or malformed result file, an output that cannot be written, a file --frontier or --timeline cannot draw), 3 a result file with nothing to draw (no request succeeded in any level; with other files, the figure is drawn without it)."
)]
struct Args {
    /// Result files, then the output image (unless --output is given).
    #[arg(required = true, num_args = 1..)]
    files: Vec<PathBuf>,
    /// Output image (.png or .svg); with it, every positional argument is a result file.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Comma-separated series labels, one per result file [default: each file's description, else its name].
    #[arg(long)]
    labels: Option<String>,
    /// Figure title [default: the description of a single file].
    #[arg(long)]
    title: Option<String>,
    /// Draw the throughput–interactivity frontier of chat result files instead: output tokens/s per GPU against output tokens/s per user (1 / mean TPOT), one point per level, each file's Pareto frontier as a line, and the cost per million output tokens where the files carry a GPU price.
    #[arg(long)]
    frontier: bool,
    /// Draw chat result files over time instead, from each level's timeline block (oai-bench --timeline_interval): requests/s sent and completed, requests in flight (with the server's running and waiting), output tokens/s, TTFT p50 and p99, and the server's KV-cache usage, stacked on one time axis, with each level's start marked and its warm-up shaded.
    #[arg(long, conflicts_with = "frontier")]
    timeline: bool,
    /// Also (or only) write a one-file HTML report: every figure of the files inlined as SVG (throughput, and for chat files the frontier and the timeline where they can be drawn), and per file its metadata, the per-level summary table and the errors by kind; no external assets. Without an image output, every positional argument is a result file unless the last ends in .png or .svg.
    #[arg(long, value_name = "REPORT.html")]
    html: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args: Args = match cli::parse(NAME) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mut files = args.files.clone();
    // The image: --output, else the last positional argument; with --html, that one only when
    // it names an image (a report alone takes every positional argument as a result file).
    let image = match args.output.clone() {
        Some(o) => Some(o),
        None if args.html.is_some() => {
            let last_is_image = files.len() >= 2
                && files
                    .last()
                    .is_some_and(|f| tokenomics_plot::Format::from_path(f).is_ok());
            if last_is_image {
                files.pop()
            } else {
                None
            }
        }
        None if files.len() >= 2 => files.pop(),
        None => {
            return cli::fail(
                NAME,
                "give an output image: plot-throughput RESULTS.json OUT.png (or -o OUT.png), or a report: --html REPORT.html",
                exit::USAGE,
            );
        }
    };
    let inputs = files;
    if let Some(output) = &image {
        if let Err(e) = tokenomics_plot::Format::from_path(output) {
            return cli::fail(NAME, e, exit::USAGE);
        }
    }
    if let Some(report) = &args.html {
        if let Err(e) = tokenomics_plot::html::check_path(report) {
            return cli::fail(NAME, e, exit::USAGE);
        }
    }
    let labels: Option<Vec<String>> = args
        .labels
        .as_deref()
        .map(|l| l.split(',').map(|s| s.trim().to_string()).collect());
    if let Some(l) = &labels {
        if l.len() != inputs.len() {
            return cli::fail(
                NAME,
                format!(
                    "--labels has {} labels for {} result files",
                    l.len(),
                    inputs.len()
                ),
                exit::USAGE,
            );
        }
    }
    // Checked before anything is read or drawn.
    for output in image.iter().chain(&args.html) {
        if let Err(e) = tokenomics_stats::check_writable(output) {
            return cli::fail(NAME, tokenomics_plot::Error::from(e), exit::USAGE);
        }
    }
    let mut loaded = Vec::with_capacity(inputs.len());
    for (i, path) in inputs.iter().enumerate() {
        let document = match load(path) {
            Ok(d) => d,
            Err(e) => return cli::fail(NAME, e, exit::USAGE),
        };
        let label = labels
            .as_ref()
            .and_then(|l| l.get(i).cloned())
            .unwrap_or_else(|| tokenomics_plot::default_label(path, &document));
        loaded.push(tokenomics_plot::Input {
            label,
            document,
            path: path.clone(),
        });
    }
    let mut warnings = Vec::new();
    let mut left_out = false;
    if let Some(output) = &image {
        let figure = if args.frontier {
            tokenomics_plot::frontier_for(&loaded, args.title.as_deref())
        } else if args.timeline {
            tokenomics_plot::timeline_for(&loaded, args.title.as_deref())
        } else {
            tokenomics_plot::figure_for(&loaded, args.title.as_deref())
        };
        match figure.and_then(|p| tokenomics_plot::render(&p.figure, output).map(|()| p)) {
            Ok(plotted) => {
                let (w, h) = plotted.figure.size();
                let panels = plotted.figure.panels.len();
                println!(
                    "Plot saved to {} ({w}×{h} px, {panels} panel{})",
                    output.display(),
                    if panels == 1 { "" } else { "s" }
                );
                warnings.extend(plotted.warnings);
                left_out |= !plotted.left_out.is_empty();
            }
            Err(e) => return fail(e, &warnings),
        }
    }
    if let Some(output) = &args.html {
        match tokenomics_plot::html::write_report(&loaded, args.title.as_deref(), output) {
            Ok(report) => {
                println!(
                    "Report saved to {} ({} figure{}, {} result file{})",
                    output.display(),
                    report.figures,
                    if report.figures == 1 { "" } else { "s" },
                    loaded.len(),
                    if loaded.len() == 1 { "" } else { "s" }
                );
                warnings.extend(report.warnings);
                left_out |= !report.left_out.is_empty();
            }
            Err(e) => return fail(e, &warnings),
        }
    }
    print_warnings(&warnings);
    if left_out {
        ExitCode::from(exit::SOME_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

/// Each warning once on stderr (the image and the report draw the same figure, and would say
/// the same thing twice).
fn print_warnings(warnings: &[String]) {
    let mut seen = std::collections::HashSet::new();
    for w in warnings {
        if seen.insert(w.as_str()) {
            eprintln!("{NAME}: warning: {w}");
        }
    }
}

/// Ends with the error's line and exit code, after the warnings gathered so far.
fn fail(e: tokenomics_plot::Error, warnings: &[String]) -> ExitCode {
    print_warnings(warnings);
    let code = match e {
        tokenomics_plot::Error::NothingToDraw(_) => exit::SOME_FAILED,
        ref e if e.is_bad_input() => exit::USAGE,
        _ => exit::ERROR,
    };
    cli::fail(NAME, e, code)
}

/// A result file as a document to draw: this project's and the original scripts' as
/// `tokenomics-plot` reads them, other tools' converted by `tokenomics-compare`'s importer.
/// A file that is not JSON (or cannot be read) is refused as `tokenomics-plot` refuses it; JSON
/// of no known shape, or another tool's file with something missing, with the importer's word
/// on what was expected.
fn load(path: &Path) -> Result<AnyDocument, String> {
    match AnyResult::read(path) {
        Ok(r) if r.format.is_foreign() => Ok(r.document),
        Ok(_)
        | Err(tokenomics_compare::Error::Read { .. } | tokenomics_compare::Error::NotJson { .. }) => {
            tokenomics_plot::load(path).map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}
