//! The chat benchmark: bursts as the original script ran them, and the sustained closed and open
//! loops of [`crate::load`].

use std::path::PathBuf;

use bytes::Bytes;
use indexmap::IndexMap;
use serde_json::{Map, Value};
use tokenomics_client::{ChatRequest, Client, Clock, Connection, Endpoint, Message, RequestRecord};
use tokenomics_datasets::{run_seed, Prompt, PromptSource};
use tokenomics_stats::{
    ArrivalBlock, ChatDocument, ChatLevel, ChatMetadata, Mode, Preflight, Simulated,
};

use std::sync::Arc;

use crate::driver::{run_levels, Settings, Workload};
use crate::load::{Limits, Shape};
use crate::metrics::{LevelAccumulator, RunSummary, Scheduled, Slo};
use crate::pool::ConnectionPool;
use crate::records::{Place, RequestsFile};
use crate::shutdown::Shutdown;
use crate::sustained::{self, BodyFeed, Progress, Sent, Sink};
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
    /// One JSON line per request when set: a burst's after it ends, a sustained run's as each
    /// request finishes.
    pub requests_file: Option<PathBuf>,
    /// With `requests_file`: every content event's arrival too (`token_s`).
    pub token_times: bool,
    /// Sustained levels: rewrite the results file this often with the level so far, marked
    /// incomplete, so a run killed outright keeps almost everything.
    pub snapshot_every: Option<std::time::Duration>,
    /// Confidence intervals in every level at this level (e.g. 0.95): throughput over runs,
    /// latency means and percentiles (`None`: none).
    pub confidence: Option<f64>,
    /// Sustained levels: values kept per figure before its percentiles come from a histogram
    /// ([`crate::metrics::samples::EXACT_LIMIT`] by default). Bursts keep every value.
    pub exact_limit: usize,
    /// Request timeout, seconds (recorded in the metadata).
    pub timeout_seconds: f64,
    /// Extra body fields sent with every request.
    pub extra_body: Map<String, Value>,
    /// The simulator preset that served the run, when it was simulated.
    pub simulated: Option<Simulated>,
    /// What the check before the run found ([`crate::preflight::check`]), recorded in the
    /// metadata.
    pub preflight: Option<Preflight>,
    /// The load levels. Empty: one burst per batch size (the original's mode).
    pub levels: Vec<Shape>,
    /// When a sustained level stops, and its warm-up.
    pub limits: Limits,
    /// Objectives for goodput.
    pub goodput: Option<Slo>,
}

impl Default for ChatConfig {
    /// The original script's defaults (SPEC §1), against `http://localhost:8000/v1`.
    fn default() -> Self {
        Self {
            model: String::new(),
            dataset_key: "aime".into(),
            api_base: "http://localhost:8000/v1".into(),
            batch_sizes: vec![1, 2, 4, 8],
            num_runs: 3,
            warmup_runs: 3,
            max_tokens: 100,
            temperature: 0.5,
            seed: 42,
            n_cores: 1,
            description: String::new(),
            endpoint: Endpoint::Chat,
            stream: false,
            results_file: None,
            requests_file: None,
            token_times: false,
            snapshot_every: None,
            exact_limit: crate::metrics::samples::EXACT_LIMIT,
            confidence: Some(0.95),
            timeout_seconds: 600.0,
            extra_body: Map::new(),
            simulated: None,
            preflight: None,
            levels: Vec::new(),
            limits: Limits::default(),
            goodput: None,
        }
    }
}

impl ChatConfig {
    /// The levels to run: `levels`, or one burst per batch size.
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

    /// The limits of a sustained level: `limits`, or — when neither a request count nor a
    /// duration is given — 10 measured requests per unit of the level (per slot of a closed
    /// loop, per request/s of an open one: about ten seconds of arrivals), at least 20.
    pub fn limits_for(&self, shape: &Shape) -> Limits {
        let mut limits = self.limits;
        if limits.num_requests.is_none() && limits.duration.is_none() {
            // `as` saturates: a huge level asks for u64::MAX requests, bounded by its duration.
            limits.num_requests = Some(((shape.level_number() * 10.0).ceil() as u64).max(20));
        }
        limits
    }

    /// The request body for `prompt`.
    pub fn body(&self, prompt: Prompt, max_tokens: u64) -> Bytes {
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
            endpoint: self.endpoint,
            model: self.model.clone(),
            messages,
            max_tokens,
            temperature: self.temperature,
            stream: self.stream,
            extra: self.extra_body.clone(),
        }
        .body()
    }
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
    progress: Arc<Progress>,
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
            progress: Arc::default(),
        }
    }

    /// Live counts of the level in progress, for a progress display.
    pub fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
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
        let shapes = c.shapes();
        let mode = shapes.first().map_or(Mode::Burst, Shape::mode);
        let sustained = mode != Mode::Burst;
        ChatMetadata {
            timestamp: crate::timestamp(),
            model: c.model.clone(),
            dataset_key: c.dataset_key.clone(),
            api_base: c.api_base.clone(),
            // Burst and closed-loop levels are whole numbers the original's readers understand;
            // open-loop rates are listed in `levels`.
            batch_sizes: shapes
                .iter()
                .filter_map(|s| match s {
                    Shape::Burst { batch } => Some(*batch),
                    Shape::Closed { concurrency } => Some(*concurrency),
                    Shape::Open(_) => None,
                })
                .collect(),
            num_runs: c.num_runs,
            max_tokens: c.max_tokens,
            temperature: c.temperature,
            seed: c.seed,
            warmup_runs: c.warmup_runs,
            n_cores: c.n_cores,
            description: c.description.clone(),
            tool: Some(crate::tool()),
            mode: Some(mode),
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
            endpoint: Some(c.endpoint.name().to_string()),
            stream: Some(c.stream),
            timeout_seconds: Some(c.timeout_seconds),
            dataset: Some(self.prompts.describe()),
            // Whether outputs were forced to max_tokens (ignore_eos / min_tokens in every
            // request).
            outputs_forced: Some(c.extra_body.get("ignore_eos") == Some(&Value::Bool(true))),
            simulated: c.simulated.clone(),
            extra_body: (!c.extra_body.is_empty()).then(|| c.extra_body.clone()),
            preflight: c.preflight.clone(),
            incomplete: false,
            extra: Map::new(),
        }
    }

    fn body(&self, prompt: Prompt, max_tokens: u64) -> Bytes {
        self.config.body(prompt, max_tokens)
    }

    /// Runs every level and returns the document (also written after each level when
    /// `results_file` is set).
    pub async fn run(&mut self, observer: &mut dyn Observer) -> Result<ChatDocument> {
        let mut doc = ChatDocument {
            metadata: self.metadata(),
            results: IndexMap::new(),
        };
        self.requests = match &self.config.requests_file {
            Some(path) => Some(RequestsFile::create(path, self.config.token_times)?),
            None => None,
        };
        let (shapes, num_runs) = (self.config.shapes(), self.config.num_runs);
        let (shutdown, results_file) = (self.shutdown.clone(), self.config.results_file.clone());
        let snapshot_every = self.config.snapshot_every;
        self.interrupted = run_levels(
            self,
            shapes,
            &mut doc,
            Settings {
                num_runs,
                shutdown: &shutdown,
                results_file: results_file.as_deref(),
                snapshot_every,
            },
            observer,
        )
        .await?;
        Ok(doc)
    }

    fn run_report(&self, shape: &Shape, run: usize, r: &RunSummary) -> RunReport {
        RunReport {
            level: shape.key(),
            mode: shape.mode(),
            run,
            num_runs: self.config.num_runs as usize,
            succeeded: r.succeeded as usize,
            failed: r.failed as usize,
            mean_output_tokens: r.mean_output_tokens,
            batch_seconds: r
                .figures
                .as_ref()
                .map_or(f64::NAN, |f| f.batch_total_seconds),
            mean_request_tokens_per_second: r.mean_request_tokens_per_second,
            batch_tokens_per_second: r
                .figures
                .as_ref()
                .map_or(f64::NAN, |f| f.batch_tokens_per_second),
        }
    }

    /// One sustained run: every measured request goes into `acc` (and the records file) as it
    /// finishes. Returns whether a request was abandoned by an interruption.
    async fn sustained_run(
        &mut self,
        shape: &Shape,
        run: usize,
        acc: &mut LevelAccumulator,
        observer: &mut dyn Observer,
        checkpoint: &mut dyn FnMut(&LevelAccumulator),
    ) -> bool {
        let seed = run_seed(self.config.seed, shape.seed_level(), run as u64);
        let limits = self.config.limits_for(shape);
        let (config, prompts) = (self.config.clone(), self.prompts.clone());
        let make = move |chunk: u64| -> Vec<Bytes> {
            prompts
                .draw(256, run_seed(seed, chunk, 1))
                .into_iter()
                .map(|p| config.body(p, config.max_tokens))
                .collect()
        };
        let (endpoint, stream, clock) = (self.config.endpoint, self.config.stream, self.clock);
        let op = move |mut conn: Connection, body: Bytes| async move {
            let record = conn.completion(endpoint, stream, body, &clock).await;
            (conn, record)
        };
        let client = self.pool.client().clone();
        // The open loop's schedule is drawn first: it says how many bodies the run needs.
        let (schedule, limit, ahead) = match shape {
            Shape::Open(open) => {
                let (times, warmup) = crate::load::schedule(open, &limits, seed);
                let n = times.len();
                (Some((times, warmup)), Some(n as u64), n.clamp(1, 4096))
            }
            // With a warm-up, how many bodies a closed loop needs is not known up front.
            Shape::Closed { concurrency } | Shape::Burst { batch: concurrency } => (
                None,
                limits.num_requests.filter(|_| limits.warmup.is_zero()),
                (*concurrency as usize).saturating_mul(2).clamp(256, 8192),
            ),
        };
        let ctx = sustained::Context {
            client: &client,
            clock,
            op,
            feed: Arc::new(BodyFeed::start(make, limit, ahead).await),
            limits,
            shutdown: self.shutdown.clone(),
            progress: self.progress.clone(),
        };
        let key = shape.key();
        let mut sink = LevelSink {
            key: &key,
            run,
            acc,
            observer,
            requests: &mut self.requests,
            clock,
            origin_ns: 0,
            interrupted: false,
            cancelled: 0,
            checkpoint,
            flushed: std::time::Instant::now(),
        };
        match (shape, schedule) {
            (Shape::Open(open), Some((times, warmup))) => {
                sustained::open_loop(ctx, open, times, warmup, &mut sink).await
            }
            (Shape::Closed { concurrency }, _) | (Shape::Burst { batch: concurrency }, _) => {
                sustained::closed_loop(ctx, *concurrency, &mut sink).await
            }
            (Shape::Open(_), None) => {}
        }
        let (interrupted, cancelled) = (sink.interrupted, sink.cancelled);
        if let Some(file) = sink.requests.as_mut() {
            if let Err(e) = file.flush() {
                sink.observer.records_failed(&e);
                *sink.requests = None;
            }
        }
        acc.add_cancelled(cancelled);
        interrupted
    }

    /// One burst run: `batch` requests at once; their records in the order built.
    async fn burst_run(&mut self, batch: u64, run: usize) -> Vec<RequestRecord> {
        let n = batch as usize;
        let prompts = self
            .prompts
            .draw(n, run_seed(self.config.seed, batch, run as u64));
        let bodies: Vec<Bytes> = prompts
            .into_iter()
            .map(|p| self.body(p, self.config.max_tokens))
            .collect();
        let (endpoint, stream, clock) = (self.config.endpoint, self.config.stream, self.clock);
        let (shutdown, progress) = (self.shutdown.clone(), self.progress.clone());
        let records = self
            .pool
            .burst(
                bodies,
                move |mut conn: Connection, body: Bytes| {
                    let (shutdown, progress) = (shutdown.clone(), progress.clone());
                    async move {
                        progress.started();
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
                        progress.finished(&record);
                        (conn, record)
                    }
                },
                |message| RequestRecord {
                    error: Some(tokenomics_client::Error::Io(message)),
                    ..RequestRecord::default()
                },
            )
            .await;
        records
    }
}

impl Workload for ChatBenchmark {
    type Spec = Shape;
    type Acc = LevelAccumulator;
    type Level = ChatLevel;
    type Doc = ChatDocument;

    fn key(&self, shape: &Shape) -> String {
        shape.key()
    }

    async fn warm_up(&mut self, shape: &Shape, observer: &mut dyn Observer) {
        if self.config.warmup_runs == 0 {
            return;
        }
        let key = shape.key();
        let prompts = self.prompts.draw(
            usize::try_from(self.config.warmup_runs).unwrap_or(usize::MAX),
            run_seed(self.config.seed, shape.seed_level(), u64::MAX),
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
                        observer.warmup_failed(&key, e);
                    }
                }
                None => {
                    conn.reset();
                    return;
                }
            }
        }
    }

    fn begin(&mut self, shape: &Shape, observer: &mut dyn Observer) -> LevelAccumulator {
        observer.level_started(shape);
        self.progress.new_level(self.clock.now_ns());
        LevelAccumulator::new(*shape, self.config.limits_for(shape), self.config.stream)
            .with_slo(self.config.goodput)
            .with_exact_limit(self.config.exact_limit)
            .with_confidence(self.config.confidence)
    }

    async fn run(
        &mut self,
        shape: &Shape,
        run: usize,
        acc: &mut LevelAccumulator,
        observer: &mut dyn Observer,
        checkpoint: &mut dyn FnMut(&LevelAccumulator),
    ) -> bool {
        let interrupted = match shape {
            Shape::Burst { batch } => {
                let records = self.burst_run(*batch, run).await;
                let key = shape.key();
                for r in &records {
                    if let Some(e) = &r.error {
                        observer.request_failed(&key, run, e);
                    }
                    observer.request_done(&key, run, r);
                }
                if let Some(file) = self.requests.as_mut() {
                    // A records file that cannot be written is reported once, and not retried.
                    if let Err(e) = file.write_run(&key, run, &records, &self.clock) {
                        observer.records_failed(&e);
                        self.requests = None;
                    }
                }
                let summary = acc.add_run(&records);
                observer.run_finished(&self.run_report(shape, run, &summary));
                return !records.iter().any(is_interrupted);
            }
            _ => {
                self.sustained_run(shape, run, acc, observer, checkpoint)
                    .await
            }
        };
        let summary = acc.end_run();
        observer.run_finished(&self.run_report(shape, run, &summary));
        // A sustained run stopped by the shutdown sent fewer requests than its limits asked
        // for, even when every request it sent finished within the grace period.
        !interrupted && !self.shutdown.is_stopping()
    }

    fn snapshot(acc: &LevelAccumulator) -> Option<ChatLevel> {
        Some(acc.snapshot())
    }

    fn finish(&mut self, acc: LevelAccumulator) -> ChatLevel {
        acc.finish()
    }

    fn level_finished(&mut self, key: &str, level: &ChatLevel, observer: &mut dyn Observer) {
        observer.level_finished(key, level);
    }
}

/// How often a long run's records file is flushed, so a crash loses at most this much of it.
const RECORDS_FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

fn is_interrupted(r: &RequestRecord) -> bool {
    matches!(r.error, Some(tokenomics_client::Error::Interrupted))
}

/// Where a sustained run's requests go as they finish: the level's figures, the observer and the
/// records file. Warm-up requests are dropped; cancelled ones only counted.
struct LevelSink<'a> {
    key: &'a str,
    run: usize,
    acc: &'a mut LevelAccumulator,
    observer: &'a mut dyn Observer,
    requests: &'a mut Option<RequestsFile>,
    clock: Clock,
    origin_ns: u64,
    interrupted: bool,
    cancelled: u64,
    checkpoint: &'a mut dyn FnMut(&LevelAccumulator),
    /// When the records file was last flushed (it is, every second of a long run).
    flushed: std::time::Instant,
}

impl Sink for LevelSink<'_> {
    fn begin(&mut self, origin_ns: u64) {
        self.origin_ns = origin_ns;
        self.acc.begin_run(origin_ns);
    }

    fn done(&mut self, s: Sent) {
        if s.warmup {
            return;
        }
        if let Some(at) = s.scheduled_ns {
            self.acc.add_arrival(at, s.record.timing.send_ns);
        }
        if s.cancelled {
            self.cancelled += 1;
            return;
        }
        let r = &s.record;
        self.interrupted |= is_interrupted(r);
        if let Some(e) = &r.error {
            self.observer.request_failed(self.key, self.run, e);
        }
        self.observer.request_done(self.key, self.run, r);
        let scheduled = s.scheduled_ns.map(|at| Scheduled {
            scheduled_ns: at,
            slot_wait_ns: s.slot_wait_ns,
        });
        if let Some(file) = self.requests.as_mut() {
            let place = Place {
                level: self.key,
                run: self.run,
                index: s.seq,
                origin_ns: self.origin_ns,
            };
            let written = file
                .write(&place, r, scheduled.as_ref(), &self.clock)
                .and_then(|()| {
                    if self.flushed.elapsed() >= RECORDS_FLUSH_EVERY {
                        self.flushed = std::time::Instant::now();
                        file.flush()
                    } else {
                        Ok(())
                    }
                });
            if let Err(e) = written {
                self.observer.records_failed(&e);
                *self.requests = None;
            }
        }
        self.acc.add_request(r, scheduled.as_ref());
        (self.checkpoint)(self.acc);
    }
}
