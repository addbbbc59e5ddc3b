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

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::time::Instant;
use tokio::sync::mpsc;

use crate::preset::{EngineSpec, SchedulingPolicy, StepLoad};
use crate::Error;

/// What the engine tells a request's handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineEvent {
    /// One output token was produced by the step that ended at this instant.
    Token(Instant),
    /// The sequence is complete (all tokens sent, or the prefill of a prefill-only request).
    Finished(Instant),
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
    pub prompt_tokens: u64,
    /// Output tokens to generate (0 for prefill-only requests such as embeddings).
    pub output_tokens: u64,
    pub events: mpsc::UnboundedSender<EngineEvent>,
}

/// Gauges and counters the engine keeps for `/metrics`.
#[derive(Debug, Default)]
pub struct EngineGauges {
    pub running: AtomicU64,
    pub waiting: AtomicU64,
    pub kv_used_tokens: AtomicU64,
}

/// A handle to submit requests to a running engine.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::UnboundedSender<Admission>,
    pub gauges: Arc<EngineGauges>,
    pub spec: Arc<EngineSpec>,
}

impl EngineHandle {
    /// Starts the step loop on a thread of its own (it plays the GPU: it must keep time to the
    /// microsecond, which async timers, at millisecond resolution, cannot). The thread ends when
    /// every handle is dropped.
    pub fn spawn(spec: EngineSpec, time_scale: f64) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let gauges = Arc::new(EngineGauges::default());
        let spec = Arc::new(spec);
        let (s, g) = (spec.clone(), gauges.clone());
        let _ = std::thread::Builder::new()
            .name("sim-engine".into())
            .spawn(move || step_loop(s, time_scale, rx, g));
        Self { tx, gauges, spec }
    }

    /// Submits a request. Fails when it can never fit the KV cache.
    pub fn submit(
        &self,
        prompt_tokens: u64,
        output_tokens: u64,
    ) -> Result<mpsc::UnboundedReceiver<EngineEvent>, Error> {
        fits(&self.spec, prompt_tokens, output_tokens)?;
        let (events, rx) = mpsc::unbounded_channel();
        self.tx
            .send(Admission {
                prompt_tokens: prompt_tokens.max(1),
                output_tokens,
                events,
            })
            .map_err(|_| Error::Request("the engine has stopped".into()))?;
        Ok(rx)
    }

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
}

impl<H> Seq<H> {
    fn new(p: Pending<H>) -> Self {
        Self {
            prompt: p.prompt.max(1),
            prefilled: 0,
            generated: 0,
            target: p.output,
            handle: p.handle,
            scheduled: 0,
            done: false,
        }
    }
    fn kv_need(&self) -> u64 {
        self.prompt + self.target
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
    kv_used: u64,
}

impl<H> Scheduler<H> {
    pub fn new(spec: EngineSpec) -> Self {
        Self {
            spec,
            waiting: VecDeque::new(),
            running: Vec::new(),
            kv_used: 0,
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

    pub fn kv_used(&self) -> u64 {
        self.kv_used
    }

    /// The head of the queue, if it may start now: a free slot and room in the KV cache for its
    /// prompt and output. Requests whose owner has gone (`gone`) are dropped on the way.
    fn admissible(&mut self, gone: &impl Fn(&H) -> bool) -> Option<&Pending<H>> {
        while self.waiting.front().is_some_and(|p| gone(&p.handle)) {
            self.waiting.pop_front();
        }
        if self.running.len() >= self.spec.max_num_seqs {
            return None;
        }
        let front = self.waiting.front()?;
        let need = front.prompt.max(1) + front.output;
        (self.kv_used + need <= self.spec.kv_capacity_tokens).then_some(front)
    }

    fn admit_front(&mut self) {
        if let Some(p) = self.waiting.pop_front() {
            let seq = Seq::new(p);
            self.kv_used += seq.kv_need();
            self.running.push(seq);
        }
    }

    /// Admits and plans the next step by the preset's policy: sets each running sequence's work
    /// and returns the step's load, or None when nothing can run (idle, or every waiting request
    /// gone).
    pub fn plan_step(&mut self, gone: impl Fn(&H) -> bool) -> Option<StepLoad> {
        let load = match self.spec.scheduling {
            SchedulingPolicy::ChunkedPrefill => self.plan_chunked(&gone),
            SchedulingPolicy::PrefillFirst => self.plan_prefill_first(&gone),
        };
        (load.sequences > 0).then_some(load)
    }

    /// Chunked prefill: admit while there is room, then one token for every decoding sequence
    /// and prefill chunks for the rest of the budget.
    fn plan_chunked(&mut self, gone: &impl Fn(&H) -> bool) -> StepLoad {
        while self.admissible(gone).is_some() {
            self.admit_front();
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
                // Causal attention: the chunk's tokens see the earlier context and half the chunk.
                load.attention_pairs += chunk as f64 * (s.prefilled as f64 + chunk as f64 / 2.0);
                load.sequences += 1;
            }
        }
        load
    }

    /// Prefill-first: if the head of the queue may start, the step prefills whole prompts of the
    /// queue's head (within the token budget; a longer prompt runs alone) and the decoders wait;
    /// otherwise every running sequence decodes one token.
    fn plan_prefill_first(&mut self, gone: &impl Fn(&H) -> bool) -> StepLoad {
        for s in self.running.iter_mut() {
            s.scheduled = 0;
        }
        let mut load = StepLoad::default();
        let mut budget = self.spec.max_num_batched_tokens;
        while let Some(front) = self.admissible(gone) {
            let prompt = front.prompt.max(1);
            if load.sequences > 0 && prompt > budget {
                break;
            }
            budget = budget.saturating_sub(prompt);
            self.admit_front();
            if let Some(s) = self.running.last_mut() {
                s.scheduled = prompt;
            }
            load.tokens += prompt;
            load.context_tokens += prompt;
            load.attention_pairs += prompt as f64 * prompt as f64 / 2.0;
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
    /// Finished sequences leave and free their KV cache.
    pub fn apply_step(&mut self, mut emit: impl FnMut(&mut H, Emit) -> bool) {
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
        let kv_used = &mut self.kv_used;
        self.running.retain(|s| {
            if s.done {
                *kv_used -= s.kv_need();
            }
            !s.done
        });
    }
}

fn step_loop(
    spec: Arc<EngineSpec>,
    time_scale: f64,
    mut rx: mpsc::UnboundedReceiver<Admission>,
    gauges: Arc<EngineGauges>,
) {
    let pending = |a: Admission| Pending {
        prompt: a.prompt_tokens,
        output: a.output_tokens,
        handle: a.events,
    };
    let mut scheduler = Scheduler::new((*spec).clone());
    let mut step_start = Instant::now();
    loop {
        if scheduler.is_idle() {
            // Idle: nothing runs, waits or holds the cache, and `/metrics` must say so while the
            // loop sleeps until the next request.
            gauges.running.store(0, Ordering::Relaxed);
            gauges.waiting.store(0, Ordering::Relaxed);
            gauges.kv_used_tokens.store(0, Ordering::Relaxed);
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
        Scheduler::new(s)
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

    #[test]
    fn single_stream_matches_the_step_model() {
        let s = spec();
        let engine = EngineHandle::spawn(s.clone(), 1.0);
        let submitted = Instant::now();
        let mut rx = engine.submit(100, 10).unwrap();
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
        let engine = EngineHandle::spawn(s, 50.0);
        let mut first = engine.submit(100, 100).unwrap(); // needs 200
        let mut second = engine.submit(50, 60).unwrap(); // needs 110: waits for the first
        assert!(engine.submit(250, 100).is_err(), "can never fit");
        let mut first_done = None;
        let mut n = 0;
        while let Some(ev) = first.blocking_recv() {
            match ev {
                EngineEvent::Token(_) => n += 1,
                EngineEvent::Finished(at) => first_done = Some(at),
            }
        }
        assert_eq!(n, 100);
        let first_done = first_done.unwrap();
        let mut m = 0;
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
        let engine = EngineHandle::spawn(spec(), 50.0);
        let mut rx = engine.submit(100, 5).unwrap();
        while let Some(EngineEvent::Token(_)) = rx.blocking_recv() {}
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
