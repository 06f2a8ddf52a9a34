"""rlce.train.Parts, the running parts of a run: CPU engines load while the learner and the
fleet start, and parts that fail to start let go of what did start (a learner restart
builds them again and needs those resources free)."""

from __future__ import annotations

import pytest

from rlce.cli import load_config

pytestmark = pytest.mark.slow  # Ray actors and a rollout engine


def test_parts_that_fail_to_start_let_the_engines_they_launched_go(ray_local, tiny_model,
                                                                   monkeypatch):
    import ray
    from ray.exceptions import RayActorError

    import actors.rollout
    import executors.fleet
    from rlce.train import Parts

    launched = []

    def launch(*args):
        engines, starting = real_launch(*args)
        launched.extend(engines)
        return engines, starting

    def no_fleet(cfg):  # the fault: the fleet, started after the engines, fails
        ray.get([e.info.remote() for e in launched])  # (once the engine is up)
        raise RuntimeError("no executor fleet here")

    real_launch = actors.rollout.launch_rollout_actors
    monkeypatch.setattr(actors.rollout, "launch_rollout_actors", launch)
    monkeypatch.setattr(executors.fleet, "ExecutorFleet", no_fleet)
    cfg = load_config(["rollout=transformers", f"model.name={tiny_model}",
                       "rollout.max_model_len=512"])
    with pytest.raises(RuntimeError, match="no executor fleet here"):
        Parts(cfg, learner=False)
    assert len(launched) == cfg.rollout.engines == 1
    with pytest.raises(RayActorError):  # killed: a call to it fails
        ray.get(launched[0].info.remote())
