//! `oai-sim`: serve a simulated OpenAI-compatible server. Argument parsing and printing only; the
//! simulator is `tokenomics-sim`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokenomics_cli::{self as cli, exit, values};
use tokenomics_sim::preset::{self, Behaviour};
use tokenomics_sim::{SimConfig, Simulator};

const NAME: &str = "oai-sim";

/// The longest padding line (--event_padding_bytes): 64 MiB, the client's bound on a line.
const MAX_PADDING: i64 = 64 << 20;

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
    /// Keep the truth log, served at GET /sim/trace as JSON Lines.
    #[arg(long)]
    trace: bool,
    /// Serve a fixed schedule instead of the preset's engine: milliseconds to the first token.
    #[arg(long = "ttft_ms", visible_alias = "ttft-ms", value_parser = values::milliseconds)]
    ttft_ms: Option<Duration>,
    /// With --ttft_ms: milliseconds between tokens.
    #[arg(long = "itl_ms", visible_alias = "itl-ms", default_value = "10", value_parser = values::milliseconds)]
    itl_ms: Duration,
    /// Print the arithmetic behind a preset and exit.
    #[arg(long, value_name = "PRESET")]
    describe: Option<String>,
    /// List the presets and exit.
    #[arg(long)]
    list: bool,
}

fn describe(name: &str) -> Result<String, String> {
    let p = preset::preset(name).ok_or_else(|| {
        format!(
            "unknown preset {name:?}; presets: {}",
            preset::preset_names()
        )
    })?;
    let mut s = format!(
        "{} — {}\nserved model: {}\n",
        p.name, p.summary, p.served_model
    );
    match &p.behaviour {
        Behaviour::Engine(e) => s.push_str(&e.describe()),
        Behaviour::Fixed { ttft_s, itl_s } => s.push_str(&format!(
            "fixed schedule: first token {:.1} ms after arrival, then one every {:.1} ms, for every request however many run at once\n",
            ttft_s * 1e3,
            itl_s * 1e3
        )),
        Behaviour::Instant => s.push_str("no delays: every token is written as fast as the connection takes it\n"),
    }
    s.push_str(&format!(
        "output length: max_tokens when ignore_eos/min_tokens force it, else a seeded Gamma draw with mean {} (capped at max_tokens)\n",
        p.mean_output_tokens
    ));
    Ok(s)
}

fn main() -> ExitCode {
    let args: Args = match cli::parse(NAME) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if args.list {
        for p in preset::presets() {
            cli::out!("{:<22} {}", p.name, p.summary);
        }
        return ExitCode::SUCCESS;
    }
    if let Some(name) = &args.describe {
        return match describe(name) {
            Ok(s) => {
                cli::out!("{}", s.trim_end_matches('\n'));
                ExitCode::SUCCESS
            }
            Err(e) => cli::fail(NAME, e, exit::USAGE),
        };
    }
    let mut config = match SimConfig::preset(&args.preset) {
        Ok(c) => c,
        Err(e) => return cli::fail(NAME, e, exit::USAGE),
    };
    if let Some(ttft) = args.ttft_ms {
        config.preset.behaviour = Behaviour::Fixed {
            ttft_s: ttft.as_secs_f64(),
            itl_s: args.itl_ms.as_secs_f64(),
        };
    }
    config.served_model = args.model.clone();
    config.time_scale = args.time_scale;
    config.seed = args.seed;
    config.trace = args.trace;
    config.mean_output_tokens = args.mean_output_tokens;
    config.event_padding_bytes = args.event_padding_bytes as usize;
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
