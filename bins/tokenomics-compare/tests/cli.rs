//! `tokenomics-compare` as a CI job runs it: Markdown or JSON on stdout or into a file, records
//! given as `RESULTS.json:REQUESTS.jsonl` or found by name, exit code 5 on a significant
//! regression beyond `--fail_if_slower`, and every mistake (a missing or foreign file, files
//! with no level in common, a refused value) one line on stderr with exit code 2, never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tokenomics_testkit::cli::{assert_refused, NumericFlag};

fn compare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tokenomics-compare"))
        .args(args)
        .output()
        .expect("run tokenomics-compare")
}

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/tokenomics-compare/tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// A result file of this project's and its per-request records: one closed-loop level of 8,
/// `runs` runs of 40 streamed requests whose time to first token is `ttft_ms(i)` and whose 20
/// tokens come 10 ms apart.
fn write_run(dir: &Path, name: &str, runs: u64, ttft_ms: impl Fn(u64) -> f64) -> PathBuf {
    let per_run = 40;
    let mut lines = String::new();
    for run in 0..runs {
        for i in 0..per_run {
            let ttft = ttft_ms(run * per_run + i) / 1e3;
            let tokens: Vec<String> = (0..20)
                .map(|k| format!("{:.4}", ttft + k as f64 * 0.01))
                .collect();
            lines.push_str(&format!(
                "{{\"level\":\"8\",\"run\":{run},\"status\":\"ok\",\"completion_tokens\":20,\"ttft_s\":{ttft},\"e2el_s\":{},\"token_s\":[{}]}}\n",
                ttft + 0.19,
                tokens.join(",")
            ));
        }
    }
    let records = dir.join(format!("{name}.records.jsonl"));
    std::fs::write(&records, lines).unwrap();
    let dist = r#"{"count":40,"mean":0.1,"std":0.01,"min":0.08,"max":0.2,"p50":0.1,"p90":0.11,"p95":0.12,"p99":0.13,"p99.9":0.14}"#;
    let stat = r#"{"mean":100.0,"std":1.0}"#;
    let doc = format!(
        r#"{{"metadata":{{"timestamp":"2026-01-01T00:00:00","model":"m","dataset_key":"synthetic","api_base":"http://127.0.0.1:8000/v1","batch_sizes":[8],"num_runs":{runs},"max_tokens":20,"temperature":0.0,"seed":1,"warmup_runs":0,"n_cores":1,"tool":"tokenomics 0.1.0","mode":"closed_loop","stream":true}},
        "results":{{"8":{{"tokens":{{"input_per_request":{stat},"output_per_request":{stat}}},
        "timings":{{"batch_total_seconds":{stat},"fastest_seconds":{stat},"slowest_seconds":{stat},"spread_seconds":{stat}}},
        "throughput":{{"batch_tokens_per_second":{stat},"request_tokens_per_second":{stat}}},
        "latency":{{"ttft":{dist},"itl":{dist},"tpot":{dist},"e2el":{dist}}},
        "requests":{{"succeeded":{},"failed":0}},
        "load":{{"mode":"closed_loop","max_concurrency":8,"num_requests":40,"duration_seconds":null,"warmup_seconds":0.0,"at_end":"wait"}}}}}}}}"#,
        runs * per_run
    );
    let results = dir.join(format!("{name}.json"));
    std::fs::write(&results, doc).unwrap();
    results
}

/// TTFT spread over 100–140 ms, the same in every run.
fn baseline_ttft(i: u64) -> f64 {
    100.0 + (i * 37 % 40) as f64
}

#[test]
fn markdown_and_json_with_records_given_or_found_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_run(dir.path(), "a", 1, baseline_ttft);
    let b = write_run(dir.path(), "b", 1, |i| baseline_ttft(i + 5));
    let spec =
        |p: &Path, name: &str| format!("{}:{}", p.display(), dir.path().join(name).display());
    let o = compare(&[&spec(&a, "a.records.jsonl"), &spec(&b, "b.records.jsonl")]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout.starts_with("# Comparison against a.json"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| TTFT p50 |") && stdout.contains("bootstrap, 40 vs 40 requests"),
        "{stdout}"
    );
    assert!(stdout.contains("no significant difference"), "{stdout}");

    // JSON into a file; the records are found by name (`X.records.jsonl` is not a name they
    // are looked for by, so copy them to `X.jsonl`).
    for n in ["a", "b"] {
        std::fs::copy(
            dir.path().join(format!("{n}.records.jsonl")),
            dir.path().join(format!("{n}.jsonl")),
        )
        .unwrap();
    }
    let out = dir.path().join("report.json");
    let o = compare(&[
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--format",
        "json",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Comparison saved to"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(report["inputs"][0]["per_request_records"], true);
    assert_eq!(
        report["levels"][0]["rows"][0]["metric"],
        "output_tokens_per_second"
    );
    assert!(report["inputs"][1]["notes"][0]
        .as_str()
        .unwrap()
        .contains("found beside it"));
}

#[test]
fn a_significant_regression_beyond_the_gate_is_exit_5() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_run(dir.path(), "base", 6, baseline_ttft);
    // Every request's first token 25% later, in each of six runs.
    let b = write_run(dir.path(), "cand", 6, |i| baseline_ttft(i) * 1.25);
    for n in ["base", "cand"] {
        std::fs::copy(
            dir.path().join(format!("{n}.records.jsonl")),
            dir.path().join(format!("{n}.jsonl")),
        )
        .unwrap();
    }
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let o = compare(&[a, b, "--fail_if_slower", "10"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("significantly slower by more than 10%")
            && stderr.contains("TTFT p50: +25.0%"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("Mann–Whitney U across runs, 6 vs 6"));
    // Beyond the slowdown, the gate passes; so does a comparison of a file with itself.
    assert_eq!(
        compare(&[a, b, "--fail_if_slower", "30"]).status.code(),
        Some(0)
    );
    assert_eq!(
        compare(&[a, a, "--fail_if_slower", "0"]).status.code(),
        Some(0)
    );
    // Foreign files gate the same way: the vLLM fixture is about 10% slower per token.
    let o = compare(&[
        &fixture("aiperf/profile_export_aiperf.json"),
        &fixture("vllm/bench_serve_detailed.json"),
        "--fail_if_slower",
        "5",
    ]);
    assert_eq!(
        o.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn mistakes_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_run(dir.path(), "a", 1, baseline_ttft);
    let a = a.to_str().unwrap();
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"hello\": 1}").unwrap();
    let cut = dir.path().join("cut.json");
    std::fs::write(
        &cut,
        &std::fs::read_to_string(fixture("guidellm/benchmarks.json")).unwrap()[..3000],
    )
    .unwrap();
    let other_level = dir.path().join("other.json");
    std::fs::write(
        &other_level,
        std::fs::read_to_string(a)
            .unwrap()
            .replace("\"8\":{", "\"16\":{")
            .replace("\"max_concurrency\":8", "\"max_concurrency\":16"),
    )
    .unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![a.into()], "required"),
        (
            vec![
                a.into(),
                dir.path().join("missing.json").display().to_string(),
            ],
            "cannot read",
        ),
        (
            vec![a.into(), junk.display().to_string()],
            "is not a result file this tool reads (an object with hello)",
        ),
        (
            vec![a.into(), cut.display().to_string()],
            "is not valid JSON",
        ),
        (
            vec![a.into(), format!("{a}:{}", junk.display())],
            "expected oai-bench --requests_file lines",
        ),
        (
            vec![a.into(), other_level.display().to_string()],
            "have no level in common",
        ),
        (
            vec![
                a.into(),
                fixture("../../../tokenomics-stats/tests/fixtures/original_embed.json"),
            ],
            "embedding",
        ),
        (
            vec![a.into(), a.into(), "--format".into(), "csv".into()],
            "--format",
        ),
        (
            vec![
                a.into(),
                a.into(),
                "-o".into(),
                dir.path().join("no/such/dir/r.md").display().to_string(),
            ],
            "cannot write",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = compare(&args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(stderr.starts_with("tokenomics-compare: "), "{stderr}");
    }
}

#[test]
fn hostile_numbers_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_run(dir.path(), "a", 1, baseline_ttft);
    let a = a.to_str().unwrap();
    let flags = [
        NumericFlag::new("--confidence"),
        NumericFlag::accepting("--noise_threshold", &["0"]),
        NumericFlag::accepting("--fail_if_slower", &["0"]),
    ];
    let checked = assert_refused(
        Path::new(env!("CARGO_BIN_EXE_tokenomics-compare")),
        &[a, a],
        &flags,
    );
    assert_eq!(checked, 7 * flags.len() - 2);
}

#[test]
fn the_clients_own_warnings_about_a_level_are_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_run(dir.path(), "a", 1, baseline_ttft);
    let b = write_run(dir.path(), "b", 1, baseline_ttft);
    // b's load machine lost time to its hypervisor during the level (`client_load`, as
    // oai-bench writes it).
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&b).unwrap()).unwrap();
    let warning = "the hypervisor took 7.0% of this machine's CPU time during this level (steal): \
                   the client may have read and sent late";
    doc["results"]["8"]["client_load"] = serde_json::json!({
        "seconds": 12.5, "cpu_cores": 0.4, "worker_threads": 1, "stolen_share": 0.07,
        "warnings": [warning]
    });
    std::fs::write(&b, doc.to_string()).unwrap();
    let o = compare(&[a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains(&format!("closed_loop 8 of b.json: {warning}")),
        "{stdout}"
    );
    assert!(
        !stdout.contains("of a.json: the"),
        "a level without warnings gets none: {stdout}"
    );

    // A merged run: each load machine's warnings, kept by the merge, named by shard.
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&a).unwrap()).unwrap();
    let busy = "the client used 0.97 CPU cores over this level with 1 worker thread(s)";
    let shard = |index: u32, warnings: &[&str]| {
        serde_json::json!({
            "index": index, "host": format!("load-{index}"), "late_seconds": 0.0,
            "requests": 10, "file": format!("shard-{index}-of-2.json"),
            "client_load": {"8": {"seconds": 12.5, "cpu_cores": 0.97, "worker_threads": 1,
                                  "warnings": warnings}}
        })
    };
    doc["metadata"]["merged"] = serde_json::json!({
        "count": 2, "config_hash": "abc", "start_at": 0.0, "start_skew_seconds": 0.0,
        "shards": [shard(0, &[]), shard(1, &[busy])]
    });
    std::fs::write(&a, doc.to_string()).unwrap();
    let o = compare(&[a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains(&format!(
            "closed_loop 8 of a.json, shard 1 (load-1): {busy}"
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("shard 0 (load-0)"), "{stdout}");
}
