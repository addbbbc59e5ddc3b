//! Pooling the runs of one level into its [`ChatLevel`], by the SPEC's rules, as requests finish.
//!
//! Every request is summarised the moment it is added ([`LevelAccumulator::add_request`]) and
//! may then be dropped: per-request figures go into [`Pooled`] (mean and sample std) and
//! [`Samples`] (distributions: exact for bursts and small levels, a histogram past
//! [`EXACT_LIMIT`] values in a sustained level), per-run figures into a [`RunTally`], and a
//! sustained run's steady state into a [`Timeline`] of time buckets. A burst keeps its records
//! anyway (B of them) and adds them with [`LevelAccumulator::add_run`], whose steady state is
//! computed exactly from them, as before.

use indexmap::IndexMap;
use tokenomics_client::RequestRecord;
use tokenomics_stats::{
    ChatLatency, ChatLevel, ChatThroughput, ChatTimings, ChatTokens, EndpointLevel, Goodput,
    Percentiles, RequestCounts, ScheduleBlock, SteadyState, Summary, Window,
};

use super::burst::RunFigures;
use super::goodput::Slo;
use super::latency::{request_latency, request_tokens_per_second};
use super::samples::{Moments, Pooled, Samples, EXACT_LIMIT, HISTOGRAM_RELATIVE_ERROR};
use super::series::{Ended, Series};
use super::steady::{steady_state, SteadyWindow, STEADY_SHARE};
use super::timeline::Timeline;
use super::trend::TrendFit;
use super::turns::TurnTally;
use super::{rate, NS};
use crate::load::{Limits, Shape};

/// What the open loop adds about one request: when it was due, and how long it waited for a slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scheduled {
    /// The arrival time the schedule gave the request, ns on the run's monotonic clock.
    pub scheduled_ns: u64,
    /// With `max_concurrency`: how long the request waited in the client for a slot after it
    /// was due, ns (`None`: no cap).
    pub slot_wait_ns: Option<u64>,
}

/// The figures of the run in progress, built request by request.
#[derive(Debug, Clone, Default)]
pub struct RunTally {
    first_send: Option<u64>,
    last_end: Option<u64>,
    first_ok_end: Option<u64>,
    last_ok_end: Option<u64>,
    ok: u64,
    failed: u64,
    tokens: u64,
    /// Output tokens and tokens/s of the run's successful requests, for its progress line.
    output: Moments,
    request_tps: Moments,
    /// Sustained runs: the steady state in time buckets.
    timeline: Option<Timeline>,
    /// Open loops: (count, min, max) of due times and of send times of every measured arrival.
    due: Option<(u64, u64, u64)>,
    sent: Option<(u64, u64, u64)>,
}

/// What one run produced, for its progress line.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The original's per-run figures (`None` when nothing succeeded).
    pub figures: Option<RunFigures>,
    /// Measured requests of the run that succeeded.
    pub succeeded: u64,
    /// Measured requests of the run that failed.
    pub failed: u64,
    /// Means over the run's successful requests (NaN when none).
    pub mean_output_tokens: f64,
    /// Mean over the run's successful requests of completion tokens over send → end seconds
    /// (NaN when none).
    pub mean_request_tokens_per_second: f64,
}

impl RunTally {
    fn add(&mut self, r: &RequestRecord) {
        if r.is_ok() {
            if let Some(c) = r.completion_tokens {
                self.output.push(c as f64);
            }
            if let Some(tps) = request_tokens_per_second(r) {
                self.request_tps.push(tps);
            }
        } else {
            self.failed += 1;
        }
        // A request abandoned by an interruption has no end and takes no part in the timing.
        let Some(end) = r.timing.end_ns else { return };
        let send = r.timing.send_ns;
        self.first_send = Some(self.first_send.map_or(send, |f| f.min(send)));
        self.last_end = Some(self.last_end.map_or(end, |l| l.max(end)));
        if r.is_ok() {
            self.ok += 1;
            self.first_ok_end = Some(self.first_ok_end.map_or(end, |f| f.min(end)));
            self.last_ok_end = Some(self.last_ok_end.map_or(end, |l| l.max(end)));
            // Saturating: a server's usage counts are not trusted to stay small.
            self.tokens = self.tokens.saturating_add(r.completion_tokens.unwrap_or(0));
        }
        if let Some(t) = &mut self.timeline {
            let ok = r.is_ok().then(|| {
                (
                    r.completion_tokens.unwrap_or(r.content_events),
                    &r.timing.token_events_ns[..],
                )
            });
            t.add(send, end, ok);
        }
    }

    /// The original's per-run figures (`None` when nothing succeeded).
    fn figures(&self) -> Option<RunFigures> {
        let secs = |a: u64, b: u64| b.saturating_sub(a) as f64 / NS;
        let (start, end) = (self.first_send?, self.last_end?);
        let (fastest, slowest) = (self.first_ok_end?, self.last_ok_end?);
        let total = secs(start, end);
        Some(RunFigures {
            batch_total_seconds: total,
            fastest_seconds: secs(start, fastest),
            slowest_seconds: secs(start, slowest),
            spread_seconds: secs(fastest, slowest),
            batch_tokens_per_second: rate(self.tokens as f64, total),
        })
    }
}

pub(crate) fn widen(span: &mut Option<(u64, u64, u64)>, t: u64) {
    *span = Some(match *span {
        None => (1, t, t),
        Some((n, lo, hi)) => (n + 1, lo.min(t), hi.max(t)),
    });
}

/// Requests per second over a span of arrivals: (n − 1) gaps over first → last.
pub(crate) fn span_rate(span: Option<(u64, u64, u64)>) -> f64 {
    match span {
        Some((n, lo, hi)) if n > 1 => rate((n - 1) as f64, (hi - lo) as f64 / NS),
        _ => f64::NAN,
    }
}

/// Accumulates the runs of one level and produces its [`ChatLevel`] by the SPEC's pooling rules:
/// per-request figures pooled over every run, per-run figures one value per run.
#[derive(Debug, Clone)]
pub struct LevelAccumulator {
    shape: Shape,
    limits: Limits,
    streamed: bool,
    slo: Option<Slo>,
    /// Confidence intervals at this level (`None`: none).
    confidence: Option<f64>,
    /// In-flight target of the steady state (`None`: the run's own mean, for open loops).
    target: Option<f64>,
    counts: RequestCounts,
    token_sources: IndexMap<&'static str, u64>,
    input_tokens: Pooled,
    output_tokens: Pooled,
    content_events: Pooled,
    request_tps: Pooled,
    ttft: Samples,
    ttfat: Samples,
    reasoning_seen: bool,
    itl: Samples,
    tpot: Samples,
    e2el: Samples,
    good: u64,
    measured: u64,
    measured_seconds: f64,
    runs: Vec<RunFigures>,
    requests_per_second: Vec<f64>,
    steady: Vec<SteadyWindow>,
    // Open loop only.
    send_lag: Samples,
    slot_wait: Samples,
    ttft_from_schedule: Samples,
    e2el_from_schedule: Samples,
    scheduled_rate: Vec<f64>,
    achieved_rate: Vec<f64>,
    /// Latency from the schedule against scheduled time, every run's (from its start).
    trend: TrendFit,
    run: RunTally,
    /// The level over time (`None`: no timeline asked for).
    series: Option<Series>,
    /// With several endpoints: each one's base URL and its own accumulator, fed with the requests
    /// sent to it (by [`RequestRecord::replica`]).
    endpoints: Vec<(String, LevelAccumulator)>,
    /// Prompt and cached tokens of the successful requests that reported cached tokens.
    cache: CacheTally,
    /// A conversation level's turns and sessions ([`LevelAccumulator::with_turns`]).
    turns: Option<Box<TurnTally>>,
}

/// Prompt and cached tokens, summed over the successful requests whose usage reported both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheTally {
    /// Requests counted.
    pub reporting: u64,
    /// Their prompt tokens (`usage.prompt_tokens`).
    pub prompt_tokens: u64,
    /// Of those, the tokens the server found in its prefix cache
    /// (`usage.prompt_tokens_details.cached_tokens`).
    pub cached_tokens: u64,
}

impl LevelAccumulator {
    /// The level's cached prompt tokens so far (`usage.prompt_tokens_details.cached_tokens`).
    pub fn cache_tally(&self) -> CacheTally {
        self.cache
    }

    /// An empty level of `shape`, stopped by `limits` (recorded in its `load` block);
    /// `streamed` adds the latency figures. A burst keeps every value (its percentiles are
    /// exact); a sustained level keeps [`EXACT_LIMIT`] values per figure, then a histogram.
    pub fn new(shape: Shape, limits: Limits, streamed: bool) -> Self {
        let limit = match shape {
            Shape::Burst { .. } => usize::MAX,
            _ => EXACT_LIMIT,
        };
        let samples = || Samples::new(limit);
        Self {
            shape,
            limits,
            streamed,
            slo: None,
            confidence: None,
            target: shape.target_in_flight(),
            counts: RequestCounts::default(),
            token_sources: IndexMap::new(),
            input_tokens: Pooled::new(limit),
            output_tokens: Pooled::new(limit),
            content_events: Pooled::new(limit),
            request_tps: Pooled::new(limit),
            ttft: samples(),
            ttfat: samples(),
            reasoning_seen: false,
            itl: samples(),
            tpot: samples(),
            e2el: samples(),
            good: 0,
            measured: 0,
            measured_seconds: 0.0,
            runs: Vec::new(),
            requests_per_second: Vec::new(),
            steady: Vec::new(),
            send_lag: samples(),
            slot_wait: samples(),
            ttft_from_schedule: samples(),
            e2el_from_schedule: samples(),
            scheduled_rate: Vec::new(),
            achieved_rate: Vec::new(),
            trend: TrendFit::default(),
            run: RunTally::default(),
            series: None,
            endpoints: Vec::new(),
            cache: CacheTally::default(),
            turns: None,
        }
    }

    /// Also reports a conversation level's sessions and its figures per turn index. Call it
    /// last, after the other settings, which each turn's figures take over (all but the
    /// timeline, the in-flight target and the endpoints).
    /// `block_tokens`: the server's KV-cache block size, for the expected prefix-cache hits of
    /// the sessions' histories ([`LevelAccumulator::history_cache`]).
    pub fn with_turns(mut self, block_tokens: u64) -> Self {
        let mut blank = self.clone();
        blank.series = None;
        blank.target = None;
        blank.endpoints = Vec::new();
        let limit = self.input_tokens.limit();
        self.turns = Some(Box::new(TurnTally::new(blank, limit, block_tokens)));
        self
    }

    /// A conversation level's expected prefix-cache figures from its sessions' histories so far
    /// (see [`TurnTally::history_cache`]); `None` for another level.
    pub fn history_cache(&self) -> Option<tokenomics_stats::PrefixCacheBlock> {
        self.turns.as_ref().and_then(|t| t.history_cache())
    }

    /// A conversation's turn `turn` of session `session` was sent (cancelled ones too).
    pub fn turn_sent(&mut self, session: u64, turn: u32) {
        if let Some(t) = self.turns.as_mut() {
            t.sent(session, turn);
        }
    }

    /// A conversation's measured turn finished (add the request itself with
    /// [`LevelAccumulator::add_request`] too): its turn's figures and the think time before it.
    pub fn add_turn(&mut self, session: u64, turn: u32, think_ns: Option<u64>, r: &RequestRecord) {
        if let Some(t) = self.turns.as_mut() {
            t.add(session, turn, think_ns, r);
        }
    }

    /// [`LevelAccumulator::add_turn`] for a request read back from a records file (added with
    /// [`LevelAccumulator::add_recorded`]), its failure (kind, message) as recorded.
    pub fn add_turn_recorded(
        &mut self,
        session: u64,
        turn: u32,
        think_ns: Option<u64>,
        r: &RequestRecord,
        failure: Option<(&str, &str)>,
    ) {
        if let Some(t) = self.turns.as_mut() {
            t.add_recorded(session, turn, think_ns, r, failure);
        }
    }

    /// A conversation run ended with these sessions.
    pub fn end_sessions(&mut self, tally: crate::conversation::SessionTally) {
        if let Some(t) = self.turns.as_mut() {
            t.end_run(tally);
        }
    }

    /// Also reports each endpoint's part of the level (with two or more `api_bases`, in the
    /// order of [`RequestRecord::replica`]). Call it last, after the other settings, which the
    /// endpoints take over (all but the timeline and the in-flight target: an endpoint's steady
    /// state is found around its own mean in flight).
    pub fn with_endpoints(mut self, api_bases: &[&str]) -> Self {
        if api_bases.len() < 2 {
            return self;
        }
        let mut each = self.clone();
        each.series = None;
        each.target = None;
        self.endpoints = api_bases
            .iter()
            .map(|base| (base.to_string(), each.clone()))
            .collect();
        self
    }

    /// The accumulator of the endpoint `r` was sent to (`None`: one endpoint).
    fn endpoint(&mut self, r: &RequestRecord) -> Option<&mut LevelAccumulator> {
        self.endpoints.get_mut(r.replica).map(|(_, acc)| acc)
    }

    /// Keeps the level's timeline in buckets `interval` wide (`None`: none).
    pub fn with_timeline(mut self, interval: Option<std::time::Duration>) -> Self {
        self.series =
            interval.map(|i| Series::new(u64::try_from(i.as_nanos()).unwrap_or(u64::MAX)));
        self
    }

    /// A sustained run's load started at `start_ns` and its measurement at `measured_ns` (ns on
    /// the run's clock), for the timeline.
    pub fn timeline_begin(&mut self, start_ns: u64, measured_ns: u64) {
        if let Some(s) = self.series.as_mut() {
            s.begin(start_ns, measured_ns);
        }
    }

    /// Adds a request to the timeline only: every request a run sent goes there (warm-up and
    /// cancelled ones too), measured or not.
    pub fn timeline_add(&mut self, ended: Ended<'_>) {
        if let Some(s) = self.series.as_mut() {
            s.add(ended);
        }
    }

    /// Counts requests that meet `slo` (goodput).
    pub fn with_slo(mut self, slo: Option<Slo>) -> Self {
        self.slo = slo;
        self
    }

    /// Adds confidence intervals at `confidence` (e.g. 0.95): each per-run figure's mean over
    /// the runs (Student's t, two runs or more), each latency's mean and percentiles.
    pub fn with_confidence(mut self, confidence: Option<f64>) -> Self {
        self.confidence = confidence;
        self
    }

    /// A sustained level keeps `limit` values per figure (instead of [`EXACT_LIMIT`]) before its
    /// percentiles come from a histogram; a burst keeps every value whatever the limit. Call it
    /// before adding any request.
    pub fn with_exact_limit(self, limit: usize) -> Self {
        match self.shape {
            Shape::Burst { .. } => self,
            _ => self.with_limit(limit),
        }
    }

    fn with_limit(mut self, limit: usize) -> Self {
        for s in [
            &mut self.ttft,
            &mut self.ttfat,
            &mut self.itl,
            &mut self.tpot,
            &mut self.e2el,
            &mut self.send_lag,
            &mut self.slot_wait,
            &mut self.ttft_from_schedule,
            &mut self.e2el_from_schedule,
        ] {
            *s = Samples::new(limit);
        }
        for p in [
            &mut self.input_tokens,
            &mut self.output_tokens,
            &mut self.content_events,
            &mut self.request_tps,
        ] {
            *p = Pooled::new(limit);
        }
        self
    }

    /// Starts a sustained run whose measurement began at `origin_ns` (ns on the benchmark's
    /// clock): its requests are then added one by one with [`LevelAccumulator::add_request`],
    /// and its steady state is kept in time buckets.
    pub fn begin_run(&mut self, origin_ns: u64) {
        self.run = RunTally {
            timeline: Some(Timeline::new(origin_ns)),
            ..RunTally::default()
        };
        for (_, acc) in &mut self.endpoints {
            acc.begin_run(origin_ns);
        }
    }

    /// The steady state aims at `target` requests in flight instead of the shape's (a shard's
    /// part of a closed loop's concurrency).
    pub fn with_target(mut self, target: Option<f64>) -> Self {
        self.target = target;
        self
    }

    /// Adds one measured request of the run in progress, with what an open loop knows of it.
    pub fn add_request(&mut self, r: &RequestRecord, scheduled: Option<&Scheduled>) {
        if let Some(acc) = self.endpoint(r) {
            acc.add_request(r, scheduled);
        }
        self.add_request_here(r, scheduled);
    }

    fn add_request_here(&mut self, r: &RequestRecord, scheduled: Option<&Scheduled>) {
        match &r.error {
            Some(e) => self.counts.record_failure(e.kind(), || e.to_string()),
            None => self.add_success(r),
        }
        self.add_common(r, scheduled);
    }

    /// Adds one request read back from a records file ([`crate::merge`]): a failed one is
    /// counted under the `(kind, message)` the file gives (its `error`, any failure, only makes
    /// it read as failed); otherwise as [`LevelAccumulator::add_request`].
    pub fn add_recorded(
        &mut self,
        r: &RequestRecord,
        failure: Option<(&str, &str)>,
        scheduled: Option<&Scheduled>,
    ) {
        if let Some(acc) = self.endpoint(r) {
            acc.add_recorded(r, failure, scheduled);
        }
        match failure {
            Some((kind, message)) => self.counts.record_failure(kind, || message.to_string()),
            None => self.add_success(r),
        }
        self.add_common(r, scheduled);
    }

    fn add_success(&mut self, r: &RequestRecord) {
        self.counts.record_success();
        if let (Some(p), Some(c)) = (r.prompt_tokens, r.cached_tokens) {
            let t = &mut self.cache;
            t.reporting += 1;
            t.prompt_tokens = t.prompt_tokens.saturating_add(p);
            t.cached_tokens = t.cached_tokens.saturating_add(c);
        }
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
                if let Some(a) = l.ttfat {
                    self.ttfat.push(a);
                }
                self.e2el.push(l.e2el);
                if let Some(t) = l.tpot {
                    self.tpot.push(t);
                }
                l.itl.iter().for_each(|&g| self.itl.push(g));
            }
        }
    }

    fn add_common(&mut self, r: &RequestRecord, scheduled: Option<&Scheduled>) {
        if let Some(slo) = &self.slo {
            self.good += u64::from(slo.met(r));
        }
        self.measured += 1;
        self.run.add(r);
        if let Some(s) = scheduled {
            self.add_scheduled(r, s);
        }
    }

    fn add_scheduled(&mut self, r: &RequestRecord, s: &Scheduled) {
        let secs = |ns: u64, from: u64| (ns as f64 - from as f64) / NS;
        if r.timing.end_ns.is_some() {
            self.send_lag.push(secs(r.timing.send_ns, s.scheduled_ns));
        }
        if let Some(w) = s.slot_wait_ns {
            self.slot_wait.push(w as f64 / NS);
        }
        if r.is_ok() {
            // The latency the server's queue shows in: to the first token when streamed, to the
            // end otherwise; from the schedule, so that waits in the client count too.
            let first = if self.streamed {
                r.timing.first_token_ns
            } else {
                r.timing.end_ns
            };
            if let (Some(t), Some(origin)) =
                (first, self.run.timeline.as_ref().map(Timeline::origin_ns))
            {
                self.trend
                    .push(secs(s.scheduled_ns, origin), secs(t, s.scheduled_ns));
            }
            if let Some(t) = r.timing.first_token_ns {
                self.ttft_from_schedule.push(secs(t, s.scheduled_ns));
            }
            if let Some(e) = r.timing.end_ns {
                self.e2el_from_schedule.push(secs(e, s.scheduled_ns));
            }
        }
    }

    /// An open loop's measured arrival (cancelled ones included), for the scheduled and achieved
    /// rates: when it was due and when it was sent.
    pub fn add_arrival(&mut self, due_ns: u64, sent_ns: u64) {
        widen(&mut self.run.due, due_ns);
        widen(&mut self.run.sent, sent_ns);
    }

    /// Counts a request the client aborted on purpose (`--cancel_rate`).
    pub fn add_aborted(&mut self, r: &RequestRecord) {
        if let Some(acc) = self.endpoint(r) {
            acc.add_aborted(r);
        }
        self.counts.aborted += 1;
    }

    /// Counts requests cancelled at the end of a timed level.
    pub fn add_cancelled(&mut self, n: u64) {
        self.counts.cancelled += n;
    }

    /// Ends the run in progress; returns what it produced.
    pub fn end_run(&mut self) -> RunSummary {
        for (_, acc) in &mut self.endpoints {
            acc.end_run();
        }
        let run = std::mem::take(&mut self.run);
        if let Some(timeline) = &run.timeline {
            if let Some(mut st) = timeline.steady_state(self.target) {
                // From the run's start, so that the window means the same on every clock (a
                // merge of shards puts their runs on a timeline of its own).
                st.start_ns = st.start_ns.saturating_sub(timeline.origin_ns());
                st.end_ns = st.end_ns.saturating_sub(timeline.origin_ns());
                self.steady.push(st);
            }
        }
        if run.due.is_some() {
            self.scheduled_rate.push(span_rate(run.due));
            self.achieved_rate.push(span_rate(run.sent));
        }
        let figures = run.figures();
        if let Some(f) = &figures {
            self.runs.push(f.clone());
            self.measured_seconds += f.batch_total_seconds;
            self.requests_per_second
                .push(rate(run.ok as f64, f.batch_total_seconds));
        }
        RunSummary {
            figures,
            succeeded: run.ok,
            failed: run.failed,
            mean_output_tokens: run.output.stat().mean,
            mean_request_tokens_per_second: run.request_tps.stat().mean,
        }
    }

    /// Adds one burst's records (kept by the burst anyway) and ends the run: its steady state is
    /// computed exactly from them.
    pub fn add_run(&mut self, records: &[RequestRecord]) -> RunSummary {
        for (i, (_, acc)) in self.endpoints.iter_mut().enumerate() {
            let theirs: Vec<RequestRecord> =
                records.iter().filter(|r| r.replica == i).cloned().collect();
            acc.add_run(&theirs);
        }
        self.run = RunTally::default();
        for r in records {
            self.add_request_here(r, None);
            // A request the interruption abandoned before it was sent has no time to place.
            if r.timing.send_ns == 0 && r.error.is_some() {
                continue;
            }
            let end_ns = r.timing.end_ns.unwrap_or(r.timing.send_ns);
            self.timeline_add(Ended {
                record: r,
                end_ns,
                cancelled: false,
            });
        }
        let refs: Vec<&RequestRecord> = records.iter().collect();
        if let Some(st) = steady_state(&refs, self.target) {
            self.steady.push(st);
        }
        self.end_run()
    }

    /// The level's measured requests so far: successes, and failures by kind.
    pub fn counts(&self) -> &RequestCounts {
        &self.counts
    }

    /// The level so far, as [`LevelAccumulator::finish`] would give it with the run in progress
    /// ended now (for periodic snapshots of a long level).
    pub fn snapshot(&self) -> ChatLevel {
        let mut copy = self.clone();
        let _ = copy.end_run();
        copy.finish()
    }

    /// The level's typed results: every figure by the SPEC's pooling rules, its `load` block
    /// (shape, limits, and what an open loop's schedule achieved), with objectives its goodput,
    /// and which percentiles came from a histogram.
    pub fn finish(self) -> ChatLevel {
        let confidence = self.confidence;
        let over_runs = |s: Summary| match confidence {
            Some(c) => s.mean_std_ci(c),
            None => s.mean_std(),
        };
        let per_run = |f: fn(&RunFigures) -> f64| over_runs(Summary::new(self.runs.iter().map(f)));
        let pooled = |v: &[f64]| over_runs(Summary::new(v.iter().copied()));
        let mut histograms: Vec<&str> = Vec::new();
        let mut dist = |name: &'static str, s: &Samples| {
            if !s.is_exact() {
                histograms.push(name);
            }
            s.distribution(confidence)
        };
        let latency = self.streamed.then(|| ChatLatency {
            ttft: dist("ttft", &self.ttft),
            itl: dist("itl", &self.itl),
            tpot: dist("tpot", &self.tpot),
            e2el: dist("e2el", &self.e2el),
            time_to_first_answer_token: self
                .reasoning_seen
                .then(|| dist("time_to_first_answer_token", &self.ttfat)),
            ttft_from_schedule: (self.ttft_from_schedule.count() > 0)
                .then(|| dist("ttft_from_schedule", &self.ttft_from_schedule)),
            extra: Default::default(),
        });
        let schedule = if self.scheduled_rate.is_empty() {
            ScheduleBlock::default()
        } else {
            ScheduleBlock {
                scheduled_rate: Some(pooled(&self.scheduled_rate)),
                achieved_rate: Some(pooled(&self.achieved_rate)),
                send_lag: Some(dist("send_lag", &self.send_lag)),
                slot_wait: (self.slot_wait.count() > 0).then(|| dist("slot_wait", &self.slot_wait)),
                e2el_from_schedule: (self.e2el_from_schedule.count() > 0)
                    .then(|| dist("e2el_from_schedule", &self.e2el_from_schedule)),
                latency_trend: self.trend.trend(),
            }
        };
        let percentiles = (!histograms.is_empty()).then(|| Percentiles {
            histogram: histograms.iter().map(|s| s.to_string()).collect(),
            relative_error: HISTOGRAM_RELATIVE_ERROR,
        });
        let steady_state = (!self.steady.is_empty()).then(|| {
            let st = &self.steady;
            let runs = |f: fn(&SteadyWindow) -> f64| over_runs(Summary::new(st.iter().map(f)));
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
        let endpoints = (!self.endpoints.is_empty()).then(|| {
            self.endpoints
                .into_iter()
                .map(|(api_base, acc)| {
                    let level = acc.finish();
                    EndpointLevel {
                        api_base,
                        requests: level.requests.unwrap_or_default(),
                        tokens: level.tokens,
                        throughput: level.throughput,
                        latency: level.latency,
                        goodput: level.goodput,
                        extra: Default::default(),
                    }
                })
                .collect()
        });
        let token_sources: IndexMap<String, u64> = self
            .token_sources
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        ChatLevel {
            tokens: ChatTokens {
                input_per_request: self.input_tokens.stat(),
                output_per_request: self.output_tokens.stat(),
                output_token_source: Some(token_sources),
                // Beside the token count: how many SSE events carried content. Equal to it when
                // the server sends one token per event; fewer when it merges tokens.
                content_events_per_request: self.streamed.then(|| self.content_events.stat()),
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
                request_tokens_per_second: self.request_tps.stat(),
                requests_per_second: Some(pooled(&self.requests_per_second)),
                steady_state,
                extra: Default::default(),
            },
            latency,
            requests: Some(self.counts),
            goodput,
            load: Some(self.shape.load_block(&self.limits, schedule)),
            percentiles,
            cost: None,
            server_metrics: None,
            timeline: self.series.as_ref().and_then(Series::block),
            probes: None,
            endpoints,
            prefix_cache: None,
            conversation: self.turns.map(|t| t.block(confidence)),
            client_load: None,
            incomplete: false,
            extra: Default::default(),
        }
    }
}
