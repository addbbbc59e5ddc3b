//! Measuring a request the benchmarks do not send, with `tokenomics-client`'s timing records.
//!
//! ```text
//! cargo run --release -p tokenomics-bench --example custom_request -- [--api_base URL --model NAME] [--requests N]
//! ```
//!
//! The body here is built by hand — a chat request with a JSON response format and a `user`
//! field, the kind of request an application sends — and sent N times (default 5) over one
//! kept-alive connection. Each [`RequestRecord`] carries its timestamps in nanoseconds on the
//! one [`Clock`], read when the bytes arrived and before anything was parsed; this example turns
//! them into time to first token, the gaps between tokens and end-to-end latency. Without
//! `--api_base` it starts the simulator in-process and also prints what the server's truth log
//! says of the same requests.

use std::process::ExitCode;

use bytes::Bytes;
use serde_json::json;
use tokenomics_client::{Client, ClientConfig, Clock, Endpoint, RequestRecord};
use tokenomics_sim::{SimConfig, Simulator};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match measure().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("custom_request: {e}");
            ExitCode::from(2)
        }
    }
}

async fn measure() -> Result<(), Box<dyn std::error::Error>> {
    let (mut api_base, mut model, mut requests) = (None, None, 5u32);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--api_base" => api_base = Some(value),
            "--model" => model = Some(value),
            "--requests" => {
                requests = value
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("--requests {value}: give a whole number above 0"))?
            }
            _ => return Err(format!("unknown argument {flag}").into()),
        }
    }
    let (api_base, model, simulator) = match (api_base, model) {
        (Some(url), Some(model)) => (url, model, None),
        (None, None) => {
            let config = SimConfig::preset("instant")?
                .with_fixed_schedule(0.015, 0.003)
                .with_trace(true);
            let (server, sim) = Simulator::start(config, ([127, 0, 0, 1], 0).into()).await?;
            let model = sim.served_model().to_string();
            (server.api_base(), model, Some((server, sim)))
        }
        _ => return Err("give --api_base and --model together (or neither)".into()),
    };

    // The body is serialised once, before any clock runs, and sent as these bytes every time.
    let body = Bytes::from(serde_json::to_vec(&json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "Answer in JSON."},
            {"role": "user", "content": "List three prime numbers."}
        ],
        "max_tokens": 24,
        "stream": true,
        "stream_options": {"include_usage": true},
        "response_format": {"type": "json_object"},
        "user": "ci-harness"
    }))?);

    let client = Client::new(ClientConfig::new(&api_base))?;
    let clock = Clock::start();
    let mut conn = client.connection();
    let mut records: Vec<RequestRecord> = Vec::new();
    for _ in 0..requests {
        records.push(
            conn.completion(Endpoint::Chat, true, body.clone(), &clock)
                .await,
        );
    }

    println!("request  ttft_ms  mean_gap_ms  e2e_ms  tokens  connect_ms");
    for (i, r) in records.iter().enumerate() {
        if let Some(e) = &r.error {
            println!("{i:>7}  failed ({}): {e}", e.kind());
            continue;
        }
        let t = &r.timing;
        let gaps: Vec<u64> = t.token_events_ns.windows(2).map(|w| w[1] - w[0]).collect();
        let mean_gap_ms = match gaps.len() {
            0 => f64::NAN,
            n => gaps.iter().sum::<u64>() as f64 / n as f64 / 1e6,
        };
        println!(
            "{i:>7}  {:>7.2}  {:>11.2}  {:>6.2}  {:>6}  {:>10.2}",
            t.ttft_s().unwrap_or(f64::NAN) * 1e3,
            mean_gap_ms,
            t.e2e_s().unwrap_or(f64::NAN) * 1e3,
            r.completion_tokens.map_or("?".into(), |n| n.to_string()),
            t.connect_ns as f64 / 1e6,
        );
    }
    let failed = records.iter().filter(|r| !r.is_ok()).count();

    if let Some((server, sim)) = simulator {
        // The server's side of the same requests: its time from arrival to the first token is
        // what the client's TTFT measures, less the network and the client.
        for (i, t) in sim.trace().iter().enumerate() {
            if let Some(first) = t.first_token_ns {
                println!(
                    "server's truth for request {i}: first token {:.2} ms after arrival, {} tokens",
                    (first - t.arrival_ns) as f64 / 1e6,
                    t.completion_tokens
                );
            }
        }
        server.shutdown().await;
    }
    if failed > 0 {
        return Err(format!("{failed} of {requests} requests failed").into());
    }
    Ok(())
}
