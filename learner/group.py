"""LearnerGroup: ``world_size`` LearnerActors training one model with FSDP2, driven as one
learner (the same ``step``/``publish``/``save_checkpoint`` calls as a ``Learner``)."""

from __future__ import annotations

import dataclasses
import math
import socket
from typing import Any

import ray
import torch

from rlce.core.config import AlgoConfig, LearnerConfig
from rlce.core.types import LearnerLost, TrainGroup

from .learner import STEP_METRICS, LearnerActor, advantages_for, validate


def gather(refs: list, what: str, actors: list | None = None) -> list:
    """``ray.get(refs)``; a learner actor that died raises LearnerLost. Each result is taken
    as it comes, so that one rank's death is seen at once and not behind a rank waiting for it
    in a collective. A task that failed is the learner's own error, unless one of ``actors``
    (the group) has died meanwhile: a surviving rank's collective fails when its peer goes,
    often before Ray reports the death. An actor whose constructor failed is not lost: its
    error (a bad checkpoint, no memory) is raised as it is."""
    try:
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            ray.get(ready)
        return ray.get(refs)
    except ray.exceptions.RayTaskError:
        dead = _dead(actors or [])
        if dead:
            raise LearnerLost(f"learner rank(s) {dead} were lost during {what}") from None
        raise
    except ray.exceptions.RayActorError as e:
        if getattr(e, "actor_init_failed", False):
            raise
        raise LearnerLost(f"a learner actor was lost during {what} "
                          f"({type(e).__name__})") from e
    except ray.exceptions.OutOfMemoryError as e:  # Ray's memory monitor killed a rank
        raise LearnerLost(f"a learner actor was killed for memory during {what}") from e


def _dead(actors: list, timeout_s: float = 60.0) -> list[int]:
    """The ranks among ``actors`` that no longer answer (dead, or not within ``timeout_s``)."""
    refs = [a.get_version.remote() for a in actors]
    out = []
    for rank, ref in enumerate(refs):
        try:
            ray.get(ref, timeout=timeout_s)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            out.append(rank)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def merge_rank_metrics(per_rank: list[dict[str, float]]) -> dict[str, float]:
    """The metrics of one step of the whole group from each rank's, each combined by its rule
    in ``STEP_METRICS``."""
    tokens = [m["completion_tokens"] for m in per_rank]
    samples = [m["samples"] for m in per_rank]
    wall = [m["step_s"] for m in per_rank]

    def weighted(values: list[float], weights: list[float]) -> float:
        return sum(v * w for v, w in zip(values, weights)) / max(sum(weights), 1.0)

    def pooled_std(stds: list[float], means: list[float]) -> float:
        # the sum of squared deviations about the pooled mean, from each rank's moments
        n, mean = sum(samples), weighted(means, samples)
        ss = sum((k - 1) * s * s + k * (m - mean) ** 2 for k, s, m in zip(samples, stds, means))
        return math.sqrt(ss / (n - 1)) if n > 1 else 0.0

    out = {}
    for key, rule in STEP_METRICS.items():
        if key not in per_rank[0]:  # a metric of the other loss (algo.loss)
            continue
        values = [m[key] for m in per_rank]
        if rule == "same":
            out[key] = values[0]
        elif rule == "sum":
            out[key] = sum(values)
        elif rule == "token_mean":
            out[key] = weighted(values, tokens)
        elif rule == "sample_mean":
            out[key] = weighted(values, samples)
        elif rule == "sample_std":
            out[key] = pooled_std(values, [m[key.replace("_std", "_mean")] for m in per_rank])
        elif rule == "min":
            out[key] = min(values)
        elif rule == "max":
            out[key] = max(values)
        elif rule == "rate":  # tokens processed by all ranks over the slowest rank's time
            out[key] = sum(r * t for r, t in zip(values, wall)) / max(wall)
        else:
            raise ValueError(f"metric {key!r} has an unknown merge rule {rule!r}")
    return out


class LearnerGroup:
    """``learner.actors`` LearnerActors training one model with FSDP2, each placed by the
    learner's Ray resources (``learner.num_gpus=1`` on a cluster)."""

    def __init__(self, cfg: LearnerConfig, algo: AlgoConfig, model: str, seed: int,
                 resume_from: str | None = None) -> None:
        world_size = cfg.actors
        if world_size < 1:
            raise ValueError(f"a LearnerGroup needs learner.actors >= 1, got {world_size}")
        self.world_size, self.estimator = world_size, algo.estimator
        self.sft = algo.loss == "sft"
        master = f"{ray.util.get_node_ip_address()}:{free_port()}"
        self.actors = [LearnerActor.options(**cfg.actor_options()).remote(
            cfg, algo, model, seed, resume_from, rank, world_size, master)
            for rank in range(world_size)]
        try:
            self._gather([a.get_step.remote() for a in self.actors], "start-up")
        except BaseException:
            self.shutdown()  # the ranks that did start hold resources a restart needs
            raise

    def _gather(self, refs: list, what: str) -> list:
        return gather(refs, what, self.actors)

    def step(self, groups: list[TrainGroup]) -> dict[str, float]:
        """One step of the group on a batch: each rank takes every ``world_size``-th group,
        with advantages computed here over the whole batch (REINFORCE++ normalises over it)."""
        validate(groups)  # reject on the caller's side: all ranks or none
        if len(groups) < self.world_size:
            raise ValueError(f"{len(groups)} groups cannot feed {self.world_size} learners")
        if not self.sft:  # the cross-entropy of algo.loss=sft has no advantages
            groups = [dataclasses.replace(g, advantages=tuple(a))
                      for g, a in zip(groups, advantages_for(groups, self.estimator))]
        parts = [groups[r::self.world_size] for r in range(self.world_size)]
        return merge_rank_metrics(self._gather([a.step.remote(p)
                                                for a, p in zip(self.actors, parts)], "a step"))

    def set_loss(self, loss: str) -> None:
        self._gather([a.set_loss.remote(loss) for a in self.actors], "set_loss")
        self.sft = loss == "sft"

    def publish(self, engines: list, version: int | None = None) -> dict[str, Any]:
        reports = self._gather([a.publish.remote(engines, version) for a in self.actors],
                               "a publish")
        return reports[0]

    def save_checkpoint(self, path: str, extra: dict[str, Any] | None = None) -> str:
        return self._gather([a.save_checkpoint.remote(str(path), extra) for a in self.actors],
                            "a checkpoint")[0]

    @property
    def version(self) -> int:
        return self._gather([self.actors[0].get_version.remote()], "a version query")[0]

    def node_ids(self) -> list[str | None]:
        return self._gather([a.node_id.remote() for a in self.actors], "a placement query")

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        return self._gather([a.full_state_dict.remote() for a in self.actors], "a state query")[0]

    def shutdown(self) -> None:
        for a in self.actors:
            ray.kill(a)
