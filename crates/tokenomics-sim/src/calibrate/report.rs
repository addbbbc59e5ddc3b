//! The comparison: each reported figure beside its replayed value, with the ratio and whether it
//! lies within [`BAND`]; the table that shows it (text or Markdown) and the calibration part of
//! `--describe`.

use std::fmt::Write;

use serde::Serialize;

use super::replay::replay;
use super::rows::{rows, Metric, Row, Status};
use crate::preset::EngineSpec;
use crate::Error;

/// A simulated figure agrees with its measurement when `|simulated / measured − 1| ≤ BAND`.
pub const BAND: f64 = 0.15;

/// One figure of a row, measured against simulated, both in the metric's unit.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The row's id.
    pub row: String,
    /// The preset replayed.
    pub preset: String,
    /// The row's GPU, as its source names it.
    pub gpu: String,
    /// What was measured.
    pub metric: Metric,
    /// The source's value.
    pub measured: f64,
    /// The replay's value.
    pub simulated: f64,
    /// What the calibration claims about the figure.
    pub status: Status,
    /// Why an unmet figure is unmet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Comparison {
    /// Simulated over measured.
    pub fn ratio(&self) -> f64 {
        self.simulated / self.measured
    }

    /// The ratio lies within 1 ± [`BAND`].
    pub fn within_band(&self) -> bool {
        (self.ratio() - 1.0).abs() <= BAND
    }

    /// The status agrees with the replay: fitted and checked figures within the band, unmet
    /// ones outside it.
    pub fn consistent(&self) -> bool {
        match self.status {
            Status::Fitted | Status::Checked => self.within_band(),
            Status::Unmet => !self.within_band(),
        }
    }
}

/// Replays `row` against `spec` and sets each reported figure beside its simulated value, in the
/// row's order. Fails with [`Error::Invalid`] (naming the row) when the replay fails or has no
/// value for a figure.
pub fn compare(row: &Row, spec: &EngineSpec) -> Result<Vec<Comparison>, Error> {
    let replay = replay(spec, &row.workload)
        .map_err(|e| Error::Invalid(format!("calibration row {:?}: {e}", row.id)))?;
    row.figures
        .iter()
        .map(|f| {
            let simulated = replay.figure(f.metric).ok_or_else(|| {
                Error::Invalid(format!(
                    "calibration row {:?}: the replay has no {}",
                    row.id,
                    f.metric.label()
                ))
            })?;
            Ok(Comparison {
                row: row.id.clone(),
                preset: row.preset.clone(),
                gpu: row.gpu.clone(),
                metric: f.metric,
                measured: f.measured,
                simulated,
                status: f.status,
                reason: f.reason.clone(),
            })
        })
        .collect()
}

/// Every row of the calibration set against the preset it names, in the set's order.
pub fn compare_all() -> Result<Vec<Comparison>, Error> {
    let mut out = Vec::new();
    for row in rows()? {
        let spec = crate::preset::engine(&row.preset).ok_or_else(|| {
            Error::UnknownPreset(row.preset.clone(), crate::preset::preset_names())
        })?;
        out.extend(compare(&row, &spec)?);
    }
    Ok(out)
}

/// How [`render`] lays a table out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for a terminal.
    Text,
    /// A Markdown table (the book's, in the Calibration section).
    Markdown,
}

/// The comparison table: row, preset, figure, measured, simulated, ratio, status, and whether
/// it is within the band; unmet figures' reasons follow the table. One line per comparison, in
/// the order given.
pub fn render(comparisons: &[Comparison], format: Format) -> String {
    let header = [
        "row",
        "preset",
        "figure",
        "measured",
        "simulated",
        "ratio",
        "status",
        "±15%",
    ];
    let cells: Vec<[String; 8]> = comparisons
        .iter()
        .map(|c| {
            [
                c.row.clone(),
                c.preset.clone(),
                c.metric.label().to_string(),
                number(c.measured),
                number(c.simulated),
                format!("{:.3}", c.ratio()),
                c.status.label().to_string(),
                if c.within_band() { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect();
    let mut s = String::new();
    match format {
        Format::Markdown => {
            let _ = writeln!(s, "| {} |", header.join(" | "));
            let _ = writeln!(s, "|{}", "---|".repeat(header.len()));
            for row in &cells {
                let _ = writeln!(s, "| {} |", row.join(" | "));
            }
        }
        Format::Text => {
            let mut widths = header.map(str::len);
            for row in &cells {
                for (w, c) in widths.iter_mut().zip(row) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let line = |cols: &[String]| {
                let mut l = String::new();
                for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
                    // Text left, numbers right.
                    if (3..=5).contains(&i) {
                        let _ = write!(l, "{c:>w$}  ");
                    } else {
                        let _ = write!(l, "{c:<w$}  ");
                    }
                }
                l.trim_end().to_string()
            };
            let _ = writeln!(s, "{}", line(&header.map(String::from)));
            for row in &cells {
                let _ = writeln!(s, "{}", line(row));
            }
        }
    }
    let unmet: Vec<&Comparison> = comparisons
        .iter()
        .filter(|c| c.status == Status::Unmet)
        .collect();
    if !unmet.is_empty() {
        let _ = writeln!(s);
        for c in unmet {
            let _ = writeln!(
                s,
                "unmet: {} {}: {}",
                c.row,
                c.metric.label(),
                c.reason.as_deref().unwrap_or("")
            );
        }
    }
    s
}

/// A figure with the digits that matter at its size.
fn number(v: f64) -> String {
    if v >= 1000.0 {
        format!("{v:.0}")
    } else if v >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The calibration part of `--describe`: the rows that name `spec`'s preset, replayed against
/// `spec` now, and which were fitted, checked or unmet.
pub(crate) fn describe_fit(spec: &EngineSpec) -> String {
    let mut s = String::from("\ncalibration (public measurements replayed in virtual time, band ±15%; calibration/rows.json):\n");
    let rows = match rows() {
        Ok(rows) => rows,
        Err(e) => {
            let _ = writeln!(s, "  the calibration data does not load: {e}");
            return s;
        }
    };
    let mine: Vec<&Row> = rows.iter().filter(|r| r.preset == spec.name).collect();
    if mine.is_empty() {
        let _ = writeln!(
            s,
            "  no public row names this preset: its constants are the fitted ones of the presets it shares an engine with"
        );
        return s;
    }
    let mut comparisons = Vec::new();
    for row in &mine {
        match compare(row, spec) {
            Ok(c) => comparisons.extend(c),
            Err(e) => {
                let _ = writeln!(s, "  {e}");
            }
        }
    }
    for line in render(&comparisons, Format::Text).lines() {
        if line.is_empty() {
            s.push('\n');
        } else {
            let _ = writeln!(s, "  {line}");
        }
    }
    let ids = |status: Status| {
        let mut v: Vec<&str> = comparisons
            .iter()
            .filter(|c| c.status == status)
            .map(|c| c.row.as_str())
            .collect();
        v.dedup();
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let _ = writeln!(
        s,
        "  fitted on: {}\n  checked only against: {}\n  unmet: {}",
        ids(Status::Fitted),
        ids(Status::Checked),
        ids(Status::Unmet)
    );
    for row in mine {
        let _ = writeln!(s, "  {}: {} — {}", row.id, row.source, row.url);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_band_agree_both_ways() {
        let c = |simulated: f64, status: Status| Comparison {
            row: "r".into(),
            preset: "p".into(),
            gpu: "g".into(),
            metric: Metric::MeanTpotMs,
            measured: 10.0,
            simulated,
            status,
            reason: None,
        };
        assert!(c(11.4, Status::Fitted).consistent());
        assert!(!c(11.6, Status::Checked).consistent());
        assert!(c(8.4, Status::Unmet).consistent());
        assert!(!c(9.0, Status::Unmet).consistent());
    }
}
