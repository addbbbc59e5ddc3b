//! The JSON result documents.
//!
//! Every field the original scripts wrote is here under its original name and place; fields this
//! project adds are optional, so a file written by the originals loads unchanged, and unknown
//! fields are kept (`extra`) so a file read and written again loses nothing.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    ArrivalBlock, Goodput, LimitsBlock, Load, MergedBlock, Mode, Percentiles, Preflight,
    ShardBlock, Simulated, SteadyState,
};
use crate::{Distribution, Stat};

/// The document `oai-bench` writes (and `oai_server_benchmark.py` wrote).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatDocument {
    /// How the run was configured.
    pub metadata: ChatMetadata,
    /// One entry per load level; for burst mode the key is the batch size as a string.
    pub results: IndexMap<String, ChatLevel>,
}

/// `metadata` of a [`ChatDocument`]: the run's configuration, the original fields first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatMetadata {
    /// When the run started, local wall-clock time as `YYYY-MM-DDTHH:MM:SS.ffffff` (no zone).
    pub timestamp: String,
    /// The model name sent in every request.
    pub model: String,
    /// The prompt set, as given on the command line (see `tokenomics-datasets`).
    pub dataset_key: String,
    /// The server's API base URL.
    pub api_base: String,
    /// Burst sizes or closed-loop concurrencies of the levels, in order (open-loop rates are
    /// listed in `levels` only).
    pub batch_sizes: Vec<u64>,
    /// Measured runs per level.
    pub num_runs: u64,
    /// The most output tokens asked for per request.
    pub max_tokens: u64,
    /// Sampling temperature sent.
    pub temperature: f64,
    /// Seed of the prompt draw and the arrival schedules.
    pub seed: u64,
    /// Unmeasured runs before each level.
    pub warmup_runs: u64,
    /// Client worker threads (`--n_cores`).
    pub n_cores: u64,
    /// Free text given with `--description` (empty when none).
    #[serde(default)]
    pub description: String,
    /// `tokenomics VERSION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// How requests were released (absent in the original's files: bursts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// The keys of the levels, in order (closed and open loops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<Vec<String>>,
    /// When a sustained level stops (closed and open loops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsBlock>,
    /// The arrival process (open loops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival: Option<ArrivalBlock>,
    /// `chat` or `completions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Whether responses were streamed (`--stream`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// The limit on each request, seconds, from send to the last byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
    /// The prompts: name, source and row count (see `tokenomics-datasets`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<Value>,
    /// Whether every output was forced to `max_tokens` (`--ignore_eos`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs_forced: Option<bool>,
    /// The run measured the built-in simulator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulated: Option<Simulated>,
    /// Body fields sent with every request beyond the standard ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_body: Option<Map<String, Value>>,
    /// What the check before the run found (absent with `--no_preflight`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preflight: Option<Preflight>,
    /// This document is one shard of a run spread over several machines (`--shard`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardBlock>,
    /// This document was merged from the shards of one run (`tokenomics-merge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergedBlock>,
    /// The price of the serving hardware (`--gpu_hour_cost`, `--gpus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::CostBasis>,
    /// How a sweep chose its levels (`--sweep`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<crate::SweepBlock>,
    /// What an SLO search found (`--slo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_search: Option<crate::SloSearchBlock>,
    /// The server's certificate was not checked (`--insecure` against `https://`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure_tls: bool,
    /// With several endpoints (`api_base` a comma-separated list): how requests were spread
    /// over them, `round_robin` or `least_loaded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<String>,
    /// Stages (`--stages`): the levels run as one continuous load, in order, each with how long
    /// it lasted; each stage is a level of `results` under its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<StageSpec>>,
    /// Multi-turn conversations (`--sessions`, `--session_rate`): how each session was made.
    /// A level's load is then sessions (its concurrency users, its rate sessions per second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationSpec>,
    /// The run was interrupted: not every level ran, or one was cut short.
    #[serde(default, skip_serializing_if = "is_false")]
    pub incomplete: bool,
    /// Any unknown field of a file being read.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One stage of a continuous load (`metadata.stages`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSpec {
    /// Its level's key in `results` (`stage1:4`, `stage2:10`, …).
    pub key: String,
    /// Its concurrency (closed loop) or rate, requests/s (open loop).
    pub level: f64,
    /// When it began, seconds after the load's start (the stages before it).
    pub start_seconds: f64,
    /// How long it lasted, seconds.
    pub seconds: f64,
    /// Unknown fields of a file being read, kept so that writing it again loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// How the sessions of a conversation run were made (`metadata.conversation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationSpec {
    /// `synthetic`: every user turn a prompt of the prompt source, `turns` of them per
    /// session; `dataset`: each session one conversation of the dataset, its user messages the
    /// turns (at most `turns`).
    pub source: String,
    /// User turns per session (`--turns`; with a dataset, the most taken of each conversation;
    /// `None`: all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns: Option<u64>,
    /// Time between an answer's end and the next turn's send, as given (`--think_time`):
    /// `SECONDS`, `exp:MEAN` or `uniform:LO,HI`.
    pub think_time: String,
    /// Its mean, seconds.
    pub think_time_mean_seconds: f64,
    /// Sessions per run (`--num_sessions`; `None`: until `--duration` ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions_per_run: Option<u64>,
    /// Unknown fields of a file being read, kept so that writing it again loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A conversation level's sessions, and its figures per turn index (`results.<level>.conversation`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConversationBlock {
    /// Sessions started, over every run of the level.
    pub sessions: u64,
    /// Of those, the sessions whose every turn succeeded.
    pub completed: u64,
    /// Turns sent per session started.
    pub turns_per_session: Stat,
    /// The think time achieved: from an answer's last byte to the next turn's send, seconds
    /// (the client's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think_time: Option<Distribution>,
    /// Figures per turn index: turn 1 is every session's first request, turn k its k-th, sent
    /// with the k − 1 earlier turns and their answers as history.
    pub turns: Vec<TurnLevel>,
    /// Unknown fields of a file being read, kept so that writing it again loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One turn index of a conversation level: the level's figures over every session's k-th turn.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TurnLevel {
    /// The turn, from 1.
    pub turn: u64,
    /// Its requests: succeeded, failed by kind.
    pub requests: RequestCounts,
    /// Tokens per request (the prompt grows with the history).
    pub tokens: ChatTokens,
    /// Its streaming latencies, in seconds (streamed runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<ChatLatency>,
    /// Unknown fields of a file being read, kept so that writing it again loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The results of one load level (one batch size in burst mode).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatLevel {
    /// Tokens per request.
    pub tokens: ChatTokens,
    /// Per-run timings of the level.
    pub timings: ChatTimings,
    /// Tokens and requests per second.
    pub throughput: ChatThroughput,
    /// Streaming latency figures, in seconds (present for `--stream` runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<ChatLatency>,
    /// How many requests succeeded and failed, by error kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<RequestCounts>,
    /// Requests that met every objective (`--goodput`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goodput: Option<Goodput>,
    /// How the level loaded the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<Load>,
    /// Which percentiles came from a histogram (absent: every percentile is exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentiles: Option<Percentiles>,
    /// What the level's throughput costs (with `metadata.cost`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::LevelCost>,
    /// What the server's own metrics said over the level (`--server_metrics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_metrics: Option<crate::ServerMetricsBlock>,
    /// The level over time, in fixed buckets on the run's clock (`--timeline_interval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<crate::TimelineBlock>,
    /// Probe requests sent beside the level's load (`--probe_rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<crate::ProbeBlock>,
    /// Each endpoint's part of the level, in the order given (`--api_base` with several base
    /// URLs); its request counts add up to the level's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<EndpointLevel>>,
    /// Shared prefixes (`--shared_prefix_tokens`): the prefix-cache hit rate expected before
    /// the level and the one measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_cache: Option<crate::PrefixCacheBlock>,
    /// Multi-turn conversations: the level's sessions and its figures per turn index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationBlock>,
    /// What the level cost the client's own machine, and whether that may have bent its
    /// timings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_load: Option<crate::ClientLoadBlock>,
    /// The level was cut short by an interruption.
    #[serde(default, skip_serializing_if = "is_false")]
    pub incomplete: bool,
    /// Unknown fields of a file being read, kept so that writing it again loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One endpoint's part of a level: the level's figures over the requests sent to it alone
/// (pooled as the level's are; its steady state found around its own mean in flight).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointLevel {
    /// The endpoint's base URL.
    pub api_base: String,
    /// Its requests: succeeded, failed by kind, aborted.
    pub requests: RequestCounts,
    /// Tokens per request of its successful requests.
    pub tokens: ChatTokens,
    /// Its tokens and requests per second, over its own runs' spans.
    pub throughput: ChatThroughput,
    /// Its streaming latencies, in seconds (streamed runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<ChatLatency>,
    /// Its requests that met every objective (`--goodput`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goodput: Option<Goodput>,
    /// Unknown fields of a file being read, kept so that writing it again loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A level's `tokens` block: per-request token counts, pooled over every successful request of
/// the level's runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatTokens {
    /// Prompt tokens per request, as the server's `usage` reported them.
    pub input_per_request: Stat,
    /// Completion tokens per request (the server's `usage`, else content events counted).
    pub output_per_request: Stat,
    /// How many requests' output tokens came from the server's `usage` and how many were counted
    /// from content events: `{"usage": n}` or `{"events": n}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_token_source: Option<IndexMap<String, u64>>,
    /// Content events per streamed request: equal to the tokens when the server sends one token
    /// per event, fewer when it merges them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_events_per_request: Option<Stat>,
    /// Unknown fields of a file being read, kept so that writing it again loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A level's `timings` block: one value per run, in seconds (shared by the embedding document).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatTimings {
    /// First send → last response end (failed requests included).
    pub batch_total_seconds: Stat,
    /// Earliest end of a successful request, from the run's first send.
    pub fastest_seconds: Stat,
    /// Latest end of a successful request, from the run's first send.
    pub slowest_seconds: Stat,
    /// `slowest_seconds − fastest_seconds`.
    pub spread_seconds: Stat,
    /// Unknown fields of a file being read, kept so that writing it again loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A level's `throughput` block.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatThroughput {
    /// Completion tokens of a run's successful requests / its `batch_total_seconds`, one value
    /// per run.
    pub batch_tokens_per_second: Stat,
    /// Completion tokens / (end − send) of each successful request, pooled over runs.
    pub request_tokens_per_second: Stat,
    /// Successful requests / the run's first send → last end, mean ± std over runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<Stat>,
    /// Throughput while requests in flight stayed near the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steady_state: Option<SteadyState>,
    /// Unknown fields of a file being read, kept so that writing it again loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Streaming latencies, in seconds, pooled over every successful request of a level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatLatency {
    /// Time to first token: send → first content (or reasoning) token.
    pub ttft: Distribution,
    /// Inter-token latency: every gap between consecutive content events, pooled.
    pub itl: Distribution,
    /// Time per output token after the first: (e2el − ttft) / (output tokens − 1), per request.
    pub tpot: Distribution,
    /// End-to-end latency: send → last byte of the response.
    pub e2el: Distribution,
    /// Send → first answer token after any reasoning (reasoning models only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_first_answer_token: Option<Distribution>,
    /// TTFT measured from the scheduled send time (open loops): waits in the client included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_from_schedule: Option<Distribution>,
    /// Unknown fields of a file being read, kept so that writing it again loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Request outcomes of one level.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestCounts {
    /// Measured requests that ended successfully.
    pub succeeded: u64,
    /// Measured requests that failed (after any retries).
    pub failed: u64,
    /// Retries made: always written by the embedding benchmark (0 included), absent from chat
    /// levels, which do not retry. A request that succeeded after retries counts once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    /// Requests still in flight when a timed level ended and cancelled there (neither succeeded
    /// nor failed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cancelled: u64,
    /// Requests the client aborted on purpose before they finished (`--cancel_rate`), neither
    /// succeeded nor failed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub aborted: u64,
    /// Failures by kind (`connect`, `timeout`, `http_status`, `bad_stream`, …).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub errors: IndexMap<String, ErrorCount>,
}

/// Failures of one kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorCount {
    /// Failed requests of this kind.
    pub count: u64,
    /// The message of the first failure of this kind.
    pub first_message: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// A field that is present, `null` or not: `Some(None)` for `null` (serde's `Option` alone would
/// read `null` as absent).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl RequestCounts {
    /// Counts one success.
    pub fn record_success(&mut self) {
        self.succeeded += 1;
    }

    /// Counts one failure of `kind`; `message` is called only for the first of its kind.
    pub fn record_failure(&mut self, kind: &str, message: impl FnOnce() -> String) {
        self.failed += 1;
        match self.errors.get_mut(kind) {
            Some(e) => e.count += 1,
            None => {
                self.errors.insert(
                    kind.to_string(),
                    ErrorCount {
                        count: 1,
                        first_message: message(),
                    },
                );
            }
        }
    }
}

/// The document `embed-bench` writes (and `embedding_benchmark.py` wrote).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbedDocument {
    /// How the run was configured.
    pub metadata: EmbedMetadata,
    /// Keyed `batch_{B}_seq_{L}` (bursts), `concurrency_{C}_seq_{L}` (closed loops) or
    /// `rate_{R}_seq_{L}` (open loops); `tok_{N}` in place of `seq_{L}` for texts of an exact
    /// token length (`--input_tokens`).
    pub results: IndexMap<String, EmbedLevel>,
}

/// `metadata` of an [`EmbedDocument`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbedMetadata {
    /// When the run started, local wall-clock time as `YYYY-MM-DDTHH:MM:SS.ffffff` (no zone).
    pub timestamp: String,
    /// The model name sent in every request.
    pub model: String,
    /// The server's API base URL.
    pub api_base: String,
    /// Requests sent at once per level.
    pub batch_sizes: Vec<u64>,
    /// Category names (`"short"`) or word counts (`200`), as given; with `--input_tokens`, the
    /// keys' `"tok_{N}"` (the lengths themselves are in `input_tokens`).
    pub sequence_lengths: Vec<Value>,
    /// Measured runs per level.
    pub num_runs: u64,
    /// Unmeasured runs before each level.
    pub warmup_runs: u64,
    /// Whether a batch's requests were sent concurrently (always, here; read as `true` when
    /// absent).
    #[serde(default = "yes")]
    pub concurrent_requests: bool,
    /// Seed of the generated texts.
    pub seed: u64,
    /// Free text given with `--description` (empty when none).
    #[serde(default)]
    pub description: String,
    /// `tokenomics VERSION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Texts per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs_per_request: Option<u64>,
    /// Retries allowed per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// The limit on each attempt of a request, seconds, from send to the last byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
    /// The dimension of the vectors: `Some(None)` (written as `null`) until one was received;
    /// `None` in the original's files, which do not have the field.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub embedding_dim: Option<Option<u64>>,
    /// The run measured the built-in simulator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulated: Option<Simulated>,
    /// What the check before the run found (absent with `--no_preflight`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preflight: Option<Preflight>,
    /// The server's certificate was not checked (`--insecure` against `https://`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure_tls: bool,
    /// With several endpoints (`api_base` a comma-separated list): how requests were spread
    /// over them, `round_robin` or `least_loaded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<String>,
    /// How requests were released, for closed and open loops (absent: bursts, as the
    /// original's files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// The load levels (concurrencies or rates) in order, closed and open loops; each runs once
    /// per sequence length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<Vec<String>>,
    /// When a sustained level stops (closed and open loops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsBlock>,
    /// The arrival process (open loops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival: Option<ArrivalBlock>,
    /// The run was interrupted: not every level ran, or one was cut short.
    #[serde(default, skip_serializing_if = "is_false")]
    pub incomplete: bool,
    /// `--input_tokens`: every text's length in tokens, and how it was counted (absent: word
    /// lengths, `sequence_lengths`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<EmbedInputTokens>,
    /// Unknown fields of a file being read, kept so that writing it again loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `metadata.input_tokens` of an [`EmbedDocument`]: texts of an exact token length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedInputTokens {
    /// Tokens per text, in order (the `tok_{N}` of the result keys).
    pub lengths: Vec<u64>,
    /// What counted them: `tokenizer` (a local `tokenizer.json`), `tokenize_endpoint` (the
    /// server's) or `estimate` (1.3 tokens per word: not exact).
    pub token_count_source: String,
    /// The tokenizer: a path, `hf:OWNER/NAME` or the endpoint's URL (absent for an estimate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<String>,
    /// The special tokens the server adds around each text, as its tokenize endpoint showed
    /// them (absent: not known); a server's usage counts them, so each input is reported as
    /// `before + N + after` prompt tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub special_tokens: Option<crate::prefix_cache::TemplateTokens>,
    /// Unknown fields of a file being read.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn yes() -> bool {
    true
}

/// The results of one load level (a batch size, a concurrency or a rate) and sequence length.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbedLevel {
    /// Tokens and embeddings per batch.
    pub tokens: EmbedTokens,
    /// Per-run timings, as for chat.
    pub timings: ChatTimings,
    /// Embeddings and tokens per second.
    pub throughput: EmbedThroughput,
    /// Per-request latency percentiles, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Distribution>,
    /// How many requests succeeded, failed and were retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<RequestCounts>,
    /// Each endpoint's part of the level, in the order given (`--api_base` with several base
    /// URLs); its request counts add up to the level's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<EmbedEndpointLevel>>,
    /// How a closed or open loop loaded the server: its shape, its limits, and what an open
    /// loop's schedule achieved (absent for bursts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<Load>,
    /// Which percentiles came from a histogram (absent: every percentile is exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentiles: Option<Percentiles>,
    /// What the level cost the client's own machine, and whether that may have bent its
    /// timings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_load: Option<crate::ClientLoadBlock>,
    /// The level was cut short by an interruption.
    #[serde(default, skip_serializing_if = "is_false")]
    pub incomplete: bool,
    /// Unknown fields of a file being read, kept so that writing it again loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One endpoint's part of an embeddings level: the level's figures over the requests sent to
/// it alone (its runs' spans are its own requests' first send to last end).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbedEndpointLevel {
    /// The endpoint's base URL.
    pub api_base: String,
    /// Its requests: succeeded, failed by kind, retried.
    pub requests: RequestCounts,
    /// Tokens and embeddings per batch of its requests.
    pub tokens: EmbedTokens,
    /// Its embeddings and tokens per second.
    pub throughput: EmbedThroughput,
    /// Its per-request latency percentiles, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Distribution>,
    /// Unknown fields of a file being read, kept so that writing it again loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A level's `tokens` block, one value per run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbedTokens {
    /// Input tokens of a run's successful requests.
    pub total_per_batch: Stat,
    /// Embeddings returned to a run's successful requests.
    pub embeddings_per_batch: Stat,
    /// How many requests' tokens came from `usage` and how many were estimated:
    /// `{"usage": n, "estimate": m}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_source: Option<IndexMap<String, u64>>,
    /// Unknown fields of a file being read, kept so that writing it again loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A level's `throughput` block.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbedThroughput {
    /// `embeddings_per_batch` / `batch_total_seconds`, one value per run.
    pub batch_embeddings_per_second: Stat,
    /// `total_per_batch` / `batch_total_seconds`, one value per run.
    pub batch_tokens_per_second: Stat,
    /// Embeddings / latency of each successful request (first attempt's send → final
    /// response), pooled over runs.
    pub request_embeddings_per_second: Stat,
    /// Input tokens / latency of each successful request, pooled over runs.
    pub request_tokens_per_second: Stat,
    /// Successful requests / the run's first send → last end, one value per run (closed and
    /// open loops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<Stat>,
    /// Unknown fields of a file being read, kept so that writing it again loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A result file of either kind, recognised by its shape.
#[derive(Debug, Clone)]
// One per file read: the size difference of its variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum AnyDocument {
    /// Written by `oai-bench`.
    Chat(ChatDocument),
    /// Written by `embed-bench`.
    Embed(EmbedDocument),
}

impl AnyDocument {
    /// Recognises a parsed JSON value: embedding documents have `sequence_lengths` in their
    /// metadata, chat documents `dataset_key`.
    pub fn from_value(value: Value) -> Result<Self, serde_json::Error> {
        let is_embed = value
            .get("metadata")
            .and_then(|m| m.get("sequence_lengths"))
            .is_some();
        if is_embed {
            serde_json::from_value(value).map(AnyDocument::Embed)
        } else {
            serde_json::from_value(value).map(AnyDocument::Chat)
        }
    }
}
