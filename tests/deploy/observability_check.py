#!/usr/bin/env python3
"""Checks deploy/prometheus/ and deploy/grafana/: the alert rules load (`promtool check
rules`) and their unit tests pass (`promtool test rules`); every query of the dashboard parses
as PromQL (promtool, through a generated rule file); and every meridian_* / process_* metric
either queries is one the gateway exports (registered in gateway/*.cpp) and documents
(docs/operations.md), so a renamed metric cannot leave an alert that never fires or a panel
that stays empty.

usage: observability_check.py SOURCE_DIR
"""
import json
import pathlib
import re
import subprocess
import sys
import tempfile


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
    dashboard = json.loads((source / "deploy" / "grafana" / "meridian.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    if not exprs:
        failures.append("the dashboard has no queries")
    for p in dashboard["panels"]:
        if p.get("datasource", {}).get("uid") != "${datasource}":
            failures.append(f"panel {p.get('title')!r}: not on the ${{datasource}} variable")
    # PromQL syntax: each query as a recording rule, checked by promtool.
    with tempfile.TemporaryDirectory() as tmp:
        rule_file = pathlib.Path(tmp) / "dashboard.yml"
        lines = ["groups:", "  - name: dashboard", "    rules:"]
        for i, e in enumerate(exprs):
            lines += [f"      - record: dashboard:query{i}", f"        expr: {json.dumps(e)}"]
        rule_file.write_text("\n".join(lines) + "\n")
        r = subprocess.run(["promtool", "check", "rules", str(rule_file)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            failures.append(f"dashboard queries do not parse:\n{r.stdout}{r.stderr}")
    names = re.compile(r"\b((?:meridian|process)_[a-z_]+?)(?:_bucket)?\b")
    used = set(names.findall(rules))
    used |= {n for e in exprs for n in names.findall(e)}
    sources = "".join(p.read_text() for p in (source / "gateway").rglob("*.cpp"))
    docs = (source / "docs" / "operations.md").read_text()
    for name in sorted(used):
        if f'"{name}"' not in sources:
            failures.append(f"{name}: queried, not registered in gateway/")
        if f"`{name}`" not in docs:
            failures.append(f"{name}: queried, not in docs/operations.md")
    if not used:
        failures.append("no meridian_* metric found in the rules")

    for f in failures:
        print("FAIL:", f)
    if not failures:
        print(f"deploy/: rules load and pass their tests, {len(exprs)} dashboard queries parse, "
              f"the {len(used)} metrics they use exist")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
