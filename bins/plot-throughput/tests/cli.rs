//! `plot-throughput` as a user runs it: the original's two positional arguments, overlays with
//! `-o`, and one-line errors with exit code 2.

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

/// The trimmed contents of every `<text>` element of an SVG.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
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
