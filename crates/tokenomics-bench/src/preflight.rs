//! The check before the first warm-up: does the server answer, does it offer the model, does the
//! route accept a request? A mistake found here costs a second, not a whole run of failed levels.
//!
//! 1. `GET {api_base}/models` — a server that cannot be reached ends the run at once, naming the
//!    URL and the cause; a `/models` that is not found while `{api_base}/v1/models` answers means
//!    the `/v1` was left out, and the message says so.
//! 2. The model must be among those listed — unless the server accepts it anyway (llama.cpp's
//!    server answers for any model name): a one-token request decides.
//! 3. One request of the benchmark's own kind (route, streaming, extra body fields), asking for a
//!    single token (or, for embeddings, one short text), must succeed.
//!
//! What was found goes into the result's metadata ([`tokenomics_stats::Preflight`]).

use std::time::Instant;

use bytes::Bytes;
use serde_json::{Map, Value};
use tokenomics_client::{
    ChatRequest, Client, ClientConfig, Clock, EmbeddingsRequest, Endpoint, Error as ClientError,
    Message,
};
use tokenomics_stats::Preflight;

use crate::{Error, Result};

/// Why the preflight stopped the run.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// Nothing answers at the URL: the server is not running, or the address is wrong.
    #[error("cannot reach the server at {url}: {cause} (is it running? --no_preflight skips this check)")]
    Unreachable {
        /// The base URL tried, without a trailing `/`.
        url: String,
        /// What the connection attempt said, or how long nothing answered.
        cause: String,
    },
    /// `/models` is not there, but `/v1/models` is: the base URL lacks its `/v1`.
    #[error("{url}/models was not found but {suggestion}/models answers: did you mean --api_base {suggestion}?")]
    MissingV1 {
        /// The base URL given, without a trailing `/`.
        url: String,
        /// The same URL with `/v1`, whose `/models` answered.
        suggestion: String,
    },
    /// The server refused the API key.
    #[error("the server refused the request ({message}): give the API key with --api_key or OPENAI_API_KEY")]
    Unauthorized {
        /// The HTTP status and what the server said.
        message: String,
    },
    /// The model is not offered, and a request naming it fails.
    #[error("the server does not offer model {model:?}; it offers {offered}: give --model {first}", offered = quoted(.offered), first = .offered.first().map(String::as_str).unwrap_or("…"))]
    UnknownModel {
        /// The model asked for.
        model: String,
        /// The models the server lists, in its order.
        offered: Vec<String>,
    },
    /// The one-token request failed.
    #[error("a one-token {what} request to {url} failed: {cause}")]
    Probe {
        /// The kind of request: `chat`, `completions` or `embeddings`.
        what: &'static str,
        /// The route the request went to.
        url: String,
        /// How it failed.
        cause: ClientError,
    },
}

impl PreflightError {
    /// Whether the user can fix it on the command line (a usage error), as opposed to a server
    /// that is down or broken.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            PreflightError::MissingV1 { .. }
                | PreflightError::Unauthorized { .. }
                | PreflightError::UnknownModel { .. }
        )
    }
}

fn quoted(models: &[String]) -> String {
    let shown: Vec<String> = models.iter().take(8).map(|m| format!("{m:?}")).collect();
    let more = models.len().saturating_sub(shown.len());
    match (shown.is_empty(), more) {
        (true, _) => "no model".into(),
        (false, 0) => shown.join(", "),
        (false, n) => format!("{} and {n} more", shown.join(", ")),
    }
}

/// The request the probe sends.
#[derive(Debug, Clone)]
pub enum Probe {
    /// A chat or completions request of the benchmark's kind, asking for one token.
    Completion {
        /// The route of the benchmark's requests (chat or text completions).
        endpoint: Endpoint,
        /// Whether the benchmark streams; the probe asks the same.
        stream: bool,
        /// The benchmark's sampling temperature.
        temperature: f64,
        /// Body fields the benchmark sends with every request (e.g. `ignore_eos`); a
        /// `min_tokens` is lowered to the probe's one token.
        extra_body: Map<String, Value>,
    },
    /// An embeddings request of one short text.
    Embeddings,
}

impl Probe {
    fn what(&self) -> &'static str {
        match self {
            Probe::Completion {
                endpoint: Endpoint::Chat,
                ..
            } => "chat",
            Probe::Completion { .. } => "completions",
            Probe::Embeddings => "embeddings",
        }
    }

    fn body(&self, model: &str) -> Bytes {
        match self {
            Probe::Completion {
                endpoint,
                stream,
                temperature,
                extra_body,
            } => {
                let mut extra = extra_body.clone();
                if extra.contains_key("min_tokens") {
                    extra.insert("min_tokens".into(), 1.into());
                }
                ChatRequest {
                    endpoint: *endpoint,
                    model: model.to_string(),
                    messages: vec![Message::new("user", "Say hello.")],
                    max_tokens: 1,
                    temperature: *temperature,
                    stream: *stream,
                    extra,
                }
                .body()
            }
            Probe::Embeddings => EmbeddingsRequest {
                model: model.to_string(),
                input: vec!["hello".into()],
            }
            .body(),
        }
    }

    /// Sends the probe; the time it took, seconds.
    async fn send(&self, client: &Client, model: &str) -> std::result::Result<f64, ClientError> {
        let clock = Clock::start();
        let mut conn = client.connection();
        let started = Instant::now();
        let error = match self {
            Probe::Completion {
                endpoint, stream, ..
            } => {
                conn.completion(*endpoint, *stream, self.body(model), &clock)
                    .await
                    .error
            }
            Probe::Embeddings => conn.embeddings(self.body(model), &clock).await.error,
        };
        match error {
            None => Ok(started.elapsed().as_secs_f64()),
            Some(e) => Err(e),
        }
    }
}

/// Runs the checks against `client`'s server for `model`. Every failure is a
/// [`PreflightError`] (inside [`Error::Preflight`]).
pub async fn check(client: &Client, model: &str, probe: &Probe) -> Result<Preflight> {
    let url = client.config().api_base.trim_end_matches('/').to_string();
    let fail = |e: PreflightError| Error::Preflight(Box::new(e));
    let models = match client.models().await {
        Ok(m) => Some(m),
        Err(ClientError::Connect { message, .. }) => {
            return Err(fail(PreflightError::Unreachable {
                url,
                cause: message,
            }))
        }
        Err(ClientError::Timeout { seconds, .. }) => {
            return Err(fail(PreflightError::Unreachable {
                url,
                cause: format!("no answer within {seconds:.0} s"),
            }))
        }
        Err(ClientError::Status { status, body, .. }) if status == 401 || status == 403 => {
            return Err(fail(PreflightError::Unauthorized {
                message: format!("HTTP {status}: {body}"),
            }))
        }
        Err(ClientError::Status { status: 404, .. }) => {
            if let Some(suggestion) = with_v1(client, &url).await {
                return Err(fail(PreflightError::MissingV1 { url, suggestion }));
            }
            // Some servers do not list models; the probe decides.
            None
        }
        // A server without a usable model list (or a broken one): the probe decides.
        Err(_) => None,
    };
    let listed = models.as_ref().map(|m| m.iter().any(|id| id == model));
    let probe_seconds = match probe.send(client, model).await {
        Ok(s) => s,
        Err(e) => {
            let status = match &e {
                ClientError::Status { status, .. } => Some(*status),
                _ => None,
            };
            let error = match (models, listed, status) {
                (Some(offered), Some(false), Some(400 | 404)) => PreflightError::UnknownModel {
                    model: model.to_string(),
                    offered,
                },
                (_, _, Some(401 | 403)) => PreflightError::Unauthorized {
                    message: e.to_string(),
                },
                _ => PreflightError::Probe {
                    what: probe.what(),
                    url: format!("{url}{}", route(probe)),
                    cause: e,
                },
            };
            return Err(fail(error));
        }
    };
    Ok(Preflight {
        models,
        model_listed: listed,
        probe: probe.what().to_string(),
        probe_seconds,
    })
}

fn route(probe: &Probe) -> &'static str {
    match probe {
        Probe::Completion { endpoint, .. } => endpoint.path(),
        Probe::Embeddings => "/embeddings",
    }
}

/// `{url}/v1`, when its `/models` answers (and `url` does not end in `/v1` already).
async fn with_v1(client: &Client, url: &str) -> Option<String> {
    if url.ends_with("/v1") {
        return None;
    }
    let mut cfg: ClientConfig = client.config().clone();
    cfg.api_base = format!("{url}/v1");
    let v1 = Client::new(cfg).ok()?;
    v1.models().await.ok().map(|_| format!("{url}/v1"))
}

/// The preflight's result in one line, for the console.
pub fn summary(p: &Preflight, url: &str, model: &str) -> String {
    let listing = match (&p.models, p.model_listed) {
        (Some(m), Some(true)) => format!("model {model:?} listed among {}", m.len()),
        (Some(m), _) => format!(
            "model {model:?} not listed (the server offers {}) but accepted",
            quoted(m)
        ),
        (None, _) => format!("no model list; model {model:?} accepted"),
    };
    format!(
        "Preflight: {url} answers; {listing}; a one-token {} request took {:.1} ms",
        p.probe,
        p.probe_seconds * 1e3
    )
}
