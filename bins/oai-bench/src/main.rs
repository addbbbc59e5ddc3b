//! `oai-bench`: the chat benchmark. Argument parsing and printing only; the work is in
//! `tokenomics-bench`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

const NAME: &str = "oai-bench";
use serde_json::Map;
use std::io::IsTerminal;

use tokenomics_bench::live::Live;
use tokenomics_bench::load::{Arrival, AtEnd, Limits, OpenLoop, Shape};
use tokenomics_bench::metrics::Slo;
use tokenomics_bench::{report, ChatBenchmark, ChatConfig, Observer, RunReport};
use tokenomics_client::Endpoint;
use tokenomics_datasets::exact::{self, ExactPrompts, TokenLength};
use tokenomics_datasets::hub::HubConfig;
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
    /// Prompt source: aime, hf:OWNER/NAME[@REVISION] (any Hugging Face Hub dataset), synthetic, file:PATH [default: aime; synthetic with --simulate].
    #[arg(long = "dataset_key", visible_alias = "dataset-key")]
    dataset_key: Option<String>,
    /// Synthetic prompts of an exact length in tokens: N, uniform:LO,HI or normal:MEAN,STD (counted with --tokenizer, else the server's tokenize endpoint, else estimated).
    #[arg(long = "input_tokens", visible_alias = "input-tokens")]
    input_tokens: Option<String>,
    /// With --input_tokens: the model's tokenizer, a tokenizer.json file or a Hub model id (OWNER/NAME).
    #[arg(long)]
    tokenizer: Option<String>,
    /// Hub datasets: the split to read [default: train].
    #[arg(long = "dataset_split", visible_alias = "dataset-split")]
    dataset_split: Option<String>,
    /// Hub datasets: the column holding the prompt text, or a chat "messages" column [default: aime: Question; otherwise found by name].
    #[arg(long = "dataset_column", visible_alias = "dataset-column")]
    dataset_column: Option<String>,
    /// Burst mode: comma-separated batch sizes; each is one experiment of B requests at once [default: 1,2,4,8].
    #[arg(long = "batch_sizes", visible_alias = "batch-sizes")]
    batch_sizes: Option<String>,
    /// Closed loop: keep C requests in flight (comma-separated levels); with --request_rate, a single cap on requests in flight.
    #[arg(long = "max_concurrency", visible_alias = "max-concurrency")]
    max_concurrency: Option<String>,
    /// Open loop: send R requests per second on a seeded schedule (comma-separated levels).
    #[arg(long = "request_rate", visible_alias = "request-rate")]
    request_rate: Option<String>,
    /// Open loop: inter-arrival times: poisson, constant or gamma [default: poisson; gamma when --burstiness is given].
    #[arg(long, value_parser = ["poisson", "constant", "gamma"])]
    arrival: Option<String>,
    /// Open loop with gamma arrivals: the shape; below 1 burstier than Poisson, above 1 more regular.
    #[arg(long)]
    burstiness: Option<f64>,
    /// Closed/open loop: measured requests per level (after the warm-up) [default: 10 per unit of level, at least 20].
    #[arg(long = "num_requests", visible_alias = "num-requests")]
    num_requests: Option<u64>,
    /// Closed/open loop: measured seconds per level (after the warm-up); no request is sent after it.
    #[arg(long)]
    duration: Option<f64>,
    /// Closed/open loop: seconds of load at the level before measuring; those requests are not counted.
    #[arg(
        long = "warmup_seconds",
        visible_alias = "warmup-seconds",
        default_value_t = 0.0
    )]
    warmup_seconds: f64,
    /// With --duration: what happens to requests still in flight when it is over: wait (measured) or cancel (counted as cancelled).
    #[arg(long = "at_end", visible_alias = "at-end", value_parser = ["wait", "cancel"], default_value = "wait")]
    at_end: String,
    /// Goodput objectives in milliseconds, e.g. ttft:500,tpot:50,e2el:10000 (ttft and tpot need --stream).
    #[arg(long)]
    goodput: Option<String>,
    /// Measured runs per level [default: 3 for bursts, 1 for closed and open loops].
    #[arg(long = "num_runs", visible_alias = "num-runs")]
    num_runs: Option<u64>,
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
    /// Also write the per-level summary table as CSV here.
    #[arg(long = "csv_file", visible_alias = "csv-file")]
    csv_file: Option<PathBuf>,
    /// Also write the per-level summary table as Markdown here.
    #[arg(long = "markdown_file", visible_alias = "markdown-file")]
    markdown_file: Option<PathBuf>,
    /// Live progress: auto (redrawn on a terminal, a line every 10 s otherwise), or never.
    #[arg(long, value_parser = ["auto", "never"], default_value = "auto")]
    progress: String,
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

/// A comma-separated list of positive numbers (`T` says which kind: integer or not).
fn parse_list<T: std::str::FromStr + PartialOrd + Default>(
    flag: &str,
    s: &str,
    what: &str,
    example: &str,
) -> Result<Vec<T>, Usage> {
    s.split(',')
        .map(|p| {
            let p = p.trim();
            p.parse::<T>()
                .ok()
                .filter(|v| *v > T::default())
                .ok_or_else(|| {
                    Usage(format!(
                        "--{flag}: {p:?} is not {what} (expected e.g. {example})"
                    ))
                })
        })
        .collect()
}

/// What the flags ask for: the levels, their limits, and the runs per level.
struct Plan {
    levels: Vec<Shape>,
    limits: Limits,
    num_runs: u64,
    goodput: Option<Slo>,
    input_tokens: Option<TokenLength>,
}

fn validate(args: &Args) -> Result<Plan, Usage> {
    let positive = |x: &f64| x.is_finite() && *x > 0.0;
    let sustained = args.max_concurrency.is_some() || args.request_rate.is_some();
    if sustained && args.batch_sizes.is_some() {
        return Err(Usage(
            "--batch_sizes is for bursts; with --max_concurrency or --request_rate the levels are those values".into(),
        ));
    }
    if !sustained {
        for (flag, given) in [
            ("--num_requests", args.num_requests.is_some()),
            ("--duration", args.duration.is_some()),
            ("--warmup_seconds", args.warmup_seconds != 0.0),
            ("--arrival", args.arrival.is_some()),
            ("--burstiness", args.burstiness.is_some()),
        ] {
            if given {
                return Err(Usage(format!(
                    "{flag} needs a sustained load: give --max_concurrency or --request_rate"
                )));
            }
        }
    }
    let levels: Vec<Shape> = if let Some(rates) = &args.request_rate {
        let rates = parse_list::<f64>("request_rate", rates, "a positive number", "10,20.5")?;
        if let Some(r) = rates.iter().find(|r| !r.is_finite()) {
            return Err(Usage(format!(
                "--request_rate: {r} is not a positive number (expected e.g. 10,20.5)"
            )));
        }
        let cap = match &args.max_concurrency {
            None => None,
            Some(c) => match parse_list::<u64>("max_concurrency", c, "a positive integer", "64")?.as_slice() {
                [one] => Some(*one),
                _ => {
                    return Err(Usage(
                        "--max_concurrency with --request_rate is one cap on requests in flight, not a list".into(),
                    ))
                }
            },
        };
        let burstiness = args.burstiness.unwrap_or(1.0);
        if !positive(&burstiness) {
            return Err(Usage(format!(
                "--burstiness {burstiness} must be a positive number"
            )));
        }
        let arrival = match args.arrival.as_deref() {
            Some(a) => Arrival::parse(a).unwrap_or(Arrival::Poisson),
            None if args.burstiness.is_some() => Arrival::Gamma,
            None => Arrival::Poisson,
        };
        if args.burstiness.is_some() && arrival != Arrival::Gamma {
            return Err(Usage(format!(
                "--burstiness shapes gamma arrivals; it means nothing with --arrival {}",
                arrival.name()
            )));
        }
        rates
            .into_iter()
            .map(|rate| {
                Shape::Open(OpenLoop {
                    rate,
                    arrival,
                    burstiness,
                    max_concurrency: cap,
                })
            })
            .collect()
    } else if let Some(c) = &args.max_concurrency {
        if args.arrival.is_some() || args.burstiness.is_some() {
            return Err(Usage(
                "--arrival and --burstiness shape an open loop: give --request_rate".into(),
            ));
        }
        parse_list::<u64>("max_concurrency", c, "a positive integer", "1,8,64")?
            .into_iter()
            .map(|concurrency| Shape::Closed { concurrency })
            .collect()
    } else {
        let sizes = args.batch_sizes.as_deref().unwrap_or("1,2,4,8");
        parse_list::<u64>("batch_sizes", sizes, "a positive integer", "1,2,4,8")?
            .into_iter()
            .map(|batch| Shape::Burst { batch })
            .collect()
    };
    if args.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
        return Err(Usage(
            "--model is empty: give the model tag the server serves".into(),
        ));
    }
    let num_runs = args.num_runs.unwrap_or(if sustained { 1 } else { 3 });
    if num_runs == 0 {
        return Err(Usage("--num_runs must be at least 1".into()));
    }
    if args.num_requests == Some(0) {
        return Err(Usage("--num_requests must be at least 1".into()));
    }
    if let Some(d) = args.duration.filter(|d| !positive(d)) {
        return Err(Usage(format!(
            "--duration {d} must be a positive number of seconds"
        )));
    }
    if !(args.warmup_seconds.is_finite() && args.warmup_seconds >= 0.0) {
        return Err(Usage(format!(
            "--warmup_seconds {} must be 0 or more",
            args.warmup_seconds
        )));
    }
    let at_end = AtEnd::parse(&args.at_end).unwrap_or_default();
    if at_end == AtEnd::Cancel && args.duration.is_none() {
        return Err(Usage("--at_end cancel needs --duration".into()));
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
    if args.tokenizer.is_some() && args.input_tokens.is_none() {
        return Err(Usage(
            "--tokenizer counts the tokens of --input_tokens prompts: give --input_tokens too"
                .into(),
        ));
    }
    let input_tokens = match &args.input_tokens {
        None => None,
        Some(spec) => {
            if args
                .dataset_key
                .as_deref()
                .is_some_and(|k| k != "synthetic")
            {
                return Err(Usage(
                    "--input_tokens makes synthetic prompts: it cannot be used with another --dataset_key".into(),
                ));
            }
            Some(TokenLength::parse(spec).map_err(|e| Usage(format!("--input_tokens: {e}")))?)
        }
    };
    let goodput = match &args.goodput {
        None => None,
        Some(g) => {
            let slo = Slo::parse(g).map_err(|e| Usage(format!("--goodput: {e}")))?;
            if slo.needs_stream() && !args.stream {
                return Err(Usage(
                    "--goodput ttft and tpot objectives need --stream (only a stream shows when tokens arrive)".into(),
                ));
            }
            Some(slo)
        }
    };
    args.server.validate().map_err(Usage)?;
    if args.n_cores == Some(0) {
        return Err(Usage("--n_cores must be at least 1".into()));
    }
    Ok(Plan {
        levels,
        limits: Limits {
            num_requests: args.num_requests,
            duration: args.duration.map(std::time::Duration::from_secs_f64),
            warmup: std::time::Duration::from_secs_f64(args.warmup_seconds),
            at_end,
        },
        num_runs,
        goodput,
        input_tokens,
    })
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
    live: Option<Live>,
}

impl Console {
    fn print(&self, text: &str) {
        match &self.live {
            Some(l) => l.print(text),
            None => println!("{}", text.strip_suffix('\n').unwrap_or(text)),
        }
    }
}

impl Observer for Console {
    fn level_started(&mut self, shape: &Shape) {
        self.print(&format!("\n=== {} ===", shape.title()));
        self.warned = false;
    }
    fn warmup_failed(&mut self, _key: &str, error: &tokenomics_client::Error) {
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
        self.print(&report::run_line(r));
    }
    fn level_finished(&mut self, key: &str, level: &ChatLevel) {
        self.print(&report::level_summary(key, level));
    }
}

/// "batch sizes [1, 2]", "concurrency [8, 64]" or "request rates [5, 10] requests/s (poisson)".
fn describe_levels(levels: &[Shape]) -> String {
    let keys: Vec<String> = levels.iter().map(Shape::key).collect();
    match levels.first() {
        Some(Shape::Open(o)) => format!(
            "open loop at {} requests/s ({} arrivals{})",
            keys.join(", "),
            o.arrival.name(),
            o.max_concurrency
                .map(|c| format!(", at most {c} in flight"))
                .unwrap_or_default()
        ),
        Some(Shape::Closed { .. }) => format!("closed loop at concurrency {}", keys.join(", ")),
        _ => format!("batch sizes {}", keys.join(", ")),
    }
}

/// Writes the CSV and Markdown tables asked for.
fn write_tables(args: &Args, doc: &ChatDocument) -> Result<(), cli::Failure> {
    let rows = report::rows(doc);
    for (path, text) in [
        (&args.csv_file, report::csv(&rows)),
        (&args.markdown_file, report::markdown(&rows)),
    ] {
        if let Some(path) = path {
            std::fs::write(path, text).map_err(|e| {
                cli::Failure::error(format!("cannot write {}: {e}", path.display()))
            })?;
            println!("Table saved to {}", path.display());
        }
    }
    Ok(())
}

async fn run(
    args: Args,
    plan: Plan,
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
        if args.server.simulate.is_some() || plan.input_tokens.is_some() {
            "synthetic".into()
        } else {
            "aime".into()
        }
    });
    let hub_config = HubConfig::from_env();
    let (prompts, note) = match plan.input_tokens {
        Some(length) => {
            let exact = exact_prompts(&args, &target, length, &hub_config).await?;
            (PromptSource::Exact(exact), None)
        }
        None => PromptSource::open(
            &dataset_key,
            args.dataset_split.as_deref(),
            args.dataset_column.as_deref(),
            &hub_config,
        )
        .await
        .map_err(|e| match e {
            // The Hub could not be reached and the cache does not have it: not the user's typing.
            tokenomics_datasets::Error::Hub(m) if m.contains("cannot be reached") => {
                cli::Failure::error(m)
            }
            e => cli::Failure::usage(e),
        })?,
    };
    if let Some(note) = note {
        eprintln!("{NAME}: note: {note}");
    }
    if let tokenomics_datasets::PromptSource::Rows { rows, .. } = &prompts {
        println!(
            "Dataset {dataset_key}: {} prompts{}",
            rows.len(),
            match prompts.describe()["source"]["commit"].as_str() {
                Some(c) => format!(" (commit {})", &c[..c.len().min(12)]),
                None => String::new(),
            }
        );
    }
    let batch_sizes = plan
        .levels
        .iter()
        .filter_map(|s| match s {
            Shape::Burst { batch } => Some(*batch),
            _ => None,
        })
        .collect();
    let config = ChatConfig {
        model: target.model.clone(),
        dataset_key,
        api_base: target.api_base.clone(),
        batch_sizes,
        num_runs: plan.num_runs,
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
        levels: plan.levels.clone(),
        limits: plan.limits,
        goodput: plan.goodput,
    };
    println!(
        "Benchmarking {:?} at {} — {}, {} run{} each, max_tokens {}, {}",
        config.model,
        config.api_base,
        describe_levels(&plan.levels),
        config.num_runs,
        if config.num_runs == 1 { "" } else { "s" },
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
    let live = (args.progress == "auto").then(|| {
        Live::start(
            bench.progress(),
            bench.clock(),
            std::io::stdout().is_terminal(),
        )
    });
    let mut console = Console {
        total_ok: 0,
        total_failed: 0,
        warned: false,
        interrupted: false,
        live,
    };
    bench.set_shutdown(shutdown);
    let doc = bench.run(&mut console).await;
    if let Some(live) = console.live.take() {
        live.finish();
    }
    let doc = doc.map_err(cli::Failure::error)?;
    console.interrupted = bench.interrupted();
    if !doc.results.is_empty() {
        println!(
            "\nSummary (latencies in ms; tok/s: output tokens per second; – where not measured)"
        );
        print!("{}", report::table(&report::rows(&doc)));
    }
    write_tables(&args, &doc)?;
    Ok((doc, console))
}

/// Token-exact synthetic prompts: lengths counted with `--tokenizer` (a file, or a Hub model's
/// tokenizer.json), else the server's tokenize endpoint, else estimated (and labelled so).
async fn exact_prompts(
    args: &Args,
    target: &cli::Target,
    length: TokenLength,
    hub: &HubConfig,
) -> Result<ExactPrompts, cli::Failure> {
    if let Some(t) = &args.tokenizer {
        let path = std::path::Path::new(t);
        let (path, detail) = if path.exists() {
            (path.to_path_buf(), path.display().to_string())
        } else if t.split('/').count() == 2 && !t.ends_with(".json") {
            let p = tokenomics_datasets::hub::model_tokenizer(t, hub)
                .await
                .map_err(cli::Failure::usage)?;
            (p, format!("hf:{t}"))
        } else {
            return Err(cli::Failure::usage(format!(
                "--tokenizer {t}: no such file, and not a Hub model id (OWNER/NAME)"
            )));
        };
        let counter = exact::local_counter(&path).map_err(cli::Failure::usage)?;
        let prompts =
            exact::with_tokenizer(length, counter, detail).map_err(cli::Failure::usage)?;
        println!("Prompt lengths: exact, counted with the tokenizer {t}");
        return Ok(prompts);
    }
    let found = tokenomics_bench::tokenize::Endpoint::find(
        &target.api_base,
        args.server.api_key.clone(),
        &target.model,
    )
    .await;
    match found {
        Ok(ep) => match tokenomics_bench::tokenize::endpoint_prompts(&ep, length).await {
            Ok(p) => {
                println!(
                    "Prompt lengths: exact, counted by the server's tokenizer at {}",
                    ep.url
                );
                return Ok(p);
            }
            Err(e) => eprintln!("{NAME}: warning: {e}"),
        },
        Err(e) => eprintln!("{NAME}: warning: {e}"),
    }
    eprintln!(
        "{NAME}: warning: prompt lengths are estimated ({} tokens per word); give --tokenizer for exact ones",
        exact::TOKENS_PER_WORD
    );
    Ok(ExactPrompts {
        length,
        lengths: exact::Lengths::Estimate,
    })
}

/// Open files a plan needs: one socket per request in flight (twice that with the simulator in
/// this process). An uncapped open loop has no known bound; it asks for a generous limit and
/// goes on with what it gets.
fn sockets_needed(args: &Args, plan: &Plan) -> (u64, bool) {
    let in_flight = plan
        .levels
        .iter()
        .map(|s| match s {
            Shape::Burst { batch } => *batch,
            Shape::Closed { concurrency } => *concurrency,
            Shape::Open(o) => o.max_concurrency.unwrap_or(65_536),
        })
        .max()
        .unwrap_or(1);
    let uncapped = plan
        .levels
        .iter()
        .any(|s| matches!(s, Shape::Open(o) if o.max_concurrency.is_none()));
    (args.server.sockets(in_flight) + 64, uncapped)
}

fn main() -> ExitCode {
    let args: Args = match cli::parse(NAME) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let plan = match validate(&args) {
        Ok(p) => p,
        Err(Usage(msg)) => return cli::fail(NAME, msg, exit::USAGE),
    };
    for (flag, path) in [
        ("--results_file", Some(&args.results_file)),
        ("--requests_file", args.requests_file.as_ref()),
        ("--csv_file", args.csv_file.as_ref()),
        ("--markdown_file", args.markdown_file.as_ref()),
    ] {
        if let Some(Err(e)) = path.map(|p| tokenomics_stats::check_writable(p)) {
            return cli::fail(NAME, format!("{flag}: {e}"), exit::USAGE);
        }
    }
    let (sockets, best_effort) = sockets_needed(&args, &plan);
    if let Err(e) = cli::ensure_open_files(sockets) {
        if !best_effort {
            return cli::fail(NAME, e, exit::USAGE);
        }
    }
    let n_cores = args.n_cores.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .on_thread_start(tokenomics_bench::sustained::keep_time)
        .worker_threads(n_cores)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return cli::fail(NAME, format!("cannot start the runtime: {e}"), exit::ERROR),
    };
    let results_file = args.results_file.clone();
    match runtime.block_on(run(args, plan, n_cores)) {
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
