//! Every numeric flag refuses 0 (where 0 means nothing), negative numbers, NaN, infinity, 1e300,
//! 2^64 and an empty value in one line with exit code 2 — never a panic (exit 101) — before any
//! request is sent.

use std::path::Path;

use tokenomics_testkit::cli::{assert_refused, NumericFlag};

#[test]
fn hostile_numbers_are_refused_in_one_line() {
    let flags = [
        NumericFlag::new("--batch_sizes"),
        NumericFlag::new("--sequence_lengths"),
        NumericFlag::new("--num_runs"),
        NumericFlag::accepting("--warmup_runs", &["0"]),
        NumericFlag::accepting("--seed", &["0"]),
        NumericFlag::new("--inputs_per_request"),
        NumericFlag::accepting("--retries", &["0"]),
        NumericFlag::new("--timeout"),
        NumericFlag::new("--idle_timeout"),
        NumericFlag::new("--sim_time_scale"),
    ];
    let checked = assert_refused(
        Path::new(env!("CARGO_BIN_EXE_embed-bench")),
        &["--model", "m", "--api_base", "http://127.0.0.1:9/v1"],
        &flags,
    );
    assert_eq!(checked, 7 * flags.len() - 3);
}
