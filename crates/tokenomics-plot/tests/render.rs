//! Every kind of figure, built from fixture files: what the figure model holds (levels, gaps,
//! points, units, notes, spreads), where the layout puts it (lines broken at failed levels,
//! notes that never intersect each other or the data), and the images drawn from it (PNG of the
//! figure's size; SVG whose text is glyph outlines, one `aria-label` per run).

use std::path::{Path, PathBuf};

use tokenomics_plot::figures::{Figure, Panel, Spread, XAxis};
use tokenomics_plot::layout::{Layout, PanelLayout, MARKER_RADIUS, NOTE_FACE};
use tokenomics_plot::units::Unit;
use tokenomics_plot::{layout, plot_files, render_svg, Plotted};

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

/// The text of every run of an SVG (each a `<g aria-label="…">` of glyph outlines).
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<g aria-label=\"")
        .skip(1)
        .filter_map(|t| t.split('"').next())
        .map(|t| {
            t.replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        })
        .collect()
}

/// Renders `inputs` to PNG and SVG, checks both, and returns what was drawn.
fn check(inputs: &[&str], labels: Option<&[String]>, expect_panels: usize) -> Plotted {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = inputs.iter().map(|n| fixture(n)).collect();
    let png = dir.path().join("out.png");
    let plotted = plot_files(&paths, labels, None, &png).unwrap();
    let figure = &plotted.figure;
    assert_eq!(figure.panels.len(), expect_panels);
    assert_eq!(png_size(&png), figure.size(), "PNG of the figure's size");

    let svg_path = dir.path().join("out.svg");
    plot_files(&paths, labels, None, &svg_path).unwrap();
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<svg"), "an SVG document");
    assert_eq!(svg_size(&svg), figure.size());
    // No text left to the viewer's fonts.
    assert!(!svg.contains("<text") && !svg.contains("font-family"));
    let texts = svg_texts(&svg);
    let has = |t: &str| texts.iter().any(|x| x == t);
    assert!(has(&figure.title), "title {:?}", figure.title);
    for panel in &figure.panels {
        assert!(has(&panel.x_label), "x label {:?}", panel.x_label);
        assert!(has(&panel.y_label), "y label {:?}", panel.y_label);
        assert!(has(&panel.title), "panel title {:?}", panel.title);
    }
    // Every placed note is drawn, as often as it is placed.
    let l = layout(figure);
    let mut notes: Vec<&str> = l
        .panels
        .iter()
        .flat_map(|p| p.notes.iter().map(|n| n.text.as_str()))
        .collect();
    assert!(!notes.is_empty());
    notes.sort();
    let mut distinct = notes.clone();
    distinct.dedup();
    for note in distinct {
        let expected = notes.iter().filter(|n| **n == note).count();
        let found = texts.iter().filter(|t| *t == note).count();
        assert_eq!(found, expected, "note {note:?}");
    }
    assert_no_note_overlaps(&l);
    assert_eq!(overlapping_texts(&l), Vec::<(String, String)>::new());
    assert_spreads_drawn_as_what_they_are(figure, &l);
    plotted
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

/// No two notes intersect; none covers a marker, a line, a whisker, the legend or a gap; each
/// lies in its plot; and each box is what the renderer's font metrics make of its text.
fn assert_no_note_overlaps(l: &Layout) {
    for (k, p) in l.panels.iter().enumerate() {
        assert_eq!(intersecting_notes(p), vec![], "panel {k}: notes intersect");
        for n in &p.notes {
            let r = n.rect;
            assert!(
                (r.width() - NOTE_FACE.width(&n.text)).abs() < 1e-9
                    && (r.height() - NOTE_FACE.size).abs() < 1e-9,
                "{n:?}: its box is not its text's"
            );
            assert!(
                l.texts
                    .iter()
                    .any(|t| t.text == n.text && t.bounds() == r && !t.rotated),
                "{n:?} is drawn where it was placed"
            );
            assert!(p.plot.contains(&r), "panel {k}: {n:?} leaves the plot");
            for s in &p.series {
                for &(x, y) in &s.markers {
                    let marker =
                        tokenomics_plot::layout::Rect::new(x, y, x, y).inflate(MARKER_RADIUS);
                    assert!(
                        !r.intersects(&marker),
                        "panel {k}: {n:?} covers a marker at {x},{y}"
                    );
                }
                for line in &s.lines {
                    for w in line.windows(2) {
                        assert!(!r.crosses(w[0], w[1]), "panel {k}: {n:?} sits on a line");
                    }
                }
                for wh in &s.whiskers {
                    for (a, b) in wh.segments() {
                        assert!(!r.crosses(a, b), "panel {k}: {n:?} sits on a whisker");
                    }
                }
            }
            if let Some(legend) = &p.legend {
                assert!(
                    !r.intersects(&legend.rect),
                    "panel {k}: {n:?} under the legend"
                );
            }
            for g in &p.gaps {
                assert!(!r.intersects(&g.rect), "panel {k}: {n:?} on a gap");
            }
        }
    }
}

/// Mean ± std is a band that contains its line; percentiles are whiskers at or above the p50,
/// never a band.
fn assert_spreads_drawn_as_what_they_are(figure: &Figure, l: &Layout) {
    for (panel, pl) in figure.panels.iter().zip(&l.panels) {
        for s in &panel.series {
            for p in &s.points {
                if let Some((lo, hi)) = p.range {
                    match panel.spread {
                        Spread::StdDev => assert!(lo <= p.y && p.y <= hi, "{p:?} outside its band"),
                        Spread::Percentiles => assert!(lo <= hi, "{p:?}"),
                    }
                }
            }
        }
        let bands = pl
            .series
            .iter()
            .map(|s| s.bands.len() + s.bars.len())
            .sum::<usize>();
        let whiskers = pl.series.iter().map(|s| s.whiskers.len()).sum::<usize>();
        match panel.spread {
            Spread::StdDev => assert_eq!(whiskers, 0, "{}", panel.title),
            Spread::Percentiles => {
                assert_eq!(bands, 0, "{}", panel.title);
                // And the legend says what the whiskers are.
                let legend = pl.legend.as_ref().expect("a legend for whiskers");
                assert!(legend
                    .entries
                    .iter()
                    .any(|e| e.label.starts_with("p90–p99")));
            }
        }
    }
}

fn notes(panel: &Panel) -> Vec<String> {
    panel.series[0]
        .points
        .iter()
        .map(|p| p.note.clone().unwrap())
        .collect()
}

fn panel<'a>(figure: &'a Figure, y_label: &str) -> &'a Panel {
    figure
        .panels
        .iter()
        .find(|p| p.y_label == y_label)
        .unwrap_or_else(|| panic!("no panel {y_label:?}"))
}

#[test]
fn original_chat_file() {
    let figure = check(&["original_chat.json"], None, 2).figure;
    assert_eq!(figure.title, "Deepseek R1 distill 8B TP8 A100s");
    let p = &figure.panels[0];
    assert_eq!(p.x.tick_labels(), ["1", "8", "64"]);
    assert_eq!(p.x_label, "batch size (concurrent requests)");
    assert_eq!(notes(p), ["182 ± 1", "1500 ± 51", "3729 ± 122"]);
}

#[test]
fn streamed_chat_file_adds_latency_panels() {
    let figure = check(&["chat_streamed.json"], None, 4).figure;
    assert_eq!(figure.columns, 2);
    let ttft = panel(&figure, "TTFT (ms)");
    assert_eq!(ttft.unit, Unit::Milliseconds);
    assert_eq!(ttft.spread, Spread::Percentiles);
    assert!(notes(ttft)
        .iter()
        .all(|n| n.ends_with(" ms") && !n.contains('k')));
    assert_eq!(panel(&figure, "ITL (ms)").spread, Spread::Percentiles);
    assert_eq!(figure.panels[0].x.levels().len(), 8, "eight batch sizes");
    // p50 is the line; p90 and p99 are its whisker, not a band around it.
    let p = &ttft.series[0].points[7];
    let (p90, p99) = p.range.unwrap();
    assert!(p.y < p90 && p90 < p99, "{p:?}");
}

#[test]
fn original_embedding_file() {
    let figure = check(&["original_embed.json"], None, 4).figure;
    assert_eq!(
        figure.panels[0].series.len(),
        2,
        "one line per sequence length"
    );
    assert_eq!(figure.panels[0].series[1].label, "200 words");
    assert!(matches!(figure.panels[0].x, XAxis::Log2(_)));
    // Batch time in milliseconds, not `0.0204 ± 0.00102` seconds.
    let time = panel(&figure, "batch time (ms)");
    assert_eq!(notes(time)[0], "20.4 ± 1.0 ms");
    panel(&figure, "slowest request (ms)");
}

#[test]
fn embedding_file_with_latency() {
    let plotted = check(&["embed_latency.json"], None, 4);
    let figure = plotted.figure;
    assert_eq!(figure.panels[3].y_label, "latency (ms)");
    assert_eq!(figure.panels[0].series.len(), 4);
    // The four nearly coincident lines at batch 1–4 cannot all carry a note: some are left out
    // rather than drawn over each other (checked in `check`).
    let l = layout(&figure);
    assert!(l.panels[2].notes_dropped > 0);
    assert!(l.panels[2].notes.len() >= 12, "most notes still fit");
    assert!(plotted.warnings.is_empty(), "{:?}", plotted.warnings);
}

/// `embed-bench --max_concurrency 1,4,16 --sequence_lengths short,200 --num_runs 2` against the
/// simulator: the closed loop's levels are drawn (they were once "nothing to draw"), side by side
/// as concurrencies, and the panels say "whole run".
#[test]
fn embedding_closed_loop_levels_are_drawn_as_concurrencies() {
    let plotted = check(&["embed_closed_loop.json"], None, 4);
    let figure = &plotted.figure;
    assert!(plotted.warnings.is_empty(), "{:?}", plotted.warnings);
    let eps = &figure.panels[0];
    assert_eq!(
        eps.title,
        "Embedding throughput (whole run, mean ± std over runs)"
    );
    assert_eq!(eps.x_label, "concurrency (requests kept in flight)");
    assert!(matches!(eps.x, XAxis::Categories(_)));
    assert_eq!(eps.x.tick_labels(), ["1", "4", "16"]);
    let labels: Vec<&str> = eps.series.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["short", "200 words"]);
    // Every level of both lengths is a point, at the file's own figures.
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("embed_closed_loop.json")).unwrap()).unwrap();
    for (series, length) in eps.series.iter().zip(["short", "200"]) {
        assert_eq!(series.points.len(), 3, "{}", series.label);
        for (point, c) in series.points.iter().zip([1, 4, 16]) {
            let level = &doc["results"][format!("concurrency_{c}_seq_{length}")];
            let want = level["throughput"]["batch_embeddings_per_second"]["mean"]
                .as_f64()
                .unwrap();
            assert!(
                (point.y - want).abs() <= 1e-9 * want,
                "{c}: {} vs {want}",
                point.y
            );
        }
    }
    panel(figure, "run time (s)");
    assert_eq!(figure.panels[3].y_label, "latency (ms)");
}

/// An open loop's rates are the levels, named as rates.
#[test]
fn embedding_open_loop_levels_are_drawn_as_rates() {
    let figure = check(&["embed_open_loop.json"], None, 4).figure;
    let tps = &figure.panels[1];
    assert_eq!(
        tps.title,
        "Token throughput (whole run, mean ± std over runs)"
    );
    assert_eq!(tps.x_label, "request rate (requests/s)");
    assert_eq!(tps.x.tick_labels(), ["20", "50"]);
    assert_eq!(tps.series[0].points.len(), 2);
}

/// The original README's embedding command (batch sizes 1…512, one length): its batch-time
/// notes at 16, 32 and 64 used to run into each other; now every note of that panel fits.
#[test]
fn the_original_readme_embedding_command_draws_every_note_apart() {
    let figure = check(&["embed_readme_command.json"], None, 4).figure;
    let time = panel(&figure, "batch time (ms)");
    assert_eq!(
        time.x.tick_labels(),
        ["1", "8", "16", "32", "64", "128", "256", "512"]
    );
    assert_eq!(notes(time)[0], "6.67 ± 0.16 ms");
    let l = layout(&figure);
    assert_eq!(l.panels[2].notes.len(), 8);
    assert_eq!(l.panels[2].notes_dropped, 0);
}

/// The check of the tests above does fail on intersecting notes: move one note onto another.
#[test]
fn intersecting_notes_are_caught() {
    let plotted = plot_in_memory(&["embed_readme_command.json"]);
    let mut l = layout(&plotted.figure);
    let p = &mut l.panels[2];
    assert!(intersecting_notes(p).is_empty());
    let shifted = p.notes[2].rect;
    p.notes[3].rect = tokenomics_plot::layout::Rect::new(
        shifted.x0 + 5.0,
        shifted.y0 + 3.0,
        shifted.x0 + 5.0 + p.notes[3].rect.width(),
        shifted.y0 + 3.0 + p.notes[3].rect.height(),
    );
    assert_eq!(intersecting_notes(p), vec![(2, 3)]);
}

/// Builds the figure of fixture files without writing an image.
fn plot_in_memory(names: &[&str]) -> Plotted {
    let inputs: Vec<tokenomics_plot::Input> = names
        .iter()
        .map(|n| {
            let path = fixture(n);
            let document = tokenomics_plot::load(&path).unwrap();
            tokenomics_plot::Input {
                label: tokenomics_plot::default_label(&path, &document),
                document,
                path,
            }
        })
        .collect();
    tokenomics_plot::figure_for(&inputs, None).unwrap()
}

/// Chat with latency, open loop, one run: fractional rates drawn, the failed level a gap.
#[test]
fn open_loop_chat_with_a_failed_level_and_fractional_rates() {
    let plotted = check(&["chat_open_loop.json"], None, 4);
    let figure = &plotted.figure;
    for p in &figure.panels {
        assert_eq!(p.x.tick_labels(), ["0.5", "2.5", "10", "100.5"]);
        assert_eq!(p.x_label, "request rate (requests/s)");
        let s = &p.series[0];
        assert_eq!(s.gaps.len(), 1, "{}", p.title);
        assert_eq!(s.gaps[0].label, "10");
        assert!(s.points.iter().all(|pt| pt.level.label != "10"));
        assert_eq!(s.points.len(), 3, "{}", p.title);
    }
    // One run: the whole-run throughput has no spread, so no "± 0" and no band.
    let tps = panel(figure, "output tokens/s, whole run");
    assert_eq!(tps.title, "Throughput (whole run, mean ± std over runs)");
    assert_eq!(notes(tps), ["126", "611", "2290"]);
    assert!(tps.series[0].points.iter().all(|p| p.range.is_none()));
    // TTFT reaches 2.1 s (p99): the axis is in seconds, each note in its own unit.
    let ttft = panel(figure, "TTFT (s)");
    assert_eq!(ttft.unit, Unit::Seconds);
    assert_eq!(notes(ttft), ["7.1 ms", "9.3 ms", "1.31 s"]);
    assert_eq!(
        notes(panel(figure, "ITL (ms)")),
        ["6.2 ms", "6.4 ms", "12.1 ms"]
    );
    // The failed level is told about, with its cause.
    assert_eq!(figure.failed_levels.len(), 1);
    assert_eq!(figure.failed_levels[0].level, "10 requests/s");
    assert!(figure.failed_levels[0]
        .reason
        .starts_with("all 20 requests failed (http_status ×20: HTTP 500"));
    assert_eq!(plotted.warnings.len(), 1);
    assert!(
        plotted.warnings[0].ends_with("; drawn as a gap"),
        "{:?}",
        plotted.warnings
    );
    assert!(plotted.left_out.is_empty());
    // Drawn: the line stops before the gap (0.5–2.5), 100.5 stands alone; the gap is marked.
    let l = layout(figure);
    for p in &l.panels {
        let s = &p.series[0];
        assert_eq!(s.lines.len(), 1);
        assert_eq!(s.lines[0].len(), 2);
        assert_eq!(s.markers.len(), 3);
        assert_eq!(p.gaps.len(), 1);
        let (gx, _) = p.gaps[0].rect.center();
        assert!((gx - p.x_ticks[2]).abs() < 1.0, "the gap sits at level 10");
        assert_eq!(p.gaps[0].labels.len(), 1);
        assert!(p.gaps[0].rect.contains(&p.gaps[0].labels[0]));
        assert!(s.lines[0].iter().all(|&(x, _)| x < p.gaps[0].rect.x0));
    }
    let marks = l.texts.iter().filter(|t| t.text == "all failed").count();
    assert_eq!(marks, 4, "one mark per panel");
}

/// Chat without latency, bursts, one run, one failed batch size.
#[test]
fn burst_chat_with_a_failed_batch_size() {
    let plotted = check(&["chat_burst_failed.json"], None, 2);
    let figure = &plotted.figure;
    let tps = &figure.panels[0];
    assert_eq!(tps.x.tick_labels(), ["1", "4", "16", "64"]);
    assert_eq!(tps.series[0].gaps[0].label, "16");
    // A single value has no "± 0": one run for the batch, one request at batch 1.
    assert_eq!(notes(tps), ["159", "630", "8548"]);
    let per_request = &figure.panels[1];
    assert_eq!(notes(per_request)[0], "158");
    assert_eq!(notes(per_request)[1], "157 ± 2");
    for p in &figure.panels {
        for pt in &p.series[0].points {
            assert!(!pt.note.as_ref().unwrap().contains("± 0"), "{pt:?}");
        }
    }
    assert_eq!(figure.failed_levels[0].level, "batch size 16");
    assert!(figure.failed_levels[0].reason.contains("timeout ×16"));
}

/// Embeddings, one run, one failed batch size.
#[test]
fn embeddings_with_a_failed_batch_size() {
    let plotted = check(&["embed_failed.json"], None, 4);
    let figure = &plotted.figure;
    for p in &figure.panels {
        assert_eq!(p.series.len(), 1);
        assert_eq!(p.series[0].gaps.len(), 1);
        assert_eq!(p.series[0].gaps[0].label, "4");
    }
    let time = panel(figure, "batch time (ms)");
    assert_eq!(notes(time), ["6.8 ms", "9.1 ms", "21 ms"]);
    assert_eq!(
        figure.failed_levels[0].level,
        "batch size 4, sequence length 200"
    );
    let l = layout(figure);
    assert!(l
        .panels
        .iter()
        .all(|p| p.gaps.len() == 1 && p.series[0].lines.len() == 1));
}

#[test]
fn several_files_overlay_as_labelled_series() {
    let labels = vec!["original".to_string(), "simulated".to_string()];
    let figure = check(
        &["original_chat.json", "chat_streamed.json"],
        Some(&labels),
        4,
    )
    .figure;
    assert_eq!(figure.title, "Comparison of 2 result files");
    assert_eq!(figure.panels[0].series.len(), 2);
    let l = layout(&figure);
    for label in &labels {
        assert!(
            l.texts.iter().any(|t| &t.text == label),
            "legend entry {label}"
        );
    }
    // The union of batch sizes, in order.
    assert_eq!(
        figure.panels[0].x.tick_labels(),
        ["1", "2", "4", "8", "16", "32", "64", "128"]
    );
}

/// A file whose every level failed has nothing to draw: an error, nothing written. Beside a
/// file with data it is left out, and the caller is told.
#[test]
fn a_file_with_nothing_to_draw() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.png");
    let e = plot_files(&[fixture("chat_all_failed.json")], None, None, &out).unwrap_err();
    assert!(matches!(e, tokenomics_plot::Error::NothingToDraw(_)));
    assert!(
        e.to_string()
            .starts_with("nothing to draw: no request succeeded"),
        "{e}"
    );
    assert!(!out.exists());

    let plotted = plot_files(
        &[
            fixture("chat_burst_failed.json"),
            fixture("chat_all_failed.json"),
        ],
        None,
        None,
        &out,
    )
    .unwrap();
    assert_eq!(plotted.left_out, [fixture("chat_all_failed.json")]);
    assert_eq!(plotted.figure.panels[0].series.len(), 1);
    assert!(plotted
        .warnings
        .iter()
        .any(|w| w.ends_with("no request succeeded in any level; left out of the figure")));
    assert!(out.exists());
}

#[test]
fn svg_text_is_outlines_of_the_embedded_font() {
    let figure = plot_in_memory(&["chat_streamed.json"]).figure;
    let svg = render_svg(&figure).unwrap();
    assert!(svg.contains(r#"xmlns:xlink="http://www.w3.org/1999/xlink""#));
    assert!(svg.contains("<defs>") && svg.contains("<use xlink:href=\"#dejavu-r-"));
    assert!(svg_texts(&svg).iter().any(|t| t == "TTFT (ms)"));
    assert!(!svg.contains("<text") && !svg.contains("font-family"));
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

/// An output in a missing directory is one plain line, found before any input is read.
#[test]
fn an_unwritable_output_is_one_plain_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("no/such/dir/x.png");
    let e = plot_files(&[dir.path().join("missing.json")], None, None, &out).unwrap_err();
    assert!(matches!(e, tokenomics_plot::Error::Write { .. }));
    assert_eq!(
        e.to_string(),
        format!("cannot write {}: No such file or directory", out.display())
    );
}

/// Pairs of text runs of a figure (titles, ticks, axis labels, legend entries, notes, the labels
/// of rules and gaps) whose boxes intersect.
fn overlapping_texts(l: &Layout) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for (i, a) in l.texts.iter().enumerate() {
        for b in l.texts.iter().skip(i + 1) {
            if a.bounds().intersects(&b.bounds()) {
                pairs.push((a.text.clone(), b.text.clone()));
            }
        }
    }
    pairs
}

/// No two notes of a panel intersect, and no piece of text of the figure lies on another.
fn assert_nothing_overlaps(figure: &Figure) -> Layout {
    let l = layout(figure);
    for (k, p) in l.panels.iter().enumerate() {
        assert_eq!(intersecting_notes(p), vec![], "panel {k}: notes intersect");
    }
    assert_eq!(overlapping_texts(&l), Vec::<(String, String)>::new());
    assert_no_note_overlaps(&l);
    assert_eq!(overlapping_texts(&l), Vec::<(String, String)>::new());
    l
}

fn document(value: serde_json::Value) -> tokenomics_stats::AnyDocument {
    tokenomics_stats::AnyDocument::from_value(value).unwrap()
}

fn stat(mean: f64, std: f64) -> serde_json::Value {
    serde_json::json!({ "mean": mean, "std": std, "min": mean - std, "max": mean + std })
}

fn dist(p50: f64) -> serde_json::Value {
    serde_json::json!({ "count": 24, "mean": p50 * 1.05, "std": p50 * 0.1, "min": p50 * 0.8,
        "max": p50 * 1.7, "p50": p50, "p90": p50 * 1.3, "p95": p50 * 1.45, "p99": p50 * 1.6,
        "p99.9": p50 * 1.7 })
}

/// The original README's embedding command with every power of two from 1 to 512, one sequence
/// length, three runs: batch times of a few milliseconds at the small sizes, whose notes (at 16,
/// 32 and 64 in the issue) crowd on the log2 axis.
fn embed_powers_of_two() -> tokenomics_stats::AnyDocument {
    let template: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("embed_readme_command.json")).unwrap())
            .unwrap();
    let mut doc = template.clone();
    let sizes: Vec<u64> = (0..10).map(|k| 1 << k).collect();
    doc["metadata"]["batch_sizes"] = serde_json::json!(sizes);
    let mut results = serde_json::Map::new();
    for &b in &sizes {
        let mut level = template["results"]["batch_1_seq_200"].clone();
        let bf = b as f64;
        let t = 0.0060 + 0.00074 * bf;
        let rel = 0.024;
        level["tokens"]["total_per_batch"] = stat(260.0 * bf, 0.0);
        level["tokens"]["embeddings_per_batch"] = stat(bf, 0.0);
        for timing in ["batch_total_seconds", "slowest_seconds"] {
            level["timings"][timing] = stat(t, t * rel);
        }
        level["timings"]["fastest_seconds"] = stat(0.6 * t, t * rel);
        level["timings"]["spread_seconds"] = stat(0.4 * t, t * rel);
        level["throughput"]["batch_embeddings_per_second"] = stat(bf / t, bf / t * rel);
        level["throughput"]["batch_tokens_per_second"] = stat(260.0 * bf / t, 260.0 * bf / t * rel);
        level["latency"] = dist(0.85 * t);
        level["requests"] = serde_json::json!({ "succeeded": 3 * b, "failed": 0 });
        results.insert(format!("batch_{b}_seq_200"), level);
    }
    doc["results"] = serde_json::Value::Object(results);
    document(doc)
}

/// A streamed chat file of `n` batch sizes 1…n, throughput and latency growing with the level.
fn chat_many_levels(n: u64, speed: f64) -> tokenomics_stats::AnyDocument {
    let template: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("chat_streamed.json")).unwrap()).unwrap();
    let mut doc = template.clone();
    doc["metadata"]["batch_sizes"] = serde_json::json!((1..=n).collect::<Vec<_>>());
    let mut results = serde_json::Map::new();
    for c in 1..=n {
        let cf = c as f64;
        let mut level = template["results"]["8"].clone();
        let batch = speed * 150.0 * cf.powf(0.8);
        let request = speed * 150.0 / (1.0 + 0.02 * cf);
        level["throughput"]["batch_tokens_per_second"] = stat(batch, 0.04 * batch);
        level["throughput"]["request_tokens_per_second"] = stat(request, 0.02 * request);
        level["latency"]["ttft"] = dist((0.02 + 0.003 * cf) / speed);
        level["latency"]["itl"] = dist((0.006 + 0.0002 * cf) / speed);
        results.insert(c.to_string(), level);
    }
    doc["results"] = serde_json::Value::Object(results);
    document(doc)
}

fn figure_of(docs: Vec<(&str, tokenomics_stats::AnyDocument)>) -> Figure {
    let inputs: Vec<tokenomics_plot::Input> = docs
        .into_iter()
        .map(|(label, document)| tokenomics_plot::Input {
            label: label.to_string(),
            document,
            path: PathBuf::from(format!("{label}.json")),
        })
        .collect();
    tokenomics_plot::figure_for(&inputs, None).unwrap().figure
}

/// Issue #23: batch sizes 1, 2, 4, …, 512 of one length. Every note's box is computed; none
/// intersects another, and no text of the figure lies on other text; the batch times read in
/// milliseconds with a two-digit spread.
#[test]
fn embedding_batch_sizes_1_to_512_have_no_overlapping_notes() {
    let figure = figure_of(vec![("powers of two", embed_powers_of_two())]);
    let time = panel(&figure, "batch time (ms)");
    assert_eq!(time.x.levels().len(), 10);
    assert_eq!(notes(time)[0], "6.74 ± 0.16 ms");
    assert_eq!(notes(time)[4], "17.84 ± 0.43 ms", "batch size 16");
    let l = assert_nothing_overlaps(&figure);
    // Most notes are drawn: a note is left out only where it fits nowhere.
    for (k, p) in l.panels.iter().enumerate() {
        assert!(p.notes.len() >= 7, "panel {k}: {} notes", p.notes.len());
    }
}

/// Many levels, two files overlaid, four panels with whiskers and bands: no note on another,
/// no text on other text.
#[test]
fn chat_with_many_levels_has_no_overlapping_text() {
    let one = figure_of(vec![("one", chat_many_levels(24, 1.0))]);
    assert_eq!(one.panels[0].x.levels().len(), 24);
    assert_nothing_overlaps(&one);
    let two = figure_of(vec![
        ("fast", chat_many_levels(24, 1.0)),
        ("slow", chat_many_levels(16, 0.8)),
    ]);
    let l = assert_nothing_overlaps(&two);
    assert!(l.panels.iter().all(|p| !p.notes.is_empty()));
}

/// The check above fails when text lies on text: a note moved onto its neighbour.
#[test]
fn overlapping_text_is_caught() {
    let figure = figure_of(vec![("powers of two", embed_powers_of_two())]);
    let mut l = layout(&figure);
    assert!(overlapping_texts(&l).is_empty());
    let p = &l.panels[2];
    let (a, b) = (p.notes[0].clone(), p.notes[1].clone());
    let moved = l
        .texts
        .iter()
        .position(|t| t.text == b.text && t.bounds() == b.rect)
        .unwrap();
    l.texts[moved].x = a.rect.x0 + 3.0;
    l.texts[moved].y = a.rect.y0 + 2.0;
    assert!(overlapping_texts(&l).contains(&(a.text.clone(), b.text.clone())));
}
