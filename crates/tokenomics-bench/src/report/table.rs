//! The per-level summary table: one [`Row`] per level, one table of [`COLUMNS`] that every format
//! reads — the console, CSV (`--csv_file`) and Markdown (`--markdown_file`) — each an
//! [`Exporter`], as hyperfine's exporters are. A column is added in one place and appears in all
//! three.

use std::path::Path;

use tokenomics_stats::{ChatDocument, ChatLevel, Distribution, Mode};

use super::num;
use crate::{Error, Result};

/// One row of the per-level table. `NaN` means "not measured".
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub level: String,
    pub mode: Mode,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Whole-run output tokens/s (the original's batch tokens/s), mean over runs.
    pub output_tokens_per_s: f64,
    /// Output tokens/s in the steady-state window, mean over runs.
    pub steady_output_tokens_per_s: f64,
    pub requests_per_s: f64,
    pub ttft_p50_ms: f64,
    pub ttft_p99_ms: f64,
    pub itl_p50_ms: f64,
    pub itl_p99_ms: f64,
    pub tpot_p50_ms: f64,
    pub e2el_p50_ms: f64,
    pub e2el_p99_ms: f64,
    /// Share of requests meeting every objective (goodput), 0..1.
    pub goodput_share: f64,
    /// Open loop: achieved send rate and p99 send lag.
    pub achieved_rate: f64,
    pub send_lag_p99_ms: f64,
}

impl Row {
    /// The row of one level; `mode` is the document's when the level has no `load` block (the
    /// original's files).
    pub fn new(key: &str, level: &ChatLevel, mode: Mode) -> Self {
        let lat = level.latency.as_ref();
        let ms = |d: Option<&Distribution>, f: fn(&Distribution) -> f64| {
            d.map_or(f64::NAN, |d| f(d) * 1e3)
        };
        let counts = level.requests.clone().unwrap_or_default();
        let throughput = &level.throughput;
        let schedule = level.load.as_ref().and_then(|l| l.schedule());
        Row {
            level: key.to_string(),
            mode: level.load.as_ref().map_or(mode, |l| l.mode()),
            succeeded: counts.succeeded,
            failed: counts.failed,
            cancelled: counts.cancelled,
            output_tokens_per_s: throughput.batch_tokens_per_second.mean,
            steady_output_tokens_per_s: throughput
                .steady_state
                .as_ref()
                .map_or(f64::NAN, |s| s.output_tokens_per_second.mean),
            requests_per_s: throughput.requests_per_second.map_or(f64::NAN, |s| s.mean),
            ttft_p50_ms: ms(lat.map(|l| &l.ttft), |d| d.p50),
            ttft_p99_ms: ms(lat.map(|l| &l.ttft), |d| d.p99),
            itl_p50_ms: ms(lat.map(|l| &l.itl), |d| d.p50),
            itl_p99_ms: ms(lat.map(|l| &l.itl), |d| d.p99),
            tpot_p50_ms: ms(lat.map(|l| &l.tpot), |d| d.p50),
            e2el_p50_ms: ms(lat.map(|l| &l.e2el), |d| d.p50),
            e2el_p99_ms: ms(lat.map(|l| &l.e2el), |d| d.p99),
            goodput_share: level.goodput.as_ref().map_or(f64::NAN, |g| g.share),
            achieved_rate: schedule
                .and_then(|s| s.achieved_rate)
                .map_or(f64::NAN, |s| s.mean),
            send_lag_p99_ms: ms(schedule.and_then(|s| s.send_lag.as_ref()), |d| d.p99),
        }
    }
}

/// The rows of a chat document, one per level, in order.
pub fn rows(doc: &ChatDocument) -> Vec<Row> {
    let mode = doc.metadata.mode.unwrap_or(Mode::Burst);
    doc.results
        .iter()
        .map(|(key, level)| Row::new(key, level, mode))
        .collect()
}

/// What a cell holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Count(u64),
    /// A measurement; NaN when not measured.
    Number(f64),
    /// A share 0..1 (shown to people in percent); NaN when not measured.
    Share(f64),
}

impl Cell {
    /// For files: full precision, empty when not measured.
    fn exact(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Count(n) => n.to_string(),
            Cell::Number(x) | Cell::Share(x) if x.is_nan() => String::new(),
            Cell::Number(x) | Cell::Share(x) => format!("{x}"),
        }
    }

    /// For people: short numbers, a dash when not measured, shares in percent.
    fn human(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Count(n) => n.to_string(),
            Cell::Number(x) | Cell::Share(x) if x.is_nan() => "–".into(),
            Cell::Number(x) => num(*x),
            Cell::Share(x) => format!("{}%", num((x * 1000.0).round() / 10.0)),
        }
    }

    /// Whether the cell carries anything (a column of empty cells is left out for people).
    fn carries(&self) -> bool {
        match self {
            Cell::Text(_) => true,
            Cell::Count(n) => *n > 0,
            Cell::Number(x) | Cell::Share(x) => !x.is_nan(),
        }
    }
}

/// One column: its name in files, its label for people, and how a row fills it.
pub struct Column {
    /// The CSV header (stable: scripts read it).
    pub name: &'static str,
    /// The console and Markdown header (latencies in ms, said in the caption).
    pub label: &'static str,
    /// Shown to people even when no row carries anything in it.
    pub always: bool,
    pub cell: fn(&Row) -> Cell,
}

/// Every column, in order.
pub const COLUMNS: &[Column] = &[
    Column {
        name: "level",
        label: "level",
        always: true,
        cell: |r| Cell::Text(r.level.clone()),
    },
    Column {
        name: "mode",
        label: "mode",
        always: true,
        cell: |r| Cell::Text(r.mode.name().into()),
    },
    Column {
        name: "succeeded",
        label: "ok",
        always: true,
        cell: |r| Cell::Count(r.succeeded),
    },
    Column {
        name: "failed",
        label: "failed",
        always: true,
        cell: |r| Cell::Count(r.failed),
    },
    Column {
        name: "cancelled",
        label: "cancelled",
        always: false,
        cell: |r| Cell::Count(r.cancelled),
    },
    Column {
        name: "output_tokens_per_s",
        label: "tok/s",
        always: false,
        cell: |r| Cell::Number(r.output_tokens_per_s),
    },
    Column {
        name: "steady_output_tokens_per_s",
        label: "steady tok/s",
        always: false,
        cell: |r| Cell::Number(r.steady_output_tokens_per_s),
    },
    Column {
        name: "requests_per_s",
        label: "req/s",
        always: false,
        cell: |r| Cell::Number(r.requests_per_s),
    },
    Column {
        name: "ttft_p50_ms",
        label: "TTFT p50",
        always: false,
        cell: |r| Cell::Number(r.ttft_p50_ms),
    },
    Column {
        name: "ttft_p99_ms",
        label: "TTFT p99",
        always: false,
        cell: |r| Cell::Number(r.ttft_p99_ms),
    },
    Column {
        name: "itl_p50_ms",
        label: "ITL p50",
        always: false,
        cell: |r| Cell::Number(r.itl_p50_ms),
    },
    Column {
        name: "itl_p99_ms",
        label: "ITL p99",
        always: false,
        cell: |r| Cell::Number(r.itl_p99_ms),
    },
    Column {
        name: "tpot_p50_ms",
        label: "TPOT p50",
        always: false,
        cell: |r| Cell::Number(r.tpot_p50_ms),
    },
    Column {
        name: "e2el_p50_ms",
        label: "E2EL p50",
        always: false,
        cell: |r| Cell::Number(r.e2el_p50_ms),
    },
    Column {
        name: "e2el_p99_ms",
        label: "E2EL p99",
        always: false,
        cell: |r| Cell::Number(r.e2el_p99_ms),
    },
    Column {
        name: "goodput_share",
        label: "goodput",
        always: false,
        cell: |r| Cell::Share(r.goodput_share),
    },
    Column {
        name: "achieved_rate",
        label: "achieved req/s",
        always: false,
        cell: |r| Cell::Number(r.achieved_rate),
    },
    Column {
        name: "send_lag_p99_ms",
        label: "lag p99",
        always: false,
        cell: |r| Cell::Number(r.send_lag_p99_ms),
    },
];

/// The columns people are shown — those always shown and those some row fills — each with
/// whether it holds text (aligned left; numbers are aligned right).
fn shown(rows: &[Row]) -> Vec<(&'static Column, bool)> {
    COLUMNS
        .iter()
        .filter(|c| c.always || rows.iter().any(|r| (c.cell)(r).carries()))
        .map(|c| {
            let text = rows
                .first()
                .is_some_and(|r| matches!((c.cell)(r), Cell::Text(_)));
            (c, text)
        })
        .collect()
}

/// A format of the table.
pub trait Exporter {
    /// The table of `rows` in this format.
    fn render(&self, rows: &[Row]) -> Result<Vec<u8>>;
}

/// CSV, one row per level, every column (so files stay comparable), full precision, an empty
/// cell where not measured.
pub struct Csv;

impl Exporter for Csv {
    fn render(&self, rows: &[Row]) -> Result<Vec<u8>> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let csv_error = |e: csv::Error| Error::Report(e.to_string());
        w.write_record(COLUMNS.iter().map(|c| c.name))
            .map_err(csv_error)?;
        for r in rows {
            w.write_record(COLUMNS.iter().map(|c| (c.cell)(r).exact()))
                .map_err(csv_error)?;
        }
        w.into_inner().map_err(|e| Error::Report(e.to_string()))
    }
}

/// A GitHub-flavoured Markdown table, one row per level, columns that carry anything.
pub struct Markdown;

impl Exporter for Markdown {
    fn render(&self, rows: &[Row]) -> Result<Vec<u8>> {
        let cols = shown(rows);
        let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
        let mut s = line(cols.iter().map(|(c, _)| c.label.to_string()).collect());
        s.push_str(&line(
            cols.iter()
                .map(|(_, text)| if *text { "---" } else { "---:" }.to_string())
                .collect(),
        ));
        for r in rows {
            s.push_str(&line(
                cols.iter().map(|(c, _)| (c.cell)(r).human()).collect(),
            ));
        }
        Ok(s.into_bytes())
    }
}

/// The console summary: an aligned table, one row per level, columns that carry anything.
pub struct Console;

impl Exporter for Console {
    fn render(&self, rows: &[Row]) -> Result<Vec<u8>> {
        let cols = shown(rows);
        let header: Vec<String> = cols.iter().map(|(c, _)| c.label.to_string()).collect();
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|r| cols.iter().map(|(c, _)| (c.cell)(r).human()).collect())
            .collect();
        let widths: Vec<usize> = (0..cols.len())
            .map(|i| {
                body.iter()
                    .map(|r| r[i].chars().count())
                    .chain([header[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| -> String {
            let parts: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let pad = " ".repeat(widths[i] - c.chars().count());
                    // Text to the left, numbers to the right.
                    if cols[i].1 {
                        format!("{c}{pad}")
                    } else {
                        format!("{pad}{c}")
                    }
                })
                .collect();
            format!("  {}\n", parts.join("  ").trim_end())
        };
        let mut s = line(&header);
        for r in &body {
            s.push_str(&line(r));
        }
        Ok(s.into_bytes())
    }
}

/// The console table as text.
pub fn console(rows: &[Row]) -> String {
    String::from_utf8_lossy(&Console.render(rows).unwrap_or_default()).into_owned()
}

/// Writes the table to `path` in `format`, atomically.
pub fn write(path: &Path, format: &dyn Exporter, rows: &[Row]) -> Result<()> {
    let bytes = format.render(rows)?;
    tokenomics_stats::write_atomic(path, &bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row with nothing measured.
    fn blank() -> Row {
        Row {
            level: String::new(),
            mode: Mode::Burst,
            succeeded: 0,
            failed: 0,
            cancelled: 0,
            output_tokens_per_s: f64::NAN,
            steady_output_tokens_per_s: f64::NAN,
            requests_per_s: f64::NAN,
            ttft_p50_ms: f64::NAN,
            ttft_p99_ms: f64::NAN,
            itl_p50_ms: f64::NAN,
            itl_p99_ms: f64::NAN,
            tpot_p50_ms: f64::NAN,
            e2el_p50_ms: f64::NAN,
            e2el_p99_ms: f64::NAN,
            goodput_share: f64::NAN,
            achieved_rate: f64::NAN,
            send_lag_p99_ms: f64::NAN,
        }
    }

    fn row(level: &str, cancelled: u64, ttft: f64) -> Row {
        Row {
            level: level.into(),
            cancelled,
            ttft_p50_ms: ttft,
            output_tokens_per_s: 1234.5678,
            goodput_share: 0.875,
            ..blank()
        }
    }

    #[test]
    fn every_format_reads_the_one_column_table() {
        let rows = [row("8", 0, 12.345), row("2.5", 0, f64::NAN)];
        let csv = String::from_utf8(Csv.render(&rows).unwrap()).unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(header.len(), COLUMNS.len());
        assert_eq!(header[0], "level");
        assert_eq!(header[17], "send_lag_p99_ms");
        // Full precision, an empty cell where not measured.
        assert_eq!(
            lines.next().unwrap(),
            "8,burst,0,0,0,1234.5678,,,12.345,,,,,,,0.875,,"
        );
        assert!(lines
            .next()
            .unwrap()
            .starts_with("2.5,burst,0,0,0,1234.5678,,,,"));
        // People see only the columns that carry something (cancelled is 0 everywhere).
        let md = String::from_utf8(Markdown.render(&rows).unwrap()).unwrap();
        assert_eq!(
            md.lines().next().unwrap(),
            "| level | mode | ok | failed | tok/s | TTFT p50 | goodput |"
        );
        assert!(
            md.contains("| 8 | burst | 0 | 0 | 1235 | 12.35 | 87.50% |"),
            "{md}"
        );
        assert!(
            md.contains("| 2.5 | burst | 0 | 0 | 1235 | – | 87.50% |"),
            "{md}"
        );
        let table = console(&rows);
        assert!(table.lines().next().unwrap().contains("TTFT p50"));
        assert!(!table.contains("cancelled"));
        assert!(console(&[row("1", 2, 1.0)]).contains("cancelled"));
    }
}
