#!/bin/sh
# Renders the Kubernetes manifests for one sharded oai-bench run: an Indexed Job of N shard pods
# (one per node), a merge Job that runs tokenomics-merge over their results, the shared results
# volume, and a pod to copy the results out. It writes files and prints the commands that apply
# them in order; it talks to no cluster. POSIX sh, awk and date only.
#
# Every value that reaches the YAML goes through yaml_str (a double-quoted YAML scalar with \ and "
# escaped and control characters as \xNN), and every oai-bench argument is also protected from
# Kubernetes' own $(VAR) expansion of container arguments, so an argument reaches oai-bench byte
# for byte. deploy/test.sh checks both.
set -eu

usage() {
  cat <<'HELP'
Usage: deploy/kubernetes/render.sh N -- OAI_BENCH_ARGS...

Renders, for N shards of one oai-bench run (1 <= N <= 10000):
  OUT_DIR/pvc.yaml     the shared results volume (ReadWriteMany), unless CREATE_PVC=0
  OUT_DIR/job.yaml     the Indexed Job: N pods, at most one per node, all starting their load at
                       the same wall-clock time (--start_at, START_MARGIN_S after rendering)
  OUT_DIR/merge.yaml   the merge Job: tokenomics-merge over the shards' results
  OUT_DIR/fetch.yaml   a pod that mounts the results, for kubectl cp
and prints the commands that apply them in order. Apply job.yaml soon after rendering: the start
time is fixed now.

The recipe adds --start_at, --results_dir and TOKENOMICS_SHARDS itself; each pod's shard index
is Kubernetes' JOB_COMPLETION_INDEX. Do not pass --shard, --start_at or --results_dir.

Environment (default):
  IMAGE                 the image built from deploy/Containerfile  (tokenomics:latest)
  NAME                  prefix of the Jobs' names  (tokenomics)
  RUN_ID                this run's id: the Job is NAME-RUN_ID  (UTC time of rendering, 20261130-120000)
  NAMESPACE             namespace of every object  (none: kubectl's current one)
  OUT_DIR               where the manifests are written  (./NAME-RUN_ID)
  START_AT              the load's start, Unix seconds  (now + START_MARGIN_S)
  START_MARGIN_S        seconds from rendering to the start  (120)
  PVC                   the results volume claim's name  (tokenomics-results)
  CREATE_PVC            1 renders pvc.yaml, 0 uses an existing claim  (1)
  PVC_SIZE              its size  (10Gi)
  STORAGE_CLASS         its storage class; it must offer ReadWriteMany  (the cluster's default)
  SHARD_CPU_REQUEST     CPU per shard pod  (2)
  SHARD_CPU_LIMIT       CPU limit per shard pod  (none: a limit throttles the client and
                        shows up as latency)
  SHARD_MEMORY_REQUEST  memory per shard pod  (2Gi)
  SHARD_MEMORY_LIMIT    memory limit per shard pod  (4Gi)
  MERGE_CPU_REQUEST     CPU of the merge pod  (1)
  MERGE_CPU_LIMIT       CPU limit of the merge pod  (none)
  MERGE_MEMORY_REQUEST  memory of the merge pod  (2Gi)
  MERGE_MEMORY_LIMIT    memory limit of the merge pod: it holds every shard's records  (8Gi)
  ANTI_AFFINITY         required (one shard per node, or the pod waits) or preferred  (required)
  BACKOFF_LIMIT         retries of a failed shard pod; a retry starts late  (0)
  DEADLINE_S            activeDeadlineSeconds of the shard Job  (none)
  API_KEY_SECRET        a Secret whose key OPENAI_API_KEY becomes the pods' OPENAI_API_KEY  (none)
  RUN_AS_UID            the image's user and group id  (10001)
  WAIT_TIMEOUT          --timeout of the printed kubectl wait commands  (24h)
HELP
}

# One line on stderr, whatever the value quoted in it holds.
say() { printf 'render.sh: %s\n' "$(printf '%s' "$*" | tr '\n\r' '  ')" >&2; }
die() { say "$*"; exit 2; }

# yaml_str VALUE [k8s-arg]: VALUE as a YAML double-quoted scalar. " and \ are escaped, control
# characters become \xNN (a raw line break inside quotes would be folded into a space), every other
# byte passes through. With k8s-arg, $ is doubled as well: Kubernetes expands $(VAR) in a
# container's command and args and turns $$ into $, so doubling every $ makes the expansion give
# back the value unchanged.
yaml_str() {
  YAML_STR_VALUE=$1 YAML_STR_ARG=${2:-} LC_ALL=C awk 'BEGIN {
    s = ENVIRON["YAML_STR_VALUE"]; arg = (ENVIRON["YAML_STR_ARG"] == "k8s-arg"); out = ""
    for (i = 1; i < 32; i++) ctl[sprintf("%c", i)] = sprintf("\\x%02x", i)
    ctl[sprintf("%c", 127)] = "\\x7f"
    n = length(s)
    for (i = 1; i <= n; i++) {
      c = substr(s, i, 1)
      if (c == "\\") out = out "\\\\"
      else if (c == "\"") out = out "\\\""
      else if (c in ctl) out = out ctl[c]
      else if (c == "$" && arg) out = out "$$"
      else out = out c
    }
    printf "\"%s\"", out
  }'
}

# matches VALUE ERE: VALUE matches the extended regex, ^ and $ anchoring the whole value (line
# breaks included). No {m,n} intervals: mawk, Debian's default awk, does not take them.
matches() {
  MATCH_VALUE=$1 MATCH_RE=$2 awk 'BEGIN { exit !(ENVIRON["MATCH_VALUE"] ~ ENVIRON["MATCH_RE"]) }'
}

# DNS-1123 label: what Kubernetes accepts as a namespace name and a label value (and so as the
# Job's name, which becomes a label).
check_label() { # NAME VALUE MAXLEN
  matches "$2" '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' && [ "${#2}" -le "$3" ] ||
    die "$1 must be lower-case letters, digits and '-', starting and ending with a letter or digit, at most $3 characters (got '$2')"
}
# DNS-1123 subdomain: what Kubernetes accepts as a claim, Secret or storage class name.
check_subdomain() { # NAME VALUE
  matches "$2" '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' && [ "${#2}" -le 253 ] ||
    die "$1 must be lower-case letters, digits, '-' and '.', starting and ending with a letter or digit (got '$2')"
}
check_count() { # NAME VALUE: a whole number without leading zeros (YAML 1.1 reads 010 as 8)
  matches "$2" '^(0|[1-9][0-9]*)$' && [ "${#2}" -le 9 ] || die "$1 must be a whole number (got '$2')"
}
check_quantity() { # NAME VALUE: a Kubernetes resource quantity such as 500m, 2, 1.5, 4Gi
  matches "$2" '^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$' ||
    die "$1 must be a Kubernetes quantity such as 500m, 2, 4Gi (got '$2')"
}

[ "$#" -ge 1 ] || { usage >&2; exit 2; }
case $1 in -h | --help) usage; exit 0 ;; esac
N=$1
shift
[ "${1:-}" = "--" ] || die "expected '--' after N, then oai-bench's arguments: render.sh N -- --model M --api_base URL ..."
shift
matches "$N" '^[1-9][0-9]*$' && [ "${#N}" -le 5 ] && [ "$N" -le 10000 ] || die "N must be a number of shards from 1 to 10000 (got '$N')"

for a in "$@"; do
  case $a in
    --shard | --shard=* | --start_at | --start_at=* | --results_dir | --results_dir=*)
      die "$a is set by the recipe (--shard from JOB_COMPLETION_INDEX and TOKENOMICS_SHARDS, --start_at from START_AT, --results_dir on the volume): leave it out" ;;
    --api_key | --api_key=*)
      say "warning: --api_key is readable by anyone who can read the Job; API_KEY_SECRET passes it from a Secret" ;;
  esac
done

IMAGE=${IMAGE:-tokenomics:latest}
NAME=${NAME:-tokenomics}
RUN_ID=${RUN_ID:-$(date -u +%Y%m%d-%H%M%S)}
NAMESPACE=${NAMESPACE:-}
START_MARGIN_S=${START_MARGIN_S:-120}
PVC=${PVC:-tokenomics-results}
CREATE_PVC=${CREATE_PVC:-1}
PVC_SIZE=${PVC_SIZE:-10Gi}
STORAGE_CLASS=${STORAGE_CLASS:-}
SHARD_CPU_REQUEST=${SHARD_CPU_REQUEST:-2}
SHARD_CPU_LIMIT=${SHARD_CPU_LIMIT:-}
SHARD_MEMORY_REQUEST=${SHARD_MEMORY_REQUEST:-2Gi}
SHARD_MEMORY_LIMIT=${SHARD_MEMORY_LIMIT:-4Gi}
MERGE_CPU_REQUEST=${MERGE_CPU_REQUEST:-1}
MERGE_CPU_LIMIT=${MERGE_CPU_LIMIT:-}
MERGE_MEMORY_REQUEST=${MERGE_MEMORY_REQUEST:-2Gi}
MERGE_MEMORY_LIMIT=${MERGE_MEMORY_LIMIT:-8Gi}
ANTI_AFFINITY=${ANTI_AFFINITY:-required}
BACKOFF_LIMIT=${BACKOFF_LIMIT:-0}
DEADLINE_S=${DEADLINE_S:-}
API_KEY_SECRET=${API_KEY_SECRET:-}
RUN_AS_UID=${RUN_AS_UID:-10001}
WAIT_TIMEOUT=${WAIT_TIMEOUT:-24h}

check_label NAME "$NAME" 40
check_label RUN_ID "$RUN_ID" 40
JOB=$NAME-$RUN_ID
# Pod host names are JOB-INDEX and the other objects JOB-merge, JOB-fetch: all within 63.
[ "${#JOB}" -le 52 ] || die "NAME-RUN_ID must be at most 52 characters (got '$JOB')"
[ -z "$NAMESPACE" ] || check_label NAMESPACE "$NAMESPACE" 63
check_subdomain PVC "$PVC"
[ -z "$API_KEY_SECRET" ] || check_subdomain API_KEY_SECRET "$API_KEY_SECRET"
[ -z "$STORAGE_CLASS" ] || check_subdomain STORAGE_CLASS "$STORAGE_CLASS"
case $CREATE_PVC in 0 | 1) ;; *) die "CREATE_PVC must be 0 or 1 (got '$CREATE_PVC')" ;; esac
case $ANTI_AFFINITY in required | preferred) ;; *) die "ANTI_AFFINITY must be required or preferred (got '$ANTI_AFFINITY')" ;; esac
if [ -z "$IMAGE" ] || matches "$IMAGE" '[[:space:][:cntrl:]]'; then
  die "IMAGE must be an image reference without spaces (got '$IMAGE')"
fi
check_count START_MARGIN_S "$START_MARGIN_S"
check_count BACKOFF_LIMIT "$BACKOFF_LIMIT"
[ -z "$DEADLINE_S" ] || { check_count DEADLINE_S "$DEADLINE_S"; [ "$DEADLINE_S" -gt 0 ] || die "DEADLINE_S must be positive"; }
check_count RUN_AS_UID "$RUN_AS_UID"
[ "$RUN_AS_UID" -gt 0 ] || die "RUN_AS_UID must not be 0: the pods run as a non-root user"
for v in PVC_SIZE SHARD_CPU_REQUEST SHARD_MEMORY_REQUEST SHARD_MEMORY_LIMIT MERGE_CPU_REQUEST \
  MERGE_MEMORY_REQUEST MERGE_MEMORY_LIMIT; do
  eval "check_quantity $v \"\$$v\""
done
[ -z "$SHARD_CPU_LIMIT" ] || check_quantity SHARD_CPU_LIMIT "$SHARD_CPU_LIMIT"
[ -z "$MERGE_CPU_LIMIT" ] || check_quantity MERGE_CPU_LIMIT "$MERGE_CPU_LIMIT"
matches "$WAIT_TIMEOUT" '^[0-9]+(s|m|h)$' || die "WAIT_TIMEOUT must be a duration such as 90m or 24h (got '$WAIT_TIMEOUT')"

now=$(date +%s)
if [ -z "${START_AT:-}" ]; then
  START_AT=$((now + START_MARGIN_S))
else
  matches "$START_AT" '^[0-9]+(\.[0-9]+)?$' || die "START_AT must be Unix seconds, such as 1767225600 or 1767225600.5 (got '$START_AT')"
  ahead=$(awk -v s="$START_AT" -v n="$now" 'BEGIN { printf "%d", s - n }')
  [ "$ahead" -ge 30 ] || say "warning: START_AT is $ahead s from now: the pods must be scheduled, pull the image and start before it, or they start late"
fi
OUT_DIR=${OUT_DIR:-./$JOB}

RESULTS=/results/$JOB
SHARDS_DIR=$RESULTS/shards
MERGED=$RESULTS/merged.json

q() { yaml_str "$1"; }

namespace_line=
[ -z "$NAMESPACE" ] || namespace_line="
  namespace: $(q "$NAMESPACE")"
labels="
    app.kubernetes.io/name: tokenomics
    tokenomics/run: $(q "$JOB")"

# resources REQ_CPU LIMIT_CPU REQ_MEM LIMIT_MEM (indented for a container)
resources() {
  cpu_limit=
  [ -z "$2" ] || cpu_limit="
              cpu: $(q "$2")"
  printf '%s' "
          resources:
            requests:
              cpu: $(q "$1")
              memory: $(q "$3")
            limits:$cpu_limit
              memory: $(q "$4")"
}

pod_security="
      securityContext:
        runAsNonRoot: true
        runAsUser: $RUN_AS_UID
        runAsGroup: $RUN_AS_UID
        fsGroup: $RUN_AS_UID
        fsGroupChangePolicy: OnRootMismatch"
container_security="
          securityContext:
            allowPrivilegeEscalation: false
            capabilities:
              drop: [\"ALL\"]"
volumes="
      volumes:
        - name: results
          persistentVolumeClaim:
            claimName: $(q "$PVC")"
mount="
          volumeMounts:
            - name: results
              mountPath: /results"

shard_selector="
              labelSelector:
                matchLabels:
                  tokenomics/run: $(q "$JOB")
                  tokenomics/role: shard
              topologyKey: kubernetes.io/hostname"
if [ "$ANTI_AFFINITY" = required ]; then
  affinity="
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            - $(printf '%s' "$shard_selector" | sed '1d; 2s/^ *//')"
else
  affinity="
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:$(printf '%s' "$shard_selector" | sed '2,$s/^/  /')"
fi

deadline_line=
[ -z "$DEADLINE_S" ] || deadline_line="
  activeDeadlineSeconds: $DEADLINE_S"
api_key_env=
[ -z "$API_KEY_SECRET" ] || api_key_env="
            - name: OPENAI_API_KEY
              valueFrom:
                secretKeyRef:
                  name: $(q "$API_KEY_SECRET")
                  key: OPENAI_API_KEY"

shard_args="
            - \"--start_at\"
            - $(q "$START_AT")
            - \"--results_dir\"
            - $(q "$SHARDS_DIR")"
for a in "$@"; do
  shard_args="$shard_args
            - $(yaml_str "$a" k8s-arg)"
done

header="# Rendered by deploy/kubernetes/render.sh for $N shard(s) of run $JOB; load starts at Unix time $START_AT."

mkdir -p "$OUT_DIR"
# write FILE: stdin to OUT_DIR/FILE, whole or not at all.
write() {
  cat >"$OUT_DIR/$1.tmp"
  mv "$OUT_DIR/$1.tmp" "$OUT_DIR/$1"
}

if [ "$CREATE_PVC" = 1 ]; then
  storage_class_line=
  [ -z "$STORAGE_CLASS" ] || storage_class_line="
  storageClassName: $(q "$STORAGE_CLASS")"
  write pvc.yaml <<EOF
$header
# The shards and the merge run on different nodes, so the volume must be ReadWriteMany (NFS,
# CephFS, a cloud file store). Applying it again for the next run changes nothing.
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: $(q "$PVC")$namespace_line
  labels:
    app.kubernetes.io/name: tokenomics
spec:
  accessModes: ["ReadWriteMany"]$storage_class_line
  resources:
    requests:
      storage: $(q "$PVC_SIZE")
EOF
else
  rm -f "$OUT_DIR/pvc.yaml"
fi

write job.yaml <<EOF
$header
# One pod per shard: JOB_COMPLETION_INDEX (set by Kubernetes in an Indexed Job) is the shard,
# TOKENOMICS_SHARDS the number of shards. backoffLimit $BACKOFF_LIMIT: a retried shard would start after
# --start_at and measure a different run, so a failed shard fails the Job and the merge is not run.
apiVersion: batch/v1
kind: Job
metadata:
  name: $(q "$JOB")$namespace_line
  labels:$labels
    tokenomics/role: shard
spec:
  completionMode: Indexed
  completions: $N
  parallelism: $N
  backoffLimit: $BACKOFF_LIMIT$deadline_line
  template:
    metadata:
      labels:$(printf '%s' "$labels" | sed 's/^    /        /')
        tokenomics/role: shard
    spec:
      restartPolicy: Never$pod_security$affinity
      initContainers:
        - name: results-dir
          image: $(q "$IMAGE")
          command: ["mkdir", "-p", $(q "$SHARDS_DIR")]$container_security$mount
      containers:
        - name: oai-bench
          image: $(q "$IMAGE")
          command: ["oai-bench"]
          args:$shard_args
          env:
            - name: TOKENOMICS_SHARDS
              value: "$N"$api_key_env$(resources "$SHARD_CPU_REQUEST" "$SHARD_CPU_LIMIT" "$SHARD_MEMORY_REQUEST" "$SHARD_MEMORY_LIMIT")$container_security$mount$volumes
EOF

write merge.yaml <<EOF
$header
# Apply after job.yaml's Job is complete (kubectl wait --for=condition=complete): Complete means
# every index succeeded once, so all $N shard files are written. tokenomics-merge checks the set
# anyway (one run, all $N present, none twice) and refuses an incomplete one.
apiVersion: batch/v1
kind: Job
metadata:
  name: $(q "$JOB-merge")$namespace_line
  labels:$labels
    tokenomics/role: merge
spec:
  backoffLimit: 0
  template:
    metadata:
      labels:$(printf '%s' "$labels" | sed 's/^    /        /')
        tokenomics/role: merge
    spec:
      restartPolicy: Never$pod_security
      containers:
        - name: merge
          image: $(q "$IMAGE")
          command: ["tokenomics-merge"]
          args: [$(q "$SHARDS_DIR"), "-o", $(q "$MERGED")]$(resources "$MERGE_CPU_REQUEST" "$MERGE_CPU_LIMIT" "$MERGE_MEMORY_REQUEST" "$MERGE_MEMORY_LIMIT")$container_security$mount$volumes
EOF

write fetch.yaml <<EOF
$header
# A pod that holds the results volume for an hour, so kubectl cp can copy $RESULTS out.
apiVersion: v1
kind: Pod
metadata:
  name: $(q "$JOB-fetch")$namespace_line
  labels:$labels
    tokenomics/role: fetch
spec:
  restartPolicy: Never
  activeDeadlineSeconds: 3600$(printf '%s' "$pod_security" | sed 's/^    //')
  containers:
    - name: fetch
      image: $(q "$IMAGE")
      command: ["sleep", "3600"]
      resources:
        requests:
          cpu: "100m"
          memory: "64Mi"
        limits:
          memory: "256Mi"$(printf '%s' "$container_security$mount" | sed 's/^    //')
$(printf '%s' "$volumes" | sed '1d; s/^    //')
EOF

ns=
[ -z "$NAMESPACE" ] || ns=" -n $NAMESPACE"
d=$OUT_DIR
cat <<EOF
Rendered $N shard(s) of $JOB into $d/; the load starts at Unix time $START_AT ($(date -u -d "@${START_AT%.*}" '+%Y-%m-%d %H:%M:%S UTC' 2>/dev/null || echo "UTC"), $(awk -v s="$START_AT" -v n="$now" 'BEGIN { printf "%d", s - n }') s from now).
Next, in order:
EOF
[ "$CREATE_PVC" = 0 ] || echo "  kubectl$ns apply -f $d/pvc.yaml"
cat <<EOF
  kubectl$ns apply -f $d/job.yaml
  kubectl$ns wait --for=condition=complete --timeout=$WAIT_TIMEOUT job/$JOB
  kubectl$ns apply -f $d/merge.yaml
  kubectl$ns wait --for=condition=complete --timeout=$WAIT_TIMEOUT job/$JOB-merge
  kubectl$ns logs job/$JOB-merge
  kubectl$ns apply -f $d/fetch.yaml
  kubectl$ns wait --for=condition=ready --timeout=10m pod/$JOB-fetch
  kubectl$ns cp $JOB-fetch:$RESULTS ./$JOB
  kubectl$ns delete pod/$JOB-fetch
If a shard fails, the Job is marked Failed and the first wait runs to its timeout: see
  kubectl$ns get pods -l tokenomics/run=$JOB,tokenomics/role=shard
  kubectl$ns logs -l tokenomics/run=$JOB,tokenomics/role=shard --prefix
EOF
