//! The embedding benchmark of the original `embedding_benchmark.py`: for every (batch size ×
//! sequence length) configuration, warm-up requests, then runs that each send B separate requests
//! at once (one text each, or `inputs_per_request` texts), with retries.
//!
//! Beyond the original, a level may be a closed or an open loop ([`crate::load`]) instead of a
//! burst: run once per sequence length by the shared executor of [`crate::sustained`], each
//! request carrying `inputs_per_request` texts (see the `loops` module).

mod loops;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use indexmap::IndexMap;
use serde_json::{json, Map};
use tokenomics_client::{
    Client, Clock, Connection, EmbeddingsRecord, EmbeddingsRequest, Error as ClientError,
};
use tokenomics_datasets::exact::{ExactPrompts, Lengths, TokenLength};
use tokenomics_datasets::run_seed;
use tokenomics_datasets::text::{TextGenerator, TextLength};
use tokenomics_stats::{
    ArrivalBlock, ChatTimings, EmbedDocument, EmbedEndpointLevel, EmbedInputTokens, EmbedLevel,
    EmbedMetadata, EmbedThroughput, EmbedTokens, Mode, Preflight, RequestCounts, Simulated, Stat,
    Summary, TemplateTokens,
};

use crate::client_load::LoadWatch;
use crate::driver::{run_levels, FixedLevels, Settings, Workload};
use crate::load::{format_rate, Limits, Shape};
use crate::metrics::{burst_timing, rate, BurstTiming};
use crate::pool::ConnectionPool;
use crate::shutdown::Shutdown;
use crate::sustained::Record;
use crate::{Observer, Result};

/// Tokens per word of the estimate used when a server reports no usage (the original's factor).
pub const ESTIMATED_TOKENS_PER_WORD: f64 = 1.3;

/// Everything that defines an embedding benchmark.
#[derive(Debug, Clone)]
pub struct EmbedConfig {
    /// The model named in every request.
    pub model: String,
    /// The server's base URL (`…/v1`), recorded in the metadata.
    pub api_base: String,
    /// Burst sizes (used when `levels` is empty).
    pub batch_sizes: Vec<u64>,
    /// Closed- and open-loop levels ([`crate::plan::LoadFlags::plan`]); empty: bursts of
    /// `batch_sizes`. Each runs once per sequence length.
    pub levels: Vec<Shape>,
    /// When a closed- or open-loop level stops, and its warm-up.
    pub limits: Limits,
    /// Word lengths of the generated texts (`--sequence_lengths`), one configuration each per
    /// level.
    pub sequence_lengths: Vec<TextLength>,
    /// Texts of exact token lengths instead of `sequence_lengths` (`--input_tokens`).
    pub input_tokens: Option<InputTokens>,
    /// Measured runs per configuration.
    pub num_runs: u64,
    /// Warm-up requests before each configuration, not recorded.
    pub warmup_runs: u64,
    /// Seeds the generated texts (with the level, the length and the run) and open-loop
    /// arrivals: the same seed sends the same texts.
    pub seed: u64,
    /// Free text recorded in the metadata (`--description`).
    pub description: String,
    /// Written after every configuration when set.
    pub results_file: Option<PathBuf>,
    /// Texts per request (1: the original's one text per request).
    pub inputs_per_request: u64,
    /// Retries of a failed request (the original: 3), with exponential backoff from `backoff`.
    pub retries: u32,
    /// The first retry's wait when the server sent no `Retry-After`; each later one doubles it
    /// (at most [`MAX_RETRY_AFTER`]).
    pub backoff: Duration,
    /// Request timeout, seconds (recorded in the metadata).
    pub timeout_seconds: f64,
    /// The simulator preset that served the run, when it was simulated.
    pub simulated: Option<Simulated>,
    /// The server's certificate was not checked (`--insecure`): recorded in the metadata.
    pub insecure_tls: bool,
    /// What the check before the run found ([`crate::preflight::check`]), recorded in the
    /// metadata.
    pub preflight: Option<Preflight>,
    /// Confidence intervals at this level (e.g. 0.95): batch figures over runs, the request
    /// latency's mean and percentiles (`None`: none).
    pub confidence: Option<f64>,
}

/// Texts of exact token lengths (`--input_tokens`): each length a configuration of its own, in
/// place of the word lengths.
#[derive(Clone)]
pub struct InputTokens {
    /// Tokens per text, each at least 1.
    pub lengths: Vec<u64>,
    /// How they are counted: word costs measured by a tokenizer, or the estimate
    /// ([`crate::prompts::PromptFlags::prepare`] finds which).
    pub counting: Lengths,
    /// The special tokens the server adds around a text, when its tokenize endpoint showed them.
    pub special_tokens: Option<TemplateTokens>,
}

impl std::fmt::Debug for InputTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputTokens")
            .field("lengths", &self.lengths)
            .field("source", &self.prompts(1).token_count_source())
            .field("special_tokens", &self.special_tokens)
            .finish()
    }
}

impl InputTokens {
    /// Texts of `tokens` tokens each, counted as `counting` says.
    fn prompts(&self, tokens: u64) -> ExactPrompts {
        ExactPrompts {
            length: TokenLength::Fixed(tokens),
            lengths: self.counting.clone(),
        }
    }

    /// What the metadata records.
    fn block(&self) -> EmbedInputTokens {
        let prompts = self.prompts(1);
        EmbedInputTokens {
            lengths: self.lengths.clone(),
            token_count_source: prompts.token_count_source().to_string(),
            tokenizer: match &self.counting {
                Lengths::Exact { detail, .. } => Some(detail.clone()),
                Lengths::Estimate => None,
            },
            special_tokens: self.special_tokens,
            extra: Map::new(),
        }
    }
}

/// The length of one configuration's texts: a word length (`--sequence_lengths`) or an exact
/// token count (`--input_tokens`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedLength {
    /// Generated texts of a word length (`--sequence_lengths`).
    Words(TextLength),
    /// Texts of exactly this many tokens (`--input_tokens`).
    Tokens(u64),
}

impl EmbedLength {
    /// The part of a configuration's key after its level: `seq_{label}` or `tok_{N}`.
    pub fn key(&self) -> String {
        match self {
            Self::Words(l) => format!("seq_{}", l.label()),
            Self::Tokens(n) => format!("tok_{n}"),
        }
    }
}

/// Draws the texts of one length: seeded, the same seed giving the same texts.
#[derive(Clone)]
pub(crate) enum TextSource {
    Words(TextLength),
    Tokens(ExactPrompts),
}

impl TextSource {
    /// `n` texts from `seed`.
    pub(crate) fn draw(&self, n: usize, seed: u64) -> Vec<String> {
        match self {
            Self::Words(length) => {
                let mut gen = TextGenerator::new(seed);
                (0..n).map(|_| gen.text(*length)).collect()
            }
            Self::Tokens(prompts) => match prompts.draw_with_lengths(n, seed) {
                Ok(v) => v.into_iter().map(|(t, _)| t).collect(),
                // The counting was checked when it was set up: should a text still fail its
                // check, it is estimated rather than failing a run half-way (as oai-bench's).
                Err(_) => ExactPrompts {
                    length: prompts.length,
                    lengths: Lengths::Estimate,
                }
                .draw_with_lengths(n, seed)
                .unwrap_or_default()
                .into_iter()
                .map(|(t, _)| t)
                .collect(),
            },
        }
    }
}

impl EmbedConfig {
    /// The text lengths, one configuration each per level: `input_tokens`' lengths when given,
    /// else `sequence_lengths`.
    pub fn lengths(&self) -> Vec<EmbedLength> {
        match &self.input_tokens {
            Some(t) => t.lengths.iter().map(|&n| EmbedLength::Tokens(n)).collect(),
            None => self
                .sequence_lengths
                .iter()
                .map(|&l| EmbedLength::Words(l))
                .collect(),
        }
    }

    /// The texts of `length`.
    pub(crate) fn texts(&self, length: EmbedLength) -> TextSource {
        match (length, &self.input_tokens) {
            (EmbedLength::Tokens(n), Some(t)) => TextSource::Tokens(t.prompts(n)),
            (EmbedLength::Tokens(n), None) => TextSource::Tokens(ExactPrompts {
                length: TokenLength::Fixed(n),
                lengths: Lengths::Estimate,
            }),
            (EmbedLength::Words(l), _) => TextSource::Words(l),
        }
    }

    /// The load levels: `levels`, or one burst per batch size.
    pub fn shapes(&self) -> Vec<Shape> {
        if self.levels.is_empty() {
            self.batch_sizes
                .iter()
                .map(|&batch| Shape::Burst { batch })
                .collect()
        } else {
            self.levels.clone()
        }
    }

    /// The limits of a closed- or open-loop level: `limits`, or — when neither a request count
    /// nor a duration is given — 10 measured requests per unit of the level (per slot of a
    /// closed loop, per request/s of an open one), at least 20: `oai-bench`'s rule.
    pub fn limits_for(&self, shape: &Shape) -> Limits {
        self.limits.or_default_count(shape)
    }

    /// How the levels load the server, in words: "batch sizes [1, 8]", "closed loop at
    /// concurrency 4, 16", "open loop at 50 requests/s (constant arrivals, at most 8 in flight)".
    pub fn load_words(&self) -> String {
        let shapes = self.shapes();
        let keys = || {
            shapes
                .iter()
                .map(|s| match s {
                    Shape::Open(o) => format_rate(o.rate),
                    other => other.key(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        match shapes.first() {
            Some(Shape::Closed { .. }) => format!("closed loop at concurrency {}", keys()),
            Some(Shape::Open(o)) => format!(
                "open loop at {} requests/s ({} arrivals{})",
                keys(),
                o.arrival.name(),
                o.max_concurrency
                    .map(|c| format!(", at most {c} in flight"))
                    .unwrap_or_default()
            ),
            _ => format!("batch sizes {:?}", self.batch_sizes),
        }
    }
}

/// What one run of a configuration produced, for progress display.
#[derive(Debug, Clone)]
pub struct EmbedRunReport {
    /// The configuration's key in `results` ([`EmbedSpec::key`]).
    pub key: String,
    /// 0-based run index.
    pub run: usize,
    /// How many runs the configuration has in all.
    pub num_runs: usize,
    /// Requests of the run that succeeded (after their retries).
    pub succeeded: usize,
    /// Requests of the run that failed after their last retry.
    pub failed: usize,
    /// Retries sent during the run, over all its requests.
    pub retries: u64,
    /// Input tokens of the successful requests: the server's usage count, or the words ×
    /// [`ESTIMATED_TOKENS_PER_WORD`] when it reported none.
    pub tokens: u64,
    /// Embedding vectors received by the successful requests.
    pub embeddings: u64,
    /// Seconds from the run's first send to its last end, on the benchmark's monotonic clock
    /// (NaN when no request ended).
    pub batch_seconds: f64,
    /// `embeddings` over `batch_seconds`.
    pub batch_embeddings_per_second: f64,
    /// `tokens` over `batch_seconds`.
    pub batch_tokens_per_second: f64,
    /// A closed or open loop's successful requests per second over the run (`None`: a burst).
    pub requests_per_second: Option<f64>,
}

/// One request's outcome after its retries.
#[derive(Debug, Clone)]
pub struct EmbedOutcome {
    /// The last attempt.
    pub record: EmbeddingsRecord,
    /// Send of the first attempt (backoff and retries count in the request's latency).
    pub first_send_ns: u64,
    /// Attempts after the first.
    pub retries: u32,
    /// Texts the request carried.
    pub inputs: usize,
    /// Words of the request's texts (for the estimate when the server reports no usage).
    pub words: usize,
}

impl EmbedOutcome {
    /// The end of the last attempt, ns on the benchmark's monotonic clock (the first send when
    /// it never ended).
    pub fn end_ns(&self) -> u64 {
        self.record.timing.end_ns.unwrap_or(self.first_send_ns)
    }
    /// Seconds from the first attempt's send to the last attempt's end, retries and their
    /// waits included.
    pub fn latency_s(&self) -> f64 {
        (self.end_ns() - self.first_send_ns) as f64 / 1e9
    }
}

/// What the closed and open loops need of an embedding request's outcome.
impl Record for EmbedOutcome {
    fn interrupted(send_ns: u64) -> Self {
        let mut record = EmbeddingsRecord {
            error: Some(ClientError::Interrupted),
            ..EmbeddingsRecord::default()
        };
        record.timing.send_ns = send_ns;
        EmbedOutcome {
            record,
            first_send_ns: send_ns,
            retries: 0,
            inputs: 0,
            words: 0,
        }
    }
    fn error(&self) -> Option<&ClientError> {
        self.record.error.as_ref()
    }
    /// The input tokens the server counted.
    fn progress_tokens(&self) -> u64 {
        self.record.prompt_tokens.unwrap_or(0)
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

/// The longest `Retry-After` a retry waits for, and the longest backoff.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How long to wait before retry `attempt` (0-based): the server's `Retry-After` when it sent
/// one, else `backoff × 2^attempt`; never longer than [`MAX_RETRY_AFTER`], whatever the numbers
/// (a server may send any `Retry-After`, a user may ask for many retries).
pub fn retry_wait(error: &ClientError, attempt: u32, backoff: Duration) -> Duration {
    match error {
        ClientError::Status {
            retry_after: Some(s),
            ..
        } => Duration::try_from_secs_f64(*s)
            .unwrap_or(MAX_RETRY_AFTER)
            .min(MAX_RETRY_AFTER),
        _ => backoff
            .checked_mul(2u32.saturating_pow(attempt))
            .unwrap_or(MAX_RETRY_AFTER)
            .min(MAX_RETRY_AFTER),
    }
}

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
                tokio::time::sleep(retry_wait(e, attempt, backoff)).await;
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
    /// The client's own load since the level's start (its `client_load` block).
    load_watch: Option<LoadWatch>,
}

impl EmbedBenchmark {
    /// A benchmark of `config` that sends through `client`. Its monotonic clock starts here:
    /// every time in its records counts from this call.
    pub fn new(config: EmbedConfig, client: Client) -> Self {
        Self {
            config,
            pool: ConnectionPool::new(client),
            clock: Clock::start(),
            dimension: None,
            shutdown: Shutdown::default(),
            interrupted: false,
            load_watch: None,
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

    /// The monotonic clock every request of the benchmark is timed on (started by
    /// [`EmbedBenchmark::new`]).
    pub fn clock(&self) -> Clock {
        self.clock
    }

    fn metadata(&self) -> EmbedMetadata {
        let c = &self.config;
        let shapes = c.shapes();
        let mode = shapes.first().map_or(Mode::Burst, Shape::mode);
        let sustained = mode != Mode::Burst;
        EmbedMetadata {
            timestamp: crate::timestamp(),
            model: c.model.clone(),
            api_base: c.api_base.clone(),
            // As `oai-bench` writes them: burst sizes or closed-loop concurrencies (open-loop
            // rates are in `levels` only).
            batch_sizes: shapes
                .iter()
                .filter_map(|s| match s {
                    Shape::Burst { batch } => Some(*batch),
                    Shape::Closed { concurrency } => Some(*concurrency),
                    Shape::Open(_) => None,
                })
                .collect(),
            // Token lengths as their keys name them (`tok_64`): a number here means words.
            sequence_lengths: c
                .lengths()
                .iter()
                .map(|l| match l {
                    EmbedLength::Words(TextLength::Words(n)) => json!(n),
                    EmbedLength::Words(other) => json!(other.label()),
                    EmbedLength::Tokens(_) => json!(l.key()),
                })
                .collect(),
            num_runs: c.num_runs,
            warmup_runs: c.warmup_runs,
            concurrent_requests: true,
            seed: c.seed,
            description: c.description.clone(),
            tool: Some(crate::tool()),
            inputs_per_request: Some(c.inputs_per_request),
            retries: Some(c.retries),
            timeout_seconds: Some(c.timeout_seconds),
            embedding_dim: Some(self.dimension.map(|d| d as u64)),
            simulated: c.simulated.clone(),
            preflight: c.preflight.clone(),
            insecure_tls: c.insecure_tls,
            balance: {
                let client = self.pool.client();
                (client.api_bases().len() > 1).then(|| client.config().balance.name().to_string())
            },
            // Bursts write none of these, so that their files stay the original's.
            mode: sustained.then_some(mode),
            levels: sustained.then(|| shapes.iter().map(Shape::key).collect()),
            limits: sustained.then(|| c.limits.block()),
            arrival: match shapes.first() {
                Some(Shape::Open(o)) => Some(ArrivalBlock {
                    process: o.arrival,
                    burstiness: o.burstiness,
                    max_concurrency: o.max_concurrency,
                }),
                _ => None,
            },
            incomplete: false,
            input_tokens: c.input_tokens.as_ref().map(InputTokens::block),
            extra: Map::new(),
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
        let c = &self.config;
        let specs: Vec<EmbedSpec> = c
            .shapes()
            .into_iter()
            .flat_map(|shape| {
                c.lengths()
                    .into_iter()
                    .enumerate()
                    .map(move |(li, length)| EmbedSpec {
                        shape,
                        length_index: li as u64,
                        length,
                    })
            })
            .collect();
        let (shutdown, results_file, num_runs) =
            (self.shutdown.clone(), c.results_file.clone(), c.num_runs);
        self.interrupted = run_levels(
            self,
            &mut FixedLevels(specs.into_iter()),
            &mut doc,
            Settings {
                num_runs,
                shutdown: &shutdown,
                results_file: results_file.as_deref(),
                snapshot_every: None,
            },
            observer,
        )
        .await?;
        Ok(doc)
    }

    /// The seed of a run's texts: the level's, the length's place and the run's.
    fn run_seed(&self, spec: &EmbedSpec, run: usize) -> u64 {
        run_seed(
            self.config.seed ^ spec.length_index.wrapping_mul(0x2545_F491_4F6C_DD1D),
            spec.shape.seed_level(),
            run as u64,
        )
    }

    /// The requests of one run: `batch` bodies of `inputs_per_request` texts each, with their
    /// word counts (for the estimate when the server reports no usage).
    fn run_requests(&self, spec: &EmbedSpec, batch: u64, run: usize) -> Vec<(Bytes, usize)> {
        let per = self.config.inputs_per_request.max(1) as usize;
        let mut texts = self
            .config
            .texts(spec.length)
            .draw(batch as usize * per, self.run_seed(spec, run))
            .into_iter();
        (0..batch)
            .map(|_| {
                let texts: Vec<String> = texts.by_ref().take(per).collect();
                let words = texts.iter().map(|t| t.split_whitespace().count()).sum();
                (self.body(texts), words)
            })
            .collect()
    }

    /// Sends one run's requests at once, each with its retries.
    async fn burst(&mut self, requests: Vec<(Bytes, usize)>) -> Vec<EmbedOutcome> {
        let per = self.config.inputs_per_request.max(1) as usize;
        let (clock, retries, backoff) = (self.clock, self.config.retries, self.config.backoff);
        let shutdown = self.shutdown.clone();
        self.pool
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
            .await
    }

    /// One burst run: `batch` requests at once, each with its retries.
    async fn burst_run(
        &mut self,
        spec: &EmbedSpec,
        batch: u64,
        run: usize,
        acc: &mut EmbedAccumulator,
        observer: &mut dyn Observer,
    ) -> bool {
        let requests = self.run_requests(spec, batch, run);
        let mut outcomes = self.burst(requests).await;
        for o in &mut outcomes {
            check_vectors(o, &mut self.dimension);
            if let Some(e) = &o.record.error {
                observer.request_failed(&batch.to_string(), run, e);
            }
        }
        let complete = !outcomes
            .iter()
            .any(|o| matches!(o.record.error, Some(ClientError::Interrupted)));
        let mut report = acc.add_run(&outcomes);
        for (i, (_, each)) in acc.endpoints.iter_mut().enumerate() {
            let theirs: Vec<EmbedOutcome> = outcomes
                .iter()
                .filter(|o| o.record.replica == i)
                .cloned()
                .collect();
            each.add_run(&theirs);
        }
        report.key = spec.key();
        report.run = run;
        report.num_runs = self.config.num_runs as usize;
        observer.embed_run_finished(&report);
        complete
    }
}

/// One embedding configuration: a load level (B concurrent requests, a closed or an open loop)
/// of texts of one length.
#[derive(Debug, Clone, Copy)]
pub struct EmbedSpec {
    /// The load level: a burst, a closed or an open loop.
    pub shape: Shape,
    /// The length's position in `sequence_lengths` (it seeds the texts).
    pub length_index: u64,
    /// The length of the configuration's texts.
    pub length: EmbedLength,
}

impl EmbedSpec {
    /// The configuration's key in `results`: `batch_{B}_seq_{L}` (a burst, the original's),
    /// `concurrency_{C}_seq_{L}` (a closed loop) or `rate_{R}_seq_{L}` (an open loop); with
    /// token lengths `tok_{N}` in place of `seq_{L}` (`batch_8_tok_512`).
    pub fn key(&self) -> String {
        let level = match self.shape {
            Shape::Burst { batch } => format!("batch_{batch}"),
            Shape::Closed { concurrency } => format!("concurrency_{concurrency}"),
            Shape::Open(o) => format!("rate_{}", format_rate(o.rate)),
        };
        format!("{level}_{}", self.length.key())
    }
}

/// The runs of one configuration so far: a burst's, or a closed or open loop's.
// One per level, built once: the size difference of its variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum EmbedRuns {
    Bursts { batch: u64, acc: EmbedAccumulator },
    Loop(loops::LoopAccumulator),
}

/// The runs of one configuration so far.
#[derive(Default)]
pub struct EmbedAccumulator {
    counts: RequestCounts,
    token_sources: IndexMap<String, u64>,
    per_run: PerRun,
    request_eps: Vec<f64>,
    request_tps: Vec<f64>,
    latencies: Vec<f64>,
    /// With several endpoints: each one's base URL and its own accumulator, fed with the
    /// requests sent to it.
    endpoints: Vec<(String, EmbedAccumulator)>,
}

impl EmbedAccumulator {
    /// An empty level; with two or more `api_bases`, one for each endpoint too.
    fn new(api_bases: &[&str]) -> Self {
        let empty = || {
            let mut acc = EmbedAccumulator::default();
            // Written even when none was needed: "0 retries" is a finding.
            acc.counts.retries = Some(0);
            acc
        };
        let mut acc = empty();
        if api_bases.len() > 1 {
            acc.endpoints = api_bases.iter().map(|b| (b.to_string(), empty())).collect();
        }
        acc
    }

    /// Adds one run's outcomes (checked already); the run's figures, for its report (whose
    /// place, `key`, `run` and `num_runs`, the caller fills in).
    fn add_run(&mut self, outcomes: &[EmbedOutcome]) -> EmbedRunReport {
        let (mut tokens, mut embeddings, mut run_retries) = (0u64, 0u64, 0u64);
        for o in outcomes {
            let retries = self.counts.retries.unwrap_or(0);
            self.counts.retries = Some(retries.saturating_add(u64::from(o.retries)));
            run_retries += u64::from(o.retries);
            match &o.record.error {
                Some(e) => self.counts.record_failure(e.kind(), || e.to_string()),
                None => {
                    self.counts.record_success();
                    let (t, source) = match o.record.prompt_tokens {
                        Some(t) => (t, "usage"),
                        None => (
                            (o.words as f64 * ESTIMATED_TOKENS_PER_WORD).round() as u64,
                            "estimate",
                        ),
                    };
                    *self.token_sources.entry(source.to_string()).or_default() += 1;
                    let n = o.record.dimensions.len() as u64;
                    // Saturating: a server's usage counts are not trusted to stay small.
                    tokens = tokens.saturating_add(t);
                    embeddings += n;
                    let latency = o.latency_s();
                    self.latencies.push(latency);
                    self.request_eps.push(rate(n as f64, latency));
                    self.request_tps.push(rate(t as f64, latency));
                }
            }
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
            key: String::new(),
            run: 0,
            num_runs: 0,
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
            requests_per_second: None,
        };
        if let Some(t) = timing {
            self.per_run.push(t, tokens, embeddings, ok as u64);
        }
        report
    }

    /// The level's typed results (intervals at `confidence`), with each endpoint's part.
    fn level(self, confidence: Option<f64>) -> EmbedLevel {
        let stat = |v: &[f64]| Summary::new(v.iter().copied()).stat();
        let endpoints = (!self.endpoints.is_empty()).then(|| {
            self.endpoints
                .into_iter()
                .map(|(api_base, acc)| {
                    let level = acc.level(confidence);
                    EmbedEndpointLevel {
                        api_base,
                        requests: level.requests.unwrap_or_default(),
                        tokens: level.tokens,
                        throughput: level.throughput,
                        latency: level.latency,
                        extra: Map::new(),
                    }
                })
                .collect()
        });
        let (tokens, timings, throughput) = self.per_run.blocks(
            confidence,
            self.token_sources,
            stat(&self.request_eps),
            stat(&self.request_tps),
        );
        EmbedLevel {
            tokens,
            timings,
            throughput,
            latency: Some({
                let s = Summary::new(self.latencies);
                match confidence {
                    Some(c) => s.distribution_ci(c),
                    None => s.distribution(),
                }
            }),
            requests: Some(self.counts),
            endpoints,
            load: None,
            percentiles: None,
            client_load: None,
            incomplete: false,
            extra: Map::new(),
        }
    }
}

impl Workload for EmbedBenchmark {
    type Spec = EmbedSpec;
    type Acc = EmbedRuns;
    type Level = EmbedLevel;
    type Doc = EmbedDocument;

    fn key(&self, spec: &EmbedSpec) -> String {
        spec.key()
    }

    async fn warm_up(&mut self, spec: &EmbedSpec, observer: &mut dyn Observer) {
        let texts = self.config.texts(spec.length).draw(
            self.config.warmup_runs as usize,
            run_seed(self.config.seed, u64::MAX, 0),
        );
        for text in texts {
            let body = self.body(vec![text]);
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

    fn begin(&mut self, spec: &EmbedSpec, _observer: &mut dyn Observer) -> EmbedRuns {
        self.load_watch = Some(LoadWatch::start());
        let api_bases = self.pool.client().api_bases();
        match spec.shape {
            Shape::Burst { batch } => EmbedRuns::Bursts {
                batch,
                acc: EmbedAccumulator::new(&api_bases),
            },
            shape => EmbedRuns::Loop(loops::LoopAccumulator::new(
                shape,
                self.config.limits_for(&shape),
                self.config.confidence,
                &api_bases,
            )),
        }
    }

    async fn run(
        &mut self,
        spec: &EmbedSpec,
        run: usize,
        acc: &mut EmbedRuns,
        observer: &mut dyn Observer,
        _checkpoint: &mut (dyn FnMut(&EmbedRuns) + Send),
    ) -> bool {
        match acc {
            EmbedRuns::Bursts { batch, acc } => {
                self.burst_run(spec, *batch, run, acc, observer).await
            }
            EmbedRuns::Loop(acc) => loops::run(self, spec, run, acc, observer).await,
        }
    }

    fn finish(&mut self, acc: EmbedRuns) -> EmbedLevel {
        let mut level = match acc {
            EmbedRuns::Bursts { acc, .. } => acc.level(self.config.confidence),
            EmbedRuns::Loop(acc) => acc.level(),
        };
        let simulated = self.config.simulated.is_some();
        level.client_load = self.load_watch.take().map(|w| w.block(simulated));
        level
    }

    fn level_finished(&mut self, key: &str, level: &EmbedLevel, observer: &mut dyn Observer) {
        observer.embed_level_finished(key, level);
    }

    fn annotate(&self, doc: &mut EmbedDocument) {
        doc.metadata.embedding_dim = Some(self.dimension.map(|d| d as u64));
    }
}

/// Per-run figures of one configuration, one value per run that had a success: a burst's, or a
/// closed or open loop's (whose runs are timed as a burst's, over their span).
#[derive(Debug, Clone, Default)]
pub(crate) struct PerRun {
    tokens: Vec<f64>,
    embeddings: Vec<f64>,
    total: Vec<f64>,
    fastest: Vec<f64>,
    slowest: Vec<f64>,
    spread: Vec<f64>,
    eps: Vec<f64>,
    tps: Vec<f64>,
    /// Successful requests per second of each run: closed and open loops only (`None`: bursts,
    /// whose documents have no such figure).
    rps: Option<Vec<f64>>,
}

impl PerRun {
    /// Per-run figures that include each run's successful requests per second.
    pub(crate) fn with_requests_per_second() -> Self {
        Self {
            rps: Some(Vec::new()),
            ..Self::default()
        }
    }

    /// Adds one run: its timing, its input tokens, embeddings and successful requests, and
    /// their rates over its total seconds.
    pub(crate) fn push(&mut self, t: BurstTiming, tokens: u64, embeddings: u64, ok: u64) {
        self.tokens.push(tokens as f64);
        self.embeddings.push(embeddings as f64);
        self.total.push(t.total_seconds);
        self.fastest.push(t.fastest_seconds);
        self.slowest.push(t.slowest_seconds);
        self.spread.push(t.spread_seconds);
        self.eps.push(rate(embeddings as f64, t.total_seconds));
        self.tps.push(rate(tokens as f64, t.total_seconds));
        if let Some(rps) = &mut self.rps {
            rps.push(rate(ok as f64, t.total_seconds));
        }
    }

    /// The level's `tokens`, `timings` and `throughput` blocks: each per-run figure as its mean
    /// over runs (with an interval at `confidence`), beside the per-request throughputs and
    /// the token sources, which are the caller's.
    pub(crate) fn blocks(
        &self,
        confidence: Option<f64>,
        token_source: IndexMap<String, u64>,
        request_embeddings_per_second: Stat,
        request_tokens_per_second: Stat,
    ) -> (EmbedTokens, ChatTimings, EmbedThroughput) {
        // The mean over runs gets its interval (two runs or more).
        let per_run = |v: &[f64]| {
            let s = Summary::new(v.iter().copied());
            match confidence {
                Some(c) => s.stat_ci(c),
                None => s.stat(),
            }
        };
        let tokens = EmbedTokens {
            total_per_batch: per_run(&self.tokens),
            embeddings_per_batch: per_run(&self.embeddings),
            token_source: Some(token_source),
            extra: Map::new(),
        };
        let timings = ChatTimings {
            batch_total_seconds: per_run(&self.total),
            fastest_seconds: per_run(&self.fastest),
            slowest_seconds: per_run(&self.slowest),
            spread_seconds: per_run(&self.spread),
            extra: Map::new(),
        };
        let throughput = EmbedThroughput {
            batch_embeddings_per_second: per_run(&self.eps),
            batch_tokens_per_second: per_run(&self.tps),
            request_embeddings_per_second,
            request_tokens_per_second,
            requests_per_second: self.rps.as_deref().map(per_run),
            extra: Map::new(),
        };
        (tokens, timings, throughput)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever `Retry-After` a server sends and however many retries a user asks for, the
        /// wait is computed without overflow and never exceeds the bound.
        #[test]
        fn retry_waits_are_bounded(
            retry_after in prop_oneof![any::<f64>(), Just(1e300), Just(f64::INFINITY), Just(-1.0)],
            attempt in any::<u32>(),
            backoff_ms in any::<u64>(),
        ) {
            let backoff = Duration::from_millis(backoff_ms);
            let limited = ClientError::Status { status: 429, body: String::new(), retry_after: Some(retry_after) };
            prop_assert!(retry_wait(&limited, attempt, backoff) <= MAX_RETRY_AFTER);
            let broken = ClientError::Io("reset".into());
            prop_assert!(retry_wait(&broken, attempt, backoff) <= MAX_RETRY_AFTER);
        }
    }

    #[test]
    fn backoff_doubles_and_retry_after_is_honoured() {
        let io = ClientError::Io("reset".into());
        let b = Duration::from_millis(250);
        assert_eq!(retry_wait(&io, 0, b), Duration::from_millis(250));
        assert_eq!(retry_wait(&io, 2, b), Duration::from_secs(1));
        assert_eq!(retry_wait(&io, 40, b), MAX_RETRY_AFTER);
        let limited = ClientError::Status {
            status: 429,
            body: String::new(),
            retry_after: Some(2.5),
        };
        assert_eq!(retry_wait(&limited, 7, b), Duration::from_millis(2500));
    }
}
