//! The streaming latencies of one request: TTFT, ITL, TPOT, E2EL (and TTFAT for reasoning
//! models), in seconds.

use tokenomics_client::RequestRecord;

use super::NS;

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

/// The streaming latencies of a request, seconds, from its timestamps on the client's monotonic
/// clock; `None` when it recorded no first token or no end (not streamed, no content arrived, or
/// interrupted).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::testing::{close, streamed, MS};

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
}
