//! The server's own metrics, scraped while the benchmark runs, and a cross-check of its
//! generated-token count against the client's.
//!
//! A [`ServerMetrics`] owns a task of its own with a connection of its own (so a scrape never
//! waits behind a request, nor a request behind a scrape) that reads the server's Prometheus
//! text ([`text`]) every `interval`. Around each level the benchmark asks for one scrape at each
//! boundary and waits for it: the *opening* scrape after the level's warm-up requests have
//! finished and before its first measured request is sent, the *closing* scrape after its last
//! request has finished. A counter's increase between the two is exactly the level's (warm-up
//! requests of `--warmup_runs` finished before the opening scrape; the preflight and tokenize
//! requests long before); a gauge's mean and max are over every scrape from the opening one to
//! the closing one. On a timetable (`--start_at`) a level's runs start at their times, long
//! after the opening scrape, with gaps between them: there the window is *paused* until each
//! run's start (`ServerMetrics::resume_at`) and again from each closing scrape, so that its
//! gauges and its length are the runs' own, not the waits'. Engines' names are mapped to shared
//! roles ([`roles`]); every sample, known or not, goes to the series file as it is. A stage
//! list's load does not drain between stages: one scrape at each boundary
//! (`ServerMetrics::split`) ends a stage's window and begins the next.
//!
//! The series file has one JSON line per scrape: `t_s` (when the scrape was sent, seconds on the
//! benchmark's clock — the same origin as the requests file's times), `mark` and `level` for a
//! level's boundary scrapes, and `samples` (`{"name{labels}": value}`; a value that is not a
//! finite number is written as the format's text, `"NaN"`, `"+Inf"`), or `error` for a scrape
//! that failed.

pub mod roles;
pub mod text;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokenomics_client::{Client, Clock, Connection};
use tokenomics_stats::{CrossCheck, GaugeStat, ServerCounters, ServerGauges, ServerMetricsBlock};
use tokio::sync::{mpsc, oneshot};

use crate::{Error, Result};
use roles::Values;

/// Where the server's metrics are read (`--server_metrics`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `{origin of each API base}/metrics`; a server without it is not scraped (with a note).
    Auto,
    /// These URLs (`http://` or `https://`; one per endpoint when there are several); a server
    /// that does not answer stops the run before its first request.
    Urls(Vec<String>),
    /// Not scraped.
    Off,
}

impl std::str::FromStr for Source {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "auto" => Ok(Source::Auto),
            "off" => Ok(Source::Off),
            urls => {
                let urls: Vec<String> = urls.split(',').map(|u| u.trim().to_string()).collect();
                for url in &urls {
                    split_url(url)?;
                }
                Ok(Source::Urls(urls))
            }
        }
    }
}

impl Source {
    /// The URLs to scrape for servers at `api_bases` (empty: off); `auto` scrapes each origin
    /// once.
    pub fn urls(&self, api_bases: &[&str]) -> Result<Vec<String>> {
        match self {
            Source::Off => Ok(Vec::new()),
            Source::Urls(urls) => Ok(urls.clone()),
            Source::Auto => {
                let mut urls: Vec<String> = Vec::new();
                for base in api_bases {
                    let (origin, _) = split_url(base)?;
                    let url = format!("{origin}/metrics");
                    if !urls.contains(&url) {
                        urls.push(url);
                    }
                }
                Ok(urls)
            }
        }
    }
}

/// `scheme://authority` and the path (with any query; `/` when there is none) of an `http://` or
/// `https://` URL.
fn split_url(url: &str) -> Result<(&str, &str)> {
    let bad = |why: &str| {
        Error::Invalid(format!(
            "{url:?} {why} (expected auto, off or a URL such as http://localhost:8000/metrics)"
        ))
    };
    let url = url.split('#').next().unwrap_or(url);
    let after = ["http://", "https://"]
        .iter()
        .find_map(|scheme| {
            url.get(..scheme.len())
                .filter(|s| s.eq_ignore_ascii_case(scheme))
                .map(|_| scheme.len())
        })
        .ok_or_else(|| bad("is not an http:// or https:// URL"))?;
    let end = url[after..]
        .find(['/', '?'])
        .map_or(url.len(), |i| after + i);
    if end == after || url[after..end].chars().any(char::is_whitespace) {
        return Err(bad("has no host"));
    }
    let path = match &url[end..] {
        "" => "/",
        p => p,
    };
    if path.starts_with('?') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("has a bad path"));
    }
    Ok((&url[..end], path))
}

/// The shortest `--scrape_interval`, seconds: scrapes cost the server too.
pub const MIN_INTERVAL_S: f64 = 0.01;
/// The longest `--scrape_interval`, seconds.
pub const MAX_INTERVAL_S: f64 = 3600.0;

/// How long one scrape may take (connecting included) before it counts as failed.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// What to scrape, how often, and where the series goes.
#[derive(Debug, Clone)]
pub struct ScrapeConfig {
    /// Where the metrics are read, or that they are not.
    pub source: Source,
    /// Between two periodic scrapes; from [`MIN_INTERVAL_S`] to [`MAX_INTERVAL_S`].
    pub interval: Duration,
    /// Every scrape as a JSON line, when set.
    pub series_file: Option<PathBuf>,
}

/// What [`ServerMetrics::start`] found.
pub enum Started {
    /// The first scrape answered: scraping goes on.
    Scraping(ServerMetrics),
    /// `auto` and the server has no metrics there: a note for the user; the run goes on.
    Absent(String),
    /// `off`.
    Off,
}

/// A scraper running on its own task. Dropping it ends the task; [`ServerMetrics::stop`] also
/// waits for the series file to be complete.
pub struct ServerMetrics {
    source: String,
    tx: mpsc::Sender<Command>,
    task: tokio::task::JoinHandle<Option<String>>,
}

enum Command {
    /// A level's opening scrape: starts its window (paused until a run starts, on a timetable).
    Open {
        level: String,
        paused: bool,
        done: oneshot::Sender<()>,
    },
    /// A run on a timetable starts at `at_ns` (on the clock): the paused window takes the
    /// scrapes from then on.
    Resume { at_ns: u64 },
    /// A run of the level ended: scrape, and the window so far.
    Close { done: oneshot::Sender<LevelWindow> },
    /// One stage of a continuous load ends and the next one begins: one scrape closes the
    /// window so far (sent back) and opens the next stage's.
    Split {
        level: String,
        done: oneshot::Sender<LevelWindow>,
    },
}

impl ServerMetrics {
    /// Scrapes once, at once, and — when that answered — goes on every `config.interval` on a
    /// task of its own, on a connection of its own made like `client`'s (TLS set-up, source
    /// addresses; the API key only when the URL is the API base's own server). Timestamps are on
    /// `clock`, the benchmark's.
    pub async fn start(config: &ScrapeConfig, client: &Client, clock: Clock) -> Result<Started> {
        let api_bases = client.api_bases();
        let urls = config.source.urls(&api_bases)?;
        if urls.is_empty() {
            return Ok(Started::Off);
        }
        let secs = config.interval.as_secs_f64();
        if !(MIN_INTERVAL_S..=MAX_INTERVAL_S).contains(&secs) {
            return Err(Error::Invalid(format!(
                "a scrape interval of {secs} s is outside {MIN_INTERVAL_S} to {MAX_INTERVAL_S} s"
            )));
        }
        let mut sources = Vec::new();
        for url in &urls {
            let (origin, path) = split_url(url)?;
            let mut cfg = client.config().clone();
            cfg.replicas.clear();
            let own = api_bases
                .iter()
                .any(|b| split_url(b).ok().map(|(o, _)| o) == Some(origin));
            if !own {
                cfg.api_key = None;
            }
            cfg.api_base = origin.to_string();
            cfg.timeout = SCRAPE_TIMEOUT;
            cfg.connect_timeout = cfg.connect_timeout.min(SCRAPE_TIMEOUT);
            cfg.idle_timeout = None;
            sources.push(Source1 {
                conn: Client::new(cfg)?.connection(),
                path: path.to_string(),
                url: url.clone(),
            });
        }
        let file = match &config.series_file {
            Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p).map_err(
                |e| Error::ServerMetrics(format!("cannot write {}: {e}", p.display())),
            )?)),
            None => None,
        };
        let mut scraper = Scraper {
            sources,
            clock,
            file,
            file_error: None,
            window: None,
        };
        if let Err(why) = scraper.scrape(None).await {
            return match config.source {
                Source::Auto => Ok(Started::Absent(format!(
                    "the server's metrics were not scraped: {why} (--server_metrics off to not \
                     try)"
                ))),
                _ => Err(Error::ServerMetrics(why)),
            };
        }
        let (tx, rx) = mpsc::channel(4);
        let task = tokio::spawn(scraper.run(rx, config.interval));
        Ok(Started::Scraping(ServerMetrics {
            source: urls.join(","),
            tx,
            task,
        }))
    }

    /// The URL scraped (several, comma-separated, with several endpoints).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The level's opening scrape (returns when it is done). `paused`: the level runs on a
    /// timetable, and its window waits for [`ServerMetrics::resume_at`] before each run.
    pub(crate) async fn open(&self, level: &str, paused: bool) {
        let (done, wait) = oneshot::channel();
        let level = level.to_string();
        let open = Command::Open {
            level,
            paused,
            done,
        };
        if self.tx.send(open).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// A run on a timetable starts at `at_ns` on the clock (now, or later: it can be sent ahead
    /// of the start): the level's paused window takes the scrapes from then until the run's
    /// closing scrape. Does not wait for a scrape.
    pub(crate) async fn resume_at(&self, at_ns: u64) {
        let _ = self.tx.send(Command::Resume { at_ns }).await;
    }

    /// A closing scrape after a run of the level; the level's window so far.
    pub(crate) async fn close(&self) -> Option<LevelWindow> {
        let (done, wait) = oneshot::channel();
        self.tx.send(Command::Close { done }).await.ok()?;
        wait.await.ok()
    }

    /// One scrape that closes the window so far (returned) and opens `level`'s: the boundary
    /// between two stages of one continuous load, whose requests do not drain between them.
    pub(crate) async fn split(&self, level: &str) -> Option<LevelWindow> {
        let (done, wait) = oneshot::channel();
        let level = level.to_string();
        self.tx.send(Command::Split { level, done }).await.ok()?;
        wait.await.ok()
    }

    /// Ends the scraping; an error when the series file could not be written.
    pub async fn stop(self) -> Result<()> {
        drop(self.tx);
        match self.task.await {
            Ok(None) => Ok(()),
            Ok(Some(e)) => Err(Error::ServerMetrics(e)),
            Err(e) => Err(Error::ServerMetrics(format!("the scraper stopped: {e}"))),
        }
    }
}

/// A level's scrapes so far: its opening and latest closing scrape, its gauges.
#[derive(Debug, Clone, Default)]
pub(crate) struct LevelWindow {
    begin: Option<(u64, Values)>,
    end: Option<(u64, Values)>,
    /// Running, waiting and KV usage: (scrapes with a value, sum, max).
    gauges: [(u64, f64, f64); 3],
    /// The scrapes in the gauges.
    scrapes: u64,
    /// Since when (ns on the clock) the window takes scrapes into its gauges: `None` while
    /// paused (on a timetable, before a run's start and after its closing scrape).
    active_from: Option<u64>,
    /// Whether a closing scrape pauses the window (its level runs on a timetable).
    pauses: bool,
    /// The time the window was active, up to its latest closing scrape, ns.
    active_ns: u64,
    /// `active_ns` at the latest closing scrape that answered: the time its counters cover.
    counted_ns: u64,
    failed: u64,
    engine: Option<&'static str>,
    /// Every scrape's gauges (ns on the run's clock; running, waiting, KV usage), for the
    /// level's timeline; at most [`MAX_POINTS`].
    points: Vec<(u64, [Option<f64>; 3])>,
}

/// The most scrapes a level keeps for its timeline (a day at one a second).
const MAX_POINTS: usize = 86_400;

const GAUGES: [usize; 3] = [roles::RUNNING, roles::WAITING, roles::KV_USAGE];

impl LevelWindow {
    /// A level's window: taking scrapes from its opening scrape on ([`LevelWindow::begin_span`]),
    /// or — `paused`, for a level on a timetable — from each run's start
    /// ([`LevelWindow::resume`]).
    fn opened(paused: bool) -> Self {
        Self {
            pauses: paused,
            ..Self::default()
        }
    }

    /// The opening scrape, at `t_ns`: a window that is not paused is active from it.
    fn begin_span(&mut self, t_ns: u64) {
        if !self.pauses {
            self.active_from = Some(t_ns);
        }
    }

    /// A run starts at `at_ns`: a paused window takes the scrapes from then on.
    fn resume(&mut self, at_ns: u64) {
        self.active_from.get_or_insert(at_ns);
    }

    /// A run's closing scrape (or a stage boundary's) at `t_ns`, `answered` or not: the active
    /// time so far ends there; a window on a timetable pauses until the next run's start.
    fn end_span(&mut self, t_ns: u64, answered: bool) {
        if let Some(from) = self.active_from {
            self.active_ns = self.active_ns.saturating_add(t_ns.saturating_sub(from));
            self.active_from = (!self.pauses).then_some(t_ns);
        }
        if answered {
            self.counted_ns = self.active_ns;
        }
    }

    /// Whether a scrape at `t_ns` is in the gauges: the window is active.
    fn takes(&self, t_ns: u64) -> bool {
        self.active_from.is_some_and(|from| t_ns >= from)
    }

    /// The gauges of every scrape so far: (ns on the run's clock, running, waiting, KV usage).
    pub(crate) fn points(&self) -> &[(u64, [Option<f64>; 3])] {
        &self.points
    }

    /// A scrape at `t_ns`: on the timeline's points always, in the gauges while the window is
    /// active.
    fn add(&mut self, t_ns: u64, values: &Values) {
        if self.points.len() < MAX_POINTS {
            self.points.push((t_ns, GAUGES.map(|role| values[role])));
        }
        if !self.takes(t_ns) {
            return;
        }
        self.scrapes += 1;
        for (acc, role) in self.gauges.iter_mut().zip(GAUGES) {
            if let Some(v) = values[role].filter(|v| v.is_finite()) {
                acc.0 += 1;
                acc.1 += v;
                acc.2 = if acc.0 == 1 { v } else { acc.2.max(v) };
            }
        }
    }

    /// The level's block. `client_tokens`: the client's output tokens over the same requests, for
    /// the cross-check (`None`: no cross-check).
    pub(crate) fn block(&self, source: &str, client_tokens: Option<u64>) -> ServerMetricsBlock {
        let delta = |role: usize| -> Option<f64> {
            let (Some((_, b)), Some((_, e))) = (&self.begin, &self.end) else {
                return None;
            };
            let d = e[role]? - b[role]?;
            // A counter that went back was reset (a restart): its increase is unknown.
            (d.is_finite() && d >= 0.0).then_some(d)
        };
        let gauge = |i: usize| {
            let (n, sum, max) = self.gauges[i];
            (n > 0).then(|| GaugeStat {
                mean: sum / n as f64,
                max,
            })
        };
        let seconds = match (&self.begin, &self.end) {
            (Some(_), Some(_)) => self.counted_ns as f64 / 1e9,
            _ => f64::NAN,
        };
        let generation = delta(roles::GENERATION_TOKENS);
        ServerMetricsBlock {
            source: source.to_string(),
            engine: self.engine.map(str::to_string),
            scrapes: self.scrapes,
            failed_scrapes: self.failed,
            seconds,
            counters: ServerCounters {
                prompt_tokens: delta(roles::PROMPT_TOKENS),
                generation_tokens: generation,
                preemptions: delta(roles::PREEMPTIONS),
                prefix_queries: delta(roles::PREFIX_QUERIES),
                prefix_hits: delta(roles::PREFIX_HITS),
                spec_draft_tokens: delta(roles::SPEC_DRAFT_TOKENS),
                spec_accepted_tokens: delta(roles::SPEC_ACCEPTED_TOKENS),
                aborted: delta(roles::ABORTED),
            },
            gauges: ServerGauges {
                running: gauge(0),
                waiting: gauge(1),
                kv_usage: gauge(2),
            },
            cross_check: generation
                .zip(client_tokens)
                .map(|(server, client)| CrossCheck::new(server, client)),
        }
    }
}

/// One server's metrics URL, and the connection it is read on.
struct Source1 {
    conn: Connection,
    path: String,
    url: String,
}

/// The scraping task's state.
struct Scraper {
    /// Every server scraped (one per endpoint with several); a scrape reads them all, in turn.
    sources: Vec<Source1>,
    clock: Clock,
    file: Option<std::io::BufWriter<std::fs::File>>,
    /// The first failure to write the series file (the file is then abandoned).
    file_error: Option<String>,
    window: Option<LevelWindow>,
}

/// Which boundary of which level a scrape is.
#[derive(Clone, Copy)]
enum Mark<'a> {
    Begin(&'a str),
    End,
    /// The end of a stage and the beginning of the next one, `level`.
    Split(&'a str),
}

impl Source1 {
    /// One read of this server's metrics: its samples, or why there are none.
    async fn read(&mut self, clock: &Clock) -> std::result::Result<Vec<text::Sample>, String> {
        match self.conn.get(&self.path, clock).await {
            Ok(body) => {
                let exposition = text::parse(&String::from_utf8_lossy(&body));
                if exposition.samples.is_empty() {
                    Err(format!(
                        "the answer is not Prometheus text ({} bytes, no sample)",
                        body.len()
                    ))
                } else {
                    Ok(exposition.samples)
                }
            }
            Err(e) => {
                // A half-read answer must not be taken for the next one's.
                self.conn.reset();
                Err(match e {
                    tokenomics_client::Error::Status { status, .. } => format!("HTTP {status}"),
                    e => e.to_string(),
                })
            }
        }
    }
}

impl Scraper {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>, interval: Duration) -> Option<String> {
        let start = tokio::time::Instant::now();
        let mut tick = tokio::time::interval_at(start + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = rx.recv() => match command {
                    Some(Command::Open { level, paused, done }) => {
                        self.window = Some(LevelWindow::opened(paused));
                        let _ = self.scrape(Some(Mark::Begin(&level))).await;
                        let _ = done.send(());
                    }
                    Some(Command::Resume { at_ns }) => {
                        if let Some(w) = self.window.as_mut() {
                            w.resume(at_ns);
                        }
                    }
                    Some(Command::Close { done }) => {
                        let _ = self.scrape(Some(Mark::End)).await;
                        let _ = done.send(self.window.clone().unwrap_or_default());
                    }
                    Some(Command::Split { level, done }) => {
                        let _ = self.scrape(Some(Mark::Split(&level))).await;
                        let ended = self.window.take().unwrap_or_default();
                        // The same scrape begins the next stage (none when it failed: that
                        // stage's counters are then unknown, as its predecessor's are), in the
                        // middle of the load: active from it.
                        let from = ended.end.map_or_else(|| self.clock.now_ns(), |(t, _)| t);
                        let mut next = LevelWindow {
                            engine: ended.engine,
                            pauses: ended.pauses,
                            active_from: Some(from),
                            ..LevelWindow::default()
                        };
                        if let Some((t_ns, values)) = ended.end {
                            next.add(t_ns, &values);
                            next.begin = Some((t_ns, values));
                        }
                        self.window = Some(next);
                        let _ = done.send(ended);
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    let _ = self.scrape(None).await;
                }
            }
        }
        if let Some(f) = self.file.as_mut() {
            if let Err(e) = f.flush() {
                self.file_error.get_or_insert(e.to_string());
            }
        }
        self.file_error
    }

    /// One scrape: into the level's window and the series file. The reason when it failed.
    /// With several servers, their samples are taken together (counters and counts add up, the
    /// KV cache's share is their mean), each labelled `source="{url}"` in the series file; one
    /// that fails fails the scrape.
    async fn scrape(&mut self, mark: Option<Mark<'_>>) -> std::result::Result<(), String> {
        let t_ns = self.clock.now_ns();
        if let (Some(Mark::Begin(_)), Some(w)) = (mark, self.window.as_mut()) {
            w.begin_span(t_ns);
        }
        let several = self.sources.len() > 1;
        let mut parsed: std::result::Result<Vec<text::Sample>, String> = Ok(Vec::new());
        for source in &mut self.sources {
            match source.read(&self.clock).await {
                Ok(samples) => {
                    if let Ok(all) = parsed.as_mut() {
                        all.extend(samples.into_iter().map(|mut s| {
                            if several {
                                s.labels.push(("source".into(), source.url.clone()));
                            }
                            s
                        }));
                    }
                }
                Err(why) => {
                    parsed = Err(format!("{}: {why}", source.url));
                    break;
                }
            }
        }
        let mut line = Map::new();
        line.insert("t_s".into(), json!(t_ns as f64 / 1e9));
        match mark {
            Some(Mark::Begin(level) | Mark::Split(level)) => {
                line.insert("mark".into(), json!("begin"));
                line.insert("level".into(), json!(level));
            }
            Some(Mark::End) => {
                line.insert("mark".into(), json!("end"));
            }
            None => {}
        }
        let result = match parsed {
            Ok(samples) => {
                let (values, engine) = roles::values(&samples);
                if let Some(w) = self.window.as_mut() {
                    w.add(t_ns, &values);
                    w.engine = w.engine.or(engine);
                    match mark {
                        Some(Mark::Begin(_)) => w.begin = Some((t_ns, values)),
                        Some(Mark::End | Mark::Split(_)) => w.end = Some((t_ns, values)),
                        None => {}
                    }
                }
                if self.file.is_some() {
                    let all: Map<String, Value> = samples
                        .iter()
                        .map(|s| (s.series(), number(s.value)))
                        .collect();
                    line.insert("samples".into(), Value::Object(all));
                }
                Ok(())
            }
            Err(why) => {
                if let Some(w) = self
                    .window
                    .as_mut()
                    .filter(|w| mark.is_some() || w.takes(t_ns))
                {
                    w.failed += 1;
                }
                line.insert("error".into(), json!(why));
                Err(why)
            }
        };
        if let (Some(Mark::End | Mark::Split(_)), Some(w)) = (mark, self.window.as_mut()) {
            w.end_span(t_ns, result.is_ok());
        }
        self.write(&Value::Object(line));
        result
    }

    fn write(&mut self, line: &Value) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let written = serde_json::to_writer(&mut *file, line)
            .map_err(|e| e.to_string())
            .and_then(|()| file.write_all(b"\n").map_err(|e| e.to_string()))
            // Flushed every scrape (at most a hundred a second): a killed run keeps its series.
            .and_then(|()| file.flush().map_err(|e| e.to_string()));
        if let Err(e) = written {
            self.file_error.get_or_insert(e);
            self.file = None;
        }
    }
}

/// A sample value as JSON: a number, or the format's text for one that is not finite.
fn number(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else if x.is_nan() {
        json!("NaN")
    } else if x > 0.0 {
        json!("+Inf")
    } else {
        json!("-Inf")
    }
}

/// The output tokens the client counted for one request, for the cross-check: the server's
/// `usage`, else the content events received (all a failed request got, usually none).
pub(crate) fn client_output_tokens(r: &tokenomics_client::RequestRecord) -> u64 {
    r.completion_tokens.unwrap_or(r.content_events)
}

/// `25,600`.
fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return crate::report::num(x);
    }
    let n = x.round().abs() as u64;
    let digits = n.to_string();
    let mut s = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            s.push(',');
        }
        s.push(c);
    }
    if x.round() < 0.0 {
        s.insert(0, '-');
    }
    s
}

/// The console's lines for a level's block: the cross-check, then the gauges.
pub fn summary(block: &ServerMetricsBlock) -> String {
    let mut s = String::new();
    let label = "server";
    if let Some(c) = &block.cross_check {
        let relative = match c.relative {
            Some(0.0) => "0.0%".to_string(),
            Some(r) => format!("{:+.1}%", r * 100.0),
            None => "n/a".to_string(),
        };
        let _ = writeln!(
            s,
            "  {label:<22} server counted {} generation tokens, client {} ({relative})",
            thousands(c.server_generation_tokens),
            thousands(c.client_output_tokens as f64)
        );
    } else if let Some(g) = block.counters.generation_tokens {
        let _ = writeln!(
            s,
            "  {label:<22} server counted {} generation tokens",
            thousands(g)
        );
    }
    if let Some(a) = block.counters.aborted.filter(|&a| a > 0.0) {
        let label = if s.is_empty() { label } else { "" };
        let _ = writeln!(
            s,
            "  {label:<22} server counted {} aborted requests",
            thousands(a)
        );
    }
    let g = &block.gauges;
    let mut parts = Vec::new();
    let num = crate::report::num;
    for (name, stat) in [("running", g.running), ("waiting", g.waiting)] {
        if let Some(st) = stat {
            parts.push(format!("{name} mean {} max {}", num(st.mean), num(st.max)));
        }
    }
    if let Some(st) = g.kv_usage {
        parts.push(format!(
            "KV cache mean {}% max {}%",
            num((st.mean * 1000.0).round() / 10.0),
            num((st.max * 1000.0).round() / 10.0)
        ));
    }
    let failed = if block.failed_scrapes > 0 {
        format!(", {} failed", block.failed_scrapes)
    } else {
        String::new()
    };
    let label = if s.is_empty() { label } else { "" };
    let gauges = if parts.is_empty() {
        String::new()
    } else {
        format!("{}; ", parts.join(", "))
    };
    let _ = writeln!(s, "  {label:<22} {gauges}{} scrapes{failed}", block.scrapes);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_origin_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:8000/v1").unwrap(),
            ("http://127.0.0.1:8000", "/v1")
        );
        assert_eq!(
            split_url("https://[::1]:9/metrics?x=1#frag").unwrap(),
            ("https://[::1]:9", "/metrics?x=1")
        );
        assert_eq!(split_url("http://h").unwrap(), ("http://h", "/"));
        for bad in [
            "",
            "h:8000/metrics",
            "ftp://h/m",
            "http://",
            "http:///m",
            "http://h/a b",
        ] {
            assert!(split_url(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Source::Auto.urls(&["http://localhost:8000/v1/"]).unwrap(),
            ["http://localhost:8000/metrics"]
        );
        // One URL per origin, in the order of the endpoints.
        assert_eq!(
            Source::Auto
                .urls(&["http://b:1/v1", "http://a:2/v1", "http://b:1/other/v1"])
                .unwrap(),
            ["http://b:1/metrics", "http://a:2/metrics"]
        );
        assert_eq!(
            "http://a/m, http://b/m".parse::<Source>().unwrap(),
            Source::Urls(vec!["http://a/m".into(), "http://b/m".into()])
        );
        assert!("http://a/m,b".parse::<Source>().is_err());
        assert_eq!("off".parse::<Source>().unwrap(), Source::Off);
        assert!("metrics".parse::<Source>().is_err());
    }

    #[test]
    fn counters_are_deltas_between_the_boundaries_and_gauges_span_the_window() {
        let mut w = LevelWindow::opened(false);
        w.begin_span(1_000_000_000);
        let mut v: Values = [None; roles::ROLES.len()];
        v[roles::GENERATION_TOKENS] = Some(1000.0);
        v[roles::PROMPT_TOKENS] = Some(50.0);
        v[roles::RUNNING] = Some(0.0);
        w.add(1_000_000_000, &v);
        w.begin = Some((1_000_000_000, v));
        let mut mid = v;
        mid[roles::RUNNING] = Some(4.0);
        mid[roles::GENERATION_TOKENS] = Some(1500.0);
        w.add(2_000_000_000, &mid);
        let mut end = v;
        end[roles::GENERATION_TOKENS] = Some(1640.0);
        end[roles::PROMPT_TOKENS] = Some(40.0); // went back: a restart
        w.add(3_500_000_000, &end);
        w.end = Some((3_500_000_000, end));
        w.end_span(3_500_000_000, true);
        let b = w.block("http://h/metrics", Some(640));
        assert_eq!(b.scrapes, 3);
        assert_eq!(w.points().len(), 3);
        assert_eq!(w.points()[1], (2_000_000_000, [Some(4.0), None, None]));
        assert_eq!(b.seconds, 2.5);
        assert_eq!(b.counters.generation_tokens, Some(640.0));
        assert_eq!(b.counters.prompt_tokens, None);
        assert_eq!(
            b.gauges.running,
            Some(GaugeStat {
                mean: 4.0 / 3.0,
                max: 4.0
            })
        );
        assert_eq!(b.gauges.waiting, None);
        assert_eq!(b.cross_check, Some(CrossCheck::new(640.0, 640)));
        assert_eq!(
            summary(&b),
            "  server                 server counted 640 generation tokens, client 640 (0.0%)\n\
             \x20                        running mean 1.33 max 4; 3 scrapes\n"
        );
        // Without the closing scrape no counter is known.
        w.end = None;
        assert_eq!(w.block("x", Some(1)).counters, ServerCounters::default());
    }

    #[test]
    fn a_window_on_a_timetable_takes_only_its_runs_scrapes() {
        // Opened at 1 s, paused: the first run starts at 31 s (after the wait for --start_at)
        // and ends at 41 s; the second starts after a 10 s gap, at 51 s, and ends at 61 s.
        let at = |s: u64| s * 1_000_000_000;
        let scrape = |running: f64, generated: f64| {
            let mut v: Values = [None; roles::ROLES.len()];
            v[roles::RUNNING] = Some(running);
            v[roles::GENERATION_TOKENS] = Some(generated);
            v
        };
        let mut w = LevelWindow::opened(true);
        w.begin_span(at(1));
        let idle = scrape(0.0, 100.0);
        w.add(at(1), &idle);
        w.begin = Some((at(1), idle));
        // Scrapes during the wait are on the timeline, not in the gauges.
        w.add(at(11), &idle);
        w.resume(at(31)); // sent ahead of the start
        w.add(at(21), &idle);
        w.add(at(31), &scrape(8.0, 100.0));
        w.add(at(36), &scrape(8.0, 600.0));
        let end = scrape(0.0, 1100.0);
        w.add(at(41), &end);
        w.end = Some((at(41), end));
        w.end_span(at(41), true);
        w.add(at(46), &end); // the gap
        w.resume(at(51));
        w.add(at(56), &scrape(6.0, 1600.0));
        let end = scrape(2.0, 2100.0);
        w.add(at(61), &end);
        w.end = Some((at(61), end));
        w.end_span(at(61), true);
        w.add(at(66), &end); // after the level: not in it
        let b = w.block("x", None);
        assert_eq!(w.points().len(), 10);
        assert_eq!(b.scrapes, 5);
        assert_eq!(b.seconds, 20.0);
        assert_eq!(b.counters.generation_tokens, Some(2000.0));
        assert_eq!(
            b.gauges.running,
            Some(GaugeStat {
                mean: 24.0 / 5.0,
                max: 8.0
            })
        );
        // A second resume while active keeps the run's start.
        let mut w = LevelWindow::opened(true);
        w.resume(at(5));
        w.resume(at(9));
        w.add(at(7), &idle);
        w.end_span(at(10), true);
        assert_eq!((w.scrapes, w.counted_ns), (1, at(5)));
        // A closing scrape that failed ends its run's span, but the counters (and `seconds`)
        // reach only the last one that answered.
        w.resume(at(20));
        w.end_span(at(30), false);
        assert_eq!((w.active_ns, w.counted_ns), (at(15), at(5)));
        w.resume(at(40));
        w.end_span(at(42), true);
        assert_eq!(w.counted_ns, at(17));
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(25_600.0), "25,600");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-2048.0), "-2,048");
    }
}
