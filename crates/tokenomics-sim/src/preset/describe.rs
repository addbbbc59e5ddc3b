//! `--describe`: a preset's price, constants, the arithmetic they imply, its calibration and a
//! what-if for one workload, as text; and `--list`.

use std::fmt::Write;

use super::price::PresetCost;
use super::step::{EngineSpec, SchedulingPolicy};
use super::Behaviour;

impl SchedulingPolicy {
    fn describe(self, budget: u64) -> String {
        match self {
            Self::ChunkedPrefill => format!(
                "chunked prefill (vLLM V1): decoders first, then prompt chunks, {budget} tokens per step"
            ),
            Self::PrefillFirst => format!(
                "prefill-first (vLLM V0): a step that admits waiting requests prefills their whole prompts (up to {budget} tokens) and the decoders wait for it"
            ),
        }
    }
}

impl EngineSpec {
    /// `--describe`: every constant, the arithmetic behind the preset, and its calibration
    /// (each public row that names this preset, replayed now in virtual time), as lines of
    /// text. Times print in milliseconds of model time (the all-reduce latency in µs).
    pub fn describe(&self) -> String {
        let m = &self.model;
        let tp = self.tensor_parallel;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "hardware:   {} × {} (tensor parallel {tp}): {:.2} TB/s HBM, {:.0} TFLOP/s bf16, link {:.0} GB/s",
            tp,
            self.gpu.name,
            self.gpu.bandwidth / 1e12,
            self.gpu.peak_flops / 1e12,
            self.gpu.link_bandwidth / 1e9
        );
        let _ = writeln!(
            s,
            "model:      {} — {:.2} B parameters, {} layers, hidden {}, {} KV heads × {}",
            m.name,
            m.parameters / 1e9,
            m.layers,
            m.hidden,
            m.kv_heads,
            m.head_dim
        );
        let _ = writeln!(
            s,
            "bytes:      weights {:.2} GB ({:.2} GB per GPU); KV cache {:.0} KiB per token",
            m.weight_bytes() / 1e9,
            m.weight_bytes() / 1e9 / tp as f64,
            m.kv_bytes_per_token() / 1024.0
        );
        let _ = writeln!(s, "constants:");
        let _ = writeln!(
            s,
            "  bandwidth_efficiency {:>7.0}%   weight and KV reads reach this share of HBM bandwidth (decode)",
            self.bandwidth_efficiency * 100.0
        );
        let _ = writeln!(
            s,
            "  compute_efficiency   {:>7.0}%   large GEMMs and attention reach this share of peak (prefill)",
            self.compute_efficiency * 100.0
        );
        if self.compute_half_tokens > 0.0 {
            let _ = writeln!(
                s,
                "  compute_half_tokens  {:>8.0}   GEMMs of T tokens run at compute_efficiency × T/(T + {:.0}): {:.0}% at 8 tokens, {:.0}% at 256, {:.0}% at 4,096",
                self.compute_half_tokens,
                self.compute_half_tokens,
                self.gemm_efficiency(8) * 100.0,
                self.gemm_efficiency(256) * 100.0,
                self.gemm_efficiency(4096) * 100.0
            );
        } else {
            let _ = writeln!(
                s,
                "  compute_half_tokens  {:>8.0}   (GEMM efficiency does not depend on the tokens per step)",
                0.0
            );
        }
        let _ = writeln!(
            s,
            "  step_overhead        {:>5.2} ms   CPU time per step the GPU waits for (scheduling, input preparation, launches)",
            self.step_overhead_s * 1e3
        );
        let _ = writeln!(
            s,
            "  seq_overhead         {:>5.3} ms   more CPU time per sequence in the step (sampling, detokenizing, output{})",
            self.seq_overhead_s * 1e3,
            if tp > 1 {
                "; with tensor parallelism, coordinating the workers"
            } else {
                ""
            }
        );
        if tp > 1 {
            let _ = writeln!(
                s,
                "  allreduce_latency    {:>5.0} µs   per all-reduce; 2 per layer, plus step tokens × hidden × 2 B over the link",
                self.allreduce_latency_s * 1e6
            );
        }
        let _ = writeln!(
            s,
            "scheduler:  {}; max_num_seqs {}, KV capacity {} tokens",
            self.scheduling.describe(self.max_num_batched_tokens),
            self.max_num_seqs,
            self.kv_capacity_tokens
        );
        let _ = writeln!(s, "\ndecode steps (context 1,024 tokens per sequence):");
        let _ = writeln!(
            s,
            "  {:>6} {:>10} {:>10} {:>10} {:>11} {:>10} {:>8} {:>12} {:>12}",
            "batch",
            "memory ms",
            "compute ms",
            "allred ms",
            "overhead ms",
            "step ms",
            "bound",
            "tok/s/seq",
            "tok/s total"
        );
        for b in [1u64, 8, 32, 64, 128, 256] {
            let t = self.step_time(Self::decode_load(b, 1024));
            let total = t.total();
            let _ = writeln!(
                s,
                "  {:>6} {:>10.2} {:>10.2} {:>10.2} {:>11.2} {:>10.2} {:>8} {:>12.1} {:>12.0}",
                b,
                t.memory_s * 1e3,
                t.compute_s * 1e3,
                t.allreduce_s * 1e3,
                t.overhead_s * 1e3,
                total * 1e3,
                if t.compute_bound() {
                    "compute"
                } else {
                    "memory"
                },
                1.0 / total,
                b as f64 / total
            );
        }
        let single = self.step_time(Self::decode_load(1, 0)).total();
        let _ = writeln!(
            s,
            "\nsingle stream (short context): {:.2} ms per token → {:.0} tokens/s predicted",
            single * 1e3,
            1.0 / single
        );
        let prefill = self.step_time(Self::prefill_load(1, 1024)).total();
        let _ = writeln!(
            s,
            "a 1,024-token prompt alone: {:.1} ms to prefill",
            prefill * 1e3
        );
        for ctx in [0u64, 1024, 8192] {
            let _ = match self.compute_bound_batch(ctx) {
                Some(b) => writeln!(s, "compute takes over at batch {b} (context {ctx})"),
                None => writeln!(
                    s,
                    "at context {ctx}, KV reads grow as fast as compute: decode stays memory-bound"
                ),
            };
        }
        s.push_str(&crate::calibration::describe_fit(self));
        s
    }
}

/// `--list`: one line per preset: its name, the price of its GPUs, its summary.
pub fn list() -> String {
    let mut s = String::new();
    for p in super::presets() {
        let price = p.cost_basis().map_or_else(String::new, |c| {
            format!("${:.2}/GPU-h × {}", c.usd_per_gpu_hour, c.gpus)
        });
        let _ = writeln!(s, "{:<22} {:<16} {}", p.name, price, p.summary);
    }
    let sources: Vec<&str> = {
        let mut v: Vec<&str> = super::presets()
            .iter()
            .filter_map(|p| Some(p.list_price?.source))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    if !sources.is_empty() {
        let _ = writeln!(s, "\nprices (on demand, per GPU-hour):");
        for src in sources {
            let _ = writeln!(s, "  {src}");
        }
    }
    s
}

impl crate::SimConfig {
    /// `--describe`: the preset, its price, how it times answers (an engine's constants,
    /// arithmetic and calibration), and what it would give requests of `input_tokens` prompt
    /// and `output_tokens` output tokens: alone and at saturation ([`crate::SimConfig::predict`]),
    /// with the cost per million output tokens at saturation when the preset has a price.
    pub fn describe(&self, input_tokens: u64, output_tokens: u64) -> String {
        let p = &self.preset;
        let mut s = String::new();
        let _ = writeln!(s, "{} — {}", p.name, p.summary);
        let _ = writeln!(
            s,
            "served model: {}",
            self.served_model.as_deref().unwrap_or(p.served_model)
        );
        let cost = p.cost_basis();
        match &cost {
            Some(c) => {
                let _ = writeln!(
                    s,
                    "price:      ${:.2} per GPU-hour × {} GPU{} = ${:.2} per hour ({})",
                    c.usd_per_gpu_hour,
                    c.gpus,
                    if c.gpus == 1 { "" } else { "s" },
                    c.usd_per_hour(),
                    c.source
                );
            }
            None => {
                let _ = writeln!(s, "price:      none (no hardware)");
            }
        }
        let behaviour = self.behaviour();
        match &behaviour {
            Behaviour::Engine(e) => s.push_str(&e.describe()),
            Behaviour::Fixed { ttft_s, itl_s } => {
                let _ = match self.max_running {
                    None => writeln!(
                        s,
                        "fixed schedule: first token {:.1} ms after arrival, then one every {:.1} ms, for every request however many run at once",
                        ttft_s * 1e3,
                        itl_s * 1e3
                    ),
                    Some(n) => writeln!(
                        s,
                        "fixed schedule with {n} slot{}: at most {n} request{} served at once, the others waiting first come, first served; a request's first token comes {:.1} ms after it gets its slot, then one every {:.1} ms, and its slot is free once its last token is sent",
                        if n == 1 { "" } else { "s" },
                        if n == 1 { "" } else { "s" },
                        ttft_s * 1e3,
                        itl_s * 1e3
                    ),
                };
            }
            Behaviour::Instant => {
                s.push_str("no delays: every token is written as fast as the connection takes it\n")
            }
        }
        let _ = writeln!(
            s,
            "output length: max_tokens when ignore_eos/min_tokens force it, else a seeded Gamma draw with mean {} (capped at max_tokens)",
            self.mean_output_tokens.unwrap_or(p.mean_output_tokens)
        );
        s.push_str(&self.describe_prediction(&behaviour, input_tokens, output_tokens, cost));
        s
    }

    fn describe_prediction(
        &self,
        behaviour: &Behaviour,
        input: u64,
        output: u64,
        cost: Option<PresetCost>,
    ) -> String {
        let mut s = String::new();
        let scale = if self.time_scale == 1.0 {
            String::new()
        } else {
            format!(", in real time at time scale {}", self.time_scale)
        };
        let _ = writeln!(
            s,
            "\nwhat if every request has {input} prompt and {output} output tokens{scale}:"
        );
        let p = match self.predict(input, output) {
            Ok(p) => p,
            Err(e) => {
                let _ = writeln!(s, "  cannot predict: {e}");
                return s;
            }
        };
        let ms = |x: f64| x * 1e3;
        let per_s = if p.tpot_s > 0.0 {
            format!(" ({:.0} tokens/s)", 1.0 / p.tpot_s)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  alone:         TTFT {:.2} ms, TPOT {:.2} ms{per_s}",
            ms(p.ttft_s),
            ms(p.tpot_s)
        );
        let Some(sat) = p.saturation else {
            let _ = writeln!(
                s,
                "  saturation:    none: {}",
                match behaviour {
                    Behaviour::Fixed { .. } =>
                        "every request runs on its own schedule however many run at once (with --slots N the capacity is N / (ttft + (output − 1) × itl))",
                    _ => "nothing limits how many run at once",
                }
            );
            return s;
        };
        let why = match behaviour {
            Behaviour::Engine(e) => format!(
                "min(max_num_seqs {}, KV capacity {} / {} tokens = {})",
                e.max_num_seqs,
                e.kv_capacity_tokens,
                input.max(1) + output,
                e.kv_capacity_tokens / (input.max(1) + output)
            ),
            _ => "the slots".to_string(),
        };
        let _ = writeln!(s, "  saturation:    {} requests at once: {why}", sat.batch);
        let _ = writeln!(
            s,
            "                 decode step {:.2} ms; a closed loop of {} clients sees TTFT {:.1} ms, TPOT {:.2} ms",
            ms(sat.step_s),
            sat.batch,
            ms(sat.ttft_s),
            ms(sat.tpot_s)
        );
        let _ = writeln!(
            s,
            "                 {:.0} output tokens/s, {:.3} requests/s: the saturation rate",
            sat.output_tokens_per_s, sat.requests_per_s
        );
        if let Some(c) = cost {
            if let Some(usd) = c.usd_per_million_output_tokens(sat.output_tokens_per_s) {
                let _ = writeln!(
                    s,
                    "                 ${usd:.3} per million output tokens at saturation (${:.2} per hour)",
                    c.usd_per_hour()
                );
            }
        }
        if let Behaviour::Engine(e) = behaviour {
            let _ = writeln!(
                s,
                "                 ({})",
                match e.scheduling {
                    SchedulingPolicy::PrefillFirst =>
                        "prefill-first: a closed loop moves in waves and meets this rate; an open loop, its prompts prefilled in smaller groups, sustains somewhat less",
                    SchedulingPolicy::ChunkedPrefill =>
                        "chunked prefill: an estimate of the steady state, within a few per cent of a closed loop's replay",
                }
            );
        }
        s
    }
}
