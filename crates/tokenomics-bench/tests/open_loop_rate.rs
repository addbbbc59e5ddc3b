//! The open loop's schedule at 500 requests/s for 10 s against a scripted loopback server. Alone
//! in its test binary, so no other test competes for the cores while it measures, and on a
//! runtime whose threads ask to be woken on time, as `oai-bench`'s do.

mod common;

use std::time::{Duration, Instant};

use common::{config, run};
use tokenomics_bench::load::{Arrival, Limits, OpenLoop, Shape};
use tokenomics_stats::{Load, Mode};
use tokenomics_testkit::{Script, ScriptedServer};

#[test]
fn open_loop_keeps_its_schedule_at_500_requests_per_second() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(tokenomics_bench::sustained::keep_time)
        .enable_all()
        .build()
        .unwrap()
        .block_on(measure());
}

async fn measure() {
    let server = ScriptedServer::uniform(Script {
        ttft: Duration::from_millis(5),
        itl: Duration::from_millis(1),
        tokens: Some(4),
        ..Script::default()
    })
    .await;
    let open = OpenLoop {
        ramp: None,
        rate: 500.0,
        arrival: Arrival::Poisson,
        burstiness: 1.0,
        max_concurrency: None,
    };
    let limits = Limits {
        duration: Some(Duration::from_secs(10)),
        ..Limits::default()
    };
    let cfg = config(&server.api_base(), vec![Shape::Open(open)], limits, true);
    let started = Instant::now();
    let doc = run(cfg).await;
    assert!(started.elapsed() < Duration::from_secs(13));
    let level = &doc.results["500"];
    let schedule = level.load.as_ref().and_then(Load::schedule).unwrap();
    let scheduled = schedule.scheduled_rate.unwrap().mean;
    let achieved = schedule.achieved_rate.unwrap().mean;
    let lag = schedule.send_lag.as_ref().unwrap();
    eprintln!(
        "scheduled {scheduled:.1}/s, achieved {achieved:.1}/s, send lag p50 {:.3} ms p99 {:.3} ms max {:.3} ms",
        lag.p50 * 1e3,
        lag.p99 * 1e3,
        lag.max * 1e3
    );
    // A Poisson count over 10 s varies by ~1.4% around 500/s; the client must keep the schedule
    // it drew to within 2%.
    assert!((scheduled - 500.0).abs() < 500.0 * 0.05, "{scheduled}");
    assert!(
        (achieved - scheduled).abs() < scheduled * 0.02,
        "{achieved}"
    );
    // Send lag: the median must be well under a millisecond's scale; the tail is a figure of the
    // machine as much as of the client (on the shared two-core CI machine the p99 ranged
    // 0.4–8 ms between runs of the same build), so its target (2 ms here, 1 ms at 2,000/s) is
    // measured by `tokenomics-perf`, not asserted; here only a gross failure (a dispatcher that
    // falls behind its schedule) fails the test.
    assert!(lag.p50 < 0.002, "p50 send lag {} ms", lag.p50 * 1e3);
    assert!(lag.p99 < 0.025, "p99 send lag {} ms", lag.p99 * 1e3);
    assert!(lag.min >= 0.0, "never early: {}", lag.min);
    let counts = level.requests.as_ref().unwrap();
    assert_eq!(counts.failed, 0);
    assert_eq!(counts.succeeded, server.requests());
    assert_eq!(doc.metadata.mode, Some(Mode::OpenLoop));
    assert_eq!(doc.metadata.arrival.unwrap().process, Arrival::Poisson);
    // Latency from the scheduled time is the latency plus the lag.
    let lat = level.latency.as_ref().unwrap();
    let from_schedule = lat.ttft_from_schedule.as_ref().unwrap();
    assert!(from_schedule.mean >= lat.ttft.mean);
    assert!(from_schedule.mean - lat.ttft.mean < 0.002);
}
