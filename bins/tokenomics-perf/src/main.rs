//! `tokenomics-perf`: how much the benchmark client itself costs.
//!
//! Starts `oai-sim --preset instant` (no delays: whatever time passes is the client's and the
//! connection's) as one process, then runs `oai-bench` as another for each scenario, and reads the
//! client process's own CPU time and peak memory from `wait4` — the simulator's CPU is not
//! counted. Prints, per scenario: client CPU seconds (user + system), CPU microseconds per
//! streamed token, tokens/s and requests/s during the load, peak resident memory, and memory per
//! in-flight stream (peak over the single-stream baseline, divided by the concurrency).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::Value;
use tokenomics_bench::cli::{self, exit};

const NAME: &str = "tokenomics-perf";

/// Measure the client's CPU per streamed token and memory per stream against oai-sim.
#[derive(Debug, Parser)]
#[command(name = "tokenomics-perf", version)]
struct Args {
    /// Smaller scenarios (up to 512 streams), for a quick look.
    #[arg(long)]
    quick: bool,
    /// Client worker threads for oai-bench (the simulator gets the rest of the machine).
    #[arg(long = "n_cores", default_value_t = 1)]
    n_cores: u32,
    /// Port for the simulator.
    #[arg(long, default_value_t = 18_555)]
    port: u16,
}

struct Scenario {
    name: String,
    concurrency: u64,
    runs: u64,
    max_tokens: u64,
    stream: bool,
    padding: usize,
}

struct Measured {
    cpu_s: f64,
    max_rss_kib: u64,
    tokens: f64,
    requests: f64,
    load_s: f64,
    failed: u64,
}

fn sibling(name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = exe.with_file_name(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found beside this program; build it first: cargo build --release -p oai-bench -p oai-sim -p tokenomics-perf",
            path.display()
        ))
    }
}

fn start_sim(oai_sim: &Path, port: u16, padding: usize) -> Result<Child, String> {
    if TcpStream::connect(("127.0.0.1", port)).is_ok() {
        return Err(format!(
            "port {port} is already in use; pick another with --port"
        ));
    }
    let child = Command::new(oai_sim)
        .args([
            "--preset",
            "instant",
            "--port",
            &port.to_string(),
            "--mean_output_tokens",
            "10000000",
        ])
        .args(["--event_padding_bytes", &padding.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start oai-sim: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("oai-sim did not start listening".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(child)
}

/// Runs a child to completion and returns its own resource usage.
fn run_measured(mut cmd: Command) -> Result<libc::rusage, String> {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 fills it for the child we started.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if r != pid {
        return Err("wait4 failed".into());
    }
    std::mem::forget(child); // already reaped
    Ok(usage)
}

fn secs(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

fn measure(
    bench: &Path,
    port: u16,
    s: &Scenario,
    n_cores: u32,
    out: &Path,
) -> Result<Measured, String> {
    let mut cmd = Command::new(bench);
    cmd.args([
        "--model",
        "instant",
        "--dataset_key",
        "synthetic",
        "--warmup_runs",
        "0",
    ])
    .args(["--api_base", &format!("http://127.0.0.1:{port}/v1")])
    .args([
        "--batch_sizes",
        &s.concurrency.to_string(),
        "--num_runs",
        &s.runs.to_string(),
    ])
    .args([
        "--max_tokens",
        &s.max_tokens.to_string(),
        "--n_cores",
        &n_cores.to_string(),
    ])
    .args(["--results_file", out.to_str().unwrap_or("perf.json")]);
    if s.stream {
        cmd.arg("--stream");
    }
    let usage = run_measured(cmd)?;
    let doc: Value =
        serde_json::from_slice(&std::fs::read(out).map_err(|e| format!("no results: {e}"))?)
            .map_err(|e| e.to_string())?;
    let level = &doc["results"][s.concurrency.to_string()];
    let ok = level["requests"]["succeeded"].as_f64().unwrap_or(0.0);
    let failed = level["requests"]["failed"].as_u64().unwrap_or(0);
    let per_request = level["tokens"]["output_per_request"]["mean"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let load_s = level["timings"]["batch_total_seconds"]["mean"]
        .as_f64()
        .unwrap_or(f64::NAN)
        * s.runs as f64;
    Ok(Measured {
        cpu_s: secs(usage.ru_utime) + secs(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss as u64,
        tokens: ok * per_request,
        requests: ok,
        load_s,
        failed,
    })
}

fn main() -> ExitCode {
    let args: Args = match cli::parse(NAME) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (oai_sim, oai_bench) = match (sibling("oai-sim"), sibling("oai-bench")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return cli::fail(NAME, e, exit::USAGE),
    };
    let _ = cli::ensure_open_files(65_536);
    let stream = |name: &str, c: u64, runs: u64| Scenario {
        name: name.into(),
        concurrency: c,
        runs,
        max_tokens: 256,
        stream: true,
        padding: 0,
    };
    let mut scenarios = vec![
        stream("1 stream", 1, 100),
        stream("64 streams", 64, 10),
        stream("512 streams", 512, 4),
    ];
    if !args.quick {
        scenarios.push(stream("4,096 streams", 4096, 1));
        scenarios.push(stream("10,000 streams", 10_000, 1));
    }
    scenarios.push(Scenario {
        name: "1 MiB SSE lines".into(),
        concurrency: 1,
        runs: 3,
        max_tokens: 8,
        stream: true,
        padding: 1 << 20,
    });
    scenarios.push(Scenario {
        name: "128K-token response".into(),
        concurrency: 1,
        runs: 3,
        max_tokens: 128_000,
        stream: false,
        padding: 0,
    });

    let dir = std::env::temp_dir().join(format!("tokenomics-perf-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    println!("client: oai-bench with {} worker thread(s); server: oai-sim --preset instant in another process", args.n_cores);
    println!(
        "{:<22} {:>9} {:>10} {:>9} {:>12} {:>10} {:>10} {:>12} {:>7}",
        "scenario",
        "requests",
        "tokens",
        "CPU s",
        "CPU µs/token",
        "tokens/s",
        "req/s",
        "peak RSS MiB",
        "KiB/stream"
    );
    let mut baseline_kib = None;
    for s in &scenarios {
        let mut sim = match start_sim(&oai_sim, args.port, s.padding) {
            Ok(c) => c,
            Err(e) => return cli::fail(NAME, e, exit::ERROR),
        };
        let result = measure(
            &oai_bench,
            args.port,
            s,
            args.n_cores,
            &dir.join("perf.json"),
        );
        let _ = sim.kill();
        let _ = sim.wait();
        match result {
            Ok(m) => {
                if s.concurrency == 1 && s.padding == 0 && s.stream && baseline_kib.is_none() {
                    baseline_kib = Some(m.max_rss_kib);
                }
                let per_stream = match baseline_kib {
                    Some(b) if s.concurrency > 1 => format!(
                        "{:.1}",
                        (m.max_rss_kib.saturating_sub(b)) as f64 / s.concurrency as f64
                    ),
                    _ => "-".into(),
                };
                println!(
                    "{:<22} {:>9} {:>10.0} {:>9.3} {:>12.2} {:>10.0} {:>10.0} {:>12.1} {:>7}{}",
                    s.name,
                    m.requests,
                    m.tokens,
                    m.cpu_s,
                    m.cpu_s * 1e6 / m.tokens,
                    m.tokens / m.load_s,
                    m.requests / m.load_s,
                    m.max_rss_kib as f64 / 1024.0,
                    per_stream,
                    if m.failed > 0 {
                        format!("  ({} failed)", m.failed)
                    } else {
                        String::new()
                    }
                );
            }
            Err(e) => println!("{:<22} failed: {e}", s.name),
        }
    }
    // TTFT accuracy: 500 streams against a server whose schedule is known (first token 50 ms
    // after each request arrives), in another process.
    let ttft = (|| -> Result<(f64, f64, f64), String> {
        if TcpStream::connect(("127.0.0.1", args.port)).is_ok() {
            return Err(format!("port {} is already in use", args.port));
        }
        let mut sim = Command::new(&oai_sim)
            .args([
                "--preset",
                "fixed",
                "--port",
                &args.port.to_string(),
                "--mean_output_tokens",
                "10000000",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", args.port)).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = dir.join("ttft.json");
        let mut cmd = Command::new(&oai_bench);
        cmd.args([
            "--model",
            "fixed",
            "--dataset_key",
            "synthetic",
            "--warmup_runs",
            "1",
            "--stream",
        ])
        .args(["--api_base", &format!("http://127.0.0.1:{}/v1", args.port)])
        .args([
            "--batch_sizes",
            "500",
            "--num_runs",
            "2",
            "--max_tokens",
            "20",
        ])
        .args([
            "--n_cores",
            &args.n_cores.to_string(),
            "--results_file",
            out.to_str().unwrap_or("t.json"),
        ]);
        let r = run_measured(cmd);
        let _ = sim.kill();
        let _ = sim.wait();
        r?;
        let doc: Value = serde_json::from_slice(&std::fs::read(&out).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        let t = &doc["results"]["500"]["latency"]["ttft"];
        let get = |k: &str| t[k].as_f64().unwrap_or(f64::NAN) * 1e3 - 50.0;
        Ok((get("mean"), get("p50"), get("p99")))
    })();
    match ttft {
        Ok((mean, p50, p99)) => println!(
            "\nTTFT at 500 streams against a fixed 50 ms schedule (oai-sim --preset fixed): error mean {mean:+.2} ms, p50 {p50:+.2} ms, p99 {p99:+.2} ms"
        ),
        Err(e) => println!("\nTTFT accuracy scenario failed: {e}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("\nCPU is the client process's whole life (start-up, prompt generation, the load); tokens/s and req/s are over the load only.");
    ExitCode::SUCCESS
}
