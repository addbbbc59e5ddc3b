//! `tokenomics-calibrate --generate KIND` (the README's command) writes its completions and man
//! page, each naming `tokenomics-calibrate`; the man page and the bash completion hold every flag
//! `--help` lists.

#[test]
fn completions_and_man_page_name_tokenomics_calibrate_and_its_flags() {
    tokenomics_testkit::cli::assert_generates_docs(
        std::path::Path::new(env!("CARGO_BIN_EXE_tokenomics-calibrate")),
        "tokenomics-calibrate",
    );
}
