//! The per-level summary table: one [`Row`] per level, one table of [`COLUMNS`] that every format
//! reads — the console, CSV (`--csv_file`) and Markdown (`--markdown_file`) — each an
//! [`Exporter`], as hyperfine's exporters are. A column is added in one place and appears in all
//! three.

use std::path::Path;

pub use tokenomics_stats::table::{rows, shown, Cell, Column, Row, COLUMNS};

use crate::{Error, Result};

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
    use tokenomics_stats::Mode;

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
