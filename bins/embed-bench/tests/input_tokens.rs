//! `--input_tokens`: texts of an exact token length, counted by the server's tokenize endpoint
//! (the simulator's), checked against the tokens the server itself reports in its usage; the
//! estimate when the server has no such endpoint; the flags it does not go with.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{json, Value};
use tokenomics_testkit::{Script, ScriptedServer};

fn embed_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_embed-bench"))
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .output()
        .expect("run embed-bench")
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("results file")).expect("valid JSON")
}

/// The simulator's embeddings route counts each input's tokens with the tokenizer its
/// `/tokenize` route uses and adds no special tokens (its tokenize endpoint shows none), so
/// every input of N tokens is reported as exactly N prompt tokens.
#[test]
fn every_input_is_exactly_n_tokens_in_the_servers_usage() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tok.json");
    let o = embed_bench(&[
        "--simulate",
        "instant",
        "--input_tokens",
        "64,256",
        "--batch_sizes",
        "1,4",
        "--num_runs",
        "3",
        "--results_file",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("Prompt lengths: exact, counted by the server's tokenizer"),
        "{stdout}"
    );
    let doc = read(&out);
    let m = &doc["metadata"];
    assert_eq!(m["sequence_lengths"], json!(["tok_64", "tok_256"]));
    let t = &m["input_tokens"];
    assert_eq!(t["lengths"], json!([64, 256]));
    assert_eq!(t["token_count_source"], "tokenize_endpoint");
    assert!(
        t["tokenizer"].as_str().unwrap().ends_with("/tokenize"),
        "{t}"
    );
    assert_eq!(t["special_tokens"], json!({"before": 0, "after": 0}));
    let keys: Vec<&String> = doc["results"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "batch_1_tok_64",
            "batch_1_tok_256",
            "batch_4_tok_64",
            "batch_4_tok_256"
        ]
    );
    for (batch, n) in [(1u64, 64u64), (1, 256), (4, 64), (4, 256)] {
        let level = &doc["results"][format!("batch_{batch}_tok_{n}")];
        let tokens = &level["tokens"];
        // Every request reported usage, and with one input per request a batch of 1 is one
        // input: in each of the 3 runs (3 different texts) the server counted exactly N.
        assert_eq!(
            tokens["token_source"],
            json!({"usage": 3 * batch}),
            "{level}"
        );
        let per_batch = &tokens["total_per_batch"];
        let want = (batch * n) as f64;
        for stat in ["mean", "min", "max"] {
            assert_eq!(per_batch[stat].as_f64(), Some(want), "{batch}×{n}: {level}");
        }
    }
}

/// A closed loop, several inputs per request: the keys name the token length, and every
/// request's inputs add up to exactly inputs × N.
#[test]
fn closed_loops_key_their_levels_by_token_length() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("loop.json");
    let o = embed_bench(&[
        "--simulate",
        "instant",
        "--input_tokens",
        "100",
        "--max_concurrency",
        "2",
        "--num_requests",
        "20",
        "--inputs_per_request",
        "3",
        "--results_file",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let doc = read(&out);
    let tokens = &doc["results"]["concurrency_2_tok_100"]["tokens"];
    assert_eq!(tokens["token_source"], json!({"usage": 20}), "{doc}");
    assert_eq!(tokens["total_per_batch"]["mean"].as_f64(), Some(6000.0));
}

/// A word-level `tokenizer.json` of the text vocabulary: one token per word, no special tokens.
fn word_level_tokenizer(path: &Path) {
    let mut vocab = serde_json::Map::new();
    vocab.insert("[UNK]".into(), json!(0));
    for w in tokenomics_datasets::text::VOCABULARY {
        let id = vocab.len();
        vocab.entry(w.to_string()).or_insert(json!(id));
    }
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
        "decoder": null, "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"},
    });
    std::fs::write(path, serde_json::to_vec(&tokenizer).unwrap()).unwrap();
}

/// `--tokenizer FILE` counts the lengths with that file, and the metadata names it.
#[test]
fn a_local_tokenizer_counts_the_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let tokenizer = dir.path().join("tokenizer.json");
    word_level_tokenizer(&tokenizer);
    let out = dir.path().join("local.json");
    let o = embed_bench(&[
        "--simulate",
        "instant",
        "--input_tokens",
        "50",
        "--tokenizer",
        tokenizer.to_str().unwrap(),
        "--batch_sizes",
        "2",
        "--num_runs",
        "1",
        "--results_file",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("Prompt lengths: exact, counted with the tokenizer"),
        "{stdout}"
    );
    let doc = read(&out);
    let t = &doc["metadata"]["input_tokens"];
    assert_eq!(t["token_count_source"], "tokenizer", "{t}");
    assert_eq!(t["tokenizer"], tokenizer.to_str().unwrap());
    assert!(doc["results"].get("batch_2_tok_50").is_some(), "{doc}");
}

/// A server without a tokenize endpoint: the lengths are estimated, said so in a warning and in
/// the metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_tokenizer_the_lengths_are_an_estimate_and_say_so() {
    let server = ScriptedServer::uniform(Script {
        ttft: Duration::from_millis(5),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("est.json");
    let o = embed_bench(&[
        "--no_preflight",
        "--model",
        "emb",
        "--api_base",
        &server.api_base(),
        "--input_tokens",
        "13",
        "--batch_sizes",
        "1",
        "--num_runs",
        "1",
        "--warmup_runs",
        "0",
        "--results_file",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: prompt lengths are estimated"),
        "{stderr}"
    );
    let doc = read(&out);
    let t = &doc["metadata"]["input_tokens"];
    assert_eq!(t["token_count_source"], "estimate", "{t}");
    assert!(t.get("tokenizer").is_none() && t.get("special_tokens").is_none());
    assert!(doc["results"].get("batch_1_tok_13").is_some(), "{doc}");
}

#[test]
fn token_lengths_and_word_lengths_are_refused_together_in_one_line() {
    for (args, expected) in [
        (
            vec![
                "--model",
                "m",
                "--input_tokens",
                "64",
                "--sequence_lengths",
                "short",
            ],
            "'--input_tokens <INPUT_TOKENS>' cannot be used with '--sequence_lengths",
        ),
        (
            vec!["--model", "m", "--tokenizer", "tokenizer.json"],
            "required arguments were not provided: --input_tokens",
        ),
        (
            vec!["--model", "m", "--input_tokens", "0"],
            "invalid value '0' for '--input_tokens",
        ),
        (
            vec!["--model", "m", "--input_tokens", "uniform:1,5"],
            "invalid value 'uniform:1' for '--input_tokens",
        ),
    ] {
        let o = embed_bench(&args);
        tokenomics_testkit::cli::assert_usage_error(&o, &format!("{args:?}"), expected);
    }
}
