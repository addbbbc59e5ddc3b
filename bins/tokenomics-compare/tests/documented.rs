//! Every flag `--help` lists is documented in the book, `docs/src/compare.md`, in its section
//! "Comparing runs".

use std::path::Path;

#[test]
fn every_flag_is_in_the_book() {
    tokenomics_testkit::cli::assert_flags_documented(
        Path::new(env!("CARGO_BIN_EXE_tokenomics-compare")),
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/src/compare.md"),
        "Comparing runs",
    );
}
