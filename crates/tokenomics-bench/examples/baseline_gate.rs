//! A CI gate: a short closed-loop benchmark compared with a stored baseline; the exit code says
//! whether the server regressed.
//!
//! ```text
//! cargo run --release -p tokenomics-bench --example baseline_gate -- \
//!     [--api_base URL --model NAME] [--baseline FILE] [--write_baseline] \
//!     [--max_throughput_drop 0.2] [--max_ttft_rise 0.5]
//! ```
//!
//! Without `--api_base` it starts the simulator in-process (20 ms to the first token, 2 ms per
//! token), so it runs offline. The baseline file (default: `baseline_gate.json` beside this
//! example) holds the workload and the figures it gave: output tokens/s and the median time to
//! first token. The gate runs the same workload and fails when output tokens/s fell by more than
//! `--max_throughput_drop` (a fraction) or the TTFT p50 rose by more than `--max_ttft_rise`.
//! `--write_baseline` measures and stores a new baseline instead of comparing.
//!
//! Exit codes: 0 within the thresholds, 1 a regression, 2 a usage error or a failed run.

use std::path::PathBuf;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use tokenomics_bench::ChatExperiment;
use tokenomics_sim::{SimConfig, Simulator};

/// The stored baseline: the workload, and what it measured.
#[derive(Debug, Serialize, Deserialize)]
struct Baseline {
    /// Requests kept in flight.
    concurrency: u64,
    /// Measured requests.
    num_requests: u64,
    /// Output tokens asked for per request (forced with `ignore_eos`).
    max_tokens: u64,
    /// The level's output tokens per second (completion tokens / its run time).
    output_tokens_per_second: f64,
    /// Median time to first token, seconds.
    ttft_p50_seconds: f64,
}

struct Args {
    api_base: Option<String>,
    model: Option<String>,
    baseline: PathBuf,
    write_baseline: bool,
    max_throughput_drop: f64,
    max_ttft_rise: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        api_base: None,
        model: None,
        baseline: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/baseline_gate.json"),
        write_baseline: false,
        max_throughput_drop: 0.2,
        max_ttft_rise: 0.5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let fraction = |v: String| match v.parse::<f64>() {
            Ok(f) if f.is_finite() && f >= 0.0 => Ok(f),
            _ => Err(format!(
                "{flag} {v}: give a fraction of 0 or more, e.g. 0.2"
            )),
        };
        match flag.as_str() {
            "--api_base" => args.api_base = Some(value()?),
            "--model" => args.model = Some(value()?),
            "--baseline" => args.baseline = PathBuf::from(value()?),
            "--write_baseline" => args.write_baseline = true,
            "--max_throughput_drop" => args.max_throughput_drop = fraction(value()?)?,
            "--max_ttft_rise" => args.max_ttft_rise = fraction(value()?)?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if args.api_base.is_some() != args.model.is_some() {
        return Err("give --api_base and --model together (or neither, for the simulator)".into());
    }
    Ok(args)
}

/// The workload of a new baseline.
const DEFAULT_WORKLOAD: Baseline = Baseline {
    concurrency: 4,
    num_requests: 40,
    max_tokens: 32,
    output_tokens_per_second: f64::NAN,
    ttft_p50_seconds: f64::NAN,
};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match gate().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("baseline_gate: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the gate: `Ok(false)` on a regression.
async fn gate() -> Result<bool, Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let stored: Option<Baseline> = if args.write_baseline {
        None
    } else {
        Some(
            tokenomics_stats::read_json(&args.baseline)
                .map_err(|e| format!("baseline {}: {e}", args.baseline.display()))?,
        )
    };
    let workload = stored.as_ref().unwrap_or(&DEFAULT_WORKLOAD);

    // The server: the one given, or a simulator on a free loopback port for as long as we run.
    let (api_base, model, _simulator) = match (args.api_base, args.model) {
        (Some(url), Some(model)) => (url, model, None),
        _ => {
            let config = SimConfig::preset("instant")?.with_fixed_schedule(0.020, 0.002);
            let (server, sim) = Simulator::start(config, ([127, 0, 0, 1], 0).into()).await?;
            (
                server.api_base(),
                sim.served_model().to_string(),
                Some(server),
            )
        }
    };

    let doc = ChatExperiment::builder(&api_base, &model)
        .closed_loop([workload.concurrency])
        .num_requests(workload.num_requests)
        .max_tokens(workload.max_tokens)
        .extra_body_field("ignore_eos", true.into())
        .temperature(0.0)
        .stream(true)
        .description("baseline_gate")
        .build()?
        .run()
        .await?;

    let key = workload.concurrency.to_string();
    let level = doc
        .results
        .get(&key)
        .ok_or(format!("the result has no level {key}"))?;
    let failed = level.requests.as_ref().map_or(0, |r| r.failed);
    if failed > 0 {
        return Err(format!("{failed} requests failed against {api_base}").into());
    }
    let measured = Baseline {
        output_tokens_per_second: level.throughput.batch_tokens_per_second.mean,
        ttft_p50_seconds: level
            .latency
            .as_ref()
            .ok_or("a streamed level without latencies")?
            .ttft
            .p50,
        ..*workload
    };
    println!(
        "measured at concurrency {}: {:.1} output tokens/s, TTFT p50 {:.1} ms",
        measured.concurrency,
        measured.output_tokens_per_second,
        measured.ttft_p50_seconds * 1e3
    );

    let Some(baseline) = stored else {
        tokenomics_stats::write_json_atomic(&args.baseline, &measured)?;
        println!("baseline written to {}", args.baseline.display());
        return Ok(true);
    };
    let throughput_floor = baseline.output_tokens_per_second * (1.0 - args.max_throughput_drop);
    let ttft_ceiling = baseline.ttft_p50_seconds * (1.0 + args.max_ttft_rise);
    let mut passed = true;
    // A NaN figure (nothing measured) fails both comparisons, as it should.
    let throughput_ok = measured.output_tokens_per_second >= throughput_floor;
    let ttft_ok = measured.ttft_p50_seconds <= ttft_ceiling;
    if !throughput_ok {
        println!(
            "REGRESSION: output tokens/s {:.1} is below {:.1} (baseline {:.1} less {:.0}%)",
            measured.output_tokens_per_second,
            throughput_floor,
            baseline.output_tokens_per_second,
            args.max_throughput_drop * 100.0
        );
        passed = false;
    }
    if !ttft_ok {
        println!(
            "REGRESSION: TTFT p50 {:.1} ms is above {:.1} ms (baseline {:.1} ms plus {:.0}%)",
            measured.ttft_p50_seconds * 1e3,
            ttft_ceiling * 1e3,
            baseline.ttft_p50_seconds * 1e3,
            args.max_ttft_rise * 100.0
        );
        passed = false;
    }
    if passed {
        println!(
            "within the baseline: output tokens/s ≥ {throughput_floor:.1}, TTFT p50 ≤ {:.1} ms",
            ttft_ceiling * 1e3
        );
    }
    Ok(passed)
}
