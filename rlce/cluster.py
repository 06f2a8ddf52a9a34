"""Joining Ray the same way everywhere on the driver side: ``ensure_ray(address)`` joins
``address`` if given (``cluster.address``), else the cluster in ``RAY_ADDRESS`` (set for Ray
jobs), else starts a local instance (``executors.fleet.start_local_ray``)."""

from __future__ import annotations

from executors.fleet import ensure_ray

__all__ = ["ensure_ray"]
