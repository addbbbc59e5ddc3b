//! A run over time (`--timeline`): what is read from a level's `timeline` block (rates are counts
//! over the bucket, a missing value is a gap), which panels a file gets, the images drawn (PNG
//! and SVG, the panels' titles in the SVG, no text on other text), and the files refused.

use std::path::PathBuf;

use tokenomics_plot::figures::{Figure, Line, RuleAt, RuleKind, Stroke};
use tokenomics_plot::layout::Layout;
use tokenomics_plot::timeline::{self, level_timeline, FileTimeline};
use tokenomics_plot::{layout, render, timeline_for, Error, Input, Plotted};
use tokenomics_stats::{AnyDocument, ChatDocument, TimelineBlock, TimelineServer};

fn fixture(name: &str) -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let local = here.join("tests/fixtures").join(name);
    if local.exists() {
        local
    } else {
        here.join("../tokenomics-stats/tests/fixtures").join(name)
    }
}

fn chat(name: &str) -> ChatDocument {
    match tokenomics_plot::load(&fixture(name)).unwrap() {
        AnyDocument::Chat(d) => d,
        AnyDocument::Embed(_) => panic!("{name} is a chat file"),
    }
}

fn input(label: &str, doc: ChatDocument) -> Input {
    Input {
        label: label.to_string(),
        document: AnyDocument::Chat(doc),
        path: PathBuf::from(format!("{label}.json")),
    }
}

/// A block of four 0.5 s buckets starting at 10 s on the run's clock, warm-up to 10.5 s.
fn block() -> TimelineBlock {
    TimelineBlock {
        interval_seconds: 0.5,
        start_seconds: 10.0,
        measured_from_seconds: 10.5,
        sent: vec![4, 2, 0, 3],
        completed: vec![0, 1, 5, 2],
        errors: vec![0, 0, 1, 0],
        in_flight: vec![4, 5, 0, 1],
        output_tokens: vec![0, 100, 640, 256],
        ttft_p50_seconds: vec![None, Some(0.02), Some(0.03), Some(f64::NAN)],
        ttft_p99_seconds: vec![None, Some(0.05), Some(0.09), None],
        server: Some(TimelineServer {
            running: vec![Some(4.0), None, Some(2.0), Some(1.0)],
            waiting: vec![Some(0.0), None, Some(0.0), Some(0.0)],
            kv_usage: vec![Some(0.25), None, Some(0.5), Some(0.125)],
        }),
    }
}

#[test]
fn rates_are_counts_over_the_interval_and_missing_values_are_gaps() {
    let l = level_timeline("8", "concurrency 8", &block(), 9.0).unwrap();
    assert_eq!((l.start, l.measured_from, l.end), (1.0, 1.5, 3.0));
    // Counts over 0.5 s, at each bucket's middle.
    assert_eq!(
        l.sent_per_second,
        [
            (1.25, Some(8.0)),
            (1.75, Some(4.0)),
            (2.25, Some(0.0)),
            (2.75, Some(6.0))
        ]
    );
    assert_eq!(l.completed_per_second[2], (2.25, Some(10.0)));
    assert_eq!(l.errors_per_second[2], (2.25, Some(2.0)));
    assert_eq!(l.output_tokens_per_second[3], (2.75, Some(512.0)));
    // Requests in flight are a count at the bucket's end, not a rate.
    assert_eq!(
        l.in_flight,
        [
            (1.5, Some(4.0)),
            (2.0, Some(5.0)),
            (2.5, Some(0.0)),
            (3.0, Some(1.0))
        ]
    );
    // No first token in the bucket, or a value that is no number: a gap, not a zero.
    assert_eq!(
        l.ttft_p50,
        [
            (1.25, None),
            (1.75, Some(0.02)),
            (2.25, Some(0.03)),
            (2.75, None)
        ]
    );
    let server = l.server.as_ref().unwrap();
    assert_eq!(server.running[1], (1.75, None));
    assert_eq!(server.kv_usage[2], (2.25, Some(0.5)));

    // In the figure: the line breaks at every gap and between levels; KV usage in percent,
    // TTFT in milliseconds.
    let mut second = block();
    second.start_seconds = 13.0;
    second.measured_from_seconds = 13.0;
    let file = FileTimeline {
        levels: vec![
            l,
            level_timeline("16", "concurrency 16", &second, 9.0).unwrap(),
        ],
        skipped: Vec::new(),
    };
    let figure = timeline::timeline_figure(&[("run".into(), &file)], "run");
    assert_eq!(figure.panels.len(), 5);
    let ttft = &figure.panels[3];
    assert_eq!(ttft.y_label, "TTFT (ms)");
    let p50 = &ttft.series[0];
    assert_eq!(p50.label, "p50");
    let ys: Vec<f64> = p50.points.iter().map(|p| p.y).collect();
    assert_eq!(ys, [20.0, 30.0, 20.0, 30.0]);
    assert_eq!(p50.line, Line::Trace(vec![vec![0, 1], vec![2, 3]]));
    let kv = &figure.panels[4].series[0];
    assert_eq!(
        kv.line,
        Line::Trace(vec![vec![0], vec![1, 2], vec![3], vec![4, 5]])
    );
    assert_eq!(kv.points[1].y, 50.0);
    // A zero is a value: the sent line of a level is one run.
    let sent = &figure.panels[0].series[0];
    assert_eq!(
        sent.line,
        Line::Trace(vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]])
    );
    assert_eq!(sent.points[2].y, 0.0);
    // Errors happened: their rate is drawn, dotted.
    let errors = &figure.panels[0].series[2];
    assert_eq!(
        (errors.label.as_str(), errors.stroke),
        ("errors", Stroke::Dotted)
    );
    // Each level's start on every panel, named on the top one; only the first has a warm-up.
    for (k, p) in figure.panels.iter().enumerate() {
        let at: Vec<RuleAt> = p.rules.iter().map(|r| r.at).collect();
        assert_eq!(at, [RuleAt::X(1.0), RuleAt::X(4.0)]);
        assert!(p.rules.iter().all(|r| r.kind == RuleKind::Boundary));
        let named = p.rules.iter().all(|r| !r.label.is_empty());
        assert_eq!(named, k == 0, "{}", p.title);
        assert_eq!(p.spans.len(), 1);
        assert_eq!((p.spans[0].from, p.spans[0].to), (1.0, 1.5));
    }
}

#[test]
fn malformed_blocks_are_refused() {
    let mut short = block();
    short.completed.pop();
    let e = level_timeline("8", "concurrency 8", &short, 0.0).unwrap_err();
    assert_eq!(e.reason, "completed has 3 buckets where sent has 4");
    let mut server = block();
    server.server.as_mut().unwrap().kv_usage.push(None);
    let e = level_timeline("8", "concurrency 8", &server, 0.0).unwrap_err();
    assert_eq!(e.reason, "server.kv_usage has 5 buckets where sent has 4");
    for dt in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let mut b = block();
        b.interval_seconds = dt;
        assert!(level_timeline("8", "c", &b, 0.0)
            .unwrap_err()
            .reason
            .starts_with("interval_seconds is"));
    }

    // Through the library, a one-line error that names the file and the level.
    let mut doc = chat("chat_timeline.json");
    doc.results[1].timeline.as_mut().unwrap().sent.push(1);
    let e = timeline_for(&[input("bad", doc)], None).unwrap_err();
    assert!(matches!(e, Error::BadTimeline { .. }));
    assert!(e.is_bad_input());
    assert_eq!(
        e.to_string(),
        "bad.json: concurrency 16: malformed timeline: completed has 23 buckets where sent has 24"
    );
}

/// Pairs of text runs whose boxes intersect.
fn text_overlaps(l: &Layout) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, a) in l.texts.iter().enumerate() {
        for b in l.texts.iter().skip(i + 1) {
            if a.bounds().intersects(&b.bounds()) {
                out.push((a.text.clone(), b.text.clone()));
            }
        }
    }
    out
}

/// The text of every run of an SVG (each a `<g aria-label="…">` of glyph outlines).
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<g aria-label=\"")
        .skip(1)
        .filter_map(|t| t.split('"').next())
        .map(|t| t.replace("&amp;", "&"))
        .collect()
}

/// Draws the figure as PNG and SVG into a temporary directory, checks both, and returns the
/// SVG's texts.
fn draw(figure: &Figure) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("timeline.png");
    render(figure, &png).unwrap();
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.len() > 10_000, "a PNG with something in it");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let svg_path = dir.path().join("timeline.svg");
    render(figure, &svg_path).unwrap();
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<svg") && svg.len() > 10_000);
    let texts = svg_texts(&svg);
    for p in &figure.panels {
        assert!(texts.contains(&p.title), "panel title {:?}", p.title);
        assert!(texts.contains(&p.y_label), "y label {:?}", p.y_label);
    }
    let l = layout(figure);
    assert_eq!(text_overlaps(&l), Vec::<(String, String)>::new());
    texts
}

#[test]
fn one_file_over_time_in_png_and_svg() {
    let Plotted {
        figure, warnings, ..
    } = timeline_for(&[input("run", chat("chat_timeline.json"))], None).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let titles: Vec<&str> = figure.panels.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Requests per second: sent, completed and failed",
            "Requests in flight (client), running and waiting (server)",
            "Output tokens per second",
            "Time to first token (p50 and p99 of the requests whose first token came in the interval)",
            "KV cache in use (server)",
        ]
    );
    assert_eq!(figure.panels[3].y_label, "TTFT (ms)");
    let texts = draw(&figure);
    for level in ["concurrency 4", "concurrency 16", "concurrency 64"] {
        assert_eq!(
            texts.iter().filter(|t| *t == level).count(),
            1,
            "{level} named once, on the top panel"
        );
    }
    let l = layout(&figure);
    for p in &l.panels {
        assert_eq!(p.rules.len(), 3, "every level's start on every panel");
        assert_eq!(p.spans.len(), 3, "every level's warm-up shaded");
        assert!(
            p.series.iter().all(|s| s.markers.len() <= 3),
            "lines, not markers"
        );
    }
    assert_eq!(l.panels[0].rule_labels_dropped, 0);
    // One level of 23 buckets of 2 s after another, 1.3 s apart.
    let x = figure.panels[0].x.levels();
    assert_eq!(x.first().unwrap().value, 0.0);
    assert!(x.last().unwrap().value >= 3.0 * 46.0 + 2.0 * 1.3);
}

#[test]
fn several_files_overlay_each_on_its_own_clock() {
    let mut without_server = chat("chat_timeline.json");
    for level in without_server.results.values_mut() {
        let t = level.timeline.as_mut().unwrap();
        t.server = None;
        // Another process, another clock: the file starts at its own zero all the same.
        t.start_seconds += 1000.0;
        t.measured_from_seconds += 1000.0;
    }
    // A level without a timeline is left out, with a warning.
    without_server.results[0].timeline = None;
    let plotted = timeline_for(
        &[
            input("with server", chat("chat_timeline.json")),
            input("client only", without_server),
        ],
        Some("Two runs"),
    )
    .unwrap();
    assert_eq!(
        plotted.warnings,
        ["client only.json: concurrency 4 has no timeline; left out"]
    );
    let figure = &plotted.figure;
    assert_eq!(figure.panels.len(), 5, "KV usage from the file that has it");
    let requests = &figure.panels[0];
    assert_eq!(requests.series.len(), 6);
    assert_eq!(requests.series[3].label, "client only · sent");
    assert_eq!(requests.series[3].color, Some(1));
    let second_sent = requests.series[3].points.first().unwrap().level.value;
    let first_sent = requests.series[0].points.first().unwrap().level.value;
    assert_eq!(first_sent, 1.0, "the first level's first bucket's middle");
    assert!(
        (second_sent - 1.0).abs() < 1e-9,
        "its own first bucket is its zero"
    );
    let legend = requests.legend.as_ref().unwrap();
    let labels: Vec<&str> = legend.iter().map(|i| i.label.as_str()).collect();
    assert_eq!(
        labels,
        ["with server", "client only", "sent", "completed", "errors"]
    );
    // The KV cache of the file that has it alone.
    let kv = figure.panels[4].legend.as_ref().unwrap();
    assert_eq!(kv.len(), 1);
    assert_eq!(kv[0].label, "with server");
    let texts = draw(figure);
    assert!(texts.iter().any(|t| t == "Two runs"));
}

#[test]
fn a_file_without_a_timeline_is_refused() {
    let e = timeline_for(&[input("old", chat("chat_open_loop.json"))], None).unwrap_err();
    assert!(matches!(e, Error::NoTimeline(_)) && e.is_bad_input());
    assert_eq!(
        e.to_string(),
        "old.json: no level has a timeline (written by oai-bench since --timeline_interval; rerun the benchmark)"
    );
    // An empty block is no timeline either.
    let mut doc = chat("chat_timeline.json");
    for level in doc.results.values_mut() {
        level.timeline = Some(TimelineBlock {
            interval_seconds: 1.0,
            ..TimelineBlock::default()
        });
    }
    assert!(matches!(
        timeline_for(&[input("empty", doc)], None).unwrap_err(),
        Error::NoTimeline(_)
    ));
    let embed = Input {
        label: "embed".into(),
        document: tokenomics_plot::load(&fixture("original_embed.json")).unwrap(),
        path: PathBuf::from("embed.json"),
    };
    let e = timeline_for(&[embed], None).unwrap_err();
    assert!(matches!(e, Error::TimelineOfEmbeddings(_)));
}

#[test]
fn without_server_gauges_or_errors_the_panels_say_less() {
    let mut doc = chat("chat_timeline.json");
    for level in doc.results.values_mut() {
        let t = level.timeline.as_mut().unwrap();
        t.server = None;
        t.errors.iter_mut().for_each(|e| *e = 0);
        // Long TTFTs: the axis in seconds.
        for v in t.ttft_p99_seconds.iter_mut().flatten() {
            *v *= 100.0;
        }
    }
    let figure = timeline_for(&[input("bare", doc)], None).unwrap().figure;
    assert_eq!(figure.panels.len(), 4, "no KV-cache panel");
    assert_eq!(
        figure.panels[0].title,
        "Requests per second: sent and completed"
    );
    assert_eq!(figure.panels[0].series.len(), 2);
    assert_eq!(figure.panels[1].title, "Requests in flight (client)");
    assert_eq!(figure.panels[3].y_label, "TTFT (s)");
    draw(&figure);
}
