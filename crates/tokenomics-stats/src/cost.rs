//! What a level's throughput costs: `metadata.cost` (the price of the serving hardware, given by
//! the user) and each level's `cost` block, computed from the level's own figures.
//!
//! The hardware is paid by the hour whether it is busy or not, so a level's cost per token is the
//! price of the time it ran divided by the tokens it produced in that time: at `P` dollars per
//! GPU-hour on `G` GPUs, one second costs `P·G/3600`; over `R` output tokens per second that is
//! `P·G/3600/R` dollars per output token. Input (prompt) tokens cost GPU time too (prefill); with
//! an input share `s` (the share of the GPU's time spent on prefill, `--input_cost_share`), input
//! tokens are charged `s` of the time and output tokens `1 − s`; without one, output tokens carry
//! all of it and input tokens are not priced.

use serde::{Deserialize, Serialize};

use crate::ChatLevel;

/// `metadata.cost`: the price of the serving hardware.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CostBasis {
    /// Dollars per GPU-hour.
    pub usd_per_gpu_hour: f64,
    /// GPUs serving the model.
    pub gpus: u64,
    /// The share of the GPUs' time charged to input tokens (0 to below 1); absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_cost_share: Option<f64>,
}

/// A level's `cost` block.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LevelCost {
    /// Output tokens per second over the level's runs (the `tok/s` of the table), per GPU.
    pub output_tokens_per_second_per_gpu: f64,
    /// Dollars per million output tokens.
    pub usd_per_million_output_tokens: f64,
    /// Dollars per million input tokens (with an input share only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usd_per_million_input_tokens: Option<f64>,
    /// Successful requests per GPU-hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_gpu_hour: Option<f64>,
}

impl CostBasis {
    /// Dollars per second of the whole deployment.
    pub fn usd_per_second(&self) -> f64 {
        self.usd_per_gpu_hour * self.gpus as f64 / 3600.0
    }

    /// The cost block of a level producing `output_tps` output tokens and `input_tps` input tokens
    /// per second, `rps` successful requests per second (`None` when it produced no output).
    pub fn cost(&self, output_tps: f64, input_tps: f64, rps: Option<f64>) -> Option<LevelCost> {
        if !(output_tps.is_finite() && output_tps > 0.0) || self.gpus == 0 {
            return None;
        }
        let gpus = self.gpus as f64;
        let per_second = self.usd_per_second();
        let share = self.input_cost_share.unwrap_or(0.0);
        Some(LevelCost {
            output_tokens_per_second_per_gpu: output_tps / gpus,
            usd_per_million_output_tokens: per_second * (1.0 - share) / output_tps * 1e6,
            usd_per_million_input_tokens: (share > 0.0 && input_tps.is_finite() && input_tps > 0.0)
                .then(|| per_second * share / input_tps * 1e6),
            requests_per_gpu_hour: rps.filter(|r| r.is_finite()).map(|r| r * 3600.0 / gpus),
        })
    }

    /// The cost block of a chat level, from its output tokens/s (mean over runs), requests/s and
    /// input tokens per request.
    pub fn chat_level(&self, level: &ChatLevel) -> Option<LevelCost> {
        let output_tps = level.throughput.batch_tokens_per_second.mean;
        let rps = level
            .throughput
            .requests_per_second
            .as_ref()
            .map(|s| s.mean);
        let input_tps = level.tokens.input_per_request.mean * rps.unwrap_or(f64::NAN);
        self.cost(output_tps, input_tps, rps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        // 8 GPUs at $2.50 an hour: $20 an hour, 1/180 dollar a second. 4,000 output tokens/s:
        // 14.4 million an hour, so $20 / 14.4 = $1.3889 per million; 500 per GPU per second;
        // 10 requests/s: 36,000 an hour, 4,500 per GPU-hour.
        let basis = CostBasis {
            usd_per_gpu_hour: 2.5,
            gpus: 8,
            input_cost_share: None,
        };
        let c = basis.cost(4000.0, 20_000.0, Some(10.0)).unwrap();
        assert!((c.usd_per_million_output_tokens - 20.0 / 14.4).abs() < 1e-12);
        assert_eq!(c.output_tokens_per_second_per_gpu, 500.0);
        assert_eq!(c.requests_per_gpu_hour, Some(4500.0));
        assert_eq!(c.usd_per_million_input_tokens, None);
        // A quarter of the time to prefill: output tokens carry $15 an hour ($1.0417 per
        // million), input tokens $5 an hour over 72 million of them ($0.0694 per million).
        let shared = CostBasis {
            input_cost_share: Some(0.25),
            ..basis
        };
        let c = shared.cost(4000.0, 20_000.0, Some(10.0)).unwrap();
        assert!((c.usd_per_million_output_tokens - 15.0 / 14.4).abs() < 1e-12);
        let input = c.usd_per_million_input_tokens.unwrap();
        assert!((input - 5.0 / 72.0).abs() < 1e-12, "{input}");
        // Nothing produced: no cost per token.
        assert_eq!(basis.cost(0.0, 0.0, Some(0.0)), None);
        assert_eq!(basis.cost(f64::NAN, 0.0, None), None);
        assert_eq!(
            basis.cost(1.0, 0.0, None).unwrap().requests_per_gpu_hour,
            None
        );
    }
}
