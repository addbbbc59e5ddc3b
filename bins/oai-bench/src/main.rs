//! `oai-bench`: the chat benchmark. Argument parsing and printing only; the work is in
//! `tokenomics-bench`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

const NAME: &str = "oai-bench";
use serde_json::Map;
use tokenomics_bench::{report, ChatBenchmark, ChatConfig, Observer, RunReport};
use tokenomics_client::Endpoint;
use tokenomics_datasets::PromptSource;
use tokenomics_stats::{ChatDocument, ChatLevel};

use tokenomics_bench::cli::{self, exit};
use tokenomics_bench::Shutdown;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum EndpointArg {
    Chat,
    Completions,
}

/// Measure tokens/s and latency of an OpenAI-compatible server under bursts of concurrent
/// chat requests. Drop-in for oai_server_benchmark.py: same flags, same JSON.
#[derive(Debug, Parser)]
#[command(
    name = "oai-bench",
    version,
    after_help = "Exit codes: 0 success, 1 error, 2 bad usage, 3 some requests failed, 4 every request failed.\nUnderscore flags (--batch_sizes) and kebab-case aliases (--batch-sizes) are both accepted."
)]
struct Args {
    /// Model tag sent in each request (required unless --simulate is given).
    #[arg(long, required_unless_present = "simulate")]
    model: Option<String>,
    /// Prompt source: synthetic, file:PATH (JSONL or text), aime [default: aime; synthetic with --simulate].
    #[arg(long = "dataset_key", visible_alias = "dataset-key")]
    dataset_key: Option<String>,
    /// Comma-separated batch sizes; each is one experiment.
    #[arg(
        long = "batch_sizes",
        visible_alias = "batch-sizes",
        default_value = "1,2,4,8"
    )]
    batch_sizes: String,
    /// Measured runs per batch size.
    #[arg(long = "num_runs", visible_alias = "num-runs", default_value_t = 3)]
    num_runs: u64,
    /// Warm-up requests before each batch size (single requests, max_tokens 30, not recorded).
    #[arg(
        long = "warmup_runs",
        visible_alias = "warmup-runs",
        default_value_t = 3
    )]
    warmup_runs: u64,
    /// Maximum tokens generated per request.
    #[arg(
        long = "max_tokens",
        visible_alias = "max-tokens",
        default_value_t = 100
    )]
    max_tokens: u64,
    /// Sampling temperature.
    #[arg(long, default_value_t = 0.5)]
    temperature: f64,
    /// Prompt sampling seed (each run derives its own from it).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Client worker threads [default: half the CPUs].
    #[arg(long = "n_cores", visible_alias = "n-cores")]
    n_cores: Option<usize>,
    /// Free text stored in the metadata and used as the plot title.
    #[arg(long, default_value = "")]
    description: String,
    /// Output JSON path (written after every batch size).
    #[arg(
        long = "results_file",
        visible_alias = "results-file",
        default_value = "async_benchmark_results.json"
    )]
    results_file: PathBuf,
    /// Also write one JSON line per request here (timestamps, tokens, outcome), after every run.
    #[arg(long = "requests_file", visible_alias = "requests-file")]
    requests_file: Option<PathBuf>,
    /// Stream every request and report TTFT, inter-token latency, TPOT and end-to-end latency.
    #[arg(long)]
    stream: bool,
    /// Make every request generate exactly --max_tokens (sends ignore_eos and min_tokens, which vLLM and SGLang honour).
    #[arg(long = "ignore_eos", visible_alias = "ignore-eos")]
    ignore_eos: bool,
    /// Generation route: chat (/chat/completions) or completions (/completions).
    #[arg(long, value_enum, default_value = "chat")]
    endpoint: EndpointArg,
    #[command(flatten)]
    server: cli::ServerArgs,
}

/// A usage error: one line, exit code 2.
struct Usage(String);

fn parse_batch_sizes(s: &str) -> Result<Vec<u64>, Usage> {
    let sizes: Result<Vec<u64>, Usage> = s
        .split(',')
        .map(|p| {
            let p = p.trim();
            p.parse::<u64>().ok().filter(|&n| n > 0).ok_or_else(|| {
                Usage(format!(
                    "--batch_sizes: {p:?} is not a positive integer (expected e.g. 1,2,4,8)"
                ))
            })
        })
        .collect();
    sizes
}

fn validate(args: &Args) -> Result<Vec<u64>, Usage> {
    let sizes = parse_batch_sizes(&args.batch_sizes)?;
    if args.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
        return Err(Usage(
            "--model is empty: give the model tag the server serves".into(),
        ));
    }
    if args.num_runs == 0 {
        return Err(Usage("--num_runs must be at least 1".into()));
    }
    if args.max_tokens == 0 {
        return Err(Usage("--max_tokens must be at least 1".into()));
    }
    if !(0.0..=2.0).contains(&args.temperature) {
        return Err(Usage(format!(
            "--temperature {} is out of range (0 to 2)",
            args.temperature
        )));
    }
    args.server.validate().map_err(Usage)?;
    if args.n_cores == Some(0) {
        return Err(Usage("--n_cores must be at least 1".into()));
    }
    Ok(sizes)
}

/// The body fields that force every output to `max_tokens` tokens, when asked.
fn forced_length_body(ignore_eos: bool, max_tokens: u64) -> Map<String, serde_json::Value> {
    let mut body = Map::new();
    if ignore_eos {
        body.insert("ignore_eos".into(), true.into());
        body.insert("min_tokens".into(), max_tokens.into());
    }
    body
}

struct Console {
    total_ok: u64,
    total_failed: u64,
    warned: bool,
    interrupted: bool,
}

impl Observer for Console {
    fn level_started(&mut self, level: u64) {
        println!("\n=== batch size {level} ===");
        self.warned = false;
    }
    fn warmup_failed(&mut self, _level: u64, error: &tokenomics_client::Error) {
        if !self.warned {
            eprintln!("  warning: a warm-up request failed: {error}");
            self.warned = true;
        }
    }
    fn records_failed(&mut self, error: &tokenomics_bench::Error) {
        eprintln!("  warning: the per-request records file is no longer written: {error}");
    }
    fn run_finished(&mut self, r: &RunReport) {
        self.total_ok += r.succeeded as u64;
        self.total_failed += r.failed as u64;
        println!("{}", report::run_line(r));
    }
    fn level_finished(&mut self, key: &str, level: &ChatLevel) {
        print!("{}", report::level_summary(key, level));
    }
}

async fn run(
    args: Args,
    sizes: Vec<u64>,
    n_cores: usize,
) -> Result<(ChatDocument, Console), cli::Failure> {
    let target = args
        .server
        .connect(args.model.as_deref(), args.seed, "chat")
        .await?;
    let description = match (&target.simulated_description, args.description.is_empty()) {
        (Some(d), true) => d.clone(),
        _ => args.description.clone(),
    };
    let dataset_key = args.dataset_key.clone().unwrap_or_else(|| {
        if args.server.simulate.is_some() {
            "synthetic".into()
        } else {
            "aime".into()
        }
    });
    let prompts = PromptSource::from_key(&dataset_key).map_err(cli::Failure::usage)?;
    let config = ChatConfig {
        model: target.model.clone(),
        dataset_key,
        api_base: target.api_base.clone(),
        batch_sizes: sizes,
        num_runs: args.num_runs,
        warmup_runs: args.warmup_runs,
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        seed: args.seed,
        n_cores: n_cores as u64,
        description,
        endpoint: match args.endpoint {
            EndpointArg::Chat => Endpoint::Chat,
            EndpointArg::Completions => Endpoint::Completions,
        },
        stream: args.stream,
        results_file: Some(args.results_file.clone()),
        requests_file: args.requests_file.clone(),
        timeout_seconds: args.server.timeout,
        extra_body: forced_length_body(args.ignore_eos, args.max_tokens),
        extra_metadata: target.metadata.clone(),
    };
    println!(
        "Benchmarking {:?} at {} — batch sizes {:?}, {} runs each, max_tokens {}, {}",
        config.model,
        config.api_base,
        config.batch_sizes,
        config.num_runs,
        config.max_tokens,
        if config.stream {
            "streaming"
        } else {
            "not streaming"
        }
    );
    let shutdown = Shutdown::default();
    shutdown.on_signals(|| {
        eprintln!("\n{NAME}: interrupted: no new requests; waiting up to 3 s for those in flight (interrupt again to stop now)")
    });
    let mut bench = ChatBenchmark::new(config, target.client.clone(), prompts);
    let mut console = Console {
        total_ok: 0,
        total_failed: 0,
        warned: false,
        interrupted: false,
    };
    bench.set_shutdown(shutdown);
    let doc = bench.run(&mut console).await.map_err(cli::Failure::error)?;
    console.interrupted = bench.interrupted();
    Ok((doc, console))
}

fn main() -> ExitCode {
    let args: Args = match cli::parse(NAME) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let sizes = match validate(&args) {
        Ok(s) => s,
        Err(Usage(msg)) => return cli::fail(NAME, msg, exit::USAGE),
    };
    if let Err(e) = tokenomics_stats::check_writable(&args.results_file) {
        return cli::fail(NAME, format!("--results_file: {e}"), exit::USAGE);
    }
    if let Some(Err(e)) = args
        .requests_file
        .as_deref()
        .map(tokenomics_stats::check_writable)
    {
        return cli::fail(NAME, format!("--requests_file: {e}"), exit::USAGE);
    }
    // One socket per concurrent request, plus the simulator's when it runs in-process.
    let sockets = args
        .server
        .sockets(sizes.iter().max().copied().unwrap_or(1));
    if let Err(e) = cli::ensure_open_files(sockets + 64) {
        return cli::fail(NAME, e, exit::USAGE);
    }
    let n_cores = args.n_cores.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(n_cores)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return cli::fail(NAME, format!("cannot start the runtime: {e}"), exit::ERROR),
    };
    let results_file = args.results_file.clone();
    match runtime.block_on(run(args, sizes, n_cores)) {
        Ok((_, c)) => cli::finish(
            NAME,
            &results_file,
            c.total_ok,
            c.total_failed,
            c.interrupted,
        ),
        Err(f) => cli::fail(NAME, f.message, f.code),
    }
}
