#!/usr/bin/env python3
"""Checks deploy/meridian.service as an operator's systemd would read it.

`systemd-analyze verify` on a copy whose ExecStart names the built binary must pass without a
single message (an unknown or misspelt key is only a warning to systemd, so any output fails
here), and the unit must keep the promises deploy/README.md makes: a writable log and state
directory under DynamicUser + ProtectSystem=strict, SIGHUP on reload, a stop timeout above the
default drain, secrets through EnvironmentFile / LoadCredential, no capability unless asked.

usage: systemd_unit_check.py SOURCE_DIR MERIDIAN_BINARY
"""
import pathlib
import re
import subprocess
import sys
import tempfile

DEFAULT_DRAIN_S = 30  # drain_delay_ms 0 + drain_timeout_ms 30000 (config/gateway_config.h)


def main() -> int:
    source, binary = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]).resolve()
    text = (source / "deploy" / "meridian.service").read_text()
    failures = []

    settings = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key, []).append(value)

    def expect(key, pattern, why):
        values = settings.get(key, [])
        if not any(re.fullmatch(pattern, v) for v in values):
            failures.append(f"{key}= should match {pattern!r} ({why}); has {values}")

    expect("ExecStart", r"/usr/local/bin/meridian serve --config /etc/meridian/gateway\.yaml",
           "the documented install paths")
    expect("ExecReload", r"/bin/kill -HUP \$MAINPID", "systemctl reload = policy reload")
    expect("DynamicUser", "yes", "no fixed account")
    expect("ProtectSystem", "strict", "read-only file system")
    expect("LogsDirectory", "meridian", "the audit log under /var/log/meridian is writable")
    expect("StateDirectory", "meridian", "a writable /var/lib/meridian")
    expect("EnvironmentFile", r"-/etc/meridian/credentials\.env", "credentials read by systemd")
    expect("CapabilityBoundingSet", "", "no capability by default")
    expect("KillMode", "mixed", "SIGTERM to the gateway only, so it drains")
    if "AmbientCapabilities" in settings:
        failures.append("AmbientCapabilities= must stay commented out unless a low port is used")
    if not re.search(r"^#LoadCredential=server\.key:", text, re.M):
        failures.append("the LoadCredential= example for TLS keys is gone")
    stop = settings.get("TimeoutStopSec", ["90"])[-1]
    if not stop.isdigit() or int(stop) <= DEFAULT_DRAIN_S:
        failures.append(f"TimeoutStopSec={stop} must exceed the default drain ({DEFAULT_DRAIN_S} s)")

    with tempfile.TemporaryDirectory() as tmp:
        unit = pathlib.Path(tmp) / "meridian.service"
        unit.write_text(text.replace("/usr/local/bin/meridian", str(binary)))
        r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                           text=True)
        messages = (r.stdout + r.stderr).strip()
        if r.returncode != 0 or messages:
            failures.append(f"systemd-analyze verify (rc {r.returncode}):\n{messages}")

    for f in failures:
        print("FAIL:", f)
    if not failures:
        print("deploy/meridian.service: systemd-analyze verify clean; invariants hold")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
