//! `oai-sim --generate KIND` (the README's command) writes its completions and man page, each naming
//! `oai-sim`; the man page and the bash completion hold every flag `--help` lists.

#[test]
fn completions_and_man_page_name_oai_sim_and_its_flags() {
    tokenomics_testkit::cli::assert_generates_docs(
        std::path::Path::new(env!("CARGO_BIN_EXE_oai-sim")),
        "oai-sim",
    );
}
