"""The actor-learner loop. Each step: draw problems, stream samples from the rollout engines,
send each finished sample's program to the executor fleet as it arrives, score the groups,
drop the ones without signal and draw more, step the learner, publish the new weights.

``algo.staleness`` picks the mode:

* ``0``: synchronous and fully on-policy; a step's samples all come from the current policy.
* ``k > 0``: asynchronous; a producer thread keeps generating and executing while the learner
  trains, and a group is used only if its oldest sample is at most ``k`` policy versions
  behind the learner (older groups are dropped and counted). In-flight requests keep running
  across a weight update (``rollout.inflight_update``), so a sample can span versions; its
  start version is the one that counts.

A rollout engine that dies is replaced (``make_engine``), given the learner's current weights,
and the batch it was serving is generated again. Executor actors that die are replaced by the
fleet itself. ``rlce.train`` wires this to Hydra, W&B and checkpoints; ``rlce.minimal`` is the
same method in one process, without any of this machinery."""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

import numpy as np
from ray.actor import ActorHandle
from ray.exceptions import (ActorDiedError, ActorUnavailableError, OutOfMemoryError,
                            RayActorError)

from executors.schema import Verdict
from rlce.core.config import AlgoConfig
from rlce.core.types import SamplingSettings, ScoredSample, TrainGroup
from rlce.data import Problem, ProblemStream
from rlce.guard import Guard, Judged
from rlce.prompts import program_for, program_key, prompt_for
from rlce.rewards import RewardFn
from rlce.stopping import GracefulStop

logger = logging.getLogger(__name__)

TIME_KEYS = ("time/generate_s", "time/execute_s", "time/train_s", "time/publish_s",
             "time/eval_s")


class Fleet(Protocol):
    """What the loop needs of an executor fleet (``executors.fleet.ExecutorFleet``)."""

    def submit(self, job: dict, on_verdict: Callable[[dict], None] | None = None) -> None: ...

    def check(self) -> None: ...

    def metrics(self) -> dict[str, float]: ...


class Policy(Protocol):
    """What the loop needs of a learner (``learner.Learner`` in the driver, or a
    ``learner.group.LearnerGroup`` of actors)."""

    @property
    def version(self) -> int: ...

    def step(self, groups: list[TrainGroup]) -> dict[str, float]: ...

    def publish(self, engines: list[ActorHandle], version: int | None = None
                ) -> dict[str, Any]: ...


@dataclass
class RoundStats:
    """What one generate-and-execute round did, summed over a step's rounds."""

    generate_s: float = 0.0
    execute_tail_s: float = 0.0  # executions still running after the last sample arrived
    wall_s: float = 0.0
    samples: int = 0
    completion_tokens: int = 0
    truncated: int = 0
    overlong_filtered: int = 0
    sandbox_errors_excluded: int = 0
    verdicts: Counter = field(default_factory=Counter)
    lengths: list[int] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    # the reward's guard (rlce/guard.py): samples that passed their reward tests, those of
    # them with held-out tests, those that failed one, those flagged as hard-coded, those
    # given no reward for either, and samples that passed every test, held-out ones too
    reward_passed: int = 0
    heldout_judged: int = 0
    heldout_failed: int = 0
    hardcoded: int = 0
    penalized: int = 0
    all_passed: int = 0
    # the critic's uses (rlce/critic.py): samples not executed because it rated them below
    # critic.prescreen_tau, those of them that passed (known only with prescreen_audit), and
    # the seconds it spent rating
    prescreened: int = 0
    prescreen_lost: int = 0
    critic_s: float = 0.0

    def __iadd__(self, other: RoundStats) -> Self:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self


@dataclass
class Batch:
    """What one generate-and-execute round produced; ``passed`` holds each problem's passing
    samples with their judged programs."""
    groups: list[TrainGroup]
    stats: RoundStats
    records: list[dict[str, Any]]
    passed: dict[str, list[tuple[str, ScoredSample]]] = field(default_factory=dict)


def generate_and_execute(pool: Any, fleet: Fleet, problems: list[Problem],
                         settings: SamplingSettings, reward: RewardFn, overlong: str = "keep",
                         overlong_penalty: float = 0.0,
                         on_verdict: Callable[[], None] | None = None,
                         guard: Guard | None = None, critic: CriticUse | None = None) -> Batch:
    """Stream samples from the engines (a ``RolloutPool``); each one's program goes to the
    fleet as it arrives (``on_verdict()`` is called as each verdict comes back). Returns the
    scored groups, what happened (verdict mix, times, lengths) and per-sample records
    (problem, status, reward, text). With a ``guard`` the reward sees only each problem's
    reward tests (held-out ones are judged beside them); without one (evaluation) every
    test counts. ``critic`` (``CriticUse``): pre-screening (a sample it rates below its
    threshold is not executed and gets a failing verdict) and its baseline (each group's
    advantages against the critic's ratings of the group's other samples)."""
    by_id = {p.id: p for p in problems}
    problems = list(by_id.values())  # a problem drawn twice is generated for once
    lock = threading.Lock()
    verdicts: dict[str, Verdict] = {}
    all_done = threading.Event()
    expected = len(problems) * settings.n
    t0 = time.perf_counter()
    samples = []
    exec_done_at = t0

    def take(v: dict) -> None:
        nonlocal exec_done_at
        with lock:
            verdicts[v["id"]] = Verdict.from_dict(v)
            if len(verdicts) == expected:
                exec_done_at = time.perf_counter()
                all_done.set()
        if on_verdict:
            on_verdict()

    programs: dict[str, str] = {}
    ratings: dict[str, float] = {}  # the critic's P(pass) of each sample it rated
    screened: set[str] = set()
    critic_s = 0.0
    for s in pool.generate([prompt_for(p) for p in problems], settings):
        samples.append(s)
        problem = by_id[s.problem_id]
        sid = f"{s.problem_id}#{s.index}"
        programs[sid] = program_for(problem, s.text)
        if critic is not None and critic.prescreen:
            t = time.perf_counter()
            ratings[sid] = critic.rate(problem, programs[sid])
            critic_s += time.perf_counter() - t
            if ratings[sid] < critic.tau:
                screened.add(sid)
                if not critic.audit:  # not executed: the verdict of a program that failed
                    take(Verdict(sid, "failed", 0, problem.reward_count, [], 0.0,
                                 message=f"pre-screened: the critic rated it "
                                         f"{ratings[sid]:.3f} < {critic.tau}").to_dict())
                    continue
        fleet.submit(problem.job(programs[sid], sid), take)
    gen_s = time.perf_counter() - t0
    if len(samples) < expected:  # aborted requests: their verdicts never come
        expected = len(samples)
        with lock:
            if len(verdicts) >= expected:
                all_done.set()
    deadline = time.monotonic() + 600
    while not all_done.wait(timeout=1.0):
        fleet.check()  # a fleet that stopped (no sandbox can start) fails loudly here
        if time.monotonic() > deadline:
            raise TimeoutError(f"executor fleet returned {len(verdicts)} of {expected} verdicts")
    grouped: dict[str, list] = defaultdict(list)
    stats = RoundStats(generate_s=gen_s, samples=len(samples),
                       lengths=[len(s.completion_ids) for s in samples],
                       latency=[s.latency_s for s in samples],
                       truncated=sum(s.finish_reason == "length" for s in samples))
    stats.completion_tokens = sum(stats.lengths)
    stats.prescreened = len(screened)
    records = []
    passed: dict[str, list[tuple[str, ScoredSample]]] = defaultdict(list)
    for s in samples:
        sid = f"{s.problem_id}#{s.index}"
        v = verdicts[sid]
        judged = guard.judge(by_id[s.problem_id], v, programs[sid]) if guard else Judged(v)
        if sid in screened and critic is not None and critic.audit:
            # executed only to count what pre-screening loses: it is scored as not executed
            stats.prescreen_lost += judged.verdict.status == "passed" and not (
                judged.heldout_failed)
            judged = Judged(Verdict(sid, "failed", 0, judged.verdict.total, [], 0.0,
                                    message="pre-screened (audited)"))
        v = judged.verdict
        stats.verdicts[v.status] += 1
        if v.status == "sandbox_error":  # the executor failed, not the program: no reward
            stats.sandbox_errors_excluded += 1
            logger.warning("sandbox error for %s#%d, left out: %s", s.problem_id, s.index,
                           v.message or "(no message)")
            continue
        r = float(reward(v, s.text))
        penalized = guard is not None and guard.penalized(judged)
        if penalized:  # passed its reward tests by satisfying them, not the problem
            r = 0.0
        cut = s.finish_reason == "length"
        if cut and overlong == "filter":
            stats.overlong_filtered += 1
            continue
        # the guard's counts, over the samples that are kept (as the records are)
        stats.penalized += penalized
        if v.status == "passed":
            stats.reward_passed += 1
            stats.heldout_judged += judged.heldout_total > 0
            stats.heldout_failed += judged.heldout_failed
            stats.hardcoded += bool(judged.hardcoded)
            stats.all_passed += not judged.heldout_failed
        if cut and overlong == "penalty":
            r -= overlong_penalty
        scored = ScoredSample(s.prompt_ids, s.completion_ids, s.logprobs, r, s.policy_version)
        grouped[s.problem_id].append(scored)
        if v.status == "passed" and not penalized:
            passed[s.problem_id].append((programs[sid], scored))
        stats.rewards.append(r)
        records.append({"problem": s.problem_id, "language": by_id[s.problem_id].language,
                        "status": v.status, "reward": r, "version": s.policy_version,
                        "tokens": len(s.completion_ids), "text": s.text,
                        # the trajectory store's fields (rlce/trajectories.py)
                        "prompt": by_id[s.problem_id].prompt, "completion": s.text,
                        "program": programs[sid], "passed": v.passed,
                        "total": v.total, "policy_version": s.policy_version,
                        "generate_latency_s": s.latency_s, "execute_s": v.duration_s,
                        "heldout_passed": judged.heldout_passed,
                        "heldout_total": judged.heldout_total,
                        "hardcoded": judged.hardcoded, "penalized": penalized,
                        "critic_p": ratings.get(sid), "prescreened": sid in screened})
    groups = [TrainGroup(pid, tuple(ss)) for pid, ss in grouped.items() if len(ss) > 1]
    if critic is not None and critic.baseline and groups:
        t = time.perf_counter()
        groups = critic.advantages(groups, records)
        critic_s += time.perf_counter() - t
    stats.critic_s = critic_s
    stats.execute_tail_s = max(0.0, exec_done_at - t0 - gen_s)
    stats.wall_s = time.perf_counter() - t0
    return Batch(groups, stats, records, dict(passed))


@dataclass
class CriticUse:
    """How the loop uses an execution critic (``rlce.critic.Critic``, or anything with its
    ``predict``): ``prescreen`` below ``tau`` (``audit``: execute them anyway, to count the
    passes that pre-screening loses, but score them as not executed), and ``baseline``."""

    critic: Any
    prescreen: bool = False
    tau: float = 0.05
    audit: bool = False
    baseline: bool = False

    def rate(self, problem: Problem, program: str) -> float:
        from rlce.critic import Example

        ex = Example(problem.id, problem.language, problem.prompt, program, False)
        return float(self.critic.predict([ex])[0])

    def advantages(self, groups: list[TrainGroup],
                   records: list[dict[str, Any]]) -> list[TrainGroup]:
        """Each sample's advantage: its reward minus the mean of the critic's ratings of
        the other samples of its group (leave-one-out, so a sample's own program never
        moves its baseline). A group whose rewards are all equal keeps a signal where the
        critic expected otherwise."""
        from rlce.critic import example_of

        rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in records:  # in the order of the groups' samples
            rows[r["problem"]].append(r)
        todo = [(g, rows[g.problem_id]) for g in groups]
        examples = [example_of(r) for _, rs in todo for r in rs]
        p = iter(self.critic.predict(examples))
        out = []
        for g, rs in todo:
            c = [float(next(p)) for _ in rs]
            for r, ci in zip(rs, c):
                r["critic_p"] = ci
            total = sum(c)
            adv = tuple(s.reward - (total - ci) / (len(c) - 1) for s, ci in zip(g.samples, c))
            out.append(dataclasses.replace(g, advantages=adv))
        return out


# what a call to a dead engine raises; OutOfMemoryError: Ray's memory monitor killed its
# process (seen on a 2-core, 24 GB host running three vLLM engines at once: the run died
# at a publish and at a generate instead of replacing the engine)
ENGINE_ERRORS = (RayActorError, ActorDiedError, ActorUnavailableError, OutOfMemoryError)


class Controller:
    """Runs the loop over ``engines`` (RolloutActors), ``fleet`` and ``learner``.
    ``make_engine()`` starts a replacement for a dead engine (None: a dead engine ends the
    run) and at most ``max_engine_restarts`` are made; ``log`` gets each step's metrics (with
    up to ``samples_kept`` sample records under ``_samples``); ``between_steps(step,
    pass_counts)`` runs after a step (evaluation, checkpoints) and returns metrics to add."""

    def __init__(self, problems: ProblemStream, engines: list[ActorHandle], fleet: Fleet,
                 learner: Policy, algo: AlgoConfig, reward: RewardFn, *, seed: int,
                 max_engine_restarts: int, samples_kept: int,
                 make_engine: Callable[[], ActorHandle] | None = None,
                 log: Callable[[dict[str, Any]], None] | None = None,
                 between_steps: Callable[[int, dict[str, list[int]]], dict[str, Any]]
                 | None = None,
                 pairs: Iterator[list[TrainGroup]] | None = None,
                 stop: GracefulStop | None = None, guard: Guard | None = None,
                 critic: CriticUse | None = None) -> None:
        from actors.rollout import RolloutPool

        self.problems, self.engines, self.fleet, self.learner = problems, engines, fleet, learner
        self.algo, self.reward, self.settings = algo, reward, algo.sampling(seed)
        self.max_engine_restarts, self.samples_kept = max_engine_restarts, samples_kept
        self.make_engine, self.log, self.between_steps = make_engine, log, between_steps
        self.pool = RolloutPool(engines)
        self.pairs = pairs  # algo.sft_from: each step trains on the next batch of these
        self.guard = guard or Guard()  # the reward sees only reward tests (rlce/guard.py)
        self.critic = critic  # pre-screening and the critic's baseline (CriticUse)
        self.stop = stop  # SIGTERM/SIGINT: checked before each draw and after each step
        self.restarts = 0
        self.prompts_skipped = 0
        self._lock = threading.RLock()  # engines list and learner weights
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, algo.staleness))
        self._stop = threading.Event()
        self._producer: threading.Thread | None = None
        self._producer_error: BaseException | None = None

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
            for pid in bad:
                self.problems.exclude(pid)  # never drawn again where the stream can avoid it
            out += [p for p in batch if p.id not in bad]
        return out

    def _replace_dead_engines(self) -> int:
        """Replace every engine that does not answer; returns how many were replaced."""
        import ray

        replaced = 0
        with self._lock:
            alive = []
            for e in self.engines:
                try:
                    ray.get(e.get_version.remote(), timeout=30)
                    alive.append(e)
                except (ENGINE_ERRORS + (ray.exceptions.GetTimeoutError,)):
                    if self.make_engine is None or self.restarts >= self.max_engine_restarts:
                        raise RuntimeError(f"a rollout engine died and "
                                           f"{self.restarts} restarts are used up") from None
                    self.restarts += 1
                    new = self.make_engine()
                    if self.learner.version > 0:  # bring it to the learner's current weights
                        self.learner.publish([new], version=self.learner.version)
                    alive.append(new)
                    replaced += 1
            self.engines[:] = alive
            self.pool.actors = self.engines
        return replaced

    def _publish(self) -> dict[str, Any]:
        """Publish the learner's weights to every engine as the next version. An engine that
        died meanwhile (before or during the load) is replaced and given the learner's
        current weights, and the publish is done again for the engines not yet on the new
        version (those that loaded it would refuse it twice)."""
        import ray

        from learner.publish import PublishError

        target = self.learner.version + 1
        with self._lock:
            engines = list(self.engines)
        while True:
            try:
                return self.learner.publish(engines, version=target)
            except ENGINE_ERRORS + (PublishError,):
                replaced = self._replace_dead_engines()
                with self._lock:
                    current = list(self.engines)
                if not replaced and current == engines:
                    raise  # every engine answers: the error was not an engine's death
                versions = ray.get([e.get_version.remote() for e in current])
                engines = [e for e, v in zip(current, versions) if v < target]
                if not engines:  # (only if every engine had loaded it before the failure)
                    raise

    def generate(self, problems: list[Problem], settings: SamplingSettings | None = None
                 ) -> Batch:
        """One generate-and-execute round; a dead engine is replaced and the round redone."""
        while True:
            try:
                return generate_and_execute(self.pool, self.fleet, problems,
                                            settings or self.settings,
                                            self.reward, self.algo.overlong,
                                            self.algo.overlong_penalty, guard=self.guard,
                                            critic=self.critic)
            except ENGINE_ERRORS:
                self._replace_dead_engines()

    def rejection_sample(self) -> tuple[list[TrainGroup], RoundStats, list[dict[str, Any]], int]:
        """``algo.loss=sft``: sample the step's problems ``n`` at a time; a problem with no
        passing program yet is sampled again (with new seeds) until it has had
        ``sft_max_samples``; each keeps up to ``sft_keep`` passing completions of distinct
        programs (``program_key``). Returns the groups, what the rounds did, their records and
        how many rounds there were."""
        algo = self.algo
        problems = self._draw(max(algo.groups_per_step, algo.problems_per_draw))
        language = {p.id: p.language for p in problems}
        found: dict[str, dict[str, ScoredSample]] = defaultdict(dict)
        stats, records, rounds, spent = RoundStats(), [], 0, 0
        todo = problems
        while todo:
            if self.stop:
                self.stop.check()
            seed = self.settings.seed
            settings = (self.settings if seed is None or not rounds else
                        dataclasses.replace(self.settings, seed=seed + rounds * 100_003))
            batch = self.generate(todo, settings)
            rounds += 1
            spent += algo.n
            stats += batch.stats
            records += batch.records
            for pid, items in batch.passed.items():
                for program, sample in items:
                    found[pid].setdefault(program_key(program, language[pid]), sample)
            todo = ([p for p in todo if not found.get(p.id)]
                    if spent + algo.n <= algo.sft_max_samples else [])
        groups = [TrainGroup(pid, tuple(list(kept.values())[: algo.sft_keep]))
                  for pid, kept in found.items()]
        return groups, stats, records, rounds

    # -- asynchronous producer

    def _produce(self) -> None:
        try:
            while not self._stop.is_set():
                batch = self.generate(self._draw(max(self.algo.groups_per_step,
                                                      self.algo.problems_per_draw)))
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
        if self.algo.staleness == 0:
            return self.generate(self._draw(max(need, self.algo.problems_per_draw))), 0.0
        if self._producer is None:
            self._producer = threading.Thread(target=self._produce, name="rlce-producer",
                                              daemon=True)
            self._producer.start()
        t = time.perf_counter()
        while True:
            if self._producer_error is not None:
                # (a LearnerLost stays the cause: rlce.train restarts the run on it)
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
            for step in range(start_step, self.algo.steps):
                m = self.step(step + 1)
                history.append(m)
                if self.log:
                    self.log(m)
                if self.stop:
                    self.stop.check(between_steps=True)
        finally:
            self.close()
        return history

    def _select(self, groups: list[TrainGroup], version: int
                ) -> tuple[list[TrainGroup], int, int, int]:
        """The groups to train on, how many of them have rewards that differ (those count
        towards ``algo.groups_per_step``), and how many were too stale and how many uniform.
        A group whose rewards are all equal but whose advantages were given (the critic's
        baseline) is trained on without counting: a step draws as many reward-informative
        groups as without the critic, and the critic's signal comes on top."""
        kept, informative, stale, uniform = [], 0, 0, 0
        for g in groups:
            rs = [s.reward for s in g.samples]
            age = version - min(s.policy_version for s in g.samples)
            if self.algo.staleness and age > self.algo.staleness:
                stale += 1  # too old for the bound: dropped, not trusted
            elif self.algo.drop_uniform_groups and (
                    max(rs) == min(rs) if g.advantages is None
                    else all(a == 0 for a in g.advantages)):
                uniform += 1  # no signal: every sample got the same reward
            else:
                kept.append(g)
                informative += max(rs) != min(rs) or not self.algo.drop_uniform_groups
        return kept, informative, stale, uniform

    def step(self, step: int) -> dict[str, Any]:
        algo = self.algo
        t_step = time.perf_counter()
        kept: list[TrainGroup] = []
        records: list[dict[str, Any]] = []
        stats = RoundStats()
        wait_s = 0.0
        dropped = stale = draws = 0
        skipped0, restarts0 = self.prompts_skipped, self.restarts
        executed0 = self.fleet.metrics().get("submitted", 0.0)
        version = self.learner.version
        if self.pairs is not None:
            kept = next(self.pairs)
        elif algo.loss == "sft":
            kept, stats, records, draws = self.rejection_sample()
        informative = len(kept)
        while (algo.loss == "pg" and informative < algo.groups_per_step
               and draws < algo.max_draws_per_step):
            draws += 1
            if self.stop:
                self.stop.check()  # with on_stop=abandon: before the step costs more
            batch, waited = self._next_batch(algo.groups_per_step - informative)
            wait_s += waited
            if algo.staleness:  # generated beside training: its time is not this step's
                batch.stats.generate_s = batch.stats.execute_tail_s = 0.0
            stats += batch.stats
            records += batch.records
            new, n_informative, n_stale, n_uniform = self._select(batch.groups, version)
            kept += new
            informative += n_informative
            stale += n_stale
            dropped += n_uniform
        staleness = [version - s.policy_version for g in kept for s in g.samples]
        fm = self.fleet.metrics()
        m: dict[str, Any] = {
            "step": step,
            "rollout/samples": stats.samples, "rollout/completion_tokens": stats.completion_tokens,
            "rollout/truncated": stats.truncated,
            "rollout/overlong_filtered": stats.overlong_filtered,
            "rollout/sandbox_errors_excluded": stats.sandbox_errors_excluded,
            "rollout/response_len_mean": _mean(stats.lengths),
            "rollout/response_len_max": float(max(stats.lengths, default=0)),
            "rollout/latency_mean_s": _mean(stats.latency),
            "rollout/staleness_mean": _mean(staleness),
            "rollout/staleness_max": float(max(staleness, default=0)),
            "reward/mean": _mean(stats.rewards),
            "reward/std": float(np.std(stats.rewards)) if stats.rewards else 0.0,
            "reward/pass_rate": stats.verdicts.get("passed", 0) / max(1, stats.samples),
            # the guard: of the samples that passed their reward tests, the share that failed
            # a held-out test (of those that had some) and the share flagged as hard-coded
            "reward/heldout_fail_rate": stats.heldout_failed / max(1, stats.heldout_judged),
            "reward/heldout_judged": stats.heldout_judged,
            "reward/heldout_failed": stats.heldout_failed,
            "reward/hardcode_rate": stats.hardcoded / max(1, stats.reward_passed),
            "reward/hardcoded": stats.hardcoded,
            "reward/penalized": stats.penalized,
            "reward/all_tests_pass_rate": stats.all_passed / max(1, stats.samples),
            "data/groups_kept": len(kept), "data/groups_dropped": dropped,
            # kept for the critic's baseline alone: every reward equal, advantages not
            "data/groups_critic_only": len(kept) - informative,
            "data/samples_kept": sum(len(g.samples) for g in kept),
            "data/groups_stale": stale, "data/draws": draws,
            "data/prompts_skipped": self.prompts_skipped - skipped0,
            "data/problems_drawn": self.problems.position,
            **{f"exec/verdict_{k}": v for k, v in stats.verdicts.items()},
            **{f"exec/{k}": fm[k] for k in ("queue_depth", "in_flight", "runs_per_s",
                                            "latency_p50_s", "latency_p99_s", "actors",
                                            "retries", "deduplicated") if k in fm},
            "time/generate_s": stats.generate_s, "time/execute_s": stats.execute_tail_s,
            "time/wait_s": wait_s, "time/train_s": 0.0, "time/publish_s": 0.0}
        if self.critic is not None:
            m.update({"exec/prescreened": stats.prescreened,
                      "exec/prescreen_lost": stats.prescreen_lost,
                      "time/critic_s": stats.critic_s})
        if kept:
            with self._lock:
                t = time.perf_counter()
                lm = self.learner.step(kept)
                m["time/train_s"] = time.perf_counter() - t
                m.update({f"learner/{k}": v for k, v in lm.items()})
                t = time.perf_counter()
                pub = self._publish()
                m["time/publish_s"] = time.perf_counter() - t
            m["rollout/policy_version"] = pub.get("version", version)
        # engines replaced in this step, while generating or during the publish
        m["rollout/engine_restarts"] = self.restarts - restarts0
        counts = pass_counts(records)
        self.problems.observe(counts)  # before between_steps, which may checkpoint the stream
        m["time/eval_s"] = 0.0
        if self.between_steps:
            t = time.perf_counter()
            m.update(self.between_steps(step, counts))
            m["time/eval_s"] = time.perf_counter() - t
        m["time/step_s"] = time.perf_counter() - t_step
        # asynchronous: generation runs beside training, so the step's own time is split into
        # waiting for samples (idle learner), train, publish and eval
        busy = sum(m[k] for k in TIME_KEYS) + wait_s
        m["time/controller_s"] = max(0.0, m["time/step_s"] - busy)
        per_s = 1 / max(m["time/step_s"], 1e-9)
        m["throughput/tokens_per_s"] = stats.completion_tokens * per_s
        m["throughput/samples_per_s"] = stats.samples * per_s
        # programs the sandboxes ran (identical ones are judged once by the fleet)
        m["throughput/executions_per_s"] = (fm.get("submitted", 0.0) - executed0) * per_s
        m["_samples"] = records[:self.samples_kept]
        m["_records"] = records
        return m


def pass_counts(records: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Judged sample records per problem: ``{problem: [passed, judged]}``."""
    counts: dict[str, list[int]] = {}
    for r in records:
        c = counts.setdefault(r["problem"], [0, 0])
        c[0] += r["status"] == "passed" and not r.get("penalized")  # a caught hack fails
        c[1] += 1
    return counts


def _mean(xs: list[float] | list[int]) -> float:
    return float(np.mean(xs)) if xs else 0.0
