//! Probe requests (`--probe_rate`): small requests (one output token) on a Poisson schedule of
//! their own, sent beside a sustained level's load and outside any concurrency cap, each on an
//! idle connection of its own. Their latency is what a newcomer meets under that load: the
//! queue in front of a request the size of a health check.
//!
//! The schedule is drawn as it goes (there is no end to plan for: the probes stop when the
//! level's load stops) from a seeded generator, and kept on an absolute clock, never "from now".

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};
use tokenomics_client::{Client, Clock, Connection, Endpoint, RequestRecord};
use tokenomics_stats::ProbeBlock;

use crate::metrics::Samples;
use crate::shutdown::Shutdown;

/// How long a probe in flight may still finish after the load stopped.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// What the probes send and how often.
#[derive(Clone)]
pub struct ProbePlan {
    /// Probes per second.
    pub rate: f64,
    /// Bodies to send in turn (each asks for one output token).
    pub bodies: Arc<Vec<Bytes>>,
    /// The route the probes go to (the benchmark's).
    pub endpoint: Endpoint,
    /// Whether the probes are streamed, so that their time to first token is measured.
    pub stream: bool,
    /// Seeds the probes' Poisson schedule: the same seed sends them at the same offsets.
    pub seed: u64,
    /// When the schedule starts, on the clock: a run on a timetable starts at its time, and
    /// sends no probe while it waits for it. `None`: now.
    pub start_ns: Option<u64>,
}

/// Probes being sent; [`Probes::stop`] ends them and returns their records.
pub struct Probes {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Vec<RequestRecord>>,
}

impl Probes {
    /// Starts sending probes (now, or at `plan.start_ns`); a probe the shutdown abandons is not
    /// reported.
    pub fn start(plan: ProbePlan, client: Client, clock: Clock, shutdown: Shutdown) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let idle: Arc<Mutex<Vec<Connection>>> = Arc::default();
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
            let Ok(gap) = Exp::new(plan.rate) else {
                return Vec::new();
            };
            let start = plan
                .start_ns
                .map_or_else(Instant::now, |ns| clock.instant_at(ns).max(Instant::now()));
            let mut at = 0.0f64;
            for k in 0usize.. {
                at += gap.sample(&mut rng);
                let Some(due) = start.checked_add(Duration::from_secs_f64(at.min(1e9))) else {
                    break;
                };
                tokio::select! {
                    biased;
                    _ = stopped.changed() => break,
                    _ = tokio::time::sleep_until(due.into()) => {}
                }
                if shutdown.is_stopping() {
                    break;
                }
                let Some(body) = plan.bodies.get(k % plan.bodies.len().max(1)).cloned() else {
                    break;
                };
                let (idle, tx, client, shutdown, mut stopped) = (
                    idle.clone(),
                    tx.clone(),
                    client.clone(),
                    shutdown.clone(),
                    stopped.clone(),
                );
                let (endpoint, stream) = (plan.endpoint, plan.stream);
                tokio::spawn(async move {
                    let mut conn = idle
                        .lock()
                        .ok()
                        .and_then(|mut v| v.pop())
                        .unwrap_or_else(|| client.connection());
                    // A probe still out when the load stops gets a short grace, not the whole
                    // request timeout: it must not hold the level's end.
                    let give_up = async {
                        let _ = stopped.wait_for(|&s| s).await;
                        tokio::time::sleep(STOP_GRACE).await;
                    };
                    let done = tokio::select! {
                        done = shutdown.run(conn.completion(endpoint, stream, body, &clock)) => done,
                        _ = give_up => None,
                    };
                    if let Some(record) = done {
                        if let Ok(mut v) = idle.lock() {
                            v.push(conn);
                        }
                        let _ = tx.send(record);
                    }
                });
            }
            drop(tx);
            let mut records = Vec::new();
            while let Some(r) = rx.recv().await {
                records.push(r);
            }
            records
        });
        Self { stop, task }
    }

    /// Stops sending; waits for the probes in flight (at most [`STOP_GRACE`]) and returns the
    /// record of every probe that finished.
    pub async fn stop(self) -> Vec<RequestRecord> {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

/// The `probes` block of probes' records (`None`: none was sent).
pub fn block(rate: f64, records: &[RequestRecord], confidence: Option<f64>) -> Option<ProbeBlock> {
    if records.is_empty() {
        return None;
    }
    let (mut ttft, mut e2el) = (Samples::new(usize::MAX), Samples::new(usize::MAX));
    let mut succeeded = 0;
    for r in records.iter().filter(|r| r.is_ok()) {
        succeeded += 1;
        if let Some(t) = r.timing.ttft_s() {
            ttft.push(t);
        }
        if let Some(e) = r.timing.e2e_s() {
            e2el.push(e);
        }
    }
    Some(ProbeBlock {
        rate,
        sent: records.len() as u64,
        succeeded,
        failed: records.len() as u64 - succeeded,
        ttft: (ttft.count() > 0).then(|| ttft.distribution(confidence)),
        e2el: e2el.distribution(confidence),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenomics_client::ClientConfig;
    use tokenomics_testkit::{Script, ScriptedServer};

    #[tokio::test]
    async fn a_run_on_a_timetable_sends_no_probe_before_its_start() {
        let server = ScriptedServer::uniform(Script {
            tokens: Some(1),
            ..Script::default()
        })
        .await;
        let client = Client::new(ClientConfig::new(server.api_base())).unwrap();
        let clock = Clock::start();
        // The run starts 400 ms from now; probes at 50/s would have sent some 20 by then.
        let start_ns = clock.now_ns() + 400_000_000;
        let plan = ProbePlan {
            rate: 50.0,
            bodies: Arc::new(vec![Bytes::from_static(
                br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1}"#,
            )]),
            endpoint: Endpoint::Chat,
            stream: true,
            seed: 7,
            start_ns: Some(start_ns),
        };
        let probes = Probes::start(plan, client, clock, Shutdown::new(Duration::from_secs(1)));
        tokio::time::sleep(Duration::from_millis(800)).await;
        let records = probes.stop().await;
        // 400 ms at 50/s: 20 expected; a Poisson count below 5 is all but impossible.
        assert!(records.len() >= 5, "{} probes", records.len());
        for r in &records {
            assert!(
                r.timing.send_ns >= start_ns,
                "sent {} ns early",
                start_ns - r.timing.send_ns
            );
        }
    }
}
