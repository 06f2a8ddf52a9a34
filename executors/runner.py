"""The single-node runner: one warm sandbox per worker slot, a worker per core.

``Runner.submit`` takes a job dict and returns a future of its verdict dict; ``Runner.run``
streams verdicts of many jobs as they finish. Compiled programs are built once per distinct
(language, source) in a sandbox and cached by content hash (only outcomes that depend on the
source alone: a compiler that timed out, was killed or ran out of a resource is run again).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import queue
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any

from . import languages as L
from .compare import compare_output, plain_equal
from .sandbox import (
    IsolationError,
    Sandbox,
    SandboxBroken,
    SandboxConfig,
    SandboxError,
    claim_slots,
    release_slots,
)
from .sandboxed.codec import decode
from .sandboxed.hygiene import CASE_CLEAN_ENTRIES, CASE_CLEAN_S, SWEEP_WAIT_S
from .sandboxed.zygote import WALL_CAP_FACTOR
from .schema import (
    INT_PRINT_LIMIT,
    InvalidJob,
    Job,
    TestResult,
    Verdict,
    _utf8_problem,
    invalid,
    job_id_of,
    parse_job,
)

logger = logging.getLogger(__name__)
TAIL = 2048  # bytes of stdout/stderr kept in a verdict
MEMORY_MARKERS = ("MemoryError", "bad_alloc", "memory allocation of", "out of memory",
                  "JavaScript heap out of memory", "Cannot allocate memory")


# exit statuses with which g++ and rustc (1) and go build (1, 2) reject a program
COMPILER_REJECTED = (["exit", 1], ["exit", 2])
# compiler messages that blame the machine's state, not the source
ENVIRONMENT_MARKERS = MEMORY_MARKERS + (
    "Resource temporarily unavailable", "Too many open files", "No space left on device",
    "Disk quota exceeded", "File size limit exceeded", "signal terminated program",
    "Killed signal", "internal compiler error", "Read-only file system")


def compile_failure_is_deterministic(c: dict) -> bool:
    """Whether a failed compilation says something about the source alone, so that it may be
    cached for every later job with that source: the compiler ran to its end and rejected the
    program with its ordinary status, naming no limit or state of the machine. Timeouts,
    signals, internal compiler errors, resource exhaustion and the fork server's own exit
    codes depend on the moment (a busy node, a slot that a previous program left in a bad
    state): the next job with that source compiles afresh."""
    if not c["finished"] or c["exit"] not in COMPILER_REJECTED:
        return False
    return not any(m in c["stderr"] for m in ENVIRONMENT_MARKERS)


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

    def get_or_build(self, key: str, build: Callable[[], tuple[bytes | None, str, bool]]
                     ) -> tuple[bytes | None, str, bool]:
        """(binary or None on compile error, compiler message, was_cached). ``build`` returns
        (binary, message, deterministic); only a deterministic outcome is kept, so a failure
        that depended on the moment is not handed to later jobs with the same source (each
        waiter then builds for itself)."""
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
            binary, msg, deterministic = build()
            if deterministic:
                self._keep(key, binary, msg)
            return binary, msg, False
        finally:
            with self._lock:
                self._pending.pop(key).set()

    def _keep(self, key: str, binary: bytes | None, msg: str) -> None:
        with self._lock:
            self._items[key] = (binary, msg)
            self._size += len(binary or b"")
            while self._size > self.max_bytes and len(self._items) > 1:
                _, (b, _) = self._items.popitem(last=False)
                self._size -= len(b or b"")


class Runner:
    """Runs jobs on ``workers`` warm sandboxes (default: one per core).

    ``allow_js_asserts`` admits JavaScript ``asserts`` jobs, whose tests run in the
    candidate's own process and can be forged by it: for evaluating trusted programs only,
    never for training (without it they are ``invalid_job``)."""

    def __init__(self, workers: int | None = None, cfg: SandboxConfig | None = None,
                 max_retries: int = 2, recycle_after: int = 5000,
                 allow_js_asserts: bool = False) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.allow_js_asserts = allow_js_asserts
        self.cfg = cfg or SandboxConfig()
        self.max_retries = max_retries
        self.recycle_after = recycle_after
        self.cache = CompileCache()
        self._queue: queue.Queue = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._sandboxes: list[Sandbox] = []
        self._slot_fds: list[int] = []
        self.stats = {"jobs": 0, "retries": 0, "restarts": 0, "retire_failures": 0,
                      "not_ready": 0}
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
        failed = []
        for b in self._sandboxes:
            try:
                b.close()
            except SandboxError as e:  # close the others first, then say so
                failed.append(str(e))
        release_slots(self._slot_fds)
        self._threads, self._sandboxes, self._slot_fds = [], [], []
        if failed:
            raise SandboxError("; ".join(failed))

    def __enter__(self) -> Runner:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- API
    def submit(self, obj: Any) -> Future:
        """Queue one job (a dict as in the JSON contract); the future yields its verdict dict."""
        fut: Future = Future()
        try:
            job = parse_job(obj, allow_js_asserts=self.allow_js_asserts)
        except InvalidJob as e:
            fut.set_result(invalid(job_id_of(obj), str(e)).to_dict())
            return fut
        if not self._threads:
            raise RuntimeError("Runner.start() has not been called")
        self._queue.put((job, fut))
        return fut

    def run(self, jobs: Iterable[Any], window: int | None = None) -> Iterator[dict]:
        """Yield one verdict per job, in completion order, keeping at most ``window`` queued.

        Verdicts are matched to jobs by id, so a job whose id is that of a job still in flight
        (its verdict not yet yielded) gets ``invalid_job`` at once; the id may be used again
        once the first verdict is out."""
        window = window or self.workers * 4
        done: queue.Queue = queue.Queue()
        in_flight: set[str] = set()  # ids of the jobs submitted and not yet answered
        pending = 0

        def finished() -> dict:
            verdict = done.get().result()
            in_flight.discard(verdict["id"])
            return verdict

        for obj in jobs:
            jid = job_id_of(obj)
            if jid in in_flight:
                yield duplicate_id(jid).to_dict()
                continue
            if jid:  # no usable id: the job is invalid_job at once, matched by its message
                in_flight.add(jid)
            self.submit(obj).add_done_callback(done.put)
            pending += 1
            while pending >= window or not done.empty():
                yield finished()
                pending -= 1
        while pending:
            yield finished()
            pending -= 1

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

        A sandbox that fails while the job's program runs in a way the program can cause
        (``SandboxBroken``: it exited, was stopped, or answered wrongly) is restarted and the
        job judged ``runtime_error`` at once: a retry would let a program that sees it is
        failing bring the sandbox down and try again. Other failures (no answer in time, a
        sandbox that will not start) are retried; a job that fails every try is judged
        ``runtime_error``. A sandbox that cannot be restarted is ``sandbox_error``.

        The cleanup after a job's reply (its cost is the program's choice) is awaited when
        the sandbox's next job begins (``_settle``), outside that job's tries: it can
        neither change the verdict already given nor count as the next job's failure."""
        t0 = time.monotonic()
        last = ""
        self._settle(box)
        for attempt in range(self.max_retries + 1):
            try:
                if not box.alive or box.runs >= self.recycle_after:
                    self._restart(box)
                box.fit_memory(job.limits.memory_mb)
                v = self._execute_once(box, job)
            except IsolationError:
                raise
            except SandboxError as e:
                last = str(e)
                broken = isinstance(e, SandboxBroken)
                logger.warning("job %s, try %d: the sandbox failed (%s); it is restarted%s",
                               job.id, attempt + 1, last[:300],
                               " and the job judged runtime_error" if broken else "")
                try:
                    self._restart(box)
                except SandboxError as e2:
                    return Verdict(job.id, "sandbox_error", 0, test_count(job), [],
                                   time.monotonic() - t0, retries=attempt,
                                   message=f"sandbox could not be restarted: {e2}")
                if broken:
                    return Verdict(job.id, "runtime_error", 0, test_count(job), [],
                                   time.monotonic() - t0, retries=attempt,
                                   message=f"the program brought its sandbox down ({last})")
                continue
            v.retries = attempt
            v.duration_s = time.monotonic() - t0
            return v
        return Verdict(job.id, "runtime_error", 0, test_count(job), [], time.monotonic() - t0,
                       retries=self.max_retries,
                       message=f"the program brought its sandbox down on every try ({last})")

    def _settle(self, box: Sandbox) -> None:
        """Make ``box`` fit for its next job once the last one's verdict is out: wait for its
        ready frame (``Sandbox.settle``: the cleanup after that job, whose cost the program
        chose), then check the job left its fork server and template as they started. A
        sandbox that is not ready within READY_WAIT_S, could not be cleaned, or was crippled
        is closed, and the next try starts it afresh; no job is charged or retried for it."""
        if not box.alive or not box.unready:
            return
        try:
            box.settle()
        except SandboxError as e:
            logger.warning("sandbox slot %d did not get ready after a job (%s); it is restarted",
                           box.slot, str(e)[:300])
            with self._stats_lock:
                self.stats["not_ready"] += 1
            self._retire(box)
            return
        if box.infrastructure_changed():  # the job crippled its sandbox: not reused
            self._retire(box)

    def _retire(self, box: Sandbox) -> None:
        """Close a sandbox a job crippled; its verdict stands whatever happens here. Processes
        that could not be ended are counted, and the slot's next start ends them or fails."""
        try:
            box.close()
        except SandboxError:
            with self._stats_lock:
                self.stats["retire_failures"] += 1

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
        run = box.request(req, wall_budget(job.limits.timeout_s))["run"]
        return judged_verdict(job, run)

    # -- stdin/stdout, any language
    def _run_io(self, box: Sandbox, job: Job, lang: Language) -> Verdict:
        cases = job.tests["cases"]
        files: dict[str, str] = {}
        cached = False
        if lang.compile_argv:
            binary, msg, cached = self._compile(box, job, lang)
            self._settle(box)  # after a compile in this box (not a cached one): its cleanup
            if not box.alive:  # which failed: the compile's outcome stands, the box is replaced
                self._restart(box)
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
            "limits": L.run_limits(lang, job.limits), "clean": case_clean()}}
        reply = box.request(req, wall_budget(job.limits.timeout_s, len(cases)))
        v = io_verdict(job, reply["cases"], reply.get("unclean"))
        v.cached_compile = cached
        return v

    def _compile(self, box: Sandbox, job: Job, lang: Language) -> tuple[bytes | None, str, bool]:
        def build() -> tuple[bytes | None, str, bool]:
            env = dict(L.BASE_ENV)
            env.update(lang.compile_env)
            req = {"op": "compile", "job": {
                "files": {lang.source_file: base64.b64encode(job.source.encode()).decode()},
                "argv": list(lang.compile_argv), "env": env, "output": "prog",
                "limits": L.compile_limits()}}
            reply = box.request(req, wall_budget(L.COMPILE_TIMEOUT_S) + 5)
            c = reply["compile"]
            if reply["binary"] is None:
                why = "compiler timed out" if not c["finished"] else c["stderr"]
                return None, why, compile_failure_is_deterministic(c)
            return base64.b64decode(reply["binary"]), c["stderr"], True

        return self.cache.get_or_build(CompileCache.key(lang.name, job.source), build)

    # -- javascript asserts
    def _run_js_asserts(self, box: Sandbox, job: Job, lang: Language) -> Verdict:
        script, nonce = L.js_assert_harness(job.source, job.tests["asserts"],
                                            job.tests.get("setup", ""))
        req = {"op": "io", "job": {
            "mode": "exec", "source": "", "argv": L.js_argv(job.limits),
            "files": {lang.source_file: base64.b64encode(script.encode()).decode()},
            "env": L.run_env(lang, job.limits), "inputs": [""],
            "limits": L.run_limits(lang, job.limits), "clean": case_clean()}}
        (case,) = box.request(req, wall_budget(job.limits.timeout_s))["cases"]
        return js_asserts_verdict(job, case, nonce)


Language = L.Language


def duplicate_id(job_id: str) -> Verdict:
    """The verdict of a job refused because a job with its id is still in flight."""
    what = f"duplicate id {job_id[:200]!r}" if job_id else "no usable id (field 'id')"
    return invalid(job_id, f"{what}: a job with this id is still in flight, and verdicts are "
                           "matched to jobs by id; ids must be unique among jobs not yet "
                           "answered")


def wall_budget(timeout_s: float, runs: int = 1) -> float:
    """How long the host waits for a reply covering ``runs`` runs of ``timeout_s`` each: a
    run's limit stretches by the time it waited for a CPU, up to WALL_CAP_FACTOR times (see
    sandboxed.zygote.RunClock); the sweep that ends a run's processes before its output is
    read may wait SWEEP_WAIT_S for killed ones to go before the sandbox gives up on itself;
    between two io cases the cleanup may take CASE_CLEAN_S (the fork server caps it, and a
    case that leaves more fails the job there); beyond these, room for the reply.
    (Shorter, and a fork bomb on a loaded node made the host give up first and retry.)

    Nothing else a program can make slow comes before the reply: the cleanup after the last
    run (wiping what the job wrote) follows it, and the host waits for that separately
    (``Sandbox.settle``). A reply that misses this budget is "no answer in time", which is
    retried, so no time the program controls may be left out of it."""
    return ((timeout_s * WALL_CAP_FACTOR + 0.05) * runs + (runs - 1) * CASE_CLEAN_S
            + SWEEP_WAIT_S + 10)


def case_clean() -> dict[str, float]:
    """The cap on the cleanup between two io cases (sandboxed.hygiene.CleanupCap), sent
    with each io job so that the fork server applies the figures wall_budget counts."""
    return {"entries": CASE_CLEAN_ENTRIES, "seconds": CASE_CLEAN_S}


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


# What judging data from the sandbox may raise: it is the program's (untrusted) output, so a
# value the host cannot decode or compare fails its test; it is never an executor error
# (``sandbox_error``, which training leaves out, would spare a failing program its penalty).
UNJUDGEABLE = (ValueError, TypeError, KeyError, ArithmeticError, RecursionError)


def judge_value(encoded: Any, expected: Any, time_s: float) -> TestResult:
    """One call-format test: the returned value (as the sandbox encoded it) against
    ``expected``."""
    try:
        ok = plain_equal(decode(encoded), expected)
    except UNJUDGEABLE as e:  # e.g. an integer too long to judge
        return TestResult("failed", time_s, f"return value not judged: {type(e).__name__}: {e}")
    return TestResult("passed" if ok else "failed", time_s, "" if ok else "wrong return value")


def record_value(encoded: Any, time_s: float) -> tuple[TestResult, Any]:
    """One call-format case of a ``record`` job: the returned value as plain JSON, which
    ``plain_equal`` matches against exactly what was returned; a value JSON cannot hold
    exactly (a set, a non-string dict key, NaN or an infinity, a Fraction) fails the case."""
    try:
        return TestResult("passed", time_s), to_plain(decode(encoded))
    except UNJUDGEABLE as e:
        return TestResult("failed", time_s, f"return value not recorded: {e}"), None


def to_plain(v: Any, depth: int = 0) -> Any:
    """``v`` as JSON data (tuples as lists); ValueError naming what JSON cannot hold."""
    if depth > 100:
        raise ValueError("nested more than 100 deep")
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        if not -INT_PRINT_LIMIT < v < INT_PRINT_LIMIT:  # no JSON writer of ours prints it
            raise ValueError("an integer of more than 4300 digits")
        return v
    if isinstance(v, str):
        if _utf8_problem(v):
            raise ValueError(f"a string with {_utf8_problem(v)}")
        return v
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError(f"{v} is not a JSON number")
        return v
    if isinstance(v, (list, tuple)):
        return [to_plain(x, depth + 1) for x in v]
    if isinstance(v, dict):
        if not all(isinstance(k, str) and not _utf8_problem(k) for k in v):
            raise ValueError("a dict key that is not a valid Unicode string")
        return {k: to_plain(x, depth + 1) for k, x in v.items()}
    raise ValueError(f"a {type(v).__name__} is not plain JSON data")


def judge_output(text: str, want: str, how: str, tolerance: float, time_s: float) -> TestResult:
    """One io test: the program's stdout against the expected output."""
    try:
        ok = compare_output(text, want, how, tolerance)
    except UNJUDGEABLE as e:
        return TestResult("failed", time_s, f"output not judged: {type(e).__name__}: {e}")
    return TestResult("passed" if ok else "failed", time_s, "" if ok else "wrong output")


def load_message(head: dict) -> str:
    """The message of the judge's load report. The judge passes on the candidate's own report
    of loading, which a program can forge (it holds the socket), so the message may be any
    JSON value: only a string is kept, never a structure that could be deep or unprintable."""
    msg = head.get("msg")
    return msg[:2000] if isinstance(msg, str) else f"(the program reported a {type(msg).__name__})"


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
                       message=load_message(head), **base)
    if head.get("load") == "error":
        status = "memory_limit" if "MemoryError" in load_message(head) else "runtime_error"
        if run["timed_out"]:
            status = "timeout"
        return Verdict(job.id, status, 0, test_count(job), [], 0.0,
                       message=f"the program failed while loading: {load_message(head)}",
                       **base)
    tests: list[TestResult] = []
    cases = job.tests.get("cases")
    record = job.tests.get("record", False)
    if record:
        base["outputs"] = [None] * len(cases)
    for r in lines[1:]:
        if "setup_error" in r:
            return Verdict(job.id, "failed", 0, test_count(job), [], 0.0,
                           message=f"test setup failed: {r['setup_error']}", **base)
        t = r.get("time", 0.0)
        if "value" in r and record:  # call format, record: keep the value
            result, base["outputs"][r["i"]] = record_value(r["value"], t)
            tests.append(result)
        elif "value" in r:  # call format: compare on the host
            tests.append(judge_value(r["value"], cases[r["i"]]["expected"], t))
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


def io_verdict(job: Job, cases_out: list[dict], unclean: Any = None) -> Verdict:
    """``unclean``: why the sandbox stopped after ``cases_out`` (the case before left more
    behind than the cleanup between cases may remove); the next case is a runtime error."""
    spec = job.tests
    how, tol = spec.get("compare", "whitespace"), spec.get("tolerance", 1e-6)
    tests: list[TestResult] = []
    stdout = stderr = ""
    record = spec.get("record", False)
    outputs: list[str | None] = [None] * len(spec["cases"])
    for i, (case, r) in enumerate(zip(spec["cases"], cases_out)):
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
        if record:
            outputs[i] = text
            tests.append(TestResult("passed", r["wall"]))
        else:
            tests.append(judge_output(text, case["output"], how, tol, r["wall"]))
    if unclean and len(tests) < len(spec["cases"]):
        tests.append(TestResult("runtime_error", 0.0,
                                f"the sandbox could not be cleaned for this case: {unclean}"[:500]))
    if record:
        return summarize(job, tests, stdout=stdout, stderr=stderr, outputs=outputs)
    return summarize(job, tests, stdout=stdout, stderr=stderr)


def js_asserts_verdict(job: Job, r: dict, nonce: str) -> Verdict:
    raw = base64.b64decode(r["stdout"])
    stderr = r["stderr"][-TAIL:]
    n = len(job.tests["asserts"])
    if r["finished"] and r["exit"] == ["exit", 121]:
        return Verdict(job.id, "compile_error", 0, n, [], 0.0, stderr=stderr,
                       message="the program does not parse")
    ok = set()
    numbers = {str(i): i for i in range(n)}  # the program's output is never parsed as int
    for line in raw.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == nonce and parts[2] == "ok" and parts[1] in numbers:
            ok.add(numbers[parts[1]])
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
