//! Sharded load: one run spread over N processes (machines), each taking its part of one global
//! plan.
//!
//! Every shard computes the whole plan from the seed — the open loop's schedule, the sequence of
//! prompts — and takes its part: arrival (or prompt) `i` belongs to shard `i mod N`; a closed
//! loop's concurrency `C` is split `⌊C/N⌋` with the remainder to the first shards, and so is a
//! request count. So the union of the shards sends exactly the requests one machine would have
//! sent, at the same times, and their per-request records can be merged into it
//! ([`crate::merge`]). One difference remains: an open loop's cap on requests in flight
//! (`--max_concurrency` with `--request_rate`) is split like a concurrency, so N shards queue on
//! N separate pools where one machine would share one (slot waits differ near saturation). All shards start each run
//! at one wall-clock time (`--start_at` plus the runs before it), so sharded levels are timed
//! (`--duration`): a burst, which must leave from one place at once, is not sharded.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use crate::{Error, Result};

/// This process's part: shard `index` (0-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This process's shard, from 0 to `count − 1`.
    pub index: u32,
    /// Shards the run is spread over, at least 1 (at most [`MAX_SHARDS`]).
    pub count: u32,
}

/// The most shards a run may have.
pub const MAX_SHARDS: u32 = 10_000;

impl Shard {
    /// Shard `index` of `count`, checked.
    pub fn new(index: u32, count: u32) -> Result<Self> {
        if count == 0 || count > MAX_SHARDS {
            return Err(Error::Invalid(format!(
                "{count} shards: give from 1 to {MAX_SHARDS}"
            )));
        }
        if index >= count {
            return Err(Error::Invalid(format!(
                "shard {index} of {count}: shards are numbered from 0 to {}",
                count - 1
            )));
        }
        Ok(Self { index, count })
    }

    /// The shard an environment gives: a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX` with
    /// `TOKENOMICS_SHARDS`, or srun's `SLURM_PROCID` with `SLURM_NTASKS`; `None` when neither is
    /// set. `var` reads a variable (the process environment, or a test's).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let pairs = [
            ("JOB_COMPLETION_INDEX", "TOKENOMICS_SHARDS"),
            ("SLURM_PROCID", "SLURM_NTASKS"),
        ];
        for (index_var, count_var) in pairs {
            let Some(index) = var(index_var) else {
                // A count without an index is a Job that is not Indexed (or a task outside
                // srun): every process would be shard 0 and send the whole load.
                if var(count_var).is_some() {
                    return Err(Error::Invalid(format!(
                        "{count_var} is set but {index_var} is not: each shard needs its index \
                         (an Indexed Job sets JOB_COMPLETION_INDEX, srun sets SLURM_PROCID), or \
                         give --shard I/N"
                    )));
                }
                continue;
            };
            let Some(count) = var(count_var) else {
                return Err(Error::Invalid(format!(
                    "{index_var} is set but {count_var} is not: say how many shards there are"
                )));
            };
            let number = |name: &str, v: &str| {
                v.trim()
                    .parse::<u32>()
                    .map_err(|_| Error::Invalid(format!("{name}={v:?} is not a whole number")))
            };
            return Self::new(number(index_var, &index)?, number(count_var, &count)?).map(Some);
        }
        Ok(None)
    }

    /// Whether item `i` of the global sequence belongs to this shard.
    pub fn takes(&self, i: u64) -> bool {
        i % u64::from(self.count) == u64::from(self.index)
    }

    /// This shard's items of a global sequence (a schedule of arrivals): every N-th, in order.
    pub fn keep<T>(&self, items: Vec<T>) -> Vec<T> {
        items
            .into_iter()
            .enumerate()
            .filter(|(i, _)| self.takes(*i as u64))
            .map(|(_, t)| t)
            .collect()
    }

    /// This shard's part of `n` (a concurrency, a request count): `⌊n/N⌋`, plus one for each of
    /// the first `n mod N` shards.
    pub fn part(&self, n: u64) -> u64 {
        let count = u64::from(self.count);
        n / count + u64::from(u64::from(self.index) < n % count)
    }

    /// The file stem of this shard's results: `shard-I-of-N`.
    pub fn stem(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }

    /// This shard's result document and records in `dir`: `shard-I-of-N.json` and `.jsonl`.
    pub fn paths(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let stem = self.stem();
        (
            dir.join(format!("{stem}.json")),
            dir.join(format!("{stem}.jsonl")),
        )
    }

    /// The shard a command line runs: `--shard` when given; with a results directory and no
    /// `--shard`, the environment's ([`Shard::from_env`]), else 0 of 1; without one, none — a
    /// process that merely runs under srun or in a Job is not a shard unless it writes shard
    /// results.
    pub fn resolve(
        given: Option<Shard>,
        results_dir: bool,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>> {
        match (given, results_dir) {
            (Some(_), false) => Err(Error::Invalid(
                "--shard needs --results_dir: the merge reads every shard's results from there"
                    .into(),
            )),
            (Some(s), true) => Ok(Some(s)),
            (None, true) => Ok(Some(
                Self::from_env(var)?.unwrap_or(Self { index: 0, count: 1 }),
            )),
            (None, false) => Ok(None),
        }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = Error;

    /// `I/N`, e.g. `0/4`.
    fn from_str(s: &str) -> Result<Self> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| Error::Invalid(format!("{s:?} is not I/N (e.g. 0/4)")))?;
        let number = |v: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| Error::Invalid(format!("{s:?} is not I/N (e.g. 0/4)")))
        };
        Self::new(number(i)?, number(n)?)
    }
}

/// When each run of a sharded (or `--start_at`) benchmark starts: the first at `start`, each
/// later one after the previous run's warm-up, duration and `gap` (time for requests in flight
/// at the end to finish, and for the next level's warm-up requests).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timetable {
    /// When the first run starts, on the wall clock (every shard reads its own, so their clocks
    /// must agree).
    pub start: SystemTime,
    /// Warm-up + duration of every run (sharded levels are timed).
    pub run_length: Duration,
    /// Between one run's end and the next run's start.
    pub gap: Duration,
}

impl Timetable {
    /// When run `k` (counted over every level, in order) starts.
    pub fn run_start(&self, k: u32) -> Option<SystemTime> {
        let step = self.run_length.checked_add(self.gap)?;
        self.start.checked_add(step.checked_mul(k)?)
    }
}

/// How far ahead `--start_at` may be: a start further ahead is taken for a mistake.
pub const MAX_START_AHEAD: Duration = Duration::from_secs(7 * 24 * 3600);

/// Parses a Unix time in seconds (fractional allowed) for `--start_at`: at most
/// [`MAX_START_AHEAD`] from now (a time in the past is allowed: the run starts at once, late).
pub fn unix_time(s: &str) -> Result<SystemTime> {
    let secs: f64 = s
        .trim()
        .parse()
        .ok()
        .filter(|x: &f64| x.is_finite() && *x > 0.0 && *x < 1e11)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{s:?} is not a Unix time in seconds (e.g. {:.0})",
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64())
            ))
        })?;
    let d = Duration::try_from_secs_f64(secs).map_err(|e| Error::Invalid(e.to_string()))?;
    let at = SystemTime::UNIX_EPOCH
        .checked_add(d)
        .ok_or_else(|| Error::Invalid(format!("{s:?} is too far in the future")))?;
    if at
        .duration_since(SystemTime::now())
        .is_ok_and(|ahead| ahead > MAX_START_AHEAD)
    {
        return Err(Error::Invalid(format!(
            "--start_at {s} is more than {} days ahead",
            MAX_START_AHEAD.as_secs() / 86_400
        )));
    }
    Ok(at)
}

/// The wall-clock time as Unix seconds.
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// This machine's name (a Kubernetes pod's name, a Slurm node's), for the shard's metadata.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// 64-bit FNV-1a: a stable hash (the same on every machine and version) of a configuration.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_add_up_and_every_item_has_one_shard() {
        for n_shards in 1..=7u32 {
            let shards: Vec<Shard> = (0..n_shards)
                .map(|i| Shard::new(i, n_shards).unwrap())
                .collect();
            for n in [0u64, 1, 5, 64, 1001] {
                assert_eq!(shards.iter().map(|s| s.part(n)).sum::<u64>(), n);
            }
            for i in 0..100 {
                assert_eq!(shards.iter().filter(|s| s.takes(i)).count(), 1);
            }
        }
        assert_eq!(Shard::new(0, 4).unwrap().part(10), 3);
        assert_eq!(Shard::new(3, 4).unwrap().part(10), 2);
        // Every N-th item of a sequence, in order, as many as its part.
        let items: Vec<u64> = (0..10).collect();
        assert_eq!(Shard::new(1, 4).unwrap().keep(items.clone()), [1, 5, 9]);
        assert_eq!(Shard::new(3, 4).unwrap().keep(items).len() as u64, 2);
    }

    #[test]
    fn shards_from_flags_and_environments() {
        assert_eq!(
            "2/4".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 4 }
        );
        for bad in ["4/4", "1/0", "x/2", "2", "-1/3", "1/99999"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let k8s = Shard::from_env(env(&[
            ("JOB_COMPLETION_INDEX", "3"),
            ("TOKENOMICS_SHARDS", "8"),
        ]));
        assert_eq!(k8s.unwrap(), Some(Shard { index: 3, count: 8 }));
        let slurm = Shard::from_env(env(&[("SLURM_PROCID", "1"), ("SLURM_NTASKS", "2")]));
        assert_eq!(slurm.unwrap(), Some(Shard { index: 1, count: 2 }));
        assert_eq!(Shard::from_env(env(&[])).unwrap(), None);
        assert!(Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "0")])).is_err());
        // A Job that is not Indexed: every pod would be shard 0 of 1 with the whole load.
        let e = Shard::from_env(env(&[("TOKENOMICS_SHARDS", "4")])).unwrap_err();
        assert!(e.to_string().contains("JOB_COMPLETION_INDEX is not"), "{e}");
        assert!(Shard::resolve(None, true, env(&[("SLURM_NTASKS", "2")])).is_err());
        assert!(Shard::from_env(env(&[("SLURM_PROCID", "5"), ("SLURM_NTASKS", "2")])).is_err());
        // Only a process that writes shard results is a shard.
        let slurm = env(&[("SLURM_PROCID", "1"), ("SLURM_NTASKS", "2")]);
        assert_eq!(Shard::resolve(None, false, slurm).unwrap(), None);
        assert_eq!(
            Shard::resolve(None, true, slurm).unwrap(),
            Some(Shard { index: 1, count: 2 })
        );
        assert_eq!(
            Shard::resolve(None, true, env(&[])).unwrap(),
            Some(Shard { index: 0, count: 1 })
        );
        assert!(Shard::resolve(Some(Shard { index: 0, count: 2 }), false, env(&[])).is_err());
    }

    #[test]
    fn runs_follow_each_other_on_the_timetable() {
        let t = Timetable {
            start: unix_time("1700000000.5").unwrap(),
            run_length: Duration::from_secs(30),
            gap: Duration::from_secs(10),
        };
        let k2 = t.run_start(2).unwrap();
        assert!((unix_seconds(k2) - 1_700_000_080.5).abs() < 1e-6);
        // A month ahead is a mistake; a time in the past starts at once (late).
        let month = unix_seconds(SystemTime::now()) + 30.0 * 86_400.0;
        assert!(unix_time(&format!("{month}"))
            .unwrap_err()
            .to_string()
            .contains("days ahead"));
        assert!(unix_time("1000000000").is_ok());
        for bad in ["", "-5", "nan", "1e300", "99999999999", "yesterday"] {
            assert!(unix_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_hash_is_fnv1a() {
        // The published test vectors of 64-bit FNV-1a.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
