#!/usr/bin/env python3
"""Rolling-restart rehearsal: three `meridian serve` replicas sharing one Redis behind haproxy.

haproxy health-checks each replica's admin /readyz; under steady mixed load (streams and
non-streamed completions, every request from a user in the mainland exported to a provider
outside it, so the export meter counts them), each replica in turn gets SIGTERM, exits, is
started again and waits until haproxy sees it up before the next one goes. Then it checks
what a user and an auditor would:

  * zero failed client requests, and every stream ends with `data: [DONE]` (or, counted
    apart, with the error event) -- no stream is cut without one;
  * every replica exited 0 at each SIGTERM;
  * the audit lines of the three files == the decided requests: every response's
    x-request-id exactly once, no other line; per replica, audit lines == the 2xx its
    processes reported in their `drained` log lines;
  * the limits are consistent across replicas: the tenant's day token budget in Redis used
    exactly the tokens the audit lines report, and no concurrent-stream lease is left;
  * the export meter in Redis == the distinct users served == the audit lines with
    new_individual.

The suite runs the short mode (one restart of each replica); `--long` runs more load and
three rounds of restarts for the figures in the closing note. Prints a summary and, with
--json FILE, writes the figures. Exit 0 on success, 1 with every failed check.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ADMIN_TOKEN = "rehearsal-admin-token-5f1c0e2a9b7d4c11"
METER_KEY = "rehearsal-meter-key-0123456789abcdef0123456789"
API_KEY = "sk-rehearsal-0123456789"
TENANT = "acme"
DAY_BUDGET = 10_000_000_000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout, what):
    """Polls `condition` until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    raise TimeoutError(what)


def http_status(port, path, timeout=1.0):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return None


def sha256_hex(text):
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


class Redis:
    def __init__(self, workdir):
        self.port = free_port()
        self.dir = os.path.join(workdir, "redis")
        os.makedirs(self.dir)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.cli("PING") == "PONG", 10, "redis-server did not answer PING")

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-p", str(self.port), "--raw", *args],
                           capture_output=True, text=True, check=False)
        return r.stdout.strip()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


POLICY = """version: 1
settings:
  default_data_class: personal
providers:
  - id: sim-us
    kind: sim
    models: {chat: sim}
    capabilities: [streaming]
    processing: [US]
    storage: [US]
    sim_tokens: 12
    sim_delay_ms: 4
routes:
  - id: everyone
    allow: [sim-us]
"""


def gateway_config(replica, api_port, admin_port, redis_port):
    return f"""listen: 127.0.0.1:{api_port}
workers: 2
policy_file: policy.yaml
admin:
  listen: 127.0.0.1:{admin_port}
  token_env: MERIDIAN_ADMIN_TOKEN
audit:
  path: audit-{replica}.jsonl
  flush_interval_ms: 50
log:
  access: false
limits:
  drain_delay_ms: 600
  drain_timeout_ms: 15000
store:
  kind: redis
  address: 127.0.0.1:{redis_port}
  command_timeout_ms: 1000
export_meter:
  hmac_key_env: MERIDIAN_METER_KEY
tenants:
  - id: {TENANT}
    api_key_sha256: [{sha256_hex(API_KEY)}]
    regions: [CN]
    default_region: CN
    limits:
      tokens_per_day: {DAY_BUDGET}
      concurrent_streams: 10000
"""


class Replica:
    def __init__(self, index, binary, workdir, redis_port):
        self.index = index
        self.binary = binary
        self.workdir = workdir
        self.api_port = free_port()
        self.admin_port = free_port()
        self.config = os.path.join(workdir, f"gateway-{index}.yaml")
        with open(self.config, "w") as f:
            f.write(gateway_config(index, self.api_port, self.admin_port, redis_port))
        self.log_path = os.path.join(workdir, f"replica-{index}.log")
        self.proc = None
        self.exit_codes = []

    def start(self):
        env = dict(os.environ, MERIDIAN_ADMIN_TOKEN=ADMIN_TOKEN, MERIDIAN_METER_KEY=METER_KEY)
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen([self.binary, "serve", "-c", self.config], env=env,
                                     stdout=log, stderr=log, cwd=self.workdir)
        log.close()
        wait_for(lambda: self.proc.poll() is not None or http_status(self.admin_port, "/readyz") == 200,
                 20, f"replica {self.index} did not become ready")
        if self.proc.poll() is not None:
            raise RuntimeError(f"replica {self.index} exited at start:\n" + self.log())

    def stop(self, timeout=30):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.exit_codes.append(code)
        return code

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def audit_path(self):
        return os.path.join(self.workdir, f"audit-{self.index}.jsonl")


class Haproxy:
    def __init__(self, workdir, replicas):
        self.port = free_port()
        self.socket_path = os.path.join(workdir, "haproxy.sock")
        self.config = os.path.join(workdir, "haproxy.cfg")
        servers = "\n".join(
            f"  server r{r.index} 127.0.0.1:{r.api_port} check port {r.admin_port}"
            for r in replicas)
        with open(self.config, "w") as f:
            f.write(f"""global
  stats socket {self.socket_path} mode 600 level admin
  maxconn 4096

defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  # One server connection per request: a replica that drains closes its idle keep-alive
  # connections, and a request must never be sent on one it is closing.
  option http-server-close
  retries 3
  option redispatch 1

frontend api
  bind 127.0.0.1:{self.port}
  default_backend meridian

backend meridian
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  # Down at the first failed probe (the replica's drain delay is 600 ms), up after two.
  default-server inter 100ms fall 1 rise 2
{servers}
""")
        check = subprocess.run(["haproxy", "-c", "-f", self.config], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError("haproxy -c refused the config:\n" + check.stdout + check.stderr)
        self.log_path = os.path.join(workdir, "haproxy.log")
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", self.config], stdout=log, stderr=log)
        log.close()
        wait_for(lambda: os.path.exists(self.socket_path), 10, "haproxy did not start")

    def server_status(self):
        """{'r0': 'UP', ...} from the stats socket."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(self.socket_path)
                s.sendall(b"show stat\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        except OSError:
            return {}
        lines = data.decode().splitlines()
        if not lines:
            return {}
        header = lines[0].lstrip("# ").split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == "meridian" and row.get("svname", "").startswith("r"):
                out[row["svname"]] = row.get("status", "")
        return out

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class Load:
    """Client threads sending mixed requests through haproxy until stopped."""

    def __init__(self, port, threads, users):
        self.port = port
        self.users = users
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.ok_ids = []
        self.users_served = set()
        self.failures = []
        self.streams_done = 0
        self.streams_error_event = 0
        self.json_done = 0
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(60)

    def run(self, index):
        rng = random.Random(index)
        conn = None
        while not self.stop_event.is_set():
            stream = rng.random() < 0.5
            user = f"user-{rng.randrange(self.users)}"
            body = {"model": "chat", "user": user,
                    "messages": [{"role": "user", "content": "hello from the rehearsal"}]}
            if stream:
                body["stream"] = True
                body["stream_options"] = {"include_usage": True}
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("POST", "/v1/chat/completions", json.dumps(body),
                             {"Authorization": f"Bearer {API_KEY}",
                              "Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read().decode()
                rid = resp.getheader("x-request-id", "")
                if resp.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.failures.append(f"{'stream' if stream else 'json'}: {type(e).__name__}: {e}")
                if conn is not None:
                    conn.close()
                conn = None
                continue
            with self.lock:
                if resp.status != 200:
                    self.failures.append(f"status {resp.status}: {data[:200]}")
                    continue
                if stream:
                    if data.rstrip().endswith("data: [DONE]") and '"error"' not in data:
                        self.streams_done += 1
                    elif '"error"' in data:
                        self.streams_error_event += 1
                        self.failures.append(f"stream ended with the error event: {data[-200:]}")
                        continue
                    else:
                        self.failures.append(f"stream cut without [DONE]: {data[-200:]}")
                        continue
                else:
                    self.json_done += 1
                self.ok_ids.append(rid)
                self.users_served.add(user)

    def completed(self):
        with self.lock:
            return len(self.ok_ids)


def read_audit(path):
    records = []
    if not os.path.exists(path):
        return records
    with open(path) as f:
        for line in f:
            records.append(json.loads(line))
    return records


def drained_2xx(log):
    """The 2xx each process of a replica reported in its `drained; since start:` line."""
    total = 0
    for line in log.splitlines():
        if "drained; since start:" in line and "(2xx " in line:
            total += int(line.split("(2xx ", 1)[1].split(",", 1)[0])
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True, help="the meridian binary")
    ap.add_argument("--long", action="store_true", help="more load, three rounds of restarts")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    for tool in ("haproxy", "redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            print(f"rolling_restart: {tool} is not installed (apt-get install haproxy redis-server)")
            return 77
    # Requests completed between two restarts (steady load), per mode.
    threads, rounds, between, users = (16, 3, 1500, 500) if args.long else (6, 1, 60, 60)
    workdir = tempfile.mkdtemp(prefix="meridian-rolling-")
    with open(os.path.join(workdir, "policy.yaml"), "w") as f:
        f.write(POLICY)
    problems = []
    timeline = []
    redis = haproxy = None
    replicas = []
    load = None
    t0 = time.monotonic()

    def at():
        return round(time.monotonic() - t0, 3)

    try:
        redis = Redis(workdir)
        replicas = [Replica(i, os.path.abspath(args.binary), workdir, redis.port) for i in range(3)]
        for r in replicas:
            r.start()
        haproxy = Haproxy(workdir, replicas)
        wait_for(lambda: list(haproxy.server_status().values()) == ["UP"] * 3, 10,
                 "haproxy never saw the three replicas up")
        load = Load(haproxy.port, threads, users)
        load.start()
        wait_for(lambda: load.completed() >= between, 60, "no steady load through haproxy")
        for round_ in range(rounds):
            for r in replicas:
                name = f"r{r.index}"
                event = {"round": round_ + 1, "replica": name, "sigterm_s": at(),
                         "completed_before": load.completed()}
                code = r.stop()
                event["exited_s"] = at()
                event["exit_code"] = code
                if code != 0:
                    problems.append(f"{name} exited {code} at SIGTERM")
                r.start()
                event["ready_s"] = at()
                wait_for(lambda: haproxy.server_status().get(name) == "UP", 10,
                         f"haproxy never saw {name} up again")
                event["back_in_haproxy_s"] = at()
                timeline.append(event)
                done = load.completed()
                wait_for(lambda: load.completed() >= done + between, 60,
                         "the load stopped completing requests")
        load.stop()
        for r in replicas:
            code = r.stop()
            if code != 0:
                problems.append(f"r{r.index} exited {code} at the final SIGTERM")
        duration = at()

        # What the clients saw.
        if load.failures:
            problems.append(f"{len(load.failures)} failed client requests, e.g. {load.failures[:3]}")
        # The audit trail.
        audit = {r.index: read_audit(r.audit_path()) for r in replicas}
        audited_ids = [rec["request_id"] for recs in audit.values() for rec in recs]
        if len(audited_ids) != len(set(audited_ids)):
            problems.append("a request id appears in more than one audit line")
        if set(audited_ids) != set(load.ok_ids) or len(audited_ids) != len(load.ok_ids):
            missing = set(load.ok_ids) - set(audited_ids)
            extra = set(audited_ids) - set(load.ok_ids)
            problems.append(f"audit lines {len(audited_ids)} != answered requests "
                            f"{len(load.ok_ids)} (missing {len(missing)}, extra {len(extra)})")
        per_replica = {}
        for r in replicas:
            reported = drained_2xx(r.log())
            per_replica[f"r{r.index}"] = {"audit_lines": len(audit[r.index]),
                                          "2xx_in_drained_lines": reported}
            if reported != len(audit[r.index]):
                problems.append(f"r{r.index}: audit lines {len(audit[r.index])} != the 2xx "
                                f"its processes reported ({reported})")
        # Limits: the day budget used exactly what the audit lines report; no lease left.
        tokens = 0
        for recs in audit.values():
            for rec in recs:
                if rec.get("total_tokens") is None:
                    problems.append(f"audit line without usage: {rec['request_id']}")
                else:
                    tokens += rec["total_tokens"]
        day_keys = redis.cli("--scan", "--pattern", "meridian:rl:{" + TENANT + "}:t:day:*").split()
        used = None
        if len(day_keys) != 1:
            problems.append(f"expected one day-budget key in Redis, found {day_keys}")
        else:
            level = float(redis.cli("HGET", day_keys[0], "level"))
            used = round(DAY_BUDGET - level)
            if used != tokens:
                problems.append(f"day budget used {used} tokens, the audit lines report {tokens}")
        leases = int(redis.cli("ZCARD", "meridian:rl:{" + TENANT + "}:t:streams") or 0)
        if leases != 0:
            problems.append(f"{leases} concurrent-stream leases left in Redis after every replica stopped")
        # The export meter.
        meter_keys = redis.cli("--scan", "--pattern", "meridian:meter:{" + TENANT + "}:*:ns").split()
        meter = int(redis.cli("SCARD", meter_keys[0])) if len(meter_keys) == 1 else None
        new_individuals = sum(1 for recs in audit.values() for rec in recs if rec.get("new_individual"))
        if meter != len(load.users_served) or new_individuals != len(load.users_served):
            problems.append(f"meter {meter}, audit new_individual {new_individuals}, distinct "
                            f"users served {len(load.users_served)}: they must be equal")

        figures = {
            "mode": "long" if args.long else "short",
            "duration_s": duration,
            "client_threads": threads,
            "requests_ok": len(load.ok_ids),
            "requests_failed": len(load.failures),
            "streams_complete": load.streams_done,
            "streams_ended_with_error_event": load.streams_error_event,
            "json_complete": load.json_done,
            "audit_lines": len(audited_ids),
            "per_replica": per_replica,
            "tokens_in_audit": tokens,
            "day_budget_used": used,
            "leases_left": leases,
            "meter_individuals": meter,
            "audit_new_individuals": new_individuals,
            "distinct_users_served": len(load.users_served),
            "restarts": timeline,
        }
        print(json.dumps(figures, indent=2))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(figures, f, indent=2)
    except (TimeoutError, RuntimeError, subprocess.TimeoutExpired) as e:
        problems.append(f"{type(e).__name__}: {e}")
        for r in replicas:
            print(f"--- replica {r.index} log (tail) ---\n" + r.log()[-3000:], file=sys.stderr)
    finally:
        if load is not None:
            load.stop_event.set()
        for r in replicas:
            if r.proc is not None and r.proc.poll() is None:
                r.proc.kill()
                r.proc.wait()
        if haproxy is not None:
            haproxy.stop()
        if redis is not None:
            redis.stop()
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    for p in problems:
        print(f"FAIL: {p}")
    if not problems:
        print("rolling restart: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
