//! A simulated OpenAI-compatible inference server: the built-in default of the benchmarks, the
//! oracle of their tests, and a capacity-planning toy ("what would this GPU give at batch 64?").
//!
//! [`Simulator`] answers `GET /v1/models`, `POST /v1/chat/completions`, `POST /v1/completions`
//! (streamed or not), `POST /v1/embeddings`, `POST /tokenize`, `GET /metrics` (Prometheus text
//! with vLLM's metric names) and `GET /sim/trace` (the truth log). How it times its answers is a
//! [`preset::Behaviour`]: no delay at all (`instant`), a fixed per-request schedule (`fixed`), or
//! the continuous-batching [`engine`] on a roofline model of a named GPU and model.
//!
//! The truth log records, per request, the server-side times of arrival, first token, every token
//! and end, in nanoseconds since the server started, so a test can compare what a client measured
//! with what happened. `time_scale` runs the model faster (or slower) than real time.

pub mod calibration;
pub mod engine;
pub mod http;
pub mod preset;
pub mod timer;
pub mod wire;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::http::{Method, Request, Response, StatusCode};
use bytes::Bytes;
use hyper::body::Incoming;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma};
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::engine::{EngineEvent, EngineHandle};
use crate::http::{error_response, json_response, sse_response, Handler, HandlerFuture, SimBody};
use crate::preset::{Behaviour, Preset};
use crate::wire::{ChunkWriter, CompletionRequest};

pub use crate::http::Server;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown preset {0:?}; presets: {1}")]
    UnknownPreset(String, String),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// How to run a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub preset: Preset,
    /// The model id to serve (default: the preset's).
    pub served_model: Option<String>,
    /// Model seconds per real second (2.0 runs twice as fast as the model says).
    pub time_scale: f64,
    /// Seed of the output-length draws.
    pub seed: u64,
    /// Keep the truth log (`/sim/trace`).
    pub trace: bool,
    /// Override of the preset's mean output length.
    pub mean_output_tokens: Option<f64>,
    /// Bytes of an SSE comment line sent before every streamed token (0: none). Lets a client be
    /// tested with huge lines, which it must skip in time linear in their size.
    pub event_padding_bytes: usize,
}

impl SimConfig {
    pub fn new(preset: Preset) -> Self {
        Self {
            preset,
            served_model: None,
            time_scale: 1.0,
            seed: 0,
            trace: false,
            mean_output_tokens: None,
            event_padding_bytes: 0,
        }
    }

    /// The configuration of the preset called `name`.
    pub fn preset(name: &str) -> Result<Self, Error> {
        preset::preset(name)
            .map(Self::new)
            .ok_or_else(|| Error::UnknownPreset(name.to_string(), preset::preset_names()))
    }
}

/// One request as the server saw it. Times in nanoseconds since the server started.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TraceRecord {
    pub id: u64,
    pub route: &'static str,
    pub stream: bool,
    pub arrival_ns: u64,
    pub first_token_ns: Option<u64>,
    /// When each token's event was handed to the connection.
    pub token_ns: Vec<u64>,
    pub end_ns: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// `false` when the client went away before the end.
    pub completed: bool,
    /// [`wire::text_hash`] of the last message's text (or the prompt), to match a client's record.
    pub prompt_hash: u64,
    /// `arrival_ns` and `first_token_ns` as Unix seconds (the server's start time on the wall
    /// clock plus monotonic time since), to join the log with a client's records across
    /// processes.
    pub arrival_unix: f64,
    pub first_token_unix: Option<f64>,
}

/// vLLM's TTFT histogram buckets, seconds.
const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// The simulated server. Create with [`Simulator::start`].
pub struct Simulator {
    config: SimConfig,
    served_model: String,
    started: Instant,
    /// `started` on the wall clock, Unix seconds.
    started_unix: f64,
    engine: Option<EngineHandle>,
    next_id: AtomicU64,
    in_flight: AtomicI64,
    peak_in_flight: AtomicI64,
    prompt_tokens_total: AtomicU64,
    generation_tokens_total: AtomicU64,
    requests_total: AtomicU64,
    ttft: Mutex<Histogram>,
    trace: Mutex<Vec<TraceRecord>>,
}

/// Decrements the in-flight gauge when a request ends, however it ends.
struct InFlight(Arc<Simulator>);
impl InFlight {
    fn new(sim: &Arc<Simulator>) -> Self {
        let now = sim.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        sim.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(sim.clone())
    }
}
impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Paces tokens by the behaviour.
enum Pacer {
    Instant,
    Fixed {
        start: Instant,
        ttft: Duration,
        itl: Duration,
        next: u32,
    },
    Engine(mpsc::UnboundedReceiver<EngineEvent>),
}

impl Pacer {
    /// Waits for the next token; `false` if the engine ended the sequence.
    async fn next_token(&mut self) -> bool {
        match self {
            Pacer::Instant => true,
            Pacer::Fixed {
                start,
                ttft,
                itl,
                next,
            } => {
                timer::sleep_until(*start + *ttft + *itl * *next).await;
                *next += 1;
                true
            }
            Pacer::Engine(rx) => matches!(rx.recv().await, Some(EngineEvent::Token(_))),
        }
    }

    /// Waits until a prefill-only request is done.
    async fn prefill_done(&mut self) {
        match self {
            Pacer::Instant => {}
            Pacer::Fixed { start, ttft, .. } => timer::sleep_until(*start + *ttft).await,
            Pacer::Engine(rx) => while let Some(EngineEvent::Token(_)) = rx.recv().await {},
        }
    }
}

/// Starts preset `preset` in-process on a free loopback port, serving `model` (default: the
/// preset's own id), as the benchmarks' `--simulate` does. Keep the returned server alive for as
/// long as it is used; the string is the model id it serves.
pub async fn start_local(
    preset: &str,
    model: Option<&str>,
    time_scale: f64,
    seed: u64,
) -> Result<(Server, String), Error> {
    let mut cfg = SimConfig::preset(preset)?;
    cfg.time_scale = time_scale;
    cfg.seed = seed;
    let served = model.map_or_else(|| cfg.preset.served_model.to_string(), str::to_string);
    cfg.served_model = Some(served.clone());
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let (server, _) = Simulator::start(cfg, addr).await?;
    Ok((server, served))
}

impl Simulator {
    /// Builds the simulator (starting its engine on the current runtime) and serves it on `addr`.
    pub async fn start(
        config: SimConfig,
        addr: SocketAddr,
    ) -> Result<(Server, Arc<Simulator>), Error> {
        if !(config.time_scale.is_finite() && config.time_scale > 0.0) {
            return Err(Error::Invalid(format!(
                "time_scale must be a positive number, got {}",
                config.time_scale
            )));
        }
        let engine = match &config.preset.behaviour {
            Behaviour::Engine(spec) => Some(EngineHandle::spawn(spec.clone(), config.time_scale)),
            _ => None,
        };
        let served_model = config
            .served_model
            .clone()
            .unwrap_or_else(|| config.preset.served_model.to_string());
        let sim = Arc::new(Simulator {
            config,
            served_model,
            started: Instant::now(),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            engine,
            next_id: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            peak_in_flight: AtomicI64::new(0),
            prompt_tokens_total: AtomicU64::new(0),
            generation_tokens_total: AtomicU64::new(0),
            requests_total: AtomicU64::new(0),
            ttft: Mutex::new(Histogram {
                counts: vec![0; TTFT_BUCKETS.len()],
                ..Histogram::default()
            }),
            trace: Mutex::new(Vec::new()),
        });
        let server = Server::bind(addr, sim.clone())
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        Ok((server, sim))
    }

    /// The instant the truth log's times count from.
    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn served_model(&self) -> &str {
        &self.served_model
    }

    /// The most requests that were in flight at once since the start.
    pub fn peak_in_flight(&self) -> u64 {
        self.peak_in_flight.load(Ordering::SeqCst).max(0) as u64
    }

    /// Requests received (all routes that generate or embed).
    pub fn requests_total(&self) -> u64 {
        self.requests_total.load(Ordering::SeqCst)
    }

    /// A copy of the truth log (empty unless `trace` was on).
    pub fn trace(&self) -> Vec<TraceRecord> {
        self.trace.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// The longest prompt + completion a request may ask for: 128k tokens, or the KV cache's
    /// capacity when that is smaller (a sequence must fit the cache).
    pub fn max_model_len(&self) -> u64 {
        self.engine
            .as_ref()
            .map_or(131_072, |e| e.spec.kv_capacity_tokens.min(131_072))
    }

    fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    fn record(&self, mut rec: TraceRecord) {
        rec.arrival_unix = self.started_unix + rec.arrival_ns as f64 / 1e9;
        rec.first_token_unix = rec
            .first_token_ns
            .map(|t| self.started_unix + t as f64 / 1e9);
        if let Some(first) = rec.first_token_ns {
            if let Ok(mut h) = self.ttft.lock() {
                let s = (first - rec.arrival_ns) as f64 / 1e9;
                if let Some(i) = TTFT_BUCKETS.iter().position(|&b| s <= b) {
                    h.counts[i] += 1;
                }
                h.sum += s;
                h.count += 1;
            }
        }
        if self.config.trace {
            if let Ok(mut t) = self.trace.lock() {
                t.push(rec);
            }
        }
    }

    fn pacer(&self, prompt_tokens: u64, output_tokens: u64) -> Result<Pacer, String> {
        let scale = self.config.time_scale;
        Ok(match &self.config.preset.behaviour {
            Behaviour::Instant => Pacer::Instant,
            Behaviour::Fixed { ttft_s, itl_s } => Pacer::Fixed {
                start: Instant::now(),
                ttft: Duration::from_secs_f64(ttft_s / scale),
                itl: Duration::from_secs_f64(itl_s / scale),
                next: 0,
            },
            Behaviour::Engine(_) => match &self.engine {
                Some(e) => Pacer::Engine(e.submit(prompt_tokens, output_tokens)?),
                None => return Err("engine not running".into()),
            },
        })
    }

    /// Output length: `max_tokens` when forced, else a seeded Gamma draw (coefficient of
    /// variation 0.5) around the mean, capped at `max_tokens`.
    fn output_tokens(&self, id: u64, req: &CompletionRequest) -> u64 {
        let max = req.max_tokens();
        if req.forced_length() {
            return max;
        }
        let mean = self
            .config
            .mean_output_tokens
            .unwrap_or(self.config.preset.mean_output_tokens)
            .max(1.0);
        let mut rng =
            ChaCha8Rng::seed_from_u64(self.config.seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let draw = Gamma::new(4.0, mean / 4.0)
            .map(|g| g.sample(&mut rng))
            .unwrap_or(mean);
        (draw.round() as u64).clamp(1, max)
    }

    async fn completion(
        self: Arc<Self>,
        req: Request<Incoming>,
        route: &'static str,
    ) -> Response<SimBody> {
        let arrival_ns = self.now_ns();
        let guard = InFlight::new(&self);
        let body = match http::read_body(req).await {
            Ok(b) => b,
            Err(e) => return error_response(StatusCode::BAD_REQUEST, &e),
        };
        let parsed: CompletionRequest = match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return error_response(StatusCode::BAD_REQUEST, &format!("invalid JSON body: {e}"))
            }
        };
        if let Some(resp) = self.check_model(&parsed.model) {
            return resp;
        }
        let chat = route == "chat";
        if chat != parsed.is_chat() {
            let need = if chat { "messages" } else { "prompt" };
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("the request has no {need:?}"),
            );
        }
        let prompt = parsed.prompt_tokens();
        let max_len = self.max_model_len();
        if prompt + parsed.max_tokens() > max_len {
            // vLLM's answer to a request that cannot fit the context window.
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!(
                    "This model's maximum context length is {max_len} tokens. However, you requested {} tokens ({prompt} in the messages, {} in the completion). Please reduce the length of the messages or completion.",
                    prompt + parsed.max_tokens(),
                    parsed.max_tokens()
                ),
            );
        }
        self.requests_total.fetch_add(1, Ordering::Relaxed);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let target = self.output_tokens(id, &parsed);
        self.prompt_tokens_total
            .fetch_add(prompt, Ordering::Relaxed);
        let mut pacer = match self.pacer(prompt, target) {
            Ok(p) => p,
            Err(e) => return error_response(StatusCode::BAD_REQUEST, &e),
        };
        let reason = if target >= parsed.max_tokens() {
            "length"
        } else {
            "stop"
        };
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let cmpl_id = format!("cmpl-sim-{id}");
        let mut trace = TraceRecord {
            id,
            route,
            stream: parsed.stream,
            arrival_ns,
            first_token_ns: None,
            token_ns: Vec::new(),
            end_ns: 0,
            prompt_tokens: prompt,
            completion_tokens: 0,
            completed: false,
            prompt_hash: wire::text_hash(&parsed.last_text()),
            arrival_unix: 0.0,
            first_token_unix: None,
        };
        let keep_times = self.config.trace;
        if !parsed.stream {
            for _ in 0..target {
                if !pacer.next_token().await {
                    break;
                }
                let t = self.now_ns();
                trace.first_token_ns.get_or_insert(t);
                if keep_times {
                    trace.token_ns.push(t);
                }
                trace.completion_tokens += 1;
            }
            self.generation_tokens_total
                .fetch_add(trace.completion_tokens, Ordering::Relaxed);
            let body = wire::completion_body(
                &cmpl_id,
                &parsed.model,
                created,
                chat,
                prompt,
                trace.completion_tokens,
                reason,
            );
            trace.end_ns = self.now_ns();
            trace.completed = true;
            self.record(trace);
            drop(guard);
            return json_response(StatusCode::OK, &body);
        }
        // With the truth log on, token times are taken when the connection takes each event to
        // write it (see `FrameStamps`); frames are role (chat), tokens, finish, usage, done.
        let stamps = keep_times.then(|| http::FrameStamps::new(self.started));
        let padding = (self.config.event_padding_bytes > 0).then(|| {
            let mut line = vec![b'x'; self.config.event_padding_bytes + 2];
            line[0] = b':';
            *line.last_mut().unwrap_or(&mut 0) = b'\n';
            Bytes::from(line)
        });
        let (tx, resp) = sse_response(16, stamps.clone());
        let sim = self.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let writer = ChunkWriter::new(&cmpl_id, &parsed.model, created, chat);
            let ok = async {
                if chat {
                    tx.send(Ok(writer.role())).await.ok()?;
                }
                for k in 0..target {
                    if !pacer.next_token().await {
                        break;
                    }
                    if let Some(p) = &padding {
                        tx.send(Ok(p.clone())).await.ok()?;
                    }
                    tx.send(Ok(writer.token(wire::output_word(k)))).await.ok()?;
                    if trace.first_token_ns.is_none() {
                        trace.first_token_ns = Some(sim.now_ns());
                    }
                    trace.completion_tokens += 1;
                    sim.generation_tokens_total.fetch_add(1, Ordering::Relaxed);
                }
                tx.send(Ok(writer.finish(reason))).await.ok()?;
                if parsed.include_usage() {
                    tx.send(Ok(writer.usage(prompt, trace.completion_tokens)))
                        .await
                        .ok()?;
                }
                tx.send(Ok(ChunkWriter::done())).await.ok()
            }
            .await;
            drop(tx); // ends the body
            if let Some(stamps) = stamps {
                stamps.body_done().await;
                let times = stamps.times();
                let skip = usize::from(chat);
                let n = trace.completion_tokens as usize;
                // With padding, every token frame follows its padding frame.
                let per = if padding.is_some() { 2 } else { 1 };
                trace.token_ns = times
                    .iter()
                    .skip(skip + per - 1)
                    .step_by(per)
                    .take(n)
                    .copied()
                    .collect();
                trace.first_token_ns = trace.token_ns.first().copied().or(trace.first_token_ns);
                trace.end_ns = times.last().copied().unwrap_or_else(|| sim.now_ns());
            } else {
                trace.end_ns = sim.now_ns();
            }
            trace.completed = ok.is_some();
            sim.record(trace);
        });
        resp
    }

    fn check_model(&self, model: &str) -> Option<Response<SimBody>> {
        (model != self.served_model).then(|| {
            error_response(
                StatusCode::NOT_FOUND,
                &format!(
                    "The model `{model}` does not exist; this server offers `{}`.",
                    self.served_model
                ),
            )
        })
    }

    async fn embeddings(self: Arc<Self>, req: Request<Incoming>) -> Response<SimBody> {
        let arrival_ns = self.now_ns();
        let _guard = InFlight::new(&self);
        let body = match http::read_body(req).await {
            Ok(b) => b,
            Err(e) => return error_response(StatusCode::BAD_REQUEST, &e),
        };
        let parsed: wire::EmbeddingsRequest = match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return error_response(StatusCode::BAD_REQUEST, &format!("invalid JSON body: {e}"))
            }
        };
        if let Some(resp) = self.check_model(&parsed.model) {
            return resp;
        }
        self.requests_total.fetch_add(1, Ordering::Relaxed);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let counts: Vec<u64> = parsed
            .texts()
            .iter()
            .map(|t| wire::count_tokens(t).max(1))
            .collect();
        let total: u64 = counts.iter().sum();
        self.prompt_tokens_total.fetch_add(total, Ordering::Relaxed);
        match self.pacer(total, 0) {
            Ok(mut p) => p.prefill_done().await,
            Err(e) => return error_response(StatusCode::BAD_REQUEST, &e),
        }
        let body = wire::embeddings_body(&parsed.model, &counts, self.config.preset.embedding_dim);
        self.record(TraceRecord {
            id,
            route: "embeddings",
            stream: false,
            arrival_ns,
            first_token_ns: None,
            token_ns: Vec::new(),
            end_ns: self.now_ns(),
            prompt_tokens: total,
            completion_tokens: 0,
            completed: true,
            prompt_hash: wire::text_hash(&parsed.texts().join("\n")),
            arrival_unix: 0.0,
            first_token_unix: None,
        });
        let mut resp = Response::new(SimBody::full(body));
        resp.headers_mut().insert(
            ::http::header::CONTENT_TYPE,
            ::http::HeaderValue::from_static("application/json"),
        );
        resp
    }

    /// vLLM/SGLang (`{"prompt"}` or `{"messages"}` → `{"count","max_model_len","tokens"}`) and
    /// llama.cpp (`{"content"}` → `{"tokens"}`) shapes.
    async fn tokenize(self: Arc<Self>, req: Request<Incoming>) -> Response<SimBody> {
        let body = match http::read_body(req).await {
            Ok(b) => b,
            Err(e) => return error_response(StatusCode::BAD_REQUEST, &e),
        };
        let v: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return error_response(StatusCode::BAD_REQUEST, &format!("invalid JSON body: {e}"))
            }
        };
        if let Some(content) = v.get("content").and_then(|c| c.as_str()) {
            return json_response(StatusCode::OK, &json!({"tokens": wire::tokenize(content)}));
        }
        let tokens: Vec<u32> = if let Some(p) = v.get("prompt").and_then(|p| p.as_str()) {
            wire::tokenize(p)
        } else if v.get("messages").is_some() {
            match serde_json::from_value::<CompletionRequest>(v.clone()) {
                Ok(r) => (0..r.prompt_tokens() as u32).collect(),
                Err(e) => return error_response(StatusCode::BAD_REQUEST, &e.to_string()),
            }
        } else {
            return error_response(
                StatusCode::BAD_REQUEST,
                "expected \"prompt\", \"messages\" or \"content\"",
            );
        };
        let max_model_len = self.max_model_len();
        json_response(
            StatusCode::OK,
            &json!({"count": tokens.len(), "max_model_len": max_model_len, "tokens": tokens}),
        )
    }

    fn metrics(&self) -> String {
        use std::fmt::Write;
        let m = format!("model_name=\"{}\"", self.served_model);
        let (running, waiting, kv) = match &self.engine {
            Some(e) => (
                e.gauges.running.load(Ordering::Relaxed) as i64,
                e.gauges.waiting.load(Ordering::Relaxed) as i64,
                e.kv_usage(),
            ),
            None => (self.in_flight.load(Ordering::Relaxed), 0, 0.0),
        };
        let mut s = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = write!(
                s,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{{m}}} {value}\n"
            );
        };
        metric(
            "vllm:num_requests_running",
            "gauge",
            "Number of requests in model execution batches.",
            running.to_string(),
        );
        metric(
            "vllm:num_requests_waiting",
            "gauge",
            "Number of requests waiting to be processed.",
            waiting.to_string(),
        );
        metric(
            "vllm:gpu_cache_usage_perc",
            "gauge",
            "GPU KV-cache usage. 1 means 100 percent usage.",
            format!("{kv:.6}"),
        );
        metric(
            "vllm:prompt_tokens_total",
            "counter",
            "Number of prefill tokens processed.",
            self.prompt_tokens_total.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "vllm:generation_tokens_total",
            "counter",
            "Number of generation tokens processed.",
            self.generation_tokens_total
                .load(Ordering::Relaxed)
                .to_string(),
        );
        metric(
            "tokenomics_sim:peak_requests_in_flight",
            "gauge",
            "Most requests in flight at once since the start.",
            self.peak_in_flight().to_string(),
        );
        let name = "vllm:time_to_first_token_seconds";
        let _ = write!(
            s,
            "# HELP {name} Histogram of time to first token in seconds.\n# TYPE {name} histogram\n"
        );
        if let Ok(h) = self.ttft.lock() {
            let mut cumulative = 0;
            for (b, c) in TTFT_BUCKETS.iter().zip(&h.counts) {
                cumulative += c;
                let _ = writeln!(s, "{name}_bucket{{{m},le=\"{b}\"}} {cumulative}");
            }
            let _ = writeln!(s, "{name}_bucket{{{m},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(s, "{name}_sum{{{m}}} {}", h.sum);
            let _ = writeln!(s, "{name}_count{{{m}}} {}", h.count);
        }
        s
    }

    fn trace_jsonl(&self) -> Bytes {
        let mut out = Vec::new();
        for r in self.trace() {
            if serde_json::to_writer(&mut out, &r).is_ok() {
                out.push(b'\n');
            }
        }
        Bytes::from(out)
    }
}

impl Handler for Simulator {
    fn handle(self: Arc<Self>, req: Request<Incoming>) -> HandlerFuture {
        Box::pin(async move {
            let path = req.uri().path().to_string();
            let path = path.trim_end_matches('/');
            match (req.method(), path) {
                (&Method::POST, "/v1/chat/completions") => self.completion(req, "chat").await,
                (&Method::POST, "/v1/completions") => self.completion(req, "completions").await,
                (&Method::POST, "/v1/embeddings") => self.embeddings(req).await,
                (&Method::POST, "/tokenize" | "/v1/tokenize" | "/extras/tokenize") => {
                    self.tokenize(req).await
                }
                (&Method::GET, "/v1/models") => {
                    json_response(StatusCode::OK, &wire::models_body(&[&self.served_model]))
                }
                (&Method::GET, "/health") => Response::new(SimBody::full(Bytes::new())),
                (&Method::GET, "/metrics") => {
                    let mut r = Response::new(SimBody::full(self.metrics()));
                    r.headers_mut().insert(
                        ::http::header::CONTENT_TYPE,
                        ::http::HeaderValue::from_static("text/plain; version=0.0.4"),
                    );
                    r
                }
                (&Method::GET, "/sim/trace") => Response::new(SimBody::full(self.trace_jsonl())),
                _ => error_response(
                    StatusCode::NOT_FOUND,
                    &format!("no route {} {path}", req.method()),
                ),
            }
        })
    }
}
