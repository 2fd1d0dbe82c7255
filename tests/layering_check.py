#!/usr/bin/env python3
"""Fails when a source file includes a project header across a forbidden edge.

The layers (docs/architecture.md, "Modules and their dependencies"): gateway/core is the leaf
every module may use and that uses nothing of ours; policy uses only itself; config reads
policy files; providers see gateway/core and never policy or the front ends; a vendor's codec
and adapter never include another vendor's; the pure codecs of the front ends and the
classifier stay off the wiring. A file is checked against the rule of the longest path prefix
that names it; files no rule names (the wiring in gateway/, the CLI, tests) may include
anything. Only "..." includes of project headers count (<...> system headers are free).

    tests/layering_check.py [SOURCE_DIR]     exit 1 and one line per forbidden include
"""
import pathlib
import re
import sys

CORE = ["gateway/core/"]
PROVIDER_BASE = CORE + ["providers/common/", "providers/provider.h"]

HTTP_CODEC = ["gateway/http/chat_request.h", "gateway/http/chat_response.h",
              "gateway/http/error_mapping.h", "gateway/http/request_fields.h",
              "gateway/http/responses_request.h", "gateway/http/responses_response.h",
              "gateway/http/messages_request.h", "gateway/http/messages_response.h",
              "gateway/http/completions_request.h", "gateway/http/completions_response.h",
              "gateway/http/embeddings_request.h", "gateway/http/embeddings_response.h"]

# prefix of the including file -> prefixes it may include
RULES = {
    "gateway/core/": CORE,
    "policy/": ["policy/"],
    "config/": ["config/", "policy/"],
    "providers/provider.h": CORE,
    "providers/common/": PROVIDER_BASE,
    "providers/openai/": PROVIDER_BASE + ["providers/openai/"],
    "providers/dashscope/": PROVIDER_BASE + ["providers/dashscope/"],
    "providers/anthropic/": PROVIDER_BASE + ["providers/anthropic/"],
    "providers/sim/": PROVIDER_BASE + ["providers/sim/"],
    "gateway/http/chat_": CORE + HTTP_CODEC,
    "gateway/http/responses_": CORE + HTTP_CODEC,
    "gateway/http/messages_": CORE + HTTP_CODEC,
    "gateway/http/completions_": CORE + HTTP_CODEC,
    "gateway/http/embeddings_": CORE + HTTP_CODEC,
    "gateway/http/request_fields": CORE + HTTP_CODEC,
    "gateway/http/error_mapping": CORE + HTTP_CODEC,
    "gateway/grpc/grpc_codec": CORE + ["gateway/grpc/grpc_codec.h", "meridian/v1/", "policy/"],
    "gateway/grpc/client_cert": CORE + ["gateway/grpc/client_cert.h"],
    "gateway/classifier": CORE + ["gateway/classifier.h", "policy/"],
    "gateway/residency_echo": CORE + ["gateway/residency_echo.h", "policy/"],
    "gateway/identity": CORE + ["gateway/identity.h", "policy/", "config/"],
    "gateway/metrics.": ["gateway/metrics.h"],
    "gateway/audit.": CORE + ["gateway/audit.h", "gateway/audit_chain.h"],
    "gateway/audit_": CORE + ["gateway/audit_chain.h", "gateway/audit_verify.h"],
    "gateway/store/resp": ["gateway/store/resp.h"],
    "gateway/store/": CORE + ["gateway/store/"],
}

# prefix of the including file -> prefixes it must not include (on top of RULES): the front
# ends stay apart, sharing only what lies below them (the exchange, worker.h, pipeline, router).
FRONT_ENDS = ["gateway/http/", "gateway/grpc/"]
FORBIDDEN = {
    "gateway/grpc/": ["gateway/http/"],
    "gateway/http/": ["gateway/grpc/"],
    # What the front ends share knows none of them: a new ingress API is a codec and a writer.
    "gateway/exchange": FRONT_ENDS,
    "gateway/pipeline": FRONT_ENDS,
    "gateway/router": FRONT_ENDS,
    "gateway/routing_table": FRONT_ENDS,
    "gateway/worker": FRONT_ENDS,
    "gateway/runtime": FRONT_ENDS,
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
PROJECT_DIRS = ("gateway/", "policy/", "config/", "providers/", "proto/", "meridian/")


def rule_for(path: str):
    best = None
    for prefix in RULES:
        if path.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return best


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    problems = []
    checked = 0
    for top in ("gateway", "policy", "config", "providers"):
        for f in sorted((root / top).rglob("*")):
            if f.suffix not in (".h", ".cpp") or not f.is_file():
                continue
            rel = f.relative_to(root).as_posix()
            prefix = rule_for(rel)
            forbidden = [b for p, bans in FORBIDDEN.items() if rel.startswith(p) for b in bans]
            if prefix is None and not forbidden:
                continue
            checked += 1
            allowed = RULES[prefix] if prefix else None
            for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
                m = INCLUDE.match(line)
                if not m or not m.group(1).startswith(PROJECT_DIRS):
                    continue
                target = m.group(1)
                if allowed is not None and not any(target.startswith(a) for a in allowed):
                    problems.append(f"{rel}:{n}: includes {target}, outside what "
                                    f"'{prefix}' may use: {', '.join(allowed)}")
                elif any(target.startswith(b) for b in forbidden):
                    problems.append(f"{rel}:{n}: includes {target}: the front ends stay apart "
                                    f"(they share worker.h, the pipeline and the router)")
    for p in problems:
        print(p)
    if checked == 0:
        print(f"layering_check: no files checked under {root}", file=sys.stderr)
        return 1
    print(f"layering_check: {checked} files, {len(problems)} forbidden include(s)",
          file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
