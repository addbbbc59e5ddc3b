#!/usr/bin/env bash
# Issue #23's check that the crates are usable as a library: writes a new crate outside the
# workspace (in a temporary directory, its own `[workspace]`) that depends on tokenomics-bench and
# tokenomics-sim by path, runs a closed-loop benchmark against the in-process simulator in under
# 30 lines of Rust, and prints a figure from the returned document. Fails when it does not build,
# does not run, or prints no figure.
#
# It resolves offline from a copy of this checkout's Cargo.lock (every crate it needs is one the
# workspace already uses) and builds into this checkout's target directory, so the crates it
# shares with the workspace's release build are not compiled again.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT

mkdir -p "$dir/src"
cat > "$dir/Cargo.toml" <<TOML
[package]
name = "tokenomics-external-check"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
tokenomics-bench = { path = "$root/crates/tokenomics-bench" }
tokenomics-sim = { path = "$root/crates/tokenomics-sim" }
tokio = { version = "1", features = ["rt-multi-thread", "macros"] }

# Not a member of the checkout's workspace: a crate of its own, as a user's would be.
[workspace]
TOML

cat > "$dir/src/main.rs" <<'RUST'
use tokenomics_bench::ChatExperiment;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A simulated server on a free loopback port, then four requests kept in flight.
    let (server, model) = tokenomics_sim::start_local("instant", None, 1.0, 42).await?;
    let doc = ChatExperiment::builder(server.api_base(), model)
        .closed_loop([4])
        .num_requests(40)
        .max_tokens(16)
        .stream(true)
        .build()?
        .run()
        .await?;
    let level = &doc.results["4"];
    let failed = level.requests.as_ref().map_or(u64::MAX, |r| r.failed);
    if failed != 0 {
        return Err(format!("{failed} requests failed").into());
    }
    let tokens_per_s = level.throughput.batch_tokens_per_second.mean;
    let ttft = level.latency.as_ref().map_or(f64::NAN, |l| l.ttft.p50);
    println!("output tokens/s: {tokens_per_s:.1}, TTFT p50: {:.3} ms", ttft * 1e3);
    Ok(())
}
RUST

lines=$(wc -l < "$dir/src/main.rs")
if (( lines >= 30 )); then
    echo "the external crate's main.rs has $lines lines, not under 30" >&2
    exit 1
fi
cp "$root/Cargo.lock" "$dir/Cargo.lock"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
out=$(cd "$dir" && cargo run --release --offline -q)
echo "$out"
grep -qE '^output tokens/s: [0-9]+\.[0-9], TTFT p50: [0-9]+\.[0-9]{3} ms$' <<<"$out" || {
    echo "the external crate printed no figure from its document" >&2
    exit 1
}
echo "external crate: $lines lines of Rust, built against the library crates by path, ran"
