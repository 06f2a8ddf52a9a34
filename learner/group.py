"""LearnerGroup: ``world_size`` LearnerActors training one model with FSDP2, driven as one
learner (the same ``step``/``publish``/``save_checkpoint`` calls as a ``Learner``)."""

from __future__ import annotations

import socket
from typing import Any

import ray
import torch

from rlce.core.config import AlgoConfig, LearnerConfig
from rlce.core.types import TrainGroup

from .learner import LearnerActor, validate


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LearnerGroup:
    """``learner.actors`` LearnerActors training one model with FSDP2, each placed by the
    learner's Ray resources (``learner.num_gpus=1`` on a cluster)."""

    def __init__(self, cfg: LearnerConfig, algo: AlgoConfig, model: str, seed: int,
                 resume_from: str | None = None) -> None:
        world_size = cfg.actors
        if world_size < 1:
            raise ValueError(f"a LearnerGroup needs learner.actors >= 1, got {world_size}")
        self.world_size = world_size
        master = f"{ray.util.get_node_ip_address()}:{free_port()}"
        self.actors = [LearnerActor.options(**cfg.actor_options()).remote(
            cfg, algo, model, seed, resume_from, rank, world_size, master)
            for rank in range(world_size)]
        ray.get([a.get_step.remote() for a in self.actors])

    def step(self, groups: list[TrainGroup]) -> dict[str, float]:
        validate(groups)  # reject on the caller's side: all ranks or none
        if len(groups) < self.world_size:
            raise ValueError(f"{len(groups)} groups cannot feed {self.world_size} learners")
        parts = [groups[r::self.world_size] for r in range(self.world_size)]
        ms = ray.get([a.step.remote(p) for a, p in zip(self.actors, parts)])
        tok = [m["completion_tokens"] for m in ms]
        total = max(sum(tok), 1.0)
        merged = dict(ms[0])
        merged["loss"] = sum(m["loss"] for m in ms)
        merged["tokens_per_s"] = sum(m["tokens_per_s"] for m in ms)
        merged["samples"] = sum(m["samples"] for m in ms)
        merged["completion_tokens"] = sum(tok)
        for k in ("clip_frac", "kl", "entropy", "is_weight_mean", "is_truncated_frac"):
            merged[k] = sum(m[k] * t for m, t in zip(ms, tok)) / total
        return merged

    def publish(self, engines: list, version: int | None = None) -> dict[str, Any]:
        reports = ray.get([a.publish.remote(engines, version) for a in self.actors])
        return reports[0]

    def save_checkpoint(self, path: str, extra: dict[str, Any] | None = None) -> str:
        return ray.get([a.save_checkpoint.remote(str(path), extra) for a in self.actors])[0]

    @property
    def version(self) -> int:
        return ray.get(self.actors[0].get_version.remote())

    def node_ids(self) -> list[str | None]:
        return ray.get([a.node_id.remote() for a in self.actors])

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        return ray.get([a.full_state_dict.remote() for a in self.actors])[0]

    def shutdown(self) -> None:
        for a in self.actors:
            ray.kill(a)
