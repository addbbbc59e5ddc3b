#!/usr/bin/env bash
# End to end against a real model on the CPU: starts llama.cpp (SmolLM2-135M) for chat and for
# embeddings, runs oai-bench (not streamed and --stream), embed-bench and plot-throughput, and
# checks that the results make sense. Stops the servers it started, also on failure.
# Needs the release binaries (cargo build --release) and Python 3 (the venv is built or reused).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/target/release"
work="$(mktemp -d)"
CHAT_PORT="${E2E_CHAT_PORT:-18180}"
EMB_PORT="${E2E_EMB_PORT:-18181}"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

for b in oai-bench embed-bench plot-throughput; do
  [[ -x "$bin/$b" ]] || (cd "$root" && cargo build --release -p "$b" >&2)
done

"$root/server/llamacpp_run_server.sh" --setup-only
MODE=chat PORT="$CHAT_PORT" N_THREADS=1 "$root/server/llamacpp_run_server.sh" >"$work/chat-server.log" 2>&1 &
pids+=($!)
MODE=embeddings PORT="$EMB_PORT" N_THREADS=1 "$root/server/llamacpp_run_server.sh" >"$work/emb-server.log" 2>&1 &
pids+=($!)

wait_ready() { # PORT LOG
  for _ in $(seq 1 180); do
    if curl -sf "http://127.0.0.1:$1/v1/models" >/dev/null; then return 0; fi
    sleep 1
  done
  echo "e2e: the server on port $1 did not come up; its log:" >&2
  tail -30 "$2" >&2
  return 1
}
wait_ready "$CHAT_PORT" "$work/chat-server.log"
wait_ready "$EMB_PORT" "$work/emb-server.log"

common=(--model smollm2 --dataset_key synthetic --batch_sizes 1,2 --num_runs 1 --warmup_runs 1 --max_tokens 16)
"$bin/oai-bench" "${common[@]}" --api_base "http://127.0.0.1:$CHAT_PORT/v1" --results_file "$work/chat.json"
"$bin/oai-bench" "${common[@]}" --api_base "http://127.0.0.1:$CHAT_PORT/v1" --stream --results_file "$work/stream.json"
"$bin/embed-bench" --model smollm2 --api_base "http://127.0.0.1:$EMB_PORT/v1" --batch_sizes 1,2 \
  --sequence_lengths 20 --num_runs 1 --warmup_runs 1 --results_file "$work/emb.json"
"$bin/plot-throughput" "$work/stream.json" "$work/plot.png"

python3 - "$work" <<'PY'
import json, struct, sys
work = sys.argv[1]
passed, failed = 0, []
def check(name, ok, detail=""):
    global passed
    if ok:
        passed += 1
    else:
        failed.append(f"{name}: {detail}")

for name in ["chat", "stream"]:
    doc = json.load(open(f"{work}/{name}.json"))
    for key, level in doc["results"].items():
        b = int(key)
        req = level["requests"]
        check(f"{name}/{key} every request succeeded", req["succeeded"] == b and req["failed"] == 0, req)
        out = level["tokens"]["output_per_request"]["mean"]
        check(f"{name}/{key} output tokens positive", out is not None and out > 0, out)
        total = level["timings"]["batch_total_seconds"]["mean"]
        btps = level["throughput"]["batch_tokens_per_second"]["mean"]
        check(f"{name}/{key} batch tokens/s = tokens / time", abs(btps - out * b / total) / btps < 1e-6, (btps, out, total))
        if name == "chat":
            inp = level["tokens"]["input_per_request"]["mean"]
            check(f"{name}/{key} input tokens positive (usage)", inp is not None and inp > 0, inp)
        else:
            lat = level["latency"]
            check(f"{name}/{key} TTFT < E2EL", lat["ttft"]["max"] < lat["e2el"]["max"] and lat["ttft"]["p50"] < lat["e2el"]["p50"], lat["ttft"])
            events = level["tokens"]["content_events_per_request"]["mean"]
            src = level["tokens"]["output_token_source"]
            if "usage" in src:
                # Both exist: the server's count and the events counted must agree (an event may
                # carry more than one token, never fewer than one).
                check(f"{name}/{key} usage and events agree", 0.8 * out <= events <= out, (events, out))
            else:
                check(f"{name}/{key} tokens counted from events", events == out, (events, out))

emb = json.load(open(f"{work}/emb.json"))
check("embeddings: two configurations", len(emb["results"]) == 2, list(emb["results"]))
check("embeddings: a dimension was learned", (emb["metadata"].get("embedding_dim") or 0) > 0, emb["metadata"].get("embedding_dim"))
for key, level in emb["results"].items():
    req = level["requests"]
    check(f"emb/{key} every request succeeded", req["failed"] == 0, req)
    check(f"emb/{key} tokens positive", level["tokens"]["total_per_batch"]["mean"] > 0, level["tokens"])

png = open(f"{work}/plot.png", "rb").read()
check("plot is a PNG", png[:8] == b"\x89PNG\r\n\x1a\n")
w, h = struct.unpack(">II", png[16:24])
check("plot has the figure's size", (w, h) == (3600, 2100), (w, h))

for f in failed:
    print("FAIL", f)
print(f"e2e llama.cpp: {passed} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
PY
