"""``python -m executors run|bench|selfcheck``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

from .runner import Runner
from .sandbox import IsolationError, Sandbox, claim_slots, release_slots
from .sandboxed.codec import big_int
from .schema import invalid


def read_jobs(stream: BinaryIO) -> Iterator[Any]:
    """Decoded job objects; a line that is not UTF-8 JSON yields an invalid-job marker, so
    that no line, however malformed, ends the run (and the verdicts still in flight)."""
    for n, raw in enumerate(stream, 1):
        if not raw.strip():
            continue
        try:
            yield json.loads(raw.decode("utf-8"), parse_int=big_int)
        except UnicodeDecodeError as e:
            yield _BadLine(n, f"not valid UTF-8 ({e.reason} at byte {e.start})")
        except ValueError as e:  # JSONDecodeError, or an integer too long to judge
            yield _BadLine(n, f"not valid JSON ({e})")
        except RecursionError:
            yield _BadLine(n, "not valid JSON (nested too deeply)")


class _BadLine:
    def __init__(self, n: int, err: str) -> None:
        self.msg = f"line {n}: {err}"


def cmd_run(args: argparse.Namespace) -> int:
    stream = open(args.input, "rb") if args.input else sys.stdin.buffer
    out = sys.stdout
    try:
        with Runner(args.workers, allow_js_asserts=args.allow_js_asserts) as runner:
            bad: list[dict] = []

            def jobs() -> Iterator[Any]:
                for obj in read_jobs(stream):
                    if isinstance(obj, _BadLine):
                        bad.append(invalid("", obj.msg).to_dict())
                        continue
                    yield obj

            for verdict in runner.run(jobs()):
                while bad:
                    out.write(json.dumps(bad.pop()) + "\n")
                out.write(json.dumps(verdict) + "\n")
                out.flush()
            for v in bad:
                out.write(json.dumps(v) + "\n")
    except IsolationError as e:
        print(f"executors: {e}", file=sys.stderr)
        return 3
    return 0


def cmd_selfcheck(args: argparse.Namespace) -> int:
    (slot,), fds = claim_slots(1)
    box = Sandbox(slot)
    try:
        box.start()
    except IsolationError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 3
    finally:
        box.close()
        release_slots(fds)
    print(json.dumps({"isolation": "ok", **box.probe}))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m executors")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="read jobs as JSON lines, write one verdict per line")
    r.add_argument("--input", help="a JSONL file of jobs (default: stdin)")
    r.add_argument("--workers", type=int, default=None, help="sandboxes (default: one per core)")
    r.add_argument("--allow-js-asserts", action="store_true",
                   help="run JavaScript asserts jobs, whose tests a program can forge "
                        "(evaluation of trusted programs only, never training)")
    b = sub.add_parser("bench", help="HumanEval throughput: executor vs fresh firejail vs fork")
    b.add_argument("--workers", type=int, default=None)
    b.add_argument("--repeat", type=int, default=3, help="passes over the 164 problems")
    b.add_argument("--fleet", action="store_true",
                   help="compare the Ray executor fleet with the local runner instead")
    b.add_argument("--hostile", type=float, default=None, metavar="FRACTION",
                   help="honest programs beside hostile ones instead: throughput next to a "
                        "hostile stream, and a job set with this fraction of hostile jobs")
    sub.add_parser("selfcheck", help="start one sandbox and verify isolation is in force")
    args = p.parse_args(argv)
    if args.cmd == "run":
        return cmd_run(args)
    if args.cmd == "selfcheck":
        return cmd_selfcheck(args)
    if args.hostile is not None:
        if not 0 <= args.hostile < 1:
            p.error(f"--hostile is a fraction of the jobs, in [0, 1): got {args.hostile}")
        from .loadbench import main as hostile_main

        return hostile_main(args.workers or os.cpu_count() or 1, args.hostile, args.repeat)
    from .bench import main as bench_main

    return bench_main(args)


if __name__ == "__main__":
    sys.exit(main())
