//! A level over time: what the client sent, received and measured in fixed buckets on the run's
//! clock, with the server's gauges scraped over the same buckets — so a rise in time to first
//! token can be read against the queue that caused it.
//!
//! Columns, not rows: bucket `i` covers `[start_seconds + i·interval_seconds, start_seconds +
//! (i+1)·interval_seconds)` and is the `i`-th entry of every column. Times are seconds on the
//! run's clock (the benchmark's monotonic clock, which starts with the process), the clock of
//! every other time in the result file and in the server-metrics series file, so the levels of a
//! run line up on one axis.

use serde::{Deserialize, Serialize};

/// The `timeline` block of a level.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelineBlock {
    /// The width of a bucket, seconds (`--timeline_interval`, doubled as often as a long level
    /// needed to stay within the bucket limit).
    pub interval_seconds: f64,
    /// Where the first bucket starts, seconds on the run's clock: the level's first send.
    pub start_seconds: f64,
    /// Where measurement started (after any warm-up), seconds on the run's clock.
    pub measured_from_seconds: f64,
    /// Requests sent in the bucket (warm-up included).
    pub sent: Vec<u64>,
    /// Requests that ended successfully in the bucket.
    pub completed: Vec<u64>,
    /// Requests that failed in the bucket (by their end).
    pub errors: Vec<u64>,
    /// Requests in flight at the end of the bucket.
    pub in_flight: Vec<u64>,
    /// Output tokens that arrived in the bucket: a streamed request's at its content events, a
    /// non-streamed one's at its end.
    pub output_tokens: Vec<u64>,
    /// Median time to first token of the requests whose first token arrived in the bucket,
    /// seconds (`null`: none did).
    pub ttft_p50_seconds: Vec<Option<f64>>,
    /// 99th percentile of the same, seconds.
    pub ttft_p99_seconds: Vec<Option<f64>>,
    /// The server's gauges over the same buckets (with `--server_metrics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<TimelineServer>,
}

/// The server's gauges per bucket: the mean of the scrapes that fell in it (`null`: none did, or
/// the server has no such gauge).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelineServer {
    /// Requests in the engine's batch.
    pub running: Vec<Option<f64>>,
    /// Requests in the engine's queue.
    pub waiting: Vec<Option<f64>>,
    /// Share of the KV cache in use, 0 to 1.
    pub kv_usage: Vec<Option<f64>>,
}

impl TimelineBlock {
    /// The number of buckets.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    /// Whether there is no bucket.
    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// Where bucket `i` starts, seconds on the run's clock.
    pub fn bucket_start(&self, i: usize) -> f64 {
        self.start_seconds + i as f64 * self.interval_seconds
    }
}
