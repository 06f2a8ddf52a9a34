"""``python -m learner bench``: learner tokens/s for one step on the default model. (The
time to publish its weights to rollout engines needs both parts: ``rlce bench publish``.)"""

from __future__ import annotations

from typing import Any

import torch

from rlce.core.config import AlgoConfig, LearnerConfig
from rlce.core.types import ScoredSample, TrainGroup

from .learner import Learner


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


def main(args: Any) -> int:
    cfg = LearnerConfig(micro_batch_tokens=args.micro_batch_tokens, lr=1e-6)
    learner = Learner(cfg, AlgoConfig(), args.model, seed=0)
    groups = synthetic_groups(args.groups, args.n, args.prompt_len, args.completion_len,
                              learner.model.config.vocab_size)
    learner.step(groups[:1])  # warm-up
    m = learner.step(groups)
    tokens = args.groups * args.n * (args.prompt_len + args.completion_len)
    print(f"learner step on {learner.model_path} ({learner.device}, fp32): {tokens} tokens in "
          f"{m['step_s']:.2f}s = {m['tokens_per_s']:.0f} tokens/s")
    return 0
