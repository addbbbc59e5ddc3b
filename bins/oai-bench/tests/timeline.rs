//! Issue #18's timeline and aborts, and #15's ramp, against the simulator (which counts what it
//! received and what it saw aborted): an open-loop ramp's sends per second follow the ramp bucket
//! by bucket, the timeline's totals add up to the level's, the server's gauges sit on the same
//! buckets, and `plot-throughput --timeline` draws the file; requests aborted on purpose are
//! counted apart, and the server saw exactly as many go; probes go beside the load, outside its
//! cap, and the server counts their tokens with the load's.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn oai_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oai-bench"))
        .args(["--progress", "never"])
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", "/nonexistent/tokenomics-test-hf-home")
        .output()
        .expect("run oai-bench")
}

fn run(args: &[&str], out: &Path) -> (Value, String) {
    let o = oai_bench(&[args, &["--results_file", out.to_str().unwrap()]].concat());
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let doc = serde_json::from_slice(&std::fs::read(out).expect("results")).expect("JSON");
    (doc, stdout)
}

fn column(t: &Value, name: &str) -> Vec<u64> {
    t[name]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: {t}"))
        .iter()
        .map(|v| v.as_u64().expect("count"))
        .collect()
}

#[test]
fn a_ramps_timeline_follows_the_ramp_and_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ramp.json");
    // Constant arrivals from 5 to 45 requests/s over 4 s: Λ(t) = 5t + 5t², so the seconds hold
    // 10, 20, 30 and 40 arrivals.
    let (doc, _) = run(
        &[
            "--simulate",
            "tiny",
            "--ramp",
            "linear:5,45,4",
            "--arrival",
            "constant",
            "--stream",
            "--max_tokens",
            "8",
            "--scrape_interval",
            "0.1",
        ],
        &out,
    );
    let level = &doc["results"]["5..45"];
    assert_eq!(level["load"]["ramp"]["from_rate"], 5.0, "{}", level["load"]);
    assert_eq!(level["load"]["ramp"]["to_rate"], 45.0);
    assert_eq!(level["load"]["request_rate"], 25.0);
    let t = &level["timeline"];
    assert_eq!(t["interval_seconds"], 1.0);
    let sent = column(t, "sent");
    // Each arrival is due on a bucket's boundary or inside it, and sent a little after it is
    // due: a boundary arrival may land in either bucket, so allow one either way.
    for (k, expected) in [10u64, 20, 30, 40].into_iter().enumerate() {
        assert!(
            sent[k].abs_diff(expected) <= 1,
            "second {k}: {} sent, {expected} due ({sent:?})",
            sent[k]
        );
    }
    assert_eq!(sent.iter().sum::<u64>(), 100);
    let ok = level["requests"]["succeeded"].as_u64().unwrap();
    assert_eq!(ok, 100);
    assert_eq!(column(t, "completed").iter().sum::<u64>(), ok);
    assert_eq!(column(t, "errors").iter().sum::<u64>(), 0);
    assert_eq!(column(t, "in_flight").last(), Some(&0));
    // Every output token is in some bucket: the client's count, which the server's matches.
    let tokens: u64 = column(t, "output_tokens").iter().sum();
    let check = &level["server_metrics"]["cross_check"];
    assert_eq!(
        check["client_output_tokens"].as_u64(),
        Some(tokens),
        "{check}"
    );
    assert_eq!(
        check["server_generation_tokens"].as_f64(),
        Some(tokens as f64)
    );
    // TTFT percentiles where first tokens came; the server's gauges on the same buckets.
    let p50 = t["ttft_p50_seconds"].as_array().unwrap();
    assert_eq!(p50.len(), sent.len());
    assert!(
        p50[0].as_f64().is_some_and(|x| x > 0.0 && x < 1.0),
        "{p50:?}"
    );
    let running = t["server"]["running"].as_array().expect("server gauges");
    assert_eq!(running.len(), sent.len());
    assert!(
        running.iter().any(|v| v.as_f64().is_some_and(|x| x > 0.0)),
        "{running:?}"
    );
    // The plot of it.
    let png = dir.path().join("timeline.png");
    let o = Command::new(env!("CARGO_BIN_EXE_oai-bench").replace("oai-bench", "plot-throughput"))
        .args([
            "--timeline",
            out.to_str().unwrap(),
            "-o",
            png.to_str().unwrap(),
        ])
        .output();
    // plot-throughput is another package's binary: drawn when it was built beside this one.
    if let Ok(o) = o {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(std::fs::metadata(&png).unwrap().len() > 10_000);
    }
}

#[test]
fn aborts_on_purpose_are_counted_apart_and_the_server_saw_each_go() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("aborts.json");
    let records = dir.path().join("aborts.jsonl");
    // 60 tokens at ~6 ms a token: a request picked for an abort is still streaming at 100 ms.
    let (doc, stdout) = run(
        &[
            "--simulate",
            "tiny",
            "--max_concurrency",
            "4",
            "--num_requests",
            "40",
            "--stream",
            "--ignore_eos",
            "--max_tokens",
            "60",
            "--cancel_rate",
            "0.5",
            "--cancel_after",
            "100",
            "--scrape_interval",
            "0.1",
            "--requests_file",
            records.to_str().unwrap(),
        ],
        &out,
    );
    let level = &doc["results"]["4"];
    let counts = &level["requests"];
    let aborted = counts["aborted"].as_u64().expect("aborted count");
    let ok = counts["succeeded"].as_u64().unwrap();
    assert_eq!(counts["failed"], 0, "{counts}");
    assert_eq!(aborted + ok, 40, "{counts}");
    // A seeded half: far from none and from all (a binomial(40, 0.5) outside 8..32 is < 1e-4).
    assert!((8..=32).contains(&aborted), "{counts}");
    assert!(
        stdout.contains(&format!("{aborted} aborted on purpose")),
        "{stdout}"
    );
    let server = &level["server_metrics"]["counters"];
    assert_eq!(server["aborted"].as_f64(), Some(aborted as f64), "{server}");
    // The client counts the tokens an aborted stream received; the server may have sent a few
    // more that were still on their way when the client hung up.
    let check = &level["server_metrics"]["cross_check"];
    let (client, server) = (
        check["client_output_tokens"].as_f64().unwrap(),
        check["server_generation_tokens"].as_f64().unwrap(),
    );
    assert!(
        server >= client && server - client <= 2.0 * aborted as f64,
        "{check}"
    );
    // Only whole requests count as successes: every success has all its tokens.
    assert_eq!(level["tokens"]["output_per_request"]["mean"], 60.0);
    let lines = std::fs::read_to_string(&records).unwrap();
    let aborted_lines = lines
        .lines()
        .filter(|l| l.contains(r#""status":"aborted""#))
        .count();
    assert_eq!(aborted_lines as u64, aborted);
}

#[test]
fn probes_go_beside_the_load_and_the_server_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("probes.json");
    let (doc, stdout) = run(
        &[
            "--simulate",
            "tiny",
            "--max_concurrency",
            "4",
            "--num_requests",
            "60",
            "--stream",
            "--ignore_eos",
            "--max_tokens",
            "40",
            "--probe_rate",
            "40",
            "--scrape_interval",
            "0.1",
        ],
        &out,
    );
    let level = &doc["results"]["4"];
    let p = &level["probes"];
    let sent = p["sent"].as_u64().expect("probes sent");
    assert!(sent >= 5, "{p}");
    assert_eq!(p["succeeded"].as_u64(), Some(sent), "{p}");
    assert_eq!(p["rate"], 40.0);
    assert!(p["ttft"]["p50"].as_f64().is_some_and(|t| t > 0.0), "{p}");
    assert!(stdout.contains(&format!("{sent} sent at 40/s")), "{stdout}");
    // The level's own requests are untouched: 60 of them, 40 tokens each; the server generated
    // those and one token per probe, and the cross-check counts both (probes sent while the
    // loop was still opening its connections too, which the block leaves out: a few at most).
    assert_eq!(level["requests"]["succeeded"], 60);
    assert_eq!(level["tokens"]["output_per_request"]["mean"], 40.0);
    let check = &level["server_metrics"]["cross_check"];
    let client = check["client_output_tokens"].as_u64().unwrap();
    assert!(client >= 60 * 40 + sent, "{check}");
    assert!(client - 60 * 40 - sent <= 5, "{check}");
    assert_eq!(
        check["server_generation_tokens"].as_f64(),
        Some(client as f64)
    );
}

#[test]
fn flags_that_do_not_fit_are_refused_in_one_line() {
    for (args, words) in [
        (
            &[
                "--simulate",
                "tiny",
                "--cancel_rate",
                "0.5",
                "--cancel_after",
                "10",
            ][..],
            "--cancel_rate aborts requests of a closed or open loop",
        ),
        (
            &[
                "--simulate",
                "tiny",
                "--ramp",
                "linear:1,2,3",
                "--request_rate",
                "4",
            ][..],
            "leave out --request_rate",
        ),
        (
            &["--simulate", "tiny", "--ramp", "up:1,2,3"][..],
            "linear:FROM,TO,SECONDS",
        ),
        (
            &[
                "--simulate",
                "tiny",
                "--max_concurrency",
                "2",
                "--cancel_rate",
                "0.5",
            ][..],
            "--cancel_after",
        ),
    ] {
        let o = oai_bench(args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}
