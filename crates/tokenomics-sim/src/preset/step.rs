//! The step model: what one scheduler step of a vLLM-like engine costs, in seconds of model time,
//! given the work in it. A step reads every weight and the KV cache of the sequences in it
//! (memory time), multiplies the step's tokens through the weights and attends over their context
//! (compute time), all-reduces twice per layer with tensor parallelism, and waits for the CPU
//! (scheduling, input preparation, sampling). The slower of memory and compute counts; the
//! all-reduces and the CPU add to it.

use super::hardware::{kv_capacity, Gpu, ModelSpec};

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

/// An engine configuration: hardware, model, parallelism, efficiencies, overheads and scheduler.
/// Every time is in seconds of *model* time (the live engine divides by its time scale; the
/// calibration replay adds them up as they are).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSpec {
    /// The preset this configuration belongs to: `describe` replays the calibration rows that
    /// name it.
    pub name: &'static str,
    /// The GPU, one of `tensor_parallel` identical ones.
    pub gpu: Gpu,
    /// The model served.
    pub model: ModelSpec,
    /// GPUs one model instance is split over (tensor parallelism); 1 is a single GPU.
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
    /// CPU cost per sequence scheduled in a step (sampling, detokenizing, output handling and,
    /// with tensor parallelism, coordinating the workers), seconds.
    pub seq_overhead_s: f64,
    /// Latency of one all-reduce, seconds (only with `tensor_parallel` > 1).
    pub allreduce_latency_s: f64,
    /// How prefill shares steps with decoding.
    pub scheduling: SchedulingPolicy,
    /// Most sequences running at once.
    pub max_num_seqs: usize,
    /// Token budget per step: decode tokens plus prefill chunks (chunked prefill) or the prompts
    /// of one prefill step (prefill-first; a single longer prompt still runs, alone).
    pub max_num_batched_tokens: u64,
    /// KV cache capacity, tokens (over all GPUs).
    pub kv_capacity_tokens: u64,
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

/// The parts of one step's time, each in seconds of model time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepTime {
    /// Reading the weights and the KV cache at the effective bandwidth.
    pub memory_s: f64,
    /// GEMMs and attention at the effective FLOP rate.
    pub compute_s: f64,
    /// The all-reduces of tensor parallelism (0 on one GPU).
    pub allreduce_s: f64,
    /// CPU time the GPU waits for: the fixed and the per-sequence parts.
    pub overhead_s: f64,
}

impl StepTime {
    /// The step's duration, seconds: max(memory, compute) + overhead + all-reduce.
    pub fn total(&self) -> f64 {
        self.memory_s.max(self.compute_s) + self.overhead_s + self.allreduce_s
    }

    /// Compute, not memory, sets the step's GPU time.
    pub fn compute_bound(&self) -> bool {
        self.compute_s > self.memory_s
    }
}

impl EngineSpec {
    /// The roofline constants at their physical defaults (87% of bandwidth, 80% of peak, no
    /// overhead), chunked prefill, 256 sequences, 8,192 tokens per step, the KV cache that 90%
    /// of HBM leaves; presets set what their calibration says.
    pub(super) fn new(name: &'static str, gpu: Gpu, model: ModelSpec, tp: u64) -> Self {
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

    /// The fraction of peak FLOP/s a step's GEMMs reach at `tokens` tokens (0 tokens count as 1).
    pub fn gemm_efficiency(&self, tokens: u64) -> f64 {
        if self.compute_half_tokens <= 0.0 {
            return self.compute_efficiency;
        }
        let t = tokens.max(1) as f64;
        self.compute_efficiency * t / (t + self.compute_half_tokens)
    }

    /// The step model: the parts of the time of a step carrying `load`, seconds of model time.
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

    /// The load of a decode step of `batch` sequences at `context` tokens each.
    pub fn decode_load(batch: u64, context: u64) -> StepLoad {
        StepLoad {
            tokens: batch,
            context_tokens: batch * context,
            attention_pairs: (batch * context) as f64,
            sequences: batch,
        }
    }

    /// The load of a prefill-only step of `prompts` prompts of `length` tokens each (causal
    /// attention: each token attends to half the prompt on average).
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
}

#[cfg(test)]
mod tests {
    use super::super::hardware::{A100, H100, LLAMA_3_1_8B};
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
}
