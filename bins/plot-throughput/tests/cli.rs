//! `plot-throughput` as a user runs it: the original's two positional arguments, overlays with
//! `-o`, one-line errors with exit code 2, warnings for failed levels, and exit code 3 when a
//! file has nothing to draw.

use std::path::PathBuf;
use std::process::{Command, Output};

fn plot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plot-throughput"))
        .args(args)
        .output()
        .expect("run plot-throughput")
}

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/tokenomics-stats/tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// The plotting crate's fixtures (result files with failed levels).
fn plot_fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/tokenomics-plot/tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// The text of every run of an SVG (each a `<g aria-label="…">` of glyph outlines).
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<g aria-label=\"")
        .skip(1)
        .filter_map(|t| t.split('"').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_original_usage_and_overlays() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("my_output.png");
    let o = plot(&[&fixture("original_chat.json"), out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Plot saved to"));
    assert_eq!(&std::fs::read(&out).unwrap()[..4], b"\x89PNG");

    let svg = dir.path().join("both.svg");
    let o = plot(&[
        &fixture("original_chat.json"),
        &fixture("original_chat.json"),
        "-o",
        svg.to_str().unwrap(),
        "--labels",
        "run A,run B",
        "--title",
        "A vs B",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let texts = svg_texts(&std::fs::read_to_string(&svg).unwrap());
    for expected in ["A vs B", "run A", "run B"] {
        assert!(
            texts.iter().any(|t| t == expected),
            "{expected} in {texts:?}"
        );
    }
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "not json").unwrap();
    let out = dir.path().join("o.png");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![fixture("original_chat.json")], "give an output image"),
        (
            vec![
                fixture("original_chat.json"),
                dir.path().join("o.gif").display().to_string(),
            ],
            ".png or .svg",
        ),
        (
            vec![junk.display().to_string(), out.display().to_string()],
            "is not a valid result file",
        ),
        (
            vec![
                dir.path().join("nope.json").display().to_string(),
                out.display().to_string(),
            ],
            "cannot read",
        ),
        (
            vec![
                fixture("original_chat.json"),
                fixture("original_embed.json"),
                "-o".into(),
                out.display().to_string(),
            ],
            "cannot mix",
        ),
        (
            vec![
                fixture("original_chat.json"),
                "-o".into(),
                out.display().to_string(),
                "--labels".into(),
                "a,b".into(),
            ],
            "2 labels for 1 result files",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = plot(&args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
    assert!(!out.exists());
}

#[test]
fn an_unwritable_output_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out/x.png");
    let o = plot(&[&fixture("original_chat.json"), out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!(
            "plot-throughput: error: cannot write {}: No such file or directory",
            out.display()
        )
    );
}

#[test]
fn failed_levels_are_drawn_as_gaps_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("open.png");
    let o = plot(&[&plot_fixture("chat_open_loop.json"), out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("plot-throughput: warning: ")
            && stderr.contains("chat_open_loop.json: 10 requests/s: all 20 requests failed")
            && stderr.trim_end().ends_with("; drawn as a gap"),
        "{stderr}"
    );
    assert!(out.exists());
}

#[test]
fn a_file_with_nothing_to_draw_is_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dead.png");
    let o = plot(&[&plot_fixture("chat_all_failed.json"), out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("error: nothing to draw: no request succeeded in any level of"),
        "{stderr}"
    );
    assert!(!out.exists(), "no empty figure");

    // Beside a file with data: the figure is drawn without it, and the exit code says so.
    let o = plot(&[
        &plot_fixture("chat_burst_failed.json"),
        &plot_fixture("chat_all_failed.json"),
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(
            "chat_all_failed.json: no request succeeded in any level; left out of the figure"
        ),
        "{stderr}"
    );
    assert!(out.exists());
}

/// Other tools' result files (the fixtures of `tokenomics-compare`), drawn as they are, alone
/// or beside this project's; JSON of no known shape is refused with what was expected.
#[test]
fn other_tools_results_plot_as_they_are() {
    let foreign = |name: &str| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../crates/tokenomics-compare/tests/fixtures")
            .join(name)
            .display()
            .to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "vllm/bench_serve.json",
        "guidellm/benchmarks.json",
        "aiperf/profile_export_aiperf.json",
        "inference_benchmarker/results.json",
    ] {
        let out = dir.path().join("foreign.svg");
        let o = plot(&[&foreign(name), out.to_str().unwrap()]);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let texts = svg_texts(&std::fs::read_to_string(&out).unwrap());
        assert!(
            texts.iter().any(|t| t.contains("TTFT")),
            "{name}: {texts:?}"
        );
    }
    let out = dir.path().join("overlay.png");
    let o = plot(&[
        &foreign("vllm/bench_serve_append.json"),
        &foreign("guidellm/benchmarks.json"),
        &fixture("original_chat.json"),
        "-o",
        out.to_str().unwrap(),
        "--labels",
        "vLLM,GuideLLM,original",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(&std::fs::read(&out).unwrap()[..4], b"\x89PNG");

    let unknown = dir.path().join("unknown.json");
    std::fs::write(&unknown, r#"{"score": 1}"#).unwrap();
    let o = plot(&[unknown.to_str().unwrap(), out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("is not a result file this tool reads") && stderr.contains("GuideLLM"),
        "{stderr}"
    );
}
