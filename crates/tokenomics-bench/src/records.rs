//! `--requests_file`: one JSON line per request, for analysis beyond the summary.
//!
//! Each line holds the request's level and run, its place in the order of sending (`index`), its
//! outcome (and error kind and message), its token counts and where they came from, and its
//! timestamps in seconds from the start of its run (a burst's first send; for a sustained run,
//! the moment measurement began) and as Unix wall-clock time; in an open loop also when it was
//! due, its send lag and its wait for a concurrency slot; with `--token_times`, the arrival of
//! every content event. A burst's lines are written when it ends, in the order its requests were
//! built; a sustained run's as each request finishes (so a run of any length keeps nothing in
//! memory), flushed every second and at the end of every run, so a crash loses at most the last
//! second. A request still in flight when a timed run ended and cancelled there has a line with
//! status `cancelled`; a run on a timetable (`--start_at`, shards) adds how late it started
//! (`late_s`) to each of its lines. With several `--api_base` URLs, `endpoint` is the index of the one
//! the request went to. A conversation's lines carry their `session`, `turn` (from 1) and the think
//! time before it (`think_s`). `tokenomics-merge` rebuilds the levels from these lines.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::json;
use tokenomics_client::{Clock, RequestRecord};

use crate::metrics::Scheduled;

/// An open per-request records file.
pub struct RequestsFile {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
    token_times: bool,
    /// Write each request's `endpoint` (a run over several `--api_base` URLs).
    endpoints: bool,
}

/// Where a line belongs: its level, run, place in the run, and the run's start (ns).
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// The level's key in `results`.
    pub level: &'a str,
    /// 0-based run index.
    pub run: usize,
    /// The request's 0-based place in the run (a burst's order built, a sustained run's order
    /// sent).
    pub index: u64,
    /// The run's start, ns on the benchmark's monotonic clock: the line's times are seconds
    /// after it.
    pub origin_ns: u64,
    /// A run on a timetable (`--start_at`, shards): how late it started, seconds (`late_s`).
    pub late_s: Option<f64>,
    /// A conversation's turn: its `session`, `turn` (from 1) and `think_s` before it.
    pub turn: Option<crate::sustained::TurnInfo>,
}

impl RequestsFile {
    /// Creates (or truncates) `path`; `token_times` adds every content event's arrival.
    pub fn create(path: &Path, token_times: bool) -> crate::Result<Self> {
        let file = std::fs::File::create(path).map_err(|source| {
            crate::Error::Stats(tokenomics_stats::Error::Write {
                path: path.to_path_buf(),
                source,
            })
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            token_times,
            endpoints: false,
        })
    }

    /// Adds each request's `endpoint` to its line (the run spreads over several endpoints).
    pub fn with_endpoints(mut self, several: bool) -> Self {
        self.endpoints = several;
        self
    }

    /// Appends the records of one burst (in the order built) and flushes them. Times are from
    /// the burst's first send.
    pub fn write_run(
        &mut self,
        level: &str,
        run: usize,
        records: &[RequestRecord],
        clock: &Clock,
    ) -> crate::Result<()> {
        let origin_ns = records
            .iter()
            .filter(|r| r.timing.end_ns.is_some())
            .map(|r| r.timing.send_ns)
            .min()
            .unwrap_or(0);
        for (index, r) in records.iter().enumerate() {
            let place = Place {
                level,
                run,
                index: index as u64,
                origin_ns,
                late_s: None,
                turn: None,
            };
            self.write(&place, r, None, clock)?;
        }
        self.flush()
    }

    /// Appends one request's line (buffered; see [`RequestsFile::flush`]): status `ok`,
    /// `failed`, or `aborted` for a request the client aborted on purpose.
    pub fn write(
        &mut self,
        place: &Place<'_>,
        r: &RequestRecord,
        due: Option<&Scheduled>,
        clock: &Clock,
    ) -> crate::Result<()> {
        let status = match &r.error {
            None => "ok",
            // Aborted by the client on purpose: neither succeeded nor failed.
            Some(tokenomics_client::Error::Aborted) => "aborted",
            Some(_) => "failed",
        };
        self.write_as(place, r, due, clock, status)
    }

    /// Appends the line of a request still in flight when its timed run ended, cancelled there
    /// (status `cancelled`: neither succeeded nor failed).
    pub fn write_cancelled(
        &mut self,
        place: &Place<'_>,
        r: &RequestRecord,
        due: Option<&Scheduled>,
        clock: &Clock,
    ) -> crate::Result<()> {
        self.write_as(place, r, due, clock, "cancelled")
    }

    fn write_as(
        &mut self,
        place: &Place<'_>,
        r: &RequestRecord,
        due: Option<&Scheduled>,
        clock: &Clock,
        status: &str,
    ) -> crate::Result<()> {
        let start = place.origin_ns;
        let rel = |ns: Option<u64>| ns.map(|t| (t as f64 - start as f64) / 1e9);
        let t = &r.timing;
        // A request that never reached the wire (its connection failed) has no send time; one
        // abandoned or cancelled midway has one, and no end.
        let sent = t.end_ns.is_some() || t.send_ns > 0;
        let mut line = json!({
            "level": place.level,
            "run": place.run,
            "index": place.index,
            "status": status,
            "error_kind": r.error.as_ref().map(|e| e.kind()),
            "error": r.error.as_ref().map(|e| e.to_string()),
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
            "reasoning_tokens": r.reasoning_tokens,
            "token_source": r.token_source.name(),
            "content_events": r.content_events,
            "finish_reason": r.finish_reason,
            "response_id": r.response_id,
            "connect_s": t.connect_ns as f64 / 1e9,
            "send_s": rel(sent.then_some(t.send_ns)),
            "headers_s": rel(t.headers_ns),
            "first_byte_s": rel(t.first_byte_ns),
            "first_token_s": rel(t.first_token_ns),
            "first_answer_s": rel(t.first_answer_ns),
            "reasoning_events": r.reasoning_events,
            "last_token_s": rel(t.last_token_ns()),
            "end_s": rel(t.end_ns),
            "ttft_s": t.ttft_s(),
            "e2el_s": t.e2e_s(),
            "send_unix": sent.then(|| clock.unix_seconds(t.send_ns)),
        });
        if let Some(obj) = line.as_object_mut() {
            // Only where the server reported it, so that other runs' lines stay as they were.
            if let Some(cached) = r.cached_tokens {
                obj.insert("cached_tokens".into(), json!(cached));
            }
            if let Some(late) = place.late_s {
                obj.insert("late_s".into(), json!(late));
            }
            if self.endpoints {
                obj.insert("endpoint".into(), json!(r.replica));
            }
            if let Some(turn) = place.turn {
                obj.insert("session".into(), json!(turn.session));
                obj.insert("turn".into(), json!(u64::from(turn.turn) + 1));
                obj.insert(
                    "think_s".into(),
                    json!(turn.think_ns.map(|ns| ns as f64 / 1e9)),
                );
            }
            if let Some(due) = due {
                obj.insert("scheduled_s".into(), json!(rel(Some(due.scheduled_ns))));
                obj.insert(
                    "send_lag_s".into(),
                    json!(sent.then(|| (t.send_ns as f64 - due.scheduled_ns as f64) / 1e9)),
                );
                obj.insert(
                    "slot_wait_s".into(),
                    json!(due.slot_wait_ns.map(|w| w as f64 / 1e9)),
                );
            }
            if self.token_times {
                let times: Vec<f64> = t
                    .token_events_ns
                    .iter()
                    .map(|&e| (e as f64 - start as f64) / 1e9)
                    .collect();
                obj.insert("token_s".into(), json!(times));
            }
        }
        serde_json::to_writer(&mut self.out, &line).map_err(tokenomics_stats::Error::Encode)?;
        self.out.write_all(b"\n").map_err(|e| self.write_error(e))
    }

    /// Makes every line written so far reach the file.
    pub fn flush(&mut self) -> crate::Result<()> {
        self.out.flush().map_err(|e| self.write_error(e))
    }

    fn write_error(&self, source: std::io::Error) -> crate::Error {
        crate::Error::Stats(tokenomics_stats::Error::Write {
            path: self.path.clone(),
            source,
        })
    }
}
