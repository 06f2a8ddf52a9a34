"""ExecutorFleet: the single-node runner behind Ray, as a fleet of executor actors placed on
their own (CPU) nodes, that grows under a backlog, shrinks when idle, survives actor deaths
and runs identical programs once.

Every submitted job gets exactly one verdict: jobs of an actor that dies are run again
elsewhere; after ``max_retries`` such losses a job comes back as ``sandbox_error``, never as a
pass and never dropped. Verdicts are the same dicts as ``python -m executors run`` writes.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import ray

from .config import FleetConfig
from .runner import Runner, duplicate_id
from .sandbox import SandboxConfig
from .schema import Verdict, job_id_of


class FleetError(RuntimeError):
    """The fleet cannot judge jobs any more; the message says why."""


def require_ray() -> None:
    """The fleet runs on the Ray instance its caller joined (``ray.init(...)``; RLCE's
    driver uses ``rlce.core.cluster.ensure_ray``): it never starts or picks one itself."""
    if not ray.is_initialized():
        raise FleetError("the executor fleet needs Ray: call ray.init(...) first (address="
                         "'local' starts a local instance)")


class ExecutorWorker:
    """Body of an executor actor: a Runner on this node's cores."""

    def __init__(self, workers: int | None, sandbox: dict[str, Any] | None = None) -> None:
        self.runner = Runner(workers, SandboxConfig(**(sandbox or {}))).start()

    def run(self, jobs: list[dict]) -> Iterator[list[dict]]:
        """Yield verdicts as soon as they are done (a Ray streaming generator), each item a
        list of every verdict finished since the last, so that a busy actor sends fewer,
        larger messages."""
        done: queue.Queue = queue.Queue()
        for j in jobs:
            self.runner.submit(j).add_done_callback(lambda f: done.put(f.result()))
        # linger a little: each yielded item costs a Ray object on both sides, so a few
        # milliseconds of latency buy several verdicts per message
        yield from drain_in_batches(done, len(jobs), LINGER_S)

    def info(self) -> dict[str, Any]:
        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(),
                "workers": self.runner.workers, "jobs": self.runner.stats["jobs"]}


ExecutorActor = ray.remote(ExecutorWorker)


LINGER_S = 0.05


def drain_in_batches(q: queue.Queue, count: int, linger_s: float) -> Iterator[list]:
    """Yield ``count`` items of ``q`` as lists: each list holds the first item to arrive and
    whatever else arrives within ``linger_s`` of it."""
    left = count
    while left:
        batch = [q.get()]
        until = time.monotonic() + linger_s
        while len(batch) < left:
            try:
                batch.append(q.get(timeout=max(0.0, until - time.monotonic())))
            except queue.Empty:
                break
        left -= len(batch)
        yield batch


def content_key(job: Any) -> str | None:
    """Jobs with the same key (everything but the id) have the same verdict."""
    if not isinstance(job, dict):
        return None
    try:
        text = json.dumps({k: v for k, v in job.items() if k != "id"}, sort_keys=True)
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class _Entry:
    """One distinct execution and the ids waiting on it."""

    job: dict
    key: str
    ids: list[tuple[str, Callable[[dict], None] | None]] = field(default_factory=list)
    attempts: int = 0


@dataclass
class _Member:
    actor: Any
    ready: Any  # ObjectRef of info(): the actor is up when it resolves
    up: bool = False
    in_flight: int = 0
    idle_since: float = field(default_factory=time.monotonic)
    info: dict = field(default_factory=dict)


class ExecutorFleet:
    """Submit jobs from any thread; verdicts stream back through callbacks or ``verdicts()``."""

    def __init__(self, cfg: FleetConfig | None = None) -> None:
        self.cfg = cfg or FleetConfig()
        require_ray()
        self._in: queue.Queue = queue.Queue()
        self._out: queue.Queue = queue.Queue()
        self._room = threading.BoundedSemaphore(self.cfg.max_pending)
        self._count_lock = threading.Lock()
        self._outstanding = 0  # submitted, verdict not yet handed out
        self._outstanding_peak = 0
        self._lock = threading.Lock()
        self._members: list[_Member] = []
        self._pending: collections.deque[_Entry] = collections.deque()
        self._by_key: dict[str, _Entry] = {}
        self._streams: dict[Any, tuple[_Member, dict[str, _Entry]]] = {}
        self._recent: collections.OrderedDict[str, dict] = collections.OrderedDict()
        self._submitted_at: dict[str, float] = {}
        self._latency: collections.deque[float] = collections.deque(maxlen=10_000)
        self._done_times: collections.deque[float] = collections.deque(maxlen=100_000)
        self.counters = collections.Counter()
        self._stop = threading.Event()
        self.error: BaseException | None = None
        for _ in range(max(self.cfg.min_actors, 1 if self.cfg.max_actors else 0)):
            self._add_actor()
        self._request_resources()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="executor-fleet")
        self._thread.start()

    # -- public API

    def submit(self, job: dict, on_verdict: Callable[[dict], None] | None = None) -> None:
        """Queue a job; returns at once unless ``max_pending`` jobs are outstanding (submitted,
        verdict not yet taken), in which case it waits (backpressure). Without ``on_verdict``
        the verdict goes to ``verdicts()`` and counts as outstanding until taken from there."""
        self.check()
        while not self._room.acquire(timeout=1.0):
            self.check()
        with self._count_lock:
            self._outstanding += 1
            self._outstanding_peak = max(self._outstanding_peak, self._outstanding)
        self._in.put((self._with_default_limits(job), on_verdict, time.monotonic()))

    def _with_default_limits(self, job: dict) -> dict:
        """``job`` with the fleet's time limit when it sets none of its own (a malformed job
        goes on as it is: the runner names the problem)."""
        limits = job.get("limits", {}) if isinstance(job, dict) else None
        if self.cfg.timeout_s is None or not isinstance(limits, dict) or "timeout_s" in limits:
            return job
        return {**job, "limits": {**limits, "timeout_s": self.cfg.timeout_s}}

    def verdicts(self, timeout: float | None = None) -> Iterator[dict]:
        """Verdicts of jobs submitted without a callback, as they complete."""
        while True:
            try:
                v = self._out.get(timeout=timeout)
            except queue.Empty:
                return
            self._release()
            yield v

    def _release(self) -> None:
        with self._count_lock:
            self._outstanding -= 1
        self._room.release()

    def run(self, jobs: Iterable[dict]) -> Iterator[dict]:
        """Submit every job (from a feeder thread, so backpressure never blocks the caller's
        iteration) and yield one verdict per job in completion order."""
        mine: queue.Queue = queue.Queue()
        count = [0]
        fed = threading.Event()

        def feed() -> None:
            for job in jobs:
                self.submit(job, mine.put)
                count[0] += 1
            fed.set()

        threading.Thread(target=feed, daemon=True).start()
        got = 0
        while not (fed.is_set() and got >= count[0]):
            try:
                v = mine.get(timeout=0.1)
            except queue.Empty:
                continue
            got += 1
            yield v

    def size(self) -> int:
        with self._lock:
            return len(self._members)

    def metrics(self) -> dict[str, float]:
        """Queue depth, in-flight jobs, runs/s over the last 10 s, latency p50/p99 (submit to
        verdict), verdict mix, retries, deduplicated jobs, actors."""
        with self._lock:
            now = time.monotonic()
            while self._done_times and now - self._done_times[0] > 10.0:
                self._done_times.popleft()  # only the last 10 s count
            recent = len(self._done_times)
            lat = sorted(self._latency)
            m = {"queue_depth": float(len(self._pending) + self._in.qsize()),
                 "in_flight": float(sum(x.in_flight for x in self._members)),
                 "actors": float(len(self._members)),
                 "actors_up": float(sum(x.up for x in self._members)),
                 "runs_per_s": recent / 10.0,
                 "latency_p50_s": lat[len(lat) // 2] if lat else 0.0,
                 "latency_p99_s": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0.0}
            m.update({k: float(v) for k, v in self.counters.items()})
            m["outstanding_peak"] = float(self._outstanding_peak)
        return m

    def actor_infos(self, wait_s: float = 60.0) -> list[dict]:
        """What each executor actor says of itself (node, pid, workers, jobs run), with the
        jobs in flight to it. Actors still starting are waited for up to ``wait_s``; one
        that has not started by then (no node offers it room) is left out."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and self.error is None and not self._stop.is_set():
            with self._lock:
                if all(m.up for m in self._members):
                    break
            time.sleep(0.05)
        with self._lock:
            members = [(m, m.in_flight) for m in self._members if m.up]
        infos = ray.get([m.actor.info.remote() for m, _ in members])
        return [dict(i, in_flight=n) for i, (_, n) in zip(infos, members)]

    def actors(self) -> list[Any]:
        with self._lock:
            return [x.actor for x in self._members]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        with self._lock:
            for m in self._members:
                ray.kill(m.actor)
            self._members = []

    def __enter__(self) -> ExecutorFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the loop (one thread owns the state below, under self._lock for readers)

    def _capacity(self, m: _Member) -> int:
        workers = m.info.get("workers") or self.cfg.workers_per_actor or 1
        return self.cfg.max_in_flight_per_actor or 16 * workers

    def _add_actor(self) -> None:
        opts: dict[str, Any] = {"num_cpus": self.cfg.actor_cpus, "max_concurrency": 64,
                                "max_restarts": 0}
        if self.cfg.resource:
            opts["resources"] = {self.cfg.resource: 1}
        actor = ExecutorActor.options(**opts).remote(self.cfg.workers_per_actor, self.cfg.sandbox)
        self._members.append(_Member(actor, actor.info.remote()))
        self.counters["actors_started"] += 1

    def _request_resources(self) -> None:
        if not (self.cfg.request_resources and self.cfg.resource):
            return
        from ray.autoscaler.sdk import request_resources

        bundle = {self.cfg.resource: 1, "CPU": self.cfg.actor_cpus}
        request_resources(bundles=[bundle] * len(self._members))

    def _emit(self, entry: _Entry, verdict: dict) -> None:
        now = time.monotonic()
        for job_id, callback in entry.ids:
            t = self._submitted_at.pop(job_id, None)
            if t is not None:
                self._latency.append(now - t)
            self._deliver(dict(verdict, id=job_id), callback, now)

    def _deliver(self, v: dict, callback: Callable[[dict], None] | None, now: float) -> None:
        self._done_times.append(now)
        self.counters["verdicts"] += 1
        self.counters[f"verdict_{v.get('status')}"] += 1
        if callback is None:  # counted as outstanding until the caller takes it
            self._out.put(v)
            return
        callback(v)
        self._release()

    def _intake(self) -> None:
        while True:
            try:
                job, callback, t = self._in.get_nowait()
            except queue.Empty:
                return
            job_id = job_id_of(job)
            if job_id in self._submitted_at:  # verdicts are matched by id: one job per id
                self.counters["duplicate_ids"] += 1  # in flight (``_submitted_at`` holds them)
                self._deliver(duplicate_id(job_id).to_dict(), callback, time.monotonic())
                continue
            self._submitted_at[job_id] = t
            key = content_key(job) if self.cfg.dedup else None
            if key is not None and key in self._recent:
                self.counters["deduplicated"] += 1
                self._recent.move_to_end(key)
                self._emit(_Entry(job, key, [(job_id, callback)]), self._recent[key])
                continue
            if key is not None and key in self._by_key:
                self.counters["deduplicated"] += 1
                self._by_key[key].ids.append((job_id, callback))
                continue
            entry = _Entry(job if isinstance(job, dict) else {"id": job_id, "bad": job},
                           key or f"unique:{id(job)}:{t}", [(job_id, callback)])
            if key is not None:
                self._by_key[key] = entry
            self._pending.append(entry)
            self.counters["submitted"] += 1

    def _dispatch(self) -> None:
        # the least loaded actors first, the queue shared out among those that take work now,
        # so that jobs arriving a few at a time (a stream of samples) spread over the fleet
        ready = []
        for m in sorted((m for m in self._members if m.up),
                        key=lambda m: m.in_flight / self._capacity(m)):
            cap = self._capacity(m)
            free = cap - m.in_flight
            # send in chunks of at least a quarter of the capacity (each chunk is one Ray
            # call on both sides), unless the actor runs dry or the queue holds less
            if free > 0 and not (free < cap // 4 and m.in_flight > 0
                                 and len(self._pending) >= cap // 4):
                ready.append((m, cap, free))
        for i, (m, cap, free) in enumerate(ready):
            if not self._pending:
                break
            share = -(-len(self._pending) // (len(ready) - i))  # this actor's part, rounded up
            size = min(free, max(share, cap // 4 if m.in_flight else 1), len(self._pending), 64)
            chunk = [self._pending.popleft() for _ in range(size)]
            gen = m.actor.run.options(num_returns="streaming").remote([e.job for e in chunk])
            self._streams[gen] = (m, {job_id_of(e.job): e for e in chunk})
            m.in_flight += len(chunk)

    def _finish(self, entry: _Entry, verdict: dict) -> None:
        self._by_key.pop(entry.key, None)
        if self.cfg.dedup and not entry.key.startswith("unique:") and \
                verdict.get("status") != "sandbox_error":
            self._recent[entry.key] = verdict
            while len(self._recent) > self.cfg.dedup_window:
                self._recent.popitem(last=False)
        self._emit(entry, verdict)

    def _lost(self, member: _Member, left: dict[str, _Entry], why: str) -> None:
        """An actor died: the unfinished jobs of all its streams run again elsewhere."""
        self._requeue(left, why)
        if member in self._members:
            self._members.remove(member)
            self.counters["actors_lost"] += 1
            ray.kill(member.actor)
        for gen, (m, other) in list(self._streams.items()):
            if m is member:
                del self._streams[gen]
                self._requeue(other, why)

    def _requeue(self, left: dict[str, _Entry], why: str) -> None:
        """Run unfinished jobs again, or give them a sandbox_error after max_retries."""
        for e in left.values():
            e.attempts += 1
            self.counters["retries"] += 1
            if e.attempts > self.cfg.max_retries:
                lost = Verdict(job_id_of(e.job), "sandbox_error", passed=0, total=0, tests=[],
                               duration_s=0.0, retries=e.attempts,
                               message=f"executor actor lost {e.attempts} times: {why}")
                self._finish(e, lost.to_dict())
            else:
                self._pending.appendleft(e)
        left.clear()

    def _collect(self) -> None:
        waiting = [m.ready for m in self._members if not m.up]
        streams = list(self._streams)
        if not waiting and not streams:
            time.sleep(0.005)
            return
        ready, rest = ray.wait(waiting + streams, num_returns=1, timeout=0.02)
        if not ready:
            return
        if rest:  # take everything else that is ready too, without waiting
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        with self._lock:
            for r in ready:
                if r in self._streams:
                    self._read_stream(r)
                else:
                    self._actor_ready(r)

    def _actor_ready(self, ref: Any) -> None:
        member = next((m for m in self._members if m.ready == ref), None)
        if member is None:
            return
        try:
            member.info = ray.get(ref)
            member.up = True
            member.idle_since = time.monotonic()
        except ray.exceptions.RayError as e:
            self._members.remove(member)
            self.counters["actors_failed_to_start"] += 1
            if self.counters["actors_failed_to_start"] > 3 * max(1, self.cfg.max_actors):
                raise RuntimeError(f"executor actors keep failing to start: {e}") from e

    def _read_stream(self, gen: Any) -> None:
        member, left = self._streams[gen]
        try:
            ref = next(gen)
            verdict = ray.get(ref)
        except StopIteration:
            del self._streams[gen]
            if left:  # a stream that ended without every verdict: run those again
                member.in_flight -= len(left)
                self._requeue(left, "stream ended early")
            return
        except ray.exceptions.RayError as e:
            del self._streams[gen]
            self._lost(member, left, type(e).__name__)
            return
        for v in verdict:
            entry = left.pop(v.get("id"), None)
            if entry is None:
                continue
            member.in_flight -= 1
            self._finish(entry, v)
        if member.in_flight == 0:
            member.idle_since = time.monotonic()

    def _scale(self) -> None:
        with self._lock:
            live = len(self._members)
            backlog = len(self._pending)
            busy = all(m.in_flight >= self._capacity(m) for m in self._members if m.up)
            starting = any(not m.up for m in self._members)
            changed = False
            if live < self.cfg.min_actors:
                self._add_actor()
                changed = True
            elif backlog and busy and not starting and live < self.cfg.max_actors:
                self._add_actor()
                self.counters["scale_ups"] += 1
                changed = True
            elif not backlog and live > self.cfg.min_actors:
                now = time.monotonic()
                idle = [m for m in self._members if m.up and m.in_flight == 0
                        and now - m.idle_since >= self.cfg.idle_shrink_s]
                if idle:
                    m = idle[-1]
                    self._members.remove(m)
                    ray.kill(m.actor)
                    self.counters["scale_downs"] += 1
                    changed = True
            if changed:
                self._request_resources()

    def _loop(self) -> None:
        last_scale = 0.0
        try:
            while not self._stop.is_set():
                with self._lock:
                    self._intake()
                    self._dispatch()
                self._collect()
                now = time.monotonic()
                if now - last_scale > 0.2:
                    self._scale()
                    last_scale = now
        except BaseException as e:  # noqa: BLE001 - kept, and raised to every caller by check()
            self.error = e

    def check(self) -> None:
        """Raise FleetError if the fleet has stopped working (for example when no executor
        actor can start because sandbox isolation is not in force on its nodes)."""
        if self.error is not None:
            raise FleetError(f"the executor fleet stopped: {self.error}") from self.error


class FleetService:
    """An ExecutorFleet as a named, detached Ray actor that several training jobs (drivers)
    share: ``serve_fleet`` starts it once, ``FleetClient`` finds it by name."""

    def __init__(self, cfg: FleetConfig) -> None:
        self.fleet = ExecutorFleet(cfg)

    def run(self, jobs: list[dict]) -> Iterator[list[dict]]:
        """Stream the verdicts of this call's jobs, in small batches, as they complete."""
        out: queue.Queue = queue.Queue()
        for job in jobs:
            self.fleet.submit(job, out.put)
        yield from drain_in_batches(out, len(jobs), 0.0)

    def metrics(self) -> dict[str, float]:
        return self.fleet.metrics()

    def shutdown(self) -> None:
        self.fleet.close()


FleetServiceActor = ray.remote(FleetService)


def serve_fleet(cfg: FleetConfig, name: str = "rlce-executor-fleet",
                namespace: str = "rlce") -> Any:
    """Start (or find, if it is already running) the shared fleet service."""
    require_ray()
    return FleetServiceActor.options(name=name, namespace=namespace, lifetime="detached",
                                     get_if_exists=True, num_cpus=0,
                                     max_concurrency=256).remote(cfg)


class FleetClient:
    """A training job's handle on a shared fleet service."""

    def __init__(self, name: str = "rlce-executor-fleet", namespace: str = "rlce") -> None:
        require_ray()
        try:
            self.service = ray.get_actor(name, namespace=namespace)
        except ValueError as e:
            raise RuntimeError(f"no executor fleet service named {name!r} in namespace "
                               f"{namespace!r}; start one with executors.fleet.serve_fleet") from e

    def run(self, jobs: Iterable[dict]) -> Iterator[dict]:
        gen = self.service.run.options(num_returns="streaming").remote(list(jobs))
        for ref in gen:
            yield from ray.get(ref)

    def metrics(self) -> dict[str, float]:
        return ray.get(self.service.metrics.remote())
