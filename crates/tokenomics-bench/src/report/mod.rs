//! Text reports: per-run lines and per-level summaries for a terminal, as the original printed
//! them (`mean ± std` for every metric) plus the request outcomes and streaming latencies, and
//! the per-level [`table`] in every format.

pub mod table;

use std::fmt::Write;

use tokenomics_stats::{ChatLevel, Distribution, EmbedLevel, Load, Mode, RequestCounts, Stat};

use crate::{EmbedRunReport, RunReport};

pub use tokenomics_stats::table::num;

/// `mean ± std`, and the mean's interval when there is one: `5843 ± 25 [5781, 5905]`.
fn pm(s: &Stat) -> String {
    match s.ci {
        Some([lo, hi]) => format!(
            "{} ± {} [{}, {}]",
            num(s.mean),
            num(s.std),
            num(lo),
            num(hi)
        ),
        None => format!("{} ± {}", num(s.mean), num(s.std)),
    }
}

/// One distribution's intervals in ms: `TTFT  mean 11.5 [11.3, 11.7]  p50 …  p99 …`, and the
/// percentiles that need more samples.
fn interval_row(name: &str, d: &Distribution) -> Option<String> {
    let ci = d.ci.as_ref()?;
    let mut s = format!("    {name:<5}");
    let mut part = |label: &str, value: f64, iv: Option<[f64; 2]>| {
        if let Some([lo, hi]) = iv {
            let _ = write!(s, "  {label} {} [{}, {}]", ms(value), ms(lo), ms(hi));
        }
    };
    part("mean", d.mean, ci.mean);
    part("p50", d.p50, ci.p50);
    part("p99", d.p99, ci.p99);
    if !ci.needs.is_empty() {
        let needs: Vec<String> = ci
            .needs
            .iter()
            .map(|(p, n)| format!("{p} needs {n} more"))
            .collect();
        let _ = write!(s, "  ({})", needs.join(", "));
    }
    s.push('\n');
    Some(s)
}

/// Milliseconds with three significant-ish digits.
fn ms(x: f64) -> String {
    if x.is_nan() {
        "n/a".into()
    } else {
        format!("{:.1}", x * 1e3)
    }
}

/// One line per run, in the words of its mode: a burst's batch time and batch tokens/s, a
/// sustained run's length and output tokens/s.
pub fn run_line(r: &RunReport) -> String {
    let mut s = if r.mode == Mode::Burst {
        format!(
            "  run {}/{}: {} tokens/request, batch {} s, request {} tokens/s, batch {} tokens/s",
            r.run + 1,
            r.num_runs,
            num(r.mean_output_tokens),
            num(r.batch_seconds),
            num(r.mean_request_tokens_per_second),
            num(r.batch_tokens_per_second)
        )
    } else {
        format!(
            "  run {}/{}: {} requests over {} s, {} tokens/request, request {} tokens/s, {} output tokens/s",
            r.run + 1,
            r.num_runs,
            r.succeeded + r.failed,
            num(r.batch_seconds),
            num(r.mean_output_tokens),
            num(r.mean_request_tokens_per_second),
            num(r.batch_tokens_per_second)
        )
    };
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
/// A level's prefix-cache hit rates in one line: measured, expected and the server's counters'.
pub fn prefix_cache_line(p: &tokenomics_stats::PrefixCacheBlock) -> String {
    let pct = |r: f64| format!("{:.1}%", r * 100.0);
    let measured = match p.measured_hit_rate {
        Some(r) => format!(
            "{} measured ({} of {} prompt tokens cached)",
            pct(r),
            p.cached_tokens,
            p.prompt_tokens
        ),
        None => "not reported by the server".into(),
    };
    let server = p
        .server_hit_rate
        .map(|r| format!("; server counters {}", pct(r)))
        .unwrap_or_default();
    format!("{measured}, {} expected{server}", pct(p.expected_hit_rate))
}

/// The console summary of a finished chat level: its title, then one line per figure, mean ±
/// std over runs (seconds, tokens, tokens/s), and its latencies, schedule and server figures
/// when it has them.
pub fn level_summary(key: &str, level: &ChatLevel) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} — summary over runs (mean ± std)",
        level_title(key, level)
    );
    let (t, tp) = (&level.timings, &level.throughput);
    // A burst in the original's words; a sustained run has no batch, and its fastest and slowest
    // request ends say nothing about it (they stay in the file).
    let rows = if level.load.as_ref().is_none_or(|l| l.mode() == Mode::Burst) {
        vec![
            ("batch total (s)", &t.batch_total_seconds),
            ("fastest request (s)", &t.fastest_seconds),
            ("slowest request (s)", &t.slowest_seconds),
            ("spread (s)", &t.spread_seconds),
            ("batch tokens/s", &tp.batch_tokens_per_second),
        ]
    } else {
        vec![
            ("run length (s)", &t.batch_total_seconds),
            ("output tokens/s", &tp.batch_tokens_per_second),
        ]
    };
    let rows = [
        ("input tokens/request", &level.tokens.input_per_request),
        ("output tokens/request", &level.tokens.output_per_request),
    ]
    .into_iter()
    .chain(rows)
    .chain([("request tokens/s", &tp.request_tokens_per_second)]);
    for (name, stat) in rows {
        let _ = writeln!(s, "  {name:<22} {}", pm(stat));
    }
    if let Some(rps) = tp.requests_per_second {
        let _ = writeln!(s, "  {:<22} {}", "requests/s", num(rps.mean));
    }
    if let Some(st) = &tp.steady_state {
        let _ = writeln!(
            s,
            "  {:<22} {} output tokens/s, {} requests/s over {} s ({}% of the window at ≥ 90% of {} in flight)",
            "steady state",
            num(st.output_tokens_per_second.mean),
            num(st.requests_per_second.mean),
            num(st.seconds.mean),
            num((st.coverage.mean * 100.0).round()),
            num(st.target_in_flight.mean)
        );
    }
    if let Some(sched) = level.load.as_ref().and_then(Load::schedule) {
        let mean = |s: Option<Stat>| s.map_or(f64::NAN, |s| s.mean);
        let q = |d: Option<&Distribution>, f: fn(&Distribution) -> f64| d.map_or(f64::NAN, f);
        let _ = writeln!(
            s,
            "  {:<22} {} requests/s achieved of {} scheduled; send lag p50 {} ms, p99 {} ms",
            "arrivals",
            num(mean(sched.achieved_rate)),
            num(mean(sched.scheduled_rate)),
            ms(q(sched.send_lag.as_ref(), |d| d.p50)),
            ms(q(sched.send_lag.as_ref(), |d| d.p99))
        );
        if let Some(w) = &sched.slot_wait {
            let _ = writeln!(
                s,
                "  {:<22} p50 {} ms, p99 {} ms waiting for a concurrency slot",
                "",
                ms(w.p50),
                ms(w.p99)
            );
        }
    }
    if let Some(p) = &level.prefix_cache {
        let _ = writeln!(s, "  {:<22} {}", "prefix-cache hits", prefix_cache_line(p));
    }
    if let Some(c) = &level.requests {
        let _ = write!(
            s,
            "  {:<22} {} succeeded, {} failed",
            "requests", c.succeeded, c.failed
        );
        if c.aborted > 0 {
            let _ = write!(s, ", {} aborted on purpose", c.aborted);
        }
        if c.cancelled > 0 {
            let _ = write!(s, ", {} cancelled at the end", c.cancelled);
        }
        s.push('\n');
        s.push_str(&failures(c));
    }
    if let Some(c) = &level.cost {
        let _ = write!(
            s,
            "  {:<22} ${} per million output tokens",
            "cost",
            num(c.usd_per_million_output_tokens)
        );
        if let Some(input) = c.usd_per_million_input_tokens {
            let _ = write!(s, ", ${} per million input tokens", num(input));
        }
        let _ = write!(
            s,
            "; {} output tokens/s per GPU",
            num(c.output_tokens_per_second_per_gpu)
        );
        if let Some(r) = c.requests_per_gpu_hour {
            let _ = write!(s, ", {} requests per GPU-hour", num(r));
        }
        s.push('\n');
    }
    if let Some(p) = &level.probes {
        let _ = write!(
            s,
            "  {:<22} {} sent at {}/s, {} failed; E2EL p50 {} ms, p99 {} ms",
            "probes",
            p.sent,
            num(p.rate),
            p.failed,
            ms(p.e2el.p50),
            ms(p.e2el.p99)
        );
        if let Some(t) = &p.ttft {
            let _ = write!(s, "; TTFT p50 {} ms, p99 {} ms", ms(t.p50), ms(t.p99));
        }
        s.push('\n');
    }
    for e in level.endpoints.iter().flatten() {
        let _ = write!(
            s,
            "  {:<22} {}: {} succeeded, {} failed; {} output tokens/s",
            "endpoint",
            e.api_base,
            e.requests.succeeded,
            e.requests.failed,
            num(e.throughput.batch_tokens_per_second.mean),
        );
        if let Some(l) = &e.latency {
            let _ = write!(
                s,
                "; TTFT p50 {} ms, p99 {} ms",
                ms(l.ttft.p50),
                ms(l.ttft.p99)
            );
        }
        s.push('\n');
    }
    if let Some(c) = &level.conversation {
        let _ = write!(
            s,
            "  {:<22} {} started, {} completed, {} turns each on average",
            "sessions",
            c.sessions,
            c.completed,
            num(c.turns_per_session.mean)
        );
        if let Some(t) = &c.think_time {
            let _ = write!(s, "; think time {} s on average", num(t.mean));
        }
        s.push('\n');
        for t in &c.turns {
            let _ = write!(
                s,
                "  {:<22} {} succeeded, {} failed; {} prompt tokens",
                format!("turn {}", t.turn),
                t.requests.succeeded,
                t.requests.failed,
                num(t.tokens.input_per_request.mean)
            );
            if let Some(l) = &t.latency {
                let _ = write!(
                    s,
                    "; TTFT p50 {} ms, p99 {} ms",
                    ms(l.ttft.p50),
                    ms(l.ttft.p99)
                );
            }
            s.push('\n');
        }
    }
    if let Some(m) = &level.server_metrics {
        s.push_str(&crate::server_metrics::summary(m));
    }
    if let Some(g) = &level.goodput {
        let _ = writeln!(
            s,
            "  {:<22} {} of {} requests met every objective ({}%), {} good requests/s",
            "goodput",
            g.good,
            g.total,
            num((g.share * 1000.0).round() / 10.0),
            num(g.requests_per_second)
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
        if let Some(d) = &l.time_to_first_answer_token {
            s.push_str(&latency_row("TTFAT", d));
        }
        if let Some(d) = &l.ttft_from_schedule {
            s.push_str(&latency_row("TTFT*", d));
            let _ = writeln!(
                s,
                "    (TTFT*: from the scheduled send time, waits in the client included)"
            );
        }
        let rows: Vec<String> = [
            ("TTFT", &l.ttft),
            ("ITL", &l.itl),
            ("TPOT", &l.tpot),
            ("E2EL", &l.e2el),
        ]
        .iter()
        .filter_map(|(n, d)| interval_row(n, d))
        .collect();
        if let Some(c) = l.ttft.ci.as_ref().map(|c| c.confidence) {
            let _ = writeln!(
                s,
                "  {}% intervals (ms; a percentile without one needs more requests):",
                num(c * 100.0)
            );
            rows.iter().for_each(|r| s.push_str(r));
        }
    }
    s
}

/// "batch size 8", "concurrency 64" or "2.5 requests/s", by the level's mode.
pub fn level_title(key: &str, level: &ChatLevel) -> String {
    match level.load.as_ref().map(Load::mode) {
        Some(Mode::ClosedLoop) => format!("concurrency {key}"),
        Some(Mode::OpenLoop) if key == "trace" => "trace replay".into(),
        Some(Mode::OpenLoop) => format!("{key} requests/s"),
        _ => format!("batch size {key}"),
    }
}

/// One line per embedding run: a burst's batch time, a closed or open loop's requests and
/// their rate.
pub fn embed_run_line(r: &EmbedRunReport) -> String {
    let mut s = match r.requests_per_second {
        None => format!(
            "  run {}/{}: {} embeddings, {} tokens, batch {} s, {} embeddings/s, {} tokens/s",
            r.run + 1,
            r.num_runs,
            r.embeddings,
            r.tokens,
            num(r.batch_seconds),
            num(r.batch_embeddings_per_second),
            num(r.batch_tokens_per_second)
        ),
        Some(rps) => format!(
            "  run {}/{}: {} requests over {} s, {} requests/s, {} embeddings/s, {} tokens/s",
            r.run + 1,
            r.num_runs,
            r.succeeded + r.failed,
            num(r.batch_seconds),
            num(rps),
            num(r.batch_embeddings_per_second),
            num(r.batch_tokens_per_second)
        ),
    };
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

/// The summary of one embedding configuration: every statistic as `mean ± std [min … max]`;
/// a closed or open loop's in its own words, with an open loop's rates and send lag.
pub fn embed_level_summary(key: &str, level: &EmbedLevel) -> String {
    if let Some(load) = &level.load {
        return embed_loop_summary(key, level, load);
    }
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
    embed_notes(&mut s, level);
    s
}

/// The end of an embedding summary: requests, failures, and where tokens were estimated.
fn embed_notes(s: &mut String, level: &EmbedLevel) {
    if let Some(c) = &level.requests {
        let cancelled = if c.cancelled > 0 {
            format!(", {} cancelled at the end", c.cancelled)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  {:<22} {} succeeded, {} failed, {} retries{cancelled}",
            "requests",
            c.succeeded,
            c.failed,
            c.retries.unwrap_or(0)
        );
        s.push_str(&failures(c));
    }
    if let Some(src) = &level.tokens.token_source {
        if src.contains_key("estimate") {
            let _ = writeln!(
                s,
                "  note: the server reported no usage for some requests; their tokens are estimated as words × 1.3"
            );
        }
    }
}

/// The summary of a closed- or open-loop embedding level: throughput over each run's span,
/// request latency, and for an open loop the rate scheduled and achieved and the send lag.
fn embed_loop_summary(key: &str, level: &EmbedLevel, load: &Load) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{key} — summary (mean ± std [min … max] over runs)");
    let t = &level.throughput;
    let mut rows = vec![
        ("run (s)", &level.timings.batch_total_seconds),
        ("embeddings/run", &level.tokens.embeddings_per_batch),
        ("embeddings/s", &t.batch_embeddings_per_second),
        ("tokens/s", &t.batch_tokens_per_second),
        ("request embeddings/s", &t.request_embeddings_per_second),
        ("request tokens/s", &t.request_tokens_per_second),
    ];
    if let Some(rps) = &t.requests_per_second {
        rows.insert(1, ("requests/s", rps));
    }
    for (name, stat) in rows {
        let _ = writeln!(s, "  {name:<22} {}", pm_range(stat));
    }
    let dist = |s: &mut String, name: &str, d: &Distribution| {
        let _ = writeln!(
            s,
            "  {name:<22} p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
            ms(d.p50),
            ms(d.p90),
            ms(d.p99),
            ms(d.max)
        );
    };
    if let Some(l) = &level.latency {
        dist(&mut s, "request latency", l);
    }
    if let Some(sched) = load.schedule() {
        if let (Some(want), Some(got)) = (&sched.scheduled_rate, &sched.achieved_rate) {
            let _ = writeln!(
                s,
                "  {:<22} {} requests/s achieved of {} scheduled",
                "rate",
                num(got.mean),
                num(want.mean)
            );
        }
        if let Some(lag) = &sched.send_lag {
            dist(&mut s, "send lag", lag);
        }
        if let Some(wait) = &sched.slot_wait {
            dist(&mut s, "slot wait", wait);
        }
    }
    embed_notes(&mut s, level);
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
