#!/usr/bin/env python3
"""Checks what a host or an image needs to run the built gateway:

- deploy/runtime-packages.txt names the Debian package of every library `ldd` resolves for the
  binary (libc6 and libgcc-s1 are in every Debian image), and nothing the binary does not use
  (ca-certificates aside: provider TLS needs it);
- `cmake --install` puts the binary, the systemd unit and the example configs in place;
- deploy/container/Dockerfile builds on debian:12 with packages of scripts/install-deps.sh,
  installs runtime-packages.txt on debian:12-slim, runs as a numeric non-root user, and has a
  healthcheck. (Building the image needs a container engine: see deploy/README.md.)

usage: runtime_packages_check.py SOURCE_DIR BUILD_DIR MERIDIAN_BINARY
"""
import os
import pathlib
import re
import subprocess
import sys
import tempfile

IN_EVERY_IMAGE = {"libc6", "libgcc-s1"}
NOT_LINKED = {"ca-certificates"}


def package_of(path):
    for candidate in (path, os.path.realpath(path)):
        for p in {candidate, candidate.replace("/usr/lib/", "/lib/", 1),
                  candidate.replace("/lib/", "/usr/lib/", 1)}:
            r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
            if r.returncode == 0:
                return r.stdout.split(":", 1)[0].strip()
    return None


def main() -> int:
    source, build, binary = (pathlib.Path(a) for a in sys.argv[1:4])
    failures = []
    listed = {l.strip() for l in (source / "deploy" / "runtime-packages.txt").read_text()
              .splitlines() if l.strip() and not l.startswith("#")}
    ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    needed = set()
    for line in ldd.splitlines():
        m = re.search(r"=> (/\S+)", line)
        if not m:
            continue
        pkg = package_of(m.group(1))
        if pkg is None:
            failures.append(f"{m.group(1)}: no Debian package owns it")
        else:
            needed.add(pkg)
    for pkg in sorted(needed - listed - IN_EVERY_IMAGE):
        failures.append(f"{pkg}: the binary links it, deploy/runtime-packages.txt does not list it")
    for pkg in sorted(listed - needed - NOT_LINKED):
        failures.append(f"{pkg}: listed in deploy/runtime-packages.txt, the binary does not use it")

    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run(["cmake", "--install", str(build), "--prefix", tmp],
                           capture_output=True, text=True)
        if r.returncode != 0:
            failures.append(f"cmake --install failed:\n{r.stdout}{r.stderr}")
        for f in ("bin/meridian", "lib/systemd/system/meridian.service",
                  "share/meridian/examples/gateway.yaml", "share/meridian/examples/policy.yaml"):
            if not (pathlib.Path(tmp) / f).exists():
                failures.append(f"cmake --install does not install {f}")

    docker = (source / "deploy" / "container" / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", docker, re.M)
    if stages != ["debian:12", "debian:12-slim"]:
        failures.append(f"Dockerfile stages {stages}, expected debian:12 then debian:12-slim")
    deps = (source / "scripts" / "install-deps.sh").read_text()
    build_stage = docker.split("FROM debian:12-slim")[0]
    apt = re.search(r"apt-get install -y --no-install-recommends(.*?)&&", build_stage, re.S)
    for pkg in (apt.group(1).replace("\\", " ").split() if apt else []):
        if not re.search(rf"(^|\s){re.escape(pkg)}(\s|$)", deps, re.M):
            failures.append(f"Dockerfile build package {pkg} is not in scripts/install-deps.sh")
    if "runtime-packages.txt" not in docker.split("FROM debian:12-slim")[-1]:
        failures.append("the runtime stage must install deploy/runtime-packages.txt")
    user = re.findall(r"^USER (\S+)", docker, re.M)
    if not user or not re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user[-1]):
        failures.append(f"the image must run as a numeric non-root user, has {user}")
    if "HEALTHCHECK" not in docker:
        failures.append("the image has no HEALTHCHECK")

    for f in failures:
        print("FAIL:", f)
    if not failures:
        print(f"runtime: {len(needed)} packages needed, all listed; install and Dockerfile hold")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
