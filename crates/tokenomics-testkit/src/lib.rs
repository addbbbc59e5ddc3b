//! A scripted OpenAI-compatible server for tests: every request's timing and fault is decided by
//! a script, the server counts its peak in-flight requests, and it logs when each token really
//! left, so a test can hold what a client measured against what happened.
//!
//! Only other crates' `[dev-dependencies]` use this crate.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::Value;
use tokenomics_sim::http::{
    error_response, json_response, read_body, sse_response, Handler, HandlerFuture, Server, SimBody,
};
use tokenomics_sim::timer::sleep_until;
use tokenomics_sim::wire::{self, ChunkWriter};

pub mod book;
pub mod cli;
pub mod hub;
pub mod schema;
pub use hub::MockHub;

/// What a request's answer does wrong, if anything.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    None,
    /// Answer with this status and an OpenAI error body.
    Status(u16),
    /// Answer 429 with `Retry-After` set to this many whole seconds.
    RateLimited(u64),
    /// 200 with a body (or, streamed, an event) that is not JSON.
    BrokenJson,
    /// Abort the connection after this many tokens (a chunked body cut short).
    CutAfter(u64),
    /// Send an `event: error` after this many tokens.
    ErrorEventAfter(u64),
    /// End the stream cleanly after this many tokens but without finish reason or `[DONE]`.
    EndWithoutDone(u64),
    /// Send nothing at all for this long before the headers.
    DelayHeaders(Duration),
    /// Stop sending (but keep the connection open) after this many tokens, for this long.
    StallAfter(u64, Duration),
    /// Send a single SSE line of this many bytes as a comment before the tokens.
    HugeLine(usize),
}

/// How one request is answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// Arrival → first token.
    pub ttft: Duration,
    /// Between tokens.
    pub itl: Duration,
    /// Output tokens (default: the request's `max_tokens`).
    pub tokens: Option<u64>,
    /// Tokens per SSE event.
    pub tokens_per_event: u64,
    /// Send the usage chunk when the request asks for it.
    pub usage: bool,
    pub fault: Fault,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            ttft: Duration::from_millis(20),
            itl: Duration::from_millis(5),
            tokens: None,
            tokens_per_event: 1,
            usage: true,
            fault: Fault::None,
        }
    }
}

/// What really happened to one request, server side.
#[derive(Debug, Clone)]
pub struct Truth {
    pub index: u64,
    pub arrival: Instant,
    /// When each token-carrying event was handed to the connection.
    pub events: Vec<Instant>,
    pub end: Option<Instant>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// The content of the request's last message (or its prompt), to match it to a client record.
    pub prompt: String,
}

type ScriptFn = dyn Fn(u64, &Value) -> Script + Send + Sync;

struct State {
    script: Box<ScriptFn>,
    requests: AtomicU64,
    in_flight: AtomicI64,
    peak: AtomicI64,
    truth: Mutex<Vec<Truth>>,
    /// `Authorization` header and path of every request, in arrival order.
    seen: Mutex<Vec<(Option<String>, String)>>,
    embedding_dim: Mutex<Box<dyn Fn(u64) -> usize + Send + Sync>>,
}

struct Scripted(Arc<State>);

/// A running scripted server. It runs on a runtime of its own, on its own thread, so that the
/// client under test does not delay the server's sends (as a separate server process would not).
pub struct ScriptedServer {
    api_base: String,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl ScriptedServer {
    /// Serves on a free loopback port; `script(i, body)` decides request `i` (0-based, in order of
    /// arrival).
    pub async fn start(script: impl Fn(u64, &Value) -> Script + Send + Sync + 'static) -> Self {
        let state = Arc::new(State {
            script: Box::new(script),
            requests: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            peak: AtomicI64::new(0),
            truth: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            embedding_dim: Mutex::new(Box::new(|_| 16)),
        });
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handler = Arc::new(Scripted(state.clone()));
        std::thread::Builder::new()
            .name("scripted-server".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("server runtime");
                rt.block_on(async move {
                    let addr: SocketAddr = "127.0.0.1:0".parse().expect("loopback address");
                    let server = Server::bind(addr, handler)
                        .await
                        .expect("bind a loopback port");
                    let _ = ready_tx.send(server.api_base());
                    let _ = stopped.await;
                    server.shutdown().await;
                });
            })
            .expect("server thread");
        let api_base = ready_rx.await.expect("server started");
        Self {
            api_base,
            state,
            stop: Some(stop),
        }
    }

    /// Every request answered by the same script.
    pub async fn uniform(script: Script) -> Self {
        Self::start(move |_, _| script.clone()).await
    }

    /// Embedding vectors of request `i` have `dim(i)` values.
    pub fn set_embedding_dim(&self, dim: impl Fn(u64) -> usize + Send + Sync + 'static) {
        if let Ok(mut d) = self.state.embedding_dim.lock() {
            *d = Box::new(dim);
        }
    }

    pub fn api_base(&self) -> String {
        self.api_base.clone()
    }
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }
    pub fn peak_in_flight(&self) -> u64 {
        self.state.peak.load(Ordering::SeqCst).max(0) as u64
    }
    /// `(Authorization header, path)` of every request received, in arrival order.
    pub fn seen(&self) -> Vec<(Option<String>, String)> {
        self.state
            .seen
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    pub fn truth(&self) -> Vec<Truth> {
        let mut t = self
            .state
            .truth
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default();
        t.sort_by_key(|t| t.index);
        t
    }
}

fn rate_limited(secs: u64) -> Response<SimBody> {
    let mut resp = error_response(StatusCode::TOO_MANY_REQUESTS, "scripted rate limit");
    if let Ok(v) = http::HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(http::header::RETRY_AFTER, v);
    }
    resp
}

fn last_text(v: &Value) -> String {
    if let Some(m) = v
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| m.last())
    {
        return wire::content_text(m.get("content").unwrap_or(&Value::Null));
    }
    v.get("prompt")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A loopback URL on which nothing listens (connections are refused).
pub fn refused_api_base() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}/v1")
}

struct InFlight(Arc<State>);
impl InFlight {
    fn new(s: &Arc<State>) -> Self {
        let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        s.peak.fetch_max(now, Ordering::SeqCst);
        Self(s.clone())
    }
}
impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Handler for Scripted {
    fn handle(self: Arc<Self>, req: Request<Incoming>) -> HandlerFuture {
        Box::pin(async move {
            let path = req.uri().path().to_string();
            let auth = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if let Ok(mut seen) = self.0.seen.lock() {
                seen.push((auth, path.clone()));
            }
            match (req.method().clone(), path.as_str()) {
                (Method::GET, "/v1/models") => {
                    json_response(StatusCode::OK, &wire::models_body(&["test-model"]))
                }
                (Method::POST, "/v1/chat/completions") => {
                    self.0.clone().completion(req, true).await
                }
                (Method::POST, "/v1/completions") => self.0.clone().completion(req, false).await,
                (Method::POST, "/v1/embeddings") => self.0.clone().embeddings(req).await,
                _ => error_response(StatusCode::NOT_FOUND, "no such route"),
            }
        })
    }
}

impl State {
    async fn completion(self: Arc<Self>, req: Request<Incoming>, chat: bool) -> Response<SimBody> {
        let arrival = Instant::now();
        let guard = InFlight::new(&self);
        let index = self.requests.fetch_add(1, Ordering::SeqCst);
        let body = read_body(req).await.unwrap_or_default();
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let script = (self.script)(index, &value);
        let prompt_text = last_text(&value);
        let parsed: Option<wire::CompletionRequest> = serde_json::from_value(value).ok();
        let prompt = parsed.as_ref().map_or(0, |p| p.prompt_tokens());
        let tokens = script
            .tokens
            .unwrap_or_else(|| parsed.as_ref().map_or(16, |p| p.max_tokens()));
        let stream = parsed.as_ref().is_some_and(|p| p.stream);
        let include_usage = script.usage && parsed.as_ref().is_some_and(|p| p.include_usage());
        match script.fault {
            Fault::Status(code) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return error_response(status, &format!("scripted failure {code}"));
            }
            Fault::RateLimited(secs) => return rate_limited(secs),
            Fault::DelayHeaders(d) => tokio::time::sleep(d).await,
            Fault::BrokenJson if !stream => {
                return Response::new(SimBody::full(Bytes::from_static(b"{\"choices\": [oops")));
            }
            _ => {}
        }
        let mut truth = Truth {
            index,
            arrival,
            events: Vec::new(),
            end: None,
            prompt_tokens: prompt,
            completion_tokens: 0,
            prompt: prompt_text,
        };
        if !stream {
            sleep_until(arrival + script.ttft + script.itl * tokens.saturating_sub(1) as u32).await;
            truth.completion_tokens = tokens;
            truth.end = Some(Instant::now());
            self.push(truth);
            drop(guard);
            return json_response(
                StatusCode::OK,
                &wire::completion_body(
                    "cmpl-test",
                    "test-model",
                    0,
                    chat,
                    prompt,
                    tokens,
                    "length",
                ),
            );
        }
        let (tx, resp) = sse_response(16, None);
        tokio::spawn(async move {
            let _guard = guard;
            let w = ChunkWriter::new(&format!("cmpl-{index}"), "test-model", 0, chat);
            let _ = async {
                if let Fault::HugeLine(n) = script.fault {
                    let mut line = vec![b':'; n];
                    line.extend_from_slice(b"\n");
                    tx.send(Ok(Bytes::from(line))).await.ok()?;
                }
                if chat {
                    tx.send(Ok(w.role())).await.ok()?;
                }
                let per = script.tokens_per_event.max(1);
                let mut sent = 0u64;
                let mut k = 0u32;
                while sent < tokens {
                    match script.fault {
                        Fault::CutAfter(n) if sent >= n => {
                            tx.send(Err(std::io::Error::other("scripted cut"))).await.ok()?;
                            return None;
                        }
                        Fault::ErrorEventAfter(n) if sent >= n => {
                            tx.send(Ok(Bytes::from_static(b"event: error\ndata: {\"error\": {\"message\": \"scripted error event\"}}\n\n"))).await.ok()?;
                            return Some(());
                        }
                        Fault::EndWithoutDone(n) if sent >= n => return Some(()),
                        Fault::BrokenJson if sent >= 1 => {
                            tx.send(Ok(Bytes::from_static(b"data: {\"choices\": [oops\n\n"))).await.ok()?;
                            return Some(());
                        }
                        Fault::StallAfter(n, d) if sent == n => tokio::time::sleep(d).await,
                        _ => {}
                    }
                    sleep_until(arrival + script.ttft + script.itl * k).await;
                    let count = per.min(tokens - sent);
                    tx.send(Ok(w.tokens(sent, count))).await.ok()?;
                    truth.events.push(Instant::now());
                    sent += count;
                    k += 1;
                }
                truth.completion_tokens = sent;
                tx.send(Ok(w.finish("length"))).await.ok()?;
                if include_usage {
                    tx.send(Ok(w.usage(prompt, sent))).await.ok()?;
                }
                tx.send(Ok(ChunkWriter::done())).await.ok()
            }
            .await;
            truth.end = Some(Instant::now());
            self.push(truth);
        });
        resp
    }

    async fn embeddings(self: Arc<Self>, req: Request<Incoming>) -> Response<SimBody> {
        let arrival = Instant::now();
        let _guard = InFlight::new(&self);
        let index = self.requests.fetch_add(1, Ordering::SeqCst);
        let body = read_body(req).await.unwrap_or_default();
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let script = (self.script)(index, &value);
        if let Fault::Status(code) = script.fault {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error_response(status, &format!("scripted failure {code}"));
        }
        if let Fault::RateLimited(secs) = script.fault {
            return rate_limited(secs);
        }
        if script.fault == Fault::BrokenJson {
            return Response::new(SimBody::full(Bytes::from_static(b"{\"data\": [oops")));
        }
        let texts = serde_json::from_value::<wire::EmbeddingsRequest>(value)
            .map(|r| r.texts())
            .unwrap_or_default();
        let counts: Vec<u64> = texts.iter().map(|t| wire::count_tokens(t).max(1)).collect();
        sleep_until(arrival + script.ttft).await;
        let dim = self.embedding_dim.lock().map(|d| d(index)).unwrap_or(16);
        let mut body = wire::embeddings_body("test-model", &counts, dim);
        if !script.usage {
            let mut v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.remove("usage");
            }
            body = Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
        }
        self.push(Truth {
            index,
            arrival,
            events: Vec::new(),
            end: Some(Instant::now()),
            prompt_tokens: counts.iter().sum(),
            completion_tokens: 0,
            prompt: texts.join("\n"),
        });
        Response::new(SimBody::full(body))
    }

    fn push(&self, t: Truth) {
        if let Ok(mut v) = self.truth.lock() {
            v.push(t);
        }
    }
}

/// A simulator started on a runtime and thread of its own, as a separate process would run it
/// (one worker thread: on a two-core machine client and server each get a core). It serves until
/// the test process ends.
pub struct SimThread {
    pub addr: SocketAddr,
    pub api_base: String,
    pub sim: Arc<tokenomics_sim::Simulator>,
}

/// Starts `config` on 127.0.0.1 in a [`SimThread`].
pub fn start_sim_thread(config: tokenomics_sim::SimConfig) -> SimThread {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (server, sim) =
                tokenomics_sim::Simulator::start(config, "127.0.0.1:0".parse().unwrap())
                    .await
                    .unwrap();
            tx.send(SimThread {
                addr: server.addr(),
                api_base: server.api_base(),
                sim,
            })
            .unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}
