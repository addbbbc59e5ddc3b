//! GuideLLM `benchmarks.json` (`GenerativeBenchmarksReport`).
//!
//! The schema is that of vllm-project/guidellm's `src/guidellm/benchmark/schemas/generative/`
//! (`report.py` and `benchmark.py` at commit 03820eba, `metrics.py` at 06cef291) with
//! `src/guidellm/schemas/statistics.py` (03820eba) and `request_stats.py` (06cef291): a report
//! `{args, benchmarks: [...]}`; each benchmark has `config.strategy` (`type_` synchronous,
//! concurrent with `streams`, throughput with `max_concurrency`, constant or poisson with
//! `rate`), `scheduler_metrics` (Unix-second timestamps, the measured window
//! `measure_start_time`–`measure_end_time`), `metrics` — each a `StatusDistributionSummary`
//! `{successful, incomplete, errored, total}` of `DistributionSummary` `{mean, median, mode,
//! variance, std_dev, min, max, count, total_sum, percentiles: {p001 … p999}}` — and `requests`
//! (a sample of the per-request stats, 10 by default).
//!
//! How GuideLLM's definitions differ from this project's: `time_per_output_token_ms` is
//! (last token − request start) / output tokens, so it includes TTFT; `inter_token_latency_ms`
//! is each request's (last token − first token) / (output tokens − 1) — this project's TPOT up
//! to where the request ends — and its distribution weighs each request by its tokens − 1, so
//! its mean is this project's pooled ITL mean but its percentiles are of per-request averages,
//! not of gaps; `request_latency` is in seconds; std is the (weighted) population std;
//! percentiles are the lowest value whose cumulative share reaches the percentile, not numpy's
//! interpolation.

use std::path::Path;

use serde_json::{Map, Value};
use tokenomics_stats::{
    AnyDocument, Arrival, AtEnd, ChatLatency, LimitsBlock, Load, ScheduleBlock,
};

use super::build::{self, opt_num, opt_str, rate_key, sample_std, Dist, LevelParts, MetaParts};
use super::{AnyResult, Format, Imported};
use crate::records::{Records, RequestRecord};
use crate::Result;

/// A report: a `benchmarks` array whose entries have `metrics`.
pub(super) fn looks_like(v: &Value) -> bool {
    v.get("benchmarks")
        .and_then(Value::as_array)
        .is_some_and(|b| b.first().is_some_and(|x| x.get("metrics").is_some()))
}

pub(super) fn convert(path: &Path, report: &Value) -> Result<AnyResult> {
    let src = build::source(path, Format::Guidellm);
    let version = report
        .pointer("/metadata/guidellm_version")
        .or_else(|| report.pointer("/metadata/version"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut imported = Imported::new(Format::Guidellm, version);
    imported.note("TPOT is GuideLLM's inter_token_latency_ms: per request (last token − first token) / (output tokens − 1), its distribution weighted by each request's tokens − 1");
    imported.note("ITL: only the mean maps (GuideLLM's token-weighted mean of per-request ITLs is the pooled mean over every gap); its percentiles are of per-request averages and are left out");
    imported.note("std converted from the population std to the sample std (n − 1) over the distribution's count");
    imported.note("percentiles are GuideLLM's: the lowest value whose cumulative share reaches the percentile (this project interpolates linearly)");
    imported.note("throughput is over GuideLLM's measured window (measure_start_time → measure_end_time), after its warm-up");
    imported
        .unmapped("time_per_output_token_ms (includes TTFT: (last token − start) / output tokens)");
    let args = report.get("args").cloned().unwrap_or(Value::Null);
    let benchmarks = report
        .get("benchmarks")
        .and_then(Value::as_array)
        .ok_or_else(|| src.malformed("`benchmarks` is not an array"))?;
    let limits = LimitsBlock {
        num_requests: args.get("max_requests").and_then(Value::as_u64),
        duration_seconds: opt_num(&args, "max_seconds"),
        warmup_seconds: 0.0,
        at_end: AtEnd::Wait,
    };
    let mut levels = Vec::new();
    let mut all_records = Vec::new();
    let mut first_start = None;
    for (i, b) in benchmarks.iter().enumerate() {
        let where_ = format!("benchmark {}", i + 1);
        let (key, level, records) = level(&src, b, &where_, limits, &mut imported)?;
        if first_start.is_none() {
            first_start = b
                .pointer("/scheduler_metrics/start_time")
                .and_then(Value::as_f64);
        }
        if let Some(recs) = records {
            all_records.extend(recs.into_iter().map(|mut r| {
                r.level = key.clone();
                r
            }));
        }
        levels.push((key, level));
    }
    let data = args.get("data").and_then(Value::as_array).map(|d| {
        d.iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(",")
    });
    let parts = MetaParts {
        timestamp: first_start.and_then(build::iso_from_unix),
        model: opt_str(&args, "model").map(str::to_string),
        dataset_key: data,
        api_base: opt_str(&args, "target").map(str::to_string),
        seed: args.get("random_seed").and_then(Value::as_u64),
        description: format!(
            "GuideLLM {} ({})",
            opt_str(&args, "profile").unwrap_or("benchmark"),
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ),
        limits: Some(limits),
        ..MetaParts::default()
    };
    if args.get("warmup").is_some_and(|w| !w.is_null()) {
        imported.unmapped(
            "args.warmup (GuideLLM's warm-up excludes requests from its measured window)",
        );
    }
    let document = build::document(&src, parts, levels, imported)?;
    Ok(AnyResult {
        format: Format::Guidellm,
        document: AnyDocument::Chat(document),
        records: (!all_records.is_empty()).then(|| Records::new(path.to_path_buf(), all_records)),
    })
}

/// The successful requests' distribution of a metric (`/metrics/{name}/successful`).
fn successful<'a>(b: &'a Value, name: &str) -> Option<&'a Value> {
    b.get("metrics")?.get(name)?.get("successful")
}

/// A GuideLLM `DistributionSummary` as this project's distribution, in seconds (`scale`
/// converts its unit), its population std made a sample std over its count.
fn dist(d: &Value, scale: f64) -> Dist {
    let count = d.get("count").and_then(Value::as_u64).unwrap_or(0);
    let n = |k: &str| opt_num(d, k).map(|x| x * scale);
    let p = |k: &str| {
        d.get("percentiles")
            .and_then(|p| opt_num(p, k))
            .map(|x| x * scale)
    };
    Dist {
        count,
        mean: n("mean"),
        std: n("std_dev").map(|s| sample_std(s, count)),
        min: n("min"),
        max: n("max"),
        p50: p("p50").or_else(|| n("median")),
        p90: p("p90"),
        p95: p("p95"),
        p99: p("p99"),
        p99_9: p("p999"),
    }
}

fn level(
    src: &build::Source<'_>,
    b: &Value,
    where_: &str,
    limits: LimitsBlock,
    imported: &mut Imported,
) -> Result<(
    String,
    tokenomics_stats::ChatLevel,
    Option<Vec<RequestRecord>>,
)> {
    let strategy = b
        .pointer("/config/strategy")
        .ok_or_else(|| src.malformed(format!("{where_} has no `config.strategy`")))?;
    let kind = opt_str(strategy, "type_")
        .ok_or_else(|| src.malformed(format!("{where_}'s strategy has no `type_`")))?;
    let closed = |c: u64| {
        (
            c.to_string(),
            Some(Load::ClosedLoop {
                max_concurrency: c,
                limits,
            }),
        )
    };
    let (key, load) = match kind {
        "synchronous" => closed(1),
        "concurrent" => closed(src.count(strategy, "streams", &format!("{where_}'s strategy"))?),
        "throughput" => match strategy.get("max_concurrency").and_then(Value::as_u64) {
            Some(c) => closed(c),
            None => {
                imported.unmapped("the throughput strategy without max_concurrency (no level of this project's load shapes)");
                ("throughput".to_string(), None)
            }
        },
        "constant" | "poisson" => {
            let rate = src.num(strategy, "rate", &format!("{where_}'s strategy"))?;
            let load = Load::OpenLoop {
                ramp: None,
                request_rate: rate,
                arrival: if kind == "poisson" {
                    Arrival::Poisson
                } else {
                    Arrival::Constant
                },
                burstiness: 1.0,
                max_concurrency: strategy.get("max_concurrency").and_then(Value::as_u64),
                limits,
                schedule: ScheduleBlock::default(),
            };
            (rate_key(rate), Some(load))
        }
        other => {
            return Err(src.malformed(format!(
                "{where_} has strategy {other:?}; expected synchronous, concurrent, throughput, constant or poisson"
            )))
        }
    };
    let totals = b
        .pointer("/metrics/request_totals")
        .ok_or_else(|| src.malformed(format!("{where_} has no `metrics.request_totals`")))?;
    let where_totals = format!("{where_}'s request_totals");
    let succeeded = src.count(totals, "successful", &where_totals)?;
    let errored = src.count(totals, "errored", &where_totals)?;
    let incomplete = totals
        .get("incomplete")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let sm = b
        .get("scheduler_metrics")
        .ok_or_else(|| src.malformed(format!("{where_} has no `scheduler_metrics`")))?;
    let where_sm = format!("{where_}'s scheduler_metrics");
    let duration = src.num(sm, "measure_end_time", &where_sm)?
        - src.num(sm, "measure_start_time", &where_sm)?;
    if duration.is_nan() || duration <= 0.0 {
        return Err(src.malformed(format!(
            "{where_} measured no time (measure_end_time ≤ measure_start_time)"
        )));
    }
    let mut parts = LevelParts::new(duration, succeeded, errored);
    parts.cancelled = incomplete;
    parts.load = load;
    let tokens = successful(b, "output_token_count");
    if let Some(t) = tokens {
        let d = dist(t, 1.0);
        parts.output_tokens = build::stat(d.mean.unwrap_or(f64::NAN), d.std.unwrap_or(f64::NAN));
        if let Some(total) = opt_num(t, "total_sum") {
            parts.output_tokens_per_s = total / duration;
        }
    }
    if let Some(t) = successful(b, "prompt_token_count") {
        let d = dist(t, 1.0);
        parts.input_tokens = build::stat(d.mean.unwrap_or(f64::NAN), d.std.unwrap_or(f64::NAN));
    }
    parts.requests_per_s = Some(succeeded as f64 / duration);
    let ttft = successful(b, "time_to_first_token_ms").map(|d| dist(d, 1e-3));
    let e2el = successful(b, "request_latency").map(|d| dist(d, 1.0));
    let itl = successful(b, "inter_token_latency_ms").map(|d| dist(d, 1e-3));
    if ttft.is_some() || e2el.is_some() || itl.is_some() {
        let pooled_itl = Dist {
            count: itl.map_or(0, |d| d.count),
            mean: itl.and_then(|d| d.mean),
            ..Dist::default()
        };
        parts.latency = Some(ChatLatency {
            ttft: ttft.unwrap_or_default().build(),
            itl: pooled_itl.build(),
            tpot: itl.unwrap_or_default().build(),
            e2el: e2el.unwrap_or_default().build(),
            time_to_first_answer_token: None,
            ttft_from_schedule: None,
            extra: Map::new(),
        });
    }
    // Every other metric GuideLLM computes has no place in this project's level, by name.
    const MAPPED: [&str; 7] = [
        "request_totals",
        "request_latency",
        "prompt_token_count",
        "output_token_count",
        "time_to_first_token_ms",
        "inter_token_latency_ms",
        "time_per_output_token_ms",
    ];
    if let Some(metrics) = b.get("metrics").and_then(Value::as_object) {
        for name in metrics.keys().filter(|k| !MAPPED.contains(&k.as_str())) {
            imported.unmapped(format!("metrics.{name}"));
        }
    }
    let records = records(b, succeeded, imported);
    if let Some(recs) = &records {
        parts.fill_from_records(recs, None);
    } else {
        imported
            .unmapped("request_tokens_per_second (GuideLLM keeps a sample of the requests only)");
    }
    Ok((key, parts.build(), records))
}

/// The per-request stats of a benchmark, when GuideLLM kept every successful request
/// (`sample_requests` unset); a sample of them would not represent the run.
fn records(b: &Value, succeeded: u64, imported: &mut Imported) -> Option<Vec<RequestRecord>> {
    let ok = b.pointer("/requests/successful")?.as_array()?;
    if ok.len() as u64 != succeeded || succeeded == 0 {
        imported
            .note("the file keeps a sample of the requests, not all: the tests use its summaries");
        return None;
    }
    let failed = b
        .pointer("/requests/errored")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let mut out = Vec::with_capacity(ok.len() + failed);
    for r in ok {
        let start = opt_num(r, "request_start_time");
        let first = r
            .pointer("/info/timings/first_token_iteration")
            .and_then(Value::as_f64);
        let last = r
            .pointer("/info/timings/last_token_iteration")
            .and_then(Value::as_f64);
        out.push(RequestRecord {
            level: String::new(),
            run: 0,
            ok: true,
            ttft_s: opt_num(r, "time_to_first_token_ms").map(|x| x / 1e3),
            e2el_s: opt_num(r, "request_latency"),
            completion_tokens: r.get("output_tokens").and_then(Value::as_u64),
            content_events: r
                .pointer("/info/timings/token_iterations")
                .and_then(Value::as_u64),
            first_token_s: first.zip(start).map(|(f, s)| f - s),
            last_token_s: last.zip(start).map(|(l, s)| l - s),
            token_s: None,
            gaps_s: None,
        });
    }
    out.extend((0..failed).map(|_| RequestRecord {
        ok: false,
        ..RequestRecord::default()
    }));
    Some(out)
}
