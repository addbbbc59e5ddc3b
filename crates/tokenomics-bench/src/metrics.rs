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
    /// Send → first token (reasoning or answer).
    pub ttft: f64,
    /// Send → first answer token (after any reasoning); `None` when no answer text arrived.
    pub ttfat: Option<f64>,
    /// Send → end of the response.
    pub e2el: f64,
    /// (e2el − ttft) / (output tokens − 1); `None` for a single token.
    pub tpot: Option<f64>,
    /// Gaps between consecutive tokens. A gap between two events that carried k tokens between
    /// them is k gaps of 1/k of it each (see [`token_gaps`]).
    pub itl: Vec<f64>,
}

pub fn request_latency(r: &RequestRecord) -> Option<RequestLatency> {
    let (ttft, e2el, tpot) = ttft_e2el_tpot(r)?;
    let t = &r.timing;
    Some(RequestLatency {
        ttft,
        ttfat: t.first_answer_ns.map(|a| (a - t.send_ns) as f64 / NS),
        e2el,
        tpot,
        itl: token_gaps(&t.token_events_ns, output_tokens(r)),
    })
}

/// Output tokens of a streamed request: the server's count, else its content events.
fn output_tokens(r: &RequestRecord) -> u64 {
    r.completion_tokens.unwrap_or(r.content_events)
}

/// TTFT, E2EL and TPOT of a streamed request, seconds (TPOT `None` for a single token).
fn ttft_e2el_tpot(r: &RequestRecord) -> Option<(f64, f64, Option<f64>)> {
    let t = &r.timing;
    let ttft = (t.first_token_ns? - t.send_ns) as f64 / NS;
    let e2el = (t.end_ns? - t.send_ns) as f64 / NS;
    let tokens = output_tokens(r);
    let tpot = (tokens > 1).then(|| (e2el - ttft) / (tokens - 1) as f64);
    Some((ttft, e2el, tpot))
}

/// Inter-token latencies, seconds, from the arrival times of E content events carrying N tokens
/// in all. One token per event (N = E): the E − 1 gaps between events. When the server merged
/// tokens into fewer events (N > E), the N − 1 token gaps after the first token are dealt to the
/// E − 1 event gaps as evenly as whole numbers allow, and an event gap carrying k tokens counts as
/// k gaps of 1/k of its length — so the values sum to last event − first event either way, and
/// their mean is the stream's mean time per token.
pub fn token_gaps(events_ns: &[u64], tokens: u64) -> Vec<f64> {
    let gaps = events_ns.len().saturating_sub(1);
    if gaps == 0 {
        return Vec::new();
    }
    let token_gaps = (tokens.saturating_sub(1) as usize).max(gaps);
    let mut out = Vec::with_capacity(token_gaps);
    for (i, w) in events_ns.windows(2).enumerate() {
        // Bresenham: gap i carries floor((i+1)·T/G) − floor(i·T/G) tokens.
        let k = (i + 1) * token_gaps / gaps - i * token_gaps / gaps;
        let g = (w[1] - w[0]) as f64 / NS / k as f64;
        out.extend(std::iter::repeat_n(g, k));
    }
    out
}

/// Service-level objectives for goodput, in seconds (`--goodput ttft:MS,tpot:MS,e2el:MS`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Slo {
    pub ttft: Option<f64>,
    pub tpot: Option<f64>,
    pub e2el: Option<f64>,
}

impl Slo {
    /// Parses `ttft:MS,tpot:MS,e2el:MS` (any of them, milliseconds).
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut slo = Slo::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once(':')
                .ok_or_else(|| format!("{part:?} is not NAME:MILLISECONDS (e.g. ttft:500)"))?;
            let ms: f64 = value
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v > 0.0)
                .ok_or_else(|| format!("{value:?} is not a positive number of milliseconds"))?;
            let slot = match name.trim() {
                "ttft" => &mut slo.ttft,
                "tpot" => &mut slo.tpot,
                "e2el" => &mut slo.e2el,
                other => return Err(format!("unknown objective {other:?} (ttft, tpot or e2el)")),
            };
            *slot = Some(ms / 1e3);
        }
        if slo == Slo::default() {
            return Err("no objective given (e.g. ttft:500,tpot:50)".into());
        }
        Ok(slo)
    }

    /// Whether the objectives need streamed responses (TTFT and TPOT do).
    pub fn needs_stream(&self) -> bool {
        self.ttft.is_some() || self.tpot.is_some()
    }

    /// Whether a request met every objective. A failed request never does; a one-token
    /// response has no TPOT and meets that objective.
    pub fn met(&self, r: &RequestRecord) -> bool {
        if !r.is_ok() {
            return false;
        }
        let e2el = match (r.timing.end_ns, self.e2el) {
            (Some(end), Some(limit)) => (end - r.timing.send_ns) as f64 / NS <= limit,
            (None, Some(_)) => false,
            _ => true,
        };
        if !e2el {
            return false;
        }
        if self.ttft.is_none() && self.tpot.is_none() {
            return true;
        }
        let Some(l) = request_latency(r) else {
            return false;
        };
        self.ttft.is_none_or(|t| l.ttft <= t)
            && self.tpot.is_none_or(|t| l.tpot.is_none_or(|p| p <= t))
    }

    fn to_json(self) -> serde_json::Value {
        let ms = |v: Option<f64>| v.map(|s| s * 1e3);
        serde_json::json!({"ttft": ms(self.ttft), "tpot": ms(self.tpot), "e2el": ms(self.e2el)})
    }
}

/// The steady-state window of a run: while the number of requests in flight stays at or above
/// 90% of the target.
#[derive(Debug, Clone, PartialEq)]
pub struct SteadyState {
    /// Window bounds, ns on the run's clock.
    pub start_ns: u64,
    pub end_ns: u64,
    /// The in-flight count aimed at, and 90% of it.
    pub target: f64,
    pub threshold: f64,
    /// Share of the window during which in-flight was at or above the threshold (short dips
    /// between one request's end and the next one's send are inside the window).
    pub coverage: f64,
    pub output_tokens_per_second: f64,
    pub requests_per_second: f64,
}

/// Share of the target in-flight count that defines the steady state.
pub const STEADY_SHARE: f64 = 0.9;

/// The steady-state window of one run's records (failed ones included: they occupied a slot).
/// `target` is the in-flight count the load aims at (batch size, concurrency); `None` (open loop)
/// takes the time-weighted mean in flight between the first and the last send. The window opens
/// when in-flight first reaches 90% of the target and closes when it last falls below it; its
/// throughput counts the output tokens that arrived inside it (a streamed request's tokens at
/// their events, a non-streamed one's spread evenly over its send → end) and the requests that
/// succeeded inside it. `None` when in-flight never reached the threshold or the window is empty.
pub fn steady_state(records: &[&RequestRecord], target: Option<f64>) -> Option<SteadyState> {
    let mut edges: Vec<(u64, i64)> = Vec::with_capacity(records.len() * 2);
    for r in records {
        if let Some(end) = r.timing.end_ns {
            edges.push((r.timing.send_ns, 1));
            edges.push((end.max(r.timing.send_ns), -1));
        }
    }
    // At equal times, ends before sends: a slot handed over is not counted twice.
    edges.sort_unstable();
    let target = match target {
        Some(t) => t,
        None => {
            let first = records.iter().map(|r| r.timing.send_ns).min()?;
            let last = records.iter().map(|r| r.timing.send_ns).max()?;
            if last <= first {
                return None;
            }
            let (mut area, mut n, mut prev) = (0.0, 0i64, first);
            for &(t, d) in &edges {
                let t = t.clamp(first, last);
                area += n as f64 * (t - prev) as f64;
                prev = t;
                n += d;
            }
            area / (last - first) as f64
        }
    };
    let threshold = STEADY_SHARE * target;
    let (mut n, mut start, mut end) = (0i64, None::<u64>, None::<u64>);
    let (mut above_ns, mut above_since) = (0u64, None::<u64>);
    for &(t, d) in &edges {
        let was = n as f64 >= threshold && n > 0;
        n += d;
        let is = n as f64 >= threshold && n > 0;
        if !was && is {
            start.get_or_insert(t);
            above_since = Some(t);
        }
        if was && !is {
            end = Some(t);
            if let Some(s) = above_since.take() {
                above_ns += t - s;
            }
        }
    }
    let (start, end) = (start?, end?);
    if end <= start {
        return None;
    }
    let seconds = (end - start) as f64 / NS;
    let mut tokens = 0.0;
    let mut requests = 0u64;
    for r in records.iter().filter(|r| r.is_ok()) {
        let (Some(n), Some(e)) = (r.completion_tokens, r.timing.end_ns) else {
            continue;
        };
        if (start..=end).contains(&e) {
            requests += 1;
        }
        let events = &r.timing.token_events_ns;
        if events.is_empty() {
            let (s, e) = (r.timing.send_ns, e);
            let overlap = e.min(end).saturating_sub(s.max(start));
            if e > s {
                tokens += n as f64 * overlap as f64 / (e - s) as f64;
            }
        } else {
            let inside = events
                .iter()
                .filter(|&&t| (start..=end).contains(&t))
                .count();
            tokens += n as f64 * inside as f64 / events.len() as f64;
        }
    }
    Some(SteadyState {
        start_ns: start,
        end_ns: end,
        target,
        threshold,
        coverage: above_ns as f64 / (end - start) as f64,
        output_tokens_per_second: tokens / seconds,
        requests_per_second: requests as f64 / seconds,
    })
}

/// What the open loop adds about one request: when it was due, and how long it waited for a slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scheduled {
    pub scheduled_ns: u64,
    pub slot_wait_ns: Option<u64>,
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
    requests_per_second: Vec<f64>,
    ttft: Vec<f64>,
    ttfat: Vec<f64>,
    reasoning_seen: bool,
    itl: Vec<f64>,
    tpot: Vec<f64>,
    e2el: Vec<f64>,
    counts: RequestCounts,
    token_sources: indexmap::IndexMap<&'static str, u64>,
    streamed: bool,
    /// In-flight target of the steady state (`None`: the run's own mean, for open loops).
    target: Option<f64>,
    steady: Vec<SteadyState>,
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
    pub fn new(streamed: bool) -> Self {
        Self {
            streamed,
            ..Self::default()
        }
    }

    /// The in-flight count the load aims at, for the steady-state window (`None`: the mean of
    /// each run, as for an open loop).
    pub fn with_target(mut self, target: Option<f64>) -> Self {
        self.target = target;
        self
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

    pub fn finish(self) -> ChatLevel {
        let per_run = |f: fn(&RunFigures) -> f64| Summary::new(self.runs.iter().map(f)).mean_std();
        let pooled = |v: &[f64]| Summary::new(v.iter().copied()).mean_std();
        let dist = |v: &[f64]| Summary::new(v.iter().copied()).distribution();
        let latency = self.streamed.then(|| {
            let mut extra = serde_json::Map::new();
            if self.reasoning_seen {
                extra.insert(
                    "time_to_first_answer_token".into(),
                    to_json(&dist(&self.ttfat)),
                );
            }
            if !self.ttft_from_schedule.is_empty() {
                extra.insert(
                    "ttft_from_schedule".into(),
                    to_json(&dist(&self.ttft_from_schedule)),
                );
            }
            ChatLatency {
                ttft: dist(&self.ttft),
                itl: dist(&self.itl),
                tpot: dist(&self.tpot),
                e2el: dist(&self.e2el),
                extra,
            }
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
                to_json(&pooled(&self.content_events)),
            );
        }
        let mut throughput_extra = serde_json::Map::new();
        throughput_extra.insert(
            "requests_per_second".into(),
            to_json(&pooled(&self.requests_per_second)),
        );
        if !self.steady.is_empty() {
            let st = &self.steady;
            let runs =
                |f: fn(&SteadyState) -> f64| to_json(&Summary::new(st.iter().map(f)).mean_std());
            let windows: Vec<serde_json::Value> = st
                .iter()
                .map(|w| serde_json::json!({"start_ns": w.start_ns, "end_ns": w.end_ns, "seconds": (w.end_ns - w.start_ns) as f64 / NS}))
                .collect();
            throughput_extra.insert(
                "steady_state".into(),
                serde_json::json!({
                    "output_tokens_per_second": runs(|w| w.output_tokens_per_second),
                    "requests_per_second": runs(|w| w.requests_per_second),
                    "seconds": runs(|w| (w.end_ns - w.start_ns) as f64 / NS),
                    "coverage": runs(|w| w.coverage),
                    "target_in_flight": runs(|w| w.target),
                    "threshold_share": STEADY_SHARE,
                    "windows": windows,
                }),
            );
        }
        let mut extra = serde_json::Map::new();
        if let Some(slo) = self.slo {
            let share = if self.measured > 0 {
                self.good as f64 / self.measured as f64
            } else {
                f64::NAN
            };
            extra.insert(
                "goodput".into(),
                serde_json::json!({
                    "slo_ms": slo.to_json(),
                    "good": self.good,
                    "total": self.measured,
                    "share": finite(share),
                    "requests_per_second": finite(rate(self.good as f64, self.measured_seconds)),
                }),
            );
        }
        if !self.scheduled_rate.is_empty() {
            let mut load = serde_json::Map::new();
            load.insert(
                "scheduled_rate".into(),
                to_json(&pooled(&self.scheduled_rate)),
            );
            load.insert(
                "achieved_rate".into(),
                to_json(&pooled(&self.achieved_rate)),
            );
            load.insert("send_lag".into(), to_json(&dist(&self.send_lag)));
            if !self.slot_wait.is_empty() {
                load.insert("slot_wait".into(), to_json(&dist(&self.slot_wait)));
            }
            if !self.e2el_from_schedule.is_empty() {
                load.insert(
                    "e2el_from_schedule".into(),
                    to_json(&dist(&self.e2el_from_schedule)),
                );
            }
            extra.insert("load".into(), serde_json::Value::Object(load));
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
                extra: throughput_extra,
            },
            latency,
            requests: Some(self.counts),
            extra,
        }
    }
}

/// NaN as JSON null.
fn finite(x: f64) -> serde_json::Value {
    if x.is_finite() {
        x.into()
    } else {
        serde_json::Value::Null
    }
}

/// A statistic as a JSON value (its NaN fields become null by its own serialiser).
fn to_json(v: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenomics_client::RequestTiming;

    const MS: u64 = 1_000_000;

    /// A successful streamed request: sent at `send` ms, events at `events` ms, `tokens` tokens.
    fn streamed(send: u64, events: &[u64], tokens: u64, end: u64) -> RequestRecord {
        RequestRecord {
            timing: RequestTiming {
                send_ns: send * MS,
                first_token_ns: events.first().map(|e| e * MS),
                first_answer_ns: events.first().map(|e| e * MS),
                token_events_ns: events.iter().map(|e| e * MS).collect(),
                end_ns: Some(end * MS),
                ..RequestTiming::default()
            },
            completion_tokens: Some(tokens),
            content_events: events.len() as u64,
            ..RequestRecord::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn latencies_by_hand() {
        // Sent at 100 ms; tokens at 150, 160, 175, 180; done at 181.
        let r = streamed(100, &[150, 160, 175, 180], 4, 181);
        let l = request_latency(&r).unwrap();
        assert!(close(l.ttft, 0.050));
        assert!(close(l.e2el, 0.081));
        // (81 − 50) / 3
        assert!(close(l.tpot.unwrap(), 0.031 / 3.0));
        let want = [0.010, 0.015, 0.005];
        assert_eq!(l.itl.len(), 3);
        for (a, b) in l.itl.iter().zip(want) {
            assert!(close(*a, b), "{a} vs {b}");
        }
    }

    #[test]
    fn merged_chunks_spread_their_tokens_over_the_gap() {
        // 3 events carrying 7 tokens: 6 token gaps over 2 event gaps, 3 each.
        let gaps = token_gaps(&[0, 30 * MS, 60 * MS], 7);
        assert_eq!(gaps.len(), 6);
        assert!(gaps.iter().all(|g| close(*g, 0.010)));
        // Uneven: 3 events, 6 tokens → 5 token gaps dealt 2 + 3.
        let gaps = token_gaps(&[0, 20 * MS, 50 * MS], 6);
        assert_eq!(gaps.len(), 5);
        assert!(close(gaps.iter().sum::<f64>(), 0.050));
        assert!(close(gaps[0], 0.010) && close(gaps[1], 0.010));
        assert!(close(gaps[2], 0.010) && close(gaps[4], 0.010));
        // Fewer tokens than events (a server that counts oddly) never loses a gap.
        assert_eq!(token_gaps(&[0, MS, 2 * MS], 1).len(), 2);
        assert!(token_gaps(&[5], 3).is_empty());
    }

    #[test]
    fn reasoning_then_answer() {
        let mut r = streamed(0, &[10, 20, 30], 3, 31);
        r.timing.first_answer_ns = Some(30 * MS);
        r.reasoning_events = 2;
        let l = request_latency(&r).unwrap();
        assert!(close(l.ttft, 0.010));
        assert!(close(l.ttfat.unwrap(), 0.030));
    }

    #[test]
    fn steady_state_leaves_out_a_straggler() {
        // A burst of 10 sent at 0: nine end at 100 ms (10 tokens each, one per 10 ms), one
        // straggler at 1000 ms.
        let events: Vec<u64> = (1..=10).map(|k| k * 10).collect();
        let mut recs: Vec<RequestRecord> = (0..9).map(|_| streamed(0, &events, 10, 100)).collect();
        let slow: Vec<u64> = (1..=10).map(|k| k * 100).collect();
        recs.push(streamed(0, &slow, 10, 1000));
        let refs: Vec<&RequestRecord> = recs.iter().collect();
        let st = steady_state(&refs, Some(10.0)).unwrap();
        // In flight: 10 from 0 to 100 ms, then 1: the window is [0, 100 ms].
        assert_eq!((st.start_ns, st.end_ns), (0, 100 * MS));
        assert!(close(st.coverage, 1.0));
        // Tokens inside: 9 × 10 + the straggler's one token at 100 ms = 91 over 0.1 s.
        assert!(close(st.output_tokens_per_second, 910.0));
        assert!(close(st.requests_per_second, 90.0));
        // The whole run would say 100 tokens / 1 s.
        let whole = run_figures(&recs).unwrap();
        assert!(close(whole.batch_tokens_per_second, 100.0));
    }

    #[test]
    fn steady_state_of_an_open_loop_uses_the_mean_in_flight() {
        // One request every 10 ms, each 20 ms long: 2 in flight once started, 1 at the edges.
        let recs: Vec<RequestRecord> = (0..10)
            .map(|i| {
                let mut r = streamed(i * 10, &[i * 10 + 20], 1, i * 10 + 20);
                r.timing.token_events_ns.clear();
                r
            })
            .collect();
        let refs: Vec<&RequestRecord> = recs.iter().collect();
        let st = steady_state(&refs, None).unwrap();
        // Mean in flight between the first and last send (0..90 ms) is (1×10 + 2×80) / 90.
        assert!(close(st.target, 170.0 / 90.0));
        // Threshold 1.7: the window runs from 10 ms (2 in flight) to 100 ms (back to 1).
        assert_eq!((st.start_ns, st.end_ns), (10 * MS, 100 * MS));
        // Non-streamed tokens spread over send → end: 9 requests' worth inside the window
        // (the first is half inside, the last half inside), 0.5 + 8 + 0.5 = 9 tokens / 90 ms.
        assert!(close(st.output_tokens_per_second, 100.0));
    }

    #[test]
    fn goodput_counts_requests_meeting_every_objective() {
        let slo = Slo::parse("ttft:50,tpot:10").unwrap();
        assert_eq!(slo.ttft, Some(0.050));
        assert!(slo.needs_stream());
        let fast = streamed(0, &[40, 45, 50], 3, 50);
        let slow_first = streamed(0, &[60, 65, 70], 3, 70);
        let slow_tokens = streamed(0, &[40, 60, 80], 3, 80);
        let one_token = streamed(0, &[30], 1, 30);
        let mut failed = streamed(0, &[10, 11], 2, 11);
        failed.error = Some(tokenomics_client::Error::Interrupted);
        assert!(slo.met(&fast));
        assert!(!slo.met(&slow_first));
        assert!(!slo.met(&slow_tokens));
        assert!(slo.met(&one_token));
        assert!(!slo.met(&failed));
        let e2el = Slo::parse("e2el:60").unwrap();
        assert!(!e2el.needs_stream());
        assert!(e2el.met(&fast) && !e2el.met(&slow_tokens));
        for bad in ["", "ttft", "ttft:0", "ttft:-3", "speed:4", "ttft:x"] {
            assert!(Slo::parse(bad).is_err(), "{bad}");
        }
    }
}
