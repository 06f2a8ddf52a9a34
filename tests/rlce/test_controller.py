"""The loop end to end on real parts: vLLM (the session's engine on the tiny model) or the
transformers backend, a real executor fleet and a real learner. Synchronous and asynchronous
modes, the staleness bound, over-long completions and prompts, and a rollout engine dying."""

from __future__ import annotations

import itertools
import logging

import pytest
import ray

from actors.rollout import spawn_rollout_actors
from executors.fleet import ExecutorFleet, FleetConfig
from executors.schema import Verdict
from learner.learner import Learner
from rlce.controller import Controller
from rlce.core.config import AlgoConfig, LearnerConfig, RolloutConfig
from rlce.core.types import SamplingSettings
from rlce.data import ProblemStream, generate, parse_problem

pytestmark = pytest.mark.slow  # rlce.controller imports ray; real engines and fleet

MAX_TOKENS = 24


def parity(verdict: Verdict, text: str) -> float:
    """A random tiny model never passes a test, so the tests reward something it does vary."""
    return float(len(text) % 2)


@pytest.fixture(scope="module")
def fleet(ray_local):
    with ExecutorFleet(FleetConfig(min_actors=1, max_actors=1, workers_per_actor=1)) as f:
        yield f


def new_learner(tiny_model: str) -> Learner:
    return Learner(LearnerConfig(lr=1e-3, micro_batch_tokens=2048), algo(), tiny_model, seed=0)


def learner_for(tiny_model: str, engine) -> Learner:
    learner = new_learner(tiny_model)
    learner.set_version(ray.get(engine.get_version.remote()))
    return learner


def algo(**kw) -> AlgoConfig:
    return AlgoConfig(**{"groups_per_step": 2, "n": 4, "temperature": 1.0,
                         "max_tokens": MAX_TOKENS, "stop": [], "problems_per_draw": 0, **kw})


def controller(problems, engines, fleet, learner, make_engine=None, log=None,
               **kw) -> Controller:
    return Controller(ProblemStream(problems, shuffle=False), engines, fleet, learner,
                      algo(**kw), parity, seed=1, max_engine_restarts=3, samples_kept=16,
                      make_engine=make_engine, log=log)


def run_loop(problems, fleet, learner, engines, log=None, **kw) -> list[dict]:
    return controller(problems, engines, fleet, learner, log=log, **kw).run()


@pytest.mark.usefixtures("restores_vllm_actor")
def test_synchronous_steps_move_the_engines_and_penalise_cut_completions(
        ray_local, vllm_actor, tiny_model, fleet):
    learner = learner_for(tiny_model, vllm_actor)
    v0 = learner.get_version()
    seen = []
    executed0 = fleet.metrics().get("verdicts", 0.0)
    history = run_loop(iter(itertools.islice(generate(seed=7), 100)), fleet, learner,
                       [vllm_actor], log=seen.append, steps=2, overlong="penalty",
                       overlong_penalty=0.5)
    assert seen == history and [m["step"] for m in history] == [1, 2]
    cut = 0
    for m in history:
        assert m["rollout/samples"] >= 8 and m["learner/step"] >= 1
        assert m["rollout/staleness_max"] == 0  # synchronous: always the current policy
        assert m["time/generate_s"] > 0 and m["time/train_s"] > 0 and m["time/publish_s"] > 0
        assert sum(v for k, v in m.items() if k.startswith("exec/verdict_")) == \
            m["rollout/samples"]
        for r in m["_samples"]:
            want = parity(None, r["text"]) - (0.5 if r["tokens"] == MAX_TOKENS else 0.0)
            assert r["reward"] == want, r
            cut += r["tokens"] == MAX_TOKENS
    assert cut > 0  # the penalty was exercised
    assert fleet.metrics()["verdicts"] - executed0 == sum(m["rollout/samples"] for m in history)
    assert ray.get(vllm_actor.get_version.remote()) == v0 + 2 == history[-1][
        "rollout/policy_version"]


@pytest.mark.usefixtures("restores_vllm_actor")
def test_asynchronous_mode_keeps_the_staleness_bound_and_skips_long_prompts(
        ray_local, vllm_actor, tiny_model, fleet):
    learner = learner_for(tiny_model, vllm_actor)
    v0 = learner.get_version()
    long = parse_problem({"id": "too-long", "language": "python", "prompt": "word " * 2000,
                          "tests": {"format": "asserts", "asserts": ["assert True"]}})
    problems = [long] + list(itertools.islice(generate(seed=11), 40))
    ctrl = controller(problems, [vllm_actor], fleet, learner, steps=3, staleness=1)
    history = ctrl.run()
    assert [m["step"] for m in history] == [1, 2, 3]
    assert sum(m["data/prompts_skipped"] for m in history) >= 1
    for m in history:
        # at least the 2 groups asked for; a round that completes them is trained on whole,
        # so with 2 problems a round one more group may come along
        assert 2 <= m["data/groups_kept"] <= 3 and m["rollout/staleness_max"] <= 1
        assert m["learner/samples"] == 4 * m["data/groups_kept"]
        assert m["learner/step"] >= 1
    # generation ran ahead of training, so some used groups were one version behind
    assert max(m["rollout/staleness_max"] for m in history) == 1
    assert learner.get_version() == v0 + 3 == ray.get(vllm_actor.get_version.remote())
    assert ctrl._producer is not None and not ctrl._producer.is_alive()


@pytest.mark.usefixtures("restores_vllm_actor")
def test_a_wide_draw_trains_on_every_informative_group_it_finds(
        ray_local, vllm_actor, tiny_model, fleet):
    learner = learner_for(tiny_model, vllm_actor)
    (m,) = run_loop(iter(itertools.islice(generate(seed=3), 100)), fleet, learner,
                    [vllm_actor], steps=1, problems_per_draw=6)
    # each round draws 6 problems, not the 2 groups still needed, and keeps all that vary
    assert m["rollout/samples"] == 6 * 4 * m["data/draws"]
    assert m["data/groups_kept"] + m["data/groups_dropped"] == 6 * m["data/draws"]
    assert m["data/groups_kept"] >= 2
    assert m["learner/samples"] == 4 * m["data/groups_kept"]


def test_a_dead_rollout_engine_is_replaced_with_current_weights_and_the_run_goes_on(
        ray_local, tiny_model, fleet):
    cfg = RolloutConfig(backend="transformers", max_model_len=512)
    engines = spawn_rollout_actors(cfg, tiny_model, 0, 1)
    first = engines[0]
    learner = new_learner(tiny_model)
    started = []

    def new_engine():
        (e,) = spawn_rollout_actors(cfg, tiny_model, 0, 1)
        started.append(e)
        return e

    def kill_after_first_step(m):
        if m["step"] == 1:
            ray.kill(first)

    ctrl = controller(generate(seed=5), engines, fleet, learner, make_engine=new_engine,
                      log=kill_after_first_step, steps=3)
    history = ctrl.run()
    assert [m["step"] for m in history] == [1, 2, 3]
    assert sum(m["rollout/engine_restarts"] for m in history) == 1 == len(started)
    assert ctrl.engines == started and ctrl.engines[0] is not first
    # the replacement got the learner's weights when it started, then every later publish
    assert ray.get(started[0].get_version.remote()) == learner.get_version() == 3
    for e in started:
        ray.kill(e)


def test_an_engine_lost_in_the_middle_of_a_publish_is_replaced_and_given_that_version(
        ray_local, tiny_model, fleet):
    """Two engines; at step 1's publish one of them has loaded the new version when the other
    dies (what a lost node does in the load phase): the dead one is replaced, and the new
    version goes to the replacement only (the survivor would refuse it twice)."""
    from learner.publish import PublishError

    cfg = RolloutConfig(backend="transformers", max_model_len=512)
    engines = spawn_rollout_actors(cfg, tiny_model, 0, 2)
    survivor, victim = engines
    started = []

    class LosesAnEngineOnce(Learner):
        def publish(self, actors, version=None, transport="auto"):
            if victim in actors and not started:
                before = self.version
                super().publish([survivor], version, transport)  # the one that made it
                self.version = before  # a failed publish leaves the learner's version
                ray.kill(victim)
                raise PublishError("1 of 2 engines failed to load the new version")
            return super().publish(actors, version, transport)

    learner = LosesAnEngineOnce(LearnerConfig(lr=1e-3, micro_batch_tokens=2048), algo(),
                                tiny_model, seed=0)

    def new_engine():
        (e,) = spawn_rollout_actors(cfg, tiny_model, 0, 1)
        started.append(e)
        return e

    ctrl = controller(generate(seed=6), engines, fleet, learner, make_engine=new_engine, steps=2)
    history = ctrl.run()
    assert [m["step"] for m in history] == [1, 2]
    assert [m["rollout/engine_restarts"] for m in history] == [1, 0]
    assert [m["rollout/policy_version"] for m in history] == [1, 2] and learner.version == 2
    assert ctrl.engines[0] is survivor and ctrl.engines[1] is started[0]
    assert ray.get([e.get_version.remote() for e in ctrl.engines]) == [2, 2]
    assert all(m["rollout/staleness_max"] == 0 for m in history)
    for e in ctrl.engines:
        ray.kill(e)


def test_bad_loop_options_are_named():
    with pytest.raises(ValueError, match="algo.staleness must be >= 0, got -1"):
        AlgoConfig(staleness=-1)
    with pytest.raises(ValueError, match="algo.overlong must be one of keep, filter, penalty"):
        AlgoConfig(overlong="truncate")
    with pytest.raises(ValueError, match="algo.problems_per_draw must be >= 0"):
        AlgoConfig(problems_per_draw=-1)


def test_a_sandbox_error_is_left_out_of_training_not_scored_as_a_failure(caplog):
    """Pure logic of grouping, so stand-ins for the engine pool and the fleet: the fleet
    reports an infrastructure failure for one sample, which must not get a reward."""
    from rlce.controller import generate_and_execute
    from rlce.core.types import Sample

    problem = next(generate(seed=3))

    class Pool:
        def generate(self, prompts, settings):
            for i in range(settings.n):
                yield Sample(problem.id, i, (1, 2), (3, 4), (-0.1, -0.2), "```python\nx\n```",
                             "stop", 0, 0)

    class Fleet:
        def submit(self, job, callback):
            failed = job["id"].endswith("#0")
            callback({"id": job["id"], "status": "sandbox_error" if failed else "failed",
                      "passed": 0, "total": 2, "tests": [], "duration_s": 0.1,
                      "message": "sandbox could not be restarted"})

    batch = generate_and_execute(Pool(), Fleet(), [problem], SamplingSettings(n=3), parity)
    (group,) = batch.groups
    assert len(group.samples) == 2
    assert batch.stats.sandbox_errors_excluded == 1
    assert batch.stats.verdicts == {"sandbox_error": 1, "failed": 2}
    assert len(batch.stats.rewards) == len(batch.records) == 2
    (warning,) = [r for r in caplog.records
                  if r.name == "rlce.controller" and r.levelno == logging.WARNING]
    assert warning.args == (problem.id, 0, "sandbox could not be restarted")


def test_a_problem_drawn_twice_in_one_round_is_generated_for_once():
    """A stream may repeat a problem within a draw (an epoch boundary, a curriculum on a
    small set); its samples share ids, so it must be sampled once, not wait forever for
    verdicts that collide."""
    from rlce.controller import generate_and_execute
    from rlce.core.types import Sample

    problem = next(generate(seed=5))
    asked = []

    class Pool:
        def generate(self, prompts, settings):
            asked.extend(p.problem_id for p in prompts)
            for p in prompts:
                for i in range(settings.n):
                    yield Sample(p.problem_id, i, (1,), (2,), (-0.1,), "x", "stop", 0, 0)

    class Fleet:
        def submit(self, job, callback):
            callback({"id": job["id"], "status": "failed", "passed": 0, "total": 1,
                      "tests": [], "duration_s": 0.0})

    batch = generate_and_execute(Pool(), Fleet(), [problem, problem], SamplingSettings(n=2),
                                 parity)
    assert asked == [problem.id] and batch.stats.samples == 2


def test_rejection_sampling_resamples_unsolved_problems_and_keeps_distinct_passes():
    """Pure logic of algo.loss=sft's step, with generation replaced by a table of what each
    problem's rounds pass: a problem with no pass is sampled again with new seeds until its
    budget (sft_max_samples) is spent; passes of one program in two layouts count once; at
    most sft_keep are kept."""
    from rlce.controller import Batch, RoundStats
    from rlce.core.types import ScoredSample

    problems = [parse_problem({"id": pid, "language": "python", "prompt": pid,
                               "tests": {"format": "asserts", "asserts": ["assert True"]}})
                for pid in ("easy", "late", "never")]
    passing = {  # (problem, round) -> the programs of that round's passing samples
        ("easy", 0): ["x = 1\n", "x=1\n", "x = 2\n", "x = 3\n"],
        ("late", 2): ["y = 1\n"],
    }
    calls = []

    def generate(todo, settings):
        rnd = len(calls)
        calls.append(([p.id for p in todo], settings.seed))
        passed = {p.id: [(prog, ScoredSample((1,), (k + 2,), (-0.5,), 1.0))
                         for k, prog in enumerate(passing.get((p.id, rnd), []))]
                  for p in todo}
        return Batch([], RoundStats(samples=4 * len(todo)),
                     [{"problem": p.id, "status": "failed"} for p in todo],
                     {k: v for k, v in passed.items() if v})

    ctrl = Controller(ProblemStream(problems, shuffle=False), [object()], None, None,
                      algo(loss="sft", n=4, sft_keep=2, sft_max_samples=12,
                           groups_per_step=3),
                      parity, seed=9, max_engine_restarts=0, samples_kept=0)
    ctrl._draw = lambda count: problems[:count]
    ctrl.generate = generate
    groups, stats, records, rounds = ctrl.rejection_sample()
    # 12 samples at 4 a round: 3 rounds at most; only unsolved problems go round again
    assert calls == [(["easy", "late", "never"], 9), (["late", "never"], 9 + 100_003),
                     (["late", "never"], 9 + 2 * 100_003)]
    assert rounds == 3 and stats.samples == 4 * 7 and len(records) == 7
    kept = {g.problem_id: [s.completion_ids for s in g.samples] for g in groups}
    # easy: "x = 1" and "x=1" are one program; the first two distinct ones are kept
    assert kept == {"easy": [(2,), (4,)], "late": [(2,)]}
