//! Every flag `--help` lists is documented in the book, `docs/src/embed-bench.md`, in its section
//! "Embedding benchmark (`embed-bench`)".

use std::path::Path;

#[test]
fn every_flag_is_in_the_book() {
    tokenomics_testkit::cli::assert_flags_documented(
        Path::new(env!("CARGO_BIN_EXE_embed-bench")),
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/src/embed-bench.md"),
        "Embedding benchmark (`embed-bench`)",
    );
}
