//! The OpenAI wire format as a server writes it: request parsing, the simulator's tokenizer, and
//! response bodies. Streamed chunks are built from a per-request template, so emitting a token
//! costs a couple of small copies, not a JSON serialisation.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;
use serde_json::{json, Value};

/// A chat or text completion request, as far as a simulator needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub messages: Option<Vec<ChatMessage>>,
    #[serde(default)]
    pub prompt: Option<Value>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub ignore_eos: bool,
    #[serde(default)]
    pub min_tokens: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChatMessage {
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub content: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

/// Tokens added per chat message by the (simulated) chat template, and once per conversation.
pub const TEMPLATE_TOKENS_PER_MESSAGE: u64 = 4;
pub const TEMPLATE_TOKENS_PER_CHAT: u64 = 3;

impl CompletionRequest {
    /// The text of the last message (chat) or the prompt (completions).
    pub fn last_text(&self) -> String {
        match (&self.messages, &self.prompt) {
            (Some(m), _) => m
                .last()
                .map(|m| content_text(&m.content))
                .unwrap_or_default(),
            (None, Some(Value::String(s))) => s.clone(),
            _ => String::new(),
        }
    }

    pub fn is_chat(&self) -> bool {
        self.messages.is_some()
    }

    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }

    /// `max_tokens` (or `max_completion_tokens`), default 16 as in the OpenAI API.
    pub fn max_tokens(&self) -> u64 {
        self.max_tokens
            .or(self.max_completion_tokens)
            .unwrap_or(16)
            .max(1)
    }

    /// Whether the output length is forced to `max_tokens` (`ignore_eos`, or `min_tokens` at least
    /// `max_tokens`).
    pub fn forced_length(&self) -> bool {
        self.ignore_eos || self.min_tokens.is_some_and(|m| m >= self.max_tokens())
    }

    /// Prompt tokens under the simulator's tokenizer and chat template.
    pub fn prompt_tokens(&self) -> u64 {
        match (&self.messages, &self.prompt) {
            (Some(messages), _) => {
                TEMPLATE_TOKENS_PER_CHAT
                    + messages
                        .iter()
                        .map(|m| {
                            TEMPLATE_TOKENS_PER_MESSAGE + count_tokens(&content_text(&m.content))
                        })
                        .sum::<u64>()
            }
            (None, Some(Value::String(s))) => count_tokens(s),
            (None, Some(Value::Array(items))) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => count_tokens(s),
                    Value::Number(_) => 1, // a token id
                    _ => 0,
                })
                .sum(),
            _ => 0,
        }
    }
}

/// The text of a message `content`: a string, or the text parts of an array.
pub fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// The simulator's tokenizer: a token is a run of letters and digits, or any other single
/// non-space character. English prose comes out near 1.2 tokens per word, as BPE tokenizers do.
pub fn tokenize(text: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let mut word: Option<u32> = None;
    for c in text.chars() {
        if c.is_alphanumeric() {
            let h = word.unwrap_or(2166136261);
            word = Some((h ^ c as u32).wrapping_mul(16777619));
        } else {
            if let Some(w) = word.take() {
                out.push(w % 100_000);
            }
            if !c.is_whitespace() {
                out.push(c as u32 % 100_000);
            }
        }
    }
    if let Some(w) = word {
        out.push(w % 100_000);
    }
    out
}

/// A 64-bit FNV-1a fingerprint of a text (the truth log identifies prompts by it).
pub fn text_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

pub fn count_tokens(text: &str) -> u64 {
    tokenize(text).len() as u64
}

/// Words the simulator "generates", one per token.
const OUTPUT_WORDS: &[&str] = &[
    " the", " answer", " is", " found", " by", " adding", " both", " sides", " so", " we", " get",
    " a", " value", " of", " x", " then", " check", " it", ".", " Next", ",",
];

pub fn output_word(i: u64) -> &'static str {
    OUTPUT_WORDS[(i % OUTPUT_WORDS.len() as u64) as usize]
}

/// Builds the SSE events of one streamed completion.
pub struct ChunkWriter {
    /// `data: {…"delta":{"content":"` or `data: {…"text":"`.
    token_prefix: Bytes,
    /// `"},"finish_reason":null}]}\n\n` or the completion equivalent.
    token_suffix: &'static [u8],
    id: String,
    model: String,
    created: u64,
    chat: bool,
}

impl ChunkWriter {
    pub fn new(id: &str, model: &str, created: u64, chat: bool) -> Self {
        let (object, open, suffix): (&str, &str, &'static [u8]) = if chat {
            (
                "chat.completion.chunk",
                r#""delta":{"content":""#,
                b"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
            )
        } else {
            (
                "text_completion",
                r#""text":""#,
                b"\",\"logprobs\":null,\"finish_reason\":null}]}\n\n",
            )
        };
        let model_json = Value::from(model).to_string();
        let prefix = format!(
            r#"data: {{"id":"{id}","object":"{object}","created":{created},"model":{model_json},"choices":[{{"index":0,{open}"#
        );
        Self {
            token_prefix: Bytes::from(prefix),
            token_suffix: suffix,
            id: id.to_string(),
            model: model.to_string(),
            created,
            chat,
        }
    }

    fn object(&self) -> &'static str {
        if self.chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        }
    }

    /// The first chat chunk: the assistant role and empty content (not a token).
    pub fn role(&self) -> Bytes {
        self.event(&json!({
            "id": self.id, "object": self.object(), "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]
        }))
    }

    /// One event carrying `text` (already JSON-safe: the simulator's words need no escaping).
    pub fn token(&self, text: &str) -> Bytes {
        let mut b =
            BytesMut::with_capacity(self.token_prefix.len() + text.len() + self.token_suffix.len());
        b.put_slice(&self.token_prefix);
        b.put_slice(text.as_bytes());
        b.put_slice(self.token_suffix);
        b.freeze()
    }

    /// Several tokens' words in one event.
    pub fn tokens(&self, from: u64, count: u64) -> Bytes {
        let text: String = (from..from + count).map(output_word).collect();
        self.token(&text)
    }

    /// The chunk that carries the finish reason.
    pub fn finish(&self, reason: &str) -> Bytes {
        let choice = if self.chat {
            json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": reason})
        } else {
            json!({"index": 0, "text": "", "logprobs": null, "finish_reason": reason})
        };
        self.event(&json!({
            "id": self.id, "object": self.object(), "created": self.created, "model": self.model,
            "choices": [choice]
        }))
    }

    /// The usage chunk (`choices` empty), as vLLM sends it for `include_usage`.
    pub fn usage(&self, prompt: u64, completion: u64) -> Bytes {
        self.event(&json!({
            "id": self.id, "object": self.object(), "created": self.created, "model": self.model,
            "choices": [], "usage": usage(prompt, completion)
        }))
    }

    pub fn done() -> Bytes {
        Bytes::from_static(b"data: [DONE]\n\n")
    }

    fn event(&self, v: &Value) -> Bytes {
        Bytes::from(format!("data: {v}\n\n"))
    }
}

pub fn usage(prompt: u64, completion: u64) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

/// A whole non-streamed completion.
pub fn completion_body(
    id: &str,
    model: &str,
    created: u64,
    chat: bool,
    prompt: u64,
    completion: u64,
    reason: &str,
) -> Value {
    let text: String = (0..completion).map(output_word).collect();
    let choice = if chat {
        json!({"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": null, "finish_reason": reason})
    } else {
        json!({"index": 0, "text": text, "logprobs": null, "finish_reason": reason})
    };
    json!({
        "id": id, "object": if chat { "chat.completion" } else { "text_completion" },
        "created": created, "model": model, "choices": [choice], "usage": usage(prompt, completion)
    })
}

/// An embeddings request.
#[derive(Debug, Clone, Deserialize)]
pub struct EmbeddingsRequest {
    #[serde(default)]
    pub model: String,
    pub input: Value,
}

impl EmbeddingsRequest {
    /// The texts (a string or an array of strings; token-id arrays count as text of their length).
    pub fn texts(&self) -> Vec<String> {
        match &self.input {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
            other => vec![other.to_string()],
        }
    }
}

/// An embeddings response with deterministic unit-length-ish vectors of `dim` values per text.
pub fn embeddings_body(model: &str, token_counts: &[u64], dim: usize) -> Bytes {
    use std::fmt::Write;
    let mut s = String::with_capacity(64 + token_counts.len() * dim * 8);
    s.push_str(r#"{"object":"list","data":["#);
    for (i, &n) in token_counts.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, r#"{{"object":"embedding","index":{i},"embedding":["#);
        for d in 0..dim {
            if d > 0 {
                s.push(',');
            }
            let v = ((d as u64 * 2654435761 + n * 40503 + i as u64) % 2001) as f64 / 1000.0 - 1.0;
            let _ = write!(s, "{:.4}", v / (dim as f64).sqrt());
        }
        s.push_str("]}");
    }
    let total: u64 = token_counts.iter().sum();
    let _ = write!(
        s,
        r#"],"model":{},"usage":{{"prompt_tokens":{total},"total_tokens":{total}}}}}"#,
        Value::from(model)
    );
    Bytes::from(s)
}

pub fn models_body(models: &[&str]) -> Value {
    json!({"object": "list", "data": models.iter().map(|m| json!({"id": m, "object": "model", "created": 0, "owned_by": "tokenomics-sim"})).collect::<Vec<_>>()})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_counts_words_and_punctuation() {
        assert_eq!(count_tokens("Hello, world!"), 4);
        assert_eq!(count_tokens("  "), 0);
        assert_eq!(tokenize("a b"), tokenize("a  b"));
    }

    #[test]
    fn chunks_are_valid_json() {
        for chat in [true, false] {
            let w = ChunkWriter::new("cmpl-1", "m\"x", 5, chat);
            for ev in [
                w.role(),
                w.token(" hi"),
                w.tokens(0, 3),
                w.finish("length"),
                w.usage(3, 4),
            ] {
                let s = std::str::from_utf8(&ev).unwrap();
                let data = s
                    .strip_prefix("data: ")
                    .unwrap()
                    .strip_suffix("\n\n")
                    .unwrap();
                let v: Value = serde_json::from_str(data).unwrap();
                assert_eq!(v["model"], "m\"x");
            }
        }
        let body = embeddings_body("e", &[3, 5], 8);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["data"][1]["embedding"].as_array().unwrap().len(), 8);
        assert_eq!(v["usage"]["prompt_tokens"], 8);
    }

    #[test]
    fn request_lengths() {
        let r: CompletionRequest = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"user","content":"one two"}],"max_tokens":9,"min_tokens":9}"#,
        )
        .unwrap();
        assert_eq!(r.prompt_tokens(), 3 + 4 + 2);
        assert!(r.forced_length() && r.is_chat());
        assert_eq!(r.max_tokens(), 9);
    }
}
