//! `embed-bench`: the embedding benchmark. Parses flags, calls `tokenomics-bench`, prints.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokenomics_bench::console::{self, EmbedConsole, Outcome};
use tokenomics_bench::preflight::Probe;
use tokenomics_bench::{EmbedBenchmark, EmbedConfig, Shutdown};
use tokenomics_cli::values::{MAX_CONCURRENCY, MAX_RUNS};
use tokenomics_cli::{self as cli, exit, Failure, ServerArgs};
use tokenomics_datasets::text::TextLength;

const NAME: &str = "embed-bench";

/// Measure embedding throughput of an OpenAI-compatible server with B separate concurrent
/// requests per batch. Drop-in for embedding_benchmark.py: same flags, same JSON.
#[derive(Debug, Parser)]
#[command(
    name = "embed-bench",
    version,
    after_help = "Exit codes: 0 success, 1 error, 2 bad usage, 3 some requests failed, 4 every request failed, 130 interrupted.\nUnderscore flags (--batch_sizes) and kebab-case aliases (--batch-sizes) are both accepted."
)]
struct Args {
    /// Embedding model tag (required unless --simulate is given).
    #[arg(long, required_unless_present = "simulate")]
    model: Option<String>,
    /// Comma-separated numbers of separate concurrent requests.
    #[arg(long = "batch_sizes", visible_alias = "batch-sizes", default_value = "1,2,4,8,16",
          value_delimiter = ',', num_args = 1, action = clap::ArgAction::Set,
          value_parser = clap::value_parser!(u64).range(1..=MAX_CONCURRENCY))]
    batch_sizes: Vec<u64>,
    /// Comma-separated text lengths: short, medium, long, mixed, or exact word counts (e.g. 10,25,50,200).
    #[arg(long = "sequence_lengths", visible_alias = "sequence-lengths", default_value = "short,medium,long,mixed",
          value_delimiter = ',', num_args = 1, action = clap::ArgAction::Set)]
    sequence_lengths: Vec<TextLength>,
    /// Measured runs per configuration.
    #[arg(long = "num_runs", visible_alias = "num-runs", default_value_t = 3,
          value_parser = clap::value_parser!(u64).range(1..=MAX_RUNS))]
    num_runs: u64,
    /// Single-text warm-up requests before each configuration (not recorded).
    #[arg(long = "warmup_runs", visible_alias = "warmup-runs", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(0..=MAX_RUNS))]
    warmup_runs: u64,
    /// Confidence level of the intervals in every configuration (batch figures over runs, request latency).
    #[arg(long, default_value = "0.95", value_parser = tokenomics_cli::values::confidence)]
    confidence: f64,
    /// Text generation seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Free text stored in the metadata and used as the plot title.
    #[arg(long, default_value = "")]
    description: String,
    /// Output JSON path.
    #[arg(
        long = "results_file",
        visible_alias = "results-file",
        default_value = "embedding_benchmark_results.json"
    )]
    results_file: PathBuf,
    /// Accepted for compatibility: results are always written after every configuration.
    #[arg(long = "save_progress", visible_alias = "save-progress")]
    save_progress: bool,
    /// Texts per request (one request carrying N texts, as vLLM and TEI batch them).
    #[arg(long = "inputs_per_request", visible_alias = "inputs-per-request", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    inputs_per_request: u64,
    /// Retries of a failed request (connection errors, timeouts, 429, 5xx), with exponential backoff (at most 60 s between tries).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=100))]
    retries: u32,
    #[command(flatten)]
    server: ServerArgs,
}

fn main() -> ExitCode {
    let args: Args = match cli::parse(NAME) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if let Err(e) = tokenomics_bench::plan::check_requests(args.model.as_deref(), None, false) {
        return cli::fail(NAME, e, exit::USAGE);
    }
    if let Err(e) = tokenomics_stats::check_writable(&args.results_file) {
        return cli::fail(NAME, format!("--results_file: {e}"), exit::USAGE);
    }
    let most = args.batch_sizes.iter().max().copied().unwrap_or(1);
    if let Err(e) = cli::ensure_open_files(args.server.sockets(most).saturating_add(64)) {
        return cli::fail_with(NAME, e.into());
    }
    let runtime = match cli::runtime(cli::default_workers(), None) {
        Ok(rt) => rt,
        Err(e) => return cli::fail_with(NAME, e.into()),
    };
    let results_file = args.results_file.clone();
    match runtime.block_on(run(args)) {
        Ok((o, interrupted)) => {
            cli::finish(NAME, &results_file, o.succeeded, o.failed, interrupted)
        }
        Err(f) => cli::fail_with(NAME, f),
    }
}

async fn run(args: Args) -> Result<(Outcome, bool), Failure> {
    let target = args
        .server
        .connect(args.model.as_deref(), args.seed, "embeddings")
        .await?;
    let preflight = console::preflight(
        args.server.no_preflight,
        &target.client,
        &target.model,
        &Probe::Embeddings,
    )
    .await
    .map_err(|e| Failure::classify(e.is_bad_input(), e))?;
    let config = EmbedConfig {
        model: target.model.clone(),
        api_base: target.api_base.clone(),
        batch_sizes: args.batch_sizes.clone(),
        sequence_lengths: args.sequence_lengths.clone(),
        num_runs: args.num_runs,
        warmup_runs: args.warmup_runs,
        seed: args.seed,
        description: target.description(&args.description),
        results_file: Some(args.results_file.clone()),
        inputs_per_request: args.inputs_per_request,
        retries: args.retries,
        backoff: Duration::from_millis(250),
        timeout_seconds: args.server.timeout.as_secs_f64(),
        simulated: target.simulated.clone(),
        insecure_tls: target.insecure,
        preflight,
        confidence: Some(args.confidence),
    };
    cli::out!("{}", console::embed_banner(&config));
    let shutdown = Shutdown::default();
    shutdown.on_signals(|| {
        eprintln!("\n{NAME}: interrupted: no new requests; waiting up to 3 s for those in flight (interrupt again to stop now)")
    });
    let mut bench = EmbedBenchmark::new(config, target.client.clone());
    bench.set_shutdown(shutdown);
    let mut console = EmbedConsole::default();
    bench
        .run(&mut console)
        .await
        .map_err(|e| Failure::classify(e.is_bad_input(), e))?;
    Ok((console.outcome, bench.interrupted()))
}
