//! What the presets' GPUs cost: a public on-demand list price per GPU-hour, with where and when
//! it was listed, so a simulated run can be priced like a real one.
//!
//! One provider for every GPU, so that the presets compare on the same footing: Hyperstack's
//! public rate card lists all three GPUs on demand at a flat price per GPU-hour, whatever the
//! number of GPUs. (Lambda, the other obvious choice, listed no on-demand H200, and its per-GPU
//! price depends on the instance size: $4.29 for 1 × H100 SXM, $3.99 per GPU for 8, $2.79 per
//! A100 SXM 80 GB GPU for 8, on lambda.ai in September 2026.) List prices change; these are
//! what was listed on the day named, not a quote.

/// A public on-demand list price of one GPU for an hour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListPrice {
    /// US dollars per GPU-hour, on demand, without commitment.
    pub usd_per_gpu_hour: f64,
    /// Who listed it, where, and on which day.
    pub source: &'static str,
}

/// Hyperstack, "NVIDIA A100 SXM" (80 GB), on demand.
pub const A100_SXM_PRICE: ListPrice = ListPrice {
    usd_per_gpu_hour: 1.60,
    source: "Hyperstack on-demand, NVIDIA A100 SXM 80 GB, $1.60 per GPU-hour as listed at https://www.hyperstack.cloud/gpu-pricing on 2026-08-26",
};

/// Hyperstack, "NVIDIA H100 SXM" (80 GB), on demand.
pub const H100_SXM_PRICE: ListPrice = ListPrice {
    usd_per_gpu_hour: 3.20,
    source: "Hyperstack on-demand, NVIDIA H100 SXM 80 GB, $3.20 per GPU-hour as listed at https://www.hyperstack.cloud/gpu-pricing on 2026-08-26",
};

/// Hyperstack, "NVIDIA H200 SXM" (141 GB), on demand.
pub const H200_SXM_PRICE: ListPrice = ListPrice {
    usd_per_gpu_hour: 3.99,
    source: "Hyperstack on-demand, NVIDIA H200 SXM 141 GB, $3.99 per GPU-hour as listed at https://www.hyperstack.cloud/gpu-pricing on 2026-08-26",
};

/// What a preset's hardware costs: its GPUs at their list price.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PresetCost {
    /// US dollars per GPU-hour.
    pub usd_per_gpu_hour: f64,
    /// GPUs one server runs on (the engine's tensor parallelism).
    pub gpus: u64,
    /// Who listed the price, where, and on which day.
    pub source: &'static str,
}

impl PresetCost {
    /// US dollars per hour of the whole server.
    pub fn usd_per_hour(&self) -> f64 {
        self.usd_per_gpu_hour * self.gpus as f64
    }

    /// US dollars per million output tokens at `output_tokens_per_s` (None at no output).
    pub fn usd_per_million_output_tokens(&self, output_tokens_per_s: f64) -> Option<f64> {
        (output_tokens_per_s.is_finite() && output_tokens_per_s > 0.0)
            .then(|| self.usd_per_hour() / 3600.0 / output_tokens_per_s * 1e6)
    }
}
