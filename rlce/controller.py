"""The actor-learner loop. Each step: draw problems, stream samples from the rollout engines,
send each finished sample's program to the executor fleet as it arrives, score the groups,
drop the ones without signal and draw more, step the learner, publish the new weights.

``LoopConfig.staleness`` picks the mode:

* ``0``: synchronous and fully on-policy; a step's samples all come from the current policy.
* ``k > 0``: asynchronous; a producer thread keeps generating and executing while the learner
  trains, and a group is used only if its oldest sample is at most ``k`` policy versions
  behind the learner (older groups are dropped and counted). In-flight requests keep running
  across a weight update (``rollout.inflight_update``), so a sample can span versions; its
  start version is the one that counts.

A rollout engine that dies is replaced (``make_engine``), given the learner's current weights,
and the batch it was serving is generated again. Executor actors that die are replaced by the
fleet itself. ``rlce.train`` wires this to Hydra, W&B and checkpoints."""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from rlce.core.types import Prompt, SamplingSettings, ScoredSample, TrainGroup
from rlce.data import Problem
from rlce.rewards import extract_program, get_reward

logger = logging.getLogger(__name__)

INSTRUCTION = "Answer with the complete program in one fenced code block."
TIME_KEYS = ("time/generate_s", "time/execute_s", "time/train_s", "time/publish_s",
             "time/eval_s")


@dataclass
class LoopConfig:
    steps: int = 15
    groups_per_step: int = 8  # groups a step trains on at least (see problems_per_draw)
    sampling: SamplingSettings = field(default_factory=lambda: SamplingSettings(
        n=4, temperature=1.0, max_tokens=256))
    reward: str = "binary"
    drop_uniform_groups: bool = True
    max_draws_per_step: int = 4  # batches of problems tried per step before giving up
    # problems per generation round (0: as many as the groups a step still lacks). Drawing
    # more than that pays where generation is cheap per extra sample (CPU decoding, whose
    # time is set by the longest completion more than by the batch) and most groups carry
    # no signal; every informative group of a round is trained on, so a step may train on
    # more than groups_per_step groups
    problems_per_draw: int = 0
    exec_limits: dict[str, Any] = field(default_factory=lambda: {"timeout_s": 5})
    staleness: int = 0  # 0: synchronous; k > 0: asynchronous, groups at most k versions old
    overlong: str = "keep"  # completions cut at max_tokens: keep, filter (drop) or penalty
    overlong_penalty: float = 0.5  # subtracted from their reward with overlong=penalty
    max_engine_restarts: int = 3
    samples_kept: int = 16  # sample records per step handed to the logger (for a W&B table)

    def __post_init__(self) -> None:
        if self.staleness < 0:
            raise ValueError(f"algo.staleness must be >= 0, got {self.staleness}")
        if self.overlong not in ("keep", "filter", "penalty"):
            raise ValueError(f"algo.overlong must be keep, filter or penalty, "
                             f"got {self.overlong!r}")
        if self.groups_per_step < 1 or self.steps < 0:
            raise ValueError("algo.groups_per_step must be >= 1 and algo.steps >= 0")
        if self.problems_per_draw < 0:
            raise ValueError(f"algo.problems_per_draw must be >= 0, got {self.problems_per_draw}")


def prompt_for(problem: Problem) -> Prompt:
    return Prompt(problem.id, messages=({"role": "user",
                                         "content": f"{problem.prompt}\n\n{INSTRUCTION}"},))


def program_for(problem: Problem, text: str) -> str:
    """The program to judge: the completion's code block; for a problem that gives a stub
    (``meta["stub"]``, as HumanEval does) the stub goes first when the block does not define
    the entry point itself."""
    entry = problem.tests.get("fn_name") or problem.tests.get("entry_point")
    program, _ = extract_program(text, problem.language, entry)
    stub = problem.meta.get("stub")
    if stub and entry and f"def {entry}" not in program:
        program = stub + program
    return program


class ProblemStream:
    """Problems in a reproducible order: a finite set is shuffled per epoch with the seed, an
    endless source is taken as it comes. ``position`` counts problems drawn, so a resumed run
    continues with the same order (``skip``)."""

    def __init__(self, source: Iterable[Problem], seed: int = 0, shuffle: bool = True) -> None:
        self.finite = isinstance(source, (list, tuple))
        self.items = list(source) if self.finite else None
        if self.finite and not self.items:
            raise ValueError("the problem set is empty")
        self.source = None if self.finite else iter(source)
        self.seed, self.shuffle, self.position = seed, shuffle, 0
        self._order: list[int] = []
        self._epoch = -1

    def _order_for(self, epoch: int) -> list[int]:
        if epoch != self._epoch:
            order = list(range(len(self.items)))
            if self.shuffle:
                random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
            self._order, self._epoch = order, epoch
        return self._order

    def __next__(self) -> Problem:
        if self.finite:
            epoch, i = divmod(self.position, len(self.items))
            p = self.items[self._order_for(epoch)[i]]
        else:
            p = next(self.source)
        self.position += 1
        return p

    def __iter__(self) -> Iterator[Problem]:
        return self

    def skip(self, n: int) -> None:
        for _ in range(n):
            next(self)


@dataclass
class Batch:
    """What one generate-and-execute round produced."""
    groups: list[TrainGroup]
    info: dict[str, Any]
    records: list[dict[str, Any]]


def generate_and_execute(pool: Any, fleet: Any, problems: list[Problem],
                         settings: SamplingSettings, reward: Callable[[dict, str], float],
                         limits: dict[str, Any], overlong: str = "keep",
                         overlong_penalty: float = 0.0) -> Batch:
    """Stream samples from the engines; each one's program goes to the fleet as it arrives.
    Returns the scored groups, what happened (verdict mix, times, lengths) and per-sample
    records (problem, status, reward, text)."""
    by_id = {p.id: p for p in problems}
    lock = threading.Lock()
    verdicts: dict[str, dict] = {}
    all_done = threading.Event()
    expected = len(problems) * settings.n
    t0 = time.perf_counter()
    samples = []
    exec_done_at = [t0]

    def on_verdict(v: dict) -> None:
        with lock:
            verdicts[v["id"]] = v
            if len(verdicts) == expected:
                exec_done_at[0] = time.perf_counter()
                all_done.set()

    for s in pool.generate([prompt_for(p) for p in problems], settings):
        samples.append(s)
        problem = by_id[s.problem_id]
        fleet.submit(problem.job(program_for(problem, s.text), f"{s.problem_id}#{s.index}",
                                 limits), on_verdict)
    gen_s = time.perf_counter() - t0
    if len(samples) < expected:  # aborted requests: their verdicts never come
        expected = len(samples)
        with lock:
            if len(verdicts) >= expected:
                all_done.set()
    deadline = time.monotonic() + 600
    while not all_done.wait(timeout=1.0):
        if hasattr(fleet, "check"):
            fleet.check()  # a fleet that stopped (no sandbox can start) fails loudly here
        if time.monotonic() > deadline:
            raise TimeoutError(f"executor fleet returned {len(verdicts)} of {expected} verdicts")
    grouped: dict[str, list] = defaultdict(list)
    mix: Counter = Counter()
    records = []
    filtered = infra = 0
    for s in samples:
        v = verdicts[f"{s.problem_id}#{s.index}"]
        mix[v["status"]] += 1
        if v["status"] == "sandbox_error":  # the executor failed, not the program: no reward
            infra += 1
            logger.warning("sandbox error for %s#%d, left out: %s", s.problem_id, s.index,
                           v.get("message", "(no message)"))
            continue
        r = float(reward(v, s.text))
        cut = s.finish_reason == "length"
        if cut and overlong == "filter":
            filtered += 1
            continue
        if cut and overlong == "penalty":
            r -= overlong_penalty
        grouped[s.problem_id].append(ScoredSample(s.prompt_ids, s.completion_ids, s.logprobs,
                                                  r, s.policy_version))
        records.append({"problem": s.problem_id, "language": by_id[s.problem_id].language,
                        "status": v["status"], "reward": r, "version": s.policy_version,
                        "tokens": len(s.completion_ids), "text": s.text})
    groups = [TrainGroup(pid, tuple(ss)) for pid, ss in grouped.items() if len(ss) > 1]
    lengths = [len(s.completion_ids) for s in samples]
    info = {"generate_s": gen_s, "execute_tail_s": max(0.0, exec_done_at[0] - t0 - gen_s),
            "wall_s": time.perf_counter() - t0, "verdicts": dict(mix), "samples": len(samples),
            "completion_tokens": sum(lengths), "lengths": lengths,
            "truncated": sum(s.finish_reason == "length" for s in samples),
            "overlong_filtered": filtered, "sandbox_errors_excluded": infra,
            "latency": [s.latency_s for s in samples],
            "rewards": [rec["reward"] for rec in records]}
    return Batch(groups, info, records)


ENGINE_ERRORS = (RayActorError, ActorDiedError, ActorUnavailableError)


class Controller:
    """Runs the loop. ``learner`` is a Learner (or anything with ``step(groups)``,
    ``publish(engines, version=None)`` and ``version``); ``engines`` are RolloutActors;
    ``make_engine()`` starts a replacement for a dead one (None: a dead engine ends the run);
    ``check_prompts`` (engine method) filters prompts longer than the context."""

    def __init__(self, problems: ProblemStream, engines: list[Any], fleet: Any, learner: Any,
                 cfg: LoopConfig, make_engine: Callable[[], Any] | None = None,
                 log: Callable[[dict[str, Any]], None] | None = None,
                 between_steps: Callable[[int], dict[str, Any]] | None = None) -> None:
        from actors.rollout import RolloutPool

        self.problems, self.engines, self.fleet, self.learner = problems, engines, fleet, learner
        self.cfg, self.make_engine, self.log = cfg, make_engine, log
        self.between_steps = between_steps
        self.reward = get_reward(cfg.reward)
        self.pool = RolloutPool(engines)
        self.restarts = 0
        self.prompts_skipped = 0
        self._lock = threading.RLock()  # engines list and learner weights
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, cfg.staleness))
        self._stop = threading.Event()
        self._producer: threading.Thread | None = None
        self._producer_error: BaseException | None = None
        self._published_s = 0.0

    # -- drawing problems and generating

    def _draw(self, count: int) -> list[Problem]:
        """``count`` usable problems; ones whose prompt does not fit the context are skipped
        and counted."""
        import ray

        out: list[Problem] = []
        tries = 0
        while len(out) < count:
            tries += 1
            if tries > 100 and not out:
                raise RuntimeError(f"no prompt fits the engines' context: {self.prompts_skipped} "
                                   "problems skipped in a row")
            batch = [next(self.problems) for _ in range(count - len(out))]
            with self._lock:
                engine = self.engines[0]
            try:
                bad = dict(ray.get(engine.check_prompts.remote([prompt_for(p) for p in batch])))
            except ENGINE_ERRORS:
                bad = {}  # the engine died; generation replaces it and checks again
            self.prompts_skipped += len(bad)
            out += [p for p in batch if p.id not in bad]
        return out

    def _replace_dead_engines(self) -> None:
        import ray

        with self._lock:
            alive = []
            for e in self.engines:
                try:
                    ray.get(e.get_version.remote(), timeout=30)
                    alive.append(e)
                except (ENGINE_ERRORS + (ray.exceptions.GetTimeoutError,)):
                    if self.make_engine is None or self.restarts >= self.cfg.max_engine_restarts:
                        raise RuntimeError(f"a rollout engine died and "
                                           f"{self.restarts} restarts are used up") from None
                    self.restarts += 1
                    new = self.make_engine()
                    version = int(getattr(self.learner, "version", 0))
                    if version > 0:  # bring it to the learner's current weights
                        self.learner.publish([new], version=version)
                    alive.append(new)
            self.engines[:] = alive
            self.pool.actors = self.engines

    def generate(self, problems: list[Problem]) -> Batch:
        """One generate-and-execute round; a dead engine is replaced and the round redone."""
        while True:
            try:
                return generate_and_execute(self.pool, self.fleet, problems, self.cfg.sampling,
                                            self.reward, self.cfg.exec_limits,
                                            self.cfg.overlong, self.cfg.overlong_penalty)
            except ENGINE_ERRORS:
                self._replace_dead_engines()

    # -- asynchronous producer

    def _produce(self) -> None:
        try:
            while not self._stop.is_set():
                batch = self.generate(self._draw(max(self.cfg.groups_per_step,
                                                      self.cfg.problems_per_draw)))
                while not self._stop.is_set():
                    try:
                        self._queue.put(batch, timeout=0.5)
                        break
                    except queue.Full:
                        continue
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
            self._producer_error = e

    def _next_batch(self, need: int) -> tuple[Batch, float]:
        """The next batch and the seconds the learner waited for it."""
        if self.cfg.staleness == 0:
            return self.generate(self._draw(max(need, self.cfg.problems_per_draw))), 0.0
        if self._producer is None:
            self._producer = threading.Thread(target=self._produce, name="rlce-producer",
                                              daemon=True)
            self._producer.start()
        t = time.perf_counter()
        while True:
            if self._producer_error is not None:
                raise RuntimeError("the generation thread failed") from self._producer_error
            try:
                return self._queue.get(timeout=0.5), time.perf_counter() - t
            except queue.Empty:
                continue

    def close(self) -> None:
        self._stop.set()
        if self._producer is not None:
            self._producer.join(timeout=600)

    # -- the loop

    def run(self, start_step: int = 0) -> list[dict[str, Any]]:
        history = []
        try:
            for step in range(start_step, self.cfg.steps):
                m = self.step(step + 1)
                history.append(m)
                if self.log:
                    self.log(m)
        finally:
            self.close()
        return history

    def step(self, step: int) -> dict[str, Any]:
        cfg = self.cfg
        t_step = time.perf_counter()
        kept: list[TrainGroup] = []
        rewards_all: list[float] = []
        lengths: list[int] = []
        latency: list[float] = []
        staleness: list[int] = []
        records: list[dict[str, Any]] = []
        mix: Counter = Counter()
        gen_s = exec_s = wait_s = 0.0
        dropped = stale = draws = samples = tokens = truncated = filtered = infra = 0
        skipped0, restarts0 = self.prompts_skipped, self.restarts
        version = int(getattr(self.learner, "version", 0))
        while len(kept) < cfg.groups_per_step and draws < cfg.max_draws_per_step:
            draws += 1
            batch, waited = self._next_batch(cfg.groups_per_step - len(kept))
            info = batch.info
            wait_s += waited
            if cfg.staleness == 0:
                gen_s += info["generate_s"]
                exec_s += info["execute_tail_s"]
            mix.update(info["verdicts"])
            samples += info["samples"]
            tokens += info["completion_tokens"]
            truncated += info["truncated"]
            filtered += info["overlong_filtered"]
            infra += info["sandbox_errors_excluded"]
            lengths += info["lengths"]
            latency += info["latency"]
            rewards_all += info["rewards"]
            records += batch.records
            for g in batch.groups:
                rs = [s.reward for s in g.samples]
                age = version - min(s.policy_version for s in g.samples)
                if cfg.staleness and age > cfg.staleness:
                    stale += 1  # too old for the bound: dropped, not trusted
                elif cfg.drop_uniform_groups and max(rs) == min(rs):
                    dropped += 1  # no signal: every sample got the same reward
                else:
                    kept.append(g)
                    staleness += [version - s.policy_version for s in g.samples]
        n = max(1, samples)
        m: dict[str, Any] = {
            "step": step,
            "rollout/samples": samples, "rollout/completion_tokens": tokens,
            "rollout/truncated": truncated, "rollout/overlong_filtered": filtered,
            "rollout/sandbox_errors_excluded": infra,
            "rollout/response_len_mean": float(np.mean(lengths)) if lengths else 0.0,
            "rollout/response_len_max": float(max(lengths, default=0)),
            "rollout/latency_mean_s": float(np.mean(latency)) if latency else 0.0,
            "rollout/staleness_mean": float(np.mean(staleness)) if staleness else 0.0,
            "rollout/staleness_max": float(max(staleness, default=0)),
            "rollout/engine_restarts": self.restarts - restarts0,
            "reward/mean": float(np.mean(rewards_all)) if rewards_all else 0.0,
            "reward/std": float(np.std(rewards_all)) if rewards_all else 0.0,
            "reward/pass_rate": mix.get("passed", 0) / n,
            "data/groups_kept": len(kept), "data/groups_dropped": dropped,
            "data/groups_stale": stale, "data/draws": draws,
            "data/prompts_skipped": self.prompts_skipped - skipped0,
            "data/problems_drawn": self.problems.position,
            **{f"exec/verdict_{k}": v for k, v in mix.items()},
            "time/generate_s": gen_s, "time/execute_s": exec_s, "time/wait_s": wait_s}
        fm = self.fleet.metrics() if hasattr(self.fleet, "metrics") else {}
        for k in ("queue_depth", "in_flight", "runs_per_s", "latency_p50_s", "latency_p99_s",
                  "actors", "retried"):
            if k in fm:
                m[f"exec/{k}"] = fm[k]
        m["time/train_s"] = m["time/publish_s"] = 0.0
        if kept:
            with self._lock:
                t = time.perf_counter()
                lm = self.learner.step(kept)
                m["time/train_s"] = time.perf_counter() - t
                m.update({f"learner/{k}": v for k, v in lm.items()})
                t = time.perf_counter()
                pub = self.learner.publish(self.engines)
                m["time/publish_s"] = time.perf_counter() - t
            m["rollout/policy_version"] = pub.get("version", version)
        m["time/eval_s"] = 0.0
        if self.between_steps:
            t = time.perf_counter()
            m.update(self.between_steps(step))
            m["time/eval_s"] = time.perf_counter() - t
        m["time/step_s"] = time.perf_counter() - t_step
        # asynchronous: generation runs beside training, so the step's own time is split into
        # waiting for samples (idle learner), train, publish and eval
        busy = sum(m[k] for k in TIME_KEYS) + wait_s
        m["time/controller_s"] = max(0.0, m["time/step_s"] - busy)
        m["throughput/tokens_per_s"] = tokens / max(m["time/step_s"], 1e-9)
        m["throughput/samples_per_s"] = samples / max(m["time/step_s"], 1e-9)
        m["throughput/executions_per_s"] = samples / max(m["time/step_s"], 1e-9)
        m["_samples"] = records[:cfg.samples_kept]
        return m


def run_loop(problems: Iterator[Problem], fleet: Any, learner: Any, engines: list[Any],
             cfg: LoopConfig,
             log: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run ``cfg.steps`` steps over ``engines``. Returns per-step metrics."""
    stream = problems if isinstance(problems, ProblemStream) else ProblemStream(problems)
    return Controller(stream, engines, fleet, learner, cfg, log=log).run()
