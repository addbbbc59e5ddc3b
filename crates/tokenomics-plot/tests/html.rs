//! The one-file HTML report, parsed back as XML: well-formed, one `<svg>` per figure with ids
//! unique in the page, the summary table's values for a known document, the metadata and the
//! errors by kind, every string from a file escaped, nothing fetched from elsewhere.

use std::path::PathBuf;

use roxmltree::{Document, Node, ParsingOptions};
use tokenomics_plot::html::{self, Report};
use tokenomics_plot::{default_label, load, Input};
use tokenomics_stats::AnyDocument;

fn fixture(name: &str) -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let local = here.join("tests/fixtures").join(name);
    if local.exists() {
        local
    } else {
        here.join("../tokenomics-stats/tests/fixtures").join(name)
    }
}

fn input(name: &str) -> Input {
    let path = fixture(name);
    let document = load(&path).unwrap();
    Input {
        label: default_label(&path, &document),
        document,
        path,
    }
}

fn parse(html: &str) -> Document<'_> {
    let options = ParsingOptions {
        allow_dtd: true,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(html, options)
        .unwrap_or_else(|e| panic!("the report is not well-formed: {e}"))
}

/// Every piece of text under `node`, in order.
fn text(node: Node) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect()
}

fn elements<'a, 'i>(doc: &'a Document<'i>, name: &str) -> Vec<Node<'a, 'i>> {
    doc.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == name)
        .collect()
}

/// A summary table as (headers, rows of cell texts).
fn summary(doc: &Document) -> Vec<(Vec<String>, Vec<Vec<String>>)> {
    doc.descendants()
        .filter(|n| n.has_tag_name("table") && n.attribute("class") == Some("summary"))
        .map(|t| {
            let headers = t
                .descendants()
                .filter(|n| n.has_tag_name("th"))
                .map(text)
                .collect();
            let rows = t
                .descendants()
                .filter(|n| n.has_tag_name("tr"))
                .filter(|tr| tr.children().any(|c| c.has_tag_name("td")))
                .map(|tr| {
                    tr.children()
                        .filter(|c| c.has_tag_name("td"))
                        .map(text)
                        .collect()
                })
                .collect();
            (headers, rows)
        })
        .collect()
}

/// The cell of column `column` in the row whose first cell is `level`.
fn cell(table: &(Vec<String>, Vec<Vec<String>>), level: &str, column: &str) -> String {
    let (headers, rows) = table;
    let i = headers
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("no column {column:?} in {headers:?}"));
    let row = rows
        .iter()
        .find(|r| r[0] == level)
        .unwrap_or_else(|| panic!("no level {level:?}"));
    row[i].clone()
}

/// The metadata of the `n`th file section: (term, definition) pairs.
fn meta(doc: &Document, n: usize) -> Vec<(String, String)> {
    let dl = doc
        .descendants()
        .filter(|d| d.has_tag_name("dl"))
        .nth(n)
        .expect("a metadata list");
    let terms: Vec<String> = dl
        .children()
        .filter(|c| c.has_tag_name("dt"))
        .map(text)
        .collect();
    let defs: Vec<String> = dl
        .children()
        .filter(|c| c.has_tag_name("dd"))
        .map(text)
        .collect();
    assert_eq!(terms.len(), defs.len());
    terms.into_iter().zip(defs).collect()
}

fn meta_value(doc: &Document, n: usize, term: &str) -> String {
    meta(doc, n)
        .into_iter()
        .find(|(t, _)| t == term)
        .unwrap_or_else(|| panic!("no {term:?} in the metadata"))
        .1
}

/// Nothing in the page is fetched or run: no script, no stylesheet, image or frame from a
/// path or a URL; the glyphs are referenced within the page only, and each id once.
fn assert_self_contained(doc: &Document, report: &Report) {
    for tag in ["script", "link", "img", "iframe", "object", "embed"] {
        assert!(elements(doc, tag).is_empty(), "a <{tag}> in the report");
    }
    let mut ids = std::collections::HashSet::new();
    for n in doc.descendants().filter(|n| n.is_element()) {
        for a in n.attributes() {
            assert!(a.name() != "src", "a src attribute");
            if a.name() == "href" {
                assert!(
                    a.value().starts_with('#'),
                    "a link out of the page: {}",
                    a.value()
                );
            }
            if a.name() == "id" {
                assert!(ids.insert(a.value().to_string()), "id {} twice", a.value());
            }
        }
    }
    assert!(!report.html.contains("url("), "CSS that fetches");
    assert_eq!(
        elements(doc, "svg").len(),
        report.figures,
        "one <svg> per figure"
    );
}

#[test]
fn a_streamed_run_reports_its_figures_table_and_metadata() {
    let report = html::report(&[input("chat_streamed.json")], None).unwrap();
    let doc = parse(&report.html);
    // The throughput figure and the frontier (no timeline block in this file).
    assert_eq!(report.figures, 2);
    assert_self_contained(&doc, &report);
    assert!(report.html.starts_with("<!DOCTYPE html>"));
    let title = "Simulated H100, Llama 3.1 8B (oai-sim preset h100-llama-3.1-8b)";
    assert_eq!(text(elements(&doc, "title")[0]), title);
    assert_eq!(text(elements(&doc, "h1")[0]), title);

    // The figures the console summary shows, rounded as it rounds them.
    let tables = summary(&doc);
    assert_eq!(tables.len(), 1);
    let t = &tables[0];
    assert_eq!(
        t.0,
        [
            "level", "mode", "ok", "failed", "tok/s", "TTFT p50", "TTFT p99", "ITL p50", "ITL p99",
            "TPOT p50", "E2EL p50", "E2EL p99"
        ]
    );
    assert_eq!(t.1.len(), 8, "one row per level");
    assert_eq!(cell(t, "1", "tok/s"), "160.4");
    assert_eq!(cell(t, "1", "TTFT p50"), "6.81");
    assert_eq!(cell(t, "8", "tok/s"), "1011");
    assert_eq!(cell(t, "8", "TTFT p50"), "43.69");
    assert_eq!(cell(t, "8", "ok"), "24");
    assert_eq!(cell(t, "128", "mode"), "burst");

    assert_eq!(meta_value(&doc, 0, "model"), "llama-3.1-8b");
    assert_eq!(meta_value(&doc, 0, "server"), "http://127.0.0.1:45259/v1");
    assert_eq!(meta_value(&doc, 0, "date"), "2026-11-27T22:20:36.440095");
    assert_eq!(meta_value(&doc, 0, "tool"), "tokenomics 0.1.0");
    assert_eq!(meta_value(&doc, 0, "runs per level"), "3 (after 3 warm-up)");
    assert_eq!(meta_value(&doc, 0, "streamed"), "yes");
    assert!(report.html.contains("<p>No request failed.</p>"));
}

#[test]
fn strings_from_a_file_are_escaped() {
    let mut hostile = input("chat_burst_failed.json");
    let model = r#"</dd><script>alert("model")</script><dd>"#;
    let description = r#"<b onload='x'>Bold & "quoted"</b>"#;
    let message = "<img src=x onerror=alert(1)> & more";
    match &mut hostile.document {
        AnyDocument::Chat(d) => {
            d.metadata.model = model.into();
            d.metadata.description = description.into();
            d.metadata.api_base = "http://127.0.0.1:1/v1?a=1&b=<2>".into();
            let counts = d.results["16"].requests.as_mut().unwrap();
            counts.errors["timeout"].first_message = message.into();
        }
        AnyDocument::Embed(_) => unreachable!(),
    }
    hostile.label = description.into();
    let report = html::report(&[hostile], None).unwrap();
    let doc = parse(&report.html);
    assert_self_contained(&doc, &report);
    // Read back as text, each string is what the file held.
    assert_eq!(meta_value(&doc, 0, "model"), model);
    assert_eq!(meta_value(&doc, 0, "description"), description);
    assert_eq!(
        meta_value(&doc, 0, "server"),
        "http://127.0.0.1:1/v1?a=1&b=<2>"
    );
    assert_eq!(text(elements(&doc, "h1")[0]), description);
    assert_eq!(text(elements(&doc, "title")[0]), description);
    for tag in ["b", "dd"] {
        // No element came from the strings: the only <dd> are the metadata's.
        let n = elements(&doc, tag).len();
        assert_eq!(n, if tag == "dd" { meta(&doc, 0).len() } else { 0 });
    }
    // The SVG's title and text runs carry the description escaped too.
    let svg_title = elements(&doc, "svg")[0]
        .children()
        .find(|c| c.has_tag_name("title"))
        .unwrap();
    assert_eq!(text(svg_title), description);

    // The errors by kind, with the hostile message as text.
    let errors = doc
        .descendants()
        .find(|n| n.has_tag_name("table") && n.attribute("class") == Some("errors"))
        .expect("an errors table");
    let row: Vec<String> = errors
        .descendants()
        .filter(|n| n.has_tag_name("td"))
        .map(text)
        .collect();
    assert_eq!(row, ["16", "timeout", "16", message]);
    // The level in which everything failed is a gap in the figure, and said so.
    assert!(report.warnings.iter().any(|w| w.contains("drawn as a gap")));
}

#[test]
fn embedding_files_report_their_own_columns() {
    let report = html::report(&[input("embed_latency.json")], None).unwrap();
    let doc = parse(&report.html);
    assert_eq!(report.figures, 1, "no frontier or timeline for embeddings");
    assert_self_contained(&doc, &report);
    let tables = summary(&doc);
    let t = &tables[0];
    assert!(t.0.iter().any(|h| h == "embeddings/s"), "{:?}", t.0);
    assert!(!t.0.iter().any(|h| h == "TTFT p50"));
    assert_eq!(cell(t, "batch_1_seq_short", "embeddings/s"), "127.2");
    assert_eq!(cell(t, "batch_1_seq_short", "latency p50"), "7.84");
    assert_eq!(cell(t, "batch_1_seq_short", "ok"), "3");
    assert!(meta_value(&doc, 0, "sequence lengths").contains("short"));
}

/// `embed-bench`'s closed and open loops report with their figure and their levels named as what
/// they are.
#[test]
fn embedding_loops_report_their_levels() {
    let report = html::report(&[input("embed_closed_loop.json")], None).unwrap();
    let doc = parse(&report.html);
    assert_eq!(report.figures, 1);
    assert_self_contained(&doc, &report);
    assert_eq!(meta_value(&doc, 0, "concurrencies"), "1, 4, 16");
    let tables = summary(&doc);
    assert_eq!(cell(&tables[0], "concurrency_16_seq_200", "ok"), "320");
    // A loop's time and tokens are its whole run's, and are named so (not "batch").
    assert_eq!(cell(&tables[0], "concurrency_16_seq_200", "run s"), "1.07");
    assert_eq!(
        cell(&tables[0], "concurrency_16_seq_200", "tokens/run"),
        "33919"
    );
    assert!(
        !tables[0].0.iter().any(|h| h.contains("batch")),
        "{:?}",
        tables[0].0
    );
    assert!(report.html.contains("run length in seconds"));
    let report = html::report(&[input("embed_open_loop.json")], None).unwrap();
    let doc = parse(&report.html);
    assert_eq!(meta_value(&doc, 0, "request rates (req/s)"), "20, 50");
    assert!(summary(&doc)[0].0.iter().any(|h| h == "run s"));
    // A burst's are its batch's.
    let report = html::report(&[input("embed_latency.json")], None).unwrap();
    let headers = &summary(&parse(&report.html))[0].0;
    assert!(headers.iter().any(|h| h == "batch s"), "{headers:?}");
    assert!(!headers.iter().any(|h| h == "run s"), "{headers:?}");
}

#[test]
fn the_original_scripts_files_without_optional_blocks_report() {
    // A chat file without latencies has its frontier from request tokens/s.
    for (name, figures) in [("original_chat.json", 2), ("original_embed.json", 1)] {
        let report = html::report(&[input(name)], None).unwrap();
        let doc = parse(&report.html);
        assert_self_contained(&doc, &report);
        assert_eq!(report.figures, figures, "{name}");
        assert_eq!(meta_value(&doc, 0, "tool"), "the original Python script");
        assert!(
            report.html.contains("does not count failed requests"),
            "{name}"
        );
        let tables = summary(&doc);
        assert!(!tables[0].1.is_empty(), "{name}: rows");
    }
    // The timeline is not attempted without a timeline block.
    let report = html::report(&[input("original_chat.json")], None).unwrap();
    assert!(!report.html.contains("timeline is not drawn"));
}

#[test]
fn several_files_are_overlaid_with_a_section_each() {
    let inputs = [input("frontier_h100.json"), input("frontier_a100.json")];
    let report = html::report(&inputs, Some("H100 against A100")).unwrap();
    let doc = parse(&report.html);
    assert_self_contained(&doc, &report);
    assert_eq!(report.figures, 2);
    assert_eq!(text(elements(&doc, "h1")[0]), "H100 against A100");
    let sections: Vec<Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("section") && n.attribute("class") == Some("file"))
        .collect();
    assert_eq!(sections.len(), 2);
    assert_eq!(summary(&doc).len(), 2);
    // Both files' series are in each figure: their labels are in every legend.
    for svg in elements(&doc, "svg") {
        let labels: Vec<&str> = svg
            .descendants()
            .filter_map(|n| n.attribute("aria-label"))
            .collect();
        for i in &inputs {
            assert!(
                labels.contains(&i.label.as_str()),
                "{} in the legend",
                i.label
            );
        }
    }
}

#[test]
fn a_timeline_block_adds_the_run_over_time() {
    let report = html::report(&[input("chat_timeline.json")], None).unwrap();
    let doc = parse(&report.html);
    assert_self_contained(&doc, &report);
    let captions: Vec<String> = elements(&doc, "figcaption").into_iter().map(text).collect();
    assert!(
        captions.iter().any(|c| c == "The run over time"),
        "{captions:?}"
    );
}

#[test]
fn a_report_path_must_say_html_and_nothing_is_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.json");
    std::fs::write(&results, b"{}").unwrap();
    let e = html::write_report(&[input("chat_streamed.json")], None, &results).unwrap_err();
    assert!(matches!(e, tokenomics_plot::Error::HtmlFormat(_)), "{e}");
    assert_eq!(std::fs::read(&results).unwrap(), b"{}");

    let out = dir.path().join("report.HTML");
    let r = html::write_report(&[input("chat_streamed.json")], None, &out).unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), r.html);
}

#[test]
fn mixed_kinds_are_refused_as_for_the_images() {
    let e = html::report(
        &[input("chat_streamed.json"), input("embed_latency.json")],
        None,
    )
    .unwrap_err();
    assert!(matches!(e, tokenomics_plot::Error::Mixed(_)), "{e}");
}

#[test]
fn a_levels_client_load_warnings_are_notes_of_its_file() {
    let load = |warning: &str| tokenomics_stats::ClientLoadBlock {
        seconds: 12.0,
        cpu_cores: Some(0.97),
        worker_threads: 1,
        stolen_share: Some(0.01),
        simulator_in_process: false,
        warnings: vec![warning.to_string()],
    };
    let mut chat = input("chat_streamed.json");
    let mut embed = input("embed_latency.json");
    let busy = "the client used 0.97 CPU cores over this level with 1 worker thread(s) <&>";
    match (&mut chat.document, &mut embed.document) {
        (AnyDocument::Chat(c), AnyDocument::Embed(e)) => {
            let (key, level) = c.results.iter_mut().next().unwrap();
            level.client_load = Some(load(busy));
            let chat_key = key.clone();
            let (key, level) = e.results.iter_mut().next().unwrap();
            level.client_load = Some(load("the hypervisor took 7.0% of this machine's CPU time"));
            let embed_key = key.clone();
            for (input, key, says) in [
                (&chat, chat_key, busy),
                (&embed, embed_key, "the hypervisor took 7.0%"),
            ] {
                let notes = warn_notes(std::slice::from_ref(input));
                let want = format!("Level {key}: {says}");
                assert!(
                    notes.iter().any(|n| n.starts_with(&want)),
                    "{want:?} not in {notes:?}"
                );
            }
        }
        _ => unreachable!(),
    }
    // A merged run: each shard's warnings, named by shard and machine.
    let mut merged = input("chat_streamed.json");
    if let AnyDocument::Chat(d) = &mut merged.document {
        let shard = |index: u32, warning: Option<&str>| tokenomics_stats::MergedShard {
            index,
            host: format!("load-{index}"),
            late_seconds: 0.0,
            requests: 10,
            file: format!("shard-{index}-of-2.json"),
            client_load: warning
                .map(|w| ("16".to_string(), load(w)))
                .into_iter()
                .collect(),
        };
        d.metadata.merged = Some(tokenomics_stats::MergedBlock {
            count: 2,
            config_hash: "abc".into(),
            start_at: 0.0,
            start_skew_seconds: 0.0,
            shards: vec![
                shard(0, None),
                shard(1, Some("the hypervisor took 9.0% <x>")),
            ],
        });
    }
    let notes = warn_notes(&[merged]);
    assert_eq!(
        notes,
        ["Shard 1 (load-1), level 16: the hypervisor took 9.0% <x>."],
        "{notes:?}"
    );

    // Without warnings, no such note.
    let notes = warn_notes(&[input("chat_streamed.json")]);
    assert!(
        !notes.iter().any(|n| n.starts_with("Level ")),
        "a note without a warning: {notes:?}"
    );
}

/// The text of every warning note of the report of `inputs`.
fn warn_notes(inputs: &[Input]) -> Vec<String> {
    let report = html::report(inputs, None).unwrap();
    let doc = parse(&report.html);
    doc.descendants()
        .filter(|n| n.has_tag_name("p") && n.attribute("class") == Some("note warn"))
        .map(text)
        .collect()
}
