"""`rlce train` as a user runs it: a subprocess on the tiny model for one step, with the W&B
offline run read back, the resolved config and the checkpoint where the summary says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from rlce.wandb_offline import history

RLCE = str(Path(sys.executable).parent / "rlce")


def test_unknown_and_invalid_options_fail_fast_with_their_names():
    for args, message in [(["+foo=1"], "unknown config option(s) ['foo']"),
                          (["algo.stepz=1"], "algo.stepz"),
                          (["learner.schedule=linear"], "learner.schedule must be"),
                          (["reward.name=nope"], "unknown reward 'nope'")]:
        out = subprocess.run([RLCE, "train", *args], capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and message in out.stderr, (args, out.stderr)


def test_one_step_on_the_tiny_model_logs_offline_and_checkpoints(tiny_model, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RAY_ADDRESS"))}
    out = subprocess.run(
        [RLCE, "train", f"model.name={tiny_model}", "algo.steps=1", "algo.groups_per_step=2",
         "algo.n=2", "algo.max_tokens=16", "rollout.max_model_len=512",
         "rollout.kv_cache_gb=1", f"logging.dir={tmp_path}"],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["algo"]["steps"] == 1 and cfg["model"]["name"] == tiny_model
    (wandb_run,) = (run_dir / "wandb").glob("offline-run-*")
    rows = history(wandb_run)
    assert len(rows) == 1
    for key in ("reward/mean", "reward/pass_rate", "rollout/samples", "time/generate_s",
                "time/train_s", "time/publish_s", "time/controller_s", "data/groups_dropped"):
        assert key in rows[0], key
    assert rows[0]["rollout/samples"] >= 4
    assert (run_dir / "checkpoint" / "config.json").is_file()
    assert "checkpoint" in out.stdout and "pass rate" in out.stdout
