"""Compares what each client measured with the simulator's truth log, request by request, prints
the numbers and checks them against stated bounds.

Joins: the OpenAI SDK's and AIPerf's requests carry an X-Request-Id header, which the truth log
records (`request_id`); oai-bench writes the response id `cmpl-sim-{id}` of each request.

Truth, per request (nanoseconds on the simulator's clock): TTFT = first token - arrival; ITL =
(last token - first token) / (tokens - 1).

Bounds, and why:
- Causality, every client, every request: a client's TTFT runs from before the server's arrival
  stamp to after its first-token stamp, so it is never below the truth (0.1 ms of slack for the
  two clocks' reads). Sending the role chunk on arrival, as oai-sim did before #22, puts a
  role-counting client ~60 ms below the truth at concurrency 16: this is what catches it.
- AIPerf: its own overhead, measured in the same run at concurrency 1 (o1 = mean of its TTFT minus
  the truth: building and sending the request in Python, handling the first chunk). At
  concurrency 16 a prefill step hands up to 16 first tokens to the client at once and it handles
  them one after another, so a request's TTFT can carry up to 16 requests' worth of that cost:
  mean TTFT error <= 16 x o1. Its ITL is (end - first content) / (output tokens - 1): at
  concurrency 1 the two stamps lag alike, |mean ITL error| <= o1 / 127. At concurrency 16 its
  end-of-request stamp lags its first-token stamp by tens of ms more (~25 ms measured: 16 streams
  end within one step and it finishes them one by one), which over 127 gaps is ~0.2 ms: the bound
  is 5% of the truth's ITL (~0.44 ms). o1 itself must stay under 10 ms, or the machine is too
  busy for the bounds to mean anything.
- The OpenAI SDK, one request at a time, TTFT taken at the first chunk it yields (the role chunk,
  as some of vLLM's benchmark clients count it): the first content chunk follows it within 1 ms
  on average (they are written back to back; before #22 it was a whole TTFT later), and the TTFT
  is at most 20 ms above the truth (httpx and pydantic: 3 ms measured on an idle machine, up to
  10 ms while two compilers ran beside it).
- oai-bench at concurrency 16: mean TTFT within 1 ms of the truth (issue #22's acceptance; it
  stamps bytes with the kernel's arrival time) once the server's own delay in reading the request
  (send_unix to arrival_unix, which grows when the machine is busy: 1.2 ms of error measured with
  compilers running) is taken out, and within 2 ms with it; pooled mean ITL within 0.1 ms.

Usage: compare.py TRACE_JSONL SDK_JSON AIPERF_C1_DIR AIPERF_C16_DIR OAI_BENCH_REQUESTS OAI_BENCH_RESULTS
"""

import json
import pathlib
import statistics
import sys

trace_path, sdk_path, ap1_dir, ap16_dir, bench_requests, bench_results = sys.argv[1:7]
trace = [json.loads(line) for line in open(trace_path)]
by_header = {t["request_id"]: t for t in trace if t.get("request_id")}
by_id = {f"cmpl-sim-{t['id']}": t for t in trace}
passed, failed, rows = 0, [], []


def check(name, ok, detail):
    global passed
    if ok:
        passed += 1
    else:
        failed.append(f"{name}: {detail}")


def truth_ttft(t):
    return (t["first_token_ns"] - t["arrival_ns"]) / 1e6


def truth_itl(t):
    tokens = t["token_ns"]
    return (tokens[-1] - tokens[0]) / 1e6 / (len(tokens) - 1)


def mean(values):
    return statistics.fmean(values)


def aiperf(directory):
    """(client TTFT, truth TTFT, client ITL, truth ITL) per request, ms."""
    out = []
    for line in open(pathlib.Path(directory) / "profile_export.jsonl"):
        r = json.loads(line)
        t = by_header[r["metadata"]["x_request_id"]]
        m = r["metrics"]
        out.append((m["time_to_first_token"]["value"], truth_ttft(t),
                    m["inter_token_latency"]["value"], truth_itl(t)))
    return out


def row(client, load, n, ttft, truth, itl, itl_truth):
    rows.append((client, load, n, ttft, truth, ttft - truth, itl, itl_truth))


def causal(name, pairs):
    worst = min(c - t for c, t in pairs)
    check(f"{name}: no TTFT below the truth", worst > -0.1, f"{worst:.3f} ms")


# The OpenAI SDK, one at a time, role chunk counted as the first token.
sdk = json.load(open(sdk_path))
sdk_pairs = [(s["ttft_ms"], truth_ttft(by_header[s["request_id"]])) for s in sdk["ttft"]]
causal("openai-sdk", sdk_pairs)
sdk_err = mean([c - t for c, t in sdk_pairs])
check("openai-sdk: mean TTFT error <= 20 ms", sdk_err <= 20.0, f"{sdk_err:.3f} ms")
role_to_content = mean([s["role_to_content_ms"] for s in sdk["ttft"]])
check("openai-sdk: the first content follows the role chunk within 1 ms", role_to_content < 1.0,
      f"{role_to_content:.3f} ms")
row("openai-sdk (first chunk)", "c=1", len(sdk_pairs), mean([c for c, _ in sdk_pairs]),
    mean([t for _, t in sdk_pairs]), None, None)

# AIPerf at concurrency 1 (its own overhead), then 16.
ap1, ap16 = aiperf(ap1_dir), aiperf(ap16_dir)
for name, records in (("aiperf c=1", ap1), ("aiperf c=16", ap16)):
    causal(name, [(r[0], r[1]) for r in records])
o1 = mean([r[0] - r[1] for r in ap1])
check("aiperf c=1: its overhead o1 < 10 ms", o1 < 10.0, f"{o1:.3f} ms")
itl1 = mean([r[2] - r[3] for r in ap1])
check("aiperf c=1: |ITL error| <= o1 / 127", abs(itl1) <= o1 / 127, f"{itl1:.4f} ms vs {o1 / 127:.4f}")
err16 = mean([r[0] - r[1] for r in ap16])
check("aiperf c=16: mean TTFT error <= 16 x o1", err16 <= 16 * o1, f"{err16:.3f} ms vs {16 * o1:.3f}")
itl16 = mean([r[2] - r[3] for r in ap16])
itl16_truth = mean([r[3] for r in ap16])
check("aiperf c=16: |ITL error| <= 5% of the truth", abs(itl16) <= 0.05 * itl16_truth,
      f"{itl16:.4f} ms vs {0.05 * itl16_truth:.4f}")
for name, records in (("aiperf", ap1), ("aiperf", ap16)):
    row(name, f"c={1 if records is ap1 else 16}", len(records), mean([r[0] for r in records]),
        mean([r[1] for r in records]), mean([r[2] for r in records]), mean([r[3] for r in records]))

# oai-bench at concurrency 16.
bench, read_delay = [], []
for line in open(bench_requests):
    r = json.loads(line)
    check("oai-bench: request succeeded", r["status"] == "ok", line[:200])
    t = by_id[r["response_id"]]
    bench.append((r["ttft_s"] * 1e3, t))
    read_delay.append((t["arrival_unix"] - r["send_unix"]) * 1e3)
causal("oai-bench", [(c, truth_ttft(t)) for c, t in bench])
bench_err = mean([c - truth_ttft(t) for c, t in bench])
server_read = mean(read_delay)
# The read delay crosses processes: each converts its monotonic clock to the wall clock once, at
# start, and the two conversions may disagree by a few tenths of a millisecond on a busy machine
# (CI once saw the difference below at -0.21 ms), hence the lower bound of -0.5 ms.
check("oai-bench: mean TTFT within 1 ms of the truth, the server's read delay taken out",
      -0.5 < bench_err - server_read < 1.0, f"{bench_err:.3f} - {server_read:.3f} ms")
check("oai-bench: mean TTFT within 2 ms of the truth", bench_err < 2.0, f"{bench_err:.3f} ms")
level = next(iter(json.load(open(bench_results))["results"].values()))
bench_itl = level["latency"]["itl"]["mean"] * 1e3
gaps = sum(len(t["token_ns"]) - 1 for _, t in bench)
pooled_truth = sum((t["token_ns"][-1] - t["token_ns"][0]) / 1e6 for _, t in bench) / gaps
check("oai-bench: pooled ITL within 0.1 ms of the truth", abs(bench_itl - pooled_truth) <= 0.1,
      f"{bench_itl:.4f} vs {pooled_truth:.4f} ms")
row("oai-bench", "c=16", len(bench), mean([c for c, _ in bench]),
    mean([truth_ttft(t) for _, t in bench]), bench_itl, pooled_truth)

print()
print("| client | load | requests | mean TTFT ms | truth TTFT ms | error ms | mean ITL ms | truth ITL ms |")
print("|---|---|---|---|---|---|---|---|")
for client, load, n, ttft, truth, err, itl, itl_truth in rows:
    itl_s = "" if itl is None else f"{itl:.3f}"
    itl_t = "" if itl_truth is None else f"{itl_truth:.3f}"
    print(f"| {client} | {load} | {n} | {ttft:.2f} | {truth:.2f} | {ttft - truth:+.2f} | {itl_s} | {itl_t} |")
print(f"\nopenai-sdk: first content {role_to_content:.3f} ms after the role chunk; oai-bench: the "
      f"server read its requests {server_read:.3f} ms after they were sent")
print(f"bounds: aiperf o1 = {o1:.2f} ms -> c=1 ITL error <= {o1 / 127:.4f} ms; c=16 TTFT error "
      f"<= {16 * o1:.2f} ms, ITL error <= {0.05 * itl16_truth:.3f} ms; oai-bench TTFT error < 1 ms net of the server's "
      "read delay, < 2 ms with it")
for f in failed:
    print("FAIL", f)
print(f"compat: {passed} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
