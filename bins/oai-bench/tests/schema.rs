//! The result files keep their structure across the typed-schema rework (#14): for every mode,
//! the JSON document, the CSV and Markdown tables and the per-request lines written now have the
//! same keys, in the same order, with the same kinds of values as those in `fixtures/before/`,
//! which the binaries of commit 52ca86b wrote for the same flags and seed against the `fixed`
//! preset. Only measured numbers, the timestamp and the server's port differ.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tokenomics_testkit::schema::{first_difference, strip};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/before")
        .join(name)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Runs oai-bench against the simulator's `fixed` preset (ten times faster than real time) with
/// the flags the fixtures were written with.
fn run(dir: &Path, name: &str, flags: &[&str]) -> PathBuf {
    let out = dir.join(format!("{name}.json"));
    let mut args = vec![
        "--simulate",
        "fixed",
        "--sim_time_scale",
        "10",
        "--warmup_runs",
        "1",
        "--max_tokens",
        "8",
        "--progress",
        "never",
        "--results_file",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(flags);
    let o = Command::new(env!("CARGO_BIN_EXE_oai-bench"))
        .args(&args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Fields added on purpose since the fixtures were written, removed before comparing:
/// `metadata.preflight` (#25, the check before the run), the confidence intervals (`ci`,
/// #17) beside the statistics, an open loop's `latency_trend` (#16), each level's
/// `server_metrics` and `timeline` (#18) and its `client_load` (#20, checked here first).
fn without_additions(mut doc: Value) -> Value {
    let metadata = doc["metadata"].as_object_mut().unwrap();
    assert!(
        metadata.remove("preflight").is_some(),
        "the preflight is recorded"
    );
    let workers = doc["metadata"]["n_cores"].clone();
    for level in doc["results"].as_object().unwrap().values() {
        let load = &level["client_load"];
        assert!(load["seconds"].as_f64().unwrap() > 0.0, "{load}");
        assert_eq!(load["worker_threads"], workers, "{load}");
        assert_eq!(
            load["simulator_in_process"], true,
            "--simulate shares the process: {load}"
        );
        #[cfg(target_os = "linux")]
        assert!(load["cpu_cores"].as_f64().unwrap() > 0.0, "{load}");
    }
    strip(
        &mut doc,
        &[
            "ci",
            "server_metrics",
            "latency_trend",
            "timeline",
            "client_load",
        ],
    );
    doc
}

fn same_structure(name: &str, now: &Value) {
    let before = read_json(&fixture(&format!("{name}.json")));
    let now = &without_additions(now.clone());
    if let Some(d) = first_difference(&before, now) {
        panic!("{name}.json differs from the file written before the rework at {d}");
    }
}

#[test]
fn every_mode_writes_the_json_it_wrote_before() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: [(&str, Vec<&str>); 7] = [
        (
            "burst",
            vec![
                "--batch_sizes",
                "1,3",
                "--num_runs",
                "2",
                "--csv_file",
                "burst.csv",
                "--markdown_file",
                "burst.md",
                "--requests_file",
                "burst.jsonl",
            ],
        ),
        (
            "burst_stream",
            vec!["--batch_sizes", "2", "--num_runs", "2", "--stream"],
        ),
        (
            "closed",
            vec![
                "--max_concurrency",
                "2,4",
                "--num_requests",
                "20",
                "--stream",
                "--goodput",
                "ttft:500,tpot:50,e2el:1000",
            ],
        ),
        (
            "open",
            vec![
                "--request_rate",
                "50,100.5",
                "--max_concurrency",
                "8",
                "--num_requests",
                "30",
                "--stream",
                "--goodput",
                "e2el:1000",
                "--csv_file",
                "open.csv",
                "--requests_file",
                "open.jsonl",
            ],
        ),
        (
            "open_cancel",
            vec![
                "--request_rate",
                "40",
                "--duration",
                "1",
                "--at_end",
                "cancel",
                "--arrival",
                "constant",
            ],
        ),
        (
            "closed_dur",
            vec![
                "--max_concurrency",
                "3",
                "--duration",
                "0.5",
                "--warmup_seconds",
                "0.2",
            ],
        ),
        (
            "compl",
            vec![
                "--endpoint",
                "completions",
                "--ignore_eos",
                "--stream",
                "--batch_sizes",
                "2",
                "--num_runs",
                "1",
            ],
        ),
    ];
    for (name, flags) in &cases {
        let out = run(d, name, flags);
        same_structure(name, &read_json(&out));
    }
    // The tables: the same header (CSV keeps every column; Markdown the columns that carry
    // anything, which for these runs are the same).
    for name in ["burst.csv", "open.csv", "burst.md"] {
        let header = |p: &Path| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .next()
                .unwrap()
                .to_string()
        };
        let (before, now) = (header(&fixture(name)), header(&d.join(name)));
        if name.ends_with(".md") {
            // The achieved-rate column is labelled for what it is now ("sent/s" before).
            assert_eq!(before, now.replace("achieved req/s", "sent/s"), "{name}");
        } else {
            assert_eq!(before, now, "{name}");
        }
    }
    // The per-request lines: the same keys in the same order.
    for name in ["burst.jsonl", "open.jsonl"] {
        let first = |p: &Path| -> Value {
            let text = std::fs::read_to_string(p).unwrap();
            serde_json::from_str(text.lines().next().unwrap()).unwrap()
        };
        let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
        assert_eq!(
            keys(&first(&fixture(name))),
            keys(&first(&d.join(name))),
            "{name}"
        );
    }
}
