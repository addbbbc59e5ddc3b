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
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    send_raw(addr, method, path, body).await
}

/// Sends `body` as it is (which need not be JSON).
async fn send_raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Bytes,
) -> (u16, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
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
    let (status, body) = send(addr, "POST", "/v1/chat/completions", Some(streamed.clone())).await;
    assert_eq!(status, 200);
    let events = data_events(&body);
    // As vLLM 0.33.0 streams it: role, 5 tokens (the last carries the finish reason), usage,
    // [DONE].
    assert_eq!(events.len(), 8, "{body}");
    assert_eq!(
        events[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    for (k, e) in events[1..6].iter().enumerate() {
        assert!(e["choices"][0]["delta"]["content"].as_str().unwrap().len() > 1);
        let reason = if k == 4 { json!("length") } else { Value::Null };
        assert_eq!(e["choices"][0]["finish_reason"], reason, "{e}");
        assert!(e.get("usage").is_none(), "no running usage unless asked");
    }
    assert_eq!(events[6]["choices"], json!([]));
    assert_eq!(
        events[6]["usage"],
        json!({"prompt_tokens": 12, "total_tokens": 17, "completion_tokens": 5})
    );
    assert_eq!(events[7], json!("[DONE]"));
    assert!(events[..7].iter().all(|e| e["id"] == events[0]["id"]
        && e["object"] == "chat.completion.chunk"
        && e["model"] == "instant"));

    // No usage chunk unless asked for; with continuous_usage_stats, every chunk counts so far.
    streamed["stream_options"] = json!(null);
    let (_, body) = send(addr, "POST", "/v1/chat/completions", Some(streamed.clone())).await;
    let events = data_events(&body);
    assert_eq!(events.len(), 7, "{body}");
    assert!(events.iter().all(|e| e.get("usage").is_none()));
    streamed["stream_options"] = json!({"include_usage": true, "continuous_usage_stats": true});
    let (_, body) = send(addr, "POST", "/v1/chat/completions", Some(streamed)).await;
    let events = data_events(&body);
    let running: Vec<u64> = events[..6]
        .iter()
        .map(|e| e["usage"]["completion_tokens"].as_u64().unwrap())
        .collect();
    assert_eq!(running, [0, 1, 2, 3, 4, 5]);
    assert_eq!(events[3]["usage"]["total_tokens"], 12 + 3);

    // Completions: no role chunk; one chunk per token, the last with the finish reason.
    let completion = json!({"model": "instant", "prompt": "one two three", "max_tokens": 3,
        "min_tokens": 3, "stream": true, "stream_options": {"include_usage": true}});
    let (status, body) = send(addr, "POST", "/v1/completions", Some(completion.clone())).await;
    assert_eq!(status, 200);
    let events = data_events(&body);
    assert_eq!(events.len(), 5, "{body}");
    assert!(events[..3]
        .iter()
        .all(|e| e["object"] == "text_completion"
            && e["choices"][0]["text"].as_str().unwrap().len() > 1));
    assert_eq!(events[2]["choices"][0]["finish_reason"], "length");
    assert_eq!(events[3]["usage"]["completion_tokens"], 3);

    let mut whole = completion;
    whole["stream"] = json!(false);
    let (status, body) = send(addr, "POST", "/v1/completions", Some(whole)).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["usage"]["prompt_tokens"], 3);

    // A request without a model is served by the one model, named in the answer (vLLM).
    let (status, body) = send(
        addr,
        "POST",
        "/v1/chat/completions",
        Some(json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["model"],
        "instant"
    );
}

/// The `data:` payloads of an SSE body, as JSON (`[DONE]` as a JSON string).
fn data_events(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap_or_else(|_| json!(d)))
        .collect()
}

/// A sequence that stops before `max_tokens` ends on the end-of-sequence token: counted in the
/// usage, streamed as an empty `content` with `finish_reason: "stop"` (vLLM with
/// `skip_special_tokens`).
#[tokio::test]
async fn a_stopped_stream_ends_with_an_empty_eos_chunk() {
    let (server, _sim) = start("instant").await;
    let addr = server.addr();
    // The instant preset draws lengths around 100 tokens: 400 is never reached.
    let req = json!({"model": "instant", "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 400, "stream": true, "stream_options": {"include_usage": true}});
    let (_, body) = send(addr, "POST", "/v1/chat/completions", Some(req)).await;
    let events = data_events(&body);
    let n = events.len();
    let usage = events[n - 2]["usage"]["completion_tokens"]
        .as_u64()
        .unwrap();
    assert!(usage < 400);
    // role + one chunk per token + usage + [DONE]
    assert_eq!(n as u64, usage + 3, "{body}");
    let last = &events[n - 3]["choices"][0];
    assert_eq!(last["delta"], json!({"content": ""}));
    assert_eq!(last["finish_reason"], "stop");
}

#[tokio::test]
async fn errors_are_vllm_shaped() {
    let (server, _sim) = start("instant").await;
    let addr = server.addr();
    let error = |body: &str| serde_json::from_str::<Value>(body).unwrap()["error"].clone();
    let (status, body) = send(
        addr,
        "POST",
        "/v1/chat/completions",
        Some(json!({"model": "other", "messages": []})),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        error(&body),
        json!({"message": "The model `other` does not exist. Valid aliases: instant.",
            "type": "NotFoundError", "param": "model", "code": 404})
    );
    // Not JSON, not an object, a field missing, a field of the wrong type: FastAPI's 400.
    for (raw, param) in [
        (&b"{\"model\": \"instant\", "[..], "body.21"),
        (b"\"not an object\"", "body"),
        (b"{\"model\": \"instant\"}", "body.messages"),
        (
            b"{\"messages\": [], \"max_tokens\": \"many\"}",
            "body.max_tokens",
        ),
    ] {
        let (status, body) = send_raw(
            addr,
            "POST",
            "/v1/chat/completions",
            Bytes::from_static(raw),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        let e = error(&body);
        assert_eq!(
            (e["type"].as_str(), e["code"].as_u64()),
            (Some("Bad Request"), Some(400))
        );
        assert_eq!(e["param"], param, "{body}");
        assert!(e["message"]
            .as_str()
            .unwrap()
            .starts_with("1 validation error:\n  {'type': "));
    }
    let (status, body) = send(
        addr,
        "POST",
        "/v1/completions",
        Some(json!({"max_tokens": 3})),
    )
    .await;
    assert_eq!(
        (status, error(&body)["param"].as_str()),
        (400, Some("prompt"))
    );
    let (status, body) = send(addr, "GET", "/v1/nothing", None).await;
    assert_eq!((status, body.as_str()), (404, r#"{"detail":"Not Found"}"#));

    // Lengths against the context (16384 tokens on `tiny`), as vLLM 0.33.0 checks them.
    let (tiny, _s) = start("tiny").await;
    let ask = |prompt: String, max_tokens: u64| {
        send(
            tiny.addr(),
            "POST",
            "/v1/completions",
            Some(
                json!({"model": "tiny", "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": true}),
            ),
        )
    };
    let (status, body) = ask("x".into(), 100_000).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        error(&body),
        json!({"message": "max_tokens=100000 cannot be greater than max_model_len=16384. Please request fewer output tokens.",
            "type": "BadRequestError", "param": "max_tokens", "code": 400})
    );
    let (status, body) = ask("x ".repeat(16_385), 10).await;
    assert_eq!(status, 400, "{body}");
    let e = error(&body);
    assert_eq!(e["param"], "input_tokens");
    assert!(e["message"]
        .as_str()
        .unwrap()
        .starts_with("This model's maximum context length is 16384 tokens. However, your prompt contains 16385 input tokens"));
    // Prompt and output together past the context: the output is cut to fit, not refused.
    let (status, body) = ask("x ".repeat(16_380), 100).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["usage"]["completion_tokens"], 4);
    assert_eq!(v["choices"][0]["finish_reason"], "length");
}

/// The role chunk is sent with the first token, not when the request arrives: a client that
/// starts TTFT at the first chunk with `choices` (as vLLM's older benchmark client does) measures
/// the same TTFT as one that waits for content. On the `fixed` preset the first token is due 50
/// ms after arrival; the role chunk must not come before it.
#[tokio::test]
async fn the_role_chunk_comes_with_the_first_token() {
    use hyper::body::Body as _;
    let (server, sim) = start("fixed").await;
    let stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let body = json!({"model": "fixed", "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 3, "ignore_eos": true, "stream": true});
    let req = Request::builder()
        .method("POST")
        .uri("/v1/chat/completions")
        .header("host", "localhost")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let t0 = std::time::Instant::now();
    let resp = sender.send_request(req).await.unwrap();
    let mut body = resp.into_body();
    let (mut text, mut role_at, mut content_at) = (String::new(), None, None);
    while !body.is_end_stream() {
        let Some(frame) = body.frame().await else {
            break;
        };
        let at = t0.elapsed();
        if let Ok(data) = frame.unwrap().into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
        if role_at.is_none() && text.contains("\"role\":\"assistant\"") {
            role_at = Some(at);
        }
        if content_at.is_none() && text.contains("\"delta\":{\"content\":\"") {
            content_at = Some(at);
        }
    }
    let (role_at, content_at) = (role_at.unwrap(), content_at.unwrap());
    // Timers never wake early, so 49 ms is a bound that cannot flake; before this change the
    // role chunk came at about 0 ms.
    assert!(
        role_at >= Duration::from_millis(49),
        "role chunk at {role_at:?}"
    );
    assert!(content_at >= role_at);
    // The two are written back to back; 5 ms leaves room for a busy machine.
    assert!(
        content_at - role_at < Duration::from_millis(5),
        "role at {role_at:?}, first content at {content_at:?}"
    );
    // The truth log still records the first token's time (not the role chunk's).
    let truth = &sim.trace()[0];
    assert_eq!(truth.token_ns.len(), 3);
    assert_eq!(truth.first_token_ns, Some(truth.token_ns[0]));
    assert!(truth.token_ns[0] - truth.arrival_ns >= 49_000_000);
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
    // Token k is due 50 + 10 k ms after arrival, on an absolute schedule: a timer never wakes
    // early, and a late wake-up does not push the next token back. 10 ms of lateness is allowed
    // because this machine is shared with builds (a 12 ms bound on each gap flaked).
    let arrival = chat["arrival_ns"].as_u64().unwrap();
    for (k, t) in tokens.iter().enumerate() {
        let due = 50.0 + 10.0 * k as f64;
        let at = (t - arrival) as f64 / 1e6;
        assert!(
            (due - 0.5..due + 10.0).contains(&at),
            "token {k} at {at} ms after arrival, due at {due} ms"
        );
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
    // The whole --describe: the price with its source, the engine, and the what-if.
    let text = SimConfig::preset("h100-llama-3.1-8b")
        .unwrap()
        .describe(1000, 200);
    for line in [
        "price:      $3.20 per GPU-hour × 1 GPU = $3.20 per hour (Hyperstack on-demand",
        "https://www.hyperstack.cloud/gpu-pricing on 2026-08-26",
        "single stream (short context): 7.70 ms per token",
        "what if every request has 1000 prompt and 200 output tokens:",
        "  saturation:    256 requests at once: min(max_num_seqs 256, KV capacity 426788 / 1200 tokens = 355)",
        "requests/s: the saturation rate",
        "per million output tokens at saturation ($3.20 per hour)",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    let text = SimConfig::preset("fixed")
        .unwrap()
        .with_max_running(2)
        .describe(10, 5);
    // 2 slots over 50 + 4 × 10 ms.
    assert!(text.contains("fixed schedule with 2 slots"), "{text}");
    assert!(
        text.contains("111 output tokens/s, 22.222 requests/s"),
        "{text}"
    );
    let list = tokenomics_sim::preset::list();
    assert!(
        list.contains("h100x4-llama-3.1-70b   $3.20/GPU-h × 4"),
        "{list}"
    );
    assert!(
        list.contains("H200 SXM 141 GB, $3.99 per GPU-hour"),
        "{list}"
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

/// The `vllm:num_requests_running` and `…_waiting` gauges of `/metrics`.
async fn running_and_waiting(addr: std::net::SocketAddr, model: &str) -> (u64, u64) {
    let (_, metrics) = send(addr, "GET", "/metrics", None).await;
    let gauge = |name: &str| {
        let prefix = format!("vllm:{name}{{model_name=\"{model}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
            .unwrap()
    };
    (gauge("num_requests_running"), gauge("num_requests_waiting"))
}

/// A fixed schedule with two slots (`max_running`): four requests at once of five tokens each,
/// 100 ms to the first token and 25 ms between tokens, so a slot serves a request for
/// S = 100 + 4 × 25 = 200 ms. The first two start on arrival; the other two wait, first come,
/// first served, and each starts exactly when the request whose slot it takes was due to end — S
/// after that one started, to the microsecond in the truth log, however late the server's tasks
/// woke — and gets its first token 100 ms later: S + 100 ms after the first two got theirs. While
/// the first two run, `/metrics` counts two running and two waiting. Two of the four are
/// streamed and two are not: both paths queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_queue_a_fixed_schedule_first_come_first_served() {
    let cfg = SimConfig::preset("fixed")
        .unwrap()
        .with_fixed_schedule(0.100, 0.025)
        .with_max_running(2)
        .with_trace(true);
    let (server, sim) = Simulator::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.addr();
    let sent = std::time::Instant::now();
    let requests: Vec<_> = (0..4)
        .map(|i| {
            let body = json!({"model": "fixed", "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 5, "ignore_eos": true, "stream": i % 2 == 0});
            tokio::spawn(
                async move { send(addr, "POST", "/v1/chat/completions", Some(body)).await },
            )
        })
        .collect();
    // The first two hold their slots for 200 ms: the gauges must show the queue within that.
    let mut seen = None;
    while sent.elapsed() < Duration::from_millis(190) {
        let gauges = running_and_waiting(addr, "fixed").await;
        if gauges == (2, 2) {
            seen = Some(gauges);
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(
        seen,
        Some((2, 2)),
        "two running and two waiting while the first two run"
    );
    for r in requests {
        let (status, body) = r.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(running_and_waiting(addr, "fixed").await, (0, 0));

    let trace = sim.trace();
    assert_eq!(trace.len(), 4);
    let mut starts: Vec<u64> = trace.iter().map(|t| t.scheduled_ns.unwrap()).collect();
    starts.sort_unstable();
    const S: i64 = 200_000_000;
    // The waiters start when their predecessors were due to end: S after them, within 1 µs.
    for (waiter, first) in [(2, 0), (3, 1)] {
        let gap = starts[waiter] as i64 - starts[first] as i64;
        assert!(
            (gap - S).abs() <= 1_000,
            "slot handed on {gap} ns after its start"
        );
    }
    // The first two did not wait (they start when they asked, a few ms after arrival at most).
    for t in &trace {
        let start = t.scheduled_ns.unwrap();
        let first = t.first_token_ns.unwrap();
        // Each first token is due 100 ms after its start; timers never fire early, and 15 ms of
        // lateness is allowed on a machine shared with builds.
        let ttft = (first - start) as f64 / 1e6;
        assert!(
            (99.5..115.0).contains(&ttft),
            "first token {ttft} ms after its start"
        );
        assert_eq!(t.token_ns.len(), 5);
        if start < starts[2] {
            assert!(start - t.arrival_ns < 50_000_000, "{t:?}");
        } else {
            // It arrived with the others and waited: its first token comes S + 100 ms after the
            // first pair's start, at least 250 ms after it arrived (50 ms for the arrivals'
            // spread).
            assert!(first - t.arrival_ns >= 250_000_000, "{t:?}");
        }
    }
}

/// A client that leaves while its request waits for a slot gives up its place: with one slot,
/// A runs (S = 200 ms), B waits and its client goes away, C arrives later and starts exactly
/// when A was due to end. B's truth record says it never started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_client_leaves_gives_up_its_slot() {
    use hyper::body::Body as _;
    let cfg = SimConfig::preset("fixed")
        .unwrap()
        .with_fixed_schedule(0.100, 0.025)
        .with_max_running(1)
        .with_trace(true);
    let (server, sim) = Simulator::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.addr();
    let body = |stream: bool| {
        json!({"model": "fixed", "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 5, "ignore_eos": true, "stream": stream})
    };
    let a =
        tokio::spawn(
            async move { send(addr, "POST", "/v1/chat/completions", Some(body(true))).await },
        );
    tokio::time::sleep(Duration::from_millis(20)).await;
    // B: streamed, so the headers come at once; the client reads them and hangs up.
    {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        let conn = tokio::spawn(conn);
        let req = Request::builder()
            .method("POST")
            .uri("/v1/chat/completions")
            .header("host", "localhost")
            .body(Full::new(Bytes::from(body(true).to_string())))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(!resp.body().is_end_stream());
        // A holds the slot for 200 ms; B's task queues for it as soon as it runs.
        let deadline = std::time::Instant::now() + Duration::from_millis(150);
        while running_and_waiting(addr, "fixed").await != (1, 1) {
            assert!(std::time::Instant::now() < deadline, "B never queued");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        drop(resp);
        drop(sender);
        conn.abort();
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let c =
        tokio::spawn(
            async move { send(addr, "POST", "/v1/chat/completions", Some(body(false))).await },
        );
    assert_eq!(a.await.unwrap().0, 200);
    assert_eq!(c.await.unwrap().0, 200);
    // B's record is written once its task has seen the client go.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while sim.trace().len() < 3 {
        assert!(std::time::Instant::now() < deadline, "{:?}", sim.trace());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let trace = sim.trace();
    let by_arrival = {
        let mut t = trace.clone();
        t.sort_by_key(|r| r.arrival_ns);
        t
    };
    let (a, b, c) = (&by_arrival[0], &by_arrival[1], &by_arrival[2]);
    assert!(a.completed && c.completed);
    assert!(
        !b.completed && b.scheduled_ns.is_none() && b.token_ns.is_empty(),
        "{b:?}"
    );
    let gap = c.scheduled_ns.unwrap() as i64 - a.scheduled_ns.unwrap() as i64;
    assert!(
        (gap - 200_000_000).abs() <= 1_000,
        "C started {gap} ns after A"
    );
}

/// The value of the sample `name{labels}` in a Prometheus text.
fn sample(metrics: &str, series: &str) -> f64 {
    let prefix = format!("{series} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
}

/// A conversation on the engine: each turn's prompt begins with the whole of the turn before
/// (the template's tokens, every earlier message, in order), so the next turn finds all of the
/// previous prompt's full blocks in the prefix cache. Responses say how many prompt tokens were
/// cached (`usage.prompt_tokens_details.cached_tokens`, streamed and not), the truth log says
/// the same, and `/metrics` counts the lookups and hits in tokens: hits are the sum of the
/// responses' cached tokens, queries the sum of their prompt tokens. With prefix caching off
/// nothing is cached and responses have no details.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_cache_hits_reach_usage_metrics_and_the_truth_log() {
    let system = "You are a careful assistant. ".repeat(12);
    let turn = |messages: &Value, stream: bool| {
        json!({"model": "tiny", "messages": messages, "max_tokens": 3, "ignore_eos": true,
            "stream": stream, "stream_options": {"include_usage": true}})
    };
    // The usage of a whole answer or of a stream's usage chunk.
    let usage = |body: &str, stream: bool| -> Value {
        if stream {
            let events = data_events(body);
            events[events.len() - 2]["usage"].clone()
        } else {
            serde_json::from_str::<Value>(body).unwrap()["usage"].clone()
        }
    };
    let cfg = SimConfig::preset("tiny")
        .unwrap()
        .with_time_scale(20.0)
        .with_trace(true);
    let (server, sim) = Simulator::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.addr();
    let mut messages = json!([{"role": "system", "content": system}, {"role": "user", "content": "What is two and two?"}]);
    let (mut prompts, mut cached) = (Vec::new(), Vec::new());
    for (k, stream) in [false, true, false].into_iter().enumerate() {
        let (status, body) = send(
            addr,
            "POST",
            "/v1/chat/completions",
            Some(turn(&messages, stream)),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let u = usage(&body, stream);
        let prompt = u["prompt_tokens"].as_u64().unwrap();
        let hit = u["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap();
        if let Some(&before) = prompts.last() {
            // Every full block of the previous turn's prompt, and no more.
            assert_eq!(hit, before / 16 * 16, "turn {k}: {u}");
        } else {
            assert_eq!(hit, 0, "nothing cached yet");
        }
        prompts.push(prompt);
        cached.push(hit);
        let answer = if stream {
            data_events(&body)
                .iter()
                .filter_map(|e| {
                    e["choices"][0]["delta"]["content"]
                        .as_str()
                        .map(String::from)
                })
                .collect::<String>()
        } else {
            serde_json::from_str::<Value>(&body).unwrap()["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let list = messages.as_array_mut().unwrap();
        list.push(json!({"role": "assistant", "content": answer}));
        list.push(json!({"role": "user", "content": format!("And question {k}?")}));
    }
    assert!(cached[1] > 0 && cached[2] > cached[1], "{cached:?}");
    // The same prompt twice as a text completion: all its full blocks but the last token's.
    let text = json!({"model": "tiny", "prompt": system, "max_tokens": 2});
    for again in [false, true] {
        let (_, body) = send(addr, "POST", "/v1/completions", Some(text.clone())).await;
        let u = usage(&body, false);
        let (prompt, hit) = (
            u["prompt_tokens"].as_u64().unwrap(),
            u["prompt_tokens_details"]["cached_tokens"]
                .as_u64()
                .unwrap(),
        );
        assert_eq!(hit, if again { (prompt - 1) / 16 * 16 } else { 0 });
        prompts.push(prompt);
        cached.push(hit);
    }
    let trace = sim.trace();
    let mut logged: Vec<(u64, u64)> = trace.iter().map(|t| (t.id, t.cached_tokens)).collect();
    logged.sort_unstable();
    assert_eq!(
        logged.iter().map(|l| l.1).collect::<Vec<_>>(),
        cached,
        "the truth log"
    );
    let (_, metrics) = send(addr, "GET", "/metrics", None).await;
    let m = "{model_name=\"tiny\"}";
    assert_eq!(
        sample(&metrics, &format!("vllm:prefix_cache_hits_total{m}")),
        cached.iter().sum::<u64>() as f64
    );
    assert_eq!(
        sample(&metrics, &format!("vllm:prefix_cache_queries_total{m}")),
        prompts.iter().sum::<u64>() as f64
    );
    assert!(metrics.contains("# TYPE vllm:prefix_cache_hits_total counter"));
    assert_eq!(
        sample(
            &metrics,
            "vllm:request_success_total{model_name=\"tiny\",finished_reason=\"length\"}"
        ),
        5.0
    );

    // Off: no lookups, no details in the answers.
    let cfg = SimConfig::preset("tiny")
        .unwrap()
        .with_time_scale(20.0)
        .with_prefix_caching(false);
    let (off, _sim) = Simulator::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    for stream in [false, true, false] {
        let (_, body) = send(
            off.addr(),
            "POST",
            "/v1/chat/completions",
            Some(turn(&messages, stream)),
        )
        .await;
        let u = usage(&body, stream);
        assert!(u.get("prompt_tokens_details").is_none(), "{u}");
    }
    let (_, metrics) = send(off.addr(), "GET", "/metrics", None).await;
    assert_eq!(
        sample(&metrics, &format!("vllm:prefix_cache_queries_total{m}")),
        0.0
    );
}

/// A client that cancels a stream after a few tokens: the engine drops the request before its
/// next step, so the running gauge and the KV cache's usage return to 0 while the prompt's
/// computed blocks stay in the prefix cache; `/metrics` counts one abort (beside the one request
/// that ended at its length) and the truth log says the request did not complete. A client that
/// leaves a request that is not streamed is an abort too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_stream_is_an_abort_and_frees_its_cache() {
    use hyper::body::Body as _;
    let cfg = SimConfig::preset("tiny").unwrap().with_trace(true);
    let (server, sim) = Simulator::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.addr();
    let content = "Tell me a long story about a lighthouse keeper and a storm. ".repeat(8);
    let body = |stream: bool| {
        json!({"model": "tiny", "messages": [{"role": "user", "content": content}],
            "max_tokens": 4000, "ignore_eos": true, "stream": stream})
    };
    let (status, short) = send(
        addr,
        "POST",
        "/v1/chat/completions",
        Some(
            json!({"model": "tiny", "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 2, "ignore_eos": true}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{short}");
    {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        let conn = tokio::spawn(conn);
        let req = Request::builder()
            .method("POST")
            .uri("/v1/chat/completions")
            .header("host", "localhost")
            .body(Full::new(Bytes::from(body(true).to_string())))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        let mut tokens = 0;
        while tokens < 3 {
            let frame = body.frame().await.unwrap().unwrap();
            if let Ok(data) = frame.into_data() {
                tokens += std::str::from_utf8(&data)
                    .unwrap()
                    .matches("\"delta\":{\"content\":\"")
                    .count();
            }
        }
        assert!(!body.is_end_stream());
        // While it runs, its prompt and output are reserved.
        let (_, metrics) = send(addr, "GET", "/metrics", None).await;
        assert!(sample(&metrics, "vllm:gpu_cache_usage_perc{model_name=\"tiny\"}") > 0.0);
        drop(body);
        drop(sender);
        conn.abort();
    }
    // Gone before its next step: nothing runs and nothing holds the cache, within a few steps.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let metrics = loop {
        let (_, metrics) = send(addr, "GET", "/metrics", None).await;
        let aborts = sample(
            &metrics,
            "vllm:request_success_total{model_name=\"tiny\",finished_reason=\"abort\"}",
        );
        if aborts == 1.0 && running_and_waiting(addr, "tiny").await == (0, 0) {
            break metrics;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let m = "model_name=\"tiny\"";
    assert_eq!(
        sample(&metrics, &format!("vllm:gpu_cache_usage_perc{{{m}}}")),
        0.0
    );
    for (reason, n) in [("stop", 0.0), ("length", 1.0), ("abort", 1.0)] {
        assert_eq!(
            sample(
                &metrics,
                &format!("vllm:request_success_total{{{m},finished_reason=\"{reason}\"}}")
            ),
            n,
            "{reason}"
        );
    }
    let records = sim.trace();
    let cancelled = records.iter().find(|t| t.stream).unwrap();
    assert!(!cancelled.completed, "{cancelled:?}");
    assert!(
        (3..4000).contains(&cancelled.completion_tokens),
        "{cancelled:?}"
    );
    assert!(cancelled.end_ns >= *cancelled.token_ns.last().unwrap());
    // Its computed prompt blocks stay cached, evictable: the same prompt finds them.
    let blocks = sample(
        &metrics,
        &format!("tokenomics_sim:prefix_cache_blocks{{{m}}}"),
    );
    assert!(blocks >= (cancelled.prompt_tokens / 16) as f64, "{blocks}");

    // Not streamed: the client gives up while the answer is being generated. It finds the
    // cancelled stream's blocks (the counter says so on admission), and leaves well after its
    // first token (due one ~6 ms step later).
    let hits = format!("vllm:prefix_cache_hits_total{{{m}}}");
    let before = sample(&metrics, &hits);
    let whole = body(false);
    let waiting =
        tokio::spawn(async move { send(addr, "POST", "/v1/chat/completions", Some(whole)).await });
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, metrics) = send(addr, "GET", "/metrics", None).await;
        if sample(&metrics, &hits) > before {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    waiting.abort();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while sim.trace().len() < 3 {
        assert!(std::time::Instant::now() < deadline, "{:?}", sim.trace());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let left = sim
        .trace()
        .into_iter()
        .find(|t| !t.stream && t.prompt_tokens > 100)
        .unwrap();
    assert!(!left.completed && left.completion_tokens < 4000, "{left:?}");
    assert_eq!(
        left.cached_tokens,
        (cancelled.prompt_tokens - 1) / 16 * 16,
        "the cancelled stream's blocks were still cached"
    );
    let (_, metrics) = send(addr, "GET", "/metrics", None).await;
    assert_eq!(
        sample(
            &metrics,
            &format!("vllm:request_success_total{{{m},finished_reason=\"abort\"}}")
        ),
        2.0
    );
}
