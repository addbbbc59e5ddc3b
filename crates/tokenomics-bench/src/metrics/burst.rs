//! The original script's per-run figures of a burst.

use tokenomics_client::RequestRecord;

use super::{rate, NS};

/// The per-run figures of the original script, for one burst run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFigures {
    /// First send → last response (of any request, failed ones included), seconds.
    pub batch_total_seconds: f64,
    /// Earliest successful request end, relative to the first send, seconds.
    pub fastest_seconds: f64,
    /// Latest successful request end, relative to the first send, seconds.
    pub slowest_seconds: f64,
    /// Earliest to latest successful end, seconds.
    pub spread_seconds: f64,
    /// Completion tokens of successful requests / `batch_total_seconds`.
    pub batch_tokens_per_second: f64,
}

/// The timing of one burst: (send, end, succeeded) of every request → first send to last end,
/// and the earliest and latest successful end relative to the first send. `None` when nothing
/// succeeded. Shared by the chat and embedding benchmarks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurstTiming {
    /// First send → last end of any request, failed ones included, seconds.
    pub total_seconds: f64,
    /// First send → earliest successful end, seconds.
    pub fastest_seconds: f64,
    /// First send → latest successful end, seconds.
    pub slowest_seconds: f64,
    /// Earliest → latest successful end, seconds.
    pub spread_seconds: f64,
}

/// Times one burst from the (send, end, succeeded) of its requests, ns on one monotonic clock;
/// `None` when there are none or none succeeded.
pub fn burst_timing(
    spans: impl IntoIterator<Item = (u64, u64, bool)> + Clone,
) -> Option<BurstTiming> {
    let start = spans.clone().into_iter().map(|s| s.0).min()?;
    let end = spans.clone().into_iter().map(|s| s.1).max()?;
    let ok_ends = || spans.clone().into_iter().filter(|s| s.2).map(|s| s.1);
    let fastest = ok_ends().min()?;
    let slowest = ok_ends().max()?;
    let secs = |a: u64, b: u64| b.saturating_sub(a) as f64 / NS;
    Some(BurstTiming {
        total_seconds: secs(start, end),
        fastest_seconds: secs(start, fastest),
        slowest_seconds: secs(start, slowest),
        spread_seconds: secs(fastest, slowest),
    })
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
    // Saturating: a server's usage counts are not trusted to stay small.
    let tokens = records
        .iter()
        .filter(|r| r.is_ok())
        .filter_map(|r| r.completion_tokens)
        .fold(0u64, u64::saturating_add);
    Some(RunFigures {
        batch_total_seconds: t.total_seconds,
        fastest_seconds: t.fastest_seconds,
        slowest_seconds: t.slowest_seconds,
        spread_seconds: t.spread_seconds,
        batch_tokens_per_second: rate(tokens as f64, t.total_seconds),
    })
}
