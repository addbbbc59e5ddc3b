//! Issue #15's conversations: sessions of turns, each turn carrying the whole history — the
//! earlier user turns and the server's own answers — after a think time; figures per turn index.
//!
//! A scripted server records every request's body and answers request i with a known number of
//! tokens (so its answer text is known: output words 0, 1, …) after a first-token time that
//! grows with the turn (so the per-turn TTFT the client reports can be checked).

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokenomics_sim::wire::output_word;
use tokenomics_testkit::{Script, ScriptedServer};

/// First-token time per user turn in the request: turn k waits k × this.
const TTFT_STEP_MS: u64 = 30;

/// Output tokens of request `i`: 2 to 5, so that answers differ.
fn tokens_of(i: u64) -> u64 {
    2 + i % 4
}

/// The text the scripted server streams for `n` tokens.
fn answer(n: u64) -> String {
    (0..n).map(output_word).collect()
}

fn user_turns(body: &Value) -> usize {
    body["messages"]
        .as_array()
        .map_or(0, |m| m.iter().filter(|m| m["role"] == "user").count())
}

/// A server that records each request's body (by arrival index) and answers turn k after
/// k × [`TTFT_STEP_MS`].
async fn recording_server() -> (ScriptedServer, Arc<Mutex<Vec<(u64, Value)>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    let server = ScriptedServer::start(move |i, body| {
        seen.lock().unwrap().push((i, body.clone()));
        Script {
            ttft: Duration::from_millis(TTFT_STEP_MS * user_turns(body).max(1) as u64),
            itl: Duration::from_millis(2),
            tokens: Some(tokens_of(i)),
            ..Script::default()
        }
    })
    .await;
    (server, bodies)
}

fn oai_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oai-bench"))
        .args(["--progress", "never", "--model", "test-model"])
        .args(["--warmup_runs", "0", "--no_preflight"])
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("run oai-bench")
}

fn run(args: &[&str]) -> (Value, Vec<Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out, records) = (dir.path().join("r.json"), dir.path().join("r.jsonl"));
    let o = oai_bench(
        &[
            args,
            &[
                "--results_file",
                out.to_str().unwrap(),
                "--requests_file",
                records.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let doc = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let lines = std::fs::read_to_string(&records)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (doc, lines, stdout)
}

/// Checks that every request of more than one user turn is its parent's messages (the request
/// with one user turn fewer and the same history), then the parent's actual answer as the
/// assistant's message, then the new user turn. Returns each request's parent index.
fn check_histories(bodies: &[(u64, Value)]) -> Vec<(u64, Option<u64>)> {
    let messages = |b: &Value| b["messages"].as_array().unwrap().clone();
    bodies
        .iter()
        .map(|(i, body)| {
            let m = messages(body);
            assert_eq!(
                m.last().unwrap()["role"],
                "user",
                "request {i} ends with a user turn"
            );
            if user_turns(body) == 1 {
                return (*i, None);
            }
            let history = &m[..m.len() - 2];
            let said = &m[m.len() - 2];
            assert_eq!(said["role"], "assistant");
            let said = said["content"].as_str().unwrap();
            // The earlier request with this history whose answer is the one carried (two
            // sessions of one dataset conversation open with the same request).
            let parent = bodies
                .iter()
                .filter(|(_, b)| messages(b) == history)
                .map(|(p, _)| *p)
                .find(|p| answer(tokens_of(*p)) == said);
            let Some(p) = parent else {
                panic!("request {i}: no earlier request has its history and the answer {said:?}")
            };
            (*i, Some(p))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_turn_sessions_carry_their_history_honour_think_time_and_report_each_turn() {
    let (server, bodies) = recording_server().await;
    let (doc, lines, stdout) = run(&[
        "--api_base",
        &server.api_base(),
        "--dataset_key",
        "synthetic",
        "--stream",
        "--sessions",
        "2",
        "--turns",
        "4",
        "--think_time",
        "0.3",
        "--num_sessions",
        "3",
        "--max_tokens",
        "8",
    ]);
    let bodies = bodies.lock().unwrap().clone();
    // 3 sessions of 4 turns.
    assert_eq!(bodies.len(), 12, "{stdout}");
    for k in 1..=4 {
        assert_eq!(bodies.iter().filter(|(_, b)| user_turns(b) == k).count(), 3);
    }
    for (_, b) in &bodies {
        let m = b["messages"].as_array().unwrap();
        assert_eq!(
            m[0]["role"], "system",
            "every turn opens with the system message"
        );
        assert_eq!(
            m.len(),
            2 * user_turns(b),
            "system, then user/assistant pairs, then user"
        );
    }
    let parents = check_histories(&bodies);

    // Think time: from the parent's last byte (server side) to the next turn's arrival, 0.3 s.
    // The lower bound is exact up to the loopback hop (the client waits 0.3 s after it read the
    // last byte, which the server sent first); the upper allows 60 ms for a loaded 2-core machine.
    let truth = server.truth();
    for (i, parent) in parents {
        let Some(p) = parent else { continue };
        let (child, parent) = (&truth[i as usize], &truth[p as usize]);
        let gap = child
            .arrival
            .duration_since(parent.end.expect("the parent ended"))
            .as_secs_f64();
        assert!(
            (0.299..0.36).contains(&gap),
            "request {i}: {gap:.4} s after its parent's answer, think time 0.3 s"
        );
    }

    // The level: every request, every session completed, figures per turn.
    let level = doc["results"].as_object().unwrap().values().next().unwrap();
    assert_eq!(level["requests"]["succeeded"], 12, "{level}");
    let conv = &level["conversation"];
    assert_eq!(conv["sessions"], 3);
    assert_eq!(conv["completed"], 3);
    assert_eq!(conv["turns_per_session"]["mean"], 4.0);
    let think = conv["think_time"]["mean"].as_f64().unwrap();
    assert!((0.3..0.36).contains(&think), "think time achieved {think}");
    let turns = conv["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 4);
    let mut prompt_before = 0.0;
    for (k, t) in turns.iter().enumerate() {
        assert_eq!(t["turn"], k as u64 + 1);
        assert_eq!(t["requests"]["succeeded"], 3);
        // TTFT per turn: the server waits (k+1) × 30 ms; the client's TTFT adds the loopback
        // and its reading, a few ms at most, 15 ms allowed.
        let ttft = t["latency"]["ttft"]["p50"].as_f64().unwrap() * 1e3;
        let want = (TTFT_STEP_MS * (k as u64 + 1)) as f64;
        assert!(
            (want..want + 15.0).contains(&ttft),
            "turn {}: TTFT p50 {ttft:.1} ms, the server's {want} ms",
            k + 1
        );
        // The prompt grows with the history.
        let prompt = t["tokens"]["input_per_request"]["mean"].as_f64().unwrap();
        assert!(
            prompt > prompt_before,
            "turn {}: {prompt} prompt tokens",
            k + 1
        );
        prompt_before = prompt;
    }
    assert!(stdout.contains("turn 4"), "{stdout}");
    assert!(stdout.contains("3 started, 3 completed"), "{stdout}");
    let meta = &doc["metadata"]["conversation"];
    assert_eq!(meta["source"], "synthetic");
    assert_eq!(meta["turns"], 4);
    assert_eq!(meta["think_time"], "0.3");

    // The records: each line's session and turn; a later turn's think_s.
    assert_eq!(lines.len(), 12);
    for l in &lines {
        let turn = l["turn"].as_u64().unwrap();
        assert!((1..=4).contains(&turn) && l["session"].as_u64().unwrap() < 3);
        match turn {
            1 => assert!(l["think_s"].is_null()),
            _ => assert!(l["think_s"].as_f64().unwrap() >= 0.3),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_conversation_keeps_its_system_message_and_drops_its_own_answers() {
    let (server, bodies) = recording_server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chats.jsonl");
    std::fs::write(
        &file,
        concat!(
            r#"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "first?"}, {"role": "assistant", "content": "DATASET ANSWER"}, {"role": "user", "content": "second?"}, {"role": "assistant", "content": "DATASET ANSWER"}, {"role": "user", "content": "third?"}]}"#,
            "\n"
        ),
    )
    .unwrap();
    let key = format!("file:{}", file.display());
    let (doc, _, _) = run(&[
        "--api_base",
        &server.api_base(),
        "--dataset_key",
        &key,
        "--sessions",
        "1",
        "--num_sessions",
        "2",
        "--max_tokens",
        "8",
    ]);
    let bodies = bodies.lock().unwrap().clone();
    assert_eq!(
        bodies.len(),
        6,
        "two sessions of the conversation's three user turns"
    );
    for (_, b) in &bodies {
        let text = b.to_string();
        assert!(!text.contains("DATASET ANSWER"), "{text}");
        assert_eq!(b["messages"][0]["content"], "Be brief.");
    }
    check_histories(&bodies);
    assert_eq!(doc["metadata"]["conversation"]["source"], "dataset");
    let level = doc["results"].as_object().unwrap().values().next().unwrap();
    assert_eq!(level["conversation"]["completed"], 2);
    assert_eq!(level["conversation"]["turns"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_arrive_on_the_open_loop_schedule() {
    let (server, bodies) = recording_server().await;
    let (doc, _, _) = run(&[
        "--api_base",
        &server.api_base(),
        "--dataset_key",
        "synthetic",
        "--session_rate",
        "10",
        "--arrival",
        "constant",
        "--num_sessions",
        "6",
        "--turns",
        "2",
        "--max_tokens",
        "4",
    ]);
    let bodies = bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 12);
    check_histories(&bodies);
    // First turns 100 ms apart (the schedule); each within 10 ms of it on a loaded machine.
    let truth = server.truth();
    let firsts: Vec<_> = bodies
        .iter()
        .filter(|(_, b)| user_turns(b) == 1)
        .map(|(i, _)| truth[*i as usize].arrival)
        .collect();
    assert_eq!(firsts.len(), 6);
    let t0 = firsts[0];
    for (k, t) in firsts.iter().enumerate() {
        let off = t.duration_since(t0).as_secs_f64();
        assert!(
            (off - 0.1 * k as f64).abs() < 0.01,
            "session {k} arrived {off:.4} s after the first"
        );
    }
    let level = doc["results"].as_object().unwrap().values().next().unwrap();
    assert_eq!(level["conversation"]["sessions"], 6);
    let achieved = level["load"]["achieved_rate"]["mean"].as_f64();
    let scheduled = level["load"]["scheduled_rate"]["mean"].as_f64();
    assert_eq!(achieved.is_some(), scheduled.is_some(), "{}", level["load"]);
}

/// Each turn after the first sends its session's previous prompt again: a prefix cache that keeps
/// the sessions' prompts serves it, in whole blocks. Against the simulator (vLLM's automatic
/// prefix caching, 16-token blocks, nothing evicted at this load) with token-exact prompts (no
/// system message that sessions would share) the measured hit rate is exactly that expectation,
/// which the records give again independently.
#[test]
fn the_expected_prefix_cache_hit_rate_of_histories_is_what_the_simulator_caches() {
    let (doc, lines, stdout) = run(&[
        "--simulate",
        "h100-llama-3.1-8b",
        "--input_tokens",
        "200",
        "--sessions",
        "3",
        "--turns",
        "4",
        "--num_sessions",
        "6",
        "--max_tokens",
        "24",
        "--stream",
        "--ignore_eos",
    ]);
    let p = &doc["results"]["3"]["prefix_cache"];
    assert_eq!(p["block_tokens"], 16);
    assert_eq!(p["expected_requests"], 24);
    assert_eq!(p["expected_misses"], 6, "each session's first turn: {p}");
    // From the records: turn k finds turn k − 1's prompt, in whole blocks.
    let prompt = |l: &Value| l["prompt_tokens"].as_u64().unwrap();
    let (mut hits, mut prompts) = (0, 0);
    for l in &lines {
        assert_eq!(l["status"], "ok");
        prompts += prompt(l);
        if l["turn"].as_u64().unwrap() > 1 {
            let previous = lines
                .iter()
                .find(|e| {
                    e["session"] == l["session"] && e["turn"] == l["turn"].as_u64().unwrap() - 1
                })
                .expect("the previous turn");
            hits += (prompt(previous) / 16 * 16).min((prompt(l) - 1) / 16 * 16);
        }
    }
    let expected = p["expected_hit_rate"].as_f64().unwrap();
    assert!(
        (expected - hits as f64 / prompts as f64).abs() < 1e-12,
        "{p}"
    );
    assert!(expected > 0.4, "{p}");
    assert_eq!(p["measured_hit_rate"].as_f64(), Some(expected), "{p}");
    assert_eq!(p["cached_tokens"], hits);
    assert!(stdout.contains("prefix-cache hits"), "{stdout}");
}

#[test]
fn conversation_flags_that_do_not_go_together_are_refused_in_one_line() {
    for (args, says) in [
        (&["--turns", "3"][..], "--turns shapes conversations"),
        (&["--think_time", "1"], "--think_time shapes conversations"),
        (
            &["--sessions", "2", "--max_concurrency", "4"],
            "--max_concurrency",
        ),
        (&["--sessions", "2", "--session_rate", "1"], "not both"),
        (
            &["--sessions", "2", "--num_requests", "4"],
            "--num_sessions",
        ),
        (
            &["--sessions", "2", "--arrival", "constant"],
            "--session_rate",
        ),
        (&["--sessions", "2", "--think_time", "soon"], "think_time"),
        (
            &["--sessions", "2", "--think_time", "uniform:3,1"],
            "think_time",
        ),
        (&["--sessions", "2", "--probe_rate", "1"], "--probe_rate"),
        (
            &["--sessions", "2", "--warmup_seconds", "1"],
            "--warmup_seconds",
        ),
    ] {
        let o = oai_bench(&[&["--api_base", "http://127.0.0.1:9/v1"], args].concat());
        tokenomics_testkit::cli::assert_usage_error(&o, &format!("{args:?}"), says);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_prompts_without_turns_are_refused() {
    let (server, bodies) = recording_server().await;
    let o = oai_bench(&[
        "--api_base",
        &server.api_base(),
        "--dataset_key",
        "synthetic",
        "--sessions",
        "2",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--turns"), "{stderr}");
    assert!(bodies.lock().unwrap().is_empty(), "nothing was sent");
}
