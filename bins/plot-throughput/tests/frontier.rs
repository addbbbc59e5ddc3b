//! `plot-throughput --frontier` as a user runs it: the same positional and `-o` usage as the
//! ordinary figure, PNG or SVG, and one line with exit code 2 for a file it cannot draw.

use std::path::PathBuf;
use std::process::{Command, Output};

fn plot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plot-throughput"))
        .args(args)
        .output()
        .expect("run plot-throughput")
}

/// The plotting crate's fixtures, then the result types' (the original scripts' files).
fn fixture(name: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../crates");
    let plot = root.join("tokenomics-plot/tests/fixtures").join(name);
    let path = if plot.exists() {
        plot
    } else {
        root.join("tokenomics-stats/tests/fixtures").join(name)
    };
    path.display().to_string()
}

/// The text of every run of an SVG (each a `<g aria-label="…">` of glyph outlines).
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<g aria-label=\"")
        .skip(1)
        .filter_map(|t| t.split('"').next())
        .map(|t| t.replace("&amp;", "&"))
        .collect()
}

#[test]
fn the_frontier_of_one_file_and_of_several() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("frontier.png");
    let o = plot(&[
        "--frontier",
        &fixture("frontier_h100.json"),
        png.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("Plot saved to") && stdout.contains("1 panel)"),
        "{stdout}"
    );
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");

    let svg = dir.path().join("both.svg");
    let o = plot(&[
        &fixture("frontier_h100.json"),
        &fixture("frontier_a100.json"),
        "-o",
        svg.to_str().unwrap(),
        "--frontier",
        "--labels",
        "H100,A100",
        "--title",
        "H100 against A100",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let texts = svg_texts(&std::fs::read_to_string(&svg).unwrap());
    for expected in [
        "H100 against A100",
        "H100",
        "A100",
        "output tokens/s per GPU",
        "interactivity: output tokens/s per user (1 / mean TPOT)",
    ] {
        assert!(
            texts.iter().any(|t| t == expected),
            "{expected} in {texts:?}"
        );
    }
    // The two files are priced differently: the frontier's notes carry each level's cost.
    assert!(texts.iter().any(|t| t.starts_with("c=64 · $")), "{texts:?}");
}

#[test]
fn files_it_cannot_draw_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("frontier.png");
    let embed = fixture("original_embed.json");
    let o = plot(&["--frontier", &embed, out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!(
            "plot-throughput: error: {embed} is an embedding result file: the \
             throughput–interactivity frontier draws chat result files only"
        )
    );
    assert!(!out.exists(), "nothing written");

    // Levels that succeeded but carry neither a TPOT nor request tokens/s.
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("frontier_h100.json")).unwrap()).unwrap();
    for level in doc["results"].as_object_mut().unwrap().values_mut() {
        level.as_object_mut().unwrap().remove("latency");
        level["throughput"]["request_tokens_per_second"]["mean"] = serde_json::Value::Null;
    }
    let bare = dir.path().join("bare.json");
    std::fs::write(&bare, serde_json::to_vec(&doc).unwrap()).unwrap();
    let o = plot(&["--frontier", bare.to_str().unwrap(), out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("bare.json has no level to place on the frontier"),
        "{stderr}"
    );
    assert!(!out.exists());
}
