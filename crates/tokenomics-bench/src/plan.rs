//! From the load flags of a command line to the levels a benchmark runs.
//!
//! clap has already checked each value on its own (positive, finite, in range); what is left
//! here is how the flags go together: bursts, a closed loop or an open loop, and which limits
//! mean something for which. Every refusal is an [`Error::Invalid`] whose message names the
//! flags, so a binary prints it as it is and exits with the usage code.

use std::time::Duration;

use crate::adaptive::{Adaptive, ExperimentFlags, OpenTemplate, DEFAULT_SATURATION_CONCURRENCY};
use crate::load::{Arrival, AtEnd, Limits, OpenLoop, Ramp, Shape};
use crate::metrics::Slo;
use crate::{Error, Result};

/// The load flags as given (`None`: not given).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadFlags {
    /// `--batch_sizes`: bursts.
    pub batch_sizes: Option<Vec<u64>>,
    /// `--max_concurrency`: a closed loop per value, or with `--request_rate` one cap.
    pub max_concurrency: Option<Vec<u64>>,
    /// `--request_rate`: an open loop per value, requests per second.
    pub request_rate: Option<Vec<f64>>,
    /// `--ramp`: one open loop whose rate changes linearly (it sets the level's duration).
    pub ramp: Option<Ramp>,
    /// `--trace`: one open loop on a trace's times (its requests and span, read beforehand).
    pub trace: Option<TraceSpan>,
    /// `--sessions`: conversations, a closed level of C concurrent users per value.
    pub sessions: Option<Vec<u64>>,
    /// `--session_rate`: conversations, an open level per value, sessions started per second.
    pub session_rate: Option<Vec<f64>>,
    /// `--stages`: one continuous load, a level per stage.
    pub stages: Option<crate::stages::Stages>,
    /// `--arrival`: the open loops' arrival process (Poisson by default).
    pub arrival: Option<Arrival>,
    /// `--burstiness`: the gamma shape of gamma arrivals.
    pub burstiness: Option<f64>,
    /// `--num_requests`: measured requests per sustained run.
    pub num_requests: Option<u64>,
    /// `--duration`: measured time per sustained run.
    pub duration: Option<Duration>,
    /// `--warmup`: load at the level's shape before each sustained run, not measured.
    pub warmup: Option<Duration>,
    /// `--at_end`: what happens to requests in flight when a timed run is over.
    pub at_end: Option<AtEnd>,
    /// `--num_runs`: runs per level.
    pub num_runs: Option<u64>,
    /// Rewrite the results file this often during a sustained level.
    pub snapshot_every: Option<Duration>,
    /// A sweep or an SLO search (`--sweep`, `--slo`).
    pub experiment: ExperimentFlags,
    /// The confidence of intervals (an SLO probe measures enough requests for its percentile's).
    pub confidence: Option<f64>,
}

/// What a replayed trace holds, for its plan: how many requests, over how long (seconds from
/// the first to the last, time scale applied).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceSpan {
    /// Requests in the trace.
    pub requests: u64,
    /// Seconds from its first request to its last, time scale applied.
    pub seconds: f64,
}

impl TraceSpan {
    /// The mean rate, requests per second (the count itself for a trace whose requests all
    /// come at once).
    pub fn mean_rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.requests.saturating_sub(1).max(1) as f64 / self.seconds
        } else {
            self.requests as f64
        }
    }
}

/// What the flags ask for: the levels in order, when a sustained level stops, runs per level,
/// how often a sustained level is snapshotted.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    /// The levels, in the order they run.
    pub levels: Vec<Shape>,
    /// When a sustained run stops, and its warm-up.
    pub limits: Limits,
    /// Runs per level.
    pub num_runs: u64,
    /// Rewrite the results file this often during a sustained level (`None`: only after it).
    pub snapshot_every: Option<Duration>,
    /// A sweep or an SLO search, which choose the levels as they go (`levels` then holds the
    /// kinds of level it may run, for the sizing of sockets).
    pub adaptive: Option<Adaptive>,
}

/// The batch sizes when no load flag is given (the original's).
pub const DEFAULT_BATCH_SIZES: [u64; 4] = [1, 2, 4, 8];

/// The most arrivals an open-loop level may schedule (rate × (warm-up + duration)).
pub const MAX_SCHEDULED: f64 = 100_000_000.0;

fn invalid(message: impl Into<String>) -> Error {
    Error::Invalid(message.into())
}

/// Refuses the first of `flags` (a flag's name, and whether it was given) that was given, with
/// the message `why` makes of its name: one check for every list of flags that do not combine.
pub(crate) fn refuse_any(flags: &[(&str, bool)], why: impl Fn(&str) -> String) -> Result<()> {
    match flags.iter().find(|(_, given)| *given) {
        Some((flag, _)) => Err(invalid(why(flag))),
        None => Ok(()),
    }
}

impl LoadFlags {
    /// Whether the flags ask for a sustained load (closed or open loop; a sweep or a search).
    pub fn sustained(&self) -> bool {
        self.max_concurrency.is_some()
            || self.request_rate.is_some()
            || self.ramp.is_some()
            || self.trace.is_some()
            || self.conversation()
            || self.stages.is_some()
            || self.experiment.any()
    }

    /// A stage list's plan: a level per stage (a closed loop of its concurrency or an open loop
    /// of its rate), run as one continuous load, once.
    fn stages_plan(&self, stages: &crate::stages::Stages) -> Result<LoadPlan> {
        use crate::stages::StageKind;
        let rates = stages.kind == StageKind::Rate;
        refuse_any(
            &[
                ("--batch_sizes", self.batch_sizes.is_some()),
                (
                    "--max_concurrency (with concurrency stages)",
                    !rates && self.max_concurrency.is_some(),
                ),
                ("--request_rate", self.request_rate.is_some()),
                ("--ramp", self.ramp.is_some()),
                ("--trace", self.trace.is_some()),
                ("--num_requests", self.num_requests.is_some()),
                ("--duration", self.duration.is_some()),
                (
                    "--warmup_seconds",
                    self.warmup.is_some_and(|w| !w.is_zero()),
                ),
                ("--at_end", self.at_end.is_some()),
                ("--num_runs", self.num_runs.is_some_and(|n| n != 1)),
                ("--sweep or --slo", self.experiment.any()),
                ("--sessions or --session_rate", self.conversation()),
            ],
            |flag| {
                format!("--stages is one continuous load whose levels and times it sets: leave out {flag}")
            },
        )?;
        if !rates && (self.arrival.is_some() || self.burstiness.is_some()) {
            return Err(invalid(
                "--arrival and --burstiness shape arrivals: give rate stages (--stages rate:R@S,…)",
            ));
        }
        let template = match self
            .open_levels(&[1.0], self.max_concurrency.as_deref(), Duration::ZERO)?
            .first()
        {
            Some(Shape::Open(o)) => *o,
            _ => return Err(invalid("no open loop")),
        };
        let total = stages.total().as_secs_f64();
        if rates {
            let arrivals: f64 = stages.steps.iter().map(|(r, d)| r * d.as_secs_f64()).sum();
            if arrivals > MAX_SCHEDULED {
                return Err(invalid(format!(
                    "--stages schedules {arrivals:.0} requests, more than {MAX_SCHEDULED:.0}; shorten it"
                )));
            }
        }
        Ok(LoadPlan {
            levels: stages.shapes(&template),
            limits: Limits {
                num_requests: None,
                duration: Duration::try_from_secs_f64(total).ok(),
                warmup: Duration::ZERO,
                at_end: AtEnd::Wait,
            },
            num_runs: 1,
            snapshot_every: self.snapshot_every,
            adaptive: None,
        })
    }

    /// Whether the flags ask for conversations (`--sessions`, `--session_rate`).
    pub fn conversation(&self) -> bool {
        self.sessions.is_some() || self.session_rate.is_some()
    }

    /// A conversation plan: a level of users (closed) or of session arrivals (open) per value,
    /// counted in sessions (the caller's `--num_sessions`) or stopped by `--duration`.
    fn conversation_plan(&self) -> Result<LoadPlan> {
        refuse_any(
            &[
                ("--batch_sizes", self.batch_sizes.is_some()),
                ("--max_concurrency", self.max_concurrency.is_some()),
                ("--request_rate", self.request_rate.is_some()),
                ("--ramp", self.ramp.is_some()),
                ("--trace", self.trace.is_some()),
                (
                    "--num_requests (count sessions with --num_sessions)",
                    self.num_requests.is_some(),
                ),
                (
                    "--warmup_seconds",
                    self.warmup.is_some_and(|w| !w.is_zero()),
                ),
                ("--sweep or --slo", self.experiment.any()),
            ],
            |flag| {
                format!("conversations (--sessions, --session_rate) are levels of their own: leave out {flag}")
            },
        )?;
        let levels = match (&self.sessions, &self.session_rate) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "give --sessions (concurrent users) or --session_rate (sessions per second), not both",
                ))
            }
            (Some(users), None) => {
                if self.arrival.is_some() || self.burstiness.is_some() {
                    return Err(invalid(
                        "--arrival and --burstiness shape session arrivals: give --session_rate",
                    ));
                }
                users
                    .iter()
                    .map(|&concurrency| Shape::Closed { concurrency })
                    .collect()
            }
            (None, Some(rates)) => self.open_levels(rates, None, Duration::ZERO)?,
            (None, None) => return Err(invalid("no conversation level given")),
        };
        let at_end = self.at_end.unwrap_or_default();
        if at_end == AtEnd::Cancel && self.duration.is_none() {
            return Err(invalid("--at_end cancel needs --duration"));
        }
        Ok(LoadPlan {
            levels,
            limits: Limits {
                num_requests: None,
                duration: self.duration,
                warmup: Duration::ZERO,
                at_end,
            },
            num_runs: match self.num_runs.unwrap_or(1) {
                0 => return Err(invalid("--num_runs must be at least 1")),
                n => n,
            },
            snapshot_every: self.snapshot_every,
            adaptive: None,
        })
    }

    /// A ramp's plan: one open-loop level as long as the ramp.
    fn ramp_plan(&self, ramp: Ramp) -> Result<LoadPlan> {
        refuse_any(
            &[
                ("--request_rate", self.request_rate.is_some()),
                ("--batch_sizes", self.batch_sizes.is_some()),
                ("--duration", self.duration.is_some()),
                ("--num_requests", self.num_requests.is_some()),
                (
                    "--warmup_seconds",
                    self.warmup.is_some_and(|w| !w.is_zero()),
                ),
                ("--sweep or --slo", self.experiment.any()),
            ],
            |flag| {
                format!(
                    "--ramp is one open-loop level whose rate and length it sets: leave out {flag}"
                )
            },
        )?;
        let arrivals = ramp.mean_rate() * ramp.seconds;
        if arrivals > MAX_SCHEDULED {
            return Err(invalid(format!(
                "--ramp schedules {arrivals:.0} requests, more than {MAX_SCHEDULED:.0}; shorten it"
            )));
        }
        let levels = self
            .open_levels(
                &[ramp.mean_rate()],
                self.max_concurrency.as_deref(),
                Duration::ZERO,
            )?
            .into_iter()
            .map(|shape| match shape {
                Shape::Open(o) => Shape::Open(OpenLoop {
                    ramp: Some(ramp),
                    ..o
                }),
                other => other,
            })
            .collect();
        let duration = Duration::try_from_secs_f64(ramp.seconds)
            .map_err(|e| invalid(format!("--ramp: {e}")))?;
        let at_end = self.at_end.unwrap_or_default();
        Ok(LoadPlan {
            levels,
            limits: Limits {
                num_requests: None,
                duration: Some(duration),
                warmup: Duration::ZERO,
                at_end,
            },
            num_runs: match self.num_runs.unwrap_or(1) {
                0 => return Err(invalid("--num_runs must be at least 1")),
                n => n,
            },
            snapshot_every: self.snapshot_every,
            adaptive: None,
        })
    }

    /// A trace's plan: one open-loop level on the trace's times, every request of it measured.
    fn trace_plan(&self, trace: TraceSpan) -> Result<LoadPlan> {
        refuse_any(
            &[
                ("--request_rate", self.request_rate.is_some()),
                ("--ramp", self.ramp.is_some()),
                ("--batch_sizes", self.batch_sizes.is_some()),
                ("--duration", self.duration.is_some()),
                ("--num_requests", self.num_requests.is_some()),
                (
                    "--warmup_seconds",
                    self.warmup.is_some_and(|w| !w.is_zero()),
                ),
                ("--arrival", self.arrival.is_some()),
                ("--burstiness", self.burstiness.is_some()),
                ("--at_end", self.at_end.is_some()),
                ("--sweep or --slo", self.experiment.any()),
            ],
            |flag| {
                format!("--trace is one open-loop level whose times and requests it sets: leave out {flag}")
            },
        )?;
        let cap =
            match self.max_concurrency.as_deref() {
                None => None,
                Some([one]) => Some(*one),
                Some(_) => return Err(invalid(
                    "--max_concurrency with --trace is one cap on requests in flight, not a list",
                )),
            };
        Ok(LoadPlan {
            levels: vec![Shape::Open(OpenLoop {
                rate: trace.mean_rate(),
                arrival: Arrival::Trace,
                burstiness: 1.0,
                max_concurrency: cap,
                ramp: None,
            })],
            limits: Limits {
                num_requests: Some(trace.requests),
                duration: None,
                warmup: Duration::ZERO,
                at_end: AtEnd::Wait,
            },
            num_runs: match self.num_runs.unwrap_or(1) {
                0 => return Err(invalid("--num_runs must be at least 1")),
                n => n,
            },
            snapshot_every: self.snapshot_every,
            adaptive: None,
        })
    }

    /// Checks how the flags go together and builds the plan.
    pub fn plan(&self) -> Result<LoadPlan> {
        if let Some(stages) = &self.stages {
            return self.stages_plan(stages);
        }
        if self.conversation() {
            return self.conversation_plan();
        }
        if let Some(trace) = self.trace {
            return self.trace_plan(trace);
        }
        if let Some(ramp) = self.ramp {
            return self.ramp_plan(ramp);
        }
        let sustained = self.sustained();
        let warmup = self.warmup.unwrap_or(Duration::ZERO);
        if sustained && self.batch_sizes.is_some() {
            return Err(invalid(
                "--batch_sizes is for bursts; with --max_concurrency or --request_rate the levels are those values",
            ));
        }
        if !sustained {
            refuse_any(
                &[
                    ("--num_requests", self.num_requests.is_some()),
                    ("--duration", self.duration.is_some()),
                    ("--warmup_seconds", !warmup.is_zero()),
                    ("--arrival", self.arrival.is_some()),
                    ("--burstiness", self.burstiness.is_some()),
                    ("--at_end", self.at_end.is_some()),
                    ("--snapshot_every", self.snapshot_every.is_some()),
                ],
                |flag| {
                    format!(
                        "{flag} needs a sustained load: give --max_concurrency or --request_rate"
                    )
                },
            )?;
        }
        let at_end = self.at_end.unwrap_or_default();
        if at_end == AtEnd::Cancel && self.duration.is_none() {
            return Err(invalid("--at_end cancel needs --duration"));
        }
        let adaptive = self.adaptive_plan()?;
        let levels = match (&self.request_rate, &self.max_concurrency) {
            _ if adaptive.is_some() => {
                // What the experiment may run: concurrency 1 and its largest closed loop, and
                // uncapped open loops.
                let open = self.open_levels(&[1.0], None, warmup)?;
                let top = self
                    .max_concurrency
                    .as_ref()
                    .and_then(|c| c.iter().max().copied());
                [1, top.unwrap_or(DEFAULT_SATURATION_CONCURRENCY)]
                    .into_iter()
                    .map(|concurrency| Shape::Closed { concurrency })
                    .chain(open)
                    .collect()
            }
            (Some(rates), cap) => self.open_levels(rates, cap.as_deref(), warmup)?,
            (None, Some(concurrencies)) => {
                if self.arrival.is_some() || self.burstiness.is_some() {
                    return Err(invalid(
                        "--arrival and --burstiness shape an open loop: give --request_rate",
                    ));
                }
                concurrencies
                    .iter()
                    .map(|&concurrency| Shape::Closed { concurrency })
                    .collect()
            }
            (None, None) => self
                .batch_sizes
                .as_deref()
                .unwrap_or(&DEFAULT_BATCH_SIZES)
                .iter()
                .map(|&batch| Shape::Burst { batch })
                .collect(),
        };
        if levels.is_empty() {
            return Err(invalid("no load level given"));
        }
        let num_runs = self.num_runs.unwrap_or(if sustained { 1 } else { 3 });
        if num_runs == 0 {
            return Err(invalid("--num_runs must be at least 1"));
        }
        if self.num_requests == Some(0) {
            return Err(invalid("--num_requests must be at least 1"));
        }
        Ok(LoadPlan {
            levels,
            limits: Limits {
                num_requests: self.num_requests,
                duration: self.duration,
                warmup,
                at_end,
            },
            num_runs,
            snapshot_every: self.snapshot_every,
            adaptive,
        })
    }

    /// The sweep or search the flags ask for, checked against the load flags.
    fn adaptive_plan(&self) -> Result<Option<Adaptive>> {
        let open = match self.open_levels(&[1.0], None, Duration::ZERO)?.first() {
            Some(Shape::Open(o)) => OpenTemplate {
                arrival: o.arrival,
                burstiness: o.burstiness,
            },
            _ => return Err(invalid("no open loop")),
        };
        let plan = self.experiment.plan(
            self.batch_sizes.is_some(),
            self.max_concurrency.as_deref(),
            self.request_rate.as_deref(),
            open,
            self.confidence.unwrap_or(0.95),
        )?;
        if let Some(r) = self.request_rate.as_deref().filter(|_| plan.is_some()) {
            self.open_levels(r, None, Duration::ZERO)?;
        }
        Ok(plan)
    }

    fn open_levels(
        &self,
        rates: &[f64],
        cap: Option<&[u64]>,
        warmup: Duration,
    ) -> Result<Vec<Shape>> {
        let cap = match cap {
            None => None,
            Some([one]) => Some(*one),
            Some(_) => {
                return Err(invalid(
                    "--max_concurrency with --request_rate is one cap on requests in flight, not a list",
                ))
            }
        };
        let arrival = match (self.arrival, self.burstiness) {
            (Some(a), _) => a,
            (None, Some(_)) => Arrival::Gamma,
            (None, None) => Arrival::Poisson,
        };
        if self.burstiness.is_some() && arrival != Arrival::Gamma {
            return Err(invalid(format!(
                "--burstiness shapes gamma arrivals; it means nothing with --arrival {}",
                arrival.name()
            )));
        }
        let burstiness = self.burstiness.unwrap_or(1.0);
        if !(burstiness.is_finite() && burstiness > 0.0) {
            return Err(invalid(format!(
                "--burstiness {burstiness} must be a positive number"
            )));
        }
        for &rate in rates {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(invalid(format!(
                    "--request_rate {rate} is not a positive number of requests per second"
                )));
            }
            // Every arrival of a level is scheduled up front: keep the schedule a sane size.
            if let Some(d) = self.duration {
                let arrivals = rate * (d + warmup).as_secs_f64();
                if arrivals > MAX_SCHEDULED {
                    return Err(invalid(format!(
                        "--request_rate {rate} for {} s schedules {arrivals:.0} requests, more than {MAX_SCHEDULED:.0}; shorten --duration",
                        (d + warmup).as_secs_f64()
                    )));
                }
            }
        }
        Ok(rates
            .iter()
            .map(|&rate| {
                Shape::Open(OpenLoop {
                    rate,
                    arrival,
                    burstiness,
                    max_concurrency: cap,
                    ramp: None,
                })
            })
            .collect())
    }
}

/// Checks what a chat request asks for: a model tag that is not blank, and goodput objectives
/// that the responses can show (TTFT and TPOT need streamed responses).
pub fn check_requests(model: Option<&str>, goodput: Option<&Slo>, stream: bool) -> Result<()> {
    if model.is_some_and(|m| m.trim().is_empty()) {
        return Err(invalid(
            "--model is empty: give the model tag the server serves",
        ));
    }
    if goodput.is_some_and(|g| g.needs_stream()) && !stream {
        return Err(invalid(
            "--goodput ttft and tpot objectives need --stream (only a stream shows when tokens arrive)",
        ));
    }
    Ok(())
}

/// Checks what an experiment needs of the rest: an SLO search reads streamed latencies and sets
/// the goodput objectives itself.
pub fn check_experiment(adaptive: Option<&Adaptive>, goodput: bool, stream: bool) -> Result<()> {
    if let Some(Adaptive::Search(_)) = adaptive {
        if !stream {
            return Err(invalid(
                "--slo judges streamed latencies (TTFT, TPOT, ITL, E2EL): add --stream",
            ));
        }
        if goodput {
            return Err(invalid(
                "--slo counts the requests that meet its objectives itself: leave out --goodput",
            ));
        }
    }
    Ok(())
}

/// Checks that aborts on purpose (`--cancel_rate`) have a sustained load to abort requests of.
pub fn check_aborts(aborts: bool, sustained: bool) -> Result<()> {
    if aborts && !sustained {
        return Err(invalid(
            "--cancel_rate aborts requests of a closed or open loop: give --max_concurrency, \
             --request_rate or --ramp",
        ));
    }
    Ok(())
}

/// Checks that probes (`--probe_rate`) have a sustained load to run beside.
pub fn check_probes(probes: bool, sustained: bool) -> Result<()> {
    if probes && !sustained {
        return Err(invalid(
            "--probe_rate sends probes beside a closed or open loop: give --max_concurrency, \
             --request_rate or --ramp",
        ));
    }
    Ok(())
}

/// Checks what the per-request file is asked for: token times need the file, and streamed
/// responses (only a stream shows when each token arrived).
pub fn check_records(token_times: bool, requests_file: bool, stream: bool) -> Result<()> {
    if token_times && !requests_file {
        return Err(invalid(
            "--token_times adds token times to the per-request file: give --requests_file too",
        ));
    }
    if token_times && !stream {
        return Err(invalid(
            "--token_times needs --stream (only a stream shows when each token arrives)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(flags: LoadFlags, words: &str) {
        match flags.plan() {
            Err(Error::Invalid(m)) => assert!(m.contains(words), "{m}"),
            other => panic!("expected a refusal naming {words:?}, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_original_bursts() {
        let plan = LoadFlags::default().plan().unwrap();
        let batches: Vec<u64> = plan
            .levels
            .iter()
            .filter_map(|s| match s {
                Shape::Burst { batch } => Some(*batch),
                _ => None,
            })
            .collect();
        assert_eq!(batches, DEFAULT_BATCH_SIZES);
        assert_eq!(plan.num_runs, 3);
        assert_eq!(plan.limits, Limits::default());
    }

    #[test]
    fn loops_and_their_limits() {
        let closed = LoadFlags {
            max_concurrency: Some(vec![8, 64]),
            duration: Some(Duration::from_secs(30)),
            warmup: Some(Duration::from_secs(5)),
            ..LoadFlags::default()
        }
        .plan()
        .unwrap();
        assert_eq!(
            closed.levels,
            vec![
                Shape::Closed { concurrency: 8 },
                Shape::Closed { concurrency: 64 }
            ]
        );
        assert_eq!(closed.num_runs, 1);
        assert_eq!(closed.limits.warmup, Duration::from_secs(5));
        let open = LoadFlags {
            request_rate: Some(vec![2.5]),
            max_concurrency: Some(vec![16]),
            burstiness: Some(0.5),
            ..LoadFlags::default()
        }
        .plan()
        .unwrap();
        assert_eq!(
            open.levels,
            vec![Shape::Open(OpenLoop {
                rate: 2.5,
                arrival: Arrival::Gamma,
                burstiness: 0.5,
                max_concurrency: Some(16),
                ramp: None,
            })]
        );
        let ramp: Ramp = "linear:1,9,30".parse().unwrap();
        let ramped = LoadFlags {
            ramp: Some(ramp),
            max_concurrency: Some(vec![8]),
            ..LoadFlags::default()
        }
        .plan()
        .unwrap();
        assert_eq!(
            ramped.levels,
            vec![Shape::Open(OpenLoop {
                rate: 5.0,
                arrival: Arrival::Poisson,
                burstiness: 1.0,
                max_concurrency: Some(8),
                ramp: Some(ramp),
            })]
        );
        assert_eq!(ramped.limits.duration, Some(Duration::from_secs(30)));
        assert_eq!(ramped.levels[0].key(), "1..9");
        for (flags, flag) in [
            (
                LoadFlags {
                    request_rate: Some(vec![2.0]),
                    ..LoadFlags::default()
                },
                "--request_rate",
            ),
            (
                LoadFlags {
                    duration: Some(Duration::from_secs(5)),
                    ..LoadFlags::default()
                },
                "--duration",
            ),
        ] {
            refused(
                LoadFlags {
                    ramp: Some(ramp),
                    ..flags
                },
                flag,
            );
        }
    }

    #[test]
    fn flags_that_do_not_go_together_are_refused() {
        let secs = |s| Some(Duration::from_secs(s));
        refused(
            LoadFlags {
                batch_sizes: Some(vec![1]),
                max_concurrency: Some(vec![4]),
                ..LoadFlags::default()
            },
            "--batch_sizes is for bursts",
        );
        refused(
            LoadFlags {
                duration: secs(5),
                ..LoadFlags::default()
            },
            "needs a sustained load",
        );
        refused(
            LoadFlags {
                max_concurrency: Some(vec![4]),
                at_end: Some(AtEnd::Cancel),
                ..LoadFlags::default()
            },
            "--at_end cancel needs --duration",
        );
        refused(
            LoadFlags {
                max_concurrency: Some(vec![4]),
                arrival: Some(Arrival::Gamma),
                ..LoadFlags::default()
            },
            "--request_rate",
        );
        refused(
            LoadFlags {
                request_rate: Some(vec![5.0]),
                max_concurrency: Some(vec![2, 4]),
                ..LoadFlags::default()
            },
            "one cap",
        );
        refused(
            LoadFlags {
                request_rate: Some(vec![5.0]),
                arrival: Some(Arrival::Constant),
                burstiness: Some(2.0),
                ..LoadFlags::default()
            },
            "--burstiness",
        );
        refused(
            LoadFlags {
                request_rate: Some(vec![1e6]),
                duration: secs(365 * 24 * 3600),
                ..LoadFlags::default()
            },
            "shorten --duration",
        );
        refused(
            LoadFlags {
                num_runs: Some(0),
                ..LoadFlags::default()
            },
            "--num_runs",
        );
    }
}
