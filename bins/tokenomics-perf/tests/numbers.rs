//! Every numeric flag refuses 0, negative numbers, NaN, infinity, 1e300, 2^64 and an empty value
//! in one line with exit code 2 — never a panic — before anything is started.

use std::path::Path;

use tokenomics_testkit::cli::{assert_refused, NumericFlag};

#[test]
fn hostile_numbers_are_refused_in_one_line() {
    let flags = [NumericFlag::new("--n_cores"), NumericFlag::new("--port")];
    let checked = assert_refused(
        Path::new(env!("CARGO_BIN_EXE_tokenomics-perf")),
        &["--quick"],
        &flags,
    );
    assert_eq!(checked, 7 * flags.len());
}
