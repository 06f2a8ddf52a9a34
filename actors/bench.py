"""``python -m actors bench``: the same prompts through bare vLLM and through RolloutActor(s),
in one run, with tokens/s for both and their ratio."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ray

from rlce.core.cluster import ensure_ray
from rlce.core.config import RolloutConfig
from rlce.core.models import resolve_model
from rlce.core.types import Prompt, SamplingSettings, prompt_token_ids

from .backends import VLLMBackend
from .rollout import RolloutPool, spawn_rollout_actors

TASKS = [
    "Write a Python function that returns the n-th Fibonacci number.",
    "Write a Python function that checks whether a string is a palindrome.",
    "Write a Python function that returns the sum of the digits of an integer.",
    "Write a Python function that reverses the words in a sentence.",
    "Write a Python function that counts the vowels in a string.",
    "Write a Python function that returns the largest element of a list.",
    "Write a Python function that merges two sorted lists.",
    "Write a Python function that tests whether a number is prime.",
]


def bench_prompts(count: int) -> list[Prompt]:
    return [Prompt(f"bench/{i}", messages=({"role": "user", "content": TASKS[i % len(TASKS)]
                                             + f" (variant {i})"},)) for i in range(count)]


async def _bare(cfg: RolloutConfig, path: str, prompts: list[Prompt],
                settings: SamplingSettings, warmup: list[Prompt]) -> tuple[float, int]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    be = VLLMBackend(path, cfg, seed=0)
    await be.start()

    async def run(ps: list[Prompt]) -> int:
        outs = await asyncio.gather(*[
            _collect(be.engine.generate({"prompt_token_ids": prompt_token_ids(tok, p)},
                                        be.sampling_params(settings, i),
                                        f"bare-{p.problem_id}-{i}"))
            for p in ps for i in range(settings.n)])
        return sum(len(o.outputs[0].token_ids) for o in outs)

    try:
        await run(warmup)
        t0 = time.perf_counter()
        tokens = await run(prompts)
        return time.perf_counter() - t0, tokens
    finally:
        await be.shutdown()


async def _collect(stream):
    last = None
    async for out in stream:
        last = out
    return last


def _actors(cfg: RolloutConfig, path: str, count: int, prompts: list[Prompt],
            settings: SamplingSettings, warmup: list[Prompt]) -> tuple[float, int, float]:
    actors = spawn_rollout_actors(cfg, path, 0, count)
    try:
        pool = RolloutPool(actors)
        list(pool.generate(warmup, settings))
        t0 = time.perf_counter()
        tokens = sum(len(s.completion_ids) for s in pool.generate(prompts, settings))
        wall = time.perf_counter() - t0
        from pathlib import Path

        from safetensors.torch import load_file

        weights = {}
        for f in sorted(Path(path).glob("*.safetensors")):
            weights.update(load_file(f))
        t1 = time.perf_counter()
        pool.update_weights(weights, 1)
        update_s = time.perf_counter() - t1
        return wall, tokens, update_s
    finally:
        for a in actors:
            ray.kill(a)


def main(args: Any) -> int:
    cfg = RolloutConfig(kv_cache_gb=args.kv_cache_gb)
    path = resolve_model(args.model)
    prompts = bench_prompts(args.prompts)
    warmup = bench_prompts(2)
    settings = SamplingSettings(n=args.n, temperature=1.0, max_tokens=args.max_tokens, seed=0)
    total = len(prompts) * settings.n
    print(f"model {path}; {len(prompts)} prompts x n={settings.n} = {total} "
          f"requests, max_tokens {settings.max_tokens}, {cfg.dtype}")
    bare_s, bare_tokens = asyncio.run(_bare(cfg, path, prompts, settings, warmup))
    bare = bare_tokens / bare_s
    print(f"  bare vLLM (AsyncLLM in-process)  {bare:8.1f} tokens/s  ({bare_tokens} tokens, "
          f"{bare_s:.1f}s)")
    ensure_ray()
    act_s, act_tokens, update_s = _actors(cfg, path, args.actors, prompts, settings, warmup)
    act = act_tokens / act_s
    print(f"  {args.actors} RolloutActor(s) via Ray     {act:8.1f} tokens/s  ({act_tokens} tokens, "
          f"{act_s:.1f}s)")
    ratio = act / bare
    print(f"  actor / bare                     {ratio:8.3f}")
    print(f"  update_weights (full model, via object store): {update_s:.2f}s")
    print(f"target (actor path >= 0.95 of bare vLLM): {'met' if ratio >= 0.95 else 'NOT met'}")
    return 0
