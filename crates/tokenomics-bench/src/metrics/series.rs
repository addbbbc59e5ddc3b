//! A level's timeline: what was sent, what ended and what arrived, bucket by bucket on the run's
//! clock ([`tokenomics_stats::TimelineBlock`]).
//!
//! Requests are added as they finish (warm-up and cancelled ones too: they loaded the server). A
//! request costs O(1) plus one step per streamed content event. Per bucket the TTFTs of the
//! requests whose first token arrived in it are kept for the bucket's percentiles: every one
//! while there are at most [`TTFT_KEPT`], past that a uniform sample of that many (reservoir
//! sampling, seeded: the same run gives the same timeline). A level that outgrows
//! [`MAX_BUCKETS`] merges neighbours and doubles the width, so memory stays bounded however long
//! it runs.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokenomics_client::RequestRecord;
use tokenomics_stats::{percentile, TimelineBlock, TimelineServer};

use super::NS;

/// The most buckets a level's timeline keeps before it doubles its width.
pub const MAX_BUCKETS: usize = 4_096;
/// TTFTs kept per bucket for its percentiles.
pub const TTFT_KEPT: usize = 256;

/// A sample of the values added to it: all of them up to [`TTFT_KEPT`], then a uniform sample.
#[derive(Debug, Clone, Default)]
struct Reservoir {
    seen: u64,
    kept: Vec<f32>,
}

impl Reservoir {
    fn push(&mut self, x: f64, rng: &mut ChaCha8Rng) {
        self.seen += 1;
        if self.kept.len() < TTFT_KEPT {
            self.kept.push(x as f32);
        } else {
            // Algorithm R: the n-th value replaces a kept one with probability k/n.
            let j = rng.gen_range(0..self.seen);
            if let Some(slot) = self.kept.get_mut(j as usize) {
                *slot = x as f32;
            }
        }
    }

    /// The union of two samples, each side weighted by how many values it stands for; the
    /// values kept of each side are a uniform choice (shuffled first: a reservoir's slots are
    /// in no random order).
    fn merge(mut self, mut other: Reservoir, rng: &mut ChaCha8Rng) -> Reservoir {
        let seen = self.seen + other.seen;
        if self.kept.len() + other.kept.len() <= TTFT_KEPT {
            self.kept.extend(other.kept);
        } else {
            self.kept.shuffle(rng);
            other.kept.shuffle(rng);
            let from_self = ((TTFT_KEPT as f64 * self.seen as f64 / seen as f64).round() as usize)
                .min(self.kept.len())
                .max(TTFT_KEPT.saturating_sub(other.kept.len()));
            self.kept.truncate(from_self);
            let rest = TTFT_KEPT - self.kept.len();
            self.kept.extend(other.kept.into_iter().take(rest));
        }
        self.seen = seen;
        self
    }

    fn percentiles(&self) -> (Option<f64>, Option<f64>) {
        if self.kept.is_empty() {
            return (None, None);
        }
        let mut v: Vec<f64> = self.kept.iter().map(|&x| f64::from(x)).collect();
        v.sort_by(f64::total_cmp);
        (Some(percentile(&v, 50.0)), Some(percentile(&v, 99.0)))
    }
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    sent: u64,
    completed: u64,
    errors: u64,
    /// Requests that ended in the bucket, however (successes, failures, cancellations).
    ended: u64,
    tokens: u64,
    ttft: Reservoir,
}

impl Bucket {
    fn merge(self, other: Bucket, rng: &mut ChaCha8Rng) -> Bucket {
        Bucket {
            sent: self.sent + other.sent,
            completed: self.completed + other.completed,
            errors: self.errors + other.errors,
            ended: self.ended + other.ended,
            tokens: self.tokens + other.tokens,
            ttft: self.ttft.merge(other.ttft, rng),
        }
    }
}

/// A level's timeline in the making.
#[derive(Debug, Clone)]
pub struct Series {
    width_ns: u64,
    /// Where bucket 0 starts (ns on the run's clock): the first send seen, or the level's start.
    start_ns: Option<u64>,
    measured_from_ns: Option<u64>,
    buckets: Vec<Bucket>,
    /// Seeded: the same run gives the same timeline.
    rng: ChaCha8Rng,
}

/// A request as the timeline sees it.
pub struct Ended<'a> {
    /// The request's record, its timestamps ns on the run's clock.
    pub record: &'a RequestRecord,
    /// When it ended (ns on the run's clock): its record's end, or when it was given up.
    pub end_ns: u64,
    /// Cancelled at the end of a timed level or aborted on purpose: neither a success nor an
    /// error (the content events it received still count as output tokens).
    pub cancelled: bool,
}

impl Series {
    /// An empty timeline with buckets `interval_ns` wide (at least 1 ms).
    pub fn new(interval_ns: u64) -> Self {
        Self {
            width_ns: interval_ns.max(1_000_000),
            start_ns: None,
            measured_from_ns: None,
            buckets: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(0x9e37_79b9_7f4a_7c15),
        }
    }

    /// The load of a run started at `start_ns` and its measurement at `measured_ns` (ns on the
    /// run's clock). The first run's start is where the buckets start; a later run of the same
    /// level carries on along the same axis.
    pub fn begin(&mut self, start_ns: u64, measured_ns: u64) {
        if self.start_ns.is_none() {
            self.start_ns = Some(start_ns);
        }
        if self.measured_from_ns.is_none() {
            self.measured_from_ns = Some(measured_ns);
        }
    }

    fn bucket(&mut self, t_ns: u64) -> &mut Bucket {
        let i = self.index(t_ns);
        &mut self.buckets[i]
    }

    /// The index of the bucket of `t_ns`, made to exist (coarsening when there would be too many).
    fn index(&mut self, t_ns: u64) -> usize {
        let start = *self.start_ns.get_or_insert(t_ns);
        // A time before the start (a request of a run that began before `begin` was told) goes
        // in the first bucket.
        let mut i = (t_ns.saturating_sub(start) / self.width_ns) as usize;
        while i >= MAX_BUCKETS {
            self.coarsen();
            i = (t_ns.saturating_sub(start) / self.width_ns) as usize;
        }
        if self.buckets.len() <= i {
            self.buckets.resize_with(i + 1, Bucket::default);
        }
        i
    }

    /// Merges neighbours: half as many buckets, twice as wide.
    fn coarsen(&mut self) {
        let old = std::mem::take(&mut self.buckets);
        let mut it = old.into_iter();
        while let Some(a) = it.next() {
            self.buckets.push(match it.next() {
                Some(b) => a.merge(b, &mut self.rng),
                None => a,
            });
        }
        self.width_ns = self.width_ns.saturating_mul(2);
    }

    /// Adds a request that ended (or was given up).
    pub fn add(&mut self, e: Ended<'_>) {
        let r = e.record;
        let send_ns = r.timing.send_ns;
        // The start first: a request sent before any other fixes bucket 0 before its end is placed.
        self.bucket(send_ns).sent += 1;
        let end_ns = e.end_ns.max(send_ns);
        let end = self.bucket(end_ns);
        end.ended += 1;
        if e.cancelled {
            // As the cross-check counts it: a content event a token.
            for &t in &r.timing.token_events_ns {
                self.bucket(t).tokens += 1;
            }
            return;
        }
        if r.error.is_some() {
            end.errors += 1;
            return;
        }
        end.completed += 1;
        let tokens = r.completion_tokens.unwrap_or(0);
        let events = &r.timing.token_events_ns;
        if events.is_empty() {
            self.bucket(end_ns).tokens += tokens;
        } else {
            // Tokens by event; an uneven share goes to the first events, so the sum is exact.
            let n = events.len() as u64;
            let (each, extra) = (tokens / n, tokens % n);
            for (k, &t) in events.iter().enumerate() {
                let share = each + u64::from((k as u64) < extra);
                self.bucket(t).tokens += share;
            }
        }
        if let Some(first) = r.timing.first_token_ns {
            let ttft = first.saturating_sub(send_ns) as f64 / NS;
            let i = self.index(first);
            self.buckets[i].ttft.push(ttft, &mut self.rng);
        }
    }

    /// The level's `timeline` block (`None`: nothing was added).
    pub fn block(&self) -> Option<TimelineBlock> {
        let start_ns = self.start_ns?;
        if self.buckets.is_empty() {
            return None;
        }
        let mut block = TimelineBlock {
            interval_seconds: self.width_ns as f64 / NS,
            start_seconds: start_ns as f64 / NS,
            measured_from_seconds: self.measured_from_ns.unwrap_or(start_ns) as f64 / NS,
            ..TimelineBlock::default()
        };
        let mut in_flight = 0i64;
        for b in &self.buckets {
            in_flight += b.sent as i64 - b.ended as i64;
            block.sent.push(b.sent);
            block.completed.push(b.completed);
            block.errors.push(b.errors);
            block.in_flight.push(in_flight.max(0) as u64);
            block.output_tokens.push(b.tokens);
            let (p50, p99) = b.ttft.percentiles();
            block.ttft_p50_seconds.push(p50);
            block.ttft_p99_seconds.push(p99);
        }
        Some(block)
    }
}

/// The server's gauges (running, waiting, KV usage) at each scrape, bucketed onto `block`'s
/// buckets: the mean of the scrapes in each. `points`: (ns on the run's clock, the three values).
pub fn server_buckets(block: &TimelineBlock, points: &[(u64, [Option<f64>; 3])]) -> TimelineServer {
    let n = block.len();
    let mut sums = vec![[(0u32, 0.0f64); 3]; n];
    for (t_ns, values) in points {
        let offset = *t_ns as f64 / NS - block.start_seconds;
        if offset < 0.0 || block.interval_seconds <= 0.0 {
            continue;
        }
        let i = (offset / block.interval_seconds) as usize;
        let Some(bucket) = sums.get_mut(i) else {
            continue;
        };
        for (acc, v) in bucket.iter_mut().zip(values) {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                acc.0 += 1;
                acc.1 += v;
            }
        }
    }
    let column = |k: usize| -> Vec<Option<f64>> {
        sums.iter()
            .map(|b| (b[k].0 > 0).then(|| b[k].1 / f64::from(b[k].0)))
            .collect()
    };
    TimelineServer {
        running: column(0),
        waiting: column(1),
        kv_usage: column(2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::testing::{streamed, MS};
    use tokenomics_client::Error;

    const S: u64 = 1_000 * MS;

    fn ended(r: &RequestRecord) -> Ended<'_> {
        Ended {
            record: r,
            end_ns: r.timing.end_ns.unwrap_or(r.timing.send_ns),
            cancelled: false,
        }
    }

    #[test]
    fn buckets_count_sends_ends_tokens_and_in_flight() {
        let mut s = Series::new(S);
        s.begin(10 * S, 11 * S);
        // Sent at 10.0 s, first token at 10.5 s, events at 10.5, 11.2, 11.9; ends 12.1 s.
        let a = streamed(10_000, &[10_500, 11_200, 11_900], 7, 12_100);
        // Sent at 10.2 s, failed at 10.8 s.
        let mut b = streamed(10_200, &[], 0, 10_800);
        b.error = Some(Error::Io("reset".into()));
        // Sent at 11.5 s, cancelled (given up) at 13.2 s.
        let c = streamed(11_500, &[], 0, 11_500);
        s.add(ended(&a));
        s.add(ended(&b));
        s.add(Ended {
            record: &c,
            end_ns: 13_200 * MS,
            cancelled: true,
        });
        let t = s.block().unwrap();
        assert_eq!(t.interval_seconds, 1.0);
        assert_eq!(t.start_seconds, 10.0);
        assert_eq!(t.measured_from_seconds, 11.0);
        assert_eq!(t.sent, vec![2, 1, 0, 0]);
        assert_eq!(t.completed, vec![0, 0, 1, 0]);
        assert_eq!(t.errors, vec![1, 0, 0, 0]);
        // In flight at each bucket's end: a (and c from 11.5 s), until 12.1 and 13.2 s.
        assert_eq!(t.in_flight, vec![1, 2, 1, 0]);
        // 7 tokens over 3 events: 3, 2, 2 — the first event in bucket 0, the others in 1.
        assert_eq!(t.output_tokens, vec![3, 4, 0, 0]);
        assert_eq!(t.ttft_p50_seconds, vec![Some(0.5), None, None, None]);
        assert_eq!(t.ttft_p99_seconds[0], Some(0.5));
    }

    #[test]
    fn a_long_level_coarsens_and_keeps_its_totals() {
        let mut s = Series::new(MS);
        let n = 10_000u64;
        for k in 0..n {
            let r = streamed(k * 3, &[k * 3 + 1], 1, k * 3 + 2);
            s.add(ended(&r));
        }
        let t = s.block().unwrap();
        assert!(t.len() <= MAX_BUCKETS, "{}", t.len());
        // 30 s of 1 ms buckets: halved three times to fit.
        assert_eq!(t.interval_seconds, 0.008);
        assert_eq!(t.sent.iter().sum::<u64>(), n);
        assert_eq!(t.completed.iter().sum::<u64>(), n);
        assert_eq!(t.output_tokens.iter().sum::<u64>(), n);
        assert_eq!(*t.in_flight.last().unwrap(), 0);
    }

    #[test]
    fn bucket_percentiles_come_from_a_fair_sample() {
        // 10,000 TTFTs in one bucket, spread evenly over 0..1 s in a scrambled order.
        let mut s = Series::new(100 * S);
        for k in 0..10_000u64 {
            let ttft_us = (k * 7_919 % 10_000) * 100;
            let mut r = streamed(0, &[], 1, 2_000);
            r.timing.first_token_ns = Some(ttft_us * 1_000);
            r.timing.token_events_ns = vec![ttft_us * 1_000];
            s.add(ended(&r));
        }
        let t = s.block().unwrap();
        let p50 = t.ttft_p50_seconds[0].unwrap();
        let p99 = t.ttft_p99_seconds[0].unwrap();
        // A sample of 256 from a uniform: its median within ±0.1 (about three standard errors).
        assert!((p50 - 0.5).abs() < 0.1, "{p50}");
        assert!(p99 > 0.9, "{p99}");
    }

    #[test]
    fn server_gauges_are_averaged_per_bucket() {
        let block = TimelineBlock {
            interval_seconds: 1.0,
            start_seconds: 5.0,
            sent: vec![0; 3],
            ..TimelineBlock::default()
        };
        let points = [
            (4 * S, [Some(9.0), None, None]), // before the first bucket
            (5_100 * MS, [Some(2.0), Some(1.0), Some(0.5)]),
            (5_600 * MS, [Some(4.0), Some(3.0), None]),
            (7_010 * MS, [Some(1.0), None, Some(0.25)]),
            (9 * S, [Some(1.0), None, None]), // past the last
        ];
        let g = server_buckets(&block, &points);
        assert_eq!(g.running, vec![Some(3.0), None, Some(1.0)]);
        assert_eq!(g.waiting, vec![Some(2.0), None, None]);
        assert_eq!(g.kv_usage, vec![Some(0.5), None, Some(0.25)]);
    }
}
