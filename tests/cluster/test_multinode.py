"""A Ray cluster of a head and two worker nodes on this machine (loopback): one worker offers
`executor`, the other stands in for a GPU node (`rollout` and `learner`, no GPU). A short
`rlce train` submitted through the Ray Jobs API (`rlce submit`) succeeds, every actor lands on
its node type, and the job's logs and W&B offline run are where cluster/README.md says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ray_nodes import free_ports, start_nodes, stop_nodes, wait_for_http

pytestmark = pytest.mark.slow  # a three-node Ray cluster and an rlce submit

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_rlce_submit_runs_a_job_with_each_actor_on_its_node_type(tmp_path):
    port, dash = free_ports(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RAY_"))}
    # Ray 2.60 turns token authentication on for this cluster: every node and client uses it
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token",
               PATH=f"{BIN}:{env.get('PATH', '')}")
    address = f"127.0.0.1:{port}"
    nodes = [["--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=true",
              "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}"],
             [f"--address={address}", "--num-cpus=2", '--resources={"executor": 1}'],
             [f"--address={address}", "--num-cpus=4", '--resources={"rollout": 1, "learner": 1}']]
    procs = start_nodes(nodes, env)
    try:
        # rlce submit needs the head's dashboard (Jobs API); it may answer well after the
        # nodes are up on a busy machine: wait for it to answer, not for a guessed time
        wait_for_http(f"http://127.0.0.1:{dash}/api/version")
        runs = tmp_path / "runs"
        out = subprocess.run(
            [str(BIN / "rlce"), "submit", "--address", f"http://127.0.0.1:{dash}",
             "--timeout", "600", "cluster=multi_node", "model=tiny", "rollout.num_gpus=0",
             "learner.num_gpus=0", "rollout.engines=1", "learner.actors=1",
             "executor.min_actors=1", "executor.max_actors=1", "algo.steps=1",
             "algo.groups_per_step=2", "algo.problems_per_draw=0", "algo.n=2",
             "algo.max_tokens=16", "algo.drop_uniform_groups=false", "rollout.max_model_len=512",
             "rollout.kv_cache_gb=1", "eval.before=false", "eval.after=false",
             f"logging.dir={runs}"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False)
        assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-3000:]
        assert "SUCCEEDED" in out.stdout and "ray job logs --address" in out.stdout
        job_id = out.stdout.split("submitted ", 1)[1].split()[0]
        logs = subprocess.run([str(BIN / "ray"), "job", "logs", "--address",
                               f"http://127.0.0.1:{dash}", job_id],
                              env=env, text=True,
                              capture_output=True, timeout=120, check=True).stdout
        assert "checkpoint:" in logs and str(runs) in logs

        (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
        # one folder per job, named by it, that a retried attempt would continue in
        assert run_dir.name == job_id and "checkpoint.resume=auto" in out.stdout
        assert (run_dir / "config.yaml").is_file() and (run_dir / "checkpoint" / "config.json").is_file()
        assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
        placed = json.loads((run_dir / "placement.json").read_text())
        offers = placed["nodes"]
        assert len(offers) == 3
        for part in ("rollout", "learner", "executor"):
            assert placed[part] and all(part in offers[n] for n in placed[part]), (part, placed)
        assert offers[placed["driver"]] == []  # the job's driver ran on the head
    finally:
        stop_nodes(procs, port)
