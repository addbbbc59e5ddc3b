//! A simulated OpenAI-compatible inference server: the built-in default of the benchmarks, the
//! oracle of their tests, and a capacity-planning toy ("what would this GPU give at batch 64?").
//!
//! [`Simulator`] answers `GET /v1/models`, `POST /v1/chat/completions`, `POST /v1/completions`
//! (streamed or not), `POST /v1/embeddings`, `POST /tokenize`, `GET /metrics` (Prometheus text
//! with vLLM's metric names) and `GET /sim/trace` (the truth log). How it times its answers is a
//! [`preset::Behaviour`]: no delay at all (`instant`), a fixed per-request schedule (`fixed`), or
//! the continuous-batching [`engine`] on a roofline model of a named GPU and model.
//!
//! `max_running` gives any of them a capacity: at most N requests served at once, the others
//! waiting first come, first served (the fixed schedule's slots, the engine's `max_num_seqs`).
//! [`SimConfig::predict`] says what the preset gives a workload — time to first token and per
//! token alone, and the saturation rate — from the same step model, and
//! [`preset::Preset::cost_basis`] what its GPUs cost by the hour.
//!
//! The engine caches prompt prefixes as vLLM V1 does ([`prefix`]: full blocks of
//! `block_tokens` keyed by a hash chained over the prefix, kept within the KV capacity, least
//! recently used evicted first): a request whose leading blocks are cached skips their prefill,
//! and says so in `usage.prompt_tokens_details.cached_tokens`. A request whose client goes away
//! is dropped before the engine's next step and frees its KV cache at once; `/metrics` counts
//! it under `vllm:request_success_total{finished_reason="abort"}`.
//!
//! The truth log records, per request, the server-side times of arrival, first token, every token
//! and end, in nanoseconds since the server started, so a test can compare what a client measured
//! with what happened. `time_scale` runs the model faster (or slower) than real time.
//!
//! The server is hyper's HTTP/1.1 on the caller's tokio runtime ([`http::Server`]), so a test or
//! a CI harness starts one in-process on a free loopback port ([`Simulator::start`] on port 0, or
//! [`start_local`] with a preset's name), points a client or a proxy at [`Server::api_base`], and
//! reads the truth log with [`Simulator::trace`]. The engine's step loop runs on a thread of its
//! own, since it keeps time to the microsecond.
//!
//! # Examples
//!
//! One chat completion against the `instant` preset, written by hand over HTTP/1.1, then the
//! truth log's record of it:
//!
//! ```
//! use std::net::SocketAddr;
//!
//! use tokenomics_sim::{SimConfig, Simulator};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = SimConfig::preset("instant")?.with_trace(true);
//! let (server, sim) = Simulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0))).await?;
//! assert!(server.api_base().starts_with("http://127.0.0.1:"));
//!
//! let body = r#"{"messages":[{"role":"user","content":"Hello there"}],"max_tokens":4}"#;
//! let mut conn = tokio::net::TcpStream::connect(server.addr()).await?;
//! let request = format!(
//!     "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n\
//!      Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
//!     body.len()
//! );
//! conn.write_all(request.as_bytes()).await?;
//! let mut response = String::new();
//! conn.read_to_string(&mut response).await?;
//! assert!(response.starts_with("HTTP/1.1 200"), "{response}");
//! assert!(response.contains(sim.served_model()));
//!
//! // What the server saw: times in nanoseconds since it started, on the monotonic clock.
//! let trace = sim.trace();
//! assert_eq!(trace.len(), 1);
//! assert_eq!(trace[0].route, "chat");
//! assert!(trace[0].end_ns >= trace[0].arrival_ns);
//! assert!((1..=4).contains(&trace[0].completion_tokens));
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod calibration;
pub mod engine;
pub mod http;
mod metrics;
pub mod prefix;
pub mod preset;
mod routes;
mod slots;
pub mod timer;
pub mod wire;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::http::{Method, Request, Response, StatusCode};
use bytes::Bytes;
use hyper::body::Incoming;
use serde::Serialize;

use crate::engine::EngineHandle;
use crate::http::{json_response, not_found, request_error, Handler, HandlerFuture, SimBody};
use crate::metrics::TtftHistogram;
use crate::preset::{Behaviour, Prediction, Preset};
use crate::slots::Slots;

pub use crate::http::Server;
pub use crate::slots::MAX_SLOTS;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No preset has this name; the second field lists the names there are.
    #[error("unknown preset {0:?}; presets: {1}")]
    UnknownPreset(String, String),
    /// A configuration that cannot run (a time scale that is not a positive number, a capacity
    /// out of range, …), said in one line.
    #[error("{0}")]
    Invalid(String),
    /// A request the simulator cannot serve.
    #[error("{0}")]
    Request(String),
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
}

/// How to run a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The GPU, model and timing behaviour to simulate (see [`preset`]).
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
    /// At most this many requests served at once (1..=[`MAX_SLOTS`]); None: the preset's own
    /// limit. A fixed schedule (or `instant`) gets this many slots: the others wait first come,
    /// first served, and a request's schedule (first token `ttft_s` after it gets its slot, then
    /// one every `itl_s`) starts when it gets one; the slot is free once its last token is sent.
    /// An engine runs at most this many sequences (it replaces the preset's `max_num_seqs`).
    pub max_running: Option<u64>,
    /// Automatic prefix caching in the engine (default on, as in vLLM V1): a prompt's leading
    /// full blocks found in the cache are not prefilled (see [`prefix`]). A fixed schedule or
    /// `instant` has no engine and caches nothing (their `cached_tokens` are 0).
    pub prefix_caching: bool,
    /// Tokens per KV-cache block, the unit of prefix caching (vLLM's `--block-size`; default
    /// [`prefix::DEFAULT_BLOCK_TOKENS`], at most [`prefix::MAX_BLOCK_TOKENS`]).
    pub block_tokens: u64,
}

impl SimConfig {
    /// `preset` with the defaults: its own model id, real time (`time_scale` 1), seed 0, no
    /// truth log, the preset's output lengths and capacity, prefix caching on with
    /// [`prefix::DEFAULT_BLOCK_TOKENS`]-token blocks.
    pub fn new(preset: Preset) -> Self {
        Self {
            preset,
            served_model: None,
            time_scale: 1.0,
            seed: 0,
            trace: false,
            mean_output_tokens: None,
            event_padding_bytes: 0,
            max_running: None,
            prefix_caching: true,
            block_tokens: prefix::DEFAULT_BLOCK_TOKENS,
        }
    }

    /// With automatic prefix caching on or off (see [`SimConfig::prefix_caching`]).
    pub fn with_prefix_caching(mut self, on: bool) -> Self {
        self.prefix_caching = on;
        self
    }

    /// With KV-cache blocks of `n` tokens (see [`SimConfig::block_tokens`]).
    pub fn with_block_tokens(mut self, n: u64) -> Self {
        self.block_tokens = n;
        self
    }

    /// With at most `n` requests served at once (see [`SimConfig::max_running`]).
    pub fn with_max_running(mut self, n: u64) -> Self {
        self.max_running = Some(n);
        self
    }

    /// Serving a fixed schedule instead of the preset's behaviour: first token `ttft_s` seconds
    /// after a request starts, then one every `itl_s` seconds.
    pub fn with_fixed_schedule(mut self, ttft_s: f64, itl_s: f64) -> Self {
        self.preset.behaviour = Behaviour::Fixed { ttft_s, itl_s };
        self
    }

    /// Model seconds per real second.
    pub fn with_time_scale(mut self, time_scale: f64) -> Self {
        self.time_scale = time_scale;
        self
    }

    /// Seed of the output-length draws.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Keeping the truth log (`/sim/trace`).
    pub fn with_trace(mut self, trace: bool) -> Self {
        self.trace = trace;
        self
    }

    /// The behaviour this configuration serves: the preset's, with an engine's `max_num_seqs`
    /// replaced by `max_running` when set (a fixed schedule's slots are not part of its
    /// behaviour; see [`SimConfig::max_running`]).
    pub fn behaviour(&self) -> Behaviour {
        match (&self.preset.behaviour, self.max_running) {
            (Behaviour::Engine(e), Some(n)) => {
                let mut e = e.clone();
                e.max_num_seqs = usize::try_from(n).unwrap_or(usize::MAX);
                Behaviour::Engine(e)
            }
            (b, _) => b.clone(),
        }
    }

    /// What this server would give requests of `input_tokens` prompt and `output_tokens` output
    /// tokens each, in *real* seconds (model time divided by `time_scale`): alone, and at
    /// saturation (see [`Prediction`]). Fails when such a request cannot run (it does not fit
    /// the engine's KV cache, or asks for no output).
    pub fn predict(&self, input_tokens: u64, output_tokens: u64) -> Result<Prediction, Error> {
        let p = self
            .behaviour()
            .predict(input_tokens, output_tokens, self.max_running)?;
        Ok(p.scaled(self.time_scale))
    }

    /// The configuration of the preset called `name`.
    pub fn preset(name: &str) -> Result<Self, Error> {
        preset::preset(name)
            .map(Self::new)
            .ok_or_else(|| Error::UnknownPreset(name.to_string(), preset::preset_names()))
    }
}

/// One request as the server saw it. Times in nanoseconds since the server started.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TraceRecord {
    /// The request's number on this server, from 0 in order of arrival.
    pub id: u64,
    /// The route that served it: `chat`, `completions` or `embeddings`.
    pub route: &'static str,
    /// Whether the response was streamed (server-sent events).
    pub stream: bool,
    /// When its headers were read, ns since the server started (monotonic clock).
    pub arrival_ns: u64,
    /// When the first token's event was handed to the connection (ns since the start); `None`
    /// for an embedding, a request that produced no token, or one whose client left first.
    pub first_token_ns: Option<u64>,
    /// When each token's event was handed to the connection.
    pub token_ns: Vec<u64>,
    /// When the last byte of the response was handed to the connection (ns since the start).
    pub end_ns: u64,
    /// Prompt tokens, counted as `usage.prompt_tokens` reports them.
    pub prompt_tokens: u64,
    /// Prompt tokens served from the engine's prefix cache (not prefilled); 0 without an engine
    /// or with prefix caching off.
    pub cached_tokens: u64,
    /// Completion tokens generated (as `usage.completion_tokens` reports them; those sent
    /// before an abort).
    pub completion_tokens: u64,
    /// `false` when the client went away before the end (an abort); `end_ns` is then when the
    /// server saw it go.
    pub completed: bool,
    /// When the request's schedule started: on a fixed schedule (and `instant`), when it got
    /// its slot (its arrival, give or take reading the body, when the server has no slots or one
    /// was free). None for the engine, which schedules on its own, and for requests whose client
    /// left before they started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_ns: Option<u64>,
    /// [`wire::text_hash`] of the last message's text (or the prompt), to match a client's record.
    pub prompt_hash: u64,
    /// `arrival_ns` and `first_token_ns` as Unix seconds (the server's start time on the wall
    /// clock plus monotonic time since), to join the log with a client's records across
    /// processes.
    pub arrival_unix: f64,
    /// `first_token_ns` as Unix seconds, on the same terms as `arrival_unix`.
    pub first_token_unix: Option<f64>,
    /// The request's `X-Request-Id` header, when it had one (vLLM names its request after it),
    /// so a client that sends one can join its records with this log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The simulated server. Create with [`Simulator::start`].
pub struct Simulator {
    config: SimConfig,
    served_model: String,
    started: Instant,
    /// `started` on the wall clock, Unix seconds.
    started_unix: f64,
    engine: Option<EngineHandle>,
    /// A fixed schedule's time to first token and between tokens, in real time.
    fixed: Option<(Duration, Duration)>,
    /// The slots of a fixed schedule (or `instant`) with `max_running`.
    slots: Option<Arc<Slots>>,
    next_id: AtomicU64,
    in_flight: AtomicI64,
    peak_in_flight: AtomicI64,
    prompt_tokens_total: AtomicU64,
    generation_tokens_total: AtomicU64,
    requests_total: AtomicU64,
    /// Requests ended, by [`FinishReason`] (`vllm:request_success_total`).
    finished: [AtomicU64; 3],
    ttft: Mutex<TtftHistogram>,
    trace: Mutex<Vec<TraceRecord>>,
}

/// How a request ended, as vLLM's `finished_reason` label names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The sequence ended on its end-of-sequence token (an embedding ends so too).
    Stop,
    /// It reached `max_tokens`.
    Length,
    /// Its client went away first.
    Abort,
}

impl FinishReason {
    /// Every reason, in the order of the `/metrics` series.
    pub const ALL: [FinishReason; 3] = [Self::Stop, Self::Length, Self::Abort];

    /// The label value: `stop`, `length`, `abort`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::Abort => "abort",
        }
    }
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
        if let Some(n) = config.max_running {
            if !(1..=MAX_SLOTS).contains(&n) {
                return Err(Error::Invalid(format!(
                    "max_running must be between 1 and {MAX_SLOTS}, got {n}"
                )));
            }
        }
        if !(1..=prefix::MAX_BLOCK_TOKENS).contains(&config.block_tokens) {
            return Err(Error::Invalid(format!(
                "block_tokens must be between 1 and {}, got {}",
                prefix::MAX_BLOCK_TOKENS,
                config.block_tokens
            )));
        }
        // The wall clock read beside the monotonic one, so that the truth's Unix times
        // (`arrival_unix`) are its instants shifted by one offset, not by the set-up below too.
        let started = Instant::now();
        let started_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let behaviour = config.behaviour();
        let mut fixed = None;
        let mut slots = None;
        let engine = match &behaviour {
            Behaviour::Engine(spec) => Some(EngineHandle::spawn(
                spec.clone(),
                config.time_scale,
                config.block_tokens,
            )),
            Behaviour::Fixed { ttft_s, itl_s } => {
                let real = |what: &str, s: f64| {
                    Duration::try_from_secs_f64(s / config.time_scale).map_err(|_| {
                        Error::Invalid(format!(
                            "the fixed schedule's {what} must be a number of seconds, got {s}"
                        ))
                    })
                };
                fixed = Some((real("ttft_s", *ttft_s)?, real("itl_s", *itl_s)?));
                None
            }
            Behaviour::Instant => None,
        };
        if engine.is_none() {
            if let Some(n) = config.max_running {
                slots = Some(Arc::new(Slots::new(n, started)?));
            }
        }
        let served_model = config
            .served_model
            .clone()
            .unwrap_or_else(|| config.preset.served_model.to_string());
        let sim = Arc::new(Simulator {
            config,
            served_model,
            started,
            started_unix,
            engine,
            fixed,
            slots,
            next_id: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            peak_in_flight: AtomicI64::new(0),
            prompt_tokens_total: AtomicU64::new(0),
            generation_tokens_total: AtomicU64::new(0),
            requests_total: AtomicU64::new(0),
            finished: Default::default(),
            ttft: Mutex::new(TtftHistogram::new()),
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

    /// The model id this server answers to (and lists in `/v1/models`).
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

    /// Requests ended with `reason` since the start.
    pub fn finished(&self, reason: FinishReason) -> u64 {
        self.finished[reason as usize].load(Ordering::Relaxed)
    }

    fn count_finished(&self, reason: FinishReason) {
        self.finished[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn record(&self, mut rec: TraceRecord) {
        rec.arrival_unix = self.started_unix + rec.arrival_ns as f64 / 1e9;
        rec.first_token_unix = rec
            .first_token_ns
            .map(|t| self.started_unix + t as f64 / 1e9);
        if let Some(first) = rec.first_token_ns {
            if let Ok(mut h) = self.ttft.lock() {
                h.observe(first.saturating_sub(rec.arrival_ns) as f64 / 1e9);
            }
        }
        if self.config.trace {
            if let Ok(mut t) = self.trace.lock() {
                t.push(rec);
            }
        }
    }
    /// vLLM's answer to a model it does not serve (a request without a model gets the served
    /// one).
    fn check_model(&self, model: &str) -> Option<Response<SimBody>> {
        (!model.is_empty() && model != self.served_model).then(|| {
            request_error(&wire::RequestError::unknown_model(
                model,
                &self.served_model,
            ))
        })
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
                // FastAPI's answer for a path it has no route for.
                _ => not_found(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_running_caps_an_engine_and_the_prediction_follows() {
        let cfg = SimConfig::preset("tiny").unwrap();
        assert_eq!(cfg.predict(100, 40).unwrap().saturation.unwrap().batch, 16);
        let cfg = cfg.with_max_running(4);
        let Behaviour::Engine(e) = cfg.behaviour() else {
            panic!("tiny runs the engine")
        };
        assert_eq!(e.max_num_seqs, 4);
        assert!(
            cfg.prefix_caching && cfg.block_tokens == 16,
            "vLLM V1's defaults"
        );
        let sat = cfg.predict(100, 40).unwrap().saturation.unwrap();
        assert_eq!(sat.batch, 4);
        // In real time: ten times the rate at time scale 10.
        let fast = cfg.clone().with_time_scale(10.0).predict(100, 40).unwrap();
        let ratio = fast.saturation.unwrap().requests_per_s / sat.requests_per_s;
        assert!((ratio - 10.0).abs() < 1e-9);
        // A fixed schedule's slots are its capacity: N / (ttft + (L − 1)·itl).
        let fixed = SimConfig::preset("fixed")
            .unwrap()
            .with_fixed_schedule(0.05, 0.01)
            .with_max_running(2);
        let s = fixed.predict(10, 5).unwrap().saturation.unwrap();
        assert!((s.requests_per_s - 2.0 / 0.09).abs() < 1e-9);
    }

    #[tokio::test]
    async fn bad_capacities_and_schedules_are_refused() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        for cfg in [
            SimConfig::preset("fixed").unwrap().with_max_running(0),
            SimConfig::preset("tiny")
                .unwrap()
                .with_max_running(MAX_SLOTS + 1),
            SimConfig::preset("fixed")
                .unwrap()
                .with_fixed_schedule(f64::NAN, 0.01),
            SimConfig::preset("fixed")
                .unwrap()
                .with_fixed_schedule(0.05, -1.0),
            SimConfig::preset("tiny").unwrap().with_block_tokens(0),
            SimConfig::preset("tiny")
                .unwrap()
                .with_block_tokens(prefix::MAX_BLOCK_TOKENS + 1),
        ] {
            assert!(matches!(
                Simulator::start(cfg, addr).await,
                Err(Error::Invalid(_))
            ));
        }
    }
}
