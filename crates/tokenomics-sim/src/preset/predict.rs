//! What-if arithmetic: what a preset gives requests of fixed lengths, alone and at saturation,
//! from the step model ([`EngineSpec::step_time`]) and the scheduler's rules, without running
//! anything.
//!
//! Alone, a request is prefilled (in chunks of the step budget under chunked prefill, in one
//! step under prefill-first) and then decodes one token per step: TTFT and TPOT are sums of
//! step times, exactly what the engine does.
//!
//! At saturation the engine runs as many sequences as it may: `max_num_seqs`, or fewer when the
//! KV cache cannot reserve every sequence's prompt and output at once. The prediction is the
//! steady state of a closed loop of that many clients with these lengths:
//!
//! - prefill-first (vLLM V0): the clients move in waves. A wave's prompts are prefilled in steps
//!   of as many whole prompts as the token budget holds (the decoders wait), then all decode
//!   together, one step per token, and end together. One wave, `batch` requests, takes the sum
//!   of those steps: exactly what the scheduler does, so a virtual-time replay of that closed
//!   loop agrees to rounding.
//! - chunked prefill (vLLM V1): the sequences drift apart and a newcomer's prompt rides in the
//!   decoders' steps, `max_num_batched_tokens − batch` tokens per step. Per `batch` requests
//!   the engine runs `⌈batch × input / chunk⌉` steps that carry a prompt chunk beside the
//!   decoders and enough plain decode steps to make up every slot's life (its prefill steps plus
//!   `output − 1` decode steps). An estimate: the replay of the same closed loop agrees within a
//!   few per cent (see the tests).
//!
//! An open loop at the saturation rate queues without bound; it also runs a little below it under
//! prefill-first, where arrivals spread out are prefilled in smaller groups (each prefill step
//! costs its fixed overhead and weight reads for fewer prompts).

use super::step::{EngineSpec, SchedulingPolicy, StepLoad};
use super::Behaviour;
use crate::Error;

/// What a server gives requests of `input_tokens` prompt and `output_tokens` output tokens each.
/// Times in seconds and rates per second, of model time from [`EngineSpec::predict`] and
/// [`Behaviour::predict`], of real time from [`crate::SimConfig::predict`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Prompt tokens per request.
    pub input_tokens: u64,
    /// Output tokens per request.
    pub output_tokens: u64,
    /// Arrival to first token of a request alone on an idle server, seconds.
    pub ttft_s: f64,
    /// Mean time between its consecutive tokens, seconds (with a single output token: the time a
    /// second one would take).
    pub tpot_s: f64,
    /// The server at its capacity; None when it has none (a fixed schedule without slots, or
    /// `instant`).
    pub saturation: Option<Saturation>,
}

/// A server at its capacity: the most requests it serves at once, and what they get.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Saturation {
    /// Requests served at once: an engine's largest batch, `min(max_num_seqs, ⌊KV capacity /
    /// (input + output)⌋)`; a fixed schedule's slots.
    pub batch: u64,
    /// One decode step at that batch, seconds: the mean over the output's contexts (a fixed
    /// schedule: its time between tokens).
    pub step_s: f64,
    /// Time to first token in a closed loop of `batch` clients, seconds (an open loop at the
    /// saturation rate queues without bound).
    pub ttft_s: f64,
    /// Mean time between a request's consecutive tokens, seconds, counting the steps that stall
    /// its decoding (prefill-first: the prefill steps of its wave after its own).
    pub tpot_s: f64,
    /// Output tokens per second, all requests together.
    pub output_tokens_per_s: f64,
    /// Requests completed per second: the saturation rate.
    pub requests_per_s: f64,
}

impl Prediction {
    /// The same prediction on a server running `time_scale` model seconds per real second:
    /// times divided by it, rates multiplied.
    pub fn scaled(mut self, time_scale: f64) -> Self {
        self.ttft_s /= time_scale;
        self.tpot_s /= time_scale;
        if let Some(s) = &mut self.saturation {
            s.step_s /= time_scale;
            s.ttft_s /= time_scale;
            s.tpot_s /= time_scale;
            s.output_tokens_per_s *= time_scale;
            s.requests_per_s *= time_scale;
        }
        self
    }
}

impl Behaviour {
    /// What this behaviour gives requests of `input_tokens` prompt and `output_tokens` output
    /// tokens (model time). `slots` is the fixed schedule's capacity (see
    /// [`crate::SimConfig::max_running`]); an engine's is its `max_num_seqs`. Fails for requests
    /// without output and for requests that cannot fit the engine's KV cache.
    pub fn predict(
        &self,
        input_tokens: u64,
        output_tokens: u64,
        slots: Option<u64>,
    ) -> Result<Prediction, Error> {
        if output_tokens == 0 {
            return Err(Error::Invalid(
                "a prediction needs at least one output token".into(),
            ));
        }
        match self {
            Behaviour::Engine(e) => e.predict(input_tokens, output_tokens),
            Behaviour::Instant => Ok(Prediction {
                input_tokens,
                output_tokens,
                ttft_s: 0.0,
                tpot_s: 0.0,
                saturation: None,
            }),
            Behaviour::Fixed { ttft_s, itl_s } => {
                // A slot serves one request for S = ttft + (L − 1)·itl.
                let service_s = ttft_s + (output_tokens - 1) as f64 * itl_s;
                let saturation = slots.filter(|_| service_s > 0.0).map(|n| Saturation {
                    batch: n,
                    step_s: *itl_s,
                    ttft_s: *ttft_s,
                    tpot_s: *itl_s,
                    output_tokens_per_s: (n * output_tokens) as f64 / service_s,
                    requests_per_s: n as f64 / service_s,
                });
                Ok(Prediction {
                    input_tokens,
                    output_tokens,
                    ttft_s: *ttft_s,
                    tpot_s: *itl_s,
                    saturation,
                })
            }
        }
    }
}

impl EngineSpec {
    /// What this engine gives requests of `input_tokens` prompt (0 counts as 1, as the engine
    /// counts it) and `output_tokens` output tokens, in seconds of model time: alone, and at
    /// saturation (the model is described in this module's documentation). Fails for requests
    /// without output and for requests that cannot fit the KV cache.
    pub fn predict(&self, input_tokens: u64, output_tokens: u64) -> Result<Prediction, Error> {
        if output_tokens == 0 {
            return Err(Error::Invalid(
                "a prediction needs at least one output token".into(),
            ));
        }
        crate::engine::fits(self, input_tokens, output_tokens)?;
        let input = input_tokens.max(1);
        let output = output_tokens;
        let (ttft_s, tpot_s) = self.alone(input, output);
        let per_seq = input.saturating_add(output);
        let batch = (self.max_num_seqs as u64).min(self.kv_capacity_tokens / per_seq);
        let saturation = (batch > 0).then(|| match self.scheduling {
            SchedulingPolicy::PrefillFirst => self.waves(batch, input, output),
            SchedulingPolicy::ChunkedPrefill => self.drifting(batch, input, output),
        });
        Ok(Prediction {
            input_tokens,
            output_tokens,
            ttft_s,
            tpot_s,
            saturation,
        })
    }

    fn step(&self, load: StepLoad) -> f64 {
        self.step_time(load).total()
    }

    /// The steps of a prompt prefilled alone: one under prefill-first, chunks of the step budget
    /// under chunked prefill.
    fn prefill_alone(&self, input: u64) -> f64 {
        match self.scheduling {
            SchedulingPolicy::PrefillFirst => self.step(Self::prefill_load(1, input)),
            SchedulingPolicy::ChunkedPrefill => {
                let budget = self.max_num_batched_tokens.max(1);
                let (mut done, mut total) = (0u64, 0.0);
                while done < input {
                    let chunk = (input - done).min(budget);
                    total += self.step(Self::chunk_load(done, chunk));
                    done += chunk;
                }
                total
            }
        }
    }

    /// A prefill chunk of `chunk` tokens after `prefilled` ones, alone in its step (causal
    /// attention: the chunk sees the earlier context and half of itself).
    fn chunk_load(prefilled: u64, chunk: u64) -> StepLoad {
        StepLoad {
            tokens: chunk,
            context_tokens: prefilled + chunk,
            attention_pairs: chunk as f64 * (prefilled as f64 + chunk as f64 / 2.0),
            sequences: 1,
        }
    }

    /// The decode steps of `batch` sequences from their second token to their last: the
    /// scheduler reads a context of input + k + 1 tokens for the k-th of them.
    fn decode_steps(&self, batch: u64, input: u64, output: u64) -> f64 {
        (1..output)
            .map(|k| self.step(Self::decode_load(batch, input + k + 1)))
            .sum()
    }

    /// The mean decode step over the output (with one output token, the step a second would
    /// take).
    fn mean_decode_step(&self, batch: u64, input: u64, output: u64) -> f64 {
        if output > 1 {
            self.decode_steps(batch, input, output) / (output - 1) as f64
        } else {
            self.step(Self::decode_load(batch, input + 2))
        }
    }

    /// TTFT and TPOT of a request alone.
    fn alone(&self, input: u64, output: u64) -> (f64, f64) {
        (
            self.prefill_alone(input),
            self.mean_decode_step(1, input, output),
        )
    }

    /// Prefill-first at saturation: waves of `batch` requests, prefilled in groups of as many
    /// whole prompts as the step budget holds, then decoded together.
    fn waves(&self, batch: u64, input: u64, output: u64) -> Saturation {
        // The first prompt always runs (alone when it exceeds the budget).
        let per_step = (self.max_num_batched_tokens / input).max(1);
        // (prompts in the step, its duration), in order.
        let mut groups = Vec::new();
        let mut left = batch;
        while left > 0 {
            let k = per_step.min(left);
            groups.push((k, self.step(Self::prefill_load(k, input))));
            left -= k;
        }
        let prefill: f64 = groups.iter().map(|g| g.1).sum();
        let decode = self.decode_steps(batch, input, output);
        let wave = prefill + decode;
        // A request's first token ends its group's step; it then waits for the later groups.
        let (mut elapsed, mut ttft_sum, mut stall_sum) = (0.0, 0.0, 0.0);
        for &(k, t) in &groups {
            elapsed += t;
            ttft_sum += k as f64 * elapsed;
            stall_sum += k as f64 * (prefill - elapsed);
        }
        let n = batch as f64;
        // The decode steps are summed once (`decode`); their mean is that sum over the steps.
        let step_s = if output > 1 {
            decode / (output - 1) as f64
        } else {
            self.mean_decode_step(batch, input, output)
        };
        let tpot_s = if output > 1 {
            (stall_sum / n + decode) / (output - 1) as f64
        } else {
            step_s
        };
        Saturation {
            batch,
            step_s,
            // Requests without decode steps end with their prefill and come back behind the rest
            // of the wave: each waits for all of its prefill steps.
            ttft_s: if output > 1 { ttft_sum / n } else { prefill },
            tpot_s,
            output_tokens_per_s: n * output as f64 / wave,
            requests_per_s: n / wave,
        }
    }

    /// Chunked prefill at saturation: every slot busy, newcomers' prompts riding in the
    /// decoders' steps (an estimate; see the module's documentation).
    fn drifting(&self, batch: u64, input: u64, output: u64) -> Saturation {
        let budget = self.max_num_batched_tokens.max(2);
        let mid = input + output / 2;
        // The steps of one generation of the slots: those that carry a prompt chunk beside the
        // decoders, and enough in all to make up every slot's life. First with every slot
        // decoding, then with the mean number of decoders that gives.
        let generation = |decoders: u64| {
            let chunk = budget - decoders.min(budget - 1);
            let chunk_steps = (batch * input).div_ceil(chunk);
            let life = input.div_ceil(chunk) + output - 1;
            (chunk, chunk_steps, life.max(chunk_steps))
        };
        let (_, _, steps) = generation(batch);
        let decoders = ((batch * (output - 1)) as f64 / steps as f64).round() as u64;
        let (chunk, chunk_steps, steps) = generation(decoders);
        let with_chunk = StepLoad {
            tokens: decoders + chunk,
            context_tokens: decoders * mid + input,
            attention_pairs: (decoders * mid) as f64 + chunk as f64 * (input as f64 / 2.0),
            sequences: decoders + 1,
        };
        let t_chunk = self.step(with_chunk);
        let t_decode = self.step(Self::decode_load(decoders.max(1), mid));
        let cycle = chunk_steps as f64 * t_chunk + (steps - chunk_steps) as f64 * t_decode;
        let n = batch as f64;
        Saturation {
            batch,
            step_s: self.mean_decode_step(batch, input, output),
            // A newcomer's prompt takes its chunks in successive steps beside the decoders;
            // requests without decode steps come back behind all the others' prompts.
            ttft_s: if output > 1 {
                input.div_ceil(chunk) as f64 * t_chunk
            } else {
                cycle
            },
            tpot_s: cycle / steps as f64,
            output_tokens_per_s: n * output as f64 / cycle,
            requests_per_s: n / cycle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{engine, preset};
    use super::*;

    #[test]
    fn alone_is_the_sum_of_the_steps() {
        let e = engine("h100-llama-3.1-8b").unwrap();
        let p = e.predict(1000, 200).unwrap();
        let prefill = e.step_time(EngineSpec::prefill_load(1, 1000)).total();
        assert_eq!(p.ttft_s, prefill);
        let decode: f64 = (1..200u64)
            .map(|k| {
                e.step_time(EngineSpec::decode_load(1, 1000 + k + 1))
                    .total()
            })
            .sum();
        assert!((p.tpot_s - decode / 199.0).abs() < 1e-15);
        // Chunked prefill splits a prompt longer than the budget (tiny: 512 tokens per step).
        let t = engine("tiny").unwrap();
        let p = t.predict(1000, 10).unwrap();
        let two = t.step_time(EngineSpec::chunk_load(0, 512)).total()
            + t.step_time(EngineSpec::chunk_load(512, 488)).total();
        assert!((p.ttft_s - two).abs() < 1e-15);
    }

    #[test]
    fn the_batch_is_capped_by_the_slots_and_the_cache() {
        let e = engine("h100-llama-3.1-8b").unwrap();
        // 426,788 tokens of cache hold 355 sequences of 1,200; 256 slots are fewer.
        assert_eq!(e.predict(1000, 200).unwrap().saturation.unwrap().batch, 256);
        // Sequences of 8,000 tokens: 53 fit.
        let b = e.predict(7000, 1000).unwrap().saturation.unwrap().batch;
        assert_eq!(b, e.kv_capacity_tokens / 8000);
        assert_eq!(b, 53);
        assert!(
            e.predict(400_000, 30_000).is_err(),
            "does not fit the cache"
        );
        assert!(e.predict(100, 0).is_err());
    }

    #[test]
    fn a_fixed_schedule_serves_its_slots_over_the_service_time() {
        let fixed = preset("fixed").unwrap().behaviour;
        assert!(fixed.predict(10, 5, None).unwrap().saturation.is_none());
        // 50 ms + 4 × 10 ms = 90 ms per request, two at once.
        let p = fixed.predict(10, 5, Some(2)).unwrap();
        let s = p.saturation.unwrap();
        assert!((s.requests_per_s - 2.0 / 0.09).abs() < 1e-9);
        assert!((s.output_tokens_per_s - 10.0 / 0.09).abs() < 1e-9);
        assert_eq!((p.ttft_s, p.tpot_s, s.batch), (0.05, 0.01, 2));
        let scaled = p.scaled(10.0);
        assert!((scaled.saturation.unwrap().requests_per_s - 200.0 / 0.9).abs() < 1e-9);
        assert!((scaled.ttft_s - 0.005).abs() < 1e-12);
        let instant = preset("instant").unwrap().behaviour;
        assert!(instant
            .predict(10, 5, Some(2))
            .unwrap()
            .saturation
            .is_none());
    }
}
