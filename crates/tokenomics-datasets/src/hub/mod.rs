//! Datasets from the Hugging Face Hub: `aime` and `hf:OWNER/NAME`.
//!
//! Files are found through the Hub's HTTP API (`/api/datasets/{id}/revision/{rev}` lists them) and
//! downloaded with the `hf-hub` crate into the standard Hugging Face cache
//! (`$HF_HOME/hub/datasets--OWNER--NAME/…`), so a cache filled by Python's `datasets` or
//! `huggingface_hub` is the same one. The data files of the split are read whatever their format:
//! CSV, JSON Lines, JSON or Parquet; a dataset whose files are in none of these is read from the
//! Parquet conversion the Hub makes of every dataset (revision `refs/convert/parquet`).
//!
//! The Hub's usual environment applies: `HF_ENDPOINT` (another Hub or a mirror), `HF_HOME` (the
//! cache), `HF_TOKEN` (gated or private datasets) and `HF_HUB_OFFLINE=1` (never touch the
//! network; use the cache). Without `HF_HUB_OFFLINE`, a Hub that cannot be reached also falls back
//! to the cache, and says so; when the cache does not have the data either, the error is
//! [`Error::HubUnreachable`] (not the user's input), while a dataset, split, column or model the
//! Hub does not have is [`Error::HubNotFound`] or [`Error::DatasetColumn`] (the user's input).
//!
//! The module is split by concern: [`files`] picks a split's data files among a repository's,
//! [`records`] reads them and turns rows into prompts, and (with the `hub` feature) `client`
//! talks to the Hub and its cache. Without the `hub` feature the types and functions are all
//! here, and [`load`] and [`model_tokenizer`] fail with [`Error::Unsupported`].

#[cfg(feature = "hub")]
mod client;
pub mod files;
pub mod records;

use std::path::PathBuf;

use serde_json::Value;

pub use files::split_files;
pub use records::{pick_column, prompts_from_records, read_records};

use crate::{Error, Prompt, Result};

/// The original script's dataset: (repository, split, column).
pub const AIME: (&str, &str, &str) = ("gneubig/aime-1983-2024", "train", "Question");

/// Where and how to reach the Hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The Hub's base URL, no trailing slash (`HF_ENDPOINT`, default `https://huggingface.co`).
    pub endpoint: String,
    /// The cache's `hub` folder (`$HF_HOME/hub`, default `~/.cache/huggingface/hub`).
    pub cache_dir: PathBuf,
    /// `HF_TOKEN`, when set and not empty.
    pub token: Option<String>,
    /// `HF_HUB_OFFLINE`: use the cache only, never the network.
    pub offline: bool,
}

impl HubConfig {
    /// From the environment, as the Hugging Face libraries read it. Never fails: without
    /// `HF_HOME`, `XDG_CACHE_HOME` or `HOME` the cache is `./.cache/huggingface/hub`.
    pub fn from_env() -> Self {
        // As the Hugging Face libraries resolve it (hf-hub's own `Cache::from_env` panics when
        // no home folder is known; this falls back to `./.cache`).
        let home = std::env::var_os("HF_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let base = std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                    .unwrap_or_else(|| PathBuf::from(".cache"));
                base.join("huggingface")
            });
        let truthy = |v: std::ffi::OsString| {
            matches!(
                v.to_string_lossy().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        };
        Self {
            endpoint: std::env::var("HF_ENDPOINT")
                .ok()
                .filter(|e| !e.is_empty())
                .map(|e| e.trim_end_matches('/').to_string())
                .unwrap_or_else(|| "https://huggingface.co".into()),
            cache_dir: home.join("hub"),
            token: std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty()),
            offline: std::env::var_os("HF_HUB_OFFLINE").is_some_and(truthy),
        }
    }
}

/// What to load from a Hub dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRequest {
    /// `OWNER/NAME`.
    pub repo: String,
    /// The split (`train`, `test`, …), matched against the data files' paths (see
    /// [`split_files`]).
    pub split: String,
    /// A text column, or a chat `messages` column; `None` picks one (see [`pick_column`]).
    pub column: Option<String>,
    /// `main` unless asked otherwise.
    pub revision: String,
}

/// A loaded dataset: its rows as prompts and what the metadata records about it.
pub struct Loaded {
    /// Every row of the split, in file order; never empty.
    pub rows: Vec<Prompt>,
    /// `{"kind": "hub", "repo", "revision", "commit", "split", "column", "files", "format",
    /// "endpoint"}`, in that order.
    pub source: Value,
    /// Set when the Hub could not be reached and the cache was used instead.
    pub note: Option<String>,
}

/// Finds, downloads (or takes from the cache) and reads a Hub dataset. A Hub that cannot be
/// reached is stood in for by the cache (and `note` says so); when the cache lacks the split too,
/// the error is [`Error::HubUnreachable`]. Without the `hub` feature: [`Error::Unsupported`].
pub async fn load(req: &HubRequest, cfg: &HubConfig) -> Result<Loaded> {
    #[cfg(feature = "hub")]
    {
        let fetched = client::fetch(req, cfg).await?;
        let subject = format!("dataset {}", req.repo);
        let mut records = Vec::new();
        for path in &fetched.paths {
            // A cache file that cannot be read is the cache's trouble, not the user's input.
            records.extend(read_records(path).map_err(|e| match e {
                Error::Read { .. } => Error::HubFailed {
                    subject: subject.clone(),
                    message: e.to_string(),
                },
                e => e,
            })?);
        }
        let dataset = format!("{}, split {:?}", req.repo, req.split);
        let (column, rows) = prompts_from_records(&records, req.column.as_deref(), &dataset)?;
        let format = fetched
            .files
            .first()
            .and_then(|f| f.rsplit('.').next())
            .unwrap_or("")
            .to_string();
        Ok(Loaded {
            source: serde_json::json!({
                "kind": "hub",
                "repo": req.repo,
                "revision": fetched.revision,
                "commit": fetched.commit,
                "split": req.split,
                "column": column,
                "files": fetched.files,
                "format": format,
                "endpoint": cfg.endpoint,
            }),
            rows,
            note: fetched.note,
        })
    }
    #[cfg(not(feature = "hub"))]
    {
        let _ = (req, cfg);
        Err(Error::Unsupported(crate::Feature::Hub))
    }
}

/// The `tokenizer.json` of a Hub model (`--tokenizer OWNER/NAME`), downloaded into the cache or
/// found there (always, offline). A Hub that cannot be reached, or `HF_HUB_OFFLINE`, with no copy
/// in the cache is [`Error::HubUnreachable`]; a model without the file is
/// [`Error::HubNotFound`]. Without the `hub` feature: [`Error::Unsupported`].
pub async fn model_tokenizer(model: &str, cfg: &HubConfig) -> Result<PathBuf> {
    #[cfg(feature = "hub")]
    {
        client::model_tokenizer(model, cfg).await
    }
    #[cfg(not(feature = "hub"))]
    {
        let _ = (model, cfg);
        Err(Error::Unsupported(crate::Feature::Hub))
    }
}
