//! `--describe`: a preset's constants, the arithmetic they imply, and its calibration, as text.

use std::fmt::Write;

use super::step::{EngineSpec, SchedulingPolicy};

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
