//! Continuous batching, as vLLM and SGLang schedule it, on the roofline step model.
//!
//! One task runs a step loop. Each step: admit waiting requests in arrival order while there is a
//! free sequence slot and room in the KV cache for the request's prompt and output (a request that
//! does not fit waits; the queue is first-come first-served); give every decoding sequence one
//! token of the step's token budget, then fill the rest of the budget with prefill chunks; compute
//! the step's time with [`EngineSpec::step_time`]; sleep until the step's end on an absolute
//! schedule (model time divided by the time scale); then emit one token to every decoding
//! sequence and the first token to every sequence whose prefill completed. Prefill and decode
//! share steps, so a long prompt slows the decoders beside it exactly as on a real server.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::time::Instant;
use tokio::sync::mpsc;

use crate::preset::{EngineSpec, StepLoad};

/// What the engine tells a request's handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineEvent {
    /// One output token was produced by the step that ended at this instant.
    Token(Instant),
    /// The sequence is complete (all tokens sent, or the prefill of a prefill-only request).
    Finished(Instant),
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
    ) -> Result<mpsc::UnboundedReceiver<EngineEvent>, String> {
        let need = prompt_tokens.max(1) + output_tokens;
        if need > self.spec.kv_capacity_tokens {
            return Err(format!(
                "this request needs {need} tokens of KV cache (prompt {prompt_tokens} + max_tokens {output_tokens}), more than the simulated cache holds ({})",
                self.spec.kv_capacity_tokens
            ));
        }
        let (events, rx) = mpsc::unbounded_channel();
        self.tx
            .send(Admission {
                prompt_tokens: prompt_tokens.max(1),
                output_tokens,
                events,
            })
            .map_err(|_| "the engine has stopped".to_string())?;
        Ok(rx)
    }

    pub fn kv_usage(&self) -> f64 {
        self.gauges.kv_used_tokens.load(Ordering::Relaxed) as f64
            / self.spec.kv_capacity_tokens.max(1) as f64
    }
}

struct Seq {
    prompt: u64,
    prefilled: u64,
    generated: u64,
    target: u64,
    events: mpsc::UnboundedSender<EngineEvent>,
    /// Work given to this sequence in the current step: 1 decode token, or a prefill chunk.
    scheduled: u64,
    done: bool,
}

impl Seq {
    fn kv_need(&self) -> u64 {
        self.prompt + self.target
    }
    fn decoding(&self) -> bool {
        self.prefilled == self.prompt
    }
}

/// Plans one step over `running`: decode tokens first, then prefill chunks, within the budget.
/// Sets each sequence's `scheduled` and returns the step's load.
fn plan_step(spec: &EngineSpec, running: &mut [Seq]) -> StepLoad {
    let mut budget = spec.max_num_batched_tokens;
    let mut load = StepLoad::default();
    for s in running.iter_mut() {
        s.scheduled = 0;
        if s.decoding() && budget > 0 {
            s.scheduled = 1;
            budget -= 1;
            let ctx = s.prompt + s.generated + 1;
            load.tokens += 1;
            load.context_tokens += ctx;
            load.attention_pairs += ctx as f64;
        }
    }
    for s in running.iter_mut() {
        if !s.decoding() && budget > 0 {
            let chunk = (s.prompt - s.prefilled).min(budget);
            s.scheduled = chunk;
            budget -= chunk;
            load.tokens += chunk;
            load.context_tokens += s.prefilled + chunk;
            // Causal attention: the chunk's tokens see the earlier context and half the chunk.
            load.attention_pairs += chunk as f64 * (s.prefilled as f64 + chunk as f64 / 2.0);
        }
    }
    load
}

/// Applies a finished step: emits tokens, completes prefills, finishes sequences.
fn apply_step(running: &mut [Seq], at: Instant) {
    for s in running.iter_mut() {
        if s.scheduled == 0 {
            continue;
        }
        let was_decoding = s.decoding();
        let mut emit = false;
        if was_decoding {
            s.generated += 1;
            emit = true;
        } else {
            s.prefilled += s.scheduled;
            if s.decoding() && s.target > 0 {
                // The step that completes the prefill samples the first token.
                s.generated = 1;
                emit = true;
            }
        }
        if emit && s.events.send(EngineEvent::Token(at)).is_err() {
            s.done = true; // the client went away
            continue;
        }
        if s.decoding() && s.generated >= s.target {
            let _ = s.events.send(EngineEvent::Finished(at));
            s.done = true;
        }
        s.scheduled = 0;
    }
}

fn step_loop(
    spec: Arc<EngineSpec>,
    time_scale: f64,
    mut rx: mpsc::UnboundedReceiver<Admission>,
    gauges: Arc<EngineGauges>,
) {
    let mut waiting: VecDeque<Admission> = VecDeque::new();
    let mut running: Vec<Seq> = Vec::new();
    let mut kv_used: u64 = 0;
    let mut step_start = Instant::now();
    loop {
        if running.is_empty() && waiting.is_empty() {
            match rx.blocking_recv() {
                Some(a) => waiting.push_back(a),
                None => return,
            }
            step_start = Instant::now();
        }
        while let Ok(a) = rx.try_recv() {
            waiting.push_back(a);
        }
        // Admission: first come, first served; the head of the queue blocks those behind it.
        while running.len() < spec.max_num_seqs {
            let Some(front) = waiting.front() else { break };
            let need = front.prompt_tokens + front.output_tokens;
            if kv_used + need > spec.kv_capacity_tokens {
                break;
            }
            let Some(a) = waiting.pop_front() else { break };
            if a.events.is_closed() {
                continue;
            }
            kv_used += need;
            running.push(Seq {
                prompt: a.prompt_tokens,
                prefilled: 0,
                generated: 0,
                target: a.output_tokens,
                events: a.events,
                scheduled: 0,
                done: false,
            });
        }
        gauges
            .running
            .store(running.len() as u64, Ordering::Relaxed);
        gauges
            .waiting
            .store(waiting.len() as u64, Ordering::Relaxed);
        gauges.kv_used_tokens.store(kv_used, Ordering::Relaxed);
        if running.is_empty() {
            // Nothing admissible (cannot happen: oversized requests are refused on submit).
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let load = plan_step(&spec, &mut running);
        let dt = spec.step_time(load).total() / time_scale;
        // An absolute schedule: a late wake-up does not push later steps back.
        let step_end = step_start + Duration::from_secs_f64(dt);
        crate::timer::sleep_until_precise(step_end);
        apply_step(&mut running, step_end);
        running.retain(|s| {
            if s.done {
                kv_used -= s.kv_need();
            }
            !s.done
        });
        step_start = step_end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset::{H100, LLAMA_3_1_8B};

    fn spec() -> EngineSpec {
        crate::preset::preset("h100-llama-3.1-8b")
            .and_then(|p| match p.behaviour {
                crate::preset::Behaviour::Engine(e) => Some(e),
                _ => None,
            })
            .unwrap()
    }

    fn seq(prompt: u64, target: u64) -> (Seq, mpsc::UnboundedReceiver<EngineEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Seq {
                prompt,
                prefilled: 0,
                generated: 0,
                target,
                events: tx,
                scheduled: 0,
                done: false,
            },
            rx,
        )
    }

    #[test]
    fn chunked_prefill_interleaves_with_decoding() {
        let mut s = spec();
        s.max_num_batched_tokens = 100;
        let (mut decoder, mut drx) = seq(10, 50);
        decoder.prefilled = 10;
        decoder.generated = 1;
        let (long, mut lrx) = seq(250, 5);
        let mut running = vec![decoder, long];
        // Step 1: the decoder takes 1 token, the long prompt a 99-token chunk.
        let load = plan_step(&s, &mut running);
        assert_eq!((running[0].scheduled, running[1].scheduled), (1, 99));
        assert_eq!(load.tokens, 100);
        apply_step(&mut running, Instant::now());
        assert!(matches!(drx.try_recv(), Ok(EngineEvent::Token(_))));
        assert!(
            lrx.try_recv().is_err(),
            "no token before the prefill completes"
        );
        // Steps 2 and 3: 99 more, then the last 52 with the first token.
        plan_step(&s, &mut running);
        apply_step(&mut running, Instant::now());
        let load = plan_step(&s, &mut running);
        assert_eq!(running[1].scheduled, 52);
        assert_eq!(load.tokens, 53);
        apply_step(&mut running, Instant::now());
        assert!(matches!(lrx.try_recv(), Ok(EngineEvent::Token(_))));
        assert!(matches!(drx.try_recv(), Ok(EngineEvent::Token(_))));
        assert!(matches!(drx.try_recv(), Ok(EngineEvent::Token(_))));
        // Both now decode one token per step.
        let load = plan_step(&s, &mut running);
        assert_eq!(load.tokens, 2);
    }

    #[test]
    fn single_stream_matches_the_roofline() {
        let s = spec();
        let engine = EngineHandle::spawn(s.clone(), 1.0);
        let submitted = Instant::now();
        let mut rx = engine.submit(100, 10).unwrap();
        let mut times = Vec::new();
        while let Some(EngineEvent::Token(at)) = rx.blocking_recv() {
            times.push(at);
        }
        assert_eq!(times.len(), 10);
        let prefill = s
            .step_time(StepLoad {
                tokens: 100,
                context_tokens: 100,
                attention_pairs: 100.0 * 50.0,
            })
            .total();
        // The engine starts its first step when it picks the request up, just after submission.
        let first = (times[0] - submitted).as_secs_f64();
        assert!(
            first >= prefill && first - prefill < 2e-3,
            "{first} vs {prefill}"
        );
        // Decode step k reads the weights and a context of 100 + k + 1 tokens: the scheduled
        // instants follow the roofline exactly.
        for k in 1..times.len() {
            let step = s
                .step_time(EngineSpec::decode_load(1, 100 + k as u64 + 1))
                .total();
            let got = (times[k] - times[k - 1]).as_secs_f64();
            assert!((got - step).abs() < 1e-6, "token {k}: {got} vs {step}");
        }
        let per_token = (times[9] - times[1]).as_secs_f64() / 8.0;
        let single = 8.03e9 * 2.0 / (3.35e12 * 0.87) + 0.7e-3;
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
}
