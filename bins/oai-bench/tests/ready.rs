//! `--wait_ready`: a server that starts listening 3 s after the run began is waited for, and the
//! run then succeeds, saying how long it waited; one that never listens ends the run with exit 1
//! and one line naming the URL and the last error, when the wait is over (not before, and not
//! more than 3 s after: the last probe and the process's exit fit in that margin); a wait that is
//! not a positive number of seconds up to a year is refused in one line.

use std::process::Output;
use std::time::{Duration, Instant};
use tokenomics_testkit::cli::one_request;

const BIN: &str = env!("CARGO_BIN_EXE_oai-bench");

use tokenomics_sim::{SimConfig, Simulator};

/// Runs oai-bench (a burst of 1, no warm-up) waiting up to `wait` seconds, and how long it took.
fn oai_bench(api_base: &str, wait: &str, out: &std::path::Path) -> (Output, Duration) {
    let started = Instant::now();
    let o = one_request(BIN.as_ref(), api_base, "fixed", out)
        .args(["--wait_ready", wait])
        .output()
        .unwrap();
    (o, started.elapsed())
}

#[test]
fn a_server_that_listens_late_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    // A free port, released; the simulator takes it 3 s from now.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let cfg = SimConfig::preset("fixed").unwrap();
            let _server = Simulator::start(cfg, addr).await.unwrap();
            std::future::pending::<()>().await;
        });
    });
    let api_base = format!("http://{addr}/v1");
    let (o, took) = oai_bench(&api_base, "30", &out);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("server ready after "))
        .unwrap_or_else(|| panic!("no readiness line in {stdout}"));
    let waited: f64 = line
        .trim_start_matches("server ready after ")
        .trim_end_matches(" s")
        .parse()
        .unwrap();
    assert!((2.9..10.0).contains(&waited), "{line}");
    assert!(took >= Duration::from_secs(3), "{took:?}");
    assert!(out.exists());
}

#[test]
fn a_server_that_never_listens_ends_the_run_in_one_line_when_the_wait_is_over() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let api_base = tokenomics_testkit::refused_api_base();
    let (o, took) = oai_bench(&api_base, "2", &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    let expected =
        format!("oai-bench: error: server at {api_base} not ready after 2 s: cannot connect to ");
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "took {took:?}"
    );
    assert!(!out.exists());
}

#[test]
fn hostile_waits_are_refused_in_one_line() {
    let checked = tokenomics_testkit::cli::assert_refused(
        std::path::Path::new(env!("CARGO_BIN_EXE_oai-bench")),
        &[
            "--model",
            "m",
            "--dataset_key",
            "synthetic",
            "--api_base",
            "http://127.0.0.1:9/v1",
        ],
        &[tokenomics_testkit::cli::NumericFlag::new("--wait_ready")],
    );
    assert_eq!(checked, tokenomics_testkit::cli::HOSTILE.len());
}
