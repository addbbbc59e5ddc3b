//! The routes that generate: chat and text completions (streamed or not), embeddings, and the
//! tokenize endpoint. Each request is timed by its [`Pacer`]: no delay, a fixed schedule, or the
//! continuous-batching engine; without the engine, a server with `max_running` makes a request
//! wait for one of its slots (`crate::slots`) before its schedule starts. Every request's truth
//! record is written, and its end counted by reason, when it ends however it ends (see
//! `Recording`): a client that goes away makes it an abort.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::http::{Request, Response, StatusCode};
use bytes::Bytes;
use hyper::body::Incoming;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma};
use serde_json::json;
use tokio::sync::mpsc;

use crate::engine::EngineEvent;
use crate::http::{self, error_response, json_response, request_error, sse_response, SimBody};
use crate::slots::{Slot, Slots};
use crate::wire::{self, ChunkWriter, CompletionRequest};
use crate::{timer, Error, FinishReason, InFlight, Simulator, TraceRecord};

/// Paces tokens by the behaviour, and holds the request's slot when the server has slots.
enum Pacer {
    Instant {
        slot: Option<Slot>,
    },
    Fixed {
        start: Instant,
        ttft: Duration,
        itl: Duration,
        next: u32,
        slot: Option<Slot>,
    },
    Engine {
        events: mpsc::UnboundedReceiver<EngineEvent>,
        /// Prompt tokens the engine found in its prefix cache (known once it admitted the
        /// request).
        cached_tokens: u64,
    },
}

impl Pacer {
    /// Waits (first come, first served) for a slot when the server has slots, and starts the
    /// schedule of a request of `output_tokens` tokens there. Returns when the schedule started
    /// (None for the engine, which schedules on its own).
    async fn begin(
        &mut self,
        slots: Option<&Arc<Slots>>,
        output_tokens: u64,
    ) -> Result<Option<Instant>, Error> {
        let held = match slots {
            Some(s) if !matches!(self, Pacer::Engine { .. }) => Some(s.acquire().await?),
            _ => None,
        };
        Ok(match self {
            Pacer::Instant { slot } => {
                let start = held.as_ref().map_or_else(Instant::now, |s| s.start);
                *slot = held;
                Some(start)
            }
            Pacer::Fixed {
                start,
                ttft,
                itl,
                slot,
                ..
            } => {
                if let Some(mut held) = held {
                    *start = held.start;
                    // The last token is due ttft + (L − 1)·itl after the start (the end of the
                    // prefill for a request without output).
                    let gaps = u32::try_from(output_tokens.saturating_sub(1)).unwrap_or(u32::MAX);
                    held.ends_at(
                        itl.checked_mul(gaps)
                            .and_then(|d| d.checked_add(*ttft))
                            .and_then(|d| start.checked_add(d)),
                    );
                    *slot = Some(held);
                }
                Some(*start)
            }
            Pacer::Engine { .. } => None,
        })
    }

    /// Frees the slot, if any: the request has sent its last token (or ended).
    fn finish(&mut self) {
        match self {
            Pacer::Instant { slot } | Pacer::Fixed { slot, .. } => *slot = None,
            Pacer::Engine { .. } => {}
        }
    }

    /// Prompt tokens served from the prefix cache (0 but for an engine that found some).
    fn cached_tokens(&self) -> u64 {
        match self {
            Pacer::Engine { cached_tokens, .. } => *cached_tokens,
            _ => 0,
        }
    }

    /// Waits for the next token; `false` if the engine ended the sequence.
    async fn next_token(&mut self) -> bool {
        match self {
            Pacer::Instant { .. } => true,
            Pacer::Fixed {
                start,
                ttft,
                itl,
                next,
                ..
            } => {
                timer::sleep_until(*start + *ttft + *itl * *next).await;
                *next += 1;
                true
            }
            Pacer::Engine {
                events,
                cached_tokens,
            } => loop {
                match events.recv().await {
                    Some(EngineEvent::Token(_)) => return true,
                    Some(EngineEvent::Admitted { cached_tokens: n }) => *cached_tokens = n,
                    Some(EngineEvent::Finished(_)) | None => return false,
                }
            },
        }
    }

    /// Waits until a prefill-only request is done.
    async fn prefill_done(&mut self) {
        match self {
            Pacer::Instant { .. } => {}
            Pacer::Fixed { start, ttft, .. } => timer::sleep_until(*start + *ttft).await,
            Pacer::Engine { events, .. } => {
                while let Some(EngineEvent::Token(_) | EngineEvent::Admitted { .. }) =
                    events.recv().await
                {}
            }
        }
    }
}

/// A request's truth record while it is served. It is written, and the request's end counted by
/// reason, by [`Recording::finish`], or when the recording is dropped first — the handler was
/// dropped because its client went away — as an abort.
struct Recording {
    sim: Arc<Simulator>,
    trace: TraceRecord,
    ended: bool,
}

impl Recording {
    fn new(sim: &Arc<Simulator>, trace: TraceRecord) -> Self {
        Self {
            sim: sim.clone(),
            trace,
            ended: false,
        }
    }

    /// Writes the record: `completed` unless the reason is an abort, `end_ns` now unless set.
    fn finish(mut self, reason: FinishReason) {
        self.end(reason);
    }

    fn end(&mut self, reason: FinishReason) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let mut trace = std::mem::take(&mut self.trace);
        trace.completed = reason != FinishReason::Abort;
        if trace.end_ns == 0 {
            trace.end_ns = self.sim.now_ns();
        }
        self.sim.count_finished(reason);
        self.sim.record(trace);
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.end(FinishReason::Abort);
    }
}

impl std::ops::Deref for Recording {
    type Target = TraceRecord;
    fn deref(&self) -> &TraceRecord {
        &self.trace
    }
}

impl std::ops::DerefMut for Recording {
    fn deref_mut(&mut self) -> &mut TraceRecord {
        &mut self.trace
    }
}

impl Simulator {
    /// How a request of `prompt_tokens` tokens and `output_tokens` output is paced; `block_keys`
    /// are its prompt's full blocks for the engine's prefix cache (None: no lookup).
    fn pacer(
        &self,
        prompt_tokens: u64,
        output_tokens: u64,
        block_keys: Option<Vec<u64>>,
    ) -> Result<Pacer, Error> {
        Ok(match (&self.engine, self.fixed) {
            (Some(e), _) => Pacer::Engine {
                events: e.submit(prompt_tokens, output_tokens, block_keys)?,
                cached_tokens: 0,
            },
            (None, Some((ttft, itl))) => Pacer::Fixed {
                start: Instant::now(),
                ttft,
                itl,
                next: 0,
                slot: None,
            },
            (None, None) => Pacer::Instant { slot: None },
        })
    }

    /// Whether answers carry `usage.prompt_tokens_details.cached_tokens`: with an engine that
    /// caches prefixes (a fixed schedule or `instant` caches nothing, and says nothing).
    fn reports_cache(&self) -> bool {
        self.engine.is_some() && self.config.prefix_caching
    }

    /// Nanoseconds from the server's start to `at`.
    fn ns_at(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.started).as_nanos() as u64
    }

    /// Output length: `budget` (the request's `max_tokens` within the context) when forced
    /// (`ignore_eos`, or `min_tokens` at least `budget`), else a seeded Gamma draw (coefficient
    /// of variation 0.5) around the mean, between `min_tokens` and `budget`.
    fn output_tokens(&self, id: u64, req: &CompletionRequest, budget: u64) -> u64 {
        let min = req.min_tokens.unwrap_or(0).clamp(1, budget.max(1));
        if req.ignore_eos || min >= budget {
            return budget;
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
        (draw.round() as u64).clamp(min, budget)
    }

    pub(crate) async fn completion(
        self: Arc<Self>,
        req: Request<Incoming>,
        route: &'static str,
    ) -> Response<SimBody> {
        let arrival_ns = self.now_ns();
        let guard = InFlight::new(&self);
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect::<String>());
        let body = match http::read_body(req).await {
            Ok(b) => b,
            Err(e) => return error_response(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        let chat = route == "chat";
        // vLLM's order: the body's validation, the model, then the lengths.
        let parsed = match wire::parse_completion(&body, chat) {
            Ok(r) => r,
            Err(e) => return request_error(&e),
        };
        if let Some(resp) = self.check_model(&parsed.model) {
            return resp;
        }
        let ids = parsed.prompt_token_ids();
        let prompt = ids.len() as u64;
        let budget = match parsed.output_budget(prompt, self.max_model_len()) {
            Ok(b) => b,
            Err(e) => return request_error(&e),
        };
        self.requests_total.fetch_add(1, Ordering::Relaxed);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let target = self.output_tokens(id, &parsed, budget);
        self.prompt_tokens_total
            .fetch_add(prompt, Ordering::Relaxed);
        let keys = self
            .reports_cache()
            .then(|| crate::prefix::block_keys(&ids, self.config.block_tokens));
        drop(ids);
        let mut pacer = match self.pacer(prompt, target, keys) {
            Ok(p) => p,
            Err(e) => return request_error(&wire::RequestError::bad_request(e.to_string(), None)),
        };
        // A sequence shorter than its budget ended on the end-of-sequence token: the last token
        // counts, its text is empty (as vLLM streams it with `skip_special_tokens`).
        let finish = if target >= budget {
            FinishReason::Length
        } else {
            FinishReason::Stop
        };
        let reason = finish.as_str();
        let report_cache = self.reports_cache();
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let cmpl_id = format!("cmpl-sim-{id}");
        // vLLM names its own model in every response, whatever alias the request used.
        let model = self.served_model.clone();
        let mut trace = Recording::new(
            &self,
            TraceRecord {
                id,
                route,
                stream: parsed.stream,
                arrival_ns,
                first_token_ns: None,
                token_ns: Vec::new(),
                end_ns: 0,
                prompt_tokens: prompt,
                cached_tokens: 0,
                completion_tokens: 0,
                completed: false,
                scheduled_ns: None,
                prompt_hash: wire::text_hash(&parsed.last_text()),
                arrival_unix: 0.0,
                first_token_unix: None,
                request_id,
            },
        );
        let keep_times = self.config.trace;
        if !parsed.stream {
            // A client that leaves while this waits for a slot drops this future, and with it
            // its place in the queue.
            match pacer.begin(self.slots.as_ref(), target).await {
                Ok(start) => trace.scheduled_ns = start.map(|t| self.ns_at(t)),
                Err(e) => {
                    return error_response(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
                }
            }
            for _ in 0..target {
                if !pacer.next_token().await {
                    break;
                }
                let t = self.now_ns();
                if trace.first_token_ns.is_none() {
                    trace.first_token_ns = Some(t);
                    // Known by now, and kept should the client leave before the end.
                    trace.cached_tokens = pacer.cached_tokens();
                }
                if keep_times {
                    trace.token_ns.push(t);
                }
                trace.completion_tokens += 1;
            }
            pacer.finish();
            self.generation_tokens_total
                .fetch_add(trace.completion_tokens, Ordering::Relaxed);
            let mut body = wire::completion_body(
                &cmpl_id,
                &model,
                created,
                chat,
                prompt,
                trace.completion_tokens,
                reason,
            );
            if report_cache {
                wire::set_cached_tokens(&mut body, trace.cached_tokens);
            }
            trace.end_ns = self.now_ns();
            trace.finish(finish);
            drop(guard);
            return json_response(StatusCode::OK, &body);
        }
        // With the truth log on, token times are taken when the connection takes each event to
        // write it (see `FrameStamps`); frames are role (chat, sent with the first token), tokens
        // (the last carries the finish reason), usage, done.
        let stamps = keep_times.then(|| http::FrameStamps::new(self.started));
        let padding = (self.config.event_padding_bytes > 0).then(|| {
            let mut line = vec![b'x'; self.config.event_padding_bytes + 2];
            line[0] = b':';
            *line.last_mut().unwrap_or(&mut 0) = b'\n';
            Bytes::from(line)
        });
        let continuous = parsed.continuous_usage();
        let include_usage = parsed.include_usage();
        let (tx, resp) = sse_response(16, stamps.clone());
        let sim = self.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let writer = ChunkWriter::new(&cmpl_id, &model, created, chat);
            let running = |done: u64| continuous.then_some((prompt, done));
            let ok = async {
                // Headers are out; the first token waits for a slot, a place the client gives
                // up by going away.
                let start = tokio::select! {
                    start = pacer.begin(sim.slots.as_ref(), target) => start.ok()?,
                    _ = tx.closed() => return None,
                };
                trace.scheduled_ns = start.map(|t| sim.ns_at(t));
                let mut finished = false;
                for k in 0..target {
                    // A client that goes away is seen at once, not at its next token: the
                    // engine then drops the request before its next step.
                    let token = tokio::select! {
                        token = pacer.next_token() => token,
                        _ = tx.closed() => return None,
                    };
                    if !token {
                        break;
                    }
                    if k == 0 && chat {
                        // vLLM sends the role on the engine's first output: with the first
                        // token, not on arrival (chat_completion_stream_generator).
                        tx.send(Ok(writer.role_chunk(running(0)))).await.ok()?;
                    }
                    if let Some(p) = &padding {
                        tx.send(Ok(p.clone())).await.ok()?;
                    }
                    finished = k + 1 == target;
                    let text = if finished && reason == "stop" {
                        ""
                    } else {
                        wire::output_word(k)
                    };
                    let chunk =
                        writer.token_chunk(text, finished.then_some(reason), running(k + 1));
                    tx.send(Ok(chunk)).await.ok()?;
                    if trace.first_token_ns.is_none() {
                        trace.first_token_ns = Some(sim.now_ns());
                    }
                    trace.completion_tokens += 1;
                    sim.generation_tokens_total.fetch_add(1, Ordering::Relaxed);
                }
                // The last token is sent: the next request may start.
                pacer.finish();
                if !finished {
                    // The engine ended the sequence early: vLLM's finish without output.
                    if chat && trace.completion_tokens == 0 {
                        tx.send(Ok(writer.role_chunk(running(0)))).await.ok()?;
                    }
                    tx.send(Ok(writer.finish(reason))).await.ok()?;
                }
                if include_usage {
                    let cached = report_cache.then(|| pacer.cached_tokens());
                    tx.send(Ok(writer.usage_with_cache(
                        prompt,
                        trace.completion_tokens,
                        cached,
                    )))
                    .await
                    .ok()?;
                }
                tx.send(Ok(ChunkWriter::done())).await.ok()
            }
            .await;
            // A request that ended early frees its slot, and its place in the engine, now.
            trace.cached_tokens = pacer.cached_tokens();
            drop(pacer);
            drop(tx); // ends the body
            if let Some(stamps) = stamps {
                stamps.body_done().await;
                let times = stamps.times();
                let n = trace.completion_tokens as usize;
                // The role frame comes right before the first token's (and its padding).
                let skip = usize::from(chat && n > 0);
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
                // An abort ends when the server saw the client go (its body is gone by now), not
                // at the last frame it wrote.
                trace.end_ns = match times.last() {
                    Some(&t) if ok.is_some() => t,
                    _ => sim.now_ns(),
                };
            } else {
                trace.end_ns = sim.now_ns();
            }
            trace.finish(if ok.is_some() {
                finish
            } else {
                FinishReason::Abort
            });
        });
        resp
    }

    pub(crate) async fn embeddings(self: Arc<Self>, req: Request<Incoming>) -> Response<SimBody> {
        let arrival_ns = self.now_ns();
        let _guard = InFlight::new(&self);
        let body = match http::read_body(req).await {
            Ok(b) => b,
            Err(e) => return error_response(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        let parsed = match wire::parse_embeddings(&body) {
            Ok(r) => r,
            Err(e) => return request_error(&e),
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
        // Embeddings are not looked up in the prefix cache: one request's texts are several
        // sequences, and vLLM's pooling models are served apart.
        let mut pacer = match self.pacer(total, 0, None) {
            Ok(p) => p,
            Err(e) => return error_response(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        let mut trace = Recording::new(
            &self,
            TraceRecord {
                id,
                route: "embeddings",
                arrival_ns,
                prompt_tokens: total,
                prompt_hash: wire::text_hash(&parsed.texts().join("\n")),
                ..TraceRecord::default()
            },
        );
        let start = match pacer.begin(self.slots.as_ref(), 0).await {
            Ok(start) => start,
            Err(e) => return error_response(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        };
        pacer.prefill_done().await;
        trace.scheduled_ns = start.map(|t| self.ns_at(t));
        let body = wire::embeddings_body(
            &self.served_model,
            &counts,
            self.config.preset.embedding_dim,
        );
        // vLLM ends a pooling request as stopped.
        trace.finish(FinishReason::Stop);
        let mut resp = Response::new(SimBody::full(body));
        resp.headers_mut().insert(
            ::http::header::CONTENT_TYPE,
            ::http::HeaderValue::from_static("application/json"),
        );
        resp
    }

    /// vLLM/SGLang (`{"prompt"}` or `{"messages"}` → `{"count","max_model_len","tokens"}`) and
    /// llama.cpp (`{"content"}` → `{"tokens"}`) shapes.
    pub(crate) async fn tokenize(self: Arc<Self>, req: Request<Incoming>) -> Response<SimBody> {
        let body = match http::read_body(req).await {
            Ok(b) => b,
            Err(e) => return error_response(StatusCode::BAD_REQUEST, &e.to_string()),
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
                Ok(r) => r.prompt_token_ids(),
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
}
