//! Multi-turn conversations: sessions of user turns, each sent with the whole history — the
//! earlier turns and the server's own answers — after a think time.
//!
//! A session is a [`Script`]: the messages it opens with (a system message) and its user turns.
//! From a text prompt source (synthetic, `--input_tokens`, a file of prompts) every session takes
//! `--turns` prompts in a row as its turns; from a dataset of conversations (a `messages` or
//! ShareGPT `conversations` column, JSONL `messages`) each session is one conversation, its user
//! messages the turns (at most `--turns`) — the dataset's own answers are replaced by the
//! server's, as a user's next message follows the answer they got.
//!
//! Load is counted in sessions: a closed level keeps C users each in a session (a new one starts
//! when one ends), an open level starts sessions at a rate. A turn is sent `think` after the
//! previous answer's last byte; the think time achieved is measured (client clock) and reported,
//! as is every figure per turn index, since a later turn carries a longer prompt.
//!
//! A level with `--duration` sends no turn after its end (a session then stops where it is); with
//! a session count it runs that many sessions to their end. A turn that fails ends its session:
//! the next turn would need its answer.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokenomics_client::{Client, Clock, Connection, Message};
use tokenomics_datasets::{run_seed, Prompt, PromptSource};
use tokenomics_stats::ConversationSpec;

use crate::chat::{ChatConfig, SYSTEM_PROMPT};
use crate::load::{AtEnd, Limits, Shape};
use crate::pool::{open_all, open_on_time};
use crate::shutdown::Shutdown;
use crate::sustained::{
    interrupted_record, one, BodyFeed, Finished, Op, Progress, Sent, Sink, TurnInfo,
};

/// The most user turns a session may have (`--turns`).
pub const MAX_TURNS: u32 = 1_000;

/// How conversations are made and paced (`--turns`, `--think_time`, `--num_sessions`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conversations {
    /// User turns per session: exactly this many from a text source, at most this many of each
    /// dataset conversation (`None`: all of them; a text source needs it).
    pub turns: Option<u32>,
    /// Time between an answer and the next turn.
    pub think_time: ThinkTime,
    /// Sessions per run (`None`: the level's `--duration` ends it, or the default count, see
    /// [`Conversations::sessions_for`]).
    pub sessions_per_run: Option<u64>,
    /// The server's KV-cache block size, tokens, for the expected prefix-cache hit rate of the
    /// sessions' histories (`--prefix_block_tokens`): only whole blocks are cached.
    pub block_tokens: u64,
}

/// A think time: fixed, or drawn per turn from a seeded distribution (seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThinkTime {
    /// Always this many seconds.
    Fixed(f64),
    /// Exponential with this mean (`exp:MEAN`).
    Exponential(f64),
    /// Uniform between the two (`uniform:LO,HI`).
    Uniform(f64, f64),
}

impl Default for ThinkTime {
    fn default() -> Self {
        Self::Fixed(0.0)
    }
}

/// The longest think time accepted, seconds (a day).
const MAX_THINK_SECONDS: f64 = 86_400.0;

impl FromStr for ThinkTime {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let seconds = |v: &str| -> Result<f64, String> {
            let x: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("{v:?} is not a number of seconds"))?;
            if !x.is_finite() || !(0.0..=MAX_THINK_SECONDS).contains(&x) {
                return Err(format!(
                    "{v:?}: a think time is 0 to {MAX_THINK_SECONDS} seconds"
                ));
            }
            Ok(x)
        };
        let s = s.trim();
        if let Some(mean) = s.strip_prefix("exp:") {
            return Ok(Self::Exponential(seconds(mean)?));
        }
        if let Some(range) = s.strip_prefix("uniform:") {
            let (lo, hi) = range
                .split_once(',')
                .ok_or_else(|| format!("{s:?}: expected uniform:LO,HI"))?;
            let (lo, hi) = (seconds(lo)?, seconds(hi)?);
            if lo > hi {
                return Err(format!("{s:?}: LO must not exceed HI"));
            }
            return Ok(Self::Uniform(lo, hi));
        }
        if s.contains(':') {
            return Err(format!(
                "{s:?}: expected SECONDS, exp:MEAN or uniform:LO,HI"
            ));
        }
        Ok(Self::Fixed(seconds(s)?))
    }
}

impl ThinkTime {
    /// The mean, seconds.
    pub fn mean(&self) -> f64 {
        match *self {
            Self::Fixed(s) | Self::Exponential(s) => s,
            Self::Uniform(lo, hi) => (lo + hi) / 2.0,
        }
    }

    /// As given on the command line.
    pub fn describe(&self) -> String {
        match *self {
            Self::Fixed(s) => format!("{s}"),
            Self::Exponential(m) => format!("exp:{m}"),
            Self::Uniform(lo, hi) => format!("uniform:{lo},{hi}"),
        }
    }

    /// The think time before turn `turn` of session `session`: the same for the same seed on
    /// every machine.
    pub fn sample(&self, seed: u64, session: u64, turn: u32) -> Duration {
        // A uniform draw in [0, 1) from 53 bits of a hash of the seed and the place.
        let u = (run_seed(seed, session, u64::from(turn)) >> 11) as f64 / (1u64 << 53) as f64;
        let s = match *self {
            Self::Fixed(s) => s,
            Self::Exponential(m) => -m * (1.0 - u).ln(),
            Self::Uniform(lo, hi) => lo + (hi - lo) * u,
        };
        Duration::try_from_secs_f64(s.clamp(0.0, MAX_THINK_SECONDS)).unwrap_or(Duration::ZERO)
    }
}

/// Sessions a level runs when neither `--num_sessions` nor `--duration` says: two per user of a
/// closed level, ten seconds of arrivals of an open one; at least 4.
pub const MIN_DEFAULT_SESSIONS: u64 = 4;

impl Conversations {
    /// Sessions per run of `shape` (`None`: until the level's duration ends).
    pub fn sessions_for(&self, shape: &Shape, limits: &Limits) -> Option<u64> {
        if self.sessions_per_run.is_some() || limits.duration.is_some() {
            return self.sessions_per_run;
        }
        let n = match shape {
            Shape::Closed { concurrency } => concurrency.saturating_mul(2),
            Shape::Open(o) => (o.rate * 10.0).ceil() as u64,
            Shape::Burst { batch } => *batch,
        };
        Some(n.max(MIN_DEFAULT_SESSIONS))
    }

    /// Refuses a prompt source that cannot make sessions as asked: text prompts need `turns`.
    pub fn check(&self, prompts: &PromptSource) -> crate::Result<()> {
        if self.turns.is_none() && !Self::from_dataset(prompts) {
            return Err(crate::Error::Invalid(
                "conversations from text prompts need --turns N (a dataset of conversations gives its own turns)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Whether the sessions are the source's own conversations (rows of chat messages).
    fn from_dataset(prompts: &PromptSource) -> bool {
        matches!(prompts, PromptSource::Rows { rows, .. } if rows.iter().any(|p| matches!(p, Prompt::Messages(_))))
    }

    /// The metadata's `conversation` block.
    pub fn spec(&self, prompts: &PromptSource) -> ConversationSpec {
        ConversationSpec {
            source: if Self::from_dataset(prompts) {
                "dataset"
            } else {
                "synthetic"
            }
            .into(),
            turns: self.turns.map(u64::from),
            think_time: self.think_time.describe(),
            think_time_mean_seconds: self.think_time.mean(),
            sessions_per_run: self.sessions_per_run,
            extra: Default::default(),
        }
    }

    /// `n` sessions' scripts drawn with `seed` (fewer when the source has no usable turns).
    pub fn scripts(&self, prompts: &PromptSource, n: usize, seed: u64) -> Vec<Script> {
        let dataset = Self::from_dataset(prompts);
        let per = if dataset {
            1
        } else {
            self.turns.unwrap_or(1).max(1) as usize
        };
        let drawn = prompts.draw(n.saturating_mul(per), seed);
        let mut scripts = Vec::with_capacity(n);
        let mut texts: Vec<String> = Vec::with_capacity(per);
        let mut lead: Option<Vec<Message>> = None;
        for prompt in drawn {
            if scripts.len() == n {
                break;
            }
            match prompt {
                Prompt::Messages(turns) if dataset => {
                    if let Some(script) = self.conversation(turns) {
                        scripts.push(script);
                    }
                }
                // A text source's prompt is one user turn; the session opens as its first
                // prompt would be sent alone (the benchmark's system message with a text, none
                // with a token-exact prompt, whose count it would change).
                Prompt::Text(text) => {
                    lead.get_or_insert_with(|| vec![Message::new("system", SYSTEM_PROMPT)]);
                    texts.push(text);
                }
                Prompt::Messages(turns) => {
                    let (opening, users): (Vec<_>, Vec<_>) =
                        turns.into_iter().partition(|t| t.role != "user");
                    lead.get_or_insert_with(|| {
                        opening
                            .into_iter()
                            .map(|t| Message::new(&t.role, t.content))
                            .collect()
                    });
                    let text: Vec<String> = users.into_iter().map(|t| t.content).collect();
                    texts.push(text.join("\n\n"));
                }
            }
            if texts.len() == per {
                scripts.push(Script {
                    lead: lead.take().unwrap_or_default(),
                    users: std::mem::take(&mut texts),
                });
            }
        }
        scripts
    }

    /// A dataset conversation's script: what opens it, and its user messages (at most `turns`);
    /// the dataset's answers are replaced by the server's. `None` without a user message.
    fn conversation(&self, turns: Vec<tokenomics_datasets::Turn>) -> Option<Script> {
        let mut lead = Vec::new();
        let mut users = Vec::new();
        for t in turns {
            match t.role.as_str() {
                "user" => users.push(t.content),
                "assistant" => {}
                // What opens the conversation (a system message) stays.
                _ if users.is_empty() => lead.push(Message::new(&t.role, t.content)),
                _ => {}
            }
        }
        if let Some(cap) = self.turns {
            users.truncate(cap as usize);
        }
        (!users.is_empty()).then_some(Script { lead, users })
    }
}

/// One session's script: the messages it opens with and its user turns, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Sent first in every turn (a system message; none for a dataset conversation without).
    pub lead: Vec<Message>,
    /// The user turns; never empty.
    pub users: Vec<String>,
}

/// What a conversation run needs besides its shape.
pub(crate) struct Plan<'a, O: Op> {
    pub client: &'a Client,
    pub clock: Clock,
    pub op: O,
    /// Each session's script, with its place in the run's whole sequence of sessions (a shard
    /// takes every N-th of them): its index, which draws its think times.
    pub feed: Arc<BodyFeed<(u64, Script)>>,
    pub config: Arc<ChatConfig>,
    pub think_time: ThinkTime,
    pub seed: u64,
    /// Sessions to start (`None`: until the duration ends).
    pub sessions: Option<u64>,
    pub limits: Limits,
    pub shutdown: Shutdown,
    pub progress: Arc<Progress>,
    /// On a timetable: when the run starts (ns on `clock`).
    pub start_ns: Option<u64>,
}

/// A run's sessions: started, and of those completed (every turn succeeded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionTally {
    /// Sessions whose first turn was sent.
    pub started: u64,
    /// Started sessions whose every turn succeeded.
    pub completed: u64,
}

/// What every session task of a run shares.
struct Shared<O: Op> {
    op: O,
    clock: Clock,
    client: Client,
    config: Arc<ChatConfig>,
    think_time: ThinkTime,
    seed: u64,
    shutdown: Shutdown,
    progress: Arc<Progress>,
    /// No turn is sent after it (the level's duration).
    stop_sending: Option<Instant>,
    /// Requests still in flight then are cancelled (`--at_end cancel`).
    cancel_at: Option<Instant>,
    seq: AtomicU64,
    /// Sessions started and completed, read once the run is over (the tasks that hold this
    /// struct hold the channel's senders too, so it is not kept past them).
    sessions: Arc<Sessions>,
    tx: tokio::sync::mpsc::UnboundedSender<Sent>,
}

#[derive(Debug, Default)]
struct Sessions {
    started: AtomicU64,
    completed: AtomicU64,
}

impl Sessions {
    fn tally(&self) -> SessionTally {
        SessionTally {
            started: self.started.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
        }
    }
}

impl<O: Op> Shared<O> {
    /// The run's shared state; its duration counts from `start`.
    fn new(
        plan: &Plan<'_, O>,
        tx: tokio::sync::mpsc::UnboundedSender<Sent>,
        start: Instant,
    ) -> Self {
        let stop_sending = plan.limits.duration.and_then(|d| start.checked_add(d));
        Self {
            op: plan.op.clone(),
            clock: plan.clock,
            client: plan.client.clone(),
            config: plan.config.clone(),
            think_time: plan.think_time,
            seed: plan.seed,
            shutdown: plan.shutdown.clone(),
            progress: plan.progress.clone(),
            stop_sending,
            cancel_at: match plan.limits.at_end {
                AtEnd::Cancel => stop_sending,
                AtEnd::Wait => None,
            },
            seq: AtomicU64::new(0),
            sessions: Arc::default(),
            tx,
        }
    }

    fn over(&self) -> bool {
        self.shutdown.is_stopping() || self.stop_sending.is_some_and(|s| Instant::now() >= s)
    }

    /// Runs session `index` to its end on `conn`; returns the connection when it can be used
    /// again. `due_ns`: when an open loop scheduled the session (its first turn's arrival).
    async fn session(
        &self,
        mut conn: Connection,
        index: u64,
        script: Script,
        due_ns: Option<u64>,
    ) -> Option<Connection> {
        let Script { mut lead, users } = script;
        let turns = users.len();
        let mut messages = std::mem::take(&mut lead);
        let mut last_end_ns: Option<u64> = None;
        let mut answered = 0usize;
        for (k, user) in users.into_iter().enumerate() {
            let turn = u32::try_from(k).unwrap_or(u32::MAX);
            if k > 0 {
                let wake = Instant::now() + self.think_time.sample(self.seed, index, turn);
                if self.stop_sending.is_some_and(|s| wake >= s) {
                    break; // the level ends before this turn would leave
                }
                let slept = self
                    .shutdown
                    .run(tokio::time::sleep_until(wake.into()))
                    .await;
                if slept.is_none() {
                    break;
                }
            }
            if self.over() {
                break;
            }
            messages.push(Message::new("user", user));
            let body = self.config.messages_body(messages.clone());
            if k == 0 {
                self.sessions.started.fetch_add(1, Ordering::Relaxed);
            }
            self.progress.started();
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            let send_ns = self.clock.now_ns();
            let (mut record, cancelled) =
                match one(&self.op, conn, body, &self.shutdown, self.cancel_at, None).await {
                    Finished::Done(c, r) => {
                        conn = c;
                        (r, false)
                    }
                    Finished::Interrupted => {
                        conn = self.client.connection();
                        (interrupted_record(send_ns), false)
                    }
                    Finished::Cancelled => {
                        conn = self.client.connection();
                        (interrupted_record(send_ns), true)
                    }
                };
            let answer = record.answer.take();
            let think_ns = last_end_ns.map(|end| record.timing.send_ns.saturating_sub(end));
            last_end_ns = record.timing.end_ns;
            let ok = record.is_ok() && !cancelled;
            self.progress.finished(&record);
            let _ = self.tx.send(Sent {
                seq,
                record,
                scheduled_ns: if k == 0 { due_ns } else { None },
                slot_wait_ns: None,
                warmup: false,
                cancelled,
                turn: Some(TurnInfo {
                    session: index,
                    turn,
                    think_ns,
                }),
            });
            if !ok {
                // The next turn would need this answer: the session ends here.
                return Some(conn);
            }
            answered += 1;
            messages.push(Message::new("assistant", answer.unwrap_or_default()));
        }
        if answered == turns {
            self.sessions.completed.fetch_add(1, Ordering::Relaxed);
        }
        Some(conn)
    }
}

/// Measurement starts with the run: a conversation level has no warm-up period.
fn begin(sink: &mut dyn Sink, clock: Clock) {
    let now = clock.now_ns();
    sink.begin(now, now);
}

/// Closed loop of sessions: `users` workers, each with its own connection, each starting its
/// next session the moment the last one ends, until the sessions or the duration run out.
pub(crate) async fn closed<O: Op>(
    plan: Plan<'_, O>,
    users: u64,
    sink: &mut dyn Sink,
) -> SessionTally {
    let n = usize::try_from(users).unwrap_or(usize::MAX);
    let conns = open_on_time(plan.client, plan.clock, plan.start_ns, n).await;
    begin(sink, plan.clock);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Sent>();
    let shared = Arc::new(Shared::new(&plan, tx, Instant::now()));
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(n);
    for mut conn in conns {
        conn.capture_answers(true);
        let (shared, next, feed, limit) = (
            shared.clone(),
            next.clone(),
            plan.feed.clone(),
            plan.sessions,
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = Some(conn);
            while !shared.over() {
                if limit.is_some_and(|l| next.fetch_add(1, Ordering::Relaxed) >= l) {
                    break;
                }
                let Some((index, script)) = feed.next().await else {
                    break;
                };
                let c = conn.take().unwrap_or_else(|| {
                    let mut c = shared.client.connection();
                    c.capture_answers(true);
                    c
                });
                conn = shared.session(c, index, script, None).await;
            }
        }));
    }
    let sessions = shared.sessions.clone();
    drop(shared);
    while let Some(s) = rx.recv().await {
        sink.done(s);
    }
    for t in tasks {
        let _ = t.await;
    }
    sessions.tally()
}

/// Open loop of sessions: the feed's k-th session starts at `schedule[k]` (ns after the start),
/// whatever the sessions already running are doing.
pub(crate) async fn open<O: Op>(
    plan: Plan<'_, O>,
    schedule: Vec<u64>,
    sink: &mut dyn Sink,
) -> SessionTally {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Sent>();
    // Idle connections, taken by a session and given back when it ends.
    let ahead = schedule.len().clamp(1, 256);
    let ready = open_all(plan.client, (0..ahead).map(|_| plan.client.connection())).await;
    let idle = Arc::new(std::sync::Mutex::new(ready));
    let now_ns = plan.clock.now_ns();
    // The first arrival on the timetable, or 2 ms ahead, as the request open loop does.
    let start_ns = plan
        .start_ns
        .filter(|&s| s > now_ns)
        .unwrap_or(now_ns + 2_000_000);
    sink.begin(start_ns, start_ns);
    let shared = Arc::new(Shared::new(&plan, tx, plan.clock.instant_at(start_ns)));
    let dispatcher = {
        let (shared, feed) = (shared.clone(), plan.feed.clone());
        tokio::spawn(async move {
            for offset in schedule {
                let due_ns = start_ns.saturating_add(offset);
                let due = shared.clock.instant_at(due_ns);
                if shared.stop_sending.is_some_and(|s| due >= s) {
                    break;
                }
                if shared
                    .shutdown
                    .run(tokio::time::sleep_until(due.into()))
                    .await
                    .is_none()
                {
                    break;
                }
                let Some((index, script)) = feed.next().await else {
                    break;
                };
                let (shared, idle) = (shared.clone(), idle.clone());
                tokio::spawn(async move {
                    let mut conn = idle
                        .lock()
                        .ok()
                        .and_then(|mut v| v.pop())
                        .unwrap_or_else(|| shared.client.connection());
                    conn.capture_answers(true);
                    if let Some(c) = shared.session(conn, index, script, Some(due_ns)).await {
                        if let Ok(mut v) = idle.lock() {
                            v.push(c);
                        }
                    }
                });
            }
        })
    };
    let sessions = shared.sessions.clone();
    drop(shared);
    // The dispatcher and the session tasks hold the only senders: the channel ends when the
    // last session is done.
    while let Some(s) = rx.recv().await {
        sink.done(s);
    }
    let _ = dispatcher.await;
    sessions.tally()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenomics_datasets::Turn;

    #[test]
    fn think_times_parse_and_draw_within_their_range() {
        assert_eq!("2".parse::<ThinkTime>(), Ok(ThinkTime::Fixed(2.0)));
        assert_eq!(
            "exp:1.5".parse::<ThinkTime>(),
            Ok(ThinkTime::Exponential(1.5))
        );
        assert_eq!(
            "uniform:1,3".parse::<ThinkTime>(),
            Ok(ThinkTime::Uniform(1.0, 3.0))
        );
        for bad in [
            "-1",
            "nan",
            "inf",
            "uniform:3,1",
            "uniform:1",
            "gamma:2",
            "",
            "1e9",
        ] {
            assert!(bad.parse::<ThinkTime>().is_err(), "{bad}");
        }
        let u = ThinkTime::Uniform(1.0, 3.0);
        let e = ThinkTime::Exponential(2.0);
        let (mut su, mut se) = (0.0, 0.0);
        let n = 20_000;
        for i in 0..n {
            let d = u.sample(7, i, 1).as_secs_f64();
            assert!((1.0..=3.0).contains(&d));
            su += d;
            se += e.sample(7, i, 1).as_secs_f64();
        }
        assert!((su / n as f64 - 2.0).abs() < 0.03, "{}", su / n as f64);
        assert!((se / n as f64 - 2.0).abs() < 0.06, "{}", se / n as f64);
        assert_eq!(e.sample(7, 3, 2), e.sample(7, 3, 2));
        assert_eq!(
            ThinkTime::Fixed(0.5).sample(1, 2, 3),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn text_prompts_make_sessions_of_n_turns_and_datasets_their_own() {
        let c = Conversations {
            turns: Some(3),
            think_time: ThinkTime::default(),
            sessions_per_run: None,
            block_tokens: 16,
        };
        let synthetic = PromptSource::from_key("synthetic").unwrap();
        let scripts = c.scripts(&synthetic, 4, 9);
        assert_eq!(scripts.len(), 4);
        assert!(scripts
            .iter()
            .all(|s| s.users.len() == 3 && s.lead.len() == 1));
        assert_eq!(scripts, c.scripts(&synthetic, 4, 9));
        assert!(c.check(&synthetic).is_ok());
        let untold = Conversations { turns: None, ..c };
        assert!(untold.check(&synthetic).is_err());

        let turn = |role: &str, content: &str| Turn {
            role: role.into(),
            content: content.into(),
        };
        let rows = PromptSource::Rows {
            key: "file:x".into(),
            rows: vec![Prompt::Messages(vec![
                turn("system", "be brief"),
                turn("user", "one"),
                turn("assistant", "dataset answer"),
                turn("user", "two"),
                turn("assistant", "another"),
                turn("user", "three"),
                turn("user", "four"),
            ])],
            source: serde_json::Value::Null,
        };
        assert!(untold.check(&rows).is_ok());
        let all = untold.scripts(&rows, 1, 1);
        assert_eq!(all[0].users, ["one", "two", "three", "four"]);
        assert_eq!(all[0].lead, vec![Message::new("system", "be brief")]);
        assert_eq!(c.scripts(&rows, 2, 1)[1].users, ["one", "two", "three"]);
        assert_eq!(untold.spec(&rows).source, "dataset");
        assert_eq!(c.spec(&synthetic).source, "synthetic");
    }

    #[test]
    fn token_exact_prompts_are_turns_of_a_session_with_no_system_message() {
        use tokenomics_datasets::exact::{ExactPrompts, Lengths, TokenLength};
        let exact = PromptSource::Exact(ExactPrompts {
            length: TokenLength::Fixed(64),
            lengths: Lengths::Estimate,
        });
        let c = Conversations {
            turns: Some(4),
            think_time: ThinkTime::default(),
            sessions_per_run: None,
            block_tokens: 16,
        };
        assert!(c.check(&exact).is_ok());
        let scripts = c.scripts(&exact, 3, 5);
        assert_eq!(scripts.len(), 3);
        for s in &scripts {
            assert_eq!(s.users.len(), 4, "each exact prompt is one turn");
            assert!(
                s.lead.is_empty(),
                "no system message: the counted text is the turn"
            );
            assert!(s.users.iter().all(|u| !u.is_empty()));
        }
    }

    #[test]
    fn default_session_counts() {
        let c = Conversations {
            turns: Some(2),
            think_time: ThinkTime::default(),
            sessions_per_run: None,
            block_tokens: 16,
        };
        let limits = Limits::default();
        assert_eq!(
            c.sessions_for(&Shape::Closed { concurrency: 8 }, &limits),
            Some(16)
        );
        assert_eq!(
            c.sessions_for(&Shape::Closed { concurrency: 1 }, &limits),
            Some(MIN_DEFAULT_SESSIONS)
        );
        let timed = Limits {
            duration: Some(Duration::from_secs(5)),
            ..limits
        };
        assert_eq!(
            c.sessions_for(&Shape::Closed { concurrency: 8 }, &timed),
            None
        );
        let counted = Conversations {
            sessions_per_run: Some(3),
            ..c
        };
        assert_eq!(
            counted.sessions_for(&Shape::Closed { concurrency: 8 }, &timed),
            Some(3)
        );
    }
}
