//! The embedding benchmark of the original `embedding_benchmark.py`: for every (batch size ×
//! sequence length) configuration, warm-up requests, then runs that each send B separate requests
//! at once (one text each, or `inputs_per_request` texts), with retries.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use indexmap::IndexMap;
use serde_json::{json, Map, Value};
use tokenomics_client::{
    Client, Clock, Connection, EmbeddingsRecord, EmbeddingsRequest, Error as ClientError,
};
use tokenomics_datasets::run_seed;
use tokenomics_datasets::text::{TextGenerator, TextLength};
use tokenomics_stats::{
    write_json_atomic, ChatTimings, EmbedDocument, EmbedLevel, EmbedMetadata, EmbedThroughput,
    EmbedTokens, RequestCounts, Summary,
};

use crate::metrics::{burst_timing, rate};
use crate::pool::ConnectionPool;
use crate::shutdown::Shutdown;
use crate::{Observer, Result};

/// Tokens per word of the estimate used when a server reports no usage (the original's factor).
pub const ESTIMATED_TOKENS_PER_WORD: f64 = 1.3;

/// Everything that defines an embedding benchmark.
#[derive(Debug, Clone)]
pub struct EmbedConfig {
    pub model: String,
    pub api_base: String,
    pub batch_sizes: Vec<u64>,
    pub sequence_lengths: Vec<TextLength>,
    pub num_runs: u64,
    pub warmup_runs: u64,
    pub seed: u64,
    pub description: String,
    /// Written after every configuration when set.
    pub results_file: Option<PathBuf>,
    /// Texts per request (1: the original's one text per request).
    pub inputs_per_request: u64,
    /// Retries of a failed request (the original: 3), with exponential backoff from `backoff`.
    pub retries: u32,
    pub backoff: Duration,
    pub timeout_seconds: f64,
    pub extra_metadata: Map<String, Value>,
}

/// What one run of a configuration produced, for progress display.
#[derive(Debug, Clone)]
pub struct EmbedRunReport {
    pub key: String,
    pub run: usize,
    pub num_runs: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub retries: u64,
    pub tokens: u64,
    pub embeddings: u64,
    pub batch_seconds: f64,
    pub batch_embeddings_per_second: f64,
    pub batch_tokens_per_second: f64,
}

/// One request's outcome after its retries.
#[derive(Debug, Clone)]
pub struct EmbedOutcome {
    /// The last attempt.
    pub record: EmbeddingsRecord,
    /// Send of the first attempt (backoff and retries count in the request's latency).
    pub first_send_ns: u64,
    pub retries: u32,
    pub inputs: usize,
    /// Words of the request's texts (for the estimate when the server reports no usage).
    pub words: usize,
}

impl EmbedOutcome {
    pub fn end_ns(&self) -> u64 {
        self.record.timing.end_ns.unwrap_or(self.first_send_ns)
    }
    pub fn latency_s(&self) -> f64 {
        (self.end_ns() - self.first_send_ns) as f64 / 1e9
    }
}

/// Whether a failure is worth retrying: connection trouble, timeouts, 429 and 5xx.
fn retryable(e: &ClientError) -> bool {
    match e {
        ClientError::Status { status, .. } => *status == 429 || *status >= 500,
        ClientError::Connect { .. } | ClientError::Timeout { .. } | ClientError::Io(_) => true,
        _ => false,
    }
}

/// The longest `Retry-After` a retry waits for.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Sends one embeddings request, retrying retryable failures with exponential backoff, or after
/// the server's `Retry-After` (at most [`MAX_RETRY_AFTER`]) when it sent one.
pub async fn embed_with_retries(
    conn: &mut Connection,
    body: Bytes,
    clock: &Clock,
    retries: u32,
    backoff: Duration,
) -> (EmbeddingsRecord, u64, u32) {
    let mut first_send = None;
    let mut attempt = 0;
    loop {
        let record = conn.embeddings(body.clone(), clock).await;
        let first = *first_send.get_or_insert(record.timing.send_ns);
        match &record.error {
            Some(e) if retryable(e) && attempt < retries => {
                let wait = match e {
                    ClientError::Status {
                        retry_after: Some(s),
                        ..
                    } => Duration::from_secs_f64(*s).min(MAX_RETRY_AFTER),
                    _ => backoff * 2u32.pow(attempt),
                };
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            _ => return (record, first, attempt),
        }
    }
}

/// Checks a successful response: one vector per input, none empty, all of the benchmark's
/// dimension (learned from the first success). A failed check makes the request a failure.
fn check_vectors(outcome: &mut EmbedOutcome, expected_dim: &mut Option<usize>) {
    let r = &mut outcome.record;
    if r.error.is_some() {
        return;
    }
    let problem = if r.per_token {
        Some("the server returned one vector per token, not one per input: it does not pool embeddings (start it with mean pooling)".to_string())
    } else if r.dimensions.len() != outcome.inputs {
        Some(format!(
            "expected {} embeddings, got {}",
            outcome.inputs,
            r.dimensions.len()
        ))
    } else if r.dimensions.contains(&0) {
        Some("the server returned an empty vector".to_string())
    } else {
        let dim = *expected_dim.get_or_insert(r.dimensions[0]);
        r.dimensions.iter().find(|&&d| d != dim).map(|d| {
            format!("a vector has {d} values, expected {dim} (the dimension of the first response)")
        })
    };
    if let Some(p) = problem {
        r.error = Some(ClientError::BadResponse(p));
    }
}

/// An embedding benchmark ready to run.
pub struct EmbedBenchmark {
    config: EmbedConfig,
    pool: ConnectionPool,
    clock: Clock,
    dimension: Option<usize>,
    shutdown: Shutdown,
    interrupted: bool,
}

impl EmbedBenchmark {
    pub fn new(config: EmbedConfig, client: Client) -> Self {
        Self {
            config,
            pool: ConnectionPool::new(client),
            clock: Clock::start(),
            dimension: None,
            shutdown: Shutdown::default(),
            interrupted: false,
        }
    }

    /// Stops the benchmark when `shutdown` says so (see [`Shutdown`]).
    pub fn set_shutdown(&mut self, shutdown: Shutdown) {
        self.shutdown = shutdown;
    }

    /// Whether the last [`EmbedBenchmark::run`] was cut short by the shutdown.
    pub fn interrupted(&self) -> bool {
        self.interrupted
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    fn metadata(&self) -> EmbedMetadata {
        let c = &self.config;
        let mut extra = Map::new();
        extra.insert(
            "tool".into(),
            json!(format!("tokenomics {}", env!("CARGO_PKG_VERSION"))),
        );
        extra.insert("inputs_per_request".into(), json!(c.inputs_per_request));
        extra.insert("retries".into(), json!(c.retries));
        extra.insert("timeout_seconds".into(), json!(c.timeout_seconds));
        extra.insert("embedding_dim".into(), json!(self.dimension));
        for (k, v) in &c.extra_metadata {
            extra.insert(k.clone(), v.clone());
        }
        EmbedMetadata {
            timestamp: crate::timestamp(),
            model: c.model.clone(),
            api_base: c.api_base.clone(),
            batch_sizes: c.batch_sizes.clone(),
            sequence_lengths: c
                .sequence_lengths
                .iter()
                .map(|l| match l {
                    TextLength::Words(n) => json!(n),
                    other => json!(other.label()),
                })
                .collect(),
            num_runs: c.num_runs,
            warmup_runs: c.warmup_runs,
            concurrent_requests: true,
            seed: c.seed,
            description: c.description.clone(),
            extra,
        }
    }

    fn body(&self, texts: Vec<String>) -> Bytes {
        EmbeddingsRequest {
            model: self.config.model.clone(),
            input: texts,
        }
        .body()
    }

    /// Runs every configuration and returns the document (also written after each one when
    /// `results_file` is set).
    pub async fn run(&mut self, observer: &mut dyn Observer) -> Result<EmbedDocument> {
        let mut doc = EmbedDocument {
            metadata: self.metadata(),
            results: IndexMap::new(),
        };
        let lengths = self.config.sequence_lengths.clone();
        for &batch in &self.config.batch_sizes.clone() {
            for (li, &length) in lengths.iter().enumerate() {
                if self.shutdown.is_stopping() {
                    break;
                }
                let key = format!("batch_{batch}_seq_{}", length.label());
                self.warm_up(length, observer).await;
                let (mut level, complete) = self
                    .run_config(&key, batch, li as u64, length, observer)
                    .await;
                if !complete {
                    self.interrupted = true;
                    crate::mark_incomplete(&mut doc.metadata.extra, Some(&mut level.extra));
                }
                if level
                    .requests
                    .as_ref()
                    .is_some_and(|c| c.succeeded + c.failed > 0)
                {
                    observer.embed_level_finished(&key, &level);
                    doc.results.insert(key, level);
                }
                doc.metadata
                    .extra
                    .insert("embedding_dim".into(), json!(self.dimension));
                if let Some(path) = &self.config.results_file {
                    write_json_atomic(path, &doc)?;
                    observer.saved(path);
                }
            }
        }
        if self.shutdown.is_stopping() && !self.interrupted {
            self.interrupted = true;
            crate::mark_incomplete(&mut doc.metadata.extra, None);
            if let Some(path) = &self.config.results_file {
                write_json_atomic(path, &doc)?;
            }
        }
        Ok(doc)
    }

    async fn warm_up(&mut self, length: TextLength, observer: &mut dyn Observer) {
        let mut gen = TextGenerator::new(run_seed(self.config.seed, u64::MAX, 0));
        for _ in 0..self.config.warmup_runs {
            let body = self.body(vec![gen.text(length)]);
            let clock = self.clock;
            let conn = self.pool.first();
            match self.shutdown.run(conn.embeddings(body, &clock)).await {
                Some(record) => {
                    if let Some(e) = &record.error {
                        observer.warmup_failed("", e);
                    }
                }
                None => {
                    conn.reset();
                    return;
                }
            }
        }
    }

    async fn run_config(
        &mut self,
        key: &str,
        batch: u64,
        length_index: u64,
        length: TextLength,
        observer: &mut dyn Observer,
    ) -> (EmbedLevel, bool) {
        let per = self.config.inputs_per_request.max(1) as usize;
        let mut counts = RequestCounts::default();
        let mut token_sources: IndexMap<&'static str, u64> = IndexMap::new();
        let mut per_run = PerRun::default();
        let (mut req_eps, mut req_tps, mut latencies) = (Vec::new(), Vec::new(), Vec::new());
        let mut complete = true;
        for run in 0..self.config.num_runs as usize {
            if self.shutdown.is_stopping() {
                complete = false;
                break;
            }
            let seed = run_seed(
                self.config.seed ^ length_index.wrapping_mul(0x2545_F491_4F6C_DD1D),
                batch,
                run as u64,
            );
            let mut gen = TextGenerator::new(seed);
            let requests: Vec<(Bytes, usize)> = (0..batch)
                .map(|_| {
                    let texts: Vec<String> = (0..per).map(|_| gen.text(length)).collect();
                    let words = texts.iter().map(|t| t.split_whitespace().count()).sum();
                    (self.body(texts), words)
                })
                .collect();
            let (clock, retries, backoff) = (self.clock, self.config.retries, self.config.backoff);
            let shutdown = self.shutdown.clone();
            let mut outcomes = self
                .pool
                .burst(
                    requests,
                    move |mut conn: Connection, (body, words): (Bytes, usize)| {
                        let shutdown = shutdown.clone();
                        async move {
                            let sent = shutdown
                                .run(embed_with_retries(
                                    &mut conn, body, &clock, retries, backoff,
                                ))
                                .await;
                            let (record, first_send_ns, retries) = sent.unwrap_or_else(|| {
                                conn.reset();
                                let record = EmbeddingsRecord {
                                    error: Some(ClientError::Interrupted),
                                    ..EmbeddingsRecord::default()
                                };
                                (record, 0, 0)
                            });
                            (
                                conn,
                                EmbedOutcome {
                                    record,
                                    first_send_ns,
                                    retries,
                                    inputs: per,
                                    words,
                                },
                            )
                        }
                    },
                    |message| EmbedOutcome {
                        record: EmbeddingsRecord {
                            error: Some(ClientError::Io(message)),
                            ..EmbeddingsRecord::default()
                        },
                        first_send_ns: 0,
                        retries: 0,
                        inputs: per,
                        words: 0,
                    },
                )
                .await;
            let (mut tokens, mut embeddings, mut run_retries) = (0u64, 0u64, 0u64);
            for o in &mut outcomes {
                check_vectors(o, &mut self.dimension);
                counts.retries += u64::from(o.retries);
                run_retries += u64::from(o.retries);
                match &o.record.error {
                    Some(e) => {
                        observer.request_failed(&batch.to_string(), run, e);
                        counts.record_failure(e.kind(), || e.to_string());
                    }
                    None => {
                        counts.record_success();
                        let (t, source) = match o.record.prompt_tokens {
                            Some(t) => (t, "usage"),
                            None => (
                                (o.words as f64 * ESTIMATED_TOKENS_PER_WORD).round() as u64,
                                "estimate",
                            ),
                        };
                        *token_sources.entry(source).or_default() += 1;
                        let n = o.record.dimensions.len() as u64;
                        tokens += t;
                        embeddings += n;
                        let latency = o.latency_s();
                        latencies.push(latency);
                        req_eps.push(rate(n as f64, latency));
                        req_tps.push(rate(t as f64, latency));
                    }
                }
            }
            if outcomes
                .iter()
                .any(|o| matches!(o.record.error, Some(ClientError::Interrupted)))
            {
                complete = false;
            }
            // Requests abandoned by an interruption have no end and take no part in the timing.
            let spans: Vec<(u64, u64, bool)> = outcomes
                .iter()
                .filter(|o| o.record.timing.end_ns.is_some())
                .map(|o| (o.first_send_ns, o.end_ns(), o.record.error.is_none()))
                .collect();
            let timing = burst_timing(spans.iter().copied());
            let ok = outcomes.iter().filter(|o| o.record.error.is_none()).count();
            let report = EmbedRunReport {
                key: key.to_string(),
                run,
                num_runs: self.config.num_runs as usize,
                succeeded: ok,
                failed: outcomes.len() - ok,
                retries: run_retries,
                tokens,
                embeddings,
                batch_seconds: timing.map_or(f64::NAN, |t| t.total_seconds),
                batch_embeddings_per_second: timing
                    .map_or(f64::NAN, |t| rate(embeddings as f64, t.total_seconds)),
                batch_tokens_per_second: timing
                    .map_or(f64::NAN, |t| rate(tokens as f64, t.total_seconds)),
            };
            if let Some(t) = timing {
                per_run.push(t, tokens, embeddings, &report);
            }
            observer.embed_run_finished(&report);
        }
        let stat = |v: &[f64]| Summary::new(v.iter().copied()).stat();
        let mut tokens_extra = Map::new();
        tokens_extra.insert("token_source".into(), json!(token_sources));
        let level = EmbedLevel {
            tokens: EmbedTokens {
                total_per_batch: stat(&per_run.tokens),
                embeddings_per_batch: stat(&per_run.embeddings),
                extra: tokens_extra,
            },
            timings: ChatTimings {
                batch_total_seconds: stat(&per_run.total),
                fastest_seconds: stat(&per_run.fastest),
                slowest_seconds: stat(&per_run.slowest),
                spread_seconds: stat(&per_run.spread),
                extra: Map::new(),
            },
            throughput: EmbedThroughput {
                batch_embeddings_per_second: stat(&per_run.eps),
                batch_tokens_per_second: stat(&per_run.tps),
                request_embeddings_per_second: stat(&req_eps),
                request_tokens_per_second: stat(&req_tps),
                extra: Map::new(),
            },
            latency: Some(Summary::new(latencies).distribution()),
            requests: Some(counts),
            extra: Map::new(),
        };
        (level, complete)
    }
}

/// Per-run scalars of one configuration.
#[derive(Default)]
struct PerRun {
    tokens: Vec<f64>,
    embeddings: Vec<f64>,
    total: Vec<f64>,
    fastest: Vec<f64>,
    slowest: Vec<f64>,
    spread: Vec<f64>,
    eps: Vec<f64>,
    tps: Vec<f64>,
}

impl PerRun {
    fn push(
        &mut self,
        t: crate::metrics::BurstTiming,
        tokens: u64,
        embeddings: u64,
        r: &EmbedRunReport,
    ) {
        self.tokens.push(tokens as f64);
        self.embeddings.push(embeddings as f64);
        self.total.push(t.total_seconds);
        self.fastest.push(t.fastest_seconds);
        self.slowest.push(t.slowest_seconds);
        self.spread.push(t.spread_seconds);
        self.eps.push(r.batch_embeddings_per_second);
        self.tps.push(r.batch_tokens_per_second);
    }
}
