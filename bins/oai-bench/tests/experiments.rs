//! Issue #16's acceptance for the sweep and the SLO search, against a simulator whose capacity is
//! known in closed form: a fixed schedule (first token 50 ms after a request gets its slot, then
//! one every 10 ms) with 32 slots. Every request generates exactly 10 tokens, so each holds its
//! slot for S = 50 + 9 × 10 = 140 ms and the server serves at most 32 / 0.14 = 228.57 requests/s.
//! With constant arrivals below that rate no request ever waits (each slot frees before the
//! arrival that takes it), so TTFT is 50 ms; above it the excess queues and the wait grows
//! through the level for as long as it lasts — which the search must call a failure whatever the
//! level's percentiles say. The true highest rate at which `ttft p99 ≤ 500 ms` can be sustained
//! is therefore the capacity itself.
//!
//! Alone in its test binary (the probes time the server; other tests would compete for the CPU).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokenomics_sim::SimConfig;
use tokenomics_testkit::start_sim_thread;

const SLOTS: u64 = 32;
const TTFT_S: f64 = 0.050;
const ITL_S: f64 = 0.010;
const TOKENS: u64 = 10;

fn capacity() -> f64 {
    SLOTS as f64 / (TTFT_S + (TOKENS - 1) as f64 * ITL_S)
}

fn slotted_sim() -> String {
    let config = SimConfig::preset("fixed")
        .expect("the fixed preset")
        .with_fixed_schedule(TTFT_S, ITL_S)
        .with_max_running(SLOTS);
    start_sim_thread(config).api_base
}

fn oai_bench(api_base: &str, results: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oai-bench"));
    cmd.args([
        "--model",
        "fixed",
        "--api_base",
        api_base,
        "--dataset_key",
        "synthetic",
        "--max_tokens",
        &TOKENS.to_string(),
        "--ignore_eos",
        "--stream",
        "--arrival",
        "constant",
        "--warmup_runs",
        "0",
        "--progress",
        "never",
        "--results_file",
        results.to_str().unwrap(),
    ])
    .args(extra)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

/// Runs `cmd`, which must succeed; its stdout.
fn succeed(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn the_slo_search_brackets_the_known_capacity_within_ten_percent_in_bounded_time() {
    let api_base = slotted_sim();
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("search.json");
    let started = Instant::now();
    // From 100 requests/s: doubling finds a failure at 400, then geometric bisection; 400
    // requests a probe (the p99's interval needs 381).
    let stdout = succeed(&mut oai_bench(
        &api_base,
        &results,
        &[
            "--slo",
            "ttft_p99:500",
            "--request_rate",
            "100",
            "--num_requests",
            "400",
        ],
    ));
    let took = started.elapsed();
    let doc = read(&results);
    let search = &doc["metadata"]["slo_search"];
    let lo = search["highest_passing"].as_f64().expect("a passing rate");
    let hi = search["lowest_failing"].as_f64().expect("a failing rate");
    let truth = capacity();
    assert!(
        lo <= truth && truth <= hi,
        "the interval [{lo}, {hi}] misses the capacity {truth:.2}: {search:#}"
    );
    assert!(hi / lo <= 1.10, "[{lo}, {hi}] is more than 10% wide");
    // Bounded: at most 16 probes (the default), and each of a few hundred requests at a hundred
    // or more a second; 150 s leaves room for a slow, shared machine.
    let probes = search["probes"].as_array().unwrap();
    assert!(probes.len() <= 16, "{} probes", probes.len());
    assert!(took < Duration::from_secs(150), "took {took:?}");
    // Every probe measured enough requests for its p99 to have an interval.
    let min = search["min_requests"].as_u64().unwrap();
    assert!(min >= 300, "min_requests {min}");
    for p in probes {
        let level = &doc["results"][p["level"].as_str().unwrap()];
        let n = level["requests"]["succeeded"].as_u64().unwrap()
            + level["requests"]["failed"].as_u64().unwrap();
        assert!(n >= min, "probe {p} measured {n} requests");
    }
    // A probe above the capacity failed for falling behind, even where its p99 held.
    let over: Vec<&Value> = probes
        .iter()
        .filter(|p| p["value"].as_f64().unwrap() > truth * 1.01)
        .collect();
    assert!(!over.is_empty());
    for p in &over {
        assert_eq!(p["passed"], false, "{p}");
    }
    assert!(
        over.iter().any(|p| p["reason"]
            .as_str()
            .unwrap_or("")
            .contains("over-saturated")),
        "{over:?}"
    );
    // Below the capacity nobody waited: TTFT p99 within a few ms of the schedule's 50 ms.
    let passing = probes.iter().find(|p| p["passed"] == true).unwrap();
    let p99 = passing["measured_ms"][0].as_f64().unwrap();
    assert!((45.0..=70.0).contains(&p99), "{passing}");
    // The results hold the probes only (open loops); the console says the answer.
    assert_eq!(doc["metadata"]["mode"], "open_loop");
    assert!(
        stdout.contains("SLO capacity (ttft p99 ≤ 500 ms)"),
        "{stdout}"
    );
}

#[test]
fn a_sweep_past_the_capacity_stops_early_and_says_why() {
    let api_base = slotted_sim();
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("sweep.json");
    // Up to twice the capacity in four steps: 7.1 (concurrency 1's rate), 157, 307, 457 req/s.
    let stdout = succeed(&mut oai_bench(
        &api_base,
        &results,
        &[
            "--sweep",
            "--sweep_max",
            "457",
            "--sweep_points",
            "4",
            "--duration",
            "2",
        ],
    ));
    let doc = read(&results);
    let sweep = &doc["metadata"]["sweep"];
    let sync = sweep["synchronous_rps"].as_f64().unwrap();
    // One request at a time: one every 140 ms (plus the client's turn-around).
    assert!((6.0..=7.2).contains(&sync), "synchronous {sync}");
    let rates: Vec<f64> = sweep["rates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_f64().unwrap())
        .collect();
    assert_eq!(rates.len(), 4);
    assert_eq!(rates[3], 457.0);
    // The third rate (about 307/s, a third past the capacity) falls behind; the fourth is skipped.
    let why = sweep["stopped_early"].as_str().expect("stopped early");
    assert!(why.contains("over-saturated"), "{why}");
    let keys: Vec<&String> = doc["results"].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(stdout.contains("The sweep stopped early"), "{stdout}");
    // The levels below the capacity kept up.
    for key in &keys[..2] {
        // The schedule's figures sit in the `load` block beside the shape.
        let trend = &doc["results"][key.as_str()]["load"]["latency_trend"];
        assert_eq!(trend["oversaturated"], false, "{key}: {trend}");
    }
}

#[test]
fn a_concurrency_search_finds_the_slot_count() {
    // Up to 32 requests at once, none waits: E2EL 140 ms. At 33, one request in 33 waits a whole
    // service time for a slot (E2EL 280 ms), which the p99 of E2EL sees.
    let api_base = slotted_sim();
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("concurrency.json");
    succeed(&mut oai_bench(
        &api_base,
        &results,
        &[
            "--slo",
            "e2el_p99:200",
            "--slo_search",
            "concurrency",
            "--max_concurrency",
            "16",
        ],
    ));
    let doc = read(&results);
    let search = &doc["metadata"]["slo_search"];
    assert_eq!(search["highest_passing"], 32.0, "{search:#}");
    assert_eq!(search["lowest_failing"], 33.0, "{search:#}");
    assert_eq!(doc["metadata"]["mode"], "closed_loop");
}

#[test]
fn a_simulated_run_is_priced_at_its_presets_list_price_in_model_time() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("priced.json");
    succeed(Command::new(env!("CARGO_BIN_EXE_oai-bench")).args([
        "--simulate",
        "tiny",
        "--sim_time_scale",
        "4",
        "--max_concurrency",
        "4",
        "--num_requests",
        "20",
        "--max_tokens",
        "16",
        "--warmup_runs",
        "0",
        "--progress",
        "never",
        "--results_file",
        results.to_str().unwrap(),
    ]));
    let doc = read(&results);
    let cost = &doc["metadata"]["cost"];
    // One H100 at its list price, times the time scale: a real hour is four model hours.
    let list = tokenomics_sim::preset::preset("tiny")
        .and_then(|p| p.cost_basis())
        .unwrap();
    assert_eq!(cost["gpus"], 1);
    assert!(
        (cost["usd_per_gpu_hour"].as_f64().unwrap() - list.usd_per_gpu_hour * 4.0).abs() < 1e-9
    );
    let price = doc["metadata"]["simulated"]["price"].as_str().unwrap();
    assert!(
        price.contains(list.source) && price.contains("time scale 4"),
        "{price}"
    );
    let level = &doc["results"]["4"];
    let tps = level["throughput"]["batch_tokens_per_second"]["mean"]
        .as_f64()
        .unwrap();
    let usd = level["cost"]["usd_per_million_output_tokens"]
        .as_f64()
        .unwrap();
    // $/M = price per real second / tokens per real second × 10⁶.
    let expected = list.usd_per_gpu_hour * 4.0 / 3600.0 / tps * 1e6;
    assert!(
        (usd - expected).abs() < 1e-9 * expected,
        "{usd} vs {expected}"
    );
}

#[test]
fn experiments_refuse_what_they_cannot_do_in_one_line() {
    for (args, says) in [
        (
            &["--slo", "latency_p99:5", "--stream"][..],
            "unknown metric",
        ),
        (&["--slo", "ttft_p120:5", "--stream"][..], "outside 0–100"),
        (&["--slo", "ttft_p99:500"][..], "add --stream"),
        (&["--sweep", "--batch_sizes", "1,2"][..], "--batch_sizes"),
        (
            &["--sweep", "--slo", "ttft_p99:5", "--stream"][..],
            "give one",
        ),
        (&["--sweep_points", "4"][..], "give --sweep"),
        (&["--slo_attainment", "0.9"][..], "give --slo"),
        (
            &["--slo", "itl_p99:5", "--slo_attainment", "0.9", "--stream"][..],
            "ITL has none",
        ),
        (&["--gpu_hour_cost", "-2"][..], "dollars per GPU-hour"),
        (
            &[
                "--slo",
                "ttft_p99:5",
                "--stream",
                "--sweep_from_sim",
                "fixed",
            ][..],
            "no saturation point",
        ),
        (&["--sweep_from_sim", "tiny"][..], "--slo"),
        (
            &[
                "--slo",
                "ttft_p99:5",
                "--stream",
                "--shard",
                "0/2",
                "--results_dir",
                "x",
            ][..],
            "cannot be sharded",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_oai-bench"))
            .args(["--model", "m", "--dataset_key", "synthetic"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    }
}
