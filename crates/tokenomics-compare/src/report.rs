//! A comparison as Markdown (one table per matched level, drawn from one table of columns) or
//! JSON (the typed [`Comparison`], numbers in seconds, per second and shares).

use std::fmt::Write as _;

use crate::compare::{Comparison, LevelComparison, Metric, Row, Verdict};

/// One column of a level's table: its header (which may name the files) and its cells.
struct Column {
    header: fn(&LevelComparison, f64) -> String,
    cell: fn(&Row, &Comparison) -> String,
    right: bool,
}

const COLUMNS: &[Column] = &[
    Column {
        header: |_, _| "metric".into(),
        cell: |r, _| format!("{} {}", r.metric.label(), r.statistic.label()),
        right: false,
    },
    Column {
        header: |l, _| format!("A: {}", l.baseline),
        cell: |r, _| value(r.metric, r.a),
        right: true,
    },
    Column {
        header: |l, _| format!("B: {}", l.candidate),
        cell: |r, _| value(r.metric, r.b),
        right: true,
    },
    Column {
        header: |_, _| "change".into(),
        cell: |r, _| percent(r.change),
        right: true,
    },
    Column {
        header: |_, c| format!("{}% interval", trim(c * 100.0)),
        cell: |r, _| {
            if r.low.is_nan() {
                "—".into()
            } else {
                format!("[{}, {}]", percent(r.low), percent(r.high))
            }
        },
        right: false,
    },
    Column {
        header: |_, _| "p (Holm)".into(),
        cell: |r, _| p_value(r.p_holm),
        right: true,
    },
    Column {
        header: |_, _| "verdict".into(),
        cell: |r, c| match r.verdict {
            Verdict::Faster | Verdict::Slower => format!("**{}**", r.verdict.label()),
            v if r.within_threshold => {
                format!("{} (within ±{}%)", v.label(), trim(c.threshold * 100.0))
            }
            v => v.label().into(),
        },
        right: false,
    },
    Column {
        header: |_, _| "test".into(),
        cell: |r, _| r.test.describe(),
        right: false,
    },
];

fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A value in the unit that suits it: latencies in µs, ms or s; rates as numbers; shares in %.
pub fn value(metric: Metric, x: f64) -> String {
    if !x.is_finite() {
        return "—".into();
    }
    match metric {
        m if m.is_latency() => {
            let (v, unit) = if x.abs() < 1e-3 {
                (x * 1e6, "µs")
            } else if x.abs() < 1.0 {
                (x * 1e3, "ms")
            } else {
                (x, "s")
            };
            format!("{} {unit}", significant(v))
        }
        Metric::GoodputShare => format!("{}%", significant(x * 100.0)),
        _ => significant(x),
    }
}

/// Three significant digits, at least the whole number.
fn significant(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn percent(x: f64) -> String {
    if x.is_finite() {
        format!("{:+.1}%", x * 100.0)
    } else {
        "—".into()
    }
}

fn p_value(p: f64) -> String {
    if p.is_nan() {
        "—".into()
    } else if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

impl Comparison {
    /// The comparison as Markdown: the inputs, any configuration differences and warnings,
    /// then one table per matched level.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let Some(base) = self.inputs.first() else {
            return out;
        };
        let _ = writeln!(out, "# Comparison against {}\n", base.label);
        for (i, input) in self.inputs.iter().enumerate() {
            let role = if i == 0 {
                "baseline (A)"
            } else {
                "compared (B)"
            };
            let tool = match (&input.imported, &input.tool) {
                (Some(imp), _) => format!(
                    "{}{}, imported",
                    imp.tool,
                    imp.version
                        .as_ref()
                        .map(|v| format!(" {v}"))
                        .unwrap_or_default()
                ),
                (None, Some(t)) => t.clone(),
                (None, None) => input.format.name().to_string(),
            };
            let records = if input.per_request_records {
                "per-request records"
            } else {
                "summaries only"
            };
            let _ = writeln!(out, "- {role}: `{}` ({tool}; {records})", input.path);
            for n in &input.notes {
                let _ = writeln!(out, "  - {n}");
            }
        }
        let _ = writeln!(
            out,
            "\n{} tests at {}% confidence; p-values corrected together (Holm). *Faster* and *slower* are significant changes for the better and the worse (higher throughput or goodput, lower latency) whose interval lies beyond ±{}%.\n",
            self.tests,
            trim(self.confidence * 100.0),
            trim(self.threshold * 100.0)
        );
        if !self.differences.is_empty() {
            let _ = writeln!(
                out,
                "> **Warning:** the configurations differ in more than the server, so the differences below may not be the servers':"
            );
            for d in &self.differences {
                let _ = writeln!(
                    out,
                    "> - {}: `{}` in {}, `{}` in {}",
                    d.field, d.baseline_value, base.label, d.candidate_value, d.candidate
                );
            }
            out.push('\n');
        }
        if !self.warnings.is_empty() {
            for w in &self.warnings {
                let _ = writeln!(out, "- note: {w}");
            }
            out.push('\n');
        }
        for level in &self.levels {
            let _ = writeln!(
                out,
                "## {} {}: {} against {}\n",
                level.mode.name(),
                level.level,
                level.candidate,
                level.baseline
            );
            let headers: Vec<String> = COLUMNS
                .iter()
                .map(|c| (c.header)(level, self.confidence))
                .collect();
            let _ = writeln!(out, "| {} |", headers.join(" | "));
            let rule: Vec<&str> = COLUMNS
                .iter()
                .map(|c| if c.right { "---:" } else { "---" })
                .collect();
            let _ = writeln!(out, "| {} |", rule.join(" | "));
            for r in &level.rows {
                let cells: Vec<String> = COLUMNS
                    .iter()
                    .map(|c| (c.cell)(r, self).replace('|', "\\|"))
                    .collect();
                let _ = writeln!(out, "| {} |", cells.join(" | "));
            }
            out.push('\n');
        }
        out
    }

    /// The comparison as pretty JSON (NaN written as `null`).
    pub fn to_json(&self) -> crate::Result<String> {
        let mut s = serde_json::to_string_pretty(self)?;
        s.push('\n');
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_in_the_unit_that_suits_them() {
        assert_eq!(value(Metric::Ttft, 0.0452), "45.2 ms");
        assert_eq!(value(Metric::Itl, 0.000405), "405 µs");
        assert_eq!(value(Metric::E2el, 2.5), "2.50 s");
        assert_eq!(value(Metric::OutputTokensPerSecond, 1234.56), "1235");
        assert_eq!(value(Metric::GoodputShare, 0.975), "97.5%");
        assert_eq!(value(Metric::Ttft, f64::NAN), "—");
        assert_eq!(percent(0.1234), "+12.3%");
        assert_eq!(percent(-0.05), "-5.0%");
        assert_eq!(p_value(0.0001), "<0.001");
        assert_eq!(trim(95.0), "95");
        assert_eq!(trim(99.5), "99.5");
    }
}
