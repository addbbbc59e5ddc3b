//! Issue #15's shared prefixes: `--shared_prefix_tokens 2048 --prefix_groups 4` against the
//! simulated H100 / Llama 3.1 8B engine. The hit rate written down before the level agrees with
//! the one the server reported request by request (and with its own counters) within a
//! percentage point, and the time to first token at concurrency 1 drops, against the same
//! simulator with prefix caching off, by what the preset's roofline says the skipped prefill
//! costs, within 10%. Bad combinations of the flags are refused in one line with exit code 2.

use std::process::{Command, Output};

use serde_json::Value;
use tokenomics_sim::preset::{Behaviour, EngineSpec, StepLoad};
use tokenomics_sim::SimConfig;

const PRESET: &str = "h100-llama-3.1-8b";
const PREFIX: u64 = 2048;
const GROUPS: u64 = 4;
const SUFFIX: u64 = 256;
const REQUESTS: u64 = 24;

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

/// One closed-loop level at concurrency 1 against the preset, prefix caching on or off; the
/// level's results.
fn level(prefix_caching: bool) -> Value {
    let sim = tokenomics_testkit::start_sim_thread(
        SimConfig::preset(PRESET)
            .unwrap()
            .with_prefix_caching(prefix_caching),
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let (prefix, groups, suffix, n) = (
        PREFIX.to_string(),
        GROUPS.to_string(),
        SUFFIX.to_string(),
        REQUESTS.to_string(),
    );
    let o = oai_bench(&[
        "--api_base",
        &sim.api_base,
        "--model",
        "llama-3.1-8b",
        "--input_tokens",
        &suffix,
        "--shared_prefix_tokens",
        &prefix,
        "--prefix_groups",
        &groups,
        "--max_concurrency",
        "1",
        "--num_requests",
        &n,
        "--warmup_runs",
        "0",
        "--max_tokens",
        "2",
        "--ignore_eos",
        "--stream",
        "--results_file",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Written down before the level ran.
    let expected_at = stdout
        .find("expected prefix-cache hit rate")
        .expect(&stdout);
    let level_at = stdout.find("=== ").expect(&stdout);
    assert!(level_at < expected_at, "{stdout}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let (_, level) = doc["results"].as_object().unwrap().iter().next().unwrap();
    assert_eq!(level["requests"]["succeeded"], REQUESTS, "{level}");
    level.clone()
}

/// Seconds the preset's engine takes to prefill `new` tokens after `cached` ones, alone in one
/// step (the prompt is under the step budget): causal attention over the cached context and
/// half the new tokens.
fn prefill_s(spec: &EngineSpec, cached: u64, new: u64) -> f64 {
    spec.step_time(StepLoad {
        tokens: new,
        context_tokens: cached + new,
        attention_pairs: new as f64 * (cached as f64 + new as f64 / 2.0),
        sequences: 1,
    })
    .total()
}

#[test]
fn expected_and_measured_hit_rates_agree_and_ttft_drops_as_the_roofline_says() {
    let on = level(true);
    let off = level(false);

    let p = &on["prefix_cache"];
    let (expected, measured) = (
        p["expected_hit_rate"].as_f64().unwrap(),
        p["measured_hit_rate"].as_f64().unwrap(),
    );
    // The first request of each group finds nothing; the others, every whole block of the chat
    // template's opening and the prefix.
    assert_eq!(p["expected_misses"], GROUPS, "{p}");
    assert_eq!(p["expected_requests"], REQUESTS, "{p}");
    assert_eq!(p["requests_reporting"], REQUESTS, "{p}");
    let before = p["template_tokens"]["before"].as_u64().unwrap();
    assert_eq!(
        p["expected_hit_tokens_per_request"].as_u64().unwrap(),
        (before + PREFIX) / 16 * 16
    );
    assert!(
        (expected - measured).abs() <= 0.01,
        "expected {expected}, measured {measured}"
    );
    assert!(expected > 0.6, "{expected}");
    // The server's own counters say the same.
    let server = p["server_hit_rate"].as_f64().unwrap();
    assert!((server - measured).abs() < 1e-9, "{server} vs {measured}");
    // Every prompt is its prefix, its suffix and the template, exactly.
    let prompt = on["tokens"]["input_per_request"]["mean"].as_f64().unwrap();
    assert_eq!(
        prompt,
        p["expected_prompt_tokens_per_request"].as_f64().unwrap()
    );

    // Caching off: the expectation is still written, and nothing is reported cached.
    let q = &off["prefix_cache"];
    assert_eq!(q["expected_hit_rate"], p["expected_hit_rate"]);
    assert!(q.get("measured_hit_rate").is_none(), "{q}");

    // The roofline's saving: a hit prefills the prompt less its cached blocks, after them.
    let Behaviour::Engine(spec) = SimConfig::preset(PRESET).unwrap().behaviour() else {
        panic!("{PRESET} runs the engine")
    };
    let total = prompt as u64;
    let hit = p["expected_hit_tokens_per_request"].as_u64().unwrap();
    let saved_per_hit = prefill_s(&spec, 0, total) - prefill_s(&spec, hit, total - hit);
    let hits = (REQUESTS - GROUPS) as f64 / REQUESTS as f64;
    let predicted = hits * saved_per_hit;
    let ttft = |l: &Value| l["latency"]["ttft"]["mean"].as_f64().unwrap();
    let drop = ttft(&off) - ttft(&on);
    assert!(
        (drop - predicted).abs() <= 0.1 * predicted,
        "TTFT off {} s, on {} s: a drop of {drop} s; the roofline predicts {predicted} s",
        ttft(&off),
        ttft(&on)
    );
    eprintln!(
        "hit rate expected {expected:.4}, measured {measured:.4}; TTFT off {:.4} s, on {:.4} s, drop {drop:.4} s, predicted {predicted:.4} s",
        ttft(&off),
        ttft(&on)
    );
}

#[test]
fn bad_combinations_are_refused_in_one_line() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["--prefix_groups", "4", "--input_tokens", "64"],
            "--shared_prefix_tokens",
        ),
        (
            &["--shared_prefix_tokens", "64", "--input_tokens", "64"],
            "--prefix_groups",
        ),
        (
            &["--shared_prefix_tokens", "64", "--prefix_groups", "4"],
            "--input_tokens",
        ),
        (
            &[
                "--shared_prefix_tokens",
                "64",
                "--prefix_groups",
                "0",
                "--input_tokens",
                "64",
            ],
            "--prefix_groups",
        ),
        (
            &["--prefix_block_tokens", "32", "--input_tokens", "64"],
            "--shared_prefix_tokens",
        ),
    ];
    for (args, names) in cases {
        let o = oai_bench(&[&["--simulate", "tiny"][..], args].concat());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(names), "{args:?}: {err}");
    }
    // The library's own check, past clap: a suffix source that is not token-exact.
    let o = oai_bench(&[
        "--simulate",
        "tiny",
        "--shared_prefix_tokens",
        "64",
        "--prefix_groups",
        "2",
        "--dataset_key",
        "synthetic",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("needs --input_tokens"), "{err}");
}
