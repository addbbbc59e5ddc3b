//! The throughput–interactivity frontier (`--frontier`) and the marks of an SLO search and a
//! sweep on the ordinary chat figure: which levels a Pareto frontier keeps, where iso-cost lines
//! go (by hand), what the figure falls back to when a file lacks a figure, that one or several
//! files draw to PNG and SVG with no note on another note, a label or the data, and that bad
//! input is refused.

use std::path::PathBuf;

use serde_json::{json, Value};
use tokenomics_plot::figures::{Figure, Line, RuleAt, XAxis};
use tokenomics_plot::frontier::{self, iso_cost_lines, usd_per_million, Interactivity};
use tokenomics_plot::layout::{Layout, PanelLayout, Rect, Swatch, MARKER_RADIUS, NOTE_FACE};
use tokenomics_plot::{
    figure_for, frontier_for, layout, pareto_frontier, render, Error, Input, Plotted,
};
use tokenomics_stats::{AnyDocument, ChatDocument, CostBasis};

fn fixture(name: &str) -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let local = here.join("tests/fixtures").join(name);
    if local.exists() {
        local
    } else {
        here.join("../tokenomics-stats/tests/fixtures").join(name)
    }
}

fn chat_fixture(name: &str) -> ChatDocument {
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

fn stat(mean: f64) -> Value {
    json!({ "mean": mean, "std": 0.0 })
}

fn dist(v: f64) -> Value {
    json!({ "count": 16, "mean": v, "std": 0.0, "min": v, "max": v, "p50": v, "p90": v,
            "p95": v, "p99": v, "p99.9": v })
}

/// A closed-loop level made by hand.
struct Spec {
    concurrency: u64,
    /// Mean TPOT, seconds (`None`: no latency block).
    tpot: Option<f64>,
    request_tps: f64,
    /// The whole run's output tokens/s.
    batch_tps: f64,
    /// The level's `cost.output_tokens_per_second_per_gpu`.
    per_gpu: Option<f64>,
}

fn spec(concurrency: u64, tpot: f64, batch_tps: f64) -> Spec {
    Spec {
        concurrency,
        tpot: Some(tpot),
        request_tps: 0.9 / tpot,
        batch_tps,
        per_gpu: Some(batch_tps),
    }
}

/// A closed-loop chat document with these levels, at `cost` (dollars per GPU-hour, GPUs).
fn chat_doc(description: &str, levels: &[Spec], cost: Option<(f64, u64)>) -> ChatDocument {
    let mut results = serde_json::Map::new();
    for s in levels {
        let mut level = json!({
            "tokens": { "input_per_request": stat(200.0), "output_per_request": stat(128.0) },
            "timings": { "batch_total_seconds": stat(4.0), "fastest_seconds": stat(1.0),
                         "slowest_seconds": stat(2.0), "spread_seconds": stat(1.0) },
            "throughput": { "batch_tokens_per_second": stat(s.batch_tps),
                            "request_tokens_per_second": stat(s.request_tps) },
            "requests": { "succeeded": 16, "failed": 0 },
            "load": { "mode": "closed_loop", "max_concurrency": s.concurrency,
                      "num_requests": 16, "duration_seconds": null, "warmup_seconds": 0.0,
                      "at_end": "wait" },
        });
        if let Some(t) = s.tpot {
            level["latency"] =
                json!({ "ttft": dist(0.05), "itl": dist(t), "tpot": dist(t), "e2el": dist(1.0) });
        }
        if let Some(y) = s.per_gpu {
            level["cost"] = json!({ "output_tokens_per_second_per_gpu": y,
                                    "usd_per_million_output_tokens": 1.0 });
        }
        results.insert(s.concurrency.to_string(), level);
    }
    let mut metadata = json!({
        "timestamp": "2026-12-01T10:00:00", "model": "m", "dataset_key": "synthetic",
        "api_base": "http://127.0.0.1:8000/v1", "batch_sizes": [], "num_runs": 1,
        "max_tokens": 128, "temperature": 0.0, "seed": 1, "warmup_runs": 0, "n_cores": 1,
        "description": description, "mode": "closed_loop",
    });
    if let Some((usd, gpus)) = cost {
        metadata["cost"] = json!({ "usd_per_gpu_hour": usd, "gpus": gpus });
    }
    serde_json::from_value(json!({ "metadata": metadata, "results": results })).unwrap()
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

/// The text of every run of an SVG (each a `<g aria-label="…">` of glyph outlines).
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<g aria-label=\"")
        .skip(1)
        .filter_map(|t| t.split('"').next())
        .map(|t| t.replace("&amp;", "&").replace("&quot;", "\""))
        .collect()
}

/// Draws a figure to PNG and SVG files, checks both, and returns the SVG's texts.
fn draw_both(figure: &Figure) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("frontier.png");
    render(figure, &png).unwrap();
    assert_eq!(png_size(&std::fs::read(&png).unwrap()), figure.size());
    let svg_path = dir.path().join("frontier.svg");
    render(figure, &svg_path).unwrap();
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<svg") && !svg.contains("<text"));
    let texts = svg_texts(&svg);
    let has = |t: &str| texts.iter().any(|x| x == t);
    assert!(has(&figure.title), "title {:?}", figure.title);
    for p in &figure.panels {
        assert!(has(&p.x_label) && has(&p.y_label), "{texts:?}");
    }
    for r in &figure.remarks {
        assert!(has(r), "remark {r:?} in {texts:?}");
    }
    // Every placed note and rule label is drawn.
    for p in &layout(figure).panels {
        for n in &p.notes {
            assert!(has(&n.text), "note {:?}", n.text);
        }
        for r in &p.rules {
            assert!(has(&r.text), "rule {:?}", r.text);
        }
    }
    texts
}

/// Pairs of notes (by index) whose boxes intersect.
fn intersecting_notes(p: &PanelLayout) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for (i, a) in p.notes.iter().enumerate() {
        for (j, b) in p.notes.iter().enumerate().skip(i + 1) {
            if a.rect.intersects(&b.rect) {
                pairs.push((i, j));
            }
        }
    }
    pairs
}

/// The check of `render.rs`, and the rules: no two notes intersect; none covers a marker (hollow
/// ones included), a line, a whisker, the legend, a gap or a rule's label; each lies in its plot
/// with the box of its text. Rule labels stay off each other, the legend and the markers, and
/// an iso-cost line's label off every line.
fn assert_notes_clear(l: &Layout) {
    for (k, p) in l.panels.iter().enumerate() {
        assert_eq!(intersecting_notes(p), vec![], "panel {k}: notes intersect");
        let markers: Vec<Rect> = p
            .series
            .iter()
            .flat_map(|s| s.markers.iter())
            .map(|&(x, y)| Rect::new(x, y, x, y).inflate(MARKER_RADIUS))
            .collect();
        let lines: Vec<((f64, f64), (f64, f64))> = p
            .series
            .iter()
            .flat_map(|s| s.lines.iter())
            .flat_map(|l| l.windows(2).map(|w| (w[0], w[1])).collect::<Vec<_>>())
            .collect();
        for n in &p.notes {
            let r = n.rect;
            assert!((r.width() - NOTE_FACE.width(&n.text)).abs() < 1e-9);
            assert!(p.plot.contains(&r), "panel {k}: {n:?} leaves the plot");
            assert!(
                !markers.iter().any(|m| m.intersects(&r)),
                "{n:?} on a marker"
            );
            assert!(
                !lines.iter().any(|&(a, b)| r.crosses(a, b)),
                "{n:?} on a line"
            );
            for s in &p.series {
                for w in &s.whiskers {
                    assert!(!w.segments().iter().any(|&(a, b)| r.crosses(a, b)));
                }
            }
            if let Some(legend) = &p.legend {
                assert!(!r.intersects(&legend.rect), "{n:?} under the legend");
            }
            assert!(
                !p.gaps.iter().any(|g| r.intersects(&g.rect)),
                "{n:?} on a gap"
            );
            for rule in &p.rules {
                assert!(
                    !rule.label.is_some_and(|l| r.intersects(&l)),
                    "{n:?} on {:?}",
                    rule.text
                );
            }
        }
        for (i, rule) in p.rules.iter().enumerate() {
            let r = rule.label.expect("a placed mark has its label");
            assert!(p.plot.contains(&r), "{rule:?} leaves the plot");
            assert!(
                !markers.iter().any(|m| m.intersects(&r)),
                "{rule:?} on a marker"
            );
            if let Some(legend) = &p.legend {
                assert!(!r.intersects(&legend.rect), "{rule:?} under the legend");
            }
            for other in p.rules.iter().skip(i + 1) {
                assert!(
                    !other.label.is_some_and(|o| r.intersects(&o)),
                    "{rule:?} on {other:?}"
                );
            }
            if rule.horizontal {
                assert!(
                    !lines.iter().any(|&(a, b)| r.crosses(a, b)),
                    "{rule:?} on a line"
                );
                for other in &p.rules {
                    assert!(
                        !r.crosses(other.from, other.to),
                        "{rule:?} across {other:?}"
                    );
                }
            }
        }
    }
}

fn note_texts(l: &Layout) -> Vec<String> {
    l.panels[0].notes.iter().map(|n| n.text.clone()).collect()
}

#[test]
fn the_pareto_frontier_of_a_hand_made_set() {
    let points = [
        (1.0, 10.0),      // 0: the most throughput: on it
        (2.0, 8.0),       // 1: beaten by 2 on both
        (3.0, 9.0),       // 2: on it
        (4.0, 1.0),       // 3: the most interactive: on it
        (2.0, 5.0),       // 4: beaten by 1 and 2
        (3.0, 9.0),       // 5: equal to 2: neither beats the other
        (f64::NAN, 99.0), // 6: not a point
        (0.5, 10.0),      // 7: as much throughput as 0, less interactive
        (4.0, 0.5),       // 8: as interactive as 3, less throughput
    ];
    assert_eq!(pareto_frontier(&points), [0, 2, 5, 3]);
    assert_eq!(pareto_frontier(&[]), Vec::<usize>::new());
    assert_eq!(pareto_frontier(&[(1.0, 1.0)]), [0]);
    // A line of points each beating the next on one side only: all of them, in x order.
    assert_eq!(
        pareto_frontier(&[(3.0, 1.0), (1.0, 3.0), (2.0, 2.0)]),
        [1, 2, 0]
    );
}

#[test]
fn cost_per_million_and_iso_cost_lines_by_hand() {
    // $2 per GPU-hour is 2/3600 dollars a second; at 1000 output tokens/s per GPU that is
    // 2/3600/1000 × 10⁶ = $0.5556 per million output tokens.
    let basis = CostBasis {
        usd_per_gpu_hour: 2.0,
        gpus: 8,
        input_cost_share: None,
    };
    let usd = usd_per_million(&basis, 1000.0).unwrap();
    assert!((usd - 0.555_555_6).abs() < 1e-6, "{usd}");
    assert_eq!(usd_per_million(&basis, 0.0), None);
    // A quarter of the time charged to input: output tokens carry $1.50 an hour.
    let shared = CostBasis {
        input_cost_share: Some(0.25),
        ..basis
    };
    let usd = usd_per_million(&shared, 1000.0).unwrap();
    assert!((usd - 0.416_666_7).abs() < 1e-6, "{usd}");

    // On an axis to 1500 tok/s per GPU: $c per million sits at 555.6 / c tok/s per GPU, and
    // lines go between 90 and 1440 (6 % and 96 %), at least 105 apart: $0.50 at 1111.1, $1 at
    // 555.6, $2 at 277.8, $5 at 111.1 ($0.20 would be at 2778, $10 at 55.6).
    let lines = iso_cost_lines(&basis, 1500.0);
    let got: Vec<(String, f64)> = lines
        .iter()
        .map(|l| (l.label(), l.tokens_per_second_per_gpu))
        .collect();
    let want = [
        ("$0.50 / M tok", 1111.111),
        ("$1 / M tok", 555.556),
        ("$2 / M tok", 277.778),
        ("$5 / M tok", 111.111),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for ((label, y), (l, wy)) in got.iter().zip(want) {
        assert_eq!(label, l);
        assert!((y - wy).abs() < 1e-3, "{label}: {y}");
    }
    // Nothing to draw without a price or an axis.
    assert!(iso_cost_lines(&basis, 0.0).is_empty());
}

/// A file at $2 per GPU-hour whose highest level makes 1200 tok/s per GPU: the axis goes to
/// 1500, and the figure's iso-cost lines are the ones worked out by hand above, drawn at their
/// place on the axis with their labels.
#[test]
fn iso_cost_lines_in_the_figure() {
    let doc = chat_doc(
        "priced",
        &[
            spec(1, 0.005, 190.0),
            spec(8, 0.006, 700.0),
            spec(32, 0.01, 1200.0),
        ],
        Some((2.0, 1)),
    );
    let plotted = frontier_for(&[input("priced", doc)], None).unwrap();
    let figure = &plotted.figure;
    let panel = &figure.panels[0];
    let rules: Vec<(String, f64)> = panel
        .rules
        .iter()
        .map(|r| match r.at {
            RuleAt::Y(y) => (r.label.clone(), y),
            RuleAt::X(_) => panic!("a vertical rule on the frontier"),
        })
        .collect();
    let labels: Vec<&str> = rules.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        ["$0.50 / M tok", "$1 / M tok", "$2 / M tok", "$5 / M tok"]
    );
    assert!((rules[0].1 - 2.0 / 3600.0 * 1e6 / 0.5).abs() < 1e-9);
    assert_eq!(
        figure.remarks,
        ["dashed grey lines: cost per million output tokens at $2 per GPU-hour"]
    );
    // No cost in the notes: the lines say it.
    assert!(panel.series[0]
        .points
        .iter()
        .all(|p| !p.note.as_ref().unwrap().contains('$')));

    let l = layout(figure);
    let p = &l.panels[0];
    assert_eq!(p.rules.len(), 4, "every line fits");
    assert_eq!(p.rules_dropped, 0);
    let top = p.y_top;
    assert_eq!(top, 1500.0);
    for (placed, (label, y)) in p.rules.iter().zip(&rules) {
        let py = p.plot.y1 - y / top * p.plot.height();
        assert!(placed.horizontal && (placed.from.1 - py).abs() < 1e-9);
        assert_eq!((placed.from.0, placed.to.0), (p.plot.x0, p.plot.x1));
        assert_eq!(&placed.text, label);
        // The label sits just above its line (or just below it).
        let label = placed.label.expect("a placed mark has its label");
        let gap = (label.y1 - py).abs().min((label.y0 - py).abs());
        assert!(gap <= 4.0 + 1e-9, "{placed:?}");
    }
    assert_notes_clear(&l);
    let texts = draw_both(figure);
    assert!(texts.iter().any(|t| t == "$0.50 / M tok"));
}

#[test]
fn one_file_draws_its_levels_and_frontier() {
    let doc = chat_fixture("frontier_h100.json");
    let plotted = frontier_for(&[input("h100", doc.clone())], None).unwrap();
    assert!(plotted.warnings.is_empty(), "{:?}", plotted.warnings);
    let figure = &plotted.figure;
    assert_eq!(figure.title, "h100");
    assert_eq!(figure.panels.len(), 1);
    let panel = &figure.panels[0];
    assert_eq!(
        panel.x_label,
        "interactivity: output tokens/s per user (1 / mean TPOT)"
    );
    assert_eq!(panel.y_label, "output tokens/s per GPU");
    assert!(matches!(&panel.x, XAxis::Linear(t) if t[0].value == 0.0));
    // One point per level: x = 1 / mean TPOT, y = the level's tokens/s per GPU.
    let s = &panel.series[0];
    assert_eq!(s.points.len(), 4);
    for (p, (key, level)) in s.points.iter().zip(&doc.results) {
        let tpot = level.latency.as_ref().unwrap().tpot.mean;
        assert!((p.level.value - 1.0 / tpot).abs() < 1e-9);
        assert_eq!(p.y, level.cost.unwrap().output_tokens_per_second_per_gpu);
        assert_eq!(p.note.as_deref(), Some(format!("c={key}").as_str()));
    }
    // Each point's cost is the file's own cost block's.
    let points = frontier::file_points(&doc);
    for (p, level) in points.points.iter().zip(doc.results.values()) {
        let want = level.cost.unwrap().usd_per_million_output_tokens;
        assert!((p.usd_per_million.unwrap() - want).abs() < 1e-9 * want);
        assert_eq!(p.interactivity_from, Interactivity::Tpot);
    }
    // More concurrency, more throughput and less interactivity: every level is on the frontier.
    assert_eq!(s.line, Line::Through(vec![3, 2, 1, 0]));
    assert!(
        !panel.rules.is_empty(),
        "iso-cost lines at the file's price"
    );

    let l = layout(figure);
    let p = &l.panels[0];
    assert_eq!(p.notes.len(), 4);
    assert_eq!(p.series[0].lines[0].len(), 4);
    assert!(p.series[0].hollow.is_empty());
    let legend = p.legend.as_ref().unwrap();
    assert_eq!(legend.entries[0].label, "Pareto frontier");
    assert_notes_clear(&l);
    let texts = draw_both(figure);
    for key in ["c=1", "c=4", "c=16", "c=64"] {
        assert!(texts.iter().any(|t| t == key), "{key}");
    }
}

/// Two files at different prices: each its colour and legend entry, and the cost of each
/// frontier point in its note; at one price, iso-cost lines instead.
#[test]
fn several_files_overlay() {
    let h100 = chat_fixture("frontier_h100.json");
    let a100 = chat_fixture("frontier_a100.json");
    let inputs = [input("H100", h100.clone()), input("A100", a100.clone())];
    let plotted = frontier_for(&inputs, None).unwrap();
    let figure = &plotted.figure;
    assert_eq!(figure.title, "Comparison of 2 result files");
    let panel = &figure.panels[0];
    assert_eq!(panel.series.len(), 2);
    assert!(
        panel.rules.is_empty(),
        "two prices: no common iso-cost line"
    );
    for s in &panel.series {
        for p in &s.points {
            let note = p.note.as_deref().unwrap();
            assert!(
                note.starts_with("c=") && note.contains(" · $") && note.ends_with("/M"),
                "{note}"
            );
        }
    }
    // The H100's c=64: $2.50 an hour over its tokens/s per GPU.
    let c64 = &panel.series[0].points[3];
    let usd = 2.5 / 3600.0 / c64.y * 1e6;
    assert_eq!(
        c64.note.as_deref().unwrap(),
        format!("c=64 · {}/M", tokenomics_plot::units::usd(usd))
    );
    let l = layout(figure);
    let p = &l.panels[0];
    assert_ne!(p.series[0].color, p.series[1].color);
    let legend: Vec<&str> = p
        .legend
        .as_ref()
        .unwrap()
        .entries
        .iter()
        .map(|e| e.label.as_str())
        .collect();
    assert_eq!(legend, ["H100", "A100"]);
    assert_notes_clear(&l);
    let texts = draw_both(figure);
    assert!(texts.iter().any(|t| t == "H100") && texts.iter().any(|t| t == "A100"));

    // The A100 at the H100's price: one price, iso-cost lines, plain notes.
    let mut same_price = a100;
    same_price.metadata.cost = h100.metadata.cost;
    let plotted = frontier_for(&[input("H100", h100), input("A100", same_price)], None).unwrap();
    let panel = &plotted.figure.panels[0];
    assert!(!panel.rules.is_empty());
    assert!(note_texts(&layout(&plotted.figure))
        .iter()
        .all(|n| !n.contains('$')));
    assert_notes_clear(&layout(&plotted.figure));
    draw_both(&plotted.figure);
}

/// A level beaten on both counts by another is off the line, drawn hollow, and the legend says
/// what a hollow marker is.
#[test]
fn dominated_levels_are_hollow_and_off_the_line() {
    let doc = chat_doc(
        "overloaded",
        &[
            spec(1, 0.004, 240.0),
            spec(4, 0.005, 800.0),
            spec(16, 0.008, 1900.0),
            // Past saturation: slower for every user, and less throughput than at 16.
            spec(64, 0.02, 1500.0),
            spec(32, 0.012, 2100.0),
        ],
        Some((2.0, 1)),
    );
    let plotted = frontier_for(&[input("overloaded", doc)], None).unwrap();
    let s = &plotted.figure.panels[0].series[0];
    // In x order (1 / TPOT): c=32, c=16, c=4, c=1; c=64 (index 3) is beaten by c=32.
    assert_eq!(s.line, Line::Through(vec![4, 2, 1, 0]));
    let l = layout(&plotted.figure);
    let p = &l.panels[0];
    assert_eq!(p.series[0].hollow, [3]);
    assert_eq!(p.series[0].markers.len(), 5);
    assert_eq!(p.series[0].lines.len(), 1);
    assert_eq!(p.series[0].lines[0].len(), 4);
    assert!(!p.series[0].lines[0].contains(&p.series[0].markers[3]));
    let legend = p.legend.as_ref().unwrap();
    assert!(legend
        .entries
        .iter()
        .any(|e| e.swatch == Swatch::Hollow && e.label == "level off the frontier"));
    assert_notes_clear(&l);
    draw_both(&plotted.figure);
}

/// Without a latency block the figure uses mean request tokens/s and says so; without a GPU
/// count, the whole deployment's tokens/s, and the axis says so; with a price but no level cost
/// block, tokens/s over the GPUs.
#[test]
fn what_the_figure_falls_back_to() {
    let mut levels = vec![spec(1, 0.005, 200.0), spec(8, 0.008, 1200.0)];
    for l in &mut levels {
        l.tpot = None;
        l.per_gpu = None;
    }
    let doc = chat_doc("not streamed", &levels, None);
    let plotted = frontier_for(&[input("not streamed", doc)], None).unwrap();
    let figure = &plotted.figure;
    let panel = &figure.panels[0];
    assert_eq!(
        panel.x_label,
        "interactivity: output tokens/s per user (mean request tokens/s)"
    );
    assert_eq!(
        panel.y_label,
        "output tokens/s (whole deployment; no --gpus given)"
    );
    let p = &panel.series[0].points[0];
    assert!((p.level.value - 0.9 / 0.005).abs() < 1e-9);
    assert_eq!(p.y, 200.0);
    assert!(panel.rules.is_empty(), "no price, no cost");
    assert_eq!(figure.remarks.len(), 1);
    assert!(
        figure.remarks[0].contains("tokens/s per user is the mean request tokens/s"),
        "{:?}",
        figure.remarks
    );
    // The remark is drawn under the title, and the figure is taller for it.
    let l = layout(figure);
    assert!(l.texts.iter().any(|t| t.text == figure.remarks[0]));
    assert_eq!(figure.size().1, 1150 + 100 + 32);
    draw_both(figure);

    // Four GPUs at $3 an hour, no cost block in the levels: tokens/s over the GPUs.
    let mut levels = vec![spec(1, 0.005, 200.0), spec(8, 0.008, 1200.0)];
    for l in &mut levels {
        l.per_gpu = None;
    }
    let doc = chat_doc("four GPUs", &levels, Some((3.0, 4)));
    let plotted = frontier_for(&[input("four GPUs", doc)], None).unwrap();
    let panel = &plotted.figure.panels[0];
    assert_eq!(panel.y_label, "output tokens/s per GPU");
    assert_eq!(panel.series[0].points[1].y, 300.0);
    assert!(!panel.rules.is_empty());

    // Beside a priced file, the unpriced one says it is the whole deployment.
    let priced = chat_doc("priced", &[spec(1, 0.005, 200.0)], Some((2.0, 1)));
    let bare = chat_doc("bare", &[spec(1, 0.004, 900.0)], None);
    let mut bare = bare;
    bare.results[0].cost = None;
    let plotted = frontier_for(&[input("priced", priced), input("bare", bare)], None).unwrap();
    let panel = &plotted.figure.panels[0];
    assert_eq!(
        panel.y_label,
        "output tokens/s per GPU (whole deployment where no --gpus given)"
    );
    assert_eq!(panel.series[1].label, "bare (whole deployment)");
    assert!(plotted.figure.remarks[0].ends_with("(no price for bare)"));
}

#[test]
fn bad_inputs_are_errors() {
    // An embedding file.
    let path = fixture("original_embed.json");
    let embed = Input {
        label: "embed".into(),
        document: tokenomics_plot::load(&path).unwrap(),
        path: path.clone(),
    };
    let e = frontier_for(&[embed], None).unwrap_err();
    assert!(matches!(e, Error::FrontierOfEmbeddings(_)) && e.is_bad_input());
    assert_eq!(
        e.to_string(),
        format!(
            "{} is an embedding result file: the throughput–interactivity frontier draws chat \
             result files only",
            path.display()
        )
    );
    // Levels that succeeded, but neither a TPOT nor request tokens/s in any of them.
    let mut levels = vec![spec(1, 0.005, 200.0)];
    levels[0].tpot = None;
    levels[0].request_tps = f64::NAN;
    let doc = chat_doc("no figures", &levels, None);
    let e = frontier_for(&[input("no figures", doc)], None).unwrap_err();
    assert!(
        matches!(e, Error::NoFrontierLevel(_)) && e.is_bad_input(),
        "{e}"
    );
    assert!(!e.to_string().contains('\n'));
    // Every request failed: nothing to draw, as in the ordinary figure.
    let dead = chat_fixture("chat_all_failed.json");
    let e = frontier_for(&[input("dead", dead.clone())], None).unwrap_err();
    assert!(matches!(e, Error::NothingToDraw(_)));
    // Beside a good file, left out with a warning.
    let good = chat_fixture("frontier_h100.json");
    let plotted = frontier_for(&[input("good", good), input("dead", dead)], None).unwrap();
    assert_eq!(plotted.left_out, [PathBuf::from("dead.json")]);
    assert_eq!(plotted.figure.panels[0].series.len(), 1);
}

/// A level in which every request failed is left out of the frontier, with a warning.
#[test]
fn failed_levels_are_left_out() {
    let doc = chat_fixture("chat_open_loop.json");
    let plotted = frontier_for(&[input("open", doc)], None).unwrap();
    let s = &plotted.figure.panels[0].series[0];
    assert_eq!(s.points.len(), 3);
    assert!(s.points.iter().all(|p| p.level.label != "10"));
    assert_eq!(
        s.points
            .iter()
            .map(|p| p.note.clone().unwrap())
            .collect::<Vec<_>>(),
        ["0.5 req/s", "2.5 req/s", "100.5 req/s"]
    );
    assert_eq!(plotted.warnings.len(), 1);
    assert!(
        plotted.warnings[0].starts_with("open.json: 10 requests/s: all 20 requests failed")
            && plotted.warnings[0].ends_with("; left out of the frontier"),
        "{:?}",
        plotted.warnings
    );
    assert_notes_clear(&layout(&plotted.figure));
}

fn with_slo(mut doc: ChatDocument, search: Value) -> ChatDocument {
    doc.metadata.slo_search = Some(serde_json::from_value(search).unwrap());
    doc
}

fn search(axis: &str, level: Option<&str>, passing: Option<f64>, failing: Option<f64>) -> Value {
    json!({
        "axis": axis,
        "objectives": [{ "metric": "ttft", "statistic": "p99", "threshold_ms": 200.0 }],
        "min_requests": 16, "tolerance": 0.1,
        "highest_passing": passing, "lowest_failing": failing, "level": level,
        "goodput_rps": 2.4,
        "probes": [
            { "level": "2.5", "value": 2.5, "passed": true, "measured_ms": [150.0] },
            { "level": "10", "value": 10.0, "passed": false, "measured_ms": [null],
              "reason": "every request failed" }
        ],
        "outcome": "found",
    })
}

/// The level an SLO search found is marked on the throughput panels (not the latency ones),
/// labelled with the capacity and the load that failed, its label clear of the notes; an early
/// stop of a sweep is said under the title.
#[test]
fn the_slo_capacity_is_marked_on_the_chat_figure() {
    let doc = with_slo(
        chat_fixture("chat_open_loop.json"),
        search("rate", Some("2.5"), Some(2.5), Some(10.0)),
    );
    let mut doc = doc;
    doc.metadata.sweep = Some(
        serde_json::from_value(json!({
            "points": 4, "spacing": "linear", "rates": [0.5, 2.5, 10.0, 100.5],
            "stopped_early": "every request failed at 10 req/s"
        }))
        .unwrap(),
    );
    let plotted = figure_for(&[input("open", doc)], None).unwrap();
    let figure = &plotted.figure;
    assert_eq!(
        figure.remarks,
        ["sweep stopped: every request failed at 10 req/s"]
    );
    let label = "SLO capacity 2.5 req/s (fails at 10)";
    for p in &figure.panels {
        let throughput = p.unit == tokenomics_plot::units::Unit::PerSecond;
        assert_eq!(p.rules.len(), usize::from(throughput), "{}", p.title);
        if throughput {
            assert_eq!(p.rules[0].at, RuleAt::X(2.5));
            assert_eq!(p.rules[0].label, label);
        }
    }
    let l = layout(figure);
    for (p, panel) in l.panels.iter().zip(&figure.panels) {
        if let Some(rule) = p.rules.first() {
            assert_eq!(rule.text, label);
            assert!(!rule.horizontal);
            // At the level's tick: 2.5 is the second of 0.5, 2.5, 10, 100.5.
            assert_eq!(panel.x.tick_labels()[1], "2.5");
            assert!((rule.from.0 - p.x_ticks[1]).abs() < 1e-9);
            assert_eq!((rule.from.1, rule.to.1), (p.plot.y0, p.plot.y1));
        }
    }
    assert_eq!(l.panels.iter().map(|p| p.rules.len()).sum::<usize>(), 2);
    assert_notes_clear(&l);
    let texts = draw_both(figure);
    assert_eq!(texts.iter().filter(|t| *t == label).count(), 2);
}

#[test]
fn slo_marks_by_axis_and_outcome() {
    // Concurrency, and a search in which nothing failed.
    let doc = with_slo(
        chat_fixture("frontier_h100.json"),
        search("concurrency", Some("16"), Some(16.0), None),
    );
    let rule = tokenomics_plot::figures::slo_rule(&doc, None).unwrap();
    assert_eq!(rule.at, RuleAt::X(16.0));
    assert_eq!(
        rule.label,
        "SLO capacity at concurrency 16 (no level tried failed)"
    );
    // Nothing passed: the mark is at the lowest failing level.
    let doc = with_slo(
        chat_fixture("chat_open_loop.json"),
        search("rate", None, None, Some(10.0)),
    );
    let rule = tokenomics_plot::figures::slo_rule(&doc, Some(1)).unwrap();
    assert_eq!(rule.at, RuleAt::X(10.0));
    assert_eq!(rule.label, "SLO missed from 10 req/s (no level passed)");
    assert_eq!(rule.series, Some(1));
    // A level that is not in the results: not marked, and the user is told.
    let doc = with_slo(
        chat_fixture("chat_open_loop.json"),
        search("rate", Some("7"), Some(7.0), Some(10.0)),
    );
    assert!(tokenomics_plot::figures::slo_rule(&doc, None).is_none());
    let plotted: Plotted = figure_for(&[input("open", doc)], None).unwrap();
    assert!(plotted
        .warnings
        .iter()
        .any(|w| w
            == "open.json: the level the SLO search found is not among its results; not marked"));
    assert!(plotted.figure.panels.iter().all(|p| p.rules.is_empty()));
}

/// The checks above do fail: a note moved onto a rule's label is caught.
#[test]
#[should_panic(expected = "on \"$0.50 / M tok\"")]
fn a_note_on_a_rule_label_is_caught() {
    let doc = chat_doc(
        "priced",
        &[spec(1, 0.005, 190.0), spec(32, 0.01, 1200.0)],
        Some((2.0, 1)),
    );
    let plotted = frontier_for(&[input("priced", doc)], None).unwrap();
    let mut l = layout(&plotted.figure);
    let p = &mut l.panels[0];
    let target = p.rules[0].label.expect("a placed mark has its label");
    let n = &mut p.notes[0];
    n.rect = Rect::new(
        target.x0,
        target.y0,
        target.x0 + n.rect.width(),
        target.y0 + n.rect.height(),
    );
    assert_notes_clear(&l);
}
