"""Checks deploy/Containerfile offline, without a container engine.

Usage: check_containerfile.py REPO_ROOT

Parses the file with BuildKit's own parser (the `dockerfile` package wraps the Go parser that
`docker build` uses), then checks what the recipes rely on: a builder stage that runs
`cargo build --release --locked` for exactly the five binaries the image promises and copies
those five out, a runtime stage that gets them from the builder and runs as a numeric non-root
user, and COPY sources that exist in the repository. One line per check, "ok: ..." or
"FAIL: ...", and "note: ..." for a package the workspace does not have yet.
"""

import glob
import os
import re
import shlex
import sys

import dockerfile

BINARIES = {"oai-bench", "embed-bench", "tokenomics-merge", "plot-throughput", "oai-sim"}
failures = 0


def check(name, condition, detail=""):
    global failures
    if condition:
        print(f"ok: {name}")
    else:
        failures += 1
        print(f"FAIL: {name}" + (f": {detail}" if detail else ""))


def main(root):
    path = os.path.join(root, "deploy", "Containerfile")
    try:
        commands = dockerfile.parse_file(path)
    except dockerfile.GoParseError as e:
        check("Containerfile parses (BuildKit's parser)", False, str(e))
        return
    check("Containerfile parses (BuildKit's parser)", True)

    stages = []  # (name, [commands])
    for c in commands:
        if c.cmd == "FROM":
            name = c.value[2] if len(c.value) == 3 and c.value[1].upper() == "AS" else None
            stages.append((name, []))
        elif stages:
            stages[-1][1].append(c)
    check("two stages: builder, then runtime", [s[0] for s in stages] == ["builder", "runtime"], str(stages))
    if len(stages) != 2:
        return
    builder, runtime = stages[0][1], stages[1][1]

    # The shell commands of the builder's RUN steps, split at && and ;.
    steps = [
        shlex.split(part)
        for c in builder
        if c.cmd == "RUN"
        for part in re.split(r"&&|;", c.value[0])
        if part.strip()
    ]
    build = [w for w in steps if w[:2] == ["cargo", "build"]]
    check("the builder runs one cargo build", len(build) == 1, str(len(build)))
    if len(build) != 1:
        return
    words = build[0]
    copies = [w for w in steps if w[:1] == ["cp"]]
    check(
        "cargo build --release --locked",
        words[:2] == ["cargo", "build"] and "--release" in words and "--locked" in words,
        " ".join(words),
    )
    packages = {words[i + 1] for i, w in enumerate(words[:-1]) if w == "-p"}
    check("it builds exactly " + ", ".join(sorted(BINARIES)), packages == BINARIES, str(sorted(packages)))
    copied = {os.path.basename(w) for cp in copies for w in cp if w.startswith("target/release/")}
    check("it copies exactly those binaries out of target/release", copied == BINARIES, str(sorted(copied)))
    members = set()
    for manifest in glob.glob(os.path.join(root, "bins", "*", "Cargo.toml")) + glob.glob(
        os.path.join(root, "crates", "*", "Cargo.toml")
    ):
        with open(manifest, encoding="utf-8") as f:
            m = re.search(r'^name\s*=\s*"([^"]+)"', f.read(), re.M)
        if m:
            members.add(m.group(1))
    check(
        "every package it builds is in the workspace",
        packages <= members,
        "missing: " + ", ".join(sorted(packages - members)),
    )

    for c in builder:
        if c.cmd == "COPY" and not any(f.startswith("--from") for f in c.flags):
            for src in c.value[:-1]:
                check(f"COPY source {src} exists", os.path.exists(os.path.join(root, src)))

    from_builder = [c for c in runtime if c.cmd == "COPY" and "--from=builder" in c.flags]
    check("the runtime stage copies the binaries from the builder", len(from_builder) == 1)
    users = [c.value[0] for c in runtime if c.cmd == "USER"]
    last = users[-1] if users else ""
    uid = last.split(":")[0]
    check(
        "the runtime stage runs as a numeric non-root user (Kubernetes can check runAsNonRoot)",
        re.fullmatch(r"[1-9][0-9]*", uid) is not None,
        last or "no USER",
    )


if __name__ == "__main__":
    main(sys.argv[1])
    sys.exit(1 if failures else 0)
