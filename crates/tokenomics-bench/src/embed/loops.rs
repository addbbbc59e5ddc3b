//! The embedding benchmark's closed and open loops.
//!
//! A level runs on the shared executor of [`crate::sustained`] — the same closed loop (C workers,
//! each sending its next request the moment the last one ends) and open loop (a schedule of
//! arrivals drawn up front, each sent at its time by a dispatcher task) as `oai-bench` — with an operation that
//! sends one embeddings request of `inputs_per_request` texts, retried as in a burst. Each request
//! reaches the [`LoopSink`] as it finishes: its vectors are checked there and it is summarised at
//! once into the [`LoopAccumulator`] (distributions exact up to [`EXACT_LIMIT`] values, then a
//! histogram), so a level of any length keeps figures in memory, not requests.

use std::sync::Arc;

use bytes::Bytes;
use indexmap::IndexMap;
use serde_json::{Map, Value};
use tokenomics_client::{Connection, EmbeddingsRequest, Error as ClientError};
use tokenomics_datasets::run_seed;
use tokenomics_stats::{
    EmbedEndpointLevel, EmbedLevel, Percentiles, RequestCounts, ScheduleBlock, Stat, Summary,
};

use super::{
    check_vectors, embed_with_retries, EmbedBenchmark, EmbedOutcome, EmbedRunReport, EmbedSpec,
    PerRun, ESTIMATED_TOKENS_PER_WORD,
};
use crate::load::{Limits, Shape};
use crate::metrics::level::{span_rate, widen};
use crate::metrics::samples::{Samples, EXACT_LIMIT, HISTOGRAM_RELATIVE_ERROR};
use crate::metrics::trend::TrendFit;
use crate::metrics::{rate, BurstTiming, Scheduled};
use crate::sustained::{self, BodyFeed, Progress, Sent, Sink};
use crate::Observer;

/// Bodies built at a time by a level's feed, each chunk from its own seed.
const FEED_CHUNK: usize = 256;

/// The most texts a feed keeps built ahead: a request of many texts is kept fewer times ahead.
const TEXTS_AHEAD: usize = 65_536;

const NS: f64 = 1e9;

/// One run of a closed- or open-loop level: every measured request goes into `acc` as it
/// finishes. Returns `false` when the run was cut short by an interruption.
pub(super) async fn run(
    bench: &mut EmbedBenchmark,
    spec: &EmbedSpec,
    run: usize,
    acc: &mut LoopAccumulator,
    observer: &mut dyn Observer,
) -> bool {
    let shape = spec.shape;
    let limits = bench.config.limits_for(&shape);
    let seed = bench.run_seed(spec, run);
    let per = bench.config.inputs_per_request.max(1) as usize;
    let (model, texts) = (bench.config.model.clone(), bench.config.texts(spec.length));
    let make = move |chunk: u64| -> Vec<Bytes> {
        let mut texts = texts
            .draw(FEED_CHUNK * per, run_seed(seed, chunk, 1))
            .into_iter();
        (0..FEED_CHUNK)
            .map(|_| {
                EmbeddingsRequest {
                    model: model.clone(),
                    input: texts.by_ref().take(per).collect(),
                }
                .body()
            })
            .collect()
    };
    // The open loop's schedule is drawn first: it says how many bodies the run needs.
    let (schedule, limit, ahead) = match shape {
        Shape::Open(open) => {
            let (times, warmup) = crate::load::schedule(&open, &limits, seed);
            let n = times.len();
            (
                Some((open, times, warmup)),
                Some(n as u64),
                n.clamp(1, 4096),
            )
        }
        // With a warm-up, how many bodies a closed loop needs is not known up front.
        Shape::Closed { concurrency } | Shape::Burst { batch: concurrency } => (
            None,
            limits.num_requests.filter(|_| limits.warmup.is_zero()),
            (concurrency as usize).saturating_mul(2).clamp(256, 8192),
        ),
    };
    let ahead = ahead.min((TEXTS_AHEAD / per).max(16));
    let feed = Arc::new(BodyFeed::start(make, limit, ahead).await);
    let (clock, retries, backoff) = (bench.clock, bench.config.retries, bench.config.backoff);
    let op = move |mut conn: Connection, body: Bytes| async move {
        let (record, first_send_ns, retries) =
            embed_with_retries(&mut conn, body.clone(), &clock, retries, backoff).await;
        // Words only for the estimate of a server that reports no usage, counted once the
        // response is in: never between a schedule and its send.
        let words = match (&record.error, record.prompt_tokens) {
            (None, None) => words_of(&body),
            _ => 0,
        };
        let outcome = EmbedOutcome {
            record,
            first_send_ns,
            retries,
            inputs: per,
            words,
        };
        (conn, outcome)
    };
    let client = bench.pool.client().clone();
    let ctx = sustained::Context {
        client: &client,
        clock,
        op,
        feed,
        limits,
        shutdown: bench.shutdown.clone(),
        // embed-bench shows no live progress line: the counts are kept and not read.
        progress: Arc::new(Progress::default()),
        start_ns: None,
        aborts: None,
    };
    let key = spec.key();
    let mut sink = LoopSink {
        key: &key,
        run,
        acc,
        observer,
        dimension: &mut bench.dimension,
        interrupted: false,
        cancelled: 0,
    };
    match (shape, schedule) {
        (_, Some((open, times, warmup))) => {
            sustained::open_loop(ctx, &open, times, warmup, None, &mut sink).await
        }
        (Shape::Closed { concurrency }, None) | (Shape::Burst { batch: concurrency }, None) => {
            sustained::closed_loop(ctx, concurrency, &mut sink).await
        }
        (Shape::Open(_), None) => {}
    }
    let LoopSink {
        acc,
        observer,
        interrupted,
        cancelled,
        ..
    } = sink;
    acc.add_cancelled(cancelled);
    let mut report = acc.end_run();
    report.key = key.clone();
    report.run = run;
    report.num_runs = bench.config.num_runs as usize;
    observer.embed_run_finished(&report);
    // A run stopped by the shutdown sent fewer requests than its limits asked for, even when
    // every request it sent finished.
    !interrupted && !bench.shutdown.is_stopping()
}

/// Words of a request body's texts (a string or an array of strings as `input`).
fn words_of(body: &[u8]) -> usize {
    let count = |v: &Value| v.as_str().map_or(0, |t| t.split_whitespace().count());
    match serde_json::from_slice::<Value>(body)
        .ok()
        .as_ref()
        .and_then(|v| v.get("input"))
    {
        Some(Value::Array(texts)) => texts.iter().map(count).sum(),
        Some(text) => count(text),
        None => 0,
    }
}

/// Where a loop's requests go as they finish: checked, then pooled into the level. Warm-up
/// requests are dropped; cancelled ones only counted.
struct LoopSink<'a> {
    key: &'a str,
    run: usize,
    acc: &'a mut LoopAccumulator,
    observer: &'a mut dyn Observer,
    /// The benchmark's vector dimension (learned from the first success).
    dimension: &'a mut Option<usize>,
    interrupted: bool,
    cancelled: u64,
}

impl Sink<EmbedOutcome> for LoopSink<'_> {
    fn begin(&mut self, origin_ns: u64, _start_ns: u64) {
        self.acc.begin_run(origin_ns);
    }

    fn done(&mut self, s: Sent<EmbedOutcome>) {
        if s.warmup {
            return;
        }
        let mut outcome = s.record;
        if let Some(due) = s.scheduled_ns {
            self.acc.add_arrival(due, outcome.first_send_ns);
        }
        if s.cancelled {
            self.cancelled += 1;
            return;
        }
        check_vectors(&mut outcome, self.dimension);
        if let Some(e) = &outcome.record.error {
            self.interrupted |= matches!(e, ClientError::Interrupted);
            self.observer.request_failed(self.key, self.run, e);
        }
        let scheduled = s.scheduled_ns.map(|at| Scheduled {
            scheduled_ns: at,
            slot_wait_ns: s.slot_wait_ns,
        });
        self.acc.add(&outcome, scheduled.as_ref());
    }
}

/// The run in progress, built request by request.
#[derive(Debug, Clone, Default)]
struct RunTally {
    /// Where the run's measurement started, ns on the benchmark's clock.
    origin_ns: u64,
    first_send: Option<u64>,
    last_end: Option<u64>,
    first_ok_end: Option<u64>,
    last_ok_end: Option<u64>,
    ok: u64,
    failed: u64,
    retries: u64,
    tokens: u64,
    embeddings: u64,
    /// Open loops: (count, first, last) of the due times and of the send times of every
    /// measured arrival.
    due: Option<(u64, u64, u64)>,
    sent: Option<(u64, u64, u64)>,
}

fn earliest(at: &mut Option<u64>, t: u64) {
    *at = Some(at.map_or(t, |a| a.min(t)));
}

fn latest(at: &mut Option<u64>, t: u64) {
    *at = Some(at.map_or(t, |a| a.max(t)));
}

/// The runs of one closed- or open-loop level, summarised as requests finish.
#[derive(Debug, Clone)]
pub(crate) struct LoopAccumulator {
    shape: Shape,
    limits: Limits,
    confidence: Option<f64>,
    counts: RequestCounts,
    token_sources: IndexMap<String, u64>,
    /// Per request, first attempt's send → final response, seconds.
    latency: Samples,
    request_eps: Samples,
    request_tps: Samples,
    per_run: PerRun,
    // Open loops only.
    send_lag: Samples,
    slot_wait: Samples,
    latency_from_schedule: Samples,
    trend: TrendFit,
    scheduled_rate: Vec<f64>,
    achieved_rate: Vec<f64>,
    run: RunTally,
    /// With several endpoints: each one's base URL and its own accumulator, fed with the
    /// requests sent to it.
    endpoints: Vec<(String, LoopAccumulator)>,
}

impl LoopAccumulator {
    /// An empty level of `shape`, stopped by `limits`; with two or more `api_bases`, one for
    /// each endpoint too.
    pub(crate) fn new(
        shape: Shape,
        limits: Limits,
        confidence: Option<f64>,
        api_bases: &[&str],
    ) -> Self {
        let samples = || Samples::new(EXACT_LIMIT);
        let mut acc = Self {
            shape,
            limits,
            confidence,
            // Written even when none was needed: "0 retries" is a finding.
            counts: RequestCounts {
                retries: Some(0),
                ..RequestCounts::default()
            },
            token_sources: IndexMap::new(),
            latency: samples(),
            request_eps: samples(),
            request_tps: samples(),
            per_run: PerRun::with_requests_per_second(),
            send_lag: samples(),
            slot_wait: samples(),
            latency_from_schedule: samples(),
            trend: TrendFit::default(),
            scheduled_rate: Vec::new(),
            achieved_rate: Vec::new(),
            run: RunTally::default(),
            endpoints: Vec::new(),
        };
        if api_bases.len() > 1 {
            let each = acc.clone();
            acc.endpoints = api_bases
                .iter()
                .map(|b| (b.to_string(), each.clone()))
                .collect();
        }
        acc
    }

    /// A run starts; its measurement at `origin_ns` on the benchmark's clock.
    fn begin_run(&mut self, origin_ns: u64) {
        self.run = RunTally {
            origin_ns,
            ..RunTally::default()
        };
        for (_, acc) in &mut self.endpoints {
            acc.begin_run(origin_ns);
        }
    }

    /// An open loop's measured arrival (cancelled ones included): when it was due and when it
    /// was sent.
    fn add_arrival(&mut self, due_ns: u64, sent_ns: u64) {
        widen(&mut self.run.due, due_ns);
        widen(&mut self.run.sent, sent_ns);
    }

    fn add_cancelled(&mut self, n: u64) {
        self.counts.cancelled += n;
    }

    /// Adds one measured request (checked already), with what an open loop knows of it.
    fn add(&mut self, o: &EmbedOutcome, scheduled: Option<&Scheduled>) {
        if let Some((_, acc)) = self.endpoints.get_mut(o.record.replica) {
            acc.add(o, scheduled);
        }
        let retries = self.counts.retries.unwrap_or(0);
        self.counts.retries = Some(retries.saturating_add(u64::from(o.retries)));
        let run = &mut self.run;
        run.retries = run.retries.saturating_add(u64::from(o.retries));
        let ok = o.record.error.is_none();
        match &o.record.error {
            Some(e) => {
                self.counts.record_failure(e.kind(), || e.to_string());
                run.failed += 1;
            }
            None => {
                self.counts.record_success();
                run.ok += 1;
                let (t, source) = match o.record.prompt_tokens {
                    Some(t) => (t, "usage"),
                    None => (
                        (o.words as f64 * ESTIMATED_TOKENS_PER_WORD).round() as u64,
                        "estimate",
                    ),
                };
                *self.token_sources.entry(source.to_string()).or_default() += 1;
                let n = o.record.dimensions.len() as u64;
                // Saturating: a server's usage counts are not trusted to stay small.
                run.tokens = run.tokens.saturating_add(t);
                run.embeddings = run.embeddings.saturating_add(n);
                let latency = o.latency_s();
                self.latency.push(latency);
                self.request_eps.push(rate(n as f64, latency));
                self.request_tps.push(rate(t as f64, latency));
            }
        }
        // A request abandoned by an interruption has no end and takes no part in the timing.
        if let Some(end) = o.record.timing.end_ns {
            earliest(&mut run.first_send, o.first_send_ns);
            latest(&mut run.last_end, end);
            if ok {
                earliest(&mut run.first_ok_end, end);
                latest(&mut run.last_ok_end, end);
            }
        }
        if let Some(s) = scheduled {
            let secs = |ns: u64, from: u64| (ns as f64 - from as f64) / NS;
            if o.record.timing.end_ns.is_some() {
                self.send_lag.push(secs(o.first_send_ns, s.scheduled_ns));
            }
            if let Some(w) = s.slot_wait_ns {
                self.slot_wait.push(w as f64 / NS);
            }
            if let (true, Some(end)) = (ok, o.record.timing.end_ns) {
                let from_schedule = secs(end, s.scheduled_ns);
                self.latency_from_schedule.push(from_schedule);
                self.trend
                    .push(secs(s.scheduled_ns, run.origin_ns), from_schedule);
            }
        }
    }

    /// Ends the run in progress; returns its figures (its place in the report — `key`, `run`,
    /// `num_runs` — is the caller's to fill in).
    fn end_run(&mut self) -> EmbedRunReport {
        for (_, acc) in &mut self.endpoints {
            acc.end_run();
        }
        let run = std::mem::take(&mut self.run);
        if run.due.is_some() {
            self.scheduled_rate.push(span_rate(run.due));
            self.achieved_rate.push(span_rate(run.sent));
        }
        let secs = |a: u64, b: u64| b.saturating_sub(a) as f64 / NS;
        // As a burst's: first send → last end of any request, the successful ends within it.
        let total = match (run.first_send, run.last_end) {
            (Some(a), Some(b)) => secs(a, b),
            _ => f64::NAN,
        };
        let (eps, tps, rps) = (
            rate(run.embeddings as f64, total),
            rate(run.tokens as f64, total),
            rate(run.ok as f64, total),
        );
        if let (Some(start), Some(fastest), Some(slowest)) =
            (run.first_send, run.first_ok_end, run.last_ok_end)
        {
            let timing = BurstTiming {
                total_seconds: total,
                fastest_seconds: secs(start, fastest),
                slowest_seconds: secs(start, slowest),
                spread_seconds: secs(fastest, slowest),
            };
            self.per_run
                .push(timing, run.tokens, run.embeddings, run.ok);
        }
        EmbedRunReport {
            key: String::new(),
            run: 0,
            num_runs: 0,
            succeeded: run.ok as usize,
            failed: run.failed as usize,
            retries: run.retries,
            tokens: run.tokens,
            embeddings: run.embeddings,
            batch_seconds: total,
            batch_embeddings_per_second: eps,
            batch_tokens_per_second: tps,
            requests_per_second: Some(rps),
        }
    }

    /// The level's typed results: the burst's figures (a run's figures over its span), the
    /// requests per second, its `load` block (shape, limits, what an open loop's schedule
    /// achieved), and which percentiles came from a histogram.
    pub(crate) fn level(self) -> EmbedLevel {
        let confidence = self.confidence;
        let over_runs = |v: &[f64]| {
            let s = Summary::new(v.iter().copied());
            match confidence {
                Some(c) => s.mean_std_ci(c),
                None => s.mean_std(),
            }
        };
        let mut histograms: Vec<&str> = Vec::new();
        let mut dist = |name: &'static str, s: &Samples| {
            if !s.is_exact() {
                histograms.push(name);
            }
            s.distribution(confidence)
        };
        let latency = dist("latency", &self.latency);
        let schedule = if self.scheduled_rate.is_empty() {
            ScheduleBlock::default()
        } else {
            ScheduleBlock {
                scheduled_rate: Some(over_runs(&self.scheduled_rate)),
                achieved_rate: Some(over_runs(&self.achieved_rate)),
                send_lag: Some(dist("send_lag", &self.send_lag)),
                slot_wait: (self.slot_wait.count() > 0).then(|| dist("slot_wait", &self.slot_wait)),
                e2el_from_schedule: (self.latency_from_schedule.count() > 0)
                    .then(|| dist("e2el_from_schedule", &self.latency_from_schedule)),
                latency_trend: self.trend.trend(),
            }
        };
        let percentiles = (!histograms.is_empty()).then(|| Percentiles {
            histogram: histograms.iter().map(|s| s.to_string()).collect(),
            relative_error: HISTOGRAM_RELATIVE_ERROR,
        });
        let endpoints = (!self.endpoints.is_empty()).then(|| {
            self.endpoints
                .iter()
                .map(|(api_base, acc)| {
                    let level = acc.clone().level();
                    EmbedEndpointLevel {
                        api_base: api_base.clone(),
                        requests: level.requests.unwrap_or_default(),
                        tokens: level.tokens,
                        throughput: level.throughput,
                        latency: level.latency,
                        extra: Map::new(),
                    }
                })
                .collect()
        });
        let (tokens, timings, throughput) = self.per_run.blocks(
            confidence,
            self.token_sources.clone(),
            pooled(&self.request_eps),
            pooled(&self.request_tps),
        );
        EmbedLevel {
            tokens,
            timings,
            throughput,
            latency: Some(latency),
            requests: Some(self.counts.clone()),
            endpoints,
            load: Some(self.shape.load_block(&self.limits, schedule)),
            percentiles,
            client_load: None,
            incomplete: false,
            extra: Map::new(),
        }
    }
}

/// Mean, std, min and max of per-request figures pooled over runs: the shape a burst's have
/// (exact, whatever the count).
fn pooled(s: &Samples) -> Stat {
    let d = s.distribution(None);
    Stat {
        mean: d.mean,
        std: d.std,
        min: Some(d.min),
        max: Some(d.max),
        ci: None,
    }
}
