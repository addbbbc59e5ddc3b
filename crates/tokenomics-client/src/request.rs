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
    /// support it report exact token counts in a final chunk. A field of `extra` named like one of
    /// the body's own takes its place; the others follow, in order.
    ///
    /// Written straight from the request (no `serde_json::Value` in between, which copied every
    /// prompt once more before escaping it).
    pub fn body(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(&ChatBody(self)).unwrap_or_default())
    }
}

/// A [`ChatRequest`]'s body, as serde writes it.
struct ChatBody<'a>(&'a ChatRequest);

impl Serialize for ChatBody<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let r = self.0;
        /// A value of the body's own, unless `extra` replaces it.
        fn entry<M: SerializeMap, V: Serialize + ?Sized>(
            m: &mut M,
            extra: &Map<String, Value>,
            key: &str,
            own: &V,
        ) -> Result<(), M::Error> {
            match extra.get(key) {
                Some(v) => m.serialize_entry(key, v),
                None => m.serialize_entry(key, own),
            }
        }
        let mut m = s.serialize_map(None)?;
        let mut own = vec!["model"];
        entry(&mut m, &r.extra, "model", &r.model)?;
        match r.endpoint {
            Endpoint::Chat => {
                own.push("messages");
                entry(&mut m, &r.extra, "messages", &r.messages)?;
            }
            Endpoint::Completions => {
                let prompt: Vec<&str> = r.messages.iter().map(|m| m.content.as_str()).collect();
                own.push("prompt");
                entry(&mut m, &r.extra, "prompt", &prompt.join("\n\n"))?;
            }
        }
        own.extend(["max_tokens", "temperature", "stream"]);
        entry(&mut m, &r.extra, "max_tokens", &r.max_tokens)?;
        entry(&mut m, &r.extra, "temperature", &r.temperature)?;
        entry(&mut m, &r.extra, "stream", &r.stream)?;
        if r.stream {
            #[derive(Serialize)]
            struct StreamOptions {
                include_usage: bool,
            }
            own.push("stream_options");
            let usage = StreamOptions {
                include_usage: true,
            };
            entry(&mut m, &r.extra, "stream_options", &usage)?;
        }
        for (k, v) in &r.extra {
            if !own.contains(&k.as_str()) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
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
        #[derive(Serialize)]
        #[serde(untagged)]
        enum Input<'a> {
            One(&'a str),
            Many(&'a [String]),
        }
        #[derive(Serialize)]
        struct Body<'a> {
            model: &'a str,
            input: Input<'a>,
        }
        let input = match self.input.as_slice() {
            [one] => Input::One(one),
            many => Input::Many(many),
        };
        let body = Body {
            model: &self.model,
            input,
        };
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

    /// The body as it was built before (through a `serde_json::Value`): the direct writer must
    /// give the same bytes.
    fn through_value(r: &ChatRequest) -> Vec<u8> {
        let mut body = Map::new();
        body.insert("model".into(), Value::from(r.model.clone()));
        match r.endpoint {
            Endpoint::Chat => {
                body.insert(
                    "messages".into(),
                    serde_json::to_value(&r.messages).unwrap(),
                );
            }
            Endpoint::Completions => {
                let prompt: Vec<&str> = r.messages.iter().map(|m| m.content.as_str()).collect();
                body.insert("prompt".into(), Value::from(prompt.join("\n\n")));
            }
        }
        body.insert("max_tokens".into(), Value::from(r.max_tokens));
        body.insert("temperature".into(), Value::from(r.temperature));
        body.insert("stream".into(), Value::from(r.stream));
        if r.stream {
            body.insert(
                "stream_options".into(),
                serde_json::json!({"include_usage": true}),
            );
        }
        for (k, v) in &r.extra {
            body.insert(k.clone(), v.clone());
        }
        serde_json::to_vec(&Value::Object(body)).unwrap()
    }

    #[test]
    fn the_body_is_written_as_the_value_built_one_was() {
        let mut extras = vec![Map::new()];
        let mut e = Map::new();
        e.insert("ignore_eos".into(), true.into());
        e.insert("min_tokens".into(), 7.into());
        extras.push(e.clone());
        // Fields named like the body's own take their place.
        e.insert("max_tokens".into(), 3.into());
        e.insert(
            "stream_options".into(),
            serde_json::json!({"include_usage": false}),
        );
        e.insert("model".into(), "other".into());
        e.insert("seed".into(), serde_json::json!([1, {"a": null}]));
        extras.push(e);
        for extra in extras {
            for endpoint in [Endpoint::Chat, Endpoint::Completions] {
                for stream in [false, true] {
                    for temperature in [0.0, 0.7, 1e-7, f64::NAN] {
                        let req = ChatRequest {
                            endpoint,
                            model: "m\"odel\u{7}é".into(),
                            messages: vec![
                                Message::new("system", "be \"brief\"\n"),
                                Message::new("user", "hi \\ there \u{1F600}"),
                            ],
                            max_tokens: 5,
                            temperature,
                            stream,
                            extra: extra.clone(),
                        };
                        assert_eq!(
                            String::from_utf8(req.body().to_vec()).unwrap(),
                            String::from_utf8(through_value(&req)).unwrap()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_embeddings_body_is_a_string_for_one_text_an_array_for_several() {
        let one = EmbeddingsRequest {
            model: "e".into(),
            input: vec!["a \"b\"".into()],
        };
        assert_eq!(&one.body()[..], br#"{"model":"e","input":"a \"b\""}"#);
        let many = EmbeddingsRequest {
            model: "e".into(),
            input: vec!["x".into(), "y".into()],
        };
        assert_eq!(&many.body()[..], br#"{"model":"e","input":["x","y"]}"#);
        let none = EmbeddingsRequest {
            model: "e".into(),
            input: vec![],
        };
        assert_eq!(&none.body()[..], br#"{"model":"e","input":[]}"#);
    }
}
