//! Timing accuracy: what the client stamps against what the server did, request by request.
//! Alone in its test binary so no other test competes for the CPU while it measures.

use std::time::Duration;

use serde_json::Map;
use tokenomics_bench::{ChatBenchmark, ChatConfig, Observer};
use tokenomics_client::{Client, ClientConfig, Endpoint, RequestRecord};
use tokenomics_datasets::{run_seed, Prompt, PromptSource};
use tokenomics_stats::Summary;
use tokenomics_testkit::{Script, ScriptedServer};

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

fn config(api_base: &str) -> ChatConfig {
    ChatConfig {
        model: "test-model".into(),
        dataset_key: "synthetic".into(),
        api_base: api_base.into(),
        batch_sizes: vec![64],
        num_runs: 1,
        warmup_runs: 0,
        max_tokens: 20,
        temperature: 0.5,
        seed: 42,
        n_cores: 2,
        description: String::new(),
        endpoint: Endpoint::Chat,
        stream: true,
        results_file: None,
        requests_file: None,
        timeout_seconds: 30.0,
        extra_body: Map::new(),
        simulated: None,
        ..ChatConfig::default()
    }
}

fn client(api_base: &str) -> Client {
    Client::new(ClientConfig::new(api_base)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_latencies_at_batch_64_match_the_schedule_and_the_truth_log() {
    let server = ScriptedServer::uniform(Script {
        ttft: Duration::from_millis(50),
        itl: Duration::from_millis(10),
        tokens: Some(12),
        usage: true,
        ..Script::default()
    })
    .await;
    let cfg = config(&server.api_base());
    let client = client(&cfg.api_base);
    let mut bench = ChatBenchmark::new(cfg, client, PromptSource::from_key("synthetic").unwrap());
    let clock = bench.clock();
    let mut obs = Records::default();
    let doc = bench.run(&mut obs).await.unwrap();
    assert_eq!(server.peak_in_flight(), 64);
    let level = &doc.results["64"];
    let lat = level.latency.as_ref().expect("latency block");
    assert_eq!(lat.ttft.count, 64);
    assert_eq!(lat.itl.count, 64 * 11);
    // The inter-token latency the client reports is the gaps the server really left, within
    // 2 ms at every reported figure. (The server aims at 10 ms; when the machine stalls it, the
    // client must report the stall, not the aim.)
    let server_gaps = Summary::new(server.truth().iter().flat_map(|t| {
        t.events
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64())
            .collect::<Vec<_>>()
    }));
    for (q, client, truth) in [
        ("mean", lat.itl.mean, server_gaps.mean()),
        ("p50", lat.itl.p50, server_gaps.percentile(50.0)),
        ("p90", lat.itl.p90, server_gaps.percentile(90.0)),
        ("p99", lat.itl.p99, server_gaps.percentile(99.0)),
    ] {
        assert!(
            (client - truth).abs() < 0.002,
            "itl {q}: client {client}, server {truth}"
        );
    }
    assert!(
        (server_gaps.percentile(50.0) - 0.010).abs() < 0.002,
        "the scripted server keeps its schedule"
    );
    assert!(
        (lat.tpot.p50 - 0.010).abs() < 0.002,
        "tpot {}",
        lat.tpot.p50
    );
    // TTFT can only exceed the server's 50 ms (the request's trip to the server is in it).
    assert!(lat.ttft.min >= 0.050, "ttft min {}", lat.ttft.min);

    // Against the truth log, request by request (client and server share the process's monotonic
    // clock): the client stamped every token event within 2 ms of the moment the server sent it.
    let prompts = PromptSource::from_key("synthetic")
        .unwrap()
        .draw(64, run_seed(42, 64, 0));
    let truth = server.truth();
    let records = &obs.0[0].2;
    let at = |i: std::time::Instant| i.duration_since(clock.origin()).as_nanos() as i64;
    let mut stamp_errors = Vec::new();
    let mut ttft_errors = Vec::new();
    let mut itl_errors = Vec::new();
    for (record, prompt) in records.iter().zip(&prompts) {
        let Prompt::Text(text) = prompt else {
            unreachable!()
        };
        let t = truth
            .iter()
            .find(|t| &t.prompt == text)
            .expect("the server saw this prompt");
        assert!(
            at(t.arrival) >= record.timing.send_ns as i64,
            "the server cannot see a request before it is sent"
        );
        assert_eq!(record.timing.token_events_ns.len(), t.events.len());
        for (client_ns, server_at) in record.timing.token_events_ns.iter().zip(&t.events) {
            let err = *client_ns as i64 - at(*server_at);
            assert!(
                err >= 0,
                "a token cannot arrive before it was sent ({err} ns)"
            );
            stamp_errors.push(err as f64 / 1e6);
        }
        // Per request: the TTFT the client reports against the server's first send (on the
        // client's send clock), and the mean gap the client saw against the server's.
        let true_ttft = (at(t.events[0]) - record.timing.send_ns as i64) as f64 / 1e9;
        ttft_errors.push((record.timing.ttft_s().unwrap() - true_ttft).abs() * 1e3);
        let n = t.events.len() as f64 - 1.0;
        let true_itl = (*t.events.last().unwrap() - t.events[0]).as_secs_f64() / n;
        let ev = &record.timing.token_events_ns;
        let client_itl = (ev[ev.len() - 1] - ev[0]) as f64 / 1e9 / n;
        itl_errors.push((client_itl - true_itl).abs() * 1e3);
    }
    let (stamp, ttft, itl) = (
        Summary::new(stamp_errors),
        Summary::new(ttft_errors),
        Summary::new(itl_errors),
    );
    eprintln!(
        "per-event stamp delay after the server's send: p50 {:.3} ms, p99 {:.3} ms; per-request |error| p99: ttft {:.3} ms, itl {:.3} ms",
        stamp.percentile(50.0), stamp.percentile(99.0), ttft.percentile(99.0), itl.percentile(99.0)
    );
    assert!(
        ttft.percentile(99.0) < 2.0,
        "p99 per-request TTFT error {} ms",
        ttft.percentile(99.0)
    );
    assert!(
        itl.percentile(99.0) < 2.0,
        "p99 per-request ITL error {} ms",
        itl.percentile(99.0)
    );
    // Token counts: usage and the counted events agree.
    assert!(records
        .iter()
        .all(|r| r.completion_tokens == Some(12) && r.content_events == 12));
}
