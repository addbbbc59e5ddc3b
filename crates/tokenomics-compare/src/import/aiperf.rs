//! NVIDIA AIPerf `profile_export_aiperf.json`, with its per-request `profile_export.jsonl`
//! when it is beside it.
//!
//! The schema is `JsonExportData` of ai-dynamo/aiperf's `src/aiperf/common/models/
//! export_models.py` (commit 26240f9e): one `JsonMetricResult` `{unit, avg, p1 … p99, min,
//! max, std}` per metric (`request_throughput`, `request_latency`, `request_count`,
//! `time_to_first_token`, `inter_token_latency`, `inter_chunk_latency`,
//! `output_token_throughput`, `output_sequence_length`, `input_sequence_length`,
//! `benchmark_duration`, `error_request_count`, `goodput`, `good_request_count`, …), the run's
//! `input_config` (`endpoint`, `loadgen`, `input`), `aiperf_version`, `start_time`. Statistics
//! are computed by `src/aiperf/metrics/metric_dicts.py` (0fec57a6): numpy's linear percentiles
//! and the population std (ddof 0). The records file is described in `docs/tutorials/
//! working-with-profile-exports.md` (13992dbd): one `{metadata, metrics: {name: {value,
//! unit}}, error}` per request.
//!
//! How AIPerf's definitions differ (`docs/metrics_reference.md`, 25f81175): TTFT ends at the
//! first response chunk; its `inter_token_latency` is (request latency − TTFT) / (output
//! sequence length − 1), which is this project's TPOT; `inter_chunk_latency` are the gaps
//! between chunks, this project's ITL only when every chunk carries one token; output tokens
//! are counted with a client-side tokenizer (reasoning tokens included in the sequence length),
//! not taken from the server's usage; request latency ends at the last response chunk.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use tokenomics_stats::{
    AnyDocument, Arrival, AtEnd, ChatLatency, Goodput, LimitsBlock, Load, ScheduleBlock, SloMs,
};

use super::build::{self, opt_num, opt_str, rate_key, sample_std, Dist, LevelParts, MetaParts};
use super::{AnyResult, Format, Imported};
use crate::records::{Records, RequestRecord};
use crate::{Error, Result};

/// An export: `request_throughput` is a metric result with a unit.
pub(super) fn looks_like(v: &Value) -> bool {
    v.get("request_throughput")
        .is_some_and(|m| m.get("unit").is_some_and(Value::is_string))
}

/// Seconds per unit of a time metric.
fn seconds_per(unit: &str) -> Option<f64> {
    match unit {
        "ns" => Some(1e-9),
        "us" | "µs" => Some(1e-6),
        "ms" => Some(1e-3),
        "s" | "sec" | "seconds" => Some(1.0),
        _ => None,
    }
}

struct Metrics<'a> {
    src: build::Source<'a>,
    v: &'a Value,
}

impl Metrics<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.v.get(name).filter(|m| m.is_object())
    }

    /// The average of a metric, required.
    fn avg(&self, name: &str) -> Result<f64> {
        self.get(name)
            .and_then(|m| opt_num(m, "avg"))
            .ok_or_else(|| self.src.malformed(format!("it has no `{name}.avg`")))
    }

    /// A time metric as a distribution in seconds over `n` values (`None` when absent); its unit
    /// must be a unit of time.
    fn time(&self, name: &str, n: Option<u64>) -> Result<Option<Dist>> {
        let Some(m) = self.get(name) else {
            return Ok(None);
        };
        let unit = opt_str(m, "unit").unwrap_or("");
        let scale = seconds_per(unit).ok_or_else(|| {
            self.src.malformed(format!(
                "`{name}` is in {unit:?}; expected ns, us, ms or sec"
            ))
        })?;
        let f = |k: &str| opt_num(m, k).map(|x| x * scale);
        Ok(Some(Dist {
            count: n.unwrap_or(0),
            mean: f("avg"),
            // Population std; made the sample std when the count is known.
            std: f("std").map(|s| n.map_or(s, |n| sample_std(s, n))),
            min: f("min"),
            max: f("max"),
            p50: f("p50"),
            p90: f("p90"),
            p95: f("p95"),
            p99: f("p99"),
            p99_9: None,
        }))
    }
}

pub(super) fn convert(path: &Path, v: &Value) -> Result<AnyResult> {
    let src = build::source(path, Format::Aiperf);
    let mut imported = Imported::new(
        Format::Aiperf,
        opt_str(v, "aiperf_version").map(str::to_string),
    );
    let m = Metrics {
        src: build::source(path, Format::Aiperf),
        v,
    };
    let succeeded = m.avg("request_count")?.round() as u64;
    let failed = m
        .get("error_request_count")
        .and_then(|e| opt_num(e, "avg"))
        .map_or(0, |x| x.round() as u64);
    let duration = {
        let d = m
            .get("benchmark_duration")
            .ok_or_else(|| src.malformed("it has no `benchmark_duration`"))?;
        let unit = opt_str(d, "unit").unwrap_or("");
        let scale = seconds_per(unit).ok_or_else(|| {
            src.malformed(format!(
                "`benchmark_duration` is in {unit:?}; expected a unit of time"
            ))
        })?;
        m.avg("benchmark_duration")? * scale
    };
    let cfg = v.get("input_config").cloned().unwrap_or(Value::Null);
    let loadgen = cfg.get("loadgen").cloned().unwrap_or(Value::Null);
    let request_count = loadgen.get("request_count").and_then(Value::as_u64);
    let limits = LimitsBlock {
        num_requests: request_count,
        duration_seconds: opt_num(&loadgen, "benchmark_duration"),
        warmup_seconds: 0.0,
        at_end: AtEnd::Wait,
    };
    let concurrency = loadgen.get("concurrency").and_then(Value::as_u64);
    let (key, load) = match (opt_num(&loadgen, "request_rate"), concurrency) {
        (Some(rate), cap) => {
            let arrival = match opt_str(&loadgen, "request_rate_mode") {
                Some("constant") => Arrival::Constant,
                _ => Arrival::Poisson,
            };
            (
                rate_key(rate),
                Some(Load::OpenLoop {
                    ramp: None,
                    request_rate: rate,
                    arrival,
                    burstiness: 1.0,
                    max_concurrency: cap,
                    limits,
                    schedule: ScheduleBlock::default(),
                }),
            )
        }
        (None, Some(c)) => (
            c.to_string(),
            Some(Load::ClosedLoop {
                max_concurrency: c,
                limits,
            }),
        ),
        (None, None) => {
            imported.unmapped(
                "the load shape (input_config.loadgen has neither concurrency nor request_rate)",
            );
            ("1".to_string(), None)
        }
    };

    let records = match records_beside(path, &key) {
        Ok(Some(r)) if r.iter().filter(|x| x.ok).count() as u64 == succeeded => Some(r),
        Ok(Some(r)) => {
            imported.note(format!(
                "the per-request file beside it has {} successful records, the summary {succeeded}: not used",
                r.iter().filter(|x| x.ok).count()
            ));
            None
        }
        Ok(None) => None,
        Err(e) => {
            imported.note(format!("the per-request file beside it is not used: {e}"));
            None
        }
    };
    let icl_count = records.as_ref().map(|r| {
        r.iter()
            .filter(|x| x.ok)
            .filter_map(|x| x.gaps_s.as_ref().map(Vec::len))
            .sum::<usize>() as u64
    });
    let mut parts = LevelParts::new(duration, succeeded, failed);
    parts.load = load;
    parts.output_tokens_per_s = m
        .get("output_token_throughput")
        .and_then(|x| opt_num(x, "avg"))
        .unwrap_or(build::UNKNOWN);
    parts.requests_per_s = m.get("request_throughput").and_then(|x| opt_num(x, "avg"));
    let tokens = |name: &str| {
        m.get(name).map(|x| {
            build::stat(
                opt_num(x, "avg").unwrap_or(f64::NAN),
                opt_num(x, "std").map_or(f64::NAN, |s| sample_std(s, succeeded)),
            )
        })
    };
    if let Some(t) = tokens("output_sequence_length") {
        parts.output_tokens = t;
    }
    if let Some(t) = tokens("input_sequence_length") {
        parts.input_tokens = t;
    }
    let n = Some(succeeded);
    let ttft = m.time("time_to_first_token", n)?;
    let tpot = m.time("inter_token_latency", n)?;
    let itl = m.time("inter_chunk_latency", icl_count)?;
    let e2el = m.time("request_latency", n)?;
    if ttft.is_some() || tpot.is_some() || itl.is_some() {
        parts.latency = Some(ChatLatency {
            ttft: ttft.unwrap_or_default().build(),
            itl: itl.unwrap_or_default().build(),
            tpot: tpot.unwrap_or_default().build(),
            e2el: e2el.unwrap_or_default().build(),
            time_to_first_answer_token: None,
            ttft_from_schedule: None,
            extra: Map::new(),
        });
        imported.note("TPOT is AIPerf's inter_token_latency: (request latency − TTFT) / (output sequence length − 1), per request");
        imported.note("ITL values are AIPerf's inter_chunk_latency: gaps between chunks, equal to this project's ITL only when each chunk carries one token");
        imported.note("std converted from numpy's population std to the sample std (n − 1)");
        if icl_count.is_none() {
            imported.note("the std of inter_chunk_latency stays a population std: its count is not in the file");
        }
        imported.unmapped("p99.9 of the latencies (AIPerf reports p1 … p99)");
    } else if let Some(e) = e2el {
        // A non-streamed run: only the request latency.
        imported.unmapped(format!(
            "request_latency (non-streamed run; mean {:.6} s)",
            e.mean.unwrap_or(f64::NAN)
        ));
    }
    imported.note("output tokens are counted by AIPerf's client-side tokenizer (reasoning tokens included), not taken from the server's usage");
    if let (Some(good), Some(g_rate)) = (
        m.get("good_request_count").and_then(|x| opt_num(x, "avg")),
        m.get("goodput").and_then(|x| opt_num(x, "avg")),
    ) {
        let total = succeeded + failed;
        let good = good.round() as u64;
        parts.goodput = Some(Goodput {
            slo_ms: SloMs::default(),
            good,
            total,
            share: if total > 0 {
                good as f64 / total as f64
            } else {
                f64::NAN
            },
            requests_per_second: g_rate,
        });
        imported.note("goodput: the objectives are in input_config, not in the level's `slo_ms`");
    }
    if let Some(obj) = v.as_object() {
        const MAPPED: [&str; 22] = [
            "schema_version",
            "aiperf_version",
            "benchmark_id",
            "request_throughput",
            "request_latency",
            "request_count",
            "time_to_first_token",
            "inter_token_latency",
            "inter_chunk_latency",
            "output_token_throughput",
            "output_sequence_length",
            "input_sequence_length",
            "benchmark_duration",
            "error_request_count",
            "goodput",
            "good_request_count",
            "input_config",
            "start_time",
            "end_time",
            "was_cancelled",
            "error_summary",
            "telemetry_data",
        ];
        for k in obj.keys().filter(|k| !MAPPED.contains(&k.as_str())) {
            imported.unmapped(k.clone());
        }
    }
    if let Some(recs) = &records {
        parts.fill_from_records(recs, None);
    }
    let endpoint = cfg.get("endpoint").cloned().unwrap_or(Value::Null);
    let meta = MetaParts {
        timestamp: opt_str(v, "start_time").map(str::to_string),
        model: endpoint
            .get("model_names")
            .and_then(Value::as_array)
            .and_then(|n| n.first())
            .and_then(Value::as_str)
            .map(str::to_string),
        api_base: opt_str(&endpoint, "url").map(str::to_string),
        seed: cfg.pointer("/input/random_seed").and_then(Value::as_u64),
        warmup_runs: loadgen.get("warmup_request_count").and_then(Value::as_u64),
        description: format!(
            "AIPerf ({})",
            path.parent()
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string())
        ),
        stream: endpoint.get("streaming").and_then(Value::as_bool),
        endpoint: opt_str(&endpoint, "type").map(str::to_string),
        limits: Some(limits),
        ..MetaParts::default()
    };
    let document = build::document(&src, meta, vec![(key.clone(), parts.build())], imported)?;
    Ok(AnyResult {
        format: Format::Aiperf,
        document: AnyDocument::Chat(document),
        records: records.map(|r| {
            Records::new(
                companion(path).unwrap_or_default(),
                r.into_iter().map(|mut x| {
                    x.level = key.clone();
                    x
                }),
            )
        }),
    })
}

/// The per-request file AIPerf writes beside the summary.
fn companion(path: &Path) -> Option<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new(""));
    let stem = path.file_stem()?.to_string_lossy().into_owned();
    let named = stem
        .strip_suffix("_aiperf")
        .map(|s| dir.join(format!("{s}.jsonl")));
    named
        .into_iter()
        .chain([dir.join("profile_export.jsonl")])
        .find(|p| p.is_file())
}

fn records_beside(path: &Path, level: &str) -> Result<Option<Vec<RequestRecord>>> {
    match companion(path) {
        Some(p) => read_records(&p, level).map(Some),
        None => Ok(None),
    }
}

/// Reads AIPerf's `profile_export.jsonl`: the profiling phase's requests (warm-up excluded),
/// times converted to seconds by each metric's unit.
pub(crate) fn read_records(path: &Path, level: &str) -> Result<Vec<RequestRecord>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |line: usize, message: String| {
        Error::Records {
        path: path.to_path_buf(),
        message: format!("line {line}: {message}; expected AIPerf profile_export.jsonl records ({{metadata, metrics, error}})"),
    }
    };
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(raw).map_err(|e| bad(i + 1, e.to_string()))?;
        let (Some(meta), Some(metrics)) = (v.get("metadata"), v.get("metrics")) else {
            return Err(bad(i + 1, "no `metadata` and `metrics`".into()));
        };
        if opt_str(meta, "benchmark_phase").is_some_and(|p| p != "profiling") {
            continue;
        }
        let ok = v.get("error").is_none_or(Value::is_null);
        let time = |name: &str| -> std::result::Result<Option<Value>, Error> {
            let Some(m) = metrics.get(name) else {
                return Ok(None);
            };
            let unit = opt_str(m, "unit").unwrap_or("");
            let scale =
                seconds_per(unit).ok_or_else(|| bad(i + 1, format!("`{name}` is in {unit:?}")))?;
            Ok(m.get("value").map(|x| match x {
                Value::Array(a) => Value::Array(
                    a.iter()
                        .filter_map(Value::as_f64)
                        .map(|y| Value::from(y * scale))
                        .collect(),
                ),
                other => other
                    .as_f64()
                    .map_or(Value::Null, |y| Value::from(y * scale)),
            }))
        };
        let ttft = time("time_to_first_token")?.and_then(|x| x.as_f64());
        let e2el = time("request_latency")?.and_then(|x| x.as_f64());
        let gaps: Option<Vec<f64>> = time("inter_chunk_latency")?.and_then(|x| {
            x.as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
        });
        let tokens = metrics
            .pointer("/output_sequence_length/value")
            .and_then(Value::as_u64);
        // Chunk arrival times from the first: one more than the gaps.
        let token_s = ttft.zip(gaps.as_ref()).map(|(t, g)| {
            let mut times = vec![t];
            let mut at = t;
            for x in g {
                at += x;
                times.push(at);
            }
            times
        });
        out.push(RequestRecord {
            level: level.to_string(),
            run: 0,
            ok,
            ttft_s: ttft,
            e2el_s: e2el,
            completion_tokens: tokens,
            content_events: token_s.as_ref().map(|t| t.len() as u64),
            first_token_s: ttft,
            last_token_s: token_s.as_ref().and_then(|t| t.last().copied()),
            token_s,
            gaps_s: gaps,
        });
    }
    if out.is_empty() {
        return Err(bad(1, "no profiling-phase record".into()));
    }
    Ok(out)
}
