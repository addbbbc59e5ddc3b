//! From request records to the figures of the result document. This is the one place where
//! records become statistics; every definition here is the one the README states.
//!
//! - [`burst`]: the original's per-run figures (batch time, fastest, slowest, batch tokens/s);
//! - [`latency`]: TTFT, ITL, TPOT and E2EL of one streamed request;
//! - [`goodput`]: the service-level objectives a request meets or not;
//! - [`steady`]: the steady-state window of a run;
//! - [`samples`]: summaries built as values arrive (exact, or a histogram past a limit);
//! - [`series`]: a level's timeline, bucket by bucket, for the result file;
//! - [`timeline`]: a sustained run's steady state in time buckets;
//! - [`trend`]: whether an open loop's server kept up (latency against time);
//! - [`turns`]: a conversation level's figures per turn index, and its sessions;
//! - [`level`]: pooling the runs of one level into its typed [`tokenomics_stats::ChatLevel`].

pub mod burst;
pub mod goodput;
pub mod latency;
pub mod level;
pub mod samples;
pub mod series;
pub mod steady;
pub mod timeline;
pub mod trend;
pub mod turns;

pub use burst::{burst_timing, run_figures, BurstTiming, RunFigures};
pub use goodput::Slo;
pub use latency::{request_latency, request_tokens_per_second, token_gaps, RequestLatency};
pub use level::{LevelAccumulator, RunSummary, RunTally, Scheduled};
pub use samples::{Moments, Pooled, Samples};
pub use steady::{steady_state, SteadyWindow, STEADY_SHARE};

/// Nanoseconds per second.
pub(crate) const NS: f64 = 1e9;

/// `amount / seconds`, NaN when no time passed.
pub fn rate(amount: f64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        amount / seconds
    } else {
        f64::NAN
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use tokenomics_client::{RequestRecord, RequestTiming};

    pub const MS: u64 = 1_000_000;

    /// A successful streamed request: sent at `send` ms, events at `events` ms, `tokens` tokens.
    pub fn streamed(send: u64, events: &[u64], tokens: u64, end: u64) -> RequestRecord {
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

    pub fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }
}
