//! `embed-bench`: the embedding benchmark. Argument parsing and printing only; the work is in
//! `tokenomics-bench`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokenomics_bench::cli::{self, exit};
use tokenomics_bench::Shutdown;
use tokenomics_bench::{report, EmbedBenchmark, EmbedConfig, EmbedRunReport, Observer};
use tokenomics_datasets::text::TextLength;
use tokenomics_stats::EmbedLevel;

const NAME: &str = "embed-bench";

/// Measure embedding throughput of an OpenAI-compatible server with B separate concurrent
/// requests per batch. Drop-in for embedding_benchmark.py: same flags, same JSON.
#[derive(Debug, Parser)]
#[command(
    name = "embed-bench",
    version,
    after_help = "Exit codes: 0 success, 1 error, 2 bad usage, 3 some requests failed, 4 every request failed.\nUnderscore flags (--batch_sizes) and kebab-case aliases (--batch-sizes) are both accepted."
)]
struct Args {
    /// Embedding model tag (required unless --simulate is given).
    #[arg(long, required_unless_present = "simulate")]
    model: Option<String>,
    /// Comma-separated numbers of separate concurrent requests.
    #[arg(
        long = "batch_sizes",
        visible_alias = "batch-sizes",
        default_value = "1,2,4,8,16"
    )]
    batch_sizes: String,
    /// Comma-separated text lengths: short, medium, long, mixed, or exact word counts (e.g. 10,25,50,200).
    #[arg(
        long = "sequence_lengths",
        visible_alias = "sequence-lengths",
        default_value = "short,medium,long,mixed"
    )]
    sequence_lengths: String,
    /// Measured runs per configuration.
    #[arg(long = "num_runs", visible_alias = "num-runs", default_value_t = 3)]
    num_runs: u64,
    /// Single-text warm-up requests before each configuration (not recorded).
    #[arg(
        long = "warmup_runs",
        visible_alias = "warmup-runs",
        default_value_t = 2
    )]
    warmup_runs: u64,
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
    #[arg(
        long = "inputs_per_request",
        visible_alias = "inputs-per-request",
        default_value_t = 1
    )]
    inputs_per_request: u64,
    /// Retries of a failed request (connection errors, timeouts, 429, 5xx), with exponential backoff.
    #[arg(long, default_value_t = 3)]
    retries: u32,
    #[command(flatten)]
    server: cli::ServerArgs,
}

fn parse_list<T>(
    flag: &str,
    s: &str,
    parse: impl Fn(&str) -> Option<T>,
    allowed: &str,
) -> Result<Vec<T>, String> {
    s.split(',')
        .map(|p| {
            parse(p.trim())
                .ok_or_else(|| format!("--{flag}: {:?} is not allowed ({allowed})", p.trim()))
        })
        .collect()
}

struct Checked {
    batch_sizes: Vec<u64>,
    lengths: Vec<TextLength>,
}

fn validate(args: &Args) -> Result<Checked, String> {
    let batch_sizes = parse_list(
        "batch_sizes",
        &args.batch_sizes,
        |p| p.parse::<u64>().ok().filter(|&n| n > 0),
        "positive integers, e.g. 1,2,4,8,16",
    )?;
    let lengths = parse_list(
        "sequence_lengths",
        &args.sequence_lengths,
        TextLength::parse,
        "short, medium, long, mixed or a positive word count",
    )?;
    if args.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
        return Err("--model is empty: give the model tag the server serves".into());
    }
    if args.num_runs == 0 {
        return Err("--num_runs must be at least 1".into());
    }
    if args.inputs_per_request == 0 {
        return Err("--inputs_per_request must be at least 1".into());
    }
    args.server.validate()?;
    Ok(Checked {
        batch_sizes,
        lengths,
    })
}

#[derive(Default)]
struct Console {
    ok: u64,
    failed: u64,
    warned: bool,
    interrupted: bool,
}

impl Observer for Console {
    fn warmup_failed(&mut self, _: &str, error: &tokenomics_client::Error) {
        if !self.warned {
            eprintln!("  warning: a warm-up request failed: {error}");
            self.warned = true;
        }
    }
    fn embed_run_finished(&mut self, r: &EmbedRunReport) {
        if r.run == 0 {
            println!("\n=== {} ===", r.key);
        }
        self.ok += r.succeeded as u64;
        self.failed += r.failed as u64;
        println!("{}", report::embed_run_line(r));
    }
    fn embed_level_finished(&mut self, key: &str, level: &EmbedLevel) {
        print!("{}", report::embed_level_summary(key, level));
    }
}

async fn run(args: Args, checked: Checked) -> Result<Console, cli::Failure> {
    let target = args
        .server
        .connect(args.model.as_deref(), args.seed, "embeddings")
        .await?;
    let description = match (&target.simulated_description, args.description.is_empty()) {
        (Some(d), true) => d.clone(),
        _ => args.description.clone(),
    };
    let config = EmbedConfig {
        model: target.model.clone(),
        api_base: target.api_base.clone(),
        batch_sizes: checked.batch_sizes,
        sequence_lengths: checked.lengths,
        num_runs: args.num_runs,
        warmup_runs: args.warmup_runs,
        seed: args.seed,
        description,
        results_file: Some(args.results_file.clone()),
        inputs_per_request: args.inputs_per_request,
        retries: args.retries,
        backoff: Duration::from_millis(250),
        timeout_seconds: args.server.timeout,
        extra_metadata: target.metadata.clone(),
    };
    println!(
        "Benchmarking embeddings of {:?} at {} — batch sizes {:?}, lengths {}, {} runs each",
        config.model, config.api_base, config.batch_sizes, args.sequence_lengths, config.num_runs
    );
    let shutdown = Shutdown::default();
    shutdown.on_signals(|| {
        eprintln!("\n{NAME}: interrupted: no new requests; waiting up to 3 s for those in flight (interrupt again to stop now)")
    });
    let mut bench = EmbedBenchmark::new(config, target.client.clone());
    let mut console = Console::default();
    bench.set_shutdown(shutdown);
    bench.run(&mut console).await.map_err(cli::Failure::error)?;
    console.interrupted = bench.interrupted();
    Ok(console)
}

fn main() -> ExitCode {
    let args: Args = match cli::parse(NAME) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let checked = match validate(&args) {
        Ok(c) => c,
        Err(msg) => return cli::fail(NAME, msg, exit::USAGE),
    };
    if let Err(e) = tokenomics_stats::check_writable(&args.results_file) {
        return cli::fail(NAME, format!("--results_file: {e}"), exit::USAGE);
    }
    let sockets = args
        .server
        .sockets(checked.batch_sizes.iter().max().copied().unwrap_or(1));
    if let Err(e) = cli::ensure_open_files(sockets + 64) {
        return cli::fail(NAME, e, exit::USAGE);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return cli::fail(NAME, format!("cannot start the runtime: {e}"), exit::ERROR),
    };
    let results_file = args.results_file.clone();
    match runtime.block_on(run(args, checked)) {
        Ok(c) => cli::finish(NAME, &results_file, c.ok, c.failed, c.interrupted),
        Err(f) => cli::fail(NAME, f.message, f.code),
    }
}
