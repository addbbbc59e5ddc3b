//! Hardware and model specifications, the roofline step-time model, and the named presets.
//!
//! Figures are the vendors' public ones (see `SIM-NOTES.md` in the project's shared notes): HBM
//! bandwidth, dense bf16 peak, NVLink bandwidth; parameter counts, layers, hidden size, KV heads.
//! Real kernels reach a fraction of peak, so every preset carries efficiency factors, printed by
//! `oai-sim --describe`.

use std::fmt::Write;

#[derive(Debug, Clone, PartialEq)]
pub struct Gpu {
    pub name: &'static str,
    /// HBM capacity, bytes.
    pub memory_bytes: f64,
    /// HBM bandwidth, bytes/s.
    pub bandwidth: f64,
    /// Dense bf16 peak, FLOP/s.
    pub peak_flops: f64,
    /// Link bandwidth per GPU for all-reduce, bytes/s.
    pub link_bandwidth: f64,
}

pub const A100: Gpu = Gpu {
    name: "A100 SXM 80 GB",
    memory_bytes: 80e9,
    bandwidth: 2.04e12,
    peak_flops: 312e12,
    link_bandwidth: 600e9,
};
pub const H100: Gpu = Gpu {
    name: "H100 SXM 80 GB",
    memory_bytes: 80e9,
    bandwidth: 3.35e12,
    peak_flops: 989e12,
    link_bandwidth: 900e9,
};
pub const H200: Gpu = Gpu {
    name: "H200 SXM 141 GB",
    memory_bytes: 141e9,
    bandwidth: 4.8e12,
    peak_flops: 989e12,
    link_bandwidth: 900e9,
};

#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub name: &'static str,
    pub parameters: f64,
    pub layers: u64,
    pub hidden: u64,
    pub kv_heads: u64,
    pub head_dim: u64,
    pub bytes_per_parameter: f64,
}

impl ModelSpec {
    pub fn weight_bytes(&self) -> f64 {
        self.parameters * self.bytes_per_parameter
    }
    /// K and V for every layer, bf16.
    pub fn kv_bytes_per_token(&self) -> f64 {
        (2 * self.layers * self.kv_heads * self.head_dim * 2) as f64
    }
}

pub const LLAMA_3_1_8B: ModelSpec = ModelSpec {
    name: "llama-3.1-8b",
    parameters: 8.03e9,
    layers: 32,
    hidden: 4096,
    kv_heads: 8,
    head_dim: 128,
    bytes_per_parameter: 2.0,
};
pub const LLAMA_3_1_70B: ModelSpec = ModelSpec {
    name: "llama-3.1-70b",
    parameters: 70.6e9,
    layers: 80,
    hidden: 8192,
    kv_heads: 8,
    head_dim: 128,
    bytes_per_parameter: 2.0,
};

/// An engine configuration: hardware, model, parallelism, efficiencies and scheduler limits.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSpec {
    pub gpu: Gpu,
    pub model: ModelSpec,
    pub tensor_parallel: u64,
    /// Fraction of HBM bandwidth streaming reads reach.
    pub bandwidth_efficiency: f64,
    /// Fraction of peak FLOP/s large GEMMs reach.
    pub compute_efficiency: f64,
    /// Fixed cost per step (scheduling, sampling, launches), seconds.
    pub step_overhead_s: f64,
    /// Latency of one all-reduce, seconds (TP > 1).
    pub allreduce_latency_s: f64,
    pub max_num_seqs: usize,
    /// Token budget per step (decode tokens first, then prefill chunks).
    pub max_num_batched_tokens: u64,
    /// KV cache capacity, tokens (over all GPUs).
    pub kv_capacity_tokens: u64,
}

/// Memory left for the KV cache: 90% of HBM (vLLM's default `gpu_memory_utilization`) minus weights.
fn kv_capacity(gpu: &Gpu, model: &ModelSpec, tp: u64) -> u64 {
    let free = (gpu.memory_bytes * 0.9 - model.weight_bytes() / tp as f64).max(0.0) * tp as f64;
    (free / model.kv_bytes_per_token()) as u64
}

/// One step's work: tokens processed, and the attention and KV-read load.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepLoad {
    /// New tokens in the step (one per decoding sequence plus prefill chunk tokens).
    pub tokens: u64,
    /// Σ context tokens whose KV is read (every scheduled sequence's context after the step).
    pub context_tokens: u64,
    /// Σ context × new tokens, for attention FLOPs.
    pub attention_pairs: f64,
}

/// The parts of a step's time, seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepTime {
    pub memory_s: f64,
    pub compute_s: f64,
    pub allreduce_s: f64,
    pub overhead_s: f64,
}

impl StepTime {
    pub fn total(&self) -> f64 {
        self.memory_s.max(self.compute_s) + self.overhead_s + self.allreduce_s
    }
    pub fn compute_bound(&self) -> bool {
        self.compute_s > self.memory_s
    }
}

impl EngineSpec {
    fn new(gpu: Gpu, model: ModelSpec, tp: u64, step_overhead_s: f64) -> Self {
        let kv_capacity_tokens = kv_capacity(&gpu, &model, tp);
        Self {
            gpu,
            model,
            tensor_parallel: tp,
            bandwidth_efficiency: 0.87,
            compute_efficiency: 0.8,
            step_overhead_s,
            allreduce_latency_s: 20e-6,
            max_num_seqs: 256,
            max_num_batched_tokens: 8192,
            kv_capacity_tokens,
        }
    }

    /// The roofline: max(memory, compute) + overhead + all-reduce.
    pub fn step_time(&self, load: StepLoad) -> StepTime {
        let tp = self.tensor_parallel as f64;
        let m = &self.model;
        let bytes =
            m.weight_bytes() / tp + load.context_tokens as f64 * m.kv_bytes_per_token() / tp;
        let memory_s = bytes / (self.gpu.bandwidth * self.bandwidth_efficiency);
        let flops = 2.0 * m.parameters * load.tokens as f64 / tp
            + 4.0 * m.layers as f64 * m.hidden as f64 * load.attention_pairs / tp;
        let compute_s = flops / (self.gpu.peak_flops * self.compute_efficiency);
        let allreduce_s = if self.tensor_parallel > 1 {
            let msg = load.tokens as f64 * m.hidden as f64 * 2.0;
            2.0 * m.layers as f64 * (self.allreduce_latency_s + msg / self.gpu.link_bandwidth)
        } else {
            0.0
        };
        StepTime {
            memory_s,
            compute_s,
            allreduce_s,
            overhead_s: self.step_overhead_s,
        }
    }

    /// A decode step of `batch` sequences at `context` tokens each.
    pub fn decode_load(batch: u64, context: u64) -> StepLoad {
        StepLoad {
            tokens: batch,
            context_tokens: batch * context,
            attention_pairs: (batch * context) as f64,
        }
    }

    /// The smallest batch at which a decode step at `context` becomes compute-bound (None if it
    /// never does within 1..=65536).
    pub fn compute_bound_batch(&self, context: u64) -> Option<u64> {
        (1..=65536u64).find(|&b| {
            self.step_time(Self::decode_load(b, context))
                .compute_bound()
        })
    }

    /// `--describe`: the arithmetic behind the preset.
    pub fn describe(&self) -> String {
        let m = &self.model;
        let tp = self.tensor_parallel;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "hardware:   {} × {} (tensor parallel {tp})",
            tp, self.gpu.name
        );
        let _ = writeln!(
            s,
            "            {:.2} TB/s HBM × {:.0}% efficiency, {:.0} TFLOP/s bf16 × {:.0}% efficiency, link {:.0} GB/s",
            self.gpu.bandwidth / 1e12,
            self.bandwidth_efficiency * 100.0,
            self.gpu.peak_flops / 1e12,
            self.compute_efficiency * 100.0,
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
        let _ = writeln!(
            s,
            "scheduler:  max_num_seqs {}, {} tokens per step (chunked prefill), KV capacity {} tokens",
            self.max_num_seqs, self.max_num_batched_tokens, self.kv_capacity_tokens
        );
        let _ = writeln!(
            s,
            "per step:   overhead {:.2} ms{}",
            self.step_overhead_s * 1e3,
            if tp > 1 {
                format!(
                    ", 2 all-reduces per layer at {:.0} µs latency each",
                    self.allreduce_latency_s * 1e6
                )
            } else {
                String::new()
            }
        );
        let _ = writeln!(s, "\ndecode steps (context 1,024 tokens per sequence):");
        let _ = writeln!(
            s,
            "  {:>6} {:>10} {:>10} {:>10} {:>10} {:>8} {:>12} {:>12}",
            "batch",
            "memory ms",
            "compute ms",
            "allred ms",
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
                "  {:>6} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>8} {:>12.1} {:>12.0}",
                b,
                t.memory_s * 1e3,
                t.compute_s * 1e3,
                t.allreduce_s * 1e3,
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
        for ctx in [0u64, 1024, 8192] {
            let _ = match self.compute_bound_batch(ctx) {
                Some(b) => writeln!(s, "compute takes over at batch {b} (context {ctx})"),
                None => writeln!(
                    s,
                    "at context {ctx}, KV reads grow as fast as compute: decode stays memory-bound"
                ),
            };
        }
        s
    }
}

/// How a simulated server times its answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// No delays at all: the client's own overhead becomes visible.
    Instant,
    /// Every request on its own fixed schedule: first token after `ttft_s`, then one every
    /// `itl_s`, however many requests run at once.
    Fixed { ttft_s: f64, itl_s: f64 },
    /// Continuous batching on a roofline step model.
    Engine(EngineSpec),
}

/// A named preset.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    pub name: &'static str,
    pub summary: &'static str,
    /// The model id the server offers.
    pub served_model: &'static str,
    pub behaviour: Behaviour,
    /// Mean output length when a request does not force `max_tokens`.
    pub mean_output_tokens: f64,
    pub embedding_dim: usize,
}

/// Every preset, in the order `--help` lists them.
pub fn presets() -> Vec<Preset> {
    // Per-step overhead calibrated so that batch 64 of ~6,200-token answers gives the original
    // README's ~159 tokens/s per request (see the README's calibration section).
    let mut a100x8 = EngineSpec::new(A100, LLAMA_3_1_8B, 8, 2.55e-3);
    a100x8.compute_efficiency = 0.5;
    let mut tiny = EngineSpec::new(H100, LLAMA_3_1_8B, 1, 0.5e-3);
    // A deliberately small engine for tests: steps of about 6 ms, 16 sequences, a small cache.
    tiny.max_num_seqs = 16;
    tiny.max_num_batched_tokens = 512;
    tiny.kv_capacity_tokens = 16_384;
    vec![
        Preset {
            name: "h100-llama-3.1-8b",
            summary: "1 × H100 SXM, Llama 3.1 8B bf16",
            served_model: "llama-3.1-8b",
            behaviour: Behaviour::Engine(EngineSpec::new(H100, LLAMA_3_1_8B, 1, 0.7e-3)),
            mean_output_tokens: 300.0,
            embedding_dim: 4096,
        },
        Preset {
            name: "h200-llama-3.1-8b",
            summary: "1 × H200 SXM, Llama 3.1 8B bf16",
            served_model: "llama-3.1-8b",
            behaviour: Behaviour::Engine(EngineSpec::new(H200, LLAMA_3_1_8B, 1, 0.7e-3)),
            mean_output_tokens: 300.0,
            embedding_dim: 4096,
        },
        Preset {
            name: "a100-llama-3.1-8b",
            summary: "1 × A100 SXM 80 GB, Llama 3.1 8B bf16",
            served_model: "llama-3.1-8b",
            behaviour: Behaviour::Engine(EngineSpec::new(A100, LLAMA_3_1_8B, 1, 0.7e-3)),
            mean_output_tokens: 300.0,
            embedding_dim: 4096,
        },
        Preset {
            name: "a100x8-llama-3.1-8b",
            summary: "8 × A100 SXM, TP 8, Llama 3.1 8B (the original README's distilled 8B setup)",
            served_model: "distill-llama-8b",
            behaviour: Behaviour::Engine(a100x8),
            mean_output_tokens: 6200.0,
            embedding_dim: 4096,
        },
        Preset {
            name: "h100x8-llama-3.1-70b",
            summary: "8 × H100 SXM, TP 8, Llama 3.1 70B bf16",
            served_model: "llama-3.1-70b",
            behaviour: Behaviour::Engine(EngineSpec::new(H100, LLAMA_3_1_70B, 8, 0.7e-3)),
            mean_output_tokens: 300.0,
            embedding_dim: 8192,
        },
        Preset {
            name: "tiny",
            summary:
                "a small fast engine for tests: 16 sequences, 512 tokens per step, 16k-token cache",
            served_model: "tiny",
            behaviour: Behaviour::Engine(tiny),
            mean_output_tokens: 40.0,
            embedding_dim: 64,
        },
        Preset {
            name: "fixed",
            summary:
                "every request on a fixed schedule: 50 ms to the first token, then 10 ms per token",
            served_model: "fixed",
            behaviour: Behaviour::Fixed {
                ttft_s: 0.050,
                itl_s: 0.010,
            },
            mean_output_tokens: 100.0,
            embedding_dim: 64,
        },
        Preset {
            name: "instant",
            summary: "no delays at all: measures the client's own overhead",
            served_model: "instant",
            behaviour: Behaviour::Instant,
            mean_output_tokens: 100.0,
            embedding_dim: 64,
        },
    ]
}

/// Looks a preset up by name.
pub fn preset(name: &str) -> Option<Preset> {
    presets().into_iter().find(|p| p.name == name)
}

/// `name` is a preset, or the list of names for an error message.
pub fn preset_names() -> String {
    presets()
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h100() -> EngineSpec {
        EngineSpec::new(H100, LLAMA_3_1_8B, 1, 0.0)
    }

    #[test]
    fn single_stream_is_weights_over_bandwidth() {
        let e = h100();
        let t = e.step_time(EngineSpec::decode_load(1, 0));
        let expected = 8.03e9 * 2.0 / (3.35e12 * 0.87);
        assert!(
            (t.memory_s - expected).abs() < 1e-9,
            "{} vs {expected}",
            t.memory_s
        );
        assert!(!t.compute_bound());
        assert_eq!(t.allreduce_s, 0.0);
        // SIM-NOTES: 16.06 GB / 3.35 TB/s ≈ 4.8 ms at peak bandwidth.
        assert!((t.memory_s * 0.87 - 4.79e-3).abs() < 0.05e-3);
    }

    #[test]
    fn compute_takes_over_where_the_arithmetic_says() {
        let e = h100();
        // Without context, compute exceeds weight reads when 2·P·B/(peak·ce) > W/(bw·be):
        // B > W·peak·ce / (bw·be·2P) = 2·989e12·0.8 / (3.35e12·0.87·2) ≈ 271.5
        let b = e.compute_bound_batch(0).unwrap();
        let exact: f64 = 2.0 * 989e12 * 0.8 / (3.35e12 * 0.87 * 2.0);
        assert_eq!(b, exact.floor() as u64 + 1);
        assert!(e.step_time(EngineSpec::decode_load(b, 0)).compute_bound());
        assert!(!e
            .step_time(EngineSpec::decode_load(b - 1, 0))
            .compute_bound());
    }

    #[test]
    fn tensor_parallel_adds_allreduce() {
        let e = EngineSpec::new(A100, LLAMA_3_1_8B, 8, 0.0);
        let t = e.step_time(EngineSpec::decode_load(1, 0));
        let expected = 2.0 * 32.0 * (20e-6 + 4096.0 * 2.0 / 600e9);
        assert!((t.allreduce_s - expected).abs() < 1e-12);
    }

    #[test]
    fn kv_capacity_is_free_memory_over_kv_per_token() {
        let e = h100();
        let free = 80e9 * 0.9 - 16.06e9;
        assert_eq!(e.kv_capacity_tokens, (free / 131072.0) as u64);
        assert!(preset("tiny").is_some() && preset("nope").is_none());
    }
}
