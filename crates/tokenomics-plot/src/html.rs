//! The one-file HTML report: every figure of a set of result files inlined as SVG, and per file
//! its metadata, the per-level summary table and the failures by kind.
//!
//! The page needs nothing but itself: no script, no stylesheet or font from elsewhere (the CSS is
//! inline, the figures' text is the embedded font's glyph outlines), so it reads the same offline,
//! attached to a ticket, or years later. Every string taken from a result file (model names,
//! descriptions, error messages, level keys) is HTML-escaped, and the page is well-formed XML as
//! well as HTML, so that a test can parse it with an XML parser.
//!
//! The figures are those `plot-throughput` draws from the same files: the throughput figure
//! (always), the throughput–interactivity frontier (chat files whose levels have a point on it)
//! and the run over time (chat files whose levels carry a `timeline` block). Several files are
//! overlaid in each figure as in the PNG, and each file has a section of its own below them.
//!
//! Each file's notes include every level's `client_load` warnings (the client busy, or time
//! stolen by the hypervisor, during that level), so a figure drawn from doubtful levels says so.
//!
//! The summary table has the columns of `oai-bench`'s console and Markdown summary (chat), or of
//! `embed-bench`'s per-configuration summary (embeddings), with the same rounding; columns that
//! no level fills are left out, as there.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use tokenomics_stats::table::{self, num, Cell};
use tokenomics_stats::{
    AnyDocument, ChatDocument, ClientLoadBlock, Distribution, EmbedDocument, EmbedLevel, Mode,
    RequestCounts,
};

use crate::figures::Figure;
use crate::layout::layout;
use crate::{chart, figure_for, frontier_for, timeline_for, Error, Input, Result};

/// A report ready to be written, and what the user should hear about it.
#[derive(Debug, Clone)]
pub struct Report {
    /// The whole page, UTF-8.
    pub html: String,
    /// How many figures the page inlines (one `<svg>` element each).
    pub figures: usize,
    /// One line each: levels drawn as gaps, files left out of a figure, figures not drawn.
    pub warnings: Vec<String>,
    /// Files in which no request succeeded: left out of the figures (their sections, with their
    /// errors, are still in the page). A caller should not report plain success.
    pub left_out: Vec<PathBuf>,
}

/// Builds the report of `inputs` (all chat or all embedding files, as for [`figure_for`]),
/// titled `title` or after the single file's label. Errors as [`figure_for`]'s: mixed kinds, or
/// no request succeeded in any file.
pub fn report(inputs: &[Input], title: Option<&str>) -> Result<Report> {
    let main = figure_for(inputs, title)?;
    let mut warnings = main.warnings.clone();
    let mut figures: Vec<(Figure, &str)> = vec![(main.figure, "Throughput against the load")];
    let mut not_drawn = Vec::new();
    let chat = inputs
        .iter()
        .all(|i| matches!(i.document, AnyDocument::Chat(_)));
    if chat {
        match frontier_for(inputs, title) {
            Ok(p) => figures.push((p.figure, "The throughput–interactivity frontier")),
            Err(e) => not_drawn.push(format!("The frontier is not drawn: {e}.")),
        }
        let has_timeline = inputs.iter().any(|i| match &i.document {
            AnyDocument::Chat(d) => d.results.values().any(|l| l.timeline.is_some()),
            AnyDocument::Embed(_) => false,
        });
        if has_timeline {
            match timeline_for(inputs, title) {
                Ok(p) => {
                    warnings.extend(p.warnings);
                    figures.push((p.figure, "The run over time"));
                }
                Err(e) => not_drawn.push(format!("The timeline is not drawn: {e}.")),
            }
        }
    }
    let page_title = figures[0].0.title.clone();
    let mut html = String::with_capacity(256 * 1024);
    head(&mut html, &page_title);
    let _ = writeln!(html, "<h1>{}</h1>", escape(&page_title));
    let _ = writeln!(
        html,
        "<p class=\"lead\">{} result file{}, drawn by tokenomics-plot {}.</p>",
        inputs.len(),
        if inputs.len() == 1 { "" } else { "s" },
        env!("CARGO_PKG_VERSION")
    );
    html.push_str("<section id=\"figures\">\n<h2>Figures</h2>\n");
    for (n, (figure, caption)) in figures.iter().enumerate() {
        // Each figure's glyph ids get a prefix of their own: ids are unique in the page.
        let svg = chart::svg_with_ids(&layout(figure), &format!("f{n}-"))?;
        let _ = writeln!(
            html,
            "<figure>\n{}\n<figcaption>{}</figcaption>\n</figure>",
            svg.trim_end(),
            escape(caption)
        );
    }
    for line in &not_drawn {
        let _ = writeln!(html, "<p class=\"note\">{}</p>", escape(line));
    }
    html.push_str("</section>\n");
    for (n, input) in inputs.iter().enumerate() {
        file_section(&mut html, n, input);
    }
    html.push_str("</body>\n</html>\n");
    warnings.extend(not_drawn);
    Ok(Report {
        html,
        figures: figures.len(),
        warnings,
        left_out: main.left_out,
    })
}

/// Builds the report of `inputs` and writes it to `output` (which must end in `.html` or `.htm`),
/// atomically; the path is checked before anything is drawn.
pub fn write_report(inputs: &[Input], title: Option<&str>, output: &Path) -> Result<Report> {
    check_path(output)?;
    tokenomics_stats::check_writable(output)?;
    let r = report(inputs, title)?;
    tokenomics_stats::write_atomic(output, r.html.as_bytes())?;
    Ok(r)
}

/// Refuses a report path that does not end in `.html` or `.htm` (so that a result file given in
/// the wrong place is never overwritten).
pub fn check_path(output: &Path) -> Result<()> {
    match output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("html" | "htm") => Ok(()),
        _ => Err(Error::HtmlFormat(output.to_path_buf())),
    }
}

/// `s` with `&`, `<`, `>`, `"` and `'` replaced by their character references: safe in text and
/// in attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body { font-family: 'DejaVu Sans', Verdana, sans-serif; color: #1a1a1a; margin: 2em auto;
  max-width: 1200px; padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
.lead, .path, .note { color: #555; }
.path { font-family: monospace; }
figure { margin: 1.5em 0; }
figure svg { width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; text-align: center; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1.5em; }
dl.meta dt { font-weight: bold; }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafafa; }
.warn { color: #a00; }
";

fn head(html: &mut String, title: &str) {
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n\
         <meta name=\"generator\" content=\"tokenomics-plot {}\"/>\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        env!("CARGO_PKG_VERSION"),
        escape(title)
    );
}

/// One file's section: metadata, notes, the summary table and the errors.
fn file_section(html: &mut String, n: usize, input: &Input) {
    let _ = writeln!(
        html,
        "<section class=\"file\" id=\"file-{}\">\n<h2>{}</h2>\n<p class=\"path\">{}</p>",
        n + 1,
        escape(&input.label),
        escape(&input.path.display().to_string())
    );
    let (meta, notes, table, errors) = match &input.document {
        AnyDocument::Chat(d) => (
            chat_meta(d),
            chat_notes(d),
            chat_table(d),
            errors(d.results.iter().map(|(k, l)| (k, l.requests.as_ref()))),
        ),
        AnyDocument::Embed(d) => (
            embed_meta(d),
            embed_notes(d),
            embed_table(d),
            errors(d.results.iter().map(|(k, l)| (k, l.requests.as_ref()))),
        ),
    };
    html.push_str("<dl class=\"meta\">\n");
    for (name, value) in meta {
        let _ = writeln!(html, "<dt>{}</dt><dd>{}</dd>", escape(name), escape(&value));
    }
    html.push_str("</dl>\n");
    for note in notes {
        let _ = writeln!(html, "<p class=\"note warn\">{}</p>", escape(&note));
    }
    html.push_str("<h3>Summary</h3>\n");
    html.push_str(&table);
    html.push_str("<h3>Errors by kind</h3>\n");
    html.push_str(&errors);
    html.push_str("</section>\n");
}

/// The metadata people look for first, then the run's configuration; absent fields are left out.
fn chat_meta(d: &ChatDocument) -> Vec<(&'static str, String)> {
    let m = &d.metadata;
    let mut v = vec![
        ("model", m.model.clone()),
        ("server", m.api_base.clone()),
        ("date", m.timestamp.clone()),
        ("tool", tool(m.tool.as_deref())),
    ];
    if !m.description.trim().is_empty() {
        v.push(("description", m.description.clone()));
    }
    if let Some(s) = &m.simulated {
        v.push((
            "simulated",
            format!("preset {}, time scale {}", s.preset, s.time_scale),
        ));
    }
    v.push(("mode", m.mode.unwrap_or(Mode::Burst).name().to_string()));
    let levels = m
        .levels
        .clone()
        .unwrap_or_else(|| m.batch_sizes.iter().map(u64::to_string).collect());
    v.push(("levels", levels.join(", ")));
    v.push((
        "runs per level",
        format!("{} (after {} warm-up)", m.num_runs, m.warmup_runs),
    ));
    v.push(("prompts", m.dataset_key.clone()));
    v.push(("max tokens", m.max_tokens.to_string()));
    v.push(("temperature", m.temperature.to_string()));
    v.push(("seed", m.seed.to_string()));
    if let Some(e) = &m.endpoint {
        v.push(("endpoint", e.clone()));
    }
    if let Some(s) = m.stream {
        v.push(("streamed", yes_no(s)));
    }
    if let Some(f) = m.outputs_forced {
        v.push(("outputs forced to max tokens", yes_no(f)));
    }
    if let Some(t) = m.timeout_seconds {
        v.push(("request timeout", format!("{t} s")));
    }
    if let Some(a) = &m.arrival {
        let mut arrivals = a.process.name().to_string();
        if a.burstiness != 1.0 {
            let _ = write!(arrivals, ", burstiness {}", a.burstiness);
        }
        if let Some(cap) = a.max_concurrency {
            let _ = write!(arrivals, ", at most {cap} in flight");
        }
        v.push(("arrivals", arrivals));
    }
    if let Some(c) = &m.cost {
        v.push((
            "price",
            format!(
                "${} per GPU-hour, {} GPU{}",
                c.usd_per_gpu_hour,
                c.gpus,
                if c.gpus == 1 { "" } else { "s" }
            ),
        ));
    }
    v
}

fn chat_notes(d: &ChatDocument) -> Vec<String> {
    let m = &d.metadata;
    let mut notes = Vec::new();
    if m.incomplete {
        notes.push("The run was interrupted: not every level ran, or one was cut short.".into());
    }
    if m.insecure_tls {
        notes.push("The server's certificate was not checked (--insecure).".into());
    }
    if let Some(why) = m.sweep.as_ref().and_then(|s| s.stopped_early.as_ref()) {
        notes.push(format!("The sweep stopped early: {why}"));
    }
    if let Some(s) = &m.slo_search {
        let found = match (s.highest_passing, s.lowest_failing) {
            (Some(hi), Some(lo)) => {
                format!("SLO capacity {} (fails at {})", num(hi), num(lo))
            }
            (Some(hi), None) => format!("SLO capacity at least {} (none failed)", num(hi)),
            (None, Some(lo)) => format!("no load met the objectives (fails at {})", num(lo)),
            (None, None) => "the SLO search found nothing".into(),
        };
        notes.push(format!("SLO search: {found}."));
    }
    notes.extend(load_notes(
        d.results.iter().map(|(k, l)| (k, l.client_load.as_ref())),
    ));
    if let Some(merged) = &m.merged {
        notes.extend(merged.load_warnings().into_iter().map(|w| {
            let mut w = w;
            if let Some(first) = w.get_mut(..1) {
                first.make_ascii_uppercase();
            }
            format!("{w}.")
        }));
    }
    notes
}

/// One note per warning of a level's `client_load` block: what may have made its timings the
/// client's rather than the server's.
fn load_notes<'a>(
    levels: impl Iterator<Item = (&'a String, Option<&'a ClientLoadBlock>)>,
) -> Vec<String> {
    levels
        .flat_map(|(key, load)| {
            let warnings = load.map_or(&[][..], |l| &l.warnings[..]);
            warnings.iter().map(move |w| format!("Level {key}: {w}."))
        })
        .collect()
}

fn embed_meta(d: &EmbedDocument) -> Vec<(&'static str, String)> {
    let m = &d.metadata;
    let mut v = vec![
        ("model", m.model.clone()),
        ("server", m.api_base.clone()),
        ("date", m.timestamp.clone()),
        ("tool", tool(m.tool.as_deref())),
    ];
    if !m.description.trim().is_empty() {
        v.push(("description", m.description.clone()));
    }
    if let Some(s) = &m.simulated {
        v.push((
            "simulated",
            format!("preset {}, time scale {}", s.preset, s.time_scale),
        ));
    }
    let list = |xs: Vec<String>| xs.join(", ");
    // A loop's levels are concurrencies or rates (`batch_sizes` holds only the former).
    let levels = || m.levels.clone().unwrap_or_default();
    v.push(match m.mode {
        Some(Mode::ClosedLoop) => ("concurrencies", list(levels())),
        Some(Mode::OpenLoop) => ("request rates (req/s)", list(levels())),
        _ => (
            "batch sizes",
            list(m.batch_sizes.iter().map(u64::to_string).collect()),
        ),
    });
    v.push((
        "sequence lengths",
        list(
            m.sequence_lengths
                .iter()
                .map(|s| match s {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
        ),
    ));
    v.push((
        "runs per level",
        format!("{} (after {} warm-up)", m.num_runs, m.warmup_runs),
    ));
    v.push(("seed", m.seed.to_string()));
    if let Some(n) = m.inputs_per_request {
        v.push(("texts per request", n.to_string()));
    }
    if let Some(r) = m.retries {
        v.push(("retries allowed", r.to_string()));
    }
    if let Some(t) = m.timeout_seconds {
        v.push(("request timeout", format!("{t} s")));
    }
    if let Some(Some(dim)) = m.embedding_dim {
        v.push(("embedding dimension", dim.to_string()));
    }
    v
}

fn embed_notes(d: &EmbedDocument) -> Vec<String> {
    let m = &d.metadata;
    let mut notes = Vec::new();
    if m.incomplete {
        notes.push("The run was interrupted: not every level ran, or one was cut short.".into());
    }
    if m.insecure_tls {
        notes.push("The server's certificate was not checked (--insecure).".into());
    }
    let estimated = d.results.values().any(|l| {
        l.tokens
            .token_source
            .as_ref()
            .is_some_and(|s| s.contains_key("estimate"))
    });
    if estimated {
        notes.push(
            "The server reported no usage for some requests: their tokens are estimated as words × 1.3."
                .into(),
        );
    }
    notes.extend(load_notes(
        d.results.iter().map(|(k, l)| (k, l.client_load.as_ref())),
    ));
    notes
}

fn tool(t: Option<&str>) -> String {
    t.map_or_else(|| "the original Python script".to_string(), str::to_string)
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// A column of a summary table: its header, whether it is shown when no row fills it, and how a
/// level fills it.
struct Column<L> {
    label: &'static str,
    always: bool,
    cell: fn(&Row<L>) -> Cell,
}

/// One level as the table reads it.
struct Row<'a, L> {
    key: &'a str,
    level: &'a L,
}

/// Milliseconds of a distribution's figure, NaN when absent.
fn ms(d: Option<&Distribution>, f: fn(&Distribution) -> f64) -> Cell {
    Cell::Number(d.map_or(f64::NAN, |d| f(d) * 1e3))
}

fn counts<L>(level: &L, get: fn(&L) -> Option<&RequestCounts>) -> RequestCounts {
    get(level).cloned().unwrap_or_default()
}

/// The embedding columns: `embed-bench`'s per-configuration summary, means over runs (batch
/// time in seconds, request latency in ms).
const EMBED_COLUMNS: &[Column<EmbedLevel>] = &[
    Column {
        label: "level",
        always: true,
        cell: |r| Cell::Text(r.key.to_string()),
    },
    Column {
        label: "ok",
        always: true,
        cell: |r| Cell::Count(counts(r.level, |l| l.requests.as_ref()).succeeded),
    },
    Column {
        label: "failed",
        always: true,
        cell: |r| Cell::Count(counts(r.level, |l| l.requests.as_ref()).failed),
    },
    Column {
        label: "retries",
        always: false,
        cell: |r| {
            Cell::Count(
                counts(r.level, |l| l.requests.as_ref())
                    .retries
                    .unwrap_or(0),
            )
        },
    },
    Column {
        label: "tokens/batch",
        always: false,
        cell: |r| Cell::Number(r.level.tokens.total_per_batch.mean),
    },
    Column {
        label: "batch s",
        always: false,
        cell: |r| Cell::Number(r.level.timings.batch_total_seconds.mean),
    },
    Column {
        label: "embeddings/s",
        always: false,
        cell: |r| Cell::Number(r.level.throughput.batch_embeddings_per_second.mean),
    },
    Column {
        label: "tok/s",
        always: false,
        cell: |r| Cell::Number(r.level.throughput.batch_tokens_per_second.mean),
    },
    Column {
        label: "request embeddings/s",
        always: false,
        cell: |r| Cell::Number(r.level.throughput.request_embeddings_per_second.mean),
    },
    Column {
        label: "latency p50",
        always: false,
        cell: |r| ms(r.level.latency.as_ref(), |d| d.p50),
    },
    Column {
        label: "latency p90",
        always: false,
        cell: |r| ms(r.level.latency.as_ref(), |d| d.p90),
    },
    Column {
        label: "latency p99",
        always: false,
        cell: |r| ms(r.level.latency.as_ref(), |d| d.p99),
    },
];

/// The chat summary: `oai-bench`'s own table ([`tokenomics_stats::table`]), the columns some
/// level fills.
fn chat_table(d: &ChatDocument) -> String {
    let rows = table::rows(d);
    let shown = table::shown(&rows);
    let cells: Vec<Vec<Cell>> = rows
        .iter()
        .map(|r| shown.iter().map(|(c, _)| (c.cell)(r)).collect())
        .collect();
    html_table(
        &shown.iter().map(|(c, _)| c.label).collect::<Vec<_>>(),
        &cells,
        "Means over runs; latencies in ms (p50 and p99 of every successful request).",
    )
}

fn embed_table(d: &EmbedDocument) -> String {
    let rows: Vec<Row<EmbedLevel>> = d
        .results
        .iter()
        .map(|(key, level)| Row { key, level })
        .collect();
    // A loop's "batch" is its whole run: a closed or open loop keeps requests going for the
    // run, and its time and tokens are the run's.
    let loops = matches!(
        d.metadata.mode,
        Some(Mode::ClosedLoop) | Some(Mode::OpenLoop)
    );
    let label = |l: &'static str| match (loops, l) {
        (true, "tokens/batch") => "tokens/run",
        (true, "batch s") => "run s",
        _ => l,
    };
    let columns: Vec<Column<EmbedLevel>> = EMBED_COLUMNS
        .iter()
        .map(|c| Column {
            label: label(c.label),
            always: c.always,
            cell: c.cell,
        })
        .collect();
    let caption = if loops {
        "Means over runs; run length in seconds, request latency in ms."
    } else {
        "Means over runs; batch time in seconds, request latency in ms."
    };
    table(&columns, &rows, caption)
}

/// The table of `rows` in the columns that carry anything.
fn table<L>(columns: &[Column<L>], rows: &[Row<L>], caption: &str) -> String {
    let shown: Vec<&Column<L>> = columns
        .iter()
        .filter(|c| c.always || rows.iter().any(|r| (c.cell)(r).carries()))
        .collect();
    let cells: Vec<Vec<Cell>> = rows
        .iter()
        .map(|r| shown.iter().map(|c| (c.cell)(r)).collect())
        .collect();
    html_table(
        &shown.iter().map(|c| c.label).collect::<Vec<_>>(),
        &cells,
        caption,
    )
}

/// A table of `labels` over `rows` of cells; text to the left, numbers right.
fn html_table(labels: &[&str], rows: &[Vec<Cell>], caption: &str) -> String {
    let mut s = format!(
        "<table class=\"summary\">\n<caption>{}</caption>\n<thead><tr>",
        escape(caption)
    );
    for label in labels {
        let _ = write!(s, "<th scope=\"col\">{}</th>", escape(label));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for r in rows {
        s.push_str("<tr>");
        for cell in r {
            let class = if matches!(cell, Cell::Text(_)) {
                ""
            } else {
                " class=\"num\""
            };
            let _ = write!(s, "<td{class}>{}</td>", escape(&cell.human()));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody>\n</table>\n");
    s
}

/// The failures of every level by kind, with the first message of each; or a line saying there
/// were none (or that the file does not count requests: the original scripts' files).
fn errors<'a>(levels: impl Iterator<Item = (&'a String, Option<&'a RequestCounts>)>) -> String {
    let mut rows = String::new();
    let mut counted = false;
    let mut aborted = 0;
    for (key, counts) in levels {
        let Some(c) = counts else { continue };
        counted = true;
        aborted += c.aborted;
        for (kind, e) in &c.errors {
            let _ = writeln!(
                rows,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                escape(key),
                escape(kind),
                e.count,
                escape(&e.first_message)
            );
        }
    }
    let mut s = String::new();
    if rows.is_empty() {
        s.push_str(if counted {
            "<p>No request failed.</p>\n"
        } else {
            "<p>This file does not count failed requests (written by the original scripts).</p>\n"
        });
    } else {
        s.push_str(
            "<table class=\"errors\">\n<thead><tr><th scope=\"col\">level</th><th scope=\"col\">kind</th>\
             <th scope=\"col\">count</th><th scope=\"col\">first message</th></tr></thead>\n<tbody>\n",
        );
        s.push_str(&rows);
        s.push_str("</tbody>\n</table>\n");
    }
    if aborted > 0 {
        let _ = writeln!(
            s,
            "<p>{aborted} requests were aborted on purpose (--cancel_rate); they are not failures.</p>"
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_both_quotes() {
        assert_eq!(
            escape(r#"<a href="x" title='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(escape("plain ± µs"), "plain ± µs");
    }

    #[test]
    fn numbers_round_as_the_console_summary_does() {
        assert_eq!(num(3729.295223546461), "3729");
        assert_eq!(num(159.1587), "159.2");
        assert_eq!(num(5.34426), "5.34");
        assert_eq!(num(0.0123456), "0.0123");
        assert_eq!(num(8.0), "8");
        assert_eq!(Cell::Share(0.875).human(), "87.50%");
        assert_eq!(Cell::Number(f64::NAN).human(), "–");
    }
}
