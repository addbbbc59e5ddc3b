//! The check before the run: a dead port, a base URL without `/v1` and a wrong model each end the
//! run at once — well under 2 s — with the exit code and a message that names the fix; a server
//! that does not list the model but accepts it (llama.cpp's does) goes on, and what the check
//! found is in the results.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};
use tokenomics_testkit::cli::one_request;

const BIN: &str = env!("CARGO_BIN_EXE_oai-bench");

use serde_json::Value;
use tokenomics_sim::{SimConfig, Simulator};
use tokenomics_testkit::{refused_api_base, Script, ScriptedServer};

/// Runs oai-bench (a burst of 1, no warm-up) and how long it took.
fn oai_bench(api_base: &str, model: &str, out: &Path) -> (Output, Duration) {
    let started = Instant::now();
    let o = one_request(BIN.as_ref(), api_base, model, out)
        .output()
        .unwrap();
    (o, started.elapsed())
}

/// The one line on stderr; the run must have ended within 2 s (a wide margin on a loaded
/// machine: these checks take milliseconds against loopback).
fn refused(o: &Output, took: Duration, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    stderr
}

async fn simulator() -> (tokenomics_sim::Server, String) {
    let cfg = SimConfig::preset("fixed").unwrap();
    let (server, _) = Simulator::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let root = format!("http://{}", server.addr());
    (server, root)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_port_a_missing_v1_and_a_wrong_model_end_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let (_server, root) = simulator().await;

    let dead = refused_api_base();
    let (o, took) = tokio::task::block_in_place(|| oai_bench(&dead, "fixed", &out));
    let e = refused(&o, took, 1);
    assert!(
        e.contains(&format!("cannot reach the server at {dead}")),
        "{e}"
    );
    assert!(e.contains("is it running?"), "{e}");

    let (o, took) = tokio::task::block_in_place(|| oai_bench(&root, "fixed", &out));
    let e = refused(&o, took, 2);
    assert!(
        e.contains(&format!("did you mean --api_base {root}/v1?")),
        "{e}"
    );

    let v1 = format!("{root}/v1");
    let (o, took) = tokio::task::block_in_place(|| oai_bench(&v1, "llama-3-8b", &out));
    let e = refused(&o, took, 2);
    assert!(e.contains("does not offer model \"llama-3-8b\""), "{e}");
    assert!(e.contains("give --model fixed"), "{e}");
    assert!(!out.exists(), "nothing was measured, nothing written");

    // The right base and model: the check passes, says so in one line, and is recorded.
    let (o, _) = tokio::task::block_in_place(|| oai_bench(&v1, "fixed", &out));
    assert_eq!(o.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Preflight:"))
        .unwrap();
    assert!(line.contains("model \"fixed\" listed"), "{line}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let p = &doc["metadata"]["preflight"];
    assert_eq!(p["models"], serde_json::json!(["fixed"]));
    assert_eq!(p["model_listed"], true);
    assert_eq!(p["probe"], "chat");
    assert!(p["probe_seconds"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_the_server_does_not_list_but_accepts_is_measured() {
    // The scripted server lists "test-model" and answers any model, as llama.cpp's server does.
    let server = ScriptedServer::uniform(Script {
        ttft: Duration::from_millis(2),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let (o, _) = tokio::task::block_in_place(|| oai_bench(&server.api_base(), "smollm2", &out));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains(
            "model \"smollm2\" not listed (the server offers \"test-model\") but accepted"
        ),
        "{stdout}"
    );
    // The probe, then the measured request.
    assert_eq!(server.requests(), 2);
    let doc: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(doc["metadata"]["preflight"]["model_listed"], false);
}
