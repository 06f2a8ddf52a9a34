"""Data-parallel learners: FSDP2 (``torch.distributed.fsdp.fully_shard``) over several
LearnerActors, gloo on CPUs and NCCL on GPUs. ``LearnerGroup`` looks like one learner."""

from __future__ import annotations

import socket
from typing import Any

import ray
import torch
import torch.distributed as dist


def init_process_group(rank: int, world_size: int, master: str) -> None:
    if dist.is_initialized():
        return
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend, init_method=f"tcp://{master}", rank=rank,
                            world_size=world_size)


def shard_model(policy: torch.nn.Module) -> None:
    """One FSDP unit per decoder layer, the rest (embeddings, tied head, final norm) in the
    root unit (``policy`` wraps the causal LM as ``policy.lm``), so that only one layer's full
    parameters exist at a time."""
    from torch.distributed.fsdp import fully_shard

    for layer in policy.lm.get_decoder().layers:
        fully_shard(layer)
    fully_shard(policy)


def full_state_dict(model: torch.nn.Module, prefix: str = "",
                    drop: set[str] | None = None) -> dict[str, torch.Tensor]:
    """Gather full tensors to rank 0's CPU (an empty dict on other ranks); tied copies once
    (gathering unties them, so ``drop`` names the tied duplicates); ``prefix`` is stripped."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    sd = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True,
                                                              cpu_offload=True))
    out, seen = {}, set()
    for k, v in sd.items():
        if v.data_ptr() in seen:
            continue
        seen.add(v.data_ptr())
        name = k.removeprefix(prefix)
        if name not in (drop or ()):
            out[name] = v
    return out


def all_reduce(values: list[float], op: str = "sum") -> list[float]:
    t = torch.tensor(values, dtype=torch.float64,
                     device="cuda" if torch.cuda.is_available() else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return t.tolist()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LearnerGroup:
    """``world_size`` LearnerActors training one model with FSDP2. ``resources`` are the Ray
    options of each (``{"num_gpus": 1}`` on a cluster)."""

    def __init__(self, cfg: Any, world_size: int, resources: dict[str, Any] | None = None,
                 resume_from: str | None = None) -> None:
        from .learner import LearnerActor

        if world_size < 1:
            raise ValueError(f"world_size must be >= 1, got {world_size}")
        self.world_size = world_size
        master = f"{ray.util.get_node_ip_address()}:{free_port()}"
        opts = resources or {"num_cpus": 1}
        self.actors = [LearnerActor.options(**opts).remote(cfg, resume_from, rank, world_size,
                                                           master)
                       for rank in range(world_size)]
        ray.get([a.get_step.remote() for a in self.actors])

    def step(self, groups: list) -> dict[str, float]:
        from .learner import validate

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
