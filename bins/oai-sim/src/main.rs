//! `oai-sim`: serve a simulated OpenAI-compatible server. Argument parsing and printing only; the
//! simulator is `tokenomics-sim`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokenomics_cli::{self as cli, exit, values};
use tokenomics_sim::{prefix, preset};
use tokenomics_sim::{SimConfig, Simulator, MAX_SLOTS};

const NAME: &str = "oai-sim";

/// The longest padding line (--event_padding_bytes): 64 MiB, the client's bound on a line.
const MAX_PADDING: i64 = 64 << 20;
/// The longest embedding vector served (a JSON body of about 0.5 MiB per input).
const MAX_EMBEDDING_DIM: u64 = 65_536;

/// The longest prompt or output of a --describe what-if: 16M tokens, above any context length.
const MAX_TOKENS: u64 = 1 << 24;

/// A simulated OpenAI-compatible inference server: continuous batching on a roofline model of a
/// named GPU and model, with vLLM's metric names and a truth log of every token it sent.
#[derive(Debug, Parser)]
#[command(
    name = "oai-sim",
    version,
    after_help = "Exit codes: 0 success (stopped with Ctrl-C), 1 error (e.g. the port is taken), 2 bad usage."
)]
struct Args {
    /// The preset to serve (see --list).
    #[arg(long, default_value = "h100-llama-3.1-8b")]
    preset: String,
    /// Address to listen on (an IP address; 0.0.0.0 for every interface).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0: a free port, printed at start-up).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Model id to serve [default: the preset's].
    #[arg(long = "model", visible_alias = "served-model-name")]
    model: Option<String>,
    /// Model seconds per real second (10 runs the model ten times faster than real time).
    #[arg(
        long = "time_scale",
        visible_alias = "time-scale",
        default_value = "1",
        value_parser = values::time_scale
    )]
    time_scale: f64,
    /// Seed of the output-length draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Mean output length of requests that do not force max_tokens [default: the preset's].
    #[arg(long = "mean_output_tokens", visible_alias = "mean-output-tokens", value_parser = values::positive_number)]
    mean_output_tokens: Option<f64>,
    /// Send an SSE comment line of this many bytes before every streamed token (to test clients with huge lines).
    #[arg(
        long = "event_padding_bytes",
        visible_alias = "event-padding-bytes",
        default_value_t = 0,
        value_parser = clap::value_parser!(u32).range(0..=MAX_PADDING)
    )]
    event_padding_bytes: u32,
    /// Length of the vectors /v1/embeddings returns [default: the preset's].
    #[arg(
        long = "embedding_dim",
        visible_alias = "embedding-dim",
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..=MAX_EMBEDDING_DIM)
    )]
    embedding_dim: Option<u64>,
    /// Keep the truth log, served at GET /sim/trace as JSON Lines.
    #[arg(long)]
    trace: bool,
    /// Serve a fixed schedule instead of the preset's engine: milliseconds to the first token.
    #[arg(long = "ttft_ms", visible_alias = "ttft-ms", value_parser = values::milliseconds)]
    ttft_ms: Option<Duration>,
    /// With --ttft_ms: milliseconds between tokens.
    #[arg(long = "itl_ms", visible_alias = "itl-ms", default_value = "10", value_parser = values::milliseconds)]
    itl_ms: Duration,
    /// At most N requests served at once, the others waiting first come, first served: a fixed schedule gets N slots (a request's schedule starts when it gets one); an engine runs at most N sequences (its max_num_seqs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=MAX_SLOTS))]
    slots: Option<u64>,
    /// Tokens per KV-cache block, the unit of the engine's prefix caching (vLLM's --block-size).
    #[arg(
        long = "block_tokens",
        visible_alias = "block-tokens",
        value_name = "N",
        default_value_t = prefix::DEFAULT_BLOCK_TOKENS,
        value_parser = clap::value_parser!(u64).range(1..=prefix::MAX_BLOCK_TOKENS)
    )]
    block_tokens: u64,
    /// Turn the engine's automatic prefix caching off (on by default, as in vLLM V1).
    #[arg(long = "no_prefix_caching", visible_alias = "no-prefix-caching")]
    no_prefix_caching: bool,
    /// Print the arithmetic behind a preset, its price and a what-if for one workload, and exit.
    #[arg(long, value_name = "PRESET")]
    describe: Option<String>,
    /// With --describe: prompt tokens per request of the what-if.
    #[arg(
        long = "input_tokens",
        visible_alias = "input-tokens",
        value_name = "N",
        requires = "describe",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u64).range(1..=MAX_TOKENS)
    )]
    input_tokens: u64,
    /// With --describe: output tokens per request of the what-if.
    #[arg(
        long = "output_tokens",
        visible_alias = "output-tokens",
        value_name = "N",
        requires = "describe",
        default_value_t = 200,
        value_parser = clap::value_parser!(u64).range(1..=MAX_TOKENS)
    )]
    output_tokens: u64,
    /// List the presets and their prices and exit.
    #[arg(long)]
    list: bool,
}

fn main() -> ExitCode {
    let args: Args = match cli::parse(NAME) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if args.list {
        cli::out!("{}", preset::list().trim_end_matches('\n'));
        return ExitCode::SUCCESS;
    }
    let name = args.describe.as_deref().unwrap_or(&args.preset);
    let mut config = match SimConfig::preset(name) {
        Ok(c) => c,
        Err(e) => return cli::fail(NAME, e, exit::USAGE),
    };
    if let Some(ttft) = args.ttft_ms {
        config = config.with_fixed_schedule(ttft.as_secs_f64(), args.itl_ms.as_secs_f64());
    }
    config.max_running = args.slots;
    config.block_tokens = args.block_tokens;
    config.prefix_caching = !args.no_prefix_caching;
    config.served_model = args.model.clone();
    config.time_scale = args.time_scale;
    config.seed = args.seed;
    config.trace = args.trace;
    config.mean_output_tokens = args.mean_output_tokens;
    config.event_padding_bytes = args.event_padding_bytes as usize;
    if let Some(dim) = args.embedding_dim {
        config.preset.embedding_dim = dim as usize;
    }
    if args.describe.is_some() {
        let text = config.describe(args.input_tokens, args.output_tokens);
        cli::out!("{}", text.trim_end_matches('\n'));
        return ExitCode::SUCCESS;
    }
    let addr = match args.host.parse::<std::net::IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, args.port),
        Err(_) => {
            let msg = format!("--host {:?} is not an IP address", args.host);
            return cli::fail(NAME, msg, exit::USAGE);
        }
    };
    // A server takes as many connections as clients open: allow as many files as the system does.
    let _ = cli::ensure_open_files(65_536);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = match cli::runtime(threads, None) {
        Ok(rt) => rt,
        Err(e) => return cli::fail_with(NAME, e.into()),
    };
    runtime.block_on(async move {
        let preset = config.preset.name;
        match Simulator::start(config, addr).await {
            Ok((server, sim)) => {
                cli::out!(
                    "oai-sim: preset {preset}, serving model {:?} at {} (Ctrl-C to stop)",
                    sim.served_model(),
                    server.api_base()
                );
                let _ = tokio::signal::ctrl_c().await;
                server.shutdown().await;
                ExitCode::SUCCESS
            }
            Err(e) => cli::fail(NAME, e, exit::ERROR),
        }
    })
}
