//! Every kind of figure, rendered from fixture files to PNG and SVG: valid images of the expected
//! size, and SVGs that carry the title, the axis labels and one annotation per point.

use std::path::{Path, PathBuf};

use tokenomics_plot::{plot_files, Figure};

fn fixture(name: &str) -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let local = here.join("tests/fixtures").join(name);
    if local.exists() {
        local
    } else {
        // The original scripts' files live with the result types.
        here.join("../tokenomics-stats/tests/fixtures").join(name)
    }
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

fn svg_size(svg: &str) -> (u32, u32) {
    let attr = |name: &str| -> u32 {
        let start = svg.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        svg[start..].split('"').next().unwrap().parse().unwrap()
    };
    (attr("width"), attr("height"))
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

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders `inputs` to PNG and SVG and checks both.
fn check(inputs: &[&str], labels: Option<&[String]>, expect_panels: usize) -> (Figure, String) {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = inputs.iter().map(|n| fixture(n)).collect();
    let png = dir.path().join("out.png");
    let figure = plot_files(&paths, labels, None, &png).unwrap();
    assert_eq!(figure.panels.len(), expect_panels);
    assert_eq!(png_size(&png), figure.size(), "PNG of the figure's size");

    let svg_path = dir.path().join("out.svg");
    let figure_svg = plot_files(&paths, labels, None, &svg_path).unwrap();
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<svg"), "an SVG document");
    let texts = svg_texts(&svg);
    let has = |t: &str| texts.iter().any(|x| x == &escape(t));
    assert_eq!(svg_size(&svg), figure_svg.size());
    assert!(has(&figure.title), "title {:?}", figure.title);
    for panel in &figure.panels {
        assert!(has(&panel.x_label), "x label {:?}", panel.x_label);
        assert!(has(&panel.y_label), "y label {:?}", panel.y_label);
        assert!(has(&panel.title), "panel title {:?}", panel.title);
    }
    // One annotation per point: every note appears as a text element exactly as often as points
    // carry it.
    let mut notes: Vec<String> = figure
        .panels
        .iter()
        .flat_map(|p| {
            p.series
                .iter()
                .flat_map(|s| s.points.iter().filter_map(|pt| pt.note.clone()))
        })
        .collect();
    assert!(!notes.is_empty());
    notes.sort();
    let mut distinct = notes.clone();
    distinct.dedup();
    for note in distinct {
        let expected = notes.iter().filter(|n| **n == note).count();
        let found = texts.iter().filter(|t| **t == escape(&note)).count();
        assert_eq!(found, expected, "annotation {note:?}");
    }
    (figure, texts.join("\n"))
}

#[test]
fn original_chat_file() {
    let (figure, _) = check(&["original_chat.json"], None, 2);
    assert_eq!(figure.title, "Deepseek R1 distill 8B TP8 A100s");
    let p = &figure.panels[0];
    assert_eq!(p.x.ticks(), &[1, 8, 64]);
    assert_eq!(
        p.series[0]
            .points
            .iter()
            .map(|p| p.note.clone().unwrap())
            .collect::<Vec<_>>(),
        ["182 ± 1.1", "1.5k ± 51", "3.7k ± 122"]
    );
}

#[test]
fn streamed_chat_file_adds_latency_panels() {
    let (figure, svg) = check(&["chat_streamed.json"], None, 4);
    assert_eq!(figure.columns, 2);
    assert!(figure.panels.iter().any(|p| p.y_label == "TTFT (ms)"));
    assert!(figure.panels.iter().any(|p| p.y_label == "ITL (ms)"));
    assert_eq!(figure.panels[0].x.ticks().len(), 8, "eight batch sizes");
    assert!(svg.lines().any(|t| t.ends_with(" ms")));
}

#[test]
fn original_embedding_file() {
    let (figure, _) = check(&["original_embed.json"], None, 4);
    assert_eq!(
        figure.panels[0].series.len(),
        2,
        "one line per sequence length"
    );
    assert_eq!(figure.panels[0].series[1].label, "200 words");
    assert!(matches!(
        figure.panels[0].x,
        tokenomics_plot::figures::XAxis::Log2(_)
    ));
}

#[test]
fn embedding_file_with_latency() {
    let (figure, _) = check(&["embed_latency.json"], None, 4);
    assert_eq!(figure.panels[3].y_label, "latency (ms)");
    assert_eq!(figure.panels[0].series.len(), 4);
}

#[test]
fn several_files_overlay_as_labelled_series() {
    let labels = vec!["original".to_string(), "simulated".to_string()];
    let (figure, svg) = check(
        &["original_chat.json", "chat_streamed.json"],
        Some(&labels),
        4,
    );
    assert_eq!(figure.title, "Comparison of 2 result files");
    assert_eq!(figure.panels[0].series.len(), 2);
    for label in &labels {
        assert!(svg.lines().any(|t| t == label), "legend entry {label}");
    }
    // The union of batch sizes, in order.
    assert_eq!(figure.panels[0].x.ticks(), &[1, 2, 4, 8, 16, 32, 64, 128]);
}

#[test]
fn bad_inputs_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.png");
    let mixed = plot_files(
        &[
            fixture("original_chat.json"),
            fixture("original_embed.json"),
        ],
        None,
        None,
        &out,
    );
    assert!(mixed.unwrap_err().to_string().contains("cannot mix"));
    let bad_ext = plot_files(
        &[fixture("original_chat.json")],
        None,
        None,
        &dir.path().join("x.jpg"),
    );
    assert!(bad_ext.unwrap_err().to_string().contains(".png or .svg"));
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"metadata\": {}}").unwrap();
    let e = plot_files(&[junk], None, None, &out)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a chat or embedding result file"), "{e}");
    let e = plot_files(&[dir.path().join("missing.json")], None, None, &out)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot read"), "{e}");
    assert!(!out.exists(), "nothing is written for bad input");
}
