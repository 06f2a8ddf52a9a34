"""The single-node runner: one warm sandbox per worker slot, a worker per core.

``Runner.submit`` takes a job dict and returns a future of its verdict dict; ``Runner.run``
streams verdicts of many jobs as they finish. Compiled programs are built once per distinct
(language, source) in a sandbox and cached by content hash.
"""

from __future__ import annotations

import base64
import hashlib
import os
import queue
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import Any

from . import languages as L
from .compare import compare_output, plain_equal
from .inbox import decode
from .sandbox import (
    IsolationError,
    Sandbox,
    SandboxConfig,
    SandboxError,
    claim_slots,
    release_slots,
)
from .schema import InvalidJob, Job, TestResult, Verdict, invalid, job_id_of, parse_job

TAIL = 2048  # bytes of stdout/stderr kept in a verdict
MEMORY_MARKERS = ("MemoryError", "bad_alloc", "memory allocation of", "out of memory",
                  "JavaScript heap out of memory", "Cannot allocate memory")


class CompileCache:
    """Content-addressed cache of compiled programs, bounded in bytes, shared by all slots.
    Concurrent requests for the same key wait for one compilation."""

    def __init__(self, max_bytes: int = 512 << 20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[bytes | None, str]] = OrderedDict()
        self._pending: dict[str, threading.Event] = {}
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(lang: str, source: str) -> str:
        argv = " ".join(L.LANGS[lang].compile_argv or ())
        return hashlib.sha256(f"{lang}\0{argv}\0{source}".encode()).hexdigest()

    def get_or_build(self, key: str, build) -> tuple[bytes | None, str, bool]:
        """(binary or None on compile error, compiler message, was_cached)."""
        while True:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    self.hits += 1
                    return (*self._items[key], True)
                ev = self._pending.get(key)
                if ev is None:
                    self._pending[key] = threading.Event()
                    self.misses += 1
                    break
            ev.wait()
        try:
            binary, msg = build()
            with self._lock:
                self._items[key] = (binary, msg)
                self._size += len(binary or b"")
                while self._size > self.max_bytes and len(self._items) > 1:
                    _, (b, _) = self._items.popitem(last=False)
                    self._size -= len(b or b"")
            return binary, msg, False
        finally:
            with self._lock:
                self._pending.pop(key).set()


class Runner:
    """Runs jobs on ``workers`` warm sandboxes (default: one per core)."""

    def __init__(self, workers: int | None = None, cfg: SandboxConfig | None = None,
                 max_retries: int = 2, recycle_after: int = 5000) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.cfg = cfg or SandboxConfig()
        self.max_retries = max_retries
        self.recycle_after = recycle_after
        self.cache = CompileCache()
        self._queue: queue.Queue = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._sandboxes: list[Sandbox] = []
        self._slot_fds: list[int] = []
        self.stats = {"jobs": 0, "retries": 0, "restarts": 0}
        self._stats_lock = threading.Lock()

    # -- lifecycle
    def start(self) -> Runner:
        """Start every sandbox and check its isolation; raise IsolationError if not in force."""
        slots, self._slot_fds = claim_slots(self.workers)
        boxes = [Sandbox(i, self.cfg) for i in slots]
        try:
            for b in boxes:
                b.start()
        except BaseException:
            for b in boxes:
                b.close()
            release_slots(self._slot_fds)
            raise
        self._sandboxes = boxes
        for b in boxes:
            t = threading.Thread(target=self._worker, args=(b,), daemon=True,
                                 name=f"executor-slot-{b.slot}")
            t.start()
            self._threads.append(t)
        return self

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout=30)
        for b in self._sandboxes:
            b.close()
        release_slots(self._slot_fds)
        self._threads, self._sandboxes, self._slot_fds = [], [], []

    def __enter__(self) -> Runner:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- API
    def submit(self, obj: Any) -> Future:
        """Queue one job (a dict as in the JSON contract); the future yields its verdict dict."""
        fut: Future = Future()
        try:
            job = parse_job(obj)
        except InvalidJob as e:
            fut.set_result(invalid(job_id_of(obj), str(e)).to_dict())
            return fut
        if not self._threads:
            raise RuntimeError("Runner.start() has not been called")
        self._queue.put((job, fut))
        return fut

    def run(self, jobs: Iterable[Any], window: int | None = None) -> Iterator[dict]:
        """Yield one verdict per job, in completion order, keeping at most ``window`` queued."""
        window = window or self.workers * 4
        done: queue.Queue = queue.Queue()
        inflight = 0
        for obj in jobs:
            self.submit(obj).add_done_callback(done.put)
            inflight += 1
            while inflight >= window:
                yield done.get().result()
                inflight -= 1
            while not done.empty():
                yield done.get().result()
                inflight -= 1
        while inflight:
            yield done.get().result()
            inflight -= 1

    # -- worker
    def _worker(self, box: Sandbox) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job, fut = item
            try:
                verdict = self.execute(box, job)
            except Exception as e:  # an executor bug must still give the job a verdict
                verdict = Verdict(job.id, "sandbox_error", 0, test_count(job), [], 0.0,
                                  message=f"executor error: {type(e).__name__}: {e}")
            with self._stats_lock:
                self.stats["jobs"] += 1
                self.stats["retries"] += verdict.retries
            fut.set_result(verdict.to_dict())

    def execute(self, box: Sandbox, job: Job) -> Verdict:
        """Run one job in ``box``, restarting the sandbox and retrying on infrastructure failure.

        A job that brings its sandbox down on every try is the program's doing: after the
        retries it is judged ``runtime_error``. A sandbox that cannot be restarted is
        ``sandbox_error``."""
        t0 = time.monotonic()
        last = ""
        for attempt in range(self.max_retries + 1):
            try:
                if not box.alive or box.runs >= self.recycle_after:
                    self._restart(box)
                box.fit_memory(job.limits.memory_mb)
                v = self._execute_once(box, job)
                if box.infrastructure_changed():  # the job crippled its sandbox: not reused
                    box.close()
                v.retries = attempt
                v.duration_s = time.monotonic() - t0
                return v
            except IsolationError:
                raise
            except SandboxError as e:
                last = str(e)
                box.close()
                try:
                    self._restart(box)
                except SandboxError as e2:
                    return Verdict(job.id, "sandbox_error", 0, test_count(job), [],
                                   time.monotonic() - t0, retries=attempt,
                                   message=f"sandbox could not be restarted: {e2}")
        return Verdict(job.id, "runtime_error", 0, test_count(job), [], time.monotonic() - t0,
                       retries=self.max_retries,
                       message=f"the program brought its sandbox down on every try ({last})")

    def _restart(self, box: Sandbox) -> None:
        with self._stats_lock:
            self.stats["restarts"] += 1
        box.restart()

    def _execute_once(self, box: Sandbox, job: Job) -> Verdict:
        fmt = job.tests["format"]
        lang = L.LANGS[job.language]
        if job.language == "python" and fmt in ("check", "asserts", "call"):
            return self._run_judged(box, job)
        if job.language == "javascript" and fmt == "asserts":
            return self._run_js_asserts(box, job, lang)
        return self._run_io(box, job, lang)

    # -- python check / asserts / call
    def _run_judged(self, box: Sandbox, job: Job) -> Verdict:
        spec = dict(job.tests)
        if spec["format"] == "call":  # expected values never enter the sandbox
            spec = {"format": "call", "fn_name": spec["fn_name"],
                    "cases": [{"args": c.get("args", []), "kwargs": c.get("kwargs", {})}
                              for c in job.tests["cases"]]}
        lim = L.run_limits(L.LANGS["python"], job.limits)
        req = {"op": "judge", "job": {"source": job.source, "tests": spec, "limits": lim}}
        run = box.request(req, job.limits.timeout_s + 10)["run"]
        return judged_verdict(job, run)

    # -- stdin/stdout, any language
    def _run_io(self, box: Sandbox, job: Job, lang: Language) -> Verdict:
        cases = job.tests["cases"]
        files: dict[str, str] = {}
        cached = False
        if lang.compile_argv:
            binary, msg, cached = self._compile(box, job, lang)
            if binary is None:
                return Verdict(job.id, "compile_error", 0, len(cases), [], 0.0,
                               stderr=msg[-TAIL:], message="compilation failed",
                               cached_compile=cached)
            files["prog"] = base64.b64encode(binary).decode()
            argv, mode, source = list(lang.run_argv), "exec", ""
        elif lang.name == "python":
            argv, mode, source = [], "main", job.source
        else:
            files[lang.source_file] = base64.b64encode(job.source.encode()).decode()
            argv, mode, source = L.js_argv(job.limits), "exec", ""
        req = {"op": "io", "job": {
            "mode": mode, "source": source, "files": files, "argv": argv,
            "env": L.run_env(lang, job.limits), "inputs": [c["input"] for c in cases],
            "limits": L.run_limits(lang, job.limits)}}
        budget = job.limits.timeout_s * len(cases) + 10 + 0.05 * len(cases)
        out = box.request(req, budget)["cases"]
        v = io_verdict(job, out)
        v.cached_compile = cached
        return v

    def _compile(self, box: Sandbox, job: Job, lang: Language) -> tuple[bytes | None, str, bool]:
        def build() -> tuple[bytes | None, str]:
            env = dict(L.BASE_ENV)
            env.update(lang.compile_env)
            req = {"op": "compile", "job": {
                "files": {lang.source_file: base64.b64encode(job.source.encode()).decode()},
                "argv": list(lang.compile_argv), "env": env, "output": "prog",
                "limits": L.compile_limits()}}
            reply = box.request(req, L.COMPILE_TIMEOUT_S + 15)
            c = reply["compile"]
            if reply["binary"] is None:
                why = "compiler timed out" if not c["finished"] else c["stderr"]
                return None, why
            return base64.b64decode(reply["binary"]), c["stderr"]

        return self.cache.get_or_build(CompileCache.key(lang.name, job.source), build)

    # -- javascript asserts
    def _run_js_asserts(self, box: Sandbox, job: Job, lang: Language) -> Verdict:
        script, nonce = L.js_assert_harness(job.source, job.tests["asserts"],
                                            job.tests.get("setup", ""))
        req = {"op": "io", "job": {
            "mode": "exec", "source": "", "argv": L.js_argv(job.limits),
            "files": {lang.source_file: base64.b64encode(script.encode()).decode()},
            "env": L.run_env(lang, job.limits), "inputs": [""],
            "limits": L.run_limits(lang, job.limits)}}
        (case,) = box.request(req, job.limits.timeout_s + 10)["cases"]
        return js_asserts_verdict(job, case, nonce)


Language = L.Language


def test_count(job: Job) -> int:
    t = job.tests
    return {"check": 1, "asserts": len(t.get("asserts", [])), "io": len(t.get("cases", [])),
            "call": len(t.get("cases", []))}[t["format"]]


def _tail(b64: str) -> str:
    return base64.b64decode(b64)[-TAIL:].decode("utf-8", "replace")


def exit_status(exit_info: list | None, stderr: str, out_size: int, limit: int) -> str | None:
    """Status of a finished process that did not exit 0 cleanly; None if it did."""
    if out_size > limit:
        return "output_limit"
    if exit_info is None:
        return "timeout"
    kind, code = exit_info
    if kind == "signal":
        if code in (signal.SIGXCPU, signal.SIGKILL):
            return "timeout" if code == signal.SIGXCPU else "memory_limit"
        if code == signal.SIGXFSZ:
            return "output_limit"
        if any(m in stderr for m in MEMORY_MARKERS):
            return "memory_limit"
        return "runtime_error"
    if code == 0:
        return None
    if code == 122 or any(m in stderr for m in MEMORY_MARKERS):
        return "memory_limit"
    return "runtime_error"


def summarize(job: Job, tests: list[TestResult], **kw: Any) -> Verdict:
    """A verdict is ``passed`` only if every test has a ``passed`` result produced by the
    harness; otherwise it takes the status of the first test that did not pass."""
    total = test_count(job)
    while len(tests) < total:
        tests.append(TestResult("not_run", 0.0))
    passed = sum(t.status == "passed" for t in tests)
    if passed == total:
        status = "passed"
    else:
        first = next(t for t in tests if t.status != "passed")
        status = first.status if first.status != "not_run" else "failed"
        kw.setdefault("message", first.message)
    return Verdict(job.id, status, passed, total, tests, 0.0, **kw)


def judged_verdict(job: Job, run: dict) -> Verdict:
    stdout, stderr = _tail(run["stdout"]), run["stderr"][-TAIL:]
    lines = run["results"]
    base = {"stdout": stdout, "stderr": stderr}
    if not lines:
        status = "timeout" if run["timed_out"] else (
            exit_status(run["exit"], stderr, 0, 1) or "runtime_error")
        return Verdict(job.id, status, 0, test_count(job), [], 0.0,
                       message="the program ended before it could be tested", **base)
    head = lines[0]
    if head.get("load") == "syntax":
        return Verdict(job.id, "compile_error", 0, test_count(job), [], 0.0,
                       message=head["msg"], **base)
    if head.get("load") == "error":
        status = "memory_limit" if "MemoryError" in head["msg"] else "runtime_error"
        if run["timed_out"]:
            status = "timeout"
        return Verdict(job.id, status, 0, test_count(job), [], 0.0,
                       message=f"the program failed while loading: {head['msg']}", **base)
    tests: list[TestResult] = []
    cases = job.tests.get("cases")
    for r in lines[1:]:
        if "setup_error" in r:
            return Verdict(job.id, "failed", 0, test_count(job), [], 0.0,
                           message=f"test setup failed: {r['setup_error']}", **base)
        t = r.get("time", 0.0)
        if "value" in r:  # call format: compare on the host
            try:
                value = decode(r["value"])
            except ValueError as e:  # e.g. an integer too long to judge: the program's doing
                tests.append(TestResult("failed", t, f"return value not judged: {e}"))
                continue
            ok = plain_equal(value, cases[r["i"]]["expected"])
            tests.append(TestResult("passed" if ok else "failed", t,
                                    "" if ok else "wrong return value"))
        elif r["status"] == "passed":
            tests.append(TestResult("passed", t))
        elif r["status"] == "failed":
            tests.append(TestResult("failed", t, r.get("msg", "")))
        elif r["status"] == "crashed":
            st = exit_status(run["exit"], stderr, 0, 1) or "runtime_error"
            tests.append(TestResult("timeout" if run["timed_out"] else st, t, r["msg"]))
        else:  # an exception inside the candidate's code or the test
            msg = r.get("msg", "")
            st = "memory_limit" if msg.startswith(("MemoryError", "RuntimeError: MemoryError")) \
                else "runtime_error"
            tests.append(TestResult(st, t, msg))
    if run["timed_out"] and len(tests) < test_count(job):
        tests.append(TestResult("timeout", job.limits.timeout_s, "time limit exceeded"))
    if run["stdout_size"] > job.limits.output_bytes or run["results_over"]:
        return Verdict(job.id, "output_limit", 0, test_count(job), tests, 0.0,
                       message="output limit exceeded", **base)
    return summarize(job, tests, **base)


def io_verdict(job: Job, cases_out: list[dict]) -> Verdict:
    spec = job.tests
    how, tol = spec.get("compare", "whitespace"), spec.get("tolerance", 1e-6)
    tests: list[TestResult] = []
    stdout = stderr = ""
    for case, r in zip(spec["cases"], cases_out):
        raw = base64.b64decode(r["stdout"])
        stdout, stderr = raw[-TAIL:].decode("utf-8", "replace"), r["stderr"][-TAIL:]
        if not r["finished"]:
            tests.append(TestResult("timeout", r["wall"], "time limit exceeded"))
            continue
        if (job.language == "python" and r["exit"] == ["exit", 121]) or (  # SyntaxError
            job.language == "javascript" and r["exit"] == ["exit", 1] and not raw
            and "SyntaxError" in stderr and "main.js:" in stderr
        ):
            return Verdict(job.id, "compile_error", 0, len(spec["cases"]), [], 0.0,
                           stderr=stderr, message="the program does not parse")
        st = exit_status(r["exit"], stderr, r["stdout_size"], job.limits.output_bytes)
        if st is not None:
            tests.append(TestResult(st, r["wall"], stderr[-300:]))
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            tests.append(TestResult("failed", r["wall"], "output is not valid UTF-8"))
            continue
        ok = compare_output(text, case["output"], how, tol)
        tests.append(TestResult("passed" if ok else "failed", r["wall"],
                                "" if ok else "wrong output"))
    return summarize(job, tests, stdout=stdout, stderr=stderr)


def js_asserts_verdict(job: Job, r: dict, nonce: str) -> Verdict:
    raw = base64.b64decode(r["stdout"])
    stderr = r["stderr"][-TAIL:]
    n = len(job.tests["asserts"])
    if r["finished"] and r["exit"] == ["exit", 121]:
        return Verdict(job.id, "compile_error", 0, n, [], 0.0, stderr=stderr,
                       message="the program does not parse")
    ok = set()
    for line in raw.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == nonce and parts[2] == "ok" and parts[1].isdigit():
            ok.add(int(parts[1]))
    st = "timeout" if not r["finished"] else exit_status(
        r["exit"], stderr, r["stdout_size"], job.limits.output_bytes)
    tests = []
    for i in range(n):
        if i in ok:
            tests.append(TestResult("passed", 0.0))
        elif st is not None:
            tests.append(TestResult(st, 0.0, stderr[-300:]))
        else:
            msg = next((ln for ln in stderr.splitlines() if ln.startswith(f"TEST {i} ")), "")
            tests.append(TestResult("failed", 0.0, msg))
    if st is not None:  # a run that crashed or ran out of time passes nothing
        tests = [TestResult(st if t.status == "passed" else t.status, t.time_s, t.message)
                 for t in tests]
    clean = raw.decode("utf-8", "replace").replace(nonce, "<nonce>")
    return summarize(job, tests, stdout=clean[-TAIL:], stderr=stderr)


def run_jobs(jobs: Iterable[Any], workers: int | None = None) -> list[dict]:
    """Convenience: run jobs on a fresh runner and return verdicts in input order."""
    jobs = list(jobs)
    with Runner(workers) as r:
        futs = [r.submit(j) for j in jobs]
        return [f.result() for f in futs]


__all__ = ["Runner", "CompileCache", "run_jobs", "IsolationError"]
