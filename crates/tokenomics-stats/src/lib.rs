//! Statistics and result documents for Tokenomics.
//!
//! Two concerns live here, both free of any HTTP code so that a plotting tool or a CI harness can
//! read results without pulling in a network stack:
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
//! [`write_atomic`] is the one place that puts a file on disk: it writes a temporary file
//! beside the target and renames it, so a reader (or a crash) never sees half a file.

pub mod blocks;
pub mod cost;
pub mod document;
pub mod intervals;
pub mod search;
pub mod server_metrics;
pub mod summary;
pub mod timeline;

pub use blocks::*;
pub use cost::{CostBasis, LevelCost};
pub use document::*;
pub use intervals::DistributionCi;
pub use search::{Objective, SearchAxis, SloProbe, SloSearchBlock, Spacing, SweepBlock};
pub use server_metrics::{CrossCheck, GaugeStat, ServerCounters, ServerGauges, ServerMetricsBlock};
pub use summary::{percentile, Distribution, Stat, Summary};
pub use timeline::{TimelineBlock, TimelineServer};

use std::path::{Path, PathBuf};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid result file: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot encode results as JSON: {0}")]
    Encode(#[from] serde_json::Error),
}

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
