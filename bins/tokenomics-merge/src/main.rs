//! `tokenomics-merge`: one result document from the shards of one run. Argument parsing and
//! printing only; the merge is `tokenomics_bench::merge`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tokenomics_bench::merge;
use tokenomics_bench::report::table;
use tokenomics_cli::{self as cli, Failure};

const NAME: &str = "tokenomics-merge";

/// Merge the shards of one sharded oai-bench run (`--shard`/`--results_dir`, one process per
/// machine) into the document one machine would have written. Every level is rebuilt from all
/// shards' per-request records: counts and percentiles are those of the union of the records.
/// `tokenomics-merge DIR -o merged.json`, or the shards' result files one by one.
#[derive(Debug, Parser)]
#[command(
    name = "tokenomics-merge",
    version,
    after_help = "Exit codes: 0 success, 1 error, 2 bad input (a file that is not a shard's result, records missing or incomplete, shards of different runs, a shard missing or given twice, an output that cannot be written)."
)]
struct Args {
    /// The shards' results: directories (every shard-I-of-N.json in them) or result files; each shard's records (shard-I-of-N.jsonl) are read from beside its result file.
    #[arg(required = true, num_args = 1..)]
    inputs: Vec<PathBuf>,
    /// The merged result document to write.
    #[arg(short, long)]
    output: PathBuf,
}

fn main() -> ExitCode {
    let args: Args = match cli::parse(NAME) {
        Ok(a) => a,
        Err(code) => return code,
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => cli::fail_with(NAME, f),
    }
}

fn run(args: &Args) -> Result<(), Failure> {
    let failure = |e: tokenomics_bench::Error| Failure::classify(e.is_bad_input(), e);
    tokenomics_stats::check_writable(&args.output).map_err(Failure::usage)?;
    let files = merge::shard_files(&args.inputs).map_err(failure)?;
    let doc = merge::merge(&files).map_err(failure)?;
    tokenomics_stats::write_json_atomic(&args.output, &doc).map_err(Failure::usage)?;
    if let Some(m) = &doc.metadata.merged {
        let requests: u64 = m.shards.iter().map(|s| s.requests).sum();
        let late = m
            .shards
            .iter()
            .map(|s| s.late_seconds)
            .fold(0.0f64, f64::max);
        cli::out!(
            "Merged {} shards of run {} ({requests} requests); shards started up to {:.2} ms \
             late, runs started within {:.2} ms of each other.",
            m.count,
            m.config_hash,
            late * 1e3,
            m.start_skew_seconds * 1e3
        );
    }
    let rows = table::rows(&doc);
    if !rows.is_empty() {
        cli::out!(
            "\nSummary (latencies in ms; tok/s: output tokens per second; – where not measured)"
        );
        cli::out!("{}", table::console(&rows).trim_end_matches('\n'));
    }
    cli::out!("Results saved to {}", args.output.display());
    for w in doc
        .metadata
        .merged
        .as_ref()
        .map(|m| m.load_warnings())
        .unwrap_or_default()
    {
        eprintln!("{NAME}: warning: {w}");
    }
    if doc.metadata.incomplete {
        eprintln!(
            "{NAME}: warning: a shard's run was interrupted: the merged result is incomplete"
        );
    }
    Ok(())
}
