//! Hardware and model specifications, the step-time model, and the named presets.
//!
//! Figures are the vendors' public ones (see `SIM-NOTES.md` in the project's shared notes): HBM
//! bandwidth, dense bf16 peak, NVLink bandwidth; parameter counts, layers, hidden size, KV heads.
//! Real engines reach a fraction of those peaks and spend CPU time between GPU kernels, so every
//! engine preset carries efficiencies, a per-step overhead and a scheduling policy, fitted to
//! public measurements (the rows in `calibration/rows.json`, replayed by
//! [`crate::calibration`]) and printed with their fit by `oai-sim --describe`.

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

/// How the scheduler mixes prefill with decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedulingPolicy {
    /// vLLM V1's default: every decoding sequence gets its token first, then prefill chunks fill
    /// the rest of the step's token budget. A long prompt is split over steps and slows the
    /// decoders beside it a little each step, never stalls them.
    ChunkedPrefill,
    /// vLLM V0's default (chunked prefill off): when a waiting request can be admitted, the step
    /// prefills whole prompts (first come, first served, within the token budget and the free
    /// sequence slots) and nothing else; every decoding sequence waits for that step.
    PrefillFirst,
}

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

/// An engine configuration: hardware, model, parallelism, efficiencies, overheads and scheduler.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSpec {
    /// The preset this configuration belongs to: `describe` replays the calibration rows that
    /// name it.
    pub name: &'static str,
    pub gpu: Gpu,
    pub model: ModelSpec,
    pub tensor_parallel: u64,
    /// Fraction of HBM bandwidth that weight and KV reads reach (decode is bandwidth-bound).
    pub bandwidth_efficiency: f64,
    /// Fraction of peak FLOP/s that large GEMMs (and attention) reach: prefill is compute-bound.
    pub compute_efficiency: f64,
    /// Tokens per step at which GEMMs reach half of `compute_efficiency`: a step of T tokens runs
    /// its GEMMs at `compute_efficiency × T / (T + compute_half_tokens)`, so small decode batches
    /// use the tensor cores poorly. 0: the same efficiency at every size.
    pub compute_half_tokens: f64,
    /// Fixed CPU cost per step (scheduling, input preparation, kernel launches), seconds.
    pub step_overhead_s: f64,
    /// CPU cost per sequence scheduled in a step (sampling, detokenizing, output handling),
    /// seconds.
    pub seq_overhead_s: f64,
    /// Latency of one all-reduce, seconds (TP > 1).
    pub allreduce_latency_s: f64,
    pub scheduling: SchedulingPolicy,
    pub max_num_seqs: usize,
    /// Token budget per step: decode tokens plus prefill chunks (chunked prefill) or the prompts
    /// of one prefill step (prefill-first; a single longer prompt still runs, alone).
    pub max_num_batched_tokens: u64,
    /// KV cache capacity, tokens (over all GPUs).
    pub kv_capacity_tokens: u64,
}

/// Memory left for the KV cache: 90% of HBM (vLLM's default `gpu_memory_utilization`) minus weights.
fn kv_capacity(gpu: &Gpu, model: &ModelSpec, tp: u64) -> u64 {
    let free = (gpu.memory_bytes * 0.9 - model.weight_bytes() / tp as f64).max(0.0) * tp as f64;
    (free / model.kv_bytes_per_token()) as u64
}

/// One step's work: tokens processed, the attention and KV-read load, the sequences served.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepLoad {
    /// New tokens in the step (one per decoding sequence plus prefill tokens).
    pub tokens: u64,
    /// Σ context tokens whose KV is read (every scheduled sequence's context after the step).
    pub context_tokens: u64,
    /// Σ context × new tokens, for attention FLOPs.
    pub attention_pairs: f64,
    /// Sequences scheduled in the step (decoding or prefilling).
    pub sequences: u64,
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
    /// The roofline constants at their physical defaults (87% of bandwidth, 80% of peak, no
    /// overhead), chunked prefill; presets set what their calibration says.
    fn new(name: &'static str, gpu: Gpu, model: ModelSpec, tp: u64) -> Self {
        let kv_capacity_tokens = kv_capacity(&gpu, &model, tp);
        Self {
            name,
            gpu,
            model,
            tensor_parallel: tp,
            bandwidth_efficiency: 0.87,
            compute_efficiency: 0.8,
            compute_half_tokens: 0.0,
            step_overhead_s: 0.0,
            seq_overhead_s: 0.0,
            allreduce_latency_s: 20e-6,
            scheduling: SchedulingPolicy::ChunkedPrefill,
            max_num_seqs: 256,
            max_num_batched_tokens: 8192,
            kv_capacity_tokens,
        }
    }

    /// The efficiency of a step's GEMMs at `tokens` tokens.
    pub fn gemm_efficiency(&self, tokens: u64) -> f64 {
        if self.compute_half_tokens <= 0.0 {
            return self.compute_efficiency;
        }
        let t = tokens.max(1) as f64;
        self.compute_efficiency * t / (t + self.compute_half_tokens)
    }

    /// The step model: max(memory, compute) + overhead + all-reduce, in seconds of model time.
    pub fn step_time(&self, load: StepLoad) -> StepTime {
        let tp = self.tensor_parallel as f64;
        let m = &self.model;
        let bytes =
            m.weight_bytes() / tp + load.context_tokens as f64 * m.kv_bytes_per_token() / tp;
        let memory_s = bytes / (self.gpu.bandwidth * self.bandwidth_efficiency);
        let gemm_flops = 2.0 * m.parameters * load.tokens as f64 / tp;
        let attention_flops = 4.0 * m.layers as f64 * m.hidden as f64 * load.attention_pairs / tp;
        let compute_s = gemm_flops / (self.gpu.peak_flops * self.gemm_efficiency(load.tokens))
            + attention_flops / (self.gpu.peak_flops * self.compute_efficiency);
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
            overhead_s: self.step_overhead_s + self.seq_overhead_s * load.sequences as f64,
        }
    }

    /// A decode step of `batch` sequences at `context` tokens each.
    pub fn decode_load(batch: u64, context: u64) -> StepLoad {
        StepLoad {
            tokens: batch,
            context_tokens: batch * context,
            attention_pairs: (batch * context) as f64,
            sequences: batch,
        }
    }

    /// A prefill-only step of `prompts` prompts of `length` tokens each (causal attention).
    pub fn prefill_load(prompts: u64, length: u64) -> StepLoad {
        StepLoad {
            tokens: prompts * length,
            context_tokens: prompts * length,
            attention_pairs: prompts as f64 * length as f64 * length as f64 / 2.0,
            sequences: prompts,
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

    /// `--describe`: every constant, the arithmetic behind the preset, and its calibration
    /// (each public row that names this preset, replayed now in virtual time).
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
            "  seq_overhead         {:>5.3} ms   more CPU time per sequence in the step (sampling, detokenizing, output)",
            self.seq_overhead_s * 1e3
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

/// How a simulated server times its answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// No delays at all: the client's own overhead becomes visible.
    Instant,
    /// Every request on its own fixed schedule: first token after `ttft_s`, then one every
    /// `itl_s`, however many requests run at once.
    Fixed { ttft_s: f64, itl_s: f64 },
    /// Continuous batching on the step model.
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

/// A single- or few-GPU vLLM engine with the constants fitted to the public rows (see
/// `calibration/README.md`): the same software on every GPU, so the H200 rows, replayed with the
/// constants fitted elsewhere, test the model rather than the fit.
fn vllm(name: &'static str, gpu: Gpu, model: ModelSpec, tp: u64) -> EngineSpec {
    let mut e = EngineSpec::new(name, gpu, model, tp);
    e.bandwidth_efficiency = VLLM_BANDWIDTH_EFFICIENCY;
    e.compute_efficiency = VLLM_COMPUTE_EFFICIENCY;
    e.compute_half_tokens = VLLM_COMPUTE_HALF_TOKENS;
    e.step_overhead_s = VLLM_STEP_OVERHEAD_S;
    e.seq_overhead_s = VLLM_SEQ_OVERHEAD_S;
    e.allreduce_latency_s = VLLM_ALLREDUCE_LATENCY_S;
    // The measurements are of vLLM 0.6 (V0), whose default scheduler prefills first.
    e.scheduling = SchedulingPolicy::PrefillFirst;
    e
}

// The fitted constants of the vLLM presets (`calibration/README.md` has the fit). Fitted on:
// vllm-ci-latency-8b-h100 and vllm-ci-latency-70b-h100 (batch latency: bandwidth, step overheads,
// all-reduce latency), sglang-vllm060-a100-rps4 and -rps8 (median TPOT: the per-sequence
// overhead against the fixed one), sglang-vllm060-a100-offline (output tokens/s at saturation:
// compute efficiency and its fall at small steps). Checked only, never used to choose: the H200
// rows.
/// Decode reads weights and KV at 82% of HBM bandwidth (large copies reach ~90%, SIM-NOTES).
const VLLM_BANDWIDTH_EFFICIENCY: f64 = 0.82;
/// Prefill-sized GEMMs reach 65% of dense peak.
const VLLM_COMPUTE_EFFICIENCY: f64 = 0.65;
/// ... and half of that at 80 tokens per step.
const VLLM_COMPUTE_HALF_TOKENS: f64 = 80.0;
/// 1.8 ms of CPU per step, plus 0.05 ms per sequence in it: 2.2 ms at batch 8, 14.6 ms at 256.
const VLLM_STEP_OVERHEAD_S: f64 = 1.8e-3;
const VLLM_SEQ_OVERHEAD_S: f64 = 0.05e-3;
/// 25 µs per all-reduce (two per layer): 4 ms per step for the 70B model on TP 4.
const VLLM_ALLREDUCE_LATENCY_S: f64 = 25e-6;

/// Every preset, in the order `--help` lists them.
pub fn presets() -> Vec<Preset> {
    // The original README's 8 × A100 TP-8 engine: the vLLM efficiencies and all-reduce, and its
    // own overheads, fitted to that README's per-request speed (original-readme-a100x8). That
    // server (early 2025, version not stated) spent less CPU per sequence than vLLM 0.6.0; one
    // figure fits one constant, so its per-sequence cost is folded into the fixed one.
    let mut a100x8 = vllm("a100x8-llama-3.1-8b", A100, LLAMA_3_1_8B, 8);
    a100x8.step_overhead_s = 2.25e-3;
    a100x8.seq_overhead_s = 0.0;
    // A deliberately small engine for tests: steps of about 6 ms, 16 sequences, a small cache.
    let mut tiny = EngineSpec::new("tiny", H100, LLAMA_3_1_8B, 1);
    tiny.step_overhead_s = 0.5e-3;
    tiny.max_num_seqs = 16;
    tiny.max_num_batched_tokens = 512;
    tiny.kv_capacity_tokens = 16_384;
    vec![
        Preset {
            name: "h100-llama-3.1-8b",
            summary: "1 × H100 SXM, Llama 3.1 8B bf16, vLLM 0.6 (calibrated)",
            served_model: "llama-3.1-8b",
            behaviour: Behaviour::Engine(vllm("h100-llama-3.1-8b", H100, LLAMA_3_1_8B, 1)),
            mean_output_tokens: 300.0,
            embedding_dim: 4096,
        },
        Preset {
            name: "h200-llama-3.1-8b",
            summary: "1 × H200 SXM, Llama 3.1 8B bf16, vLLM 0.6 (checked against its rows)",
            served_model: "llama-3.1-8b",
            behaviour: Behaviour::Engine(vllm("h200-llama-3.1-8b", H200, LLAMA_3_1_8B, 1)),
            mean_output_tokens: 300.0,
            embedding_dim: 4096,
        },
        Preset {
            name: "a100-llama-3.1-8b",
            summary: "1 × A100 SXM 80 GB, Llama 3.1 8B bf16, vLLM 0.6 (calibrated)",
            served_model: "llama-3.1-8b",
            behaviour: Behaviour::Engine(vllm("a100-llama-3.1-8b", A100, LLAMA_3_1_8B, 1)),
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
            name: "h100x4-llama-3.1-70b",
            summary: "4 × H100 SXM, TP 4, Llama 3.1 70B bf16, vLLM 0.6 (calibrated)",
            served_model: "llama-3.1-70b",
            behaviour: Behaviour::Engine(vllm("h100x4-llama-3.1-70b", H100, LLAMA_3_1_70B, 4)),
            mean_output_tokens: 300.0,
            embedding_dim: 8192,
        },
        Preset {
            name: "h200x4-llama-3.1-70b",
            summary: "4 × H200 SXM, TP 4, Llama 3.1 70B bf16, vLLM 0.6 (checked against its rows)",
            served_model: "llama-3.1-70b",
            behaviour: Behaviour::Engine(vllm("h200x4-llama-3.1-70b", H200, LLAMA_3_1_70B, 4)),
            mean_output_tokens: 300.0,
            embedding_dim: 8192,
        },
        Preset {
            name: "h100x8-llama-3.1-70b",
            summary: "8 × H100 SXM, TP 8, Llama 3.1 70B bf16, vLLM 0.6 constants (no public row)",
            served_model: "llama-3.1-70b",
            behaviour: Behaviour::Engine(vllm("h100x8-llama-3.1-70b", H100, LLAMA_3_1_70B, 8)),
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

/// The engine of the preset called `name` (None for unknown names and engine-less presets).
pub fn engine(name: &str) -> Option<EngineSpec> {
    match preset(name)?.behaviour {
        Behaviour::Engine(e) => Some(e),
        _ => None,
    }
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
        EngineSpec::new("test", H100, LLAMA_3_1_8B, 1)
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
    fn gemm_efficiency_rises_with_tokens_per_step() {
        let mut e = h100();
        e.compute_efficiency = 0.6;
        e.compute_half_tokens = 64.0;
        assert!((e.gemm_efficiency(64) - 0.3).abs() < 1e-12);
        assert!(e.gemm_efficiency(8) < e.gemm_efficiency(256));
        assert!(e.gemm_efficiency(1 << 20) < 0.6 && e.gemm_efficiency(1 << 20) > 0.5999);
        // A prefill step of 4,096 tokens: 2·P·T / (peak · 0.6 · 4096/4160).
        let t = e.step_time(EngineSpec::prefill_load(1, 4096));
        let gemm = 2.0 * 8.03e9 * 4096.0 / (989e12 * 0.6 * 4096.0 / 4160.0);
        let attention = 4.0 * 32.0 * 4096.0 * 4096.0 * 4096.0 / 2.0 / (989e12 * 0.6);
        assert!((t.compute_s - gemm - attention).abs() < 1e-12);
        assert!(t.compute_bound());
    }

    #[test]
    fn overhead_has_a_fixed_and_a_per_sequence_part() {
        let mut e = h100();
        e.step_overhead_s = 2e-3;
        e.seq_overhead_s = 0.1e-3;
        let one = e.step_time(EngineSpec::decode_load(1, 100)).overhead_s;
        let many = e.step_time(EngineSpec::decode_load(64, 100)).overhead_s;
        assert!((one - 2.1e-3).abs() < 1e-12);
        assert!((many - 8.4e-3).abs() < 1e-12);
    }

    #[test]
    fn tensor_parallel_adds_allreduce() {
        let e = EngineSpec::new("test", A100, LLAMA_3_1_8B, 8);
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
        assert!(engine("fixed").is_none() && engine("tiny").is_some());
    }

    #[test]
    fn every_engine_knows_its_preset() {
        for p in presets() {
            if let Behaviour::Engine(e) = &p.behaviour {
                assert_eq!(e.name, p.name);
            }
        }
    }
}
