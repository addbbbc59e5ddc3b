//! A conversation level's figures per turn index, and its sessions ([`crate::conversation`]).
//!
//! Turn k of every session is pooled into an accumulator of its own — the level's figures over
//! those requests alone — so that the growth of TTFT with the history shows; the think time
//! achieved before each turn, and the turns each session sent, are kept beside.

use std::collections::HashMap;

use tokenomics_client::RequestRecord;
use tokenomics_stats::{ConversationBlock, TurnLevel};

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
}

impl TurnTally {
    /// A tally whose turn accumulators are copies of `blank`.
    pub fn new(blank: LevelAccumulator, exact_limit: usize) -> Self {
        Self {
            blank,
            turns: Vec::new(),
            think: Samples::new(exact_limit),
            run_turns: HashMap::new(),
            turns_per_session: Pooled::new(exact_limit),
            sessions: 0,
            completed: 0,
        }
    }

    /// Turn `turn` of session `session` was sent (cancelled ones too).
    pub fn sent(&mut self, session: u64, turn: u32) {
        let n = self.run_turns.entry(session).or_default();
        *n = (*n).max(turn.saturating_add(1));
    }

    /// A measured turn finished: `r` goes to its turn's figures, `think_ns` (before it) to the
    /// think times.
    pub fn add(&mut self, turn: u32, think_ns: Option<u64>, r: &RequestRecord) {
        self.turn(turn, think_ns).add_request(r, None);
    }

    /// [`TurnTally::add`] for a request read back from a records file, its failure (kind,
    /// message) as recorded.
    pub fn add_recorded(
        &mut self,
        turn: u32,
        think_ns: Option<u64>,
        r: &RequestRecord,
        failure: Option<(&str, &str)>,
    ) {
        self.turn(turn, think_ns).add_recorded(r, failure, None);
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
