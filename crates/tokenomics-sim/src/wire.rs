//! The OpenAI wire format as vLLM 0.33.0 writes it: request parsing and the answers to bad
//! requests, the simulator's tokenizer, and response bodies. Streamed chunks are built from a
//! per-request template, so emitting a token costs a couple of small copies, not a JSON
//! serialisation. What follows vLLM, and what does not, is listed in the book
//! (`docs/src/simulator.md`, "What oai-sim reproduces of vLLM").

use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// A chat or text completion request, as far as a simulator needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    /// Empty when the client sent none (vLLM then serves its model).
    #[serde(default)]
    pub model: String,
    /// The conversation (`/v1/chat/completions`); `None` for a text completion.
    #[serde(default)]
    pub messages: Option<Vec<ChatMessage>>,
    /// The prompt of a text completion (`/v1/completions`): a string, or what vLLM also takes.
    #[serde(default)]
    pub prompt: Option<Value>,
    /// The most output tokens asked for.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// The newer name of `max_tokens`, preferred to it when both are given.
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    /// Answer as server-sent events, one per token.
    #[serde(default)]
    pub stream: bool,
    /// What a stream carries beside the tokens.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Generate `max_tokens` whatever the drawn length (vLLM's extension).
    #[serde(default)]
    pub ignore_eos: bool,
    /// Generate at least this many tokens (vLLM's extension).
    #[serde(default)]
    pub min_tokens: Option<u64>,
}

/// One message of a chat request.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, … (not checked).
    #[serde(default)]
    pub role: String,
    /// A string, or an array of content parts whose `text` parts are read.
    #[serde(default)]
    pub content: Value,
}

/// `stream_options`; vLLM accepts `null` for either flag.
#[derive(Debug, Clone, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with `usage` (and no choices) before `[DONE]`.
    #[serde(default)]
    pub include_usage: Option<bool>,
    /// Put the running `usage` in every chunk (vLLM's extension).
    #[serde(default)]
    pub continuous_usage_stats: Option<bool>,
}

/// Tokens added per chat message by the (simulated) chat template, and once per conversation.
pub const TEMPLATE_TOKENS_PER_MESSAGE: u64 = 4;
/// Tokens the (simulated) chat template adds once per conversation (the generation prompt).
pub const TEMPLATE_TOKENS_PER_CHAT: u64 = 3;

/// The chat template's special tokens: ids above the text tokens' (which are below 100,000).
const BEGIN_OF_TEXT: [u32; 3] = [100_000, 100_001, 100_002];
const START_HEADER: u32 = 100_003;
const END_HEADER: u32 = 100_004;
const END_OF_TURN: u32 = 100_005;
/// A role's token: 100,010 and up, by the role's name.
const ROLE_TOKENS: u32 = 100_010;

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

    /// Whether this is a chat request (it has `messages`).
    pub fn is_chat(&self) -> bool {
        self.messages.is_some()
    }

    /// `stream_options.include_usage`: send the usage chunk at the end of the stream.
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage == Some(true))
    }

    /// `stream_options.continuous_usage_stats` (with `include_usage`, as vLLM's
    /// `should_include_usage` has it): every chunk carries the usage so far.
    pub fn continuous_usage(&self) -> bool {
        self.include_usage()
            && self
                .stream_options
                .as_ref()
                .is_some_and(|o| o.continuous_usage_stats == Some(true))
    }

    /// The output limit the client asked for: `max_completion_tokens`, else `max_tokens` (as
    /// vLLM's chat request reads them), default 16 as in the OpenAI API, at least 1.
    pub fn max_tokens(&self) -> u64 {
        self.max_completion_tokens
            .or(self.max_tokens)
            .unwrap_or(16)
            .max(1)
    }

    /// Whether the output length is forced to `max_tokens` (`ignore_eos`, or `min_tokens` at least
    /// `max_tokens`).
    pub fn forced_length(&self) -> bool {
        self.ignore_eos || self.min_tokens.is_some_and(|m| m >= self.max_tokens())
    }

    /// Prompt tokens under the simulator's tokenizer and chat template: the length of
    /// [`CompletionRequest::prompt_token_ids`].
    pub fn prompt_tokens(&self) -> u64 {
        self.prompt_token_ids().len() as u64
    }

    /// The prompt as token ids, deterministically: the same text gives the same ids (runs of
    /// spaces are not tokens, see [`tokenize`]). A chat is the template's
    /// [`TEMPLATE_TOKENS_PER_CHAT`] opening tokens, then each message in order as a header (its
    /// role's token between two markers), its content and an end-of-turn token
    /// ([`TEMPLATE_TOKENS_PER_MESSAGE`] per message), so a conversation's earlier turns are a
    /// prefix of its next one. A completion's `prompt` is its text's tokens, or for an array, each
    /// string's tokens and each number as a token id.
    pub fn prompt_token_ids(&self) -> Vec<u32> {
        match (&self.messages, &self.prompt) {
            (Some(messages), _) => {
                let mut ids = BEGIN_OF_TEXT.to_vec();
                for m in messages {
                    let role = ROLE_TOKENS + (text_hash(&m.role) % 1000) as u32;
                    ids.extend([START_HEADER, role, END_HEADER]);
                    ids.extend(tokenize(&content_text(&m.content)));
                    ids.push(END_OF_TURN);
                }
                ids
            }
            (None, Some(Value::String(s))) => tokenize(s),
            (None, Some(Value::Array(items))) => {
                let mut ids = Vec::new();
                for i in items {
                    match i {
                        Value::String(s) => ids.extend(tokenize(s)),
                        // A token id (one that is no u32 stands for some id all the same).
                        Value::Number(n) => ids.push(
                            n.as_u64()
                                .and_then(|n| u32::try_from(n).ok())
                                .unwrap_or_else(|| text_hash(&n.to_string()) as u32),
                        ),
                        _ => {}
                    }
                }
                ids
            }
            _ => Vec::new(),
        }
    }

    /// The output budget vLLM 0.33.0 gives a request of `prompt` tokens on a server whose
    /// context is `max_model_len` tokens, or its refusal, checked in vLLM's order:
    /// `max_tokens` above the context (`TokenizeParams.__post_init__`, renderers/params.py), a
    /// prompt above it (`_token_len_check`), then `max_tokens` cut to what the context has left
    /// (`get_max_tokens`, entrypoints/serve/utils/api_utils.py — not an error), then
    /// `SamplingParams._verify_args` (at least one token; `min_tokens` at most `max_tokens`).
    pub fn output_budget(&self, prompt: u64, max_model_len: u64) -> Result<u64, RequestError> {
        let (asked, param) = match (self.max_completion_tokens, self.max_tokens) {
            (Some(n), _) if self.is_chat() => (Some(n), "max_completion_tokens"),
            (_, n) => (n, "max_tokens"),
        };
        if let Some(n) = asked.filter(|&n| n > max_model_len) {
            return Err(RequestError::bad_request(
                format!(
                    "{param}={n} cannot be greater than max_model_len={max_model_len}. Please request fewer output tokens."
                ),
                Some(param),
            ));
        }
        if prompt > max_model_len {
            return Err(RequestError::bad_request(
                format!(
                    "This model's maximum context length is {max_model_len} tokens. However, your prompt contains {prompt} input tokens, which exceeds this limit even without any output tokens. Please reduce the length of the input prompt."
                ),
                Some("input_tokens"),
            ));
        }
        let budget = asked.unwrap_or(16).min(max_model_len - prompt);
        if budget < 1 {
            return Err(RequestError::bad_request(
                format!("max_tokens must be at least 1, got {budget}."),
                Some("max_tokens"),
            ));
        }
        if let Some(min) = self.min_tokens.filter(|&m| m > budget) {
            return Err(RequestError::bad_request(
                format!("min_tokens must be less than or equal to max_tokens={budget}, got {min}."),
                None,
            ));
        }
        Ok(budget)
    }
}

/// A request the server refuses, as vLLM 0.33.0 answers it: `{"error": {"message", "type",
/// "param", "code"}}` (`ErrorResponse` in vllm/entrypoints/serve/engine/protocol.py) with the
/// status in `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    /// The HTTP status, also written as the body's `code`.
    pub status: u16,
    /// `BadRequestError`, `NotFoundError` (vLLM's `create_error_response`), or the HTTP reason
    /// phrase (`Bad Request`) for what FastAPI refuses before vLLM sees the request.
    pub kind: &'static str,
    /// What was wrong, in vLLM's words where it has some.
    pub message: String,
    /// The request field at fault, when there is one.
    pub param: Option<String>,
}

impl RequestError {
    /// 400 `BadRequestError`, as vLLM's `create_error_response` writes it.
    pub fn bad_request(message: impl Into<String>, param: Option<&str>) -> Self {
        Self {
            status: 400,
            kind: "BadRequestError",
            message: message.into(),
            param: param.map(str::to_string),
        }
    }

    /// 404 `NotFoundError` for a model the server does not serve (`_check_model` in
    /// vllm/entrypoints/serve/engine/serving.py).
    pub fn unknown_model(asked: &str, served: &str) -> Self {
        Self {
            status: 404,
            kind: "NotFoundError",
            message: format!("The model `{asked}` does not exist. Valid aliases: {served}."),
            param: Some("model".into()),
        }
    }

    /// A body FastAPI's request validation refuses (vLLM's `validation_exception_handler`):
    /// 400, type `Bad Request`, the message `1 validation error:` and the error as Python
    /// prints a dict, `param` the dotted location unless given.
    fn validation(error: &[(&str, String)], loc: &str, param: Option<&str>) -> Self {
        let fields: Vec<String> = error
            .iter()
            .map(|(k, v)| format!("{}: {v}", py_str(k)))
            .collect();
        Self {
            status: 400,
            kind: "Bad Request",
            message: format!("1 validation error:\n  {{{}}}", fields.join(", ")),
            param: Some(param.unwrap_or(loc).to_string()),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.status}})
    }
}

/// A string as Python's `repr` writes it (single quotes unless the text holds one and no double
/// quote).
fn py_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// How vLLM's handler shows a request body in a validation error: containers by their size.
fn py_input(v: &Value) -> String {
    match v {
        Value::Object(m) => py_str(&format!("<dict of {} items>", m.len())),
        Value::Array(a) => py_str(&format!("<list of {} items>", a.len())),
        Value::String(s) => py_str(s),
        other => other.to_string(),
    }
}

/// The integer fields a simulator reads; pydantic refuses a value of another type before vLLM
/// sees the request.
const INTEGER_FIELDS: [&str; 3] = ["max_tokens", "max_completion_tokens", "min_tokens"];

/// Parses a chat (`chat`) or text completion request body, refusing it as vLLM 0.33.0 does:
/// not JSON, not an object, a required field missing (`messages`; a completion's `prompt`), an
/// integer field of another type, a negative `max_tokens` or `min_tokens`.
pub fn parse_completion(body: &[u8], chat: bool) -> Result<CompletionRequest, RequestError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| json_invalid(body, &e))?;
    let map = body_object(&value)?;
    if chat && !map.contains_key("messages") {
        return Err(missing(&value, "messages"));
    }
    if !chat {
        let empty = match map.get("prompt") {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(_) => false,
        };
        if empty {
            return Err(RequestError::validation(
                &[
                    ("type", py_str("value_error")),
                    ("loc", py_str("body")),
                    (
                        "msg",
                        py_str("Value error, Either prompt or prompt_embeds must be provided and non-empty."),
                    ),
                    ("input", py_input(&value)),
                ],
                "body",
                Some("prompt"),
            ));
        }
    }
    check_integers(map)?;
    let mut parsed: CompletionRequest = serde_json::from_value(value.clone()).map_err(|e| {
        RequestError::validation(
            &[
                ("type", py_str("model_type")),
                ("loc", py_str("body")),
                ("msg", py_str(&e.to_string())),
                ("input", py_input(&value)),
            ],
            "body",
            None,
        )
    })?;
    if !chat {
        // vLLM's completion request has no `messages`: an extra field, ignored.
        parsed.messages = None;
    }
    Ok(parsed)
}

/// The body as an object, or pydantic's refusal of anything else.
fn body_object(value: &Value) -> Result<&Map<String, Value>, RequestError> {
    value.as_object().ok_or_else(|| {
        RequestError::validation(
            &[
                ("type", py_str("model_attributes_type")),
                ("loc", py_str("body")),
                (
                    "msg",
                    py_str("Input should be a valid dictionary or object to extract fields from"),
                ),
                ("input", py_input(value)),
            ],
            "body",
            None,
        )
    })
}

/// A required field the body lacks.
fn missing(value: &Value, field: &str) -> RequestError {
    let loc = format!("body.{field}");
    RequestError::validation(
        &[
            ("type", py_str("missing")),
            ("loc", py_str(&loc)),
            ("msg", py_str("Field required")),
            ("input", py_input(value)),
        ],
        &loc,
        None,
    )
}

/// Parses an embeddings request body, refusing it as vLLM 0.33.0 does (not JSON, not an
/// object, no `input`).
pub fn parse_embeddings(body: &[u8]) -> Result<EmbeddingsRequest, RequestError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| json_invalid(body, &e))?;
    if !body_object(&value)?.contains_key("input") {
        return Err(missing(&value, "input"));
    }
    serde_json::from_value(value.clone()).map_err(|e| {
        RequestError::validation(
            &[
                ("type", py_str("model_type")),
                ("loc", py_str("body")),
                ("msg", py_str(&e.to_string())),
                ("input", py_input(&value)),
            ],
            "body",
            None,
        )
    })
}

/// Integer fields: another type is a validation error; a negative value is refused by
/// `SamplingParams._verify_args`.
fn check_integers(map: &Map<String, Value>) -> Result<(), RequestError> {
    for name in INTEGER_FIELDS {
        let Some(v) = map.get(name).filter(|v| !v.is_null()) else {
            continue;
        };
        if let Some(n) = v.as_i64().filter(|n| *n < 0) {
            let message = if name == "min_tokens" {
                format!("min_tokens must be greater than or equal to 0, got {n}.")
            } else {
                format!("max_tokens must be at least 1, got {n}.")
            };
            return Err(RequestError::bad_request(
                message,
                (name != "min_tokens").then_some("max_tokens"),
            ));
        }
        if v.as_u64().is_none() {
            let loc = format!("body.{name}");
            return Err(RequestError::validation(
                &[
                    ("type", py_str("int_type")),
                    ("loc", py_str(&loc)),
                    ("msg", py_str("Input should be a valid integer")),
                    ("input", py_input(v)),
                ],
                &loc,
                None,
            ));
        }
    }
    Ok(())
}

/// FastAPI's answer to a body that is not JSON: `json_invalid` at the character where the
/// decoder stopped (`loc` `body.N`). The decoder's words are serde's, not Python's.
fn json_invalid(body: &[u8], e: &serde_json::Error) -> RequestError {
    // serde counts lines and columns from 1; turn them into a character offset.
    // At the end of input Python's decoder points past the last character.
    let text = String::from_utf8_lossy(body);
    let mut offset = 0usize;
    for (i, line) in text.split('\n').enumerate() {
        if e.is_eof() {
            offset = text.chars().count();
            break;
        }
        if i + 1 == e.line() {
            offset += e.column().saturating_sub(1).min(line.chars().count());
            break;
        }
        offset += line.chars().count() + 1;
    }
    let loc = format!("body.{offset}");
    let reason = e.to_string();
    let reason = reason.split(" at line ").next().unwrap_or(&reason);
    RequestError::validation(
        &[
            ("type", py_str("json_invalid")),
            ("loc", py_str(&loc)),
            ("msg", py_str("JSON decode error")),
            ("input", py_str("<dict of 0 items>")),
            ("ctx", format!("{{'error': {}}}", py_str(reason))),
        ],
        &loc,
        None,
    )
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

/// The number of [`tokenize`]'s tokens in `text`.
pub fn count_tokens(text: &str) -> u64 {
    tokenize(text).len() as u64
}

/// Words the simulator "generates", one per token.
const OUTPUT_WORDS: &[&str] = &[
    " the", " answer", " is", " found", " by", " adding", " both", " sides", " so", " we", " get",
    " a", " value", " of", " x", " then", " check", " it", ".", " Next", ",",
];

/// The text of output token `i` (counting from 0): one word of a fixed cycle, each a single token
/// for [`tokenize`].
pub fn output_word(i: u64) -> &'static str {
    OUTPUT_WORDS[(i % OUTPUT_WORDS.len() as u64) as usize]
}

/// Builds the SSE events of one streamed completion in the shape vLLM 0.33.0 writes them
/// (`chat_completion_stream_generator` in `vllm/entrypoints/openai/chat_completion/serving.py`,
/// `completion_stream_generator` in `vllm/entrypoints/openai/completion/serving.py`, each chunk
/// serialised with `model_dump_json(exclude_unset=True)`, so a field the server set to `None`
/// is written as `null` and one it never set is left out):
///
/// - chat: the role chunk (`"delta":{"role":"assistant","content":""}`) when the first token is
///   ready — vLLM sends it on the first output of the engine, not on arrival — then one chunk per
///   token, the last of which carries `finish_reason` (there is no separate empty finish chunk);
/// - completions: one chunk per token (`"text"`), the last with `finish_reason`; no role chunk;
/// - then the usage chunk (`"choices":[]`) only for `stream_options.include_usage`, and
///   `data: [DONE]`.
///
/// Token chunks are built from a per-request prefix, so emitting a token costs a couple of small
/// copies, not a JSON serialisation.
pub struct ChunkWriter {
    /// `data: {"id":…,"object":…,"created":…,"model":…,"choices":[{"index":0,`
    head: Bytes,
    id: String,
    model: String,
    created: u64,
    chat: bool,
}

impl ChunkWriter {
    /// The writer of the completion `id` of `model`, created at `created` (Unix seconds), a chat
    /// completion when `chat` (else a text completion).
    pub fn new(id: &str, model: &str, created: u64, chat: bool) -> Self {
        let object = if chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        };
        let head = format!(
            r#"data: {{"id":{},"object":"{object}","created":{created},"model":{},"choices":[{{"index":0,"#,
            Value::from(id),
            Value::from(model),
        );
        Self {
            head: Bytes::from(head),
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

    /// `,"usage":{…}` for `continuous_usage_stats`: (prompt tokens, completion tokens so far).
    /// vLLM's chat stream sets `completion_tokens_details` (to `None`), its completion stream
    /// does not.
    fn running_usage(&self, out: &mut BytesMut, usage: Option<(u64, u64)>) {
        use std::fmt::Write;
        if let Some((prompt, completion)) = usage {
            let mut s = String::with_capacity(112);
            let _ = write!(
                s,
                r#","usage":{{"prompt_tokens":{prompt},"total_tokens":{},"completion_tokens":{completion}"#,
                prompt.saturating_add(completion)
            );
            s.push_str(if self.chat {
                r#","completion_tokens_details":null}"#
            } else {
                "}"
            });
            out.put_slice(s.as_bytes());
        }
    }

    /// The first chat chunk: the assistant role and empty content (not a token). Send it with the
    /// first token, as vLLM does; `usage` for `continuous_usage_stats` (completion 0).
    pub fn role_chunk(&self, usage: Option<(u64, u64)>) -> Bytes {
        let mut b = BytesMut::with_capacity(self.head.len() + 160);
        b.put_slice(&self.head);
        b.put_slice(
            br#""delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]"#,
        );
        self.running_usage(&mut b, usage);
        b.put_slice(b",\"prompt_token_ids\":null,\"prompt_text\":null}\n\n");
        b.freeze()
    }

    /// One chunk carrying `text` (already JSON-safe: the simulator's words need no escaping);
    /// with `finish`, the last chunk of the stream, which carries the finish reason; `usage` for
    /// `continuous_usage_stats` (completion tokens so far, this chunk's included).
    pub fn token_chunk(
        &self,
        text: &str,
        finish: Option<&str>,
        usage: Option<(u64, u64)>,
    ) -> Bytes {
        let mut b = BytesMut::with_capacity(self.head.len() + text.len() + 200);
        b.put_slice(&self.head);
        if self.chat {
            b.put_slice(br#""delta":{"content":""#);
        } else {
            b.put_slice(br#""text":""#);
        }
        b.put_slice(text.as_bytes());
        b.put_slice(if self.chat { b"\"}," } else { b"\"," });
        self.choice_tail(&mut b, finish);
        self.running_usage(&mut b, usage);
        b.put_slice(b",\"kv_transfer_params\":null}\n\n");
        b.freeze()
    }

    /// The fields after the delta (chat) or the text (completions), to the end of `choices`.
    fn choice_tail(&self, b: &mut BytesMut, finish: Option<&str>) {
        let reason = finish.map_or_else(|| "null".to_string(), |r| Value::from(r).to_string());
        b.put_slice(br#""logprobs":null,"finish_reason":"#);
        b.put_slice(reason.as_bytes());
        b.put_slice(match (self.chat, finish.is_some()) {
            (true, false) => br#","token_ids":null}]"#.as_slice(),
            (true, true) => br#","stop_reason":null,"token_ids":null,"weight_versions":null}]"#,
            (false, _) => {
                br#","stop_reason":null,"prompt_token_ids":null,"token_ids":null,"weight_versions":null}]"#
            }
        });
    }

    /// The first chat chunk without usage (see [`ChunkWriter::role_chunk`]).
    pub fn role(&self) -> Bytes {
        self.role_chunk(None)
    }

    /// One chunk carrying `text`, not the last.
    pub fn token(&self, text: &str) -> Bytes {
        self.token_chunk(text, None, None)
    }

    /// Several tokens' words in one chunk.
    pub fn tokens(&self, from: u64, count: u64) -> Bytes {
        let text: String = (from..from.saturating_add(count))
            .map(output_word)
            .collect();
        self.token(&text)
    }

    /// A finish chunk that carries no token: what vLLM sends when a sequence ends without output
    /// (`"delta":{}` in chat, `"text":""` in completions).
    pub fn finish(&self, reason: &str) -> Bytes {
        if !self.chat {
            return self.token_chunk("", Some(reason), None);
        }
        let mut b = BytesMut::with_capacity(self.head.len() + 160);
        b.put_slice(&self.head);
        b.put_slice(br#""delta":{},"#);
        self.choice_tail(&mut b, Some(reason));
        b.put_slice(b",\"kv_transfer_params\":null}\n\n");
        b.freeze()
    }

    /// The usage chunk (`choices` empty), as vLLM sends it for `include_usage` (serialised with
    /// `exclude_none`, so nothing but the counts).
    pub fn usage(&self, prompt: u64, completion: u64) -> Bytes {
        self.usage_with_cache(prompt, completion, None)
    }

    /// The usage chunk with `prompt_tokens_details.cached_tokens` when `cached_tokens` is set
    /// (see [`usage_with_cache`]).
    pub fn usage_with_cache(
        &self,
        prompt: u64,
        completion: u64,
        cached_tokens: Option<u64>,
    ) -> Bytes {
        self.event(&json!({
            "id": self.id, "object": self.object(), "created": self.created, "model": self.model,
            "choices": [], "usage": usage_with_cache(prompt, completion, cached_tokens)
        }))
    }

    /// The stream's last event: `data: [DONE]`.
    pub fn done() -> Bytes {
        Bytes::from_static(b"data: [DONE]\n\n")
    }

    fn event(&self, v: &Value) -> Bytes {
        Bytes::from(format!("data: {v}\n\n"))
    }
}

/// vLLM's `UsageInfo`, in its field order.
pub fn usage(prompt: u64, completion: u64) -> Value {
    usage_with_cache(prompt, completion, None)
}

/// vLLM's `UsageInfo` with, when `cached_tokens` is set, `prompt_tokens_details:
/// {"cached_tokens": n}`: the prompt tokens served from the prefix cache (the last field, as
/// vLLM orders it).
pub fn usage_with_cache(prompt: u64, completion: u64, cached_tokens: Option<u64>) -> Value {
    let mut u = json!({"prompt_tokens": prompt, "total_tokens": prompt.saturating_add(completion), "completion_tokens": completion});
    if let (Some(n), Some(map)) = (cached_tokens, u.as_object_mut()) {
        map.insert("prompt_tokens_details".into(), json!({"cached_tokens": n}));
    }
    u
}

/// Adds `usage.prompt_tokens_details.cached_tokens` to a whole completion body
/// ([`completion_body`]).
pub fn set_cached_tokens(body: &mut Value, cached_tokens: u64) {
    if let Some(usage) = body.get_mut("usage").and_then(Value::as_object_mut) {
        usage.insert(
            "prompt_tokens_details".into(),
            json!({"cached_tokens": cached_tokens}),
        );
    }
}

/// A whole non-streamed completion (`reason` `stop`: the last token is the end of sequence,
/// counted but without text, as in vLLM).
pub fn completion_body(
    id: &str,
    model: &str,
    created: u64,
    chat: bool,
    prompt: u64,
    completion: u64,
    reason: &str,
) -> Value {
    // A sequence that stopped ended on the end-of-sequence token, which counts as a token but
    // has no text.
    let words = if reason == "stop" {
        completion.saturating_sub(1)
    } else {
        completion
    };
    let text: String = (0..words).map(output_word).collect();
    let choice = if chat {
        json!({"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": null, "finish_reason": reason, "stop_reason": null})
    } else {
        json!({"index": 0, "text": text, "logprobs": null, "finish_reason": reason, "stop_reason": null})
    };
    json!({
        "id": id, "object": if chat { "chat.completion" } else { "text_completion" },
        "created": created, "model": model, "choices": [choice], "usage": usage(prompt, completion)
    })
}

/// An embeddings request.
#[derive(Debug, Clone, Deserialize)]
pub struct EmbeddingsRequest {
    /// The model asked for; empty when the client sent none.
    #[serde(default)]
    pub model: String,
    /// A string, an array of strings, or token-id arrays.
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

/// The body of `GET /v1/models` listing `models`, in the shape vLLM writes it.
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
        // Spacing the tokenizer ignores changes no id.
        let spaced: CompletionRequest =
            serde_json::from_str(r#"{"messages":[{"role":"user","content":"  one   two "}]}"#)
                .unwrap();
        assert_eq!(spaced.prompt_token_ids(), r.prompt_token_ids());
        // A conversation's next turn starts with the whole of the one before.
        let next: CompletionRequest = serde_json::from_str(
            r#"{"messages":[{"role":"user","content":"one two"},{"role":"assistant","content":"three"},{"role":"user","content":"four"}]}"#,
        )
        .unwrap();
        let (turn, history) = (next.prompt_token_ids(), r.prompt_token_ids());
        assert_eq!(turn[..history.len()], history[..]);
        assert_eq!(next.prompt_tokens(), 3 + 3 * 4 + 2 + 1 + 1);
        // The role is part of the prefix.
        let system: CompletionRequest =
            serde_json::from_str(r#"{"messages":[{"role":"system","content":"one two"}]}"#)
                .unwrap();
        assert_ne!(system.prompt_token_ids(), r.prompt_token_ids());
        let ids: CompletionRequest =
            serde_json::from_str(r#"{"prompt":["one two", 7, 1e3, 99999999999]}"#).unwrap();
        assert_eq!(ids.prompt_token_ids().len(), 5);
        assert_eq!(ids.prompt_token_ids()[2], 7);
        assert_eq!(r.max_tokens(), 9);
    }

    fn data(ev: &Bytes) -> Value {
        let s = std::str::from_utf8(ev).unwrap();
        let data = s
            .strip_prefix("data: ")
            .and_then(|d| d.strip_suffix("\n\n"))
            .unwrap();
        serde_json::from_str(data).unwrap()
    }

    /// The chunks, field for field and in order, as vLLM 0.33.0 serialises them.
    #[test]
    fn chunks_have_vllm_fields_in_vllm_order() {
        let w = ChunkWriter::new("cmpl-sim-1", "m", 5, true);
        let head = r#"data: {"id":"cmpl-sim-1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"#;
        assert_eq!(
            std::str::from_utf8(&w.role_chunk(None)).unwrap(),
            format!(
                "{head}{}\n\n",
                r#""delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"prompt_token_ids":null,"prompt_text":null}"#
            )
        );
        assert_eq!(
            std::str::from_utf8(&w.token_chunk(" a", None, Some((7, 1)))).unwrap(),
            format!(
                "{head}{}\n\n",
                r#""delta":{"content":" a"},"logprobs":null,"finish_reason":null,"token_ids":null}],"usage":{"prompt_tokens":7,"total_tokens":8,"completion_tokens":1,"completion_tokens_details":null},"kv_transfer_params":null}"#
            )
        );
        assert_eq!(
            std::str::from_utf8(&w.token_chunk("", Some("stop"), None)).unwrap(),
            format!(
                "{head}{}\n\n",
                r#""delta":{"content":""},"logprobs":null,"finish_reason":"stop","stop_reason":null,"token_ids":null,"weight_versions":null}],"kv_transfer_params":null}"#
            )
        );
        assert_eq!(
            std::str::from_utf8(&w.usage(7, 2)).unwrap(),
            "data: {\"id\":\"cmpl-sim-1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"total_tokens\":9,\"completion_tokens\":2}}\n\n"
        );
        let c = ChunkWriter::new("cmpl-sim-2", "m", 5, false);
        assert_eq!(
            std::str::from_utf8(&c.token_chunk(" a", Some("length"), Some((3, 2)))).unwrap(),
            "data: {\"id\":\"cmpl-sim-2\",\"object\":\"text_completion\",\"created\":5,\"model\":\"m\",\"choices\":[{\"index\":0,\"text\":\" a\",\"logprobs\":null,\"finish_reason\":\"length\",\"stop_reason\":null,\"prompt_token_ids\":null,\"token_ids\":null,\"weight_versions\":null}],\"usage\":{\"prompt_tokens\":3,\"total_tokens\":5,\"completion_tokens\":2},\"kv_transfer_params\":null}\n\n"
        );
        // A sequence that ends without output: an empty delta with the reason.
        let v = data(&w.finish("abort"));
        assert_eq!(v["choices"][0]["delta"], json!({}));
        assert_eq!(v["choices"][0]["finish_reason"], "abort");
    }

    #[test]
    fn output_budget_follows_vllm_limits() {
        let req = |max: Option<u64>, min: Option<u64>| CompletionRequest {
            model: String::new(),
            messages: Some(Vec::new()),
            prompt: None,
            max_tokens: max,
            max_completion_tokens: None,
            stream: false,
            stream_options: None,
            ignore_eos: false,
            min_tokens: min,
        };
        assert_eq!(req(Some(100), None).output_budget(10, 1000), Ok(100));
        // Prompt and output together past the context: the output is cut, not refused.
        assert_eq!(req(Some(100), None).output_budget(950, 1000), Ok(50));
        assert_eq!(req(None, None).output_budget(10, 1000), Ok(16));
        let e = req(Some(2000), None).output_budget(10, 1000).unwrap_err();
        assert_eq!((e.status, e.param.as_deref()), (400, Some("max_tokens")));
        assert_eq!(
            e.message,
            "max_tokens=2000 cannot be greater than max_model_len=1000. Please request fewer output tokens."
        );
        let e = req(Some(10), None).output_budget(1001, 1000).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input_tokens"));
        assert!(e.message.starts_with("This model's maximum context length is 1000 tokens. However, your prompt contains 1001 input tokens"));
        let e = req(Some(10), None).output_budget(1000, 1000).unwrap_err();
        assert_eq!(e.message, "max_tokens must be at least 1, got 0.");
        let e = req(Some(10), Some(11)).output_budget(5, 1000).unwrap_err();
        assert_eq!(
            e.message,
            "min_tokens must be less than or equal to max_tokens=10, got 11."
        );
        assert_eq!(e.param, None);
    }

    #[test]
    fn bad_bodies_are_refused_as_vllm_refuses_them() {
        let e = parse_completion(b"{\"model\": ", true).unwrap_err();
        assert_eq!((e.status, e.kind), (400, "Bad Request"));
        assert_eq!(e.param.as_deref(), Some("body.10"));
        assert!(e.message.starts_with("1 validation error:\n  {'type': 'json_invalid', 'loc': 'body.10', 'msg': 'JSON decode error', 'input': '<dict of 0 items>', 'ctx': {'error': "), "{}", e.message);
        let e = parse_completion(br#"{"model": "m"}"#, true).unwrap_err();
        assert_eq!(
            e.message,
            "1 validation error:\n  {'type': 'missing', 'loc': 'body.messages', 'msg': 'Field required', 'input': '<dict of 1 items>'}"
        );
        assert_eq!(e.param.as_deref(), Some("body.messages"));
        let e = parse_completion(br#"{"model": "m"}"#, false).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("prompt"));
        let e = parse_completion(br#"{"prompt": "a", "max_tokens": "many"}"#, false).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("body.max_tokens"));
        let e = parse_completion(br#"{"prompt": "a", "max_tokens": -1}"#, false).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            ("BadRequestError", "max_tokens must be at least 1, got -1.")
        );
        let e = parse_completion(b"[1]", false).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("body"));
        assert_eq!(
            e.body(),
            json!({"error": {"message": e.message, "type": "Bad Request", "param": "body", "code": 400}})
        );
        let ok = parse_completion(
            br#"{"messages": [], "stream_options": {"include_usage": true, "continuous_usage_stats": null}}"#,
            true,
        )
        .unwrap();
        assert!(ok.include_usage() && !ok.continuous_usage() && ok.model.is_empty());
        let e = RequestError::unknown_model("x", "m");
        assert_eq!(
            e.body(),
            json!({"error": {"message": "The model `x` does not exist. Valid aliases: m.", "type": "NotFoundError", "param": "model", "code": 404}})
        );
    }
}
