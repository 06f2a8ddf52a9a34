from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from rlce.core.config import AlgoConfig, LearnerConfig
from rlce.core.types import ScoredSample, TrainGroup

if TYPE_CHECKING:
    from learner.learner import Learner

LEARNER_OPTIONS = {f.name for f in dataclasses.fields(LearnerConfig)}


def configs(**changes) -> tuple[LearnerConfig, AlgoConfig]:
    """The tests' learner and algorithm options (temperature 1, as the engines' default
    sampling settings, so that logprobs compare), with ``changes`` to either."""
    learner = {"lr": 1e-3, "micro_batch_tokens": 64}
    algo = {"temperature": 1.0}
    for k, v in changes.items():
        (learner if k in LEARNER_OPTIONS else algo)[k] = v
    return LearnerConfig(**learner), AlgoConfig(**algo)


@pytest.fixture
def make_learner(tiny_model) -> Callable[..., Learner]:
    """``make_learner(resume_from=None, **changes)``: a Learner of the tiny model."""
    # imported here: learner.learner imports ray, which the fast tier (test_losses) never needs
    from learner.learner import Learner

    def make(resume_from: str | None = None, **changes) -> Learner:
        return Learner(*configs(**changes), tiny_model, seed=0, resume_from=resume_from)
    return make


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
