//! The server's own view of a level: what its Prometheus `/metrics` said between the level's
//! first and last request, mapped to roles every engine shares (vLLM, SGLang, TGI, llama.cpp and
//! the simulator name them differently), and a cross-check of its generated-token count against
//! the client's.

use serde::{Deserialize, Serialize};

/// The `server_metrics` block of a level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerMetricsBlock {
    /// The URL scraped.
    pub source: String,
    /// The engine whose metric names were recognised (`vllm`, `sglang`, `tgi`, `llamacpp`), when
    /// one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Scrapes that answered during the level, those in its gauges: the one just before its
    /// first measured request, the one just after each run's last, and the periodic ones
    /// between. On a timetable (`--start_at`) only those from each run's start to its closing
    /// scrape: not the waits before its runs (the opening scrape among them) nor the gaps.
    pub scrapes: u64,
    /// Scrapes during the level that failed (not counted in `scrapes`): in the same time as
    /// `scrapes`, and any boundary scrape.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_scrapes: u64,
    /// Seconds from the level's opening scrape to its last closing one that answered (the run's
    /// clock); on a timetable, the time from each run's start to its closing scrape, added up.
    #[serde(deserialize_with = "crate::summary::nullable_f64")]
    pub seconds: f64,
    /// How much each counter grew from the opening scrape to the closing one (absent: the server
    /// has no such counter, a boundary scrape failed, or the counter went back — a restart).
    #[serde(default, skip_serializing_if = "ServerCounters::is_empty")]
    pub counters: ServerCounters,
    /// Gauges over the level's `scrapes`.
    #[serde(default, skip_serializing_if = "ServerGauges::is_empty")]
    pub gauges: ServerGauges,
    /// The server's generated tokens against the client's count (absent without the server's
    /// counter, or when the server also served other shards of the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_check: Option<CrossCheck>,
}

/// Counter increases over a level, by role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerCounters {
    /// Prompt (prefill) tokens the server processed, tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<f64>,
    /// Tokens the server generated, tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_tokens: Option<f64>,
    /// Requests the engine preempted (evicted from its batch to free KV cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemptions: Option<f64>,
    /// Prefix-cache lookups, in tokens (vLLM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_queries: Option<f64>,
    /// Prefix-cache hits, in tokens (vLLM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_hits: Option<f64>,
    /// Speculative decoding: draft tokens proposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_draft_tokens: Option<f64>,
    /// Speculative decoding: draft tokens accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_accepted_tokens: Option<f64>,
    /// Requests the server finished as aborted (the client went away).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<f64>,
}

impl ServerCounters {
    /// Whether no counter was read (the block is then left out of the JSON).
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// Gauges over a level's scrapes, by role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerGauges {
    /// Requests the engine was running (in its batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<GaugeStat>,
    /// Requests waiting in the engine's queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<GaugeStat>,
    /// Share of the KV cache in use, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_usage: Option<GaugeStat>,
}

impl ServerGauges {
    /// Whether no gauge was read (the block is then left out of the JSON).
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// A gauge's mean and maximum over a level's scrapes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GaugeStat {
    /// Mean of the scraped values, in the gauge's unit; NaN (`null`) when none was read.
    #[serde(deserialize_with = "crate::summary::nullable_f64")]
    pub mean: f64,
    /// Largest scraped value.
    #[serde(deserialize_with = "crate::summary::nullable_f64")]
    pub max: f64,
}

/// The server's generated tokens over a level against the client's.
///
/// `client_output_tokens` is the sum, over every request the level sent between its two
/// boundary scrapes, of the completion tokens the client counted (the server's `usage`, else the
/// content events received): measured requests whether they succeeded, failed or were cancelled,
/// and a sustained level's warm-up requests (`--warmup_seconds`), which the server served too. A
/// failed or cancelled request adds only what reached the client, so the server may count more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossCheck {
    /// The server's generation-token counter increase over the level, tokens.
    #[serde(deserialize_with = "crate::summary::nullable_f64")]
    pub server_generation_tokens: f64,
    /// Completion tokens the client counted over the same requests, tokens.
    pub client_output_tokens: u64,
    /// Server − client.
    #[serde(deserialize_with = "crate::summary::nullable_f64")]
    pub difference: f64,
    /// `difference` / client (absent when the client counted none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative: Option<f64>,
}

impl CrossCheck {
    /// Compares the two counts; `relative` is left out when the client counted no token.
    pub fn new(server_generation_tokens: f64, client_output_tokens: u64) -> Self {
        let difference = server_generation_tokens - client_output_tokens as f64;
        Self {
            server_generation_tokens,
            client_output_tokens,
            difference,
            relative: (client_output_tokens > 0).then(|| difference / client_output_tokens as f64),
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_block_writes_only_what_it_has() {
        let block = ServerMetricsBlock {
            source: "http://localhost:8000/metrics".into(),
            engine: None,
            scrapes: 2,
            failed_scrapes: 0,
            seconds: 1.5,
            counters: ServerCounters::default(),
            gauges: ServerGauges::default(),
            cross_check: None,
        };
        let v = serde_json::to_value(&block).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"source": "http://localhost:8000/metrics", "scrapes": 2, "seconds": 1.5})
        );
        let back: ServerMetricsBlock = serde_json::from_value(v).unwrap();
        assert_eq!(back, block);
    }

    #[test]
    fn a_level_whose_boundary_scrape_failed_reads_back() {
        // No opening or closing scrape: no span (NaN, written as null), which must load again,
        // or the whole results file would not.
        let block = ServerMetricsBlock {
            source: "http://localhost:8000/metrics".into(),
            engine: None,
            scrapes: 0,
            failed_scrapes: 2,
            seconds: f64::NAN,
            counters: ServerCounters::default(),
            gauges: ServerGauges::default(),
            cross_check: None,
        };
        let text = serde_json::to_string(&block).unwrap();
        assert!(text.contains("\"seconds\":null"), "{text}");
        let back: ServerMetricsBlock = serde_json::from_str(&text).unwrap();
        assert!(back.seconds.is_nan());
        assert_eq!(back.failed_scrapes, 2);
    }

    #[test]
    fn the_cross_check_is_relative_to_the_client() {
        let c = CrossCheck::new(25_856.0, 25_600);
        assert_eq!(c.difference, 256.0);
        assert_eq!(c.relative, Some(0.01));
        assert_eq!(CrossCheck::new(3.0, 0).relative, None);
    }
}
