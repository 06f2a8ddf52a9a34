"""Weight broadcast from a learner to real rollout engines (a vLLM actor and a transformers
actor on the local Ray instance), in both transports, and failed publishes."""

from __future__ import annotations

import dataclasses

import pytest
import ray
import torch

from actors.rollout import spawn_rollout_actors
from learner.learner import Learner
from learner.publish import PublishError
from rlce.core.types import Prompt, SamplingSettings
from rlce.core.weights import WeightUpdateError

from ..actors.test_rollout_vllm import MAX_ABS_LOGPROB_ERR, collect
from .conftest import configs, fixed_groups

pytestmark = pytest.mark.slow  # rollout engines on Ray


@pytest.fixture(scope="module")
def engines(ray_local, vllm_actor, tiny_cfg, tiny_model):
    cfg = dataclasses.replace(tiny_cfg, backend="transformers")
    (hf,) = spawn_rollout_actors(cfg, tiny_model, 0, 1)
    yield [vllm_actor, hf]
    ray.kill(hf)


@pytest.fixture(scope="module")
def learner(tiny_model):
    lrn = Learner(*configs(lr=2e-3, micro_batch_tokens=256), tiny_model, seed=0)
    lrn.step(fixed_groups(lrn))  # weights now differ from the engines' start
    return lrn


def engine_versions(engines):
    return [ray.get(a.get_version.remote()) for a in engines]


@pytest.mark.usefixtures("restores_vllm_actor")
@pytest.mark.parametrize("transport", ["shm", "object_store"])
def test_after_publish_engines_match_the_learner(engines, learner, transport):
    start = max(engine_versions(engines))
    learner.set_version(start)
    report = learner.publish(engines, transport=transport)
    assert report["transport"] == transport
    assert engine_versions(engines) == [start + 1, start + 1] == [learner.get_version()] * 2
    print(f"publish {transport}: {report['bytes'] / 1e6:.1f} MB in {report['total_s']:.2f}s")
    prompt = [Prompt("fixed", token_ids=(1, 17, 42, 99))]
    for engine in engines:
        (s,) = collect(engine, prompt, SamplingSettings(max_tokens=16, seed=5))
        assert s.policy_version == start + 1
        mine = torch.tensor(learner.logprobs(list(s.prompt_ids), list(s.completion_ids)))
        assert (mine - torch.tensor(s.logprobs)).abs().max() < MAX_ABS_LOGPROB_ERR


@pytest.mark.usefixtures("restores_vllm_actor")  # in case an engine takes the bad publish
def test_publish_that_one_engine_would_reject_changes_no_engine(engines, learner):
    before = engine_versions(engines)
    digests = [ray.get(a.weight_digest.remote()) for a in engines]
    sd = learner.full_state_dict()
    from learner.publish import publish_weights

    wrong = dict(sd, **{"model.norm.weight": torch.ones(5)})
    with pytest.raises(WeightUpdateError, match="shape"):
        publish_weights(wrong, engines, max(before) + 1)
    with pytest.raises(ValueError, match="must increase"):
        publish_weights(sd, engines, min(before))
    nan = dict(sd, **{"model.norm.weight": torch.full_like(sd["model.norm.weight"], float("nan"))})
    with pytest.raises(PublishError, match="NaN"):
        publish_weights(nan, engines, max(before) + 1)
    assert engine_versions(engines) == before
    assert [ray.get(a.weight_digest.remote()) for a in engines] == digests
