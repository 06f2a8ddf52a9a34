"""The transformers backend behind the same RolloutActor interface, and several actors used
as one pool."""

from __future__ import annotations

import dataclasses

import pytest
import ray
import torch
from ray.exceptions import ActorDiedError
from safetensors.torch import load_file

from actors.rollout import RolloutPool, spawn_rollout_actors
from rlce.core.config import RolloutConfig
from rlce.core.types import Prompt, SamplingSettings
from rlce.core.weights import WeightUpdateError

from .conftest import forward_logprobs, reference_model
from .test_rollout_vllm import MAX_ABS_LOGPROB_ERR, collect

pytestmark = pytest.mark.slow  # rollout actors on Ray


@pytest.fixture(scope="module")
def hf_actor(ray_local, tiny_cfg, tiny_model):
    cfg = dataclasses.replace(tiny_cfg, backend="transformers")
    (actor,) = spawn_rollout_actors(cfg, tiny_model, 0, 1)
    yield actor
    ray.kill(actor)


def test_transformers_backend_samples_and_logprobs(hf_actor, tiny_model):
    ref = reference_model(tiny_model)
    samples = collect(hf_actor, [Prompt("t", token_ids=(1, 2, 3))],
                      SamplingSettings(n=2, max_tokens=12, temperature=0.8, seed=4))
    assert [s.index for s in sorted(samples, key=lambda s: s.index)] == [0, 1]
    for s in samples:
        assert len(s.completion_ids) == len(s.logprobs) == 12 and s.finish_reason == "length"
        diff = (forward_logprobs(ref, s.prompt_ids, s.completion_ids, 0.8)
                - torch.tensor(s.logprobs)).abs().max()
        assert diff < MAX_ABS_LOGPROB_ERR


def test_both_backends_agree_on_greedy(hf_actor, vllm_actor):
    prompt = [Prompt("g", messages=({"role": "user", "content": "Print hello."},))]
    greedy = SamplingSettings(temperature=0.0, max_tokens=16)
    a = collect(hf_actor, prompt, greedy)[0]
    b = collect(vllm_actor, prompt, greedy)[0]
    assert a.prompt_ids == b.prompt_ids and a.completion_ids == b.completion_ids


def test_transformers_backend_takes_and_rejects_weights(hf_actor, tiny_model):
    sd = load_file(f"{tiny_model}/model.safetensors")
    digest = ray.get(hf_actor.weight_digest.remote())
    bad = dict(sd, **{"model.norm.weight": torch.ones(3)})
    with pytest.raises(WeightUpdateError):
        ray.get(hf_actor.update_weights.remote(bad))
    assert ray.get(hf_actor.weight_digest.remote()) == digest
    v = ray.get(hf_actor.get_version.remote())
    shifted = {k: t + 0.5 for k, t in sd.items()}
    assert ray.get(hf_actor.update_weights.remote(shifted, v + 5))["version"] == v + 5
    assert ray.get(hf_actor.weight_digest.remote()) != digest
    with pytest.raises(ValueError, match="must increase"):
        ray.get(hf_actor.update_weights.remote(sd, v + 5))
    ray.get(hf_actor.update_weights.remote(sd))
    assert ray.get(hf_actor.weight_digest.remote()) == pytest.approx(digest)


@pytest.mark.usefixtures("restores_vllm_actor")  # the pool publishes a new version
def test_pool_merges_streams_of_several_engines(hf_actor, vllm_actor, tiny_model):
    pool = RolloutPool([vllm_actor, hf_actor])
    prompts = [Prompt(f"p{i}", token_ids=(1, i + 2)) for i in range(4)]
    arrivals, running_at_first = [], None
    for s in pool.generate(prompts, SamplingSettings(n=2, max_tokens=24, seed=0)):
        if not arrivals:
            running_at_first = [ray.get(a.get_stats.remote())["in_flight"] for a in pool.actors]
        arrivals.append(s)
    assert sorted((s.problem_id, s.index) for s in arrivals) == [
        (f"p{i}", j) for i in range(4) for j in range(2)]
    assert len({s.engine for s in arrivals}) == 2
    # no one waits for the slowest engine: the first sample is handed out while requests are
    # still running (the transformers engine runs its four one after another), an event, not
    # a comparison of arrival times, which a busy machine can upset
    assert sum(running_at_first) > 0, running_at_first
    original = load_file(f"{tiny_model}/model.safetensors")
    versions = {ray.get(a.get_version.remote()) for a in pool.actors}
    target = max(versions) + 1
    reports = pool.update_weights(original, target)
    assert [r["version"] for r in reports] == [target, target]


def test_unknown_model_fails_the_actor_start_with_the_reason(ray_local):
    # the constructor raises, so Ray reports the actor dead, with the reason in its message
    with pytest.raises(ActorDiedError, match=r"ModelNotFound: model path '/nonexistent/model' "
                                             r"is not a Hugging Face folder \(no config.json"):
        spawn_rollout_actors(RolloutConfig(), "/nonexistent/model", 0, 1)
