//! Every flag `--help` lists is documented in the book, `docs/src/plots.md`, in its section
//! "Plots (`plot-throughput`)".

use std::path::Path;

#[test]
fn every_flag_is_in_the_book() {
    tokenomics_testkit::cli::assert_flags_documented(
        Path::new(env!("CARGO_BIN_EXE_plot-throughput")),
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/src/plots.md"),
        "Plots (`plot-throughput`)",
    );
}
