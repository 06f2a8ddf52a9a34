"""Shared, expensive fixtures: one local Ray instance and one vLLM RolloutActor per session,
on a tiny random model of SmolLM2's architecture built at test time."""

from __future__ import annotations

import pytest
import ray
import torch

from actors.models import build_tiny_model, cache_dir
from actors.rollout import RolloutConfig, spawn_rollout_actors


@pytest.fixture(scope="session")
def tiny_model() -> str:
    return str(build_tiny_model(cache_dir() / "models" / "tiny-llama-test"))


@pytest.fixture(scope="session")
def ray_local():
    if not ray.is_initialized():
        # logical CPUs: actors mostly wait on their engines, so oversubscribing 2 cores is fine
        ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_cfg(tiny_model) -> RolloutConfig:
    return RolloutConfig(model=tiny_model, max_model_len=512, kv_cache_gb=1, seed=0)


@pytest.fixture(scope="session")
def vllm_actor(ray_local, tiny_cfg):
    (actor,) = spawn_rollout_actors(tiny_cfg, 1)
    yield actor
    ray.get(actor.shutdown.remote())
    ray.kill(actor)


def reference_model(path: str):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def forward_logprobs(model, prompt_ids, completion_ids, temperature: float = 1.0) -> torch.Tensor:
    """transformers' log-probabilities of ``completion_ids`` after ``prompt_ids``."""
    ids = torch.tensor([list(prompt_ids) + list(completion_ids)])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt_ids) - 1: -1].float()
    lp = (logits / temperature).log_softmax(-1)
    return lp.gather(1, torch.tensor(completion_ids).unsqueeze(1)).squeeze(1)


def greedy_transformers(model, prompt_ids, max_tokens: int) -> list[int]:
    ids = torch.tensor([list(prompt_ids)])
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=max_tokens, pad_token_id=2)
    return out[0, len(prompt_ids):].tolist()
