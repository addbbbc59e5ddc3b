//! Partition invariance: one open-loop run as one `oai-bench` process and as four shard processes
//! (their index and count from the variables a Kubernetes Indexed Job sets, one `--start_at`),
//! against one simulator. The shards send exactly the single run's requests — the same prompts at
//! the same scheduled times — and the merge's percentiles are those of the union of their records.
//! Alone in its test binary, its tests one at a time: several processes and a simulator share
//! this machine's cores.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokenomics_bench::merge;
use tokenomics_sim::SimConfig;
use tokenomics_testkit::start_sim_thread;

/// The tests take turns: each starts several processes on a machine that may have two cores.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The open-loop run of the first test.
const OPEN_LOOP: [&str; 4] = ["--request_rate", "16", "--duration", "3"];

fn oai_bench(api_base: &str, extra: &[&str]) -> Command {
    oai_bench_with(api_base, &OPEN_LOOP, extra)
}

fn oai_bench_with(api_base: &str, load: &[&str], extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oai-bench"));
    cmd.args([
        "--model",
        "llama-3.1-8b",
        "--api_base",
        api_base,
        "--dataset_key",
        "synthetic",
        "--max_tokens",
        "24",
        "--stream",
        "--seed",
        "11",
        "--warmup_runs",
        "0",
        "--progress",
        "never",
    ])
    .args(load)
    .args(extra)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    for var in [
        "JOB_COMPLETION_INDEX",
        "TOKENOMICS_SHARDS",
        "SLURM_PROCID",
        "SLURM_NTASKS",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A `--start_at` value `secs` seconds from now: enough for every shard process to be ready.
fn start_at_in(secs: u64) -> String {
    let at = (SystemTime::now() + Duration::from_secs(secs))
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    format!("{at:.3}")
}

/// Waits for every shard process; each must succeed.
fn wait_all(children: Vec<std::process::Child>) {
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs `load` as one process (shard 0 of 1) writing to `dir`; it must succeed.
fn run_alone(api_base: &str, load: &[&str], dir: &Path) {
    let out = oai_bench_with(api_base, load, &["--shard", "0/1"])
        .args(["--results_dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `load` as `n` shard processes started together (`--shard I/N`, one `--start_at` three
/// seconds ahead) writing to `dir`; each must succeed.
fn run_sharded(api_base: &str, load: &[&str], n: u32, dir: &Path) {
    let start_at = start_at_in(3);
    let children: Vec<_> = (0..n)
        .map(|i| {
            oai_bench_with(api_base, load, &["--start_at", &start_at])
                .args(["--shard", &format!("{i}/{n}")])
                .args(["--results_dir", dir.to_str().unwrap()])
                .spawn()
                .unwrap()
        })
        .collect();
    wait_all(children);
}

/// Every records line of the `.jsonl` files in `dir`, by its index in the run's plan.
fn lines(dir: &Path) -> BTreeMap<u64, Value> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let l: Value = serde_json::from_str(line).unwrap();
                let index = l["index"].as_u64().unwrap();
                assert!(all.insert(index, l).is_none(), "request {index} twice");
            }
        }
    }
    all
}

/// Linear-interpolation percentile (the one every document uses), `q` in percent.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = q / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

/// `a` and `b` alike, numbers to a relative 1e-9 (sums taken in another order); the path of the
/// first difference otherwise.
fn alike(a: &Value, b: &Value, path: &str) -> Result<(), String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return Err(format!("{path}: keys {:?} vs {:?}", x.keys(), y.keys()));
            }
            for (k, v) in x {
                let w = y.get(k).ok_or(format!("{path}/{k} missing"))?;
                alike(v, w, &format!("{path}/{k}"))?;
            }
            Ok(())
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .try_for_each(|(i, (v, w))| alike(v, w, &format!("{path}[{i}]"))),
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            if (x - y).abs() <= 1e-9 * x.abs().max(1.0) {
                Ok(())
            } else {
                Err(format!("{path}: {x} vs {y}"))
            }
        }
        _ if a == b => Ok(()),
        _ => Err(format!("{path}: {a} vs {b}")),
    }
}

#[test]
fn four_shards_are_the_single_run_split_and_merge_exactly() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let api_base = start_sim_thread(SimConfig::preset("h100-llama-3.1-8b").unwrap()).api_base;
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("single");
    let shards = dir.path().join("shards");

    let out = oai_bench(&api_base, &["--shard", "0/1"])
        .args(["--results_dir", single.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Four processes started with one start time, ahead by enough for all four to be ready.
    let start_at = start_at_in(4);
    let children: Vec<_> = (0..4)
        .map(|i| {
            oai_bench(&api_base, &["--start_at", &start_at])
                .args(["--results_dir", shards.to_str().unwrap()])
                .env("JOB_COMPLETION_INDEX", i.to_string())
                .env("TOKENOMICS_SHARDS", "4")
                .spawn()
                .unwrap()
        })
        .collect();
    wait_all(children);

    // The same requests: the same prompts at the same scheduled times, each once.
    let one = lines(&single);
    let four = lines(&shards);
    assert!(one.len() >= 30, "{} requests", one.len());
    assert_eq!(
        one.keys().collect::<Vec<_>>(),
        four.keys().collect::<Vec<_>>()
    );
    for (index, a) in &one {
        let b = &four[index];
        assert_eq!(a["prompt_tokens"], b["prompt_tokens"], "request {index}");
        let (sa, sb) = (
            a["scheduled_s"].as_f64().unwrap(),
            b["scheduled_s"].as_f64().unwrap(),
        );
        assert!(
            (sa - sb).abs() < 1e-9,
            "request {index}: scheduled {sa} vs {sb}"
        );
        assert_eq!(b["status"], "ok", "request {index}: {b}");
    }

    // Merged percentiles are the union's.
    let files = merge::shard_files(std::slice::from_ref(&shards)).unwrap();
    assert_eq!(files.len(), 4);
    let merged = serde_json::to_value(merge::merge(&files).unwrap()).unwrap();
    let level = &merged["results"]["16"];
    assert_eq!(level["requests"]["succeeded"], four.len() as u64);
    let mut ttft: Vec<f64> = four
        .values()
        .map(|l| l["ttft_s"].as_f64().unwrap())
        .collect();
    let mut e2el: Vec<f64> = four
        .values()
        .map(|l| l["e2el_s"].as_f64().unwrap())
        .collect();
    let mut itl: Vec<f64> = four
        .values()
        .flat_map(|l| {
            let t: Vec<f64> = l["token_s"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            t.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>()
        })
        .collect();
    for v in [&mut ttft, &mut e2el, &mut itl] {
        v.sort_by(f64::total_cmp);
    }
    for (name, values, tolerance) in [
        ("ttft", &ttft, 2e-9),
        ("e2el", &e2el, 2e-9),
        ("itl", &itl, 2e-9),
    ] {
        assert_eq!(
            level["latency"][name]["count"],
            values.len() as u64,
            "{name}"
        );
        for q in ["50", "90", "99"] {
            let got = level["latency"][name][format!("p{q}")].as_f64().unwrap();
            let want = percentile(values, q.parse().unwrap());
            assert!(
                (got - want).abs() < tolerance,
                "{name} p{q}: merged {got}, union of the records {want}"
            );
        }
    }
    // The merged run kept to its schedule: the achieved rate within 1% of the scheduled one.
    let load = &level["load"];
    let scheduled = load["scheduled_rate"]["mean"].as_f64().unwrap();
    let achieved = load["achieved_rate"]["mean"].as_f64().unwrap();
    assert!(
        (achieved / scheduled - 1.0).abs() < 0.01,
        "achieved {achieved} of {scheduled} requests/s"
    );
    let shards_meta = merged["metadata"]["merged"]["shards"].as_array().unwrap();
    assert_eq!(shards_meta.len(), 4);

    // One shard merged is the local run's document.
    let local = read(&single.join("shard-0-of-1.json"));
    let one_merged = serde_json::to_value(
        merge::merge(&merge::shard_files(std::slice::from_ref(&single)).unwrap()).unwrap(),
    )
    .unwrap();
    if let Err(e) = alike(&one_merged["results"], &local["results"], "results") {
        panic!("one shard merged differs from the local document at {e}");
    }
}

#[test]
fn closed_loop_shards_split_the_concurrency_and_keep_the_timetable() {
    // Two levels, two shards started as srun starts its tasks: each shard runs half of each
    // concurrency, both levels on one timetable; the merge restores the whole concurrency. Shard
    // 0 alone sends the probes, and the merge keeps them.
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let api_base = start_sim_thread(SimConfig::preset("h100-llama-3.1-8b").unwrap()).api_base;
    let dir = tempfile::tempdir().unwrap();
    let start_at = start_at_in(4);
    let load = [
        "--max_concurrency",
        "4,6",
        "--duration",
        "1.5",
        "--run_gap",
        "1",
        "--probe_rate",
        "10",
    ];
    let children: Vec<_> = (0..2)
        .map(|i| {
            oai_bench_with(&api_base, &load, &["--start_at", &start_at])
                .args(["--results_dir", dir.path().to_str().unwrap()])
                .env("SLURM_PROCID", i.to_string())
                .env("SLURM_NTASKS", "2")
                .spawn()
                .unwrap()
        })
        .collect();
    wait_all(children);
    let mut per_level = [0u64; 2];
    let mut probes = Vec::new();
    for i in 0..2 {
        let doc = read(&dir.path().join(format!("shard-{i}-of-2.json")));
        assert_eq!(doc["metadata"]["shard"]["levels_done"], 2);
        for (k, key) in ["4", "6"].iter().enumerate() {
            let level = &doc["results"][key];
            let p = &level["probes"];
            match i {
                0 => {
                    assert!(p["sent"].as_u64().unwrap() > 0, "level {key}: {p}");
                    probes.push(p.clone());
                }
                _ => assert!(p.is_null(), "shard {i}, level {key}: {p}"),
            }
            // Each shard ran half of the concurrency.
            let target = level["throughput"]["steady_state"]["target_in_flight"]["mean"]
                .as_f64()
                .unwrap();
            assert_eq!(target, [2.0, 3.0][k], "shard {i}, level {key}");
            per_level[k] += level["requests"]["succeeded"].as_u64().unwrap();
        }
    }
    let files = merge::shard_files(&[dir.path().to_path_buf()]).unwrap();
    let merged = serde_json::to_value(merge::merge(&files).unwrap()).unwrap();
    for (k, key) in ["4", "6"].iter().enumerate() {
        let level = &merged["results"][key];
        assert_eq!(level["probes"], probes[k], "level {key}");
        assert_eq!(level["load"]["max_concurrency"], [4, 6][k]);
        assert_eq!(level["requests"]["succeeded"], per_level[k]);
        let target = level["throughput"]["steady_state"]["target_in_flight"]["mean"]
            .as_f64()
            .unwrap();
        assert_eq!(target, [4.0, 6.0][k], "level {key}");
        // The timeline is rebuilt from both shards' records: every measured request on it.
        let t = &level["timeline"];
        let sum = |k: &str| -> u64 {
            t[k].as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .sum()
        };
        assert_eq!(sum("completed"), per_level[k], "level {key}: {t}");
        assert!(sum("sent") >= per_level[k], "level {key}: {t}");
    }
    // The levels follow each other on the merged timeline as they ran: the second starts after
    // the first's 1.5 s and the 1 s gap between them.
    let start = |key: &str| {
        merged["results"][key]["timeline"]["start_seconds"]
            .as_f64()
            .unwrap()
    };
    let gap = start("6") - start("4");
    assert!(
        (2.4..3.5).contains(&gap),
        "level 6 starts {gap} s after level 4"
    );
    // Both shards kept the timetable: their runs began within a few milliseconds of each other.
    let skew = merged["metadata"]["merged"]["start_skew_seconds"]
        .as_f64()
        .unwrap();
    assert!(skew < 0.5, "start skew {skew} s");
}

#[test]
fn stages_shard_by_arrival_and_by_user_and_merge_into_the_single_run() {
    // Rate stages: the single run and two shards send the same requests at the same scheduled
    // times, and the merge gives each stage its requests and its place after the load's start.
    // Concurrency stages: each shard runs half of every stage's users; the merge restores them.
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let api_base = start_sim_thread(SimConfig::preset("h100-llama-3.1-8b").unwrap()).api_base;
    let dir = tempfile::tempdir().unwrap();
    let (single, two) = (dir.path().join("single"), dir.path().join("two"));
    let rates = ["--stages", "rate:8@1,24@1", "--arrival", "constant"];
    run_alone(&api_base, &rates, &single);
    run_sharded(&api_base, &rates, 2, &two);
    let (one, both) = (lines(&single), lines(&two));
    assert_eq!(one.len(), 32, "8 then 24 arrivals");
    assert_eq!(
        one.keys().collect::<Vec<_>>(),
        both.keys().collect::<Vec<_>>()
    );
    for (index, a) in &one {
        let b = &both[index];
        assert_eq!(a["level"], b["level"], "request {index}");
        assert_eq!(a["prompt_tokens"], b["prompt_tokens"], "request {index}");
        let (sa, sb) = (
            a["scheduled_s"].as_f64().unwrap(),
            b["scheduled_s"].as_f64().unwrap(),
        );
        assert!((sa - sb).abs() < 1e-9, "request {index}: {sa} vs {sb}");
    }
    for i in 0..2 {
        let doc = read(&two.join(format!("shard-{i}-of-2.json")));
        assert_eq!(doc["metadata"]["shard"]["levels_done"], 2, "shard {i}");
    }
    let merged = serde_json::to_value(
        merge::merge(&merge::shard_files(std::slice::from_ref(&two)).unwrap()).unwrap(),
    )
    .unwrap();
    let local = read(&single.join("shard-0-of-1.json"));
    for (key, n) in [("stage1:8", 8), ("stage2:24", 24)] {
        let (m, l) = (&merged["results"][key], &local["results"][key]);
        assert_eq!(m["requests"]["succeeded"], n, "{key}");
        for field in [
            "mode",
            "request_rate",
            "duration_seconds",
            "max_concurrency",
        ] {
            assert_eq!(m["load"][field], l["load"][field], "{key}: {field}");
        }
        // Each stage's own second: its run length (first send to last end) as the single run's,
        // within the servers' and machines' jitter, not the load's two seconds.
        let length = |doc: &Value| {
            doc["timings"]["batch_total_seconds"]["mean"]
                .as_f64()
                .unwrap()
        };
        assert!(
            (length(m) - length(l)).abs() < 0.25,
            "{key}: merged {} s, single {} s",
            length(m),
            length(l)
        );
        let sent: u64 = m["timeline"]["sent"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(sent, n, "{key}");
    }
    let start = |key: &str| {
        merged["results"][key]["timeline"]["start_seconds"]
            .as_f64()
            .unwrap()
    };
    assert!(
        (start("stage2:24") - start("stage1:8") - 1.0).abs() < 1e-6,
        "the second stage starts 1 s after the first"
    );
    assert_eq!(merged["metadata"]["stages"], local["metadata"]["stages"]);

    let users = dir.path().join("users");
    run_sharded(&api_base, &["--stages", "concurrency:2@1,4@1"], 2, &users);
    let target = |doc: &Value, key: &str| {
        doc["results"][key]["throughput"]["steady_state"]["target_in_flight"]["mean"]
            .as_f64()
            .unwrap()
    };
    for i in 0..2 {
        let doc = read(&users.join(format!("shard-{i}-of-2.json")));
        assert_eq!(target(&doc, "stage1:2"), 1.0, "shard {i}");
        assert_eq!(target(&doc, "stage2:4"), 2.0, "shard {i}");
    }
    let merged = serde_json::to_value(
        merge::merge(&merge::shard_files(std::slice::from_ref(&users)).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(target(&merged, "stage1:2"), 2.0);
    assert_eq!(target(&merged, "stage2:4"), 4.0);
    assert_eq!(merged["results"]["stage2:4"]["load"]["max_concurrency"], 4);
}

/// Every records line of the `.jsonl` files in `dir`, by (session, turn).
fn turns(dir: &Path) -> BTreeMap<(u64, u64), Value> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let l: Value = serde_json::from_str(line).unwrap();
                let at = (l["session"].as_u64().unwrap(), l["turn"].as_u64().unwrap());
                assert!(all.insert(at, l).is_none(), "turn {at:?} twice");
            }
        }
    }
    all
}

#[test]
fn conversations_shard_by_session_and_merge_their_turns_and_sessions() {
    // An open level of sessions as one process and as two shards: the shards start the single
    // run's sessions — each with its script and its think times, drawn from its place in the one
    // sequence — and the merge reports the turns and sessions of both.
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let api_base = start_sim_thread(SimConfig::preset("h100-llama-3.1-8b").unwrap()).api_base;
    let dir = tempfile::tempdir().unwrap();
    let (single, two) = (dir.path().join("single"), dir.path().join("two"));
    let load = [
        "--session_rate",
        "4",
        "--turns",
        "3",
        "--think_time",
        "exp:0.5",
        "--duration",
        "3",
    ];
    run_alone(&api_base, &load, &single);
    run_sharded(&api_base, &load, 2, &two);
    let (one, both) = (turns(&single), turns(&two));
    // The same sessions started, with the same first prompts.
    let first = |all: &BTreeMap<(u64, u64), Value>| -> Vec<(u64, Value)> {
        all.iter()
            .filter(|((_, turn), _)| *turn == 1)
            .map(|((session, _), l)| (*session, l["prompt_tokens"].clone()))
            .collect()
    };
    assert!(first(&one).len() >= 6, "{} sessions", first(&one).len());
    assert_eq!(first(&one), first(&both));
    // A later turn waited the same drawn think time on both runs (achieved: the drawn one plus
    // a wake-up's delay, loose for a busy two-CPU machine; the draws are half a second apart on
    // average, so a session drawing another's would show).
    let mut compared = 0;
    for (at, a) in one.iter().filter(|((_, turn), _)| *turn > 1) {
        if let Some(b) = both.get(at) {
            let (ta, tb) = (
                a["think_s"].as_f64().unwrap(),
                b["think_s"].as_f64().unwrap(),
            );
            assert!((ta - tb).abs() < 0.1, "{at:?}: thought {ta} s, then {tb} s");
            compared += 1;
        }
    }
    assert!(compared >= 6, "{compared} later turns in both runs");
    let merged = serde_json::to_value(
        merge::merge(&merge::shard_files(std::slice::from_ref(&two)).unwrap()).unwrap(),
    )
    .unwrap();
    let level = &merged["results"]["4"];
    let c = &level["conversation"];
    let ok: Vec<&Value> = both.values().filter(|l| l["status"] == "ok").collect();
    assert_eq!(level["requests"]["succeeded"], ok.len() as u64);
    let mut sessions = 0;
    for i in 0..2 {
        let doc = read(&two.join(format!("shard-{i}-of-2.json")));
        sessions += doc["results"]["4"]["conversation"]["sessions"]
            .as_u64()
            .unwrap();
    }
    assert_eq!(c["sessions"], sessions);
    assert_eq!(sessions as usize, first(&both).len());
    for t in c["turns"].as_array().unwrap() {
        let k = t["turn"].as_u64().unwrap();
        let n = ok.iter().filter(|l| l["turn"] == k).count();
        assert_eq!(t["requests"]["succeeded"], n as u64, "turn {k}");
    }
    let mean = c["turns_per_session"]["mean"].as_f64().unwrap();
    assert!(
        (mean - both.len() as f64 / sessions as f64).abs() < 1e-9,
        "{mean} turns per session"
    );
    assert!(c["think_time"]["count"].as_u64().unwrap() >= compared);
    // The histories' expected prefix-cache hits, from the merged records: turn k finds turn
    // k − 1's prompt in whole 16-token blocks. The sessions also share their system message,
    // which the simulator caches too: it measures at least that.
    let prompt = |l: &Value| l["prompt_tokens"].as_u64().unwrap();
    let (mut hits, mut prompts) = (0, 0);
    for ((session, turn), l) in both.iter().filter(|(_, l)| l["status"] == "ok") {
        prompts += prompt(l);
        if *turn > 1 {
            let previous = prompt(&both[&(*session, turn - 1)]);
            hits += (previous / 16 * 16).min((prompt(l) - 1) / 16 * 16);
        }
    }
    let p = &level["prefix_cache"];
    let expected = p["expected_hit_rate"].as_f64().unwrap();
    assert!(
        (expected - hits as f64 / prompts as f64).abs() < 1e-12,
        "{p}"
    );
    assert!(p["measured_hit_rate"].as_f64().unwrap() >= expected, "{p}");
}
