//! `embed-bench` on the closed and open loops (`--max_concurrency`, `--request_rate`), against a
//! scripted loopback server that counts its requests, its peak in flight and when each arrived.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use tokenomics_testkit::{Script, ScriptedServer};

/// Runs embed-bench. The preflight's own request is left out, so that the server sees only the
/// benchmark's requests.
fn embed_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_embed-bench"))
        .arg("--no_preflight")
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .output()
        .expect("run embed-bench")
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("results file")).expect("valid JSON")
}

/// Every embeddings request answered `ms` after it arrived.
async fn server_taking(ms: u64) -> ScriptedServer {
    ScriptedServer::uniform(Script {
        ttft: Duration::from_millis(ms),
        ..Script::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_loop_keeps_its_concurrency_in_flight_for_exactly_its_requests() {
    let server = server_taking(20).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("closed.json");
    let o = embed_bench(&[
        "--model",
        "emb",
        "--api_base",
        &server.api_base(),
        "--max_concurrency",
        "4",
        "--num_requests",
        "40",
        "--sequence_lengths",
        "short,20",
        "--warmup_runs",
        "1",
        "--results_file",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // 4 workers, each sending its next request when the last one ends: 4 in flight, never more
    // (the server counts a request in flight until its answer is handed back).
    assert_eq!(server.peak_in_flight(), 4);
    // Per sequence length: 1 single-text warm-up request, then exactly 40 measured ones.
    assert_eq!(server.requests(), 2 * (1 + 40));
    let truth = server.truth();
    assert!(
        truth[42..]
            .iter()
            .all(|t| t.prompt.split_whitespace().count() == 20),
        "the second level's texts are exactly 20 words"
    );

    let doc = read(&out);
    let m = &doc["metadata"];
    assert_eq!(m["mode"], "closed_loop");
    assert_eq!(m["levels"], serde_json::json!(["4"]));
    assert_eq!(m["batch_sizes"], serde_json::json!([4]));
    assert_eq!(m["num_runs"], 1, "one run per level unless asked");
    assert_eq!(m["limits"]["num_requests"], 40);
    let keys: Vec<&String> = doc["results"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["concurrency_4_seq_short", "concurrency_4_seq_20"]);
    for key in keys {
        let level = &doc["results"][key];
        assert_eq!(level["requests"]["succeeded"], 40, "{key}");
        assert_eq!(level["requests"]["failed"], 0, "{key}");
        assert_eq!(level["requests"]["retries"], 0, "{key}");
        assert_eq!(level["load"]["mode"], "closed_loop");
        assert_eq!(level["load"]["max_concurrency"], 4);
        assert_eq!(level["tokens"]["embeddings_per_batch"]["mean"], 40.0);
        assert_eq!(level["latency"]["count"], 40);
        // Each request takes the server's 20 ms at least.
        assert!(level["latency"]["p50"].as_f64().unwrap() >= 0.020, "{key}");
        // At most 4 requests of 20 ms at once: at most 200 requests/s; the client's own time on
        // a busy machine only lowers it.
        let rps = level["throughput"]["requests_per_second"]["mean"]
            .as_f64()
            .unwrap();
        assert!(rps > 0.0 && rps <= 200.0, "{key}: {rps}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_loop_warm_up_is_sent_but_not_measured() {
    let server = server_taking(20).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("warm.json");
    let o = embed_bench(&[
        "--model",
        "emb",
        "--api_base",
        &server.api_base(),
        "--max_concurrency",
        "4",
        "--num_requests",
        "20",
        "--warmup_seconds",
        "0.2",
        "--sequence_lengths",
        "short",
        "--warmup_runs",
        "0",
        "--results_file",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let level = &read(&out)["results"]["concurrency_4_seq_short"];
    assert_eq!(level["requests"]["succeeded"], 20);
    assert_eq!(level["load"]["warmup_seconds"], 0.2);
    // The warm-up's first 4 requests leave at once, inside it, however slow the machine.
    assert!(server.requests() >= 20 + 4, "{}", server.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_sends_on_its_schedule() {
    let server = server_taking(5).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("open.json");
    let o = embed_bench(&[
        "--model",
        "emb",
        "--api_base",
        &server.api_base(),
        "--request_rate",
        "50",
        "--arrival",
        "constant",
        "--duration",
        "1",
        "--sequence_lengths",
        "short",
        "--warmup_runs",
        "0",
        "--results_file",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // 50 requests/s for 1 s, the first at once: arrivals at 0, 20, …, 980 ms.
    let truth = server.truth();
    assert_eq!(truth.len(), 50);
    // The server's clock and the client's differ by a constant: each arrival minus its place in
    // the schedule is that constant plus the request's own delay. Their spread bounds how far any
    // request strayed from its schedule. 15 ms: well under the 20 ms between two arrivals (a
    // request sent a slot late would show), and room for a busy two-core machine, where the
    // kernel may run a woken thread a few ms late (send lag p99 of 0.5–3.6 ms seen, see the
    // book's Performance chapter), plus loopback and the server's own thread.
    let offsets: Vec<f64> = truth
        .iter()
        .enumerate()
        .map(|(i, t)| (t.arrival - truth[0].arrival).as_secs_f64() - i as f64 * 0.020)
        .collect();
    let lo = offsets.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = offsets.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    assert!(
        hi - lo < 0.015,
        "arrivals strayed {lo:.4}…{hi:.4} s: {offsets:?}"
    );
    // The rate the server saw: 49 gaps over the first → last arrival, within 5% of 50 (the same
    // 15 ms bound on the span of 0.98 s is 1.5%).
    let span = (truth[49].arrival - truth[0].arrival).as_secs_f64();
    assert!((49.0 / span / 50.0 - 1.0).abs() < 0.05, "{span}");

    let doc = read(&out);
    assert_eq!(doc["metadata"]["mode"], "open_loop");
    assert_eq!(doc["metadata"]["arrival"]["process"], "constant");
    let level = &doc["results"]["rate_50_seq_short"];
    let load = &level["load"];
    assert_eq!(load["mode"], "open_loop");
    assert_eq!(load["request_rate"], 50.0);
    assert_eq!(load["scheduled_rate"]["mean"], 50.0);
    let achieved = load["achieved_rate"]["mean"].as_f64().unwrap();
    assert!((achieved / 50.0 - 1.0).abs() < 0.05, "{achieved}");
    assert_eq!(load["send_lag"]["count"], 50);
    assert!(load["send_lag"]["p50"].as_f64().unwrap() < 0.015);
    assert_eq!(level["requests"]["succeeded"], 50);
    assert_eq!(level["latency"]["count"], 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_with_a_cap_waits_for_a_slot() {
    // 100 requests/s of 50 ms each would keep 5 in flight; the cap holds it at 2 and the others
    // wait in the client.
    let server = server_taking(50).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("capped.json");
    let o = embed_bench(&[
        "--model",
        "emb",
        "--api_base",
        &server.api_base(),
        "--request_rate",
        "100",
        "--arrival",
        "constant",
        "--max_concurrency",
        "2",
        "--num_requests",
        "20",
        "--sequence_lengths",
        "short",
        "--warmup_runs",
        "0",
        "--inputs_per_request",
        "3",
        "--results_file",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(server.peak_in_flight(), 2);
    assert_eq!(server.requests(), 20);
    let level = &read(&out)["results"]["rate_100_seq_short"];
    assert_eq!(level["load"]["max_concurrency"], 2);
    assert_eq!(level["load"]["slot_wait"]["count"], 20);
    // Two slots of 50 ms serve 40 requests/s, not 100: the 20th waits ~0.3 s for its slot.
    assert!(level["load"]["slot_wait"]["max"].as_f64().unwrap() > 0.1);
    assert_eq!(level["tokens"]["embeddings_per_batch"]["mean"], 60.0);
}

#[test]
fn flags_that_do_not_go_together_are_refused_in_one_line() {
    for (args, expected) in [
        (
            vec!["--batch_sizes", "1,8", "--max_concurrency", "4"],
            "--batch_sizes is for bursts",
        ),
        (
            vec!["--batch_sizes", "8", "--request_rate", "5"],
            "--inputs_per_request",
        ),
        (
            vec!["--arrival", "constant"],
            "--arrival needs a sustained load",
        ),
        (
            vec!["--arrival", "gamma", "--max_concurrency", "4"],
            "give --request_rate",
        ),
        (
            vec!["--request_rate", "5", "--max_concurrency", "2,4"],
            "one cap on requests in flight",
        ),
        (
            vec!["--max_concurrency", "4", "--at_end", "cancel"],
            "--at_end cancel needs --duration",
        ),
        (
            vec!["--warmup_seconds", "2"],
            "--warmup_seconds needs a sustained load",
        ),
        (
            vec!["--request_rate", "0"],
            "invalid value '0' for '--request_rate",
        ),
    ] {
        // Nothing listens there: a refusal comes before any connection.
        let base = tokenomics_testkit::refused_api_base();
        let mut all = vec!["--model", "m", "--api_base", &base];
        all.extend(args.iter().copied());
        let o = embed_bench(&all);
        tokenomics_testkit::cli::assert_usage_error(&o, &format!("{args:?}"), expected);
    }
}
