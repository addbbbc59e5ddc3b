//! The typed blocks this project adds beside the original fields of a result document: how a
//! level loaded the server ([`Load`]), its steady state ([`SteadyState`]), goodput
//! ([`Goodput`]), and the vocabulary they share ([`Mode`], [`Arrival`], [`AtEnd`]).
//!
//! Each serialises to exactly the JSON the book documents (`docs/src/results-file.md`), field by
//! field and in order; a reader takes fields, so a renamed field fails to compile instead of
//! printing NaN.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::document::is_false;
use crate::summary::nullable_f64;
use crate::{Distribution, Stat};

/// How requests are released: `metadata.mode`, and the tag of each level's [`Load`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// B requests at once, wait for all (the original's).
    Burst,
    /// C requests kept in flight.
    ClosedLoop,
    /// Requests on a schedule of arrival times.
    OpenLoop,
}

impl Mode {
    /// The name written in the documents and tables.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Burst => "burst",
            Mode::ClosedLoop => "closed_loop",
            Mode::OpenLoop => "open_loop",
        }
    }
}

/// How the inter-arrival times of an open loop are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Exponential inter-arrival times (a Poisson process).
    Poisson,
    /// Exactly 1/rate apart.
    Constant,
    /// Gamma-distributed with shape `burstiness` and mean 1/rate: below 1 burstier than Poisson,
    /// above 1 more regular (vLLM's `--burstiness`).
    Gamma,
    /// The times of a replayed trace (`--trace`); `request_rate` is its mean rate.
    #[cfg_attr(feature = "clap", value(skip))]
    Trace,
}

impl Arrival {
    /// The name written in the documents and taken on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Arrival::Poisson => "poisson",
            Arrival::Constant => "constant",
            Arrival::Gamma => "gamma",
            Arrival::Trace => "trace",
        }
    }
}

/// What happens to requests still in flight when a timed level is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum AtEnd {
    /// Let them finish; they are measured like any other.
    #[default]
    Wait,
    /// Cancel them; they are counted as `cancelled`, apart from successes and failures.
    Cancel,
}

impl AtEnd {
    /// The name written in the documents and taken on the command line.
    pub fn name(self) -> &'static str {
        match self {
            AtEnd::Wait => "wait",
            AtEnd::Cancel => "cancel",
        }
    }
}

/// When a sustained level stops (`metadata.limits`, and inside each sustained level's `load`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LimitsBlock {
    /// Measured requests per level (`null`: bounded by the duration only).
    pub num_requests: Option<u64>,
    /// Measured seconds per level (`null`: bounded by the request count only).
    pub duration_seconds: Option<f64>,
    /// Seconds of load before measuring.
    pub warmup_seconds: f64,
    /// What happened to requests still in flight when the duration ran out.
    pub at_end: AtEnd,
}

/// `metadata.arrival` of an open loop.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ArrivalBlock {
    /// How inter-arrival times were drawn.
    pub process: Arrival,
    /// Gamma shape (`--burstiness`); 1 is Poisson, and it is unused by the other processes.
    pub burstiness: f64,
    /// The cap on requests in flight, `null` when uncapped.
    pub max_concurrency: Option<u64>,
}

/// `metadata.simulated`: the run measured the built-in simulator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Simulated {
    /// The simulator preset that served the run (`--simulate`).
    pub preset: String,
    /// Model seconds per real second.
    pub time_scale: f64,
    /// Where `metadata.cost` came from when the run was priced at the preset's list price (not
    /// by `--gpu_hour_cost`): the price, its source, and the time scale it was multiplied by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
}

/// The `probes` block of a level (`--probe_rate`): small requests (one output token) sent on a
/// schedule of their own beside the level's load, outside any concurrency cap — how long the
/// load makes a newcomer wait. Latencies in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeBlock {
    /// Probes per second asked for (Poisson arrivals).
    pub rate: f64,
    /// Probes sent during the level.
    pub sent: u64,
    /// Probes that ended successfully.
    pub succeeded: u64,
    /// Probes that failed.
    pub failed: u64,
    /// Time to first token (streamed runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft: Option<crate::Distribution>,
    /// Send to the last byte.
    pub e2el: crate::Distribution,
}

/// An open loop whose rate rose (or fell) linearly through the level: `from_rate` at its start,
/// `to_rate` after `seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RampBlock {
    /// Requests per second at the level's start.
    pub from_rate: f64,
    /// Requests per second at the ramp's end.
    pub to_rate: f64,
    /// How long the ramp lasts, seconds.
    pub seconds: f64,
}

/// A level's `load` block: its shape, and for an open loop what the schedule achieved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
// One per level of a document, built once: the size of its open-loop variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Load {
    /// `batch_size` requests sent at once, the level waiting for all of them.
    Burst {
        /// Requests per burst.
        batch_size: u64,
    },
    /// A fixed number of requests kept in flight.
    ClosedLoop {
        /// Requests kept in flight.
        max_concurrency: u64,
        /// When the level stops (flattened into the block).
        #[serde(flatten)]
        limits: LimitsBlock,
    },
    /// Requests sent on a schedule of arrival times, whatever the server's pace.
    OpenLoop {
        /// Requests per second asked for (a ramp's mean rate).
        request_rate: f64,
        /// How inter-arrival times were drawn.
        arrival: Arrival,
        /// Gamma shape (`--burstiness`); 1 is Poisson.
        burstiness: f64,
        /// The cap on requests in flight, `null` when uncapped.
        max_concurrency: Option<u64>,
        /// A rate that changed through the level (`--ramp`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ramp: Option<RampBlock>,
        /// When the level stops (flattened into the block).
        #[serde(flatten)]
        limits: LimitsBlock,
        /// What the schedule achieved (flattened into the block).
        #[serde(flatten)]
        schedule: ScheduleBlock,
    },
}

impl Load {
    /// The mode this block is tagged with.
    pub fn mode(&self) -> Mode {
        match self {
            Load::Burst { .. } => Mode::Burst,
            Load::ClosedLoop { .. } => Mode::ClosedLoop,
            Load::OpenLoop { .. } => Mode::OpenLoop,
        }
    }

    /// What an open loop's schedule achieved (`None` for the other modes).
    pub fn schedule(&self) -> Option<&ScheduleBlock> {
        match self {
            Load::OpenLoop { schedule, .. } => Some(schedule),
            _ => None,
        }
    }
}

/// What an open loop measured about its own schedule, in seconds: the rate it had and the rate
/// achieved (pooled over runs), the send lag (actual send − scheduled time), the wait for a
/// concurrency slot (with a cap), and E2EL measured from the scheduled time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScheduleBlock {
    /// The rate the drawn schedule had, requests per second, over runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_rate: Option<Stat>,
    /// The rate requests were actually sent at, requests per second, over runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub achieved_rate: Option<Stat>,
    /// Actual send − scheduled time, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_lag: Option<Distribution>,
    /// Time spent waiting for a concurrency slot, seconds (with `--max_concurrency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_wait: Option<Distribution>,
    /// End-to-end latency measured from the scheduled send time (coordinated omission
    /// corrected), seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2el_from_schedule: Option<Distribution>,
    /// Whether the server kept up: how the latency to the first token grew through the level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_trend: Option<LatencyTrend>,
}

/// `load.latency_trend`: a least-squares line of each successful request's latency to its first
/// token (to its end when not streamed), measured from its *scheduled* time, against that time
/// (from its run's start), fitted to the second half of the level (the first is the server
/// filling up). A server that keeps up shows no trend there; one that cannot queues the excess,
/// and the wait grows through the level for as long as the level lasts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyTrend {
    /// Requests in the fit (those of the level's second half).
    pub samples: u64,
    /// Their mean latency, seconds.
    pub mean_seconds: f64,
    /// The line's slope: seconds of latency gained per second of the level.
    pub slope: f64,
    /// The slope over its standard error (`null` with too few samples or no scatter).
    #[serde(deserialize_with = "crate::summary::nullable_f64")]
    pub t: f64,
    /// The slope times the level's span of scheduled times: how much the latency grows over the
    /// level at that slope, seconds.
    pub growth_seconds: f64,
    /// The growth is large (more than [`LatencyTrend::MATERIAL_SHARE`] of the mean latency) and
    /// certain (t above [`LatencyTrend::SIGNIFICANT_T`]): the server did not keep up.
    pub oversaturated: bool,
}

impl LatencyTrend {
    /// A growth below this share of the mean latency is not called over-saturation.
    pub const MATERIAL_SHARE: f64 = 0.25;
    /// Nor one whose slope is less than this many standard errors from zero.
    pub const SIGNIFICANT_T: f64 = 4.0;
}

/// `throughput.steady_state`: throughput over the window in which requests in flight stayed at
/// or above `threshold_share` of the target, mean ± std over runs, with each run's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SteadyState {
    /// Output tokens that arrived inside the window per second of it.
    pub output_tokens_per_second: Stat,
    /// Successful requests per second in the window, each counted by the share of its
    /// send → end inside it.
    pub requests_per_second: Stat,
    /// The window's length, seconds.
    pub seconds: Stat,
    /// Share of the window (0 to 1) during which in-flight was at or above the threshold.
    pub coverage: Stat,
    /// The in-flight count aimed at: batch size, concurrency, or an open loop's time-weighted
    /// mean in flight.
    pub target_in_flight: Stat,
    /// The share of `target_in_flight` that opens and closes the window (0.9).
    pub threshold_share: f64,
    /// Each run's window, in run order.
    pub windows: Vec<Window>,
}

/// One run's steady-state window: nanoseconds from the run's start in a sustained level (so the
/// same in a merge of shards), on the benchmark's clock in a burst.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Where the window opens, nanoseconds (clock as above).
    pub start_ns: u64,
    /// Where the window closes, nanoseconds (clock as above).
    pub end_ns: u64,
    /// `end_ns − start_ns`, seconds.
    pub seconds: f64,
}

/// A level's `goodput` block: requests that met every objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goodput {
    /// The objectives a good request met.
    pub slo_ms: SloMs,
    /// Successful measured requests that met every objective given.
    pub good: u64,
    /// Measured requests, failed ones included.
    pub total: u64,
    /// good / total (`null` when nothing was measured).
    #[serde(deserialize_with = "nullable_f64")]
    pub share: f64,
    /// Good requests over the runs' first send → last end.
    #[serde(deserialize_with = "nullable_f64")]
    pub requests_per_second: f64,
}

/// The objectives of goodput, in milliseconds (`null` for one not given).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SloMs {
    /// Most time to first token, milliseconds.
    pub ttft: Option<f64>,
    /// Most time per output token, milliseconds.
    pub tpot: Option<f64>,
    /// Most end-to-end latency, milliseconds.
    pub e2el: Option<f64>,
}

/// `metadata.preflight`: what the check before the run found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preflight {
    /// The models `GET /models` listed (`null` when the server gave no list).
    pub models: Option<Vec<String>>,
    /// Whether the benchmark's model was among them (`null` without a list).
    pub model_listed: Option<bool>,
    /// The route of the one-token request: `chat`, `completions` or `embeddings`.
    pub probe: String,
    /// How long that request took, seconds.
    pub probe_seconds: f64,
}

/// A level's `client_load` block: what the level cost the client's own machine — the benchmark
/// process's CPU time against the worker threads it ran on, and the share of the machine's CPU
/// time a hypervisor stole meanwhile — and the warnings these gave (the console prints the same
/// lines after the level). From the level's start, after its warm-up requests, to its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientLoadBlock {
    /// How long the level took, seconds.
    pub seconds: f64,
    /// The process's CPU seconds (user + system, every thread) per second of the level; absent
    /// where the operating system does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<f64>,
    /// The worker threads the client ran on (`--n_cores`).
    pub worker_threads: usize,
    /// The share of the machine's CPU time, over all its CPUs, that the hypervisor stole during
    /// the level (0–1, from `/proc/stat`); absent off Linux.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stolen_share: Option<f64>,
    /// The simulated server ran in the same process (`--simulate`): `cpu_cores` counts its CPU
    /// time too, so it is not judged.
    #[serde(default, skip_serializing_if = "is_false")]
    pub simulator_in_process: bool,
    /// Why the level's timings may be the client's rather than the server's, one line each: the
    /// process used at least 90% of its worker threads' time, or the hypervisor stole at least
    /// 5% of the machine's (levels under a second are not judged). Absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A level's `percentiles` block, present when some distributions' percentiles came from a
/// histogram rather than every value (a long sustained level): which ones, and how far off such
/// a percentile may be, as a fraction of its value. Count, mean, std, min and max stay exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// The distributions whose percentiles are histogram-based (`ttft`, `itl`, `send_lag`, …).
    pub histogram: Vec<String>,
    /// The most a histogram-based percentile may be off, as a fraction of its value.
    pub relative_error: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn load_blocks_serialise_as_documented() {
        let burst = Load::Burst { batch_size: 8 };
        assert_eq!(
            serde_json::to_string(&burst).unwrap(),
            r#"{"mode":"burst","batch_size":8}"#
        );
        let limits = LimitsBlock {
            num_requests: Some(20),
            duration_seconds: None,
            warmup_seconds: 0.0,
            at_end: AtEnd::Wait,
        };
        let closed = Load::ClosedLoop {
            max_concurrency: 4,
            limits,
        };
        assert_eq!(
            serde_json::to_string(&closed).unwrap(),
            r#"{"mode":"closed_loop","max_concurrency":4,"num_requests":20,"duration_seconds":null,"warmup_seconds":0.0,"at_end":"wait"}"#
        );
        let open = Load::OpenLoop {
            ramp: None,
            request_rate: 2.5,
            arrival: Arrival::Poisson,
            burstiness: 1.0,
            max_concurrency: None,
            limits,
            schedule: ScheduleBlock {
                achieved_rate: Some(Stat {
                    mean: 2.4,
                    std: 0.0,
                    min: None,
                    max: None,
                    ci: None,
                }),
                ..ScheduleBlock::default()
            },
        };
        let text = serde_json::to_string(&open).unwrap();
        assert_eq!(
            text,
            r#"{"mode":"open_loop","request_rate":2.5,"arrival":"poisson","burstiness":1.0,"max_concurrency":null,"num_requests":20,"duration_seconds":null,"warmup_seconds":0.0,"at_end":"wait","achieved_rate":{"mean":2.4,"std":0.0}}"#
        );
        // And back.
        for load in [burst, closed, open] {
            let v = serde_json::to_value(&load).unwrap();
            assert_eq!(serde_json::from_value::<Load>(v).unwrap(), load);
        }
        let unknown = json!({"mode": "sideways", "batch_size": 1});
        assert!(serde_json::from_value::<Load>(unknown).is_err());
    }
}

/// `metadata.shard`: this document is one shard's part of a run spread over several processes
/// (machines). Its levels describe the whole run's load; its figures, only what this shard sent.
/// `tokenomics-merge` rebuilds the run from every shard's per-request records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardBlock {
    /// 0-based.
    pub index: u32,
    /// Shards in the run.
    pub count: u32,
    /// Identifies the run: every shard of one run has the same (a hash of the configuration,
    /// without what differs between shards).
    pub config_hash: String,
    /// When the first run was to start, Unix seconds (`--start_at`).
    pub start_at: f64,
    /// Seconds between one timed run's end and the next run's start.
    pub run_gap_seconds: f64,
    /// The machine the shard ran on.
    pub host: String,
    /// The most any of this shard's runs started after its time on the timetable, seconds (0:
    /// every run on time).
    pub late_seconds: f64,
    /// The confidence level of the intervals (`null`: none), so the merge computes the same.
    pub confidence: Option<f64>,
    /// The per-request records, relative to this document.
    pub records: String,
    /// How many of the run's levels this shard has finished (measured or not); a shard that
    /// stopped early has fewer than `metadata.levels`, and the merge refuses it.
    #[serde(default)]
    pub levels_done: u64,
}

/// `metadata.merged`: this document was merged from the shards of one run by `tokenomics-merge`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedBlock {
    /// Shards merged.
    pub count: u32,
    /// The shards' common [`ShardBlock::config_hash`].
    pub config_hash: String,
    /// When the first run was to start, Unix seconds (the shards' `--start_at`).
    pub start_at: f64,
    /// The widest spread of the shards' measured starts over the runs, seconds, each read on its
    /// shard's wall clock: how far apart the shards began, clock offsets included.
    pub start_skew_seconds: f64,
    /// Every shard, by index.
    pub shards: Vec<MergedShard>,
}

impl MergedBlock {
    /// Every shard's `client_load` warnings, one line each: `shard I (host), level K: …`.
    pub fn load_warnings(&self) -> Vec<String> {
        self.shards
            .iter()
            .flat_map(|s| {
                s.client_load.iter().flat_map(move |(key, load)| {
                    load.warnings
                        .iter()
                        .map(move |w| format!("shard {} ({}), level {key}: {w}", s.index, s.host))
                })
            })
            .collect()
    }
}

/// One shard of a merged run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedShard {
    /// The shard's 0-based index.
    pub index: u32,
    /// The machine it ran on.
    pub host: String,
    /// Its [`ShardBlock::late_seconds`].
    pub late_seconds: f64,
    /// Measured requests it sent (failed ones included).
    pub requests: u64,
    /// The shard's result file, as given to the merge.
    pub file: String,
    /// What each level cost this shard's machine: its `client_load` block by level key, in the
    /// levels' order (absent when no level has one). A level merged from several machines has no
    /// `client_load` of its own; its machines' blocks are here.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub client_load: IndexMap<String, ClientLoadBlock>,
}
