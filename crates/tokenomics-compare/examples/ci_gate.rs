//! A CI gate on p99 time to first token: a Rust harness that measures a baseline server and a
//! candidate with `tokenomics-client` and fails the build (exit code 1) when the candidate's p99
//! TTFT is significantly worse by more than a set share, with `tokenomics-compare`'s seeded
//! bootstrap deciding what "significantly" means.
//!
//! ```text
//! cargo run --release -p tokenomics-compare --example ci_gate -- \
//!     http://baseline:8000/v1 http://candidate:8000/v1 MODEL
//! cargo run --release -p tokenomics-compare --example ci_gate    # two simulators: H100 vs A100
//! ```
//!
//! Each server gets the same 400 streamed requests, 16 in flight (a p99 needs 300 values or more
//! to mean anything; see `Statistic::min_values`). A harness that keeps result files instead
//! (`oai-bench --requests_file`) would call `tokenomics_compare::compare` on them, as the crate's
//! documentation shows; this one keeps the times in memory and tests them directly.

use std::process::ExitCode;

use tokenomics_client::{ChatRequest, Client, ClientConfig, Clock, Endpoint, Message};
use tokenomics_compare::records::Clusters;
use tokenomics_compare::stats::{self, Summary};
use tokenomics_compare::Statistic;

/// Requests per server, and in flight at once.
const REQUESTS: usize = 400;
const IN_FLIGHT: usize = 16;
/// The gate: fail when p99 TTFT got significantly worse by more than this share.
const MAX_SLOWDOWN: f64 = 0.05;
const CONFIDENCE: f64 = 0.95;

/// Every successful request's time to first token, seconds.
async fn ttfts(api_base: &str, model: &str) -> Result<Vec<f64>, String> {
    let client = Client::new(ClientConfig::new(api_base)).map_err(|e| e.to_string())?;
    let clock = Clock::start();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..IN_FLIGHT {
        let mut conn = client.connection();
        let model = model.to_string();
        workers.spawn(async move {
            let mut out = Vec::new();
            for i in (w..REQUESTS).step_by(IN_FLIGHT) {
                let request = ChatRequest {
                    endpoint: Endpoint::Chat,
                    model: model.clone(),
                    messages: vec![Message::new(
                        "user",
                        format!("Request {i}: summarise the tradeoffs of batching in LLM serving."),
                    )],
                    max_tokens: 16,
                    temperature: 0.0,
                    stream: true,
                    extra: Default::default(),
                };
                let record = conn
                    .completion(Endpoint::Chat, true, request.body(), &clock)
                    .await;
                if record.is_ok() {
                    out.extend(record.timing.ttft_s());
                }
            }
            out
        });
    }
    let mut all = Vec::with_capacity(REQUESTS);
    while let Some(done) = workers.join_next().await {
        all.extend(done.map_err(|e| e.to_string())?);
    }
    if all.len() < Statistic::P99.min_values() {
        return Err(format!(
            "{api_base}: {} requests succeeded; a p99 needs {}",
            all.len(),
            Statistic::P99.min_values()
        ));
    }
    Ok(all)
}

fn p99_ms(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Summary::Percentile(99.0).of_sorted(&v) * 1e3
}

async fn gate(baseline: &str, candidate: &str, model: &str) -> Result<bool, String> {
    let a = ttfts(baseline, model).await?;
    let b = ttfts(candidate, model).await?;
    // Whole requests resampled, seeded: the same times give the same verdict.
    let outcome = stats::bootstrap(
        &Clusters::singles(a.iter().copied()),
        &Clusters::singles(b.iter().copied()),
        &[Summary::Percentile(99.0)],
        1000,
        CONFIDENCE,
        42,
    )[0];
    println!(
        "p99 TTFT: baseline {:.1} ms, candidate {:.1} ms, change {:+.1}% [{:+.1}%, {:+.1}%], p = {:.4}",
        p99_ms(&a),
        p99_ms(&b),
        outcome.change * 100.0,
        outcome.low * 100.0,
        outcome.high * 100.0,
        outcome.p
    );
    // Worse beyond the allowance with the whole interval: not noise, and not a trifle.
    Ok(outcome.p < 1.0 - CONFIDENCE && outcome.low > MAX_SLOWDOWN)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [baseline, candidate, model] => gate(baseline, candidate, model).await,
        [] => {
            // No servers given: a simulated H100 against a simulated A100 (slower), 4× real time.
            let start =
                |preset: &'static str| tokenomics_sim::start_local(preset, Some("llama"), 4.0, 1);
            match (
                start("h100-llama-3.1-8b").await,
                start("a100-llama-3.1-8b").await,
            ) {
                (Ok((h100, model)), Ok((a100, _))) => {
                    let r = gate(&h100.api_base(), &a100.api_base(), &model).await;
                    h100.shutdown().await;
                    a100.shutdown().await;
                    r
                }
                (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
            }
        }
        _ => Err("usage: ci_gate [BASELINE_API_BASE CANDIDATE_API_BASE MODEL]".into()),
    };
    match result {
        Ok(false) => {
            println!("gate passed");
            ExitCode::SUCCESS
        }
        Ok(true) => {
            eprintln!(
                "gate failed: p99 TTFT is significantly worse by more than {}%",
                MAX_SLOWDOWN * 100.0
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("ci_gate: {e}");
            ExitCode::from(2)
        }
    }
}
