//! Every numeric flag refuses 0 (where 0 means nothing), negative numbers, NaN, infinity, 1e300,
//! 2^64 and an empty value in one line with exit code 2 — never a panic (exit 101) — before any
//! request is sent.

use std::path::Path;

use tokenomics_testkit::cli::{assert_refused, NumericFlag};

#[test]
fn hostile_numbers_are_refused_in_one_line() {
    let flags = [
        NumericFlag::new("--batch_sizes"),
        NumericFlag::new("--max_concurrency"),
        NumericFlag::new("--request_rate"),
        NumericFlag::new("--burstiness"),
        NumericFlag::new("--num_requests"),
        NumericFlag::new("--duration"),
        NumericFlag::accepting("--warmup_seconds", &["0"]),
        NumericFlag::new("--num_runs"),
        NumericFlag::accepting("--warmup_runs", &["0"]),
        NumericFlag::new("--max_tokens"),
        NumericFlag::accepting("--temperature", &["0"]),
        NumericFlag::accepting("--seed", &["0"]),
        NumericFlag::new("--n_cores"),
        NumericFlag::new("--input_tokens"),
        NumericFlag::new("--timeout"),
        NumericFlag::new("--idle_timeout"),
        NumericFlag::new("--sim_time_scale"),
        NumericFlag::new("--gpu_hour_cost"),
        NumericFlag::new("--gpus"),
        NumericFlag::accepting("--input_cost_share", &["0"]),
    ];
    let checked = assert_refused(
        Path::new(env!("CARGO_BIN_EXE_oai-bench")),
        &[
            "--model",
            "m",
            "--dataset_key",
            "synthetic",
            "--api_base",
            "http://127.0.0.1:9/v1",
        ],
        &flags,
    );
    assert_eq!(checked, 7 * flags.len() - 5);
}
