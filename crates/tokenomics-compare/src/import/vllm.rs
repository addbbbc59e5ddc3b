//! vLLM `vllm bench serve --save-result` (and the older `benchmarks/benchmark_serving.py`)
//! result JSON.
//!
//! The schema is the `result_json` dictionary of `vllm/benchmarks/serve.py` (vllm-project/vllm,
//! commit 009e6d4a): the run's settings (`date`, `backend`, `model_id`, `num_prompts`,
//! `request_rate` — a number or `"inf"` —, `burstiness`, `max_concurrency`), its totals
//! (`duration` s, `completed`, `failed`, `total_input_tokens`, `total_output_tokens`,
//! `request_throughput`, `output_throughput`, `request_goodput`), and per metric of
//! `--percentile-metrics` (`ttft,tpot,itl` by default) `mean_*_ms`, `median_*_ms`, `std_*_ms`
//! and `p{N}_*_ms` (`--metric-percentiles`, `99` by default), all in milliseconds, the std
//! numpy's population one. With `--save-detailed` the per-request arrays stay in the file
//! (`ttfts` and `itls` in seconds, `output_lens`, `start_times`, `errors`). The older script
//! writes the same keys but `request_goodput:` (with a colon) and no `failed`.
//!
//! How vLLM's definitions differ from this project's (see `vllm/benchmarks/lib/
//! endpoint_request_func.py`): TTFT ends at the first SSE chunk that has `choices` — a
//! role-only chunk counts —; each ITL is the gap between consecutive such chunks (a chunk that
//! carried several tokens is one gap); the request's latency ends at the last chunk with choices
//! (the usage chunk and `[DONE]` excluded); times are taken after the chunk is decoded.

use std::path::Path;

use indexmap::IndexMap;
use serde_json::Value;
use tokenomics_stats::{Arrival, AtEnd, ChatLatency};
use tokenomics_stats::{ErrorCount, Goodput, LimitsBlock, Load, ScheduleBlock, SloMs, Summary};

use super::build::{self, opt_num, opt_str, rate_key, sample_std, Dist, LevelParts, MetaParts};
use super::{AnyResult, Format, Imported};
use crate::records::{Records, RequestRecord};
use crate::Result;

const METRICS: [&str; 4] = ["ttft", "tpot", "itl", "e2el"];

/// A vLLM result object: run totals as numbers, no `metadata`.
pub(super) fn looks_like(v: &Value) -> bool {
    ["completed", "duration", "request_throughput"]
        .iter()
        .all(|k| v.get(k).is_some_and(Value::is_number))
        && v.get("metadata").is_none()
}

pub(super) fn convert(path: &Path, values: &[Value]) -> Result<AnyResult> {
    let src = build::source(path, Format::Vllm);
    let version = values[0]
        .get("version")
        .or_else(|| values[0].get("vllm_version"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut imported = Imported::new(Format::Vllm, version);
    imported.note("TTFT ends at the first SSE chunk with `choices`, which may be the role-only chunk before any token (this project: the first content or reasoning token)");
    imported
        .note("E2EL ends at the last chunk with `choices` (this project: the end of the response)");
    imported.note("per-request values were timestamped after each chunk was decoded, not when its bytes arrived");
    let mut levels = Vec::new();
    let mut all_records = Vec::new();
    for (i, run) in values.iter().enumerate() {
        let where_ = if values.len() > 1 {
            format!("result {}", i + 1)
        } else {
            "the result".to_string()
        };
        let (key, level, records) = level(&src, run, &where_, &mut imported)?;
        all_records.extend(records.into_iter().map(|mut r| {
            r.level = key.clone();
            r
        }));
        levels.push((key, level));
    }
    let first = &values[0];
    let backend = opt_str(first, "backend").or_else(|| opt_str(first, "endpoint_type"));
    let parts = MetaParts {
        timestamp: opt_str(first, "date").and_then(timestamp),
        model: opt_str(first, "model_id").map(str::to_string),
        description: opt_str(first, "label")
            .map(str::to_string)
            .unwrap_or_else(|| format!("vLLM bench serve ({})", backend.unwrap_or("openai"))),
        stream: Some(true),
        endpoint: backend.map(|b| {
            match b {
                "openai-chat" => "chat",
                "openai" | "vllm" => "completions",
                other => other,
            }
            .to_string()
        }),
        limits: opt_num(first, "num_prompts").map(|n| LimitsBlock {
            num_requests: Some(n as u64),
            duration_seconds: None,
            warmup_seconds: 0.0,
            at_end: AtEnd::Wait,
        }),
        ..MetaParts::default()
    };
    let document = build::document(&src, parts, levels, imported)?;
    Ok(AnyResult {
        format: Format::Vllm,
        document: tokenomics_stats::AnyDocument::Chat(document),
        records: (!all_records.is_empty()).then(|| Records::new(path.to_path_buf(), all_records)),
    })
}

/// `20250101-120000` → `2025-01-01T12:00:00`.
fn timestamp(date: &str) -> Option<String> {
    let (d, t) = date.split_once('-')?;
    (d.len() == 8 && t.len() == 6 && date.chars().filter(char::is_ascii_digit).count() == 14).then(
        || {
            format!(
                "{}-{}-{}T{}:{}:{}",
                &d[..4],
                &d[4..6],
                &d[6..],
                &t[..2],
                &t[2..4],
                &t[4..]
            )
        },
    )
}

/// Whether a key is one this importer maps (the others are listed as unmapped).
fn mapped_key(k: &str) -> bool {
    const KEYS: [&str; 27] = [
        "date",
        "backend",
        "endpoint_type",
        "label",
        "model_id",
        "num_prompts",
        "request_rate",
        "burstiness",
        "max_concurrency",
        "duration",
        "completed",
        "failed",
        "total_input_tokens",
        "total_output_tokens",
        "request_throughput",
        "output_throughput",
        "request_goodput",
        "request_goodput:",
        "input_lens",
        "output_lens",
        "ttfts",
        "itls",
        "latencies",
        "start_times",
        "errors",
        "version",
        "vllm_version",
    ];
    if KEYS.contains(&k) {
        return true;
    }
    METRICS.iter().any(|m| {
        let Some(stem) = k.strip_suffix(&format!("_{m}_ms")) else {
            return false;
        };
        matches!(
            stem,
            "mean" | "median" | "std" | "p50" | "p90" | "p95" | "p99" | "p99.9"
        )
    })
}

fn level(
    src: &build::Source<'_>,
    run: &Value,
    where_: &str,
    imported: &mut Imported,
) -> Result<(String, tokenomics_stats::ChatLevel, Vec<RequestRecord>)> {
    let completed = src.count(run, "completed", where_)?;
    let failed = match run.get("failed").and_then(Value::as_u64) {
        Some(f) => f,
        None => {
            imported
                .note("the file has no `failed` count (benchmark_serving.py): failures read as 0");
            0
        }
    };
    let duration = src.num(run, "duration", where_)?;
    if let Some(obj) = run.as_object() {
        for k in obj.keys().filter(|k| !mapped_key(k)) {
            imported.unmapped(k.clone());
        }
    }
    let num_prompts = opt_num(run, "num_prompts").map(|n| n as u64);
    let limits = LimitsBlock {
        num_requests: num_prompts,
        duration_seconds: None,
        warmup_seconds: 0.0,
        at_end: AtEnd::Wait,
    };
    let max_concurrency = run.get("max_concurrency").and_then(Value::as_u64);
    let rate = match run.get("request_rate") {
        Some(Value::String(s)) if s == "inf" => None,
        Some(v) => v
            .as_f64()
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(Some)
            .ok_or_else(|| {
                src.malformed(format!(
                    "{where_} has a `request_rate` that is neither a rate nor \"inf\""
                ))
            })?,
        None => None,
    };
    let (key, load) = if run.get("ramp_up_strategy").is_some_and(|s| !s.is_null()) {
        imported.unmapped(
            "ramp_up_strategy (a ramped request rate has no level of this project's load shapes)",
        );
        let key = format!(
            "ramp_up_{}_{}_{}",
            opt_str(run, "ramp_up_strategy").unwrap_or("?"),
            opt_num(run, "ramp_up_start_rps").unwrap_or(f64::NAN),
            opt_num(run, "ramp_up_end_rps").unwrap_or(f64::NAN)
        );
        (key, None)
    } else {
        match (rate, max_concurrency) {
            (Some(r), cap) => {
                let burstiness = opt_num(run, "burstiness").unwrap_or(1.0);
                let load = Load::OpenLoop {
                    ramp: None,
                    request_rate: r,
                    arrival: if burstiness == 1.0 {
                        Arrival::Poisson
                    } else {
                        Arrival::Gamma
                    },
                    burstiness,
                    max_concurrency: cap,
                    limits,
                    schedule: ScheduleBlock::default(),
                };
                (rate_key(r), Some(load))
            }
            (None, Some(c)) => (
                c.to_string(),
                Some(Load::ClosedLoop {
                    max_concurrency: c,
                    limits,
                }),
            ),
            (None, None) => {
                // Every request sent at time 0: a burst of all of them.
                let b = num_prompts.unwrap_or(completed + failed);
                (b.to_string(), Some(Load::Burst { batch_size: b }))
            }
        }
    };

    let records = records(run, completed, failed, imported);
    let mut parts = LevelParts::new(duration, completed, failed);
    parts.load = load;
    parts.output_tokens_per_s = opt_num(run, "output_throughput").unwrap_or(build::UNKNOWN);
    parts.requests_per_s = opt_num(run, "request_throughput");
    if completed > 0 {
        let per = |k: &str| opt_num(run, k).map(|t| t / completed as f64);
        parts.input_tokens = build::stat(
            per("total_input_tokens").unwrap_or(build::UNKNOWN),
            build::UNKNOWN,
        );
        parts.output_tokens = build::stat(
            per("total_output_tokens").unwrap_or(build::UNKNOWN),
            build::UNKNOWN,
        );
    }
    if let Some(errors) = run.get("errors").and_then(Value::as_array) {
        let mut by_kind: IndexMap<String, ErrorCount> = IndexMap::new();
        for e in errors
            .iter()
            .filter_map(Value::as_str)
            .filter(|e| !e.is_empty())
        {
            by_kind
                .entry("other".into())
                .and_modify(|c| c.count += 1)
                .or_insert(ErrorCount {
                    count: 1,
                    first_message: e.lines().last().unwrap_or(e).chars().take(200).collect(),
                });
        }
        parts.errors = by_kind;
    }
    let goodput = run
        .get("request_goodput")
        .or_else(|| run.get("request_goodput:"))
        .and_then(Value::as_f64);
    if let Some(g) = goodput {
        let total = completed + failed;
        let good = (g * duration).round().max(0.0) as u64;
        imported.note(
            "goodput: the objectives are not in the file; `good` is request_goodput × duration",
        );
        parts.goodput = Some(Goodput {
            slo_ms: SloMs::default(),
            good,
            total,
            share: if total > 0 {
                good as f64 / total as f64
            } else {
                f64::NAN
            },
            requests_per_second: g,
        });
    }
    match &records {
        Some((recs, starts)) => {
            parts.fill_from_records(recs, starts.as_deref());
            let s = Summary::new(
                recs.iter()
                    .zip(
                        run.get("input_lens")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten(),
                    )
                    .filter(|(r, _)| r.ok)
                    .filter_map(|(_, n)| n.as_f64()),
            );
            if s.count() > 0 {
                parts.input_tokens = s.mean_std();
            }
            imported.note("latency recomputed from the per-request arrays (--save-detailed) with this project's definitions: TPOT = (E2EL − TTFT) / (tokens − 1), each chunk gap dealt over the tokens it carried");
            parts.latency = Some(build::latency_from_records(recs));
        }
        None => {
            parts.latency = summary_latency(run, completed, failed, imported);
            imported.unmapped(
                "request_tokens_per_second (needs the per-request arrays of --save-detailed)",
            );
        }
    }
    let recs = records.map(|(r, _)| r).unwrap_or_default();
    Ok((key, parts.build(), recs))
}

/// The latency block from the summary figures (milliseconds) when the per-request arrays are
/// not in the file.
fn summary_latency(
    run: &Value,
    completed: u64,
    failed: u64,
    imported: &mut Imported,
) -> Option<ChatLatency> {
    let mut any = false;
    let mut dist = |m: &str, count: u64| {
        let ms = |k: String| opt_num(run, &k).map(|x| x / 1e3);
        let mean = ms(format!("mean_{m}_ms"));
        any |= mean.is_some();
        Dist {
            count: if mean.is_some() { count } else { 0 },
            mean,
            std: ms(format!("std_{m}_ms")).map(|s| sample_std(s, count)),
            min: None,
            max: None,
            p50: ms(format!("median_{m}_ms")).or_else(|| ms(format!("p50_{m}_ms"))),
            p90: ms(format!("p90_{m}_ms")),
            p95: ms(format!("p95_{m}_ms")),
            p99: ms(format!("p99_{m}_ms")),
            p99_9: ms(format!("p99.9_{m}_ms")),
        }
        .build()
    };
    // One ITL value per chunk gap: with one token per chunk, output tokens − one per request.
    let gaps = opt_num(run, "total_output_tokens")
        .map(|t| (t as u64).saturating_sub(completed))
        .unwrap_or(0);
    let mut e2el = dist("e2el", completed);
    if e2el.mean.is_nan() {
        // Recent versions keep every request's `latencies` even without --save-detailed; a
        // failed request's is 0, so they are the successes' when every request succeeded.
        let latencies: Vec<f64> = run
            .get("latencies")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        if failed == 0 && !latencies.is_empty() && latencies.len() as u64 == completed {
            e2el = build::distribution_of(latencies);
            imported.note("E2EL from the per-request `latencies` (not among --percentile-metrics): the end is the last chunk with `choices`");
        }
    }
    let latency = ChatLatency {
        ttft: dist("ttft", completed),
        itl: dist("itl", gaps),
        tpot: dist("tpot", completed),
        e2el,
        time_to_first_answer_token: None,
        ttft_from_schedule: None,
        extra: serde_json::Map::new(),
    };
    if !any {
        return None;
    }
    imported.note("ITL values are gaps between chunks, not tokens: a chunk that carried several tokens is one gap (its count assumes one token per chunk)");
    imported.note("std converted from numpy's population std (n) to the sample std (n − 1)");
    imported.unmapped("min and max of the latencies (not in the summary)");
    if latency.e2el.mean.is_nan() {
        imported
            .unmapped("E2EL (neither among --percentile-metrics nor in per-request `latencies`)");
    }
    Some(latency)
}

/// Per-request records from `--save-detailed` arrays (`ttfts`, `itls`, `output_lens`, and
/// `latencies`, `start_times`, `errors` when present), with the requests' start times.
#[allow(clippy::type_complexity)]
fn records(
    run: &Value,
    completed: u64,
    failed: u64,
    imported: &mut Imported,
) -> Option<(Vec<RequestRecord>, Option<Vec<f64>>)> {
    let arr = |k: &str| run.get(k).and_then(Value::as_array);
    let (ttfts, itls, lens) = (arr("ttfts")?, arr("itls")?, arr("output_lens")?);
    let n = ttfts.len();
    if itls.len() != n || lens.len() != n {
        imported.note("the per-request arrays have different lengths and were not used");
        return None;
    }
    let errors = arr("errors").filter(|e| e.len() == n);
    if errors.is_none() && failed > 0 {
        imported.note(
            "the per-request arrays cannot tell failed requests (no `errors`) and were not used",
        );
        return None;
    }
    let latencies = arr("latencies").filter(|l| l.len() == n);
    let starts: Option<Vec<f64>> = arr("start_times")
        .filter(|s| s.len() == n)
        .map(|s| s.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let ok = match errors {
            Some(e) => e[i].as_str().is_some_and(str::is_empty),
            None => true,
        };
        let ttft = ttfts[i].as_f64()?;
        let gaps: Vec<f64> = itls[i]
            .as_array()?
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        let mut t = ttft;
        let mut times = vec![ttft];
        for g in &gaps {
            t += g;
            times.push(t);
        }
        let e2el = latencies.and_then(|l| l[i].as_f64()).unwrap_or(t);
        out.push(RequestRecord {
            level: String::new(),
            run: 0,
            ok,
            ttft_s: ok.then_some(ttft),
            e2el_s: ok.then_some(e2el),
            completion_tokens: lens[i].as_u64(),
            content_events: Some(times.len() as u64),
            first_token_s: Some(ttft),
            last_token_s: Some(t),
            token_s: ok.then_some(times),
            gaps_s: None,
        });
    }
    let ok = out.iter().filter(|r| r.ok).count() as u64;
    if ok != completed {
        imported.note(format!(
            "the per-request arrays have {ok} successes but `completed` is {completed}; they were not used"
        ));
        return None;
    }
    Some((out, starts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_become_iso_timestamps() {
        assert_eq!(timestamp("20250101-120005").unwrap(), "2025-01-01T12:00:05");
        assert!(timestamp("yesterday").is_none());
    }

    #[test]
    fn a_ramped_rate_is_imported_without_a_load_shape() {
        let v = serde_json::json!({
            "date": "20250101-120000", "backend": "openai-chat", "model_id": "m",
            "num_prompts": 10, "request_rate": "inf", "burstiness": 1.0, "max_concurrency": null,
            "ramp_up_strategy": "linear", "ramp_up_start_rps": 1, "ramp_up_end_rps": 10,
            "duration": 5.0, "completed": 10, "failed": 0, "total_input_tokens": 100,
            "total_output_tokens": 200, "request_throughput": 2.0, "output_throughput": 40.0,
            "mean_ttft_ms": 50.0, "median_ttft_ms": 48.0, "std_ttft_ms": 5.0, "p99_ttft_ms": 70.0
        });
        let r = convert(Path::new("ramp.json"), &[v]).unwrap();
        let tokenomics_stats::AnyDocument::Chat(d) = r.document else {
            panic!("chat")
        };
        let (key, level) = d.results.first().unwrap();
        assert_eq!(key, "ramp_up_linear_1_10");
        assert!(level.load.is_none() && d.metadata.mode.is_none());
        let imp = Imported::of(&d.metadata).unwrap();
        assert!(
            imp.unmapped
                .iter()
                .any(|u| u.starts_with("ramp_up_strategy")),
            "{imp:?}"
        );
        assert!(
            imp.unmapped
                .iter()
                .any(|u| u.starts_with("ramp_up_start_rps")),
            "{imp:?}"
        );
    }
}
