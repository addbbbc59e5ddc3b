//! Replaying a request trace (`--trace`): one open-loop level whose requests leave at the
//! trace's times, on the absolute schedule, each with exactly its trace's input and output
//! lengths, and whose prompts share text where the trace's blocks do.

use serde_json::Value;
use tokenomics_datasets::exact::TraceTexts;
use tokenomics_datasets::trace::{Trace, TraceOptions};
use tokenomics_datasets::{Prompt, Turn};

use tokenomics_stats::{PrefixCacheBlock, TemplateTokens};

use crate::plan::TraceSpan;

/// A trace ready to send: its requests and times, and how their prompts are built.
#[derive(Debug, Clone)]
pub struct TraceReplay {
    /// The trace read: its requests (due times, ns after the first; token lengths) and the rows
    /// it skipped.
    pub trace: Trace,
    /// How it was read: time scale, window and context limit.
    pub options: TraceOptions,
    /// How each request's prompt of exact token length is built.
    pub texts: TraceTexts,
    /// The server's KV-cache block size, tokens, for the expected prefix-cache hit rate.
    pub cache_block_tokens: u64,
    /// The chat template around a prompt's text (`None`: not known, taken as none).
    pub template: Option<TemplateTokens>,
}

impl TraceReplay {
    /// What the plan needs of it.
    pub fn span(&self) -> TraceSpan {
        TraceSpan {
            requests: self.trace.requests.len() as u64,
            seconds: self.trace.span_seconds(),
        }
    }

    /// When each request is due, ns from the level's start.
    pub fn times(&self) -> Vec<u64> {
        self.trace.requests.iter().map(|r| r.at_ns).collect()
    }

    /// The prompts of requests `from..from + n` (fewer at the end; none past it), each a single
    /// user message of exactly its trace's input tokens, with its output tokens (sent with
    /// [`crate::ChatConfig::exact_body`]).
    pub fn prompts(&self, from: usize, n: usize) -> Vec<(Prompt, u64)> {
        self.trace
            .requests
            .iter()
            .skip(from)
            .take(n)
            .map(|r| {
                // Checked when the replay was prepared ([`TraceReplay::check`]).
                let text = self.texts.text(r).unwrap_or_default();
                let prompt = Prompt::Messages(vec![Turn {
                    role: "user".into(),
                    content: text,
                }]);
                (prompt, r.output_tokens)
            })
            .collect()
    }

    /// Builds every prompt once, so a tokenizer that cannot make them exact is found before
    /// the run.
    pub fn check(&self) -> crate::Result<()> {
        for r in &self.trace.requests {
            self.texts.text(r)?;
        }
        Ok(())
    }

    /// The prefix-cache hit rate the trace's block ids lead a block-based cache (vLLM's
    /// automatic prefix caching, the simulator's) to expect, written before the level runs.
    ///
    /// Requests in the trace's order: a request's leading blocks whose ids came in earlier
    /// requests are shared text, and so are the chat template's `before` tokens, so it takes
    /// ⌊(before + shared) / B⌋ · B tokens from the cache — never its last token — and the first
    /// request takes none. `prefix_tokens` and `groups` are 0: the trace's ids say what is
    /// shared. It assumes no eviction and that an earlier request's prefill is done when a later
    /// one sharing it arrives.
    pub fn expected_prefix_cache(&self, runs: u64) -> PrefixCacheBlock {
        let b = self.cache_block_tokens.max(1);
        let trace_block = self.texts.block_tokens.max(1);
        let (before, after) = self.template.map_or((0, 0), |t| (t.before, t.after));
        let mut seen = std::collections::HashSet::new();
        let (mut hits, mut prompts, mut misses) = (0u64, 0u64, 0u64);
        let runs = runs.max(1);
        // Every run replays the trace again, and finds the blocks of those before it.
        let all = (0..runs).flat_map(|_| self.trace.requests.iter());
        for (i, r) in all.enumerate() {
            let shared: u64 = r
                .hash_ids
                .iter()
                .enumerate()
                .take_while(|(_, h)| seen.contains(*h))
                .map(|(j, _)| {
                    trace_block.min(r.input_tokens.saturating_sub(j as u64 * trace_block))
                })
                .sum();
            let prompt = before + r.input_tokens + after;
            let hit = if i == 0 {
                0
            } else {
                ((before + shared) / b * b).min(prompt.saturating_sub(1) / b * b)
            };
            misses += u64::from(hit == 0);
            hits += hit;
            prompts += prompt;
            seen.extend(r.hash_ids.iter().copied());
        }
        let n = self.trace.requests.len() as u64 * runs;
        PrefixCacheBlock {
            prefix_tokens: 0,
            groups: 0,
            block_tokens: b,
            template_tokens: self.template,
            expected_requests: Some(n),
            expected_misses: misses,
            expected_hit_tokens_per_request: if n > misses { hits / (n - misses) } else { 0 },
            expected_prompt_tokens_per_request: prompts as f64 / n.max(1) as f64,
            expected_hit_rate: if prompts == 0 {
                0.0
            } else {
                hits as f64 / prompts as f64
            },
            measured_hit_rate: None,
            requests_reporting: 0,
            prompt_tokens: 0,
            cached_tokens: 0,
            server_hit_rate: None,
        }
    }

    /// What the metadata records as the dataset.
    pub fn describe(&self) -> Value {
        let mut d = self.trace.describe(&self.options);
        d["block_tokens"] = self.texts.block_tokens.into();
        d["token_count_source"] = self.texts.exact.token_count_source().into();
        serde_json::json!({"name": "trace", "source": d, "rows": self.trace.requests.len()})
    }
}
