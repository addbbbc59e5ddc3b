//! Reading benchmark results — this project's and other tools' — and telling whether two runs
//! really differ.
//!
//! A benchmark is run to decide something: did this server build get faster, is one engine
//! better than another on this workload. A difference read off two result files by eye may be
//! noise. This crate does the two things such a decision needs, with no HTTP and no async:
//!
//! * [`import`] reads a result file of any tool people use for this job and turns it into this
//!   project's [`ChatDocument`](tokenomics_stats::ChatDocument): `oai-bench`'s own files and the
//!   original Python scripts' (the same document), vLLM's `bench serve` /
//!   `benchmark_serving.py` result JSON, GuideLLM's `benchmarks.json`, AIPerf's
//!   `profile_export_aiperf.json` (with its per-request `profile_export.jsonl` when it is beside
//!   it) and Hugging Face inference-benchmarker's results JSON. The format is recognised by the
//!   shape of the file, never by its name. Each tool defines its metrics a little differently
//!   (vLLM's time to first token starts at the first chunk with choices, GuideLLM's time per
//!   output token includes the first token, AIPerf counts tokens with a client-side tokenizer …);
//!   what maps onto this project's definitions is mapped, converted from milliseconds and from
//!   population to sample standard deviations, and what does not is named in
//!   `metadata.imported` (`tool`, `version`, `unmapped`, `notes`, `not_recorded`).
//! * [`compare()`](fn@compare) matches the levels of two or more documents (same mode, same level key) and,
//!   for every figure — throughput, time to first token, inter-token latency, time per output
//!   token and end-to-end latency (mean and percentiles), goodput share — gives the baseline's
//!   value, the other's, the relative change with a confidence interval, and a verdict from a
//!   test that fits the data: when per-request records are at hand ([`records`]), each run's
//!   figure compared across runs (Mann–Whitney U from six runs a side, Welch's t below), or a
//!   seeded bootstrap over the requests of a single run; Welch's t on the per-run figures (and
//!   on per-request means) of the documents otherwise; a two-proportion test for goodput; the
//!   p-values of all tests are
//!   corrected together for multiple comparisons (Holm). Differences in configuration other
//!   than the server are listed, because a comparison of different workloads says nothing about
//!   the servers.
//!
//! [`report`] renders a comparison as Markdown (from one table of columns) or JSON.
//!
//! # A CI gate on p99 TTFT
//!
//! A harness that benchmarks a baseline build and a candidate build (with `oai-bench
//! --requests_file`, or `tokenomics-bench` directly) and fails when the candidate's p99 time to
//! first token got significantly worse by more than 5%:
//!
//! ```
//! # use std::path::Path;
//! # fn write_run(dir: &Path, name: &str, ttft_ms: impl Fn(usize) -> f64) {
//! #     let n = 400;
//! #     let mut lines = String::new();
//! #     for i in 0..n {
//! #         let ttft = ttft_ms(i) / 1e3;
//! #         lines.push_str(&format!(
//! #             "{{\"level\":\"8\",\"run\":0,\"status\":\"ok\",\"completion_tokens\":20,\"ttft_s\":{ttft},\"e2el_s\":{}}}\n",
//! #             ttft + 0.2
//! #         ));
//! #     }
//! #     std::fs::write(dir.join(format!("{name}.jsonl")), lines).unwrap();
//! #     let dist = r#"{"count":400,"mean":0.1,"std":0.01,"min":0.08,"max":0.2,"p50":0.1,"p90":0.11,"p95":0.12,"p99":0.13,"p99.9":0.14}"#;
//! #     let stat = r#"{"mean":1.0,"std":0.0}"#;
//! #     let doc = format!(
//! #         r#"{{"metadata":{{"timestamp":"2026-01-01T00:00:00","model":"m","dataset_key":"synthetic","api_base":"http://x/v1","batch_sizes":[8],"num_runs":1,"max_tokens":20,"temperature":0.0,"seed":1,"warmup_runs":0,"n_cores":1,"tool":"tokenomics 0.1.0","mode":"closed_loop","stream":true}},
//! #         "results":{{"8":{{"tokens":{{"input_per_request":{stat},"output_per_request":{stat}}},
//! #         "timings":{{"batch_total_seconds":{stat},"fastest_seconds":{stat},"slowest_seconds":{stat},"spread_seconds":{stat}}},
//! #         "throughput":{{"batch_tokens_per_second":{stat},"request_tokens_per_second":{stat}}},
//! #         "latency":{{"ttft":{dist},"itl":{dist},"tpot":{dist},"e2el":{dist}}},
//! #         "requests":{{"succeeded":{n},"failed":0}},
//! #         "load":{{"mode":"closed_loop","max_concurrency":8,"num_requests":400,"duration_seconds":null,"warmup_seconds":0.0,"at_end":"wait"}}}}}}}}"#
//! #     );
//! #     std::fs::write(dir.join(format!("{name}.json")), doc).unwrap();
//! # }
//! # let dir = std::env::temp_dir().join(format!("tokenomics-compare-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # // The baseline's TTFT spreads over 100–140 ms; the candidate's tail is a quarter longer.
//! # write_run(&dir, "baseline", |i| 100.0 + (i * 37 % 400) as f64 / 10.0);
//! # write_run(&dir, "candidate", |i| { let t = 100.0 + (i * 37 % 400) as f64 / 10.0; if t > 130.0 { t * 1.25 } else { t } });
//! use tokenomics_compare::{compare, CompareOptions, Input, Metric, Statistic, Verdict};
//!
//! // The per-request files (`baseline.jsonl`, `candidate.jsonl`) are found beside the results.
//! let baseline = Input::load(&dir.join("baseline.json"))?;
//! let candidate = Input::load(&dir.join("candidate.json"))?;
//! let comparison = compare(&[baseline, candidate], &CompareOptions::default())?;
//!
//! let p99_ttft = comparison
//!     .rows()
//!     .find(|r| r.metric == Metric::Ttft && r.statistic == Statistic::P99)
//!     .expect("both runs streamed");
//! assert_eq!(p99_ttft.verdict, Verdict::Slower);
//! // The gate: a significant slowdown of more than 5% fails the build.
//! let failed = comparison.regressions(5.0).any(|r| r.metric == Metric::Ttft);
//! assert!(failed, "{}", comparison.to_markdown());
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), tokenomics_compare::Error>(())
//! ```

#![warn(missing_docs)]

pub mod compare;
pub mod import;
pub mod records;
pub mod report;
pub mod stats;

pub use compare::{
    compare, CompareOptions, Comparison, ConfigDifference, LevelComparison, Metric, Row, Statistic,
    Test, Verdict,
};
pub use import::{read_any, AnyResult, Format, Imported, Input};
pub use records::{Records, RequestRecord};

use std::path::PathBuf;

/// Errors of this crate. Every variant but [`Error::Encode`] is the user's input (a file, a
/// flag, a pair of runs that cannot be compared); its message names the file and says what was
/// expected, in one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read: missing, not permitted, or not UTF-8 text.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file, as it was named.
        path: PathBuf,
        /// Why the operating system (or the UTF-8 check) refused it.
        source: std::io::Error,
    },
    /// The file is not JSON at all (or is cut short).
    #[error("{path} is not valid JSON ({source}); expected {}", import::EXPECTED)]
    NotJson {
        /// The file, as it was named.
        path: PathBuf,
        /// The parser's complaint, with its line and column.
        source: serde_json::Error,
    },
    /// The file is JSON but of no format this crate reads.
    #[error(
        "{path} is not a result file this tool reads ({found}); expected {}",
        import::EXPECTED
    )]
    Unrecognised {
        /// The file, as it was named.
        path: PathBuf,
        /// What it holds instead, in a few words (its first keys, or the kind of value).
        found: String,
    },
    /// The file was recognised, but a field it must have is missing or of the wrong kind.
    #[error("{path} looks like {format} output but {message}")]
    Malformed {
        /// The file, as it was named.
        path: PathBuf,
        /// The format it was recognised as, for people (`"vLLM bench serve"`, …).
        format: &'static str,
        /// What is wrong, as the clause after "but" (a required number that is missing, …).
        message: String,
    },
    /// A per-request records file that cannot be used.
    #[error("{path}: {message}")]
    Records {
        /// The records file (`--requests_file` JSON Lines, or a tool's per-request export).
        path: PathBuf,
        /// What is wrong, with the line number where there is one.
        message: String,
    },
    /// Something that cannot be compared, said in a sentence.
    #[error("{0}")]
    Incomparable(String),
    /// The comparison could not be written as JSON: the program's fault, not the input's.
    #[error("cannot encode the comparison as JSON: {0}")]
    Encode(#[from] serde_json::Error),
}

impl Error {
    /// Whether the error is the user's input (a file, a flag) rather than the program's fault.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Error::Encode(_))
    }
}

/// The result of this crate's fallible functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;
