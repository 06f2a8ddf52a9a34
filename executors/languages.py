"""How each language is compiled and run inside a sandbox, and the JavaScript assert harness."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from .schema import Limits

PATH = "/usr/local/bin:/usr/bin:/bin"
BASE_ENV = {"PATH": PATH, "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
NPROC = 64  # processes + threads per run
NOFILE = 256
FSIZE = 16 << 20  # largest file a run may write (its stdout included)
COMPILE_TIMEOUT_S = 60.0
COMPILE_MEMORY_MB = 2048


@dataclass(frozen=True)
class Language:
    name: str
    source_file: str
    compile_argv: tuple[str, ...] | None  # None: interpreted
    run_argv: tuple[str, ...]
    # address space allowed on top of the job's memory_mb (runtimes that reserve a lot of
    # virtual memory up front); None: no address-space limit
    as_headroom_mb: int | None = 0
    compile_env: tuple[tuple[str, str], ...] = ()


LANGS: dict[str, Language] = {
    "python": Language("python", "solution.py", None, ("/usr/bin/python3", "-I", "solution.py")),
    "javascript": Language(
        "javascript", "main.js", None, ("/usr/bin/node", "--stack-size=8000", "main.js"),
        as_headroom_mb=2048,
    ),
    "cpp": Language(
        "cpp", "main.cpp",
        ("/usr/bin/g++", "-O2", "-std=gnu++17", "-pipe", "-o", "prog", "main.cpp"),
        ("./prog",),
    ),
    "rust": Language(
        "rust", "main.rs",
        ("/usr/bin/rustc", "-O", "--edition=2021", "-o", "prog", "main.rs"),
        ("./prog",),
    ),
    "go": Language(
        "go", "main.go",
        ("/usr/bin/go", "build", "-o", "prog", "main.go"),  # no -trimpath: it rebuilds std (7 s)
        ("./prog",),
        as_headroom_mb=1024,
        compile_env=(("GOCACHE", "/tmp/gocache"), ("GOPATH", "/tmp/gopath"),
                     ("CGO_ENABLED", "0"), ("GO111MODULE", "off"), ("GOFLAGS", "")),
    ),
}


def run_limits(lang: Language, limits: Limits) -> dict:
    """The rlimits a candidate process gets, as the in-sandbox fork server expects them."""
    as_bytes = None
    if lang.as_headroom_mb is not None:
        as_bytes = (limits.memory_mb + lang.as_headroom_mb) << 20
    return {
        "timeout_s": limits.timeout_s,
        "cpu_s": limits.timeout_s,
        "as_bytes": as_bytes,
        "nproc": NPROC,
        "nofile": NOFILE,
        "fsize_bytes": max(FSIZE, limits.output_bytes + 1),
        "output_bytes": limits.output_bytes,
    }


def compile_limits() -> dict:
    """Limits of one compiler run. Its address space is bounded by COMPILE_MEMORY_MB per
    process: ``#include "/dev/zero"`` or ``include_bytes!("/dev/zero")`` makes cc1plus or
    rustc read forever, and without a bound they grow until the node runs out of memory (the
    slot's cgroup bounds the compiler's processes together as well)."""
    return {
        "timeout_s": COMPILE_TIMEOUT_S,
        "cpu_s": COMPILE_TIMEOUT_S * 4,  # compilers use threads
        "as_bytes": COMPILE_MEMORY_MB << 20,
        "nproc": 512,
        "nofile": 1024,
        "fsize_bytes": 256 << 20,
        "output_bytes": 64 << 10,
    }


def run_env(lang: Language, limits: Limits) -> dict[str, str]:
    env = dict(BASE_ENV)
    if lang.name == "go":
        env["GOMAXPROCS"] = "2"
        env["GOMEMLIMIT"] = f"{limits.memory_mb}MiB"
    return env


def js_argv(limits: Limits) -> list[str]:
    node, *rest = LANGS["javascript"].run_argv
    return [node, f"--max-old-space-size={max(16, limits.memory_mb)}", *rest]


def js_assert_harness(source: str, asserts: list[str], setup: str) -> tuple[str, str]:
    """A node script that runs the candidate, then each assert statement, printing one
    evidence line per passing test that carries a per-run nonce. Returns (script, nonce).

    The candidate shares the node process with these asserts (JavaScript has no process
    boundary we can cheaply put between them), so this format resists exits, thrown errors
    and printed markers, but not a program written to read its own harness; see README."""
    nonce = secrets.token_hex(16)
    lines = [
        "'use strict';",
        "const assert = require('assert');",
        "globalThis.assert = assert;",
        "const __fs = require('fs');",
        f"const __nonce = {json.dumps(nonce)};",
        "const __say = (s) => __fs.writeSync(1, s);",
        "process.on('exit', () => {});",
        "let __solution;",
        "try {",
        f"  require('vm').runInThisContext({json.dumps(source)}, {{filename: 'main.js'}});",
        "} catch (e) { __fs.writeSync(2, 'LOAD_ERROR ' + (e && e.stack || e) + '\\n');",
        "  process.exit(e instanceof SyntaxError ? 121 : 1); }",
    ]
    if setup:
        lines.append(f"require('vm').runInThisContext({json.dumps(setup)});")
    for i, a in enumerate(asserts):
        lines.append(
            "try { require('vm').runInThisContext(" + json.dumps(a) + ");"
            f" __say('\\n' + __nonce + ' {i} ok\\n'); }}"
            f" catch (e) {{ __fs.writeSync(2, 'TEST {i} ' + String(e && e.message || e).slice(0, 300) + '\\n'); }}"
        )
    return "\n".join(lines) + "\n", nonce
