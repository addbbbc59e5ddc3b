//! `embed-bench` as a user runs it, against scripted loopback servers.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use tokenomics_stats::Summary;
use tokenomics_testkit::{Fault, Script, ScriptedServer};

/// Runs embed-bench. These tests script the server request by request (and count its
/// requests), so the preflight's own request is left out; oai-bench's preflight.rs tests it.
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

fn quick() -> Script {
    Script {
        ttft: Duration::from_millis(20),
        ..Script::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_by_field_for_two_batch_sizes_and_two_lengths() {
    let server = ScriptedServer::uniform(quick()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.json");
    let o = embed_bench(&[
        "--model",
        "emb",
        "--api_base",
        &server.api_base(),
        "--batch_sizes",
        "2,8",
        "--sequence_lengths",
        "short,50",
        "--num_runs",
        "3",
        "--warmup_runs",
        "2",
        "--description",
        "two by two",
        "--results_file",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        server.peak_in_flight(),
        8,
        "a batch of 8 is 8 separate requests at once"
    );
    let doc = read(&out);
    let m = &doc["metadata"];
    assert_eq!(m["batch_sizes"], serde_json::json!([2, 8]));
    assert_eq!(m["sequence_lengths"], serde_json::json!(["short", 50]));
    assert_eq!(
        (
            m["num_runs"].as_u64(),
            m["warmup_runs"].as_u64(),
            m["seed"].as_u64()
        ),
        (Some(3), Some(2), Some(42))
    );
    assert_eq!(m["concurrent_requests"], true);
    assert_eq!(m["description"], "two by two");
    assert_eq!(m["embedding_dim"], 16);
    // Configurations in the order run: batch sizes, then lengths within each.
    let text = std::fs::read_to_string(&out).unwrap();
    let order = [
        "batch_2_seq_short",
        "batch_2_seq_50",
        "batch_8_seq_short",
        "batch_8_seq_50",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|k| text.find(&format!("\"{k}\"")).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(doc["results"].as_object().unwrap().len(), 4);

    // The server's truth, in arrival order: per configuration, 2 warm-ups then 3 runs of B.
    let truth = server.truth();
    let mut i = 0;
    for (key, batch) in [
        ("batch_2_seq_short", 2),
        ("batch_2_seq_50", 2),
        ("batch_8_seq_short", 8),
        ("batch_8_seq_50", 8),
    ] {
        let level = &doc["results"][key];
        i += 2; // warm-ups
        let mut per_run_tokens = Vec::new();
        for _ in 0..3 {
            let run = &truth[i..i + batch];
            per_run_tokens.push(run.iter().map(|t| t.prompt_tokens as f64).sum::<f64>());
            if key.ends_with("_50") {
                assert!(
                    run.iter()
                        .all(|t| t.prompt.split_whitespace().count() == 50),
                    "exactly 50 words"
                );
            }
            i += batch;
        }
        let tokens = Summary::new(per_run_tokens.clone());
        let stat = &level["tokens"]["total_per_batch"];
        assert_eq!(
            stat["mean"].as_f64().unwrap(),
            tokens.mean(),
            "{key}: tokens come from usage"
        );
        assert_eq!(stat["std"].as_f64().unwrap(), tokens.std());
        assert_eq!(stat["min"].as_f64().unwrap(), tokens.min());
        assert_eq!(stat["max"].as_f64().unwrap(), tokens.max());
        assert_eq!(
            level["tokens"]["embeddings_per_batch"]["mean"],
            batch as f64
        );
        assert_eq!(level["tokens"]["token_source"]["usage"], 3 * batch);
        for group in ["timings", "throughput"] {
            for (name, stat) in level[group].as_object().unwrap() {
                for f in ["mean", "std", "min", "max"] {
                    assert!(stat[f].is_f64(), "{key}.{group}.{name}.{f}");
                }
            }
        }
        let t = &level["timings"];
        assert!(
            t["fastest_seconds"]["min"].as_f64().unwrap() >= 0.020,
            "20 ms per request"
        );
        assert!(
            t["slowest_seconds"]["max"].as_f64().unwrap()
                <= t["batch_total_seconds"]["max"].as_f64().unwrap()
        );
        let tp = &level["throughput"];
        let bt = level["timings"]["batch_total_seconds"]["mean"]
            .as_f64()
            .unwrap();
        let eps = tp["batch_embeddings_per_second"]["mean"].as_f64().unwrap();
        assert!(
            (eps * bt / batch as f64 - 1.0).abs() < 0.2,
            "embeddings/s × time ≈ embeddings"
        );
        assert_eq!(level["requests"]["succeeded"], 3 * batch);
        assert!(
            level["latency"]["p99"].as_f64().unwrap() >= level["latency"]["p50"].as_f64().unwrap()
        );
    }
    assert_eq!(i, truth.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_made_and_counted() {
    // The first three requests after the warm-up fail with 503; each is retried.
    let server = ScriptedServer::start(|i, _| Script {
        fault: if (1..=3).contains(&i) {
            Fault::Status(503)
        } else {
            Fault::None
        },
        ttft: Duration::from_millis(1),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = embed_bench(&[
        "--model",
        "emb",
        "--api_base",
        &server.api_base(),
        "--batch_sizes",
        "1",
        "--sequence_lengths",
        "short",
        "--num_runs",
        "1",
        "--warmup_runs",
        "1",
        "--results_file",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let req = &read(&out)["results"]["batch_1_seq_short"]["requests"];
    assert_eq!(
        (
            req["succeeded"].as_u64(),
            req["failed"].as_u64(),
            req["retries"].as_u64()
        ),
        (Some(1), Some(0), Some(3))
    );
    assert_eq!(server.requests(), 5);
    // 0.25 + 0.5 + 1 s of backoff are part of that request's latency.
    let latency = read(&out)["results"]["batch_1_seq_short"]["latency"]["p50"]
        .as_f64()
        .unwrap();
    assert!(latency >= 1.75, "{latency}");

    // A 400 is not retried, and a request that exhausts its retries is counted as failed.
    let always = ScriptedServer::uniform(Script {
        fault: Fault::Status(500),
        ttft: Duration::ZERO,
        ..Script::default()
    })
    .await;
    let out2 = dir.path().join("r2.json");
    let o = embed_bench(&[
        "--model",
        "emb",
        "--api_base",
        &always.api_base(),
        "--batch_sizes",
        "1",
        "--sequence_lengths",
        "short",
        "--num_runs",
        "1",
        "--warmup_runs",
        "0",
        "--retries",
        "2",
        "--results_file",
        out2.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(4));
    let req = &read(&out2)["results"]["batch_1_seq_short"]["requests"];
    assert_eq!(
        (req["failed"].as_u64(), req["retries"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(req["errors"]["http_status"]["count"], 1);
    let stat = &read(&out2)["results"]["batch_1_seq_short"]["tokens"]["total_per_batch"];
    assert!(
        stat["mean"].is_null(),
        "nothing measured is null, never a zero"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_empty_vectors_are_failed_requests() {
    let server = ScriptedServer::uniform(Script {
        ttft: Duration::from_millis(1),
        ..Script::default()
    })
    .await;
    // Request 0 (the first measured one) sets the dimension (16); request 2 returns 12 values, 3 none.
    server.set_embedding_dim(|i| match i {
        2 => 12,
        3 => 0,
        _ => 16,
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.json");
    let o = embed_bench(&[
        "--model",
        "emb",
        "--api_base",
        &server.api_base(),
        "--batch_sizes",
        "1",
        "--sequence_lengths",
        "short",
        "--num_runs",
        "5",
        "--warmup_runs",
        "0",
        "--results_file",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3));
    let req = &read(&out)["results"]["batch_1_seq_short"]["requests"];
    assert_eq!(
        (req["succeeded"].as_u64(), req["failed"].as_u64()),
        (Some(3), Some(2))
    );
    let msg = req["errors"]["bad_response"]["first_message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("12 values, expected 16"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_missing_is_an_estimate_and_says_so() {
    let server = ScriptedServer::uniform(Script {
        usage: false,
        ttft: Duration::from_millis(1),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("u.json");
    let o = embed_bench(&[
        "--model",
        "emb",
        "--api_base",
        &server.api_base(),
        "--batch_sizes",
        "2",
        "--sequence_lengths",
        "10",
        "--num_runs",
        "1",
        "--warmup_runs",
        "0",
        "--results_file",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("estimated"));
    let level = &read(&out)["results"]["batch_2_seq_10"];
    assert_eq!(level["tokens"]["token_source"]["estimate"], 2);
    assert_eq!(
        level["tokens"]["total_per_batch"]["mean"], 26.0,
        "2 texts × 10 words × 1.3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_per_request_sends_several_texts_in_one_request() {
    let server = ScriptedServer::uniform(Script {
        ttft: Duration::from_millis(1),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("n.json");
    let o = embed_bench(&[
        "--model",
        "emb",
        "--api_base",
        &server.api_base(),
        "--batch_sizes",
        "2",
        "--sequence_lengths",
        "short",
        "--num_runs",
        "1",
        "--warmup_runs",
        "0",
        "--inputs_per_request",
        "4",
        "--results_file",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(server.requests(), 2);
    let level = &read(&out)["results"]["batch_2_seq_short"];
    assert_eq!(level["tokens"]["embeddings_per_batch"]["mean"], 8.0);
    assert_eq!(read(&out)["metadata"]["inputs_per_request"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_readme_command_works_as_written() {
    // 100 ms per request, so that the 512 requests of the last batch are all in flight at once.
    let server = ScriptedServer::uniform(Script {
        ttft: Duration::from_millis(100),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_embed-bench"))
        .current_dir(dir.path())
        .arg("--no_preflight")
        .args([
            "--model",
            "Qwen/Qwen3-Embedding-4B",
            "--sequence_lengths",
            "200",
            "--batch_sizes",
            "1,8,16,32,64,128,256,512",
            "--num_runs",
            "3",
            "--description",
            "Qwen3 4B Embedding TP1 A100",
            "--results_file",
            "embedding_results.json",
            "--api_base",
            &server.api_base(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc = read(&dir.path().join("embedding_results.json"));
    assert_eq!(doc["results"].as_object().unwrap().len(), 8);
    assert_eq!(
        doc["results"]["batch_512_seq_200"]["requests"]["succeeded"],
        3 * 512
    );
    assert_eq!(server.peak_in_flight(), 512);
    let _: tokenomics_stats::EmbedDocument =
        tokenomics_stats::read_json(&dir.path().join("embedding_results.json")).unwrap();
}

#[test]
fn bad_input_is_refused_in_one_line() {
    for (args, expected) in [
        (
            vec!["--model", "m", "--sequence_lengths", "short,huge"],
            "\"huge\" is not a text length",
        ),
        (
            vec!["--model", "m", "--batch_sizes", "0"],
            "invalid value '0' for '--batch_sizes",
        ),
        (
            vec!["--model", "m", "--inputs_per_request", "0"],
            "invalid value '0' for '--inputs_per_request",
        ),
        (
            vec!["--batch_sizes", "1"],
            "required arguments were not provided: --model",
        ),
    ] {
        let o = embed_bench(&args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_retried_after_the_servers_retry_after() {
    // The first measured request is rate limited with Retry-After: 1 (not the 0.25 s backoff).
    let server = ScriptedServer::start(|i, _| Script {
        fault: if i == 0 {
            Fault::RateLimited(1)
        } else {
            Fault::None
        },
        ttft: Duration::from_millis(1),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("429.json");
    let o = embed_bench(&[
        "--model",
        "emb",
        "--api_base",
        &server.api_base(),
        "--batch_sizes",
        "1",
        "--sequence_lengths",
        "short",
        "--num_runs",
        "1",
        "--warmup_runs",
        "0",
        "--results_file",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let level = &read(&out)["results"]["batch_1_seq_short"];
    assert_eq!(level["requests"]["retries"], 1);
    let latency = level["latency"]["p50"].as_f64().unwrap();
    assert!(latency >= 1.0, "waited for Retry-After: {latency}");
}
