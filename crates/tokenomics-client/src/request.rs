//! Request bodies. They are serialised once, before a run starts, so that building JSON is never
//! inside a timed interval.

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

/// Which generation route a [`ChatRequest`] goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Endpoint {
    /// `POST {api_base}/chat/completions` with `messages`.
    #[default]
    Chat,
    /// `POST {api_base}/completions` with a `prompt` (the messages' contents joined).
    Completions,
}

impl Endpoint {
    /// The route appended to the base URL.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/chat/completions",
            Endpoint::Completions => "/completions",
        }
    }
    /// The name written in result documents (`metadata.endpoint`).
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat",
            Endpoint::Completions => "completions",
        }
    }
}

/// One chat message, serialised as `{"role": …, "content": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The message text.
    pub content: String,
}

impl Message {
    /// A message with `role` and `content`.
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self {
            role: role.to_string(),
            content: content.into(),
        }
    }
}

/// A chat or text completion request.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// The route, which also decides between `messages` and `prompt` in the body.
    pub endpoint: Endpoint,
    /// Sent as `model`.
    pub model: String,
    /// The conversation; for [`Endpoint::Completions`] the contents joined by blank lines.
    pub messages: Vec<Message>,
    /// The most output tokens the server may generate.
    pub max_tokens: u64,
    /// Sampling temperature.
    pub temperature: f64,
    /// Ask for a server-sent event stream (and for its `usage` chunk).
    pub stream: bool,
    /// Other body fields (`ignore_eos`, `min_tokens`, `seed`, …), sent as given.
    pub extra: Map<String, Value>,
}

impl ChatRequest {
    /// The JSON body. Streaming requests ask for `stream_options.include_usage`, so servers that
    /// support it report exact token counts in a final chunk.
    pub fn body(&self) -> Bytes {
        let mut body = Map::new();
        body.insert("model".into(), Value::from(self.model.clone()));
        match self.endpoint {
            Endpoint::Chat => {
                body.insert(
                    "messages".into(),
                    serde_json::to_value(&self.messages).unwrap_or(Value::Null),
                );
            }
            Endpoint::Completions => {
                let prompt: Vec<&str> = self.messages.iter().map(|m| m.content.as_str()).collect();
                body.insert("prompt".into(), Value::from(prompt.join("\n\n")));
            }
        }
        body.insert("max_tokens".into(), Value::from(self.max_tokens));
        body.insert("temperature".into(), Value::from(self.temperature));
        body.insert("stream".into(), Value::from(self.stream));
        if self.stream {
            body.insert(
                "stream_options".into(),
                serde_json::json!({"include_usage": true}),
            );
        }
        for (k, v) in &self.extra {
            body.insert(k.clone(), v.clone());
        }
        Bytes::from(serde_json::to_vec(&Value::Object(body)).unwrap_or_default())
    }
}

/// An embeddings request: one or more texts.
#[derive(Debug, Clone)]
pub struct EmbeddingsRequest {
    /// Sent as `model`.
    pub model: String,
    /// The texts to embed, one vector expected per text.
    pub input: Vec<String>,
}

impl EmbeddingsRequest {
    /// The JSON body; a single text is sent as a string, several as an array.
    pub fn body(&self) -> Bytes {
        let input = match self.input.as_slice() {
            [one] => Value::from(one.clone()),
            many => Value::from(many.to_vec()),
        };
        let body = serde_json::json!({"model": self.model, "input": input});
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_body_asks_for_usage() {
        let req = ChatRequest {
            endpoint: Endpoint::Chat,
            model: "m".into(),
            messages: vec![Message::new("user", "hi")],
            max_tokens: 5,
            temperature: 0.5,
            stream: true,
            extra: Map::new(),
        };
        let v: Value = serde_json::from_slice(&req.body()).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["messages"][0]["content"], "hi");
        let completions = ChatRequest {
            endpoint: Endpoint::Completions,
            ..req
        };
        let v: Value = serde_json::from_slice(&completions.body()).unwrap();
        assert_eq!(v["prompt"], "hi");
        assert!(v.get("messages").is_none());
    }
}
