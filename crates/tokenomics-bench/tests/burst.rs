//! The burst benchmark against scripted loopback servers whose true timings are known.

use std::time::{Duration, Instant};

use serde_json::Map;
use tokenomics_bench::{ChatBenchmark, ChatConfig, Observer};
use tokenomics_client::{Client, ClientConfig, Clock, Endpoint, RequestRecord};
use tokenomics_datasets::PromptSource;
use tokenomics_stats::{read_json, ChatDocument, Summary};
use tokenomics_testkit::{refused_api_base, Fault, Script, ScriptedServer, Truth};

fn config(api_base: &str, batch_sizes: &[u64], stream: bool) -> ChatConfig {
    ChatConfig {
        model: "test-model".into(),
        dataset_key: "synthetic".into(),
        api_base: api_base.into(),
        batch_sizes: batch_sizes.to_vec(),
        num_runs: 2,
        warmup_runs: 1,
        max_tokens: 20,
        temperature: 0.5,
        seed: 42,
        n_cores: 2,
        description: "test".into(),
        endpoint: Endpoint::Chat,
        stream,
        results_file: None,
        requests_file: None,
        timeout_seconds: 30.0,
        extra_body: Map::new(),
        simulated: None,
        ..ChatConfig::default()
    }
}

fn client(api_base: &str) -> Client {
    let mut c = ClientConfig::new(api_base);
    c.timeout = Duration::from_secs(30);
    Client::new(c).unwrap()
}

#[derive(Default)]
struct Records(Vec<(String, usize, Vec<RequestRecord>)>);
impl Observer for Records {
    /// Gathers each run's records, in the order they are reported.
    fn request_done(&mut self, level: &str, run: usize, record: &RequestRecord) {
        match self.0.last_mut() {
            Some((l, r, records)) if l == level && *r == run => records.push(record.clone()),
            _ => self.0.push((level.to_string(), run, vec![record.clone()])),
        }
    }
}

/// Runs the benchmark; also returns its clock, on which the records' nanoseconds count from
/// [`Clock::origin`] (the scripted server's truth is in `Instant`s of the same process).
async fn run(cfg: ChatConfig) -> (ChatDocument, Records, Clock) {
    let client = client(&cfg.api_base);
    let mut bench = ChatBenchmark::new(cfg, client, PromptSource::from_key("synthetic").unwrap());
    let clock = bench.clock();
    let mut obs = Records::default();
    let doc = bench.run(&mut obs).await.unwrap();
    (doc, obs, clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_streaming_figures_match_the_servers_truth_field_by_field() {
    // Request i generates 10 + (i % 7) tokens; 30 ms to the first token, 2 ms per further token.
    let server = ScriptedServer::start(|i, _| Script {
        ttft: Duration::from_millis(30),
        itl: Duration::from_millis(2),
        tokens: Some(10 + i % 7),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.json");
    let mut cfg = config(&server.api_base(), &[1, 4], false);
    cfg.results_file = Some(path.clone());
    let (doc, obs, clock) = run(cfg).await;

    // 1 warm-up per level + 2 runs × (1 + 4) requests.
    assert_eq!(server.requests(), 2 + 2 * 5);
    assert_eq!(
        server.peak_in_flight(),
        4,
        "a batch of 4 is 4 requests at once"
    );
    let on_disk: ChatDocument = read_json(&path).unwrap();
    assert_eq!(
        serde_json::to_value(&on_disk).unwrap(),
        serde_json::to_value(&doc).unwrap()
    );
    assert_eq!(doc.metadata.batch_sizes, vec![1, 4]);
    assert_eq!(doc.metadata.stream, Some(false));
    assert_eq!(doc.results.keys().collect::<Vec<_>>(), ["1", "4"]);

    let truth = server.truth();
    for (key, level) in &doc.results {
        let batch: u64 = key.parse().unwrap();
        let runs: Vec<&Vec<RequestRecord>> = obs
            .0
            .iter()
            .filter(|(l, _, _)| *l == batch.to_string())
            .map(|(_, _, r)| r)
            .collect();
        assert_eq!(runs.len(), 2);
        let all: Vec<&RequestRecord> = runs.iter().flat_map(|r| r.iter()).collect();
        assert!(all.iter().all(|r| r.is_ok()));
        // Tokens come from usage, pooled over both runs.
        let outputs: Vec<f64> = all
            .iter()
            .map(|r| r.completion_tokens.unwrap() as f64)
            .collect();
        let inputs: Vec<f64> = all
            .iter()
            .map(|r| r.prompt_tokens.unwrap() as f64)
            .collect();
        let out = Summary::new(outputs.iter().copied());
        assert_eq!(level.tokens.output_per_request.mean, out.mean());
        assert_eq!(level.tokens.output_per_request.std, out.std());
        assert_eq!(
            level.tokens.input_per_request.mean,
            Summary::new(inputs.iter().copied()).mean()
        );
        // The server's own counts agree with usage.
        let mut server_outputs: Vec<f64> = truth
            .iter()
            .filter(|t| t.completion_tokens > 0)
            .map(|t| t.completion_tokens as f64)
            .collect();
        server_outputs.sort_by(f64::total_cmp);
        assert!(outputs.iter().all(|o| server_outputs.contains(o)));

        // Per-run scalars, one value per run, sample std.
        let mut totals = Vec::new();
        let mut fastest = Vec::new();
        let mut slowest = Vec::new();
        let mut batch_tps = Vec::new();
        for records in &runs {
            let start = records.iter().map(|r| r.timing.send_ns).min().unwrap();
            let end = records
                .iter()
                .map(|r| r.timing.end_ns.unwrap())
                .max()
                .unwrap();
            let first_end = records
                .iter()
                .map(|r| r.timing.end_ns.unwrap())
                .min()
                .unwrap();
            let total = (end - start) as f64 / 1e9;
            let tokens: u64 = records.iter().map(|r| r.completion_tokens.unwrap()).sum();
            totals.push(total);
            fastest.push((first_end - start) as f64 / 1e9);
            slowest.push(total);
            batch_tps.push(tokens as f64 / total);
            // The batch as the server served it, from its truth log: from the run's first
            // arrival to its last answer. The client's batch time holds it (every send comes
            // before its arrival, every answer after its end) and adds no more than the trips
            // of a request and an answer over loopback, within 10 ms. Against the truth, not
            // the schedule: when the machine stalls the server, the client must report the
            // stall (the server is checked against its schedule below, from the truth alone).
            let at = |i: Instant| i.duration_since(clock.origin()).as_nanos() as u64;
            let served: Vec<&Truth> = truth
                .iter()
                .filter(|t| (start..=end).contains(&at(t.arrival)))
                .collect();
            assert_eq!(
                served.len(),
                records.len(),
                "the run's requests in the truth log"
            );
            let first_arrival = served.iter().map(|t| at(t.arrival)).min().unwrap();
            let last_answer = served.iter().map(|t| at(t.end.unwrap())).max().unwrap();
            let true_total = (last_answer - first_arrival) as f64 / 1e9;
            assert!(
                total >= true_total && total < true_total + 0.010,
                "batch time {total} s vs the server's {true_total} s"
            );
            // The slowest request of the run took ttft + (tokens - 1) × itl on the server: it
            // is never early.
            let longest = records
                .iter()
                .map(|r| r.completion_tokens.unwrap())
                .max()
                .unwrap();
            let scheduled = 0.030 + 0.002 * (longest - 1) as f64;
            assert!(
                true_total >= scheduled,
                "the server's batch {true_total} s vs the schedule's {scheduled} s"
            );
        }
        let t = &level.timings;
        assert_eq!(
            t.batch_total_seconds.mean,
            Summary::new(totals.clone()).mean()
        );
        assert_eq!(
            t.batch_total_seconds.std,
            Summary::new(totals.clone()).std()
        );
        assert_eq!(t.fastest_seconds.mean, Summary::new(fastest.clone()).mean());
        assert_eq!(t.slowest_seconds.mean, Summary::new(slowest.clone()).mean());
        let spread: Vec<f64> = slowest.iter().zip(&fastest).map(|(s, f)| s - f).collect();
        assert!((t.spread_seconds.mean - Summary::new(spread).mean()).abs() < 1e-12);
        assert_eq!(
            level.throughput.batch_tokens_per_second.mean,
            Summary::new(batch_tps).mean()
        );
        let rtps: Vec<f64> = all
            .iter()
            .map(|r| {
                r.completion_tokens.unwrap() as f64
                    / ((r.timing.end_ns.unwrap() - r.timing.send_ns) as f64 / 1e9)
            })
            .collect();
        assert_eq!(
            level.throughput.request_tokens_per_second.mean,
            Summary::new(rtps).mean()
        );
        let counts = level.requests.as_ref().unwrap();
        assert_eq!((counts.succeeded, counts.failed), (2 * batch, 0));
        assert!(level.latency.is_none(), "no latency block without --stream");
        // What the level cost the client's machine: on the test's runtime, with no simulator
        // in the process; under a second, so not judged.
        let load = level.client_load.as_ref().expect("client_load");
        assert_eq!(load.worker_threads, 2);
        assert!(!load.simulator_in_process);
        assert!(load.seconds > 0.0 && load.seconds < 1.0, "{load:?}");
        assert!(load.warnings.is_empty(), "{load:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_counted_from_events_when_the_server_sends_no_usage() {
    let server = ScriptedServer::uniform(Script {
        usage: false,
        tokens: Some(7),
        ttft: Duration::from_millis(5),
        itl: Duration::from_millis(1),
        ..Script::default()
    })
    .await;
    let mut cfg = config(&server.api_base(), &[2], true);
    cfg.num_runs = 1;
    let (doc, _, _) = run(cfg).await;
    let level = &doc.results["2"];
    assert_eq!(level.tokens.output_per_request.mean, 7.0);
    assert_eq!(
        level.tokens.output_token_source.as_ref().unwrap()["events"],
        2
    );
    assert!(
        level.tokens.input_per_request.mean.is_nan(),
        "no usage, no prompt count: null, not a guess"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_counted_by_kind_and_the_run_goes_on() {
    // Requests alternate: ok, 500, broken JSON (in-stream), cut mid-stream, error event.
    let server = ScriptedServer::start(|i, _| {
        let fault = match i % 5 {
            0 => Fault::None,
            1 => Fault::Status(500),
            2 => Fault::BrokenJson,
            3 => Fault::CutAfter(2),
            _ => Fault::ErrorEventAfter(1),
        };
        Script {
            fault,
            ttft: Duration::from_millis(2),
            itl: Duration::from_millis(1),
            tokens: Some(5),
            ..Script::default()
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faults.json");
    let mut cfg = config(&server.api_base(), &[5], true);
    cfg.warmup_runs = 0;
    cfg.num_runs = 2;
    cfg.results_file = Some(path.clone());
    let (doc, _, _) = run(cfg).await;
    let counts = doc.results["5"].requests.clone().unwrap();
    assert_eq!(counts.succeeded, 2);
    assert_eq!(counts.failed, 8);
    let kinds: Vec<(&str, u64)> = counts
        .errors
        .iter()
        .map(|(k, e)| (k.as_str(), e.count))
        .collect();
    // A body cut short is a broken connection (`io`); broken JSON a `bad_stream`.
    for (kind, n) in [
        ("http_status", 2),
        ("bad_stream", 2),
        ("io", 2),
        ("server_error_event", 2),
    ] {
        assert!(kinds.contains(&(kind, n)), "{kinds:?}");
    }
    assert!(counts.errors["http_status"].first_message.contains("500"));
    assert!(counts.errors["server_error_event"]
        .first_message
        .contains("scripted error event"));
    let on_disk: ChatDocument = read_json(&path).unwrap();
    assert_eq!(on_disk.results["5"].requests.as_ref().unwrap().failed, 8);
    assert_eq!(
        on_disk.results["5"].tokens.output_per_request.mean, 5.0,
        "statistics from the successes only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_server_gives_connect_failures_and_a_file() {
    let api_base = refused_api_base();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("refused.json");
    let mut cfg = config(&api_base, &[2], false);
    cfg.results_file = Some(path.clone());
    let (doc, _, _) = run(cfg).await;
    let counts = doc.results["2"].requests.clone().unwrap();
    assert_eq!((counts.succeeded, counts.failed), (0, 4));
    assert!(counts.errors["connect"]
        .first_message
        .contains("cannot connect"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("\"batch_tokens_per_second\""),
        "every original field is written"
    );
    assert!(doc.results["2"]
        .throughput
        .batch_tokens_per_second
        .mean
        .is_nan());
}
