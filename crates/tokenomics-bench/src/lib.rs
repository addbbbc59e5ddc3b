//! The Tokenomics experiments.
//!
//! [`ChatBenchmark`] runs the chat benchmark of the original `oai_server_benchmark.py` — for each
//! batch size B, warm-up requests, then `num_runs` runs that each send B requests at once and wait
//! for all of them — and the sustained closed and open loops of [`load`]. [`EmbedBenchmark`] runs
//! the embedding benchmark of `embedding_benchmark.py`. Both go through one level loop: warm up,
//! run the level's runs, pool them into a typed level of the result document ([`metrics`]), and
//! write the document after every level, atomically, so a crash loses at most the level in
//! progress.
//!
//! Around the loop: [`plan`] turns load flags into levels, [`prompts`] prepares the prompts (a
//! dataset, or token-exact synthetic prompts counted by a tokenizer or the server's tokenize
//! endpoint), [`report`] prints and exports what was measured, and [`Shutdown`] stops a run
//! without losing it. The benchmark reports progress through the [`Observer`] trait; binaries
//! print ([`console`]), libraries and CI harnesses can collect. This crate never starts a
//! server: the simulator is started by the command line (`tokenomics-cli`) or by a test.
//!
//! From another program, [`ChatExperiment`] is the entry point: a builder for the settings the
//! command line takes, checked as the command line checks them, and a `run` that returns the
//! typed result document ([`experiment`] has an example against the in-process simulator).
//!
//! Times are taken on one monotonic clock per benchmark (the client's [`tokenomics_client::Clock`],
//! nanoseconds since the benchmark was made) and reported in seconds; the wall clock appears only
//! where runs are coordinated across processes (`--start_at`, [`shard`]) and in the document's
//! timestamps.
//!
//! # Examples
//!
//! The original's bursts — every request of a run sent at once — against the in-process
//! simulator, with an [`Observer`] that sees each run end:
//!
//! ```
//! use tokenomics_bench::{ChatExperiment, Observer, RunReport};
//!
//! /// Counts the requests of every run as it ends.
//! #[derive(Default)]
//! struct Runs(Vec<(String, usize)>);
//!
//! impl Observer for Runs {
//!     fn run_finished(&mut self, report: &RunReport) {
//!         self.0.push((report.level.clone(), report.succeeded));
//!     }
//! }
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A simulated server on a free loopback port: 20 ms to the first token, 2 ms per token.
//! let config = tokenomics_sim::SimConfig::preset("instant")?.with_fixed_schedule(0.020, 0.002);
//! let (server, sim) =
//!     tokenomics_sim::Simulator::start(config, ([127, 0, 0, 1], 0).into()).await?;
//!
//! let mut runs = Runs::default();
//! let doc = ChatExperiment::builder(server.api_base(), sim.served_model())
//!     .bursts([1, 4])
//!     .num_runs(2)
//!     .warmup_runs(1)
//!     .max_tokens(8)
//!     .build()?
//!     .run_with(&mut runs)
//!     .await?;
//!
//! // Two runs of each batch size, every request answered.
//! let expected = [("1", 1), ("1", 1), ("4", 4), ("4", 4)];
//! assert_eq!(runs.0, expected.map(|(l, n)| (l.to_string(), n)));
//! // One level per batch size, keyed by it; a burst lasts at least the time to first token.
//! let level = &doc.results["4"];
//! assert_eq!(level.requests.as_ref().map(|r| r.failed), Some(0));
//! assert!(level.timings.batch_total_seconds.mean >= 0.020);
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod adaptive;
pub mod chat;
pub mod client_load;
pub mod console;
pub mod conversation;
mod driver;
pub mod embed;
pub mod experiment;
pub mod live;
pub mod load;
pub mod merge;
pub mod metrics;
pub mod plan;
pub mod pool;
pub mod preflight;
pub mod probes;
pub mod prompts;
pub mod records;
pub mod report;
pub mod server_metrics;
pub mod shard;
pub mod shutdown;
pub mod stages;
pub mod sustained;
pub mod tokenize;
pub mod trace;

pub use chat::{ChatBenchmark, ChatConfig};
pub use embed::{EmbedBenchmark, EmbedConfig, EmbedLength, EmbedRunReport, InputTokens};
pub use experiment::{ChatExperiment, ChatExperimentBuilder};
pub use shutdown::Shutdown;

use tokenomics_client::Error as ClientError;
use tokenomics_stats::Mode;

/// Errors that stop a benchmark (a failed *request* never does: it is counted).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A client could not be built: an unusable base URL, API key or TLS setting (a failed
    /// request is counted, not raised).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A result document could not be read, parsed, encoded or written.
    #[error(transparent)]
    Stats(#[from] tokenomics_stats::Error),
    /// The prompts' dataset could not be found, read or used.
    #[error(transparent)]
    Dataset(#[from] tokenomics_datasets::Error),
    /// Bad input: a value or a combination of settings refused before any request was sent.
    #[error("{0}")]
    Invalid(String),
    /// The server's tokenize endpoint could not be found or used.
    #[error("{0}")]
    Tokenize(String),
    /// A report (CSV, Markdown) could not be built.
    #[error("cannot build the report: {0}")]
    Report(String),
    /// The check before the run found the server unreachable, the model missing, or the route
    /// refusing a request.
    #[error(transparent)]
    Preflight(Box<preflight::PreflightError>),
    /// The server's metrics (`--server_metrics URL`) could not be read, or their series file
    /// written.
    #[error("server metrics: {0}")]
    ServerMetrics(String),
}

impl Error {
    /// Whether the error is the user's input (a command line exits with the usage code), as
    /// opposed to something that went wrong while running.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Invalid(_) => true,
            Error::Dataset(e) => e.is_bad_input(),
            Error::Client(ClientError::Config(_)) => true,
            Error::Preflight(e) => e.is_bad_input(),
            _ => false,
        }
    }
}

/// The result of this crate's fallible operations, with [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What one run of a level produced, for progress display.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The level's key in `results` (batch size, concurrency or request rate).
    pub level: String,
    /// The load shape of the level (burst, closed loop, open loop).
    pub mode: Mode,
    /// 0-based run index.
    pub run: usize,
    /// How many runs the level has in all.
    pub num_runs: usize,
    /// Measured requests of the run that succeeded.
    pub succeeded: usize,
    /// Measured requests of the run that failed.
    pub failed: usize,
    /// Mean completion tokens per successful request (NaN when none succeeded).
    pub mean_output_tokens: f64,
    /// Seconds from the run's first send to its last end, on the client's monotonic clock (NaN
    /// when none succeeded).
    pub batch_seconds: f64,
    /// Mean over successful requests of completion tokens over send → end seconds (NaN when
    /// none).
    pub mean_request_tokens_per_second: f64,
    /// Completion tokens of the successful requests over `batch_seconds` (NaN when none
    /// succeeded).
    pub batch_tokens_per_second: f64,
}

/// Receives progress. Every method has an empty default.
pub trait Observer: Send {
    /// A level is about to start (after its warm-up).
    fn level_started(&mut self, _shape: &load::Shape) {}
    /// With shared prefixes: the level's expected prefix-cache hit rate, before it runs.
    fn prefix_cache_expected(&mut self, _key: &str, _block: &tokenomics_stats::PrefixCacheBlock) {}
    /// A warm-up request failed (warm-up failures are not counted in the results).
    fn warmup_failed(&mut self, _key: &str, _error: &ClientError) {}
    /// A measured request failed.
    fn request_failed(&mut self, _key: &str, _run: usize, _error: &ClientError) {}
    /// A measured request finished (a burst's when the burst ends, in the order built; a
    /// sustained run's as each finishes). The record is dropped after this call.
    fn request_done(
        &mut self,
        _key: &str,
        _run: usize,
        _record: &tokenomics_client::RequestRecord,
    ) {
    }
    /// A run of a chat level finished; its figures, for a progress line.
    fn run_finished(&mut self, _report: &RunReport) {}
    /// A run on a timetable (`--start_at`, shards) started `late` after its time.
    fn run_late(&mut self, _key: &str, _run: usize, _late: std::time::Duration) {}
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
    /// A sweep or an SLO search decided something after a level (a verdict, where it goes next).
    fn experiment_step(&mut self, _text: &str) {}
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

/// `tokenomics VERSION`, as the documents record the tool.
pub fn tool() -> String {
    format!("tokenomics {}", env!("CARGO_PKG_VERSION"))
}
