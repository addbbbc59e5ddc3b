//! Server-sent events framing, as the WHATWG HTML standard defines it.
//!
//! [`SseFramer`] takes the body of an `text/event-stream` response in whatever pieces the network
//! delivers and yields complete events. It accepts LF, CRLF and lone CR line endings (also a CRLF
//! split across two reads), joins several `data:` lines of one event with `\n`, strips one space
//! after the colon, ignores comments (`:` lines), `id:` and `retry:`, and dispatches an event at
//! each blank line. An incomplete event at the end of the stream is dropped, as the standard says.
//!
//! Each byte is looked at once: the framer never re-scans what it has already seen, so a 1 MiB
//! line costs time linear in its size. Lines complete within one read are handled in place
//! without copying; only a line split across reads is buffered. Buffering is bounded by
//! `max_event_bytes`; a longer line or event is an error, so a hostile stream cannot exhaust memory.

/// One dispatched event. `data` is the concatenation of its `data:` lines joined by `\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field, if any (the standard's default type is `message`).
    pub event: Option<&'a [u8]>,
    /// The joined `data:` lines, borrowed from the framer's input or buffer.
    pub data: &'a [u8],
}

impl SseEvent<'_> {
    /// True for `event: error`.
    pub fn is_error_event(&self) -> bool {
        self.event == Some(b"error")
    }
}

/// The framer's only failure: an event or line over the configured bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an SSE line or event exceeds {limit} bytes")]
pub struct TooLarge {
    /// The bound that was exceeded, bytes.
    pub limit: usize,
}

/// Incremental SSE parser; see the module docs.
#[derive(Debug)]
pub struct SseFramer {
    /// A line started in an earlier read and not yet ended.
    partial: Vec<u8>,
    /// Data lines of the event being built, each followed by `\n`.
    data: Vec<u8>,
    event: Vec<u8>,
    has_event_type: bool,
    has_data: bool,
    /// The previous read ended with CR: a LF starting the next read belongs to it.
    after_cr: bool,
    max_event_bytes: usize,
}

/// Default bound on one line or event: 64 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 64 << 20;

impl Default for SseFramer {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseFramer {
    /// A framer that refuses a line or event longer than `max_event_bytes` bytes.
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            partial: Vec::new(),
            data: Vec::new(),
            event: Vec::new(),
            has_event_type: false,
            has_data: false,
            after_cr: false,
            max_event_bytes,
        }
    }

    /// Feeds the next piece of the stream, calling `on_event` for each event it completes, in
    /// order. `on_event` returns `false` to stop early (the rest of `chunk` is then ignored).
    pub fn feed(
        &mut self,
        mut chunk: &[u8],
        mut on_event: impl FnMut(SseEvent<'_>) -> bool,
    ) -> Result<(), TooLarge> {
        // An empty piece must not clear `after_cr`: the LF of a CRLF may still come next.
        if chunk.is_empty() {
            return Ok(());
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while !chunk.is_empty() {
            let Some(end) = memchr::memchr2(b'\n', b'\r', chunk) else {
                if self.partial.len() + chunk.len() > self.max_event_bytes {
                    return Err(self.too_large());
                }
                self.partial.extend_from_slice(chunk);
                return Ok(());
            };
            let line_end_len = if chunk[end] == b'\r' {
                match chunk.get(end + 1) {
                    Some(b'\n') => 2,
                    Some(_) => 1,
                    None => {
                        self.after_cr = true;
                        1
                    }
                }
            } else {
                1
            };
            let keep_going = if self.partial.is_empty() {
                self.line(&chunk[..end], &mut on_event)?
            } else {
                if self.partial.len() + end > self.max_event_bytes {
                    return Err(self.too_large());
                }
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&chunk[..end]);
                let r = self.line(&line, &mut on_event);
                line.clear();
                self.partial = line;
                r?
            };
            chunk = &chunk[end + line_end_len..];
            if !keep_going {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Bytes held for an unfinished line or event (for memory accounting and tests).
    pub fn buffered(&self) -> usize {
        self.partial.len() + self.data.len() + self.event.len()
    }

    fn too_large(&mut self) -> TooLarge {
        self.partial.clear();
        self.data.clear();
        TooLarge {
            limit: self.max_event_bytes,
        }
    }

    fn line(
        &mut self,
        line: &[u8],
        on_event: &mut impl FnMut(SseEvent<'_>) -> bool,
    ) -> Result<bool, TooLarge> {
        if line.is_empty() {
            return Ok(self.dispatch(on_event));
        }
        if line[0] == b':' {
            return Ok(true);
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.data.len() + value.len() + 1 > self.max_event_bytes {
                    return Err(self.too_large());
                }
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
                self.has_data = true;
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
                self.has_event_type = true;
            }
            _ => {} // id, retry and unknown fields do not affect what we measure
        }
        Ok(true)
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(SseEvent<'_>) -> bool) -> bool {
        let mut keep_going = true;
        if self.has_data {
            let data = &self.data[..self.data.len() - 1];
            let event = self.has_event_type.then_some(&self.event[..]);
            keep_going = on_event(SseEvent { event, data });
        }
        self.data.clear();
        self.event.clear();
        self.has_data = false;
        self.has_event_type = false;
        keep_going
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(pieces: &[&[u8]]) -> Vec<(Option<String>, String)> {
        let mut framer = SseFramer::default();
        let mut out = Vec::new();
        for piece in pieces {
            framer
                .feed(piece, |e| {
                    out.push((
                        e.event.map(|t| String::from_utf8_lossy(t).into_owned()),
                        String::from_utf8_lossy(e.data).into_owned(),
                    ));
                    true
                })
                .unwrap();
        }
        out
    }

    const STREAM: &[u8] = b": keep-alive comment\r\n\
data: {\"a\":1}\r\n\r\n\
data: line one\ndata:line two\n\n\
event: error\ndata: {\"error\":{\"message\":\"boom\"}}\n\n\
id: 7\rretry: 10\rdata: cr only\r\r\
data:\n\n\
data: [DONE]\n\n\
data: unterminated";

    fn expected() -> Vec<(Option<String>, String)> {
        vec![
            (None, "{\"a\":1}".into()),
            (None, "line one\nline two".into()),
            (
                Some("error".into()),
                "{\"error\":{\"message\":\"boom\"}}".into(),
            ),
            (None, "cr only".into()),
            (None, "".into()),
            (None, "[DONE]".into()),
        ]
    }

    #[test]
    fn whole_stream_in_one_read() {
        assert_eq!(collect(&[STREAM]), expected());
    }

    #[test]
    fn every_single_split_point() {
        for i in 0..=STREAM.len() {
            let (a, b) = STREAM.split_at(i);
            assert_eq!(collect(&[a, b]), expected(), "split at {i}");
        }
    }

    #[test]
    fn every_pair_of_split_points() {
        for i in 0..=STREAM.len() {
            for j in i..=STREAM.len() {
                let got = collect(&[&STREAM[..i], &STREAM[i..j], &STREAM[j..]]);
                assert_eq!(got, expected(), "splits at {i}, {j}");
            }
        }
    }

    #[test]
    fn byte_by_byte() {
        let pieces: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(collect(&pieces), expected());
    }

    #[test]
    fn oversized_line_is_refused_and_memory_stays_bounded() {
        let mut framer = SseFramer::new(1024);
        let big = vec![b'x'; 600];
        framer.feed(b"data: ", |_| true).unwrap();
        framer.feed(&big, |_| true).unwrap();
        assert!(framer.feed(&big, |_| true).is_err());
        assert!(framer.buffered() <= 1024);
    }

    /// Regression: an empty read between the CR and the LF of a CRLF made the LF a blank line,
    /// dispatching the event early and dropping its `event:` type.
    #[test]
    fn an_empty_read_inside_a_crlf_is_not_a_blank_line() {
        let got = collect(&[b"event: x\r", b"", b"\ndata: 1\r\n\r\n"]);
        assert_eq!(got, vec![(Some("x".into()), "1".into())]);
    }

    #[test]
    fn stop_early() {
        let mut framer = SseFramer::default();
        let mut n = 0;
        framer
            .feed(b"data: 1\n\ndata: 2\n\n", |_| {
                n += 1;
                false
            })
            .unwrap();
        assert_eq!(n, 1);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        struct Ev {
            event: Option<String>,
            lines: Vec<String>,
            comment: bool,
        }

        fn ev() -> impl Strategy<Value = Ev> {
            (
                proptest::option::of("[a-z]{1,8}"),
                proptest::collection::vec("[^\r\n]{0,40}", 1..4),
                any::<bool>(),
            )
                .prop_map(|(event, lines, comment)| Ev {
                    event,
                    lines,
                    comment,
                })
        }

        /// Serialises events with the given line endings (cycled).
        fn encode(events: &[Ev], endings: &[&str]) -> Vec<u8> {
            let mut out = String::new();
            let mut k = 0;
            let mut nl = |out: &mut String| {
                out.push_str(endings[k % endings.len()]);
                k += 1;
            };
            for e in events {
                if e.comment {
                    out.push_str(": note");
                    nl(&mut out);
                }
                if let Some(t) = &e.event {
                    out.push_str("event: ");
                    out.push_str(t);
                    nl(&mut out);
                }
                for l in &e.lines {
                    out.push_str("data: ");
                    out.push_str(l);
                    nl(&mut out);
                }
                nl(&mut out);
            }
            out.into_bytes()
        }

        proptest! {
            #[test]
            fn events_survive_any_split_and_line_endings(
                events in proptest::collection::vec(ev(), 1..8),
                // One style per stream; a lone CR followed by LF would be one CRLF, so CR is
                // not mixed with the others.
                endings in prop_oneof![
                    Just(vec!["\n"]),
                    Just(vec!["\r\n"]),
                    Just(vec!["\r"]),
                    Just(vec!["\n", "\r\n"]),
                ],
                cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
            ) {
                let bytes = encode(&events, &endings);
                let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
                points.sort_unstable();
                let mut framer = SseFramer::default();
                let mut got: Vec<(Option<String>, String)> = Vec::new();
                let mut last = 0;
                for p in points.into_iter().chain(std::iter::once(bytes.len())) {
                    framer.feed(&bytes[last..p], |e| {
                        got.push((e.event.map(|t| String::from_utf8_lossy(t).into_owned()), String::from_utf8_lossy(e.data).into_owned()));
                        true
                    }).unwrap();
                    last = p;
                }
                // Lines are written as "data: {line}": the standard strips that one space, so
                // each event's data is its lines joined by LF, exactly.
                let want: Vec<(Option<String>, String)> = events
                    .iter()
                    .map(|e| (e.event.clone(), e.lines.join("\n")))
                    .collect();
                prop_assert_eq!(got, want);
            }

            #[test]
            fn random_bytes_never_panic_and_memory_stays_bounded(
                chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..2048), 0..16),
            ) {
                let mut framer = SseFramer::new(4096);
                for c in &chunks {
                    let _ = framer.feed(c, |e| e.data.len() <= 4096);
                    prop_assert!(framer.buffered() <= 2 * 4096 + 64);
                }
            }

            #[test]
            fn a_line_over_the_bound_is_an_error_in_any_split(
                len in 5000usize..20000,
                cut in any::<prop::sample::Index>(),
            ) {
                let mut bytes = b"data: ".to_vec();
                bytes.extend(std::iter::repeat_n(b'x', len));
                bytes.extend_from_slice(b"\n\n");
                let p = cut.index(bytes.len());
                let mut framer = SseFramer::new(4096);
                let first = framer.feed(&bytes[..p], |_| true);
                let second = framer.feed(&bytes[p..], |_| true);
                prop_assert!(first.is_err() || second.is_err());
                prop_assert!(framer.buffered() <= 4096);
            }
        }
    }
}
