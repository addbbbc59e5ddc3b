//! From request records to the figures of the result document. This is the one place where
//! records become statistics; every definition here is the one the README states.

use tokenomics_client::RequestRecord;
use tokenomics_stats::{
    ChatLatency, ChatLevel, ChatThroughput, ChatTimings, ChatTokens, RequestCounts, Summary,
};

const NS: f64 = 1e9;

/// The per-run figures of the original script, for one burst run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFigures {
    /// First send → last response (of any request, failed ones included), seconds.
    pub batch_total_seconds: f64,
    /// Earliest successful request end, relative to the first send, seconds.
    pub fastest_seconds: f64,
    /// Latest successful request end, relative to the first send, seconds.
    pub slowest_seconds: f64,
    pub spread_seconds: f64,
    /// Completion tokens of successful requests / `batch_total_seconds`.
    pub batch_tokens_per_second: f64,
}

/// The timing of one burst: (send, end, succeeded) of every request → first send to last end,
/// and the earliest and latest successful end relative to the first send. `None` when nothing
/// succeeded. Shared by the chat and embedding benchmarks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurstTiming {
    pub total_seconds: f64,
    pub fastest_seconds: f64,
    pub slowest_seconds: f64,
    pub spread_seconds: f64,
}

pub fn burst_timing(
    spans: impl IntoIterator<Item = (u64, u64, bool)> + Clone,
) -> Option<BurstTiming> {
    let start = spans.clone().into_iter().map(|s| s.0).min()?;
    let end = spans.clone().into_iter().map(|s| s.1).max()?;
    let ok_ends = || spans.clone().into_iter().filter(|s| s.2).map(|s| s.1);
    let fastest = ok_ends().min()?;
    let slowest = ok_ends().max()?;
    Some(BurstTiming {
        total_seconds: (end - start) as f64 / NS,
        fastest_seconds: (fastest - start) as f64 / NS,
        slowest_seconds: (slowest - start) as f64 / NS,
        spread_seconds: (slowest - fastest) as f64 / NS,
    })
}

/// `amount / seconds`, NaN when no time passed.
pub fn rate(amount: f64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        amount / seconds
    } else {
        f64::NAN
    }
}

/// Computes the run figures from all records of one run.
pub fn run_figures(records: &[RequestRecord]) -> Option<RunFigures> {
    // A request abandoned by an interruption has no end and takes no part in the timing.
    let spans: Vec<(u64, u64, bool)> = records
        .iter()
        .filter_map(|r| {
            r.timing
                .end_ns
                .map(|end| (r.timing.send_ns, end, r.is_ok()))
        })
        .collect();
    let t = burst_timing(spans.iter().copied())?;
    let tokens: u64 = records
        .iter()
        .filter(|r| r.is_ok())
        .filter_map(|r| r.completion_tokens)
        .sum();
    Some(RunFigures {
        batch_total_seconds: t.total_seconds,
        fastest_seconds: t.fastest_seconds,
        slowest_seconds: t.slowest_seconds,
        spread_seconds: t.spread_seconds,
        batch_tokens_per_second: rate(tokens as f64, t.total_seconds),
    })
}

/// Completion tokens / the request's own send → end time, tokens per second.
pub fn request_tokens_per_second(r: &RequestRecord) -> Option<f64> {
    let tokens = r.completion_tokens? as f64;
    let elapsed = (r.timing.end_ns? - r.timing.send_ns) as f64 / NS;
    (elapsed > 0.0).then(|| tokens / elapsed)
}

/// Streaming latencies of one successful request, in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestLatency {
    /// Send → first content token.
    pub ttft: f64,
    /// Send → end of the response.
    pub e2el: f64,
    /// (e2el − ttft) / (output tokens − 1); `None` for a single token.
    pub tpot: Option<f64>,
    /// Gaps between consecutive content events.
    pub itl: Vec<f64>,
}

pub fn request_latency(r: &RequestRecord) -> Option<RequestLatency> {
    let t = &r.timing;
    let first = t.first_token_ns?;
    let end = t.end_ns?;
    let ttft = (first - t.send_ns) as f64 / NS;
    let e2el = (end - t.send_ns) as f64 / NS;
    let tokens = r.completion_tokens.unwrap_or(r.content_events);
    let tpot = (tokens > 1).then(|| (e2el - ttft) / (tokens - 1) as f64);
    let itl = t
        .token_events_ns
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 / NS)
        .collect();
    Some(RequestLatency {
        ttft,
        e2el,
        tpot,
        itl,
    })
}

/// Accumulates the runs of one level and produces its [`ChatLevel`] by the SPEC's pooling rules:
/// per-request lists pooled over every run, per-run scalars one value per run.
#[derive(Debug, Default)]
pub struct LevelAccumulator {
    input_tokens: Vec<f64>,
    output_tokens: Vec<f64>,
    content_events: Vec<f64>,
    request_tps: Vec<f64>,
    runs: Vec<RunFigures>,
    ttft: Vec<f64>,
    itl: Vec<f64>,
    tpot: Vec<f64>,
    e2el: Vec<f64>,
    counts: RequestCounts,
    token_sources: indexmap::IndexMap<&'static str, u64>,
    streamed: bool,
}

impl LevelAccumulator {
    pub fn new(streamed: bool) -> Self {
        Self {
            streamed,
            ..Self::default()
        }
    }

    /// Adds one run's records; returns the run's figures (if anything succeeded).
    pub fn add_run(&mut self, records: &[RequestRecord]) -> Option<RunFigures> {
        for r in records {
            match &r.error {
                Some(e) => self.counts.record_failure(e.kind(), || e.to_string()),
                None => {
                    self.counts.record_success();
                    if let Some(p) = r.prompt_tokens {
                        self.input_tokens.push(p as f64);
                    }
                    if let Some(c) = r.completion_tokens {
                        self.output_tokens.push(c as f64);
                    }
                    *self.token_sources.entry(r.token_source.name()).or_default() += 1;
                    if let Some(tps) = request_tokens_per_second(r) {
                        self.request_tps.push(tps);
                    }
                    if self.streamed {
                        self.content_events.push(r.content_events as f64);
                        if let Some(l) = request_latency(r) {
                            self.ttft.push(l.ttft);
                            self.e2el.push(l.e2el);
                            self.tpot.extend(l.tpot);
                            self.itl.extend(l.itl);
                        }
                    }
                }
            }
        }
        let figures = run_figures(records);
        if let Some(f) = &figures {
            self.runs.push(f.clone());
        }
        figures
    }

    pub fn counts(&self) -> &RequestCounts {
        &self.counts
    }

    pub fn finish(self) -> ChatLevel {
        let per_run = |f: fn(&RunFigures) -> f64| Summary::new(self.runs.iter().map(f)).mean_std();
        let pooled = |v: &[f64]| Summary::new(v.iter().copied()).mean_std();
        let latency = self.streamed.then(|| ChatLatency {
            ttft: Summary::new(self.ttft.iter().copied()).distribution(),
            itl: Summary::new(self.itl.iter().copied()).distribution(),
            tpot: Summary::new(self.tpot.iter().copied()).distribution(),
            e2el: Summary::new(self.e2el.iter().copied()).distribution(),
            extra: Default::default(),
        });
        let mut tokens_extra = serde_json::Map::new();
        tokens_extra.insert(
            "output_token_source".into(),
            serde_json::to_value(&self.token_sources).unwrap_or_default(),
        );
        if self.streamed {
            // Beside the token count: how many SSE events carried content. Equal to it when the
            // server sends one token per event; fewer when it merges tokens.
            tokens_extra.insert(
                "content_events_per_request".into(),
                serde_json::to_value(pooled(&self.content_events)).unwrap_or_default(),
            );
        }
        ChatLevel {
            tokens: ChatTokens {
                input_per_request: pooled(&self.input_tokens),
                output_per_request: pooled(&self.output_tokens),
                extra: tokens_extra,
            },
            timings: ChatTimings {
                batch_total_seconds: per_run(|r| r.batch_total_seconds),
                fastest_seconds: per_run(|r| r.fastest_seconds),
                slowest_seconds: per_run(|r| r.slowest_seconds),
                spread_seconds: per_run(|r| r.spread_seconds),
                extra: Default::default(),
            },
            throughput: ChatThroughput {
                batch_tokens_per_second: per_run(|r| r.batch_tokens_per_second),
                request_tokens_per_second: pooled(&self.request_tps),
                extra: Default::default(),
            },
            latency,
            requests: Some(self.counts),
            extra: Default::default(),
        }
    }
}
