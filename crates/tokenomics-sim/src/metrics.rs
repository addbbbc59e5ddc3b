//! `GET /metrics`: Prometheus text with vLLM's metric names, so tools that scrape vLLM scrape
//! the simulator too.

use std::sync::atomic::Ordering;

use crate::{FinishReason, Simulator};

/// vLLM's TTFT histogram buckets, seconds.
const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];

/// The TTFT histogram, in vLLM's buckets.
pub(crate) struct TtftHistogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl TtftHistogram {
    pub(crate) fn new() -> Self {
        Self {
            counts: vec![0; TTFT_BUCKETS.len()],
            sum: 0.0,
            count: 0,
        }
    }

    /// Counts one time to first token, seconds.
    pub(crate) fn observe(&mut self, seconds: f64) {
        if let Some(i) = TTFT_BUCKETS.iter().position(|&b| seconds <= b) {
            self.counts[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }
}

impl Simulator {
    /// The Prometheus text of `GET /metrics`.
    pub(crate) fn metrics(&self) -> String {
        use std::fmt::Write;
        let m = format!("model_name=\"{}\"", self.served_model);
        let (running, waiting, kv) = match (&self.engine, &self.slots) {
            (Some(e), _) => (
                e.gauges.running.load(Ordering::Relaxed) as i64,
                e.gauges.waiting.load(Ordering::Relaxed) as i64,
                e.kv_usage(),
            ),
            // A fixed schedule with slots: those holding one run, those queued for one wait.
            (None, Some(s)) => (s.running() as i64, s.waiting() as i64, 0.0),
            (None, None) => (self.in_flight.load(Ordering::Relaxed), 0, 0.0),
        };
        let engine_count =
            |f: fn(&crate::engine::EngineGauges) -> &std::sync::atomic::AtomicU64| {
                self.engine
                    .as_ref()
                    .map_or(0, |e| f(&e.gauges).load(Ordering::Relaxed))
            };
        let queries = engine_count(|g| &g.prefix_cache_queries);
        let hits = engine_count(|g| &g.prefix_cache_hits);
        let cached_blocks = engine_count(|g| &g.cached_blocks);
        let mut s = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = write!(
                s,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{{m}}} {value}\n"
            );
        };
        metric(
            "vllm:num_requests_running",
            "gauge",
            "Number of requests in model execution batches.",
            running.to_string(),
        );
        metric(
            "vllm:num_requests_waiting",
            "gauge",
            "Number of requests waiting to be processed.",
            waiting.to_string(),
        );
        metric(
            "vllm:gpu_cache_usage_perc",
            "gauge",
            "GPU KV-cache usage. 1 means 100 percent usage.",
            format!("{kv:.6}"),
        );
        metric(
            "vllm:prompt_tokens_total",
            "counter",
            "Number of prefill tokens processed.",
            self.prompt_tokens_total.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "vllm:generation_tokens_total",
            "counter",
            "Number of generation tokens processed.",
            self.generation_tokens_total
                .load(Ordering::Relaxed)
                .to_string(),
        );
        metric(
            "vllm:prefix_cache_queries_total",
            "counter",
            "Prefix cache queries, in terms of number of queried tokens.",
            queries.to_string(),
        );
        metric(
            "vllm:prefix_cache_hits_total",
            "counter",
            "Prefix cache hits, in terms of number of cached tokens.",
            hits.to_string(),
        );
        metric(
            "tokenomics_sim:prefix_cache_blocks",
            "gauge",
            "Blocks held in the prefix cache, in use or evictable.",
            cached_blocks.to_string(),
        );
        metric(
            "tokenomics_sim:peak_requests_in_flight",
            "gauge",
            "Most requests in flight at once since the start.",
            self.peak_in_flight().to_string(),
        );
        let name = "vllm:request_success_total";
        let _ = write!(
            s,
            "# HELP {name} Count of successfully processed requests.\n# TYPE {name} counter\n"
        );
        for reason in FinishReason::ALL {
            let _ = writeln!(
                s,
                "{name}{{{m},finished_reason=\"{}\"}} {}",
                reason.as_str(),
                self.finished(reason)
            );
        }
        let name = "vllm:time_to_first_token_seconds";
        let _ = write!(
            s,
            "# HELP {name} Histogram of time to first token in seconds.\n# TYPE {name} histogram\n"
        );
        if let Ok(h) = self.ttft.lock() {
            let mut cumulative = 0;
            for (b, c) in TTFT_BUCKETS.iter().zip(&h.counts) {
                cumulative += c;
                let _ = writeln!(s, "{name}_bucket{{{m},le=\"{b}\"}} {cumulative}");
            }
            let _ = writeln!(s, "{name}_bucket{{{m},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(s, "{name}_sum{{{m}}} {}", h.sum);
            let _ = writeln!(s, "{name}_count{{{m}}} {}", h.count);
        }
        s
    }
}
