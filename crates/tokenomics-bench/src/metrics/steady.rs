//! The steady state of a run: the window in which requests in flight stayed near the target.

use tokenomics_client::RequestRecord;

use super::NS;

/// The steady-state window of a run: while the number of requests in flight stays at or above
/// 90% of the target.
#[derive(Debug, Clone, PartialEq)]
pub struct SteadyWindow {
    /// Window bounds, ns on the run's clock.
    pub start_ns: u64,
    /// The window's end, ns on the run's clock.
    pub end_ns: u64,
    /// The in-flight count aimed at, and 90% of it.
    pub target: f64,
    /// [`STEADY_SHARE`] of `target`: the in-flight count that opens and closes the window.
    pub threshold: f64,
    /// Share of the window during which in-flight was at or above the threshold (short dips
    /// between one request's end and the next one's send are inside the window).
    pub coverage: f64,
    /// Output tokens that arrived inside the window, over its seconds.
    pub output_tokens_per_second: f64,
    /// Successful requests over the window's seconds, each counted by the share of its send →
    /// end inside the window.
    pub requests_per_second: f64,
}

impl SteadyWindow {
    /// The window's length, seconds.
    pub fn seconds(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 / NS
    }
}

/// Share of the target in-flight count that defines the steady state.
pub const STEADY_SHARE: f64 = 0.9;

/// The steady-state window of one run's records (failed ones included: they occupied a slot).
/// `target` is the in-flight count the load aims at (batch size, concurrency); `None` (open loop)
/// takes the time-weighted mean in flight between the first and the last send. The window opens
/// when in-flight first reaches 90% of the target and closes when it last falls below it; its
/// throughput counts the output tokens that arrived inside it (a streamed request's tokens at
/// their events, a non-streamed one's spread evenly over its send → end) and the successful
/// requests, each by the share of its send → end inside the window. `None` when in-flight never
/// reached the threshold or the window is empty.
pub fn steady_state(records: &[&RequestRecord], target: Option<f64>) -> Option<SteadyWindow> {
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
    let mut requests = 0.0;
    for r in records.iter().filter(|r| r.is_ok()) {
        let (Some(n), Some(e)) = (r.completion_tokens, r.timing.end_ns) else {
            continue;
        };
        // The share of the request's time (send → end) that fell inside the window. Requests
        // count by it (so a window in which every request ran throughout gives the number of
        // requests over their latency, comparable with the whole run's requests/s; counting
        // only the requests that *ended* inside a burst's window would give a handful), and so
        // do the tokens of a non-streamed request.
        let s = r.timing.send_ns;
        let inside_share = if e > s {
            e.min(end).saturating_sub(s.max(start)) as f64 / (e - s) as f64
        } else {
            f64::from(u8::from((start..=end).contains(&e)))
        };
        requests += inside_share;
        let events = &r.timing.token_events_ns;
        if events.is_empty() {
            tokens += n as f64 * inside_share;
        } else {
            let inside = events
                .iter()
                .filter(|&&t| (start..=end).contains(&t))
                .count();
            tokens += n as f64 * inside as f64 / events.len() as f64;
        }
    }
    Some(SteadyWindow {
        start_ns: start,
        end_ns: end,
        target,
        threshold,
        coverage: above_ns as f64 / (end - start) as f64,
        output_tokens_per_second: tokens / seconds,
        requests_per_second: requests / seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::run_figures;
    use crate::metrics::testing::{close, streamed, MS};

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
        // Requests count by their share inside the window: 9 whole ones and a tenth of the
        // straggler, 9.1 over 0.1 s.
        assert!(close(st.requests_per_second, 91.0));
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
}
