//! `oai-bench`'s flags. Each value is checked by its parser (ranges, lists, enums); how the flags
//! go together is checked by the library ([`LoadFlags::plan`], [`PromptFlags::check`]).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Parser, ValueEnum};
use tokenomics_bench::adaptive::{self, ExperimentFlags};
use tokenomics_bench::conversation::{Conversations, ThinkTime};
use tokenomics_bench::load::{Arrival, AtEnd, Ramp};
use tokenomics_bench::metrics::Slo;
use tokenomics_bench::plan::LoadFlags;
use tokenomics_bench::prompts::PromptFlags;
use tokenomics_bench::server_metrics;
use tokenomics_bench::shard::Shard;
use tokenomics_bench::stages::Stages;
use tokenomics_cli::values::{self, MAX_CONCURRENCY, MAX_REQUESTS, MAX_RUNS, MAX_TOKENS};
use tokenomics_cli::ServerArgs;
use tokenomics_client::Endpoint;
use tokenomics_datasets::exact::TokenLength;
use tokenomics_datasets::trace::TraceFormat;
use tokenomics_stats::{Objective, SearchAxis, Spacing};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EndpointArg {
    Chat,
    Completions,
}

impl From<EndpointArg> for Endpoint {
    fn from(e: EndpointArg) -> Self {
        match e {
            EndpointArg::Chat => Endpoint::Chat,
            EndpointArg::Completions => Endpoint::Completions,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    /// Redrawn in place on a terminal, a plain line every 10 s otherwise.
    Auto,
    Never,
}

/// Measure tokens/s and latency of an OpenAI-compatible server under bursts of concurrent
/// chat requests, or a sustained closed or open loop. Drop-in for oai_server_benchmark.py: same
/// flags, same JSON.
#[derive(Debug, Parser)]
#[command(
    name = "oai-bench",
    version,
    after_help = "Exit codes: 0 success, 1 error, 2 bad usage, 3 some requests failed, 4 every request failed, 130 interrupted.\nUnderscore flags (--batch_sizes) and kebab-case aliases (--batch-sizes) are both accepted."
)]
pub struct Args {
    /// Model tag sent in each request (required unless --simulate is given).
    #[arg(long, required_unless_present = "simulate")]
    pub model: Option<String>,
    /// Prompt source: aime, hf:OWNER/NAME[@REVISION] (any Hugging Face Hub dataset), synthetic, file:PATH [default: aime; synthetic with --simulate].
    #[arg(long = "dataset_key", visible_alias = "dataset-key")]
    pub dataset_key: Option<String>,
    /// Synthetic prompts of an exact length in tokens: N, uniform:LO,HI or normal:MEAN,STD (counted with --tokenizer, else the server's tokenize endpoint, else estimated).
    #[arg(long = "input_tokens", visible_alias = "input-tokens")]
    pub input_tokens: Option<TokenLength>,
    /// With --input_tokens: the model's tokenizer, a tokenizer.json file or a Hub model id (OWNER/NAME).
    #[arg(long)]
    pub tokenizer: Option<String>,
    /// With --input_tokens: every prompt opens with one of --prefix_groups shared prefixes of exactly this many tokens, then its own suffix of --input_tokens tokens; each level records its expected and measured prefix-cache hit rate.
    #[arg(long = "shared_prefix_tokens", visible_alias = "shared-prefix-tokens", requires = "prefix_groups",
          value_parser = clap::value_parser!(u64).range(1..=tokenomics_datasets::exact::MAX_TOKENS))]
    pub shared_prefix_tokens: Option<u64>,
    /// With --shared_prefix_tokens: how many distinct prefixes; prompt i of a draw opens with prefix i mod G.
    #[arg(long = "prefix_groups", visible_alias = "prefix-groups", requires = "shared_prefix_tokens",
          value_parser = clap::value_parser!(u64).range(1..=tokenomics_datasets::exact::MAX_PREFIX_GROUPS))]
    pub prefix_groups: Option<u64>,
    /// With --shared_prefix_tokens, --trace or conversations: the server's KV-cache block size in tokens (vLLM's --block-size), for the expected hit rate: only whole blocks of a shared prefix are cached [default: 16].
    #[arg(long = "prefix_block_tokens", visible_alias = "prefix-block-tokens",
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub prefix_block_tokens: Option<u64>,
    /// Hub datasets: the split to read [default: train].
    #[arg(long = "dataset_split", visible_alias = "dataset-split")]
    pub dataset_split: Option<String>,
    /// Hub datasets: the column holding the prompt text, or a chat "messages" column [default: aime: Question; otherwise found by name].
    #[arg(long = "dataset_column", visible_alias = "dataset-column")]
    pub dataset_column: Option<String>,
    /// Burst mode: comma-separated batch sizes; each is one experiment of B requests at once [default: 1,2,4,8].
    #[arg(long = "batch_sizes", visible_alias = "batch-sizes", value_delimiter = ',', num_args = 1, action = clap::ArgAction::Set,
          value_parser = clap::value_parser!(u64).range(1..=MAX_CONCURRENCY))]
    pub batch_sizes: Option<Vec<u64>>,
    /// Closed loop: keep C requests in flight (comma-separated levels); with --request_rate, a single cap on requests in flight.
    #[arg(long = "max_concurrency", visible_alias = "max-concurrency", value_delimiter = ',', num_args = 1, action = clap::ArgAction::Set,
          value_parser = clap::value_parser!(u64).range(1..=MAX_CONCURRENCY))]
    pub max_concurrency: Option<Vec<u64>>,
    /// Open loop: send R requests per second on a seeded schedule (comma-separated levels).
    #[arg(long = "request_rate", visible_alias = "request-rate", value_delimiter = ',', num_args = 1, action = clap::ArgAction::Set,
          value_parser = values::rate)]
    pub request_rate: Option<Vec<f64>>,
    /// Open loop whose rate changes linearly: linear:FROM,TO,SECONDS (requests/s at the start and the end, and the level's length), one level; with --arrival, --burstiness and a --max_concurrency cap.
    #[arg(long, value_parser = ramp)]
    pub ramp: Option<Ramp>,
    /// One continuous load in stages, each a level: concurrency:C@SECONDS,… (closed loop) or rate:R@SECONDS,… (open loop, with --arrival, --burstiness and a --max_concurrency cap); nothing drains between stages.
    #[arg(long)]
    pub stages: Option<Stages>,
    /// Replay a request trace: Mooncake JSONL, an Azure LLM inference CSV or a BurstGPT CSV (detected from the first line); one open-loop level, each request at its trace time with exactly its input and output tokens.
    #[arg(long, value_name = "PATH")]
    pub trace: Option<PathBuf>,
    /// With --trace: its format, mooncake, azure or burstgpt [default: detected from the first line].
    #[arg(long = "trace_format", visible_alias = "trace-format", requires = "trace", value_parser = trace_format)]
    pub trace_format: Option<TraceFormat>,
    /// With --trace: trace seconds per real second (2 replays twice as fast, 0.5 at half speed).
    #[arg(long = "trace_time_scale", visible_alias = "trace-time-scale", requires = "trace", default_value = "1", value_parser = values::time_scale)]
    pub trace_time_scale: f64,
    /// With --trace: replay only the slice START,END, seconds from the trace's first request.
    #[arg(long = "trace_window", visible_alias = "trace-window", requires = "trace", value_name = "START,END", value_parser = trace_window)]
    pub trace_window: Option<(f64, f64)>,
    /// With --trace: tokens per Mooncake hash id (its block) [default: 512, the published traces'].
    #[arg(long = "trace_block_tokens", visible_alias = "trace-block-tokens", requires = "trace",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub trace_block_tokens: Option<u64>,
    /// With --trace: the model's context in tokens; rows whose input and output exceed it are skipped (and reported).
    #[arg(long = "trace_max_context", visible_alias = "trace-max-context", requires = "trace",
          value_parser = clap::value_parser!(u64).range(1..=tokenomics_datasets::exact::MAX_TOKENS))]
    pub trace_max_context: Option<u64>,
    /// Conversations: C users at once, each in a multi-turn session, a new one as one ends (comma-separated levels); every turn carries the history and the server's answers.
    #[arg(long, value_delimiter = ',', num_args = 1, action = clap::ArgAction::Set,
          value_parser = clap::value_parser!(u64).range(1..=MAX_CONCURRENCY))]
    pub sessions: Option<Vec<u64>>,
    /// Conversations: start R sessions per second on a seeded schedule (comma-separated levels; --arrival and --burstiness shape it).
    #[arg(long = "session_rate", visible_alias = "session-rate", value_delimiter = ',', num_args = 1, action = clap::ArgAction::Set,
          value_parser = values::rate)]
    pub session_rate: Option<Vec<f64>>,
    /// Conversations: user turns per session; each from the next prompt of a text source, or at most N of a dataset conversation's own [default: all of a dataset conversation's; a text source needs it].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(tokenomics_bench::conversation::MAX_TURNS)))]
    pub turns: Option<u32>,
    /// Conversations: time from an answer's end to the next turn, seconds: SECONDS, exp:MEAN or uniform:LO,HI [default: 0].
    #[arg(long = "think_time", visible_alias = "think-time")]
    pub think_time: Option<ThinkTime>,
    /// Conversations: sessions per level run [default: with --duration, as many as it allows; else 2 per user, or 10 s of arrivals, at least 4].
    #[arg(long = "num_sessions", visible_alias = "num-sessions",
          value_parser = clap::value_parser!(u64).range(1..=MAX_REQUESTS))]
    pub num_sessions: Option<u64>,
    /// Open loop: inter-arrival times [default: poisson; gamma when --burstiness is given].
    #[arg(long, value_enum)]
    pub arrival: Option<Arrival>,
    /// Open loop with gamma arrivals: the shape; below 1 burstier than Poisson, above 1 more regular.
    #[arg(long, value_parser = values::positive_number)]
    pub burstiness: Option<f64>,
    /// Closed/open loop: measured requests per level (after the warm-up) [default: 10 per unit of level, at least 20].
    #[arg(long = "num_requests", visible_alias = "num-requests",
          value_parser = clap::value_parser!(u64).range(1..=MAX_REQUESTS))]
    pub num_requests: Option<u64>,
    /// Closed/open loop: measured seconds per level (after the warm-up); no request is sent after it.
    #[arg(long, value_parser = values::positive_seconds)]
    pub duration: Option<Duration>,
    /// Closed/open loop: seconds of load at the level before measuring; those requests are not counted [default: 0].
    #[arg(long = "warmup_seconds", visible_alias = "warmup-seconds", value_parser = values::seconds)]
    pub warmup_seconds: Option<Duration>,
    /// With --duration: what happens to requests still in flight when it is over: wait (measured) or cancel (counted as cancelled) [default: wait].
    #[arg(long = "at_end", visible_alias = "at-end", value_enum)]
    pub at_end: Option<AtEnd>,
    /// Goodput objectives in milliseconds, e.g. ttft:500,tpot:50,e2el:10000 (ttft and tpot need --stream).
    #[arg(long)]
    pub goodput: Option<Slo>,
    /// Measured runs per level [default: 3 for bursts, 1 for closed and open loops].
    #[arg(long = "num_runs", visible_alias = "num-runs",
          value_parser = clap::value_parser!(u64).range(1..=MAX_RUNS))]
    pub num_runs: Option<u64>,
    /// Warm-up requests before each level (single requests, max_tokens 30, not recorded).
    #[arg(long = "warmup_runs", visible_alias = "warmup-runs", default_value_t = 3,
          value_parser = clap::value_parser!(u64).range(0..=MAX_RUNS))]
    pub warmup_runs: u64,
    /// Maximum tokens generated per request.
    #[arg(long = "max_tokens", visible_alias = "max-tokens", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=MAX_TOKENS))]
    pub max_tokens: u64,
    /// Sampling temperature (0 to 2).
    #[arg(long, default_value_t = 0.5, value_parser = values::temperature)]
    pub temperature: f64,
    /// Confidence level of the intervals in every level (throughput over runs, latency means and percentiles).
    #[arg(long, default_value = "0.95", value_parser = values::confidence)]
    pub confidence: f64,
    /// What one GPU of the server costs per hour, in dollars: every level gets its cost per million output tokens, output tokens/s per GPU and requests per GPU-hour.
    #[arg(long = "gpu_hour_cost", visible_alias = "gpu-hour-cost", value_parser = values::gpu_hour_cost)]
    pub gpu_hour_cost: Option<f64>,
    /// With --gpu_hour_cost: how many GPUs serve the model.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000_000), requires = "gpu_hour_cost")]
    pub gpus: u64,
    /// With --gpu_hour_cost: the share of the GPUs' time charged to input (prompt) tokens, 0 to 0.99, for a price per million input tokens too [default: none; output tokens carry it all].
    #[arg(long = "input_cost_share", visible_alias = "input-cost-share", value_parser = values::cost_share, requires = "gpu_hour_cost")]
    pub input_cost_share: Option<f64>,
    /// Prompt sampling seed (each run derives its own from it).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Client worker threads [default: half the CPUs].
    #[arg(long = "n_cores", visible_alias = "n-cores", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub n_cores: Option<u16>,
    /// Free text stored in the metadata and used as the plot title.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Output JSON path (written after every level).
    #[arg(
        long = "results_file",
        visible_alias = "results-file",
        default_value = "async_benchmark_results.json"
    )]
    pub results_file: PathBuf,
    /// Also write one JSON line per request here (timestamps, tokens, outcome), after every run.
    #[arg(long = "requests_file", visible_alias = "requests-file")]
    pub requests_file: Option<PathBuf>,
    /// With --requests_file and --stream: also record when every token arrived (`token_s` in each line).
    #[arg(long = "token_times", visible_alias = "token-times")]
    pub token_times: bool,
    /// Closed/open loop: rewrite the results file this often (seconds) with the level so far, marked incomplete.
    #[arg(long = "snapshot_every", visible_alias = "snapshot-every", value_parser = values::positive_seconds)]
    pub snapshot_every: Option<Duration>,
    /// Sharded load: this process is shard I of N (e.g. 0/4) of one run and sends its part of the global plan; needs --results_dir [default: from JOB_COMPLETION_INDEX and TOKENOMICS_SHARDS, or SLURM_PROCID and SLURM_NTASKS, when --results_dir is given].
    #[arg(long, value_parser = shard)]
    pub shard: Option<Shard>,
    /// Start the first run at this Unix time (seconds); later runs follow on a timetable of --warmup_seconds + --duration + --run_gap each (needs --duration, but for a --trace, which lasts its span, and --stages, which last their stages). Every shard of a run is given the same.
    #[arg(long = "start_at", visible_alias = "start-at", value_parser = unix_time)]
    pub start_at: Option<SystemTime>,
    /// With --start_at: seconds between a timed run's end and the next run's start on the timetable.
    #[arg(long = "run_gap", visible_alias = "run-gap", default_value = "10", value_parser = values::seconds)]
    pub run_gap: Duration,
    /// Write this shard's results and per-request records (with token times when streaming) to DIR/shard-I-of-N.json and .jsonl, for tokenomics-merge (instead of --results_file and --requests_file).
    #[arg(
        long = "results_dir",
        visible_alias = "results-dir",
        conflicts_with_all = ["requests_file", "results_file"]
    )]
    pub results_dir: Option<PathBuf>,
    /// Also write the per-level summary table as CSV here.
    #[arg(long = "csv_file", visible_alias = "csv-file")]
    pub csv_file: Option<PathBuf>,
    /// Also write the per-level summary table as Markdown here.
    #[arg(long = "markdown_file", visible_alias = "markdown-file")]
    pub markdown_file: Option<PathBuf>,
    /// The server's Prometheus metrics, scraped during the run for every level's server_metrics block: auto (each API base's origin + /metrics; skipped with a note when absent), a URL (several, comma-separated, with several endpoints: their counts add up), or off.
    #[arg(long = "server_metrics", visible_alias = "server-metrics", default_value = "auto", value_parser = server_metrics)]
    pub server_metrics: server_metrics::Source,
    /// Seconds between two scrapes of --server_metrics (each level's start and end are scraped too).
    #[arg(long = "scrape_interval", visible_alias = "scrape-interval", default_value = "1", value_parser = scrape_interval)]
    pub scrape_interval: Duration,
    /// Also write every scrape of --server_metrics here as a JSON line (t_s on the run's clock, every sample).
    #[arg(long = "server_metrics_file", visible_alias = "server-metrics-file")]
    pub server_metrics_file: Option<PathBuf>,
    /// Every level's timeline (sends, completions, in flight, output tokens, TTFT p50/p99, errors and the scraped server gauges) in buckets this many seconds wide, in the results file for plot-throughput --timeline; 0 for none.
    #[arg(long = "timeline_interval", visible_alias = "timeline-interval", default_value = "1", value_parser = values::seconds)]
    pub timeline_interval: Duration,
    /// Closed/open loop: abort this share of requests (0 to 1, a seeded choice) --cancel_after milliseconds after each is sent, when it has not finished by then; counted apart as aborted (the server's abort path under load).
    #[arg(long = "cancel_rate", visible_alias = "cancel-rate", value_parser = values::share, requires = "cancel_after")]
    pub cancel_rate: Option<f64>,
    /// With --cancel_rate: milliseconds after its send at which a picked request is aborted.
    #[arg(long = "cancel_after", visible_alias = "cancel-after", value_parser = positive_milliseconds, requires = "cancel_rate")]
    pub cancel_after: Option<Duration>,
    /// Closed/open loop: also send R small probe requests per second (one output token each, Poisson arrivals) beside the load, outside any concurrency cap; each level's probes block says how the load delays a newcomer.
    #[arg(long = "probe_rate", visible_alias = "probe-rate", value_parser = values::rate)]
    pub probe_rate: Option<f64>,
    /// Live progress: auto (redrawn on a terminal, a line every 10 s otherwise), or never.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressArg,
    /// Stream every request and report TTFT, inter-token latency, TPOT and end-to-end latency.
    #[arg(long)]
    pub stream: bool,
    /// Make every request generate exactly --max_tokens (sends ignore_eos and min_tokens, which vLLM and SGLang honour).
    #[arg(long = "ignore_eos", visible_alias = "ignore-eos")]
    pub ignore_eos: bool,
    /// Sweep: measure concurrency 1 and saturation, then open-loop rates between them; stops early when the server falls behind.
    #[arg(long)]
    pub sweep: bool,
    /// Open-loop rates of a sweep, both end points included [default: 5].
    #[arg(long = "sweep_points", visible_alias = "sweep-points", value_parser = clap::value_parser!(u64).range(2..=100))]
    pub sweep_points: Option<u64>,
    /// How a sweep spaces its rates [default: linear].
    #[arg(long = "sweep_spacing", visible_alias = "sweep-spacing", value_enum)]
    pub sweep_spacing: Option<SpacingArg>,
    /// A sweep's top rate in requests/s, instead of measuring saturation with a closed loop.
    #[arg(long = "sweep_max", visible_alias = "sweep-max", value_parser = values::rate)]
    pub sweep_max: Option<f64>,
    /// Start a rate search from the simulator preset's predicted saturation rate (see oai-sim --describe).
    #[arg(
        long = "sweep_from_sim",
        visible_alias = "sweep-from-sim",
        value_name = "PRESET",
        requires = "slo"
    )]
    pub sweep_from_sim: Option<String>,
    /// SLO search: find the highest load at which every objective holds, e.g. ttft_p99:500,tpot_p99:50 (ms; mean, median, p50, p90, p95, p99, p99.9 of ttft, tpot, itl, e2el).
    #[arg(long, value_parser = objectives)]
    pub slo: Option<Objectives>,
    /// With --slo: the least share of requests that must meet every threshold at once (0–1).
    #[arg(long = "slo_attainment", visible_alias = "slo-attainment", value_parser = values::share)]
    pub slo_attainment: Option<f64>,
    /// With --slo: vary the open-loop rate or the closed-loop concurrency [default: rate].
    #[arg(long = "slo_search", visible_alias = "slo-search", value_enum)]
    pub slo_search: Option<AxisArg>,
    /// With --slo: stop when the lowest failing load is within this share above the highest passing one [default: 0.05].
    #[arg(long = "slo_tolerance", visible_alias = "slo-tolerance", value_parser = values::share)]
    pub slo_tolerance: Option<f64>,
    /// With --slo: the most probes a search runs [default: 16].
    #[arg(long = "slo_max_probes", visible_alias = "slo-max-probes", value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub slo_max_probes: Option<u64>,
    /// A sweep stops, and an SLO probe fails, when more than this share of requests fail [default: 0.01].
    #[arg(long = "max_error_rate", visible_alias = "max-error-rate", value_parser = values::share_or_zero)]
    pub max_error_rate: Option<f64>,
    /// Generation route: chat (/chat/completions) or completions (/completions).
    #[arg(long, value_enum, default_value = "chat")]
    pub endpoint: EndpointArg,
    #[command(flatten)]
    pub server: ServerArgs,
}

impl Args {
    pub fn load(&self) -> LoadFlags {
        LoadFlags {
            batch_sizes: self.batch_sizes.clone(),
            max_concurrency: self.max_concurrency.clone(),
            request_rate: self.request_rate.clone(),
            ramp: self.ramp,
            // Set once the trace is read (its requests and span).
            trace: None,
            sessions: self.sessions.clone(),
            session_rate: self.session_rate.clone(),
            stages: self.stages.clone(),
            arrival: self.arrival,
            burstiness: self.burstiness,
            num_requests: self.num_requests,
            duration: self.duration,
            warmup: self.warmup_seconds,
            at_end: self.at_end,
            num_runs: self.num_runs,
            snapshot_every: self.snapshot_every,
            experiment: ExperimentFlags {
                sweep: self.sweep,
                sweep_points: self.sweep_points,
                sweep_spacing: self.sweep_spacing.map(Into::into),
                sweep_max: self.sweep_max,
                slo: self.slo.as_ref().map(|o| o.0.clone()),
                slo_attainment: self.slo_attainment,
                slo_search: self.slo_search.map(Into::into),
                slo_tolerance: self.slo_tolerance,
                slo_max_probes: self.slo_max_probes,
                max_error_rate: self.max_error_rate,
                predicted_start: None,
                predicted_saturation: None,
            },
            confidence: Some(self.confidence),
        }
    }

    /// Conversations as the flags ask for them (`None`: single-turn requests). `--turns`,
    /// `--think_time` and `--num_sessions` need `--sessions` or `--session_rate`.
    pub fn conversation(&self) -> Result<Option<Conversations>, String> {
        let levels = self.sessions.is_some() || self.session_rate.is_some();
        if !levels {
            for (flag, given) in [
                ("--turns", self.turns.is_some()),
                ("--think_time", self.think_time.is_some()),
                ("--num_sessions", self.num_sessions.is_some()),
            ] {
                if given {
                    return Err(format!(
                        "{flag} shapes conversations: give --sessions C (concurrent users) or --session_rate R"
                    ));
                }
            }
            return Ok(None);
        }
        Ok(Some(Conversations {
            turns: self.turns,
            think_time: self.think_time.unwrap_or_default(),
            sessions_per_run: self.num_sessions,
            block_tokens: self
                .prefix_block_tokens
                .unwrap_or(crate::DEFAULT_PREFIX_BLOCK_TOKENS),
        }))
    }

    pub fn prompts(&self) -> PromptFlags {
        PromptFlags {
            dataset_key: self.dataset_key.clone(),
            dataset_split: self.dataset_split.clone(),
            dataset_column: self.dataset_column.clone(),
            input_tokens: self.input_tokens,
            tokenizer: self.tokenizer.clone(),
            shared_prefix_tokens: self.shared_prefix_tokens,
            prefix_groups: self.prefix_groups,
            seed: self.seed,
        }
    }

    /// The output files given, with their flags.
    pub fn outputs(&self) -> Vec<(&'static str, &PathBuf)> {
        [
            ("--results_file", Some(&self.results_file)),
            ("--requests_file", self.requests_file.as_ref()),
            ("--csv_file", self.csv_file.as_ref()),
            ("--markdown_file", self.markdown_file.as_ref()),
            ("--server_metrics_file", self.server_metrics_file.as_ref()),
        ]
        .into_iter()
        .filter_map(|(flag, path)| path.map(|p| (flag, p)))
        .collect()
    }
}

/// `--slo`'s objectives (one value, not a list of values to clap).
#[derive(Debug, Clone)]
pub struct Objectives(pub Vec<Objective>);

fn objectives(s: &str) -> Result<Objectives, String> {
    adaptive::parse_objectives(s)
        .map(Objectives)
        .map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SpacingArg {
    Linear,
    Geometric,
}

impl From<SpacingArg> for Spacing {
    fn from(s: SpacingArg) -> Self {
        match s {
            SpacingArg::Linear => Spacing::Linear,
            SpacingArg::Geometric => Spacing::Geometric,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AxisArg {
    Rate,
    Concurrency,
}

impl From<AxisArg> for SearchAxis {
    fn from(a: AxisArg) -> Self {
        match a {
            AxisArg::Rate => SearchAxis::Rate,
            AxisArg::Concurrency => SearchAxis::Concurrency,
        }
    }
}

/// `--server_metrics auto|off|URL`.
fn server_metrics(s: &str) -> Result<server_metrics::Source, String> {
    s.parse()
        .map_err(|e: tokenomics_bench::Error| e.to_string())
}

/// `--scrape_interval SECONDS`, from [`server_metrics::MIN_INTERVAL_S`] to
/// [`server_metrics::MAX_INTERVAL_S`].
fn scrape_interval(s: &str) -> Result<Duration, String> {
    let (lo, hi) = (
        server_metrics::MIN_INTERVAL_S,
        server_metrics::MAX_INTERVAL_S,
    );
    let bad = || format!("expected a number of seconds from {lo} to {hi}");
    let x: f64 = s.trim().parse().map_err(|_| bad())?;
    if !(lo..=hi).contains(&x) {
        return Err(bad());
    }
    Duration::try_from_secs_f64(x).map_err(|_| bad())
}

/// `--cancel_after MS`: above 0 (an abort at 0 would come before the request left).
fn positive_milliseconds(s: &str) -> Result<Duration, String> {
    match values::milliseconds(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("expected a number of milliseconds above 0".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// `--trace_format`.
fn trace_format(s: &str) -> Result<TraceFormat, String> {
    s.parse()
        .map_err(|e: tokenomics_datasets::Error| e.to_string())
}

/// `--trace_window START,END`: seconds from the trace's first request, 0 ≤ START < END.
fn trace_window(s: &str) -> Result<(f64, f64), String> {
    let bad = || format!("{s:?}: expected START,END in seconds with 0 ≤ START < END, e.g. 60,120");
    let (a, b) = s.split_once(',').ok_or_else(bad)?;
    let (a, b): (f64, f64) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if !(a.is_finite() && b.is_finite() && a >= 0.0 && b > a && b <= values::MAX_SECONDS) {
        return Err(bad());
    }
    Ok((a, b))
}

/// `--ramp linear:FROM,TO,SECONDS`.
fn ramp(s: &str) -> Result<Ramp, String> {
    s.parse()
        .map_err(|e: tokenomics_bench::Error| e.to_string())
}

/// `--shard I/N`.
fn shard(s: &str) -> Result<Shard, String> {
    s.parse()
        .map_err(|e: tokenomics_bench::Error| e.to_string())
}

/// `--start_at UNIX_SECONDS`.
fn unix_time(s: &str) -> Result<SystemTime, String> {
    tokenomics_bench::shard::unix_time(s).map_err(|e| e.to_string())
}
