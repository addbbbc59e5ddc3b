//! Request traces to replay: when each request arrived and how long its prompt and answer were.
//!
//! Three public formats are read, told apart by their first line (or named with
//! [`TraceOptions::format`]):
//!
//! * **Mooncake** (JSON Lines): `timestamp` in milliseconds, `input_length`, `output_length`,
//!   and `hash_ids` — one id per block of the prompt (512 tokens in the published traces), equal
//!   ids meaning equal blocks, so the trace's prefix sharing can be rebuilt.
//! * **Azure LLM inference** (CSV, 2023 and 2024): `TIMESTAMP` as a date and time
//!   (`2023-11-16 18:15:46.6805900`), `ContextTokens`, `GeneratedTokens`.
//! * **BurstGPT** (CSV): `Timestamp` in seconds, `Request tokens`, `Response tokens` (0 for a
//!   request that failed in the trace).
//!
//! A row that cannot be replayed — a field missing or not a number, a negative time, a time
//! before the previous row's, no input or no output tokens, more tokens than the model's context
//! — is skipped and reported with its line number ([`Trace::skipped`]); a file with no usable row
//! is refused. Times become offsets from the first usable row (or from the start of
//! [`TraceOptions::window`]), divided by [`TraceOptions::time_scale`].

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Error, Result};

/// A trace file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    /// Mooncake's JSON Lines (`timestamp` ms, `input_length`, `output_length`, `hash_ids`).
    Mooncake,
    /// The Azure LLM inference trace CSV (`TIMESTAMP`, `ContextTokens`, `GeneratedTokens`).
    Azure,
    /// The BurstGPT CSV (`Timestamp` s, `Request tokens`, `Response tokens`).
    BurstGpt,
}

impl TraceFormat {
    /// The name used by `--trace_format` and in result files.
    pub fn name(self) -> &'static str {
        match self {
            TraceFormat::Mooncake => "mooncake",
            TraceFormat::Azure => "azure",
            TraceFormat::BurstGpt => "burstgpt",
        }
    }

    /// The format a file's first line shows, if any.
    fn detect(first_line: &str) -> Option<Self> {
        let line = first_line.trim_start_matches('\u{feff}').trim();
        if line.starts_with('{') {
            return Some(TraceFormat::Mooncake);
        }
        let header: Vec<String> = line
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        let has = |name: &str| header.iter().any(|h| h == name);
        if has("contexttokens") && has("generatedtokens") {
            Some(TraceFormat::Azure)
        } else if has("request tokens") && has("response tokens") {
            Some(TraceFormat::BurstGpt)
        } else {
            None
        }
    }
}

impl std::str::FromStr for TraceFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "mooncake" => Ok(TraceFormat::Mooncake),
            "azure" => Ok(TraceFormat::Azure),
            "burstgpt" => Ok(TraceFormat::BurstGpt),
            _ => Err(Error::Trace(format!(
                "unknown trace format {s:?}: use mooncake, azure or burstgpt"
            ))),
        }
    }
}

/// How to read a trace.
#[derive(Debug, Clone)]
pub struct TraceOptions {
    /// The format (`None`: detected from the first line).
    pub format: Option<TraceFormat>,
    /// Trace seconds per real second: 2 replays twice as fast, 0.5 at half speed.
    pub time_scale: f64,
    /// Only the rows from `start` to before `end`, seconds of trace time from the first row
    /// (`None`: all).
    pub window: Option<(f64, f64)>,
    /// The model's context, tokens: a row whose input and output exceed it is skipped (`None`:
    /// not checked).
    pub max_context: Option<u64>,
}

impl Default for TraceOptions {
    fn default() -> Self {
        Self {
            format: None,
            time_scale: 1.0,
            window: None,
            max_context: None,
        }
    }
}

/// One request of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRequest {
    /// Its line in the file, from 1.
    pub line: usize,
    /// When it is due, ns from the replay's start (the first row kept, or the window's start),
    /// time scale applied.
    pub at_ns: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Mooncake's block ids, in prompt order (empty for the other formats).
    pub hash_ids: Vec<u64>,
}

/// A row that was not replayed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its line in the file, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// A trace ready to replay.
#[derive(Debug, Clone)]
pub struct Trace {
    /// The file read.
    pub path: PathBuf,
    /// Its format.
    pub format: TraceFormat,
    /// The requests to send, in order of their times; never empty.
    pub requests: Vec<TraceRequest>,
    /// Rows that could not be replayed, in file order.
    pub skipped: Vec<Skipped>,
    /// Usable rows outside the window.
    pub outside_window: usize,
}

impl Trace {
    /// The replay's length: the last request's due time, seconds.
    pub fn span_seconds(&self) -> f64 {
        self.requests.last().map_or(0.0, |r| r.at_ns as f64 / 1e9)
    }

    /// A line for the user about the skipped rows (`None` when none was): their count and the
    /// first few, with line numbers.
    pub fn skipped_note(&self) -> Option<String> {
        const SHOWN: usize = 3;
        let first = self.skipped.first()?;
        let mut note = format!(
            "trace {}: {} row{} skipped (line {}: {}",
            self.path.display(),
            self.skipped.len(),
            if self.skipped.len() == 1 { "" } else { "s" },
            first.line,
            first.reason
        );
        for s in self.skipped.iter().skip(1).take(SHOWN - 1) {
            note.push_str(&format!("; line {}: {}", s.line, s.reason));
        }
        if self.skipped.len() > SHOWN {
            note.push_str("; …");
        }
        note.push(')');
        Some(note)
    }

    /// What the metadata records: the file, its format, the options and the counts.
    pub fn describe(&self, options: &TraceOptions) -> Value {
        serde_json::json!({
            "kind": "trace",
            "path": self.path.display().to_string(),
            "format": self.format.name(),
            "time_scale": options.time_scale,
            "window_seconds": options.window.map(|(a, b)| [a, b]),
            "requests": self.requests.len(),
            "skipped": self.skipped.len(),
            "outside_window": self.outside_window,
        })
    }
}

/// One row as read, before its time is placed.
struct Row {
    line: usize,
    /// Seconds, on the trace's own clock.
    t: f64,
    input: u64,
    output: u64,
    hash_ids: Vec<u64>,
}

/// Reads the trace at `path`.
pub fn load(path: &Path, options: &TraceOptions) -> Result<Trace> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text, options)
}

/// Reads a trace from its text (`path` names it in messages).
pub fn parse(path: &Path, text: &str, options: &TraceOptions) -> Result<Trace> {
    let malformed = |message: String| Error::Malformed {
        path: path.to_path_buf(),
        message,
    };
    if !(options.time_scale.is_finite() && options.time_scale > 0.0) {
        return Err(Error::Trace(format!(
            "a trace time scale of {} is not a positive number",
            options.time_scale
        )));
    }
    if let Some((a, b)) = options.window {
        if !(a.is_finite() && b.is_finite() && a >= 0.0 && b > a) {
            return Err(Error::Trace(format!(
                "a trace window from {a} to {b} s is not START,END with 0 ≤ START < END"
            )));
        }
    }
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let format = match options.format.or_else(|| TraceFormat::detect(first)) {
        Some(f) => f,
        None => {
            return Err(malformed(
                "not a trace: expected Mooncake JSON Lines (timestamp, input_length, \
                 output_length, hash_ids), an Azure CSV (TIMESTAMP, ContextTokens, \
                 GeneratedTokens) or a BurstGPT CSV (Timestamp, Request tokens, Response tokens)"
                    .into(),
            ))
        }
    };
    let mut skipped = Vec::new();
    let rows = match format {
        TraceFormat::Mooncake => mooncake_rows(text, &mut skipped),
        TraceFormat::Azure | TraceFormat::BurstGpt => {
            csv_rows(text, format, &mut skipped).map_err(malformed)?
        }
    };
    let mut kept: Vec<Row> = Vec::with_capacity(rows.len());
    for row in rows {
        let reason = if row.t < 0.0 {
            Some(format!("negative time {} s", row.t))
        } else if let Some(prev) = kept.last().filter(|p| row.t < p.t) {
            Some(format!(
                "its time is before the previous row's (line {}): timestamps must not go back",
                prev.line
            ))
        } else if row.input == 0 {
            Some("no input tokens".into())
        } else if row.output == 0 {
            Some("no output tokens (a request that failed in the trace)".into())
        } else if let Some(max) = options
            .max_context
            .filter(|&m| row.input.saturating_add(row.output) > m)
        {
            Some(format!(
                "{} input + {} output tokens exceed the model's context of {max}",
                row.input, row.output
            ))
        } else {
            None
        };
        match reason {
            Some(reason) => skipped.push(Skipped {
                line: row.line,
                reason,
            }),
            None => kept.push(row),
        }
    }
    skipped.sort_by_key(|s| s.line);
    let Some(origin) = kept.first().map(|r| r.t) else {
        return Err(malformed(match skipped.first() {
            Some(s) => format!(
                "no usable row ({} skipped; line {}: {})",
                skipped.len(),
                s.line,
                s.reason
            ),
            None => "no rows".into(),
        }));
    };
    let span = kept.last().map_or(0.0, |r| r.t - origin);
    let (from, to) = options.window.unwrap_or((0.0, f64::INFINITY));
    let mut outside_window = 0;
    let mut requests = Vec::with_capacity(kept.len());
    for r in kept {
        let t = r.t - origin;
        if t < from || t >= to {
            outside_window += 1;
            continue;
        }
        let at_s = (t - from) / options.time_scale;
        requests.push(TraceRequest {
            line: r.line,
            at_ns: (at_s * 1e9).round().min(u64::MAX as f64) as u64,
            input_tokens: r.input,
            output_tokens: r.output,
            hash_ids: r.hash_ids,
        });
    }
    if requests.is_empty() {
        return Err(Error::Trace(format!(
            "trace {}: no request in the window from {from} to {to} s (its usable rows span {span} s)",
            path.display(),
        )));
    }
    Ok(Trace {
        path: path.to_path_buf(),
        format,
        requests,
        skipped,
        outside_window,
    })
}

/// Mooncake's JSON Lines; rows that are not usable go to `skipped`.
fn mooncake_rows(text: &str, skipped: &mut Vec<Skipped>) -> Vec<Row> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut skip = |reason: String| {
            skipped.push(Skipped {
                line: line_no,
                reason,
            })
        };
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                skip(format!("not JSON ({e})"));
                continue;
            }
        };
        let number = |key: &str| -> std::result::Result<f64, String> {
            match v.get(key) {
                None | Some(Value::Null) => Err(format!("no {key}")),
                Some(x) => x
                    .as_f64()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| format!("{key} is not a number")),
            }
        };
        let count = |key: &str| -> std::result::Result<u64, String> {
            let x = number(key)?;
            if x < 0.0 || x.fract() != 0.0 {
                return Err(format!("{key} {x} is not a whole number of tokens"));
            }
            Ok(x as u64)
        };
        let hash_ids = match v.get("hash_ids") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(ids)) => ids
                .iter()
                .map(|id| {
                    id.as_u64()
                        .ok_or("hash_ids holds a value that is not an id")
                })
                .collect::<std::result::Result<Vec<u64>, _>>()
                .map_err(str::to_string),
            Some(_) => Err("hash_ids is not a list".to_string()),
        };
        match (
            number("timestamp"),
            count("input_length"),
            count("output_length"),
            hash_ids,
        ) {
            (Ok(ms), Ok(input), Ok(output), Ok(hash_ids)) => rows.push(Row {
                line: line_no,
                t: ms / 1e3,
                input,
                output,
                hash_ids,
            }),
            (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => skip(e),
        }
    }
    rows
}

/// Azure's or BurstGPT's CSV; rows that are not usable go to `skipped`. A header without the
/// format's columns is the file's error.
fn csv_rows(
    text: &str,
    format: TraceFormat,
    skipped: &mut Vec<Skipped>,
) -> std::result::Result<Vec<Row>, String> {
    let (time, input, output) = match format {
        TraceFormat::Azure => ("timestamp", "contexttokens", "generatedtokens"),
        _ => ("timestamp", "request tokens", "response tokens"),
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| format!("cannot read the CSV header: {e}"))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let column = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            format!(
                "the {} header has no {name:?} column (it has {})",
                format.name(),
                header.join(", ")
            )
        })
    };
    let (ti, ii, oi) = (column(time)?, column(input)?, column(output)?);
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                skipped.push(Skipped {
                    line,
                    reason: format!("not a CSV row ({e})"),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        let field = |i: usize, name: &str| -> std::result::Result<&str, String> {
            record
                .get(i)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| format!("no {name}"))
        };
        let count = |i: usize, name: &str| -> std::result::Result<u64, String> {
            let s = field(i, name)?;
            match s.parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 && x.fract() == 0.0 => Ok(x as u64),
                _ => Err(format!("{name} {s:?} is not a whole number of tokens")),
            }
        };
        let t = field(ti, time).and_then(|s| match format {
            TraceFormat::Azure => azure_time(s),
            _ => s
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| format!("Timestamp {s:?} is not a number of seconds")),
        });
        match (t, count(ii, input), count(oi, output)) {
            (Ok(t), Ok(input), Ok(output)) => rows.push(Row {
                line,
                t,
                input,
                output,
                hash_ids: Vec::new(),
            }),
            (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => {
                skipped.push(Skipped { line, reason: e })
            }
        }
    }
    Ok(rows)
}

/// An Azure `TIMESTAMP` (`2023-11-16 18:15:46.6805900`) as seconds since the Unix epoch.
fn azure_time(s: &str) -> std::result::Result<f64, String> {
    let parsed = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
        .map_err(|_| {
            format!("TIMESTAMP {s:?} is not a date and time like 2023-11-16 18:15:46.68")
        })?;
    let utc = parsed.and_utc();
    Ok(utc.timestamp() as f64 + f64::from(utc.timestamp_subsec_nanos()) / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, options: &TraceOptions) -> Result<Trace> {
        parse(Path::new("t"), text, options)
    }

    #[test]
    fn mooncake_rows_become_offsets_from_the_first_with_their_blocks() {
        let text = "{\"timestamp\": 1000, \"input_length\": 600, \"output_length\": 20, \"hash_ids\": [1, 2]}\n\
                    \n\
                    {\"timestamp\": 1500, \"input_length\": 100, \"output_length\": 5, \"hash_ids\": [1]}\n";
        let t = read(text, &TraceOptions::default()).unwrap();
        assert_eq!(t.format, TraceFormat::Mooncake);
        assert_eq!(
            t.requests,
            [
                TraceRequest {
                    line: 1,
                    at_ns: 0,
                    input_tokens: 600,
                    output_tokens: 20,
                    hash_ids: vec![1, 2]
                },
                TraceRequest {
                    line: 3,
                    at_ns: 500_000_000,
                    input_tokens: 100,
                    output_tokens: 5,
                    hash_ids: vec![1]
                }
            ]
        );
        // Twice as fast: half the gaps.
        let fast = TraceOptions {
            time_scale: 2.0,
            ..TraceOptions::default()
        };
        assert_eq!(read(text, &fast).unwrap().requests[1].at_ns, 250_000_000);
        assert!(t.skipped.is_empty());
        assert_eq!(t.span_seconds(), 0.5);
    }

    #[test]
    fn bad_rows_are_skipped_with_their_line_and_reason() {
        let text = [
            r#"{"timestamp": 0, "input_length": 10, "output_length": 2}"#,
            r#"{"timestamp": 5, "output_length": 2}"#,
            r#"{"timestamp": -3, "input_length": 10, "output_length": 2}"#,
            r#"{"timestamp": 10, "input_length": 10, "output_length": 2}"#,
            r#"{"timestamp": 8, "input_length": 10, "output_length": 2}"#,
            r#"{"timestamp": 20, "input_length": 9000, "output_length": 2}"#,
            r#"{"timestamp": 30, "input_length": 10, "output_length": 0}"#,
            r#"not json"#,
            r#"{"timestamp": 40, "input_length": 1.5, "output_length": 2}"#,
            r#"{"timestamp": 50, "input_length": 10, "output_length": 2, "hash_ids": "x"}"#,
        ]
        .join("\n");
        let options = TraceOptions {
            max_context: Some(8192),
            format: Some(TraceFormat::Mooncake),
            ..TraceOptions::default()
        };
        let t = read(&text, &options).unwrap();
        assert_eq!(
            t.requests.iter().map(|r| r.line).collect::<Vec<_>>(),
            [1, 4]
        );
        let lines: Vec<(usize, &str)> = t
            .skipped
            .iter()
            .map(|s| (s.line, s.reason.as_str()))
            .collect();
        assert_eq!(lines[0], (2, "no input_length"));
        assert_eq!(lines[1], (3, "negative time -0.003 s"));
        assert!(lines[2].0 == 5 && lines[2].1.contains("before the previous row's (line 4)"));
        assert!(lines[3].0 == 6 && lines[3].1.contains("exceed the model's context of 8192"));
        assert!(lines[4].0 == 7 && lines[4].1.starts_with("no output tokens"));
        assert!(lines[5].0 == 8 && lines[5].1.starts_with("not JSON"));
        assert!(lines[6].0 == 9 && lines[6].1.contains("not a whole number"));
        assert_eq!(lines[7], (10, "hash_ids is not a list"));
        let note = t.skipped_note().unwrap();
        assert!(
            note.starts_with("trace t: 8 rows skipped (line 2: no input_length; line 3: "),
            "{note}"
        );
        assert!(note.ends_with("; …)"), "{note}");
    }

    #[test]
    fn a_file_with_no_usable_row_is_refused_naming_the_first_problem() {
        let e = read(
            "{\"timestamp\": 0, \"input_length\": 0, \"output_length\": 2}\n",
            &TraceOptions::default(),
        )
        .unwrap_err();
        assert!(e.is_bad_input());
        assert_eq!(
            e.to_string(),
            "dataset file t: no usable row (1 skipped; line 1: no input tokens)"
        );
        let e = read("a,b\n1,2\n", &TraceOptions::default()).unwrap_err();
        assert!(e.to_string().contains("not a trace"), "{e}");
        let e = read("", &TraceOptions::default()).unwrap_err();
        assert!(e.to_string().contains("not a trace"), "{e}");
    }

    #[test]
    fn azure_and_burstgpt_csv_are_read_from_their_headers() {
        let azure = "TIMESTAMP,ContextTokens,GeneratedTokens\n\
                     2023-11-16 18:15:46.6805900,374,44\n\
                     2023-11-16 18:15:50.9951690,396,109\n\
                     2023-11-16 18:15:51.0,,3\n";
        let t = read(azure, &TraceOptions::default()).unwrap();
        assert_eq!(t.format, TraceFormat::Azure);
        assert_eq!(t.requests.len(), 2);
        // 4.314579 s, to the float's precision (Unix seconds in an f64 keep about 0.1 µs).
        assert!(
            t.requests[1].at_ns.abs_diff(4_314_579_000) < 1_000,
            "{}",
            t.requests[1].at_ns
        );
        assert_eq!(
            (t.requests[1].input_tokens, t.requests[1].output_tokens),
            (396, 109)
        );
        assert_eq!(t.requests[1].line, 3);
        assert_eq!(
            t.skipped,
            [Skipped {
                line: 4,
                reason: "no contexttokens".into()
            }]
        );

        let burst = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n\
                     5,ChatGPT,472,18,490,Conversation log\n\
                     45,ChatGPT,1087,0,1087,Conversation log\n\
                     118,GPT-4,417,276,693,Conversation log\n";
        let t = read(burst, &TraceOptions::default()).unwrap();
        assert_eq!(t.format, TraceFormat::BurstGpt);
        assert_eq!(
            t.requests
                .iter()
                .map(|r| (r.line, r.at_ns))
                .collect::<Vec<_>>(),
            [(2, 0), (4, 113_000_000_000)]
        );
        assert_eq!(t.skipped[0].line, 3);
        // A header that names the format but lacks a column is the file's error.
        let e = read(
            "TIMESTAMP,ContextTokens\n1,2\n",
            &TraceOptions {
                format: Some(TraceFormat::Azure),
                ..TraceOptions::default()
            },
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("no \"generatedtokens\" column"),
            "{e}"
        );
    }

    #[test]
    fn a_window_cuts_a_slice_and_starts_the_replay_at_its_start() {
        let text: String = (0..10)
            .map(|i| {
                format!(
                    "{{\"timestamp\": {}, \"input_length\": 10, \"output_length\": 2}}\n",
                    i * 1000
                )
            })
            .collect();
        let options = TraceOptions {
            window: Some((2.5, 6.0)),
            ..TraceOptions::default()
        };
        let t = read(&text, &options).unwrap();
        assert_eq!(
            t.requests.iter().map(|r| r.at_ns).collect::<Vec<_>>(),
            [500_000_000, 1_500_000_000, 2_500_000_000]
        );
        assert_eq!(t.outside_window, 7);
        let empty = TraceOptions {
            window: Some((20.0, 30.0)),
            ..TraceOptions::default()
        };
        assert!(read(&text, &empty).unwrap_err().is_bad_input());
        for bad in [(3.0, 3.0), (-1.0, 2.0), (f64::NAN, 1.0)] {
            let o = TraceOptions {
                window: Some(bad),
                ..TraceOptions::default()
            };
            assert!(read(&text, &o).is_err(), "{bad:?}");
        }
        assert_eq!(
            "BurstGPT".parse::<TraceFormat>().unwrap(),
            TraceFormat::BurstGpt
        );
        assert!("sharegpt".parse::<TraceFormat>().is_err());
    }
}
