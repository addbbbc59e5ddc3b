//! Sustained load: the closed and open loops of [`crate::load`], run over real connections.
//!
//! Both loops take request bodies from a [`BodyFeed`] (built on its own thread, ahead of need, so
//! building JSON never delays a send), report live counts through [`Progress`], and hand every
//! request to a [`Sink`] the moment it finishes, on the task that awaits the loop — so a run of
//! any length keeps in memory only the requests in flight. Nothing is shared between requests but
//! the feed, the counters and, in the open loop, the list of idle connections.
//!
//! The loops take any operation and any kind of record ([`Record`]): a chat completion's
//! [`RequestRecord`] (the default of every generic here), or an embedding request's outcome.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokenomics_client::{Client, Clock, Connection, Error as ClientError, RequestRecord};

use crate::load::{AtEnd, Limits, OpenLoop};
use crate::pool::{open_all, open_on_time};
use crate::shutdown::Shutdown;

/// Live counts of a benchmark, for a progress display. Updated once per request, never per token.
#[derive(Debug, Default)]
pub struct Progress {
    /// Requests sent (warm-up included).
    pub sent: AtomicU64,
    /// Requests finished (successfully or not).
    pub done: AtomicU64,
    /// Finished requests that failed (those aborted on purpose not counted).
    pub failed: AtomicU64,
    /// Output tokens of finished requests.
    pub tokens: AtomicU64,
    /// When the current level started, ns on the benchmark's clock.
    pub level_start_ns: AtomicU64,
}

impl Progress {
    /// Requests in flight now.
    pub fn in_flight(&self) -> u64 {
        let sent = self.sent.load(Ordering::Relaxed);
        sent.saturating_sub(self.done.load(Ordering::Relaxed))
    }

    /// Counts a request sent.
    pub fn started(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a finished request.
    pub fn finished<R: Record>(&self, record: &R) {
        if record.error().is_none() {
            self.tokens
                .fetch_add(record.progress_tokens(), Ordering::Relaxed);
        } else if !is_aborted(record) {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// Starts counting a new level at `now_ns`.
    pub fn new_level(&self, now_ns: u64) {
        for c in [&self.sent, &self.done, &self.failed, &self.tokens] {
            c.store(0, Ordering::Relaxed);
        }
        self.level_start_ns.store(now_ns, Ordering::Relaxed);
    }
}

/// Request bodies built on a thread of their own, ahead of need. Tasks take them with
/// [`BodyFeed::next`] (async: a feed that falls behind never blocks a runtime worker).
///
/// Bodies by default; any item built ahead the same way (a conversation's sessions).
///
/// Bodies are handed over in batches (up to [`FEED_BATCH`]): handed over one at a time, every
/// body taken woke the builder thread again (a futex wake and two context switches per request:
/// 4% of the client's CPU samples in a closed loop of short requests). A batch goes early when
/// nothing else is queued, so a consumer that catches up with the builder never waits for a
/// batch to fill.
pub struct BodyFeed<T = Bytes> {
    taken: tokio::sync::Mutex<Taken<T>>,
}

/// The consumer's side of a [`BodyFeed`]: the batches, and the rest of the batch being taken.
struct Taken<T> {
    rx: tokio::sync::mpsc::Receiver<Vec<T>>,
    batch: std::vec::IntoIter<T>,
}

/// The most bodies a [`BodyFeed`] hands over at once.
pub const FEED_BATCH: usize = 64;

impl<T: Send + 'static> BodyFeed<T> {
    /// Builds bodies with `make(chunk)` (chunk 0, 1, 2, …, each a batch of bodies) until
    /// `limit` bodies exist (or forever), keeping about `ahead` ready (up to `ahead` plus two
    /// batches of a quarter of it, at most [`FEED_BATCH`] each). Completes once the first
    /// `ahead` (or all of them, when fewer) are ready.
    pub async fn start(
        mut make: impl FnMut(u64) -> Vec<T> + Send + 'static,
        limit: Option<u64>,
        ahead: usize,
    ) -> Self {
        let ahead = ahead.max(1);
        let batch_len = (ahead / 4).clamp(1, FEED_BATCH);
        // One batch more than `ahead` needs: the one sent early when the channel was empty.
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<T>>(ahead.div_ceil(batch_len) + 1);
        let (primed_tx, primed_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("body-feed".into())
            .spawn(move || {
                let mut made = 0u64;
                let mut primed = Some(primed_tx);
                let mut pending = Vec::with_capacity(batch_len);
                let hand_over = |pending: &mut Vec<T>| {
                    let batch = std::mem::replace(pending, Vec::with_capacity(batch_len));
                    batch.is_empty() || tx.blocking_send(batch).is_ok()
                };
                let at_limit = |made: u64| limit.is_some_and(|l| made >= l);
                // Before the first `ahead` are ready nobody takes any: batches are filled. After,
                // a consumer with nothing queued gets what there is.
                let starving =
                    |primed: &Option<_>| primed.is_none() && tx.capacity() == tx.max_capacity();
                'chunks: for chunk in 0.. {
                    if at_limit(made) {
                        break;
                    }
                    let bodies = make(chunk);
                    if bodies.is_empty() {
                        break;
                    }
                    for b in bodies {
                        pending.push(b);
                        made += 1;
                        if at_limit(made) {
                            break 'chunks;
                        }
                        let due = pending.len() == batch_len
                            || starving(&primed)
                            || made as usize == ahead;
                        if due && !hand_over(&mut pending) {
                            return;
                        }
                        if made as usize == ahead {
                            primed.take().map(|p| p.send(()));
                        }
                    }
                    // The chunk's tail goes now, rather than after the next chunk is built.
                    if starving(&primed) && !hand_over(&mut pending) {
                        return;
                    }
                }
                hand_over(&mut pending);
            })
            .ok();
        // Ready when `ahead` bodies were queued, or the thread finished (fewer were needed; the
        // sender is then dropped and the wait ends too).
        let _ = primed_rx.await;
        Self {
            taken: tokio::sync::Mutex::new(Taken {
                rx,
                batch: Vec::new().into_iter(),
            }),
        }
    }

    /// The next body; `None` when the feed is exhausted.
    pub async fn next(&self) -> Option<T> {
        let mut taken = self.taken.lock().await;
        loop {
            if let Some(body) = taken.batch.next() {
                return Some(body);
            }
            taken.batch = taken.rx.recv().await?.into_iter();
        }
    }
}

/// What the loops need of a request's record: whether and why it failed, the record of one they
/// gave up on, and its tokens for [`Progress`].
pub trait Record: Send + 'static {
    /// A request abandoned by the shutdown or cancelled at the level's end, sent at `send_ns`
    /// (ns on the clock): failed with [`ClientError::Interrupted`], nothing else known.
    fn interrupted(send_ns: u64) -> Self;
    /// Why it failed (`None`: it succeeded).
    fn error(&self) -> Option<&ClientError>;
    /// The tokens [`Progress`] counts for a success: a completion's output tokens (an
    /// embedding request's input tokens).
    fn progress_tokens(&self) -> u64;
}

impl Record for RequestRecord {
    fn interrupted(send_ns: u64) -> Self {
        let mut r = RequestRecord {
            error: Some(ClientError::Interrupted),
            ..RequestRecord::default()
        };
        r.timing.send_ns = send_ns;
        r
    }
    fn error(&self) -> Option<&ClientError> {
        self.error.as_ref()
    }
    fn progress_tokens(&self) -> u64 {
        self.completion_tokens.unwrap_or(0)
    }
}

/// One request of a sustained run.
#[derive(Debug)]
pub struct Sent<R = RequestRecord> {
    /// Its place in the order of sending (0, 1, 2, …; warm-up requests included).
    pub seq: u64,
    /// What the request produced: its timing, ns on the benchmark's monotonic clock, and its
    /// outcome.
    pub record: R,
    /// Scheduled send time (open loop), ns on the clock.
    pub scheduled_ns: Option<u64>,
    /// Time waited in the client for a concurrency slot (open loop with a cap), ns.
    pub slot_wait_ns: Option<u64>,
    /// Sent during the warm-up (not measured).
    pub warmup: bool,
    /// Still in flight at the end of `duration` and cancelled there (`AtEnd::Cancel`). (One
    /// aborted on purpose, [`Aborts`], ends with [`ClientError::Aborted`]: see [`is_aborted`].)
    pub cancelled: bool,
    /// A conversation's turn ([`crate::conversation`]): which session, which turn of it.
    pub turn: Option<TurnInfo>,
}

/// Where a request stands in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnInfo {
    /// The session's number in the run, from 0.
    pub session: u64,
    /// The turn, from 0 (the session's first request).
    pub turn: u32,
    /// The think time achieved before it: from the previous answer's last byte to this send, ns
    /// (`None` for a first turn).
    pub think_ns: Option<u64>,
}

/// Requests the client aborts on purpose (`--cancel_rate`, `--cancel_after`): a seeded `share`
/// of them, each `after` its send if it has not finished by then — the server's abort path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aborts {
    /// The share of requests picked, 0 to 1.
    pub share: f64,
    /// How long after its send a picked request is aborted, if it has not finished.
    pub after: std::time::Duration,
    /// Seeds the pick: the same seed aborts the same requests of a run.
    pub seed: u64,
}

impl Aborts {
    /// Whether request `seq` of the run is one to abort: a hash of the seed and the sequence
    /// number against the share, so the same run picks the same requests.
    pub fn picks(&self, seq: u64) -> bool {
        let draw = tokenomics_datasets::run_seed(self.seed, seq, 0);
        self.share > 0.0 && (draw >> 11) as f64 / (1u64 << 53) as f64 <= self.share
    }

    /// How long after its send request `seq` is to be aborted (`None`: it is not one).
    fn after(this: Option<&Self>, seq: u64) -> Option<std::time::Duration> {
        this.filter(|a| a.picks(seq)).map(|a| a.after)
    }
}

/// Where a loop's requests go as they finish (in the order they finish, on the task that awaits
/// the loop).
pub trait Sink<R = RequestRecord>: Send {
    /// Measurement starts at `origin_ns` on the benchmark's clock (after any warm-up); the load
    /// itself (warm-up included) started at `start_ns`. Called once, before any request
    /// finishes.
    fn begin(&mut self, origin_ns: u64, start_ns: u64);
    /// A request finished (or was cancelled, or abandoned).
    fn done(&mut self, sent: Sent<R>);
}

/// A request operation: sends `body` on the connection and returns its record.
pub trait Op<R = RequestRecord>: Clone + Send + Sync + 'static {
    /// Sends `body` on `conn` and hands the connection back with the request's record, timed
    /// on the benchmark's monotonic clock.
    fn call(&self, conn: Connection, body: Bytes) -> impl Future<Output = (Connection, R)> + Send;
}

impl<F, Fut, R> Op<R> for F
where
    F: Fn(Connection, Bytes) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = (Connection, R)> + Send,
{
    fn call(&self, conn: Connection, body: Bytes) -> impl Future<Output = (Connection, R)> + Send {
        self(conn, body)
    }
}

// Lives on the stack for a moment per request; boxing it would add an allocation per request.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Finished<R = RequestRecord> {
    Done(Connection, R),
    Interrupted,
    Cancelled,
}

async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Runs one request, unless the shutdown abandons it or `cancel_at` (the level's end) passes
/// first. A request to abort on purpose is aborted by the client itself, `abort_after` its send
/// ([`Connection::abort_next_after`]): its record keeps what arrived before.
pub(crate) async fn one<R>(
    op: &impl Op<R>,
    mut conn: Connection,
    body: Bytes,
    shutdown: &Shutdown,
    cancel_at: Option<Instant>,
    abort_after: Option<std::time::Duration>,
) -> Finished<R> {
    conn.abort_next_after(abort_after);
    let work = shutdown.run(op.call(conn, body));
    tokio::select! {
        biased;
        out = work => match out {
            Some((conn, record)) => Finished::Done(conn, record),
            None => Finished::Interrupted,
        },
        _ = until(cancel_at) => Finished::Cancelled,
    }
}

/// Whether the client aborted the request on purpose ([`Aborts`]).
pub fn is_aborted<R: Record>(r: &R) -> bool {
    matches!(r.error(), Some(ClientError::Aborted))
}

pub(crate) fn interrupted_record<R: Record>(send_ns: u64) -> R {
    R::interrupted(send_ns)
}

/// Everything a loop needs besides its shape.
pub struct Context<'a, O> {
    /// Where the loop's connections come from.
    pub client: &'a Client,
    /// The benchmark's monotonic clock: every ns time of the loop is on it.
    pub clock: Clock,
    /// Sends one request.
    pub op: O,
    /// The request bodies, in the order they are sent.
    pub feed: Arc<BodyFeed>,
    /// When the loop stops, and its warm-up.
    pub limits: Limits,
    /// Stops the loop early; requests in flight then get its grace period.
    pub shutdown: Shutdown,
    /// Live counts, updated as requests are sent and finish.
    pub progress: Arc<Progress>,
    /// Start the load at this time (ns on the clock) rather than at once: a run on a
    /// timetable. A time already past starts at once (the sink is told when it really began).
    pub start_ns: Option<u64>,
    /// Requests to abort on purpose.
    pub aborts: Option<Aborts>,
}

impl<O> Context<'_, O> {
    fn cancel_at(&self, measured_start: Instant) -> Option<Instant> {
        match (self.limits.at_end, self.limits.duration) {
            (AtEnd::Cancel, Some(d)) => measured_start.checked_add(d),
            _ => None,
        }
    }
}

/// Closed loop: `concurrency` workers, each with its own connection, each sending its next request
/// the moment the last one ends, until the limits are reached. Every request (warm-up and
/// cancelled ones included, flagged) goes to `sink` as it finishes.
pub async fn closed_loop<O: Op<R>, R: Record>(
    ctx: Context<'_, O>,
    concurrency: u64,
    sink: &mut dyn Sink<R>,
) {
    let conns = open_on_time(ctx.client, ctx.clock, ctx.start_ns, concurrency as usize).await;
    let start_ns = ctx.clock.now_ns();
    // A warm-up or duration too long for the clock means "never": the other limit ends the level.
    let now = Instant::now();
    let measured_start = now.checked_add(ctx.limits.warmup).unwrap_or(now);
    let stop_sending = ctx
        .limits
        .duration
        .and_then(|d| measured_start.checked_add(d));
    let cancel_at = ctx.cancel_at(measured_start);
    sink.begin(
        start_ns.saturating_add(
            u64::try_from(measured_start.duration_since(now).as_nanos()).unwrap_or(u64::MAX),
        ),
        start_ns,
    );
    let measured = Arc::new(AtomicU64::new(0));
    let seq = Arc::new(AtomicU64::new(0));
    let limit = ctx.limits.num_requests;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Sent<R>>();
    let mut tasks = Vec::with_capacity(conns.len());
    for mut conn in conns {
        let aborts = ctx.aborts;
        let (op, feed, shutdown, progress, measured, seq, clock, client, tx) = (
            ctx.op.clone(),
            ctx.feed.clone(),
            ctx.shutdown.clone(),
            ctx.progress.clone(),
            measured.clone(),
            seq.clone(),
            ctx.clock,
            ctx.client.clone(),
            tx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                if shutdown.is_stopping() {
                    break;
                }
                let now = Instant::now();
                let warmup = now < measured_start;
                if !warmup {
                    if stop_sending.is_some_and(|s| now >= s) {
                        break;
                    }
                    if limit.is_some_and(|l| measured.fetch_add(1, Ordering::Relaxed) >= l) {
                        break;
                    }
                }
                let Some(body) = feed.next().await else { break };
                progress.started();
                let seq = seq.fetch_add(1, Ordering::Relaxed);
                let send_ns = clock.now_ns();
                let abort_after = Aborts::after(aborts.as_ref(), seq);
                let (record, cancelled) =
                    match one(&op, conn, body, &shutdown, cancel_at, abort_after).await {
                        Finished::Done(c, r) => {
                            conn = c;
                            (r, false)
                        }
                        Finished::Interrupted => {
                            conn = client.connection();
                            (interrupted_record(send_ns), false)
                        }
                        Finished::Cancelled => {
                            conn = client.connection();
                            (interrupted_record(send_ns), true)
                        }
                    };
                progress.finished(&record);
                let _ = tx.send(Sent {
                    seq,
                    record,
                    scheduled_ns: None,
                    slot_wait_ns: None,
                    warmup,
                    cancelled,
                    turn: None,
                });
                if cancelled {
                    break;
                }
            }
        }));
    }
    // The workers hold the only senders: the channel ends when the last of them is done.
    drop(tx);
    while let Some(s) = rx.recv().await {
        sink.done(s);
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// The most connections an open loop opens at once once it has started. A client that falls
/// behind its schedule finds no idle connection for many requests at once; opening one for each
/// at the same moment (thousands against a saturated server) ended in connect timeouts and the
/// open-files limit, failing requests the server never saw. A request past this many waits for
/// the first connection to come free, whether a request gave it back or it was just opened;
/// the wait is part of its send lag.
pub const OPEN_LOOP_CONNECTING: usize = 64;

/// What an open loop's requests share: one reference per request, taken by the dispatcher.
struct OpenShared<O, R> {
    op: O,
    shutdown: Shutdown,
    progress: Arc<Progress>,
    client: Client,
    clock: Clock,
    aborts: Option<Aborts>,
    cancel_at: Option<Instant>,
    warmup: usize,
    /// Idle connections, and the requests waiting for one, first come first served.
    pool: Mutex<Idle>,
    /// Connections being opened now, at most [`OPEN_LOOP_CONNECTING`].
    connecting: tokio::sync::Semaphore,
    /// The concurrency cap, when there is one.
    slots: Option<tokio::sync::Semaphore>,
    tx: tokio::sync::mpsc::UnboundedSender<Sent<R>>,
}

/// An open loop's idle connections and the requests waiting for one.
#[derive(Default)]
struct Idle {
    idle: Vec<Connection>,
    /// Oldest first; a request that stopped waiting leaves a closed sender, skipped.
    waiting: std::collections::VecDeque<tokio::sync::oneshot::Sender<Connection>>,
}

impl<O: Op<R>, R: Record> OpenShared<O, R> {
    /// A connection a request is done with: to the request that has waited longest, else idle.
    fn give_back(&self, mut conn: Connection) {
        let Ok(mut pool) = self.pool.lock() else {
            return;
        };
        while let Some(waiter) = pool.waiting.pop_front() {
            match waiter.send(conn) {
                Ok(()) => return,
                // That request stopped waiting (it opened one, or its run ended).
                Err(back) => conn = back,
            }
        }
        pool.idle.push(conn);
    }

    /// An idle connection, else a new one (opened here, outside the request's timing) when
    /// fewer than [`OPEN_LOOP_CONNECTING`] are being opened, else the first one given back or the
    /// first chance to open one, whichever comes first. Requests that wait are served in order.
    async fn connection(&self) -> Connection {
        let mut given = match self.pool.lock() {
            Ok(mut pool) => {
                // A connection given back goes to the longest waiter first, so one lies idle only
                // while nobody waits: it is taken at once.
                if let Some(conn) = pool.idle.pop() {
                    return conn;
                }
                let (tx, rx) = tokio::sync::oneshot::channel();
                pool.waiting.push_back(tx);
                rx
            }
            Err(_) => tokio::sync::oneshot::channel().1,
        };
        let permit = tokio::select! {
            biased;
            conn = &mut given => match conn {
                Ok(conn) => return conn,
                Err(_) => self.connecting.acquire().await,
            },
            permit = self.connecting.acquire() => permit,
        };
        // No longer waiting; a connection handed over in the meantime is used.
        given.close();
        if let Ok(conn) = given.try_recv() {
            return conn;
        }
        let mut conn = self.client.connection();
        // A connection that fails to open is tried again by the request, which then fails
        // with the reason, counted.
        let _ = conn.connect().await;
        drop(permit);
        conn
    }

    /// Request `i`, due at `due_ns`, from its slot to its record in the sink's channel.
    async fn request(&self, i: usize, due_ns: u64, body: Bytes) {
        let _permit = match &self.slots {
            Some(s) => s.acquire().await.ok(),
            None => None,
        };
        let slot_wait_ns = self
            .slots
            .as_ref()
            .map(|_| self.clock.now_ns().saturating_sub(due_ns));
        // Waiting for a connection ends, as a request in flight does, when the run is abandoned
        // or the level's end cancels what is left.
        let conn = tokio::select! {
            biased;
            conn = self.shutdown.run(self.connection()) => conn.ok_or(Finished::Interrupted),
            _ = until(self.cancel_at) => Err(Finished::Cancelled),
        };
        self.progress.started();
        let send_ns = self.clock.now_ns();
        let abort_after = Aborts::after(self.aborts.as_ref(), i as u64);
        let finished = match conn {
            Ok(conn) => {
                one(
                    &self.op,
                    conn,
                    body,
                    &self.shutdown,
                    self.cancel_at,
                    abort_after,
                )
                .await
            }
            Err(ended) => ended,
        };
        let (record, cancelled) = match finished {
            Finished::Done(c, r) => {
                self.give_back(c);
                (r, false)
            }
            Finished::Interrupted => (interrupted_record(send_ns), false),
            Finished::Cancelled => (interrupted_record(send_ns), true),
        };
        self.progress.finished(&record);
        let _ = self.tx.send(Sent {
            seq: i as u64,
            record,
            scheduled_ns: Some(due_ns),
            slot_wait_ns,
            warmup: i < self.warmup,
            cancelled,
            turn: None,
        });
    }
}

/// Open loop: requests leave at `schedule` (ns after the start; the first `warmup` of them are
/// the warm-up), spawned by a dispatcher task that sleeps until each time — never "from now" —
/// on a timer of nanosecond precision (a Linux `timerfd`); at most `max_concurrency` in flight when
/// capped. Every
/// request (warm-up and cancelled ones included, flagged) goes to `sink` as it finishes.
/// Measurement starts `measured_from` ns after the start when given (a shard's part of a schedule
/// is measured from the whole plan's first measured arrival, which another shard may send), else
/// at the first measured arrival of `schedule`.
pub async fn open_loop<O: Op<R>, R: Record>(
    ctx: Context<'_, O>,
    open: &OpenLoop,
    schedule: Vec<u64>,
    warmup: usize,
    measured_from: Option<u64>,
    sink: &mut dyn Sink<R>,
) {
    // Idle connections, taken by a request and given back when it ends. Open enough ahead that the
    // first second does not pay for connection set-up in its send lag.
    let ahead = open
        .max_concurrency
        .unwrap_or_else(|| open.rate.ceil() as u64)
        .clamp(1, 1024) as usize;
    let ready = open_all(ctx.client, (0..ahead).map(|_| ctx.client.connection())).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Sent<R>>();
    // The dispatcher's first arrival: on the timetable, or 2 ms ahead.
    let now_ns = ctx.clock.now_ns();
    let start_ns = ctx
        .start_ns
        .filter(|&s| s > now_ns)
        .unwrap_or(now_ns + 2_000_000);
    let first = ctx.clock.instant_at(start_ns);
    let measured_start = first.checked_add(ctx.limits.warmup).unwrap_or(first);
    // Measurement starts when the first measured request is due.
    sink.begin(
        start_ns.saturating_add(
            measured_from
                .or_else(|| schedule.get(warmup).copied())
                .unwrap_or_else(|| u64::try_from(ctx.limits.warmup.as_nanos()).unwrap_or(u64::MAX)),
        ),
        start_ns,
    );
    let shared = Arc::new(OpenShared {
        op: ctx.op.clone(),
        shutdown: ctx.shutdown.clone(),
        progress: ctx.progress.clone(),
        client: ctx.client.clone(),
        clock: ctx.clock,
        aborts: ctx.aborts,
        cancel_at: ctx.cancel_at(measured_start),
        warmup,
        pool: Mutex::new(Idle {
            idle: ready,
            ..Idle::default()
        }),
        connecting: tokio::sync::Semaphore::new(OPEN_LOOP_CONNECTING),
        slots: open
            .max_concurrency
            .map(|c| tokio::sync::Semaphore::new(c as usize)),
        tx,
    });
    // The dispatcher: a task that sleeps on a timer of the runtime's own I/O driver until each
    // request is due, and spawns it on its worker. (A thread of its own, sleeping and waking a
    // worker for every request, cost two more context switches per request: 18% of the client's
    // samples in an open loop of embeddings at 5,000 requests/s.)
    let dispatcher = {
        let (feed, clock) = (ctx.feed.clone(), ctx.clock);
        tokio::spawn(async move {
            let timer = Timer::new();
            // A stop ends the wait for the next arrival at once (at a low rate it may be far off),
            // and nothing due after it is sent.
            let stopping = shared.shutdown.stopping();
            tokio::pin!(stopping);
            for (i, &offset) in schedule.iter().enumerate() {
                if shared.shutdown.is_stopping() {
                    break;
                }
                let due_ns = start_ns.saturating_add(offset);
                tokio::select! {
                    biased;
                    _ = &mut stopping => break,
                    _ = timer.sleep_until(clock.instant_at(due_ns)) => {}
                }
                let Some(body) = feed.next().await else {
                    break;
                };
                let shared = shared.clone();
                tokio::spawn(async move { shared.request(i, due_ns, body).await });
            }
        })
    };
    // The dispatcher (it owns the shared sender) and the request tasks hold the only senders: the
    // channel ends when the last request is done.
    while let Some(s) = rx.recv().await {
        sink.done(s);
    }
    if let Err(e) = dispatcher.await {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

/// A sleep to the nanosecond that the runtime's I/O driver wakes: on Linux a `timerfd` polled
/// with the sockets, so a worker that sleeps in `epoll_wait` wakes at the instant itself (tokio's
/// own timers round up to the next millisecond). Elsewhere, or where a timerfd cannot be made,
/// tokio's sleep.
struct Timer {
    #[cfg(target_os = "linux")]
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

impl Timer {
    fn new() -> Timer {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::FromRawFd;
            // SAFETY: timerfd_create takes integers and returns a new descriptor or -1.
            let fd = unsafe {
                libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                )
            };
            // SAFETY: a descriptor just made, owned by nothing else.
            let fd = (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
            Timer {
                fd: fd.and_then(|fd| {
                    // SAFETY: the AsyncFd owns the descriptor, open until it is dropped.
                    unsafe {
                        tokio::io::unix::AsyncFd::register_with_interest(
                            fd,
                            tokio::io::Interest::READABLE,
                        )
                    }
                    .ok()
                }),
            }
        }
        #[cfg(not(target_os = "linux"))]
        Timer {}
    }

    /// Returns at `due` (at once if it has passed).
    async fn sleep_until(&self, due: Instant) {
        if due <= Instant::now() {
            return;
        }
        #[cfg(target_os = "linux")]
        if self.sleep_on_fd(due).await {
            return;
        }
        tokio::time::sleep_until(due.into()).await;
    }

    /// Sleeps to `due` on the timerfd; false (at once, or when an error ends the wait early) if
    /// there is none or the kernel refused, for the caller to sleep otherwise.
    #[cfg(target_os = "linux")]
    async fn sleep_on_fd(&self, due: Instant) -> bool {
        let Some(fd) = &self.fd else {
            return false;
        };
        let after = due
            .saturating_duration_since(Instant::now())
            .max(std::time::Duration::from_nanos(1));
        if !Self::arm(fd, after) {
            return false;
        }
        loop {
            let Ok(mut ready) = fd.readable().await else {
                return false;
            };
            let mut expirations = [0u8; 8];
            let read = ready.try_io(|fd| {
                use std::os::fd::AsRawFd;
                // SAFETY: reads 8 bytes into a buffer of 8 from the timer's descriptor.
                let n = unsafe { libc::read(fd.as_raw_fd(), expirations.as_mut_ptr().cast(), 8) };
                if n < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(())
                }
            });
            match read {
                Ok(Ok(())) => return true,
                Ok(Err(_)) => return false,
                // Readiness left from the last expiry (re-arming reset it): wait again.
                Err(_would_block) => continue,
            }
        }
    }

    /// Sets the timer to expire once, `after` from now; false if the kernel refused.
    #[cfg(target_os = "linux")]
    fn arm(
        fd: &tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
        after: std::time::Duration,
    ) -> bool {
        use std::os::fd::AsRawFd;
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs().try_into().unwrap_or(libc::time_t::MAX),
                // Never all zero, which would disarm it (`after` is at least 1 ns).
                tv_nsec: after.subsec_nanos().max(u32::from(after.as_secs() == 0)) as libc::c_long,
            },
        };
        // SAFETY: the descriptor is a timerfd; the spec lives across the call.
        unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) == 0 }
    }
}

/// Makes the calling thread wake on time: no timer slack (Linux lets a sleep overrun by 50 µs by
/// default), and a short scheduler slice, so that on a busy machine the kernel lets it run soon
/// after it wakes (EEVDF picks the earliest virtual deadline, which a short slice brings
/// forward). Both are best effort: a kernel that refuses leaves the thread as it was. Measured on
/// the 2-core development machine at 2,000 requests/s: p99 send lag from 1.4–1.8 ms to 0.9–1.2 ms.
pub fn keep_time() {
    #[cfg(target_os = "linux")]
    {
        /// `struct sched_attr` (first version, 56 bytes), see sched_setattr(2).
        #[repr(C)]
        struct SchedAttr {
            size: u32,
            policy: u32,
            flags: u64,
            nice: i32,
            priority: u32,
            runtime: u64,
            deadline: u64,
            period: u64,
            util_min: u32,
            util_max: u32,
        }
        let attr = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy: libc::SCHED_OTHER as u32,
            flags: 0,
            nice: 0,
            priority: 0,
            runtime: 100_000, // the shortest slice the kernel accepts, 0.1 ms
            deadline: 0,
            period: 0,
            util_min: 0,
            util_max: 0,
        };
        // SAFETY: prctl(PR_SET_TIMERSLACK) takes integers; sched_setattr reads the struct passed,
        // which lives across the call, for the calling thread (pid 0).
        unsafe {
            libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
            libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokenomics_client::ClientConfig;

    type Shared = OpenShared<
        fn(Connection, Bytes) -> std::future::Ready<(Connection, RequestRecord)>,
        RequestRecord,
    >;

    #[tokio::test]
    async fn the_dispatchers_timer_wakes_at_its_time_never_before() {
        let timer = Timer::new();
        #[cfg(target_os = "linux")]
        assert!(timer.fd.is_some(), "a timerfd in the runtime's driver");
        for ms in [1u64, 3, 20, 1_100] {
            let due = Instant::now() + Duration::from_millis(ms);
            let limit = Duration::from_secs(10);
            #[cfg(target_os = "linux")]
            assert!(
                tokio::time::timeout(limit, timer.sleep_on_fd(due))
                    .await
                    .expect("the timer fired"),
                "slept on the timerfd, not on a fallback"
            );
            #[cfg(not(target_os = "linux"))]
            tokio::time::timeout(limit, timer.sleep_until(due))
                .await
                .expect("the timer fired");
            let woke = Instant::now();
            assert!(woke >= due, "woke {:?} early", due - woke);
            // Wide: a shared machine can hold a thread back; a timer that missed its expiry
            // (or took seconds for ns) would wait for ever or far longer.
            assert!(
                woke - due < Duration::from_millis(500),
                "{:?} late",
                woke - due
            );
        }
        // A time gone by returns at once, and the timer is ready again afterwards.
        let limit = Duration::from_secs(10);
        tokio::time::timeout(limit, timer.sleep_until(Instant::now()))
            .await
            .expect("at once");
        let due = Instant::now() + Duration::from_millis(2);
        tokio::time::timeout(limit, timer.sleep_until(due))
            .await
            .expect("the timer fired");
        assert!(Instant::now() >= due);
    }

    fn shared(client: Client, idle: Vec<Connection>) -> Arc<Shared> {
        shared_with(client, idle, None).0
    }

    fn shared_with(
        client: Client,
        idle: Vec<Connection>,
        cancel_at: Option<Instant>,
    ) -> (
        Arc<Shared>,
        tokio::sync::mpsc::UnboundedReceiver<Sent<RequestRecord>>,
    ) {
        fn op(c: Connection, _: Bytes) -> std::future::Ready<(Connection, RequestRecord)> {
            std::future::ready((c, RequestRecord::default()))
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = Arc::new(OpenShared {
            op: op as fn(_, _) -> _,
            shutdown: Shutdown::default(),
            progress: Arc::default(),
            client,
            clock: Clock::start(),
            aborts: None,
            cancel_at,
            warmup: 0,
            pool: Mutex::new(Idle {
                idle,
                ..Idle::default()
            }),
            connecting: tokio::sync::Semaphore::new(OPEN_LOOP_CONNECTING),
            slots: None,
            tx,
        });
        (shared, rx)
    }

    /// Counts the connections a loopback listener accepts (and keeps them open).
    async fn counting_listener() -> (String, Arc<AtomicU64>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicU64::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(s);
            }
        });
        (base, accepted)
    }

    #[tokio::test]
    async fn a_feed_hands_over_every_body_in_order_and_stops_at_its_limit() {
        let feed = BodyFeed::start(
            |chunk| (chunk * 10..chunk * 10 + 10).collect(),
            Some(1_000),
            256,
        )
        .await;
        for want in 0..1_000u64 {
            assert_eq!(feed.next().await, Some(want));
        }
        assert_eq!(feed.next().await, None);
    }

    #[tokio::test]
    async fn a_feed_with_fewer_bodies_than_it_keeps_ahead_ends_after_them() {
        let feed = BodyFeed::start(|chunk| vec![chunk; 10], Some(3), 256).await;
        assert_eq!(
            [
                feed.next().await,
                feed.next().await,
                feed.next().await,
                feed.next().await
            ],
            [Some(0), Some(0), Some(0), None]
        );
        let none = BodyFeed::start(|chunk| vec![chunk; 10], Some(0), 256).await;
        assert_eq!(none.next().await, None);
        let empty = BodyFeed::<u64>::start(|_| Vec::new(), None, 256).await;
        assert_eq!(empty.next().await, None);
    }

    #[tokio::test]
    async fn a_feed_that_falls_behind_hands_over_each_body_without_waiting_for_a_batch() {
        // The builder makes one body per call, each only when the test lets it.
        let (go, gate) = std::sync::mpsc::channel::<()>();
        let feed = BodyFeed::start(
            move |chunk| {
                if chunk >= 8 && gate.recv().is_err() {
                    return Vec::new();
                }
                vec![chunk]
            },
            None,
            8,
        )
        .await;
        for want in 0..8u64 {
            assert_eq!(feed.next().await, Some(want));
        }
        // Batches are of two here; one body alone must still come through.
        go.send(()).unwrap();
        let next = tokio::time::timeout(Duration::from_secs(5), feed.next()).await;
        assert_eq!(next.expect("the body waited for a batch to fill"), Some(8));
    }

    #[tokio::test]
    async fn an_idle_connection_is_taken_before_one_is_opened() {
        let (base, accepted) = counting_listener().await;
        let client = Client::new(ClientConfig::new(&base)).unwrap();
        let mut ready = client.connection();
        ready.connect().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        let s = shared(client, vec![ready]);
        let _first = s.connection().await;
        // The idle one was taken: nothing opened.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // None idle now: the next is opened.
        let _second = s.connection().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn with_every_opening_slot_taken_a_request_waits_for_a_connection_given_back() {
        let (base, accepted) = counting_listener().await;
        let client = Client::new(ClientConfig::new(&base)).unwrap();
        let s = shared(client.clone(), Vec::new());
        // Every slot for opening a connection is in use (as by connects that hang).
        let busy = s
            .connecting
            .acquire_many(OPEN_LOOP_CONNECTING as u32)
            .await
            .unwrap();
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.connection().await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !waiter.is_finished(),
            "it opened a connection past the limit"
        );
        let mut back = client.connection();
        back.connect().await.unwrap();
        s.give_back(back);
        let got = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the connection given back was not taken")
            .unwrap();
        drop((got, busy));
        // Only the connection given back was ever opened.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert!(s.pool.lock().unwrap().idle.is_empty());
    }

    #[tokio::test]
    async fn a_request_still_waiting_for_a_connection_ends_at_the_level_end_or_when_abandoned() {
        let (base, accepted) = counting_listener().await;
        let client = Client::new(ClientConfig::new(&base)).unwrap();
        // The level's end, 100 ms from now, cancels a request that never got a connection.
        let cancel_at = Instant::now() + Duration::from_millis(100);
        let (s, mut rx) = shared_with(client.clone(), Vec::new(), Some(cancel_at));
        let _busy = s
            .connecting
            .acquire_many(OPEN_LOOP_CONNECTING as u32)
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), s.request(7, 0, Bytes::new()))
            .await
            .expect("the request waited past the level's end");
        let sent = rx.recv().await.unwrap();
        assert_eq!(sent.seq, 7);
        assert!(sent.cancelled);
        assert!(matches!(sent.record.error, Some(ClientError::Interrupted)));
        // Abandoned by the shutdown: interrupted, not cancelled.
        let (s, mut rx) = shared_with(client, Vec::new(), None);
        let _busy = s
            .connecting
            .acquire_many(OPEN_LOOP_CONNECTING as u32)
            .await
            .unwrap();
        let waiting = tokio::spawn({
            let s = s.clone();
            async move { s.request(8, 0, Bytes::new()).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.shutdown.stop_now();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the request outlived the shutdown")
            .unwrap();
        let sent = rx.recv().await.unwrap();
        assert!(!sent.cancelled);
        assert!(matches!(sent.record.error, Some(ClientError::Interrupted)));
        assert_eq!(s.progress.in_flight(), 0);
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn requests_waiting_for_a_connection_get_them_in_the_order_they_came() {
        let (base, _accepted) = counting_listener().await;
        let client = Client::new(ClientConfig::new(&base)).unwrap();
        let s = shared(client.clone(), Vec::new());
        let _busy = s
            .connecting
            .acquire_many(OPEN_LOOP_CONNECTING as u32)
            .await
            .unwrap();
        let wait = |s: &Arc<Shared>| {
            let s = s.clone();
            tokio::spawn(async move { s.connection().await })
        };
        let first = wait(&s);
        tokio::time::sleep(Duration::from_millis(30)).await;
        let second = wait(&s);
        tokio::time::sleep(Duration::from_millis(30)).await;
        let open = || async {
            let mut c = client.connection();
            c.connect().await.unwrap();
            c
        };
        s.give_back(open().await);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(
            first.is_finished(),
            "the first to wait was not served first"
        );
        assert!(!second.is_finished());
        // A request that comes now queues behind the second.
        let third = wait(&s);
        tokio::time::sleep(Duration::from_millis(30)).await;
        s.give_back(open().await);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(second.is_finished());
        assert!(!third.is_finished(), "the newest request went ahead");
        assert!(s.pool.lock().unwrap().idle.is_empty());
        s.give_back(open().await);
        tokio::time::timeout(Duration::from_secs(5), third)
            .await
            .expect("the third request was never served")
            .unwrap();
    }
}
