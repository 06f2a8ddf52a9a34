from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from rlce.core.types import ScoredSample, TrainGroup

if TYPE_CHECKING:
    from learner.learner import LearnerConfig


@pytest.fixture
def cfg(tiny_model) -> LearnerConfig:
    # imported here: learner.learner imports ray, which the fast tier (test_losses) never needs
    from learner.learner import LearnerConfig

    return LearnerConfig(model=tiny_model, lr=1e-3, micro_batch_tokens=64, seed=0)


def fixed_groups(learner, n_groups: int = 2, n: int = 4, length: int = 6) -> list[TrainGroup]:
    """Groups of deterministic samples with behaviour logprobs from the learner itself and
    rewards 1 for even-indexed samples, 0 for odd ones."""
    groups = []
    for g in range(n_groups):
        samples = []
        for i in range(n):
            prompt = [1, 10 + g, 20 + g]
            completion = [(100 + 37 * g + 13 * i + 7 * t) % 5000 + 50
                          for t in range(length + i % 2)]
            lp = learner.logprobs(prompt, completion)
            samples.append(ScoredSample(tuple(prompt), tuple(completion), tuple(lp),
                                        reward=float(i % 2 == 0)))
        groups.append(TrainGroup(f"g{g}", tuple(samples)))
    return groups
