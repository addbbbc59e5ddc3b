//! The catalogue: GPUs and models as their vendors publish them (see `SIM-NOTES.md` in the
//! project's shared notes). Nothing here is fitted; the efficiencies that real engines reach live
//! with the engine constants in [`super::EngineSpec`].

/// A GPU by its published peaks. Every figure is the vendor's dense (no sparsity) number.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpu {
    /// The GPU's name as `--describe` and the calibration rows print it.
    pub name: &'static str,
    /// HBM capacity, bytes (decimal: 80e9 for an "80 GB" part).
    pub memory_bytes: f64,
    /// HBM bandwidth, bytes per second.
    pub bandwidth: f64,
    /// Dense bf16 peak, FLOP per second.
    pub peak_flops: f64,
    /// NVLink bandwidth per GPU as the vendor prints it (both directions together), bytes per
    /// second; the step model sends all-reduce traffic over it.
    pub link_bandwidth: f64,
}

/// NVIDIA A100 SXM 80 GB: HBM2e 2.04 TB/s, 312 TFLOP/s bf16, NVLink 3 at 600 GB/s.
pub const A100: Gpu = Gpu {
    name: "A100 SXM 80 GB",
    memory_bytes: 80e9,
    bandwidth: 2.04e12,
    peak_flops: 312e12,
    link_bandwidth: 600e9,
};

/// NVIDIA H100 SXM 80 GB: HBM3 3.35 TB/s, 989 TFLOP/s bf16, NVLink 4 at 900 GB/s.
pub const H100: Gpu = Gpu {
    name: "H100 SXM 80 GB",
    memory_bytes: 80e9,
    bandwidth: 3.35e12,
    peak_flops: 989e12,
    link_bandwidth: 900e9,
};

/// NVIDIA H200 SXM 141 GB: HBM3e 4.8 TB/s, 989 TFLOP/s bf16, NVLink 4 at 900 GB/s.
pub const H200: Gpu = Gpu {
    name: "H200 SXM 141 GB",
    memory_bytes: 141e9,
    bandwidth: 4.8e12,
    peak_flops: 989e12,
    link_bandwidth: 900e9,
};

/// A dense decoder-only model by its published shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// The model's name as `--describe` prints it.
    pub name: &'static str,
    /// Parameter count.
    pub parameters: f64,
    /// Transformer layers.
    pub layers: u64,
    /// Hidden size (the width of the residual stream and of each all-reduce, per token).
    pub hidden: u64,
    /// Key/value heads (grouped-query attention).
    pub kv_heads: u64,
    /// Dimension of one attention head.
    pub head_dim: u64,
    /// Bytes per weight (2 for bf16).
    pub bytes_per_parameter: f64,
}

impl ModelSpec {
    /// Bytes of all weights, over every GPU together.
    pub fn weight_bytes(&self) -> f64 {
        self.parameters * self.bytes_per_parameter
    }

    /// Bytes of KV cache one token occupies: K and V for every layer, bf16, over every GPU
    /// together.
    pub fn kv_bytes_per_token(&self) -> f64 {
        (2 * self.layers * self.kv_heads * self.head_dim * 2) as f64
    }
}

/// Llama 3.1 8B, bf16: 8.03 B parameters, 32 layers, hidden 4096, 8 KV heads of 128.
pub const LLAMA_3_1_8B: ModelSpec = ModelSpec {
    name: "llama-3.1-8b",
    parameters: 8.03e9,
    layers: 32,
    hidden: 4096,
    kv_heads: 8,
    head_dim: 128,
    bytes_per_parameter: 2.0,
};

/// Llama 3.1 70B, bf16: 70.6 B parameters, 80 layers, hidden 8192, 8 KV heads of 128.
pub const LLAMA_3_1_70B: ModelSpec = ModelSpec {
    name: "llama-3.1-70b",
    parameters: 70.6e9,
    layers: 80,
    hidden: 8192,
    kv_heads: 8,
    head_dim: 128,
    bytes_per_parameter: 2.0,
};

/// KV cache capacity in tokens over `tp` GPUs: 90% of each GPU's HBM (vLLM's default
/// `gpu_memory_utilization`) less its share of the weights, divided by the KV bytes per token.
/// Activations and CUDA graphs are not subtracted (a few GB per GPU, well below what any
/// calibration row fills).
pub(super) fn kv_capacity(gpu: &Gpu, model: &ModelSpec, tp: u64) -> u64 {
    let free = (gpu.memory_bytes * 0.9 - model.weight_bytes() / tp as f64).max(0.0) * tp as f64;
    (free / model.kv_bytes_per_token()) as u64
}
