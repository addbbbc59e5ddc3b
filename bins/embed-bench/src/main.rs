//! `embed-bench`: the embedding benchmark. Parses flags, calls `tokenomics-bench`, prints.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokenomics_bench::console::{self, EmbedConsole, Outcome};
use tokenomics_bench::load::{Arrival, AtEnd, Shape};
use tokenomics_bench::plan::{LoadFlags, LoadPlan};
use tokenomics_bench::preflight::Probe;
use tokenomics_bench::prompts::{Note, PromptFlags, TokenizeTarget};
use tokenomics_bench::sustained::keep_time;
use tokenomics_bench::{EmbedBenchmark, EmbedConfig, InputTokens, Shutdown};
use tokenomics_cli::values::{self, MAX_CONCURRENCY, MAX_REQUESTS, MAX_RUNS};
use tokenomics_cli::{self as cli, exit, Failure, ServerArgs};
use tokenomics_datasets::exact::{Lengths, TokenLength, MAX_TOKENS};
use tokenomics_datasets::hub::HubConfig;
use tokenomics_datasets::text::TextLength;
use tokenomics_datasets::PromptSource;

const NAME: &str = "embed-bench";

/// The batch sizes of the original script, when no load flag is given.
const DEFAULT_BATCH_SIZES: [u64; 5] = [1, 2, 4, 8, 16];

/// Measure embedding throughput of an OpenAI-compatible server: bursts of B separate concurrent
/// requests (the original's), or closed and open loops. Drop-in for embedding_benchmark.py: same
/// flags, same JSON.
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
    /// Bursts: comma-separated numbers of separate concurrent requests [default: 1,2,4,8,16].
    #[arg(long = "batch_sizes", visible_alias = "batch-sizes",
          value_delimiter = ',', num_args = 1, action = clap::ArgAction::Set,
          value_parser = clap::value_parser!(u64).range(1..=MAX_CONCURRENCY))]
    batch_sizes: Option<Vec<u64>>,
    /// Closed loop: keep C requests in flight (comma-separated levels); with --request_rate, a single cap on requests in flight.
    #[arg(long = "max_concurrency", visible_alias = "max-concurrency", value_delimiter = ',', num_args = 1, action = clap::ArgAction::Set,
          value_parser = clap::value_parser!(u64).range(1..=MAX_CONCURRENCY))]
    max_concurrency: Option<Vec<u64>>,
    /// Open loop: send R requests per second on a seeded schedule (comma-separated levels).
    #[arg(long = "request_rate", visible_alias = "request-rate", value_delimiter = ',', num_args = 1, action = clap::ArgAction::Set,
          value_parser = values::rate)]
    request_rate: Option<Vec<f64>>,
    /// Open loop: inter-arrival times [default: poisson; gamma when --burstiness is given].
    #[arg(long, value_enum)]
    arrival: Option<Arrival>,
    /// Open loop with gamma arrivals: the shape; below 1 burstier than Poisson, above 1 more regular.
    #[arg(long, value_parser = values::positive_number)]
    burstiness: Option<f64>,
    /// Closed/open loop: measured requests per level and sequence length (after the warm-up) [default: 10 per unit of level, at least 20].
    #[arg(long = "num_requests", visible_alias = "num-requests",
          value_parser = clap::value_parser!(u64).range(1..=MAX_REQUESTS))]
    num_requests: Option<u64>,
    /// Closed/open loop: measured seconds per level and sequence length (after the warm-up); no request is sent after it.
    #[arg(long, value_parser = values::positive_seconds)]
    duration: Option<Duration>,
    /// Closed/open loop: seconds of load at the level before measuring; those requests are not counted [default: 0].
    #[arg(long = "warmup_seconds", visible_alias = "warmup-seconds", value_parser = values::seconds)]
    warmup_seconds: Option<Duration>,
    /// With --duration: what happens to requests still in flight when it is over: wait (measured) or cancel (counted as cancelled) [default: wait].
    #[arg(long = "at_end", visible_alias = "at-end", value_enum)]
    at_end: Option<AtEnd>,
    /// Comma-separated text lengths: short, medium, long, mixed, or exact word counts (e.g. 10,25,50,200).
    #[arg(long = "sequence_lengths", visible_alias = "sequence-lengths", default_value = "short,medium,long,mixed",
          value_delimiter = ',', num_args = 1, action = clap::ArgAction::Set)]
    sequence_lengths: Vec<TextLength>,
    /// Comma-separated exact text lengths in tokens, e.g. 64,256, in place of --sequence_lengths (counted with --tokenizer, else the server's tokenize endpoint, else estimated); special tokens the server adds are not counted.
    #[arg(long = "input_tokens", visible_alias = "input-tokens", conflicts_with = "sequence_lengths",
          value_delimiter = ',', num_args = 1, action = clap::ArgAction::Set,
          value_parser = clap::value_parser!(u64).range(1..=MAX_TOKENS))]
    input_tokens: Option<Vec<u64>>,
    /// With --input_tokens: the model's tokenizer, a tokenizer.json file or a Hub model id (OWNER/NAME).
    #[arg(long, requires = "input_tokens")]
    tokenizer: Option<String>,
    /// Measured runs per configuration [default: 3 for bursts, 1 for closed and open loops].
    #[arg(long = "num_runs", visible_alias = "num-runs",
          value_parser = clap::value_parser!(u64).range(1..=MAX_RUNS))]
    num_runs: Option<u64>,
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
    /// Texts per request (one request carrying N texts, as vLLM and TEI batch them), in bursts and loops alike.
    #[arg(long = "inputs_per_request", visible_alias = "inputs-per-request", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    inputs_per_request: u64,
    /// Retries of a failed request (connection errors, timeouts, 429, 5xx), with exponential backoff (at most 60 s between tries).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=100))]
    retries: u32,
    #[command(flatten)]
    server: ServerArgs,
}

impl Args {
    /// The load levels the flags ask for, checked as `oai-bench` checks them (same flags, same
    /// refusals); a burst's batch sizes default to the original's.
    fn plan(&self) -> tokenomics_bench::Result<LoadPlan> {
        let mut load = LoadFlags {
            max_concurrency: self.max_concurrency.clone(),
            request_rate: self.request_rate.clone(),
            arrival: self.arrival,
            burstiness: self.burstiness,
            num_requests: self.num_requests,
            duration: self.duration,
            warmup: self.warmup_seconds,
            at_end: self.at_end,
            num_runs: self.num_runs,
            ..LoadFlags::default()
        };
        if load.sustained() {
            if self.batch_sizes.is_some() {
                return Err(tokenomics_bench::Error::Invalid(
                    "--batch_sizes is for bursts; with --max_concurrency or --request_rate each \
                     request carries --inputs_per_request texts"
                        .into(),
                ));
            }
        } else {
            load.batch_sizes = Some(
                self.batch_sizes
                    .clone()
                    .unwrap_or_else(|| DEFAULT_BATCH_SIZES.to_vec()),
            );
        }
        load.plan()
    }
}

fn main() -> ExitCode {
    let args: Args = match cli::parse(NAME) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if let Err(e) = tokenomics_bench::plan::check_requests(args.model.as_deref(), None, false) {
        return cli::fail(NAME, e, exit::USAGE);
    }
    let plan = match args.plan() {
        Ok(p) => p,
        Err(e) => return cli::fail_with(NAME, Failure::classify(e.is_bad_input(), e)),
    };
    if let Err(e) = tokenomics_stats::check_writable(&args.results_file) {
        return cli::fail(NAME, format!("--results_file: {e}"), exit::USAGE);
    }
    // One socket per request in flight. An uncapped open loop has no known bound: it asks for a
    // generous limit and goes on with what it gets.
    let in_flight = plan.levels.iter().map(Shape::max_in_flight);
    let uncapped = in_flight.clone().any(|m| m.is_none());
    let most = in_flight.map(|m| m.unwrap_or(65_536)).max().unwrap_or(1);
    if let Err(e) = cli::ensure_open_files(args.server.sockets(most).saturating_add(64)) {
        if !uncapped {
            return cli::fail_with(NAME, e.into());
        }
    }
    // Worker threads that wake on time, as `oai-bench`'s: an open loop's sends are handed to them.
    let runtime = match cli::runtime(cli::default_workers(), Some(keep_time)) {
        Ok(rt) => rt,
        Err(e) => return cli::fail_with(NAME, e.into()),
    };
    let results_file = args.results_file.clone();
    match cli::block_on_worker(&runtime, run(args, plan)) {
        Ok((o, interrupted)) => {
            cli::finish(NAME, &results_file, o.succeeded, o.failed, interrupted)
        }
        Err(f) => cli::fail_with(NAME, f),
    }
}

async fn run(args: Args, plan: LoadPlan) -> Result<(Outcome, bool), Failure> {
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
    let sustained = plan
        .levels
        .iter()
        .any(|s| !matches!(s, Shape::Burst { .. }));
    let batch_sizes = plan
        .levels
        .iter()
        .filter_map(|s| match s {
            Shape::Burst { batch } => Some(*batch),
            _ => None,
        })
        .collect();
    let input_tokens = match &args.input_tokens {
        Some(lengths) => Some(input_tokens(&args, &target, lengths.clone()).await?),
        None => None,
    };
    let config = EmbedConfig {
        model: target.model.clone(),
        api_base: target.api_base.clone(),
        batch_sizes,
        levels: if sustained { plan.levels } else { Vec::new() },
        limits: plan.limits,
        sequence_lengths: args.sequence_lengths.clone(),
        input_tokens,
        num_runs: plan.num_runs,
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

/// Texts of exact token lengths: word costs measured as `oai-bench --input_tokens` measures them
/// (`--tokenizer`, else the server's tokenize endpoint, else an estimate, with a warning), and the
/// special tokens the server adds around a text when its tokenize endpoint shows them.
async fn input_tokens(
    args: &Args,
    target: &cli::Target,
    lengths: Vec<u64>,
) -> Result<InputTokens, Failure> {
    let failure = |e: tokenomics_bench::Error| Failure::classify(e.is_bad_input(), e);
    let server = TokenizeTarget {
        // With several endpoints, the first one's tokenizer (they serve the same model).
        api_base: target.client.config().api_base.clone(),
        api_key: args.server.api_key.clone(),
        model: target.model.clone(),
        tls: target.client.config().tls.clone(),
    };
    let flags = PromptFlags {
        // The costs do not depend on the length: each configuration builds its own.
        input_tokens: Some(TokenLength::Fixed(1)),
        tokenizer: args.tokenizer.clone(),
        seed: args.seed,
        ..PromptFlags::default()
    };
    let prepared = flags
        .prepare(&server, target.simulated.is_some(), &HubConfig::from_env())
        .await
        .map_err(failure)?;
    for note in &prepared.notes {
        match note {
            Note::Info(m) => cli::out!("{m}"),
            Note::Warning(m) => eprintln!("{NAME}: warning: {m}"),
        }
    }
    let PromptSource::Exact(exact) = prepared.source else {
        return Err(Failure::error("token-exact texts could not be prepared"));
    };
    // A server's usage counts the special tokens it adds ([CLS] and [SEP] of a BERT-style
    // model): its tokenize endpoint, when there is one, shows how many. (An estimate means no
    // endpoint answered: it is not asked again.)
    let special_tokens = match exact.lengths {
        Lengths::Estimate => None,
        Lengths::Exact { .. } => PromptFlags::template_tokens(&server, false).await.ok(),
    };
    if let Some(t) = special_tokens {
        cli::out!(
            "Special tokens: the server adds {} before and {} after each text (its usage counts them)",
            t.before,
            t.after
        );
    }
    Ok(InputTokens {
        lengths,
        counting: exact.lengths,
        special_tokens,
    })
}
