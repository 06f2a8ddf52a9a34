"""Weight broadcast from a learner to every rollout engine, in two phases.

Phase one asks every engine whether it would take the update (names, shapes, dtypes, a
newer version); values were checked for NaN and inf by the publisher. Only when every engine
says yes does phase two load the weights. So a publish that any engine would reject leaves
every engine on its old version and weights.

Transports on CPUs: ``shm`` when every engine shares the publisher's node (one safetensors
file in /dev/shm, written once and memory-mapped by each engine's workers); ``object_store``
otherwise (numpy arrays put once in Ray's object store, read zero-copy by each engine actor).
On GPUs the same two phases apply; an NCCL transport is not built yet, so GPU engines take
the same two CPU paths.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import ray
import torch

from rlce.core.weights import nonfinite_names, tensor_meta, write_shm_safetensors


class PublishError(RuntimeError):
    """A publish failed; the message says which engines are on which version."""


def publish_weights(named: dict[str, torch.Tensor], actors: list[Any], version: int,
                    transport: str = "auto") -> dict[str, Any]:
    """Send ``named`` (Hugging Face names, CPU tensors) to every RolloutActor as ``version``.
    Returns timings and per-engine reports; raises PublishError or WeightUpdateError."""
    if transport not in ("auto", "shm", "object_store"):
        raise ValueError(f"transport must be auto, shm or object_store, got {transport!r}")
    t0 = time.perf_counter()
    nonfinite = nonfinite_names(named)
    if nonfinite:
        raise PublishError(f"not published: NaN or inf in {nonfinite[:5]}; every engine "
                           "stays on its version")
    ray.get([a.check_weight_meta.remote(tensor_meta(named), version) for a in actors])  # phase one
    t_check = time.perf_counter()
    if transport == "auto":
        here = ray.get_runtime_context().get_node_id()
        nodes = ray.get([a.info.remote() for a in actors])
        transport = "shm" if all(n["node_id"] == here for n in nodes) else "object_store"
    path = None
    if transport == "shm":
        path = write_shm_safetensors(named, f"{uuid.uuid4().hex[:8]}-v{version}")
        calls = [a.update_weights_from_file.remote(str(path), version) for a in actors]
    else:
        ref = ray.put({k: v.detach().cpu().numpy() for k, v in named.items()})
        calls = [a.update_weights.remote(ref, version) for a in actors]
    t_staged = time.perf_counter()
    reports, failures = [], []
    try:
        for actor, call in zip(actors, calls):
            try:
                reports.append(ray.get(call))
            except Exception as e:  # noqa: BLE001 -- collected, then reported together below
                failures.append((actor, e))
    finally:
        if path is not None:
            path.unlink(missing_ok=True)
    if failures:
        raise PublishError(f"{len(failures)} of {len(actors)} engines failed to load version "
                           f"{version} (the others are on it): "
                           + "; ".join(f"{type(e).__name__}: {e}"[:300] for _, e in failures))
    return {"version": version, "transport": transport, "engines": reports,
            "bytes": sum(v.numel() * v.element_size() for v in named.values()),
            "check_s": t_check - t0, "stage_s": t_staged - t_check,
            "total_s": time.perf_counter() - t0}
