"""The synchronous loop end to end on real parts: the session's vLLM engine (tiny model), a
real executor fleet, a real learner; rewards flow, the learner steps, engines get versions."""

from __future__ import annotations

import itertools

import ray

from actors.rollout import RolloutPool
from executors.fleet import ExecutorFleet, FleetConfig
from learner.learner import Learner, LearnerConfig
from rlce.controller import LoopConfig, run_loop
from rlce.data import generate
from rlce.rewards import REWARDS, register
from rlce.types import SamplingSettings


def test_two_synchronous_steps_move_the_engines_to_new_versions(ray_local, vllm_actor,
                                                                tiny_model):
    # a random tiny model never passes a test, so the test rewards something it does vary
    if "test_parity_of_length" not in REWARDS:
        register("test_parity_of_length")(lambda verdict, text: float(len(text) % 2))
    learner = Learner(LearnerConfig(model=tiny_model, lr=1e-3, micro_batch_tokens=2048))
    learner.set_version(ray.get(vllm_actor.get_version.remote()))
    v0 = learner.get_version()
    cfg = LoopConfig(steps=2, groups_per_step=2, reward="test_parity_of_length",
                     sampling=SamplingSettings(n=4, temperature=1.0, max_tokens=24, seed=1))
    seen = []
    with ExecutorFleet(FleetConfig(min_actors=1, max_actors=1, workers_per_actor=1)) as fleet:
        history = run_loop(iter(itertools.islice(generate(seed=7), 100)),
                           RolloutPool([vllm_actor]), fleet, learner, [vllm_actor], cfg,
                           log=seen.append)
        executed = fleet.metrics()["verdicts"]
    assert seen == history and [m["step"] for m in history] == [1, 2]
    for m in history:
        assert m["rollout/samples"] >= 8 and m["learner/step"] >= 1
        assert 0 < m["reward/mean"] < 1
        assert m["time/generate_s"] > 0 and m["time/train_s"] > 0 and m["time/publish_s"] > 0
        assert sum(v for k, v in m.items() if k.startswith("exec/verdict_")) == \
            m["rollout/samples"]
    assert executed == sum(m["rollout/samples"] for m in history)
    assert ray.get(vllm_actor.get_version.remote()) == v0 + 2 == history[-1][
        "rollout/policy_version"]
    # leave the shared engine with the tiny model's weights for the other tests
    from safetensors.torch import load_file

    ray.get(vllm_actor.update_weights.remote(load_file(f"{tiny_model}/model.safetensors")))
