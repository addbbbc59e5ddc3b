//! Continuous batching, as vLLM and SGLang schedule it, on the step model of [`EngineSpec`].
//!
//! The scheduler (`Scheduler`) holds the waiting queue, the running sequences and the KV cache's
//! accounting, and does everything between two steps: admit waiting requests (first come, first
//! served: a request waits while the sequence slots or the KV cache for its prompt and output are
//! taken, and those behind it wait too), plan the step by the preset's
//! [`SchedulingPolicy`] (chunked prefill beside the decoders, or prefill-first steps that stall
//! them), and apply a finished step (a token for every decoding sequence, the first token for
//! every prompt whose prefill completed, the end of every sequence that reached its length).
//!
//! Two clocks drive that one scheduler. The live engine ([`EngineHandle`]) runs it on a thread of
//! its own, sleeping until each step's end on an absolute schedule (model time divided by the time
//! scale) and sending each request's events down its channel. The virtual-time replay
//! ([`crate::calibration::replay()`]) runs the very same scheduler as a discrete-event simulation,
//! adding each step's model time to a counter instead of sleeping, so a calibration row of
//! thousands of requests replays in milliseconds and to the nanosecond.
//!
//! The KV cache is counted in tokens: a running sequence reserves its prompt and output on
//! admission. With prefix caching (a request that comes with the keys of its prompt's full
//! blocks, see [`crate::prefix`]), the full prompt blocks a sequence has computed move into the
//! [`crate::prefix`] cache, shared by every sequence with the same prefix and kept, evictable,
//! when their sequences end; the cache lives in the same capacity, so an admission evicts the
//! least recently freed blocks it needs room for. A request whose client has gone is dropped
//! before the next step, waiting or running, and gives its reservation back at once (its
//! computed prefix blocks stay cached, unpinned).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::time::Instant;
use tokio::sync::mpsc;

use crate::prefix::PrefixCache;
use crate::preset::{EngineSpec, SchedulingPolicy, StepLoad};
use crate::Error;

/// What the engine tells a request's handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineEvent {
    /// One output token was produced by the step that ended at this instant.
    Token(Instant),
    /// The sequence is complete (all tokens sent, or the prefill of a prefill-only request).
    Finished(Instant),
    /// The sequence was admitted (sent before any token): `cached_tokens` of its prompt were
    /// found in the prefix cache and are not prefilled.
    Admitted {
        /// Prompt tokens served from the prefix cache.
        cached_tokens: u64,
    },
}

/// What a finished step did to one sequence, for its owner to deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// One output token.
    Token,
    /// The sequence is complete (after its last token, or after the prefill of a request with
    /// no output).
    Finished,
}

/// A request handed to the engine.
pub struct Admission {
    /// Prompt tokens to prefill (at least 1), cached blocks included.
    pub prompt_tokens: u64,
    /// Output tokens to generate (0 for prefill-only requests such as embeddings).
    pub output_tokens: u64,
    /// The keys of the prompt's full blocks ([`crate::prefix::block_keys`]) for a lookup in the
    /// prefix cache; None: no lookup (prefix caching off, or a request that is never cached).
    pub block_keys: Option<Vec<u64>>,
    /// Where the engine sends the sequence's admission, tokens and end, in order.
    pub events: mpsc::UnboundedSender<EngineEvent>,
}

/// Gauges and counters the engine keeps for `/metrics`.
#[derive(Debug, Default)]
pub struct EngineGauges {
    /// Sequences in the running batch (`vllm:num_requests_running`).
    pub running: AtomicU64,
    /// Sequences admitted but waiting for room in the batch or the KV cache
    /// (`vllm:num_requests_waiting`).
    pub waiting: AtomicU64,
    /// Tokens of KV cache held by running sequences (reservations and the prefix blocks they
    /// use; evictable cached blocks are free, as vLLM counts them).
    pub kv_used_tokens: AtomicU64,
    /// Blocks in the prefix cache, in use or evictable.
    pub cached_blocks: AtomicU64,
    /// Prompt tokens looked up in the prefix cache (`vllm:prefix_cache_queries_total`).
    pub prefix_cache_queries: AtomicU64,
    /// Prompt tokens found there (`vllm:prefix_cache_hits_total`).
    pub prefix_cache_hits: AtomicU64,
}

/// A handle to submit requests to a running engine.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::UnboundedSender<Admission>,
    /// The engine's gauges and counters, updated by its step loop.
    pub gauges: Arc<EngineGauges>,
    /// The roofline model and limits the engine steps by.
    pub spec: Arc<EngineSpec>,
}

impl EngineHandle {
    /// Starts the step loop on a thread of its own (it plays the GPU: it must keep time to the
    /// microsecond, which async timers, at millisecond resolution, cannot), its prefix cache in
    /// blocks of `block_tokens` tokens. The thread ends when every handle is dropped.
    pub fn spawn(spec: EngineSpec, time_scale: f64, block_tokens: u64) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let gauges = Arc::new(EngineGauges::default());
        let spec = Arc::new(spec);
        let (s, g) = (spec.clone(), gauges.clone());
        let _ = std::thread::Builder::new()
            .name("sim-engine".into())
            .spawn(move || step_loop(s, time_scale, block_tokens, rx, g));
        Self { tx, gauges, spec }
    }

    /// Submits a request, with the keys of its prompt's full blocks to look up in the prefix
    /// cache (None: no lookup). Fails when it can never fit the KV cache.
    pub fn submit(
        &self,
        prompt_tokens: u64,
        output_tokens: u64,
        block_keys: Option<Vec<u64>>,
    ) -> Result<mpsc::UnboundedReceiver<EngineEvent>, Error> {
        fits(&self.spec, prompt_tokens, output_tokens)?;
        let (events, rx) = mpsc::unbounded_channel();
        self.tx
            .send(Admission {
                prompt_tokens: prompt_tokens.max(1),
                output_tokens,
                block_keys,
                events,
            })
            .map_err(|_| Error::Request("the engine has stopped".into()))?;
        Ok(rx)
    }

    /// The share of the KV cache held by running sequences, 0..=1 (`vllm:kv_cache_usage_perc`).
    pub fn kv_usage(&self) -> f64 {
        self.gauges.kv_used_tokens.load(Ordering::Relaxed) as f64
            / self.spec.kv_capacity_tokens.max(1) as f64
    }
}

/// A request can run at all: its prompt and output fit the KV cache.
pub(crate) fn fits(spec: &EngineSpec, prompt_tokens: u64, output_tokens: u64) -> Result<(), Error> {
    let need = prompt_tokens.max(1).saturating_add(output_tokens);
    if need > spec.kv_capacity_tokens {
        return Err(Error::Request(format!(
            "this request needs {need} tokens of KV cache (prompt {prompt_tokens} + max_tokens {output_tokens}), more than the simulated cache holds ({})",
            spec.kv_capacity_tokens
        )));
    }
    Ok(())
}

/// A request waiting for admission; `H` is how its events reach its owner (a channel in the
/// live engine, an index in a replay).
pub(crate) struct Pending<H> {
    pub prompt: u64,
    pub output: u64,
    /// The keys of the prompt's full blocks, for the prefix cache (None: no lookup).
    pub blocks: Option<Vec<u64>>,
    pub handle: H,
}

struct Seq<H> {
    prompt: u64,
    prefilled: u64,
    generated: u64,
    target: u64,
    handle: H,
    /// Work given to this sequence in the current step: 1 decode token, or a prefill chunk.
    scheduled: u64,
    done: bool,
    /// The keys of its full prompt blocks (none without prefix caching).
    keys: Vec<u64>,
    /// How many of `keys`, from the first, it holds in the prefix cache: the hits, then each
    /// block once its prefill is computed. The rest of its reservation is its own.
    held: usize,
    /// Prompt tokens taken from the prefix cache on admission.
    cached: u64,
    /// Its owner has been told of the admission ([`EngineEvent::Admitted`]).
    announced: bool,
}

impl<H> Seq<H> {
    /// A sequence admitted with its first `hits` blocks from the prefix cache.
    fn new(p: Pending<H>, hits: usize, block: u64) -> Self {
        let prompt = p.prompt.max(1);
        let mut keys = p.blocks.unwrap_or_default();
        // Only whole blocks of the prompt are keyed (a caller cannot make one reach past it).
        keys.truncate(usize::try_from(prompt / block).unwrap_or(usize::MAX));
        let cached = hits as u64 * block;
        Self {
            prompt,
            prefilled: cached,
            generated: 0,
            target: p.output,
            handle: p.handle,
            scheduled: 0,
            done: false,
            keys,
            held: hits,
            cached,
            announced: false,
        }
    }
    fn kv_need(&self) -> u64 {
        self.prompt + self.target
    }
    /// Its reservation outside the prefix cache, tokens.
    fn private_kv(&self, block: u64) -> u64 {
        self.kv_need() - self.held as u64 * block
    }
    fn decoding(&self) -> bool {
        self.prefilled == self.prompt
    }
}

/// The scheduler between two steps: admission, planning and applying, the same code whichever
/// clock runs it.
pub(crate) struct Scheduler<H> {
    spec: EngineSpec,
    waiting: VecDeque<Pending<H>>,
    running: Vec<Seq<H>>,
    /// Tokens reserved by running sequences outside the prefix cache.
    kv_private: u64,
    /// The prefix cache's blocks, inside the same capacity.
    cache: PrefixCache,
    /// Tokens per block.
    block: u64,
    /// Prompt tokens looked up in the prefix cache, and found there, since the start.
    prefix_queries: u64,
    prefix_hits: u64,
}

/// The head of the queue may start, with this many of its leading blocks from the cache.
struct Admissible {
    hits: usize,
}

impl<H> Scheduler<H> {
    /// A scheduler whose prefix cache holds blocks of `block_tokens` tokens (used only by
    /// requests that come with block keys).
    pub fn new(spec: EngineSpec, block_tokens: u64) -> Self {
        Self {
            spec,
            waiting: VecDeque::new(),
            running: Vec::new(),
            kv_private: 0,
            cache: PrefixCache::new(),
            block: block_tokens.max(1),
            prefix_queries: 0,
            prefix_hits: 0,
        }
    }

    /// Queues a request behind those already waiting.
    pub fn enqueue(&mut self, p: Pending<H>) {
        self.waiting.push_back(p);
    }

    /// Nothing running and nothing waiting.
    pub fn is_idle(&self) -> bool {
        self.running.is_empty() && self.waiting.is_empty()
    }

    pub fn running_len(&self) -> usize {
        self.running.len()
    }

    pub fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    /// Tokens of KV cache held by running sequences: their own reservations and the cached
    /// blocks they use (evictable blocks count as free, as in vLLM's usage gauge).
    pub fn kv_used(&self) -> u64 {
        self.kv_private + self.cache.in_use() as u64 * self.block
    }

    /// Blocks in the prefix cache, in use or evictable.
    pub fn cached_blocks(&self) -> usize {
        self.cache.len()
    }

    /// Prompt tokens looked up in the prefix cache since the start, and those found.
    pub fn prefix_cache_counts(&self) -> (u64, u64) {
        (self.prefix_queries, self.prefix_hits)
    }

    /// Tokens occupied: reservations and every cached block.
    fn occupied(&self) -> u64 {
        self.kv_private + self.cache.len() as u64 * self.block
    }

    /// The head of the queue, if it may start now: a free slot, and room in the KV cache for
    /// its prompt and output less the blocks it finds cached, counting evictable blocks (other
    /// than its own hits) as room. Requests whose owner has gone (`gone`) are dropped on the
    /// way.
    fn admissible(&mut self, gone: &impl Fn(&H) -> bool) -> Option<Admissible> {
        while self.waiting.front().is_some_and(|p| gone(&p.handle)) {
            self.waiting.pop_front();
        }
        if self.running.len() >= self.spec.max_num_seqs {
            return None;
        }
        let front = self.waiting.front()?;
        let prompt = front.prompt.max(1);
        let keys = front.blocks.as_deref().unwrap_or_default();
        let hits =
            crate::prefix::usable_hit_blocks(self.cache.leading_hits(keys), prompt, self.block);
        let need = prompt + front.output - hits as u64 * self.block;
        // What stays occupied: the others' reservations, the blocks in use, and the hits, which
        // this request pins.
        let pinned = self.cache.in_use() + self.cache.evictable_among(&keys[..hits]);
        (self.kv_private + pinned as u64 * self.block + need <= self.spec.kv_capacity_tokens)
            .then_some(Admissible { hits })
    }

    /// Starts the head of the queue with its first `hits` blocks from the cache, evicting the
    /// least recently freed blocks while its reservation does not fit.
    fn admit_front(&mut self, a: Admissible) {
        let Some(p) = self.waiting.pop_front() else {
            return;
        };
        if let Some(keys) = &p.blocks {
            self.prefix_queries += p.prompt;
            self.prefix_hits += a.hits as u64 * self.block;
            for &k in &keys[..a.hits] {
                self.cache.acquire(k);
            }
        }
        let seq = Seq::new(p, a.hits, self.block);
        let need = seq.private_kv(self.block);
        while self.occupied() + need > self.spec.kv_capacity_tokens && self.cache.evict_one() {}
        self.kv_private += need;
        self.running.push(seq);
    }

    /// Ends the running sequences whose owner has gone (`gone`) or that are done: their
    /// reservations are free at once, and the prefix blocks they held stay cached, unpinned.
    fn retire(&mut self, gone: impl Fn(&H) -> bool) {
        let (cache, kv_private, block) = (&mut self.cache, &mut self.kv_private, self.block);
        self.running.retain(|s| {
            if s.done || gone(&s.handle) {
                *kv_private -= s.private_kv(block);
                cache.release(&s.keys[..s.held]);
                false
            } else {
                true
            }
        });
    }

    /// Tells the owner of every newly admitted sequence how much of its prompt was cached
    /// (`tell` returns false if the owner has gone; the sequence is then dropped before the
    /// next step).
    pub fn announce(&mut self, mut tell: impl FnMut(&mut H, u64) -> bool) {
        for s in self.running.iter_mut().filter(|s| !s.announced) {
            s.announced = true;
            if !tell(&mut s.handle, s.cached) {
                s.done = true;
            }
        }
    }

    /// Admits and plans the next step by the preset's policy: sets each running sequence's work
    /// and returns the step's load, or None when nothing can run (idle, or every waiting request
    /// gone).
    pub fn plan_step(&mut self, gone: impl Fn(&H) -> bool) -> Option<StepLoad> {
        // An abort is seen between steps, as vLLM's engine sees it.
        self.retire(&gone);
        let load = match self.spec.scheduling {
            SchedulingPolicy::ChunkedPrefill => self.plan_chunked(&gone),
            SchedulingPolicy::PrefillFirst => self.plan_prefill_first(&gone),
        };
        (load.sequences > 0).then_some(load)
    }

    /// Chunked prefill: admit while there is room, then one token for every decoding sequence
    /// and prefill chunks for the rest of the budget.
    fn plan_chunked(&mut self, gone: &impl Fn(&H) -> bool) -> StepLoad {
        while let Some(a) = self.admissible(gone) {
            self.admit_front(a);
        }
        let mut budget = self.spec.max_num_batched_tokens;
        let mut load = StepLoad::default();
        for s in self.running.iter_mut() {
            s.scheduled = 0;
            if s.decoding() && budget > 0 {
                s.scheduled = 1;
                budget -= 1;
                let ctx = s.prompt + s.generated + 1;
                load.tokens += 1;
                load.context_tokens += ctx;
                load.attention_pairs += ctx as f64;
                load.sequences += 1;
            }
        }
        for s in self.running.iter_mut() {
            if !s.decoding() && budget > 0 {
                let chunk = (s.prompt - s.prefilled).min(budget);
                s.scheduled = chunk;
                budget -= chunk;
                load.tokens += chunk;
                load.context_tokens += s.prefilled + chunk;
                load.attention_pairs += prefill_pairs(s.prefilled, chunk);
                load.sequences += 1;
            }
        }
        load
    }

    /// Prefill-first: if the head of the queue may start, the step prefills whole prompts of the
    /// queue's head (within the token budget; a longer prompt runs alone) and the decoders wait;
    /// otherwise every running sequence decodes one token. A prompt's cached blocks are not
    /// prefilled: its new tokens attend over them.
    fn plan_prefill_first(&mut self, gone: &impl Fn(&H) -> bool) -> StepLoad {
        for s in self.running.iter_mut() {
            s.scheduled = 0;
        }
        let mut load = StepLoad::default();
        let mut budget = self.spec.max_num_batched_tokens;
        while let Some(a) = self.admissible(gone) {
            let Some(front) = self.waiting.front() else {
                break;
            };
            let prompt = front.prompt.max(1);
            let cached = a.hits as u64 * self.block;
            let new = prompt - cached;
            if load.sequences > 0 && new > budget {
                break;
            }
            budget = budget.saturating_sub(new);
            self.admit_front(a);
            if let Some(s) = self.running.last_mut() {
                s.scheduled = new;
            }
            load.tokens += new;
            load.context_tokens += prompt;
            load.attention_pairs += prefill_pairs(cached, new);
            load.sequences += 1;
        }
        if load.sequences > 0 {
            return load;
        }
        for s in self.running.iter_mut() {
            if s.decoding() {
                s.scheduled = 1;
                let ctx = s.prompt + s.generated + 1;
                load.tokens += 1;
                load.context_tokens += ctx;
                load.attention_pairs += ctx as f64;
                load.sequences += 1;
            }
        }
        load
    }

    /// Applies the planned step once its time has passed: `emit` delivers each sequence's token
    /// or end to its owner and returns false if the owner has gone, which ends the sequence.
    /// Prompt blocks whose prefill is now complete join the prefix cache. Finished sequences
    /// leave and free their KV cache (their cached blocks stay, evictable).
    pub fn apply_step(&mut self, mut emit: impl FnMut(&mut H, Emit) -> bool) {
        let block = self.block;
        for s in self.running.iter_mut() {
            if s.scheduled == 0 {
                continue;
            }
            let mut token = false;
            if s.decoding() {
                s.generated += 1;
                token = true;
            } else {
                s.prefilled += s.scheduled;
                // Each block computed moves from the sequence's own reservation into the cache
                // (or, if an equal block got there first, is shared and its copy freed).
                while s.held < s.keys.len() && (s.held as u64 + 1) * block <= s.prefilled {
                    self.cache.acquire(s.keys[s.held]);
                    s.held += 1;
                    self.kv_private -= block;
                }
                if s.decoding() && s.target > 0 {
                    // The step that completes the prefill samples the first token.
                    s.generated = 1;
                    token = true;
                }
            }
            s.scheduled = 0;
            if token && !emit(&mut s.handle, Emit::Token) {
                s.done = true; // the client went away
                continue;
            }
            if s.decoding() && s.generated >= s.target {
                let _ = emit(&mut s.handle, Emit::Finished);
                s.done = true;
            }
        }
        self.retire(|_| false);
    }
}

/// Σ context × new tokens of a prefill chunk of `chunk` tokens after `done` tokens of context:
/// causal attention, so the chunk's tokens see the earlier context and half the chunk.
fn prefill_pairs(done: u64, chunk: u64) -> f64 {
    chunk as f64 * (done as f64 + chunk as f64 / 2.0)
}

fn step_loop(
    spec: Arc<EngineSpec>,
    time_scale: f64,
    block_tokens: u64,
    mut rx: mpsc::UnboundedReceiver<Admission>,
    gauges: Arc<EngineGauges>,
) {
    let pending = |a: Admission| Pending {
        prompt: a.prompt_tokens,
        output: a.output_tokens,
        blocks: a.block_keys,
        handle: a.events,
    };
    let mut scheduler = Scheduler::new((*spec).clone(), block_tokens);
    let mut step_start = Instant::now();
    loop {
        if scheduler.is_idle() {
            // Idle: nothing runs, waits or holds the cache (its cached blocks are all evictable),
            // and `/metrics` must say so while the loop sleeps until the next request.
            gauges.running.store(0, Ordering::Relaxed);
            gauges.waiting.store(0, Ordering::Relaxed);
            gauges.kv_used_tokens.store(0, Ordering::Relaxed);
            gauges
                .cached_blocks
                .store(scheduler.cached_blocks() as u64, Ordering::Relaxed);
            match rx.blocking_recv() {
                Some(a) => scheduler.enqueue(pending(a)),
                None => return,
            }
            step_start = Instant::now();
        }
        while let Ok(a) = rx.try_recv() {
            scheduler.enqueue(pending(a));
        }
        let load = scheduler.plan_step(|events| events.is_closed());
        gauges
            .running
            .store(scheduler.running_len() as u64, Ordering::Relaxed);
        gauges
            .waiting
            .store(scheduler.waiting_len() as u64, Ordering::Relaxed);
        gauges
            .kv_used_tokens
            .store(scheduler.kv_used(), Ordering::Relaxed);
        gauges
            .cached_blocks
            .store(scheduler.cached_blocks() as u64, Ordering::Relaxed);
        let (queries, hits) = scheduler.prefix_cache_counts();
        gauges
            .prefix_cache_queries
            .store(queries, Ordering::Relaxed);
        gauges.prefix_cache_hits.store(hits, Ordering::Relaxed);
        // After the counters, so that a client that has its answer finds it counted.
        scheduler.announce(|events, cached_tokens| {
            events.send(EngineEvent::Admitted { cached_tokens }).is_ok()
        });
        let Some(load) = load else {
            // Nothing admissible (cannot happen: oversized requests are refused on submit, and
            // requests whose client left were dropped, leaving the scheduler idle).
            std::thread::sleep(Duration::from_millis(1));
            continue;
        };
        let dt = spec.step_time(load).total() / time_scale;
        // An absolute schedule: a late wake-up does not push later steps back.
        let step_end = step_start + Duration::from_secs_f64(dt);
        crate::timer::sleep_until_precise(step_end);
        scheduler.apply_step(|events, emit| {
            let event = match emit {
                Emit::Token => EngineEvent::Token(step_end),
                Emit::Finished => EngineEvent::Finished(step_end),
            };
            events.send(event).is_ok()
        });
        step_start = step_end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset::{H100, LLAMA_3_1_8B};

    fn spec() -> EngineSpec {
        crate::preset::engine("h100-llama-3.1-8b").unwrap()
    }

    /// A scheduler whose sequences are numbered; events are collected as (id, emit).
    fn scheduler(policy: SchedulingPolicy, budget: u64) -> Scheduler<usize> {
        let mut s = spec();
        s.scheduling = policy;
        s.max_num_batched_tokens = budget;
        Scheduler::new(s, 16)
    }

    fn step(s: &mut Scheduler<usize>) -> (StepLoad, Vec<(usize, Emit)>) {
        let load = s.plan_step(|_| false).unwrap();
        let mut out = Vec::new();
        s.apply_step(|id, e| {
            out.push((*id, e));
            true
        });
        (load, out)
    }

    fn pending(id: usize, prompt: u64, output: u64) -> Pending<usize> {
        Pending {
            prompt,
            output,
            blocks: None,
            handle: id,
        }
    }

    #[test]
    fn chunked_prefill_interleaves_with_decoding() {
        let mut s = scheduler(SchedulingPolicy::ChunkedPrefill, 100);
        s.enqueue(pending(0, 10, 50));
        // Step 1 prefills the short prompt and samples its first token.
        let (load, out) = step(&mut s);
        assert_eq!((load.tokens, load.sequences), (10, 1));
        assert_eq!(out, vec![(0, Emit::Token)]);
        s.enqueue(pending(1, 250, 5));
        // Step 2: the decoder takes 1 token, the long prompt a 99-token chunk, no token for it.
        let (load, out) = step(&mut s);
        assert_eq!((load.tokens, load.sequences), (100, 2));
        assert_eq!(out, vec![(0, Emit::Token)]);
        // Steps 3 and 4: 99 more, then the last 52 with the first token.
        step(&mut s);
        let (load, out) = step(&mut s);
        assert_eq!(load.tokens, 53);
        assert_eq!(out, vec![(0, Emit::Token), (1, Emit::Token)]);
        // Both now decode one token per step.
        let (load, _) = step(&mut s);
        assert_eq!((load.tokens, load.sequences), (2, 2));
    }

    #[test]
    fn prefill_first_stalls_the_decoders() {
        let mut s = scheduler(SchedulingPolicy::PrefillFirst, 100);
        s.enqueue(pending(0, 10, 50));
        let (load, out) = step(&mut s);
        assert_eq!((load.tokens, load.sequences), (10, 1));
        assert_eq!(out, vec![(0, Emit::Token)]);
        // Three prompts arrive: 60 + 30 fit the budget of 100, the third (40) waits for the next
        // step; the decoder gets nothing in either step.
        s.enqueue(pending(1, 60, 3));
        s.enqueue(pending(2, 30, 3));
        s.enqueue(pending(3, 40, 3));
        let (load, out) = step(&mut s);
        assert_eq!((load.tokens, load.sequences), (90, 2));
        assert_eq!(out, vec![(1, Emit::Token), (2, Emit::Token)]);
        assert_eq!(load.attention_pairs, 60.0 * 60.0 / 2.0 + 30.0 * 30.0 / 2.0);
        let (load, out) = step(&mut s);
        assert_eq!((load.tokens, load.sequences), (40, 1));
        assert_eq!(out, vec![(3, Emit::Token)]);
        // Nothing waits now: all four decode together.
        let (load, out) = step(&mut s);
        assert_eq!((load.tokens, load.sequences), (4, 4));
        assert_eq!(out.len(), 4);
        // A prompt longer than the whole budget still runs, alone.
        s.enqueue(pending(4, 500, 1));
        let (load, out) = step(&mut s);
        assert_eq!((load.tokens, load.sequences), (500, 1));
        assert_eq!(out, vec![(4, Emit::Token), (4, Emit::Finished)]);
    }

    #[test]
    fn finished_sequences_free_their_cache_and_gone_requests_are_dropped() {
        let mut s = scheduler(SchedulingPolicy::PrefillFirst, 8192);
        s.enqueue(pending(0, 10, 2));
        s.enqueue(pending(1, 10, 2));
        // Request 1's owner left before it started: it is never admitted.
        let load = s.plan_step(|id| *id == 1).unwrap();
        assert_eq!(load.sequences, 1);
        assert_eq!(s.kv_used(), 12);
        s.apply_step(|_, _| true);
        let (_, out) = step(&mut s);
        assert_eq!(out, vec![(0, Emit::Token), (0, Emit::Finished)]);
        assert!(s.is_idle());
        assert_eq!(s.kv_used(), 0);
    }

    /// What a request got from a scheduler run in virtual time.
    #[derive(Debug, Clone, Copy, Default, PartialEq)]
    struct Served {
        /// Seconds from the start of the run to its first token.
        ttft_s: f64,
        cached_tokens: u64,
    }

    /// Runs `s` in virtual time (each step takes its model time) from an enqueue of `requests`
    /// at 0 until it is idle, as the live engine's loop does: admit and plan, announce, apply.
    fn serve(s: &mut Scheduler<usize>, requests: Vec<Pending<usize>>) -> Vec<Served> {
        let n = requests.iter().map(|p| p.handle + 1).max().unwrap_or(0);
        let mut out = vec![Served::default(); n];
        for p in requests {
            s.enqueue(p);
        }
        let mut now = 0.0;
        while let Some(load) = s.plan_step(|_| false) {
            s.announce(|&mut id, cached| {
                out[id].cached_tokens = cached;
                true
            });
            now += s.spec.step_time(load).total();
            s.apply_step(|&mut id, e| {
                if e == Emit::Token && out[id].ttft_s == 0.0 {
                    out[id].ttft_s = now;
                }
                true
            });
        }
        assert!(s.is_idle());
        out
    }

    /// A request whose prompt is `tokens`, with the keys of its 16-token blocks.
    fn keyed(id: usize, tokens: &[u32], output: u64) -> Pending<usize> {
        Pending {
            prompt: tokens.len() as u64,
            output,
            blocks: Some(crate::prefix::block_keys(tokens, 16)),
            handle: id,
        }
    }

    fn cached_scheduler(kv_capacity_tokens: u64) -> Scheduler<usize> {
        let mut s = spec();
        s.kv_capacity_tokens = kv_capacity_tokens;
        Scheduler::new(s, 16)
    }

    fn tokens(from: u32, n: u32) -> Vec<u32> {
        (from..from + n).collect()
    }

    #[test]
    fn identical_prompts_hit_all_but_the_last_block() {
        let mut s = cached_scheduler(100_000);
        // 64 tokens: four full blocks, all cached the second time, but the last token is always
        // computed, so the fourth block is recomputed.
        let whole = tokens(0, 64);
        assert_eq!(serve(&mut s, vec![keyed(0, &whole, 4)])[0].cached_tokens, 0);
        assert_eq!(
            serve(&mut s, vec![keyed(0, &whole, 4)])[0].cached_tokens,
            48
        );
        // 70 tokens: four full blocks and a partial one; the four hit.
        let ragged = tokens(1000, 70);
        serve(&mut s, vec![keyed(0, &ragged, 4)]);
        assert_eq!(
            serve(&mut s, vec![keyed(0, &ragged, 4)])[0].cached_tokens,
            64
        );
        assert_eq!(s.prefix_cache_counts(), (64 + 64 + 70 + 70, 48 + 64));
        // Nothing runs: nothing holds the cache, and the blocks stay (4 + 4, each prompt's
        // recomputed block shared with its first copy).
        assert_eq!((s.kv_used(), s.cached_blocks()), (0, 8));
    }

    #[test]
    fn a_shared_prefix_hits_its_full_blocks() {
        for p in [16u32, 50, 64, 100] {
            let mut s = cached_scheduler(100_000);
            let mut a = tokens(0, p);
            let mut b = a.clone();
            a.extend(tokens(10_000, 30));
            b.extend(tokens(20_000, 30));
            serve(&mut s, vec![keyed(0, &a, 4)]);
            let got = serve(&mut s, vec![keyed(0, &b, 4)])[0].cached_tokens;
            assert_eq!(got, u64::from(p / 16 * 16), "prefix {p}");
        }
    }

    /// With room for 200 tokens, A's four blocks stay cached after it ends; a request that needs
    /// room evicts the least recently freed blocks, A's tail first, so A again finds the head
    /// that survived — or nothing, when the other request needed the whole cache.
    #[test]
    fn an_evicted_prefix_misses() {
        let a = tokens(0, 64);
        for (other_prompt, other_output, a_hits_again) in [(150, 18, 32), (190, 10, 0)] {
            let mut s = cached_scheduler(200);
            serve(&mut s, vec![keyed(0, &a, 1)]);
            assert_eq!(s.cached_blocks(), 4);
            let other = tokens(5_000, other_prompt);
            assert_eq!(
                serve(&mut s, vec![keyed(0, &other, other_output)])[0].cached_tokens,
                0
            );
            let again = serve(&mut s, vec![keyed(0, &a, 1)])[0].cached_tokens;
            assert_eq!(again, a_hits_again, "after a request of {other_prompt}");
            assert!(s.occupied() <= 200);
        }
    }

    /// A prompt of 1,000 tokens alone, then again: the second prefills only the 8 tokens after
    /// its 62 cached blocks, attending over them, so its time to first token is the step model's
    /// time for that step — and the first's, that of the whole prompt — to rounding.
    #[test]
    fn cached_tokens_are_not_prefilled() {
        for policy in [
            SchedulingPolicy::PrefillFirst,
            SchedulingPolicy::ChunkedPrefill,
        ] {
            let mut s = cached_scheduler(100_000);
            s.spec.scheduling = policy;
            let prompt = tokens(0, 1000);
            let miss = serve(&mut s, vec![keyed(0, &prompt, 5)])[0];
            let hit = serve(&mut s, vec![keyed(0, &prompt, 5)])[0];
            assert_eq!((miss.cached_tokens, hit.cached_tokens), (0, 992));
            let whole = s.spec.step_time(EngineSpec::prefill_load(1, 1000)).total();
            let rest = s
                .spec
                .step_time(StepLoad {
                    tokens: 8,
                    context_tokens: 1000,
                    attention_pairs: 8.0 * (992.0 + 4.0),
                    sequences: 1,
                })
                .total();
            assert!((miss.ttft_s - whole).abs() < 1e-12, "{policy:?}: {miss:?}");
            assert!((hit.ttft_s - rest).abs() < 1e-12, "{policy:?}: {hit:?}");
            // The saving is the prefill of the hit tokens: most of the step (weights are read
            // either way).
            assert!(whole - rest > 0.5 * whole, "{whole} vs {rest}");
        }
    }

    /// R requests in G groups, each prompt a P-token prefix shared within its group and a
    /// suffix of its own, one after another: the hit rate is
    /// [`crate::prefix::expected_hit_rate`]'s (R − G)·⌊P/B⌋·B / (R·(P + S)).
    #[test]
    fn shared_prefix_groups_hit_at_the_expected_rate() {
        for (r, g, p, suffix) in [(24u32, 4u32, 100u32, 20u32), (10, 3, 64, 1), (7, 7, 40, 9)] {
            let mut s = cached_scheduler(1_000_000);
            for i in 0..r {
                let mut prompt = tokens(1_000 * (i % g), p);
                prompt.extend(tokens(50_000 + 100 * i, suffix));
                serve(&mut s, vec![keyed(0, &prompt, 2)]);
            }
            let (queries, hits) = s.prefix_cache_counts();
            let want =
                crate::prefix::expected_hit_rate(r.into(), g.into(), p.into(), suffix.into(), 16);
            assert_eq!(queries, u64::from(r * (p + suffix)));
            assert!(
                (hits as f64 / queries as f64 - want).abs() < 1e-12,
                "{r} requests in {g} groups of prefix {p}: {hits}/{queries} vs {want}"
            );
        }
    }

    /// A sequence whose owner goes away is dropped before the next step: its reservation is free
    /// at once, and the prompt blocks it computed stay cached, unpinned, for the next request.
    #[test]
    fn an_aborted_sequence_frees_its_cache_and_leaves_its_blocks() {
        let mut s = cached_scheduler(100_000);
        let prompt = tokens(0, 64);
        s.enqueue(keyed(0, &prompt, 100));
        let (_, out) = step(&mut s);
        assert_eq!(out, vec![(0, Emit::Token)]);
        assert_eq!((s.kv_used(), s.cached_blocks()), (164, 4));
        assert!(s.plan_step(|&id| id == 0).is_none(), "gone: nothing to run");
        assert!(s.is_idle());
        assert_eq!((s.kv_used(), s.cached_blocks()), (0, 4));
        assert_eq!(
            serve(&mut s, vec![keyed(1, &prompt, 1)])[1].cached_tokens,
            48
        );
    }

    #[test]
    fn single_stream_matches_the_step_model() {
        let s = spec();
        let engine = EngineHandle::spawn(s.clone(), 1.0, 16);
        let submitted = Instant::now();
        let mut rx = engine.submit(100, 10, None).unwrap();
        assert_eq!(
            rx.blocking_recv(),
            Some(EngineEvent::Admitted { cached_tokens: 0 })
        );
        let mut times = Vec::new();
        while let Some(EngineEvent::Token(at)) = rx.blocking_recv() {
            times.push(at);
        }
        assert_eq!(times.len(), 10);
        let prefill = s.step_time(EngineSpec::prefill_load(1, 100)).total();
        // The engine starts its first step when its thread picks the request up, just after
        // submission: how long that takes is the machine's (a loaded CI machine can take tens of
        // ms to wake a thread), so only a gross delay fails here; the step times below are exact.
        let first = (times[0] - submitted).as_secs_f64();
        assert!(
            first >= prefill && first - prefill < 0.1,
            "{first} vs {prefill}"
        );
        // Decode step k reads the weights and a context of 100 + k + 1 tokens: the scheduled
        // instants follow the step model exactly.
        for k in 1..times.len() {
            let step = s
                .step_time(EngineSpec::decode_load(1, 100 + k as u64 + 1))
                .total();
            let got = (times[k] - times[k - 1]).as_secs_f64();
            assert!((got - step).abs() < 1e-6, "token {k}: {got} vs {step}");
        }
        // Which is, per token, the weights over the effective bandwidth plus the overheads of a
        // one-sequence step.
        let per_token = (times[9] - times[1]).as_secs_f64() / 8.0;
        let single = 8.03e9 * 2.0 / (3.35e12 * s.bandwidth_efficiency)
            + s.step_overhead_s
            + s.seq_overhead_s;
        assert!(
            (per_token - single).abs() / single < 0.01,
            "{per_token} vs {single}"
        );
    }

    #[test]
    fn a_full_kv_cache_makes_requests_wait() {
        let mut s = spec();
        s.gpu = H100;
        s.model = LLAMA_3_1_8B;
        s.kv_capacity_tokens = 300;
        let engine = EngineHandle::spawn(s, 50.0, 16);
        let mut first = engine.submit(100, 100, None).unwrap(); // needs 200
        let mut second = engine.submit(50, 60, None).unwrap(); // needs 110: waits for the first
        assert!(engine.submit(250, 100, None).is_err(), "can never fit");
        let mut first_done = None;
        let mut n = 0;
        while let Some(ev) = first.blocking_recv() {
            match ev {
                EngineEvent::Token(_) => n += 1,
                EngineEvent::Finished(at) => first_done = Some(at),
                EngineEvent::Admitted { .. } => {}
            }
        }
        assert_eq!(n, 100);
        let first_done = first_done.unwrap();
        let mut m = 0;
        assert!(matches!(
            second.blocking_recv(),
            Some(EngineEvent::Admitted { .. })
        ));
        while let Some(EngineEvent::Token(at)) = second.blocking_recv() {
            assert!(
                at > first_done,
                "the second request waited for the first to free the cache"
            );
            m += 1;
        }
        assert_eq!(m, 60);
    }

    #[test]
    fn an_idle_engine_reports_nothing_running() {
        let engine = EngineHandle::spawn(spec(), 50.0, 16);
        let mut rx = engine.submit(100, 5, None).unwrap();
        while let Some(EngineEvent::Token(_) | EngineEvent::Admitted { .. }) = rx.blocking_recv() {}
        // The gauges are reset as the loop goes idle, just after the last step.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while engine.gauges.running.load(Ordering::Relaxed) != 0 {
            assert!(std::time::Instant::now() < deadline, "still running");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(engine.gauges.waiting.load(Ordering::Relaxed), 0);
        assert_eq!(engine.kv_usage(), 0.0);
    }
}
