//! Pooling the runs of one level into its [`ChatLevel`], by the SPEC's rules.

use indexmap::IndexMap;
use tokenomics_client::RequestRecord;
use tokenomics_stats::{
    ChatLatency, ChatLevel, ChatThroughput, ChatTimings, ChatTokens, Goodput, RequestCounts,
    ScheduleBlock, SteadyState, Summary, Window,
};

use super::burst::{run_figures, RunFigures};
use super::goodput::Slo;
use super::latency::{request_latency, request_tokens_per_second};
use super::steady::{steady_state, SteadyWindow, STEADY_SHARE};
use super::{rate, NS};
use crate::load::{Limits, Shape};

/// What the open loop adds about one request: when it was due, and how long it waited for a slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scheduled {
    pub scheduled_ns: u64,
    pub slot_wait_ns: Option<u64>,
}

/// Accumulates the runs of one level and produces its [`ChatLevel`] by the SPEC's pooling rules:
/// per-request lists pooled over every run, per-run scalars one value per run.
#[derive(Debug)]
pub struct LevelAccumulator {
    shape: Shape,
    limits: Limits,
    input_tokens: Vec<f64>,
    output_tokens: Vec<f64>,
    content_events: Vec<f64>,
    request_tps: Vec<f64>,
    runs: Vec<RunFigures>,
    requests_per_second: Vec<f64>,
    ttft: Vec<f64>,
    ttfat: Vec<f64>,
    reasoning_seen: bool,
    itl: Vec<f64>,
    tpot: Vec<f64>,
    e2el: Vec<f64>,
    counts: RequestCounts,
    token_sources: IndexMap<&'static str, u64>,
    streamed: bool,
    /// In-flight target of the steady state (`None`: the run's own mean, for open loops).
    target: Option<f64>,
    steady: Vec<SteadyWindow>,
    slo: Option<Slo>,
    good: u64,
    measured: u64,
    measured_seconds: f64,
    // Open loop only.
    send_lag: Vec<f64>,
    slot_wait: Vec<f64>,
    ttft_from_schedule: Vec<f64>,
    e2el_from_schedule: Vec<f64>,
    scheduled_rate: Vec<f64>,
    achieved_rate: Vec<f64>,
}

impl LevelAccumulator {
    /// An empty level of `shape`, stopped by `limits` (recorded in its `load` block);
    /// `streamed` adds the latency figures.
    pub fn new(shape: Shape, limits: Limits, streamed: bool) -> Self {
        Self {
            shape,
            limits,
            target: shape.target_in_flight(),
            streamed,
            input_tokens: Vec::new(),
            output_tokens: Vec::new(),
            content_events: Vec::new(),
            request_tps: Vec::new(),
            runs: Vec::new(),
            requests_per_second: Vec::new(),
            ttft: Vec::new(),
            ttfat: Vec::new(),
            reasoning_seen: false,
            itl: Vec::new(),
            tpot: Vec::new(),
            e2el: Vec::new(),
            counts: RequestCounts::default(),
            token_sources: IndexMap::new(),
            steady: Vec::new(),
            slo: None,
            good: 0,
            measured: 0,
            measured_seconds: 0.0,
            send_lag: Vec::new(),
            slot_wait: Vec::new(),
            ttft_from_schedule: Vec::new(),
            e2el_from_schedule: Vec::new(),
            scheduled_rate: Vec::new(),
            achieved_rate: Vec::new(),
        }
    }

    /// Counts requests that meet `slo` (goodput).
    pub fn with_slo(mut self, slo: Option<Slo>) -> Self {
        self.slo = slo;
        self
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
                        self.reasoning_seen |= r.reasoning_events > 0;
                        if let Some(l) = request_latency(r) {
                            self.ttft.push(l.ttft);
                            self.ttfat.extend(l.ttfat);
                            self.e2el.push(l.e2el);
                            self.tpot.extend(l.tpot);
                            self.itl.extend(l.itl);
                        }
                    }
                }
            }
            if let Some(slo) = &self.slo {
                self.good += u64::from(slo.met(r));
            }
        }
        self.measured += records.len() as u64;
        let refs: Vec<&RequestRecord> = records.iter().collect();
        if let Some(st) = steady_state(&refs, self.target) {
            self.steady.push(st);
        }
        let figures = run_figures(records);
        if let Some(f) = &figures {
            self.runs.push(f.clone());
            self.measured_seconds += f.batch_total_seconds;
            let ok = records.iter().filter(|r| r.is_ok()).count();
            self.requests_per_second
                .push(rate(ok as f64, f.batch_total_seconds));
        }
        figures
    }

    /// Adds what an open loop knows about the same run's records (in the same order): when each
    /// was due and how long it waited for a slot. `arrivals` holds (due, sent) of every measured
    /// request, those cancelled at the end included, for the scheduled and achieved rates.
    pub fn add_schedule(
        &mut self,
        records: &[RequestRecord],
        schedule: &[Scheduled],
        arrivals: &[(u64, u64)],
    ) {
        let secs = |ns: u64, from: u64| (ns as f64 - from as f64) / NS;
        for (r, s) in records.iter().zip(schedule) {
            if r.timing.end_ns.is_some() {
                self.send_lag.push(secs(r.timing.send_ns, s.scheduled_ns));
            }
            if let Some(w) = s.slot_wait_ns {
                self.slot_wait.push(w as f64 / NS);
            }
            if r.is_ok() {
                if let Some(t) = r.timing.first_token_ns {
                    self.ttft_from_schedule.push(secs(t, s.scheduled_ns));
                }
                if let Some(e) = r.timing.end_ns {
                    self.e2el_from_schedule.push(secs(e, s.scheduled_ns));
                }
            }
        }
        let due = || arrivals.iter().map(|a| a.0);
        let sent = || arrivals.iter().map(|a| a.1);
        let span_rate = |n: usize, lo: Option<u64>, hi: Option<u64>| match (lo, hi) {
            (Some(lo), Some(hi)) if n > 1 => rate((n - 1) as f64, (hi - lo) as f64 / NS),
            _ => f64::NAN,
        };
        self.scheduled_rate
            .push(span_rate(arrivals.len(), due().min(), due().max()));
        self.achieved_rate
            .push(span_rate(sent().count(), sent().min(), sent().max()));
    }

    /// Counts requests cancelled at the end of a timed level.
    pub fn add_cancelled(&mut self, n: u64) {
        self.counts.cancelled += n;
    }

    pub fn counts(&self) -> &RequestCounts {
        &self.counts
    }

    /// The level's typed results: every figure by the SPEC's pooling rules, its `load` block
    /// (shape, limits, and what an open loop's schedule achieved) and, with objectives, its
    /// goodput.
    pub fn finish(self) -> ChatLevel {
        let per_run = |f: fn(&RunFigures) -> f64| Summary::new(self.runs.iter().map(f)).mean_std();
        let pooled = |v: &[f64]| Summary::new(v.iter().copied()).mean_std();
        let dist = |v: &[f64]| Summary::new(v.iter().copied()).distribution();
        let latency = self.streamed.then(|| ChatLatency {
            ttft: dist(&self.ttft),
            itl: dist(&self.itl),
            tpot: dist(&self.tpot),
            e2el: dist(&self.e2el),
            time_to_first_answer_token: self.reasoning_seen.then(|| dist(&self.ttfat)),
            ttft_from_schedule: (!self.ttft_from_schedule.is_empty())
                .then(|| dist(&self.ttft_from_schedule)),
            extra: Default::default(),
        });
        let steady_state = (!self.steady.is_empty()).then(|| {
            let st = &self.steady;
            let runs = |f: fn(&SteadyWindow) -> f64| Summary::new(st.iter().map(f)).mean_std();
            SteadyState {
                output_tokens_per_second: runs(|w| w.output_tokens_per_second),
                requests_per_second: runs(|w| w.requests_per_second),
                seconds: runs(SteadyWindow::seconds),
                coverage: runs(|w| w.coverage),
                target_in_flight: runs(|w| w.target),
                threshold_share: STEADY_SHARE,
                windows: st
                    .iter()
                    .map(|w| Window {
                        start_ns: w.start_ns,
                        end_ns: w.end_ns,
                        seconds: w.seconds(),
                    })
                    .collect(),
            }
        });
        let goodput = self.slo.map(|slo| Goodput {
            slo_ms: slo.ms(),
            good: self.good,
            total: self.measured,
            share: if self.measured > 0 {
                self.good as f64 / self.measured as f64
            } else {
                f64::NAN
            },
            requests_per_second: rate(self.good as f64, self.measured_seconds),
        });
        let schedule = if self.scheduled_rate.is_empty() {
            ScheduleBlock::default()
        } else {
            ScheduleBlock {
                scheduled_rate: Some(pooled(&self.scheduled_rate)),
                achieved_rate: Some(pooled(&self.achieved_rate)),
                send_lag: Some(dist(&self.send_lag)),
                slot_wait: (!self.slot_wait.is_empty()).then(|| dist(&self.slot_wait)),
                e2el_from_schedule: (!self.e2el_from_schedule.is_empty())
                    .then(|| dist(&self.e2el_from_schedule)),
            }
        };
        let token_sources: IndexMap<String, u64> = self
            .token_sources
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        ChatLevel {
            tokens: ChatTokens {
                input_per_request: pooled(&self.input_tokens),
                output_per_request: pooled(&self.output_tokens),
                output_token_source: Some(token_sources),
                // Beside the token count: how many SSE events carried content. Equal to it when
                // the server sends one token per event; fewer when it merges tokens.
                content_events_per_request: self.streamed.then(|| pooled(&self.content_events)),
                extra: Default::default(),
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
                requests_per_second: Some(pooled(&self.requests_per_second)),
                steady_state,
                extra: Default::default(),
            },
            latency,
            requests: Some(self.counts),
            goodput,
            load: Some(self.shape.load_block(&self.limits, schedule)),
            incomplete: false,
            extra: Default::default(),
        }
    }
}
