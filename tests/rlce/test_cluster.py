"""Starting a local Ray instance the way every RLCE command does."""

from __future__ import annotations

import os

import pytest
import ray

pytestmark = pytest.mark.slow  # a local Ray instance


def test_local_ray_workers_run_at_the_drivers_priority(ray_local):
    # at Ray's default worker niceness (15) the rollout engine would starve while the
    # learner, in the driver, trains
    @ray.remote
    class Niceness:
        def get(self) -> int:
            return os.nice(0)

    actor = Niceness.remote()
    try:
        assert ray.get(actor.get.remote()) == max(0, os.nice(0))
    finally:
        ray.kill(actor)
