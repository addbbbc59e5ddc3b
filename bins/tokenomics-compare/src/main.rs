//! `tokenomics-compare`: compare result files. Argument parsing and printing only; the reading
//! and the statistics are in the `tokenomics-compare` library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use tokenomics_cli::{self as cli, exit, values};
use tokenomics_compare::import::InputSpec;
use tokenomics_compare::{compare, CompareOptions, Input, Verdict};

const NAME: &str = "tokenomics-compare";

/// A significant regression beyond `--fail_if_slower`.
const REGRESSION: u8 = 5;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutputFormat {
    Markdown,
    Json,
}

/// Compare benchmark result files: the first is the baseline (A), every other one is compared
/// with it (B). Reads oai-bench and the original scripts' files, vLLM bench serve, GuideLLM
/// benchmarks.json, AIPerf profile_export_aiperf.json and inference-benchmarker results. Give
/// per-request records as RESULTS.json:REQUESTS.jsonl, or keep them beside the results as
/// RESULTS.jsonl.
#[derive(Debug, Parser)]
#[command(
    name = "tokenomics-compare",
    version,
    after_help = "Exit codes: 0 compared (no regression beyond --fail_if_slower), 1 error (the report cannot be written), 2 bad usage (a file that cannot be read or is not a result file, files with no level in common, a refused value), 5 a significant regression beyond --fail_if_slower."
)]
struct Args {
    /// Result files: the baseline first, then one or more to compare with it (FILE or
    /// FILE:REQUESTS.jsonl).
    #[arg(required = true, num_args = 2.., value_name = "FILE[:REQUESTS.jsonl]")]
    files: Vec<InputSpec>,
    /// Report format.
    #[arg(long, value_enum, default_value = "markdown")]
    format: OutputFormat,
    /// Confidence level of the intervals; the tests are at 1 − confidence (0.5 to 0.999).
    #[arg(long, default_value = "0.95", value_parser = values::confidence)]
    confidence: f64,
    /// Smallest change, in percent, that is ever called faster or slower: a change counts only
    /// when its whole interval lies beyond ± this (0 to 50).
    #[arg(
        long = "noise_threshold",
        visible_alias = "noise-threshold",
        value_name = "PCT",
        default_value = "2",
        value_parser = noise_threshold
    )]
    noise_threshold: f64,
    /// Exit with code 5 when a figure got significantly worse by more than PCT percent (0 to
    /// 1000).
    #[arg(
        long = "fail_if_slower",
        visible_alias = "fail-if-slower",
        value_name = "PCT",
        value_parser = fail_if_slower
    )]
    fail_if_slower: Option<f64>,
    /// Write the report to FILE (atomically) instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

/// A percentage from 0 to `max`.
fn percent(s: &str, max: f64) -> Result<f64, String> {
    let expected = || format!("expected a percentage from 0 to {max}");
    let x: f64 = s.trim().parse().map_err(|_| expected())?;
    if x.is_finite() && (0.0..=max).contains(&x) {
        Ok(x)
    } else {
        Err(expected())
    }
}

fn noise_threshold(s: &str) -> Result<f64, String> {
    percent(s, 50.0)
}

fn fail_if_slower(s: &str) -> Result<f64, String> {
    percent(s, 1000.0)
}

fn main() -> ExitCode {
    let args: Args = match cli::parse(NAME) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if let Some(out) = &args.output {
        if let Err(e) = tokenomics_stats::check_writable(out) {
            return cli::fail(NAME, e, exit::USAGE);
        }
    }
    let mut inputs = Vec::with_capacity(args.files.len());
    for spec in &args.files {
        match Input::open(spec) {
            Ok(i) => inputs.push(i),
            Err(e) => return cli::fail(NAME, e, exit::USAGE),
        }
    }
    let opts = CompareOptions {
        confidence: args.confidence,
        threshold: args.noise_threshold / 100.0,
        ..CompareOptions::default()
    };
    let comparison = match compare(&inputs, &opts) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.is_bad_input() {
                exit::USAGE
            } else {
                exit::ERROR
            };
            return cli::fail(NAME, e, code);
        }
    };
    let text = match args.format {
        OutputFormat::Markdown => comparison.to_markdown(),
        OutputFormat::Json => match comparison.to_json() {
            Ok(t) => t,
            Err(e) => return cli::fail(NAME, e, exit::ERROR),
        },
    };
    match &args.output {
        Some(out) => {
            if let Err(e) = tokenomics_stats::write_atomic(out, text.as_bytes()) {
                return cli::fail(NAME, e, exit::ERROR);
            }
            cli::out!("Comparison saved to {}", out.display());
        }
        None => cli::out!("{}", text.trim_end()),
    }
    if let Some(pct) = args.fail_if_slower {
        let worse: Vec<String> = comparison
            .levels
            .iter()
            .flat_map(|l| {
                l.rows
                    .iter()
                    .filter(move |r| r.verdict == Verdict::Slower && r.worse_by_percent() > pct)
                    .map(move |r| {
                        format!(
                            "{} {} {} {}: {:+.1}%",
                            l.mode.name(),
                            l.level,
                            r.metric.label(),
                            r.statistic.label(),
                            r.change * 100.0
                        )
                    })
            })
            .collect();
        if !worse.is_empty() {
            eprintln!(
                "{NAME}: significantly slower by more than {pct}%: {}",
                worse.join("; ")
            );
            return ExitCode::from(REGRESSION);
        }
    }
    ExitCode::SUCCESS
}
