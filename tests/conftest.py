"""Session-wide fixtures shared by every test package: one local Ray instance and one vLLM
RolloutActor per session, on a tiny random model of SmolLM2's architecture built at test
time."""

from __future__ import annotations

import pytest
import ray

from actors.rollout import spawn_rollout_actors
from rlce.core.cluster import start_local_ray
from rlce.core.config import RolloutConfig
from rlce.core.models import build_tiny_model, cache_dir


@pytest.fixture(scope="session")
def tiny_model() -> str:
    return str(build_tiny_model(cache_dir() / "models" / "tiny-llama-test"))


@pytest.fixture(scope="session")
def ray_local():
    if not ray.is_initialized():
        # logical CPUs: actors mostly wait on their engines, so oversubscribing 2 cores is fine
        start_local_ray(num_cpus=8)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_cfg(tiny_model) -> RolloutConfig:
    return RolloutConfig(max_model_len=512, kv_cache_gb=1)


@pytest.fixture(scope="session")
def vllm_actor(ray_local, tiny_cfg, tiny_model):
    (actor,) = spawn_rollout_actors(tiny_cfg, tiny_model, 0, 1)
    yield actor
    ray.get(actor.shutdown.remote())
    ray.kill(actor)


