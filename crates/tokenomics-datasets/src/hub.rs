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
//! to the cache, and says so.

use std::path::{Path, PathBuf};

use hf_hub::api::tokio::{ApiBuilder, ApiError};
use hf_hub::{Repo, RepoType};
use serde_json::{json, Map, Value};

use crate::{Error, Prompt, Result, Turn};

/// The original script's dataset.
pub const AIME: (&str, &str, &str) = ("gneubig/aime-1983-2024", "train", "Question");

/// The revision the Hub keeps its Parquet conversion of every dataset under.
const PARQUET_REVISION: &str = "refs/convert/parquet";

/// Where and how to reach the Hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The Hub's base URL (`HF_ENDPOINT`, default `https://huggingface.co`).
    pub endpoint: String,
    /// The cache's `hub` folder (`$HF_HOME/hub`, default `~/.cache/huggingface/hub`).
    pub cache_dir: PathBuf,
    /// `HF_TOKEN`.
    pub token: Option<String>,
    /// `HF_HUB_OFFLINE`: use the cache only.
    pub offline: bool,
}

impl HubConfig {
    /// From the environment, as the Hugging Face libraries read it.
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

    /// The Hub client: this endpoint and cache, `HF_TOKEN` or else the token
    /// `huggingface-cli login` saved in the cache's home.
    fn api(&self) -> Result<hf_hub::api::tokio::Api, String> {
        let mut builder = ApiBuilder::from_cache(hf_hub::Cache::new(self.cache_dir.clone()))
            .with_endpoint(self.endpoint.clone())
            .with_progress(false);
        if let Some(t) = &self.token {
            builder = builder.with_token(Some(t.clone()));
        }
        builder
            .build()
            .map_err(|e| format!("cannot set up the Hub client: {e}"))
    }
}

/// What to load from a Hub dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRequest {
    /// `OWNER/NAME`.
    pub repo: String,
    pub split: String,
    /// A text column, or a chat `messages` column; `None` picks one (see [`pick_column`]).
    pub column: Option<String>,
    /// `main` unless asked otherwise.
    pub revision: String,
}

/// A loaded dataset: its rows as prompts and what the metadata records about it.
pub struct Loaded {
    pub rows: Vec<Prompt>,
    pub source: Value,
    /// Set when the Hub could not be reached and the cache was used instead.
    pub note: Option<String>,
}

const DATA_EXTENSIONS: [&str; 5] = [".parquet", ".jsonl", ".json", ".csv", ".tsv"];
const SPLIT_NAMES: [&str; 5] = ["train", "test", "validation", "valid", "dev"];

/// The data files of `split` among a repository's files: those whose path names the split as a
/// word (`data/train-00000-of-00001.parquet`, `test.csv`, `default/train/0000.parquet`), or — when
/// no file names any split — every data file, as the `train` split (the `datasets` library's
/// rule). One format is used, Parquet first.
pub fn split_files(files: &[String], split: &str) -> Vec<String> {
    let data: Vec<&String> = files
        .iter()
        .filter(|f| DATA_EXTENSIONS.iter().any(|e| f.ends_with(e)))
        .filter(|f| !f.starts_with('.'))
        .collect();
    let words = |f: &str| -> Vec<String> {
        f.to_ascii_lowercase()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .map(str::to_string)
            .collect()
    };
    let names_a_split = |f: &str| words(f).iter().any(|w| SPLIT_NAMES.contains(&w.as_str()));
    let chosen: Vec<&String> = if data.iter().any(|f| names_a_split(f)) {
        let want = split.to_ascii_lowercase();
        data.into_iter()
            .filter(|f| words(f).contains(&want))
            .collect()
    } else if split == "train" {
        data
    } else {
        Vec::new()
    };
    for ext in DATA_EXTENSIONS {
        let mut of_ext: Vec<String> = chosen
            .iter()
            .filter(|f| f.ends_with(ext))
            .map(|f| f.to_string())
            .collect();
        if !of_ext.is_empty() {
            of_ext.sort();
            return of_ext;
        }
    }
    Vec::new()
}

fn hub_error(repo: &str, what: impl std::fmt::Display) -> Error {
    Error::Hub(format!("dataset {repo}: {what}"))
}

/// Whether an hf-hub error means the Hub could not be reached at all (as opposed to an answer).
fn unreachable(e: &ApiError) -> bool {
    match e {
        ApiError::RequestError(r) => r.is_connect() || r.is_timeout(),
        _ => false,
    }
}

/// The HTTP status of an hf-hub error, when it is one.
fn status(e: &ApiError) -> Option<u16> {
    match e {
        ApiError::RequestError(r) => r.status().map(|s| s.as_u16()),
        _ => None,
    }
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

/// Finds, downloads (or takes from the cache) and reads a Hub dataset.
pub async fn load(req: &HubRequest, cfg: &HubConfig) -> Result<Loaded> {
    let repo = &req.repo;
    let mut note = None;
    let online = if cfg.offline {
        None
    } else {
        Some(cfg.api().map_err(|e| hub_error(repo, e))?)
    };
    // (revision used, commit, files of the split, where they lie)
    let mut found: Option<(String, String, Vec<String>, Vec<PathBuf>)> = None;
    if let Some(api) = &online {
        for revision in [req.revision.as_str(), PARQUET_REVISION] {
            let handle = api.repo(Repo::with_revision(
                repo.clone(),
                RepoType::Dataset,
                revision.to_string(),
            ));
            let info = match handle.info().await {
                Ok(i) => i,
                Err(e) if unreachable(&e) => {
                    note = Some(format!(
                        "the Hub at {} cannot be reached ({e}); using the cache",
                        cfg.endpoint
                    ));
                    break;
                }
                // No conversion either: reported as "no data files" below.
                Err(_) if revision == PARQUET_REVISION => break,
                Err(e) => {
                    return Err(match status(&e) {
                        Some(404) => hub_error(
                            repo,
                            format!("not found on {} (check the name, or set HF_TOKEN for a private or gated dataset)", cfg.endpoint),
                        ),
                        Some(401) | Some(403) => hub_error(
                            repo,
                            "access refused: set HF_TOKEN to a token that may read it",
                        ),
                        _ => hub_error(repo, format!("cannot list its files: {e}")),
                    })
                }
            };
            let names: Vec<String> = info.siblings.iter().map(|s| s.rfilename.clone()).collect();
            let files = split_files(&names, &req.split);
            if files.is_empty() {
                if revision == PARQUET_REVISION {
                    break;
                }
                continue;
            }
            let mut paths = Vec::new();
            for f in &files {
                let path = handle
                    .get(f)
                    .await
                    .map_err(|e| hub_error(repo, format!("cannot download {f}: {e}")))?;
                paths.push(path);
            }
            found = Some((revision.to_string(), info.sha.clone(), files, paths));
            break;
        }
        if found.is_none() && note.is_none() {
            return Err(hub_error(
                repo,
                format!(
                    "has no data files for split {:?} (CSV, JSON Lines, JSON or Parquet)",
                    req.split
                ),
            ));
        }
    }
    if found.is_none() {
        // Offline, or the Hub is unreachable: the cache.
        for revision in [req.revision.as_str(), PARQUET_REVISION] {
            if let Some((commit, names)) = cached_files(cfg, repo, revision) {
                let files = split_files(&names, &req.split);
                if !files.is_empty() {
                    let root = cache_folder(cfg, repo).join("snapshots").join(&commit);
                    let paths = files.iter().map(|f| root.join(f)).collect();
                    found = Some((revision.to_string(), commit, files, paths));
                    break;
                }
            }
        }
    }
    let Some((revision, commit, files, paths)) = found else {
        return Err(hub_error(
            repo,
            format!(
                "split {:?} is not in the cache at {} and the Hub {}",
                req.split,
                cfg.cache_dir.display(),
                if cfg.offline {
                    "may not be used (HF_HUB_OFFLINE is set)".to_string()
                } else {
                    format!("at {} cannot be reached", cfg.endpoint)
                }
            ),
        ));
    };
    let mut records = Vec::new();
    for (name, path) in files.iter().zip(&paths) {
        records.extend(read_records(path).map_err(|e| hub_error(repo, format!("{name}: {e}")))?);
    }
    let columns: Vec<String> = records
        .first()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default();
    let column = match &req.column {
        Some(c) => c.clone(),
        None => pick_column(&columns).ok_or_else(|| {
            hub_error(
                repo,
                format!(
                    "no prompt column found; name one with --dataset_column (columns: {})",
                    columns.join(", ")
                ),
            )
        })?,
    };
    if !columns.contains(&column) {
        return Err(hub_error(
            repo,
            format!(
                "split {:?} has no column {column:?} (columns: {})",
                req.split,
                columns.join(", ")
            ),
        ));
    }
    let mut rows = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        match prompt_of(r.get(&column)) {
            Some(p) => rows.push(p),
            None => {
                return Err(hub_error(
                    repo,
                    format!(
                        "row {i}: column {column:?} is neither text nor a list of chat messages"
                    ),
                ))
            }
        }
    }
    if rows.is_empty() {
        return Err(Error::Empty(format!("{repo} ({})", req.split)));
    }
    let format = files
        .first()
        .and_then(|f| f.rsplit('.').next())
        .unwrap_or("")
        .to_string();
    Ok(Loaded {
        source: json!({
            "kind": "hub",
            "repo": repo,
            "revision": revision,
            "commit": commit,
            "split": req.split,
            "column": column,
            "files": files,
            "format": format,
            "endpoint": cfg.endpoint,
        }),
        rows,
        note,
    })
}

/// The `tokenizer.json` of a Hub model (`--tokenizer OWNER/NAME`), downloaded into the cache or
/// found there (always, offline).
pub async fn model_tokenizer(model: &str, cfg: &HubConfig) -> Result<PathBuf> {
    let repo = Repo::model(model.to_string());
    let cached = hf_hub::Cache::new(cfg.cache_dir.clone())
        .repo(repo.clone())
        .get("tokenizer.json");
    if let Some(p) = cached {
        return Ok(p);
    }
    if cfg.offline {
        return Err(Error::Hub(format!(
            "model {model}: tokenizer.json is not in the cache at {} and HF_HUB_OFFLINE is set",
            cfg.cache_dir.display()
        )));
    }
    let api = cfg
        .api()
        .map_err(|e| Error::Hub(format!("model {model}: {e}")))?;
    api.repo(repo).get("tokenizer.json").await.map_err(|e| {
        Error::Hub(match status(&e) {
            Some(404) => format!(
                "model {model}: no tokenizer.json on {} (or no such model)",
                cfg.endpoint
            ),
            Some(401) | Some(403) => format!("model {model}: access refused; set HF_TOKEN"),
            _ => format!("model {model}: cannot download tokenizer.json: {e}"),
        })
    })
}

/// The column to take prompts from when none is named: a chat `messages` column, else the first
/// of the usual names for a prompt.
pub fn pick_column(columns: &[String]) -> Option<String> {
    const NAMES: [&str; 9] = [
        "messages",
        "conversations",
        "prompt",
        "question",
        "problem",
        "instruction",
        "input",
        "text",
        "content",
    ];
    NAMES
        .iter()
        .find_map(|n| columns.iter().find(|c| c.eq_ignore_ascii_case(n)).cloned())
}

/// A cell as a prompt: a string, or a list of `{role, content}` (or `{from, value}`) messages.
fn prompt_of(v: Option<&Value>) -> Option<Prompt> {
    match v? {
        Value::String(s) => Some(Prompt::Text(s.clone())),
        Value::Array(items) if !items.is_empty() => {
            let turns: Option<Vec<Turn>> = items
                .iter()
                .map(|m| {
                    let role = m.get("role").or_else(|| m.get("from"))?.as_str()?;
                    let content = m.get("content").or_else(|| m.get("value"))?.as_str()?;
                    let role = match role {
                        "human" => "user",
                        "gpt" => "assistant",
                        r => r,
                    };
                    Some(Turn {
                        role: role.to_string(),
                        content: content.to_string(),
                    })
                })
                .collect();
            turns.map(Prompt::Messages)
        }
        _ => None,
    }
}

/// The records of one data file, as JSON objects, in file order.
pub fn read_records(path: &Path) -> std::result::Result<Vec<Map<String, Value>>, String> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".parquet") {
        read_parquet(path)
    } else if name.ends_with(".csv") || name.ends_with(".tsv") {
        read_csv(path, if name.ends_with(".tsv") { b'\t' } else { b',' })
    } else {
        read_json(path)
    }
}

fn read_csv(path: &Path, delimiter: u8) -> std::result::Result<Vec<Map<String, Value>>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_path(path)
        .map_err(|e| e.to_string())?;
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let mut out = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| format!("record {}: {e}", i + 1))?;
        let mut m = Map::new();
        for (h, v) in headers.iter().zip(rec.iter()) {
            m.insert(h.to_string(), Value::String(v.to_string()));
        }
        out.push(m);
    }
    Ok(out)
}

fn read_json(path: &Path) -> std::result::Result<Vec<Map<String, Value>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let objects = |v: Vec<Value>| -> std::result::Result<Vec<Map<String, Value>>, String> {
        v.into_iter()
            .enumerate()
            .map(|(i, x)| match x {
                Value::Object(m) => Ok(m),
                _ => Err(format!("record {} is not an object", i + 1)),
            })
            .collect()
    };
    // A JSON document (an array of records, or {"data": [...]}) …
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(items)) => return objects(items),
        Ok(Value::Object(mut m)) if m.get("data").is_some_and(Value::is_array) => {
            if let Some(Value::Array(items)) = m.remove("data") {
                return objects(items);
            }
        }
        _ => {}
    }
    // … or JSON Lines.
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(m)) => out.push(m),
            Ok(_) => return Err(format!("line {} is not a JSON object", i + 1)),
            Err(e) => return Err(format!("line {}: {e}", i + 1)),
        }
    }
    Ok(out)
}

fn read_parquet(path: &Path) -> std::result::Result<Vec<Map<String, Value>>, String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader = SerializedFileReader::new(file).map_err(|e| format!("not Parquet: {e}"))?;
    let mut out = Vec::new();
    for row in reader.get_row_iter(None).map_err(|e| e.to_string())? {
        let row = row.map_err(|e| e.to_string())?;
        match row.to_json_value() {
            Value::Object(m) => out.push(m),
            _ => return Err("a row is not a record".into()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn files_of_a_split() {
        let f = names(&[
            "README.md",
            ".gitattributes",
            "data/train-00000-of-00002.parquet",
            "data/train-00001-of-00002.parquet",
            "data/test-00000-of-00001.parquet",
            "data/train.csv",
        ]);
        assert_eq!(
            split_files(&f, "train"),
            names(&[
                "data/train-00000-of-00002.parquet",
                "data/train-00001-of-00002.parquet"
            ])
        );
        assert_eq!(
            split_files(&f, "test"),
            names(&["data/test-00000-of-00001.parquet"])
        );
        assert!(split_files(&f, "validation").is_empty());
        // No split named anywhere: everything is train.
        let g = names(&["README.md", "AIME_Dataset_1983_2024.csv"]);
        assert_eq!(
            split_files(&g, "train"),
            names(&["AIME_Dataset_1983_2024.csv"])
        );
        assert!(split_files(&g, "test").is_empty());
        // The Hub's Parquet conversion layout.
        let p = names(&["default/train/0000.parquet", "default/test/0000.parquet"]);
        assert_eq!(
            split_files(&p, "train"),
            names(&["default/train/0000.parquet"])
        );
        // "trainer.csv" does not name the train split.
        assert!(split_files(&names(&["trainer.csv", "test.csv"]), "train").is_empty());
    }

    #[test]
    fn a_prompt_column_is_found() {
        assert_eq!(
            pick_column(&names(&["ID", "Year", "Question", "Answer"])).as_deref(),
            Some("Question")
        );
        assert_eq!(
            pick_column(&names(&["id", "messages", "prompt"])).as_deref(),
            Some("messages")
        );
        assert_eq!(pick_column(&names(&["a", "b"])), None);
    }

    #[test]
    fn chat_cells_become_conversations() {
        let v = json!([{"from": "human", "value": "hi"}, {"role": "assistant", "content": "yo"}]);
        assert_eq!(
            prompt_of(Some(&v)),
            Some(Prompt::Messages(vec![
                Turn {
                    role: "user".into(),
                    content: "hi".into()
                },
                Turn {
                    role: "assistant".into(),
                    content: "yo".into()
                }
            ]))
        );
        assert_eq!(prompt_of(Some(&json!(3))), None);
    }
}
