//! Reading result files of any supported tool into this project's documents.
//!
//! [`AnyResult::read`] recognises a file by its shape (never its name):
//!
//! | format | shape |
//! |---|---|
//! | this project's chat or embedding document, and the original Python scripts' | an object with `metadata` and `results` objects (`metadata.tool` names this project) |
//! | vLLM `bench serve --save-result` / `benchmark_serving.py` | an object with `completed`, `duration` and `request_throughput` numbers (several such objects, one per line, with `--append-result`) |
//! | GuideLLM `benchmarks.json` | an object with a `benchmarks` array of objects with `metrics` |
//! | AIPerf `profile_export_aiperf.json` | an object whose `request_throughput` is an object with a `unit` |
//! | inference-benchmarker | an object with `config`, a `results` array of objects with `executor_type`, and `system` |
//!
//! Each foreign format is mapped in its own module onto a [`ChatDocument`]; the mapping keeps
//! this project's definitions (seconds, sample standard deviations, the book's metrics) and
//! records what it could not map in `metadata.imported` ([`Imported`]).

mod aiperf;
mod build;
mod guidellm;
mod inference_benchmarker;
mod vllm;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokenomics_stats::{AnyDocument, ChatDocument, ChatMetadata};

use crate::records::Records;
use crate::{Error, Result};

/// What a result file must be, for messages that refuse one.
pub const EXPECTED: &str = "a result file of oai-bench / embed-bench or the original Python scripts (an object with `metadata` and `results`), vLLM `bench serve --save-result` JSON, GuideLLM `benchmarks.json`, AIPerf `profile_export_aiperf.json` or Hugging Face inference-benchmarker results JSON";

/// The tool a result file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `oai-bench` / `embed-bench` (`metadata.tool` is `tokenomics …`).
    Tokenomics,
    /// `oai_server_benchmark.py` / `embedding_benchmark.py`: the same document, without `tool`.
    OriginalScripts,
    /// vLLM `vllm bench serve` / `benchmarks/benchmark_serving.py`.
    Vllm,
    /// GuideLLM `benchmarks.json`.
    Guidellm,
    /// NVIDIA AIPerf `profile_export_aiperf.json`.
    Aiperf,
    /// Hugging Face inference-benchmarker.
    InferenceBenchmarker,
}

impl Format {
    /// The tool's name, as `metadata.imported.tool` writes it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Tokenomics => "tokenomics",
            Format::OriginalScripts => "oai_server_benchmark.py",
            Format::Vllm => "vllm bench serve",
            Format::Guidellm => "guidellm",
            Format::Aiperf => "aiperf",
            Format::InferenceBenchmarker => "inference-benchmarker",
        }
    }

    /// Whether documents of this format were converted from another tool's output.
    pub fn is_foreign(self) -> bool {
        !matches!(self, Format::Tokenomics | Format::OriginalScripts)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `metadata.imported` of a converted document: where it came from and what did not map.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Imported {
    /// The tool that wrote the source file.
    pub tool: String,
    /// Its version, when the file records it.
    pub version: Option<String>,
    /// Figures of the source that have no place in this project's document, by their source
    /// name (with why, where it is not obvious).
    pub unmapped: Vec<String>,
    /// How the tool's definitions differ from this project's, for the figures that were mapped.
    pub notes: Vec<String>,
    /// Fields of `metadata` the source does not record: written as 0 or empty, and not compared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_recorded: Vec<String>,
}

impl Imported {
    fn new(format: Format, version: Option<String>) -> Self {
        Self {
            tool: format.name().to_string(),
            version,
            ..Self::default()
        }
    }

    pub(crate) fn unmapped(&mut self, what: impl Into<String>) {
        let what = what.into();
        if !self.unmapped.contains(&what) {
            self.unmapped.push(what);
        }
    }

    pub(crate) fn note(&mut self, what: impl Into<String>) {
        let what = what.into();
        if !self.notes.contains(&what) {
            self.notes.push(what);
        }
    }

    /// The block of a converted document (`None` for this project's own files).
    pub fn of(meta: &ChatMetadata) -> Option<Imported> {
        serde_json::from_value(meta.extra.get("imported")?.clone()).ok()
    }
}

/// A result file read and recognised: its format, the document, and the per-request records
/// that came with it (a foreign tool's per-request data converted; this project's
/// `--requests_file` is read by [`Input`]).
#[derive(Debug, Clone)]
pub struct AnyResult {
    /// The tool that wrote the file, as recognised by its shape.
    pub format: Format,
    /// The document: this project's chat or embedding document as read, another tool's
    /// converted to a chat document (with `metadata.imported`).
    pub document: AnyDocument,
    /// Per-request records converted from the tool's own per-request data (vLLM's
    /// `--save-detailed` arrays, AIPerf's `profile_export.jsonl` beside the file); `None` for
    /// this project's files and where the tool kept none.
    pub records: Option<Records>,
}

impl AnyResult {
    /// Reads `path` and recognises its format by shape; a file that is not JSON, or JSON of no
    /// known shape, is refused with what was expected.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// [`AnyResult::read`] of text already read (`path` names it in messages, and its directory
    /// is where a tool's companion files are looked for).
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let values = json_values(path, text)?;
        let first = &values[0];
        if values.len() > 1 {
            // Only vLLM's --append-result writes several objects to one file.
            if values.iter().all(vllm::looks_like) {
                return vllm::convert(path, &values);
            }
            return Err(Error::Unrecognised {
                path: path.to_path_buf(),
                found: format!("{} JSON values in a row", values.len()),
            });
        }
        if is_document(first) {
            let tool = first
                .pointer("/metadata/tool")
                .and_then(Value::as_str)
                .unwrap_or("");
            let format = if tool.starts_with("tokenomics") {
                Format::Tokenomics
            } else {
                Format::OriginalScripts
            };
            let document =
                AnyDocument::from_value(first.clone()).map_err(|e| Error::Malformed {
                    path: path.to_path_buf(),
                    format: "Tokenomics (oai-bench)",
                    message: format!("does not fit it: {e}"),
                })?;
            return Ok(AnyResult {
                format,
                document,
                records: None,
            });
        }
        if vllm::looks_like(first) {
            return vllm::convert(path, &values);
        }
        if guidellm::looks_like(first) {
            return guidellm::convert(path, first);
        }
        if aiperf::looks_like(first) {
            return aiperf::convert(path, first);
        }
        if inference_benchmarker::looks_like(first) {
            return inference_benchmarker::convert(path, first);
        }
        Err(Error::Unrecognised {
            path: path.to_path_buf(),
            found: describe(first),
        })
    }
}

/// Reads any supported result file as a document that `tokenomics-plot` can draw: this project's
/// chat and embedding files as they are, other tools' converted to chat documents.
pub fn read_any(path: &Path) -> Result<AnyDocument> {
    AnyResult::read(path).map(|r| r.document)
}

fn is_document(v: &Value) -> bool {
    v.get("metadata").is_some_and(Value::is_object)
        && v.get("results").is_some_and(Value::is_object)
}

/// The JSON values of a file: one, or several one after another (vLLM's `--append-result`).
fn json_values(path: &Path, text: &str) -> Result<Vec<Value>> {
    let mut values = Vec::new();
    for v in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        values.push(v.map_err(|source| Error::NotJson {
            path: path.to_path_buf(),
            source,
        })?);
    }
    if values.is_empty() {
        return Err(Error::Unrecognised {
            path: path.to_path_buf(),
            found: "it is empty".into(),
        });
    }
    Ok(values)
}

/// A few words on what a JSON value is, for a refusal.
fn describe(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let keys: Vec<&str> = m.keys().take(6).map(String::as_str).collect();
            if keys.is_empty() {
                "an empty object".into()
            } else {
                format!(
                    "an object with {}{}",
                    keys.join(", "),
                    if m.len() > 6 { ", …" } else { "" }
                )
            }
        }
        Value::Array(a) => format!("an array of {} values", a.len()),
        Value::String(_) => "a string".into(),
        Value::Number(_) => "a number".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Null => "null".into(),
    }
}

/// A result file named on a command line, with its per-request records when given:
/// `A.json` or `A.json:A.jsonl`. A path that names an existing file is taken whole even if it
/// has a colon in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    /// The results file.
    pub results: PathBuf,
    /// The per-request records file after the colon (`oai-bench --requests_file` JSON Lines),
    /// when one is named.
    pub records: Option<PathBuf>,
}

impl FromStr for InputSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s.is_empty() {
            return Err(
                "expected a result file (RESULTS.json or RESULTS.json:REQUESTS.jsonl)".into(),
            );
        }
        if !Path::new(s).is_file() {
            if let Some((results, records)) = s.rsplit_once(':') {
                if results.is_empty() || records.is_empty() {
                    return Err(format!(
                        "{s:?}: expected RESULTS.json or RESULTS.json:REQUESTS.jsonl"
                    ));
                }
                return Ok(InputSpec {
                    results: results.into(),
                    records: Some(records.into()),
                });
            }
        }
        Ok(InputSpec {
            results: s.into(),
            records: None,
        })
    }
}

/// A chat result file ready to compare: the document (converted when foreign), its label, and
/// the per-request records that go with it.
#[derive(Debug, Clone)]
pub struct Input {
    /// The results file, as it was given.
    pub path: PathBuf,
    /// How reports name it: the file name.
    pub label: String,
    /// The tool that wrote it.
    pub format: Format,
    /// The chat document (converted when foreign).
    pub document: ChatDocument,
    /// Its per-request records: a tool's own, converted, or a `--requests_file` named or found
    /// beside it, checked against the document (every level it names is in it, with as many
    /// successes); `None` when there are none or none fit.
    pub records: Option<Records>,
    /// Where the records came from, or why none are used.
    pub notes: Vec<String>,
}

impl Input {
    /// Reads a result file and finds its per-request records by name beside it: `X.jsonl`,
    /// `X.requests.jsonl`, `X_requests.jsonl` or `X-requests.jsonl` for `X.json` (AIPerf's
    /// `profile_export.jsonl` is found by the importer).
    pub fn load(path: &Path) -> Result<Self> {
        Self::open(&InputSpec {
            results: path.to_path_buf(),
            records: None,
        })
    }

    /// Reads a result file with the records named in `spec`, or found by name when none is.
    pub fn open(spec: &InputSpec) -> Result<Self> {
        let path = &spec.results;
        let any = AnyResult::read(path)?;
        let document = match any.document {
            AnyDocument::Chat(d) => d,
            AnyDocument::Embed(_) => {
                return Err(Error::Incomparable(format!(
                    "{} is an embedding benchmark; tokenomics-compare compares chat results",
                    path.display()
                )))
            }
        };
        let label = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let mut input = Input {
            path: path.clone(),
            label,
            format: any.format,
            document,
            records: any.records,
            notes: Vec::new(),
        };
        if let Some(r) = &input.records {
            input
                .notes
                .push(format!("per-request records: {}", r.source.display()));
        }
        match &spec.records {
            Some(records) => {
                let r = Records::read_jsonl(records)?;
                input.check_records(&r)?;
                input
                    .notes
                    .push(format!("per-request records: {}", records.display()));
                input.records = Some(r);
            }
            None if input.records.is_none() => {
                if let Some(found) = records_beside(path) {
                    match Records::read_jsonl(&found)
                        .and_then(|r| input.check_records(&r).map(|_| r))
                    {
                        Ok(r) => {
                            input.notes.push(format!(
                                "per-request records: {} (found beside it)",
                                found.display()
                            ));
                            input.records = Some(r);
                        }
                        Err(e) => input.notes.push(format!(
                            "{} is beside it but not used: {e}",
                            found.display()
                        )),
                    }
                }
            }
            None => {}
        }
        Ok(input)
    }

    /// Records belong to a document when every level they name is in it and each level's
    /// successes match the document's count.
    fn check_records(&self, r: &Records) -> Result<()> {
        for (level, recs) in &r.by_level {
            let Some(l) = self.document.results.get(level) else {
                return Err(Error::Records {
                    path: r.source.clone(),
                    message: format!(
                        "level {level:?} is not in {} (its levels: {})",
                        self.path.display(),
                        self.document
                            .results
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            };
            let ok = recs.iter().filter(|x| x.ok).count() as u64;
            if let Some(counts) = &l.requests {
                if counts.succeeded != ok {
                    return Err(Error::Records {
                        path: r.source.clone(),
                        message: format!(
                            "level {level:?} has {ok} successful requests in it but {} in {}; they are not the records of this run",
                            counts.succeeded,
                            self.path.display()
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The per-request file named after a results file, if one exists beside it.
fn records_beside(path: &Path) -> Option<PathBuf> {
    let stem = path.file_stem()?.to_string_lossy().into_owned();
    let dir = path.parent().unwrap_or(Path::new(""));
    [
        format!("{stem}.jsonl"),
        format!("{stem}.requests.jsonl"),
        format!("{stem}_requests.jsonl"),
        format!("{stem}-requests.jsonl"),
    ]
    .into_iter()
    .map(|n| dir.join(n))
    .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_spec_splits_at_the_last_colon_unless_the_file_exists() {
        let s: InputSpec = "runs/a.json:runs/a.jsonl".parse().unwrap();
        assert_eq!(s.results, PathBuf::from("runs/a.json"));
        assert_eq!(s.records, Some(PathBuf::from("runs/a.jsonl")));
        let s: InputSpec = "a.json".parse().unwrap();
        assert_eq!(s.records, None);
        assert!("a.json:".parse::<InputSpec>().is_err());
        assert!("".parse::<InputSpec>().is_err());
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("run:1.json");
        std::fs::write(&odd, "{}").unwrap();
        let s: InputSpec = odd.to_str().unwrap().parse().unwrap();
        assert_eq!((s.results, s.records), (odd, None));
    }

    #[test]
    fn unknown_and_broken_files_are_refused_with_what_was_expected() {
        let p = Path::new("x.json");
        let e = AnyResult::parse(p, r#"{"hello": 1, "world": [2]}"#).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("an object with hello, world"), "{msg}");
        assert!(msg.contains("GuideLLM") && msg.contains("AIPerf"), "{msg}");
        assert!(e.is_bad_input());
        let msg = AnyResult::parse(p, r#"{"metadata": {"model": "#)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("not valid JSON") && msg.contains("expected a result file"),
            "{msg}"
        );
        let msg = AnyResult::parse(p, "   ").unwrap_err().to_string();
        assert!(msg.contains("empty"), "{msg}");
        let msg = AnyResult::parse(p, "[1, 2]").unwrap_err().to_string();
        assert!(msg.contains("an array of 2 values"), "{msg}");
        let msg = AnyResult::parse(p, r#"{"metadata": {}, "results": {}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("looks like Tokenomics (oai-bench) output")
                && msg.contains("missing field"),
            "{msg}"
        );
    }
}
