//! Hardware and model specifications, the step-time model, and the named presets.
//!
//! Figures are the vendors' public ones (see `SIM-NOTES.md` in the project's shared notes): HBM
//! bandwidth, dense bf16 peak, NVLink bandwidth; parameter counts, layers, hidden size, KV heads.
//! Real engines reach a fraction of those peaks and spend CPU time between GPU kernels, so every
//! engine preset carries efficiencies, per-step and per-sequence overheads and a scheduling
//! policy, fitted to public measurements (the rows in `calibration/rows.json` at the crate root,
//! replayed by [`crate::calibration`]) and printed with their fit by `oai-sim --describe`.
//!
//! Every preset on real GPUs carries their public list price per GPU-hour, with its source
//! ([`Preset::cost_basis`]), so a simulated run can be priced like a real one.
//!
//! By concern: `hardware` is the catalogue of GPUs and models, `step` the step model
//! ([`EngineSpec`], [`StepLoad`], [`StepTime`]), `predict` the what-if arithmetic on it
//! ([`Prediction`]), `price` the list prices, `describe` the `--describe` and `--list` text;
//! this module holds the presets and the fitted constants of the vLLM engine.

mod describe;
mod hardware;
mod predict;
mod price;
mod step;

pub use describe::list;
pub use hardware::{Gpu, ModelSpec, A100, H100, H200, LLAMA_3_1_70B, LLAMA_3_1_8B};
pub use predict::{Prediction, Saturation};
pub use price::{ListPrice, PresetCost, A100_SXM_PRICE, H100_SXM_PRICE, H200_SXM_PRICE};
pub use step::{EngineSpec, SchedulingPolicy, StepLoad, StepTime};

/// How a simulated server times its answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// No delays at all: the client's own overhead becomes visible.
    Instant,
    /// Every request on its own fixed schedule: first token `ttft_s` seconds after arrival, then
    /// one every `itl_s` seconds, however many requests run at once — unless the server has
    /// slots ([`crate::SimConfig::max_running`]): then a request's schedule starts when it gets
    /// one.
    Fixed {
        /// Arrival to first token, seconds.
        ttft_s: f64,
        /// Between consecutive tokens, seconds.
        itl_s: f64,
    },
    /// Continuous batching on the step model.
    Engine(EngineSpec),
}

/// A named preset: what `oai-sim --preset NAME` serves and how it times it.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    /// The name `--preset` takes.
    pub name: &'static str,
    /// One line for `--help` and `--list`.
    pub summary: &'static str,
    /// The model id the server offers.
    pub served_model: &'static str,
    /// How answers are timed.
    pub behaviour: Behaviour,
    /// Mean output length, tokens, when a request does not force `max_tokens`.
    pub mean_output_tokens: f64,
    /// Length of the vectors `/v1/embeddings` returns.
    pub embedding_dim: usize,
    /// The public on-demand price of one of its GPUs for an hour, and where it was listed (None
    /// for presets on no hardware).
    pub list_price: Option<ListPrice>,
}

impl Preset {
    /// GPUs one server of this preset runs on: its engine's tensor parallelism (1 without an
    /// engine).
    pub fn gpus(&self) -> u64 {
        match &self.behaviour {
            Behaviour::Engine(e) => e.tensor_parallel,
            _ => 1,
        }
    }

    /// What its hardware costs: the list price per GPU-hour, the GPUs, the price's source; None
    /// for presets without a price.
    pub fn cost_basis(&self) -> Option<PresetCost> {
        self.list_price.map(|p| PresetCost {
            usd_per_gpu_hour: p.usd_per_gpu_hour,
            gpus: self.gpus(),
            source: p.source,
        })
    }
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
    e.seq_overhead_s = if tp > 1 {
        VLLM_SEQ_OVERHEAD_S + VLLM_TP_SEQ_OVERHEAD_S
    } else {
        VLLM_SEQ_OVERHEAD_S
    };
    e.allreduce_latency_s = VLLM_ALLREDUCE_LATENCY_S;
    // The measurements are of vLLM 0.6 (V0), whose default scheduler prefills first.
    e.scheduling = SchedulingPolicy::PrefillFirst;
    e
}

// The fitted constants of the vLLM presets (`calibration/README.md` has the fit). Fitted on:
// vllm-ci-latency-8b-h100 and vllm-ci-latency-70b-h100 (batch latency: bandwidth, step overheads,
// all-reduce latency), sglang-vllm060-a100-rps4 and -rps8 (median TPOT: the per-sequence
// overhead against the fixed one), sglang-vllm060-a100-offline (output tokens/s at saturation:
// compute efficiency and its fall at small steps), sglang-vllm060-h100x4-offline (output tokens/s
// of the 70B model on TP 4 at saturation: the per-sequence cost of tensor parallelism). Checked
// only, never used to choose: the H200 rows and sglang-vllm060-h100x4-rps4/-rps8.
/// Decode reads weights and KV at 82% of HBM bandwidth (large copies reach ~90%, SIM-NOTES).
const VLLM_BANDWIDTH_EFFICIENCY: f64 = 0.82;
/// Prefill-sized GEMMs reach 65% of dense peak.
const VLLM_COMPUTE_EFFICIENCY: f64 = 0.65;
/// ... and half of that at 80 tokens per step.
const VLLM_COMPUTE_HALF_TOKENS: f64 = 80.0;
/// 1.8 ms of CPU per step, plus 0.05 ms per sequence in it: 2.2 ms at batch 8, 14.6 ms at 256.
const VLLM_STEP_OVERHEAD_S: f64 = 1.8e-3;
const VLLM_SEQ_OVERHEAD_S: f64 = 0.05e-3;
/// With tensor parallelism another 0.05 ms per sequence (0.10 ms in all), 12.8 ms more per step
/// at batch 256: the 70B TP-4 row at saturation runs 28% slower than the single-GPU constants
/// predict, and the same source's TP-4 TPOTs sat low by 9% and 13%, growing with the load; the
/// source does not say where the time goes, so it is charged where it grows, per sequence, and
/// only with TP.
const VLLM_TP_SEQ_OVERHEAD_S: f64 = 0.05e-3;
/// 25 µs per all-reduce (two per layer): 4 ms per step for the 70B model on TP 4.
const VLLM_ALLREDUCE_LATENCY_S: f64 = 25e-6;

/// Every preset, in the order `--help` lists them. The list is built anew on each call; the
/// engine presets' constants are the fitted ones described in `calibration/README.md`.
pub fn presets() -> Vec<Preset> {
    // The original README's 8 × A100 TP-8 engine: the vLLM efficiencies and all-reduce, and its
    // own overheads, fitted to that README's per-request speed (original-readme-a100x8). That
    // server (early 2025, version not stated) spent less CPU per sequence than vLLM 0.6.0; one
    // figure fits one constant, so its per-sequence costs (with and without tensor parallelism)
    // are folded into the fixed one.
    let mut a100x8 = vllm("a100x8-llama-3.1-8b", A100, LLAMA_3_1_8B, 8);
    a100x8.step_overhead_s = 2.25e-3;
    a100x8.seq_overhead_s = 0.0;
    // A deliberately small engine for tests: steps of about 6 ms, 16 sequences, a small cache.
    // Its step model is one H100's, and it is priced as one, so that tests can price a run.
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
            list_price: Some(H100_SXM_PRICE),
        },
        Preset {
            name: "h200-llama-3.1-8b",
            summary: "1 × H200 SXM, Llama 3.1 8B bf16, vLLM 0.6 (checked against its rows)",
            served_model: "llama-3.1-8b",
            behaviour: Behaviour::Engine(vllm("h200-llama-3.1-8b", H200, LLAMA_3_1_8B, 1)),
            mean_output_tokens: 300.0,
            embedding_dim: 4096,
            list_price: Some(H200_SXM_PRICE),
        },
        Preset {
            name: "a100-llama-3.1-8b",
            summary: "1 × A100 SXM 80 GB, Llama 3.1 8B bf16, vLLM 0.6 (calibrated)",
            served_model: "llama-3.1-8b",
            behaviour: Behaviour::Engine(vllm("a100-llama-3.1-8b", A100, LLAMA_3_1_8B, 1)),
            mean_output_tokens: 300.0,
            embedding_dim: 4096,
            list_price: Some(A100_SXM_PRICE),
        },
        Preset {
            name: "a100x8-llama-3.1-8b",
            summary: "8 × A100 SXM, TP 8, Llama 3.1 8B (the original README's distilled 8B setup)",
            served_model: "distill-llama-8b",
            behaviour: Behaviour::Engine(a100x8),
            mean_output_tokens: 6200.0,
            embedding_dim: 4096,
            list_price: Some(A100_SXM_PRICE),
        },
        Preset {
            name: "h100x4-llama-3.1-70b",
            summary: "4 × H100 SXM, TP 4, Llama 3.1 70B bf16, vLLM 0.6 (calibrated)",
            served_model: "llama-3.1-70b",
            behaviour: Behaviour::Engine(vllm("h100x4-llama-3.1-70b", H100, LLAMA_3_1_70B, 4)),
            mean_output_tokens: 300.0,
            embedding_dim: 8192,
            list_price: Some(H100_SXM_PRICE),
        },
        Preset {
            name: "h200x4-llama-3.1-70b",
            summary: "4 × H200 SXM, TP 4, Llama 3.1 70B bf16, vLLM 0.6 (checked against its rows)",
            served_model: "llama-3.1-70b",
            behaviour: Behaviour::Engine(vllm("h200x4-llama-3.1-70b", H200, LLAMA_3_1_70B, 4)),
            mean_output_tokens: 300.0,
            embedding_dim: 8192,
            list_price: Some(H200_SXM_PRICE),
        },
        Preset {
            name: "h100x8-llama-3.1-70b",
            summary: "8 × H100 SXM, TP 8, Llama 3.1 70B bf16, vLLM 0.6 constants (no public row)",
            served_model: "llama-3.1-70b",
            behaviour: Behaviour::Engine(vllm("h100x8-llama-3.1-70b", H100, LLAMA_3_1_70B, 8)),
            mean_output_tokens: 300.0,
            embedding_dim: 8192,
            list_price: Some(H100_SXM_PRICE),
        },
        Preset {
            name: "tiny",
            summary:
                "a small fast engine for tests: 16 sequences, 512 tokens per step, 16k-token cache",
            served_model: "tiny",
            behaviour: Behaviour::Engine(tiny),
            mean_output_tokens: 40.0,
            embedding_dim: 64,
            list_price: Some(H100_SXM_PRICE),
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
            list_price: None,
        },
        Preset {
            name: "instant",
            summary: "no delays at all: measures the client's own overhead",
            served_model: "instant",
            behaviour: Behaviour::Instant,
            mean_output_tokens: 100.0,
            embedding_dim: 64,
            list_price: None,
        },
    ]
}

/// The preset called `name`, or None.
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

/// Every preset's name, comma-separated, in the order of [`presets`] (for error messages).
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

    #[test]
    fn kv_capacity_is_free_memory_over_kv_per_token() {
        let e = EngineSpec::new("test", H100, LLAMA_3_1_8B, 1);
        let free = 80e9 * 0.9 - 16.06e9;
        assert_eq!(e.kv_capacity_tokens, (free / 131072.0) as u64);
        // Four GPUs of the 70B model: each keeps 90% less a quarter of the weights.
        let e = EngineSpec::new("test", H100, LLAMA_3_1_70B, 4);
        let free = (80e9 * 0.9 - 141.2e9 / 4.0) * 4.0;
        assert_eq!(e.kv_capacity_tokens, (free / 327680.0) as u64);
    }

    #[test]
    fn presets_are_found_by_name() {
        assert!(preset("tiny").is_some() && preset("nope").is_none());
        assert!(engine("fixed").is_none() && engine("tiny").is_some());
        assert!(preset_names().starts_with("h100-llama-3.1-8b, "));
    }

    #[test]
    fn presets_on_gpus_carry_their_list_price() {
        for p in presets() {
            match &p.behaviour {
                Behaviour::Engine(e) => {
                    let c = p.cost_basis().unwrap();
                    assert_eq!(c.gpus, e.tensor_parallel, "{}", p.name);
                    // One provider, the price of the preset's own GPU.
                    let expected = match e.gpu.name {
                        n if n == A100.name => A100_SXM_PRICE,
                        n if n == H100.name => H100_SXM_PRICE,
                        n if n == H200.name => H200_SXM_PRICE,
                        n => panic!("no price for {n}"),
                    };
                    assert_eq!(p.list_price, Some(expected), "{}", p.name);
                    assert!(c.source.contains("https://") && c.source.contains("2026-"));
                }
                _ => assert!(p.cost_basis().is_none(), "{}", p.name),
            }
        }
        let c = preset("h100x4-llama-3.1-70b")
            .unwrap()
            .cost_basis()
            .unwrap();
        assert_eq!((c.usd_per_gpu_hour, c.gpus), (3.20, 4));
        assert!((c.usd_per_hour() - 12.8).abs() < 1e-12);
        // $12.80 an hour over 1,000 tokens/s: 3.6 M tokens an hour, $3.56 per million.
        let per_m = c.usd_per_million_output_tokens(1000.0).unwrap();
        assert!((per_m - 12.8 / 3.6).abs() < 1e-12);
        assert!(c.usd_per_million_output_tokens(0.0).is_none());
    }

    #[test]
    fn every_engine_knows_its_preset() {
        for p in presets() {
            if let Behaviour::Engine(e) = &p.behaviour {
                assert_eq!(e.name, p.name);
            }
        }
    }

    #[test]
    fn the_vllm_presets_share_their_constants() {
        // One piece of software on several GPUs: only the hardware, the model and the
        // parallelism (and the per-sequence cost that comes with it) differ; the original
        // README's TP-8 server has its own overheads.
        let h100 = engine("h100-llama-3.1-8b").unwrap();
        for name in [
            "h200-llama-3.1-8b",
            "a100-llama-3.1-8b",
            "h100x4-llama-3.1-70b",
            "h200x4-llama-3.1-70b",
            "h100x8-llama-3.1-70b",
        ] {
            let e = engine(name).unwrap();
            let same = EngineSpec {
                name: h100.name,
                gpu: h100.gpu.clone(),
                model: h100.model.clone(),
                tensor_parallel: h100.tensor_parallel,
                kv_capacity_tokens: h100.kv_capacity_tokens,
                seq_overhead_s: h100.seq_overhead_s,
                ..e
            };
            assert_eq!(same, h100, "{name}");
            // Tensor parallelism adds its own per-sequence cost.
            let tp_part = if e.tensor_parallel > 1 {
                VLLM_TP_SEQ_OVERHEAD_S
            } else {
                0.0
            };
            assert_eq!(e.seq_overhead_s, VLLM_SEQ_OVERHEAD_S + tp_part, "{name}");
        }
    }
}
