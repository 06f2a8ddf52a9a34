"""FSDP2 helpers for data-parallel learners (``torch.distributed.fsdp.fully_shard``), gloo on
CPUs and NCCL on GPUs; ``learner.group.LearnerGroup`` drives the ranks as one learner."""

from __future__ import annotations

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
    """``values`` reduced elementwise over the ranks with ``op``: sum, max or min."""
    ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
    t = torch.tensor(values, dtype=torch.float64,
                     device="cuda" if torch.cuda.is_available() else "cpu")
    dist.all_reduce(t, op=ops[op])
    return t.tolist()
