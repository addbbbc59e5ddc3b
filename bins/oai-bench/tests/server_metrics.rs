//! Issue #18's server metrics: `oai-bench` scrapes the server's Prometheus `/metrics` around and
//! during every level, and cross-checks the server's generated tokens against its own count.
//! Against the simulator (exact by construction) the two agree to the token for every level,
//! warm-ups excluded; its gauges agree with what the load was; a server without `/metrics` gives
//! one note and a normal run; bad flag values are refused in one line.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokenomics_testkit::cli::{assert_refused, NumericFlag};
use tokenomics_testkit::{refused_api_base, Script, ScriptedServer};

fn oai_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oai-bench"))
        .args(["--progress", "never"])
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", "/nonexistent/tokenomics-test-hf-home")
        .output()
        .expect("run oai-bench")
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("results file")).expect("valid JSON")
}

/// Runs `args` against the tiny simulated preset; the document and the console output.
fn simulated(args: &[&str], series: &Path) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = oai_bench(
        &[
            &["--simulate", "tiny", "--max_tokens", "24"][..],
            args,
            &[
                "--scrape_interval",
                "0.02",
                "--server_metrics_file",
                series.to_str().unwrap(),
                "--results_file",
                out.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    (read(&out), stdout)
}

/// Every level's generation-token delta equals the client's output tokens, to the token; with
/// `measured_only` (no sustained warm-up) those are the measured requests' output tokens.
fn assert_exact(doc: &Value, stdout: &str, measured_only: bool) -> Vec<(String, Value)> {
    let results = doc["results"].as_object().expect("results");
    assert!(!results.is_empty());
    let mut blocks = Vec::new();
    for (key, level) in results {
        let m = &level["server_metrics"];
        let check = &m["cross_check"];
        let client = check["client_output_tokens"]
            .as_u64()
            .expect("client count");
        assert!(client > 0, "{key}: {m}");
        assert_eq!(
            check["server_generation_tokens"].as_f64(),
            Some(client as f64),
            "{key}: {m}"
        );
        assert_eq!(check["difference"].as_f64(), Some(0.0), "{key}");
        assert_eq!(
            m["counters"]["generation_tokens"].as_f64(),
            Some(client as f64)
        );
        // Every measured request succeeded and reported its usage: the client's count is the
        // level's output tokens per request × requests.
        let n = level["requests"]["succeeded"].as_u64().unwrap();
        let mean = level["tokens"]["output_per_request"]["mean"]
            .as_f64()
            .unwrap();
        if measured_only {
            assert!(
                (mean * n as f64 - client as f64).abs() < 1e-6 * client as f64,
                "{key}"
            );
        }
        assert_eq!(m["engine"], "vllm");
        assert!(
            m["scrapes"].as_u64().unwrap() >= 2,
            "{key}: both boundaries"
        );
        let line = format!("generation tokens, client {}", thousands(client));
        assert!(stdout.contains(&line), "{key}: {line:?} in\n{stdout}");
        blocks.push((key.clone(), m.clone()));
    }
    assert!(stdout.contains("(0.0%)"));
    blocks
}

/// Stages: one continuous load whose requests do not drain between stages, so each stage's
/// window is its time — one scrape at each boundary ends a stage and begins the next. The
/// stages' counters add up to the whole load's exactly (the windows meet at the boundary
/// scrapes), each stage's gauges are its own, and no stage claims a cross-check its window
/// cannot give (requests in flight at a boundary are counted in both).
#[test]
fn stages_get_a_window_each_that_meet_at_the_boundary_and_add_up_to_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let series = dir.path().join("series.jsonl");
    let (doc, stdout) = simulated(
        &[
            "--stages",
            "rate:10@1,40@1",
            "--arrival",
            "constant",
            "--warmup_runs",
            "2",
        ],
        &series,
    );
    let keys = ["stage1:10", "stage2:40"];
    let (mut server, mut client) = (0.0, 0.0);
    for key in keys {
        let level = &doc["results"][key];
        let m = &level["server_metrics"];
        assert!(m["cross_check"].is_null(), "{key}: {m}");
        assert!(m["scrapes"].as_u64().unwrap() >= 2, "{key}: {m}");
        server += m["counters"]["generation_tokens"]
            .as_f64()
            .expect("counted");
        client += level["requests"]["succeeded"].as_f64().unwrap()
            * level["tokens"]["output_per_request"]["mean"]
                .as_f64()
                .unwrap();
        // The stage's timeline has the server's gauges of its own scrapes.
        let running = level["timeline"]["server"]["running"].as_array().unwrap();
        assert!(running.iter().any(Value::is_number), "{key}");
    }
    // The two windows cover the whole load and nothing else (the warm-up requests finished
    // before the first stage's opening scrape): together, the measured requests' tokens.
    assert_eq!(server, client.round());
    // Four times the rate: the second stage generated clearly more (a request in flight at the
    // boundary splits its tokens between the two, so not exactly four times).
    let generated = |key: &str| {
        doc["results"][key]["server_metrics"]["counters"]["generation_tokens"]
            .as_f64()
            .unwrap()
    };
    assert!(
        generated(keys[1]) > 2.0 * generated(keys[0]),
        "{} then {}",
        generated(keys[0]),
        generated(keys[1])
    );
    assert_eq!(stdout.matches("server counted").count(), 2, "{stdout}");
    // The series file: a begin mark per stage and one end; the second stage's begin is the
    // boundary's scrape, sent when the second stage starts (on the run's clock, as the
    // timeline's start). Not before it; after it by the timer's millisecond and whatever a
    // busy two-CPU machine adds before the scraping task runs, so the bound is loose.
    let lines: Vec<Value> = std::fs::read_to_string(&series)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let begins: Vec<&Value> = lines.iter().filter(|l| l["mark"] == "begin").collect();
    let levels: Vec<&str> = begins
        .iter()
        .map(|l| l["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, keys);
    assert_eq!(lines.iter().filter(|l| l["mark"] == "end").count(), 1);
    let boundary = doc["results"][keys[1]]["timeline"]["start_seconds"]
        .as_f64()
        .unwrap();
    let scraped = begins[1]["t_s"].as_f64().unwrap();
    assert!(
        scraped >= boundary - 1e-6 && scraped < boundary + 0.1,
        "boundary at {boundary} s, scraped at {scraped} s"
    );
    // Each window runs from its begin to the next boundary scrape (the first also has the
    // load's start-up, after its opening scrape).
    let seconds = |key: &str| {
        doc["results"][key]["server_metrics"]["seconds"]
            .as_f64()
            .unwrap()
    };
    let first = seconds(keys[0]);
    assert!((scraped - begins[0]["t_s"].as_f64().unwrap() - first).abs() < 1e-6);
    assert!(first >= 1.0, "{first}");
}

fn thousands(n: u64) -> String {
    let d = n.to_string();
    let mut s = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            s.push(',');
        }
        s.push(c);
    }
    s
}

#[test]
fn bursts_cross_check_to_the_token_with_warm_ups_excluded() {
    let dir = tempfile::tempdir().unwrap();
    let series = dir.path().join("series.jsonl");
    let (doc, stdout) = simulated(
        &[
            "--batch_sizes",
            "1,4",
            "--num_runs",
            "2",
            "--warmup_runs",
            "2",
        ],
        &series,
    );
    for (key, m) in assert_exact(&doc, &stdout, true) {
        let batch: f64 = key.parse().unwrap();
        let running = m["gauges"]["running"]["max"].as_f64().unwrap();
        assert!(running <= batch, "{key}: {m}");
    }
    // The series: one line per scrape, on the run's clock, with each level's boundaries.
    let text = std::fs::read_to_string(&series).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let begins: Vec<&Value> = lines.iter().filter(|l| l["mark"] == "begin").collect();
    assert_eq!(begins.len(), 2);
    assert_eq!(begins[0]["level"], "1");
    // Two runs per level: a closing scrape after each.
    assert_eq!(lines.iter().filter(|l| l["mark"] == "end").count(), 4);
    let t: Vec<f64> = lines.iter().map(|l| l["t_s"].as_f64().unwrap()).collect();
    assert!(t.windows(2).all(|w| w[0] <= w[1]), "in order on one clock");
    // Metrics with no role are kept raw.
    assert!(lines[0]["samples"]
        .as_object()
        .unwrap()
        .keys()
        .any(|k| k.starts_with("tokenomics_sim:peak_requests_in_flight{")));
}

#[test]
fn a_closed_loop_keeps_its_concurrency_running_and_counts_its_warm_up_seconds_too() {
    let dir = tempfile::tempdir().unwrap();
    let series = dir.path().join("series.jsonl");
    let (doc, stdout) = simulated(
        &[
            "--max_concurrency",
            "2,4",
            "--num_requests",
            "32",
            "--warmup_seconds",
            "0.2",
            "--warmup_runs",
            "1",
            "--stream",
        ],
        &series,
    );
    for (key, m) in assert_exact(&doc, &stdout, false) {
        // Below the engine's max_num_seqs (16) a closed loop at C keeps exactly C running.
        let c: f64 = key.parse().unwrap();
        assert_eq!(
            m["gauges"]["running"]["max"].as_f64(),
            Some(c),
            "{key}: {m}"
        );
        assert_eq!(
            m["gauges"]["waiting"]["max"].as_f64(),
            Some(0.0),
            "{key}: {m}"
        );
        assert!(
            m["gauges"]["running"]["mean"].as_f64().unwrap() > 0.5 * c,
            "{key}: {m}"
        );
        // The warm-up's requests are the server's too: the cross-check counts more than the
        // measured requests' tokens.
        let level = &doc["results"][&key];
        let measured = level["requests"]["succeeded"].as_f64().unwrap()
            * level["tokens"]["output_per_request"]["mean"]
                .as_f64()
                .unwrap();
        let client = m["cross_check"]["client_output_tokens"].as_f64().unwrap();
        assert!(
            client > measured,
            "{key}: warm-up included: {client} > {measured}"
        );
    }
}

/// On a timetable (`--start_at`, as sharded runs have) a level's runs start at their times,
/// long after its opening scrape, with a gap between them: its gauges and its `seconds` are
/// the runs' own, not the waits'. The counters still span the whole window (nothing of the
/// level reaches the server in the waits), so the cross-check stays exact.
#[test]
fn on_a_timetable_the_gauges_and_seconds_are_the_runs_not_the_waits() {
    let dir = tempfile::tempdir().unwrap();
    let series = dir.path().join("series.jsonl");
    // The first run starts 3 s after the launch (the process is ready in well under a second),
    // runs 1 s, waits 1.5 s, runs 1 s: 2 s of load in a window of about 5 s.
    let start_at = (SystemTime::now() + Duration::from_secs(3))
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let (doc, stdout) = simulated(
        &[
            "--max_concurrency",
            "4",
            "--duration",
            "1",
            "--num_runs",
            "2",
            "--run_gap",
            "1.5",
            "--start_at",
            &format!("{start_at:.3}"),
            "--stream",
        ],
        &series,
    );
    let blocks = assert_exact(&doc, &stdout, false);
    let [(_, m)] = &blocks[..] else {
        panic!("one level: {blocks:?}")
    };
    // Each run's span: from its start to its closing scrape, after its last request (about
    // 0.15 s of tiny's 24 tokens) has finished. With the waits it would be 5 s or more.
    let seconds = m["seconds"].as_f64().unwrap();
    assert!((2.0..4.0).contains(&seconds), "{m}");
    // Four in flight the whole of each run (tiny runs 16): the mean is near 4, not diluted by
    // the waits' idle scrapes (which would bring it near 4 × 2/5).
    let running = m["gauges"]["running"]["mean"].as_f64().unwrap();
    assert!(running > 0.6 * 4.0, "{m}");
    // The idle scrapes are in the series file all the same: about 3.5 s of waits at one per
    // 20 ms, some 175 (the bound leaves room for a busy machine's late ticks).
    let lines = std::fs::read_to_string(&series).unwrap().lines().count() as u64;
    let scrapes = m["scrapes"].as_u64().unwrap();
    assert!(
        lines > scrapes + 25,
        "{lines} lines, {scrapes} scrapes in the gauges"
    );
}

/// The exactness check above, but without warm-up seconds: the client's count is exactly the
/// measured requests' (no request outside the measurement reaches the server in the level).
#[test]
fn without_warm_up_seconds_the_server_counted_exactly_the_measured_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let series = dir.path().join("series.jsonl");
    let (doc, _) = simulated(
        &[
            "--max_concurrency",
            "3",
            "--num_requests",
            "12",
            "--warmup_runs",
            "3",
        ],
        &series,
    );
    let level = &doc["results"]["3"];
    let measured = (level["requests"]["succeeded"].as_f64().unwrap()
        * level["tokens"]["output_per_request"]["mean"]
            .as_f64()
            .unwrap())
    .round();
    let m = &level["server_metrics"];
    assert_eq!(
        m["counters"]["generation_tokens"].as_f64(),
        Some(measured),
        "{m}"
    );
    assert_eq!(
        m["counters"]["prompt_tokens"].as_f64().unwrap(),
        (12.0
            * level["tokens"]["input_per_request"]["mean"]
                .as_f64()
                .unwrap())
        .round()
    );
}

fn fast() -> Script {
    Script {
        tokens: Some(4),
        ..Script::default()
    }
}

fn scripted_args<'a>(server: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "--no_preflight",
        "--model",
        "test-model",
        "--dataset_key",
        "synthetic",
        "--api_base",
        server,
        "--batch_sizes",
        "2",
        "--num_runs",
        "1",
        "--warmup_runs",
        "0",
        "--results_file",
        out,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_metrics_gives_one_note_and_a_normal_run() {
    let server = ScriptedServer::uniform(fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let base = server.api_base();
    let o = oai_bench(&scripted_args(&base, out.to_str().unwrap()));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let notes: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("metrics were not scraped"))
        .collect();
    assert_eq!(notes.len(), 1, "{stdout}");
    assert!(notes[0].contains("/metrics: HTTP 404"), "{}", notes[0]);
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let doc = read(&out);
    assert_eq!(doc["results"]["2"]["requests"]["succeeded"], 2);
    assert!(doc["results"]["2"].get("server_metrics").is_none());
    // One try at the first scrape, none after.
    let scrapes = server
        .seen()
        .iter()
        .filter(|(_, p)| p == "/metrics")
        .count();
    assert_eq!(scrapes, 1);
    assert_eq!(server.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_scrapes_nothing_and_an_explicit_url_that_fails_stops_before_any_request() {
    let server = ScriptedServer::uniform(fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let base = server.api_base();
    let mut args = scripted_args(&base, out.to_str().unwrap());
    args.extend(["--server_metrics", "off"]);
    let o = oai_bench(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("metrics"));
    assert!(server.seen().iter().all(|(_, p)| p != "/metrics"));
    assert_eq!(server.requests(), 2);

    let origin = base.trim_end_matches("/v1");
    let url = format!("{origin}/no-metrics-here");
    let mut args = scripted_args(&base, out.to_str().unwrap());
    args.extend(["--server_metrics", &url]);
    let o = oai_bench(&args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("server metrics") && stderr.contains("HTTP 404"),
        "{stderr}"
    );
    assert_eq!(server.requests(), 2, "no request was sent");
}

#[test]
fn bad_values_are_refused_in_one_line() {
    let binary = Path::new(env!("CARGO_BIN_EXE_oai-bench"));
    let base = refused_api_base();
    let base = ["--model", "m", "--api_base", base.as_str()];
    assert_eq!(
        assert_refused(binary, &base, &[NumericFlag::new("--scrape_interval")]),
        7
    );
    for bad in [
        "",
        "metrics",
        "ftp://h/metrics",
        "localhost:8000/metrics",
        "http://",
        "0.001",
    ] {
        for (flag, value) in [("--server_metrics", bad), ("--scrape_interval", bad)] {
            if flag == "--scrape_interval" && bad.is_empty() {
                continue; // among the hostile values above
            }
            let o = Command::new(binary)
                .args(base)
                .args([flag, value])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{flag} {value:?}: {stderr}");
            assert_eq!(
                stderr.trim_end().lines().count(),
                1,
                "{flag} {value:?}: {stderr}"
            );
            assert!(stderr.contains(flag.trim_start_matches('-')), "{stderr}");
        }
    }
}
