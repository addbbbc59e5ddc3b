//! The pieces every importer assembles a [`ChatDocument`] from, so that each foreign format's
//! module holds only its mapping.

use std::path::Path;

use indexmap::IndexMap;
use serde_json::{Map, Value};
use tokenomics_stats::{
    ArrivalBlock, ChatDocument, ChatLatency, ChatLevel, ChatMetadata, ChatThroughput, ChatTimings,
    ChatTokens, Distribution, ErrorCount, Goodput, LimitsBlock, Load, Mode, RequestCounts, Stat,
    Summary,
};

use super::{Format, Imported};
use crate::records::RequestRecord;
use crate::{Error, Result};

/// A field of a foreign file, read with the path and format for the message when it is wrong.
pub(crate) struct Source<'a> {
    pub path: &'a Path,
    pub format: &'static str,
}

impl Source<'_> {
    pub fn malformed(&self, message: impl Into<String>) -> Error {
        Error::Malformed {
            path: self.path.to_path_buf(),
            format: self.format,
            message: message.into(),
        }
    }

    /// A number the format requires at `key` of `v` (`where_` names `v` in the message).
    pub fn num(&self, v: &Value, key: &str, where_: &str) -> Result<f64> {
        opt_num(v, key).ok_or_else(|| self.malformed(format!("{where_} has no number `{key}`")))
    }

    /// A whole number the format requires.
    pub fn count(&self, v: &Value, key: &str, where_: &str) -> Result<u64> {
        v.get(key)
            .and_then(Value::as_u64)
            .ok_or_else(|| self.malformed(format!("{where_} has no count `{key}`")))
    }
}

/// A finite number at `key`, if there is one.
pub(crate) fn opt_num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64).filter(|x| x.is_finite())
}

/// A string at `key`, if there is one.
pub(crate) fn opt_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The sample standard deviation (n − 1) from a population one (n) over `n` values: 0 for one
/// value, NaN for none or an unknown spread.
pub(crate) fn sample_std(population: f64, n: u64) -> f64 {
    match n {
        0 => f64::NAN,
        1 => 0.0,
        n => population * (n as f64 / (n - 1) as f64).sqrt(),
    }
}

/// A level key for a request rate as `oai-bench` writes it: `5`, `20.5`.
pub(crate) fn rate_key(rate: f64) -> String {
    if rate.fract() == 0.0 && rate.abs() < 1e15 {
        format!("{}", rate as i64)
    } else {
        format!("{rate}")
    }
}

/// A figure unknown to the source: NaN (written as `null`).
pub(crate) const UNKNOWN: f64 = f64::NAN;

/// `{mean, std}`; built from an empty summary so that fields the documents gain later keep
/// their defaults.
pub(crate) fn stat(mean: f64, std: f64) -> Stat {
    let mut s = Summary::new(std::iter::empty()).mean_std();
    s.mean = mean;
    s.std = std;
    s
}

/// A summary distribution from another tool's figures, already in seconds. `None` fields are
/// NaN: not measured by the source.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Dist {
    pub count: u64,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub p99_9: Option<f64>,
}

impl Dist {
    pub fn build(self) -> Distribution {
        let f = |x: Option<f64>| x.unwrap_or(UNKNOWN);
        // From an empty summary, so that fields the documents gain later keep their defaults.
        let mut d = Summary::new(std::iter::empty()).distribution();
        d.count = self.count;
        d.mean = f(self.mean);
        d.std = f(self.std);
        d.min = f(self.min);
        d.max = f(self.max);
        d.p50 = f(self.p50);
        d.p90 = f(self.p90);
        d.p95 = f(self.p95);
        d.p99 = f(self.p99);
        d.p99_9 = f(self.p99_9);
        d
    }
}

/// A distribution computed from values with this project's conventions (sample std, numpy's
/// linear percentiles).
pub(crate) fn distribution_of(values: impl IntoIterator<Item = f64>) -> Distribution {
    Summary::new(values).distribution()
}

/// The latency block of a level computed from per-request records with this project's
/// definitions (TTFT and E2EL as recorded, TPOT from them, ITL from each request's token times).
pub(crate) fn latency_from_records(records: &[RequestRecord]) -> ChatLatency {
    let ok: Vec<&RequestRecord> = records.iter().filter(|r| r.ok).collect();
    ChatLatency {
        ttft: distribution_of(ok.iter().filter_map(|r| r.ttft_s)),
        itl: distribution_of(ok.iter().filter_map(|r| r.itl_s()).flatten()),
        tpot: distribution_of(ok.iter().filter_map(|r| r.tpot_s())),
        e2el: distribution_of(ok.iter().filter_map(|r| r.e2el_s)),
        time_to_first_answer_token: None,
        ttft_from_schedule: None,
        extra: Map::new(),
    }
}

/// What one level of a foreign run measured, in this project's units.
pub(crate) struct LevelParts {
    pub load: Option<Load>,
    /// The run's duration (first send → last end, or the tool's nearest figure), seconds.
    pub duration_s: f64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Failures by kind (`first_message` as the tool gave it).
    pub errors: IndexMap<String, ErrorCount>,
    pub input_tokens: Stat,
    pub output_tokens: Stat,
    /// Output tokens of the successful requests / the duration.
    pub output_tokens_per_s: f64,
    pub requests_per_s: Option<f64>,
    /// Per request: completion tokens / E2EL, pooled.
    pub request_tokens_per_s: Stat,
    pub latency: Option<ChatLatency>,
    /// Earliest and latest end of a successful request after the first send, seconds.
    pub fastest_s: Option<f64>,
    pub slowest_s: Option<f64>,
    pub goodput: Option<Goodput>,
}

impl LevelParts {
    pub fn new(duration_s: f64, succeeded: u64, failed: u64) -> Self {
        Self {
            load: None,
            duration_s,
            succeeded,
            failed,
            cancelled: 0,
            errors: IndexMap::new(),
            input_tokens: stat(UNKNOWN, UNKNOWN),
            output_tokens: stat(UNKNOWN, UNKNOWN),
            output_tokens_per_s: UNKNOWN,
            requests_per_s: None,
            request_tokens_per_s: stat(UNKNOWN, UNKNOWN),
            latency: None,
            fastest_s: None,
            slowest_s: None,
            goodput: None,
        }
    }

    /// Fills what per-request records can tell and the tool's summary did not: token counts,
    /// per-request tokens/s, the fastest and slowest request.
    pub fn fill_from_records(&mut self, records: &[RequestRecord], starts_s: Option<&[f64]>) {
        let ok: Vec<&RequestRecord> = records.iter().filter(|r| r.ok).collect();
        if self.output_tokens.std.is_nan() {
            let s = Summary::new(
                ok.iter()
                    .filter_map(|r| r.completion_tokens.map(|n| n as f64)),
            );
            if s.count() > 0 {
                self.output_tokens = s.mean_std();
            }
        }
        let tps = Summary::new(ok.iter().filter_map(|r| r.tokens_per_second()));
        if tps.count() > 0 {
            self.request_tokens_per_s = tps.mean_std();
        }
        if let Some(starts) = starts_s {
            // Ends of successful requests relative to the first send.
            let first = starts.iter().copied().fold(f64::INFINITY, f64::min);
            let ends: Vec<f64> = records
                .iter()
                .zip(starts)
                .filter(|(r, _)| r.ok)
                .filter_map(|(r, s)| r.e2el_s.map(|e| s + e - first))
                .collect();
            if !ends.is_empty() {
                self.fastest_s = Some(ends.iter().copied().fold(f64::INFINITY, f64::min));
                self.slowest_s = Some(ends.iter().copied().fold(f64::NEG_INFINITY, f64::max));
            }
        }
    }

    pub fn build(self) -> ChatLevel {
        let one = |x: f64| stat(x, if x.is_nan() { UNKNOWN } else { 0.0 });
        let fastest = self.fastest_s.unwrap_or(UNKNOWN);
        let slowest = self.slowest_s.unwrap_or(UNKNOWN);
        ChatLevel {
            tokens: ChatTokens {
                input_per_request: self.input_tokens,
                output_per_request: self.output_tokens,
                output_token_source: None,
                content_events_per_request: None,
                extra: Map::new(),
            },
            timings: ChatTimings {
                batch_total_seconds: one(self.duration_s),
                fastest_seconds: one(fastest),
                slowest_seconds: one(slowest),
                spread_seconds: one(slowest - fastest),
                extra: Map::new(),
            },
            throughput: ChatThroughput {
                batch_tokens_per_second: one(self.output_tokens_per_s),
                request_tokens_per_second: self.request_tokens_per_s,
                requests_per_second: self.requests_per_s.map(one),
                steady_state: None,
                extra: Map::new(),
            },
            latency: self.latency,
            requests: Some(RequestCounts {
                succeeded: self.succeeded,
                failed: self.failed,
                retries: None,
                cancelled: self.cancelled,
                aborted: 0,
                errors: self.errors,
            }),
            goodput: self.goodput,
            load: self.load,
            percentiles: None,
            cost: None,
            server_metrics: None,
            timeline: None,
            probes: None,
            endpoints: None,
            prefix_cache: None,
            conversation: None,
            client_load: None,
            incomplete: false,
            extra: Map::new(),
        }
    }
}

/// The metadata fields a foreign file may or may not record; what it does not is written as 0
/// or empty and named in `imported.not_recorded`.
#[derive(Default)]
pub(crate) struct MetaParts {
    pub timestamp: Option<String>,
    pub model: Option<String>,
    pub dataset_key: Option<String>,
    pub api_base: Option<String>,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub seed: Option<u64>,
    pub warmup_runs: Option<u64>,
    pub description: String,
    pub stream: Option<bool>,
    pub endpoint: Option<String>,
    pub outputs_forced: Option<bool>,
    pub limits: Option<LimitsBlock>,
    pub arrival: Option<ArrivalBlock>,
    pub dataset: Option<Value>,
}

/// Assembles the document: the metadata, one level per key (in order), and `imported`.
pub(crate) fn document(
    src: &Source<'_>,
    parts: MetaParts,
    levels: Vec<(String, ChatLevel)>,
    mut imported: Imported,
) -> Result<ChatDocument> {
    if levels.is_empty() {
        return Err(src.malformed("it has no benchmark to import"));
    }
    let mut not_recorded = Vec::new();
    let mut known = |name: &str, present: bool| {
        if !present {
            not_recorded.push(name.to_string());
        }
    };
    known("timestamp", parts.timestamp.is_some());
    known("model", parts.model.is_some());
    known("dataset_key", parts.dataset_key.is_some());
    known("api_base", parts.api_base.is_some());
    known("max_tokens", parts.max_tokens.is_some());
    known("temperature", parts.temperature.is_some());
    known("seed", parts.seed.is_some());
    known("warmup_runs", parts.warmup_runs.is_some());
    let mut results = IndexMap::new();
    for (key, level) in levels {
        if results.insert(key.clone(), level).is_some() {
            return Err(src.malformed(format!(
                "two of its benchmarks are the same level {key:?}; import them from separate files"
            )));
        }
    }
    let modes: Vec<Option<Mode>> = results
        .values()
        .map(|l| l.load.as_ref().map(Load::mode))
        .collect();
    let mode = match modes.first() {
        Some(Some(m)) if modes.iter().all(|x| *x == Some(*m)) => Some(*m),
        _ => None,
    };
    let batch_sizes: Vec<u64> = results
        .values()
        .filter_map(|l| match &l.load {
            Some(Load::Burst { batch_size }) => Some(*batch_size),
            Some(Load::ClosedLoop {
                max_concurrency, ..
            }) => Some(*max_concurrency),
            _ => None,
        })
        .collect();
    imported.not_recorded = not_recorded;
    let mut extra = Map::new();
    extra.insert("imported".into(), serde_json::to_value(&imported)?);
    let metadata = ChatMetadata {
        timestamp: parts.timestamp.unwrap_or_default(),
        model: parts.model.unwrap_or_default(),
        dataset_key: parts.dataset_key.unwrap_or_default(),
        api_base: parts.api_base.unwrap_or_default(),
        batch_sizes,
        num_runs: 1,
        max_tokens: parts.max_tokens.unwrap_or(0),
        temperature: parts.temperature.unwrap_or(0.0),
        seed: parts.seed.unwrap_or(0),
        warmup_runs: parts.warmup_runs.unwrap_or(0),
        n_cores: 0,
        description: parts.description,
        tool: None,
        mode,
        levels: (mode != Some(Mode::Burst)).then(|| results.keys().cloned().collect()),
        limits: parts.limits,
        arrival: parts.arrival,
        endpoint: parts.endpoint,
        stream: parts.stream,
        timeout_seconds: None,
        dataset: parts.dataset,
        outputs_forced: parts.outputs_forced,
        simulated: None,
        extra_body: None,
        preflight: None,
        shard: None,
        merged: None,
        cost: None,
        sweep: None,
        slo_search: None,
        insecure_tls: false,
        balance: None,
        stages: None,
        conversation: None,
        incomplete: false,
        extra,
    };
    Ok(ChatDocument { metadata, results })
}

/// Unix seconds as an ISO 8601 UTC timestamp (`2025-10-07T05:00:07.532`), the form the
/// documents' `timestamp` has.
pub(crate) fn iso_from_unix(secs: f64) -> Option<String> {
    if !(0.0..=1e11).contains(&secs) {
        return None;
    }
    let whole = secs.floor() as i64;
    let millis = ((secs - whole as f64) * 1000.0).floor() as i64;
    let days = whole.div_euclid(86_400);
    let rem = whole.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

/// The format's name for messages.
pub(crate) fn source<'a>(path: &'a Path, format: Format) -> Source<'a> {
    Source {
        path,
        format: match format {
            Format::Vllm => "vLLM bench serve",
            Format::Guidellm => "GuideLLM benchmarks.json",
            Format::Aiperf => "AIPerf profile_export_aiperf.json",
            Format::InferenceBenchmarker => "inference-benchmarker",
            Format::Tokenomics | Format::OriginalScripts => "Tokenomics (oai-bench)",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn population_std_becomes_the_sample_std() {
        // [1, 2, 3, 4]: population std sqrt(1.25), sample std sqrt(5/3).
        let s = sample_std(1.25f64.sqrt(), 4);
        assert!((s - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(sample_std(3.0, 1), 0.0);
        assert!(sample_std(3.0, 0).is_nan());
    }

    #[test]
    fn rate_keys_and_timestamps_are_written_as_oai_bench_writes_them() {
        assert_eq!(rate_key(5.0), "5");
        assert_eq!(rate_key(20.5), "20.5");
        assert_eq!(iso_from_unix(0.0).unwrap(), "1970-01-01T00:00:00.000");
        // 2025-10-07T05:00:07.532 UTC
        assert_eq!(
            iso_from_unix(1_759_813_207.532_9).unwrap(),
            "2025-10-07T05:00:07.532"
        );
        assert_eq!(
            iso_from_unix(951_782_400.0).unwrap(),
            "2000-02-29T00:00:00.000"
        );
        assert!(iso_from_unix(f64::NAN).is_none());
    }
}
