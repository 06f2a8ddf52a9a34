"""``python -m learner bench``: learner tokens/s for one step on the default model, and the
time to publish its weights to 1, 2 and 4 vLLM engines beside a floor (a plain in-memory copy
of the same bytes), in one run."""

from __future__ import annotations

import time
from typing import Any

import ray
import torch

from actors.rollout import RolloutConfig, spawn_rollout_actors
from rlce.cluster import ensure_ray
from rlce.types import ScoredSample, TrainGroup

from .learner import Learner, LearnerConfig


def synthetic_groups(groups: int, n: int, prompt_len: int, completion_len: int,
                     vocab: int) -> list[TrainGroup]:
    g = torch.Generator().manual_seed(0)
    out = []
    for k in range(groups):
        prompt = tuple(torch.randint(100, vocab, (prompt_len,), generator=g).tolist())
        samples = tuple(ScoredSample(prompt, tuple(torch.randint(100, vocab, (completion_len,),
                                                                 generator=g).tolist()),
                                     tuple([-2.0] * completion_len), reward=float(i % 2))
                        for i in range(n))
        out.append(TrainGroup(f"bench/{k}", samples))
    return out


def floor_copy(sd: dict[str, torch.Tensor], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        copy = {k: v.clone() for k, v in sd.items()}
        best = min(best, time.perf_counter() - t0)
        del copy
    return best


def main(args: Any) -> int:
    cfg = LearnerConfig(model=args.model, micro_batch_tokens=args.micro_batch_tokens, lr=1e-6)
    learner = Learner(cfg)
    groups = synthetic_groups(args.groups, args.n, args.prompt_len, args.completion_len,
                              learner.model.config.vocab_size)
    learner.step(groups[:1])  # warm-up
    m = learner.step(groups)
    tokens = args.groups * args.n * (args.prompt_len + args.completion_len)
    print(f"learner step on {learner.model_path} ({learner.device}, fp32): {tokens} tokens in "
          f"{m['step_s']:.2f}s = {m['tokens_per_s']:.0f} tokens/s")
    sd = learner.full_state_dict()
    nbytes = sum(v.numel() * v.element_size() for v in sd.values())
    floor = floor_copy(sd)
    print(f"weights {nbytes / 1e6:.0f} MB; floor (in-memory copy): {floor:.3f}s "
          f"= {nbytes / floor / 1e9:.2f} GB/s")
    ensure_ray()
    rcfg = RolloutConfig(model=args.model, max_model_len=1024, kv_cache_gb=1,
                         resources={"num_cpus": 0.5})
    engines: list[Any] = []
    results = {}
    try:
        for count in args.engines:
            engines += spawn_rollout_actors(rcfg, count - len(engines))
            learner.set_version(max(ray.get([e.get_version.remote() for e in engines])))
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                report = learner.publish(engines)
                times.append(time.perf_counter() - t0)
            best = min(times)
            results[count] = best
            engine_s = max(r["seconds"] for r in report["engines"])
            print(f"  publish to {count} engine(s) [{report['transport']}]: {best:.3f}s "
                  f"= {best / floor:.1f}x floor  (last: checks {report['check_s']:.3f}s, "
                  f"staging {report['stage_s']:.3f}s, slowest engine load {engine_s:.3f}s)")
    finally:
        for e in engines:
            ray.kill(e)
    if 2 in results:
        ok = results[2] <= 3 * floor
        print(f"target (publish to 2 engines <= 3x floor): {'met' if ok else 'NOT met'} "
              f"({results[2] / floor:.1f}x)")
    return 0
