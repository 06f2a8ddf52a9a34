"""Starting or joining Ray the same way everywhere: ``ensure_ray(address)`` joins ``address``
if given (``cluster.address``), else the cluster in ``RAY_ADDRESS`` (set for Ray jobs), else
starts a local instance whose workers run at the driver's CPU priority."""

from __future__ import annotations

import os
from typing import Any

import ray


def start_local_ray(**kwargs: Any) -> None:
    """Start a local Ray instance whose workers run at the driver's CPU priority.

    Ray starts its workers at niceness 15 so that a driver keeps its node responsive. On one
    machine the driver hosts the learner (``learner.actors=0``), and against the driver's
    nice 0 a rollout engine at nice 15 gets almost no CPU while the learner trains, so
    asynchronous generation would stall behind every step's training."""
    options = {"include_dashboard": False, "configure_logging": False, "log_to_driver": False,
               **kwargs}
    ray.init(address="local", _system_config={"worker_niceness": max(0, os.nice(0))}, **options)


def ensure_ray(address: str | None = None) -> None:
    """Join ``address`` if given, else the cluster in ``RAY_ADDRESS`` (set for Ray jobs), else
    start a local instance (plain ``ray.init()`` would wait on the last cluster started here,
    even a dead one)."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    if address == "local":
        start_local_ray()
    else:
        ray.init(address=address, log_to_driver=False)
