//! Every flag `--help` lists is documented in the book, `docs/src/benchmark.md`, in its section
//! "Flags of `oai-bench`".

use std::path::Path;

#[test]
fn every_flag_is_in_the_book() {
    tokenomics_testkit::cli::assert_flags_documented(
        Path::new(env!("CARGO_BIN_EXE_oai-bench")),
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/src/benchmark.md"),
        "Flags of `oai-bench`",
    );
}
