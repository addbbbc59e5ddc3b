//! The Hub and its cache, through `hf-hub` (the `hub` feature): a dataset revision's file list,
//! the download of a split's files, the cache standing in for an unreachable Hub, and a model's
//! `tokenizer.json`.
//!
//! Every `hf-hub` error is classified here, once, for datasets and tokenizers alike
//! ([`Answer`]): the Hub could not be reached (no connection, a timeout, a server error), it
//! answered that the thing is not there or not for this token, or something else went wrong.

use std::path::PathBuf;

use hf_hub::api::tokio::{Api, ApiBuilder, ApiError};
use hf_hub::{Repo, RepoType};

use super::{split_files, HubConfig, HubRequest};
use crate::{Error, HubUnreachable, Result};

/// The revision the Hub keeps its Parquet conversion of every dataset under.
const PARQUET_REVISION: &str = "refs/convert/parquet";

/// What a dataset error tells the user to do instead of the Hub.
const DATASET_WITHOUT_HUB: &str =
    "use --dataset_key synthetic (or file:PATH) to run without the Hub";

/// What a tokenizer error tells the user to do instead of the Hub.
const TOKENIZER_WITHOUT_HUB: &str = "give --tokenizer PATH/TO/tokenizer.json, or leave \
     --tokenizer out to count with the server's tokenize endpoint";

/// A split's files, found on the Hub (and downloaded) or in the cache.
pub(super) struct Fetched {
    /// The revision they were found under: the one asked for, or the Parquet conversion.
    pub revision: String,
    /// The commit that revision pointed to.
    pub commit: String,
    /// Their paths in the repository.
    pub files: Vec<String>,
    /// Where they lie in the cache, in the order of `files`.
    pub paths: Vec<PathBuf>,
    /// Set when the Hub could not be reached and the cache stood in.
    pub note: Option<String>,
}

/// What an `hf-hub` error says about the Hub.
enum Answer {
    /// No answer: no connection, a timeout, a transfer cut short, or a server error (5xx, 429).
    Unreachable,
    /// 404: no such repository, revision or file.
    NotFound,
    /// 401 or 403: not for this token (or for no token).
    Refused,
    /// Anything else: an unexpected answer, the cache's disk, a lock.
    Other,
}

fn classify(e: &ApiError) -> Answer {
    match e {
        ApiError::RequestError(r) => match r.status().map(|s| s.as_u16()) {
            Some(404) => Answer::NotFound,
            Some(401) | Some(403) => Answer::Refused,
            Some(s) if s >= 500 || s == 429 => Answer::Unreachable,
            Some(_) => Answer::Other,
            None if r.is_connect() || r.is_timeout() || r.is_request() || r.is_body() => {
                Answer::Unreachable
            }
            None => Answer::Other,
        },
        ApiError::TooManyRetries(last) => classify(last),
        _ => Answer::Other,
    }
}

/// An error with its causes, each said once (`reqwest` keeps "connection refused" in a source).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Why the Hub did not answer, for a message that already names the Hub: the causes under
/// `reqwest`'s "error sending request for url (…)" (`tcp connect error: Connection refused`), or
/// the status line.
fn unanswered_because(e: &ApiError) -> String {
    use std::error::Error as _;
    match e {
        ApiError::RequestError(r) => match r.source() {
            Some(cause) => with_causes(cause),
            None => r.to_string(),
        },
        ApiError::TooManyRetries(last) => unanswered_because(last),
        e => with_causes(e),
    }
}

/// The Hub client: this endpoint and cache, `HF_TOKEN` or else the token `huggingface-cli
/// login` saved in the cache's home.
fn api(cfg: &HubConfig, subject: &str) -> Result<Api> {
    let mut builder = ApiBuilder::from_cache(hf_hub::Cache::new(cfg.cache_dir.clone()))
        .with_endpoint(cfg.endpoint.clone())
        .with_progress(false);
    if let Some(t) = &cfg.token {
        builder = builder.with_token(Some(t.clone()));
    }
    builder.build().map_err(|e| Error::HubFailed {
        subject: subject.to_string(),
        message: format!("cannot set up the Hub client: {}", with_causes(&e)),
    })
}

/// `hub/datasets--OWNER--NAME`, the dataset's folder in the cache.
fn cache_folder(cfg: &HubConfig, repo: &str) -> PathBuf {
    cfg.cache_dir
        .join(format!("datasets--{}", repo.replace('/', "--")))
}

/// The files of `revision` as the cache has them: (commit, relative paths).
fn cached_files(cfg: &HubConfig, repo: &str, revision: &str) -> Option<(String, Vec<String>)> {
    let folder = cache_folder(cfg, repo);
    let commit = std::fs::read_to_string(folder.join("refs").join(revision)).ok()?;
    let commit = commit.trim().to_string();
    let root = folder.join("snapshots").join(&commit);
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(&root) {
                files.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    Some((commit, files))
}

/// Finds the split's files on the Hub (the revision asked for, else the Parquet conversion) and
/// downloads them, or — offline, or when the Hub cannot be reached — takes them from the cache.
pub(super) async fn fetch(req: &HubRequest, cfg: &HubConfig) -> Result<Fetched> {
    let repo = &req.repo;
    let subject = format!("dataset {repo}");
    let unreachable = |missing: String, reason: String| {
        Error::HubUnreachable(Box::new(HubUnreachable {
            subject: subject.clone(),
            missing,
            endpoint: cfg.endpoint.clone(),
            offline: cfg.offline,
            reason,
            cache: cfg.cache_dir.clone(),
            instead: DATASET_WITHOUT_HUB,
        }))
    };
    // Why the Hub could not be reached, when it could not.
    let mut unanswered: Option<String> = None;
    if !cfg.offline {
        let api = api(cfg, &subject)?;
        for revision in [req.revision.as_str(), PARQUET_REVISION] {
            let handle = api.repo(Repo::with_revision(
                repo.clone(),
                RepoType::Dataset,
                revision.to_string(),
            ));
            let info = match handle.info().await {
                Ok(i) => i,
                Err(e) => match classify(&e) {
                    Answer::Unreachable => {
                        unanswered = Some(unanswered_because(&e));
                        break;
                    }
                    // No conversion either: reported as "no data files" below.
                    _ if revision == PARQUET_REVISION => break,
                    Answer::NotFound => {
                        return Err(Error::HubNotFound {
                            subject,
                            message: format!(
                                "not found on {} (check the name, or set HF_TOKEN for a private \
                                 or gated dataset)",
                                cfg.endpoint
                            ),
                        })
                    }
                    Answer::Refused => {
                        return Err(Error::HubNotFound {
                            subject,
                            message: "access refused: set HF_TOKEN to a token that may read it"
                                .into(),
                        })
                    }
                    Answer::Other => {
                        return Err(Error::HubFailed {
                            subject,
                            message: format!("cannot list its files: {}", with_causes(&e)),
                        })
                    }
                },
            };
            let names: Vec<String> = info.siblings.iter().map(|s| s.rfilename.clone()).collect();
            let files = split_files(&names, &req.split);
            if files.is_empty() {
                continue;
            }
            let mut paths = Vec::with_capacity(files.len());
            for f in &files {
                let path = handle.get(f).await.map_err(|e| match classify(&e) {
                    // Not from the cache: it may hold some of the split's files and not others.
                    Answer::Unreachable => unreachable(f.clone(), unanswered_because(&e)),
                    _ => Error::HubFailed {
                        subject: subject.clone(),
                        message: format!("cannot download {f}: {}", with_causes(&e)),
                    },
                })?;
                paths.push(path);
            }
            return Ok(Fetched {
                revision: revision.to_string(),
                commit: info.sha.clone(),
                files,
                paths,
                note: None,
            });
        }
        if unanswered.is_none() {
            return Err(Error::HubNotFound {
                subject,
                message: format!(
                    "has no data files for split {:?} (CSV, JSON Lines, JSON or Parquet)",
                    req.split
                ),
            });
        }
    }
    // Offline, or the Hub cannot be reached: the cache.
    for revision in [req.revision.as_str(), PARQUET_REVISION] {
        let Some((commit, names)) = cached_files(cfg, repo, revision) else {
            continue;
        };
        let files = split_files(&names, &req.split);
        if files.is_empty() {
            continue;
        }
        let root = cache_folder(cfg, repo).join("snapshots").join(&commit);
        return Ok(Fetched {
            revision: revision.to_string(),
            paths: files.iter().map(|f| root.join(f)).collect(),
            commit,
            files,
            note: unanswered.as_ref().map(|why| {
                format!(
                    "the Hub at {} cannot be reached ({why}); using the cache",
                    cfg.endpoint
                )
            }),
        });
    }
    Err(unreachable(
        format!("split {:?}", req.split),
        unanswered.unwrap_or_default(),
    ))
}

/// A model's `tokenizer.json`: from the cache, else downloaded (never offline).
pub(super) async fn model_tokenizer(model: &str, cfg: &HubConfig) -> Result<PathBuf> {
    let subject = format!("model {model}");
    let repo = Repo::model(model.to_string());
    let cached = hf_hub::Cache::new(cfg.cache_dir.clone())
        .repo(repo.clone())
        .get("tokenizer.json");
    if let Some(p) = cached {
        return Ok(p);
    }
    let unreachable = |reason: String| {
        Error::HubUnreachable(Box::new(HubUnreachable {
            subject: subject.clone(),
            missing: "tokenizer.json".into(),
            endpoint: cfg.endpoint.clone(),
            offline: cfg.offline,
            reason,
            cache: cfg.cache_dir.clone(),
            instead: TOKENIZER_WITHOUT_HUB,
        }))
    };
    if cfg.offline {
        return Err(unreachable(String::new()));
    }
    let api = api(cfg, &subject)?;
    api.repo(repo)
        .get("tokenizer.json")
        .await
        .map_err(|e| match classify(&e) {
            Answer::Unreachable => unreachable(unanswered_because(&e)),
            Answer::NotFound => Error::HubNotFound {
                subject: subject.clone(),
                message: format!("no tokenizer.json on {} (or no such model)", cfg.endpoint),
            },
            Answer::Refused => Error::HubNotFound {
                subject: subject.clone(),
                message: "access refused; set HF_TOKEN".into(),
            },
            Answer::Other => Error::HubFailed {
                subject: subject.clone(),
                message: format!("cannot download tokenizer.json: {}", with_causes(&e)),
            },
        })
}
