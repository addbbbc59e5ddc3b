//! Hugging Face inference-benchmarker's results JSON.
//!
//! The schema is `BenchmarkReportWriter` of huggingface/inference-benchmarker's `src/writers.rs`
//! (the version with `PercentilesWriter`, as stored in the search index): `{config, results,
//! start_time, end_time, system}`; `config` is `BenchmarkConfig` of `src/benchmark.rs` (commit
//! 3e5bc25a: `max_vus`, `duration_secs`, `benchmark_kind`, `rates`, `prompt_options`,
//! `decode_options`, `tokenizer`, `model_name`, `run_id`, …); each result is
//! `BenchmarkResultsWriter` `{id, executor_type, config: {max_vus, duration_secs, rate},
//! total_requests, total_tokens, token_throughput_secs, duration_ms, time_to_first_token_ms,
//! inter_token_latency_ms, e2e_latency_ms (each {p50, p60, p70, p80, p90, p95, p99, avg} in
//! milliseconds), failed_requests, successful_requests, request_rate, total_tokens_sent}`.
//! The executors are in `src/executors.rs` (37906381), the figures in `src/results.rs`
//! (76faac2d) and `src/requests.rs` (13ef12fc).
//!
//! How its definitions differ: a request's inter-token latency is (last token − first token) /
//! (generated tokens − 1), this project's TPOT up to where the request ends; tokens are counted
//! with a client-side tokenizer from the text, not taken from the server's usage; percentiles
//! interpolate linearly (as numpy does) but are written with microsecond resolution; no std,
//! min or max is written. Its `ConstantArrivalRate` executor starts requests on a 10 ms tick and
//! skips (rather than queues) a request when `max_vus` are in flight.

use std::path::Path;

use serde_json::{Map, Value};
use tokenomics_stats::{
    AnyDocument, Arrival, AtEnd, ChatLatency, LimitsBlock, Load, ScheduleBlock,
};

use super::build::{self, opt_num, opt_str, rate_key, Dist, LevelParts, MetaParts};
use super::{AnyResult, Format, Imported};
use crate::Result;

/// A report: `config`, `system`, and `results` whose entries name their executor.
pub(super) fn looks_like(v: &Value) -> bool {
    v.get("config").is_some_and(Value::is_object)
        && v.get("system").is_some()
        && v.get("results")
            .and_then(Value::as_array)
            .is_some_and(|r| r.first().is_some_and(|x| x.get("executor_type").is_some()))
}

/// One `PercentilesWriter` (milliseconds) as a distribution in seconds.
fn dist(v: Option<&Value>, count: u64) -> Dist {
    let Some(v) = v else {
        return Dist::default();
    };
    let ms = |k: &str| opt_num(v, k).map(|x| x / 1e3);
    Dist {
        count,
        mean: ms("avg"),
        std: None,
        min: None,
        max: None,
        p50: ms("p50"),
        p90: ms("p90"),
        p95: ms("p95"),
        p99: ms("p99"),
        p99_9: None,
    }
}

pub(super) fn convert(path: &Path, v: &Value) -> Result<AnyResult> {
    let src = build::source(path, Format::InferenceBenchmarker);
    let mut imported = Imported::new(Format::InferenceBenchmarker, None);
    imported.note("TPOT is inference-benchmarker's inter_token_latency: per request (last token − first token) / (generated tokens − 1)");
    imported.note("tokens are counted by a client-side tokenizer on the streamed text, not taken from the server's usage");
    imported.note(
        "percentiles were written with microsecond resolution; no std, min or max is in the file",
    );
    imported.unmapped("the inter-token latency of every gap (only per-request averages are written): latency.itl is empty");
    imported.unmapped("p60, p70, p80 of the latencies");
    imported.unmapped("system (the client machine)");
    let config = v.get("config").cloned().unwrap_or(Value::Null);
    let results = v
        .get("results")
        .and_then(Value::as_array)
        .ok_or_else(|| src.malformed("`results` is not an array"))?;
    let mut levels = Vec::new();
    for (i, r) in results.iter().enumerate() {
        let where_ = format!("result {}", i + 1);
        let id = opt_str(r, "id").unwrap_or("");
        if id == "warmup" {
            imported.note("the warm-up run (`id` warmup) is left out");
            continue;
        }
        let rc = r
            .get("config")
            .ok_or_else(|| src.malformed(format!("{where_} has no `config`")))?;
        let max_vus = src.count(rc, "max_vus", &format!("{where_}'s config"))?;
        let limits = LimitsBlock {
            num_requests: None,
            duration_seconds: opt_num(rc, "duration_secs"),
            warmup_seconds: 0.0,
            at_end: AtEnd::Wait,
        };
        let (key, load) = match opt_str(r, "executor_type") {
            Some("ConstantVUs") => (
                max_vus.to_string(),
                Load::ClosedLoop {
                    max_concurrency: max_vus,
                    limits,
                },
            ),
            Some("ConstantArrivalRate") => {
                let rate = src.num(rc, "rate", &format!("{where_}'s config"))?;
                (
                    rate_key(rate),
                    Load::OpenLoop {
                        ramp: None,
                        request_rate: rate,
                        arrival: Arrival::Constant,
                        burstiness: 1.0,
                        max_concurrency: Some(max_vus),
                        limits,
                        schedule: ScheduleBlock::default(),
                    },
                )
            }
            other => {
                return Err(src.malformed(format!(
                "{where_} has executor_type {other:?}; expected ConstantVUs or ConstantArrivalRate"
            )))
            }
        };
        let succeeded = src.count(r, "successful_requests", &where_)?;
        let failed = src.count(r, "failed_requests", &where_)?;
        let duration = src.num(r, "duration_ms", &where_)? / 1e3;
        let mut parts = LevelParts::new(duration, succeeded, failed);
        parts.load = Some(load);
        parts.output_tokens_per_s = src.num(r, "token_throughput_secs", &where_)?;
        parts.requests_per_s = opt_num(r, "request_rate");
        if succeeded > 0 {
            let per = |k: &str| opt_num(r, k).map_or(f64::NAN, |t| t / succeeded as f64);
            parts.output_tokens = build::stat(per("total_tokens"), f64::NAN);
            parts.input_tokens = build::stat(per("total_tokens_sent"), f64::NAN);
        }
        let ttft = dist(r.get("time_to_first_token_ms"), succeeded);
        let tpot = dist(r.get("inter_token_latency_ms"), succeeded);
        let e2el = dist(r.get("e2e_latency_ms"), succeeded);
        parts.latency = Some(ChatLatency {
            ttft: ttft.build(),
            itl: Dist::default().build(),
            tpot: tpot.build(),
            e2el: e2el.build(),
            time_to_first_answer_token: None,
            ttft_from_schedule: None,
            extra: Map::new(),
        });
        levels.push((key, parts.build()));
    }
    let max_tokens = config
        .pointer("/decode_options/num_tokens")
        .and_then(Value::as_u64);
    let meta = MetaParts {
        timestamp: opt_str(v, "start_time").map(str::to_string),
        model: opt_str(&config, "model_name").map(str::to_string),
        max_tokens,
        // The OpenAI backend sends temperature 0 with every request (src/requests.rs).
        temperature: Some(0.0),
        description: format!(
            "inference-benchmarker {}{}",
            opt_str(&config, "benchmark_kind").unwrap_or(""),
            opt_str(&config, "run_id")
                .map(|id| format!(" ({id})"))
                .unwrap_or_default()
        ),
        stream: Some(true),
        endpoint: Some("chat".into()),
        outputs_forced: None,
        ..MetaParts::default()
    };
    if let Some(t) = opt_str(&config, "tokenizer") {
        imported.unmapped(format!(
            "config.tokenizer ({t}; the dataset itself is not recorded)"
        ));
    }
    if config.get("prompt_options").is_some_and(|p| !p.is_null()) {
        imported.unmapped("config.prompt_options (prompt lengths in tokens)");
    }
    let document = build::document(&src, meta, levels, imported)?;
    Ok(AnyResult {
        format: Format::InferenceBenchmarker,
        document: AnyDocument::Chat(document),
        records: None,
    })
}
