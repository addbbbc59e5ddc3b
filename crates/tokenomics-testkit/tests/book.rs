//! The README and the book (`docs/`, mdBook) have no dead link: every relative link names a file
//! that exists and, with an `#anchor`, one of its headings; `SUMMARY.md` lists every chapter; no
//! chapter links Markdown outside the book; the README documents no flag. The checker itself is
//! held to each of those on a made-up repository, so it is known to fail when it should.

use std::path::Path;

use tokenomics_testkit::book::{anchors, link_targets, problems, slug};

#[test]
fn the_readme_and_the_book_have_no_dead_link() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    assert!(root.join("docs/src/SUMMARY.md").exists());
    let found = problems(&root);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// A made-up repository: a README and a book of two chapters, every link good.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let files = [
        (
            "README.md",
            "# R\n\n<!-- ANCHOR: start -->\n## Quick start\n\nRun it.\n<!-- ANCHOR_END: start -->\n\n\
             See [metrics](docs/src/metrics.md#how-sure-a-figure-is), [flags](docs/src/run.md#flags-of-oai-bench)\n\
             and [the start](#quick-start); `[code](nowhere.md)` is not a link.\n\n\
             ```text\n[nor](this.md)\n```\n",
        ),
        (
            "docs/src/SUMMARY.md",
            "# Summary\n\n- [Run](run.md)\n- [Metrics](metrics.md)\n",
        ),
        (
            "docs/src/run.md",
            "# Run\n\n{{#include ../../README.md:start}}\n\n## Flags of `oai-bench`\n\n\
             | flag | meaning |\n|---|---|\n| `--model` | the model |\n\n\
             See [below](#quick-start), [a figure](../../assets/a.png) and [deploy](../../deploy/).\n",
        ),
        (
            "docs/src/metrics.md",
            "# Metrics\n\n## How sure a figure is\n\n[Run](run.md#run), [flags](run.md#flags-of-oai-bench).\n",
        ),
        ("assets/a.png", "png"),
        ("deploy/README.md", "# Deploy\n\nBack to [the book](../docs/src/run.md).\n"),
    ];
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

fn edit(dir: &tempfile::TempDir, path: &str, from: &str, to: &str) {
    let path = dir.path().join(path);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).expect("write");
}

/// The problems found after `change`, which must be as many as `expected` and each name its
/// counterpart.
fn problems_after(change: impl FnOnce(&tempfile::TempDir), expected: &[&str]) {
    let dir = repo();
    change(&dir);
    let found = problems(dir.path());
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for (f, e) in found.iter().zip(expected) {
        assert!(f.contains(e), "{found:#?}");
    }
}

fn only_problem(change: impl FnOnce(&tempfile::TempDir), expected: &str) {
    problems_after(change, &[expected]);
}

#[test]
fn a_good_repository_passes() {
    let dir = repo();
    assert_eq!(problems(dir.path()), Vec::<String>::new());
}

#[test]
fn a_missing_file_is_found() {
    only_problem(
        |d| edit(d, "docs/src/metrics.md", "(run.md#run)", "(runs.md#run)"),
        "docs/src/metrics.md:5: link `runs.md#run`: docs/src/runs.md does not exist",
    );
}

#[test]
fn a_missing_anchor_is_found_in_another_file_and_in_the_same_one() {
    only_problem(
        |d| edit(d, "README.md", "#how-sure-a-figure-is", "#how-sure"),
        "no heading of docs/src/metrics.md has the anchor `how-sure`",
    );
    only_problem(
        |d| edit(d, "README.md", "(#quick-start)", "(#quick-stop)"),
        "README.md:10: link `#quick-stop`: no heading here has the anchor `quick-stop`",
    );
}

#[test]
fn an_included_region_counts_where_it_is_included() {
    // The chapter's `#quick-start` comes from the README's region: without it, it is dead.
    problems_after(
        |d| edit(d, "README.md", "ANCHOR_END: start", "ANCHOR_END: stop"),
        &[
            "docs/src/run.md:3: ../../README.md has no `ANCHOR: start` … `ANCHOR_END: start` region",
            "docs/src/run.md:11: link `#quick-start`: no heading here has the anchor `quick-start`",
        ],
    );
    // A link that is good in the README but not from the chapter that includes it.
    only_problem(
        |d| edit(d, "README.md", "Run it.", "Run [it](docs/src/run.md)."),
        "docs/src/run.md:3: link `docs/src/run.md`: docs/src/docs/src/run.md does not exist",
    );
}

#[test]
fn a_chapter_missing_from_the_summary_and_an_entry_missing_from_the_book_are_found() {
    only_problem(
        |d| edit(d, "docs/src/SUMMARY.md", "- [Metrics](metrics.md)\n", ""),
        "docs/src/metrics.md: a chapter that docs/src/SUMMARY.md does not list",
    );
    only_problem(
        |d| {
            edit(
                d,
                "docs/src/SUMMARY.md",
                "(metrics.md)",
                "(metrics.md)\n- [Gone](gone.md)",
            )
        },
        "docs/src/SUMMARY.md:5: link `gone.md`: docs/src/gone.md does not exist",
    );
}

#[test]
fn markdown_outside_the_book_is_refused_from_a_chapter() {
    only_problem(
        |d| {
            edit(
                d,
                "docs/src/run.md",
                "(../../deploy/)",
                "(../../deploy/README.md)",
            )
        },
        "a Markdown file outside docs/src",
    );
}

#[test]
fn a_link_out_of_the_repository_is_refused() {
    only_problem(
        |d| {
            edit(
                d,
                "deploy/README.md",
                "(../docs/src/run.md)",
                "(../../etc/passwd)",
            )
        },
        "deploy/README.md:3: link `../../etc/passwd`: leads out of the repository",
    );
}

#[test]
fn a_flag_table_in_the_readme_is_refused() {
    only_problem(
        |d| edit(d, "README.md", "Run it.", "| `--model` | the model |"),
        "README.md:6: a flag table row; flags are documented once, in the book",
    );
}

#[test]
fn anchors_are_made_as_github_and_mdbook_make_them() {
    assert_eq!(slug("Flags of `oai-bench`"), "flags-of-oai-bench");
    assert_eq!(
        slug("The per-request file (`--requests_file`)"),
        "the-per-request-file---requests_file"
    );
    assert_eq!(
        slug("Walk-through: an H100 against an A100, at an SLO, per million tokens"),
        "walk-through-an-h100-against-an-a100-at-an-slo-per-million-tokens"
    );
    assert_eq!(slug("See [Metrics](metrics.md)"), "see-metrics");
    let a = anchors("# A\n\n```\n# Not a heading\n```\n## A\n#nope\n<a id=\"here\"></a>\n");
    let mut a: Vec<_> = a.into_iter().collect();
    a.sort();
    assert_eq!(a, ["a", "a-1", "here"]);
    assert_eq!(
        link_targets("![x](a.png) and [y](b.md#c \"title\") [z](<d e.md>)"),
        ["a.png", "b.md#c", "d"]
    );
}
