//! `--requests_file`: one JSON line per request, for analysis beyond the summary.
//!
//! Each line holds the request's level and run, its outcome (and error kind and message), its
//! token counts and where they came from, and its timestamps in seconds relative to the start of
//! its run (the run's first send) and as Unix wall-clock time; in an open loop also when it was
//! due, its send lag and its wait for a concurrency slot. Lines are flushed after every run,
//! so a crash keeps every finished run.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::json;
use tokenomics_client::{Clock, RequestRecord};

use crate::metrics::Scheduled;

/// An open per-request records file.
pub struct RequestsFile {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
}

impl RequestsFile {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path) -> crate::Result<Self> {
        let file = std::fs::File::create(path).map_err(|source| {
            crate::Error::Stats(tokenomics_stats::Error::Write {
                path: path.to_path_buf(),
                source,
            })
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        })
    }

    /// Appends the records of one run and flushes them.
    pub fn write_run(
        &mut self,
        level: &str,
        run: usize,
        records: &[RequestRecord],
        schedule: Option<&[Scheduled]>,
        clock: &Clock,
    ) -> crate::Result<()> {
        // The run starts at its first send (or, in an open loop, its first due time if earlier).
        let first_due = schedule.and_then(|s| s.iter().map(|d| d.scheduled_ns).min());
        let start = records
            .iter()
            .filter(|r| r.timing.end_ns.is_some())
            .map(|r| r.timing.send_ns)
            .chain(first_due)
            .min()
            .unwrap_or(0);
        let rel = |ns: Option<u64>| ns.map(|t| (t as f64 - start as f64) / 1e9);
        for (index, r) in records.iter().enumerate() {
            let t = &r.timing;
            let sent = t.end_ns.is_some();
            let due = schedule.and_then(|s| s.get(index));
            let mut line = json!({
                "level": level,
                "run": run,
                "index": index,
                "status": if r.is_ok() { "ok" } else { "failed" },
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
            if let (Some(due), Some(obj)) = (due, line.as_object_mut()) {
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
            serde_json::to_writer(&mut self.out, &line).map_err(tokenomics_stats::Error::Encode)?;
            self.out.write_all(b"\n").map_err(|e| self.write_error(e))?;
        }
        self.out.flush().map_err(|e| self.write_error(e))
    }

    fn write_error(&self, source: std::io::Error) -> crate::Error {
        crate::Error::Stats(tokenomics_stats::Error::Write {
            path: self.path.clone(),
            source,
        })
    }
}
