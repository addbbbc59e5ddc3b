//! `plot-throughput --timeline` as a user runs it: a chat file whose levels carry a timeline
//! drawn to PNG or SVG, several overlaid, and one line with exit code 2 for a file without one.

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
        .join("../../crates/tokenomics-plot/tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn a_run_over_time_in_png_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("timeline.png");
    let o = plot(&[
        "--timeline",
        &fixture("chat_timeline.json"),
        png.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("(2000×3332 px, 5 panels)"), "{stdout}");
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");

    let svg = dir.path().join("both.svg");
    let o = plot(&[
        &fixture("chat_timeline.json"),
        &fixture("chat_timeline.json"),
        "-o",
        svg.to_str().unwrap(),
        "--timeline",
        "--labels",
        "first,second",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let svg = std::fs::read_to_string(&svg).unwrap();
    for title in [
        "Output tokens per second",
        "KV cache in use (server)",
        "second",
    ] {
        assert!(svg.contains(&format!("aria-label=\"{title}\"")), "{title}");
    }
}

#[test]
fn a_file_without_a_timeline_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("timeline.png");
    let old = fixture("chat_open_loop.json");
    let o = plot(&["--timeline", &old, out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!(
            "plot-throughput: error: {old}: no level has a timeline (written by oai-bench \
             since --timeline_interval; rerun the benchmark)"
        )
    );
    assert!(!out.exists(), "nothing written");

    // --frontier and --timeline are two figures: one at a time.
    let o = plot(&[
        "--timeline",
        "--frontier",
        &fixture("chat_timeline.json"),
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!out.exists());
}
