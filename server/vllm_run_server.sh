#!/usr/bin/env bash
# Start a vLLM OpenAI-compatible server. Every setting comes from an environment variable whose
# default is the original script's setup (DeepSeek-R1-Distill-Llama-8B, TP 8, port 8000).
# The command is printed, then exec'ed.
set -euo pipefail

usage() {
  cat <<'HELP'
Usage: server/vllm_run_server.sh [extra vllm serve flags...]

Environment (default):
  MODEL_PATH          model weights or Hub id  (deepseek-ai/DeepSeek-R1-Distill-Llama-8B)
  SERVED_MODEL_NAME   tag clients send as "model"  (distill-llama-8b)
  TP_SIZE             tensor parallel size  (8)
  PP_SIZE             pipeline parallel size  (1)
  DEVICES             GPUs to use, as CUDA_VISIBLE_DEVICES  (all)
  HOST                address to listen on  (0.0.0.0)
  PORT                port  (8000)
  SPECULATIVE         1 to enable speculative decoding  (0)
  SPEC_MODEL          draft model for speculative decoding  (empty)
  SPEC_TOKENS         speculative tokens per step  (5)

Then benchmark it:  oai-bench --model "$SERVED_MODEL_NAME" --api_base http://localhost:$PORT/v1
HELP
}
[[ "${1:-}" == "--help" || "${1:-}" == "-h" ]] && { usage; exit 0; }

MODEL_PATH="${MODEL_PATH:-deepseek-ai/DeepSeek-R1-Distill-Llama-8B}"
SERVED_MODEL_NAME="${SERVED_MODEL_NAME:-distill-llama-8b}"
TP_SIZE="${TP_SIZE:-8}"
PP_SIZE="${PP_SIZE:-1}"
HOST="${HOST:-0.0.0.0}"
PORT="${PORT:-8000}"
SPECULATIVE="${SPECULATIVE:-0}"
SPEC_MODEL="${SPEC_MODEL:-}"
SPEC_TOKENS="${SPEC_TOKENS:-5}"

if ! command -v vllm >/dev/null 2>&1; then
  echo "vllm_run_server.sh: vllm is not installed; install it with: pip install vllm (see https://docs.vllm.ai)" >&2
  exit 127
fi
if [[ -n "${DEVICES:-}" ]]; then export CUDA_VISIBLE_DEVICES="$DEVICES"; fi

cmd=(vllm serve "$MODEL_PATH" --served-model-name "$SERVED_MODEL_NAME"
     --tensor-parallel-size "$TP_SIZE" --pipeline-parallel-size "$PP_SIZE"
     --host "$HOST" --port "$PORT")
if [[ "$SPECULATIVE" == "1" ]]; then
  if [[ -z "$SPEC_MODEL" ]]; then
    echo "vllm_run_server.sh: SPECULATIVE=1 needs SPEC_MODEL (the draft model)" >&2
    exit 2
  fi
  cmd+=(--speculative-config "{\"model\": \"$SPEC_MODEL\", \"num_speculative_tokens\": $SPEC_TOKENS}")
fi
cmd+=("$@")

echo "+ ${cmd[*]}"
exec "${cmd[@]}"
