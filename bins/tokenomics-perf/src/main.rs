//! `tokenomics-perf`: how much the benchmark client itself costs.
//!
//! Starts `oai-sim --preset instant` (no delays: whatever time passes is the client's and the
//! connection's) as one process, then runs `oai-bench` as another for each scenario, and reads the
//! client process's own CPU time and peak memory from `wait4` — the simulator's CPU is not
//! counted. Prints, per scenario: client CPU seconds (user + system), CPU microseconds per
//! streamed token, tokens/s and requests/s during the load, peak resident memory, and memory per
//! in-flight stream (peak over the single-stream baseline, divided by the concurrency), and the
//! share of the machine's CPU time the hypervisor stole meanwhile (a virtual machine's vCPU not
//! run for a while looks like a slow client). Open loops
//! (chat with `oai-bench`, embeddings with `embed-bench`) also print how closely the schedule was
//! kept and the CPU per request; two 512-stream scenarios with the optional features off and on
//! (`--requests_file`, `--server_metrics`, the timeline) print what those features cost.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::Value;
use tokenomics_bench::client_load::CpuTimes;
use tokenomics_cli::{self as cli, exit};

const NAME: &str = "tokenomics-perf";
/// The scenario names of the features comparison (their CPU per token is compared).
const FEATURES_OFF: &str = "512, features off";
const FEATURES_ON: &str = "512, features on";

/// Measure the client's CPU per streamed token and memory per stream against oai-sim.
#[derive(Debug, Parser)]
#[command(name = "tokenomics-perf", version)]
struct Args {
    /// Smaller scenarios (up to 512 streams), for a quick look.
    #[arg(long)]
    quick: bool,
    /// Client worker threads for oai-bench (the simulator gets the rest of the machine).
    #[arg(long = "n_cores", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    n_cores: u32,
    /// Also the soak scenarios: a closed loop of 64 for 200,000 and for 2,000,000 requests of 64 tokens (several minutes), to show memory does not grow with the run.
    #[arg(long)]
    soak: bool,
    /// Port for the simulator (on 127.0.0.1).
    #[arg(long, default_value_t = 18_555, value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// How many times to run the TTFT accuracy scenario (500 streams against a fixed 50 ms schedule), to show how often the client's stamping p99 stays within 1 ms [default: 10, 3 with --quick].
    #[arg(long = "ttft_runs", value_parser = clap::value_parser!(u32).range(1..=100))]
    ttft_runs: Option<u32>,
    /// In the TTFT accuracy scenario, let the scheduler place the client and the simulator anywhere, instead of giving the client its own --n_cores CPUs and the simulator the others.
    #[arg(long = "no_pin")]
    no_pin: bool,
}

/// The share of the machine's CPU time since `before` that the hypervisor stole, in percent ("-"
/// when unknown). On a shared virtual machine a vCPU is sometimes not run for milliseconds at a
/// time; the guest sees its thread as running meanwhile, so the client looks late. Measured here
/// (2 vCPUs, 2026-12-01), steal was 1% of an idle minute and 20–40% during some open-loop runs,
/// whose p99 send lag then went from 1–4 ms to 20 ms.
fn steal_since(before: Option<CpuTimes>) -> String {
    before
        .zip(CpuTimes::now())
        .and_then(|(b, a)| a.stolen_since(&b))
        .map_or_else(|| "-".into(), |s| format!("{:.1}", s * 100.0))
}

/// Which CPUs the client and the simulator run on in the TTFT accuracy scenario: the client on the
/// last `--n_cores` CPUs this process may use, the simulator on the others. Unpinned, the
/// simulator's threads (one per CPU) share the client's CPU whenever the simulator is busy, and
/// the client, preempted, reads a socket late — its stamping p99 was then 5–25 ms in most runs,
/// against 0.05 ms pinned (2 vCPUs, 2026-12-01), while a real server never runs on the client's
/// CPUs. The CPU scenarios are not pinned: the client's CPU time counts wherever it runs, and the
/// simulator on all CPUs feeds it flat out, as in every earlier run of them.
#[derive(Debug, Default, PartialEq)]
struct Placement {
    client: Vec<usize>,
    sim: Vec<usize>,
}

impl Placement {
    /// The split of `allowed` CPUs for a client of `n_cores` worker threads, or none (everything
    /// placed by the scheduler) when there are not more CPUs than that.
    fn split(allowed: &[usize], n_cores: u32) -> Placement {
        let n = n_cores as usize;
        if allowed.len() <= n {
            return Placement::default();
        }
        let (sim, client) = allowed.split_at(allowed.len() - n);
        Placement {
            client: client.to_vec(),
            sim: sim.to_vec(),
        }
    }

    /// This process's allowed CPUs, split for the client and the simulator.
    fn of_this_machine(n_cores: u32) -> Placement {
        // SAFETY: a zeroed cpu_set_t is the empty set; sched_getaffinity fills it for this thread.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let got =
            unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        if got != 0 {
            return Placement::default();
        }
        let allowed: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            // SAFETY: cpu < CPU_SETSIZE, the set's size.
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect();
        Placement::split(&allowed, n_cores)
    }

    fn describe(&self) -> String {
        if self.client.is_empty() {
            return "not pinned".into();
        }
        let list = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
        format!(
            "client on CPU {}, simulator on CPU {}",
            list(&self.client),
            list(&self.sim)
        )
    }

    /// Starts `cmd` on `cpus` (none: wherever the scheduler likes).
    fn pin(cmd: &mut Command, cpus: &[usize]) {
        use std::os::unix::process::CommandExt;
        if cpus.is_empty() {
            return;
        }
        // SAFETY: as above; every cpu came from CPU_ISSET over the set's size.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &cpu in cpus {
            unsafe { libc::CPU_SET(cpu, &mut set) };
        }
        // SAFETY: the closure only makes one system call on a set built before the fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// Which client a scenario runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Client {
    /// `oai-bench`: chat completions.
    Chat,
    /// `embed-bench`: embeddings (short texts).
    Embeddings,
}

struct Scenario {
    name: String,
    client: Client,
    /// Further client flags (the optional features: off or on).
    extra: Vec<String>,
    /// Requests in flight (for memory per stream); for an open loop, 0.
    concurrency: u64,
    runs: u64,
    max_tokens: u64,
    stream: bool,
    padding: usize,
    /// Open loop: requests per second and seconds (instead of a burst of `concurrency`).
    open: Option<(u64, u64)>,
    /// Closed loop of `concurrency` for this many requests (instead of a burst).
    closed: Option<u64>,
    /// The length of the simulator's embedding vectors, when not its preset's 64.
    embedding_dim: Option<usize>,
}

struct Measured {
    /// Open loop: scheduled and achieved rate, send lag p50/p99/max in ms.
    open: Option<[f64; 5]>,
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
            "{} not found beside this program; build it first: cargo build --release -p oai-bench -p oai-sim -p embed-bench -p tokenomics-perf",
            path.display()
        ))
    }
}

fn start_sim(
    oai_sim: &Path,
    port: u16,
    padding: usize,
    embedding_dim: Option<usize>,
) -> Result<Child, String> {
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
        .args(
            embedding_dim
                .map(|d| ["--embedding_dim".to_string(), d.to_string()])
                .into_iter()
                .flatten(),
        )
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

/// Runs `embed-bench` for an open-loop scenario (the only embeddings shape measured here).
fn measure_embeddings(
    bench: &Path,
    port: u16,
    s: &Scenario,
    out: &Path,
) -> Result<Measured, String> {
    let Some((rate, seconds)) = s.open else {
        return Err("embeddings are measured in an open loop only".into());
    };
    let mut cmd = Command::new(bench);
    cmd.args(["--model", "instant", "--warmup_runs", "0"])
        .args(["--api_base", &format!("http://127.0.0.1:{port}/v1")])
        .args(["--request_rate", &rate.to_string()])
        .args(["--duration", &seconds.to_string()])
        .args(["--sequence_lengths", "short", "--num_runs", "1"])
        .args(["--results_file", out.to_str().unwrap_or("perf.json")]);
    let usage = run_measured(cmd)?;
    let doc: Value =
        serde_json::from_slice(&std::fs::read(out).map_err(|e| format!("no results: {e}"))?)
            .map_err(|e| e.to_string())?;
    let level = &doc["results"][&format!("rate_{rate}_seq_short")];
    let f = |p: &str| level.pointer(p).and_then(Value::as_f64).unwrap_or(f64::NAN);
    Ok(Measured {
        open: Some([
            f("/load/scheduled_rate/mean"),
            f("/load/achieved_rate/mean"),
            f("/load/send_lag/p50") * 1e3,
            f("/load/send_lag/p99") * 1e3,
            f("/load/send_lag/max") * 1e3,
        ]),
        cpu_s: secs(usage.ru_utime) + secs(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss as u64,
        tokens: f("/tokens/total_per_batch/mean"),
        requests: f("/requests/succeeded"),
        load_s: f("/timings/batch_total_seconds/mean"),
        failed: level["requests"]["failed"].as_u64().unwrap_or(0),
    })
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
    .args(["--num_runs", &s.runs.to_string(), "--progress", "never"]);
    let key = match (s.open, s.closed) {
        (Some((rate, seconds)), _) => {
            cmd.args(["--request_rate", &rate.to_string()])
                .args(["--duration", &seconds.to_string()]);
            rate.to_string()
        }
        (None, Some(requests)) => {
            cmd.args(["--max_concurrency", &s.concurrency.to_string()])
                .args(["--num_requests", &requests.to_string()]);
            s.concurrency.to_string()
        }
        (None, None) => {
            cmd.args(["--batch_sizes", &s.concurrency.to_string()]);
            s.concurrency.to_string()
        }
    };
    cmd.args([
        "--max_tokens",
        &s.max_tokens.to_string(),
        "--n_cores",
        &n_cores.to_string(),
    ])
    .args(["--results_file", out.to_str().unwrap_or("perf.json")]);
    if s.stream {
        cmd.arg("--stream");
    }
    cmd.args(&s.extra);
    let usage = run_measured(cmd)?;
    let doc: Value =
        serde_json::from_slice(&std::fs::read(out).map_err(|e| format!("no results: {e}"))?)
            .map_err(|e| e.to_string())?;
    let level = &doc["results"][&key];
    let open = s.open.map(|_| {
        let load = &level["load"];
        let f = |p: &str| load.pointer(p).and_then(Value::as_f64).unwrap_or(f64::NAN);
        [
            f("/scheduled_rate/mean"),
            f("/achieved_rate/mean"),
            f("/send_lag/p50") * 1e3,
            f("/send_lag/p99") * 1e3,
            f("/send_lag/max") * 1e3,
        ]
    });
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
        open,
        cpu_s: secs(usage.ru_utime) + secs(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss as u64,
        tokens: ok * per_request,
        requests: ok,
        load_s,
        failed,
    })
}

/// `GET path` on the loopback port, the body (with the project's own client).
fn http_get(port: u16, path: &str) -> Result<Vec<u8>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let base = format!("http://127.0.0.1:{port}");
        let client = tokenomics_client::Client::new(tokenomics_client::ClientConfig::new(&base))
            .map_err(|e| e.to_string())?;
        client
            .connection()
            .get(path, &tokenomics_client::Clock::start())
            .await
            .map_err(|e| e.to_string())
    })
}

/// Client TTFT at 500 streams against `oai-sim --preset fixed`, split into where the excess over
/// the 50 ms schedule comes from: the request's way to the server (client send → server arrival),
/// the server's own lateness (arrival → first token sent, minus 50 ms: its queue while it accepts
/// and parses 500 requests on one core), and the client's stamping error (server sent the first
/// token → client stamped it). Times are joined across the two processes on the wall clock.
fn ttft_split(
    oai_sim: &Path,
    oai_bench: &Path,
    port: u16,
    n_cores: u32,
    dir: &Path,
    place: &Placement,
) -> Result<TtftSplit, String> {
    if TcpStream::connect(("127.0.0.1", port)).is_ok() {
        return Err(format!("port {port} is already in use"));
    }
    let mut sim = Command::new(oai_sim);
    Placement::pin(&mut sim, &place.sim);
    let mut sim = sim
        .args(["--preset", "fixed", "--trace", "--port", &port.to_string()])
        .args(["--mean_output_tokens", "10000000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = dir.join("ttft.json");
    let records = dir.join("ttft.jsonl");
    let mut cmd = Command::new(oai_bench);
    Placement::pin(&mut cmd, &place.client);
    cmd.args(["--model", "fixed", "--dataset_key", "synthetic"])
        .args(["--warmup_runs", "1", "--stream", "--progress", "never"])
        .args(["--api_base", &format!("http://127.0.0.1:{port}/v1")])
        .args([
            "--batch_sizes",
            "500",
            "--num_runs",
            "2",
            "--max_tokens",
            "20",
        ])
        .args(["--n_cores", &n_cores.to_string()])
        .args(["--results_file", out.to_str().unwrap_or("t.json")])
        .args(["--requests_file", records.to_str().unwrap_or("t.jsonl")]);
    let ran = run_measured(cmd);
    let trace = http_get(port, "/sim/trace");
    let _ = sim.kill();
    let _ = sim.wait();
    ran?;
    let trace = trace?;
    let server: std::collections::HashMap<String, Value> = trace
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter_map(|v| Some((format!("cmpl-sim-{}", v["id"].as_u64()?), v)))
        .collect();
    let text = std::fs::read_to_string(&records).map_err(|e| e.to_string())?;
    let (mut reported, mut path, mut late, mut client) = (vec![], vec![], vec![], vec![]);
    for line in text.lines() {
        let r: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let f = |k: &str| r[k].as_f64();
        let (Some(id), Some(send_unix), Some(send_s), Some(first_s), Some(ttft)) = (
            r["response_id"].as_str(),
            f("send_unix"),
            f("send_s"),
            f("first_token_s"),
            f("ttft_s"),
        ) else {
            continue;
        };
        let Some(t) = server.get(id) else { continue };
        let (Some(arrival), Some(first)) =
            (t["arrival_unix"].as_f64(), t["first_token_unix"].as_f64())
        else {
            continue;
        };
        let client_first = send_unix + (first_s - send_s);
        reported.push((ttft - 0.050) * 1e3);
        path.push((arrival - send_unix) * 1e3);
        late.push((first - arrival - 0.050) * 1e3);
        client.push((client_first - first) * 1e3);
    }
    if client.is_empty() {
        return Err("no request could be joined to the server's truth log".into());
    }
    let row = |name: &str, v: &[f64]| {
        let s = tokenomics_stats::Summary::new(v.iter().copied());
        format!(
            "  {name:<44} mean {:+7.3} ms   p50 {:+7.3} ms   p99 {:+7.3} ms\n",
            s.mean(),
            s.percentile(50.0),
            s.percentile(99.0)
        )
    };
    let stamping = tokenomics_stats::Summary::new(client.iter().copied());
    Ok(TtftSplit {
        report: format!(
            "TTFT at 500 streams against a fixed 50 ms schedule (oai-sim --preset fixed), {} requests joined to the truth log:\n{}{}{}{}",
            client.len(),
            row("reported TTFT − 50 ms", &reported),
            row("  request on its way (send → server arrival)", &path),
            row("  server late (arrival → first token − 50 ms)", &late),
            row("  client stamping (server sent → client stamp)", &client),
        ),
        stamping_mean_ms: stamping.mean(),
        stamping_p99_ms: stamping.percentile(99.0),
    })
}

/// One run of the TTFT accuracy scenario.
struct TtftSplit {
    /// The split, for people.
    report: String,
    /// The client's stamping error (server sent the first token → client stamped it), ms.
    stamping_mean_ms: f64,
    stamping_p99_ms: f64,
}

/// The client's stamping p99 that issue #20 asks for in nine runs of ten, ms.
const STAMPING_P99_TARGET_MS: f64 = 1.0;

/// The TTFT scenario `runs` times: the first run's split in full, then each run's stamping error
/// and how many runs kept its p99 within [`STAMPING_P99_TARGET_MS`].
fn ttft_runs(oai_sim: &Path, oai_bench: &Path, args: &Args, dir: &Path, place: &Placement) {
    let runs = args.ttft_runs.unwrap_or(if args.quick { 3 } else { 10 });
    let mut p99s = Vec::new();
    for run in 1..=runs {
        let before = CpuTimes::now();
        match ttft_split(oai_sim, oai_bench, args.port, args.n_cores, dir, place) {
            Ok(split) => {
                if run == 1 {
                    cli::out!("\n{}  ({})", split.report, place.describe());
                }
                cli::out!(
                    "  run {run:>2} of {runs}: client stamping mean {:+.3} ms, p99 {:+.3} ms; CPU steal {}%",
                    split.stamping_mean_ms,
                    split.stamping_p99_ms,
                    steal_since(before)
                );
                p99s.push(split.stamping_p99_ms);
            }
            Err(e) => cli::out!("\nTTFT accuracy scenario (run {run} of {runs}) failed: {e}"),
        }
    }
    let within = p99s
        .iter()
        .filter(|&&p| p <= STAMPING_P99_TARGET_MS)
        .count();
    if let (Some(lo), Some(hi)) = (
        p99s.iter().copied().reduce(f64::min),
        p99s.iter().copied().reduce(f64::max),
    ) {
        cli::out!(
            "  client stamping p99 within {STAMPING_P99_TARGET_MS} ms in {within} of {} runs (p99 {lo:+.3} to {hi:+.3} ms)",
            p99s.len()
        );
    }
}

fn main() -> ExitCode {
    let args: Args = match cli::parse(NAME) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (oai_sim, oai_bench, embed_bench) = match (
        sibling("oai-sim"),
        sibling("oai-bench"),
        sibling("embed-bench"),
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return cli::fail(NAME, e, exit::USAGE),
    };
    let _ = cli::ensure_open_files(65_536);
    let stream = |name: &str, c: u64, runs: u64| Scenario {
        name: name.into(),
        client: Client::Chat,
        extra: Vec::new(),
        concurrency: c,
        runs,
        max_tokens: 256,
        stream: true,
        padding: 0,
        open: None,
        closed: None,
        embedding_dim: None,
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
    // The optional features, off and then on, at 512 streams: the difference is their cost.
    let dir = std::env::temp_dir().join(format!("tokenomics-perf-{}", std::process::id()));
    let features_off = ["--server_metrics", "off", "--timeline_interval", "0"];
    scenarios.push(Scenario {
        extra: features_off.map(String::from).to_vec(),
        ..stream(FEATURES_OFF, 512, 4)
    });
    let records = dir.join("requests.jsonl");
    scenarios.push(Scenario {
        extra: vec![
            "--requests_file".into(),
            records.to_str().unwrap_or("requests.jsonl").into(),
            "--server_metrics".into(),
            "auto".into(),
            "--timeline_interval".into(),
            "1".into(),
        ],
        ..stream(FEATURES_ON, 512, 4)
    });
    scenarios.push(Scenario {
        name: "1 MiB SSE lines".into(),
        client: Client::Chat,
        extra: Vec::new(),
        concurrency: 1,
        runs: 3,
        max_tokens: 8,
        stream: true,
        padding: 1 << 20,
        open: None,
        closed: None,
        embedding_dim: None,
    });
    scenarios.push(Scenario {
        name: "128K-token response".into(),
        client: Client::Chat,
        extra: Vec::new(),
        concurrency: 1,
        runs: 3,
        max_tokens: 128_000,
        stream: false,
        padding: 0,
        open: None,
        closed: None,
        embedding_dim: None,
    });
    let open_seconds = if args.quick { 3 } else { 10 };
    for (name, client, rate) in [
        ("open loop 2,000 req/s", Client::Chat, 2000),
        ("open loop 10,000 req/s", Client::Chat, 10_000),
        ("embeddings 10,000/s", Client::Embeddings, 10_000),
    ] {
        scenarios.push(Scenario {
            name: name.into(),
            client,
            extra: Vec::new(),
            concurrency: 0,
            runs: 1,
            max_tokens: 16,
            stream: true,
            padding: 0,
            open: Some((rate, open_seconds)),
            closed: None,
            embedding_dim: None,
        });
    }
    // Embeddings of a real model's size: most of each response is its vector's numbers, which
    // the client checks and counts without converting them.
    scenarios.push(Scenario {
        name: "embeddings 1024d 2k/s".into(),
        client: Client::Embeddings,
        extra: Vec::new(),
        concurrency: 0,
        runs: 1,
        max_tokens: 16,
        stream: false,
        padding: 0,
        open: Some((2000, open_seconds)),
        closed: None,
        embedding_dim: Some(1024),
    });
    if args.soak {
        for requests in [200_000u64, 2_000_000] {
            scenarios.push(Scenario {
                name: format!("soak {}k requests", requests / 1000),
                client: Client::Chat,
                extra: Vec::new(),
                concurrency: 64,
                runs: 1,
                max_tokens: 64,
                stream: true,
                padding: 0,
                open: None,
                closed: Some(requests),
                embedding_dim: None,
            });
        }
    }

    let _ = std::fs::create_dir_all(&dir);
    let place = if args.no_pin {
        Placement::default()
    } else {
        Placement::of_this_machine(args.n_cores)
    };
    cli::out!(
        "client: oai-bench with {} worker thread(s); server: oai-sim --preset instant in another process",
        args.n_cores
    );
    cli::out!(
        "{:<22} {:>9} {:>10} {:>9} {:>12} {:>10} {:>10} {:>12} {:>10} {:>7}",
        "scenario",
        "requests",
        "tokens",
        "CPU s",
        "CPU µs/token",
        "tokens/s",
        "req/s",
        "peak RSS MiB",
        "KiB/stream",
        "steal %"
    );
    let mut baseline_kib = None;
    let mut features = [None; 2];
    for s in &scenarios {
        let mut sim = match start_sim(&oai_sim, args.port, s.padding, s.embedding_dim) {
            Ok(c) => c,
            Err(e) => return cli::fail(NAME, e, exit::ERROR),
        };
        let out = dir.join("perf.json");
        let before = CpuTimes::now();
        let result = match s.client {
            Client::Chat => measure(&oai_bench, args.port, s, args.n_cores, &out),
            Client::Embeddings => measure_embeddings(&embed_bench, args.port, s, &out),
        };
        let steal = steal_since(before);
        let _ = sim.kill();
        let _ = sim.wait();
        match result {
            Ok(m) => {
                let per_token = m.cpu_s * 1e6 / m.tokens;
                if s.name == FEATURES_OFF {
                    features[0] = Some(per_token);
                } else if s.name == FEATURES_ON {
                    features[1] = Some(per_token);
                }
                if s.concurrency == 1 && s.padding == 0 && s.stream && baseline_kib.is_none() {
                    baseline_kib = Some(m.max_rss_kib);
                }
                let per_stream = match baseline_kib {
                    _ if s.open.is_some() || s.closed.is_some() => "-".into(),
                    Some(b) if s.concurrency > 1 => format!(
                        "{:.1}",
                        (m.max_rss_kib.saturating_sub(b)) as f64 / s.concurrency as f64
                    ),
                    _ => "-".into(),
                };
                cli::out!(
                    "{:<22} {:>9} {:>10.0} {:>9.3} {:>12.2} {:>10.0} {:>10.0} {:>12.1} {:>10} {:>7}{}",
                    s.name,
                    m.requests,
                    m.tokens,
                    m.cpu_s,
                    per_token,
                    m.tokens / m.load_s,
                    m.requests / m.load_s,
                    m.max_rss_kib as f64 / 1024.0,
                    per_stream,
                    steal,
                    if m.failed > 0 {
                        format!("  ({} failed)", m.failed)
                    } else {
                        String::new()
                    }
                );
                if let Some([scheduled, achieved, p50, p99, max]) = m.open {
                    cli::out!(
                        "{:<22} achieved {achieved:.1} req/s of {scheduled:.1} scheduled ({:+.2}%); send lag p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms; CPU {:.1} µs/request",
                        "",
                        (achieved / scheduled - 1.0) * 100.0,
                        m.cpu_s * 1e6 / m.requests
                    );
                }
            }
            Err(e) => cli::out!("{:<22} failed: {e}", s.name),
        }
    }
    if let [Some(off), Some(on)] = features {
        cli::out!(
            "\nfeatures (--requests_file, --server_metrics, timeline) at 512 streams: {off:.2} µs/token off, {on:.2} on ({:+.1}%)",
            (on / off - 1.0) * 100.0
        );
    }
    // TTFT accuracy: 500 streams against a server whose schedule is known (first token 50 ms
    // after each request arrives), in another process, with the server's truth log joined to the
    // client's per-request records by response id.
    ttft_runs(&oai_sim, &oai_bench, &args, &dir, &place);
    let _ = std::fs::remove_dir_all(&dir);
    cli::out!("\nCPU is the client process's whole life (start-up, prompt generation, the load); tokens/s and req/s are over the load only; an embeddings scenario's tokens are input tokens.");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::Placement;

    #[test]
    fn the_client_gets_the_last_cpus_and_the_simulator_the_rest() {
        let p = Placement::split(&[0, 1, 2, 3], 1);
        assert_eq!((p.client, p.sim), (vec![3], vec![0, 1, 2]));
        let p = Placement::split(&[2, 5, 7], 2);
        assert_eq!((p.client, p.sim), (vec![5, 7], vec![2]));
    }

    #[test]
    fn nothing_is_pinned_without_a_cpu_to_spare() {
        assert_eq!(Placement::split(&[0, 1], 2), Placement::default());
        assert_eq!(Placement::split(&[0], 1), Placement::default());
        assert_eq!(Placement::split(&[], 1).describe(), "not pinned");
    }
}
