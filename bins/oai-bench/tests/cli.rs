//! `oai-bench` as a user runs it: flags, the JSON file, console output and exit codes, against
//! scripted loopback servers.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use tokenomics_testkit::{refused_api_base, Fault, Script, ScriptedServer};

/// Runs oai-bench; the Hugging Face Hub is off limits (offline, an empty cache) unless `hub`
/// gives an endpoint and a cache folder. These tests script the server request by request (and
/// count its requests), so the preflight's own requests are left out (`--no_preflight`); the
/// preflight has tests of its own (preflight.rs).
fn oai_bench_with(args: &[&str], hub: Option<(&str, &Path)>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oai-bench"));
    cmd.arg("--no_preflight")
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .env_remove("HF_TOKEN");
    match hub {
        Some((endpoint, home)) => cmd
            .env("HF_ENDPOINT", endpoint)
            .env("HF_HOME", home)
            .env_remove("HF_HUB_OFFLINE"),
        None => cmd
            .env("HF_HUB_OFFLINE", "1")
            .env("HF_HOME", "/nonexistent/tokenomics-test-hf-home"),
    };
    cmd.output().expect("run oai-bench")
}

fn oai_bench(args: &[&str]) -> Output {
    oai_bench_with(args, None)
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("results file")).expect("valid JSON")
}

fn fast() -> Script {
    Script {
        ttft: Duration::from_millis(3),
        itl: Duration::from_millis(1),
        ..Script::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_the_original_document_with_the_original_flags() {
    let server = ScriptedServer::uniform(Script {
        tokens: Some(9),
        ..fast()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("my_server_benchmark.json");
    let api_base = server.api_base();
    // The original README's command, with a loopback server and synthetic prompts.
    let o = oai_bench(&[
        "--model",
        "test-model",
        "--dataset_key",
        "synthetic",
        "--api_base",
        &api_base,
        "--batch_sizes",
        "1,2",
        "--num_runs",
        "3",
        "--max_tokens",
        "9",
        "--temperature",
        "0.5",
        "--description",
        "Deepseek R1 distill 8B TP8 A100s",
        "--results_file",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("run 3/3") && stdout.contains("batch tokens/s") && stdout.contains("±")
    );
    assert!(stdout.contains(&format!("Results saved to {}", out.display())));
    let doc = read(&out);
    let m = &doc["metadata"];
    for (k, v) in [
        ("model", Value::from("test-model")),
        ("dataset_key", Value::from("synthetic")),
        ("api_base", Value::from(api_base.clone())),
        ("batch_sizes", serde_json::json!([1, 2])),
        ("num_runs", Value::from(3)),
        ("max_tokens", Value::from(9)),
        ("temperature", Value::from(0.5)),
        ("seed", Value::from(42)),
        ("warmup_runs", Value::from(3)),
        (
            "description",
            Value::from("Deepseek R1 distill 8B TP8 A100s"),
        ),
    ] {
        assert_eq!(m[k], v, "metadata.{k}");
    }
    assert!(m["timestamp"].as_str().unwrap().len() >= 19);
    assert!(m["n_cores"].as_u64().unwrap() >= 1);
    for key in ["1", "2"] {
        let level = &doc["results"][key];
        for path in [
            "/tokens/input_per_request",
            "/tokens/output_per_request",
            "/timings/batch_total_seconds",
            "/timings/fastest_seconds",
            "/timings/slowest_seconds",
            "/timings/spread_seconds",
            "/throughput/batch_tokens_per_second",
            "/throughput/request_tokens_per_second",
        ] {
            let stat = level.pointer(path).unwrap_or_else(|| panic!("{key}{path}"));
            assert!(
                stat["mean"].is_f64() && stat["std"].is_f64(),
                "{key}{path}: {stat}"
            );
        }
        assert_eq!(level["tokens"]["output_per_request"]["mean"], 9.0);
        assert_eq!(level["tokens"]["output_per_request"]["std"], 0.0);
    }
    // 3 warm-ups per batch size, then 3 runs of 1 and 3 runs of 2.
    assert_eq!(server.requests(), 6 + 3 + 6);
    // The file loads into the library's types.
    let _: tokenomics_stats::ChatDocument = tokenomics_stats::read_json(&out).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_adds_latency_and_kebab_case_flags_work() {
    let server = ScriptedServer::uniform(Script {
        tokens: Some(6),
        ttft: Duration::from_millis(20),
        itl: Duration::from_millis(4),
        ..fast()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.json");
    let o = oai_bench(&[
        "--model",
        "test-model",
        "--dataset-key",
        "synthetic",
        "--api-base",
        &server.api_base(),
        "--batch-sizes",
        "4",
        "--num-runs",
        "1",
        "--warmup-runs",
        "0",
        "--max-tokens",
        "6",
        "--results-file",
        out.to_str().unwrap(),
        "--stream",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("TTFT") && stdout.contains("ITL"),
        "{stdout}"
    );
    let lat = &read(&out)["results"]["4"]["latency"];
    for metric in ["ttft", "itl", "tpot", "e2el"] {
        for q in ["mean", "std", "p50", "p90", "p95", "p99"] {
            assert!(lat[metric][q].is_f64(), "{metric}.{q}");
        }
    }
    assert!(lat["ttft"]["p50"].as_f64().unwrap() >= 0.020);
    assert!(lat["ttft"]["p50"].as_f64().unwrap() < lat["e2el"]["p50"].as_f64().unwrap());
    assert_eq!(lat["itl"]["count"], 4 * 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_and_completions_endpoint() {
    let server = ScriptedServer::uniform(fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.json");
    let o = Command::new(env!("CARGO_BIN_EXE_oai-bench"))
        .arg("--no_preflight")
        .args([
            "--model",
            "test-model",
            "--dataset_key",
            "synthetic",
            "--api_base",
            &server.api_base(),
            "--batch_sizes",
            "1",
            "--num_runs",
            "1",
            "--warmup_runs",
            "0",
            "--endpoint",
            "completions",
            // Only the benchmark's own requests are counted here.
            "--server_metrics",
            "off",
            "--results_file",
            out.to_str().unwrap(),
        ])
        .env("OPENAI_API_KEY", "sk-from-env")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let seen = server.seen();
    assert_eq!(
        seen,
        vec![(
            Some("Bearer sk-from-env".to_string()),
            "/v1/completions".to_string()
        )]
    );
    assert_eq!(read(&out)["metadata"]["endpoint"], "completions");
    assert!(
        !std::fs::read_to_string(&out)
            .unwrap()
            .contains("sk-from-env"),
        "the key is never written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_give_exit_codes_and_the_file_is_still_written() {
    let server = ScriptedServer::start(|i, _| Script {
        fault: if i % 2 == 1 {
            Fault::Status(500)
        } else {
            Fault::None
        },
        ..fast()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.json");
    let o = oai_bench(&[
        "--model",
        "test-model",
        "--dataset_key",
        "synthetic",
        "--api_base",
        &server.api_base(),
        "--batch_sizes",
        "2",
        "--num_runs",
        "2",
        "--warmup_runs",
        "0",
        "--results_file",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "some requests failed");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("http_status × 2: HTTP 500"), "{stdout}");
    assert_eq!(read(&out)["results"]["2"]["requests"]["failed"], 2);

    let refused = dir.path().join("r.json");
    let o = oai_bench(&[
        "--model",
        "m",
        "--dataset_key",
        "synthetic",
        "--api_base",
        &refused_api_base(),
        "--batch_sizes",
        "1",
        "--num_runs",
        "1",
        "--warmup_runs",
        "0",
        "--results_file",
        refused.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(4), "every request failed");
    assert_eq!(
        read(&refused)["results"]["1"]["requests"]["errors"]["connect"]["count"],
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_in_one_line_before_any_request() {
    let server = ScriptedServer::uniform(fast()).await;
    let api_base = server.api_base();
    let dir = tempfile::tempdir().unwrap();
    let ok_out = dir.path().join("x.json");
    let ok_out = ok_out.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--batch_sizes", "1,0"],
            "invalid value '0' for '--batch_sizes",
        ),
        (
            vec!["--batch_sizes", "1,two"],
            "invalid value 'two' for '--batch_sizes",
        ),
        (vec!["--model", " "], "--model is empty"),
        (
            vec!["--temperature", "3"],
            "invalid value '3' for '--temperature",
        ),
        (
            vec!["--max_tokens", "0"],
            "invalid value '0' for '--max_tokens",
        ),
        (vec!["--dataset_key", "nope"], "unknown dataset key"),
        (vec!["--dataset_key", "hf:no-slash"], "unknown dataset key"),
        (vec!["--api_base", "localhost:8000/v1"], "is not a URL"),
        (vec!["--api_base", "ftp://host/v1"], "use http or https"),
        (vec!["--no_such_flag", "1"], "unexpected argument"),
        (
            vec!["--results_file", "/nonexistent-dir/x.json"],
            "--results_file",
        ),
        (vec!["--simulate", "no-such-gpu"], "unknown preset"),
        (
            vec!["--request_rate", "0"],
            "invalid value '0' for '--request_rate",
        ),
        (vec!["--request_rate", "-5"], "above 0 and at most"),
        (
            vec!["--batch_size", "4"],
            "a similar argument exists: '--batch_sizes'",
        ),
        (
            vec!["--request_rate", "inf"],
            "invalid value 'inf' for '--request_rate",
        ),
        (
            vec!["--max_concurrency", "4,x"],
            "invalid value 'x' for '--max_concurrency",
        ),
        (
            vec!["--request_rate", "5", "--max_concurrency", "2,4"],
            "one cap",
        ),
        (
            vec!["--max_concurrency", "4", "--batch_sizes", "1"],
            "--batch_sizes is for bursts",
        ),
        (vec!["--duration", "5"], "needs a sustained load"),
        (
            vec!["--max_concurrency", "4", "--duration", "0"],
            "--duration",
        ),
        (
            vec!["--max_concurrency", "4", "--at_end", "cancel"],
            "--at_end cancel needs --duration",
        ),
        (
            vec!["--max_concurrency", "4", "--arrival", "gamma"],
            "--request_rate",
        ),
        (
            vec![
                "--request_rate",
                "5",
                "--arrival",
                "constant",
                "--burstiness",
                "2",
            ],
            "--burstiness",
        ),
        (vec!["--goodput", "ttft:100"], "need --stream"),
        (vec!["--goodput", "e2el:abc"], "--goodput"),
        (vec!["--goodput", "speed:5"], "unknown objective"),
        (vec!["--input_tokens", "0"], "--input_tokens"),
        (vec!["--input_tokens", "uniform:9,3"], "--input_tokens"),
        (vec!["--tokenizer", "x.json"], "give --input_tokens too"),
        (
            vec!["--input_tokens", "10", "--dataset_key", "aime"],
            "cannot be used with another --dataset_key",
        ),
        (
            vec![
                "--input_tokens",
                "10",
                "--tokenizer",
                "/nonexistent/tok.json",
            ],
            "no such file",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec![
            "--model",
            "test-model",
            "--dataset_key",
            "synthetic",
            "--api_base",
            &api_base,
            "--results_file",
            ok_out,
            "--num_runs",
            "1",
        ];
        args.extend(extra.iter().copied());
        let o = oai_bench(&args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(expected), "{extra:?}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{extra:?}: one line, got {stderr}"
        );
        assert!(!stderr.contains("panicked"));
    }
    assert_eq!(server.requests(), 0, "no request was sent");
    assert!(!Path::new(ok_out).exists());
}

#[test]
fn simulate_runs_the_built_in_server() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sim.json");
    let o = oai_bench(&[
        "--simulate",
        "tiny",
        "--batch_sizes",
        "1,4",
        "--num_runs",
        "2",
        "--warmup_runs",
        "1",
        "--max_tokens",
        "16",
        "--stream",
        "--sim_time_scale",
        "4",
        "--results_file",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc = read(&out);
    assert_eq!(doc["metadata"]["model"], "tiny");
    assert_eq!(doc["metadata"]["dataset_key"], "synthetic");
    assert_eq!(doc["metadata"]["simulated"]["preset"], "tiny");
    assert_eq!(doc["results"]["4"]["requests"]["succeeded"], 8);
    assert!(
        doc["results"]["4"]["latency"]["ttft"]["mean"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[test]
fn every_level_gets_its_cost_from_its_own_figures() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cost.json");
    let o = oai_bench(&[
        "--simulate",
        "tiny",
        "--max_concurrency",
        "2,4",
        "--num_requests",
        "12",
        "--max_tokens",
        "8",
        "--sim_time_scale",
        "4",
        "--gpu_hour_cost",
        "3.6",
        "--gpus",
        "2",
        "--input_cost_share",
        "0.25",
        "--results_file",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("per million output tokens"), "{stdout}");
    let doc = read(&out);
    let basis = &doc["metadata"]["cost"];
    assert_eq!(basis["usd_per_gpu_hour"], 3.6);
    assert_eq!(basis["gpus"], 2);
    for key in ["2", "4"] {
        let level = &doc["results"][key];
        let f = |v: &Value| v.as_f64().unwrap();
        let out_tps = f(&level["throughput"]["batch_tokens_per_second"]["mean"]);
        let rps = f(&level["throughput"]["requests_per_second"]["mean"]);
        let input = f(&level["tokens"]["input_per_request"]["mean"]) * rps;
        // $3.60 an hour on 2 GPUs: $0.002 a second, three quarters of it to output tokens.
        let cost = &level["cost"];
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs();
        assert!(close(
            f(&cost["usd_per_million_output_tokens"]),
            0.002 * 0.75 / out_tps * 1e6
        ));
        assert!(close(
            f(&cost["usd_per_million_input_tokens"]),
            0.002 * 0.25 / input * 1e6
        ));
        assert!(close(
            f(&cost["output_tokens_per_second_per_gpu"]),
            out_tps / 2.0
        ));
        assert!(close(f(&cost["requests_per_gpu_hour"]), rps * 1800.0));
    }
    // Without a price, no cost anywhere; a GPU count without one is refused.
    let o = oai_bench(&["--simulate", "tiny", "--gpus", "4"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--gpu_hour_cost"));
}

#[test]
fn ignore_eos_forces_every_output_to_max_tokens() {
    let dir = tempfile::tempdir().unwrap();
    // The instant simulator draws output lengths around 100 tokens unless they are forced.
    let run = |forced: bool| {
        let out = dir.path().join(format!("eos-{forced}.json"));
        let mut args = vec![
            "--simulate",
            "instant",
            "--batch_sizes",
            "8",
            "--num_runs",
            "2",
            "--warmup_runs",
            "0",
            "--max_tokens",
            "300",
            "--results_file",
            out.to_str().unwrap(),
        ];
        if forced {
            args.push("--ignore_eos");
        }
        let o = oai_bench(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        read(&out)
    };
    let free = run(false);
    let forced = run(true);
    assert_eq!(free["metadata"]["outputs_forced"], false);
    assert!(
        free["results"]["8"]["tokens"]["output_per_request"]["mean"]
            .as_f64()
            .unwrap()
            < 300.0
    );
    assert_eq!(forced["metadata"]["outputs_forced"], true);
    assert_eq!(forced["metadata"]["extra_body"]["min_tokens"], 300);
    let out = &forced["results"]["8"]["tokens"]["output_per_request"];
    assert_eq!(
        (out["mean"].as_f64(), out["std"].as_f64()),
        (Some(300.0), Some(0.0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_file_has_one_line_per_request() {
    let server = ScriptedServer::start(|i, _| Script {
        fault: if i == 3 {
            Fault::Status(503)
        } else {
            Fault::None
        },
        tokens: Some(5),
        ttft: Duration::from_millis(20),
        itl: Duration::from_millis(2),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let lines_path = dir.path().join("requests.jsonl");
    let o = oai_bench(&[
        "--model",
        "test-model",
        "--dataset_key",
        "synthetic",
        "--api_base",
        &server.api_base(),
        "--batch_sizes",
        "1,2",
        "--num_runs",
        "2",
        "--warmup_runs",
        "0",
        "--max_tokens",
        "5",
        "--stream",
        "--results_file",
        out.to_str().unwrap(),
        "--requests_file",
        lines_path.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(&lines_path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2 + 4, "one line per request");
    let levels: Vec<&str> = lines.iter().map(|l| l["level"].as_str().unwrap()).collect();
    assert_eq!(levels, ["1", "1", "2", "2", "2", "2"]);
    let failed: Vec<&Value> = lines.iter().filter(|l| l["status"] == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["error_kind"], "http_status");
    let doc = read(&out);
    let mut ttfts = Vec::new();
    for l in lines.iter().filter(|l| l["status"] == "ok") {
        assert_eq!(l["completion_tokens"], 5);
        assert_eq!(l["token_source"], "usage");
        let ttft = l["ttft_s"].as_f64().unwrap();
        assert!(ttft >= 0.020);
        // Relative stamps are consistent with each other.
        let rel =
            (l["first_token_s"].as_f64().unwrap() - l["send_s"].as_f64().unwrap() - ttft).abs();
        assert!(rel < 1e-6);
        assert!(l["end_s"].as_f64().unwrap() >= l["last_token_s"].as_f64().unwrap());
        assert!(l["send_unix"].as_f64().unwrap() > 1.7e9);
        if l["level"] == "1" {
            ttfts.push(ttft);
        }
    }
    // The file agrees with the summary.
    let mean = ttfts.iter().sum::<f64>() / ttfts.len() as f64;
    assert!(
        (mean
            - doc["results"]["1"]["latency"]["ttft"]["mean"]
                .as_f64()
                .unwrap())
        .abs()
            < 1e-9
    );
}

#[test]
fn sustained_levels_write_the_json_tables_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("open.json");
    let csv = dir.path().join("open.csv");
    let md = dir.path().join("open.md");
    let jsonl = dir.path().join("open.jsonl");
    let o = oai_bench(&[
        "--simulate",
        "tiny",
        "--request_rate",
        "20,40",
        "--num_requests",
        "15",
        "--arrival",
        "constant",
        "--warmup_runs",
        "0",
        "--max_tokens",
        "8",
        "--stream",
        "--goodput",
        "e2el:60000",
        "--sim_time_scale",
        "4",
        "--results_file",
        out.to_str().unwrap(),
        "--csv_file",
        csv.to_str().unwrap(),
        "--markdown_file",
        md.to_str().unwrap(),
        "--requests_file",
        jsonl.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("=== 20 requests/s ==="), "{stdout}");
    assert!(stdout.contains("Summary"), "{stdout}");
    let doc = read(&out);
    assert_eq!(doc["metadata"]["mode"], "open_loop");
    assert_eq!(doc["metadata"]["levels"], serde_json::json!(["20", "40"]));
    assert_eq!(doc["metadata"]["num_runs"], 1);
    for key in ["20", "40"] {
        let level = &doc["results"][key];
        assert_eq!(level["requests"]["succeeded"], 15);
        assert_eq!(level["goodput"]["good"], 15);
        assert_eq!(level["load"]["arrival"], "constant");
        assert!(level["load"]["send_lag"]["p99"].as_f64().unwrap() >= 0.0);
    }
    // CSV: a header and one row per level, the same figures as the JSON.
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("level,mode,succeeded,failed,cancelled,output_tokens_per_s"));
    assert!(lines[1].starts_with("20,open_loop,15,0,0,"));
    let cols: Vec<&str> = lines[0].split(',').collect();
    let row: Vec<&str> = lines[2].split(',').collect();
    let ttft_p50: f64 = row[cols.iter().position(|c| *c == "ttft_p50_ms").unwrap()]
        .parse()
        .unwrap();
    let json_p50 = doc["results"]["40"]["latency"]["ttft"]["p50"]
        .as_f64()
        .unwrap()
        * 1e3;
    assert!((ttft_p50 - json_p50).abs() < 1e-9);
    let md = std::fs::read_to_string(&md).unwrap();
    assert_eq!(md.lines().count(), 4);
    assert!(md.starts_with("| level | mode |"));
    // Records: 30 lines, each with its due time and send lag.
    let recs: Vec<Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 30);
    assert!(recs
        .iter()
        .all(|r| r["send_lag_s"].as_f64().unwrap() >= 0.0));
    // Constant arrivals at 20/s: due 50 ms apart.
    let due: Vec<f64> = recs[..15]
        .iter()
        .map(|r| r["scheduled_s"].as_f64().unwrap())
        .collect();
    assert!((due[1] - due[0] - 0.05).abs() < 1e-6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aime_comes_from_the_hub_and_then_from_the_cache() {
    let hub = tokenomics_testkit::MockHub::start().await;
    let mut csv = String::from("ID,Year,Problem Number,Question,Answer,Part\n");
    for i in 1..=3 {
        csv.push_str(&format!(
            "1983-I-{i},1983,{i},\"AIME question {i}, with a comma\",{i},\n"
        ));
    }
    hub.publish(
        "gneubig/aime-1983-2024",
        "main",
        "5555555555555555555555555555555555555555",
        vec![("AIME_Dataset_1983_2024.csv", csv.into_bytes())],
    );
    let server = ScriptedServer::uniform(fast()).await;
    let api_base = server.api_base();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("aime.json");
    let endpoint = hub.endpoint();
    let run = |hub_env: Option<(&str, &Path)>| {
        oai_bench_with(
            &[
                "--model",
                "test-model",
                "--api_base",
                &api_base,
                "--batch_sizes",
                "4",
                "--num_runs",
                "1",
                "--warmup_runs",
                "0",
                "--max_tokens",
                "5",
                "--results_file",
                out.to_str().unwrap(),
            ],
            hub_env,
        )
    };
    let home = dir.path().join("hf-home");
    let o = tokio::task::block_in_place(|| run(Some((&endpoint, &home))));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc = read(&out);
    assert_eq!(doc["metadata"]["dataset_key"], "aime");
    let ds = &doc["metadata"]["dataset"];
    assert_eq!(ds["rows"], 3);
    assert_eq!(ds["source"]["repo"], "gneubig/aime-1983-2024");
    assert_eq!(
        ds["source"]["commit"],
        "5555555555555555555555555555555555555555"
    );
    assert_eq!(doc["results"]["4"]["requests"]["succeeded"], 4);
    // The server was asked the AIME questions (4 requests over 3 rows: one repeats).
    let prompts: Vec<String> = server.truth().iter().map(|t| t.prompt.clone()).collect();
    assert_eq!(prompts.len(), 4);
    assert!(
        prompts.iter().all(|p| p.starts_with("AIME question ")),
        "{prompts:?}"
    );
    // Offline, from the cache the first run filled.
    drop(hub);
    let o = tokio::task::block_in_place(|| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oai-bench"));
        cmd.arg("--no_preflight")
            .args([
                "--model",
                "test-model",
                "--api_base",
                &api_base,
                "--batch_sizes",
                "2",
                "--num_runs",
                "1",
                "--warmup_runs",
                "0",
                "--max_tokens",
                "5",
                "--results_file",
                out.to_str().unwrap(),
            ])
            .env("HF_HOME", &home)
            .env("HF_HUB_OFFLINE", "1")
            .env_remove("OPENAI_API_KEY")
            .output()
            .unwrap()
    });
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(read(&out)["metadata"]["dataset"]["rows"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_tokens_without_a_tokenizer_are_an_estimate_and_say_so() {
    // The scripted server has no tokenize endpoint.
    let server = ScriptedServer::uniform(fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("est.json");
    let api_base = server.api_base();
    let o = tokio::task::block_in_place(|| {
        oai_bench(&[
            "--model",
            "test-model",
            "--api_base",
            &api_base,
            "--input_tokens",
            "130",
            "--batch_sizes",
            "2",
            "--num_runs",
            "1",
            "--warmup_runs",
            "0",
            "--max_tokens",
            "3",
            "--results_file",
            out.to_str().unwrap(),
        ])
    });
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("estimated"), "{stderr}");
    let doc = read(&out);
    assert_eq!(doc["metadata"]["dataset_key"], "synthetic");
    let src = &doc["metadata"]["dataset"]["source"];
    assert_eq!(src["token_count_source"], "estimate");
    assert_eq!(src["input_tokens"]["tokens"], 130);
    // 130 tokens at 1.3 per word: 100 words in the user message, and no system message.
    for t in server.truth() {
        assert_eq!(t.prompt.split(' ').count(), 100);
    }
}
