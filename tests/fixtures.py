"""Session fixtures for the slow tier: one local Ray instance and one vLLM RolloutActor per
session, on the tiny model, and `restores_vllm_actor` for every test that changes that engine.

The root conftest loads this module as a plugin, so that every package shares one engine
(a fixture defined in two package conftests would start two). Ray, vLLM and the rollout actors
are imported inside the fixtures: loading the plugin imports neither, and a run of the tests
that use none of these fixtures (`pytest -m "not slow"`) never imports ray or vllm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(frozen=True)
class SharedEngine:
    """The session's vLLM actor and the weight digest of the tiny model it started with."""

    actor: Any
    digest: float


@pytest.fixture(scope="session")
def ray_local():
    import ray

    from rlce.core.cluster import start_local_ray

    if not ray.is_initialized():
        # logical CPUs: actors mostly wait on their engines, so oversubscribing 2 cores is fine
        start_local_ray(num_cpus=8)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_cfg(tiny_model):
    from rlce.core.config import RolloutConfig

    return RolloutConfig(max_model_len=512, kv_cache_gb=1)


@pytest.fixture(scope="session")
def shared_engine(ray_local, tiny_cfg, tiny_model) -> SharedEngine:
    import ray

    from actors.rollout import spawn_rollout_actors

    (actor,) = spawn_rollout_actors(tiny_cfg, tiny_model, 0, 1)
    yield SharedEngine(actor, ray.get(actor.weight_digest.remote()))
    ray.get(actor.shutdown.remote())
    ray.kill(actor)


@pytest.fixture(scope="session")
def vllm_actor(shared_engine):
    """The session's vLLM engine on the tiny model. A test that changes its weights or its
    version also uses `restores_vllm_actor`."""
    return shared_engine.actor


@pytest.fixture
def restores_vllm_actor(shared_engine, tiny_model):
    """Owns the shared engine's weights for one test: checks on the way in that the engine
    holds the tiny model's weights, and on the way out, however the test ended, loads them
    back and checks the digest again. Versions only increase, so the restore is one more
    version: tests read versions relative to the engine's current one."""
    import ray
    from safetensors.torch import load_file

    actor, digest = shared_engine.actor, shared_engine.digest
    assert ray.get(actor.weight_digest.remote()) == pytest.approx(digest), (
        "the shared vLLM engine does not hold the tiny model's weights: a test before this "
        "one changed it without the restores_vllm_actor fixture")
    yield actor
    ray.get(actor.update_weights.remote(load_file(f"{tiny_model}/model.safetensors")))
    assert ray.get(actor.weight_digest.remote()) == pytest.approx(digest)
