//! Every numeric flag refuses negative numbers, NaN, infinity, 1e300, 2^64 and an empty value
//! (and 0 where 0 means nothing) in one line with exit code 2 — never a panic — before the
//! server starts.

use std::path::Path;

use tokenomics_testkit::cli::{assert_refused, NumericFlag};

#[test]
fn hostile_numbers_are_refused_in_one_line() {
    let flags = [
        NumericFlag::accepting("--port", &["0"]),
        NumericFlag::new("--time_scale"),
        NumericFlag::accepting("--seed", &["0"]),
        NumericFlag::new("--mean_output_tokens"),
        NumericFlag::accepting("--event_padding_bytes", &["0"]),
        NumericFlag::accepting("--ttft_ms", &["0"]),
        NumericFlag::accepting("--itl_ms", &["0"]),
        NumericFlag::new("--slots"),
        NumericFlag::new("--input_tokens"),
        NumericFlag::new("--output_tokens"),
        NumericFlag::new("--block_tokens"),
        NumericFlag::new("--embedding_dim"),
    ];
    // --ttft_ms selects the fixed schedule, whose --itl_ms is then checked too.
    let checked = assert_refused(
        Path::new(env!("CARGO_BIN_EXE_oai-sim")),
        &["--ttft_ms", "5", "--port", "0"],
        &flags,
    );
    assert_eq!(checked, 7 * flags.len() - 5);
}
