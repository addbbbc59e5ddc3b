//! `--html`: the report alone, or beside an image in the same invocation; and the report of a
//! streamed sweep opened in headless Chromium (skipped, with a message, where none is installed).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_plot-throughput"))
}

fn asset(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../assets")
        .join(name)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_report_alone_takes_every_positional_argument_as_a_result_file() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.html");
    let o = bin()
        .arg(asset("example_chat_h100.json"))
        .arg(asset("example_chat_a100.json"))
        .arg("--html")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("(2 figures, 2 result files)"), "{stdout}");
    let html = std::fs::read_to_string(&report).unwrap();
    assert_eq!(html.matches("<section class=\"file\"").count(), 2);
    assert_eq!(html.matches("<svg ").count(), 2);
    // No image was asked for, and none was written.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn an_image_and_a_report_are_both_written() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("out.png");
    let report = dir.path().join("out.html");
    let o = bin()
        .arg(asset("example_embeddings.json"))
        .arg(&png)
        .arg("--html")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    assert!(std::fs::read_to_string(&report)
        .unwrap()
        .contains("<th scope=\"col\">embeddings/s</th>"));

    // --frontier changes the image only; the report has every figure it can draw.
    let svg = dir.path().join("frontier.svg");
    let o = bin()
        .arg(asset("sweep_h100.json"))
        .args(["--frontier", "-o"])
        .arg(&svg)
        .arg("--html")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&svg)
        .unwrap()
        .contains("Throughput against interactivity"));
    let html = std::fs::read_to_string(&report).unwrap();
    assert_eq!(html.matches("<svg ").count(), 2);
}

#[test]
fn a_report_path_that_is_not_html_is_refused_before_anything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("keep.json");
    std::fs::write(&target, b"keep").unwrap();
    let o = bin()
        .arg(asset("example_chat_h100.json"))
        .arg("--html")
        .arg(&target)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("must end in .html"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&target).unwrap(), b"keep");
}

/// Debian's `chromium` (or another Chromium or Chrome on the PATH), or `$CHROMIUM`.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
    .find(|p| p.is_file())
}

/// Runs headless Chromium on `url` with `args`, within a minute; its stdout (through a file: a
/// page's DOM is more than a pipe holds).
fn headless(browser: &Path, profile: &Path, args: &[&str], url: &str) -> String {
    let stdout = profile.with_extension("stdout");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("{} did not finish within a minute", browser.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{} failed: {status}", browser.display());
    std::fs::read_to_string(&stdout).unwrap()
}

#[test]
fn the_report_of_a_streamed_sweep_opens_in_headless_chromium() {
    let Some(browser) = chromium() else {
        eprintln!(
            "skipped: no Chromium found (install Debian's `chromium`, or set CHROMIUM to a \
             Chromium or Chrome binary) to open the HTML report in a headless browser"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("sweep.html");
    let o = bin()
        .arg(asset("sweep_h100.json"))
        .arg("--html")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let url = format!("file://{}", report.display());
    let profile = dir.path().join("profile");

    // The DOM as the browser built it: every figure and the summary table are in it.
    let dom = headless(&browser, &profile, &["--dump-dom"], &url);
    assert_eq!(dom.matches("<svg ").count(), 2, "two figures in the DOM");
    assert!(dom.contains("<table class=\"summary\">"));
    assert!(dom.contains("<td>llama-3.1-8b</td>") || dom.contains("<dd>llama-3.1-8b</dd>"));

    // And a screenshot of it: a PNG of the window's size with more than one colour in it.
    let shot = dir.path().join("shot.png");
    headless(
        &browser,
        &profile,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,1600",
        ],
        &url,
    );
    let bytes = std::fs::read(&shot).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    assert_eq!((be(&bytes[16..20]), be(&bytes[20..24])), (1280, 1600));
    // A blank page compresses to a few kilobytes; figures and text do not.
    assert!(bytes.len() > 50_000, "{} bytes: a blank page?", bytes.len());
}
