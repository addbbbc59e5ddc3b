//! The Tokenomics experiments.
//!
//! [`chat::ChatBenchmark`] runs the chat benchmark of the original `oai_server_benchmark.py`: for
//! each batch size B, warm-up requests, then `num_runs` runs that each send B requests at once and
//! wait for all of them. Each run's requests are recorded by the client
//! ([`tokenomics_client::RequestRecord`]), turned into the original's per-run and per-request
//! figures ([`metrics`]), pooled over the runs of a level by the SPEC's rules, and written into a
//! [`tokenomics_stats::ChatDocument`] after every level, atomically, so a crash loses at most the
//! level in progress.
//!
//! The benchmark reports progress through the [`Observer`] trait; binaries print, libraries and
//! CI harnesses can collect.

pub mod chat;
pub mod cli;
pub mod embed;
pub mod live;
pub mod load;
pub mod metrics;
pub mod pool;
pub mod records;
pub mod report;
pub mod shutdown;
pub mod sustained;
pub mod tokenize;

pub use chat::{ChatBenchmark, ChatConfig};
pub use embed::{EmbedBenchmark, EmbedConfig, EmbedRunReport};
pub use shutdown::Shutdown;

use tokenomics_client::Error as ClientError;

/// Errors that stop a benchmark (a failed *request* never does: it is counted).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Stats(#[from] tokenomics_stats::Error),
    #[error(transparent)]
    Dataset(#[from] tokenomics_datasets::Error),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What one run of a level produced, for progress display.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The level's key in `results` (batch size, concurrency or request rate).
    pub level: String,
    /// 0-based run index.
    pub run: usize,
    pub num_runs: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub mean_output_tokens: f64,
    pub batch_seconds: f64,
    pub mean_request_tokens_per_second: f64,
    pub batch_tokens_per_second: f64,
}

/// Receives progress. Every method has an empty default.
pub trait Observer: Send {
    /// A level is about to start (after its warm-up).
    fn level_started(&mut self, _shape: &load::Shape) {}
    /// A warm-up request failed (warm-up failures are not counted in the results).
    fn warmup_failed(&mut self, _key: &str, _error: &ClientError) {}
    /// A measured request failed.
    fn request_failed(&mut self, _key: &str, _run: usize, _error: &ClientError) {}
    /// Every record of a finished run, in the order the requests were built.
    fn run_records(
        &mut self,
        _key: &str,
        _run: usize,
        _records: &[tokenomics_client::RequestRecord],
    ) {
    }
    fn run_finished(&mut self, _report: &RunReport) {}
    /// A level is complete; `key` is its key in `results`.
    fn level_finished(&mut self, _key: &str, _level: &tokenomics_stats::ChatLevel) {}
    /// A run of an embedding configuration finished.
    fn embed_run_finished(&mut self, _report: &EmbedRunReport) {}
    /// An embedding configuration is complete; `key` is `batch_{B}_seq_{L}`.
    fn embed_level_finished(&mut self, _key: &str, _level: &tokenomics_stats::EmbedLevel) {}
    /// The per-request records file could not be written (it is then abandoned).
    fn records_failed(&mut self, _error: &Error) {}
    /// The document was written to disk.
    fn saved(&mut self, _path: &std::path::Path) {}
}

/// Marks a document whose run was interrupted: `metadata.incomplete` is true, and the level that
/// was cut short carries `"incomplete": true`.
pub(crate) fn mark_incomplete(
    metadata: &mut serde_json::Map<String, serde_json::Value>,
    level: Option<&mut serde_json::Map<String, serde_json::Value>>,
) {
    metadata.insert("incomplete".into(), serde_json::Value::Bool(true));
    if let Some(level) = level {
        level.insert("incomplete".into(), serde_json::Value::Bool(true));
    }
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// The local time as the original scripts wrote it (`2025-02-04T21:33:32.902353`).
pub fn timestamp() -> String {
    chrono::Local::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

/// Writes what a level's load was into its `load` block (kept beside what the measurement added
/// to it, such as the open loop's achieved rate).
pub(crate) fn load_block(
    shape: &load::Shape,
    limits: &load::Limits,
    extra: &mut serde_json::Map<String, serde_json::Value>,
) {
    use serde_json::json;
    let mut block = serde_json::Map::new();
    block.insert("mode".into(), json!(shape.mode()));
    match shape {
        load::Shape::Burst { batch } => {
            block.insert("batch_size".into(), json!(batch));
        }
        load::Shape::Closed { concurrency } => {
            block.insert("max_concurrency".into(), json!(concurrency));
        }
        load::Shape::Open(o) => {
            block.insert("request_rate".into(), json!(o.rate));
            block.insert("arrival".into(), json!(o.arrival.name()));
            block.insert("burstiness".into(), json!(o.burstiness));
            block.insert("max_concurrency".into(), json!(o.max_concurrency));
        }
    }
    if !matches!(shape, load::Shape::Burst { .. }) {
        block.insert("num_requests".into(), json!(limits.num_requests));
        block.insert(
            "duration_seconds".into(),
            json!(limits.duration.map(|d| d.as_secs_f64())),
        );
        block.insert("warmup_seconds".into(), json!(limits.warmup.as_secs_f64()));
        block.insert("at_end".into(), json!(limits.at_end.name()));
    }
    if let Some(serde_json::Value::Object(measured)) = extra.remove("load") {
        block.extend(measured);
    }
    extra.insert("load".into(), serde_json::Value::Object(block));
}
