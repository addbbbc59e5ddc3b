//! The replay: a row's load played against an engine in virtual time, and the figures read off
//! the result. The live engine's own scheduler ([`crate::engine`]: admission, step planning,
//! applying a step) runs as a discrete-event simulation whose clock advances by each step's model
//! time instead of sleeping, so a replay is exact, deterministic and takes milliseconds.

use std::collections::VecDeque;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Gamma};

use super::rows::{validate, Load, Metric, Workload};
use crate::engine::{Emit, Pending, Scheduler};
use crate::preset::EngineSpec;
use crate::Error;

/// One request as the replayed engine served it. Times in seconds of model time since the
/// replay began (the first arrival is at 0).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestTiming {
    /// When the request reached the engine, seconds.
    pub arrival_s: f64,
    /// The end of every step that produced one of its tokens, seconds, in order.
    pub token_s: Vec<f64>,
    /// The end of the step that produced its last token, seconds.
    pub end_s: f64,
}

/// A replayed workload: every request's timing, in the order the workload numbers them.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// One entry per request of the workload.
    pub requests: Vec<RequestTiming>,
    /// Engine steps run.
    pub steps: u64,
}

/// Plays `workload` against `spec` in virtual time with the live engine's scheduler. Fails with
/// [`Error::Invalid`] for a malformed workload or a stalled replay, and with [`Error::Request`]
/// when a request can never fit the KV cache.
pub fn replay(spec: &EngineSpec, workload: &Workload) -> Result<Replay, Error> {
    validate(workload)?;
    crate::engine::fits(spec, workload.input_tokens, output_cap(workload))?;
    let n = workload.load.requests();
    let outputs = output_lengths(workload, n)?;
    let mut arrivals: VecDeque<(f64, usize)> = match workload.load {
        Load::Batch { requests } => (0..requests).map(|i| (0.0, i)).collect(),
        Load::ClosedLoop { concurrency, .. } => (0..concurrency).map(|i| (0.0, i)).collect(),
        Load::OpenLoop { rate_per_s, .. } => {
            let gap = Exp::new(rate_per_s).map_err(|e| Error::Invalid(e.to_string()))?;
            let mut rng = ChaCha8Rng::seed_from_u64(workload.seed);
            let mut t = 0.0;
            (0..n)
                .map(|i| {
                    let at = t;
                    t += gap.sample(&mut rng);
                    (at, i)
                })
                .collect()
        }
    };
    let mut next_closed = match workload.load {
        Load::ClosedLoop { concurrency, .. } => concurrency,
        _ => n,
    };
    let mut timings: Vec<RequestTiming> = vec![
        RequestTiming {
            arrival_s: f64::NAN,
            token_s: Vec::new(),
            end_s: f64::NAN,
        };
        n
    ];
    let mut scheduler = Scheduler::<usize>::new(spec.clone(), crate::prefix::DEFAULT_BLOCK_TOKENS);
    let (mut now, mut steps) = (0.0f64, 0u64);
    let mut finished = Vec::new();
    loop {
        // Like the live engine: requests that arrived during a step join before the next one.
        while let Some(&(at, i)) = arrivals.front() {
            if at > now {
                break;
            }
            arrivals.pop_front();
            timings[i].arrival_s = at;
            scheduler.enqueue(Pending {
                prompt: workload.input_tokens,
                output: outputs[i],
                // A row's prompts have lengths, not contents: nothing to share.
                blocks: None,
                handle: i,
            });
        }
        if scheduler.is_idle() {
            match arrivals.front() {
                // An idle engine starts its next step when the next request arrives.
                Some(&(at, _)) => {
                    now = now.max(at);
                    continue;
                }
                None => break,
            }
        }
        let Some(load) = scheduler.plan_step(|_| false) else {
            return Err(Error::Invalid(
                "the replay stalled: requests wait that can never be admitted".into(),
            ));
        };
        now += spec.step_time(load).total();
        steps += 1;
        scheduler.apply_step(|&mut i, emit| {
            match emit {
                Emit::Token => timings[i].token_s.push(now),
                Emit::Finished => {
                    timings[i].end_s = now;
                    finished.push(i);
                }
            }
            true
        });
        // A closed loop sends the next request the moment one ends.
        for _ in finished.drain(..) {
            if next_closed < n {
                arrivals.push_back((now, next_closed));
                next_closed += 1;
            }
        }
    }
    Ok(Replay {
        requests: timings,
        steps,
    })
}

/// The longest output the workload can ask for (for the KV-cache check).
fn output_cap(w: &Workload) -> u64 {
    if w.output_tokens_std > 0.0 {
        // Gamma draws are capped at mean + 6 standard deviations.
        w.output_tokens + (6.0 * w.output_tokens_std).ceil() as u64
    } else {
        w.output_tokens
    }
}

/// Every request's output length: the row's length, or seeded Gamma draws with its mean and
/// standard deviation (at least 1 token, at most [`output_cap`]).
fn output_lengths(w: &Workload, n: usize) -> Result<Vec<u64>, Error> {
    if w.output_tokens_std <= 0.0 {
        return Ok(vec![w.output_tokens; n]);
    }
    let mean = w.output_tokens as f64;
    let shape = (mean / w.output_tokens_std).powi(2);
    let gamma =
        Gamma::new(shape, mean / shape).map_err(|e| Error::Invalid(format!("lengths: {e}")))?;
    // Its own stream, so changing the arrivals does not change the lengths.
    let mut rng = ChaCha8Rng::seed_from_u64(w.seed ^ 0x6C65_6E67_7468_7321);
    let cap = output_cap(w);
    Ok((0..n)
        .map(|_| (gamma.sample(&mut rng).round() as u64).clamp(1, cap))
        .collect())
}

/// The median as numpy computes it (the mean of the two middle values of an even count).
fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

impl Replay {
    /// First arrival → last end, seconds.
    pub fn duration_s(&self) -> f64 {
        let start = self
            .requests
            .iter()
            .map(|r| r.arrival_s)
            .fold(f64::INFINITY, f64::min);
        let end = self
            .requests
            .iter()
            .map(|r| r.end_s)
            .fold(f64::NEG_INFINITY, f64::max);
        end - start
    }

    fn ttfts(&self) -> Vec<f64> {
        self.requests
            .iter()
            .filter_map(|r| Some(r.token_s.first()? - r.arrival_s))
            .collect()
    }

    fn tpots(&self) -> Vec<f64> {
        self.requests
            .iter()
            .filter(|r| r.token_s.len() > 1)
            .map(|r| (r.end_s - r.token_s[0]) / (r.token_s.len() - 1) as f64)
            .collect()
    }

    fn itls(&self) -> Vec<f64> {
        self.requests
            .iter()
            .flat_map(|r| r.token_s.windows(2).map(|w| w[1] - w[0]))
            .collect()
    }

    /// The replay's value of `metric`, in the metric's unit (None when it has no data, such as
    /// TPOT of one-token answers).
    pub fn figure(&self, metric: Metric) -> Option<f64> {
        let ms = |s: Option<f64>| s.map(|s| s * 1e3);
        let tokens: usize = self.requests.iter().map(|r| r.token_s.len()).sum();
        match metric {
            Metric::BatchLatencyMs => Some(self.duration_s() * 1e3),
            Metric::MeanTtftMs => ms(mean(&self.ttfts())),
            Metric::MedianTtftMs => ms(median(self.ttfts())),
            Metric::MeanTpotMs => ms(mean(&self.tpots())),
            Metric::MedianTpotMs => ms(median(self.tpots())),
            Metric::MeanItlMs => ms(mean(&self.itls())),
            Metric::MedianItlMs => ms(median(self.itls())),
            Metric::MeanRequestTokensPerS => mean(
                &self
                    .requests
                    .iter()
                    .map(|r| r.token_s.len() as f64 / (r.end_s - r.arrival_s))
                    .collect::<Vec<_>>(),
            ),
            Metric::OutputTokensPerS => Some(tokens as f64 / self.duration_s()),
            Metric::RequestsPerS => Some(self.requests.len() as f64 / self.duration_s()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset::{SchedulingPolicy, H100, LLAMA_3_1_8B};

    fn spec() -> EngineSpec {
        crate::preset::engine("h100-llama-3.1-8b").unwrap()
    }

    fn batch(requests: usize, input: u64, output: u64) -> Workload {
        Workload {
            input_tokens: input,
            output_tokens: output,
            output_tokens_std: 0.0,
            load: Load::Batch { requests },
            seed: 0,
        }
    }

    #[test]
    fn a_batch_is_one_prefill_then_decode_steps_of_the_step_model() {
        let s = spec();
        let r = replay(&s, &batch(8, 32, 128)).unwrap();
        assert_eq!(r.steps, 128);
        let mut expected = s.step_time(EngineSpec::prefill_load(8, 32)).total();
        for k in 1..128u64 {
            expected += s.step_time(EngineSpec::decode_load(8, 32 + k + 1)).total();
        }
        let got = r.figure(Metric::BatchLatencyMs).unwrap() / 1e3;
        assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
        assert!(r.requests.iter().all(|q| q.token_s.len() == 128));
        // TTFT is the prefill step; TPOT the mean decode step.
        let ttft = r.figure(Metric::MeanTtftMs).unwrap() / 1e3;
        let prefill = s.step_time(EngineSpec::prefill_load(8, 32)).total();
        assert!((ttft - prefill).abs() < 1e-12);
        let tpot = r.figure(Metric::MedianTpotMs).unwrap() / 1e3;
        assert!((tpot - (expected - prefill) / 127.0).abs() < 1e-12);
        let tps = r.figure(Metric::OutputTokensPerS).unwrap();
        assert!((tps - 8.0 * 128.0 / expected).abs() < 1e-6);
    }

    #[test]
    fn a_closed_loop_keeps_the_concurrency() {
        let s = spec();
        let w = Workload {
            load: Load::ClosedLoop {
                concurrency: 4,
                requests: 12,
            },
            ..batch(0, 100, 20)
        };
        let r = replay(&s, &w).unwrap();
        // Three waves of four: each wave starts when the previous one ends.
        let mut arrivals: Vec<f64> = r.requests.iter().map(|q| q.arrival_s).collect();
        arrivals.dedup();
        assert_eq!(arrivals.len(), 3, "{arrivals:?}");
        assert_eq!(r.requests[4].arrival_s, r.requests[0].end_s);
        assert!(r.requests.iter().all(|q| q.token_s.len() == 20));
    }

    #[test]
    fn an_open_loop_follows_its_seeded_poisson_schedule() {
        let s = spec();
        let w = Workload {
            load: Load::OpenLoop {
                rate_per_s: 10.0,
                requests: 400,
            },
            seed: 7,
            ..batch(0, 100, 20)
        };
        let a = replay(&s, &w).unwrap();
        assert_eq!(a, replay(&s, &w).unwrap(), "deterministic");
        let last = a.requests.last().unwrap().arrival_s;
        // 399 gaps of mean 0.1 s: within a few standard errors of 39.9 s.
        assert!((last - 39.9).abs() < 4.0, "{last}");
        // Light load: about one token's wait beside the prefill.
        let ttft = a.figure(Metric::MedianTtftMs).unwrap();
        assert!(ttft < 30.0, "{ttft}");
    }

    #[test]
    fn drawn_lengths_have_the_rows_mean_and_spread() {
        let w = Workload {
            output_tokens_std: 3030.0,
            seed: 1,
            ..batch(2000, 113, 6211)
        };
        let lengths = output_lengths(&w, 2000).unwrap();
        let m = lengths.iter().sum::<u64>() as f64 / 2000.0;
        let var = lengths.iter().map(|&l| (l as f64 - m).powi(2)).sum::<f64>() / 1999.0;
        assert!((m - 6211.0).abs() < 200.0, "{m}");
        assert!((var.sqrt() - 3030.0).abs() < 200.0, "{}", var.sqrt());
    }

    #[test]
    fn the_scheduling_policy_changes_what_decoders_see() {
        // A decoder streaming while long prompts keep arriving: prefill-first stalls it for a
        // whole prompt per arrival, chunked prefill spreads the prompt over the decoders' steps.
        let mut chunked = EngineSpec {
            scheduling: SchedulingPolicy::ChunkedPrefill,
            max_num_batched_tokens: 512,
            ..spec()
        };
        chunked.gpu = H100;
        chunked.model = LLAMA_3_1_8B;
        let first = EngineSpec {
            scheduling: SchedulingPolicy::PrefillFirst,
            ..chunked.clone()
        };
        let w = Workload {
            load: Load::OpenLoop {
                rate_per_s: 5.0,
                requests: 50,
            },
            seed: 3,
            ..batch(0, 4000, 200)
        };
        let itl_max = |s: &EngineSpec| {
            replay(s, &w)
                .unwrap()
                .itls()
                .into_iter()
                .fold(0.0, f64::max)
        };
        let (c, f) = (itl_max(&chunked), itl_max(&first));
        assert!(f > 1.5 * c, "prefill-first {f} vs chunked {c}");
    }

    #[test]
    fn median_is_numpys() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn a_request_that_cannot_fit_is_an_error_not_a_hang() {
        let s = EngineSpec {
            kv_capacity_tokens: 100,
            ..spec()
        };
        assert!(replay(&s, &batch(2, 80, 40)).is_err());
    }
}
