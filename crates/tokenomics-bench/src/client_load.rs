//! Whether the client itself may have held a level back: the benchmark process's CPU time over
//! the level against its worker threads, and the share of the machine's CPU time the hypervisor
//! stole meanwhile (a virtual machine's vCPU that is not run for a while looks like a late
//! client). Each level records both in its `client_load` block, with a warning when either is
//! high, which the consoles print, so a figure the client may have bent is not read as the
//! server's.

use std::time::Instant;

use tokenomics_stats::ClientLoadBlock;

/// The client's process used at least this share of its worker threads' CPU time: it may have
/// been the bottleneck.
pub const BUSY_SHARE: f64 = 0.9;
/// The hypervisor stole at least this share of the machine's CPU time.
pub const STOLEN_SHARE: f64 = 0.05;
/// Levels shorter than this are not judged: start-up and the first connections weigh too much.
const MIN_SECONDS: f64 = 1.0;

/// The machine's CPU time so far, from `/proc/stat`, in clock ticks over all CPUs: how much was
/// stolen by the hypervisor, and all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    /// Ticks stolen (the `steal` column).
    pub steal: u64,
    /// Ticks of every kind (user, nice, system, idle, iowait, irq, softirq, steal).
    pub total: u64,
}

impl CpuTimes {
    /// Now, or none where `/proc/stat` cannot be read (not Linux).
    pub fn now() -> Option<CpuTimes> {
        CpuTimes::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// The `cpu` line of `/proc/stat`: user nice system idle iowait irq softirq steal (guest time
    /// is already in user and nice).
    pub fn parse(stat: &str) -> Option<CpuTimes> {
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let ticks: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        (ticks.len() == 8).then(|| CpuTimes {
            steal: ticks[7],
            total: ticks.iter().sum(),
        })
    }

    /// The share of the CPU time from `before` to `self` that was stolen (0–1); none when no time
    /// passed.
    pub fn stolen_since(&self, before: &CpuTimes) -> Option<f64> {
        let total = self.total.checked_sub(before.total).filter(|&t| t > 0)?;
        Some(self.steal.saturating_sub(before.steal) as f64 / total as f64)
    }
}

/// This process's CPU time so far (user + system, every thread), in seconds.
fn process_cpu_seconds() -> Option<f64> {
    // SAFETY: a zeroed rusage is a valid value; getrusage fills it for this process.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(secs(usage.ru_utime) + secs(usage.ru_stime))
}

/// What one level cost the client's machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientLoad {
    /// Seconds the level took.
    pub seconds: f64,
    /// The process's CPU seconds per second of the level (user + system, all threads).
    pub cpu_cores: Option<f64>,
    /// The share of the machine's CPU time the hypervisor stole during the level (0–1).
    pub stolen: Option<f64>,
}

impl ClientLoad {
    /// One line per reason to doubt the level's timings: the process busy for at least
    /// [`BUSY_SHARE`] of `workers` threads (`None`: not judged — a simulator in the same process
    /// counts in its CPU time), or at least [`STOLEN_SHARE`] of the machine's time stolen. None for
    /// a level shorter than a second.
    pub fn warnings(&self, workers: Option<usize>) -> Vec<String> {
        let mut out = Vec::new();
        if self.seconds < MIN_SECONDS {
            return out;
        }
        if let (Some(cores), Some(workers)) = (self.cpu_cores, workers) {
            if cores >= BUSY_SHARE * workers as f64 {
                out.push(format!(
                    "the client used {cores:.2} CPU cores over this level with {workers} worker \
                     thread(s): it may have been the bottleneck, and its timings late \
                     (give it more with --n_cores, or run it from more machines)"
                ));
            }
        }
        if let Some(stolen) = self.stolen.filter(|&s| s >= STOLEN_SHARE) {
            out.push(format!(
                "the hypervisor took {:.1}% of this machine's CPU time during this level (steal): \
                 the client may have read and sent late",
                stolen * 100.0
            ));
        }
        out
    }

    /// The level's `client_load` block: these figures, and their warnings judged against
    /// `workers` threads — the CPU time not judged when `simulator_in_process` (a simulated
    /// server in the same process counts in it).
    pub fn block(&self, workers: usize, simulator_in_process: bool) -> ClientLoadBlock {
        ClientLoadBlock {
            seconds: self.seconds,
            cpu_cores: self.cpu_cores,
            worker_threads: workers,
            stolen_share: self.stolen,
            simulator_in_process,
            warnings: self.warnings((!simulator_in_process).then_some(workers)),
        }
    }
}

/// The worker threads of the runtime this runs on (`None` outside a runtime).
pub fn runtime_workers() -> Option<usize> {
    tokio::runtime::Handle::try_current()
        .ok()
        .map(|h| h.metrics().num_workers())
}

/// Watches one level from its start.
#[derive(Debug, Clone, Copy)]
pub struct LoadWatch {
    wall: Instant,
    cpu_s: Option<f64>,
    stat: Option<CpuTimes>,
}

impl LoadWatch {
    /// Starts watching now.
    pub fn start() -> LoadWatch {
        LoadWatch {
            wall: Instant::now(),
            cpu_s: process_cpu_seconds(),
            stat: CpuTimes::now(),
        }
    }

    /// What the level cost from the start to now.
    pub fn finish(&self) -> ClientLoad {
        let seconds = self.wall.elapsed().as_secs_f64();
        let cpu_cores = match (self.cpu_s, process_cpu_seconds()) {
            (Some(a), Some(b)) if seconds > 0.0 => Some((b - a).max(0.0) / seconds),
            _ => None,
        };
        let stolen = match (self.stat, CpuTimes::now()) {
            (Some(a), Some(b)) => b.stolen_since(&a),
            _ => None,
        };
        ClientLoad {
            seconds,
            cpu_cores,
            stolen,
        }
    }

    /// The level's `client_load` block from the start to now, judged against the worker threads
    /// of the runtime this runs on (one outside a runtime); see [`ClientLoad::block`].
    pub fn block(&self, simulator_in_process: bool) -> ClientLoadBlock {
        self.finish()
            .block(runtime_workers().unwrap_or(1), simulator_in_process)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_is_read_from_the_machines_cpu_line() {
        let stat = "cpu  100 5 50 800 10 1 2 32 7 0\ncpu0 50 2 25 400 5 0 1 16 0 0\n";
        let t = CpuTimes::parse(stat).unwrap();
        assert_eq!((t.steal, t.total), (32, 1000));
        assert!(CpuTimes::parse("cpu0 1 2 3 4 5 6 7 8\n").is_none());
        assert!(CpuTimes::parse("cpu  1 2 3\n").is_none());
        assert!(CpuTimes::parse("cpu  1 2 3 x 5 6 7 8\n").is_none());
        let later = CpuTimes {
            steal: 82,
            total: 2000,
        };
        assert_eq!(later.stolen_since(&t), Some(0.05));
        assert_eq!(t.stolen_since(&t), None, "no time passed");
    }

    #[test]
    fn a_busy_client_and_stolen_time_are_named_a_quiet_one_is_not() {
        let load = |cores, stolen| ClientLoad {
            seconds: 10.0,
            cpu_cores: Some(cores),
            stolen: Some(stolen),
        };
        assert!(load(0.4, 0.01).warnings(Some(1)).is_empty());
        let busy = load(0.95, 0.0).warnings(Some(1));
        assert_eq!(busy.len(), 1);
        assert!(busy[0].contains("0.95 CPU cores") && busy[0].contains("1 worker"));
        // Two workers: 0.95 cores is half of them.
        assert!(load(0.95, 0.0).warnings(Some(2)).is_empty());
        assert_eq!(load(1.9, 0.0).warnings(Some(2)).len(), 1);
        // Not judged (a simulator in the same process): steal only.
        assert!(load(3.0, 0.0).warnings(None).is_empty());
        let stolen = load(0.1, 0.123).warnings(None);
        assert_eq!(stolen.len(), 1);
        assert!(stolen[0].contains("12.3%"), "{stolen:?}");
        assert_eq!(load(1.0, 0.2).warnings(Some(1)).len(), 2);
        // Too short to judge.
        let short = ClientLoad {
            seconds: 0.5,
            ..load(1.0, 0.5)
        };
        assert!(short.warnings(Some(1)).is_empty());
    }

    #[test]
    fn the_block_keeps_the_figures_and_judges_cpu_only_outside_a_simulator() {
        let load = ClientLoad {
            seconds: 4.0,
            cpu_cores: Some(1.9),
            stolen: Some(0.07),
        };
        let b = load.block(2, false);
        assert_eq!(
            (b.seconds, b.cpu_cores, b.worker_threads, b.stolen_share),
            (4.0, Some(1.9), 2, Some(0.07))
        );
        assert!(!b.simulator_in_process);
        assert_eq!(b.warnings, load.warnings(Some(2)));
        assert_eq!(b.warnings.len(), 2, "busy and stolen");
        let simulated = load.block(2, true);
        assert!(simulated.simulator_in_process);
        assert_eq!(simulated.warnings, load.warnings(None));
        assert_eq!(simulated.warnings.len(), 1, "stolen only");
        let json = serde_json::to_value(&simulated).unwrap();
        assert_eq!(json["worker_threads"], 2);
        assert_eq!(json["simulator_in_process"], true);
        let quiet = ClientLoad {
            cpu_cores: None,
            stolen: None,
            ..load
        }
        .block(1, false);
        let json = serde_json::to_value(&quiet).unwrap();
        assert_eq!(
            json.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["seconds", "worker_threads"],
            "what is not known or not the case is left out"
        );
    }

    #[test]
    fn a_level_that_burns_cpu_is_measured_as_busy() {
        let watch = LoadWatch::start();
        // Spin for 1.2 s of wall time on this thread.
        let until = Instant::now() + std::time::Duration::from_millis(1200);
        let mut x = 0u64;
        while Instant::now() < until {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let load = watch.finish();
        assert!(load.seconds >= 1.2);
        #[cfg(target_os = "linux")]
        {
            // A shared machine may take some of the spin away; half of it is far above an idle
            // thread's share.
            let cores = load.cpu_cores.unwrap();
            assert!(cores > 0.5, "{cores}");
            assert!(load.stolen.is_some());
        }
    }
}
