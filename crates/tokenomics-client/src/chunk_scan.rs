//! A fast reader for the common shape of a streamed chunk, in front of the full decoder.
//!
//! Every streamed token arrives as one JSON object, most of it fields no metric reads (`object`,
//! `created`, `model`, `logprobs`, `token_ids`, …). [`scan_after`] walks such an object once,
//! checking the JSON grammar of everything it passes over, and keeps only what the metrics read:
//! the `id`, and of the first choice its `text`, `delta`/`message` text fields (as raw JSON,
//! unparsed) and `finish_reason`. It answers `None` — "not sure, decode it fully" — for anything outside the
//! plain case: a `usage` or `error` block, several choices, a key or `id` with escapes, a
//! `\u` escape anywhere, a duplicated field, invalid UTF-8, deep nesting, or any JSON it does not
//! accept. So a chunk it reads gives exactly what the full (serde) decoder gives, and every chunk
//! it declines is decoded by that decoder as before.
//!
//! Most chunks of a stream are not even walked: a [`Template`], the stream's last chunk read in
//! full, lets a chunk that repeats it byte for byte but for its one text value be read by checking
//! that value alone.
//!
//! Embeddings responses have a reader of their own, [`scan_embeddings`]: most of such a body is
//! numbers, which it checks by JSON's grammar and counts without converting any.

use std::borrow::Cow;

/// What the metrics read from one chunk. Text fields are raw JSON values (a string keeps its
/// quotes), as `serde_json::value::RawValue` would give them.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ChunkView<'a> {
    pub id: Option<Cow<'a, str>>,
    /// The first choice, if any.
    pub choice: Option<ChoiceView<'a>>,
}

/// The first choice of a chunk: its text fields as raw JSON, and its finish reason.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct ChoiceView<'a> {
    /// A text completion's `text`.
    pub text: Option<&'a str>,
    /// `content` of the `delta` (or, without one, of the `message`).
    pub content: Option<&'a str>,
    pub reasoning_content: Option<&'a str>,
    pub reasoning: Option<&'a str>,
    pub finish_reason: Option<&'a str>,
}

/// The last chunk of a stream read in full, as a template for the next: a server writes every
/// token's chunk the same but for the token's text (`id`, `object`, `created`, `model`, the
/// choice's other fields), so a chunk made of the same bytes before and after one string value,
/// in the same place, reads the same but for that value, which is checked alone. Same bytes, same
/// reading: the template's `id` was read with the chunk that set it.
#[derive(Debug, Default)]
pub(crate) struct Template {
    /// Bytes before and after the text value; both empty: none yet.
    before: Vec<u8>,
    after: Vec<u8>,
    /// Which text field the value is.
    field: Field,
}

#[derive(Debug, Default, Clone, Copy)]
enum Field {
    #[default]
    Text,
    Content,
    ReasoningContent,
    Reasoning,
}

impl Template {
    /// The view of `data` when it is the template with another string in its place.
    fn apply<'a>(&self, data: &'a [u8]) -> Option<ChunkView<'a>> {
        let (b, a) = (self.before.len(), self.after.len());
        if b == 0 || data.len() <= b + a || !data.starts_with(&self.before) {
            return None;
        }
        if !data.ends_with(&self.after) {
            return None;
        }
        let value = std::str::from_utf8(&data[b..data.len() - a]).ok()?;
        let mut s = Scanner { text: value, at: 0 };
        if s.bytes()[0] != b'"' {
            return None;
        }
        let (raw, _) = s.string()?;
        if s.at != value.len() {
            return None;
        }
        let mut choice = ChoiceView::default();
        *match self.field {
            Field::Text => &mut choice.text,
            Field::Content => &mut choice.content,
            Field::ReasoningContent => &mut choice.reasoning_content,
            Field::Reasoning => &mut choice.reasoning,
        } = Some(raw);
        Some(ChunkView {
            id: None,
            choice: Some(choice),
        })
    }

    /// Makes `data`, just read as `view`, the template, when its choice carries one text field
    /// (a string) and no finish reason; otherwise keeps the one there is.
    fn learn(&mut self, data: &[u8], view: &ChunkView<'_>) {
        let Some(c) = view.choice.filter(|c| c.finish_reason.is_none()) else {
            return;
        };
        let fields = [
            (c.text, Field::Text),
            (c.content, Field::Content),
            (c.reasoning_content, Field::ReasoningContent),
            (c.reasoning, Field::Reasoning),
        ];
        let mut present = fields
            .iter()
            .filter_map(|(raw, f)| Some((raw.as_deref()?, *f)));
        let (Some((raw, field)), None) = (present.next(), present.next()) else {
            return;
        };
        if !raw.starts_with('"') {
            return;
        }
        // The value is a slice of `data`: its place is the distance between their starts.
        let at = (raw.as_ptr() as usize).wrapping_sub(data.as_ptr() as usize);
        let Some(end) = at.checked_add(raw.len()).filter(|&e| e <= data.len()) else {
            return;
        };
        self.before.clear();
        self.before.extend_from_slice(&data[..at]);
        self.after.clear();
        self.after.extend_from_slice(&data[end..]);
        self.field = field;
    }
}

/// Deeper nesting than this in an ignored value is left to the full decoder.
const MAX_DEPTH: u32 = 32;

/// Reads `data` on its own, without a stream's template (tests).
#[cfg(test)]
pub(crate) fn scan(data: &[u8]) -> Option<ChunkView<'_>> {
    scan_after(data, &mut Template::default())
}

/// Reads the next chunk of a stream when it has the plain shape (see the module docs); `None`
/// otherwise. One that matches the stream's `template` is read from it (its `id` is not read
/// again: `None` in the view); another is read in full and may become the template for the next.
pub(crate) fn scan_after<'a>(data: &'a [u8], template: &mut Template) -> Option<ChunkView<'a>> {
    if let Some(view) = template.apply(data) {
        return Some(view);
    }
    let text = std::str::from_utf8(data).ok()?;
    let mut s = Scanner { text, at: 0 };
    let view = s.chunk()?;
    s.ws();
    if s.at != text.len() {
        return None;
    }
    template.learn(data, &view);
    Some(view)
}

/// A byte of ones in every lane of a word, and each lane's high bit: the word-at-a-time runs.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The length of the run of bytes at the start of `b` that a JSON string holds as they are: up to
/// the first quote, backslash or control character (or the end). Eight bytes at a time.
fn plain_run(b: &[u8]) -> usize {
    let mut i = 0;
    while let Some(word) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        // Bytes equal to zero (after the XOR) or below 0x20 set their high bit here; the lowest
        // such byte is exact (a borrow only ever marks bytes above a marked one).
        let zero = |v: u64| v.wrapping_sub(ONES) & !v;
        let special = (zero(w ^ (ONES * u64::from(b'"')))
            | zero(w ^ (ONES * u64::from(b'\\')))
            | (w.wrapping_sub(ONES * 0x20) & !w))
            & HIGH;
        if special != 0 {
            return i + (special.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while b
        .get(i)
        .is_some_and(|&c| c != b'"' && c != b'\\' && c >= 0x20)
    {
        i += 1;
    }
    i
}

/// How many ASCII digits `b` starts with, eight bytes at a time.
fn digit_run(b: &[u8]) -> usize {
    let mut i = 0;
    while let Some(word) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(word.try_into().unwrap_or([0; 8])) ^ (ONES * u64::from(b'0'));
        // A byte is a digit when it is below 10 here: adding 0x76 to its low seven bits then
        // leaves its high bit clear, and no carry crosses into the next byte (0x7f + 0x76 < 0x100).
        let not_digit = (((x & !HIGH) + ONES * 0x76) | x) & HIGH;
        if not_digit != 0 {
            return i + (not_digit.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + b[i..].iter().take_while(|c| c.is_ascii_digit()).count()
}

/// The length of the JSON number at the start of `b` (no leading zeros, digits after `.` and
/// `e`), or `None` if it does not start with one.
fn number_len(b: &[u8]) -> Option<usize> {
    // The sign without a branch: in a vector it is as likely as not, and a mispredicted branch
    // per number costs as much as the rest of reading it.
    let mut i = usize::from(b.first() == Some(&b'-'));
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i += digit_run(&b[i..]),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let n = digit_run(&b[i + 1..]);
        if n == 0 {
            return None;
        }
        i += 1 + n;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        i += usize::from(matches!(b.get(i), Some(b'+' | b'-')));
        let n = digit_run(&b[i..]);
        if n == 0 {
            return None;
        }
        i += n;
    }
    Some(i)
}

/// What the metrics read from an embeddings response: each vector's length and whether it was
/// one vector per token (an array of arrays: the first inner array's length), and the `usage`
/// block as raw JSON (`None` when absent or `null`).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct EmbeddingsView<'a> {
    pub vectors: Vec<(usize, bool)>,
    pub usage: Option<&'a str>,
}

/// Reads an embeddings response of the plain shape — an object whose `data` is an array of
/// objects, each with one `embedding` that is an array of numbers or of arrays of numbers — checking
/// the JSON grammar of all of it; `None` for anything else (an `error` member, a repeated field,
/// any JSON it does not accept), which the full decoder then reads.
pub(crate) fn scan_embeddings(data: &[u8]) -> Option<EmbeddingsView<'_>> {
    let text = std::str::from_utf8(data).ok()?;
    let mut s = Scanner { text, at: 0 };
    let mut view = EmbeddingsView::default();
    let mut seen = Seen::default();
    s.object(|s, key| {
        match key {
            "data" => {
                seen.first(1)?;
                s.eat(b'[')?;
                if s.peek()? == b']' {
                    s.at += 1;
                } else {
                    loop {
                        view.vectors.push(s.embedding_item()?);
                        if !s.next_member(b']')? {
                            break;
                        }
                    }
                }
            }
            "usage" => {
                seen.first(2)?;
                view.usage = s.raw()?;
            }
            "error" => return None,
            _ => {
                s.value(1)?;
            }
        }
        Some(())
    })?;
    s.ws();
    (s.at == text.len()).then_some(view)
}

struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

/// Fields of one object, each allowed once (the full decoder refuses a repeated known field).
#[derive(Default)]
struct Seen(u8);

impl Seen {
    fn first(&mut self, bit: u8) -> Option<()> {
        let fresh = self.0 & bit == 0;
        self.0 |= bit;
        fresh.then_some(())
    }
}

impl<'a> Scanner<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn ws(&mut self) {
        let b = self.bytes();
        while matches!(b.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.bytes().get(self.at).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.at += 1)
    }

    /// After a member: `,` (more follow: `true`) or the closing `close` (`false`).
    fn next_member(&mut self, close: u8) -> Option<bool> {
        match self.peek()? {
            b',' => {
                self.at += 1;
                Some(true)
            }
            c if c == close => {
                self.at += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// A string at the cursor: its raw text with the quotes, and whether it has escapes. Only the
    /// one-character escapes are accepted (`\u` is left to the full decoder, which checks
    /// surrogates); a control character inside is invalid JSON.
    fn string(&mut self) -> Option<(&'a str, bool)> {
        if self.peek()? != b'"' {
            return None;
        }
        let b = self.bytes();
        let start = self.at;
        let mut i = start + 1;
        let mut escaped = false;
        loop {
            i += plain_run(&b[i..]);
            match *b.get(i)? {
                b'"' => break,
                b'\\' => {
                    if !matches!(
                        b.get(i + 1)?,
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't'
                    ) {
                        return None;
                    }
                    escaped = true;
                    i += 2;
                }
                _ => return None, // a control character
            }
        }
        self.at = i + 1;
        // Quotes are ASCII, so both ends are character boundaries of the checked text.
        Some((self.text.get(start..self.at)?, escaped))
    }

    /// A key and its colon; keys with escapes are left to the full decoder.
    fn key(&mut self) -> Option<&'a str> {
        let (raw, escaped) = self.string()?;
        self.eat(b':')?;
        (!escaped).then(|| &raw[1..raw.len() - 1])
    }

    /// `null` at the cursor (consumed), or not (nothing consumed).
    fn null(&mut self) -> Option<bool> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(true);
        }
        Some(false)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.bytes()[self.at..]
            .starts_with(word)
            .then(|| self.at += word.len())
    }

    /// A number, by JSON's grammar (no leading zeros, digits after `.` and `e`).
    fn number(&mut self) -> Option<()> {
        self.at += number_len(&self.bytes()[self.at..])?;
        Some(())
    }

    /// Any JSON value, checked and passed over; its raw text.
    fn value(&mut self, depth: u32) -> Option<&'a str> {
        let c = self.peek()?;
        let start = self.at;
        match c {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.at += 1;
                let close = if c == b'{' { b'}' } else { b']' };
                if self.peek()? == close {
                    self.at += 1;
                } else {
                    loop {
                        if c == b'{' {
                            self.string()?;
                            self.eat(b':')?;
                        }
                        self.value(depth + 1)?;
                        if !self.next_member(close)? {
                            break;
                        }
                    }
                }
            }
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return None,
        }
        self.text.get(start..self.at)
    }

    /// A field holding an optional raw value: `null` is `None`, as for `Option<&RawValue>`.
    fn raw(&mut self) -> Option<Option<&'a str>> {
        if self.null()? {
            return Some(None);
        }
        self.value(1).map(Some)
    }

    /// Members of an object at the cursor, each handed to `member` with its key; `member` must
    /// consume the value.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.key()?;
            member(self, key)?;
            if !self.next_member(b'}')? {
                return Some(());
            }
        }
    }

    /// One item of an embeddings response's `data`: its vector's length (see [`EmbeddingsView`]).
    fn embedding_item(&mut self) -> Option<(usize, bool)> {
        let mut vector = None;
        self.object(|s, key| {
            if key == "embedding" {
                if vector.is_some() {
                    return None;
                }
                vector = Some(s.vector()?);
            } else {
                s.value(3)?;
            }
            Some(())
        })?;
        vector
    }

    /// An array of numbers (its length, `false`) or of arrays of numbers (the first one's length,
    /// `true`).
    fn vector(&mut self) -> Option<(usize, bool)> {
        self.ws();
        let start = self.at;
        self.eat(b'[')?;
        if self.peek()? != b'[' {
            self.at = start;
            return Some((self.numbers()?, false));
        }
        let first = self.numbers()?;
        while self.next_member(b']')? {
            self.numbers()?;
        }
        Some((first, true))
    }

    /// An array of numbers; its length. (The loop over a vector's numbers: it keeps its place in
    /// a local and skips white space only where there is some.)
    fn numbers(&mut self) -> Option<usize> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.at += 1;
            return Some(0);
        }
        let b = self.bytes();
        let ws = |i: &mut usize| {
            while matches!(b.get(*i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                *i += 1;
            }
        };
        let (mut i, mut n) = (self.at, 0);
        loop {
            if !b.get(i)?.is_ascii_digit() && b[i] != b'-' {
                ws(&mut i);
            }
            i += number_len(&b[i..])?;
            n += 1;
            if !matches!(b.get(i)?, b',' | b']') {
                ws(&mut i);
            }
            match b.get(i)? {
                b',' => i += 1,
                b']' => {
                    self.at = i + 1;
                    return Some(n);
                }
                _ => return None,
            }
        }
    }

    fn chunk(&mut self) -> Option<ChunkView<'a>> {
        let mut view = ChunkView::default();
        let mut seen = Seen::default();
        self.object(|s, key| {
            match key {
                "id" => {
                    seen.first(1)?;
                    if !s.null()? {
                        let (raw, escaped) = s.string()?;
                        if escaped {
                            return None;
                        }
                        view.id = Some(Cow::Borrowed(&raw[1..raw.len() - 1]));
                    }
                }
                "choices" => {
                    seen.first(2)?;
                    s.eat(b'[')?;
                    if s.peek()? == b']' {
                        s.at += 1;
                    } else {
                        view.choice = Some(s.choice()?);
                        s.eat(b']')?; // a second choice goes to the full decoder
                    }
                }
                // Rare (once a stream at most): decoded fully, when there is one.
                "usage" | "error" => {
                    seen.first(if key == "usage" { 4 } else { 8 })?;
                    if !s.null()? {
                        return None;
                    }
                }
                _ => {
                    s.value(1)?;
                }
            }
            Some(())
        })?;
        Some(view)
    }

    fn choice(&mut self) -> Option<ChoiceView<'a>> {
        let mut choice = ChoiceView::default();
        let (mut delta, mut message) = (None, None);
        let mut seen = Seen::default();
        self.object(|s, key| {
            match key {
                "delta" | "message" => {
                    seen.first(if key == "delta" { 1 } else { 2 })?;
                    if !s.null()? {
                        let d = s.delta()?;
                        if key == "delta" {
                            delta = Some(d);
                        } else {
                            message = Some(d);
                        }
                    }
                }
                "text" => {
                    seen.first(4)?;
                    choice.text = s.raw()?;
                }
                "finish_reason" => {
                    seen.first(8)?;
                    if !s.null()? {
                        // The full decoder borrows it and so refuses one with escapes.
                        let (raw, escaped) = s.string()?;
                        if escaped {
                            return None;
                        }
                        choice.finish_reason = Some(&raw[1..raw.len() - 1]);
                    }
                }
                _ => {
                    s.value(2)?;
                }
            }
            Some(())
        })?;
        if let Some(d) = delta.or(message) {
            choice.content = d.content;
            choice.reasoning_content = d.reasoning_content;
            choice.reasoning = d.reasoning;
        }
        Some(choice)
    }

    fn delta(&mut self) -> Option<ChoiceView<'a>> {
        let mut d = ChoiceView::default();
        let mut seen = Seen::default();
        self.object(|s, key| {
            match key {
                "content" => {
                    seen.first(1)?;
                    d.content = s.raw()?;
                }
                "reasoning_content" => {
                    seen.first(2)?;
                    d.reasoning_content = s.raw()?;
                }
                "reasoning" => {
                    seen.first(4)?;
                    d.reasoning = s.raw()?;
                }
                _ => {
                    s.value(3)?;
                }
            }
            Some(())
        })?;
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// The word-at-a-time run finds the first quote, backslash or control byte exactly.
        #[test]
        fn plain_run_stops_at_the_first_special_byte(
            b in proptest::collection::vec(prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x20, 0x20u8..=0xff, 0x20u8..=0xff, 0x20u8..=0xff], 0..40),
        ) {
            let naive = b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).unwrap_or(b.len());
            prop_assert_eq!(super::plain_run(&b), naive);
        }

        /// The word-at-a-time run of digits ends at the first byte that is not one.
        #[test]
        fn digit_run_stops_at_the_first_other_byte(
            b in proptest::collection::vec(prop_oneof![b'0'..=b'9', b'0'..=b'9', b'0'..=b'9', any::<u8>()], 0..40),
        ) {
            let naive = b.iter().take_while(|c| c.is_ascii_digit()).count();
            prop_assert_eq!(super::digit_run(&b), naive);
        }
    }
}
