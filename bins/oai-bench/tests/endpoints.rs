//! Issue #18's several endpoints: `--api_base a,b` spreads requests over replicas without a load
//! balancer, each of which counts what it received; every level reports each endpoint's part,
//! which adds up to the level, and the servers' metrics are read from each one and added up.

use std::process::{Command, Output};

use serde_json::Value;
use tokenomics_sim::SimConfig;
use tokenomics_testkit::{start_sim_thread, SimThread};

fn oai_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oai-bench"))
        .args(["--progress", "never", "--dataset_key", "synthetic"])
        // No warm-up requests: each server's count is then exactly the preflight's and the levels'.
        .args(["--warmup_runs", "0"])
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", "/nonexistent/tokenomics-test-hf-home")
        .output()
        .expect("run oai-bench")
}

fn run(args: &[&str]) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = oai_bench(&[args, &["--results_file", out.to_str().unwrap()]].concat());
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let doc = serde_json::from_slice(&std::fs::read(&out).expect("results")).expect("JSON");
    (doc, stdout)
}

/// A `tiny` simulator at ten times real time.
fn tiny() -> SimThread {
    start_sim_thread(SimConfig::preset("tiny").unwrap().with_time_scale(10.0))
}

/// A simulator with a fixed schedule: `ttft_s` to the first token, 1 ms between tokens.
fn fixed(ttft_s: f64) -> SimThread {
    start_sim_thread(
        SimConfig::preset("tiny")
            .unwrap()
            .with_fixed_schedule(ttft_s, 0.001),
    )
}

fn succeeded(v: &Value) -> u64 {
    v["requests"]["succeeded"].as_u64().expect("succeeded")
}

/// The level's endpoints: (api_base, succeeded), checked to add up to the level's counts.
fn endpoints(level: &Value) -> Vec<(String, u64)> {
    let each: Vec<(String, u64)> = level["endpoints"]
        .as_array()
        .unwrap_or_else(|| panic!("no endpoints block: {level}"))
        .iter()
        .map(|e| (e["api_base"].as_str().unwrap().to_string(), succeeded(e)))
        .collect();
    assert_eq!(
        each.iter().map(|(_, n)| n).sum::<u64>(),
        succeeded(level),
        "the endpoints' requests add up to the level's"
    );
    each
}

#[test]
fn round_robin_spreads_every_shape_evenly_and_the_parts_add_up() {
    let (a, b) = (tiny(), tiny());
    let bases = format!("{},{}", a.api_base, b.api_base);
    let common = ["--model", "tiny", "--api_base", &bases, "--max_tokens", "8"];
    // A closed loop, streamed, with the servers' metrics scraped from both.
    let (doc, stdout) = run(&[
        &common[..],
        &["--stream", "--max_concurrency", "4", "--num_requests", "40"],
    ]
    .concat());
    let m = &doc["metadata"];
    assert_eq!(m["api_base"], bases.as_str());
    assert_eq!(m["balance"], "round_robin");
    let level = &doc["results"]["4"];
    assert_eq!(succeeded(level), 40);
    assert_eq!(
        endpoints(level),
        [(a.api_base.clone(), 20), (b.api_base.clone(), 20)]
    );
    // One preflight request each, then the level's.
    assert_eq!((a.sim.requests_total(), b.sim.requests_total()), (21, 21));
    for e in level["endpoints"].as_array().unwrap() {
        assert!(e["latency"]["ttft"]["p50"].as_f64().unwrap() > 0.0, "{e}");
        assert!(
            e["throughput"]["batch_tokens_per_second"]["mean"]
                .as_f64()
                .unwrap()
                > 0.0
        );
    }
    // Both servers scraped; their generated tokens add up to what the client counted.
    let sm = &level["server_metrics"];
    let source = sm["source"].as_str().unwrap();
    assert_eq!(source.split(',').count(), 2, "{source}");
    let cc = &sm["cross_check"];
    assert_eq!(cc["difference"], 0.0, "{sm}");
    assert_eq!(
        cc["client_output_tokens"].as_u64(),
        level["tokens"]["output_per_request"]["mean"]
            .as_f64()
            .map(|m| (m * 40.0).round() as u64)
    );
    assert_eq!(stdout.matches("  endpoint  ").count(), 2, "{stdout}");

    // A burst of 10: five each.
    let (doc, _) = run(&[&common[..], &["--batch_sizes", "10", "--num_runs", "1"]].concat());
    assert_eq!(
        endpoints(&doc["results"]["10"]),
        [(a.api_base.clone(), 5), (b.api_base.clone(), 5)]
    );
    // An open loop: every other arrival.
    let (doc, _) = run(&[
        &common[..],
        &["--request_rate", "50", "--num_requests", "30"],
    ]
    .concat());
    let level = doc["results"].as_object().unwrap().values().next().unwrap();
    assert_eq!(
        endpoints(level),
        [(a.api_base.clone(), 15), (b.api_base.clone(), 15)]
    );
    assert_eq!(
        (a.sim.requests_total(), b.sim.requests_total()),
        (21 + 6 + 16, 21 + 6 + 16)
    );
}

#[test]
fn least_loaded_sends_a_slower_replica_fewer_requests() {
    // 200 ms against 10 ms to the first token: with 4 in flight, round robin would wait on the
    // slow one for half of the requests; least loaded keeps about 2 there and the rest flowing.
    let (slow, quick) = (fixed(0.2), fixed(0.01));
    let bases = format!("{},{}", slow.api_base, quick.api_base);
    let (doc, _) = run(&[
        "--model",
        "tiny",
        "--api_base",
        &bases,
        "--balance",
        "least_loaded",
        "--stream",
        "--max_tokens",
        "4",
        "--max_concurrency",
        "4",
        "--num_requests",
        "80",
    ]);
    assert_eq!(doc["metadata"]["balance"], "least_loaded");
    let level = &doc["results"]["4"];
    let parts = endpoints(level);
    // What each server received: its part of the level and one preflight request.
    assert_eq!(slow.sim.requests_total(), parts[0].1 + 1);
    assert_eq!(quick.sim.requests_total(), parts[1].1 + 1);
    // About 80 / 11 to the slow one; far below the 40 round robin would send (wide margins: a
    // shared machine's timings vary).
    assert!(parts[0].1 < 25, "{parts:?}");
    let ttft = |i: usize| {
        level["endpoints"][i]["latency"]["ttft"]["p50"]
            .as_f64()
            .unwrap()
    };
    assert!(ttft(0) > 0.15 && ttft(1) < 0.1, "{} {}", ttft(0), ttft(1));
}

#[test]
fn bad_endpoint_lists_are_refused_in_one_line() {
    let a = tiny();
    let twice = format!("{0},{0}/", a.api_base);
    let refused = tokenomics_testkit::refused_api_base();
    let with_refused = format!("{},{refused}", a.api_base);
    let not_ready = format!("error: server at {refused} not ready after 1 s: cannot connect");
    for (args, code, needle) in [
        (
            vec!["--api_base", twice.as_str()],
            2,
            "twice; give each endpoint once",
        ),
        (vec!["--api_base", " , "], 2, "--api_base is empty"),
        (
            vec!["--api_base", a.api_base.as_str(), "--balance", "random"],
            2,
            "use round_robin or least_loaded",
        ),
        // The preflight checks each endpoint and names the one that does not answer.
        (
            vec!["--api_base", with_refused.as_str()],
            1,
            refused.as_str(),
        ),
        // So does the wait for readiness, within the one limit.
        (
            vec!["--api_base", with_refused.as_str(), "--wait_ready", "1"],
            1,
            not_ready.as_str(),
        ),
    ] {
        let o = oai_bench(
            &[
                &[
                    "--model",
                    "tiny",
                    "--max_concurrency",
                    "1",
                    "--num_requests",
                    "2",
                ],
                &args[..],
            ]
            .concat(),
        );
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn a_merge_of_shards_rebuilds_each_endpoints_part() {
    let (a, b) = (tiny(), tiny());
    let bases = format!("{},{}", a.api_base, b.api_base);
    let dir = tempfile::tempdir().unwrap();
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 3.0;
    let at = format!("{at:.3}");
    let children: Vec<_> = ["0/2", "1/2"]
        .iter()
        .map(|shard| {
            Command::new(env!("CARGO_BIN_EXE_oai-bench"))
                .args(["--progress", "never", "--dataset_key", "synthetic"])
                .args(["--warmup_runs", "0", "--model", "tiny", "--stream"])
                .args(["--api_base", &bases, "--max_tokens", "8"])
                .args(["--request_rate", "20", "--duration", "1", "--start_at", &at])
                .args(["--shard", shard, "--results_dir"])
                .arg(dir.path())
                .env_remove("OPENAI_API_KEY")
                .env_remove("JOB_COMPLETION_INDEX")
                .env_remove("TOKENOMICS_SHARDS")
                .env_remove("SLURM_PROCID")
                .env_remove("SLURM_NTASKS")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let files = tokenomics_bench::merge::shard_files(&[dir.path().to_path_buf()]).unwrap();
    let doc = serde_json::to_value(tokenomics_bench::merge::merge(&files).unwrap()).unwrap();
    let level = doc["results"].as_object().unwrap().values().next().unwrap();
    let parts = endpoints(level);
    // What each server received beyond the two shards' preflights: its part of the merged level.
    assert_eq!(a.sim.requests_total(), parts[0].1 + 2, "{parts:?}");
    assert_eq!(b.sim.requests_total(), parts[1].1 + 2, "{parts:?}");
    assert!(parts.iter().all(|(_, n)| *n >= 5), "{parts:?}");
}
