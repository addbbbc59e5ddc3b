//! The simulator over HTTP: every route, as a client sees it. Requests are written by hand with
//! hyper so these tests do not depend on the project's own client.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokenomics_sim::{SimConfig, Simulator};

async fn send(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn start(preset: &str) -> (tokenomics_sim::Server, std::sync::Arc<Simulator>) {
    let mut cfg = SimConfig::preset(preset).unwrap();
    cfg.trace = true;
    Simulator::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn models_completions_and_streams() {
    let (server, _sim) = start("instant").await;
    let addr = server.addr();
    let (status, body) = send(addr, "GET", "/v1/models", None).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"][0]["id"], "instant");

    let chat = json!({"model": "instant", "messages": [{"role": "user", "content": "Hello there, world."}], "max_tokens": 5, "ignore_eos": true});
    let (status, body) = send(addr, "POST", "/v1/chat/completions", Some(chat.clone())).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["usage"]["completion_tokens"], 5);
    // "Hello there, world." is 5 tokens (3 words, a comma, a full stop) + 4 for the message + 3.
    assert_eq!(v["usage"]["prompt_tokens"], 5 + 4 + 3);
    assert_eq!(v["choices"][0]["finish_reason"], "length");

    let mut streamed = chat.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let (status, body) = send(addr, "POST", "/v1/chat/completions", Some(streamed)).await;
    assert_eq!(status, 200);
    let events: Vec<&str> = body.split("\n\n").filter(|e| !e.is_empty()).collect();
    // role, 5 tokens, finish, usage, [DONE]
    assert_eq!(events.len(), 9, "{body}");
    assert!(events[0].contains("\"role\":\"assistant\""));
    assert!(events[6].contains("\"finish_reason\":\"length\""));
    assert!(events[7].contains("\"completion_tokens\":5"));
    assert_eq!(events[8], "data: [DONE]");

    let completion =
        json!({"model": "instant", "prompt": "one two three", "max_tokens": 3, "min_tokens": 3});
    let (status, body) = send(addr, "POST", "/v1/completions", Some(completion)).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["usage"]["prompt_tokens"], 3);
}

#[tokio::test]
async fn errors_are_openai_shaped() {
    let (server, _sim) = start("instant").await;
    let addr = server.addr();
    let (status, body) = send(
        addr,
        "POST",
        "/v1/chat/completions",
        Some(json!({"model": "other", "messages": []})),
    )
    .await;
    assert_eq!(status, 404);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("does not exist"));
    let (status, _) = send(
        addr,
        "POST",
        "/v1/chat/completions",
        Some(json!("not an object")),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = send(addr, "GET", "/v1/nothing", None).await;
    assert_eq!(status, 404);
    // A request longer than the context window is refused, as vLLM refuses it.
    let (tiny, _s) = start("tiny").await;
    let (status, body) = send(
        tiny.addr(),
        "POST",
        "/v1/completions",
        Some(json!({"model": "tiny", "prompt": "x", "max_tokens": 100000})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("maximum context length is 16384 tokens"),
        "{body}"
    );
}

#[tokio::test]
async fn tokenize_in_vllm_and_llama_cpp_shapes() {
    let (server, _sim) = start("instant").await;
    let addr = server.addr();
    let (status, body) = send(
        addr,
        "POST",
        "/tokenize",
        Some(json!({"model": "instant", "prompt": "Hello, world!"})),
    )
    .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["count"], 4);
    assert_eq!(v["tokens"].as_array().unwrap().len(), 4);
    assert!(v["max_model_len"].as_u64().unwrap() > 0);
    let (_, body) = send(
        addr,
        "POST",
        "/tokenize",
        Some(json!({"content": "Hello, world!"})),
    )
    .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["tokens"].as_array().unwrap().len(), 4);
    assert!(v.get("count").is_none(), "llama.cpp's shape");
    let (_, body) = send(
        addr,
        "POST",
        "/extras/tokenize",
        Some(json!({"content": "a b"})),
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["tokens"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (_, body) = send(
        addr,
        "POST",
        "/tokenize",
        Some(json!({"model": "instant", "messages": [{"role": "user", "content": "a b"}]})),
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["count"],
        2 + 4 + 3,
        "chat template counted"
    );
}

#[tokio::test]
async fn embeddings_metrics_and_the_truth_log() {
    let (server, sim) = start("fixed").await;
    let addr = server.addr();
    let (status, body) = send(
        addr,
        "POST",
        "/v1/embeddings",
        Some(json!({"model": "fixed", "input": ["a b c", "d e"]})),
    )
    .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 64);
    assert_eq!(v["usage"]["prompt_tokens"], 5);

    let req = json!({"model": "fixed", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "ignore_eos": true, "stream": true});
    let t0 = std::time::Instant::now();
    let (status, _) = send(addr, "POST", "/v1/chat/completions", Some(req)).await;
    assert_eq!(status, 200);
    // 50 ms to the first token, then 10 ms each: 80 ms for four tokens.
    assert!(t0.elapsed() >= Duration::from_millis(80));

    let (status, metrics) = send(addr, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    for name in [
        "vllm:num_requests_running{model_name=\"fixed\"} 0",
        "vllm:num_requests_waiting{model_name=\"fixed\"} 0",
        // 5 embedding tokens + "hi" (1) with the chat template (4 + 3).
        "vllm:prompt_tokens_total{model_name=\"fixed\"} 13",
        "vllm:generation_tokens_total{model_name=\"fixed\"} 4",
        "vllm:gpu_cache_usage_perc{model_name=\"fixed\"}",
        "vllm:time_to_first_token_seconds_bucket{model_name=\"fixed\",le=\"0.06\"} 1",
        "vllm:time_to_first_token_seconds_bucket{model_name=\"fixed\",le=\"0.04\"} 0",
        "vllm:time_to_first_token_seconds_count{model_name=\"fixed\"} 1",
        "# TYPE vllm:time_to_first_token_seconds histogram",
    ] {
        assert!(metrics.contains(name), "{name} in\n{metrics}");
    }

    let (status, trace) = send(addr, "GET", "/sim/trace", None).await;
    assert_eq!(status, 200);
    let lines: Vec<Value> = trace
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let chat = lines.iter().find(|l| l["route"] == "chat").unwrap();
    let tokens: Vec<u64> = chat["token_ns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap())
        .collect();
    assert_eq!(tokens.len(), 4);
    let first = (tokens[0] - chat["arrival_ns"].as_u64().unwrap()) as f64 / 1e6;
    assert!(
        (50.0..55.0).contains(&first),
        "first token {first} ms after arrival"
    );
    for w in tokens.windows(2) {
        let gap = (w[1] - w[0]) as f64 / 1e6;
        assert!((9.0..12.0).contains(&gap), "gap {gap} ms");
    }
    assert_eq!(chat["completed"], true);
    assert_eq!(sim.trace().len(), 2);
}

#[test]
fn oai_sim_describe_and_list() {
    // The binary is another package; its arithmetic is the library's, checked here.
    let p = tokenomics_sim::preset::preset("h100-llama-3.1-8b").unwrap();
    let tokenomics_sim::preset::Behaviour::Engine(e) = p.behaviour else {
        panic!()
    };
    let text = e.describe();
    // 16.06 GB / (3.35 TB/s × 82%) = 5.85 ms of weights + 1.8 ms per step + 0.05 ms per sequence.
    assert!(
        text.contains("single stream (short context): 7.70 ms per token → 130 tokens/s predicted"),
        "{text}"
    );
    assert!(text.contains("compute takes over at batch 155 (context 0)"));
    assert!(text.contains("prefill-first (vLLM V0)"), "{text}");
    assert!(
        text.contains("fitted on: vllm-ci-latency-8b-h100"),
        "{text}"
    );
}

/// Numbers a hostile client sends — any `max_tokens`, `min_tokens`, `max_completion_tokens`,
/// odd types — get a clear answer (200 or 400), never a panic: the server still answers after.
#[tokio::test]
async fn hostile_numbers_from_a_client_are_answered() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let (server, _sim) = start("instant").await;
    let addr = server.addr();
    let number = prop_oneof![
        any::<u64>().prop_map(|n| json!(n)),
        (0u64..64).prop_map(|n| json!(n)),
        Just(json!(-1)),
        Just(json!(1e300)),
        Just(json!(0)),
        Just(json!("many")),
        Just(Value::Null),
    ];
    let strategy = (
        number.clone(),
        number.clone(),
        number,
        any::<bool>(),
        any::<bool>(),
    );
    let mut runner = TestRunner::deterministic();
    for _ in 0..48 {
        let (max_tokens, min_tokens, max_completion, ignore_eos, stream) =
            strategy.new_tree(&mut runner).unwrap().current();
        let body = json!({
            "model": "instant", "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": max_tokens, "min_tokens": min_tokens,
            "max_completion_tokens": max_completion, "ignore_eos": ignore_eos,
            "stream": stream,
        });
        let (status, text) = send(addr, "POST", "/v1/chat/completions", Some(body.clone())).await;
        assert!(status == 200 || status == 400, "{body}: {status} {text}");
    }
    let (status, _) = send(addr, "GET", "/health", None).await;
    assert_eq!(status, 200);
}
