//! Every flag `--help` lists is documented in the README's section "Comparing runs".

use std::path::Path;

#[test]
fn every_flag_is_in_the_readme() {
    tokenomics_testkit::cli::assert_flags_documented(
        Path::new(env!("CARGO_BIN_EXE_tokenomics-compare")),
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"),
        "Comparing runs",
    );
}
