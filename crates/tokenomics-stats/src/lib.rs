//! Statistics and result documents for Tokenomics.
//!
//! Two concerns live here, both free of any HTTP code so that a plotting tool or a CI harness can
//! read results without pulling in a network stack: turning samples into figures, and the typed
//! documents those figures are written in. Nothing here measures time; every duration arrives
//! already converted to seconds (or, where a field says so, nanoseconds on the benchmark's
//! clock), and every figure of an empty sample set is NaN, written as `null`.
//!
//! * [`summary`] turns a list of samples into the figures the reports carry: mean, *sample*
//!   standard deviation (n − 1 in the denominator, 0 for a single value), min, max and
//!   percentiles interpolated linearly between closest ranks (numpy's default method).
//! * [`blocks`] holds the typed blocks this project adds beside the original fields (`load`,
//!   `steady_state`, `goodput`, …) and the vocabulary they share (modes, arrival processes).
//! * [`document`] holds the JSON result documents written by `oai-bench` and `embed-bench`. Their
//!   field names are the compatibility contract with the original Python scripts: files written
//!   by those scripts load into these types unchanged, and files written here keep every field
//!   the originals had, with new fields only added beside them.
//!
//! * [`intervals`] says how sure a figure is (Student's t for means, order statistics for
//!   percentiles); [`server_metrics`], [`timeline`], [`search`] and [`cost`] are the blocks of
//!   the server's own view, a level over time, sweeps and SLO searches, and prices;
//!   [`prefix_cache`] the expected and measured prefix-cache hit rates of shared prefixes.
//!
//! [`write_atomic`] is the one place that puts a file on disk: it writes a temporary file
//! beside the target and renames it, so a reader (or a crash) never sees half a file.
//!
//! # Examples
//!
//! Summarising a few latencies, in seconds:
//!
//! ```
//! use tokenomics_stats::{percentile, Summary};
//!
//! let s = Summary::new([0.4, 0.1, 0.3, 0.2]);
//! assert_eq!(s.count(), 4);
//! assert!((s.mean() - 0.25).abs() < 1e-12);
//! // Sample standard deviation: n − 1 in the denominator.
//! assert!((s.std() - (0.05f64 / 3.0).sqrt()).abs() < 1e-12);
//! // Linear interpolation between closest ranks, as numpy's default.
//! assert!((s.percentile(50.0) - 0.25).abs() < 1e-12);
//! assert!((percentile(&[1.0, 2.0, 3.0, 4.0], 90.0) - 3.7).abs() < 1e-12);
//!
//! // One sample has a standard deviation of 0; none has no figures at all.
//! assert_eq!(Summary::new([2.0]).std(), 0.0);
//! assert!(Summary::new([]).distribution().p99.is_nan());
//! ```
//!
//! Reading a chat result document (the shape the original scripts wrote):
//!
//! ```
//! use tokenomics_stats::ChatDocument;
//!
//! let json = r#"{
//!   "metadata": {
//!     "timestamp": "2026-11-27T21:33:32.902353", "model": "m", "dataset_key": "synthetic",
//!     "api_base": "http://127.0.0.1:8000/v1", "batch_sizes": [1], "num_runs": 1,
//!     "max_tokens": 16, "temperature": 0.0, "seed": 42, "warmup_runs": 0, "n_cores": 1
//!   },
//!   "results": {
//!     "1": {
//!       "tokens": {"input_per_request": {"mean": 12, "std": 0},
//!                  "output_per_request": {"mean": 16, "std": 0}},
//!       "timings": {"batch_total_seconds": {"mean": 0.5, "std": 0},
//!                   "fastest_seconds": {"mean": 0.5, "std": 0},
//!                   "slowest_seconds": {"mean": 0.5, "std": 0},
//!                   "spread_seconds": {"mean": 0, "std": 0}},
//!       "throughput": {"batch_tokens_per_second": {"mean": 32, "std": 0},
//!                      "request_tokens_per_second": {"mean": null, "std": null}}
//!     }
//!   }
//! }"#;
//! let doc: ChatDocument = serde_json::from_str(json)?;
//! let level = &doc.results["1"];
//! assert_eq!(level.throughput.batch_tokens_per_second.mean, 32.0);
//! // `null` reads back as NaN.
//! assert!(level.throughput.request_tokens_per_second.mean.is_nan());
//! # Ok::<(), serde_json::Error>(())
//! ```

#![warn(missing_docs)]

pub mod blocks;
pub mod cost;
pub mod document;
pub mod intervals;
pub mod prefix_cache;
pub mod search;
pub mod server_metrics;
pub mod summary;
pub mod table;
pub mod timeline;

pub use blocks::*;
pub use cost::{CostBasis, LevelCost};
pub use document::*;
pub use intervals::DistributionCi;
pub use prefix_cache::{PrefixCacheBlock, PrefixWorkload, TemplateTokens};
pub use search::{Objective, SearchAxis, SloProbe, SloSearchBlock, Spacing, SweepBlock};
pub use server_metrics::{CrossCheck, GaugeStat, ServerCounters, ServerGauges, ServerMetricsBlock};
pub use summary::{percentile, Distribution, Stat, Summary};
pub use timeline::{TimelineBlock, TimelineServer};

use std::path::{Path, PathBuf};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why the read failed.
        source: std::io::Error,
    },
    /// A file (or its temporary sibling) could not be written or renamed into place.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The target file.
        path: PathBuf,
        /// Why the write failed.
        source: std::io::Error,
    },
    /// A file was read but is not JSON of the expected shape.
    #[error("{path} is not a valid result file: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and why decoding failed.
        source: serde_json::Error,
    },
    /// A value could not be encoded as JSON.
    #[error("cannot encode results as JSON: {0}")]
    Encode(#[from] serde_json::Error),
}

/// `Result` with this crate's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Writes `value` as pretty JSON to `path` atomically: the bytes go to a temporary file in the same
/// directory, which is then renamed over `path`. Readers see either the old file or the new one.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` atomically (a temporary file beside it, renamed over it): readers see
/// the old file or the new one, never half of one. Every file Tokenomics writes goes through here.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "results.json".into());
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let write_err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(write_err)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        write_err(e)
    })
}

/// Checks that `path` can be written (its directory exists and accepts a file), without leaving
/// anything behind. Used to refuse a bad `--results_file` before the first request is sent.
pub fn check_writable(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let probe = dir.join(format!(".tokenomics-probe.{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })?;
    let _ = std::fs::remove_file(&probe);
    if path.is_dir() {
        return Err(Error::Write {
            path: path.to_path_buf(),
            source: std::io::Error::other("it is a directory"),
        });
    }
    Ok(())
}

/// Reads a JSON document from `path`.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Parse {
        path: path.to_path_buf(),
        source,
    })
}
