//! The `prefix_cache` block of a level run with shared prefixes (`--shared_prefix_tokens P
//! --prefix_groups G`): the prefix-cache hit rate expected before the level, from the workload
//! alone, beside the one the server reported request by request
//! (`usage.prompt_tokens_details.cached_tokens`) and its own counters'.
//!
//! The expectation follows a block-based cache as vLLM's automatic prefix caching is: a prompt
//! is cut into blocks of B tokens, a block is shared only when it and everything before it is
//! equal, and the last partial block is never shared. The chat template's opening (`before`
//! tokens) is the same in every prompt, so a prompt shares its first ⌊(before + P) / B⌋ blocks
//! with an earlier prompt of its group; the block where the prefix meets the prompt's own suffix
//! differs. A request whose group's prefix is not yet in the cache (its group's first, or one
//! that arrives with it) finds nothing:
//!
//! ```text
//! hit tokens per request H = ⌊(before + P) / B⌋ · B
//! prompt tokens per request L = before + P + mean suffix + after
//! expected hit rate = (N − misses) · H / (N · L)
//! ```
//!
//! It assumes a cache large enough that no prefix block is evicted, and that a group's later
//! requests arrive after its first one has been prefilled (see [`first_misses`] for those that
//! arrive together).

use serde::{Deserialize, Serialize};

/// Chat-template tokens around the user's text, as the server's tokenize endpoint showed them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateTokens {
    /// Tokens before the user's text (the template's opening and the message's header).
    pub before: u64,
    /// Tokens after it (the end of the message, the assistant's header).
    pub after: u64,
}

/// A shared-prefix workload, as known before it runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrefixWorkload {
    /// Tokens of every prefix (of the user's text).
    pub prefix_tokens: u64,
    /// Prefix groups.
    pub groups: u64,
    /// The server's KV-cache block size, tokens (at least 1).
    pub block_tokens: u64,
    /// The chat template around the user's text (None: not known, taken as none).
    pub template: Option<TemplateTokens>,
    /// Mean tokens of a request's own suffix.
    pub suffix_mean_tokens: f64,
}

impl PrefixWorkload {
    /// Prompt tokens a request whose group is cached takes from the cache:
    /// ⌊(before + P) / B⌋ · B, and never the prompt's last token (a server computes at least one).
    pub fn hit_tokens_per_request(&self) -> u64 {
        let b = self.block_tokens.max(1);
        let shared = self.before().saturating_add(self.prefix_tokens) / b * b;
        // The suffix has at least one token, so this bounds only a degenerate workload.
        let most = (self.prompt_tokens_per_request().ceil() as u64).saturating_sub(1) / b * b;
        shared.min(most)
    }

    /// Mean prompt tokens per request, as the server counts them: before + P + mean suffix +
    /// after.
    pub fn prompt_tokens_per_request(&self) -> f64 {
        let t = self.template.unwrap_or(TemplateTokens {
            before: 0,
            after: 0,
        });
        (t.before + self.prefix_tokens + t.after) as f64 + self.suffix_mean_tokens
    }

    fn before(&self) -> u64 {
        self.template.map_or(0, |t| t.before)
    }

    /// The expected hit rate of `requests` requests of which `misses` find their prefix cold
    /// (see the module's formula); `requests` None (a timed level: the count is not known
    /// before) is the steady rate, every request a hit. 0 for no requests.
    pub fn expected_hit_rate(&self, requests: Option<u64>, misses: u64) -> f64 {
        let per_request = self.hit_tokens_per_request() as f64 / self.prompt_tokens_per_request();
        match requests {
            None => per_request,
            Some(0) => 0.0,
            Some(n) => n.saturating_sub(misses) as f64 / n as f64 * per_request,
        }
    }

    /// The block of a level: the expectation from `requests` and `misses`, and nothing
    /// measured yet.
    pub fn block(&self, requests: Option<u64>, misses: u64) -> PrefixCacheBlock {
        PrefixCacheBlock {
            prefix_tokens: self.prefix_tokens,
            groups: self.groups,
            block_tokens: self.block_tokens,
            template_tokens: self.template,
            expected_requests: requests,
            expected_misses: misses,
            expected_hit_tokens_per_request: self.hit_tokens_per_request(),
            expected_prompt_tokens_per_request: self.prompt_tokens_per_request(),
            expected_hit_rate: self.expected_hit_rate(requests, misses),
            measured_hit_rate: None,
            requests_reporting: 0,
            prompt_tokens: 0,
            cached_tokens: 0,
            server_hit_rate: None,
        }
    }
}

/// How many of `requests` requests are expected to find their group's prefix cold, when request
/// i belongs to group i mod `groups`, groups below `warm` are cached already, and the first
/// `wave` requests leave together (a burst's batch, a closed loop's concurrency; 1 for requests
/// that leave one by one): a cold group's requests in the first wave all miss (none is prefilled
/// when the others arrive), and a cold group with none there misses once, with its first request.
pub fn first_misses(requests: u64, groups: u64, warm: u64, wave: u64) -> u64 {
    if groups == 0 {
        return 0;
    }
    let first_wave = requests.min(wave.max(1));
    (warm.min(groups)..groups)
        .map(|g| {
            let in_wave = first_wave / groups + u64::from(g < first_wave % groups);
            match in_wave {
                0 => u64::from(g < requests),
                k => k,
            }
        })
        .sum()
}

/// A level's `prefix_cache` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrefixCacheBlock {
    /// Tokens of every shared prefix (of the user's text).
    pub prefix_tokens: u64,
    /// Prefix groups.
    pub groups: u64,
    /// The server's KV-cache block size the expectation assumes, tokens.
    pub block_tokens: u64,
    /// The chat template around the user's text, from the server's tokenize endpoint (absent:
    /// not known, and taken as none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_tokens: Option<TemplateTokens>,
    /// Requests the expectation counts: the level's planned measured requests (absent: a timed
    /// level, whose count is not known before; the expectation is then the steady rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_requests: Option<u64>,
    /// Of them, those expected to find their group's prefix not cached yet.
    pub expected_misses: u64,
    /// Prompt tokens every other request is expected to take from the cache.
    pub expected_hit_tokens_per_request: u64,
    /// Mean prompt tokens per request, as the server counts them, expected.
    pub expected_prompt_tokens_per_request: f64,
    /// Expected cached prompt tokens / prompt tokens, written before the level ran (a
    /// conversation's, what its sessions' histories offer: counted from its turns as they ran).
    pub expected_hit_rate: f64,
    /// Σ cached / Σ prompt tokens over the level's successful requests whose usage reported
    /// cached tokens (absent: the server never reported them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_hit_rate: Option<f64>,
    /// Successful requests whose usage reported both prompt and cached tokens.
    pub requests_reporting: u64,
    /// Their prompt tokens.
    pub prompt_tokens: u64,
    /// Their cached prompt tokens.
    pub cached_tokens: u64,
    /// The server's own counters over the level: prefix-cache hits / queries, in tokens
    /// (vLLM's `prefix_cache_hits` / `prefix_cache_queries`; absent without them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_hit_rate: Option<f64>,
}

impl PrefixCacheBlock {
    /// Adds what the level measured: Σ prompt and Σ cached tokens of the `reporting` requests
    /// whose usage reported cached tokens (the rate is absent when none did).
    pub fn measured(mut self, reporting: u64, prompt_tokens: u64, cached_tokens: u64) -> Self {
        self.requests_reporting = reporting;
        self.prompt_tokens = prompt_tokens;
        self.cached_tokens = cached_tokens;
        self.measured_hit_rate = (reporting > 0 && prompt_tokens > 0)
            .then(|| cached_tokens as f64 / prompt_tokens as f64);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(template: Option<TemplateTokens>) -> PrefixWorkload {
        PrefixWorkload {
            prefix_tokens: 2048,
            groups: 4,
            block_tokens: 16,
            template,
            suffix_mean_tokens: 256.0,
        }
    }

    #[test]
    fn the_expected_rate_counts_whole_shared_blocks() {
        let w = workload(None);
        assert_eq!(w.hit_tokens_per_request(), 2048);
        assert_eq!(w.prompt_tokens_per_request(), 2304.0);
        // 40 requests, the first of each of 4 groups cold: 36 · 2048 / (40 · 2304).
        let r = w.expected_hit_rate(Some(40), 4);
        assert!((r - 36.0 * 2048.0 / (40.0 * 2304.0)).abs() < 1e-12, "{r}");
        assert_eq!(w.expected_hit_rate(Some(0), 0), 0.0);
        assert_eq!(w.expected_hit_rate(None, 4), 2048.0 / 2304.0);
        // The template's opening is shared too: 6 tokens before and 2048 of prefix fill 128
        // blocks and 6 tokens of the 129th, which holds the suffix's start and is not shared.
        let t = workload(Some(TemplateTokens {
            before: 6,
            after: 1,
        }));
        assert_eq!(t.hit_tokens_per_request(), 2048);
        assert_eq!(t.prompt_tokens_per_request(), 2311.0);
        let t = PrefixWorkload {
            template: Some(TemplateTokens {
                before: 12,
                after: 1,
            }),
            ..t
        };
        assert_eq!(t.hit_tokens_per_request(), 2048);
        let t = PrefixWorkload {
            prefix_tokens: 2044,
            ..t
        };
        // 12 + 2044 = 2056 = 128.5 blocks: 128 of them shared.
        assert_eq!(t.hit_tokens_per_request(), 2048);
        // A prefix shorter than a block shares nothing.
        let short = PrefixWorkload {
            prefix_tokens: 15,
            ..workload(None)
        };
        assert_eq!(short.expected_hit_rate(Some(10), 4), 0.0);
        // A larger block wastes the prefix's tail: 2048 / 1000 → 2 blocks of 1000.
        let big = PrefixWorkload {
            block_tokens: 1000,
            ..workload(None)
        };
        assert_eq!(big.hit_tokens_per_request(), 2000);
        let b = big.block(Some(8), 4).measured(8, 100, 25);
        assert_eq!(b.measured_hit_rate, Some(0.25));
        assert_eq!(
            big.block(Some(8), 4).measured(0, 0, 0).measured_hit_rate,
            None
        );
    }

    #[test]
    fn misses_are_each_cold_groups_first_request_or_its_first_wave() {
        // One at a time: each cold group misses once.
        assert_eq!(first_misses(40, 4, 0, 1), 4);
        // Groups 0..3 warmed (by a warm-up of 3 requests): only group 3 is cold.
        assert_eq!(first_misses(40, 4, 3, 1), 1);
        assert_eq!(first_misses(40, 4, 4, 1), 0);
        assert_eq!(first_misses(40, 4, 9, 8), 0);
        // Fewer requests than groups: only the groups used miss.
        assert_eq!(first_misses(2, 4, 0, 1), 2);
        // A burst of 8 over 4 cold groups: all 8 arrive before any prefix is cached.
        assert_eq!(first_misses(8, 4, 0, 8), 8);
        // A closed loop at concurrency 6 over 4 cold groups: groups 0 and 1 twice in the first
        // wave, groups 2 and 3 once.
        assert_eq!(first_misses(100, 4, 0, 6), 6);
        // Concurrency 2 over 4 cold groups: groups 0, 1 in the wave; 2 and 3 miss once later.
        assert_eq!(first_misses(100, 4, 0, 2), 4);
        assert_eq!(first_misses(100, 0, 0, 2), 0);
    }
}
