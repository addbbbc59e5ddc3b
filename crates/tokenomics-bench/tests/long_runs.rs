//! Long runs in bounded memory: a sustained level summarises its requests as they finish, its
//! percentiles move to a histogram past a limit, and those percentiles agree with the exact ones
//! computed from the per-request file (with token times) within the histogram's stated error.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokenomics_bench::load::{Limits, Shape};
use tokenomics_bench::{ChatBenchmark, ChatConfig, Quiet};
use tokenomics_client::{Client, ClientConfig};
use tokenomics_datasets::PromptSource;
use tokenomics_stats::{percentile, Distribution};

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The exact percentile `q` of `values` (numpy's linear interpolation).
fn exact(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(values, q)
}

fn agrees(name: &str, d: &Distribution, values: &mut [f64], error: f64) {
    assert_eq!(d.count as usize, values.len(), "{name} count");
    for (q, got) in [(50.0, d.p50), (90.0, d.p90), (99.0, d.p99)] {
        let want = exact(values, q);
        // The histogram's error, plus the gap between neighbouring ranks (the two methods pick
        // the value at a rank differently); never less than the 1 µs floor of the histogram.
        let n = values.len() as f64;
        let rank = (q / 100.0 * (n - 1.0)).floor() as usize;
        let neighbour = (values[(rank + 1).min(values.len() - 1)] - values[rank]).abs();
        let allowed = want.abs() * error + neighbour + 1e-6;
        assert!(
            (got - want).abs() <= allowed,
            "{name} p{q}: histogram {got} vs exact {want} (allowed {allowed})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histogram_percentiles_agree_with_the_exact_ones_from_the_file() {
    let (server, model) = tokenomics_sim::start_local("fixed", None, 20.0, 1)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("requests.jsonl");
    let cfg = ChatConfig {
        model,
        dataset_key: "synthetic".into(),
        api_base: server.api_base(),
        num_runs: 1,
        warmup_runs: 0,
        max_tokens: 12,
        stream: true,
        levels: vec![Shape::Closed { concurrency: 16 }],
        limits: Limits {
            num_requests: Some(400),
            ..Limits::default()
        },
        requests_file: Some(records.clone()),
        token_times: true,
        // Few enough that every figure of this level moves to a histogram.
        exact_limit: 50,
        extra_body: serde_json::json!({"ignore_eos": true, "min_tokens": 12})
            .as_object()
            .unwrap()
            .clone(),
        ..ChatConfig::default()
    };
    let mut c = ClientConfig::new(&cfg.api_base);
    c.timeout = Duration::from_secs(30);
    let client = Client::new(c).unwrap();
    let mut bench = ChatBenchmark::new(cfg, client, PromptSource::from_key("synthetic").unwrap());
    let doc = bench.run(&mut Quiet).await.unwrap();
    let level = &doc.results["16"];
    let p = level
        .percentiles
        .as_ref()
        .expect("histogram-based percentiles are declared");
    for name in ["ttft", "itl", "tpot", "e2el"] {
        assert!(p.histogram.iter().any(|h| h == name), "{name}: {p:?}");
    }
    let lat = level.latency.as_ref().unwrap();
    let rows = lines(&records);
    assert_eq!(rows.len(), 400);
    let f = |row: &Value, k: &str| row[k].as_f64().unwrap();
    let mut ttft: Vec<f64> = rows.iter().map(|r| f(r, "ttft_s")).collect();
    let mut e2el: Vec<f64> = rows.iter().map(|r| f(r, "e2el_s")).collect();
    let mut tpot = Vec::new();
    let mut itl = Vec::new();
    for r in &rows {
        let times: Vec<f64> = r["token_s"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_f64().unwrap())
            .collect();
        // One token per event against the simulator: the gaps are the ITL values.
        assert_eq!(times.len(), 12);
        itl.extend(times.windows(2).map(|w| w[1] - w[0]));
        tpot.push((f(r, "e2el_s") - f(r, "ttft_s")) / 11.0);
    }
    agrees("ttft", &lat.ttft, &mut ttft, p.relative_error);
    agrees("e2el", &lat.e2el, &mut e2el, p.relative_error);
    agrees("tpot", &lat.tpot, &mut tpot, p.relative_error);
    agrees("itl", &lat.itl, &mut itl, p.relative_error);
    // Count, mean, min and max stay exact.
    let mean = ttft.iter().sum::<f64>() / ttft.len() as f64;
    assert!((lat.ttft.mean - mean).abs() < 1e-9);
    assert_eq!(
        lat.ttft.min,
        ttft.iter().copied().fold(f64::INFINITY, f64::min)
    );
}
