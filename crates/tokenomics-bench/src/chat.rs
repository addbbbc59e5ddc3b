//! The chat benchmark in burst mode, as the original script ran it.

use std::path::PathBuf;

use bytes::Bytes;
use indexmap::IndexMap;
use serde_json::{json, Map, Value};
use tokenomics_client::{ChatRequest, Client, Clock, Connection, Endpoint, Message, RequestRecord};
use tokenomics_datasets::{run_seed, Prompt, PromptSource};
use tokenomics_stats::{write_json_atomic, ChatDocument, ChatMetadata};

use crate::metrics::LevelAccumulator;
use crate::pool::ConnectionPool;
use crate::records::RequestsFile;
use crate::shutdown::Shutdown;
use crate::{Observer, Result, RunReport};

/// The system message the original script sent with every problem.
pub const SYSTEM_PROMPT: &str =
    "You are an assistant that helps students solve challenging problems. Think step by step.";

/// Everything that defines a chat benchmark.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    pub model: String,
    pub dataset_key: String,
    pub api_base: String,
    pub batch_sizes: Vec<u64>,
    pub num_runs: u64,
    pub warmup_runs: u64,
    pub max_tokens: u64,
    pub temperature: f64,
    pub seed: u64,
    pub n_cores: u64,
    pub description: String,
    pub endpoint: Endpoint,
    pub stream: bool,
    /// Written after every level when set.
    pub results_file: Option<PathBuf>,
    /// One JSON line per request, written after every run, when set.
    pub requests_file: Option<PathBuf>,
    /// Request timeout, seconds (recorded in the metadata).
    pub timeout_seconds: f64,
    /// Extra body fields sent with every request.
    pub extra_body: Map<String, Value>,
    /// Extra metadata fields (e.g. the simulator preset that served the run).
    pub extra_metadata: Map<String, Value>,
}

/// Max tokens of a warm-up request, as in the original.
pub const WARMUP_MAX_TOKENS: u64 = 30;

/// A chat benchmark ready to run.
pub struct ChatBenchmark {
    config: ChatConfig,
    prompts: PromptSource,
    clock: Clock,
    pool: ConnectionPool,
    shutdown: Shutdown,
    interrupted: bool,
    requests: Option<RequestsFile>,
}

impl ChatBenchmark {
    pub fn new(config: ChatConfig, client: Client, prompts: PromptSource) -> Self {
        Self {
            config,
            prompts,
            clock: Clock::start(),
            pool: ConnectionPool::new(client),
            shutdown: Shutdown::default(),
            interrupted: false,
            requests: None,
        }
    }

    /// Stops the benchmark when `shutdown` says so (see [`Shutdown`]).
    pub fn set_shutdown(&mut self, shutdown: Shutdown) {
        self.shutdown = shutdown;
    }

    /// Whether the last [`ChatBenchmark::run`] was cut short by the shutdown.
    pub fn interrupted(&self) -> bool {
        self.interrupted
    }

    /// The clock every timestamp of this benchmark is read from.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    fn metadata(&self) -> ChatMetadata {
        let c = &self.config;
        let mut extra = Map::new();
        extra.insert(
            "tool".into(),
            json!(format!("tokenomics {}", env!("CARGO_PKG_VERSION"))),
        );
        extra.insert("mode".into(), json!("burst"));
        extra.insert("endpoint".into(), json!(c.endpoint.name()));
        extra.insert("stream".into(), json!(c.stream));
        extra.insert("timeout_seconds".into(), json!(c.timeout_seconds));
        extra.insert("dataset".into(), self.prompts.describe());
        // Whether outputs were forced to max_tokens (ignore_eos / min_tokens in every request).
        let forced = c.extra_body.get("ignore_eos") == Some(&Value::Bool(true));
        extra.insert("outputs_forced".into(), json!(forced));
        for (k, v) in &c.extra_metadata {
            extra.insert(k.clone(), v.clone());
        }
        if !c.extra_body.is_empty() {
            extra.insert("extra_body".into(), Value::Object(c.extra_body.clone()));
        }
        ChatMetadata {
            timestamp: crate::timestamp(),
            model: c.model.clone(),
            dataset_key: c.dataset_key.clone(),
            api_base: c.api_base.clone(),
            batch_sizes: c.batch_sizes.clone(),
            num_runs: c.num_runs,
            max_tokens: c.max_tokens,
            temperature: c.temperature,
            seed: c.seed,
            warmup_runs: c.warmup_runs,
            n_cores: c.n_cores,
            description: c.description.clone(),
            extra,
        }
    }

    fn body(&self, prompt: Prompt, max_tokens: u64) -> Bytes {
        let messages = match prompt {
            Prompt::Text(text) => vec![
                Message::new("system", SYSTEM_PROMPT),
                Message::new("user", text),
            ],
            Prompt::Messages(turns) => turns
                .into_iter()
                .map(|t| Message::new(&t.role, t.content))
                .collect(),
        };
        ChatRequest {
            endpoint: self.config.endpoint,
            model: self.config.model.clone(),
            messages,
            max_tokens,
            temperature: self.config.temperature,
            stream: self.config.stream,
            extra: self.config.extra_body.clone(),
        }
        .body()
    }

    /// Runs every level and returns the document (also written after each level when
    /// `results_file` is set).
    pub async fn run(&mut self, observer: &mut dyn Observer) -> Result<ChatDocument> {
        let mut doc = ChatDocument {
            metadata: self.metadata(),
            results: IndexMap::new(),
        };
        self.requests = match &self.config.requests_file {
            Some(path) => Some(RequestsFile::create(path)?),
            None => None,
        };
        for &batch in &self.config.batch_sizes.clone() {
            if self.shutdown.is_stopping() {
                break;
            }
            self.warm_up(batch, observer).await;
            observer.level_started(batch);
            let (mut level, complete) = self.run_level(batch, observer).await;
            let key = batch.to_string();
            if !complete {
                self.interrupted = true;
                crate::mark_incomplete(&mut doc.metadata.extra, Some(&mut level.extra));
            }
            // A level interrupted before any request finished has nothing to report.
            if level
                .requests
                .as_ref()
                .is_some_and(|c| c.succeeded + c.failed > 0)
            {
                observer.level_finished(&key, &level);
                doc.results.insert(key, level);
            }
            if let Some(path) = &self.config.results_file {
                write_json_atomic(path, &doc)?;
                observer.saved(path);
            }
        }
        if self.shutdown.is_stopping() && !self.interrupted {
            // Stopped between levels: every level written is whole, but not every level ran.
            self.interrupted = true;
            crate::mark_incomplete(&mut doc.metadata.extra, None);
            if let Some(path) = &self.config.results_file {
                write_json_atomic(path, &doc)?;
            }
        }
        Ok(doc)
    }

    async fn warm_up(&mut self, level: u64, observer: &mut dyn Observer) {
        if self.config.warmup_runs == 0 {
            return;
        }
        let prompts = self.prompts.draw(
            self.config.warmup_runs as usize,
            run_seed(self.config.seed, level, u64::MAX),
        );
        for prompt in prompts {
            let body = self.body(prompt, WARMUP_MAX_TOKENS);
            let (endpoint, stream, clock) = (self.config.endpoint, self.config.stream, self.clock);
            let conn = self.pool.first();
            let done = self
                .shutdown
                .run(conn.completion(endpoint, stream, body, &clock))
                .await;
            match done {
                Some(record) => {
                    if let Some(e) = &record.error {
                        observer.warmup_failed(level, e);
                    }
                }
                None => {
                    conn.reset();
                    return;
                }
            }
        }
    }

    async fn run_level(
        &mut self,
        batch: u64,
        observer: &mut dyn Observer,
    ) -> (tokenomics_stats::ChatLevel, bool) {
        let mut acc = LevelAccumulator::new(self.config.stream);
        let n = batch as usize;
        let mut complete = true;
        for run in 0..self.config.num_runs as usize {
            if self.shutdown.is_stopping() {
                complete = false;
                break;
            }
            let prompts = self
                .prompts
                .draw(n, run_seed(self.config.seed, batch, run as u64));
            let bodies: Vec<Bytes> = prompts
                .into_iter()
                .map(|p| self.body(p, self.config.max_tokens))
                .collect();
            let (endpoint, stream, clock) = (self.config.endpoint, self.config.stream, self.clock);
            let shutdown = self.shutdown.clone();
            let records = self
                .pool
                .burst(
                    bodies,
                    move |mut conn: Connection, body: Bytes| {
                        let shutdown = shutdown.clone();
                        async move {
                            let done = shutdown
                                .run(conn.completion(endpoint, stream, body, &clock))
                                .await;
                            let record = done.unwrap_or_else(|| {
                                conn.reset();
                                RequestRecord {
                                    error: Some(tokenomics_client::Error::Interrupted),
                                    ..RequestRecord::default()
                                }
                            });
                            (conn, record)
                        }
                    },
                    |message| RequestRecord {
                        error: Some(tokenomics_client::Error::Io(message)),
                        ..RequestRecord::default()
                    },
                )
                .await;
            for r in &records {
                if let Some(e) = &r.error {
                    observer.request_failed(batch, run, e);
                }
            }
            let interrupted =
                |r: &RequestRecord| matches!(r.error, Some(tokenomics_client::Error::Interrupted));
            if records.iter().any(interrupted) {
                complete = false;
            }
            observer.run_records(batch, run, &records);
            if let Some(file) = self.requests.as_mut() {
                // A records file that cannot be written is reported once, and not retried.
                if let Err(e) = file.write_run(&batch.to_string(), run, &records, &self.clock) {
                    observer.records_failed(&e);
                    self.requests = None;
                }
            }
            let figures = acc.add_run(&records);
            let ok: Vec<&RequestRecord> = records.iter().filter(|r| r.is_ok()).collect();
            let mean = |f: &dyn Fn(&RequestRecord) -> Option<f64>| {
                let v: Vec<f64> = ok.iter().filter_map(|r| f(r)).collect();
                if v.is_empty() {
                    f64::NAN
                } else {
                    v.iter().sum::<f64>() / v.len() as f64
                }
            };
            observer.run_finished(&RunReport {
                level: batch,
                run,
                num_runs: self.config.num_runs as usize,
                succeeded: ok.len(),
                failed: records.len() - ok.len(),
                mean_output_tokens: mean(&|r| r.completion_tokens.map(|c| c as f64)),
                batch_seconds: figures.as_ref().map_or(f64::NAN, |f| f.batch_total_seconds),
                mean_request_tokens_per_second: mean(&crate::metrics::request_tokens_per_second),
                batch_tokens_per_second: figures
                    .as_ref()
                    .map_or(f64::NAN, |f| f.batch_tokens_per_second),
            });
        }
        (acc.finish(), complete)
    }
}
