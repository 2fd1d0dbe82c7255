#!/usr/bin/env python3
"""Renders deploy/kubernetes (the base and every overlay) with `kubectl kustomize` and checks
what deploy/README.md promises of it:

- probes on the admin port, which no Service exposes and only the monitoring namespace may
  reach (NetworkPolicy); the API port only from the ingress controller's namespace;
- terminationGracePeriodSeconds above the config's drain_delay_ms + drain_timeout_ms;
- a non-root, read-only, capability-free container with resources; a PodDisruptionBudget and
  a CPU HorizontalPodAutoscaler;
- the policy as a stable-named ConfigMap mounted as a directory (the symlink swap the gateway
  hot-reloads), the gateway config as a hashed one (a change rolls the pods);
- secrets referenced, never rendered (no Secret object, no key material);
- per overlay: its own namespace, the ingress asserting its region through the header the
  gateway's trusted_proxies read, its own Redis; and its gateway config and policy pass
  `meridian check` as `serve` would read them.

usage: kubernetes_check.py SOURCE_DIR MERIDIAN_BINARY
"""
import os
import pathlib
import subprocess
import sys
import tempfile

import yaml

EXPECTED_REGIONS = {"cn-north": "CN", "hk": "HK", "eu-west": "DE", "us-east": "US"}


def render(path):
    r = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path}: {r.stderr}")
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def check(name, docs, binary, failures, region=None):
    def fail(msg):
        failures.append(f"{name}: {msg}")

    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    if "Secret" in by_kind:
        fail("renders a Secret: credentials must come from the operator, not this tree")
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler",
                 "NetworkPolicy", "Ingress"):
        if len(by_kind.get(kind, [])) != 1:
            fail(f"expected one {kind}, got {len(by_kind.get(kind, []))}")
    if failures and failures[-1].startswith(name):
        return
    namespaces = {d["metadata"].get("namespace") for d in docs}
    if region and (len(namespaces) != 1 or None in namespaces):
        fail(f"every object in one namespace of its own, got {namespaces}")

    dep = by_kind["Deployment"][0]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        if c.get(probe, {}).get("httpGet", {}).get("port") != "admin":
            fail(f"{probe} must be on the admin port")
    if c["readinessProbe"]["httpGet"]["path"] != "/readyz":
        fail("readiness must be /readyz (it fails as soon as a drain starts)")
    sc = c.get("securityContext", {})
    if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
            and sc.get("capabilities", {}).get("drop") == ["ALL"]):
        fail("container must be read-only, without privilege escalation, capabilities dropped")
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        fail("pod must run as non-root")
    if not c.get("resources", {}).get("requests", {}).get("cpu"):
        fail("a CPU request is needed (the HPA scales on its utilization)")

    configmaps = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    gateway_cm = [n for n in configmaps if n.startswith("meridian-gateway-")]
    if len(gateway_cm) != 1:
        fail(f"one hashed meridian-gateway ConfigMap expected, got {list(configmaps)}")
        return
    if "meridian-policy" not in configmaps:
        fail("the policy ConfigMap must keep the name meridian-policy (no hash suffix)")
        return
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    if volumes["policy"]["configMap"]["name"] != "meridian-policy" or "subPath" in mounts["policy"]:
        fail("the policy must be mounted whole (no subPath), or the symlink swap never arrives")
    config = yaml.safe_load(configmaps[gateway_cm[0]]["data"]["gateway.yaml"])
    limits = config.get("limits", {})
    drain_s = (limits.get("drain_delay_ms", 0) + limits.get("drain_timeout_ms", 30000)) / 1000
    if pod.get("terminationGracePeriodSeconds", 30) <= drain_s:
        fail(f"terminationGracePeriodSeconds {pod.get('terminationGracePeriodSeconds')} must "
             f"exceed the drain ({drain_s} s)")
    admin_port = int(config["admin"]["listen"].rsplit(":", 1)[1])
    if ports.get("admin") != admin_port:
        fail(f"container port admin {ports.get('admin')} != the config's {admin_port}")
    if int(config["listen"].rsplit(":", 1)[1]) != ports.get("http"):
        fail("container port http != the config's listen port")
    if config["policy_file"] != mounts["policy"]["mountPath"] + "/policy.yaml":
        fail("policy_file must be the mounted policy")

    svc = by_kind["Service"][0]
    if any(p.get("targetPort") in ("admin", admin_port) for p in svc["spec"]["ports"]):
        fail("the Service must not expose the admin port")
    netpol = by_kind["NetworkPolicy"][0]["spec"]
    admin_from = [r for r in netpol["ingress"] if {"port": "admin"} in r.get("ports", [])]
    if len(admin_from) != 1 or admin_from[0]["from"] != [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]:
        fail("the admin port must be reachable from the monitoring namespace only")
    pdb = by_kind["PodDisruptionBudget"][0]["spec"]
    if pdb["selector"]["matchLabels"] != dep["spec"]["selector"]["matchLabels"]:
        fail("the PodDisruptionBudget must select the Deployment's pods")
    hpa = by_kind["HorizontalPodAutoscaler"][0]["spec"]
    if hpa["metrics"][0]["resource"]["name"] != "cpu" or hpa["minReplicas"] < 2:
        fail("the HPA scales on CPU from at least 2 replicas")

    ingress = by_kind["Ingress"][0]
    header_cm = configmaps.get("meridian-ingress-headers", {}).get("data", {})
    asserted = header_cm.get(config["trusted_proxies"]["region_header"])
    if region:
        ns = namespaces.pop()
        if asserted != region:
            fail(f"the ingress asserts {asserted!r}, expected {region}")
        want = f"{ns}/meridian-ingress-headers"
        if ingress["metadata"]["annotations"].get(
                "nginx.ingress.kubernetes.io/proxy-set-headers") != want:
            fail(f"the Ingress must set its headers from {want}")
        if region not in config["tenants"][0]["regions"]:
            fail(f"{region} is not one of the tenant's regions: the assertion would be refused")
        if ns not in config["store"]["address"]:
            fail(f"the store {config['store']['address']} is not this region's ({ns})")

    # What serve would say about the config and the policy, as mounted.
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        (root / "policy.yaml").write_text(configmaps["meridian-policy"]["data"]["policy.yaml"])
        text = configmaps[gateway_cm[0]]["data"]["gateway.yaml"]
        (root / "gateway.yaml").write_text(
            text.replace(mounts["policy"]["mountPath"] + "/policy.yaml", str(root / "policy.yaml")))
        env = dict(os.environ, MERIDIAN_ADMIN_TOKEN="t" * 32, MERIDIAN_REDIS_PASSWORD="pw",
                   MERIDIAN_METER_KEY="k" * 32)
        r = subprocess.run([binary, "check", "--simulate", "-c", str(root / "gateway.yaml")],
                           capture_output=True, text=True, env=env)
        if r.returncode != 0:
            fail(f"meridian check refuses its config:\n{r.stdout}{r.stderr}")


def main() -> int:
    source, binary = pathlib.Path(sys.argv[1]), str(pathlib.Path(sys.argv[2]).resolve())
    kube = source / "deploy" / "kubernetes"
    failures = []
    check("base", render(kube / "base"), binary, failures)
    overlays = sorted(p.name for p in (kube / "overlays").iterdir() if p.is_dir())
    if overlays != sorted(EXPECTED_REGIONS):
        failures.append(f"overlays {overlays}, expected {sorted(EXPECTED_REGIONS)}")
    for o in overlays:
        check(o, render(kube / "overlays" / o), binary, failures, EXPECTED_REGIONS.get(o))
    base_policy = (kube / "base" / "policy.yaml").read_text()
    if base_policy != (source / "config" / "examples" / "policy.yaml").read_text():
        failures.append("deploy/kubernetes/base/policy.yaml differs from config/examples/")
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print(f"deploy/kubernetes: base and {len(overlays)} overlays render and hold")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
