#!/usr/bin/env bash
# Checks the vLLM and SGLang launch scripts without GPUs: fake `vllm` and `python3` executables
# on PATH print the arguments they were exec'ed with.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fake="$(mktemp -d)"
trap 'rm -rf "$fake"' EXIT

cat > "$fake/vllm" <<'F'
#!/usr/bin/env bash
echo "ARGS: $*"
F
cat > "$fake/python3" <<'F'
#!/usr/bin/env bash
if [[ "$1" == "-c" ]]; then exit 0; fi  # "import sglang" succeeds
echo "ARGS: $*"
F
chmod +x "$fake/vllm" "$fake/python3"

passed=0
fail() { echo "FAIL: $*" >&2; echo "launch scripts: $passed passed, 1 failed"; exit 1; }
ok() { passed=$((passed + 1)); }
expect() { # expect NAME OUTPUT NEEDLE
  grep -qF -- "$3" <<<"$2" || fail "$1: expected '$3' in: $2"
  ok
}

out=$(PATH="$fake:$PATH" "$here/vllm_run_server.sh")
expect "vllm defaults" "$out" "ARGS: serve deepseek-ai/DeepSeek-R1-Distill-Llama-8B --served-model-name distill-llama-8b --tensor-parallel-size 8 --pipeline-parallel-size 1 --host 0.0.0.0 --port 8000"
expect "vllm prints its command" "$out" "+ vllm serve"

out=$(PATH="$fake:$PATH" MODEL_PATH=/models/x SERVED_MODEL_NAME=x TP_SIZE=2 PP_SIZE=2 PORT=9000 SPECULATIVE=1 SPEC_MODEL=/models/draft SPEC_TOKENS=3 "$here/vllm_run_server.sh" --max-model-len 4096)
expect "vllm env" "$out" "ARGS: serve /models/x --served-model-name x --tensor-parallel-size 2 --pipeline-parallel-size 2 --host 0.0.0.0 --port 9000 --speculative-config"
expect "vllm speculative" "$out" "\"model\": \"/models/draft\", \"num_speculative_tokens\": 3"
expect "vllm extra flags" "$out" "--max-model-len 4096"

if PATH="$fake:$PATH" SPECULATIVE=1 "$here/vllm_run_server.sh" 2>/dev/null; then fail "SPECULATIVE=1 without SPEC_MODEL must fail"; fi
ok

out=$(PATH="$fake:$PATH" TP_SIZE=4 PORT=30000 "$here/sglang_run_server.sh")
expect "sglang" "$out" "ARGS: -m sglang.launch_server --model-path deepseek-ai/DeepSeek-R1-Distill-Llama-8B --served-model-name distill-llama-8b --tp 4 --pp-size 1 --host 0.0.0.0 --port 30000"

out=$(PATH="$fake:$PATH" SPECULATIVE=1 SPEC_MODEL=/d "$here/sglang_run_server.sh")
expect "sglang speculative" "$out" "--speculative-algorithm EAGLE --speculative-draft-model-path /d --speculative-num-draft-tokens 5"

"$here/vllm_run_server.sh" --help | grep -q "SPEC_TOKENS" || fail "--help lists the variables"
ok
"$here/sglang_run_server.sh" --help | grep -q "SERVED_MODEL_NAME" || fail "--help lists the variables"
ok

# Without the servers installed: one line, exit 127.
nothing="$(mktemp -d)"
ln -s "$(command -v bash)" "$nothing/bash"
ln -s "$(command -v env)" "$nothing/env"
set +e
msg=$(PATH="$nothing" PYTHON="$nothing/none" "$here/vllm_run_server.sh" 2>&1); rc=$?
set -e
[[ $rc -eq 127 && "$msg" == *"pip install vllm"* ]] || fail "missing vllm: rc=$rc msg=$msg"
ok
rm -rf "$nothing"

echo "launch scripts: $passed passed, 0 failed"
