"""Checks the manifests deploy/kubernetes/render.sh wrote, offline.

Usage: check_manifests.py DIR N START [KEY=VALUE...] -- EXPECTED_ARGS...

START is the --start_at the shards must get, or auto:MARGIN for "rendered now, MARGIN seconds
ahead". EXPECTED_ARGS are the oai-bench arguments given to render.sh, which every shard container
must receive byte for byte after Kubernetes has expanded $(VAR) references in them. KEY=VALUE
pairs are further expectations for settings render.sh took from its environment: namespace,
image, pvc (the claim's name; pvc.yaml may then be absent), anti_affinity (required or
preferred), api_key_secret, shard_cpu_request, shard_cpu_limit, shard_memory_request,
shard_memory_limit, merge_memory_limit.

Each object is validated against the Kubernetes JSON schemas that the kubernetes-validate package
ships (strict: an unknown or misspelt field is an error), for the oldest and the newest Kubernetes
version it knows; then the fields the sharding contract needs are asserted. One line per check,
"ok: ..." or "FAIL: ...", on stdout; the exit status is 1 if any check failed.
"""

import copy
import sys
import time

import kubernetes_validate
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

failures = 0


def check(name, condition, detail=""):
    global failures
    if condition:
        print(f"ok: {name}")
    else:
        failures += 1
        print(f"FAIL: {name}" + (f": {detail}" if detail else ""))
    return condition


def k8s_expand(value, env):
    """Kubernetes' expansion of $(VAR) in a container's command and args, as
    k8s.io/kubernetes/third_party/forked/golang/expansion does it: $(NAME) becomes the variable's
    value when NAME is defined (and stays as written when it is not), $$ becomes $, and any other
    $ is kept."""
    out = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "$" and i + 1 < len(value):
            nxt = value[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
            elif nxt == "(":
                close = value.find(")", i + 2)
                if close == -1:
                    out.append("$(")
                    i += 2
                else:
                    name = value[i + 2 : close]
                    out.append(env[name] if name in env else "$(" + name + ")")
                    i = close + 1
            else:
                out.append("$" + nxt)
                i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def schema_versions():
    versions = kubernetes_validate.utils.all_versions()
    return sorted({versions[0], versions[-1]}, key=lambda v: [int(p) for p in v.split(".")])


def validate(obj, label):
    for version in schema_versions():
        try:
            kubernetes_validate.validate(obj, version, strict=True)
            check(f"{label} is a valid {obj['kind']} for Kubernetes {version} (strict schema)", True)
        except ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            check(f"{label} is a valid {obj['kind']} for Kubernetes {version}", False, f"{path}: {e.message}")
        except SchemaNotFoundError as e:
            check(f"{label} has a schema for Kubernetes {version}", False, e.message)


def rejects(obj, label):
    """The validator must fail on OBJ (a deliberately broken copy), or the checks prove nothing."""
    version = schema_versions()[-1]
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except ValidationError:
        return check(f"the validator rejects {label}", True)
    return check(f"the validator rejects {label}", False, "it accepted it")


def load(directory, name):
    path = f"{directory}/{name}"
    try:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except (OSError, yaml.YAMLError) as e:
        check(f"{name} parses as YAML", False, str(e))
        return None
    if not check(f"{name} parses as YAML, one object", len(docs) == 1, f"{len(docs)} objects"):
        return None
    return docs[0]


def volume_claim(pod_spec, volume):
    for v in pod_spec.get("volumes", []):
        if v.get("name") == volume:
            return (v.get("persistentVolumeClaim") or {}).get("claimName")
    return None


def mount_path(container, volume):
    for m in container.get("volumeMounts", []):
        if m.get("name") == volume:
            return m.get("mountPath")
    return None


def main(argv):
    if "--" not in argv or argv.index("--") < 3:
        sys.exit("usage: check_manifests.py DIR N START [KEY=VALUE...] -- EXPECTED_ARGS...")
    sep = argv.index("--")
    directory, n, start = argv[0], int(argv[1]), argv[2]
    expect = dict(kv.split("=", 1) for kv in argv[3:sep])
    expected_args = argv[sep + 1 :]
    where = f"[N={n}]"

    # The expansion model itself, so that the argument check below can fail.
    check(
        "Kubernetes' $(VAR) expansion is modelled ($(VAR) expands, $$ escapes)",
        k8s_expand("$(TOKENOMICS_SHARDS)/$$(TOKENOMICS_SHARDS)/$$$$/$(UNSET)/$x/$", {"TOKENOMICS_SHARDS": "4"})
        == "4/$(TOKENOMICS_SHARDS)/$$/$(UNSET)/$x/$",
    )

    objects = {}
    for name in ("job.yaml", "merge.yaml", "fetch.yaml", "pvc.yaml"):
        if name == "pvc.yaml" and "pvc" in expect:
            continue  # rendered with CREATE_PVC=0: an existing claim
        objects[name] = load(directory, name)
    if any(o is None for o in objects.values()):
        return
    for name, obj in objects.items():
        validate(obj, f"{where} {name}")
    job, merge, fetch = objects["job.yaml"], objects["merge.yaml"], objects["fetch.yaml"]
    pvc = objects.get("pvc.yaml")
    claim_name = expect.get("pvc") or pvc["metadata"]["name"]

    broken = copy.deepcopy(job)
    broken["spec"]["completionmode"] = broken["spec"].pop("completionMode")
    rejects(broken, "a misspelt field (completionmode)")
    broken = copy.deepcopy(job)
    broken["spec"]["template"]["spec"]["containers"][0]["args"].append(4)
    rejects(broken, "a number where an argument string belongs")

    namespace = expect.get("namespace")
    check(
        f"{where} every object in namespace {namespace or '(kubectl default)'}",
        all(o["metadata"].get("namespace") == namespace for o in objects.values()),
    )

    spec = job["spec"]
    pod = spec["template"]["spec"]
    shard = pod["containers"][0]
    check(f"{where} job: completionMode Indexed", spec.get("completionMode") == "Indexed", spec.get("completionMode"))
    check(
        f"{where} job: parallelism = completions = {n}",
        spec.get("parallelism") == n and spec.get("completions") == n,
        f"parallelism {spec.get('parallelism')}, completions {spec.get('completions')}",
    )
    check(f"{where} job: a failed shard is not retried late (restartPolicy Never)", pod.get("restartPolicy") == "Never")

    anti = (pod.get("affinity") or {}).get("podAntiAffinity") or {}
    kind = expect.get("anti_affinity", "required")
    if kind == "required":
        terms = anti.get("requiredDuringSchedulingIgnoredDuringExecution", [])
    else:
        terms = [t.get("podAffinityTerm", {}) for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution", [])]
    labels = spec["template"]["metadata"].get("labels", {})
    check(
        f"{where} job: {kind} pod anti-affinity on kubernetes.io/hostname against the Job's own pods",
        any(
            t.get("topologyKey") == "kubernetes.io/hostname"
            and t.get("labelSelector", {}).get("matchLabels")
            and all(labels.get(k) == v for k, v in t["labelSelector"]["matchLabels"].items())
            for t in terms
        ),
        str(anti),
    )

    env_list = shard.get("env", [])
    env = {e["name"]: e.get("value") for e in env_list}
    check(f"{where} job: TOKENOMICS_SHARDS={n} in the env", env.get("TOKENOMICS_SHARDS") == str(n), str(env))
    check(f"{where} job: JOB_COMPLETION_INDEX left to Kubernetes", "JOB_COMPLETION_INDEX" not in env)
    secret = expect.get("api_key_secret")
    key_refs = [e["valueFrom"]["secretKeyRef"]["name"] for e in env_list if e["name"] == "OPENAI_API_KEY" and "valueFrom" in e]
    check(
        f"{where} job: OPENAI_API_KEY " + (f"from the Secret {secret}" if secret else "not set"),
        key_refs == ([secret] if secret else []),
        str(env_list),
    )
    image = expect.get("image", "tokenomics:latest")
    images = [
        c.get("image")
        for o in (pod, merge["spec"]["template"]["spec"], fetch["spec"])
        for c in o.get("initContainers", []) + o["containers"]
    ]
    check(f"{where} every container runs the image {image}", set(images) == {image}, str(images))

    # The container's environment as Kubernetes expands against: its env plus the index.
    env_now = {k: v for k, v in env.items() if v is not None}
    env_now["JOB_COMPLETION_INDEX"] = "0"
    argv_seen = [k8s_expand(a, env_now) for a in shard.get("command", []) + shard.get("args", [])]

    def after(flag):
        return argv_seen[argv_seen.index(flag) + 1] if flag in argv_seen[:-1] else None

    claim = volume_claim(pod, "results")
    root = mount_path(shard, "results")
    results_dir = after("--results_dir")
    check(f"{where} job: results on the claim {claim_name}", claim == claim_name, str(claim))
    check(
        f"{where} job: --results_dir {results_dir} is on the mounted volume",
        root is not None and results_dir is not None and results_dir.startswith(root.rstrip("/") + "/"),
        f"mount {root}",
    )
    init = pod.get("initContainers", [])
    check(
        f"{where} job: an init container creates --results_dir on the volume",
        len(init) == 1 and init[0].get("command") == ["mkdir", "-p", results_dir] and mount_path(init[0], "results") == root,
    )
    if pvc is not None:
        check(f"{where} pvc: ReadWriteMany", pvc["spec"].get("accessModes") == ["ReadWriteMany"], str(pvc["spec"]))

    start_at = after("--start_at")
    if start.startswith("auto:"):
        margin = float(start[5:])
        ahead = float(start_at) - time.time() if start_at else None
        check(
            f"{where} job: --start_at {start_at} is about {margin:g} s after rendering",
            ahead is not None and margin - 30 <= ahead <= margin + 1,
            f"{ahead} s ahead",
        )
    else:
        check(f"{where} job: --start_at {start}", start_at == start, str(start_at))

    want = ["oai-bench", "--start_at", start_at, "--results_dir", results_dir] + expected_args
    check(
        f"{where} job: oai-bench gets every argument byte for byte ({len(expected_args)} arguments)",
        argv_seen == want,
        f"\n  got  {argv_seen!r}\n  want {want!r}",
    )

    res = shard.get("resources", {})
    want_res = {
        "requests": {"cpu": expect.get("shard_cpu_request", "2"), "memory": expect.get("shard_memory_request", "2Gi")},
        "limits": {"memory": expect.get("shard_memory_limit", "4Gi")},
    }
    if "shard_cpu_limit" in expect:
        want_res["limits"]["cpu"] = expect["shard_cpu_limit"]
    check(f"{where} job: shard resources {want_res}", res == want_res, str(res))
    merge_res = merge["spec"]["template"]["spec"]["containers"][0].get("resources", {})
    check(
        f"{where} merge: memory limit {expect.get('merge_memory_limit', '8Gi')}",
        merge_res.get("limits", {}).get("memory") == expect.get("merge_memory_limit", "8Gi"),
        str(merge_res),
    )
    sec = pod.get("securityContext", {})
    check(f"{where} job: runs as non-root", sec.get("runAsNonRoot") is True and sec.get("runAsUser", 0) > 0)

    mspec = merge["spec"]["template"]["spec"]
    mc = mspec["containers"][0]
    check(
        f"{where} merge: tokenomics-merge over {results_dir}, written beside it",
        mc.get("command") == ["tokenomics-merge"]
        and len(mc.get("args", [])) == 3
        and mc["args"][0] == results_dir
        and mc["args"][1] == "-o"
        and not mc["args"][2].startswith(results_dir.rstrip("/") + "/"),
        str(mc.get("args")),
    )
    check(
        f"{where} merge: the same claim, mounted where the shards wrote",
        volume_claim(mspec, "results") == claim and mount_path(mc, "results") == root,
    )
    check(f"{where} merge: not a second Indexed Job", "completionMode" not in merge["spec"])
    fspec = fetch["spec"]
    check(
        f"{where} fetch: the same claim, mounted where the shards wrote",
        volume_claim(fspec, "results") == claim and mount_path(fspec["containers"][0], "results") == root,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(1 if failures else 0)
