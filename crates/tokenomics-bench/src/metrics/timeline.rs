//! A run in fixed time buckets, filled as requests finish, for the steady state of sustained
//! runs whose requests are not kept.
//!
//! Each bucket holds the requests sent and ended in it (so the number in flight at every bucket
//! boundary is a running sum), the successful requests' share of their send → end that fell in it,
//! and the output tokens that arrived in it (a streamed request's at its events, a non-streamed
//! one's spread evenly over its send → end). A request costs O(1) plus one step per streamed
//! event: spreads over many buckets go into difference arrays. Buckets start 1 ms wide; when a
//! run outgrows [`MAX_BUCKETS`], neighbours merge and the width doubles, so memory stays bounded
//! however long the run, and the window is resolved to one bucket.

use super::steady::{SteadyWindow, STEADY_SHARE};

/// The most buckets a timeline keeps before it coarsens.
pub const MAX_BUCKETS: usize = 16_384;
const FIRST_WIDTH_NS: u64 = 1_000_000;

/// A run's requests and tokens in time buckets from `origin_ns` (ns on the run's clock).
#[derive(Debug, Clone)]
pub struct Timeline {
    origin_ns: u64,
    width_ns: u64,
    /// Requests sent minus requests ended, per bucket.
    delta: Vec<i64>,
    /// Successful requests' shares (partial buckets), and the difference array of their
    /// per-nanosecond density over whole buckets.
    share: Vec<f64>,
    share_density: Vec<f64>,
    /// Output tokens, likewise.
    tokens: Vec<f64>,
    token_density: Vec<f64>,
    first_send: Option<u64>,
    last_send: Option<u64>,
}

impl Timeline {
    /// Where the buckets start (ns on the run's clock).
    pub fn origin_ns(&self) -> u64 {
        self.origin_ns
    }

    /// An empty timeline whose buckets start at `origin_ns`.
    pub fn new(origin_ns: u64) -> Self {
        Self {
            origin_ns,
            width_ns: FIRST_WIDTH_NS,
            delta: Vec::new(),
            share: Vec::new(),
            share_density: Vec::new(),
            tokens: Vec::new(),
            token_density: Vec::new(),
            first_send: None,
            last_send: None,
        }
    }

    /// The bucket width now, nanoseconds.
    pub fn width_ns(&self) -> u64 {
        self.width_ns
    }

    /// Adds a request that was sent at `send_ns` and ended at `end_ns`; a successful one also
    /// carries its output tokens (`tokens`) and the arrival of its content events (empty when it
    /// was not streamed).
    pub fn add(&mut self, send_ns: u64, end_ns: u64, ok: Option<(u64, &[u64])>) {
        let end_ns = end_ns.max(send_ns);
        self.first_send = Some(self.first_send.map_or(send_ns, |f| f.min(send_ns)));
        self.last_send = Some(self.last_send.map_or(send_ns, |l| l.max(send_ns)));
        self.reach(end_ns);
        let (bs, be) = (self.bucket(send_ns), self.bucket(end_ns));
        self.delta[bs] += 1;
        self.delta[be] -= 1;
        let Some((tokens, events)) = ok else { return };
        self.spread_share(send_ns, end_ns, 1.0);
        if events.is_empty() {
            self.spread_tokens(send_ns, end_ns, tokens as f64);
        } else {
            let each = tokens as f64 / events.len() as f64;
            for &t in events {
                let b = self.bucket(t.clamp(send_ns, end_ns));
                self.tokens[b] += each;
            }
        }
    }

    /// The steady-state window: requests in flight at or above 90% of `target` (`None`: the
    /// time-weighted mean in flight between the first and the last send), to one bucket.
    pub fn steady_state(&self, target: Option<f64>) -> Option<SteadyWindow> {
        let n = self.delta.len();
        let mut in_flight = Vec::with_capacity(n + 1);
        let mut c = 0i64;
        in_flight.push(0);
        for d in &self.delta {
            c += d;
            in_flight.push(c);
        }
        let target = match target {
            Some(t) => t,
            None => {
                let (first, last) = (self.first_send?, self.last_send?);
                let (b0, b1) = (self.bucket_of(first), self.bucket_of(last));
                if b1 <= b0 {
                    return None;
                }
                in_flight[b0 + 1..=b1].iter().sum::<i64>() as f64 / (b1 - b0) as f64
            }
        };
        let threshold = STEADY_SHARE * target;
        let above = |b: usize| in_flight[b] > 0 && in_flight[b] as f64 >= threshold;
        let open = (0..=n).find(|&b| above(b))?;
        let last = (0..=n).rev().find(|&b| above(b))?;
        let close = (last + 1).min(n);
        if close <= open {
            return None;
        }
        let covered = (open..close).filter(|&b| above(b)).count();
        let shares = self.materialise(&self.share, &self.share_density);
        let tokens = self.materialise(&self.tokens, &self.token_density);
        let seconds = ((close - open) as u64 * self.width_ns) as f64 / 1e9;
        Some(SteadyWindow {
            start_ns: self.origin_ns + open as u64 * self.width_ns,
            end_ns: self.origin_ns + close as u64 * self.width_ns,
            target,
            threshold,
            coverage: covered as f64 / (close - open) as f64,
            output_tokens_per_second: tokens[open..close].iter().sum::<f64>() / seconds,
            requests_per_second: shares[open..close].iter().sum::<f64>() / seconds,
        })
    }

    fn bucket_of(&self, t_ns: u64) -> usize {
        (t_ns.saturating_sub(self.origin_ns) / self.width_ns) as usize
    }

    /// The bucket of `t_ns`, which [`Timeline::reach`] made room for.
    fn bucket(&self, t_ns: u64) -> usize {
        self.bucket_of(t_ns).min(self.delta.len().saturating_sub(1))
    }

    /// Makes room up to `t_ns`, coarsening while the run would need more than [`MAX_BUCKETS`].
    fn reach(&mut self, t_ns: u64) {
        while self.bucket_of(t_ns) >= MAX_BUCKETS {
            self.coarsen();
        }
        let need = self.bucket_of(t_ns) + 2;
        if self.delta.len() < need {
            self.delta.resize(need, 0);
            self.share.resize(need, 0.0);
            self.share_density.resize(need + 1, 0.0);
            self.tokens.resize(need, 0.0);
            self.token_density.resize(need + 1, 0.0);
        }
    }

    /// Per-bucket values: the partial amounts plus the whole-bucket densities.
    fn materialise(&self, partial: &[f64], density: &[f64]) -> Vec<f64> {
        let mut d = 0.0;
        partial
            .iter()
            .zip(density)
            .map(|(p, dd)| {
                d += dd;
                p + d * self.width_ns as f64
            })
            .collect()
    }

    /// Merges neighbouring buckets, doubling the width.
    fn coarsen(&mut self) {
        let pairs = |v: &[f64]| -> Vec<f64> { v.chunks(2).map(|c| c.iter().sum()).collect() };
        let share = self.materialise(&self.share, &self.share_density);
        let tokens = self.materialise(&self.tokens, &self.token_density);
        self.delta = self.delta.chunks(2).map(|c| c.iter().sum()).collect();
        self.share = pairs(&share);
        self.tokens = pairs(&tokens);
        self.share_density = vec![0.0; self.share.len() + 1];
        self.token_density = vec![0.0; self.tokens.len() + 1];
        self.width_ns *= 2;
    }

    fn spread_share(&mut self, s: u64, e: u64, amount: f64) {
        spread(
            self.origin_ns,
            self.width_ns,
            &mut self.share,
            &mut self.share_density,
            s,
            e,
            amount,
        );
    }

    fn spread_tokens(&mut self, s: u64, e: u64, amount: f64) {
        spread(
            self.origin_ns,
            self.width_ns,
            &mut self.tokens,
            &mut self.token_density,
            s,
            e,
            amount,
        );
    }
}

/// Adds `amount` spread evenly over `[s, e]`: the partial first and last buckets directly, the
/// whole buckets between them through the difference array of densities.
fn spread(
    origin: u64,
    width: u64,
    partial: &mut [f64],
    density: &mut [f64],
    s: u64,
    e: u64,
    amount: f64,
) {
    let last = partial.len().saturating_sub(1);
    let bucket = |t: u64| ((t.saturating_sub(origin) / width) as usize).min(last);
    let (bs, be) = (bucket(s), bucket(e));
    if e <= s || bs == be {
        partial[be] += amount;
        return;
    }
    let per_ns = amount / (e - s) as f64;
    let boundary = |b: usize| origin + b as u64 * width;
    partial[bs] += per_ns * boundary(bs + 1).saturating_sub(s.max(origin)) as f64;
    partial[be] += per_ns * e.saturating_sub(boundary(be)) as f64;
    if be > bs + 1 {
        density[bs + 1] += per_ns;
        density[be] -= per_ns;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::steady::steady_state;
    use crate::metrics::testing::{close, streamed, MS};
    use tokenomics_client::RequestRecord;

    fn add_all(t: &mut Timeline, recs: &[RequestRecord]) {
        for r in recs {
            let ok = r.is_ok().then(|| {
                (
                    r.completion_tokens.unwrap_or(0),
                    &r.timing.token_events_ns[..],
                )
            });
            t.add(r.timing.send_ns, r.timing.end_ns.unwrap(), ok);
        }
    }

    #[test]
    fn a_closed_loop_matches_the_exact_window_to_a_bucket() {
        // 4 slots, requests of 40 ms back to back for 2 s, streamed 8 tokens each; then a 300 ms
        // straggler in one slot.
        let mut recs = Vec::new();
        for slot in 0..4u64 {
            let mut t = slot; // staggered by a ms
            while t + 40 < 2000 {
                let events: Vec<u64> = (1..=8).map(|k| t + 5 * k).collect();
                recs.push(streamed(t, &events, 8, t + 40));
                t += 40;
            }
        }
        let events: Vec<u64> = (1..=8).map(|k| 2000 + 37 * k).collect();
        recs.push(streamed(2000, &events, 8, 2300));
        let refs: Vec<&RequestRecord> = recs.iter().collect();
        let exact = steady_state(&refs, Some(4.0)).unwrap();
        let mut t = Timeline::new(0);
        add_all(&mut t, &recs);
        let approx = t.steady_state(Some(4.0)).unwrap();
        let w = t.width_ns() as f64;
        assert!((approx.start_ns as f64 - exact.start_ns as f64).abs() <= w);
        assert!((approx.end_ns as f64 - exact.end_ns as f64).abs() <= 2.0 * w);
        let rel = |a: f64, b: f64| (a - b).abs() / b;
        assert!(
            rel(
                approx.output_tokens_per_second,
                exact.output_tokens_per_second
            ) < 0.02
        );
        assert!(rel(approx.requests_per_second, exact.requests_per_second) < 0.02);
        // 4 slots of 40 ms requests: 100 requests/s, 800 tokens/s.
        assert!(rel(approx.requests_per_second, 100.0) < 0.03, "{approx:?}");
    }

    #[test]
    fn coarsening_keeps_the_totals() {
        // One non-streamed request every 100 ms for an hour, each 1 s long, 10 tokens.
        let mut t = Timeline::new(0);
        for i in 0..36_000u64 {
            let mut r = streamed(i * 100, &[], 10, i * 100 + 1000);
            r.timing.token_events_ns.clear();
            t.add(r.timing.send_ns, r.timing.end_ns.unwrap(), Some((10, &[])));
        }
        assert!(t.delta.len() <= MAX_BUCKETS + 2);
        assert!(t.width_ns() > 200 * MS);
        let tokens: f64 = t.materialise(&t.tokens, &t.token_density).iter().sum();
        let shares: f64 = t.materialise(&t.share, &t.share_density).iter().sum();
        assert!(close(tokens, 360_000.0) || (tokens - 360_000.0).abs() < 1e-3);
        assert!((shares - 36_000.0).abs() < 1e-3);
        let st = t.steady_state(None).unwrap();
        // 10 in flight: 10 requests/s and 100 tokens/s.
        assert!((st.target - 10.0).abs() < 0.1, "{}", st.target);
        assert!((st.requests_per_second - 10.0).abs() < 0.05);
        assert!((st.output_tokens_per_second - 100.0).abs() < 0.5);
    }
}
