//! The chat benchmark: bursts as the original script ran them, and the sustained closed and open
//! loops of [`crate::load`].

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use indexmap::IndexMap;
use serde_json::{Map, Value};
use tokenomics_client::{ChatRequest, Client, Clock, Connection, Endpoint, Message, RequestRecord};
use tokenomics_datasets::{run_seed, Prompt, PromptSource};
use tokenomics_stats::{
    ArrivalBlock, ChatDocument, ChatLevel, ChatMetadata, Load, Mode, PrefixCacheBlock,
    PrefixWorkload, Preflight, ScheduleBlock, ShardBlock, Simulated,
};

use std::sync::Arc;

use crate::adaptive::Experiment;
use crate::client_load::LoadWatch;
use crate::conversation::Conversations;
use crate::driver::{run_levels, LevelSource, Settings, Workload};
use crate::load::{Limits, Shape};
use crate::metrics::{LevelAccumulator, RunSummary, Scheduled, Slo};
use crate::pool::ConnectionPool;
use crate::records::{Place, RequestsFile};
use crate::server_metrics::{LevelWindow, ServerMetrics};
use crate::shard::{Shard, Timetable};
use crate::shutdown::Shutdown;
use crate::sustained::{self, BodyFeed, Progress, Sent, Sink};
use crate::{Observer, Result, RunReport};
use tokio::sync::oneshot;

/// The system message the original script sent with every problem.
pub const SYSTEM_PROMPT: &str =
    "You are an assistant that helps students solve challenging problems. Think step by step.";

/// Everything that defines a chat benchmark.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// The model named in every request.
    pub model: String,
    /// The prompt set as given on the command line, recorded in the metadata (the prompts
    /// themselves come with [`ChatBenchmark::new`]).
    pub dataset_key: String,
    /// The server's base URL (`…/v1`), recorded in the metadata.
    pub api_base: String,
    /// Burst sizes, one level each, when `levels` is empty.
    pub batch_sizes: Vec<u64>,
    /// Measured runs per level.
    pub num_runs: u64,
    /// Warm-up requests before each level, sent one at a time and not recorded.
    pub warmup_runs: u64,
    /// `max_tokens` of every measured request.
    pub max_tokens: u64,
    /// Sampling temperature of every request.
    pub temperature: f64,
    /// Seeds every draw of prompts (and of open-loop arrivals): the same seed sends the same
    /// requests in the same order.
    pub seed: u64,
    /// Client worker threads (`--n_cores`), recorded in the metadata.
    pub n_cores: u64,
    /// Free text recorded in the metadata (`--description`).
    pub description: String,
    /// The route requests go to (chat or text completions).
    pub endpoint: Endpoint,
    /// Whether requests ask for a streamed answer; only a streamed one has latencies (TTFT,
    /// TPOT, ITL).
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
    /// This process's part of a run spread over several ([`crate::shard`]): it sends every
    /// N-th request of the global plan, or its share of a closed loop's concurrency.
    pub shard: Option<Shard>,
    /// When the first run starts (`--start_at`); each later one follows on the [`Timetable`].
    /// A run over more than one shard needs it.
    pub start_at: Option<SystemTime>,
    /// On the timetable: between a timed run's end and the next run's start (requests in flight
    /// finish, the next level warms up).
    pub run_gap: Duration,
    /// The price of the serving hardware: every level gets its cost per million tokens.
    pub cost: Option<tokenomics_stats::CostBasis>,
    /// A sweep or an SLO search, which choose the levels as they go (`levels` is then unused).
    pub adaptive: Option<crate::adaptive::Adaptive>,
    /// The server's certificate was not checked (`--insecure`): recorded in the metadata.
    pub insecure_tls: bool,
    /// Every level's timeline in buckets this wide (`None`: no timeline).
    pub timeline_interval: Option<Duration>,
    /// Sustained levels: abort this share of requests (0 to 1) this long after each is sent
    /// (`--cancel_rate`, `--cancel_after`), to exercise the server's abort path.
    pub aborts: Option<(f64, Duration)>,
    /// Sustained levels: probe requests per second beside the load (`--probe_rate`).
    pub probe_rate: Option<f64>,
    /// Shared prefixes (`--shared_prefix_tokens`, with prompts drawn from
    /// [`PromptSource::SharedPrefixes`]): every level's expected prefix-cache hit rate is
    /// written down before it runs, beside the measured one.
    pub shared_prefix: Option<PrefixWorkload>,
    /// A replayed trace (`--trace`): its one level's requests, times and prompts (the level is an
    /// open loop with [`crate::load::Arrival::Trace`]).
    pub trace: Option<Arc<crate::trace::TraceReplay>>,
    /// Multi-turn conversations (`--sessions`, `--session_rate`): each level's load is sessions
    /// (a closed level's concurrency users, an open level's rate sessions per second), each turn
    /// sent with the history and the server's answers ([`crate::conversation`]).
    pub conversation: Option<Conversations>,
    /// Stages (`--stages`): the levels (one per stage) run as one continuous load, each for its
    /// time ([`crate::stages`]).
    pub stages: Option<crate::stages::Stages>,
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
            shard: None,
            start_at: None,
            run_gap: DEFAULT_RUN_GAP,
            cost: None,
            adaptive: None,
            insecure_tls: false,
            timeline_interval: Some(DEFAULT_TIMELINE_INTERVAL),
            aborts: None,
            probe_rate: None,
            shared_prefix: None,
            trace: None,
            conversation: None,
            stages: None,
        }
    }
}

/// The default width of a timeline's buckets.
pub const DEFAULT_TIMELINE_INTERVAL: Duration = Duration::from_secs(1);

/// The default time between two runs on a timetable.
pub const DEFAULT_RUN_GAP: Duration = Duration::from_secs(10);

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
        if self.conversation.is_some() {
            // Counted in sessions ([`Conversations::sessions_for`]), not requests.
            limits.num_requests = None;
            return limits;
        }
        limits = limits.or_default_count(shape);
        // An SLO probe measures enough requests for its percentiles to mean something.
        if let (Some(n), Some(a)) = (limits.num_requests, &self.adaptive) {
            limits.num_requests = Some(n.max(a.min_requests()));
        }
        limits
    }

    /// When each run starts, for a run on a timetable (`start_at`): every run lasts its
    /// warm-up and duration (a replayed trace, which has none, its span: its first request's time
    /// to its last's; a stage list, its stages), then `run_gap`.
    pub fn timetable(&self) -> Option<Timetable> {
        let length = match (self.limits.duration, &self.trace, &self.stages) {
            (Some(d), _, _) => d,
            (None, Some(t), _) => Duration::try_from_secs_f64(t.span().seconds).ok()?,
            (None, None, Some(stages)) => stages.total(),
            (None, None, None) => return None,
        };
        Some(Timetable {
            start: self.start_at?,
            run_length: self.limits.warmup.checked_add(length)?,
            gap: self.run_gap,
        })
    }

    /// The rate this process sends probes at, if it sends any. Probes measure what one newcomer
    /// meets: a sharded run's are sent by shard 0 alone, at the rate asked (every shard sending
    /// them would multiply it by the shards).
    fn probes_sent_here(&self) -> Option<f64> {
        let probing = self.shard.is_none_or(|s| s.index == 0);
        self.probe_rate.filter(|_| probing)
    }

    /// Refuses a timetable or a sharding that cannot work, in one line: shards and start times
    /// need timed sustained levels, more than one shard a start time, and every shard a part of
    /// each level.
    pub fn check_timetable(&self) -> Result<()> {
        let invalid = |m: String| Err(crate::Error::Invalid(m));
        if self.stages.is_some() {
            for (flag, given) in [
                ("--cancel_rate", self.aborts.is_some()),
                ("--probe_rate", self.probe_rate.is_some()),
                ("--shared_prefix_tokens", self.shared_prefix.is_some()),
                ("--snapshot_every", self.snapshot_every.is_some()),
            ] {
                if given {
                    return invalid(format!(
                        "--stages runs one continuous load in this version: leave out {flag}"
                    ));
                }
            }
        }
        if self.conversation.is_some() {
            for (flag, given) in [
                ("--cancel_rate", self.aborts.is_some()),
                ("--probe_rate", self.probe_rate.is_some()),
                ("--trace", self.trace.is_some()),
                ("--shared_prefix_tokens", self.shared_prefix.is_some()),
                ("--sweep or --slo", self.adaptive.is_some()),
                ("--warmup_seconds", !self.limits.warmup.is_zero()),
            ] {
                if given {
                    return invalid(format!(
                        "conversations (--sessions, --session_rate) measure every turn, in this version: leave out {flag}"
                    ));
                }
            }
            if self
                .shapes()
                .iter()
                .any(|s| matches!(s, Shape::Burst { .. }))
            {
                return invalid(
                    "conversations need --sessions C (concurrent users) or --session_rate R (sessions per second)"
                        .into(),
                );
            }
        }
        if self.shard.is_none() && self.start_at.is_none() {
            return Ok(());
        }
        if self.adaptive.is_some() {
            return invalid(
                "a sweep or an SLO search chooses each level from the last: it cannot be sharded \
                 or put on a timetable (--shard, --results_dir, --start_at)"
                    .into(),
            );
        }
        let shapes = self.shapes();
        if shapes.iter().any(|s| matches!(s, Shape::Burst { .. })) {
            return invalid(
                "sharded runs (--shard, --results_dir) and --start_at need sustained levels \
                 (--max_concurrency or --request_rate): a burst leaves from one place at once"
                    .into(),
            );
        }
        // A replayed trace lasts its span: its times are the timetable.
        let trace = shapes
            .iter()
            .any(|s| matches!(s, Shape::Open(o) if o.arrival == crate::load::Arrival::Trace));
        // A stage list lasts its stages.
        if self.limits.duration.is_none() && !trace && self.stages.is_none() {
            return invalid(
                "sharded runs (--shard, --results_dir) and --start_at need --duration: the \
                 shards keep one timetable"
                    .into(),
            );
        }
        let Some(shard) = self.shard else {
            return Ok(());
        };
        if shard.count > 1 && self.start_at.is_none() {
            return invalid(format!(
                "{} shards need --start_at (a Unix time): they start together",
                shard.count
            ));
        }
        let n = u64::from(shard.count);
        for shape in &shapes {
            let too_few = match shape {
                Shape::Closed { concurrency } => Some(("concurrency", *concurrency)),
                Shape::Open(o) => o.max_concurrency.map(|c| ("--max_concurrency", c)),
                Shape::Burst { .. } => None,
            };
            if let Some((what, c)) = too_few.filter(|(_, c)| *c < n) {
                return invalid(format!(
                    "{what} {c} over {n} shards leaves some with none: give at least {n}"
                ));
            }
        }
        let closed = !matches!(shapes[0], Shape::Open(_));
        if let (Some(r), true) = (self.limits.num_requests, closed) {
            if r < n {
                return invalid(format!(
                    "--num_requests {r} over {n} shards leaves some with none: give at least {n}"
                ));
            }
        }
        let sessions = self.conversation.and_then(|c| c.sessions_per_run);
        if let (Some(r), true) = (sessions, closed) {
            if r < n {
                return invalid(format!(
                    "--num_sessions {r} over {n} shards leaves some with none: give at least {n}"
                ));
            }
        }
        Ok(())
    }

    /// What this process runs of `shape`: a shard's part of a closed loop's concurrency and of
    /// an open loop's cap (its arrivals are taken from the global schedule).
    pub fn local_shape(&self, shape: &Shape) -> Shape {
        let Some(shard) = self.shard else {
            return *shape;
        };
        match shape {
            Shape::Closed { concurrency } => Shape::Closed {
                concurrency: shard.part(*concurrency),
            },
            Shape::Open(o) => Shape::Open(crate::load::OpenLoop {
                rate: o.rate / f64::from(shard.count),
                max_concurrency: o.max_concurrency.map(|c| shard.part(c)),
                ..*o
            }),
            Shape::Burst { .. } => *shape,
        }
    }

    /// The request body for `prompt`.
    pub fn body(&self, prompt: Prompt, max_tokens: u64) -> Bytes {
        self.body_with(prompt, max_tokens, self.extra_body.clone())
    }

    /// A request body asking for exactly `tokens` output tokens (`max_tokens`, and `min_tokens`
    /// with `ignore_eos`, as vLLM and SGLang honour): a replayed trace's requests.
    pub fn exact_body(&self, prompt: Prompt, tokens: u64) -> Bytes {
        let mut extra = self.extra_body.clone();
        extra.insert("ignore_eos".into(), true.into());
        extra.insert("min_tokens".into(), tokens.into());
        self.body_with(prompt, tokens, extra)
    }

    fn body_with(&self, prompt: Prompt, max_tokens: u64, extra: Map<String, Value>) -> Bytes {
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
        self.messages_body_with(messages, max_tokens, extra)
    }

    /// The request body for a conversation's `messages` as they stand (its history and the
    /// new user turn), asking for `max_tokens` like every measured request.
    pub fn messages_body(&self, messages: Vec<Message>) -> Bytes {
        self.messages_body_with(messages, self.max_tokens, self.extra_body.clone())
    }

    fn messages_body_with(
        &self,
        messages: Vec<Message>,
        max_tokens: u64,
        mut extra: Map<String, Value>,
    ) -> Bytes {
        // `--ignore_eos` forces min_tokens to the measured max_tokens; a shorter request (a
        // warm-up's 30 tokens) must not ask for more than its own maximum, which servers refuse.
        if let Some(min) = extra.get("min_tokens").and_then(Value::as_u64) {
            if min > max_tokens {
                extra.insert("min_tokens".into(), max_tokens.into());
            }
        }
        ChatRequest {
            endpoint: self.endpoint,
            model: self.model.clone(),
            messages,
            max_tokens,
            temperature: self.temperature,
            stream: self.stream,
            extra,
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
    /// Runs started on the timetable so far (every level's, in order).
    timetable_runs: u32,
    /// The latest any run started after its time on the timetable, seconds.
    late_s: f64,
    /// Levels finished so far (measured or not).
    levels_done: u64,
    /// The server's metrics, scraped around and during every level ([`crate::server_metrics`]).
    server_metrics: Option<ServerMetrics>,
    /// The level's scrapes so far (from its latest closing scrape).
    server_window: Option<LevelWindow>,
    /// Whether the level's window holds exactly its requests, so that the server's generated
    /// tokens can be checked against the client's (not a stage's: its window is its times).
    window_has_its_requests: bool,
    /// Output tokens of every request the level sent since its opening scrape, for the
    /// cross-check with the server's count.
    client_tokens: u64,
    /// The level's probes so far (`--probe_rate`).
    probe_records: Vec<RequestRecord>,
    /// Shared prefixes: the groups whose prefix a request has carried so far (groups
    /// 0..`prefix_warm`, since prompt i of every draw is group i mod G).
    prefix_warm: u64,
    /// The level's expected prefix-cache figures, written before it ran.
    prefix_expected: Option<PrefixCacheBlock>,
    /// The client's own load since the level's start (its `client_load` block).
    load_watch: Option<LoadWatch>,
}

impl ChatBenchmark {
    /// A benchmark of `config` that sends through `client` and draws prompts from `prompts`.
    /// Its monotonic clock starts here: every time in its records counts from this call.
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
            timetable_runs: 0,
            late_s: 0.0,
            levels_done: 0,
            server_metrics: None,
            server_window: None,
            window_has_its_requests: true,
            client_tokens: 0,
            probe_records: Vec::new(),
            prefix_warm: 0,
            prefix_expected: None,
            load_watch: None,
        }
    }

    /// Scrapes the server's metrics around and during every level: each level gets its
    /// `server_metrics` block. `metrics` must be on this benchmark's [`ChatBenchmark::clock`].
    pub fn set_server_metrics(&mut self, metrics: ServerMetrics) {
        self.server_metrics = Some(metrics);
    }

    /// The level's opening scrape, after its warm-up requests and before its first measured one.
    /// On a timetable the level's runs start later: its window is paused until each starts.
    async fn open_server_window(&mut self, key: &str) {
        self.client_tokens = 0;
        self.server_window = None;
        if let Some(m) = &self.server_metrics {
            m.open(key, self.config.timetable().is_some()).await;
        }
    }

    /// A closing scrape, after a run's last request finished.
    async fn close_server_window(&mut self) {
        if let Some(m) = &self.server_metrics {
            self.server_window = m.close().await;
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
            levels: sustained.then(|| match &c.stages {
                Some(st) => st.keys(&shapes),
                None => shapes.iter().map(Shape::key).collect(),
            }),
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
            dataset: Some(self.dataset()),
            // Whether outputs were forced to max_tokens (ignore_eos / min_tokens in every
            // request).
            outputs_forced: Some(c.extra_body.get("ignore_eos") == Some(&Value::Bool(true))),
            simulated: c.simulated.clone(),
            extra_body: (!c.extra_body.is_empty()).then(|| c.extra_body.clone()),
            preflight: c.preflight.clone(),
            shard: c.shard.map(|shard| ShardBlock {
                index: shard.index,
                count: shard.count,
                config_hash: self.config_hash(),
                start_at: c.start_at.map_or(0.0, crate::shard::unix_seconds),
                run_gap_seconds: c.run_gap.as_secs_f64(),
                host: crate::shard::host_name(),
                late_seconds: 0.0,
                levels_done: 0,
                confidence: c.confidence,
                records: c
                    .requests_file
                    .as_ref()
                    .and_then(|p| p.file_name())
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            }),
            merged: None,
            cost: c.cost,
            sweep: None,
            slo_search: None,
            insecure_tls: c.insecure_tls,
            balance: self.balance().map(str::to_string),
            conversation: c.conversation.map(|conv| conv.spec(&self.prompts)),
            stages: c.stages.as_ref().map(|st| {
                let keys = st.keys(&shapes);
                let ends = st.ends_ns();
                st.steps
                    .iter()
                    .zip(keys)
                    .zip(ends)
                    .map(
                        |((&(level, length), key), end)| tokenomics_stats::StageSpec {
                            key,
                            level,
                            start_seconds: end as f64 / 1e9 - length.as_secs_f64(),
                            seconds: length.as_secs_f64(),
                            extra: Map::new(),
                        },
                    )
                    .collect()
            }),
            incomplete: false,
            extra: Map::new(),
        }
    }

    /// Where the prompts came from, for the metadata: the trace replayed, or the prompt source.
    fn dataset(&self) -> Value {
        match &self.config.trace {
            Some(trace) => trace.describe(),
            None => self.prompts.describe(),
        }
    }

    /// How requests are spread over several endpoints (`None`: one endpoint).
    fn balance(&self) -> Option<&'static str> {
        let client = self.pool.client();
        (client.api_bases().len() > 1).then(|| client.config().balance.name())
    }

    /// A hash of everything that makes the run what it is, and not what differs between its
    /// shards (which shard, when it was written, where to): the merge refuses shards whose hashes
    /// differ.
    fn config_hash(&self) -> String {
        let c = &self.config;
        let shapes: Vec<Load> = c
            .shapes()
            .iter()
            .map(|s| s.load_block(&c.limits_for(s), ScheduleBlock::default()))
            .collect();
        let mut identity = serde_json::json!({
            "model": c.model,
            "dataset_key": c.dataset_key,
            "dataset": self.dataset(),
            "api_base": c.api_base,
            "levels": shapes,
            "num_runs": c.num_runs,
            "warmup_runs": c.warmup_runs,
            "max_tokens": c.max_tokens,
            "temperature": c.temperature,
            "seed": c.seed,
            "endpoint": c.endpoint.name(),
            "stream": c.stream,
            "extra_body": c.extra_body,
            "goodput": c.goodput.map(|g| g.ms()),
            "confidence": c.confidence,
            "timeout_seconds": c.timeout_seconds,
            "shards": c.shard.map(|s| s.count),
            "start_at": c.start_at.map(crate::shard::unix_seconds),
            "run_gap_seconds": c.run_gap.as_secs_f64(),
        });
        if let Some(balance) = self.balance() {
            identity["balance"] = balance.into();
        }
        // Shard 0 alone sends the probes, at the rate all were given.
        if let Some(rate) = c.probe_rate {
            identity["probe_rate"] = rate.into();
        }
        format!(
            "{:016x}",
            crate::shard::fnv1a(identity.to_string().as_bytes())
        )
    }

    fn body(&self, prompt: Prompt, max_tokens: u64) -> Bytes {
        self.config.body(prompt, max_tokens)
    }

    /// Runs every level and returns the document (also written after each level when
    /// `results_file` is set).
    pub async fn run(&mut self, observer: &mut dyn Observer) -> Result<ChatDocument> {
        self.config.check_timetable()?;
        let mut doc = ChatDocument {
            metadata: self.metadata(),
            results: IndexMap::new(),
        };
        self.requests = match &self.config.requests_file {
            Some(path) => Some(
                RequestsFile::create(path, self.config.token_times)?
                    .with_endpoints(self.pool.client().api_bases().len() > 1),
            ),
            None => None,
        };
        let num_runs = self.config.num_runs;
        let mut experiment = match &self.config.adaptive {
            Some(a) => {
                if let Some(open) = a.open() {
                    doc.metadata.arrival = Some(ArrivalBlock {
                        process: open.arrival,
                        burstiness: open.burstiness,
                        max_concurrency: None,
                    });
                }
                a.start()
            }
            None => Experiment::Levels(self.config.shapes().into_iter()),
        };
        experiment.annotate(&mut doc);
        if let Some(stages) = self.config.stages.clone() {
            let ran = self.run_stages(&stages, &mut doc, observer).await;
            let scraped = match self.server_metrics.take() {
                Some(m) => m.stop().await,
                None => Ok(()),
            };
            self.interrupted = ran?;
            scraped?;
            return Ok(doc);
        }
        let (shutdown, results_file) = (self.shutdown.clone(), self.config.results_file.clone());
        let snapshot_every = self.config.snapshot_every;
        let ran = run_levels(
            self,
            &mut experiment,
            &mut doc,
            Settings {
                num_runs,
                shutdown: &shutdown,
                results_file: results_file.as_deref(),
                snapshot_every,
            },
            observer,
        )
        .await;
        let scraped = match self.server_metrics.take() {
            Some(m) => m.stop().await,
            None => Ok(()),
        };
        self.interrupted = ran?;
        scraped?;
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
    ///
    /// A shard draws the global plan — the prompts in order, the open loop's schedule — and
    /// keeps its part (every N-th, [`Shard::takes`]); on a timetable the run starts at its time.
    async fn sustained_run(
        &mut self,
        shape: &Shape,
        run: usize,
        acc: &mut LevelAccumulator,
        observer: &mut dyn Observer,
        checkpoint: &mut (dyn FnMut(&LevelAccumulator) + Send),
    ) -> bool {
        if let Some(conv) = self.config.conversation {
            return self
                .conversation_run(conv, shape, run, acc, observer, checkpoint)
                .await;
        }
        let seed = run_seed(self.config.seed, shape.seed_level(), run as u64);
        let global_limits = self.config.limits_for(shape);
        let shard = self.config.shard;
        let local = self.config.local_shape(shape);
        let mut limits = global_limits;
        if let (Some(s), Shape::Closed { .. }) = (shard, shape) {
            limits.num_requests = limits.num_requests.map(|n| s.part(n));
        }
        let make = self.body_maker(seed);
        let (endpoint, stream, clock) = (self.config.endpoint, self.config.stream, self.clock);
        let op = self.completion_op();
        let client = self.pool.client().clone();
        // The open loop's schedule is drawn first: it says how many bodies the run needs.
        let (schedule, limit, ahead) = match shape {
            Shape::Open(open) => {
                let (times, warmup) = match &self.config.trace {
                    Some(trace) => (trace.times(), 0),
                    None => crate::load::schedule(open, &global_limits, seed),
                };
                // The whole plan's first measured arrival: every shard measures from it.
                let measured_from = times.get(warmup).copied();
                let (times, warmup) = match shard {
                    Some(s) => (
                        s.keep(times),
                        (0..warmup as u64).filter(|&i| s.takes(i)).count(),
                    ),
                    None => (times, warmup),
                };
                let n = times.len();
                (
                    Some((times, warmup, measured_from)),
                    Some(n as u64),
                    n.clamp(1, 4096),
                )
            }
            // With a warm-up, how many bodies a closed loop needs is not known up front.
            Shape::Closed { .. } | Shape::Burst { .. } => {
                let concurrency = local.max_in_flight().unwrap_or(1);
                (
                    None,
                    limits.num_requests.filter(|_| limits.warmup.is_zero()),
                    (concurrency as usize).saturating_mul(2).clamp(256, 8192),
                )
            }
        };
        let feed = Arc::new(BodyFeed::start(make, limit, ahead).await);
        let (due, planned_ns) = self.next_on_timetable().await;
        let ctx = sustained::Context {
            client: &client,
            clock,
            op,
            feed,
            limits,
            shutdown: self.shutdown.clone(),
            progress: self.progress.clone(),
            start_ns: planned_ns,
            aborts: self.config.aborts.map(|(share, after)| sustained::Aborts {
                share,
                after,
                seed: run_seed(seed, 0xab, 0x0b),
            }),
        };
        let key = [shape.key()];
        let mut sink = LevelSink::new(
            &key,
            run,
            std::slice::from_mut(acc),
            observer,
            &mut self.requests,
            &mut self.client_tokens,
            clock,
            checkpoint,
        );
        sink.due = due;
        sink.global_index = match (shard, shape) {
            (Some(s), Shape::Open(_)) => Some(s),
            _ => None,
        };
        let probes = self.config.probes_sent_here().map(|rate| {
            let prompts = self.prompts.draw(PROBE_BODIES, run_seed(seed, 0x9b0be, 0));
            let bodies = prompts
                .into_iter()
                .map(|p| self.config.body(p, 1))
                .collect();
            crate::probes::Probes::start(
                crate::probes::ProbePlan {
                    rate,
                    bodies: Arc::new(bodies),
                    endpoint,
                    stream,
                    seed: run_seed(seed, 0x9b0be, 1),
                    start_ns: planned_ns,
                },
                client.clone(),
                clock,
                self.shutdown.clone(),
            )
        });
        match (local, schedule) {
            (Shape::Open(open), Some((times, warmup, measured_from))) => {
                sustained::open_loop(ctx, &open, times, warmup, measured_from, &mut sink).await
            }
            (Shape::Closed { concurrency }, _) | (Shape::Burst { batch: concurrency }, _) => {
                sustained::closed_loop(ctx, concurrency, &mut sink).await
            }
            (Shape::Open(_), None) => {}
        }
        if let Some(p) = probes {
            // Probes sent before the measurement started (while the loop set up or warmed up)
            // met another load: they are not reported, though the server counted their tokens.
            let all = p.stop().await;
            *sink.client_tokens = all
                .iter()
                .map(crate::server_metrics::client_output_tokens)
                .fold(*sink.client_tokens, u64::saturating_add);
            let origin = sink.origin_ns;
            let records: Vec<RequestRecord> = all
                .into_iter()
                .filter(|r| r.timing.send_ns >= origin)
                .collect();
            self.probe_records.extend(records);
        }
        if let Some(late) = sink.late_s {
            self.late_s = self.late_s.max(late);
        }
        let (interrupted, cancelled) = sink.close();
        acc.add_cancelled(cancelled);
        interrupted
    }

    /// On a timetable: when the next run is due (wall clock), and when that is on the clock (a
    /// time past is "at once", and the sink learns how late it began); the server's metrics
    /// window takes its scrapes from then. `None`s without one.
    async fn next_on_timetable(&mut self) -> (Option<SystemTime>, Option<u64>) {
        let due = self.config.timetable().map(|t| {
            let k = self.timetable_runs;
            self.timetable_runs += 1;
            t.run_start(k).unwrap_or(t.start)
        });
        let planned_ns = due.map(|due| {
            let now = self.clock.now_ns();
            match due.duration_since(SystemTime::now()) {
                Ok(wait) => now.saturating_add(u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX)),
                Err(_) => now, // past: at once
            }
        });
        if let (Some(m), Some(at_ns)) = (&self.server_metrics, planned_ns) {
            m.resume_at(at_ns).await;
        }
        (due, planned_ns)
    }

    /// A stage list ([`crate::stages`]): the warm-up requests, then one continuous load whose
    /// requests are split into the stages' levels, which join `doc` (written once the load is
    /// over). Returns whether it was interrupted.
    async fn run_stages(
        &mut self,
        stages: &crate::stages::Stages,
        doc: &mut ChatDocument,
        observer: &mut dyn Observer,
    ) -> Result<bool> {
        use crate::stages::{StageKind, Stages};
        let shapes = self.config.shapes();
        let keys = stages.keys(&shapes);
        let Some(first) = shapes.first().copied() else {
            return Ok(false);
        };
        self.warm_up_requests(&first, observer).await;
        // The first stage's opening scrape; each boundary's scrape ends one stage and begins the
        // next (below), the closing one ends the last.
        self.open_server_window(&keys[0]).await;
        let mut accs: Vec<LevelAccumulator> = shapes
            .iter()
            .zip(&stages.steps)
            .map(|(shape, &(_, seconds))| {
                let limits = Limits {
                    num_requests: None,
                    duration: Some(seconds),
                    ..self.config.limits
                };
                // A shard's stage describes the whole load; its steady state, its own part.
                LevelAccumulator::new(*shape, limits, self.config.stream)
                    .with_target(self.config.local_shape(shape).target_in_flight())
                    .with_slo(self.config.goodput)
                    .with_exact_limit(self.config.exact_limit)
                    .with_confidence(self.config.confidence)
                    .with_timeline(self.config.timeline_interval)
                    .with_endpoints(&self.pool.client().api_bases())
            })
            .collect();
        self.progress.new_level(self.clock.now_ns());
        let seed = run_seed(self.config.seed, first.seed_level(), 0x57a6e);
        // A shard runs its part of each stage: of its users, of its schedule (every N-th arrival).
        let shard = self.config.shard;
        let users: Vec<u64> = shapes
            .iter()
            .map(|s| self.config.local_shape(s).max_in_flight().unwrap_or(1))
            .collect();
        let most = users.iter().copied().max().unwrap_or(1) as usize;
        let schedule = (stages.kind == StageKind::Rate).then(|| {
            let times = stages.schedule(&shapes, seed);
            match shard {
                Some(s) => s.keep(times),
                None => times,
            }
        });
        let open_loop = match first {
            Shape::Open(open) => {
                let busiest = crate::load::OpenLoop {
                    rate: shapes.iter().map(|s| s.level_number()).fold(0.0, f64::max),
                    ..open
                };
                match self.config.local_shape(&Shape::Open(busiest)) {
                    Shape::Open(local) => Some(local),
                    _ => None,
                }
            }
            _ => None,
        };
        let (limit, ahead) = match &schedule {
            Some(times) => (Some(times.len() as u64), times.len().clamp(1, 4096)),
            None => (None, most.saturating_mul(2).clamp(256, 8192)),
        };
        let feed = Arc::new(BodyFeed::start(self.body_maker(seed), limit, ahead).await);
        let (due, planned_ns) = self.next_on_timetable().await;
        let clock = self.clock;
        let op = self.completion_op();
        let client = self.pool.client().clone();
        let ctx = sustained::Context {
            client: &client,
            clock,
            op,
            feed,
            limits: Limits {
                num_requests: None,
                duration: None,
                ..self.config.limits
            },
            shutdown: self.shutdown.clone(),
            progress: self.progress.clone(),
            start_ns: planned_ns,
            aborts: None,
        };
        let ends = stages.ends_ns();
        let mut checkpoint = |_: &LevelAccumulator| {};
        let mut sink = LevelSink::new(
            &keys,
            0,
            &mut accs,
            observer,
            &mut self.requests,
            &mut self.client_tokens,
            clock,
            &mut checkpoint,
        )
        .with_stages(ends.clone(), schedule.is_some());
        sink.due = due;
        sink.global_index = shard.filter(|_| schedule.is_some());
        let (started, start_ns) = oneshot::channel();
        sink.started = Some(started);
        let (over, mut load_over) = oneshot::channel::<()>();
        let load = async {
            match (schedule, open_loop) {
                (Some(times), Some(open)) => {
                    sustained::open_loop(ctx, &open, times, 0, Some(0), &mut sink).await;
                }
                _ => crate::stages::closed_loop(ctx, &users, &ends, &mut sink).await,
            }
            drop(over);
        };
        // The server's metrics stage by stage: at each boundary one scrape ends a stage's
        // window and begins the next one's, while the load goes on.
        let mut windows: Vec<Option<LevelWindow>> = Vec::new();
        let metrics = self.server_metrics.as_ref();
        let boundaries = async {
            let Some(m) = metrics else { return };
            let start = tokio::select! {
                s = start_ns => match s {
                    Ok(s) => s,
                    Err(_) => return,
                },
                _ = &mut load_over => return,
            };
            for (end, key) in ends.iter().zip(&keys[1..]) {
                let wait = Duration::from_nanos((start + end).saturating_sub(clock.now_ns()));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = &mut load_over => return,
                }
                windows.push(m.split(key).await);
            }
        };
        tokio::join!(load, boundaries);
        if let Some(late) = sink.late_s {
            self.late_s = self.late_s.max(late);
        }
        // The stages the load reached: all, or up to the one an interruption cut short (a
        // shard's `levels_done`, by which the merge refuses a shard that stopped early).
        let began = sink.started.is_none();
        let stopped_in = Stages::stage_at(&ends, clock.now_ns().saturating_sub(sink.start_ns));
        let (interrupted, _) = sink.close();
        self.close_server_window().await;
        windows.push(self.server_window.take());
        let mut windows = windows.into_iter();
        let complete = !interrupted && !self.shutdown.is_stopping();
        let reached = match (complete, began) {
            (true, _) => shapes.len(),
            (false, true) => stopped_in + 1,
            (false, false) => 0,
        };
        for ((shape, key), mut acc) in shapes.iter().zip(keys).zip(accs) {
            observer.level_started(shape);
            let summary = acc.end_run();
            observer.run_finished(&self.run_report(shape, 0, &summary));
            // A stage's window is bounded by its times, not by its requests (those in flight
            // at a boundary are counted by the server partly in each stage): no cross-check.
            self.server_window = windows.next().flatten();
            self.window_has_its_requests = false;
            let mut level = <Self as Workload>::finish(self, acc);
            self.window_has_its_requests = true;
            if !complete {
                level.incomplete = true;
                doc.metadata.incomplete = true;
            }
            if level
                .requests
                .as_ref()
                .is_some_and(|c| c.succeeded + c.failed > 0)
            {
                observer.level_finished(&key, &level);
                doc.results.insert(key, level);
            }
        }
        // (`finish` counted every stage.)
        self.levels_done = self
            .levels_done
            .saturating_sub(shapes.len().saturating_sub(reached) as u64);
        <Self as Workload>::annotate(self, doc);
        if let Some(path) = &self.config.results_file {
            tokenomics_stats::write_json_atomic(path, &*doc)?;
            observer.saved(path);
        }
        Ok(!complete)
    }

    /// A sustained run's operation: sends a built body as a chat or text completion, streamed or
    /// not as configured, timed on the benchmark's clock.
    fn completion_op(&self) -> impl sustained::Op {
        let (endpoint, stream, clock) = (self.config.endpoint, self.config.stream, self.clock);
        move |mut conn: Connection, body: Bytes| async move {
            let record = conn.completion(endpoint, stream, body, &clock).await;
            (conn, record)
        }
    }

    /// The bodies of a sustained run seeded with `seed`, chunk by chunk, for its [`BodyFeed`]:
    /// the global prompt sequence in chunks (each from its own seed, so every shard draws the
    /// same), a shard keeping its part; a trace's requests in order, each asking for its own
    /// output.
    fn body_maker(&self, seed: u64) -> impl FnMut(u64) -> Vec<Bytes> + Send + 'static {
        let (config, prompts, shard) =
            (self.config.clone(), self.prompts.clone(), self.config.shard);
        let mut next_chunk = 0u64;
        move |_: u64| -> Vec<Bytes> {
            // Chunks of the global sequence, in order; a shard keeps its part of each, and draws
            // on when a chunk has none of its part (more shards than a chunk has prompts).
            loop {
                let chunk = next_chunk;
                next_chunk += 1;
                let first = chunk.saturating_mul(FEED_CHUNK as u64);
                // A trace's requests in order, each asking for its own output; or drawn prompts.
                let drawn: Vec<(Prompt, Option<u64>)> = match &config.trace {
                    Some(trace) => trace
                        .prompts(first as usize, FEED_CHUNK)
                        .into_iter()
                        .map(|(p, tokens)| (p, Some(tokens)))
                        .collect(),
                    None => prompts
                        .draw(FEED_CHUNK, run_seed(seed, chunk, 1))
                        .into_iter()
                        .map(|p| (p, None))
                        .collect(),
                };
                if drawn.is_empty() {
                    return Vec::new();
                }
                let bodies: Vec<Bytes> = drawn
                    .into_iter()
                    .enumerate()
                    .filter(|(j, _)| shard.is_none_or(|s| s.takes(first + *j as u64)))
                    .map(|(_, (p, exact))| match exact {
                        Some(tokens) => config.exact_body(p, tokens),
                        None => config.body(p, config.max_tokens),
                    })
                    .collect();
                if !bodies.is_empty() {
                    return bodies;
                }
            }
        }
    }

    /// One run of a conversation level: sessions of turns, each with the history so far
    /// ([`crate::conversation`]); every turn goes into `acc` (and its turn's figures) as it
    /// finishes. Returns whether a request was abandoned by an interruption.
    async fn conversation_run(
        &mut self,
        conv: Conversations,
        shape: &Shape,
        run: usize,
        acc: &mut LevelAccumulator,
        observer: &mut dyn Observer,
        checkpoint: &mut (dyn FnMut(&LevelAccumulator) + Send),
    ) -> bool {
        let seed = run_seed(self.config.seed, shape.seed_level(), run as u64);
        let limits = self.config.limits_for(shape);
        let sessions = conv.sessions_for(shape, &limits);
        // A shard runs its part: every N-th session of the run's one sequence (so each session
        // has the script and think times it has on one machine), of a closed level's users and
        // session count, of an open level's schedule of session starts.
        let shard = self.config.shard;
        let schedule = match shape {
            Shape::Open(open) => {
                let session_limits = Limits {
                    num_requests: sessions,
                    ..limits
                };
                let (times, _) = crate::load::schedule(open, &session_limits, seed);
                Some(match shard {
                    Some(s) => s.keep(times),
                    None => times,
                })
            }
            _ => None,
        };
        let sessions = match (&schedule, shard) {
            (Some(times), _) => Some(times.len() as u64),
            (None, Some(s)) => sessions.map(|n| s.part(n)),
            (None, None) => sessions,
        };
        let prompts = self.prompts.clone();
        let (mut next_chunk, mut next_session) = (0u64, 0u64);
        let make = move |_: u64| loop {
            let chunk = next_chunk;
            next_chunk += 1;
            let scripts = conv.scripts(&prompts, SESSION_CHUNK, run_seed(seed, chunk, 5));
            if scripts.is_empty() {
                return Vec::new();
            }
            let mine: Vec<(u64, crate::conversation::Script)> = scripts
                .into_iter()
                .map(|script| {
                    next_session += 1;
                    (next_session - 1, script)
                })
                .filter(|(i, _)| shard.is_none_or(|s| s.takes(*i)))
                .collect();
            if !mine.is_empty() {
                return mine;
            }
        };
        let feed = Arc::new(BodyFeed::start(make, sessions, SESSION_CHUNK).await);
        let (due, planned_ns) = self.next_on_timetable().await;
        let clock = self.clock;
        let op = self.completion_op();
        let client = self.pool.client().clone();
        let plan = crate::conversation::Plan {
            client: &client,
            clock,
            op,
            feed,
            config: Arc::new(self.config.clone()),
            think_time: conv.think_time,
            seed: run_seed(seed, 0x7417, 0),
            sessions,
            limits,
            shutdown: self.shutdown.clone(),
            progress: self.progress.clone(),
            start_ns: planned_ns,
        };
        let key = [shape.key()];
        let mut sink = LevelSink::new(
            &key,
            run,
            std::slice::from_mut(acc),
            observer,
            &mut self.requests,
            &mut self.client_tokens,
            clock,
            checkpoint,
        );
        sink.due = due;
        let tally = match (schedule, self.config.local_shape(shape)) {
            (Some(times), _) => crate::conversation::open(plan, times, &mut sink).await,
            (None, Shape::Closed { concurrency } | Shape::Burst { batch: concurrency }) => {
                crate::conversation::closed(plan, concurrency, &mut sink).await
            }
            (None, Shape::Open(_)) => crate::conversation::SessionTally::default(),
        };
        if let Some(late) = sink.late_s {
            self.late_s = self.late_s.max(late);
        }
        let (interrupted, cancelled) = sink.close();
        acc.add_cancelled(cancelled);
        acc.end_sessions(tally);
        interrupted
    }

    /// The warm-up requests before a level: one at a time, not recorded.
    async fn warm_up_requests(&mut self, shape: &Shape, observer: &mut dyn Observer) {
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

    /// With shared prefixes: the level's expected prefix-cache figures (see
    /// [`tokenomics_stats::prefix_cache`]), from its planned measured requests and the groups
    /// already cached, and the groups it will have cached once it ran.
    ///
    /// A burst's batch leaves at once, a closed loop's first `concurrency` requests too (their
    /// cold groups all miss), an open loop's requests one by one; a warm-up period (a duration)
    /// is taken to have carried every group. A timed level's count is not known before: its
    /// expectation is the steady rate.
    fn expect_prefix_cache(&mut self, shape: &Shape) -> Option<PrefixCacheBlock> {
        if let Some(trace) = &self.config.trace {
            return Some(trace.expected_prefix_cache(self.config.num_runs));
        }
        let w = self.config.shared_prefix?;
        let limits = self.config.limits_for(shape);
        let (per_run, wave) = match *shape {
            Shape::Burst { batch } => (Some(batch), batch),
            Shape::Closed { concurrency } => (limits.num_requests, concurrency),
            Shape::Open(_) => (limits.num_requests, 1),
        };
        let mut warm = self.prefix_warm;
        if !matches!(shape, Shape::Burst { .. }) && !limits.warmup.is_zero() {
            warm = w.groups;
        }
        let misses = per_run.map_or(0, |n| {
            tokenomics_stats::prefix_cache::first_misses(n, w.groups, warm, wave)
        });
        let requests = per_run.map(|n| n.saturating_mul(self.config.num_runs.max(1)));
        self.prefix_warm = per_run.map_or(w.groups, |n| warm.max(n.min(w.groups)));
        Some(w.block(requests, misses))
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
        self.warm_up_requests(shape, observer).await;
        if let Some(w) = &self.config.shared_prefix {
            // One at a time: each warm-up request's group is cached for the level.
            self.prefix_warm = self.prefix_warm.max(self.config.warmup_runs.min(w.groups));
        }
        // After the warm-up's requests have finished: the server's counters from here on are
        // the level's.
        self.open_server_window(&shape.key()).await;
    }

    fn begin(&mut self, shape: &Shape, observer: &mut dyn Observer) -> LevelAccumulator {
        observer.level_started(shape);
        self.load_watch = Some(LoadWatch::start());
        if let Some(block) = self.expect_prefix_cache(shape) {
            observer.prefix_cache_expected(&shape.key(), &block);
            self.prefix_expected = Some(block);
        }
        self.probe_records.clear();
        self.progress.new_level(self.clock.now_ns());
        // A shard's level describes the whole run's load; its steady state, its own part.
        let acc = LevelAccumulator::new(*shape, self.config.limits_for(shape), self.config.stream)
            .with_target(self.config.local_shape(shape).target_in_flight())
            .with_slo(self.config.goodput)
            .with_exact_limit(self.config.exact_limit)
            .with_confidence(self.config.confidence)
            .with_timeline(self.config.timeline_interval)
            .with_endpoints(&self.pool.client().api_bases());
        match self.config.conversation {
            // Users think between turns: the steady state is found around the mean in flight.
            Some(c) => acc.with_target(None).with_turns(c.block_tokens),
            None => acc,
        }
    }

    async fn run(
        &mut self,
        shape: &Shape,
        run: usize,
        acc: &mut LevelAccumulator,
        observer: &mut dyn Observer,
        checkpoint: &mut (dyn FnMut(&LevelAccumulator) + Send),
    ) -> bool {
        let complete = match shape {
            Shape::Burst { batch } => {
                let records = self.burst_run(*batch, run).await;
                self.client_tokens = records
                    .iter()
                    .map(crate::server_metrics::client_output_tokens)
                    .fold(self.client_tokens, u64::saturating_add);
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
                !records.iter().any(is_interrupted)
            }
            _ => {
                let interrupted = self
                    .sustained_run(shape, run, acc, observer, checkpoint)
                    .await;
                let summary = acc.end_run();
                observer.run_finished(&self.run_report(shape, run, &summary));
                // A sustained run stopped by the shutdown sent fewer requests than its limits
                // asked for, even when every request it sent finished within the grace period.
                !interrupted && !self.shutdown.is_stopping()
            }
        };
        // Every request of the run has finished: the server's counters include all of them.
        self.close_server_window().await;
        complete
    }

    fn snapshot(acc: &LevelAccumulator) -> Option<ChatLevel> {
        Some(acc.snapshot())
    }

    fn finish(&mut self, acc: LevelAccumulator) -> ChatLevel {
        self.levels_done += 1;
        let cache = acc.cache_tally();
        // A conversation's expectation comes from its sessions' histories, as they ran.
        let history = acc.history_cache();
        let mut level = acc.finish();
        let simulated = self.config.simulated.is_some();
        level.client_load = self.load_watch.take().map(|w| w.block(simulated));
        level.cost = self.config.cost.and_then(|c| c.chat_level(&level));
        if let Some(rate) = self.config.probes_sent_here() {
            let records = std::mem::take(&mut self.probe_records);
            level.probes = crate::probes::block(rate, &records, self.config.confidence);
        }
        if let (Some(m), Some(w)) = (&self.server_metrics, self.server_window.take()) {
            // A server that also served other shards counted their tokens too.
            let alone = self.config.shard.is_none_or(|s| s.count == 1);
            let alone = alone && self.window_has_its_requests;
            level.server_metrics = Some(w.block(m.source(), alone.then_some(self.client_tokens)));
            if let Some(t) = level.timeline.as_mut() {
                t.server = Some(crate::metrics::series::server_buckets(t, w.points()));
            }
        }
        if let Some(expected) = self.prefix_expected.take().or(history) {
            let mut block =
                expected.measured(cache.reporting, cache.prompt_tokens, cache.cached_tokens);
            // The server's own counters, where it has them (vLLM, the simulator).
            block.server_hit_rate = level.server_metrics.as_ref().and_then(|m| {
                match (m.counters.prefix_hits, m.counters.prefix_queries) {
                    (Some(hits), Some(queries)) if queries > 0.0 => Some(hits / queries),
                    _ => None,
                }
            });
            level.prefix_cache = Some(block);
        }
        level
    }

    fn level_finished(&mut self, key: &str, level: &ChatLevel, observer: &mut dyn Observer) {
        observer.level_finished(key, level);
    }

    fn annotate(&self, doc: &mut ChatDocument) {
        if let Some(shard) = doc.metadata.shard.as_mut() {
            shard.late_seconds = self.late_s;
            shard.levels_done = self.levels_done;
        }
    }
}

/// Bodies drawn at a time by a sustained run's feed: the global prompt sequence is drawn in
/// chunks of this many, each from its own seed (so every shard draws the same sequence).
const FEED_CHUNK: usize = 256;

/// Sessions' scripts made at a time by a conversation run's feed (and kept ready ahead).
const SESSION_CHUNK: usize = 64;

/// Distinct prompts a level's probes cycle through.
const PROBE_BODIES: usize = 64;

/// A run on a timetable that starts later than this says so.
const LATE_ENOUGH_TO_SAY: Duration = Duration::from_millis(10);

/// How often a long run's records file is flushed, so a crash loses at most this much of it.
const RECORDS_FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

fn is_interrupted(r: &RequestRecord) -> bool {
    matches!(r.error, Some(tokenomics_client::Error::Interrupted))
}

/// Where a sustained run's requests go as they finish: the level's figures, the observer and the
/// records file. Warm-up requests are dropped; cancelled ones only counted.
struct LevelSink<'a> {
    /// The level's key (one per stage of a stage list).
    keys: &'a [String],
    run: usize,
    /// The level's figures (one per stage of a stage list).
    accs: &'a mut [LevelAccumulator],
    /// A stage list: when each stage ends, ns after the load's start, and whether a request's
    /// stage is that of its scheduled time (open loop) or of its send (closed loop).
    stages: Option<(Vec<u64>, bool)>,
    /// When the load started (ns on the clock).
    start_ns: u64,
    /// Told when the load starts (its start, ns on the clock), once.
    started: Option<oneshot::Sender<u64>>,
    observer: &'a mut dyn Observer,
    requests: &'a mut Option<RequestsFile>,
    clock: Clock,
    origin_ns: u64,
    /// On a timetable: when the run was due to start (wall clock).
    due: Option<SystemTime>,
    /// On a timetable: how late it started, seconds.
    late_s: Option<f64>,
    /// A shard's open loop: its requests' places in the global schedule are `i·N + index`.
    global_index: Option<Shard>,
    interrupted: bool,
    cancelled: u64,
    /// Output tokens of every request sent (warm-up and cancelled ones too: the server counted
    /// them), for the cross-check with the server's metrics.
    client_tokens: &'a mut u64,
    checkpoint: &'a mut (dyn FnMut(&LevelAccumulator) + Send),
    /// When the records file was last flushed (it is, every second of a long run).
    flushed: std::time::Instant,
}

impl<'a> LevelSink<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        keys: &'a [String],
        run: usize,
        accs: &'a mut [LevelAccumulator],
        observer: &'a mut dyn Observer,
        requests: &'a mut Option<RequestsFile>,
        client_tokens: &'a mut u64,
        clock: Clock,
        checkpoint: &'a mut (dyn FnMut(&LevelAccumulator) + Send),
    ) -> Self {
        Self {
            keys,
            run,
            accs,
            stages: None,
            start_ns: 0,
            started: None,
            observer,
            requests,
            clock,
            origin_ns: 0,
            due: None,
            late_s: None,
            global_index: None,
            interrupted: false,
            cancelled: 0,
            client_tokens,
            checkpoint,
            flushed: std::time::Instant::now(),
        }
    }

    /// Splits the run into stages ending `ends_ns` after the load's start, a request's stage
    /// being that of its scheduled time (`by_schedule`) or of its send.
    fn with_stages(mut self, ends_ns: Vec<u64>, by_schedule: bool) -> Self {
        self.stages = Some((ends_ns, by_schedule));
        self
    }

    /// The stage of a request (0 without stages).
    fn stage_of(&self, s: &Sent) -> usize {
        let Some((ends, by_schedule)) = &self.stages else {
            return 0;
        };
        let at = match (by_schedule, s.scheduled_ns) {
            (true, Some(due)) => due,
            _ => s.record.timing.send_ns,
        };
        crate::stages::Stages::stage_at(ends, at.saturating_sub(self.start_ns))
    }

    /// Flushes the records file at the run's end; returns whether a request was abandoned by
    /// an interruption, and how many were cancelled at the level's end.
    fn close(self) -> (bool, u64) {
        if let Some(file) = self.requests.as_mut() {
            if let Err(e) = file.flush() {
                self.observer.records_failed(&e);
                *self.requests = None;
            }
        }
        (self.interrupted, self.cancelled)
    }
}

impl Sink for LevelSink<'_> {
    fn begin(&mut self, origin_ns: u64, start_ns: u64) {
        self.origin_ns = origin_ns;
        self.start_ns = start_ns;
        if let Some(started) = self.started.take() {
            let _ = started.send(start_ns);
        }
        match &self.stages {
            Some((ends, _)) => {
                for (i, acc) in self.accs.iter_mut().enumerate() {
                    let from = start_ns + if i == 0 { 0 } else { ends[i - 1] };
                    acc.begin_run(from.max(origin_ns));
                    acc.timeline_begin(from, from.max(origin_ns));
                }
            }
            None => {
                for acc in self.accs.iter_mut() {
                    acc.begin_run(origin_ns);
                    acc.timeline_begin(start_ns, origin_ns);
                }
            }
        }
        if let Some(due) = self.due {
            // On the wall clock, which the timetable is on: the benchmark's clock starts with the
            // process, so a shard that starts later than it has run could not say how late.
            let ahead = Duration::from_nanos(start_ns.saturating_sub(self.clock.now_ns()));
            let started = SystemTime::now().checked_add(ahead).unwrap_or(due);
            let late = started.duration_since(due).unwrap_or(Duration::ZERO);
            self.late_s = Some(late.as_secs_f64());
            if late >= LATE_ENOUGH_TO_SAY {
                self.observer.run_late(&self.keys[0], self.run, late);
            }
        }
    }

    fn done(&mut self, s: Sent) {
        let i = self.stage_of(&s);
        let key = self.keys[i].as_str();
        *self.client_tokens = self
            .client_tokens
            .saturating_add(crate::server_metrics::client_output_tokens(&s.record));
        // A request given up has no end of its own: it ended now, as it reached the sink.
        let end_ns = s
            .record
            .timing
            .end_ns
            .unwrap_or_else(|| self.clock.now_ns());
        let aborted = sustained::is_aborted(&s.record);
        self.accs[i].timeline_add(crate::metrics::series::Ended {
            record: &s.record,
            end_ns,
            cancelled: s.cancelled || aborted,
        });
        if s.warmup {
            return;
        }
        if let Some(t) = s.turn {
            self.accs[i].turn_sent(t.session, t.turn);
        }
        if let Some(at) = s.scheduled_ns {
            self.accs[i].add_arrival(at, s.record.timing.send_ns);
        }
        let r = &s.record;
        if !s.cancelled && !aborted {
            self.interrupted |= is_interrupted(r);
            if let Some(e) = &r.error {
                self.observer.request_failed(key, self.run, e);
            }
            self.observer.request_done(key, self.run, r);
        }
        let scheduled = s.scheduled_ns.map(|at| Scheduled {
            scheduled_ns: at,
            slot_wait_ns: s.slot_wait_ns,
        });
        if let Some(file) = self.requests.as_mut() {
            let index = match self.global_index {
                Some(shard) => s
                    .seq
                    .saturating_mul(u64::from(shard.count))
                    .saturating_add(u64::from(shard.index)),
                None => s.seq,
            };
            let place = Place {
                level: key,
                run: self.run,
                index,
                origin_ns: self.origin_ns,
                late_s: self.late_s,
                turn: s.turn,
            };
            let written = if s.cancelled {
                file.write_cancelled(&place, r, scheduled.as_ref(), &self.clock)
            } else {
                file.write(&place, r, scheduled.as_ref(), &self.clock)
            };
            let written = written.and_then(|()| {
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
        if s.cancelled {
            self.cancelled += 1;
            return;
        }
        if aborted {
            self.accs[i].add_aborted(r);
            return;
        }
        self.accs[i].add_request(r, scheduled.as_ref());
        if let Some(t) = s.turn {
            self.accs[i].add_turn(t.session, t.turn, t.think_ns, r);
        }
        (self.checkpoint)(&self.accs[i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharded_sessions_and_stages_need_a_part_for_every_shard() {
        use crate::conversation::{Conversations, ThinkTime};
        let refusal = |c: &ChatConfig| c.check_timetable().err().map(|e| e.to_string());
        let mut c = ChatConfig {
            shard: Some(Shard::new(1, 2).unwrap()),
            start_at: Some(SystemTime::now()),
            levels: vec![Shape::Closed { concurrency: 4 }],
            conversation: Some(Conversations {
                turns: Some(2),
                think_time: ThinkTime::default(),
                sessions_per_run: Some(1),
                block_tokens: 16,
            }),
            ..ChatConfig::default()
        };
        c.limits.duration = Some(Duration::from_secs(2));
        let said = refusal(&c).expect("one session for two shards");
        assert!(said.contains("--num_sessions 1 over 2 shards"), "{said}");
        c.conversation = c.conversation.map(|v| Conversations {
            sessions_per_run: Some(2),
            ..v
        });
        assert_eq!(refusal(&c), None);

        // A stage list lasts its stages (no --duration); each stage needs a user per shard.
        let open = crate::load::OpenLoop {
            rate: 1.0,
            arrival: crate::load::Arrival::Poisson,
            burstiness: 1.0,
            max_concurrency: None,
            ramp: None,
        };
        let stages: crate::stages::Stages = "concurrency:4@1,1@1".parse().unwrap();
        c.conversation = None;
        c.limits.duration = None;
        c.levels = stages.shapes(&open);
        c.stages = Some(stages);
        let said = refusal(&c).expect("a stage of one user for two shards");
        assert!(said.contains("concurrency 1 over 2 shards"), "{said}");
        let stages: crate::stages::Stages = "concurrency:4@1,2@1".parse().unwrap();
        c.levels = stages.shapes(&open);
        c.stages = Some(stages);
        assert_eq!(refusal(&c), None);
        assert_eq!(
            c.timetable().map(|t| t.run_length),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn a_warm_up_never_asks_for_more_tokens_than_its_maximum() {
        let mut config = ChatConfig::default();
        config.extra_body.insert("ignore_eos".into(), true.into());
        config.extra_body.insert("min_tokens".into(), 200.into());
        let body: Value =
            serde_json::from_slice(&config.body(Prompt::Text("hi".into()), WARMUP_MAX_TOKENS))
                .unwrap();
        assert_eq!(body["max_tokens"], 30);
        assert_eq!(body["min_tokens"], 30);
        let body: Value =
            serde_json::from_slice(&config.body(Prompt::Text("hi".into()), 200)).unwrap();
        assert_eq!(body["min_tokens"], 200);
    }
}
