//! `embed-bench --api_base a,b`: requests spread over the endpoints, each counting what it
//! received, and every level's endpoints adding up to it.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tokenomics_testkit::{Script, ScriptedServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_spread_over_the_endpoints_and_their_parts_add_up() {
    let script = Script {
        ttft: Duration::from_millis(5),
        ..Script::default()
    };
    let (a, b) = (
        ScriptedServer::uniform(script.clone()).await,
        ScriptedServer::uniform(script).await,
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.json");
    let bases = format!("{},{}", a.api_base(), b.api_base());
    let o = Command::new(env!("CARGO_BIN_EXE_embed-bench"))
        .args([
            "--no_preflight",
            "--model",
            "emb",
            "--api_base",
            &bases,
            "--batch_sizes",
            "4",
            "--sequence_lengths",
            "short",
            "--num_runs",
            "2",
            "--warmup_runs",
            "0",
            "--results_file",
            out.to_str().unwrap(),
        ])
        .env_remove("OPENAI_API_KEY")
        .output()
        .expect("run embed-bench");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!((a.requests(), b.requests()), (4, 4));
    let doc: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(doc["metadata"]["api_base"], bases.as_str());
    assert_eq!(doc["metadata"]["balance"], "round_robin");
    let level = &doc["results"]["batch_4_seq_short"];
    assert_eq!(level["requests"]["succeeded"], 8);
    let parts = level["endpoints"].as_array().expect("endpoints block");
    assert_eq!(parts.len(), 2);
    for (part, server) in parts.iter().zip([&a, &b]) {
        assert_eq!(part["api_base"], server.api_base().as_str());
        assert_eq!(part["requests"]["succeeded"], 4, "{part}");
        assert!(part["latency"]["p50"].as_f64().unwrap() >= 0.005, "{part}");
        // Two runs of two requests each: 2 embeddings per batch.
        assert_eq!(
            part["tokens"]["embeddings_per_batch"]["mean"], 2.0,
            "{part}"
        );
    }
}
