//! The embedding result file keeps its structure across the typed-schema rework (#14): the same
//! keys, in the same order, with the same kinds of values as `fixtures/before/embed.json`, which
//! the binary of commit 52ca86b wrote for the same flags and seed against the `fixed` preset.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tokenomics_testkit::schema::{first_difference, strip};

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn the_embedding_document_is_the_one_written_before() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("embed.json");
    let o = Command::new(env!("CARGO_BIN_EXE_embed-bench"))
        .args([
            "--simulate",
            "fixed",
            "--sim_time_scale",
            "10",
            "--warmup_runs",
            "1",
            "--batch_sizes",
            "1,4",
            "--sequence_lengths",
            "short,20",
            "--num_runs",
            "2",
            "--results_file",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let before =
        read_json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/before/embed.json"));
    // Fields added on purpose since the fixture was written (#25): `metadata.preflight`, and
    // `requests.retries` written even when it is 0.
    let mut now = read_json(&out);
    assert!(now["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("preflight")
        .is_some());
    assert!(strip(&mut now, &["ci"]) > 0, "intervals are written (#17)");
    // What each level cost the client's machine (#20): the simulator shares the process.
    for level in now["results"].as_object().unwrap().values() {
        let load = &level["client_load"];
        assert!(load["seconds"].as_f64().unwrap() > 0.0, "{load}");
        assert!(load["worker_threads"].as_u64().unwrap() >= 1, "{load}");
        assert_eq!(load["simulator_in_process"], true, "{load}");
    }
    assert_eq!(strip(&mut now, &["client_load"]), 4, "one block per level");
    for level in now["results"].as_object_mut().unwrap().values_mut() {
        let requests = level["requests"].as_object_mut().unwrap();
        assert_eq!(requests.remove("retries"), Some(serde_json::json!(0)));
    }
    if let Some(d) = first_difference(&before, &now) {
        panic!("embed.json differs from the file written before the rework at {d}");
    }
}
