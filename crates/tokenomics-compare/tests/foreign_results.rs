//! Other tools' result files, written by hand from each tool's schema (`tests/fixtures/`), load
//! with their definitions mapped onto this project's (units, sample standard deviations, what
//! does not map named in `metadata.imported`), plot with `tokenomics-plot` as they are, and
//! compare with one another; files of no known shape, or broken ones, are refused with what
//! was expected.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tokenomics_compare::import::{AnyResult, Format, Imported};
use tokenomics_compare::{compare, CompareOptions, Error, Input, Metric, Statistic, Test};
use tokenomics_stats::{AnyDocument, ChatDocument, ChatLevel, Load};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

fn chat(r: &AnyResult) -> &ChatDocument {
    match &r.document {
        AnyDocument::Chat(d) => d,
        AnyDocument::Embed(_) => panic!("a chat document"),
    }
}

fn imported(d: &ChatDocument) -> Imported {
    Imported::of(&d.metadata).expect("metadata.imported")
}

/// Equal to within a relative 1e-9 (the fixtures' figures are written to nine digits).
fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1e-12)
}

fn assert_same(what: &str, a: f64, b: f64) {
    assert!(same(a, b), "{what}: {a} vs {b}");
}

/// numpy's population std over n values as a sample std.
fn sample(population: f64, n: f64) -> f64 {
    population * (n / (n - 1.0)).sqrt()
}

fn closed_loop(level: &ChatLevel) -> u64 {
    match &level.load {
        Some(Load::ClosedLoop {
            max_concurrency, ..
        }) => *max_concurrency,
        other => panic!("a closed loop, not {other:?}"),
    }
}

#[test]
fn vllm_results_map_milliseconds_and_population_stds() {
    let src = json("vllm/bench_serve.json");
    let r = AnyResult::read(&fixture("vllm/bench_serve.json")).unwrap();
    assert_eq!(r.format, Format::Vllm);
    assert!(r.records.is_none(), "no --save-detailed arrays");
    let d = chat(&r);
    assert_eq!(d.metadata.model, "meta-llama/Llama-3.1-8B-Instruct");
    assert_eq!(d.metadata.timestamp, "2025-03-14T10:15:02");
    let level = &d.results["8"];
    assert_eq!(closed_loop(level), 8);
    let n = src["completed"].as_f64().unwrap();
    let lat = level.latency.as_ref().unwrap();
    assert_same(
        "TTFT mean",
        lat.ttft.mean,
        src["mean_ttft_ms"].as_f64().unwrap() / 1e3,
    );
    assert_same(
        "TTFT std",
        lat.ttft.std,
        sample(src["std_ttft_ms"].as_f64().unwrap() / 1e3, n),
    );
    assert_same(
        "TTFT p99",
        lat.ttft.p99,
        src["p99_ttft_ms"].as_f64().unwrap() / 1e3,
    );
    assert_same(
        "TPOT p50",
        lat.tpot.p50,
        src["median_tpot_ms"].as_f64().unwrap() / 1e3,
    );
    // One ITL per chunk gap: output tokens less one per request.
    assert_eq!(lat.itl.count, 40 * 31);
    // E2EL is not among the default --percentile-metrics; it comes from `latencies`.
    assert_eq!(lat.e2el.count, 40);
    assert!(lat.e2el.p50 > lat.ttft.p50);
    assert_same(
        "output tokens/s",
        level.throughput.batch_tokens_per_second.mean,
        src["output_throughput"].as_f64().unwrap(),
    );
    let imp = imported(d);
    assert_eq!(imp.tool, "vllm bench serve");
    for name in [
        "tokenizer_id",
        "total_token_throughput",
        "max_output_tokens_per_s",
    ] {
        assert!(imp.unmapped.iter().any(|u| u == name), "{name}: {imp:?}");
    }
    assert!(
        imp.notes.iter().any(|n| n.contains("role-only chunk")),
        "{imp:?}"
    );
    assert!(imp.not_recorded.iter().any(|f| f == "seed"), "{imp:?}");

    // With --append-result, one level per line.
    let r = AnyResult::read(&fixture("vllm/bench_serve_append.json")).unwrap();
    let keys: Vec<&String> = chat(&r).results.keys().collect();
    assert_eq!(keys, ["4", "8"]);
}

#[test]
fn vllm_per_request_arrays_become_records_with_this_projects_definitions() {
    let src = json("vllm/bench_serve_detailed.json");
    let r = AnyResult::read(&fixture("vllm/bench_serve_detailed.json")).unwrap();
    let d = chat(&r);
    let level = &d.results["8"];
    let counts = level.requests.as_ref().unwrap();
    assert_eq!((counts.succeeded, counts.failed), (38, 2));
    assert_eq!(counts.errors["other"].count, 2);
    assert!(counts.errors["other"]
        .first_message
        .contains("Server disconnected"));
    let records = r.records.as_ref().expect("records");
    assert_eq!(records.by_level["8"].len(), 40);
    // Recomputed from the arrays: the TTFT of the successful requests, in seconds.
    let errors = src["errors"].as_array().unwrap();
    let ttfts: Vec<f64> = src["ttfts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(errors)
        .filter(|(_, e)| e.as_str() == Some(""))
        .map(|(t, _)| t.as_f64().unwrap())
        .collect();
    let lat = level.latency.as_ref().unwrap();
    assert_same(
        "TTFT mean",
        lat.ttft.mean,
        ttfts.iter().sum::<f64>() / ttfts.len() as f64,
    );
    assert_eq!(lat.itl.count, 38 * 31);
    assert!(!level.throughput.request_tokens_per_second.mean.is_nan());
    assert!(imported(d).notes.iter().any(|n| n.contains("recomputed")));
}

#[test]
fn guidellm_tpot_is_its_inter_token_latency_and_its_time_per_output_token_is_left_out() {
    let src = json("guidellm/benchmarks.json");
    let r = AnyResult::read(&fixture("guidellm/benchmarks.json")).unwrap();
    assert_eq!(r.format, Format::Guidellm);
    let d = chat(&r);
    assert_eq!(d.results.keys().collect::<Vec<_>>(), ["4", "8"]);
    let m = &src["benchmarks"][1]["metrics"];
    let level = &d.results["8"];
    assert_eq!(closed_loop(level), 8);
    let lat = level.latency.as_ref().unwrap();
    let ttft = &m["time_to_first_token_ms"]["successful"];
    assert_same(
        "TTFT mean",
        lat.ttft.mean,
        ttft["mean"].as_f64().unwrap() / 1e3,
    );
    assert_same(
        "TTFT p99",
        lat.ttft.p99,
        ttft["percentiles"]["p99"].as_f64().unwrap() / 1e3,
    );
    let itl = &m["inter_token_latency_ms"]["successful"];
    assert_same(
        "TPOT mean",
        lat.tpot.mean,
        itl["mean"].as_f64().unwrap() / 1e3,
    );
    // Only the ITL's mean maps (its percentiles are of per-request averages).
    assert_same("ITL mean", lat.itl.mean, lat.tpot.mean);
    assert!(lat.itl.p50.is_nan());
    assert_same(
        "E2EL mean (seconds already)",
        lat.e2el.mean,
        m["request_latency"]["successful"]["mean"].as_f64().unwrap(),
    );
    let failed = d.results["4"].requests.as_ref().unwrap();
    assert_eq!((failed.succeeded, failed.failed), (10, 2));
    let imp = imported(d);
    assert!(
        imp.unmapped
            .iter()
            .any(|u| u.starts_with("time_per_output_token_ms (includes TTFT")),
        "{imp:?}"
    );
    assert!(imp
        .unmapped
        .iter()
        .any(|u| u == "metrics.request_concurrency"));
    // Every successful request is in the file, so they are the records.
    let records = r.records.as_ref().expect("records");
    assert_eq!(records.successes("8").len(), 32);
}

#[test]
fn aiperf_reads_its_per_request_file_beside_it_and_leaves_out_the_warm_up() {
    let src = json("aiperf/profile_export_aiperf.json");
    let r = AnyResult::read(&fixture("aiperf/profile_export_aiperf.json")).unwrap();
    assert_eq!(r.format, Format::Aiperf);
    let d = chat(&r);
    assert_eq!(d.metadata.seed, 42);
    let level = &d.results["8"];
    assert_eq!(closed_loop(level), 8);
    let counts = level.requests.as_ref().unwrap();
    assert_eq!((counts.succeeded, counts.failed), (40, 1));
    let records = r.records.as_ref().expect("profile_export.jsonl");
    assert_eq!(
        records.by_level["8"].len(),
        41,
        "two warm-up records left out"
    );
    let lat = level.latency.as_ref().unwrap();
    assert_same(
        "TTFT mean",
        lat.ttft.mean,
        src["time_to_first_token"]["avg"].as_f64().unwrap() / 1e3,
    );
    // AIPerf's inter_token_latency is this project's TPOT; its inter_chunk_latency the ITL,
    // whose count comes from the records.
    assert_same(
        "TPOT p50",
        lat.tpot.p50,
        src["inter_token_latency"]["p50"].as_f64().unwrap() / 1e3,
    );
    assert_eq!(lat.itl.count, 40 * 31);
    let imp = imported(d);
    assert_eq!(imp.version.as_deref(), Some("0.3.0"));
    assert!(
        imp.unmapped.iter().any(|u| u == "time_to_second_token"),
        "{imp:?}"
    );
    assert!(imp
        .notes
        .iter()
        .any(|n| n.contains("client-side tokenizer")));
}

#[test]
fn inference_benchmarker_levels_are_its_executors_without_the_warm_up() {
    let src = json("inference_benchmarker/results.json");
    let r = AnyResult::read(&fixture("inference_benchmarker/results.json")).unwrap();
    assert_eq!(r.format, Format::InferenceBenchmarker);
    let d = chat(&r);
    assert_eq!(d.results.len(), 3, "warm-up left out");
    let level = &d.results["8"];
    assert_eq!(closed_loop(level), 8);
    let throughput = &src["results"][1];
    let lat = level.latency.as_ref().unwrap();
    assert_same(
        "TPOT mean",
        lat.tpot.mean,
        throughput["inter_token_latency_ms"]["avg"]
            .as_f64()
            .unwrap()
            / 1e3,
    );
    assert!(lat.itl.mean.is_nan(), "no gap-level ITL in the file");
    let open: Vec<&ChatLevel> = d
        .results
        .values()
        .filter(|l| matches!(l.load, Some(Load::OpenLoop { .. })))
        .collect();
    assert_eq!(open.len(), 2);
    assert_eq!(d.metadata.max_tokens, 32);
    let imp = imported(d);
    assert!(imp.unmapped.iter().any(|u| u.starts_with("system")));
}

const FIXTURES: [&str; 6] = [
    "vllm/bench_serve.json",
    "vllm/bench_serve_detailed.json",
    "vllm/bench_serve_append.json",
    "guidellm/benchmarks.json",
    "aiperf/profile_export_aiperf.json",
    "inference_benchmarker/results.json",
];

#[test]
fn every_fixture_plots_as_it_is() {
    for name in FIXTURES {
        let path = fixture(name);
        let document = tokenomics_compare::read_any(&path).unwrap();
        let input = tokenomics_plot::Input {
            label: name.into(),
            document,
            path: path.clone(),
        };
        let plotted = tokenomics_plot::figure_for(&[input], None).unwrap();
        assert!(
            plotted.left_out.is_empty(),
            "{name}: {:?}",
            plotted.warnings
        );
        // Streaming results: throughput and the latency column.
        assert!(plotted.figure.panels.len() >= 3, "{name}");
        let svg = tokenomics_plot::render_svg(&plotted.figure).unwrap();
        assert!(svg.starts_with("<svg") || svg.contains("<svg"), "{name}");
    }
}

#[test]
fn fixtures_of_different_tools_compare_with_each_other() {
    let opts = CompareOptions::default();
    // Per-request records on both sides, one run each: a bootstrap over requests.
    let vllm = Input::load(&fixture("vllm/bench_serve_detailed.json")).unwrap();
    let aiperf = Input::load(&fixture("aiperf/profile_export_aiperf.json")).unwrap();
    let c = compare(&[vllm, aiperf], &opts).unwrap();
    assert_eq!(c.levels.len(), 1);
    let p99 = c
        .rows()
        .find(|r| r.metric == Metric::Itl && r.statistic == Statistic::P99)
        .unwrap();
    assert!(matches!(p99.test, Test::Bootstrap { .. }), "{p99:?}");
    assert!(!p99.p.is_nan());
    // The vLLM file records no seed: the seed is not compared, and that is said.
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("not record them") && w.contains("seed")),
        "{:?}",
        c.warnings
    );
    let markdown = c.to_markdown();
    assert!(
        markdown.contains("vllm bench serve") && markdown.contains("aiperf"),
        "{markdown}"
    );
    let parsed: Value = serde_json::from_str(&c.to_json().unwrap()).unwrap();
    assert_eq!(parsed["levels"][0]["level"], "8");

    // Summaries only on one side: Welch's t on means, percentiles left untested with why.
    let guidellm = Input::load(&fixture("guidellm/benchmarks.json")).unwrap();
    let summary = Input::load(&fixture("vllm/bench_serve.json")).unwrap();
    let ib = Input::load(&fixture("inference_benchmarker/results.json")).unwrap();
    let c = compare(&[summary, guidellm, ib], &opts).unwrap();
    assert_eq!(c.levels.len(), 2, "level 8 of each against the baseline's");
    let ttft = c
        .rows()
        .find(|r| r.metric == Metric::Ttft && r.statistic == Statistic::Mean)
        .unwrap();
    assert!(
        matches!(&ttft.test, Test::Welch { of, .. } if of == "requests"),
        "{ttft:?}"
    );
    let p90 = c
        .rows()
        .find(|r| r.metric == Metric::Ttft && r.statistic == Statistic::P90)
        .unwrap();
    assert!(
        p90.test.describe().contains("per-request records"),
        "{p90:?}"
    );
    // Levels that only one file has are named.
    assert!(c
        .warnings
        .iter()
        .any(|w| w.contains("closed_loop 4 is in benchmarks.json only")));
}

/// Writes `text` to `name` in a fresh directory and reads it.
fn read_text(name: &str, text: &str) -> Result<AnyResult, Error> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    AnyResult::read(&path)
}

/// A fixture with one change made to its JSON.
fn edited(name: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut v = json(name);
    edit(&mut v);
    serde_json::to_string(&v).unwrap()
}

#[test]
fn unknown_and_broken_files_are_refused_with_what_was_expected() {
    let cases: Vec<(String, &str)> =
        vec![
        (
            r#"{"results": [1, 2], "score": 0.5}"#.into(),
            "is not a result file this tool reads (an object with results, score)",
        ),
        (
            std::fs::read_to_string(fixture("guidellm/benchmarks.json")).unwrap()[..5000].into(),
            "is not valid JSON",
        ),
        (
            edited("guidellm/benchmarks.json", |v| {
                v["benchmarks"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("scheduler_metrics");
            }),
            "looks like GuideLLM benchmarks.json output but benchmark 2 has no `scheduler_metrics`",
        ),
        (
            edited("aiperf/profile_export_aiperf.json", |v| {
                v["time_to_first_token"]["unit"] = "furlongs".into();
            }),
            "`time_to_first_token` is in \"furlongs\"; expected ns, us, ms or sec",
        ),
        (
            edited("vllm/bench_serve.json", |v| v["request_rate"] = "fast".into()),
            "has a `request_rate` that is neither a rate nor \"inf\"",
        ),
        (
            edited("inference_benchmarker/results.json", |v| {
                v["results"][1]["executor_type"] = "Bogus".into();
            }),
            "expected ConstantVUs or ConstantArrivalRate",
        ),
    ];
    for (text, expected) in cases {
        let e = read_text("results.json", &text).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(expected), "{msg}");
        assert!(e.is_bad_input(), "{msg}");
        assert_eq!(msg.lines().count(), 1, "{msg}");
        if !msg.contains("looks like") {
            // Refused outright: the message says which formats it reads.
            assert!(msg.contains("expected a result file of oai-bench"), "{msg}");
            assert!(
                msg.contains("GuideLLM") && msg.contains("inference-benchmarker"),
                "{msg}"
            );
        }
    }
}

#[test]
fn a_broken_per_request_file_beside_a_summary_is_named_and_left_out() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("aiperf/profile_export_aiperf.json"),
        dir.path().join("profile_export_aiperf.json"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("profile_export.jsonl"),
        "{\"metadata\": {}}\nnot json\n",
    )
    .unwrap();
    let r = AnyResult::read(&dir.path().join("profile_export_aiperf.json")).unwrap();
    assert!(r.records.is_none());
    let imp = imported(chat(&r));
    assert!(
        imp.notes
            .iter()
            .any(|n| n.contains("not used") && n.contains("line 1")),
        "{imp:?}"
    );
}
