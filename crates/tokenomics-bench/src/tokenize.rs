//! Token-exact prompts through the server's own tokenizer: its tokenize endpoint.
//!
//! vLLM and SGLang answer `POST /tokenize` (beside `/v1`, not under it) with `{"count", "tokens"}`;
//! llama.cpp's server answers `POST /tokenize` with `{"tokens"}`, llama-cpp-python's
//! `POST /extras/tokenize` likewise. One body serves them all: the text as `prompt`, `content`
//! and `input`, with special tokens left out. The endpoint measures each vocabulary word once
//! (see [`tokenomics_datasets::exact`]), and a few built prompts are counted again to make sure
//! the server's tokenizer counts words independently.

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokenomics_client::{Client, ClientConfig, Clock, Connection, TlsOptions};
use tokenomics_datasets::exact::{ExactPrompts, Lengths, TokenLength, WordCosts};
use tokenomics_stats::TemplateTokens;

use crate::{Error, Result};

/// The server's root: `api_base` without a trailing `/v1`.
fn server_root(api_base: &str) -> String {
    let base = api_base.trim_end_matches('/');
    base.strip_suffix("/v1").unwrap_or(base).to_string()
}

/// A tokenize endpoint found on a server.
#[derive(Clone)]
pub struct Endpoint {
    client: Client,
    route: &'static str,
    model: String,
    /// The URL, for the metadata.
    pub url: String,
}

impl Endpoint {
    /// Finds the endpoint: `{root}/tokenize`, `{root}/extras/tokenize`, `{api_base}/tokenize`,
    /// over TLS set up as `tls` says (the benchmark's own roots, client certificate, `--insecure`).
    pub async fn find(
        api_base: &str,
        api_key: Option<String>,
        model: &str,
        tls: &TlsOptions,
    ) -> Result<Self> {
        let root = server_root(api_base);
        let mut tried = Vec::new();
        for (base, route) in [
            (root.clone(), "/tokenize"),
            (root.clone(), "/extras/tokenize"),
            (api_base.trim_end_matches('/').to_string(), "/tokenize"),
        ] {
            let mut cfg = ClientConfig::new(&base);
            cfg.api_key = api_key.clone();
            cfg.timeout = Duration::from_secs(30);
            cfg.tls = tls.clone();
            let client = Client::new(cfg)?;
            let ep = Self {
                client,
                route,
                model: model.to_string(),
                url: format!("{base}{route}"),
            };
            match ep.count("the").await {
                Ok(n) if n > 0 => return Ok(ep),
                Ok(_) => tried.push(format!("{}: no tokens", ep.url)),
                Err(e) => tried.push(format!("{}: {e}", ep.url)),
            }
        }
        Err(Error::Tokenize(format!(
            "no tokenize endpoint answered ({})",
            tried.join("; ")
        )))
    }

    /// The number of tokens in `text`, special tokens left out (on a connection of its own).
    pub async fn count(&self, text: &str) -> Result<usize> {
        self.count_on(&mut self.client.connection(), text).await
    }

    /// The token counts of `texts`, in order, over a few kept-alive connections at once (a
    /// remote server answers sooner over several).
    pub async fn count_all(&self, texts: Vec<String>) -> Result<Vec<usize>> {
        const CONNECTIONS: usize = 16;
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..CONNECTIONS.min(texts.len()) {
            let (ep, mine): (Endpoint, Vec<(usize, String)>) = (
                self.clone(),
                texts
                    .iter()
                    .enumerate()
                    .skip(worker)
                    .step_by(CONNECTIONS)
                    .map(|(i, t)| (i, t.clone()))
                    .collect(),
            );
            tasks.spawn(async move {
                let mut conn = ep.client.connection();
                let mut out = Vec::with_capacity(mine.len());
                for (i, t) in mine {
                    out.push((i, ep.count_on(&mut conn, &t).await?));
                }
                Ok::<_, Error>(out)
            });
        }
        let mut counts = vec![0usize; texts.len()];
        while let Some(done) = tasks.join_next().await {
            for (i, n) in done.map_err(|e| Error::Tokenize(e.to_string()))?? {
                counts[i] = n;
            }
        }
        Ok(counts)
    }

    /// The token ids the endpoint answers for `body` (its `model` added), as `"tokens"`.
    async fn ids(&self, mut body: serde_json::Value) -> Result<Vec<u64>> {
        body["model"] = json!(self.model);
        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        let bytes = self
            .client
            .connection()
            .post(self.route, body, &Clock::start())
            .await?;
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Tokenize(format!("{}: not JSON: {e}", self.url)))?;
        v.get("tokens")
            .and_then(|t| t.as_array())
            .and_then(|t| t.iter().map(serde_json::Value::as_u64).collect())
            .ok_or_else(|| {
                Error::Tokenize(format!("{}: the answer has no \"tokens\" ids", self.url))
            })
    }

    /// The tokens a server puts around a user's text: its chat template's (one user message, with
    /// the generation prompt, as a chat request is rendered) or, for completions, the special
    /// tokens it adds to a prompt. Found by tokenizing a text alone and as the server renders it,
    /// and locating the one inside the other.
    pub async fn template_tokens(&self, chat: bool) -> Result<TemplateTokens> {
        const PROBE: &str = "the answer is one of these numbers";
        let rendered = if chat {
            json!({"messages": [{"role": "user", "content": PROBE}], "add_generation_prompt": true})
        } else {
            json!({"prompt": PROBE})
        };
        let rendered = self.ids(rendered).await?;
        let alone = self
            .ids(json!({"prompt": PROBE, "add_special_tokens": false}))
            .await?;
        let at = (!alone.is_empty())
            .then(|| rendered.windows(alone.len()).position(|w| w == alone))
            .flatten()
            .ok_or_else(|| {
                Error::Tokenize(format!(
                    "{}: the text's tokens are not found in the rendered prompt's",
                    self.url
                ))
            })?;
        Ok(TemplateTokens {
            before: at as u64,
            after: (rendered.len() - at - alone.len()) as u64,
        })
    }

    async fn count_on(&self, conn: &mut Connection, text: &str) -> Result<usize> {
        let body = json!({
            "model": self.model, "prompt": text, "content": text, "input": text,
            "add_special_tokens": false, "add_special": false,
        });
        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        let bytes = conn.post(self.route, body, &Clock::start()).await?;
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Tokenize(format!("{}: not JSON: {e}", self.url)))?;
        if let Some(n) = v.get("count").and_then(|c| c.as_u64()) {
            return usize::try_from(n)
                .map_err(|_| Error::Tokenize(format!("{}: a count of {n} tokens", self.url)));
        }
        v.get("tokens")
            .and_then(|t| t.as_array())
            .map(|t| t.len())
            .ok_or_else(|| {
                Error::Tokenize(format!(
                    "{}: the answer has neither \"count\" nor \"tokens\"",
                    self.url
                ))
            })
    }
}

/// Token-exact prompts measured with the server's tokenize endpoint.
pub async fn endpoint_prompts(endpoint: &Endpoint, length: TokenLength) -> Result<ExactPrompts> {
    let counts = endpoint.count_all(WordCosts::texts()).await?;
    let costs = WordCosts::from_counts(&counts)?;
    let prompts = ExactPrompts {
        length,
        lengths: Lengths::Exact {
            costs,
            check: None,
            source: "tokenize_endpoint",
            detail: endpoint.url.clone(),
        },
    };
    // Check a few built prompts against the server itself.
    for (text, target) in prompts.draw_with_lengths(4, 0)? {
        let got = endpoint.count(&text).await?;
        if got as u64 != target {
            return Err(Error::Tokenize(format!(
                "the server's tokenizer counts {got} tokens in a prompt built to {target}: it does not count words independently"
            )));
        }
    }
    Ok(prompts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots() {
        assert_eq!(server_root("http://h:8000/v1"), "http://h:8000");
        assert_eq!(server_root("http://h:8000/v1/"), "http://h:8000");
        assert_eq!(server_root("http://h:8000"), "http://h:8000");
    }
}
