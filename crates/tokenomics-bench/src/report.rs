//! Text reports for a terminal: per-run lines and per-level summaries, as the original printed
//! them (`mean ± std` for every metric), plus the request outcomes and streaming latencies.

use std::fmt::Write;

use tokenomics_stats::{ChatDocument, ChatLevel, Distribution, EmbedLevel, RequestCounts, Stat};

use crate::{EmbedRunReport, RunReport};

/// A number with a sensible number of digits for its size.
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

fn pm(s: &Stat) -> String {
    format!("{} ± {}", num(s.mean), num(s.std))
}

/// Milliseconds with three significant-ish digits.
fn ms(x: f64) -> String {
    if x.is_nan() {
        "n/a".into()
    } else {
        format!("{:.1}", x * 1e3)
    }
}

/// One line per run: output tokens per request, batch time, request and batch tokens/s.
pub fn run_line(r: &RunReport) -> String {
    let mut s = format!(
        "  run {}/{}: {} tokens/request, batch {} s, request {} tokens/s, batch {} tokens/s",
        r.run + 1,
        r.num_runs,
        num(r.mean_output_tokens),
        num(r.batch_seconds),
        num(r.mean_request_tokens_per_second),
        num(r.batch_tokens_per_second)
    );
    if r.failed > 0 {
        let _ = write!(
            s,
            "  ({} of {} requests failed)",
            r.failed,
            r.failed + r.succeeded
        );
    }
    s
}

/// Failures by kind with the first message of each.
pub fn failures(counts: &RequestCounts) -> String {
    let mut s = String::new();
    for (kind, e) in &counts.errors {
        let _ = writeln!(s, "    {kind} × {}: {}", e.count, e.first_message);
    }
    s
}

fn latency_row(name: &str, d: &Distribution) -> String {
    format!(
        "    {name:<5} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        ms(d.mean),
        ms(d.p50),
        ms(d.p90),
        ms(d.p95),
        ms(d.p99),
        ms(d.max)
    )
}

/// The summary of one level: every metric as `mean ± std`, outcomes, and latencies.
pub fn level_summary(key: &str, level: &ChatLevel) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} — summary over runs (mean ± std)",
        level_title(key, level)
    );
    let rows = [
        ("input tokens/request", &level.tokens.input_per_request),
        ("output tokens/request", &level.tokens.output_per_request),
        ("batch total (s)", &level.timings.batch_total_seconds),
        ("fastest request (s)", &level.timings.fastest_seconds),
        ("slowest request (s)", &level.timings.slowest_seconds),
        ("spread (s)", &level.timings.spread_seconds),
        ("batch tokens/s", &level.throughput.batch_tokens_per_second),
        (
            "request tokens/s",
            &level.throughput.request_tokens_per_second,
        ),
    ];
    for (name, stat) in rows {
        let _ = writeln!(s, "  {name:<22} {}", pm(stat));
    }
    let rps = pointer(&level.throughput.extra, "requests_per_second/mean");
    if !rps.is_nan() {
        let _ = writeln!(s, "  {:<22} {}", "requests/s", num(rps));
    }
    if let Some(st) = level.throughput.extra.get("steady_state") {
        let f = |k: &str| st.pointer(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
        let _ = writeln!(
            s,
            "  {:<22} {} output tokens/s, {} requests/s over {} s ({}% of the run's window at ≥ 90% of {} in flight)",
            "steady state",
            num(f("/output_tokens_per_second/mean")),
            num(f("/requests_per_second/mean")),
            num(f("/seconds/mean")),
            num((f("/coverage/mean") * 100.0).round()),
            num(f("/target_in_flight/mean"))
        );
    }
    if let Some(load) = level
        .extra
        .get("load")
        .filter(|l| l.get("achieved_rate").is_some())
    {
        let f = |k: &str| load.pointer(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
        let _ = writeln!(
            s,
            "  {:<22} {} requests/s achieved of {} scheduled; send lag p50 {} ms, p99 {} ms",
            "arrivals",
            num(f("/achieved_rate/mean")),
            num(f("/scheduled_rate/mean")),
            ms(f("/send_lag/p50")),
            ms(f("/send_lag/p99"))
        );
        if load.get("slot_wait").is_some() {
            let _ = writeln!(
                s,
                "  {:<22} p50 {} ms, p99 {} ms waiting for a concurrency slot",
                "",
                ms(f("/slot_wait/p50")),
                ms(f("/slot_wait/p99"))
            );
        }
    }
    if let Some(c) = &level.requests {
        let _ = write!(
            s,
            "  {:<22} {} succeeded, {} failed",
            "requests", c.succeeded, c.failed
        );
        if c.cancelled > 0 {
            let _ = write!(s, ", {} cancelled at the end", c.cancelled);
        }
        s.push('\n');
        s.push_str(&failures(c));
    }
    if let Some(g) = level.extra.get("goodput") {
        let f = |k: &str| g.get(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
        let _ = writeln!(
            s,
            "  {:<22} {} of {} requests met every objective ({}%), {} good requests/s",
            "goodput",
            f("good"),
            f("total"),
            num((f("share") * 1000.0).round() / 10.0),
            num(f("requests_per_second"))
        );
    }
    if let Some(l) = &level.latency {
        let _ = writeln!(
            s,
            "  latency (ms)     mean       p50       p90       p95       p99       max"
        );
        s.push_str(&latency_row("TTFT", &l.ttft));
        s.push_str(&latency_row("ITL", &l.itl));
        s.push_str(&latency_row("TPOT", &l.tpot));
        s.push_str(&latency_row("E2EL", &l.e2el));
        for (name, field) in [
            ("TTFAT", "time_to_first_answer_token"),
            ("TTFT*", "ttft_from_schedule"),
        ] {
            if let Some(d) = l
                .extra
                .get(field)
                .and_then(|v| serde_json::from_value::<Distribution>(v.clone()).ok())
            {
                s.push_str(&latency_row(name, &d));
            }
        }
        if l.extra.contains_key("ttft_from_schedule") {
            let _ = writeln!(
                s,
                "    (TTFT*: from the scheduled send time, waits in the client included)"
            );
        }
    }
    s
}

/// "batch size 8", "concurrency 64" or "2.5 requests/s", by the level's mode.
pub fn level_title(key: &str, level: &ChatLevel) -> String {
    let mode = level
        .extra
        .get("load")
        .and_then(|l| l.get("mode"))
        .and_then(|m| m.as_str());
    match mode {
        Some("closed_loop") => format!("concurrency {key}"),
        Some("open_loop") => format!("{key} requests/s"),
        _ => format!("batch size {key}"),
    }
}

/// One line per embedding run.
pub fn embed_run_line(r: &EmbedRunReport) -> String {
    let mut s = format!(
        "  run {}/{}: {} embeddings, {} tokens, batch {} s, {} embeddings/s, {} tokens/s",
        r.run + 1,
        r.num_runs,
        r.embeddings,
        r.tokens,
        num(r.batch_seconds),
        num(r.batch_embeddings_per_second),
        num(r.batch_tokens_per_second)
    );
    if r.failed > 0 {
        let _ = write!(
            s,
            "  ({} of {} requests failed)",
            r.failed,
            r.failed + r.succeeded
        );
    }
    if r.retries > 0 {
        let _ = write!(s, "  ({} retries)", r.retries);
    }
    s
}

fn pm_range(s: &Stat) -> String {
    match (s.min, s.max) {
        (Some(lo), Some(hi)) => format!("{}  [{} … {}]", pm(s), num(lo), num(hi)),
        _ => pm(s),
    }
}

/// The summary of one embedding configuration: every statistic as `mean ± std [min … max]`.
pub fn embed_level_summary(key: &str, level: &EmbedLevel) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{key} — summary over runs (mean ± std [min … max])");
    let rows = [
        ("tokens/batch", &level.tokens.total_per_batch),
        ("embeddings/batch", &level.tokens.embeddings_per_batch),
        ("batch total (s)", &level.timings.batch_total_seconds),
        ("fastest request (s)", &level.timings.fastest_seconds),
        ("slowest request (s)", &level.timings.slowest_seconds),
        ("spread (s)", &level.timings.spread_seconds),
        (
            "batch embeddings/s",
            &level.throughput.batch_embeddings_per_second,
        ),
        ("batch tokens/s", &level.throughput.batch_tokens_per_second),
        (
            "request embeddings/s",
            &level.throughput.request_embeddings_per_second,
        ),
        (
            "request tokens/s",
            &level.throughput.request_tokens_per_second,
        ),
    ];
    for (name, stat) in rows {
        let _ = writeln!(s, "  {name:<22} {}", pm_range(stat));
    }
    if let Some(l) = &level.latency {
        let _ = writeln!(
            s,
            "  {:<22} p50 {} ms, p90 {} ms, p99 {} ms",
            "request latency",
            ms(l.p50),
            ms(l.p90),
            ms(l.p99)
        );
    }
    if let Some(c) = &level.requests {
        let _ = writeln!(
            s,
            "  {:<22} {} succeeded, {} failed, {} retries",
            "requests", c.succeeded, c.failed, c.retries
        );
        s.push_str(&failures(c));
    }
    if let Some(src) = level.tokens.extra.get("token_source") {
        if src.get("estimate").is_some() {
            let _ = writeln!(
                s,
                "  note: the server reported no usage for some requests; their tokens are estimated as words × 1.3"
            );
        }
    }
    s
}

/// One row of the per-level report (console table, CSV, Markdown).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub level: String,
    pub mode: String,
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

const COLUMNS: [&str; 18] = [
    "level",
    "mode",
    "succeeded",
    "failed",
    "cancelled",
    "output_tokens_per_s",
    "steady_output_tokens_per_s",
    "requests_per_s",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "itl_p50_ms",
    "itl_p99_ms",
    "tpot_p50_ms",
    "e2el_p50_ms",
    "e2el_p99_ms",
    "goodput_share",
    "achieved_rate",
    "send_lag_p99_ms",
];

/// The same columns for people: short, units in the table's caption (latencies in ms).
const LABELS: [&str; 18] = [
    "level",
    "mode",
    "ok",
    "failed",
    "cancelled",
    "tok/s",
    "steady tok/s",
    "req/s",
    "TTFT p50",
    "TTFT p99",
    "ITL p50",
    "ITL p99",
    "TPOT p50",
    "E2EL p50",
    "E2EL p99",
    "goodput",
    "sent/s",
    "lag p99",
];

/// The number at `key/rest…` of an `extra` map (a JSON pointer below `key`); NaN when absent.
fn pointer(v: &serde_json::Map<String, serde_json::Value>, path: &str) -> f64 {
    let (key, rest) = path.split_once('/').unwrap_or((path, ""));
    v.get(key)
        .and_then(|x| {
            if rest.is_empty() {
                Some(x)
            } else {
                x.pointer(&format!("/{rest}"))
            }
        })
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(f64::NAN)
}

/// The rows of a chat document, one per level, in order.
pub fn rows(doc: &ChatDocument) -> Vec<Row> {
    let mode = doc
        .metadata
        .extra
        .get("mode")
        .and_then(|m| m.as_str())
        .unwrap_or("burst")
        .to_string();
    doc.results
        .iter()
        .map(|(key, l)| {
            let lat = l.latency.as_ref();
            let p = |f: fn(&Distribution) -> f64, d: Option<&Distribution>| {
                d.map_or(f64::NAN, |d| f(d) * 1e3)
            };
            let counts = l.requests.clone().unwrap_or_default();
            Row {
                level: key.clone(),
                mode: mode.clone(),
                succeeded: counts.succeeded,
                failed: counts.failed,
                cancelled: counts.cancelled,
                output_tokens_per_s: l.throughput.batch_tokens_per_second.mean,
                steady_output_tokens_per_s: pointer(
                    &l.throughput.extra,
                    "steady_state/output_tokens_per_second/mean",
                ),
                requests_per_s: pointer(&l.throughput.extra, "requests_per_second/mean"),
                ttft_p50_ms: p(|d| d.p50, lat.map(|l| &l.ttft)),
                ttft_p99_ms: p(|d| d.p99, lat.map(|l| &l.ttft)),
                itl_p50_ms: p(|d| d.p50, lat.map(|l| &l.itl)),
                itl_p99_ms: p(|d| d.p99, lat.map(|l| &l.itl)),
                tpot_p50_ms: p(|d| d.p50, lat.map(|l| &l.tpot)),
                e2el_p50_ms: p(|d| d.p50, lat.map(|l| &l.e2el)),
                e2el_p99_ms: p(|d| d.p99, lat.map(|l| &l.e2el)),
                goodput_share: pointer(&l.extra, "goodput/share"),
                achieved_rate: pointer(&l.extra, "load/achieved_rate/mean"),
                send_lag_p99_ms: pointer(&l.extra, "load/send_lag/p99") * 1e3,
            }
        })
        .collect()
}

impl Row {
    /// The cells; `human`: short numbers, a dash for "not measured", goodput in percent.
    fn cells(&self, human: bool) -> Vec<String> {
        let f = |x: f64| match (x.is_nan(), human) {
            (true, true) => "–".to_string(),
            (true, false) => String::new(),
            (false, true) => num(x),
            (false, false) => format!("{x}"),
        };
        let share = |x: f64| {
            if human && !x.is_nan() {
                format!("{}%", num((x * 1000.0).round() / 10.0))
            } else {
                f(x)
            }
        };
        vec![
            self.level.clone(),
            self.mode.clone(),
            self.succeeded.to_string(),
            self.failed.to_string(),
            self.cancelled.to_string(),
            f(self.output_tokens_per_s),
            f(self.steady_output_tokens_per_s),
            f(self.requests_per_s),
            f(self.ttft_p50_ms),
            f(self.ttft_p99_ms),
            f(self.itl_p50_ms),
            f(self.itl_p99_ms),
            f(self.tpot_p50_ms),
            f(self.e2el_p50_ms),
            f(self.e2el_p99_ms),
            share(self.goodput_share),
            f(self.achieved_rate),
            f(self.send_lag_p99_ms),
        ]
    }
}

/// Which columns carry anything in these rows (empty columns are left out of the console table
/// and the Markdown; CSV keeps every column so files stay comparable).
fn used_columns(rows: &[Row]) -> Vec<usize> {
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.cells(false)).collect();
    (0..COLUMNS.len())
        .filter(|&i| {
            i < 4
                || cells
                    .iter()
                    .any(|c| !(c[i].is_empty() || (i == 4 && c[i] == "0")))
        })
        .collect()
}

/// CSV, one row per level, every column, full precision (empty cell for "not measured").
pub fn csv(rows: &[Row]) -> String {
    let mut s = COLUMNS.join(",");
    s.push('\n');
    for r in rows {
        let cells = r.cells(false);
        let quoted: Vec<String> = cells
            .into_iter()
            .map(|c| {
                if c.contains([',', '"', '\n']) {
                    format!("\"{}\"", c.replace('"', "\"\""))
                } else {
                    c
                }
            })
            .collect();
        s.push_str(&quoted.join(","));
        s.push('\n');
    }
    s
}

/// A GitHub-flavoured Markdown table, one row per level, columns that carry anything.
pub fn markdown(rows: &[Row]) -> String {
    let used = used_columns(rows);
    let pick =
        |cells: Vec<String>| -> Vec<String> { used.iter().map(|&i| cells[i].clone()).collect() };
    let header = pick(LABELS.iter().map(|c| c.to_string()).collect());
    let mut s = format!("| {} |\n", header.join(" | "));
    let align: Vec<&str> = used
        .iter()
        .map(|&i| if i < 2 { "---" } else { "---:" })
        .collect();
    s.push_str(&format!("| {} |\n", align.join(" | ")));
    for r in rows {
        s.push_str(&format!("| {} |\n", pick(r.cells(true)).join(" | ")));
    }
    s
}

/// The console summary: an aligned table, one row per level, columns that carry anything.
pub fn table(rows: &[Row]) -> String {
    let used = used_columns(rows);
    let pick =
        |cells: Vec<String>| -> Vec<String> { used.iter().map(|&i| cells[i].clone()).collect() };
    let header = pick(LABELS.iter().map(|c| c.to_string()).collect());
    let body: Vec<Vec<String>> = rows.iter().map(|r| pick(r.cells(true))).collect();
    let widths: Vec<usize> = (0..header.len())
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
                let pad = widths[i] - c.chars().count();
                if used[i] < 2 {
                    format!("{c}{}", " ".repeat(pad))
                } else {
                    format!("{}{c}", " ".repeat(pad))
                }
            })
            .collect();
        format!("  {}\n", parts.join("  ").trim_end())
    };
    let mut s = line(&header);
    for r in &body {
        s.push_str(&line(r));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_readable() {
        assert_eq!(num(3729.295223546461), "3729");
        assert_eq!(num(159.1587), "159.2");
        assert_eq!(num(5.34426), "5.34");
        assert_eq!(num(0.0123456), "0.0123");
        assert_eq!(num(f64::NAN), "n/a");
        assert_eq!(num(8.0), "8");
        assert_eq!(num(0.0), "0");
    }
}
