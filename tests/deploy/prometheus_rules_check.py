#!/usr/bin/env python3
"""Checks deploy/prometheus/: the alert rules load (`promtool check rules`), their unit tests
pass (`promtool test rules`), and every meridian_* metric they query is one the gateway
exports (registered in gateway/*.cpp) and documents (docs/operations.md), so a renamed metric
cannot leave an alert that never fires.

usage: prometheus_rules_check.py SOURCE_DIR
"""
import pathlib
import re
import subprocess
import sys


def main() -> int:
    source = pathlib.Path(sys.argv[1])
    rules_dir = source / "deploy" / "prometheus"
    failures = []
    for args in (["promtool", "check", "rules", "meridian-alerts.yml"],
                 ["promtool", "test", "rules", "meridian-alerts.test.yml"]):
        r = subprocess.run(args, cwd=rules_dir, capture_output=True, text=True)
        if r.returncode != 0:
            failures.append(f"{' '.join(args)} (rc {r.returncode}):\n{r.stdout}{r.stderr}")

    rules = (rules_dir / "meridian-alerts.yml").read_text()
    used = set(re.findall(r"\b(meridian_[a-z_]+)\b", rules))
    sources = "".join(p.read_text() for p in (source / "gateway").rglob("*.cpp"))
    docs = (source / "docs" / "operations.md").read_text()
    for name in sorted(used):
        if f'"{name}"' not in sources:
            failures.append(f"{name}: queried by an alert, not registered in gateway/")
        if f"`{name}`" not in docs:
            failures.append(f"{name}: queried by an alert, not in docs/operations.md")
    if not used:
        failures.append("no meridian_* metric found in the rules")

    for f in failures:
        print("FAIL:", f)
    if not failures:
        print(f"deploy/prometheus: rules load, unit tests pass, {len(used)} metrics exist")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
