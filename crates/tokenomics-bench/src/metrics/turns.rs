//! A conversation level's figures per turn index, and its sessions ([`crate::conversation`]).
//!
//! Turn k of every session is pooled into an accumulator of its own — the level's figures over
//! those requests alone — so that the growth of TTFT with the history shows; the think time
//! achieved before each turn, and the turns each session sent, are kept beside; and what a prefix
//! cache could give each turn from its session's history.

use std::collections::HashMap;

use tokenomics_client::RequestRecord;
use tokenomics_stats::{ConversationBlock, PrefixCacheBlock, TurnLevel};

use super::level::LevelAccumulator;
use super::samples::{Pooled, Samples};
use super::NS;
use crate::conversation::SessionTally;

/// A conversation level's turns and sessions so far.
#[derive(Debug, Clone)]
pub struct TurnTally {
    /// A blank accumulator of the level's settings, copied for each new turn index.
    blank: LevelAccumulator,
    /// Turn index k (from 0) → its requests' figures.
    turns: Vec<LevelAccumulator>,
    /// Think times achieved, seconds.
    think: Samples,
    /// Sessions of the run in progress → turns sent.
    run_turns: HashMap<u64, u32>,
    turns_per_session: Pooled,
    sessions: u64,
    completed: u64,
    /// Sessions of the run in progress → the prompt tokens of their latest answered turn.
    history: HashMap<u64, u64>,
    /// The cache block the history's expected hits are counted in, tokens.
    block_tokens: u64,
    history_cache: HistoryCache,
}

/// Over a level's answered turns that reported their prompt tokens: what a prefix cache that
/// keeps every session's prompts could give them.
#[derive(Debug, Clone, Copy, Default)]
struct HistoryCache {
    turns: u64,
    /// Turns with nothing to find: their session's first, or a history shorter than a block.
    misses: u64,
    /// Tokens the history offers, in whole blocks.
    hits: u64,
    prompts: u64,
}

impl TurnTally {
    /// A tally whose turn accumulators are copies of `blank`.
    /// `block_tokens`: the server's KV-cache block size, for the history's expected hits.
    pub fn new(blank: LevelAccumulator, exact_limit: usize, block_tokens: u64) -> Self {
        Self {
            blank,
            turns: Vec::new(),
            think: Samples::new(exact_limit),
            run_turns: HashMap::new(),
            turns_per_session: Pooled::new(exact_limit),
            sessions: 0,
            completed: 0,
            history: HashMap::new(),
            block_tokens: block_tokens.max(1),
            history_cache: HistoryCache::default(),
        }
    }

    /// Turn `turn` of session `session` was sent (cancelled ones too).
    pub fn sent(&mut self, session: u64, turn: u32) {
        let n = self.run_turns.entry(session).or_default();
        *n = (*n).max(turn.saturating_add(1));
    }

    /// A measured turn of `session` finished: `r` goes to its turn's figures, `think_ns`
    /// (before it) to the think times.
    pub fn add(&mut self, session: u64, turn: u32, think_ns: Option<u64>, r: &RequestRecord) {
        self.history_add(session, turn, r.is_ok(), r.prompt_tokens);
        self.turn(turn, think_ns).add_request(r, None);
    }

    /// [`TurnTally::add`] for a request read back from a records file, its failure (kind,
    /// message) as recorded.
    pub fn add_recorded(
        &mut self,
        session: u64,
        turn: u32,
        think_ns: Option<u64>,
        r: &RequestRecord,
        failure: Option<(&str, &str)>,
    ) {
        self.history_add(session, turn, failure.is_none(), r.prompt_tokens);
        self.turn(turn, think_ns).add_recorded(r, failure, None);
    }

    /// An answered turn of `prompt` tokens: a turn after the first finds its session's previous
    /// prompt — which the chat template repeats at the start of this one, the history being
    /// sent again — in whole blocks, and at most up to its own last token (always computed).
    fn history_add(&mut self, session: u64, turn: u32, answered: bool, prompt: Option<u64>) {
        let (true, Some(prompt)) = (answered, prompt) else {
            return;
        };
        let b = self.block_tokens;
        let whole = |tokens: u64| tokens / b * b;
        let hit = match self.history.get(&session) {
            Some(&previous) if turn > 0 => whole(previous).min(whole(prompt.saturating_sub(1))),
            _ => 0,
        };
        let h = &mut self.history_cache;
        h.turns += 1;
        h.misses += u64::from(hit == 0);
        h.hits = h.hits.saturating_add(hit);
        h.prompts = h.prompts.saturating_add(prompt);
        self.history.insert(session, prompt);
    }

    /// The level's expected prefix-cache figures from its sessions' histories (the measured ones
    /// are added by [`PrefixCacheBlock::measured`]); `None` before any answered turn reported
    /// its prompt tokens.
    pub fn history_cache(&self) -> Option<PrefixCacheBlock> {
        let h = self.history_cache;
        (h.turns > 0 && h.prompts > 0).then(|| PrefixCacheBlock {
            prefix_tokens: 0,
            groups: 0,
            block_tokens: self.block_tokens,
            template_tokens: None,
            expected_requests: Some(h.turns),
            expected_misses: h.misses,
            expected_hit_tokens_per_request: match h.turns - h.misses {
                0 => 0,
                found => h.hits / found,
            },
            expected_prompt_tokens_per_request: h.prompts as f64 / h.turns as f64,
            expected_hit_rate: h.hits as f64 / h.prompts as f64,
            measured_hit_rate: None,
            requests_reporting: 0,
            prompt_tokens: 0,
            cached_tokens: 0,
            server_hit_rate: None,
        })
    }

    /// Turn `turn`'s accumulator (made when it is the first of its index), with the think time
    /// before it counted.
    fn turn(&mut self, turn: u32, think_ns: Option<u64>) -> &mut LevelAccumulator {
        if let Some(t) = think_ns {
            self.think.push(t as f64 / NS);
        }
        let k = turn as usize;
        while self.turns.len() <= k {
            self.turns.push(self.blank.clone());
        }
        &mut self.turns[k]
    }

    /// The run ended with `tally`'s sessions.
    pub fn end_run(&mut self, tally: SessionTally) {
        for (_, n) in self.run_turns.drain() {
            self.turns_per_session.push(f64::from(n));
        }
        // The next run's sessions are new ones (their numbers start again).
        self.history.clear();
        self.sessions += tally.started;
        self.completed += tally.completed;
    }

    /// The level's `conversation` block.
    pub fn block(self, confidence: Option<f64>) -> ConversationBlock {
        ConversationBlock {
            sessions: self.sessions,
            completed: self.completed,
            turns_per_session: self.turns_per_session.stat(),
            think_time: (self.think.count() > 0).then(|| self.think.distribution(confidence)),
            turns: self
                .turns
                .into_iter()
                .enumerate()
                .map(|(k, acc)| {
                    let level = acc.finish();
                    TurnLevel {
                        turn: k as u64 + 1,
                        requests: level.requests.unwrap_or_default(),
                        tokens: level.tokens,
                        latency: level.latency,
                        extra: Default::default(),
                    }
                })
                .collect(),
            extra: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{Limits, Shape};

    fn answered(prompt: u64) -> RequestRecord {
        RequestRecord {
            prompt_tokens: Some(prompt),
            ..RequestRecord::default()
        }
    }

    #[test]
    fn a_turn_finds_its_sessions_previous_prompt_in_whole_blocks() {
        let blank =
            LevelAccumulator::new(Shape::Closed { concurrency: 2 }, Limits::default(), true);
        let mut t = TurnTally::new(blank, 1000, 16);
        assert!(t.history_cache().is_none(), "nothing answered yet");
        // Session 0: 40, then 100 tokens (finds 32 of the 40), then 103 (finds 96 of the 100).
        // Session 1: 10 (no whole block to find next), then 20 (finds none).
        for (session, turn, prompt) in
            [(0, 0, 40), (1, 0, 10), (0, 1, 100), (1, 1, 20), (0, 2, 103)]
        {
            t.add(session, turn, None, &answered(prompt));
        }
        // A failed turn neither counts nor changes its session's history.
        let failed = RequestRecord {
            error: Some(tokenomics_client::Error::Io("reset".into())),
            ..answered(500)
        };
        t.add(0, 3, None, &failed);
        let b = t.history_cache().unwrap();
        assert_eq!(b.expected_requests, Some(5));
        assert_eq!(
            b.expected_misses, 3,
            "two first turns and a history under a block"
        );
        assert_eq!(b.expected_hit_tokens_per_request, (32 + 96) / 2);
        assert_eq!(b.expected_hit_rate, 128.0 / 273.0);
        // A prompt no longer than its history still computes its last token: 32, not 48.
        t.add(2, 0, None, &answered(48));
        t.add(2, 1, None, &answered(48));
        assert_eq!(t.history_cache().unwrap().expected_misses, 4);
        // The next run's session 0 is another session.
        t.end_run(SessionTally::default());
        t.add(0, 1, None, &answered(200));
        assert_eq!(t.history_cache().unwrap().expected_misses, 5);
    }
}
