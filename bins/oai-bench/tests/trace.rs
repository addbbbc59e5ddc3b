//! Issue #15's trace replay, against the simulator's truth log: a Mooncake trace the test writes
//! replays with every request arriving at its trace time (within 2 ms for 30 of the 40,
//! the rest within 50 ms: a shared machine stalls processes now and then) and exactly its input and
//! output tokens, and the prefix-cache hit rate measured from the server's `cached_tokens` equals
//! the one the trace's block ids and the simulator's block size give (within 1 point); Azure and
//! BurstGPT files replay too; bad rows are named with their line, and a file with none usable, or
//! a trace with flags it sets itself, is refused.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};
use tokenomics_sim::SimConfig;
use tokenomics_testkit::{start_sim_thread, SimThread};

/// The tests of this file one at a time: the replay's timing is checked to 2 ms, which a sibling
/// test's server and client competing for a two-core machine's CPU could spoil.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn oai_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oai-bench"))
        .args(["--progress", "never", "--no_preflight", "--model", "tiny"])
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", "/nonexistent/tokenomics-test-hf-home")
        .output()
        .expect("run oai-bench")
}

fn run(args: &[&str], out: &Path) -> (Value, String) {
    let o = oai_bench(&[args, &["--results_file", out.to_str().unwrap()]].concat());
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        o.status.success(),
        "{}\n{stderr}",
        String::from_utf8_lossy(&o.stdout)
    );
    let doc = serde_json::from_slice(&std::fs::read(out).expect("results")).expect("JSON");
    (doc, stderr)
}

fn sim() -> SimThread {
    start_sim_thread(
        SimConfig::preset("tiny")
            .unwrap()
            .with_time_scale(10.0)
            .with_trace(true),
    )
}

/// One Mooncake row.
struct Row {
    ms: u64,
    input: u64,
    output: u64,
    ids: Vec<u64>,
}

/// 40 requests 40–115 ms apart: each reads one of 4 documents of 2 blocks (512 tokens each),
/// then a block and a tail of its own; every fifth follows up the previous request: its full
/// blocks, then a tail of its own.
fn mooncake() -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    let mut ms = 0;
    for i in 0..40u64 {
        ms += 40 + (i * 37) % 76;
        let doc = i % 4;
        let mut ids = vec![100 + doc * 2, 101 + doc * 2];
        let input = if i % 5 == 4 {
            // A follow-up: the previous prompt's full blocks (its partial last block, grown,
            // is other content: another id), then more.
            let prev = rows.last().unwrap();
            ids = prev.ids[..(prev.input / 512) as usize].to_vec();
            prev.input + 200
        } else {
            ids.push(1000 + i);
            3 * 512 + 10 + (i * 53) % 300
        };
        // Ids for the tokens past the listed blocks, as Mooncake gives one per block.
        let blocks = input.div_ceil(512);
        while (ids.len() as u64) < blocks {
            ids.push(5000 + i * 10 + ids.len() as u64);
        }
        rows.push(Row {
            ms,
            input,
            output: 2 + i % 7,
            ids,
        });
    }
    rows
}

/// The hit rate a block cache of `b` tokens gives `rows` in order, with `before`/`after`
/// template tokens: a request takes its leading blocks whose ids came earlier, and the template's
/// opening, in whole blocks of `b`, never its last token.
fn expected_hit_rate(rows: &[Row], before: u64, after: u64, b: u64) -> f64 {
    let mut seen = HashSet::new();
    let (mut hits, mut prompts) = (0u64, 0u64);
    for (i, r) in rows.iter().enumerate() {
        let mut shared = 0;
        for (j, id) in r.ids.iter().enumerate() {
            if !seen.contains(id) {
                break;
            }
            shared += 512.min(r.input - 512 * j as u64);
        }
        let prompt = before + r.input + after;
        if i > 0 {
            hits += ((before + shared) / b * b).min((prompt - 1) / b * b);
        }
        prompts += prompt;
        seen.extend(r.ids.iter().copied());
    }
    hits as f64 / prompts as f64
}

/// The Mooncake file of `rows`, in `dir`.
fn write_mooncake(dir: &Path, rows: &[Row]) -> std::path::PathBuf {
    let text: String = rows
        .iter()
        .map(|r| {
            json!({"timestamp": r.ms, "input_length": r.input, "output_length": r.output,
                   "hash_ids": r.ids})
            .to_string()
                + "\n"
        })
        .collect();
    let trace = dir.join("mooncake.jsonl");
    std::fs::write(&trace, text).unwrap();
    trace
}

/// The server's truth: one record per chat request, in the order they arrived.
fn chat_truth(server: &SimThread) -> Vec<tokenomics_sim::TraceRecord> {
    let mut truth: Vec<_> = server
        .sim
        .trace()
        .into_iter()
        .filter(|r| r.route == "chat")
        .collect();
    truth.sort_by_key(|r| r.arrival_ns);
    truth
}

/// Every trace request arrived at its trace time and with exactly its lengths (`before` and
/// `after`: the chat template's tokens around the text).
fn assert_replayed(truth: &[tokenomics_sim::TraceRecord], rows: &[Row], before: u64, after: u64) {
    assert_eq!(truth.len(), rows.len());
    // Arrivals on the trace's schedule. The schedule's zero is the client's start, which the
    // server cannot see: the reference is the median of (arrival − trace time), so that one late
    // first request (it also opens a connection) does not shift all the others.
    let offsets: Vec<i64> = truth
        .iter()
        .zip(rows)
        .map(|(r, row)| r.arrival_ns as i64 - row.ms as i64 * 1_000_000)
        .collect();
    let mut sorted = offsets.clone();
    sorted.sort_unstable();
    let zero = sorted[sorted.len() / 2];
    let off: Vec<(u64, i64)> = truth
        .iter()
        .zip(&offsets)
        .map(|(r, o)| (r.id, o - zero))
        .collect();
    // The bound is 2 ms for every request. A two-core machine shared with other work
    // stalls the client or the in-process server for several milliseconds now and then (CI once
    // saw one request 2.1 ms off; beside two compilers, five at 2.6 ms and one at 9 ms), so the
    // test asks it of 30 of the 40 and holds the rest to 50 ms. What it is here to catch (no schedule, a schedule that
    // drifts, a wrong time scale) is off by tens of milliseconds for many requests.
    let missed: Vec<_> = off.iter().filter(|(_, o)| o.abs() >= 2_000_000).collect();
    assert!(
        missed.len() <= 10,
        "off by 2 ms or more (id, ns): {missed:?}"
    );
    assert!(
        missed.iter().all(|(_, o)| o.abs() < 50_000_000),
        "off by 50 ms or more (id, ns): {missed:?}"
    );
    for (r, row) in truth.iter().zip(rows) {
        // Exactly the trace's lengths (the chat template around the text).
        assert_eq!(
            r.prompt_tokens,
            before + row.input + after,
            "request {}",
            r.id
        );
        assert_eq!(r.completion_tokens, row.output, "request {}", r.id);
    }
}

#[test]
fn a_mooncake_trace_replays_on_time_with_exact_lengths_and_the_expected_hits() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let rows = mooncake();
    let trace = write_mooncake(dir.path(), &rows);
    let server = sim();
    let (doc, _) = run(
        &[
            "--api_base",
            &server.api_base,
            "--stream",
            "--trace",
            trace.to_str().unwrap(),
        ],
        &dir.path().join("r.json"),
    );
    let level = &doc["results"]["trace"];
    assert_eq!(level["requests"]["succeeded"], 40, "{level}");
    assert_eq!(level["load"]["arrival"], "trace");
    assert_eq!(doc["metadata"]["dataset"]["source"]["format"], "mooncake");
    let pc = &level["prefix_cache"];
    let t = &pc["template_tokens"];
    let (before, after) = (t["before"].as_u64().unwrap(), t["after"].as_u64().unwrap());

    let truth = chat_truth(&server);
    assert_replayed(&truth, &rows, before, after);

    // The hit rate from the ids and the simulator's 16-token blocks, against what the server
    // reported; the tool's own expectation says the same.
    let expected = expected_hit_rate(&rows, before, after, 16);
    let measured = pc["measured_hit_rate"].as_f64().unwrap();
    let cached: u64 = truth.iter().map(|r| r.cached_tokens).sum();
    let prompt: u64 = truth.iter().map(|r| r.prompt_tokens).sum();
    assert_eq!(measured, cached as f64 / prompt as f64);
    assert!(
        (measured - expected).abs() < 0.01,
        "measured {measured}, expected {expected}"
    );
    println!("prefix-cache hit rate: measured {measured:.4}, expected {expected:.4}");
    assert!(expected > 0.3, "the trace shares a lot: {expected}");
    assert!(
        (pc["expected_hit_rate"].as_f64().unwrap() - expected).abs() < 1e-9,
        "{pc}"
    );
}

#[test]
fn azure_and_burstgpt_traces_replay_with_their_lengths_and_a_window() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let azure = dir.path().join("azure.csv");
    std::fs::write(
        &azure,
        "TIMESTAMP,ContextTokens,GeneratedTokens\n\
         2023-11-16 18:15:46.100,374,4\n\
         2023-11-16 18:15:46.200,96,9\n\
         2023-11-16 18:15:46.450,1200,3\n",
    )
    .unwrap();
    let burst = dir.path().join("burst.csv");
    std::fs::write(
        &burst,
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n\
         0,ChatGPT,40,5,45,Conversation log\n\
         1,ChatGPT,50,0,50,Conversation log\n\
         2,ChatGPT,60,7,67,Conversation log\n\
         30,ChatGPT,70,7,77,Conversation log\n",
    )
    .unwrap();
    let server = sim();
    let (doc, _) = run(
        &[
            "--api_base",
            &server.api_base,
            "--trace",
            azure.to_str().unwrap(),
        ],
        &dir.path().join("a.json"),
    );
    assert_eq!(doc["results"]["trace"]["requests"]["succeeded"], 3);
    // Twice as fast, the row with no output skipped and named, the slice from 0 to 10 s.
    let (doc, stderr) = run(
        &[
            "--api_base",
            &server.api_base,
            "--trace",
            burst.to_str().unwrap(),
            "--trace_time_scale",
            "2",
            "--trace_window",
            "0,10",
        ],
        &dir.path().join("b.json"),
    );
    assert!(
        stderr.contains("1 row skipped (line 3: no output tokens"),
        "{stderr}"
    );
    let level = &doc["results"]["trace"];
    assert_eq!(level["requests"]["succeeded"], 2);
    assert_eq!(doc["metadata"]["dataset"]["source"]["outside_window"], 1);
    let truth: Vec<_> = server
        .sim
        .trace()
        .into_iter()
        .filter(|r| r.route == "chat")
        .collect();
    assert_eq!(
        truth
            .iter()
            .map(|r| r.completion_tokens)
            .collect::<Vec<_>>(),
        [4, 9, 3, 5, 7]
    );
    // 2 s of trace at twice the speed: 1 s apart. The bound tells 1 s from 2 s (or 0.5 s) with
    // room for a shared machine's stalls; punctuality is the Mooncake test's.
    let gap = truth[4].arrival_ns - truth[3].arrival_ns;
    assert!((gap as i64 - 1_000_000_000).abs() < 50_000_000, "{gap}");
}

#[test]
fn unusable_traces_and_flags_the_trace_sets_are_refused_in_one_line() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(
        &empty,
        "{\"timestamp\": 5, \"input_length\": 10}\n{\"timestamp\": -1, \"input_length\": 10, \"output_length\": 2}\n",
    )
    .unwrap();
    let good = dir.path().join("good.jsonl");
    std::fs::write(
        &good,
        "{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 2}\n",
    )
    .unwrap();
    let cases: [(Vec<&str>, &str); 5] = [
        (
            vec!["--trace", empty.to_str().unwrap()],
            "no usable row (2 skipped; line 1: no output_length)",
        ),
        (
            vec!["--trace", "/nonexistent/trace.jsonl"],
            "/nonexistent/trace.jsonl",
        ),
        (
            vec!["--trace", good.to_str().unwrap(), "--request_rate", "5"],
            "leave out --request_rate",
        ),
        (
            vec!["--trace", good.to_str().unwrap(), "--input_tokens", "5"],
            "leave out --input_tokens",
        ),
        (
            vec!["--trace", good.to_str().unwrap(), "--trace_window", "5,1"],
            "--trace_window",
        ),
    ];
    for (args, needle) in cases {
        let o = oai_bench(&[&["--api_base", "http://127.0.0.1:9/v1"], &args[..]].concat());
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn a_trace_replays_from_two_shards_on_its_times_and_merges() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let rows = mooncake();
    let trace = write_mooncake(dir.path(), &rows);
    let server = sim();
    let shards = dir.path().join("shards");
    let start_at = (std::time::SystemTime::now() + std::time::Duration::from_secs(3))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let children: Vec<_> = (0..2)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_oai-bench"))
                .args(["--progress", "never", "--no_preflight", "--model", "tiny"])
                .args(["--api_base", &server.api_base, "--stream"])
                .args(["--trace", trace.to_str().unwrap()])
                .args([
                    "--shard",
                    &format!("{i}/2"),
                    "--start_at",
                    &format!("{start_at:.3}"),
                ])
                .args(["--results_dir", shards.to_str().unwrap()])
                .env_remove("OPENAI_API_KEY")
                .env("HF_HUB_OFFLINE", "1")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("run oai-bench")
        })
        .collect();
    for child in children {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // Each shard sent its half of the trace: requests 0, 2, 4, … and 1, 3, 5, …
    for i in 0..2 {
        let text = std::fs::read_to_string(shards.join(format!("shard-{i}-of-2.jsonl"))).unwrap();
        let indexes: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["index"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(indexes.len(), 20, "shard {i}");
        assert!(indexes.iter().all(|x| x % 2 == i), "shard {i}: {indexes:?}");
    }
    // Together, on the trace's times with its lengths, as from one machine.
    let truth = chat_truth(&server);
    let files = tokenomics_bench::merge::shard_files(&[shards]).unwrap();
    let doc = serde_json::to_value(tokenomics_bench::merge::merge(&files).unwrap()).unwrap();
    let level = &doc["results"]["trace"];
    assert_eq!(level["requests"]["succeeded"], 40, "{level}");
    assert_eq!(level["load"]["arrival"], "trace");
    let pc = &level["prefix_cache"];
    let t = &pc["template_tokens"];
    let (before, after) = (t["before"].as_u64().unwrap(), t["after"].as_u64().unwrap());
    assert_replayed(&truth, &rows, before, after);
    // The merged level's prefix cache: the whole trace's expectation, the merged records' hits.
    let expected = expected_hit_rate(&rows, before, after, 16);
    let cached: u64 = truth.iter().map(|r| r.cached_tokens).sum();
    let prompt: u64 = truth.iter().map(|r| r.prompt_tokens).sum();
    assert_eq!(
        pc["measured_hit_rate"].as_f64().unwrap(),
        cached as f64 / prompt as f64
    );
    assert_eq!(pc["requests_reporting"], 40);
    assert!(
        (pc["expected_hit_rate"].as_f64().unwrap() - expected).abs() < 1e-9,
        "{pc}"
    );
    assert!(
        (cached as f64 / prompt as f64 - expected).abs() < 0.01,
        "measured {}, expected {expected}",
        cached as f64 / prompt as f64
    );
}
