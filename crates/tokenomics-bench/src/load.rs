//! Load shapes: how requests are released.
//!
//! - **Burst** (the original's): B requests at once, wait for all, repeat.
//! - **Closed loop**: keep C requests in flight; a request starts the moment one ends.
//! - **Open loop**: requests start on a schedule of arrival times computed up front from the seed
//!   (Poisson, constant or gamma inter-arrival times), whatever the server does; optionally capped
//!   by a maximum number in flight, in which case a request waits in the client for a slot.
//!
//! A sustained (closed or open) level stops after `num_requests` measured requests and/or
//! `duration`; a warm-up phase at the same load comes first and is excluded from the statistics.

use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma};
pub use tokenomics_stats::{Arrival, AtEnd, Mode};
use tokenomics_stats::{LimitsBlock, Load, RampBlock, ScheduleBlock};

/// An open-loop arrival process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenLoop {
    /// Requests per second (a ramp's mean rate).
    pub rate: f64,
    /// The process the inter-arrival times are drawn from (Poisson, constant, gamma, or a
    /// replayed trace's own times).
    pub arrival: Arrival,
    /// The gamma shape (1 for Poisson; ignored for constant).
    pub burstiness: f64,
    /// At most this many requests in flight; later arrivals wait for a slot.
    pub max_concurrency: Option<u64>,
    /// A rate that changes linearly through the level instead of `rate` throughout.
    pub ramp: Option<Ramp>,
}

/// An open loop's rate rising (or falling) linearly from `from` to `to` requests/s over
/// `seconds` (`--ramp linear:FROM,TO,SECONDS`). Arrivals follow the inhomogeneous process of that
/// rate: the arrival process's gaps are drawn at rate 1 and mapped through the inverse of the
/// cumulative rate, Λ(t) = from·t + (to − from)·t²/(2·seconds), so Poisson stays Poisson and a
/// constant process sends at exactly the rate of each moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    /// The rate when the loop starts (warm-up included), requests/s.
    pub from: f64,
    /// The rate at the ramp's end, requests/s.
    pub to: f64,
    /// The ramp's length from the loop's start, seconds; no arrival is scheduled after it.
    pub seconds: f64,
}

impl Ramp {
    /// The mean rate over the ramp, requests/s.
    pub fn mean_rate(&self) -> f64 {
        (self.from + self.to) / 2.0
    }

    /// The rate `t` seconds into the ramp.
    pub fn rate_at(&self, t: f64) -> f64 {
        self.from + (self.to - self.from) * (t / self.seconds).clamp(0.0, 1.0)
    }

    /// When the cumulative rate reaches `u` arrivals, seconds (the inverse of Λ).
    fn time_of(&self, u: f64) -> f64 {
        if u <= 0.0 {
            return 0.0;
        }
        let a = (self.to - self.from) / (2.0 * self.seconds);
        if a.abs() < 1e-12 * self.from.max(self.to) {
            return u / self.from;
        }
        // a·t² + from·t − u = 0; the root that is ≥ 0 (written to stay exact when a is small).
        2.0 * u / (self.from + (self.from * self.from + 4.0 * a * u).max(0.0).sqrt())
    }

    /// The ramp as the documents record it.
    pub fn block(&self) -> RampBlock {
        RampBlock {
            from_rate: self.from,
            to_rate: self.to,
            seconds: self.seconds,
        }
    }
}

impl std::str::FromStr for Ramp {
    type Err = crate::Error;

    /// `linear:FROM,TO,SECONDS`: rates in requests/s (at least one above 0, none below), seconds
    /// above 0.
    fn from_str(s: &str) -> crate::Result<Self> {
        let bad = || {
            crate::Error::Invalid(format!(
                "--ramp {s:?}: expected linear:FROM,TO,SECONDS (requests/s at the start and the \
                 end, and the seconds between), e.g. linear:1,20,60"
            ))
        };
        let rest = s.trim().strip_prefix("linear:").ok_or_else(bad)?;
        let parts: Vec<f64> = rest
            .split(',')
            .map(|p| p.trim().parse::<f64>().map_err(|_| bad()))
            .collect::<crate::Result<_>>()?;
        let [from, to, seconds] = parts[..] else {
            return Err(bad());
        };
        let rate_ok = |r: f64| (0.0..=1e6).contains(&r);
        if !(rate_ok(from) && rate_ok(to) && from.max(to) > 0.0) {
            return Err(bad());
        }
        if !(seconds.is_finite() && seconds > 0.0 && seconds <= 31_536_000.0) {
            return Err(bad());
        }
        Ok(Ramp { from, to, seconds })
    }
}

/// One level of load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// B requests at once, `num_runs` times.
    Burst {
        /// Requests sent at once.
        batch: u64,
    },
    /// C requests kept in flight.
    Closed {
        /// Requests kept in flight.
        concurrency: u64,
    },
    /// Requests on a schedule.
    Open(OpenLoop),
}

impl Shape {
    /// The mode, as written in `metadata.mode`.
    pub fn mode(&self) -> Mode {
        match self {
            Shape::Burst { .. } => Mode::Burst,
            Shape::Closed { .. } => Mode::ClosedLoop,
            Shape::Open(_) => Mode::OpenLoop,
        }
    }

    /// The in-flight count the level aims at, for its steady state: the batch size or the
    /// concurrency (`None` for an open loop, whose target is measured).
    pub fn target_in_flight(&self) -> Option<f64> {
        match self {
            Shape::Burst { batch } => Some(*batch as f64),
            Shape::Closed { concurrency } => Some(*concurrency as f64),
            Shape::Open(_) => None,
        }
    }

    /// The most requests this level keeps in flight (`None`: an uncapped open loop, bounded by
    /// its arrivals only).
    pub fn max_in_flight(&self) -> Option<u64> {
        match self {
            Shape::Burst { batch } => Some(*batch),
            Shape::Closed { concurrency } => Some(*concurrency),
            Shape::Open(o) => o.max_concurrency,
        }
    }

    /// The level's `load` block: its shape, its limits (sustained loads) and what an open
    /// loop's schedule achieved.
    pub fn load_block(&self, limits: &Limits, schedule: ScheduleBlock) -> Load {
        match self {
            Shape::Burst { batch } => Load::Burst { batch_size: *batch },
            Shape::Closed { concurrency } => Load::ClosedLoop {
                max_concurrency: *concurrency,
                limits: limits.block(),
            },
            Shape::Open(o) => Load::OpenLoop {
                request_rate: o.rate,
                arrival: o.arrival,
                burstiness: o.burstiness,
                max_concurrency: o.max_concurrency,
                ramp: o.ramp.as_ref().map(Ramp::block),
                limits: limits.block(),
                schedule,
            },
        }
    }

    /// The level's key in `results`: the batch size, the concurrency, or the request rate.
    pub fn key(&self) -> String {
        match self {
            Shape::Burst { batch } => batch.to_string(),
            Shape::Closed { concurrency } => concurrency.to_string(),
            Shape::Open(OpenLoop { ramp: Some(r), .. }) => {
                format!("{}..{}", format_rate(r.from), format_rate(r.to))
            }
            Shape::Open(OpenLoop {
                arrival: Arrival::Trace,
                ..
            }) => "trace".into(),
            Shape::Open(o) => format_rate(o.rate),
        }
    }

    /// How the level is named to people: "batch size 8", "concurrency 64", "2.5 requests/s".
    pub fn title(&self) -> String {
        match self {
            Shape::Burst { batch } => format!("batch size {batch}"),
            Shape::Closed { concurrency } => format!("concurrency {concurrency}"),
            Shape::Open(OpenLoop { ramp: Some(r), .. }) => format!(
                "{} → {} requests/s over {} s",
                format_rate(r.from),
                format_rate(r.to),
                format_rate(r.seconds)
            ),
            Shape::Open(OpenLoop {
                arrival: Arrival::Trace,
                rate,
                ..
            }) => format!(
                "trace replay ({} requests/s on average)",
                crate::report::num(*rate)
            ),
            Shape::Open(o) => format!("{} requests/s", format_rate(o.rate)),
        }
    }

    /// The number this level is about: batch size, concurrency, or rate (for seeds and display).
    pub fn level_number(&self) -> f64 {
        match self {
            Shape::Burst { batch } => *batch as f64,
            Shape::Closed { concurrency } => *concurrency as f64,
            Shape::Open(o) => o.rate,
        }
    }

    /// A whole number that identifies the level in seeds (rates are taken in milli-requests/s).
    pub fn seed_level(&self) -> u64 {
        match self {
            Shape::Burst { batch } => *batch,
            Shape::Closed { concurrency } => *concurrency,
            Shape::Open(o) => (o.rate * 1000.0).round() as u64,
        }
    }
}

/// A rate as a key: `10`, `2.5`, `0.25` (no trailing zeros).
pub fn format_rate(rate: f64) -> String {
    let s = format!("{rate:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// When a sustained level stops, and its warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    /// Measured requests (after the warm-up).
    pub num_requests: Option<u64>,
    /// Measured time (after the warm-up): no request is sent after it.
    pub duration: Option<Duration>,
    /// Load at the level's shape before measuring; requests sent in it are not measured.
    pub warmup: Duration,
    /// What happens to requests still in flight when the measured time is over.
    pub at_end: AtEnd,
}

impl Limits {
    /// These limits, or — when neither a request count nor a duration is given — 10 measured
    /// requests per unit of `shape` (per slot of a closed loop, per request/s of an open one:
    /// about ten seconds of arrivals), at least 20.
    pub fn or_default_count(mut self, shape: &Shape) -> Self {
        if self.num_requests.is_none() && self.duration.is_none() {
            // `as` saturates: a huge level asks for u64::MAX requests, bounded by its duration.
            self.num_requests = Some(((shape.level_number() * 10.0).ceil() as u64).max(20));
        }
        self
    }

    /// The limits as the documents record them.
    pub fn block(&self) -> LimitsBlock {
        LimitsBlock {
            num_requests: self.num_requests,
            duration_seconds: self.duration.map(|d| d.as_secs_f64()),
            warmup_seconds: self.warmup.as_secs_f64(),
            at_end: self.at_end,
        }
    }
}

/// The arrival times of an open loop, in nanoseconds after its start: every arrival in the
/// warm-up, then measured arrivals until `limits` says stop (`num_requests` of them, or the last
/// before `warmup + duration`). Returns (times, number of warm-up arrivals). The same seed gives
/// the same schedule. Without a request count or a duration there is no end: the schedule is
/// empty ([`crate::ChatConfig::limits_for`] always gives one of them).
pub fn schedule(open: &OpenLoop, limits: &Limits, seed: u64) -> (Vec<u64>, usize) {
    if limits.num_requests.is_none() && limits.duration.is_none() {
        return (Vec::new(), 0);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // A ramp draws its gaps at rate 1 and maps them onto its own clock.
    let mean = if open.ramp.is_some() {
        1.0
    } else {
        1.0 / open.rate
    };
    let gamma = match open.arrival {
        // A trace's times are the trace's (see `crate::ChatConfig::trace`), not drawn.
        Arrival::Trace => return (Vec::new(), 0),
        Arrival::Constant => None,
        Arrival::Poisson => Gamma::new(1.0, mean).ok(),
        Arrival::Gamma => Gamma::new(open.burstiness, mean / open.burstiness).ok(),
    };
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let warmup_ns = nanos(limits.warmup);
    let end_ns = limits.duration.map(|d| warmup_ns.saturating_add(nanos(d)));
    let mut times = Vec::new();
    let mut warm = 0usize;
    // The first request leaves at once; each later one after a drawn gap.
    let mut t = 0.0f64;
    loop {
        let at_s = match &open.ramp {
            // Past the ramp's end (a rate of 0 at the end never gets there): no more arrivals.
            Some(r) => match r.time_of(t) {
                x if x.is_finite() && x < r.seconds => x,
                _ => break,
            },
            None => t,
        };
        let at = (at_s * 1e9).round() as u64;
        if end_ns.is_some_and(|e| at >= e) {
            break;
        }
        if at < warmup_ns {
            warm += 1;
        } else if limits
            .num_requests
            .is_some_and(|n| (times.len() - warm) as u64 >= n)
        {
            break;
        }
        times.push(at);
        let gap = match &gamma {
            Some(g) => g.sample(&mut rng),
            None => mean,
        };
        t += gap;
    }
    (times, warm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(rate: f64, arrival: Arrival, burstiness: f64) -> OpenLoop {
        OpenLoop {
            rate,
            arrival,
            burstiness,
            max_concurrency: None,
            ramp: None,
        }
    }

    #[test]
    fn a_ramp_sends_at_the_rate_of_each_moment() {
        let ramp: Ramp = "linear:10,50,20".parse().unwrap();
        let limits = Limits {
            duration: Some(Duration::from_secs(20)),
            ..Limits::default()
        };
        let ramped = |arrival| OpenLoop {
            ramp: Some(ramp),
            ..open(ramp.mean_rate(), arrival, 1.0)
        };
        // Constant: exactly Λ(t) arrivals by t; Λ(20) = 10·20 + 40·400/40 = 600.
        let (t, warm) = schedule(&ramped(Arrival::Constant), &limits, 1);
        assert_eq!(warm, 0);
        assert_eq!(t.len(), 600);
        let secs = |ns: u64| ns as f64 / 1e9;
        // The k-th arrival (from 0) is at Λ⁻¹(k).
        let lambda = |x: f64| 10.0 * x + x * x;
        for (k, &at) in t.iter().enumerate() {
            assert!((lambda(secs(at)) - k as f64).abs() < 1e-6, "{k}: {at}");
        }
        // Poisson: arrivals per 5 s window follow the rate (expected 62.5, 112.5, 162.5, 212.5).
        let (t, _) = schedule(&ramped(Arrival::Poisson), &limits, 9);
        let windows: Vec<usize> = (0..4)
            .map(|w| {
                t.iter()
                    .filter(|&&x| (w as f64 * 5.0..(w + 1) as f64 * 5.0).contains(&secs(x)))
                    .count()
            })
            .collect();
        for (n, expected) in windows.iter().zip([62.5, 112.5, 162.5, 212.5]) {
            // Four standard deviations of a Poisson count.
            assert!(
                (*n as f64 - expected).abs() < 4.0 * expected.sqrt(),
                "{windows:?}"
            );
        }
        assert!(t.iter().all(|&x| secs(x) < 20.0));
        // Down to 0: the last arrivals thin out and none comes after the end.
        let down = OpenLoop {
            ramp: Some("linear:20,0,10".parse().unwrap()),
            ..open(10.0, Arrival::Constant, 1.0)
        };
        let (t, _) = schedule(
            &down,
            &Limits {
                duration: Some(Duration::from_secs(10)),
                ..Limits::default()
            },
            1,
        );
        assert_eq!(t.len(), 100);
        // Up from 0: Λ(10) = 20·100/20 = 100 arrivals, the first at once.
        let up = OpenLoop {
            ramp: Some("linear:0,20,10".parse().unwrap()),
            ..open(10.0, Arrival::Constant, 1.0)
        };
        let (t, _) = schedule(
            &up,
            &Limits {
                duration: Some(Duration::from_secs(10)),
                ..Limits::default()
            },
            1,
        );
        assert_eq!(t.len(), 100);
        assert_eq!(t[0], 0);
        // Λ(t) = t²: the k-th arrival at √k seconds.
        assert!((secs(t[25]) - 5.0).abs() < 1e-6, "{}", t[25]);
    }

    #[test]
    fn ramps_parse_or_are_refused() {
        let r: Ramp = " linear: 1, 20 ,60".parse().unwrap();
        assert_eq!((r.from, r.to, r.seconds), (1.0, 20.0, 60.0));
        assert_eq!(r.mean_rate(), 10.5);
        assert_eq!(r.rate_at(30.0), 10.5);
        for bad in [
            "1,20,60",
            "linear:1,20",
            "linear:0,0,5",
            "linear:-1,5,5",
            "linear:1,5,0",
            "exp:1,2,3",
        ] {
            assert!(bad.parse::<Ramp>().is_err(), "{bad}");
        }
    }

    #[test]
    fn constant_schedule_is_exact() {
        let limits = Limits {
            num_requests: Some(5),
            warmup: Duration::from_millis(250),
            ..Limits::default()
        };
        let (t, warm) = schedule(&open(10.0, Arrival::Constant, 1.0), &limits, 1);
        assert_eq!(warm, 3); // 0, 100, 200 ms
        assert_eq!(t.len(), 8);
        assert_eq!(t[3], 300_000_000);
        assert_eq!(t[7], 700_000_000);
    }

    #[test]
    fn duration_bounds_the_schedule() {
        let limits = Limits {
            duration: Some(Duration::from_secs(2)),
            ..Limits::default()
        };
        let (t, warm) = schedule(&open(100.0, Arrival::Poisson, 1.0), &limits, 7);
        assert_eq!(warm, 0);
        assert!(t.iter().all(|&x| x < 2_000_000_000));
        // 200 expected; a Poisson count has std sqrt(200) ≈ 14.
        assert!((140..260).contains(&t.len()), "{}", t.len());
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
        // Seeded: the same schedule again, another with another seed.
        assert_eq!(
            t,
            schedule(&open(100.0, Arrival::Poisson, 1.0), &limits, 7).0
        );
        assert_ne!(
            t,
            schedule(&open(100.0, Arrival::Poisson, 1.0), &limits, 8).0
        );
    }

    #[test]
    fn gamma_burstiness_changes_the_spread_not_the_mean() {
        let limits = Limits {
            num_requests: Some(20_000),
            ..Limits::default()
        };
        for (b, cv) in [(0.25, 2.0), (1.0, 1.0), (4.0, 0.5)] {
            let (t, _) = schedule(&open(50.0, Arrival::Gamma, b), &limits, 3);
            let gaps: Vec<f64> = t.windows(2).map(|w| (w[1] - w[0]) as f64 / 1e9).collect();
            let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
            let var =
                gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / (gaps.len() - 1) as f64;
            // Gamma(k): coefficient of variation 1/sqrt(k).
            assert!((mean - 0.02).abs() < 0.02 * 0.05, "b={b} mean {mean}");
            assert!((var.sqrt() / mean - cv).abs() < cv * 0.1, "b={b}");
        }
    }

    #[test]
    fn poisson_gaps_pass_a_kolmogorov_smirnov_test() {
        // 5,000 gaps at 500 requests/s against the exponential CDF 1 − e^(−rate·x). The critical
        // value at the 1% level is 1.63/sqrt(n); the seed fixes the schedule, so this is a check
        // of the generator, not a flaky draw.
        let limits = Limits {
            num_requests: Some(5_001),
            ..Limits::default()
        };
        for seed in [42, 7, 2026] {
            let (t, _) = schedule(&open(500.0, Arrival::Poisson, 1.0), &limits, seed);
            let mut gaps: Vec<f64> = t.windows(2).map(|w| (w[1] - w[0]) as f64 / 1e9).collect();
            gaps.sort_by(f64::total_cmp);
            let n = gaps.len() as f64;
            let d = gaps
                .iter()
                .enumerate()
                .map(|(i, &x)| {
                    let cdf = 1.0 - (-500.0 * x).exp();
                    (cdf - i as f64 / n)
                        .abs()
                        .max(((i + 1) as f64 / n - cdf).abs())
                })
                .fold(0.0, f64::max);
            assert!(d < 1.63 / n.sqrt(), "seed {seed}: D = {d}");
        }
    }

    #[test]
    fn rates_make_keys() {
        assert_eq!(format_rate(10.0), "10");
        assert_eq!(format_rate(2.5), "2.5");
        assert_eq!(format_rate(0.125), "0.125");
    }
}
