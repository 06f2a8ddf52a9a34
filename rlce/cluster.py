"""Joining Ray the same way everywhere on the driver side."""

from __future__ import annotations

import os

import ray


def ensure_ray() -> None:
    """Join the cluster in ``RAY_ADDRESS`` (set for Ray jobs), else start a local instance
    (plain ``ray.init()`` would wait on the last cluster started here, even a dead one).
    ``executors.fleet.ensure_ray`` is the same for the standalone executor package."""
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS") or "local"
    extra = ({"include_dashboard": False, "configure_logging": False}
             if address == "local" else {})
    ray.init(address=address, log_to_driver=False, **extra)
