//! The per-level summary table of a chat document: one [`Row`] per level and the [`COLUMNS`]
//! every format reads — `oai-bench`'s console, CSV and Markdown exporters, and
//! `plot-throughput`'s HTML report — so a column is added in one place and appears in all.

use crate::{ChatDocument, ChatLevel, Distribution, Mode};

/// A number with a sensible number of digits for its size: whole numbers as they are, then 0,
/// 1, 2 or 4 decimals as it gets smaller; `n/a` for NaN.
pub fn num(x: f64) -> String {
    if x.is_nan() {
        return "n/a".into();
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{x:.0}");
    }
    let a = x.abs();
    if a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.4}")
    }
}

/// One row of the per-level table. `NaN` means "not measured".
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The level's key (`8`, `2.5`, `trace`).
    pub level: String,
    /// Its load's mode.
    pub mode: Mode,
    /// Requests that succeeded.
    pub succeeded: u64,
    /// Requests that failed.
    pub failed: u64,
    /// Requests cancelled at the end of a timed level.
    pub cancelled: u64,
    /// Whole-run output tokens/s (the original's batch tokens/s), mean over runs.
    pub output_tokens_per_s: f64,
    /// Output tokens/s in the steady-state window, mean over runs.
    pub steady_output_tokens_per_s: f64,
    /// Successful requests per second, mean over runs.
    pub requests_per_s: f64,
    /// TTFT median, ms.
    pub ttft_p50_ms: f64,
    /// TTFT 99th percentile, ms.
    pub ttft_p99_ms: f64,
    /// ITL median, ms.
    pub itl_p50_ms: f64,
    /// ITL 99th percentile, ms.
    pub itl_p99_ms: f64,
    /// TPOT median, ms.
    pub tpot_p50_ms: f64,
    /// E2EL median, ms.
    pub e2el_p50_ms: f64,
    /// E2EL 99th percentile, ms.
    pub e2el_p99_ms: f64,
    /// Share of requests meeting every objective (goodput), 0..1.
    pub goodput_share: f64,
    /// Open loop: achieved send rate, requests/s.
    pub achieved_rate: f64,
    /// Open loop: p99 send lag, ms.
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
    /// Text, as it is.
    Text(String),
    /// A count.
    Count(u64),
    /// A measurement; NaN when not measured.
    Number(f64),
    /// A share 0..1 (shown to people in percent); NaN when not measured.
    Share(f64),
}

impl Cell {
    /// For files: full precision, empty when not measured.
    pub fn exact(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Count(n) => n.to_string(),
            Cell::Number(x) | Cell::Share(x) if x.is_nan() => String::new(),
            Cell::Number(x) | Cell::Share(x) => format!("{x}"),
        }
    }

    /// For people: short numbers, a dash when not measured, shares in percent.
    pub fn human(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Count(n) => n.to_string(),
            Cell::Number(x) | Cell::Share(x) if x.is_nan() => "–".into(),
            Cell::Number(x) => num(*x),
            Cell::Share(x) => format!("{}%", num((x * 1000.0).round() / 10.0)),
        }
    }

    /// Whether the cell carries anything (a column of empty cells is left out for people).
    pub fn carries(&self) -> bool {
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
    /// How a row fills it.
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
pub fn shown(rows: &[Row]) -> Vec<(&'static Column, bool)> {
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
