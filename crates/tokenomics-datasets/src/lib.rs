//! Prompt sets for Tokenomics.
//!
//! A [`PromptSource`] is parsed from a `--dataset_key` and draws the prompts of one run with
//! [`PromptSource::draw`]. Every draw is seeded, so a run can be repeated exactly, and each run of
//! a benchmark passes its own seed (derived from `--seed` and the run index with [`run_seed`]), so
//! repeated runs do not simply hit the server's prefix cache.
//!
//! * `synthetic` — generated text, offline, lengths varied, each prompt opening with different
//!   words so no two share a prefix.
//! * `file:PATH` — JSON Lines with a `prompt` string or a `messages` array per line, or plain text
//!   with one prompt per line. Rows are shuffled with the seed and repeated in order when a batch
//!   is larger than the file.
//! * `aime` — the original default: the Hub dataset `gneubig/aime-1983-2024`, split `train`,
//!   column `Question` ([`hub`]).
//! * `hf:OWNER/NAME` — any Hub dataset, with a split and a text or chat column.
//!
//! [`text`] also holds the seeded word generator that the embedding benchmark uses, and
//! [`exact`] builds prompts of an exact token length (`--input_tokens`).
//!
//! Errors are one [`Error`] type; [`Error::is_bad_input`] tells the user's input (exit 2) from a
//! Hub that cannot be reached or a disk that fails (exit 1), so programs never match messages.
//!
//! # Features
//!
//! All on by default. A project that wants synthetic prompts, local files and the seeded text
//! generator without C libraries or a second HTTP stack depends on the crate with
//! `default-features = false`; the API is the same in every combination, and what a build lacks
//! fails at run time with [`Error::Unsupported`] (`this build has no Hugging Face Hub support
//! (feature `hub`)`).
//!
//! * `hub` — Hub datasets (`aime`, `hf:OWNER/NAME`) and Hub tokenizers
//!   ([`hub::model_tokenizer`]): `hf-hub`, and with it `reqwest`.
//! * `parquet` — Parquet data files (`parquet`, with zstd). Only Hub datasets are read as
//!   Parquet (a dataset's own files, or the Hub's conversion of it), so it implies `hub`.
//! * `tokenizer` — local `tokenizer.json` files ([`exact::local_counter`]): `tokenizers`, with
//!   onig.
//!
//! # Examples
//!
//! Drawing synthetic prompts needs no network and no file; the same seed gives the same prompts,
//! and each run of a level gets its own seed:
//!
//! ```
//! use tokenomics_datasets::{run_seed, Prompt, PromptSource};
//!
//! let source = PromptSource::from_key("synthetic")?;
//! let seed = run_seed(42, 8, 0);
//! let prompts = source.draw(8, seed);
//! assert_eq!(prompts.len(), 8);
//! assert_eq!(prompts, source.draw(8, seed));
//! assert_ne!(prompts, source.draw(8, run_seed(42, 8, 1)));
//! let Prompt::Text(first) = &prompts[0] else { unreachable!() };
//! assert!(first.starts_with("Problem "));
//! assert_eq!(source.describe()["name"], "synthetic");
//!
//! // Hub keys need `PromptSource::open`; a mistyped key is the user's error.
//! assert!(PromptSource::from_key("aime").is_err());
//! assert!(PromptSource::from_key("nonsense").unwrap_err().is_bad_input());
//! # Ok::<(), tokenomics_datasets::Error>(())
//! ```
//!
//! The embedding benchmark's texts, of an exact word count:
//!
//! ```
//! use tokenomics_datasets::text::{TextGenerator, TextLength};
//!
//! let length: TextLength = "200".parse()?;
//! let text = TextGenerator::new(7).text(length);
//! assert_eq!(text.split_whitespace().count(), 200);
//! assert_eq!(text, TextGenerator::new(7).text(length));
//! # Ok::<(), tokenomics_datasets::Error>(())
//! ```

#![warn(missing_docs)]

mod error;
pub mod exact;
mod file;
pub mod hub;
pub mod text;
pub mod trace;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::path::PathBuf;

pub use error::{Error, Feature, HubUnreachable, Result};

/// One prompt: a plain text (sent as the user message after the benchmark's system message) or a
/// whole conversation given by a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// A text, sent as the user message.
    Text(String),
    /// A conversation, sent as it is; never empty.
    Messages(Vec<Turn>),
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Turn {
    /// `system`, `user`, `assistant`, … as the source gave it (`human` and `gpt` from Hub chat
    /// columns become `user` and `assistant`).
    pub role: String,
    /// The message's text.
    pub content: String,
}

/// Where the prompts of a benchmark come from.
#[derive(Debug, Clone)]
pub enum PromptSource {
    /// Generated problem statements (`synthetic`).
    Synthetic(text::SyntheticPrompts),
    /// Synthetic prompts of an exact token length (`--input_tokens`).
    Exact(exact::ExactPrompts),
    /// Exact prompts that open with one of a few shared prefixes (`--shared_prefix_tokens`).
    SharedPrefixes(exact::SharedPrefixes),
    /// Rows loaded once; each run draws a seeded shuffle of them.
    Rows {
        /// The `--dataset_key` they were loaded for.
        key: String,
        /// The prompts, in file order; never empty when loaded by this crate.
        rows: Vec<Prompt>,
        /// What the metadata records about where they came from (`kind`: `file` or `hub`).
        source: Value,
    },
}

impl PromptSource {
    /// Parses a `--dataset_key` and loads what it names, Hub datasets included (downloaded, or
    /// taken from the cache; see [`hub::load`]). `split` and `column` choose what to read of a
    /// Hub dataset (defaults: `train`, and a column found by name). Returns a note to show the
    /// user when the cache stood in for an unreachable Hub. Errors say whether they are the
    /// user's input ([`Error::is_bad_input`]); a Hub key in a build without the `hub` feature is
    /// [`Error::Unsupported`].
    pub async fn open(
        key: &str,
        split: Option<&str>,
        column: Option<&str>,
        hub_config: &hub::HubConfig,
    ) -> Result<(Self, Option<String>)> {
        let request = hub_request(key, split, column)?;
        let Some(request) = request else {
            return Ok((Self::from_key(key)?, None));
        };
        let loaded = hub::load(&request, hub_config).await?;
        Ok((
            PromptSource::Rows {
                key: key.to_string(),
                source: loaded.source,
                rows: loaded.rows,
            },
            loaded.note,
        ))
    }

    /// Checks a `--dataset_key` without the network: a Hub key's form (`aime`, `hf:OWNER/NAME`),
    /// and for the others what [`PromptSource::from_key`] checks (a file that exists and holds
    /// prompts). Lets a command line refuse a mistyped key before it contacts any server.
    pub fn check_key(key: &str) -> Result<()> {
        match hub_request(key, None, None)? {
            Some(_) => Ok(()),
            None => Self::from_key(key).map(drop),
        }
    }

    /// Parses a `--dataset_key` that needs no network (`synthetic`, `file:PATH`) and loads it (a
    /// file is read here, once). Hub keys are refused here ([`Error::HubKey`]): use
    /// [`PromptSource::open`].
    pub fn from_key(key: &str) -> Result<Self> {
        match key {
            "synthetic" => Ok(PromptSource::Synthetic(text::SyntheticPrompts::default())),
            "aime" => Err(Error::HubKey(key.to_string())),
            _ if key.starts_with("hf:") => Err(Error::HubKey(key.to_string())),
            _ => match key.strip_prefix("file:") {
                Some(path) if !path.is_empty() => {
                    let path = PathBuf::from(path);
                    let rows = file::load(&path)?;
                    Ok(PromptSource::Rows {
                        key: key.to_string(),
                        source: json!({"kind": "file", "path": path.display().to_string(), "rows": rows.len()}),
                        rows,
                    })
                }
                _ => Err(Error::UnknownKey(key.to_string())),
            },
        }
    }

    /// `n` prompts for the run seeded with `seed`; the same seed gives the same prompts on every
    /// machine. For row datasets: a seeded shuffle, repeated in that order when `n` is larger
    /// than the dataset (none from a source with no rows).
    pub fn draw(&self, n: usize, seed: u64) -> Vec<Prompt> {
        match self {
            PromptSource::Synthetic(s) => s.draw(n, seed),
            PromptSource::Exact(e) => e.draw(n, seed),
            PromptSource::SharedPrefixes(p) => p.draw(n, seed),
            PromptSource::Rows { rows, .. } => {
                let mut order: Vec<usize> = (0..rows.len()).collect();
                order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
                order
                    .iter()
                    .cycle()
                    .take(n)
                    .map(|&i| rows[i].clone())
                    .collect()
            }
        }
    }

    /// What the result metadata records about the prompts: name, source and row count.
    pub fn describe(&self) -> Value {
        match self {
            PromptSource::Exact(e) => e.describe(),
            PromptSource::SharedPrefixes(p) => p.describe(),
            PromptSource::Synthetic(s) => json!({
                "name": "synthetic",
                "source": {"kind": "synthetic", "min_words": s.min_words, "max_words": s.max_words},
                "rows": Value::Null,
            }),
            PromptSource::Rows { key, rows, source } => json!({
                "name": key,
                "source": source,
                "rows": rows.len(),
            }),
        }
    }
}

/// The Hub request a key names (`aime`, `hf:OWNER/NAME[@REVISION]`), `None` for the keys that
/// need no network; a malformed `hf:` key is [`Error::UnknownKey`].
fn hub_request(
    key: &str,
    split: Option<&str>,
    column: Option<&str>,
) -> Result<Option<hub::HubRequest>> {
    Ok(match key {
        "aime" => Some(hub::HubRequest {
            repo: hub::AIME.0.into(),
            split: split.unwrap_or(hub::AIME.1).into(),
            column: Some(column.unwrap_or(hub::AIME.2).into()),
            revision: "main".into(),
        }),
        _ => match key.strip_prefix("hf:") {
            Some(repo) => {
                let (repo, revision) = match repo.split_once('@') {
                    Some((r, rev)) => (r, rev),
                    None => (repo, "main"),
                };
                let parts: Vec<&str> = repo.split('/').collect();
                if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                    return Err(Error::UnknownKey(key.to_string()));
                }
                Some(hub::HubRequest {
                    repo: repo.into(),
                    split: split.unwrap_or("train").into(),
                    column: column.map(str::to_string),
                    revision: revision.into(),
                })
            }
            None => None,
        },
    })
}

/// The seed of run `run` of a benchmark seeded with `seed` at load level `level`: distinct for
/// every (level, run) so runs draw different prompts, and stable across program versions.
pub fn run_seed(seed: u64, level: u64, run: u64) -> u64 {
    let mut z =
        seed ^ level.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ run.wrapping_mul(0xD1B5_4A32_D192_ED03);
    // splitmix64 finaliser
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(matches!(
            PromptSource::from_key("synthetic"),
            Ok(PromptSource::Synthetic(_))
        ));
        let e = PromptSource::from_key("aime").unwrap_err().to_string();
        assert!(e.contains("Hugging Face Hub"), "{e}");
        assert!(matches!(
            PromptSource::from_key("bogus"),
            Err(Error::UnknownKey(_))
        ));
        assert!(matches!(
            PromptSource::from_key("file:"),
            Err(Error::UnknownKey(_))
        ));
    }

    #[test]
    fn rows_are_shuffled_with_the_seed_and_repeated_in_order() {
        let rows: Vec<Prompt> = (0..5).map(|i| Prompt::Text(i.to_string())).collect();
        let src = PromptSource::Rows {
            key: "k".into(),
            rows,
            source: Value::Null,
        };
        let a = src.draw(12, 7);
        assert_eq!(a, src.draw(12, 7), "same seed, same prompts");
        assert_eq!(&a[0..5], &a[5..10], "repeated in the shuffled order");
        assert_eq!(&a[0..2], &a[10..12]);
        let mut first: Vec<_> = a[..5].to_vec();
        first.sort_by_key(|p| format!("{p:?}"));
        assert_eq!(first.len(), 5);
        first.dedup();
        assert_eq!(first.len(), 5, "each row once per cycle");
        assert_ne!(
            src.draw(5, 7),
            src.draw(5, 8),
            "another seed, another order"
        );
    }

    /// Without the `hub` feature, Hub keys and Hub tokenizers are a clear run-time error.
    #[cfg(not(feature = "hub"))]
    #[tokio::test]
    async fn hub_keys_need_the_hub_feature() {
        let cfg = hub::HubConfig {
            endpoint: "http://127.0.0.1:9".into(),
            cache_dir: PathBuf::from("/nonexistent/hub"),
            token: None,
            offline: false,
        };
        for key in ["aime", "hf:a/b"] {
            let e = PromptSource::open(key, None, None, &cfg)
                .await
                .err()
                .unwrap();
            assert!(matches!(e, Error::Unsupported(Feature::Hub)), "{e:?}");
            assert_eq!(
                e.to_string(),
                "this build has no Hugging Face Hub support (feature `hub`)"
            );
        }
        let e = hub::model_tokenizer("a/b", &cfg).await.unwrap_err();
        assert!(matches!(e, Error::Unsupported(Feature::Hub)), "{e:?}");
        // What needs no Hub still works.
        assert!(PromptSource::open("synthetic", None, None, &cfg)
            .await
            .is_ok());
    }

    #[test]
    fn run_seeds_differ() {
        assert_ne!(run_seed(42, 8, 0), run_seed(42, 8, 1));
        assert_ne!(run_seed(42, 8, 0), run_seed(42, 16, 0));
        assert_eq!(run_seed(42, 8, 0), run_seed(42, 8, 0));
    }
}
