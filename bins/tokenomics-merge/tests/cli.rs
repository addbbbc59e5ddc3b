//! `tokenomics-merge` on the shards of real runs (tests/fixtures, see its README): the merged
//! document counts every shard's requests once and its percentiles are those of the union of the
//! shards' records; a set of files that is not one whole run is refused in one line, exit 2.
//!
//! The fixtures were written by (oai-sim on port 18432, `S` a Unix time two seconds ahead):
//! `oai-sim --port 18432 --ttft_ms 5 --itl_ms 2 --model test-model`, then for I in 0..4
//! `oai-bench --model test-model --api_base http://127.0.0.1:18432/v1 --dataset_key synthetic
//! --request_rate 12 --duration 1 --max_tokens 4 --stream --progress never --warmup_runs 0
//! --seed 7 --results_dir run --shard I/4 --start_at S` (and `--seed 8 … other --shard I/2`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn merge(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tokenomics-merge"))
        .args(args)
        .output()
        .expect("run tokenomics-merge")
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The one error line of a refused merge (exit 2), and nothing written.
fn refused(inputs: &[&Path], out: &Path) -> String {
    let mut args = inputs.to_vec();
    args.extend([Path::new("-o"), out]);
    let o = merge(&args);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("tokenomics-merge: error: "), "{stderr}");
    assert!(!out.exists(), "a refused merge writes nothing");
    stderr
}

/// Linear-interpolation percentile (the one every document uses), `q` in percent.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = q / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

#[test]
fn four_shards_merge_into_the_union_of_their_records() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("merged.json");
    let run = fixtures().join("run");
    let o = merge(&[&run, Path::new("-o"), &out]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("Merged 4 shards of run "), "{stdout}");
    assert!(stdout.contains("Summary"), "{stdout}");

    let doc = read(&out);
    let mut ttft = Vec::new();
    let mut e2el = Vec::new();
    let mut indexes = Vec::new();
    let mut per_shard = Vec::new();
    for i in 0..4 {
        let shard = read(&run.join(format!("shard-{i}-of-4.json")));
        per_shard.push(
            shard["results"]["12"]["requests"]["succeeded"]
                .as_u64()
                .unwrap(),
        );
        let text = std::fs::read_to_string(run.join(format!("shard-{i}-of-4.jsonl"))).unwrap();
        for line in text.lines() {
            let l: Value = serde_json::from_str(line).unwrap();
            assert_eq!(l["status"], "ok");
            ttft.push(l["ttft_s"].as_f64().unwrap());
            e2el.push(l["e2el_s"].as_f64().unwrap());
            let index = l["index"].as_u64().unwrap();
            assert_eq!(index % 4, i, "shard {i} sends requests i, i+4, …");
            indexes.push(index);
        }
    }
    indexes.sort_unstable();
    assert_eq!(
        indexes,
        (0..indexes.len() as u64).collect::<Vec<_>>(),
        "the shards' requests are the plan's, each once"
    );
    let level = &doc["results"]["12"];
    let total: u64 = per_shard.iter().sum();
    assert_eq!(level["requests"]["succeeded"], total);
    assert_eq!(level["requests"]["failed"], 0);
    assert_eq!(level["latency"]["ttft"]["count"], total);
    ttft.sort_by(f64::total_cmp);
    e2el.sort_by(f64::total_cmp);
    for (name, values) in [("ttft", &ttft), ("e2el", &e2el)] {
        for q in ["50", "90", "95", "99"] {
            let merged = level["latency"][name][format!("p{q}")].as_f64().unwrap();
            let union = percentile(values, q.parse().unwrap());
            // The records keep each time to the nanosecond; a latency is a difference of two.
            assert!(
                (merged - union).abs() < 2e-9,
                "{name} p{q}: merged {merged}, union of the records {union}"
            );
        }
        let max = level["latency"][name]["max"].as_f64().unwrap();
        assert!((max - values[values.len() - 1]).abs() < 2e-9);
    }
    let meta = &doc["metadata"];
    assert!(
        meta.get("shard").is_none(),
        "the merged document is no shard"
    );
    assert_eq!(meta["merged"]["count"], 4);
    let shards = meta["merged"]["shards"].as_array().unwrap();
    let counted: Vec<u64> = shards
        .iter()
        .map(|s| s["requests"].as_u64().unwrap())
        .collect();
    assert_eq!(counted, per_shard);
    // The merged document is a result document like any other: it plots and compares.
    assert_eq!(meta["mode"], "open_loop");
}

#[test]
fn shard_files_given_one_by_one_merge_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let run = fixtures().join("run");
    assert!(merge(&[&run, Path::new("-o"), &a]).status.success());
    let files: Vec<PathBuf> = (0..4)
        .rev()
        .map(|i| run.join(format!("shard-{i}-of-4.json")))
        .collect();
    let mut args: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    args.extend([Path::new("-o"), &b]);
    assert!(merge(&args).status.success());
    assert_eq!(read(&a)["results"], read(&b)["results"]);
}

#[test]
fn a_missing_shard_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = fixtures().join("run");
    let files: Vec<PathBuf> = [0, 1, 3]
        .iter()
        .map(|i| run.join(format!("shard-{i}-of-4.json")))
        .collect();
    let mut inputs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let out = dir.path().join("m.json");
    let e = refused(&inputs, &out);
    assert!(e.contains("shard 2 of 4 missing"), "{e}");
    inputs.truncate(1);
    let e = refused(&inputs, &out);
    assert!(e.contains("shards 1, 2, 3 of 4 missing"), "{e}");
}

#[test]
fn a_shard_given_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = fixtures().join("run");
    let copy = dir.path().join("shard-1-of-4.json");
    std::fs::copy(run.join("shard-1-of-4.json"), &copy).unwrap();
    std::fs::copy(
        run.join("shard-1-of-4.jsonl"),
        dir.path().join("shard-1-of-4.jsonl"),
    )
    .unwrap();
    let e = refused(&[&run, &copy], &dir.path().join("m.json"));
    assert!(e.contains("shard 1 of 4 is given twice"), "{e}");
}

#[test]
fn shards_of_another_run_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = fixtures().join("run");
    let other = fixtures().join("other/shard-1-of-2.json");
    let files: Vec<PathBuf> = (0..4)
        .map(|i| run.join(format!("shard-{i}-of-4.json")))
        .collect();
    let mut inputs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    inputs.push(&other);
    let e = refused(&inputs, &dir.path().join("m.json"));
    assert!(e.contains("is from another run than"), "{e}");
}

#[test]
fn incomplete_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = fixtures().join("run");
    for i in 0..4 {
        for ext in ["json", "jsonl"] {
            let name = format!("shard-{i}-of-4.{ext}");
            std::fs::copy(run.join(&name), dir.path().join(&name)).unwrap();
        }
    }
    // A shard's records lose their last line (a file system that lost the end of a write).
    let records = dir.path().join("shard-2-of-4.jsonl");
    let text = std::fs::read_to_string(&records).unwrap();
    let kept: Vec<&str> = text.lines().collect();
    std::fs::write(&records, kept[..kept.len() - 1].join("\n") + "\n").unwrap();
    let e = refused(&[dir.path()], &dir.path().join("m.json"));
    assert!(e.contains("the records are incomplete"), "{e}");
    // And without records at all.
    std::fs::remove_file(&records).unwrap();
    let e = refused(&[dir.path()], &dir.path().join("m.json"));
    assert!(e.contains("are missing"), "{e}");
}

/// A copy of the `run` fixture in a temporary directory, with `edit` applied to the text of
/// one of its files.
fn edited_run(name: &str, edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let run = fixtures().join("run");
    for i in 0..4 {
        for ext in ["json", "jsonl"] {
            let file = format!("shard-{i}-of-4.{ext}");
            let text = std::fs::read_to_string(run.join(&file)).unwrap();
            let text = if file == name { edit(text) } else { text };
            std::fs::write(dir.path().join(&file), text).unwrap();
        }
    }
    dir
}

/// `text` with the first `"key": value` (as the writer spaces it) set to `value`.
fn set_json(text: String, key: &str, value: &str) -> String {
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    let shard = doc["metadata"]["shard"].as_object_mut().unwrap();
    shard.insert(key.into(), serde_json::from_str(value).unwrap());
    serde_json::to_string_pretty(&doc).unwrap()
}

/// Every line of a records file with `edit` applied to its object.
fn edit_lines(text: String, edit: impl Fn(&mut Value)) -> String {
    text.lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            edit(&mut v);
            v.to_string() + "\n"
        })
        .collect()
}

#[test]
fn a_shard_that_stopped_early_is_refused() {
    let dir = edited_run("shard-1-of-4.json", |t| set_json(t, "levels_done", "0"));
    let e = refused(&[dir.path()], &dir.path().join("m.json"));
    assert!(
        e.contains("shard 1 of 4 stopped after 0 of its 1 levels"),
        "{e}"
    );
}

#[test]
fn shards_that_did_not_start_together_are_refused() {
    // Shard 2's clock an hour ahead (or shard 2 retried an hour later).
    let dir = edited_run("shard-2-of-4.jsonl", |t| {
        edit_lines(t, |v| {
            let unix = v["send_unix"].as_f64().unwrap();
            v["send_unix"] = (unix + 3600.0).into();
        })
    });
    let e = refused(&[dir.path()], &dir.path().join("m.json"));
    assert!(e.contains("the shards started 3600.0 s apart"), "{e}");
}

/// An edit of a file's text.
type Edit = fn(String) -> String;

#[test]
fn impossible_records_and_counts_are_refused() {
    let cases: [(&str, Edit, &str); 5] = [
        (
            "shard-0-of-4.jsonl",
            |t| {
                edit_lines(t, |v| {
                    v["first_token_s"] = (-1.0).into();
                })
            },
            "first_token_s is not a time within a run",
        ),
        (
            "shard-0-of-4.jsonl",
            |t| {
                edit_lines(t, |v| {
                    let send = v["send_s"].as_f64().unwrap();
                    v["end_s"] = (send / 2.0).into();
                })
            },
            "end_s is before send_s",
        ),
        (
            "shard-3-of-4.jsonl",
            |t| {
                edit_lines(t, |v| {
                    v["completion_tokens"] = 1_000_000_000_000_000u64.into();
                })
            },
            "completion_tokens is more than",
        ),
        (
            "shard-3-of-4.jsonl",
            |t| {
                edit_lines(t, |v| {
                    v["send_unix"] = 1e300.into();
                })
            },
            "send_unix is not a Unix time",
        ),
        (
            "shard-1-of-4.json",
            |t| set_json(t, "count", "4000000000"),
            "4000000000 shards: give from 1 to 10000",
        ),
    ];
    for (file, edit, why) in cases {
        let dir = edited_run(file, edit);
        let e = refused(&[dir.path()], &dir.path().join("m.json"));
        assert!(e.contains(why), "{file}: {e}");
    }
}

#[test]
fn files_that_are_no_shards_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.json");
    // A result document without a shard block: the merged one.
    let merged = dir.path().join("merged.json");
    let run = fixtures().join("run");
    assert!(merge(&[&run, Path::new("-o"), &merged]).status.success());
    let e = refused(&[&merged], &out);
    assert!(e.contains("is not a shard's result"), "{e}");
    let e = refused(&[&dir.path().join("nothing.json")], &out);
    assert!(e.contains("nothing.json"), "{e}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = refused(&[&empty], &out);
    assert!(e.contains("holds no shard results"), "{e}");
    let garbage = dir.path().join("shard-0-of-1.json");
    std::fs::write(&garbage, b"{\"metadata\": 7").unwrap();
    let e = refused(&[&garbage], &out);
    assert!(e.contains("shard-0-of-1.json"), "{e}");
}

#[test]
fn an_output_that_cannot_be_written_is_refused_before_merging() {
    let run = fixtures().join("run");
    let out = Path::new("/nonexistent-dir/merged.json");
    let o = merge(&[&run, Path::new("-o"), out]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn each_shards_client_load_is_kept_and_its_warnings_repeated() {
    let block = r#"{"seconds": 10.2, "cpu_cores": 0.97, "worker_threads": 1, "stolen_share": 0.01,
        "warnings": ["the client used 0.97 CPU cores over this level with 1 worker thread(s)"]}"#;
    let dir = edited_run("shard-2-of-4.json", |t| {
        let mut doc: Value = serde_json::from_str(&t).unwrap();
        doc["results"]["12"]["client_load"] = serde_json::from_str(block).unwrap();
        serde_json::to_string_pretty(&doc).unwrap()
    });
    let out = dir.path().join("m.json");
    let o = merge(&[dir.path(), Path::new("-o"), &out]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let doc = read(&out);
    let shards = doc["metadata"]["merged"]["shards"].as_array().unwrap();
    let host = shards[2]["host"].as_str().unwrap();
    assert!(
        stderr.contains(&format!(
            "warning: shard 2 ({host}), level 12: the client used 0.97 CPU cores"
        )),
        "{stderr}"
    );
    assert_eq!(
        shards[2]["client_load"]["12"],
        serde_json::from_str::<Value>(block).unwrap()
    );
    for i in [0, 1, 3] {
        assert!(shards[i].get("client_load").is_none(), "shard {i}");
    }
    // A level merged from several machines has no load of its own.
    assert!(doc["results"]["12"].get("client_load").is_none());
}

#[test]
fn a_timeline_is_rebuilt_from_the_records_of_every_shard() {
    // Shard 0 kept a timeline of 0.25 s buckets; the others none (the fixtures ran without).
    let dir = edited_run("shard-0-of-4.json", |t| {
        let mut doc: Value = serde_json::from_str(&t).unwrap();
        doc["results"]["12"]["timeline"] = serde_json::json!({
            "interval_seconds": 0.25, "start_seconds": 0.0, "measured_from_seconds": 0.0,
            "sent": [4], "completed": [4], "errors": [0], "in_flight": [0],
            "output_tokens": [16], "ttft_p50_seconds": [0.005], "ttft_p99_seconds": [0.006]
        });
        serde_json::to_string_pretty(&doc).unwrap()
    });
    let out = dir.path().join("m.json");
    let o = merge(&[dir.path(), Path::new("-o"), &out]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc = read(&out);
    let t = &doc["results"]["12"]["timeline"];
    assert_eq!(t["interval_seconds"], 0.25, "{t}");
    assert_eq!(t["start_seconds"], 0.0);
    assert_eq!(t["measured_from_seconds"], 0.0);

    // Every line of every shard, placed on one clock: the earliest shard's start is 0.
    let mut lines = Vec::new();
    let mut origin = f64::INFINITY;
    for i in 0..4 {
        let text =
            std::fs::read_to_string(dir.path().join(format!("shard-{i}-of-4.jsonl"))).unwrap();
        let shard: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let first = &shard[0];
        origin =
            origin.min(first["send_unix"].as_f64().unwrap() - first["send_s"].as_f64().unwrap());
        lines.extend(shard);
    }
    let bucket = |l: &Value, key: &str| {
        let unix = l["send_unix"].as_f64().unwrap() - l["send_s"].as_f64().unwrap()
            + l[key].as_f64().unwrap();
        ((unix - origin) / 0.25).floor() as usize
    };
    let n = t["sent"].as_array().unwrap().len();
    let mut sent = vec![0u64; n];
    let mut completed = vec![0u64; n];
    let mut tokens = 0;
    for l in &lines {
        sent[bucket(l, "send_s")] += 1;
        completed[bucket(l, "end_s")] += 1;
        tokens += l["completion_tokens"].as_u64().unwrap();
    }
    let as_vec = |k: &str| -> Vec<u64> {
        t[k].as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };
    assert_eq!(as_vec("sent"), sent, "{t}");
    assert_eq!(as_vec("completed"), completed, "{t}");
    assert_eq!(as_vec("output_tokens").iter().sum::<u64>(), tokens);
    assert_eq!(as_vec("errors").iter().sum::<u64>(), 0);
    assert_eq!(*as_vec("in_flight").last().unwrap(), 0, "all ended");
    assert!(
        n >= 4,
        "13 requests over about a second in 0.25 s buckets: {n}"
    );
}
