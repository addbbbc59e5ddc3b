//! Merging the shards of one run ([`crate::shard`]) into the document one machine would have
//! written: `tokenomics-merge`.
//!
//! Each shard wrote its result document (`shard-I-of-N.json`, with `metadata.shard`) and its
//! per-request records (`shard-I-of-N.jsonl`). The merge checks that the documents are one run —
//! one configuration hash, every shard from 0 to N−1 present, none twice, each having finished
//! every level — then rebuilds every level from the records of all shards, run by run, through
//! the same accumulator a single machine uses, with the same limits: each percentile is the one
//! the union of the records gives (exact up to the accumulator's exact limit per figure, past it
//! from the same histogram, with the same stated error, as on one machine).
//!
//! Latencies never cross machines: every duration is a difference of two timestamps of one
//! request, taken by one shard's clock, and the records keep them to the nanosecond (times in
//! seconds from the run's origin, which a double gives back to the nanosecond for runs of up to 26 days).
//! Only the placing of the shards' runs on one timeline uses their wall clocks (each run's origin
//! is its records' `send_unix − send_s`): it moves throughput windows by the clocks' offsets (NTP
//! keeps them to a millisecond or so), never a latency.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use tokenomics_client::{Error as ClientError, RequestRecord, TokenSource};
use tokenomics_stats::{
    ChatDocument, LimitsBlock, Load, MergedBlock, MergedShard, PrefixCacheBlock, ShardBlock,
};

use crate::conversation::SessionTally;
use crate::load::{Limits, OpenLoop, Shape};
use crate::metrics::series::Ended;
use crate::metrics::{LevelAccumulator, Scheduled, Slo};
use crate::shard::Shard;
use crate::{Error, Result};

/// The shards' result files among `inputs`: a directory gives every `shard-I-of-N.json` in it,
/// a file itself.
pub fn shard_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let entries = std::fs::read_dir(input).map_err(|source| {
                Error::Stats(tokenomics_stats::Error::Read {
                    path: input.clone(),
                    source,
                })
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(is_shard_name)
                })
                .collect();
            if found.is_empty() {
                return Err(Error::Invalid(format!(
                    "{} holds no shard results (shard-I-of-N.json)",
                    input.display()
                )));
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    if files.is_empty() {
        return Err(Error::Invalid("no shard results given".into()));
    }
    Ok(files)
}

/// `shard-I-of-N.json`.
fn is_shard_name(name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix("shard-")
        .and_then(|r| r.strip_suffix(".json"))
    else {
        return false;
    };
    let Some((i, n)) = rest.split_once("-of-") else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(i) && digits(n)
}

/// One shard's document, where its records are, and its figures.
struct ShardInput {
    file: PathBuf,
    doc: ChatDocument,
    block: ShardBlock,
    records: PathBuf,
}

/// Merges the shards' result files (one run, every shard once) into one document.
pub fn merge(files: &[PathBuf]) -> Result<ChatDocument> {
    let shards = read_shards(files)?;
    let first = &shards[0];
    let num_runs = first.doc.metadata.num_runs;
    if num_runs > MAX_RUNS {
        return Err(Error::Invalid(format!(
            "{}: {num_runs} runs per level is more than a run has (at most {MAX_RUNS})",
            first.file.display()
        )));
    }
    let streamed = first.doc.metadata.stream.unwrap_or(false);
    let keys: Vec<String> = first
        .doc
        .metadata
        .levels
        .clone()
        .unwrap_or_else(|| first.doc.results.keys().cloned().collect());
    let mut readers = shards
        .iter()
        .map(|s| Records::open(&s.records, &keys, first.doc.metadata.stages.is_some()))
        .collect::<Result<Vec<_>>>()?;
    let mut results = IndexMap::new();
    let mut requests = vec![0u64; shards.len()];
    let mut skew = 0.0f64;
    // The wall-clock start of the merge's first run: later runs and levels are placed after it.
    let mut first_origin = None;
    for (pos, key) in keys.iter().enumerate() {
        let levels: Vec<_> = shards.iter().map(|s| s.doc.results.get(key)).collect();
        let Some(template) = levels.iter().flatten().next() else {
            continue; // no shard measured this level (the run was interrupted before it)
        };
        let load = template.load.as_ref().ok_or_else(|| {
            Error::Invalid(format!(
                "level {key} of {} has no load block",
                first.file.display()
            ))
        })?;
        let (shape, limits) = shape_of(load)?;
        let slo = template.goodput.as_ref().map(|g| Slo {
            ttft: g.slo_ms.ttft.map(|ms| ms / 1e3),
            tpot: g.slo_ms.tpot.map(|ms| ms / 1e3),
            e2el: g.slo_ms.e2el.map(|ms| ms / 1e3),
        });
        let bases: Vec<&str> = first.doc.metadata.api_base.split(',').collect();
        // The shards' timelines are on their own clocks: the merged one is rebuilt from the
        // records, in the finest of their buckets.
        let interval = levels
            .iter()
            .flatten()
            .filter_map(|l| l.timeline.as_ref())
            .filter_map(|t| Duration::try_from_secs_f64(t.interval_seconds).ok())
            .filter(|d| !d.is_zero())
            .min();
        let mut acc = LevelAccumulator::new(shape, limits, streamed)
            .with_slo(slo)
            .with_confidence(first.block.confidence)
            .with_endpoints(&bases)
            .with_timeline(interval);
        // Conversations: figures per turn index, and the sessions (as one machine reports them).
        let conversation = template.conversation.is_some();
        if conversation {
            let block = levels
                .iter()
                .flatten()
                .find_map(|l| l.prefix_cache.as_ref())
                .map_or(DEFAULT_BLOCK_TOKENS, |p| p.block_tokens);
            acc = acc.with_target(None).with_turns(block);
        }
        let mut measured = vec![0u64; shards.len()];
        // A stage of a stage list began this long after the load, whose start its records'
        // times count from.
        let stage_start_ns = first
            .doc
            .metadata
            .stages
            .iter()
            .flatten()
            .find(|s| &s.key == key)
            .map_or(0, |s| (s.start_seconds.max(0.0) * 1e9).round() as u64);
        for run in 0..num_runs as usize {
            let mut lines = Vec::new();
            for (i, reader) in readers.iter_mut().enumerate() {
                for line in reader.take(pos, run)? {
                    lines.push((i, line));
                }
            }
            let spread = measured_run(
                &mut acc,
                &lines,
                &shards,
                &mut measured,
                &mut first_origin,
                stage_start_ns,
            )?;
            // Runs of one timetable slot start together; shards further apart than the gap
            // between runs are not one run (a clock far off, a shard retried later).
            let allowed = first.block.run_gap_seconds.max(1.0);
            if spread > allowed {
                return Err(Error::Invalid(format!(
                    "run {} of level {key}: the shards started {spread:.1} s apart (more than \
                     {allowed:.1} s): not one run (are their clocks synchronised? was a shard \
                     restarted?)",
                    run + 1
                )));
            }
            skew = skew.max(spread);
            if conversation {
                // The sessions' turns sent in this run (each shard's sessions are its own).
                acc.end_sessions(SessionTally::default());
            }
        }
        if conversation {
            // How many sessions started and completed is each shard's count: added up.
            let (started, completed) = levels
                .iter()
                .flatten()
                .filter_map(|l| l.conversation.as_ref())
                .fold((0, 0), |(s, c), b| (s + b.sessions, c + b.completed));
            acc.end_sessions(SessionTally { started, completed });
        }
        for (i, level) in levels.iter().enumerate() {
            let counted = level
                .and_then(|l| l.requests.as_ref())
                .map_or(0, |c| c.succeeded + c.failed);
            if counted != measured[i] {
                let which = if measured[i] < counted {
                    "the records are incomplete"
                } else {
                    "the results were written before the level ended (a snapshot?)"
                };
                return Err(Error::Invalid(format!(
                    "{} has {} requests of level {key} but {} counts {counted}: {which}",
                    shards[i].records.display(),
                    measured[i],
                    shards[i].file.display()
                )));
            }
            requests[i] += measured[i];
        }
        let cache = acc.cache_tally();
        let history = acc.history_cache();
        let mut level = acc.finish();
        // The expected prefix-cache hit rate is the whole plan's, the same in every shard (a
        // conversation's, its sessions' histories, from the merged records); the measured one is
        // the merged records' (the server's own counters are each shard's scrapes, left out with
        // the rest of its metrics).
        let expected = match conversation {
            true => history,
            false => template.prefix_cache.clone(),
        };
        level.prefix_cache = expected.map(|expected| {
            PrefixCacheBlock {
                server_hit_rate: None,
                ..expected
            }
            .measured(cache.reporting, cache.prompt_tokens, cache.cached_tokens)
        });
        if let Some(t) = level.timeline.as_mut() {
            // Seconds from the merge's first run, not from the base that keeps times positive.
            t.start_seconds -= BASE_NS as f64 / 1e9;
            t.measured_from_seconds -= BASE_NS as f64 / 1e9;
        }
        level.incomplete = levels.iter().flatten().any(|l| l.incomplete);
        level.cost = first.doc.metadata.cost.and_then(|c| c.chat_level(&level));
        // Probes are sent by shard 0 alone: its block is the run's.
        level.probes = shards
            .iter()
            .zip(&levels)
            .find(|(s, _)| s.block.index == 0)
            .and_then(|(_, l)| l.and_then(|l| l.probes.clone()));
        // The server's metrics are the whole server's, seen by every shard at once: one shard's
        // block is the run's; several cannot be added, and are left out. Likewise a timeline
        // (rebuilt from the records above: each shard's is on its own clock), and the client's
        // load, which is each load machine's own (kept per shard, in `metadata.merged`).
        if let [Some(only)] = levels[..] {
            level.server_metrics = only.server_metrics.clone();
            level.timeline = only.timeline.clone();
            level.client_load = only.client_load.clone();
            level.prefix_cache = only.prefix_cache.clone();
        }
        results.insert(key.clone(), level);
    }
    for r in &mut readers {
        r.finish()?;
    }
    let mut metadata = first.doc.metadata.clone();
    metadata.shard = None;
    metadata.incomplete = shards.iter().any(|s| s.doc.metadata.incomplete);
    metadata.merged = Some(MergedBlock {
        count: first.block.count,
        config_hash: first.block.config_hash.clone(),
        start_at: first.block.start_at,
        start_skew_seconds: skew,
        shards: shards
            .iter()
            .zip(&requests)
            .map(|(s, &requests)| MergedShard {
                index: s.block.index,
                host: s.block.host.clone(),
                late_seconds: s.block.late_seconds,
                requests,
                file: s.file.display().to_string(),
                // One shard's levels keep their own block (see above).
                client_load: match shards.len() {
                    1 => IndexMap::new(),
                    _ => s
                        .doc
                        .results
                        .iter()
                        .filter_map(|(k, l)| Some((k.clone(), l.client_load.clone()?)))
                        .collect(),
                },
            })
            .collect(),
    });
    Ok(ChatDocument { metadata, results })
}

/// Reads and checks the shards: each a shard's document, one run, every index once.
fn read_shards(files: &[PathBuf]) -> Result<Vec<ShardInput>> {
    let mut shards: Vec<ShardInput> = Vec::with_capacity(files.len());
    for file in files {
        let doc: ChatDocument =
            tokenomics_stats::read_json(file).map_err(|e| Error::Invalid(e.to_string()))?;
        let block = doc.metadata.shard.clone().ok_or_else(|| {
            Error::Invalid(format!(
                "{} is not a shard's result (no metadata.shard): oai-bench writes one with \
                 --results_dir",
                file.display()
            ))
        })?;
        Shard::new(block.index, block.count)
            .map_err(|e| Error::Invalid(format!("{}: {e}", file.display())))?;
        let planned = doc.metadata.levels.as_ref().map_or(0, Vec::len) as u64;
        if block.levels_done < planned {
            return Err(Error::Invalid(format!(
                "{}: shard {} of {} stopped after {} of its {planned} levels (killed or \
                 interrupted?): its part of the run is missing",
                file.display(),
                block.index,
                block.count,
                block.levels_done
            )));
        }
        let dir = file.parent().unwrap_or(Path::new("."));
        let records = dir.join(&block.records);
        if block.records.is_empty() || !records.is_file() {
            return Err(Error::Invalid(format!(
                "the records of {} ({}) are missing",
                file.display(),
                records.display()
            )));
        }
        shards.push(ShardInput {
            file: file.clone(),
            doc,
            block,
            records,
        });
    }
    shards.sort_by_key(|s| s.block.index);
    let first = &shards[0];
    for s in &shards[1..] {
        if s.block.config_hash != first.block.config_hash || s.block.count != first.block.count {
            return Err(Error::Invalid(format!(
                "{} is from another run than {} (configuration {} of {} shards, not {} of {})",
                s.file.display(),
                first.file.display(),
                s.block.config_hash,
                s.block.count,
                first.block.config_hash,
                first.block.count
            )));
        }
    }
    for pair in shards.windows(2) {
        if pair[0].block.index == pair[1].block.index {
            return Err(Error::Invalid(format!(
                "shard {} of {} is given twice: {} and {}",
                pair[0].block.index,
                pair[0].block.count,
                pair[0].file.display(),
                pair[1].file.display()
            )));
        }
    }
    let count = first.block.count;
    if shards.len() > count as usize {
        return Err(Error::Invalid(format!(
            "{} files given for a run of {count} shards",
            shards.len()
        )));
    }
    let missing: Vec<String> = (0..count)
        .filter(|i| !shards.iter().any(|s| s.block.index == *i))
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::Invalid(format!(
            "shard{} {} of {count} missing: merge every shard of the run",
            if missing.len() > 1 { "s" } else { "" },
            list(&missing)
        )));
    }
    Ok(shards)
}

/// `0, 1, 2 … (N in all)` for a long list.
fn list(items: &[String]) -> String {
    if items.len() <= 8 {
        items.join(", ")
    } else {
        format!("{} … ({} in all)", items[..8].join(", "), items.len())
    }
}

/// The level's shape and limits from its `load` block.
fn shape_of(load: &Load) -> Result<(Shape, Limits)> {
    let limits = |b: &LimitsBlock| -> Result<Limits> {
        let secs = |s: f64| {
            Duration::try_from_secs_f64(s)
                .map_err(|e| Error::Invalid(format!("a level's limits: {s} s: {e}")))
        };
        Ok(Limits {
            num_requests: b.num_requests,
            duration: b.duration_seconds.map(secs).transpose()?,
            warmup: secs(b.warmup_seconds)?,
            at_end: b.at_end,
        })
    };
    match load {
        Load::ClosedLoop {
            max_concurrency,
            limits: l,
        } => Ok((
            Shape::Closed {
                concurrency: *max_concurrency,
            },
            limits(l)?,
        )),
        Load::OpenLoop {
            request_rate,
            arrival,
            burstiness,
            max_concurrency,
            ramp,
            limits: l,
            ..
        } => Ok((
            Shape::Open(OpenLoop {
                rate: *request_rate,
                arrival: *arrival,
                burstiness: *burstiness,
                max_concurrency: *max_concurrency,
                ramp: ramp.map(|r| crate::load::Ramp {
                    from: r.from_rate,
                    to: r.to_rate,
                    seconds: r.seconds,
                }),
            }),
            limits(l)?,
        )),
        Load::Burst { .. } => Err(Error::Invalid(
            "a burst level cannot come from shards (they run sustained levels only)".into(),
        )),
    }
}

/// The cache block a conversation's expected prefix-cache hits are counted in when no shard
/// says (vLLM's default), tokens.
const DEFAULT_BLOCK_TOKENS: u64 = 16;

/// The most runs per level a merge takes (as `--num_runs` does).
const MAX_RUNS: u64 = 1_000_000;

/// The most tokens one record may claim (as the client refuses larger usage counts).
const MAX_TOKENS: u64 = 1 << 24;

/// The widest gap between values.
fn spread(values: impl Iterator<Item = f64>) -> f64 {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if hi >= lo {
        hi - lo
    } else {
        0.0
    }
}

/// Nanoseconds before the earliest origin on the merged timeline, so that no time is negative.
const BASE_NS: i64 = 1_000_000_000_000;
/// The latest a run may begin after the merge's first run (on the shards' wall clocks), seconds:
/// a year, far beyond any benchmark, and far within what nanoseconds in an `i64` hold.
const MAX_RUN_AFTER_S: f64 = 365.0 * 86_400.0;

/// One run of a level from every shard's lines: placed on one timeline, added in the order they
/// ended. Returns how far apart the shards' runs began (seconds, on their wall clocks).
///
/// The run is placed after `first_origin` (the wall-clock start of the merge's first run, set by
/// it) by as much as it began after it, so that the runs and levels of a merged timeline follow
/// each other as they did. A stage of a stage list begins `stage_start_ns` after its run's
/// origin (the load's start, which its records count from).
fn measured_run(
    acc: &mut LevelAccumulator,
    lines: &[(usize, Line)],
    shards: &[ShardInput],
    measured: &mut [u64],
    first_origin: &mut Option<f64>,
    stage_start_ns: u64,
) -> Result<f64> {
    for (i, l) in lines {
        l.check(&shards[*i].records)?;
    }
    // Each shard's origin (Unix seconds) from its first line that has both clocks.
    let mut origins: BTreeMap<usize, f64> = BTreeMap::new();
    for (i, l) in lines {
        if let (Some(unix), Some(rel)) = (l.send_unix, l.send_s) {
            origins.entry(*i).or_insert(unix - rel);
        }
    }
    let earliest = origins.values().copied().fold(f64::INFINITY, f64::min);
    let run_ns = match (earliest.is_finite(), *first_origin) {
        (true, Some(first)) => {
            let after = (earliest - first).max(0.0);
            if after > MAX_RUN_AFTER_S {
                return Err(Error::Invalid(format!(
                    "a run began {after:.0} s after the first on the shards' clocks: not one \
                     benchmark (are their clocks right?)"
                )));
            }
            (after * 1e9).round() as i64
        }
        (true, None) => {
            *first_origin = Some(earliest);
            0
        }
        (false, _) => 0,
    };
    let run_base = BASE_NS.saturating_add(run_ns);
    let base = |i: usize| -> i64 {
        let offset = origins.get(&i).map_or(0.0, |o| o - earliest);
        run_base.saturating_add((offset * 1e9).round() as i64)
    };
    let mut records: Vec<(usize, &Line, RequestRecord)> = Vec::with_capacity(lines.len());
    for (i, l) in lines {
        let record = l.record(base(*i), &shards[*i].records)?;
        records.push((*i, l, record));
    }
    records.sort_by_key(|(i, l, r)| (r.timing.end_ns.unwrap_or(r.timing.send_ns), *i, l.index));
    let origin_ns = (run_base as u64).saturating_add(stage_start_ns);
    acc.begin_run(origin_ns);
    if earliest.is_finite() {
        // (A run with no request sent has no place on the clock: it does not start the timeline.)
        acc.timeline_begin(origin_ns, origin_ns);
    }
    // A request given up at the run's end has no end of its own: it ended with the run.
    let run_end = records
        .iter()
        .map(|(_, _, r)| r.timing.end_ns.unwrap_or(r.timing.send_ns))
        .max()
        .unwrap_or(origin_ns);
    let mut cancelled = 0;
    for (i, l, r) in &records {
        // Every request sent goes on the timeline (one abandoned before its send has no time).
        if r.timing.send_ns != 0 {
            acc.timeline_add(Ended {
                record: r,
                end_ns: r.timing.end_ns.unwrap_or(run_end),
                cancelled: matches!(l.status.as_str(), "cancelled" | "aborted"),
            });
        }
        let turn = match (l.session, l.turn) {
            (Some(session), Some(turn)) => {
                let turn = u32::try_from(turn.saturating_sub(1)).unwrap_or(u32::MAX);
                acc.turn_sent(session, turn);
                Some((session, turn))
            }
            _ => None,
        };
        let scheduled = l.scheduled_s.map(|s| Scheduled {
            scheduled_ns: at(base(*i), s),
            slot_wait_ns: l.slot_wait_s.map(|w| (w * 1e9).round() as u64),
        });
        if let Some(s) = &scheduled {
            acc.add_arrival(s.scheduled_ns, r.timing.send_ns);
        }
        if l.status == "aborted" {
            acc.add_aborted(r);
            continue;
        }
        if l.status == "cancelled" {
            cancelled += 1;
            continue;
        }
        let failure = (l.status != "ok").then(|| {
            (
                l.error_kind.as_deref().unwrap_or("unknown"),
                l.error.as_deref().unwrap_or(""),
            )
        });
        acc.add_recorded(r, failure, scheduled.as_ref());
        if let Some((session, turn)) = turn {
            let think_ns = l.think_s.map(|s| (s * 1e9).round() as u64);
            acc.add_turn_recorded(session, turn, think_ns, r, failure);
        }
        measured[*i] += 1;
    }
    acc.add_cancelled(cancelled);
    acc.end_run();
    Ok(spread(origins.values().copied()))
}

/// `base` plus `s` seconds, in nanoseconds.
fn at(base: i64, s: f64) -> u64 {
    u64::try_from(base.saturating_add((s * 1e9).round() as i64)).unwrap_or(0)
}

/// One line of a records file (see [`crate::records`]), as far as the merge reads it.
#[derive(Debug, Deserialize)]
struct Line {
    level: String,
    run: usize,
    index: u64,
    status: String,
    error_kind: Option<String>,
    error: Option<String>,
    prompt_tokens: Option<u64>,
    #[serde(default)]
    cached_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
    token_source: String,
    #[serde(default)]
    content_events: u64,
    #[serde(default)]
    reasoning_events: u64,
    finish_reason: Option<String>,
    response_id: Option<String>,
    /// Which `--api_base` it went to (absent before several endpoints: 0).
    #[serde(default)]
    endpoint: usize,
    #[serde(default)]
    connect_s: f64,
    send_s: Option<f64>,
    headers_s: Option<f64>,
    first_byte_s: Option<f64>,
    first_token_s: Option<f64>,
    first_answer_s: Option<f64>,
    end_s: Option<f64>,
    send_unix: Option<f64>,
    scheduled_s: Option<f64>,
    slot_wait_s: Option<f64>,
    token_s: Option<Vec<f64>>,
    /// A conversation's turn: its session, turn (from 1) and the think time before it.
    session: Option<u64>,
    turn: Option<u64>,
    think_s: Option<f64>,
}

impl Line {
    /// Refuses a line whose figures no client could have written: times that are not finite,
    /// negative, out of order or past a year; a wall-clock time outside 1970–5138; token counts
    /// the client refuses.
    fn check(&self, file: &Path) -> Result<()> {
        let bad = |what: &str| {
            Err(Error::Invalid(format!(
                "{} request {} of level {} run {}: {what}",
                file.display(),
                self.index,
                self.level,
                self.run + 1
            )))
        };
        const YEAR_S: f64 = 366.0 * 86_400.0;
        let valid = |t: f64| t.is_finite() && (0.0..=YEAR_S).contains(&t);
        let times = [
            ("send_s", self.send_s),
            ("headers_s", self.headers_s),
            ("first_byte_s", self.first_byte_s),
            ("first_token_s", self.first_token_s),
            ("first_answer_s", self.first_answer_s),
            ("end_s", self.end_s),
            ("scheduled_s", self.scheduled_s),
            ("slot_wait_s", self.slot_wait_s),
        ];
        for (name, t) in times {
            if t.is_some_and(|t| !valid(t)) {
                return bad(&format!("{name} is not a time within a run"));
            }
        }
        if !valid(self.connect_s) {
            return bad("connect_s is not a time within a run");
        }
        if self.think_s.is_some_and(|t| !valid(t)) {
            return bad("think_s is not a time within a run");
        }
        if self.turn == Some(0) || self.turn.is_some() != self.session.is_some() {
            return bad("a conversation's turn has its session and counts from 1");
        }
        let send = self.send_s.unwrap_or(0.0);
        for (name, t) in [
            ("headers_s", self.headers_s),
            ("first_byte_s", self.first_byte_s),
            ("first_token_s", self.first_token_s),
            ("first_answer_s", self.first_answer_s),
            ("end_s", self.end_s),
        ] {
            if t.is_some_and(|t| t < send) {
                return bad(&format!("{name} is before send_s"));
            }
        }
        if let (Some(first), Some(end)) = (self.first_token_s, self.end_s) {
            if first > end {
                return bad("first_token_s is after end_s");
            }
        }
        if let Some(times) = &self.token_s {
            if times.iter().any(|&t| !valid(t) || t < send) {
                return bad("token_s holds a time that is not within the request");
            }
            if times.windows(2).any(|w| w[1] < w[0]) {
                return bad("token_s is not in order");
            }
        }
        if self
            .send_unix
            .is_some_and(|u| !(u.is_finite() && u > 0.0 && u < 1e11))
        {
            return bad("send_unix is not a Unix time");
        }
        for (name, n) in [
            ("prompt_tokens", self.prompt_tokens),
            ("cached_tokens", self.cached_tokens),
            ("completion_tokens", self.completion_tokens),
            ("reasoning_tokens", self.reasoning_tokens),
        ] {
            if n.is_some_and(|n| n > MAX_TOKENS) {
                return bad(&format!("{name} is more than {MAX_TOKENS}"));
            }
        }
        if self.content_events > MAX_TOKENS || self.reasoning_events > MAX_TOKENS {
            return bad(&format!("more than {MAX_TOKENS} events"));
        }
        Ok(())
    }

    /// The request as the shard recorded it, its times `base` ns + the line's seconds.
    fn record(&self, base: i64, file: &Path) -> Result<RequestRecord> {
        let t = |s: Option<f64>| s.map(|s| at(base, s));
        let mut r = RequestRecord {
            prompt_tokens: self.prompt_tokens,
            cached_tokens: self.cached_tokens,
            completion_tokens: self.completion_tokens,
            reasoning_tokens: self.reasoning_tokens,
            token_source: match self.token_source.as_str() {
                "usage" => TokenSource::Usage,
                "events" => TokenSource::Events,
                _ => TokenSource::Unknown,
            },
            content_events: self.content_events,
            reasoning_events: self.reasoning_events,
            finish_reason: self.finish_reason.clone(),
            response_id: self.response_id.clone(),
            replica: self.endpoint,
            // The kind and message are counted from the line; this only makes it read as failed.
            error: match self.status.as_str() {
                "ok" => None,
                _ if self.error_kind.as_deref() == Some("interrupted") => {
                    Some(ClientError::Interrupted)
                }
                _ => Some(ClientError::Io(self.error.clone().unwrap_or_default())),
            },
            ..RequestRecord::default()
        };
        let timing = &mut r.timing;
        timing.send_ns = t(self.send_s).unwrap_or(0);
        timing.connect_ns = (self.connect_s * 1e9).round() as u64;
        timing.headers_ns = t(self.headers_s);
        timing.first_byte_ns = t(self.first_byte_s);
        timing.first_token_ns = t(self.first_token_s);
        timing.first_answer_ns = t(self.first_answer_s);
        timing.end_ns = t(self.end_s);
        match &self.token_s {
            Some(times) => timing.token_events_ns = times.iter().map(|&s| at(base, s)).collect(),
            None if self.status == "ok" && self.first_token_s.is_some() => {
                return Err(Error::Invalid(format!(
                    "{} has no token times (token_s) for a streamed request: its shard ran \
                     without them, and the inter-token latencies cannot be rebuilt",
                    file.display()
                )))
            }
            None => {}
        }
        Ok(r)
    }
}

/// A records file read run by run: its lines come level by level, run by run, in the order the
/// levels were run — but for a stage list's, which are one load: a request in flight at a
/// boundary ends (and is written) after the next stage's first requests.
struct Records {
    path: PathBuf,
    lines: std::io::Lines<BufReader<File>>,
    line_no: usize,
    /// Level keys in order, to place each line.
    keys: Vec<String>,
    /// The next line, read but not yet taken: (level position, run, line).
    pending: Option<(usize, usize, Line)>,
    /// A stage list: its lines are read whole at the first take, and kept here by level.
    stages: bool,
    later: BTreeMap<(usize, usize), Vec<Line>>,
}

impl Records {
    fn open(path: &Path, keys: &[String], stages: bool) -> Result<Self> {
        let file = File::open(path).map_err(|source| {
            Error::Stats(tokenomics_stats::Error::Read {
                path: path.to_path_buf(),
                source,
            })
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            lines: BufReader::new(file).lines(),
            line_no: 0,
            keys: keys.to_vec(),
            pending: None,
            stages,
            later: BTreeMap::new(),
        })
    }

    fn next(&mut self) -> Result<Option<(usize, usize, Line)>> {
        if let Some(p) = self.pending.take() {
            return Ok(Some(p));
        }
        loop {
            let Some(text) = self.lines.next() else {
                return Ok(None);
            };
            self.line_no += 1;
            let text = text.map_err(|source| {
                Error::Stats(tokenomics_stats::Error::Read {
                    path: self.path.clone(),
                    source,
                })
            })?;
            if text.trim().is_empty() {
                continue;
            }
            let line: Line = serde_json::from_str(&text).map_err(|e| {
                Error::Invalid(format!(
                    "{} line {}: not a request record: {e}",
                    self.path.display(),
                    self.line_no
                ))
            })?;
            let pos = self
                .keys
                .iter()
                .position(|k| *k == line.level)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "{} line {}: level {:?} is not one of the run's levels",
                        self.path.display(),
                        self.line_no,
                        line.level
                    ))
                })?;
            return Ok(Some((pos, line.run, line)));
        }
    }

    /// The lines of run `run` of the level at `pos` (lines of earlier runs left unread are an
    /// error: the file is out of order).
    fn take(&mut self, pos: usize, run: usize) -> Result<Vec<Line>> {
        let mut out = self.later.remove(&(pos, run)).unwrap_or_default();
        while let Some((p, r, line)) = self.next()? {
            if (p, r) == (pos, run) {
                out.push(line);
            } else if (p, r) < (pos, run) {
                return Err(self.out_of_order());
            } else if self.stages {
                // A later stage's line among this one's: kept for its own take.
                self.later.entry((p, r)).or_default().push(line);
            } else {
                self.pending = Some((p, r, line));
                break;
            }
        }
        Ok(out)
    }

    /// Every line was taken.
    fn finish(&mut self) -> Result<()> {
        match self.next()? {
            None if self.later.is_empty() => Ok(()),
            _ => Err(self.out_of_order()),
        }
    }

    fn out_of_order(&self) -> Error {
        Error::Invalid(format!(
            "{} line {}: out of order (a records file holds its levels and runs in the order \
             they ran)",
            self.path.display(),
            self.line_no
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_file_names() {
        assert!(is_shard_name("shard-0-of-4.json"));
        assert!(is_shard_name("shard-12-of-100.json"));
        for bad in [
            "shard-0-of-4.jsonl",
            "shard--of-4.json",
            "shard-a-of-4.json",
            "x.json",
        ] {
            assert!(!is_shard_name(bad), "{bad}");
        }
    }

    #[test]
    fn times_come_back_to_the_nanosecond() {
        // What records.rs writes: (t − origin) / 1e9 as a double; read back at the base.
        for d in [
            0u64,
            1,
            999,
            1_234_567_891,
            86_400_000_000_123,
            864_000_000_000_007,
        ] {
            let s = d as f64 / 1e9;
            assert_eq!(at(BASE_NS, s), BASE_NS as u64 + d, "{d}");
        }
    }
}

#[cfg(test)]
mod stage_records {
    use super::*;

    /// A records file whose lines of stage 1 come after stage 2's first (a request in flight at
    /// the boundary ended later): a stage list's takes find them; other levels refuse the order.
    #[test]
    fn a_stage_lists_lines_may_interleave_other_levels_may_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let line = |level: &str, index: u64| {
            format!(
                r#"{{"level":"{level}","run":0,"index":{index},"status":"ok","token_source":"usage"}}"#
            )
        };
        let text = [
            line("stage1:2", 0),
            line("stage2:4", 2),
            line("stage1:2", 1),
            line("stage2:4", 3),
        ]
        .join("\n");
        std::fs::write(&path, text).unwrap();
        let keys = ["stage1:2".to_string(), "stage2:4".to_string()];
        let mut stages = Records::open(&path, &keys, true).unwrap();
        let indexes = |lines: Vec<Line>| lines.iter().map(|l| l.index).collect::<Vec<_>>();
        assert_eq!(indexes(stages.take(0, 0).unwrap()), [0, 1]);
        assert_eq!(indexes(stages.take(1, 0).unwrap()), [2, 3]);
        assert!(stages.finish().is_ok());
        let mut levels = Records::open(&path, &keys, false).unwrap();
        assert_eq!(indexes(levels.take(0, 0).unwrap()), [0]);
        let refused = levels.take(1, 0).unwrap_err().to_string();
        assert!(refused.contains("out of order"), "{refused}");
    }
}
