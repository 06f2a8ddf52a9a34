"""Joining Ray the same way everywhere on the driver side."""

from __future__ import annotations

import ray

from executors.fleet import ensure_ray as _ensure_local_or_env


def ensure_ray(address: str | None = None) -> None:
    """Join ``address`` if given (``cluster.address``), else the cluster in ``RAY_ADDRESS``
    (set for Ray jobs), else start a local instance."""
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False)
        return
    _ensure_local_or_env()


__all__ = ["ensure_ray"]
