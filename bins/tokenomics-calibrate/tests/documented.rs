//! Every flag `--help` lists is documented in the book, `docs/src/simulator.md`, in its section
//! "Calibration".

use std::path::Path;

#[test]
fn every_flag_is_in_the_book() {
    tokenomics_testkit::cli::assert_flags_documented(
        Path::new(env!("CARGO_BIN_EXE_tokenomics-calibrate")),
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/src/simulator.md"),
        "Calibration",
    );
}
