//! Every server fault is a counted, named failure, the run goes on, and the file is written.
//! Each case faults every other request (one per burst of two), and checks the kind, the first
//! message, that the good requests still succeeded, the file and the exit code.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tokenomics_testkit::{Fault, Script, ScriptedServer};

/// A fault case: name, streamed?, the fault, extra flags, the expected kind and message.
struct Case {
    name: &'static str,
    stream: bool,
    fault: Fault,
    extra: Vec<&'static str>,
    kind: &'static str,
    message: &'static str,
}

fn case(
    name: &'static str,
    stream: bool,
    fault: Fault,
    extra: Vec<&'static str>,
    kind: &'static str,
    message: &'static str,
) -> Case {
    Case {
        name,
        stream,
        fault,
        extra,
        kind,
        message,
    }
}

fn run(api_base: &str, stream: bool, extra: &[&str]) -> (Option<i32>, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("faults.json");
    let mut args = vec![
        "--model",
        "test-model",
        "--dataset_key",
        "synthetic",
        "--api_base",
        api_base,
    ];
    args.extend([
        "--batch_sizes",
        "2",
        "--num_runs",
        "2",
        "--warmup_runs",
        "0",
        "--max_tokens",
        "4",
    ]);
    args.extend(["--results_file", out.to_str().unwrap()]);
    if stream {
        args.push("--stream");
    }
    args.extend(extra);
    // The run's own failure counting is tested here, so the preflight (which would stop at the
    // first refused connection) is off; preflight.rs tests it.
    let o = Command::new(env!("CARGO_BIN_EXE_oai-bench"))
        .arg("--no_preflight")
        .args(&args)
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    let doc: Value =
        serde_json::from_slice(&std::fs::read(&out).expect("the file is written")).unwrap();
    (
        o.status.code(),
        doc,
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_is_counted_by_kind_and_the_run_goes_on() {
    let cases = vec![
        case(
            "500",
            false,
            Fault::Status(500),
            vec![],
            "http_status",
            "HTTP 500: scripted failure 500",
        ),
        case(
            "429",
            false,
            Fault::RateLimited(1),
            vec![],
            "http_status",
            "HTTP 429",
        ),
        case(
            "body not JSON",
            false,
            Fault::BrokenJson,
            vec![],
            "bad_response",
            "not a completion",
        ),
        case(
            "event not JSON",
            true,
            Fault::BrokenJson,
            vec![],
            "bad_stream",
            "not valid JSON",
        ),
        case(
            "body cut short",
            true,
            Fault::CutAfter(2),
            vec![],
            "io",
            "body broken",
        ),
        case(
            "error event",
            true,
            Fault::ErrorEventAfter(1),
            vec![],
            "server_error_event",
            "scripted error event",
        ),
        case(
            "no [DONE]",
            true,
            Fault::EndWithoutDone(2),
            vec![],
            "bad_stream",
            "without [DONE]",
        ),
        case(
            "no headers",
            false,
            Fault::DelayHeaders(Duration::from_secs(3)),
            vec!["--timeout", "0.5"],
            "timeout",
            "waiting for response headers",
        ),
        case(
            "stalled stream",
            true,
            Fault::StallAfter(2, Duration::from_secs(3)),
            vec!["--idle_timeout", "0.3"],
            "timeout",
            "stream idle",
        ),
    ];
    for Case {
        name,
        stream,
        fault,
        extra,
        kind,
        message,
    } in cases
    {
        let f = fault.clone();
        let server = ScriptedServer::start(move |i, _| Script {
            fault: if i % 2 == 1 { f.clone() } else { Fault::None },
            ttft: Duration::from_millis(5),
            itl: Duration::from_millis(1),
            ..Script::default()
        })
        .await;
        let (code, doc, stdout) = run(&server.api_base(), stream, &extra);
        let req = &doc["results"]["2"]["requests"];
        assert_eq!(code, Some(3), "{name}: some requests failed\n{stdout}");
        assert_eq!(req["succeeded"], 2, "{name}: the run went on");
        assert_eq!(req["failed"], 2, "{name}");
        assert_eq!(req["errors"][kind]["count"], 2, "{name}: {req}");
        let first = req["errors"][kind]["first_message"].as_str().unwrap();
        assert!(first.contains(message), "{name}: {first}");
        assert!(
            stdout.contains(&format!("{kind} × 2")),
            "{name}: the summary names the kind\n{stdout}"
        );
        assert_eq!(
            doc["results"]["2"]["tokens"]["output_per_request"]["mean"], 4.0,
            "{name}: statistics from the successes"
        );
    }
}

#[test]
fn unresolvable_names_and_tls_failures_are_connect_failures() {
    let (code, doc, _) = run("http://nonexistent.invalid:8000/v1", false, &[]);
    assert_eq!(code, Some(4));
    let e = &doc["results"]["2"]["requests"]["errors"]["connect"];
    assert_eq!(e["count"], 4);
    assert!(
        e["first_message"]
            .as_str()
            .unwrap()
            .contains("name resolution failed"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_a_plain_server_is_a_connect_failure() {
    let server = ScriptedServer::uniform(Script::default()).await;
    let https = server.api_base().replace("http://", "https://");
    let (code, doc, _) = run(&https, false, &[]);
    assert_eq!(code, Some(4));
    let e = &doc["results"]["2"]["requests"]["errors"]["connect"];
    assert!(
        e["first_message"]
            .as_str()
            .unwrap()
            .contains("TLS handshake failed"),
        "{e}"
    );
    assert_eq!(server.requests(), 0);
}
