//! Interruptions lose nothing: Ctrl-C (SIGINT) stops sending and writes what was measured, marked
//! incomplete, with exit code 130; a second Ctrl-C stops at once; a SIGKILL leaves every finished
//! level on disk.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokenomics_testkit::{Fault, Script, ScriptedServer};

fn spawn(api_base: &str, out: &Path, extra: &[&str]) -> Child {
    spawn_writing(api_base, &["--results_file", out.to_str().unwrap()], extra)
}

/// [`spawn`] writing its results as `writing` says.
fn spawn_writing(api_base: &str, writing: &[&str], extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_oai-bench"))
        .arg("--no_preflight")
        .args([
            "--model",
            "test-model",
            "--dataset_key",
            "synthetic",
            "--api_base",
            api_base,
            "--warmup_runs",
            "0",
        ])
        .args(writing)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start oai-bench")
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Waits until `server` has been sent `n` requests.
fn wait_for_requests(server: &ScriptedServer, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.requests() < n {
        assert!(Instant::now() < deadline, "the load never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the results file holds level `key`.
fn wait_for_level(out: &Path, key: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(bytes) = std::fs::read(out) {
            let doc: Value =
                serde_json::from_slice(&bytes).expect("the file is always whole, valid JSON");
            if doc["results"].get(key).is_some() {
                return doc;
            }
        }
        assert!(Instant::now() < deadline, "level {key} never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_mid_level_writes_partial_results_and_exits_130() {
    // Every request takes about 300 ms.
    let server = ScriptedServer::uniform(Script {
        ttft: Duration::from_millis(300),
        tokens: Some(1),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("partial.json");
    let mut child = spawn(
        &server.api_base(),
        &out,
        &["--batch_sizes", "2,4,8", "--num_runs", "4"],
    );
    wait_for_level(&out, "2");
    std::thread::sleep(Duration::from_millis(450)); // into level 4's second run
    signal(&child, "-INT");
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(doc["metadata"]["incomplete"], true);
    assert!(
        doc["results"]["2"].get("incomplete").is_none(),
        "level 2 finished whole"
    );
    let four = &doc["results"]["4"];
    assert_eq!(four["incomplete"], true);
    // The run in flight finished within the grace period; no further run started.
    let done = four["requests"]["succeeded"].as_u64().unwrap();
    assert!(
        (4..16).contains(&done) && done.is_multiple_of(4),
        "{done} requests of level 4"
    );
    assert!(doc["results"].get("8").is_none(), "level 8 never started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ctrl_c_stops_at_once() {
    // Requests that would take a minute.
    let server = ScriptedServer::uniform(Script {
        fault: Fault::DelayHeaders(Duration::from_secs(60)),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hung.json");
    let mut child = spawn(
        &server.api_base(),
        &out,
        &["--batch_sizes", "3", "--num_runs", "1"],
    );
    wait_for_requests(&server, 3);
    signal(&child, "-INT");
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "-INT");
    let t = Instant::now();
    let status = child.wait().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stopped at once, not after the grace period"
    );
    assert_eq!(status.code(), Some(130));
    let doc: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(doc["metadata"]["incomplete"], true);
    assert_eq!(
        doc["results"]["3"]["requests"]["errors"]["interrupted"]["count"],
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_the_first_level_leaves_it_on_disk() {
    let server = ScriptedServer::uniform(Script {
        ttft: Duration::from_millis(200),
        tokens: Some(2),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("killed.json");
    let mut child = spawn(
        &server.api_base(),
        &out,
        &["--batch_sizes", "1,2,4", "--num_runs", "3"],
    );
    wait_for_level(&out, "1");
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let doc: tokenomics_stats::ChatDocument =
        tokenomics_stats::read_json(&out).expect("valid JSON");
    assert_eq!(doc.results["1"].requests.as_ref().unwrap().succeeded, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_closed_loop_marks_its_level_incomplete() {
    // Short requests (every one finishes within the grace period), a level meant to last 30 s.
    let server = ScriptedServer::uniform(Script {
        ttft: Duration::from_millis(20),
        tokens: Some(1),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("closed.json");
    let mut child = spawn(
        &server.api_base(),
        &out,
        &["--max_concurrency", "4", "--duration", "30"],
    );
    // Wait until requests flow, then stop the loop.
    wait_for_requests(&server, 20);
    signal(&child, "-INT");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let doc: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(doc["metadata"]["incomplete"], true);
    let level = &doc["results"]["4"];
    // It ended long before its 30 s: the level says so, not only the document.
    assert_eq!(level["incomplete"], true, "{level}");
    assert_eq!(
        level["requests"]["failed"], 0,
        "every request finished in the grace"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_after_three_snapshots_keeps_the_level_so_far() {
    let server = ScriptedServer::uniform(Script {
        ttft: Duration::from_millis(10),
        tokens: Some(2),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("soak.json");
    let mut child = spawn(
        &server.api_base(),
        &out,
        &[
            "--max_concurrency",
            "4",
            "--duration",
            "60",
            "--snapshot_every",
            "0.2",
        ],
    );
    // Watch the file: each snapshot rewrites it with more requests in the level.
    let mut seen: Vec<u64> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < 3 {
        assert!(Instant::now() < deadline, "snapshots seen: {seen:?}");
        if let Ok(bytes) = std::fs::read(&out) {
            let doc: Value = serde_json::from_slice(&bytes).expect("always whole, valid JSON");
            if let Some(n) = doc["results"]["4"]["requests"]["succeeded"].as_u64() {
                if seen.last() != Some(&n) {
                    assert_eq!(doc["results"]["4"]["incomplete"], true);
                    assert_eq!(doc["metadata"]["incomplete"], true);
                    seen.push(n);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child, "-KILL");
    let _ = child.wait();
    let doc: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let level = &doc["results"]["4"];
    let kept = level["requests"]["succeeded"].as_u64().unwrap();
    assert!(kept >= seen[2], "the last snapshot holds {kept} requests");
    assert_eq!(level["incomplete"], true);
    assert!(
        level["throughput"]["batch_tokens_per_second"]["mean"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(level["load"]["mode"], "closed_loop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_ends_an_open_loops_wait_for_its_next_arrival() {
    let server = ScriptedServer::uniform(Script {
        ttft: Duration::from_millis(5),
        tokens: Some(1),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("slow_rate.json");
    // One arrival every 30 s: the first at once, the next long after the Ctrl-C.
    let mut child = spawn(
        &server.api_base(),
        &out,
        &[
            "--request_rate",
            "0.0333",
            "--arrival",
            "constant",
            "--duration",
            "600",
        ],
    );
    wait_for_requests(&server, 1);
    std::thread::sleep(Duration::from_millis(300)); // the first request done
    signal(&child, "-INT");
    let t = Instant::now();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    // Waiting for the next arrival would take the rest of 30 s.
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "stopped waiting for the next arrival ({:?})",
        t.elapsed()
    );
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert_eq!(server.requests(), 1, "nothing sent after the stop");
    let doc: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(doc["metadata"]["incomplete"], true);
    let level = doc["results"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .expect("the level was written");
    assert_eq!(level["requests"]["succeeded"], 1, "{level}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_stage_list_shard_counts_only_the_stages_it_reached() {
    // A shard of a two-stage list, stopped in its first stage: its document says it did one of
    // two levels, so the merge refuses it rather than describe the second stage without it.
    let server = ScriptedServer::uniform(Script {
        ttft: Duration::from_millis(20),
        tokens: Some(1),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_writing(
        &server.api_base(),
        &["--results_dir", dir.path().to_str().unwrap()],
        &["--stages", "concurrency:2@30,2@30", "--shard", "0/1"],
    );
    wait_for_requests(&server, 20);
    signal(&child, "-INT");
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let file = dir.path().join("shard-0-of-1.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(doc["metadata"]["incomplete"], true);
    assert_eq!(
        doc["metadata"]["shard"]["levels_done"], 1,
        "{}",
        doc["metadata"]
    );
    assert_eq!(doc["results"]["stage1:2"]["incomplete"], true);
    assert!(doc["results"].get("stage2:2").is_none());
    let refused = tokenomics_bench::merge::merge(&[file])
        .unwrap_err()
        .to_string();
    assert!(refused.contains("after 1 of its 2 levels"), "{refused}");
}
