//! Per-request records, and the decoding of responses into them.
//!
//! Decoding happens after the bytes were stamped, and only as far as the metrics need: whether a
//! chunk carries content (not the content itself: a `RawValue` borrowed from the buffer is enough),
//! the usage block, the finish reason and errors.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::chunk_scan::{self, ChoiceView, ChunkView};
use crate::{sse::SseEvent, Error};

/// Where a request's completion-token count came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenSource {
    /// The server's `usage` block.
    Usage,
    /// Counted content events of the stream (the server sent no usage; llama.cpp does this).
    /// One event usually carries one token, but a server may put several in one chunk.
    Events,
    /// Not known (the request failed before any count was possible).
    #[default]
    Unknown,
}

impl TokenSource {
    /// The name written in result documents (`output_token_source`).
    pub fn name(self) -> &'static str {
        match self {
            TokenSource::Usage => "usage",
            TokenSource::Events => "events",
            TokenSource::Unknown => "unknown",
        }
    }
}

/// Timestamps of one request, in nanoseconds on the run's [`crate::Clock`].
///
/// Every timestamp is read when the bytes it marks were handed over by the connection, before any
/// parsing. `send_ns` is taken right before the request is written to an open connection (opening
/// a connection is timed apart, in `connect_ns`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestTiming {
    /// Request handed to the connection; when a connection had to be opened and that failed,
    /// when the opening started.
    pub send_ns: u64,
    /// Time spent opening a connection for this request, nanoseconds (a duration, not a
    /// timestamp; 0 when a kept-alive one was reused).
    pub connect_ns: u64,
    /// Response status line and headers received.
    pub headers_ns: Option<u64>,
    /// First body bytes received.
    pub first_byte_ns: Option<u64>,
    /// First content token received (streaming only). A role-only delta is not a token; a
    /// reasoning delta is.
    pub first_token_ns: Option<u64>,
    /// First answer token received (streaming only): the first `content` delta, after any
    /// reasoning. Equal to `first_token_ns` for a model that does not reason.
    pub first_answer_ns: Option<u64>,
    /// Arrival time of every event that carried content (streaming only), in order.
    pub token_events_ns: Vec<u64>,
    /// The response was complete (last body bytes received), or the request failed.
    pub end_ns: Option<u64>,
}

impl RequestTiming {
    /// Arrival of the last content event.
    pub fn last_token_ns(&self) -> Option<u64> {
        self.token_events_ns.last().copied()
    }
    /// Time to first token, seconds.
    pub fn ttft_s(&self) -> Option<f64> {
        self.first_token_ns.map(|t| secs(t - self.send_ns))
    }
    /// End-to-end latency, seconds.
    pub fn e2e_s(&self) -> Option<f64> {
        self.end_ns.map(|t| secs(t - self.send_ns))
    }
}

pub(crate) fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// The outcome of one chat or completion request.
#[derive(Debug, Clone, Default)]
pub struct RequestRecord {
    /// When its bytes went out and came back.
    pub timing: RequestTiming,
    /// Prompt tokens, from the server's `usage` (`None`: not reported; never guessed).
    pub prompt_tokens: Option<u64>,
    /// Of `prompt_tokens`, those the server took from its prefix cache
    /// (`usage.prompt_tokens_details.cached_tokens`; `None`: not reported — vLLM reports it with
    /// `--enable-prompt-tokens-details`).
    pub cached_tokens: Option<u64>,
    /// Completion tokens: the server's `usage`, else the content events counted (see
    /// `token_source`).
    pub completion_tokens: Option<u64>,
    /// Reasoning tokens, where the server reports them apart.
    pub reasoning_tokens: Option<u64>,
    /// Where `completion_tokens` came from.
    pub token_source: TokenSource,
    /// Events that carried content or reasoning text.
    pub content_events: u64,
    /// Of `content_events`, those that carried only reasoning text.
    pub reasoning_events: u64,
    /// The server's `finish_reason` (`stop`, `length`, …), when it sent one.
    pub finish_reason: Option<String>,
    /// The response's `id` as the server gave it (first chunk), to find it in the server's logs.
    pub response_id: Option<String>,
    /// Why the request failed (`None`: it succeeded).
    pub error: Option<Error>,
    /// Which of the client's servers it was sent to: an index into
    /// [`crate::Client::api_bases`] (0 with one server).
    pub replica: usize,
    /// The answer's text (its content, reasoning left out), kept only when the connection was
    /// asked to ([`crate::Connection::capture_answers`]): a conversation's next turn carries it.
    /// Decoded after the arrival stamps are taken, so keeping it never moves a timestamp.
    pub answer: Option<String>,
}

impl RequestRecord {
    /// Whether the request succeeded.
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

/// The outcome of one embeddings request.
#[derive(Debug, Clone, Default)]
pub struct EmbeddingsRecord {
    /// When its bytes went out and came back (no token events: the response is not streamed).
    pub timing: RequestTiming,
    /// Input tokens, from the server's `usage` (`None`: not reported).
    pub prompt_tokens: Option<u64>,
    /// Length of each returned vector, in the order of `data`.
    pub dimensions: Vec<usize>,
    /// The server returned a list of vectors (one per token) for an input instead of one vector:
    /// it does not pool embeddings.
    pub per_token: bool,
    /// Why the request failed (`None`: it succeeded).
    pub error: Option<Error>,
    /// Which of the client's servers it was sent to: an index into
    /// [`crate::Client::api_bases`] (0 with one server).
    pub replica: usize,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens_details: Option<UsageDetails>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct UsageDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Chunk<'a> {
    /// Borrowed unless it holds escapes (a `&str` would refuse those, failing the chunk).
    #[serde(borrow, default)]
    id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Vec<ChunkChoice<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    /// Chat responses carry `message`, text completions `text`.
    #[serde(borrow, default)]
    message: Option<Delta<'a>>,
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
    #[serde(borrow, default)]
    finish_reason: Option<&'a str>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    reasoning_content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    reasoning: Option<&'a RawValue>,
}

/// Appends the text of a raw JSON string value to `answer` (a value that is not a string adds
/// nothing).
fn append_text(answer: &mut String, raw: Option<&str>) {
    if let Some(raw) = raw {
        if let Ok(text) = serde_json::from_str::<std::borrow::Cow<'_, str>>(raw) {
            answer.push_str(&text);
        }
    }
}

/// A raw JSON string value that is not empty (`null` already became `None`).
fn has_text(raw: Option<&str>) -> bool {
    raw.is_some_and(|s| s.starts_with('"') && s.len() > 2)
}

/// What a chunk's choice carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carried {
    Nothing,
    /// Only reasoning text (`reasoning_content` or `reasoning`).
    Reasoning,
    /// Answer text (`content`, or `text` of a text completion), with or without reasoning.
    Answer,
}

impl<'a> ChunkChoice<'a> {
    /// The fields the metrics read, as [`chunk_scan::scan`] gives them: the `delta`'s text fields,
    /// or without a delta the `message`'s.
    fn view(&self) -> ChoiceView<'a> {
        let d = self.delta.as_ref().or(self.message.as_ref());
        let raw = |f: fn(&Delta<'a>) -> Option<&'a RawValue>| d.and_then(f).map(RawValue::get);
        ChoiceView {
            text: self.text.map(RawValue::get),
            content: raw(|d| d.content),
            reasoning_content: raw(|d| d.reasoning_content),
            reasoning: raw(|d| d.reasoning),
            finish_reason: self.finish_reason,
        }
    }
}

impl ChoiceView<'_> {
    /// Appends the answer text this choice carried (`content`, or a text completion's `text`).
    fn append_answer(&self, answer: &mut String) {
        append_text(answer, self.text);
        append_text(answer, self.content);
    }

    fn carried(&self) -> Carried {
        if has_text(self.text) || has_text(self.content) {
            Carried::Answer
        } else if has_text(self.reasoning_content) || has_text(self.reasoning) {
            Carried::Reasoning
        } else {
            Carried::Nothing
        }
    }
}

/// The message of an `error` value: `{"message": …}`, a plain string, or the raw JSON.
fn error_message(raw: &RawValue) -> String {
    #[derive(Deserialize)]
    struct WithMessage {
        message: String,
    }
    if let Ok(m) = serde_json::from_str::<WithMessage>(raw.get()) {
        return m.message;
    }
    if let Ok(s) = serde_json::from_str::<String>(raw.get()) {
        return s;
    }
    truncate(raw.get(), 300)
}

/// The message of an error body as servers write it: OpenAI's `{"error": {"message": …}}`, a
/// plain `{"error": "…"}` or `{"message": "…"}`, FastAPI's `{"detail": "…"}` or
/// `{"detail": [{"msg": …}]}` (llama-cpp-python's server); otherwise the text itself.
pub(crate) fn error_body_message(text: &str) -> String {
    let text = text.trim();
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return truncate(text, 300);
    };
    let found = v
        .pointer("/error/message")
        .or_else(|| v.get("error").filter(|e| e.is_string()))
        .or_else(|| v.get("message").filter(|e| e.is_string()))
        .or_else(|| v.get("detail").filter(|e| e.is_string()))
        .or_else(|| v.pointer("/detail/0/msg"))
        .and_then(|m| m.as_str());
    truncate(found.unwrap_or(text), 300)
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The most tokens a `usage` count may report (2^24, more than any model's context): a larger
/// count is a broken or hostile server, and believing it would size the per-token figures by it.
pub const MAX_USAGE_TOKENS: u64 = 1 << 24;

fn apply_usage(record: &mut RequestRecord, usage: Usage) {
    let cached = usage
        .prompt_tokens_details
        .as_ref()
        .and_then(|d| d.cached_tokens);
    let counts = [
        usage.prompt_tokens,
        cached,
        usage.completion_tokens,
        usage
            .completion_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens),
    ];
    if let Some(n) = counts.into_iter().flatten().find(|&n| n > MAX_USAGE_TOKENS) {
        record.error = Some(Error::BadResponse(format!(
            "usage reports {n} tokens, more than any response holds ({MAX_USAGE_TOKENS})"
        )));
        return;
    }
    if usage.prompt_tokens.is_some() {
        record.prompt_tokens = usage.prompt_tokens;
    }
    if cached.is_some() {
        record.cached_tokens = cached;
    }
    if let Some(c) = usage.completion_tokens {
        record.completion_tokens = Some(c);
        record.token_source = TokenSource::Usage;
    }
    if let Some(r) = usage
        .completion_tokens_details
        .and_then(|d| d.reasoning_tokens)
    {
        record.reasoning_tokens = Some(r);
    }
}

/// Turns SSE events of a streamed completion into a [`RequestRecord`].
pub(crate) struct StreamState {
    pub record: RequestRecord,
    pub done: bool,
    /// The chunk the stream's next ones likely repeat, for the fast scanner.
    template: chunk_scan::Template,
}

impl StreamState {
    pub fn new(record: RequestRecord) -> Self {
        Self {
            record,
            done: false,
            template: chunk_scan::Template::default(),
        }
    }

    /// Handles one event that arrived at `t_ns`. Returns `false` once the stream is over (done, or
    /// an error was recorded).
    pub fn on_event(&mut self, event: SseEvent<'_>, t_ns: u64) -> bool {
        let data = event.data;
        if event.is_error_event() {
            let text = String::from_utf8_lossy(data);
            let msg = match serde_json::from_str::<Chunk>(&text) {
                Ok(Chunk { error: Some(e), .. }) => error_message(e),
                _ => truncate(&text, 300),
            };
            self.record.error = Some(Error::ServerEvent(msg));
            return false;
        }
        if data == b"[DONE]" {
            self.done = true;
            return false;
        }
        if data.iter().all(u8::is_ascii_whitespace) {
            return true;
        }
        // The plain chunk of a token is read by the fast scanner; anything else (usage, errors,
        // unusual shapes) by the full decoder, to the same fields.
        let (view, usage) = match chunk_scan::scan_after(data, &mut self.template) {
            Some(view) => (view, None),
            None => {
                let chunk: Chunk = match serde_json::from_slice(data) {
                    Ok(c) => c,
                    Err(e) => {
                        self.record.error = Some(Error::BadStream(format!(
                            "event is not valid JSON ({e}): {}",
                            truncate(&String::from_utf8_lossy(data), 200)
                        )));
                        return false;
                    }
                };
                if let Some(e) = chunk.error {
                    self.record.error = Some(Error::ServerEvent(error_message(e)));
                    return false;
                }
                let view = ChunkView {
                    choice: chunk.choices.first().map(ChunkChoice::view),
                    id: chunk.id,
                };
                (view, chunk.usage)
            }
        };
        if self.record.response_id.is_none() {
            self.record.response_id = view.id.map(|id| id.into_owned());
        }
        if let Some(choice) = view.choice {
            let carried = choice.carried();
            if carried != Carried::Nothing {
                let timing = &mut self.record.timing;
                if timing.first_token_ns.is_none() {
                    timing.first_token_ns = Some(t_ns);
                }
                if carried == Carried::Answer {
                    if timing.first_answer_ns.is_none() {
                        timing.first_answer_ns = Some(t_ns);
                    }
                    if let Some(answer) = self.record.answer.as_mut() {
                        choice.append_answer(answer);
                    }
                } else {
                    self.record.reasoning_events += 1;
                }
                timing.token_events_ns.push(t_ns);
                self.record.content_events += 1;
            }
            if let Some(reason) = choice.finish_reason {
                self.record.finish_reason = Some(reason.to_string());
            }
        }
        if let Some(usage) = usage {
            apply_usage(&mut self.record, usage);
        }
        true
    }

    /// Closes the record when the body ended.
    pub fn finish(mut self) -> RequestRecord {
        if self.record.error.is_none() && !self.done && self.record.finish_reason.is_none() {
            self.record.error = Some(Error::BadStream(
                "stream ended without [DONE] or a finish reason".into(),
            ));
        }
        if self.record.token_source != TokenSource::Usage && self.record.error.is_none() {
            self.record.completion_tokens = Some(self.record.content_events);
            self.record.token_source = TokenSource::Events;
        }
        self.record
    }
}

/// Decodes a complete non-streamed completion body into `record`.
pub(crate) fn decode_completion(body: &[u8], record: &mut RequestRecord) {
    let chunk: Chunk = match serde_json::from_slice(body) {
        Ok(c) => c,
        Err(e) => {
            record.error = Some(Error::BadResponse(format!(
                "body is not a completion ({e}): {}",
                truncate(&String::from_utf8_lossy(body), 200)
            )));
            return;
        }
    };
    if let Some(e) = chunk.error {
        record.error = Some(Error::ServerEvent(error_message(e)));
        return;
    }
    record.response_id = chunk.id.map(|id| id.into_owned());
    if let Some(choice) = chunk.choices.first().map(ChunkChoice::view) {
        record.finish_reason = choice.finish_reason.map(str::to_string);
        record.content_events = u64::from(choice.carried() != Carried::Nothing);
        if let Some(answer) = record.answer.as_mut() {
            choice.append_answer(answer);
        }
    }
    match chunk.usage {
        Some(usage) if usage.completion_tokens.is_some() => apply_usage(record, usage),
        _ => {
            record.error = Some(Error::BadResponse(
                "response has no usage.completion_tokens; use --stream to count tokens from events"
                    .into(),
            ))
        }
    }
}

/// Decodes a complete embeddings body into `record`: token usage and each vector's length,
/// counted without building the vectors.
///
/// A body of the plain shape is read by [`chunk_scan::scan_embeddings`], which checks the JSON
/// grammar of the numbers without converting them (a vector of 4,096 numbers in about a third of
/// the time serde takes to convert each to an `f64`); anything else by serde, each vector taken as
/// raw JSON and counted by [`vector_len`]. The two read the same (a property test compares them).
/// As no number is converted, one beyond an `f64`'s range (`1e400`) is counted like any other (a
/// vector's values are not the benchmark's business); and a body with an `error` member is the
/// server's error whatever else it holds.
pub(crate) fn decode_embeddings(body: &[u8], record: &mut EmbeddingsRecord) {
    let read = match chunk_scan::scan_embeddings(body).and_then(|view| {
        let usage = match view.usage {
            Some(raw) => Some(serde_json::from_str::<Usage>(raw).ok()?),
            None => None,
        };
        Some((usage, view.vectors))
    }) {
        Some(read) => Ok(read),
        None => decode_embeddings_fully(body),
    };
    let (usage, vectors) = match read {
        Ok(read) => read,
        Err(e) => {
            record.error = Some(e);
            return;
        }
    };
    record.prompt_tokens = usage.and_then(|u| u.prompt_tokens);
    if let Some(n) = record.prompt_tokens.filter(|&n| n > MAX_USAGE_TOKENS) {
        record.error = Some(Error::BadResponse(format!(
            "usage reports {n} tokens, more than any response holds ({MAX_USAGE_TOKENS})"
        )));
        return;
    }
    record.per_token = vectors.iter().any(|&(_, nested)| nested);
    record.dimensions = vectors.into_iter().map(|(n, _)| n).collect();
}

/// What is read from an embeddings body: its usage, and each vector's length and whether it was
/// one vector per token.
type EmbeddingsRead = (Option<Usage>, Vec<(usize, bool)>);

/// An embeddings body read by serde: its usage and each vector's length (see [`vector_len`]), or
/// why it is not an embeddings response (or the server's error, when it is one).
fn decode_embeddings_fully(body: &[u8]) -> Result<EmbeddingsRead, Error> {
    #[derive(Deserialize)]
    struct Body<'a> {
        #[serde(borrow, default)]
        data: Vec<Item<'a>>,
        #[serde(default)]
        usage: Option<Usage>,
        #[serde(borrow, default)]
        error: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Item<'a> {
        #[serde(borrow)]
        embedding: &'a RawValue,
    }
    let not_embeddings = |why: &dyn std::fmt::Display| {
        Error::BadResponse(format!(
            "body is not an embeddings response ({why}): {}",
            truncate(&String::from_utf8_lossy(body), 200)
        ))
    };
    let b = serde_json::from_slice::<Body>(body).map_err(|e| not_embeddings(&e))?;
    if let Some(e) = b.error {
        return Err(Error::ServerEvent(error_message(e)));
    }
    let vectors = b
        .data
        .iter()
        .enumerate()
        .map(|(i, item)| {
            vector_len(item.embedding.get().as_bytes()).ok_or_else(|| {
                not_embeddings(&format_args!(
                    "data[{i}].embedding is not an array of numbers or of arrays of numbers"
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    Ok((b.usage, vectors))
}

/// The length of `raw` — one JSON value, already checked by the JSON parser — if it is an array
/// of numbers, and `false`; or, if it is an array of arrays of numbers (one vector per token, as
/// llama.cpp answers without pooling), the length of its first inner array, and `true`. `None` for
/// anything else.
///
/// Because `raw` is valid JSON, it holds only numbers and arrays exactly when none of its bytes
/// begins a string, an object, `true`, `false` or `null`; elements are then counted by their commas.
fn vector_len(raw: &[u8]) -> Option<(usize, bool)> {
    if raw.len() < 2 || raw[0] != b'[' {
        return None;
    }
    // One pass that the compiler vectorises: byte-wide counters over runs of at most 255 bytes
    // (so they cannot overflow), and no early exit.
    let (mut other, mut commas, mut opens) = (0u8, 0usize, 0usize);
    for run in raw.chunks(255) {
        let (mut c, mut k) = (0u8, 0u8);
        for &b in run {
            other |= u8::from(b == b'"')
                | u8::from(b == b'{')
                | u8::from(b == b't')
                | u8::from(b == b'f')
                | u8::from(b == b'n');
            c += u8::from(b == b',');
            k += u8::from(b == b'[');
        }
        commas += usize::from(c);
        opens += usize::from(k);
    }
    if other != 0 {
        return None;
    }
    let elements = |s: &[u8], commas: usize| match commas {
        0 if s.iter().all(u8::is_ascii_whitespace) => 0,
        _ => commas + 1,
    };
    let between = &raw[1..raw.len().saturating_sub(1)];
    if opens == 1 {
        return Some((elements(between, commas), false));
    }
    // Nested: the first inner array's length; no array may be nested deeper.
    let (mut depth, mut first) = (0u32, None);
    let mut start = 0;
    for i in memchr::memchr2_iter(b'[', b']', raw) {
        if raw[i] == b'[' {
            depth += 1;
            if depth > 2 {
                return None;
            }
            if depth == 2 && start == 0 {
                start = i + 1;
            }
        } else {
            if depth == 2 && first.is_none() {
                first = Some(&raw[start..i]);
            }
            depth = depth.saturating_sub(1);
        }
    }
    let first = first?;
    let inner_commas = first.iter().filter(|&&b| b == b',').count();
    Some((elements(first, inner_commas), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(data: &str) -> SseEvent<'_> {
        SseEvent {
            event: None,
            data: data.as_bytes(),
        }
    }

    #[test]
    fn answers_are_kept_only_when_asked_for_and_without_reasoning() {
        let events = [
            r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"delta":{"reasoning_content":"hmm"}}]}"#,
            r#"{"choices":[{"delta":{"content":"A\"b"}}]}"#,
            r#"{"choices":[{"delta":{"content":" \u00e9t\u00e9"}}]}"#,
            r#"{"choices":[{"text":" c"}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
        ];
        for capture in [false, true] {
            let mut s = StreamState::new(RequestRecord {
                answer: capture.then(String::new),
                ..RequestRecord::default()
            });
            for (i, e) in events.iter().enumerate() {
                assert!(s.on_event(ev(e), i as u64));
            }
            let r = s.finish();
            assert!(r.error.is_none());
            assert_eq!(r.content_events, 4);
            let want = capture.then(|| "A\"b été c".to_string());
            assert_eq!(r.answer, want);
        }
        let body = r#"{"choices":[{"message":{"role":"assistant","content":"whole \"one\""},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#;
        let mut r = RequestRecord {
            answer: Some(String::new()),
            ..RequestRecord::default()
        };
        decode_completion(body.as_bytes(), &mut r);
        assert_eq!(r.answer.as_deref(), Some("whole \"one\""));
        let mut r = RequestRecord::default();
        decode_completion(body.as_bytes(), &mut r);
        assert_eq!(r.answer, None);
    }

    #[test]
    fn role_only_delta_is_not_a_token_but_reasoning_is() {
        let mut s = StreamState::new(RequestRecord::default());
        assert!(s.on_event(
            ev(r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#),
            10
        ));
        assert_eq!(s.record.timing.first_token_ns, None);
        assert!(s.on_event(
            ev(r#"{"choices":[{"delta":{"reasoning_content":"hmm"}}]}"#),
            20
        ));
        assert!(s.on_event(ev(r#"{"choices":[{"delta":{"content":"A\"b"}}]}"#), 30));
        assert!(s.on_event(
            ev(r#"{"choices":[{"delta":{},"finish_reason":"length"}]}"#),
            40
        ));
        assert!(s.on_event(
            ev(r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}}"#),
            50
        ));
        assert!(!s.on_event(ev("[DONE]"), 60));
        let r = s.finish();
        assert!(r.error.is_none());
        assert_eq!(r.timing.first_token_ns, Some(20));
        assert_eq!(r.timing.first_answer_ns, Some(30));
        assert_eq!(r.response_id, None);
        assert_eq!(r.reasoning_events, 1);
        assert_eq!(r.timing.token_events_ns, vec![20, 30]);
        assert_eq!((r.prompt_tokens, r.completion_tokens), (Some(7), Some(2)));
        assert_eq!(r.token_source, TokenSource::Usage);
        assert_eq!(r.finish_reason.as_deref(), Some("length"));
    }

    /// `usage.prompt_tokens_details.cached_tokens` (vLLM with `--enable-prompt-tokens-details`,
    /// the simulator) is kept; a `null` details block or none at all leaves it unreported.
    #[test]
    fn cached_prompt_tokens_are_read_when_reported() {
        let mut s = StreamState::new(RequestRecord::default());
        assert!(s.on_event(ev(r#"{"choices":[{"delta":{"content":"a"}}]}"#), 10));
        assert!(s.on_event(
            ev(r#"{"choices":[],"usage":{"prompt_tokens":2100,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":2048}}}"#),
            20
        ));
        let r = s.finish();
        assert_eq!((r.prompt_tokens, r.cached_tokens), (Some(2100), Some(2048)));
        for (body, cached) in [
            (
                r#"{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":9,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":0}}}"#,
                Some(0),
            ),
            (
                r#"{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":9,"completion_tokens":1,"prompt_tokens_details":null}}"#,
                None,
            ),
            (
                r#"{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":9,"completion_tokens":1}}"#,
                None,
            ),
        ] {
            let mut r = RequestRecord::default();
            decode_completion(body.as_bytes(), &mut r);
            assert!(r.error.is_none(), "{body}");
            assert_eq!(
                (r.prompt_tokens, r.cached_tokens),
                (Some(9), cached),
                "{body}"
            );
        }
        // A count past any context is a broken server, as for the other counts.
        let mut r = RequestRecord::default();
        let huge = MAX_USAGE_TOKENS + 1;
        decode_completion(
            format!(r#"{{"choices":[],"usage":{{"prompt_tokens":9,"prompt_tokens_details":{{"cached_tokens":{huge}}}}}}}"#).as_bytes(),
            &mut r,
        );
        assert!(
            matches!(r.error, Some(Error::BadResponse(_))),
            "{:?}",
            r.error
        );
    }

    /// vLLM 0.33.0's chunks as it writes them: the role chunk (`"content": ""` beside the role,
    /// sent with the first token) is not a token, nor is the end-of-sequence chunk (empty content
    /// with `finish_reason: "stop"`); TTFT starts at the first chunk with text.
    #[test]
    fn vllm_role_and_eos_chunks_are_not_tokens() {
        let mut s = StreamState::new(RequestRecord::default());
        let head = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"#;
        let role = format!(
            r#"{head}"delta":{{"role":"assistant","content":""}},"logprobs":null,"finish_reason":null}}],"prompt_token_ids":null,"prompt_text":null}}"#
        );
        let token = format!(
            r#"{head}"delta":{{"content":" the"}},"logprobs":null,"finish_reason":null,"token_ids":null}}],"kv_transfer_params":null}}"#
        );
        let eos = format!(
            r#"{head}"delta":{{"content":""}},"logprobs":null,"finish_reason":"stop","stop_reason":null,"token_ids":null,"weight_versions":null}}],"kv_transfer_params":null}}"#
        );
        assert!(s.on_event(ev(&role), 10));
        assert_eq!(s.record.timing.first_token_ns, None, "the role chunk");
        assert!(s.on_event(ev(&token), 11));
        assert!(s.on_event(ev(&eos), 20));
        assert!(s.on_event(
            ev(r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"m","choices":[],"usage":{"prompt_tokens":7,"total_tokens":9,"completion_tokens":2}}"#),
            21
        ));
        assert!(!s.on_event(ev("[DONE]"), 22));
        let r = s.finish();
        assert!(r.error.is_none());
        assert_eq!(r.timing.first_token_ns, Some(11));
        assert_eq!(r.timing.token_events_ns, vec![11]);
        assert_eq!(r.content_events, 1);
        assert_eq!(
            r.completion_tokens,
            Some(2),
            "the server's count, EOS included"
        );
        assert_eq!(r.finish_reason.as_deref(), Some("stop"));
        assert_eq!(r.response_id.as_deref(), Some("chatcmpl-1"));
    }

    /// The full decoder's reading of a chunk, as the fast scanner gives it (`None`: refused).
    fn full(data: &str) -> Option<ChunkView<'_>> {
        let chunk: Chunk = serde_json::from_str(data).ok()?;
        if chunk.usage.is_some() || chunk.error.is_some() {
            return None;
        }
        Some(ChunkView {
            choice: chunk.choices.first().map(ChunkChoice::view),
            id: chunk.id,
        })
    }

    /// Chunks as servers write them are read by the fast scanner, to exactly the full decoder's
    /// fields; what it is unsure of is left to the full decoder, and what the full decoder
    /// refuses the scanner refuses too.
    #[test]
    fn the_fast_scanner_reads_what_the_full_decoder_reads() {
        let fast = [
            r#"{"id":"cmpl-sim-1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"content":" the"},"logprobs":null,"finish_reason":null,"token_ids":null}],"kv_transfer_params":null}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"prompt_token_ids":null,"prompt_text":null}"#,
            r#"{"id":"x","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"stop","stop_reason":null}],"usage":null}"#,
            r#"{"choices":[{"delta":{"reasoning_content":"hmm"}}]}"#,
            r#"{"choices":[{"delta":{"reasoning":"hm\"m","content":null}}]}"#,
            r#"{"choices":[{"text":" c","index":0,"logprobs":null,"finish_reason":"length"}]}"#,
            r#"{"choices":[{"message":{"role":"assistant","content":"a\nb"},"finish_reason":"stop"}]}"#,
            r#"{"choices":[{"delta":null,"message":{"content":"m"}}]}"#,
            r#"{"choices":[{"delta":{"content":"d"},"message":{"content":"m"}}]}"#,
            r#"{"choices":[{"delta":{"content":7,"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":[1,2.5e-3,true,false,null]}"}}]}}]}"#,
            r#" { "id" : null , "choices" : [ ] , "created" : -0.5E+2 } "#,
            r#"{"choices":[],"error":null}"#,
            r#"{}"#,
            "{\"choices\":[{\"delta\":{\"content\":\"\u{e9}t\u{e9} \u{1f600}\"}}]}",
        ];
        for data in fast {
            let view = chunk_scan::scan(data.as_bytes());
            assert!(view.is_some(), "the scanner declined {data}");
            assert_eq!(view, full(data), "{data}");
        }
        let declined = [
            // Left to the full decoder: usage, errors, several choices, escapes it does not read.
            r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}}"#,
            r#"{"error":{"message":"boom"}}"#,
            r#"{"choices":[{"delta":{"content":"a"}},{"delta":{"content":"b"}}]}"#,
            r#"{"choices":[{"delta":{"content":"\u00e9"}}]}"#,
            r#"{"id":"a\/b","choices":[]}"#,
            r#"{"choic\u0065s":[]}"#,
            r#"{"choices":[{"finish_reason":"st\nop"}]}"#,
            r#"[null,[]]"#,
            // Invalid JSON, or JSON the full decoder refuses: the scanner refuses it too.
            r#"{"choices":[{"delta":{"content":"a"}}],"choices":[]}"#,
            r#"{"choices":[{"delta":{"content":"a","content":"b"}}]}"#,
            r#"{"choices":null}"#,
            r#"{"id":5}"#,
            r#"{"created":01}"#,
            r#"{"created":1.}"#,
            r#"{"created":tru}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":{"b":1,}}"#,
            r#"{"a":1,}"#,
            r#"{"a":"tab	inside"}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":1} x"#,
            r#"{"a":1"#,
            "{not json",
            "",
        ];
        for data in declined {
            assert_eq!(chunk_scan::scan(data.as_bytes()), None, "{data}");
        }
        assert_eq!(chunk_scan::scan(b"{\"a\":\"\xff\"}"), None, "invalid UTF-8");
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(40), "]".repeat(40));
        assert_eq!(chunk_scan::scan(deep.as_bytes()), None, "deep nesting");
        assert!(full(&deep).is_some());
    }

    /// A stream's chunks that repeat the last one read in full but for their text are read from
    /// it, as the full decoder reads them (their `id` was read with the first).
    #[test]
    fn chunks_that_repeat_a_template_are_read_from_it() {
        let head =
            r#"{"id":"cmpl-1","object":"chat.completion.chunk","created":5,"model":"m","choices":"#;
        let token = |t: &str| {
            format!(
                r#"{head}[{{"index":0,"delta":{{"content":{t}}},"finish_reason":null}}],"x":null}}"#
            )
        };
        let chunks = [
            // Two text fields: not a template.
            format!(
                r#"{head}[{{"index":0,"delta":{{"role":"assistant","content":"","reasoning":""}}}}]}}"#
            ),
            token(r#"" the""#),
            token(r#"" a\"b""#),
            token(r#""""#),
            token(r#""\u00e9""#), // declined, for the full decoder
            token(r#"null"#),
            token(r#"7"#),
            token(r#"" c""#),
            format!(
                r#"{head}[{{"index":0,"delta":{{"content":""}},"finish_reason":"stop"}}],"usage":null}}"#
            ),
            format!(r#"{head}[]}}"#),
            token(r#"" d" "#),
            token(r#"" e""#),
        ];
        let mut template = chunk_scan::Template::default();
        let mut read_in_full = Vec::new();
        for (i, data) in chunks.iter().enumerate() {
            let want = full(data);
            let got = chunk_scan::scan_after(data.as_bytes(), &mut template);
            let Some(got) = got else {
                assert!(data.contains("\\u00e9"), "{data}");
                continue;
            };
            let want = want.unwrap();
            assert_eq!(got.choice, want.choice, "{data}");
            if got.id.is_some() {
                assert_eq!(got.id, want.id, "{data}");
                read_in_full.push(i);
            }
        }
        assert_eq!(
            read_in_full,
            [0, 1, 5, 6, 8, 9, 10, 11],
            "the others from the template"
        );
        // Read from a template, a chunk is still checked: one string value in the place, exactly.
        for broken in [
            token(r#""a"x""#),
            token(r#""a","b""#),
            token(r#""a	b""#),
            token(r#""a"#),
        ] {
            assert_eq!(
                chunk_scan::scan_after(broken.as_bytes(), &mut template),
                None,
                "{broken}"
            );
            assert!(full(&broken).is_none(), "{broken}");
        }
    }

    #[test]
    fn without_usage_tokens_come_from_events() {
        let mut s = StreamState::new(RequestRecord::default());
        s.on_event(ev(r#"{"choices":[{"delta":{"content":"a"}}]}"#), 1);
        s.on_event(
            ev(r#"{"choices":[{"delta":{"content":"b"},"finish_reason":"stop"}]}"#),
            2,
        );
        let r = s.finish();
        assert!(
            r.error.is_none(),
            "a finish reason ends a stream without [DONE]"
        );
        assert_eq!(r.completion_tokens, Some(2));
        assert_eq!(r.token_source, TokenSource::Events);
    }

    #[test]
    fn errors_inside_a_stream() {
        let mut s = StreamState::new(RequestRecord::default());
        assert!(!s.on_event(ev(r#"{"error":{"message":"out of memory","code":500}}"#), 1));
        assert_eq!(
            s.finish().error.unwrap().to_string(),
            "server error event: out of memory"
        );

        let mut s = StreamState::new(RequestRecord::default());
        let e = SseEvent {
            event: Some(b"error"),
            data: b"\"overloaded\"",
        };
        assert!(!s.on_event(e, 1));
        assert_eq!(s.finish().error.unwrap().kind(), "server_error_event");

        let mut s = StreamState::new(RequestRecord::default());
        assert!(!s.on_event(ev("{not json"), 1));
        assert_eq!(s.finish().error.unwrap().kind(), "bad_stream");

        let mut s = StreamState::new(RequestRecord::default());
        s.on_event(ev(r#"{"choices":[{"delta":{"content":"a"}}]}"#), 1);
        assert_eq!(s.finish().error.unwrap().kind(), "bad_stream", "cut short");
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            error_body_message(r#"{"error":{"message":"model not found","code":404}}"#),
            "model not found"
        );
        assert_eq!(
            error_body_message(r#"{"error":"overloaded"}"#),
            "overloaded"
        );
        assert_eq!(error_body_message(r#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(
            error_body_message(r#"{"detail":[{"loc":["body"],"msg":"field required"}]}"#),
            "field required"
        );
        assert_eq!(error_body_message("Bad Gateway\n"), "Bad Gateway");
        assert_eq!(error_body_message(r#"{"other":1}"#), r#"{"other":1}"#);
    }

    #[test]
    fn embeddings_are_counted_not_stored() {
        let mut r = EmbeddingsRecord::default();
        decode_embeddings(
            br#"{"data":[{"embedding":[0.1,0.2,0.3],"index":0},{"embedding":[],"index":1}],"usage":{"prompt_tokens":9,"total_tokens":9}}"#,
            &mut r,
        );
        assert!(r.error.is_none());
        assert_eq!(r.dimensions, vec![3, 0]);
        assert_eq!(r.prompt_tokens, Some(9));
        assert!(!r.per_token);
        // llama.cpp without pooling: one vector per token.
        let mut r = EmbeddingsRecord::default();
        decode_embeddings(
            br#"{"data":[{"embedding":[[0.1,0.2],[0.3,0.4],[0.5,0.6]]}]}"#,
            &mut r,
        );
        assert!(r.error.is_none() && r.per_token);
        assert_eq!(r.dimensions, vec![2]);
        // Not vectors of numbers: named, with the item.
        for bad in [
            r#"{"data":[{"embedding":[0.1]},{"embedding":["a"]}]}"#,
            r#"{"data":[{"embedding":[{"x":1}]}]}"#,
            r#"{"data":[{"embedding":[[[0.1]]]}]}"#,
            r#"{"data":[{"embedding":[true]}]}"#,
            r#"{"data":[{"embedding":"AAAA"}]}"#,
            r#"{"data":[{"embedding":7}]}"#,
        ] {
            let mut r = EmbeddingsRecord::default();
            decode_embeddings(bad.as_bytes(), &mut r);
            let Some(Error::BadResponse(why)) = &r.error else {
                panic!("{bad}: {:?}", r.error);
            };
            assert!(
                why.contains("embedding is not an array of numbers"),
                "{why}"
            );
            assert!(r.dimensions.is_empty());
        }
        // Numbers are checked, not converted: one beyond an f64's range is counted too.
        let mut r = EmbeddingsRecord::default();
        decode_embeddings(br#"{"data":[{"embedding":[1e400,-2]}]}"#, &mut r);
        assert!(r.error.is_none(), "{:?}", r.error);
        assert_eq!(r.dimensions, vec![2]);
        // Repeated fields: refused by both readers.
        for twice in [
            r#"{"data":[{"embedding":[1]}],"data":[]}"#,
            r#"{"data":[{"embedding":[1],"embedding":[2]}]}"#,
        ] {
            assert!(chunk_scan::scan_embeddings(twice.as_bytes()).is_none());
            let mut r = EmbeddingsRecord::default();
            decode_embeddings(twice.as_bytes(), &mut r);
            assert!(matches!(&r.error, Some(Error::BadResponse(w)) if w.contains("duplicate")));
        }
        // The shapes servers send are read by the fast reader.
        for (body, vectors) in [
            (
                r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[-0.0043,0.1035e-2,7]}],"model":"m","usage":{"prompt_tokens":2,"total_tokens":2}}"#,
                vec![(3, false)],
            ),
            (
                r#"{"data":[{"embedding":[[0.1,0.2],[0.3,0.4]],"index":0}]}"#,
                vec![(2, true)],
            ),
            (r#" { "data" : [ ] , "usage" : null } "#, vec![]),
        ] {
            let view = chunk_scan::scan_embeddings(body.as_bytes());
            assert_eq!(view.map(|v| v.vectors), Some(vectors), "{body}");
        }
        // Numbers by JSON's grammar, as serde reads them.
        for bad in [
            "[01]", "[1.]", "[.5]", "[1e]", "[+1]", "[1,]", "[-]", "[1 2]", "[0x1]",
        ] {
            let body = format!(r#"{{"data":[{{"embedding":{bad}}}]}}"#);
            assert!(
                chunk_scan::scan_embeddings(body.as_bytes()).is_none(),
                "{bad}"
            );
            assert!(decode_embeddings_fully(body.as_bytes()).is_err(), "{bad}");
        }
        let mut r = EmbeddingsRecord::default();
        decode_embeddings(br#"{"data":[{"embedding":[1,2}]}"#, &mut r);
        assert!(matches!(&r.error, Some(Error::BadResponse(w)) if w.contains("not an embeddings")));
    }

    #[test]
    fn vector_lengths_are_counted_from_the_raw_json() {
        for (raw, want) in [
            ("[]", Some((0, false))),
            ("[ ]", Some((0, false))),
            ("[1]", Some((1, false))),
            ("[ -1.5e-3 , 2E+7,0 ]", Some((3, false))),
            ("[\n  0.25,\n  -0.5\n]", Some((2, false))),
            ("[[]]", Some((0, true))),
            ("[[1,2],[3,4],[5,6]]", Some((2, true))),
            ("[ [ 1 , 2 , 3 ] , [ ] ]", Some((3, true))),
            // Mixed, as the decoder before this one read it: the first inner array's length.
            ("[1,[2,3]]", Some((2, true))),
            ("[[[1]]]", None),
            ("[1,null]", None),
            ("[false]", None),
            ("[\"1\"]", None),
            ("[{}]", None),
            ("1", None),
            ("[", None),
            ("", None),
            ("\"[1]\"", None),
        ] {
            assert_eq!(vector_len(raw.as_bytes()), want, "{raw}");
        }
        // Longer than one 255-byte run of the counting pass.
        let long = format!("[{}]", vec!["0.123456"; 1000].join(","));
        assert_eq!(vector_len(long.as_bytes()), Some((1000, false)));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// JSON values that are mostly vectors: arrays of numbers, arrays of those, some of them
        /// three deep, and now and then a string, literal or object among the numbers.
        fn json_tree() -> impl Strategy<Value = serde_json::Value> {
            use serde_json::{json, Value};
            let leaf = prop_oneof![
                8 => any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(|x| json!(x)),
                4 => any::<i64>().prop_map(|x| json!(x)),
                1 => "[a-z\\[\\],\\{\\} ]{0,4}".prop_map(Value::String),
                1 => prop_oneof![Just(Value::Null), Just(json!(true)), Just(json!(false))],
                1 => Just(json!({"n": 1})),
            ];
            leaf.prop_recursive(3, 64, 12, |inner| {
                proptest::collection::vec(inner, 0..12).prop_map(Value::Array)
            })
        }

        proptest! {
            #[test]
            fn any_event_data_is_decoded_without_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
                let mut s = StreamState::new(RequestRecord::default());
                let _ = s.on_event(SseEvent { event: None, data: &data }, 1);
                let _ = s.finish();
                let mut r = RequestRecord::default();
                decode_completion(&data, &mut r);
                let mut e = EmbeddingsRecord::default();
                decode_embeddings(&data, &mut e);
            }

            #[test]
            fn chunk_like_json_is_decoded_without_panic(
                content in proptest::option::of("\\PC{0,20}"),
                reason in proptest::option::of("[a-z]{0,8}"),
                usage in proptest::option::of((0u64..100000, 0u64..100000)),
            ) {
                let mut v = serde_json::json!({"choices": [{"delta": {}}]});
                if let Some(c) = &content { v["choices"][0]["delta"]["content"] = serde_json::json!(c); }
                if let Some(r) = &reason { v["choices"][0]["finish_reason"] = serde_json::json!(r); }
                if let Some((p, c)) = usage { v["usage"] = serde_json::json!({"prompt_tokens": p, "completion_tokens": c}); }
                let data = v.to_string();
                let mut s = StreamState::new(RequestRecord::default());
                let event = SseEvent { event: None, data: data.as_bytes() };
                let keep_going = s.on_event(event, 5);
                prop_assert!(keep_going);
                let counted = content.as_deref().is_some_and(|c| !c.is_empty());
                prop_assert_eq!(s.record.content_events, u64::from(counted));
                prop_assert_eq!(s.record.completion_tokens, usage.map(|u| u.1));
            }

            /// A vector's length, counted from its raw JSON, is what reading it as values gives.
            #[test]
            fn vector_lengths_agree_with_reading_the_values(value in json_tree(), pretty: bool) {
                fn reference(v: &serde_json::Value) -> Option<(usize, bool)> {
                    use serde_json::Value;
                    let Value::Array(items) = v else { return None };
                    let mut inner = None;
                    for item in items {
                        match item {
                            Value::Number(_) => {}
                            Value::Array(xs) if xs.iter().all(Value::is_number) => {
                                inner = inner.or(Some(xs.len()));
                            }
                            _ => return None,
                        }
                    }
                    Some(inner.map_or((items.len(), false), |d| (d, true)))
                }
                let raw = match pretty {
                    true => serde_json::to_string_pretty(&value).unwrap(),
                    false => value.to_string(),
                };
                prop_assert_eq!(vector_len(raw.as_bytes()), reference(&value), "{}", raw);
            }

            /// An embeddings body that the fast reader reads, it reads as serde does; and it reads
            /// every body of the plain shape.
            #[test]
            fn embeddings_are_read_as_the_full_decoder_reads_them(
                items in proptest::collection::vec((json_tree(), any::<bool>()), 0..4),
                usage in proptest::option::of(prop_oneof![
                    Just(serde_json::Value::Null),
                    (0u64..1_000_000).prop_map(|n| serde_json::json!({"prompt_tokens": n, "total_tokens": n})),
                    Just(serde_json::json!({"prompt_tokens": "9"})),
                    Just(serde_json::json!({"prompt_tokens": -1})),
                ]),
                error: bool,
                pretty: bool,
            ) {
                use serde_json::{json, Value};
                let data: Vec<Value> = items
                    .iter()
                    .enumerate()
                    .map(|(i, (e, extra))| match extra {
                        true => json!({"object": "embedding", "embedding": e, "index": i}),
                        false => json!({"embedding": e}),
                    })
                    .collect();
                let mut body = json!({"object": "list", "data": data, "model": "m"});
                if let Some(u) = &usage {
                    body["usage"] = u.clone();
                }
                if error {
                    body["error"] = json!({"message": "x"});
                }
                let text = match pretty {
                    true => serde_json::to_string_pretty(&body).unwrap(),
                    false => body.to_string(),
                };
                let fast = chunk_scan::scan_embeddings(text.as_bytes());
                let full = decode_embeddings_fully(text.as_bytes());
                // A usage block serde refuses sends the body to the full decoder (see
                // decode_embeddings): compared only where the fast reading stands.
                let usage_read = |raw: Option<&str>| match raw {
                    Some(raw) => serde_json::from_str::<Usage>(raw).ok().map(Some),
                    None => Some(None),
                };
                if let Some((view, fast_usage)) = fast.as_ref().and_then(|v| Some((v, usage_read(v.usage)?))) {
                    let Ok((full_usage, vectors)) = &full else {
                        panic!("fast read {view:?} where the full decoder failed: {text}");
                    };
                    prop_assert_eq!(&view.vectors, vectors);
                    let tokens = |u: &Option<Usage>| u.as_ref().map(|u| u.prompt_tokens);
                    prop_assert_eq!(tokens(&fast_usage), tokens(full_usage));
                }
                let plain = !error
                    && items.iter().all(|(e, _)| match e {
                        Value::Array(xs) => xs.iter().all(Value::is_number)
                            || xs.iter().all(|x| x.as_array().is_some_and(|x| x.iter().all(Value::is_number))),
                        _ => false,
                    });
                prop_assert_eq!(fast.is_some(), plain, "{}", text);
            }

            /// Whatever the fast scanner reads, it reads as the full decoder does.
            #[test]
            fn the_fast_scanner_agrees_with_the_full_decoder(
                id in proptest::option::of("[a-z0-9\\-]{0,12}"),
                content in proptest::option::of("[ -~\n\"\\\\\\PC]{0,12}"),
                reasoning in proptest::option::of("\\PC{0,8}"),
                reason in proptest::option::of(prop_oneof![Just("stop"), Just("length"), Just("")]),
                text in any::<bool>(),
                extra in proptest::collection::vec(("[a-z_]{1,8}", any::<i32>()), 0..3),
                cut in any::<prop::sample::Index>(),
            ) {
                let mut choice = serde_json::json!({"index": 0, "logprobs": null});
                let mut delta = serde_json::json!({});
                if let Some(c) = &content { delta["content"] = serde_json::json!(c); }
                if let Some(r) = &reasoning { delta["reasoning_content"] = serde_json::json!(r); }
                for (k, n) in &extra { delta[k.as_str()] = serde_json::json!([n, {"k": k}]); }
                choice[if text { "text" } else { "delta" }] = if text { serde_json::json!(content) } else { delta };
                choice["finish_reason"] = serde_json::json!(reason);
                let mut v = serde_json::json!({"object": "chat.completion.chunk", "created": 5, "choices": [choice]});
                if let Some(id) = &id { v["id"] = serde_json::json!(id); }
                let data = serde_json::to_string_pretty(&v).unwrap();
                if let Some(view) = chunk_scan::scan(data.as_bytes()) {
                    prop_assert_eq!(Some(view), full(&data));
                }
                // Cut anywhere, it is no longer JSON: both refuse it.
                let cut = &data.as_bytes()[..cut.index(data.len())];
                prop_assert_eq!(chunk_scan::scan(cut), None);
            }

            /// Usage counts from a hostile server: any number, integer or not, in every place a
            /// count can be. None panics; a count above the bound makes the request a failure
            /// (believing it would size the per-token figures by it).
            #[test]
            fn hostile_usage_counts_never_panic(
                prompt in any::<u64>(),
                completion in any::<u64>(),
                reasoning in any::<u64>(),
                huge in prop_oneof![Just("1e300"), Just("-1"), Just("18446744073709551616"), Just("NaN")],
            ) {
                let body = format!(
                    r#"{{"choices":[{{"message":{{"content":"x"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":{prompt},"completion_tokens":{completion},"completion_tokens_details":{{"reasoning_tokens":{reasoning}}}}}}}"#
                );
                let mut r = RequestRecord::default();
                decode_completion(body.as_bytes(), &mut r);
                let too_many = [prompt, completion, reasoning].iter().any(|&n| n > MAX_USAGE_TOKENS);
                prop_assert_eq!(r.error.is_some(), too_many);
                let mut s = StreamState::new(RequestRecord::default());
                let _ = s.on_event(SseEvent { event: None, data: body.as_bytes() }, 1);
                prop_assert_eq!(s.finish().error.is_some(), too_many);
                let odd = format!(r#"{{"choices":[],"usage":{{"prompt_tokens":{huge},"completion_tokens":{huge}}}}}"#);
                let mut r = RequestRecord::default();
                decode_completion(odd.as_bytes(), &mut r);
                prop_assert!(r.error.is_some());
                let mut e = EmbeddingsRecord::default();
                let emb = format!(r#"{{"data":[{{"embedding":[0.5]}}],"usage":{{"prompt_tokens":{prompt}}}}}"#);
                decode_embeddings(emb.as_bytes(), &mut e);
                prop_assert_eq!(e.error.is_some(), prompt > MAX_USAGE_TOKENS);
            }
        }
    }
}
