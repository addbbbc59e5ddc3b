//! Stages (`--stages`): a list of concurrencies or rates, each held for a time, run as one
//! continuous load — nothing drains between two stages — with each stage reported as a level.
//!
//! A closed-loop stage list keeps as many workers as its largest stage; worker j sends while the
//! stage in progress has more than j users, and waits otherwise, so at a boundary the load steps
//! up at once (new workers start) or down as the requests of the retired workers end. An
//! open-loop stage list is one schedule: each stage's arrivals at its own rate, on the absolute
//! schedule, one after the other. A request belongs to the stage in which it was sent (closed)
//! or scheduled (open); one still in flight at a boundary finishes under the next stage's load
//! and is measured in its own.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::load::{Limits, OpenLoop, Shape};
use crate::sustained::{interrupted_record, one, Context, Finished, Op, Sent, Sink};

/// The most stages a list may have.
pub const MAX_STAGES: usize = 1_000;

/// The largest concurrency a stage may keep (as `--max_concurrency`'s).
pub const MAX_STAGE_CONCURRENCY: u64 = 1_000_000;

/// What the stages vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageKind {
    /// Users kept in flight (a closed loop).
    Concurrency,
    /// Requests per second (an open loop).
    Rate,
}

/// A list of stages: `concurrency:4@30,8@30` or `rate:5@20,10@20` (value @ seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Stages {
    /// Whether the stages' values are concurrencies or rates.
    pub kind: StageKind,
    /// Each stage's concurrency or rate, and how long it lasts.
    pub steps: Vec<(f64, Duration)>,
}

impl FromStr for Stages {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, list) = s.trim().split_once(':').ok_or_else(|| {
            format!("{s:?}: expected concurrency:C@SECONDS,… or rate:R@SECONDS,…")
        })?;
        let kind = match kind.trim() {
            "concurrency" => StageKind::Concurrency,
            "rate" => StageKind::Rate,
            other => {
                return Err(format!(
                    "{other:?}: a stage list is concurrency:… or rate:…"
                ))
            }
        };
        let steps = list
            .split(',')
            .map(|step| {
                let (value, secs) = step
                    .trim()
                    .split_once('@')
                    .ok_or_else(|| format!("{step:?}: a stage is VALUE@SECONDS"))?;
                let value: f64 = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("{value:?} is not a number"))?;
                let ok = match kind {
                    StageKind::Concurrency => {
                        value >= 1.0
                            && value.fract() == 0.0
                            && value <= MAX_STAGE_CONCURRENCY as f64
                    }
                    StageKind::Rate => value.is_finite() && value > 0.0 && value <= 1e6,
                };
                if !ok {
                    return Err(match kind {
                        StageKind::Concurrency => format!(
                            "{value}: a stage's concurrency is a whole number from 1 to {}",
                            MAX_STAGE_CONCURRENCY
                        ),
                        StageKind::Rate => {
                            format!("{value}: a stage's rate is above 0 and at most 1000000")
                        }
                    });
                }
                let secs: f64 = secs
                    .trim()
                    .parse()
                    .map_err(|_| format!("{secs:?} is not a number of seconds"))?;
                if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
                    return Err(format!(
                        "{secs}: a stage lasts above 0 and at most 86400 seconds"
                    ));
                }
                Ok((value, Duration::from_secs_f64(secs)))
            })
            .collect::<Result<Vec<_>, String>>()?;
        if steps.len() > MAX_STAGES {
            return Err(format!("{} stages: at most {MAX_STAGES}", steps.len()));
        }
        Ok(Self { kind, steps })
    }
}

impl Stages {
    /// Each stage's level: a closed loop of its concurrency, or an open loop of its rate shaped
    /// as `open` (arrival process, burstiness, cap).
    pub fn shapes(&self, open: &OpenLoop) -> Vec<Shape> {
        self.steps
            .iter()
            .map(|&(v, _)| match self.kind {
                StageKind::Concurrency => Shape::Closed {
                    concurrency: v as u64,
                },
                StageKind::Rate => Shape::Open(OpenLoop { rate: v, ..*open }),
            })
            .collect()
    }

    /// Each stage's key in `results`: `stage1:4`, `stage2:8`, … (a stage list may repeat a
    /// level).
    pub fn keys(&self, shapes: &[Shape]) -> Vec<String> {
        shapes
            .iter()
            .enumerate()
            .map(|(i, s)| format!("stage{}:{}", i + 1, s.key()))
            .collect()
    }

    /// When each stage ends, ns after the load's start.
    pub fn ends_ns(&self) -> Vec<u64> {
        let mut at = 0u64;
        self.steps
            .iter()
            .map(|(_, d)| {
                at = at.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
                at
            })
            .collect()
    }

    /// The whole load's length.
    pub fn total(&self) -> Duration {
        self.steps.iter().map(|(_, d)| *d).sum()
    }

    /// The stage in progress `offset_ns` after the start (the last one past the end).
    pub fn stage_at(ends_ns: &[u64], offset_ns: u64) -> usize {
        ends_ns
            .iter()
            .position(|&end| offset_ns < end)
            .unwrap_or(ends_ns.len().saturating_sub(1))
    }

    /// An open-loop stage list's schedule: every stage's arrivals, each stage's drawn on its own
    /// from `seed` and placed after the stages before, ns after the start.
    pub fn schedule(&self, shapes: &[Shape], seed: u64) -> Vec<u64> {
        let mut times = Vec::new();
        let mut offset = 0u64;
        for (i, (shape, end)) in shapes.iter().zip(self.ends_ns()).enumerate() {
            if let Shape::Open(open) = shape {
                let limits = Limits {
                    num_requests: None,
                    duration: Some(Duration::from_nanos(end - offset)),
                    ..Limits::default()
                };
                let (ts, _) = crate::load::schedule(
                    open,
                    &limits,
                    tokenomics_datasets::run_seed(seed, i as u64, 0x57a6e),
                );
                times.extend(ts.into_iter().map(|t| t.saturating_add(offset)));
            }
            offset = end;
        }
        times
    }
}

/// A closed-loop stage list: `users[k]` workers send during stage k (ending `ends_ns[k]` after
/// the start), each its next request the moment the last one ends; every request goes to `sink`
/// as it finishes.
pub(crate) async fn closed_loop<O: Op>(
    ctx: Context<'_, O>,
    users: &[u64],
    ends_ns: &[u64],
    sink: &mut dyn Sink,
) {
    let n = users.iter().copied().max().unwrap_or(1) as usize;
    // On a timetable (a shard's part), at its time.
    let conns = crate::pool::open_on_time(ctx.client, ctx.clock, ctx.start_ns, n).await;
    let start_ns = ctx.clock.now_ns();
    let start = Instant::now();
    sink.begin(start_ns, start_ns);
    let users: Arc<Vec<u64>> = Arc::new(users.to_vec());
    let ends: Arc<Vec<u64>> = Arc::new(ends_ns.to_vec());
    let seq = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Sent>();
    let mut tasks = Vec::with_capacity(n);
    for (j, mut conn) in conns.into_iter().enumerate() {
        let (op, feed, shutdown, progress, seq, clock, client, tx, users, ends) = (
            ctx.op.clone(),
            ctx.feed.clone(),
            ctx.shutdown.clone(),
            ctx.progress.clone(),
            seq.clone(),
            ctx.clock,
            ctx.client.clone(),
            tx.clone(),
            users.clone(),
            ends.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let at = |ns: u64| start + Duration::from_nanos(ns);
            loop {
                if shutdown.is_stopping() {
                    break;
                }
                let offset = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let Some(stage) = ends.iter().position(|&end| offset < end) else {
                    break; // the last stage is over
                };
                if j as u64 >= users[stage] {
                    // Not a user of this stage: wait for the next stage that has this worker.
                    let next = (stage + 1..users.len()).find(|&k| (j as u64) < users[k]);
                    let Some(k) = next else { break };
                    let wake = at(ends[k - 1]);
                    if shutdown
                        .run(tokio::time::sleep_until(wake.into()))
                        .await
                        .is_none()
                    {
                        break;
                    }
                    continue;
                }
                let Some(body) = feed.next().await else { break };
                progress.started();
                let seq = seq.fetch_add(1, Ordering::Relaxed);
                let send_ns = clock.now_ns();
                let record = match one(&op, conn, body, &shutdown, None, None).await {
                    Finished::Done(c, r) => {
                        conn = c;
                        r
                    }
                    Finished::Interrupted | Finished::Cancelled => {
                        conn = client.connection();
                        interrupted_record(send_ns)
                    }
                };
                progress.finished(&record);
                let _ = tx.send(Sent {
                    seq,
                    record,
                    scheduled_ns: None,
                    slot_wait_ns: None,
                    warmup: false,
                    cancelled: false,
                    turn: None,
                });
            }
        }));
    }
    drop(tx);
    while let Some(s) = rx.recv().await {
        sink.done(s);
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Arrival;

    #[test]
    fn stage_lists_parse_and_bad_ones_are_refused() {
        let s: Stages = "concurrency:4@30,8@0.5".parse().unwrap();
        assert_eq!(s.kind, StageKind::Concurrency);
        assert_eq!(
            s.steps,
            vec![
                (4.0, Duration::from_secs(30)),
                (8.0, Duration::from_millis(500))
            ]
        );
        assert_eq!(s.ends_ns(), vec![30_000_000_000, 30_500_000_000]);
        assert_eq!(Stages::stage_at(&s.ends_ns(), 29_999_999_999), 0);
        assert_eq!(Stages::stage_at(&s.ends_ns(), 30_000_000_000), 1);
        let r: Stages = "rate:2.5@10".parse().unwrap();
        assert_eq!(r.kind, StageKind::Rate);
        for bad in [
            "4@30",
            "users:4@30",
            "concurrency:4",
            "concurrency:0@5",
            "concurrency:2.5@5",
            "rate:0@5",
            "rate:nan@5",
            "rate:5@0",
            "rate:5@-1",
            "rate:5@inf",
            "concurrency:",
        ] {
            assert!(bad.parse::<Stages>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_open_stage_list_is_one_schedule_at_each_stage_rate() {
        let s: Stages = "rate:10@2,40@1".parse().unwrap();
        let open = OpenLoop {
            rate: 1.0,
            arrival: Arrival::Constant,
            burstiness: 1.0,
            max_concurrency: None,
            ramp: None,
        };
        let shapes = s.shapes(&open);
        let t = s.schedule(&shapes, 7);
        let ends = s.ends_ns();
        let first = t.iter().filter(|&&x| x < ends[0]).count();
        let second = t.iter().filter(|&&x| x >= ends[0] && x < ends[1]).count();
        assert!(
            (19..=21).contains(&first),
            "{first} arrivals in 2 s at 10/s"
        );
        assert!(
            (39..=41).contains(&second),
            "{second} arrivals in 1 s at 40/s"
        );
        assert!(t.windows(2).all(|w| w[0] <= w[1]), "in order");
        assert_eq!(s.keys(&shapes), vec!["stage1:10", "stage2:40"]);
    }
}
