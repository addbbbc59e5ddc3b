//! What the benchmark binaries print while they run: [`Observer`]s that write the run lines and
//! level summaries of [`crate::report`] to the terminal, count outcomes for the exit code, and
//! keep the live progress line (when there is one) out of the way of what they print.

use tokenomics_client::{Client, Error as ClientError};
use tokenomics_stats::{ChatLevel, ClientLoadBlock, EmbedLevel, Preflight};

use crate::live::Live;
use crate::load::Shape;
use crate::preflight::{self, Probe};
use crate::{report, ChatConfig, EmbedConfig, EmbedRunReport, Error, Observer, RunReport};

/// Prints `text` and a newline on stdout. A failed write (a reader that stopped reading, as in
/// `oai-bench … | head`) is dropped, never a panic: the run goes on and its results are written.
pub fn say(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout(), "{text}");
}

/// Requests counted for the exit code.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Measured requests that succeeded, over every run so far.
    pub succeeded: u64,
    /// Measured requests that failed, over every run so far (warm-up failures not counted).
    pub failed: u64,
}

/// The chat benchmark's console.
#[derive(Default)]
pub struct ChatConsole {
    /// The measured requests' outcomes, counted as runs finish.
    pub outcome: Outcome,
    warned: bool,
    live: Option<Live>,
}

impl ChatConsole {
    /// A console that prints above the live progress line `live`, when there is one.
    pub fn new(live: Option<Live>) -> Self {
        Self {
            live,
            ..Self::default()
        }
    }

    /// Removes the live progress line (before the final summary is printed).
    pub fn finish_live(&mut self) {
        if let Some(live) = self.live.take() {
            live.finish();
        }
    }

    fn print(&self, text: &str) {
        match &self.live {
            Some(l) => l.print(text),
            None => say(text.strip_suffix('\n').unwrap_or(text)),
        }
    }
}

impl Observer for ChatConsole {
    fn level_started(&mut self, shape: &Shape) {
        self.print(&format!("\n=== {} ===", shape.title()));
        self.warned = false;
    }
    fn prefix_cache_expected(&mut self, _key: &str, b: &tokenomics_stats::PrefixCacheBlock) {
        let requests = b.expected_requests.map_or("the steady state".into(), |n| {
            format!(
                "{n} requests, {} of them finding their prefix cold",
                b.expected_misses
            )
        });
        // A trace's sharing is its block ids' (no groups).
        let what = match b.groups {
            0 => "the trace's shared blocks".to_string(),
            g => format!("shared prefixes: {g} groups × {} tokens", b.prefix_tokens),
        };
        self.print(&format!(
            "  {what}; expected prefix-cache hit rate {:.1}% ({} of ~{:.0} prompt tokens per request in blocks of {}; {requests})",
            b.expected_hit_rate * 100.0,
            b.expected_hit_tokens_per_request,
            b.expected_prompt_tokens_per_request,
            b.block_tokens,
        ));
    }
    fn warmup_failed(&mut self, _key: &str, error: &ClientError) {
        if !self.warned {
            eprintln!("  warning: a warm-up request failed: {error}");
            self.warned = true;
        }
    }
    fn records_failed(&mut self, error: &Error) {
        eprintln!("  warning: the per-request records file is no longer written: {error}");
    }
    fn run_late(&mut self, _key: &str, run: usize, late: std::time::Duration) {
        eprintln!(
            "  warning: run {} started {:.3} s after its time on the timetable (the records say \
             so in late_s; a shard that starts late sends its part late)",
            run + 1,
            late.as_secs_f64()
        );
    }
    fn run_finished(&mut self, r: &RunReport) {
        self.outcome.succeeded += r.succeeded as u64;
        self.outcome.failed += r.failed as u64;
        self.print(&report::run_line(r));
    }
    fn level_finished(&mut self, key: &str, level: &ChatLevel) {
        self.print(&report::level_summary(key, level));
        warn_load(level.client_load.as_ref());
    }
    fn experiment_step(&mut self, text: &str) {
        self.print(&format!("  → {text}"));
    }
}

/// The embedding benchmark's console.
#[derive(Default)]
pub struct EmbedConsole {
    /// The measured requests' outcomes, counted as runs finish.
    pub outcome: Outcome,
    warned: bool,
}

impl Observer for EmbedConsole {
    fn warmup_failed(&mut self, _: &str, error: &ClientError) {
        if !self.warned {
            eprintln!("  warning: a warm-up request failed: {error}");
            self.warned = true;
        }
    }
    fn embed_run_finished(&mut self, r: &EmbedRunReport) {
        if r.run == 0 {
            say(&format!("\n=== {} ===", r.key));
        }
        self.outcome.succeeded += r.succeeded as u64;
        self.outcome.failed += r.failed as u64;
        say(&report::embed_run_line(r));
    }
    fn embed_level_finished(&mut self, key: &str, level: &EmbedLevel) {
        let summary = report::embed_level_summary(key, level);
        say(summary.strip_suffix('\n').unwrap_or(&summary));
        warn_load(level.client_load.as_ref());
    }
}

/// Prints, on stderr, why a level's timings may be the client's rather than the server's (its
/// `client_load` warnings, [`crate::client_load`]).
fn warn_load(block: Option<&ClientLoadBlock>) {
    for w in block.into_iter().flat_map(|b| &b.warnings) {
        eprintln!("  warning: {w}");
    }
}

/// The check before the run ([`preflight::check`]), unless `skip`, with its result in one line.
pub async fn preflight(
    skip: bool,
    client: &Client,
    model: &str,
    probe: &Probe,
) -> crate::Result<Option<Preflight>> {
    if skip {
        return Ok(None);
    }
    // Each endpoint is checked on its own, so that a failure names the one that failed; the
    // first one's figures are kept.
    let bases = client.api_bases();
    let mut first = None;
    for (i, base) in bases.iter().enumerate() {
        let found = match client.replica(i) {
            Some(one) if bases.len() > 1 => preflight::check(&one?, model, probe).await?,
            _ => preflight::check(client, model, probe).await?,
        };
        say(&preflight::summary(&found, base, model));
        first.get_or_insert(found);
    }
    Ok(first)
}

/// The line that opens a chat run: model, server, levels, runs, tokens, streaming.
/// How a conversation run's sessions go, for its banner.
fn conversation_note(c: &ChatConfig) -> String {
    let Some(conv) = &c.conversation else {
        return String::new();
    };
    let turns = conv.turns.map_or_else(
        || "each dataset conversation's turns".to_string(),
        |n| format!("{n} turns"),
    );
    let sessions = conv
        .sessions_per_run
        .map(|n| format!(", {n} sessions per run"))
        .unwrap_or_default();
    format!(
        " ({turns} per session, think time {} s{sessions})",
        conv.think_time.describe()
    )
}

/// The line printed before a chat benchmark starts: the model and server, the levels (or the
/// sweep or search that chooses them), runs, `max_tokens` and streaming, then the shard and the
/// wall-clock start time, when given.
pub fn chat_banner(c: &ChatConfig) -> String {
    let shapes = c.shapes();
    let keys: Vec<String> = shapes.iter().map(Shape::key).collect();
    let levels = match shapes.first() {
        _ if c.adaptive.is_some() => c
            .adaptive
            .as_ref()
            .map(|a| a.describe())
            .unwrap_or_default(),
        Some(Shape::Open(o)) if o.arrival == crate::load::Arrival::Trace => format!(
            "a trace's {} requests on its times ({} requests/s on average{})",
            c.limits.num_requests.unwrap_or(0),
            crate::report::num(o.rate),
            o.max_concurrency
                .map(|c| format!(", at most {c} in flight"))
                .unwrap_or_default()
        ),
        Some(Shape::Open(o)) if c.conversation.is_some() => format!(
            "conversations starting at {} sessions/s ({} arrivals){}",
            keys.join(", "),
            o.arrival.name(),
            conversation_note(c)
        ),
        Some(Shape::Closed { .. }) if c.conversation.is_some() => format!(
            "conversations of {} users at once{}",
            keys.join(", "),
            conversation_note(c)
        ),
        Some(Shape::Open(o)) => format!(
            "open loop at {} requests/s ({} arrivals{})",
            keys.join(", "),
            o.arrival.name(),
            o.max_concurrency
                .map(|c| format!(", at most {c} in flight"))
                .unwrap_or_default()
        ),
        Some(Shape::Closed { .. }) => format!("closed loop at concurrency {}", keys.join(", ")),
        _ => format!("batch sizes {}", keys.join(", ")),
    };
    let mut banner = format!(
        "Benchmarking {:?} at {} — {levels}, {} run{} each, max_tokens {}, {}",
        c.model,
        c.api_base,
        c.num_runs,
        if c.num_runs == 1 { "" } else { "s" },
        c.max_tokens,
        if c.stream {
            "streaming"
        } else {
            "not streaming"
        }
    );
    if let Some(s) = c.shard.filter(|s| s.count > 1) {
        banner.push_str(&format!(
            "\nShard {} of {}: this process sends requests #{}, #{}, … of the run's plan \
             (closed loops: its share of the concurrency); tokenomics-merge joins the shards",
            s.index,
            s.count,
            s.index,
            s.index + s.count
        ));
    }
    if let Some(start) = c.start_at {
        let wait = start
            .duration_since(std::time::SystemTime::now())
            .map_or(0.0, |d| d.as_secs_f64());
        banner.push_str(&format!(
            "\nThe first run starts at Unix time {:.3} (in {wait:.1} s); each later one \
             {:.1} s after the one before",
            crate::shard::unix_seconds(start),
            c.timetable()
                .map_or(0.0, |t| (t.run_length + t.gap).as_secs_f64()),
        ));
    }
    banner
}

/// The line that opens an embedding run.
pub fn embed_banner(c: &EmbedConfig) -> String {
    let lengths = match &c.input_tokens {
        Some(t) => {
            let n: Vec<String> = t.lengths.iter().map(u64::to_string).collect();
            format!("{} tokens", n.join(","))
        }
        None => {
            let l: Vec<String> = c.sequence_lengths.iter().map(|l| l.label()).collect();
            l.join(",")
        }
    };
    format!(
        "Benchmarking embeddings of {:?} at {} — {}, lengths {}, {} runs each",
        c.model,
        c.api_base,
        c.load_words(),
        lengths,
        c.num_runs
    )
}
