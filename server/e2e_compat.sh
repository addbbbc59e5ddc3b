#!/usr/bin/env bash
# Compatibility with clients this project did not write (issue #22): starts oai-sim (preset
# h100-llama-3.1-8b, with its truth log) on 127.0.0.1, runs the OpenAI Python SDK (every route,
# streams, errors as its exception types), AIPerf (at concurrency 1 and 16: ~200 prompt tokens, 128
# output tokens) and oai-bench at the same load, then compares each client's TTFT and ITL with
# the simulator's truth, request by request, and prints the numbers (server/compat/compare.py
# states the bounds and why). Stops the simulator, also on failure.
#
# The clients come from PyPI, pinned, in a venv built the first time (a few minutes) and reused
# (COMPAT_VENV moves it). Nothing is fetched at run time: the Hugging Face Hub is off
# (HF_HUB_OFFLINE=1), and the tokenizer AIPerf needs is written here from AIPerf's own corpus
# (server/compat/make_tokenizer.py), in a Hugging Face cache of this run's own.
# Needs the release binaries (cargo build --release -p oai-sim -p oai-bench; built when missing)
# and Python 3.10+.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/target/release"
VENV="${COMPAT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tokenomics/compat-venv}"
PYTHON="${PYTHON:-python3}"
PORT="${E2E_COMPAT_PORT:-18190}"
MODEL=llama-3.1-8b
PINS=(openai==3.57.0 aiperf==0.13.0)
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
say() { echo "e2e_compat.sh: $*" >&2; }

for b in oai-sim oai-bench; do
  [[ -x "$bin/$b" ]] || (cd "$root" && cargo build --release -p "$b" >&2)
done

# The venv: rebuilt when missing, broken, or pinned to other versions.
if ! [[ -x "$VENV/bin/python" ]] || [[ "$(cat "$VENV/.pins" 2>/dev/null)" != "${PINS[*]}" ]] ||
  ! "$VENV/bin/python" -c "import openai, aiperf, tokenizers" >/dev/null 2>&1; then
  command -v "$PYTHON" >/dev/null 2>&1 || { say "$PYTHON not found; install Python 3.10+ or set PYTHON"; exit 127; }
  if [[ -e "$VENV" && ! -f "$VENV/pyvenv.cfg" ]]; then
    say "$VENV exists and is not a venv; set COMPAT_VENV to another path"
    exit 1
  fi
  say "building the venv in $VENV (${PINS[*]}: a few minutes the first time)"
  t=$SECONDS
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet "${PINS[@]}"
  echo "${PINS[*]}" >"$VENV/.pins"
  say "venv built in $((SECONDS - t)) s"
fi
py="$VENV/bin/python"

# Offline from here on: a Hub lookup fails at once instead of reaching out.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HOME="$work/hf" NO_PROXY="127.0.0.1,localhost"
export HF_ENDPOINT="http://127.0.0.1:9"
unset OPENAI_API_KEY HF_TOKEN
corpus="$("$py" -c 'import aiperf, pathlib; print(next(pathlib.Path(aiperf.__file__).parent.rglob("shakespeare.txt")))')"
"$py" "$root/server/compat/make_tokenizer.py" "$HF_HOME/hub" "$corpus"

"$bin/oai-sim" --preset h100-llama-3.1-8b --host 127.0.0.1 --port "$PORT" --trace >"$work/sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do
  curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null || { say "oai-sim did not come up:"; cat "$work/sim.log" >&2; exit 1; }

say "OpenAI Python SDK"
"$py" "$root/server/compat/openai_sdk.py" "http://127.0.0.1:$PORT/v1" "$MODEL" "$work/sdk.json"

# AIPerf: 193 words of prompt + 7 of the chat template = 200 prompt tokens for the simulator;
# --use-server-token-count takes output counts from the server's usage.
aiperf() { # CONCURRENCY REQUESTS DIR
  say "AIPerf at concurrency $1 ($2 requests)"
  "$py" -m aiperf profile --model "$MODEL" --url "http://127.0.0.1:$PORT" --endpoint-type chat \
    --streaming --tokenizer tokenomics/oai-sim-words --concurrency "$1" --request-count "$2" \
    --prompt-input-tokens-mean 193 --prompt-input-tokens-stddev 0 \
    --prompt-output-tokens-mean 128 --prompt-output-tokens-stddev 0 \
    --extra-inputs ignore_eos:true --extra-inputs min_tokens:128 --use-server-token-count \
    --random-seed 1 --ui none --no-server-metrics --no-gpu-telemetry \
    --output-artifact-dir "$3" >"$3.log" 2>&1 || { tail -40 "$3.log" >&2; return 1; }
  grep -E "Time to First Token|Inter Token Latency" "$3.log" >&2 || true
}
aiperf 1 16 "$work/aiperf-c1"
aiperf 16 200 "$work/aiperf-c16"

say "oai-bench at concurrency 16 (200 requests)"
"$bin/oai-bench" --api_base "http://127.0.0.1:$PORT/v1" --model "$MODEL" --stream --ignore_eos \
  --max_concurrency 16 --num_requests 200 --max_tokens 128 --input_tokens 193 --warmup_runs 0 \
  --progress never --requests_file "$work/oai-bench.jsonl" --results_file "$work/oai-bench.json"

curl -sf "http://127.0.0.1:$PORT/sim/trace" >"$work/trace.jsonl"
"$py" "$root/server/compat/compare.py" "$work/trace.jsonl" "$work/sdk.json" \
  "$work/aiperf-c1" "$work/aiperf-c16" "$work/oai-bench.jsonl" "$work/oai-bench.json"
