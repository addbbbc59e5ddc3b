//! Automatic prefix caching, as vLLM V1 does it (on by default there and here).
//!
//! A prompt's tokens (the simulator's tokenizer, with the chat template: see
//! [`crate::wire::CompletionRequest::prompt_token_ids`]) are cut into full blocks of
//! `block_tokens` tokens; the last, partial block is never shared. Each full block is keyed by a
//! hash chained over the prefix — block i's key is the hash of block i − 1's key and block i's
//! tokens ([`block_keys`]) — so two prompts that start alike share the keys of their common full
//! blocks, and a conversation's history is a prefix of its next turn.
//!
//! The engine keeps the blocks it has computed in a `PrefixCache` that lives inside its KV
//! capacity: a block is pinned while a running sequence uses it; when the last user ends (or its
//! client goes away) the block stays cached but evictable, and evictable blocks are given back
//! least recently used first (a sequence's tail block before its head, as vLLM frees them) when
//! an admission needs room. On admission, the longest run of leading blocks present is a hit:
//! their prefill is skipped. As in vLLM, at least the prompt's last token is computed, so a
//! prompt whose every block hits recomputes its last block.

use std::collections::{BTreeMap, HashMap};

/// vLLM's default block size, tokens.
pub const DEFAULT_BLOCK_TOKENS: u64 = 16;

/// The largest block size the simulator accepts, tokens (vLLM offers up to 256).
pub const MAX_BLOCK_TOKENS: u64 = 1024;

/// The FNV-1a offset basis: the "key" before the first block.
const ROOT_KEY: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// The keys of the full blocks of `tokens`: one per `block_tokens` tokens (the partial tail has
/// none), block i's key a 64-bit FNV-1a hash of block i − 1's key and block i's token ids, so
/// equal prefixes give equal keys and a difference anywhere changes every later key.
/// `block_tokens` 0 gives no keys.
pub fn block_keys(tokens: &[u32], block_tokens: u64) -> Vec<u64> {
    let Ok(b) = usize::try_from(block_tokens) else {
        return Vec::new();
    };
    if b == 0 {
        return Vec::new();
    }
    let mut key = ROOT_KEY;
    tokens
        .chunks_exact(b)
        .map(|block| {
            key = block
                .iter()
                .fold(fnv(ROOT_KEY, &key.to_le_bytes()), |h, t| {
                    fnv(h, &t.to_le_bytes())
                });
            key
        })
        .collect()
}

/// The prompt tokens a request of `prompt_tokens` tokens may take from the cache when its first
/// `present` full blocks are there: whole blocks, and never the last token (vLLM computes at
/// least one token, so a prompt of exactly k blocks that all hit recomputes the k-th).
pub fn usable_hit_blocks(present: usize, prompt_tokens: u64, block_tokens: u64) -> usize {
    let most = prompt_tokens.saturating_sub(1) / block_tokens.max(1);
    present.min(usize::try_from(most).unwrap_or(usize::MAX))
}

/// The prefix-cache hit rate (hits / queries, in tokens, as vLLM's
/// `vllm:prefix_cache_hits_total / vllm:prefix_cache_queries_total`) of `requests` requests in
/// `groups` groups, every request's prompt a `prefix_tokens`-token prefix shared within its
/// group followed by `suffix_tokens` tokens of its own (a suffix no other request has, at
/// least 1 token), with block size B = `block_tokens`:
///
/// ```text
/// hit rate = (requests − groups) · ⌊prefix_tokens / B⌋ · B / (requests · (prefix_tokens + suffix_tokens))
/// ```
///
/// The first request of each group finds nothing; every later one hits the prefix's full blocks
/// (the block that holds the prefix's end and the suffix's start differs between requests, and
/// the suffix keeps the last token computed). It holds when every group has a request, each
/// group's first request has finished its prefill before the next one of its group is admitted,
/// and the cache is large enough that no prefix block is evicted; 0 when `requests` is 0.
pub fn expected_hit_rate(
    requests: u64,
    groups: u64,
    prefix_tokens: u64,
    suffix_tokens: u64,
    block_tokens: u64,
) -> f64 {
    let queries = requests as f64 * (prefix_tokens + suffix_tokens) as f64;
    if queries == 0.0 {
        return 0.0;
    }
    let b = block_tokens.max(1);
    let hit_per_request = (prefix_tokens / b * b) as f64;
    requests.saturating_sub(groups) as f64 * hit_per_request / queries
}

struct CachedBlock {
    /// Running sequences using the block; 0: evictable.
    refs: u32,
    /// When it became evictable (its place in the eviction order); meaningless while in use.
    freed_at: u64,
}

/// The blocks an engine has computed, by key: in use (pinned) or evictable, least recently
/// freed first. Sizes are in blocks; the engine turns them into tokens.
pub(crate) struct PrefixCache {
    blocks: HashMap<u64, CachedBlock>,
    /// Evictable blocks by the moment they were freed: the first is evicted first.
    evictable: BTreeMap<u64, u64>,
    in_use: usize,
    clock: u64,
}

impl PrefixCache {
    pub fn new() -> Self {
        Self {
            blocks: HashMap::new(),
            evictable: BTreeMap::new(),
            in_use: 0,
            clock: 0,
        }
    }

    /// Blocks held, in use or evictable.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Blocks some running sequence uses.
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// How many of `keys`, from the first, are cached.
    pub fn leading_hits(&self, keys: &[u64]) -> usize {
        keys.iter()
            .take_while(|k| self.blocks.contains_key(k))
            .count()
    }

    /// How many of `keys` are cached and evictable.
    pub fn evictable_among(&self, keys: &[u64]) -> usize {
        keys.iter()
            .filter(|k| self.blocks.get(k).is_some_and(|b| b.refs == 0))
            .count()
    }

    /// Pins the block `key` for one more sequence, adding it if it is not cached. Returns
    /// whether it was cached already.
    pub fn acquire(&mut self, key: u64) -> bool {
        match self.blocks.get_mut(&key) {
            Some(b) => {
                if b.refs == 0 {
                    self.evictable.remove(&b.freed_at);
                    self.in_use += 1;
                }
                b.refs += 1;
                true
            }
            None => {
                self.blocks.insert(
                    key,
                    CachedBlock {
                        refs: 1,
                        freed_at: 0,
                    },
                );
                self.in_use += 1;
                false
            }
        }
    }

    /// Unpins a sequence's blocks (its leading ones, in prompt order). Those no longer in use
    /// become evictable, the last block first in the eviction order, as vLLM frees a request's
    /// blocks in reverse so that a shared head outlives its tails.
    pub fn release(&mut self, keys: &[u64]) {
        for key in keys.iter().rev() {
            let Some(b) = self.blocks.get_mut(key) else {
                continue;
            };
            b.refs = b.refs.saturating_sub(1);
            if b.refs == 0 {
                self.clock += 1;
                b.freed_at = self.clock;
                self.evictable.insert(self.clock, *key);
                self.in_use -= 1;
            }
        }
    }

    /// Evicts the least recently freed evictable block; false when none is evictable.
    pub fn evict_one(&mut self) -> bool {
        match self.evictable.pop_first() {
            Some((_, key)) => {
                self.blocks.remove(&key);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_chain_over_the_prefix() {
        let a: Vec<u32> = (0..40).collect();
        let mut b = a.clone();
        b[20] = 999; // in the second block (16..32)
        let (ka, kb) = (block_keys(&a, 16), block_keys(&b, 16));
        assert_eq!(
            ka.len(),
            2,
            "40 tokens: two full blocks, the tail has no key"
        );
        assert_eq!(ka[0], kb[0]);
        assert_ne!(ka[1], kb[1]);
        // The same tokens in another position have another key: the chain carries the prefix.
        let shifted: Vec<u32> = (16..32).chain(0..16).collect();
        assert_ne!(block_keys(&shifted, 16)[0], ka[1]);
        assert!(block_keys(&a, 0).is_empty());
    }

    #[test]
    fn the_last_token_is_always_computed() {
        assert_eq!(
            usable_hit_blocks(4, 64, 16),
            3,
            "64 tokens, all 4 blocks cached"
        );
        assert_eq!(usable_hit_blocks(4, 65, 16), 4);
        assert_eq!(usable_hit_blocks(2, 65, 16), 2);
        assert_eq!(usable_hit_blocks(0, 1, 16), 0);
    }

    #[test]
    fn evictable_blocks_go_least_recently_freed_tail_first() {
        let mut c = PrefixCache::new();
        for k in [1, 2, 3] {
            assert!(!c.acquire(k));
        }
        assert!(c.acquire(1), "shared");
        assert_eq!((c.len(), c.in_use()), (3, 3));
        c.release(&[1, 2, 3]);
        // Block 1 is still used by the second sequence; 3 was freed before 2.
        assert_eq!((c.in_use(), c.evictable_among(&[1, 2, 3])), (1, 2));
        assert!(c.evict_one());
        assert_eq!(c.leading_hits(&[1, 2, 3]), 2);
        assert!(c.evict_one());
        assert!(!c.evict_one(), "block 1 is pinned");
        c.release(&[1]);
        assert!(c.evict_one());
        assert_eq!(c.len(), 0);
    }
}
