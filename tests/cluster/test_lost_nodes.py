"""Lost nodes on a local multi-node Ray cluster (head and workers started with `ray start`
on loopback). Each fault is triggered by an event of the run (an actor holding jobs, a step
logged), never after a guessed time, and the node is lost whole: SIGKILL to its `ray start`
process and everything below it.

* An executor node killed while its actor holds jobs: every job still gets exactly one
  verdict, the right one, and the lost ones are counted as retries.
* A training run with `learner.actors=1` that loses an executor node after step 1, the node
  of its rollout engine after step 2 and its learner's process after step 3: it ends with
  every step done, the engine recreated on the spare rollout node with the current weights,
  the run restarted once from its checkpoint by itself, and W&B and the trajectory store
  holding each step once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rlce.trajectories import read as read_store
from rlce.wandb_offline import history
from tests.ray_nodes import actor_pids, free_ports, kill_node, start_nodes, stop_nodes, wait_until

pytestmark = pytest.mark.slow  # multi-node Ray clusters, a training run on one

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def cluster_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RAY_"))}
    # Ray 2.60 turns token authentication on for such a cluster: every node and client uses it.
    # A raylet that cannot reach the GCS within its reconnect timeout (60 s) exits: on a
    # machine busy enough, one did while five nodes started; give it longer.
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token",
               RAY_gcs_rpc_server_reconnect_timeout_s="600",
               PATH=f"{BIN}:{env.get('PATH', '')}")
    return env


FLEET_DRIVER = """
import json, sys, threading, time
import ray
from executors.fleet import ExecutorFleet, FleetConfig
from tests.ray_nodes import kill_node
ray.init(address=sys.argv[1])
doomed_pid = int(sys.argv[2])
doomed = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("doomed"))
N = 24
# each sleeps a little, so that jobs wait in flight on both actors
jobs = [{"id": f"slow/{i}", "language": "python",
         "source": f"import time\\ntime.sleep(0.3)\\ndef f():\\n    return {i}\\n",
         "tests": {"format": "check", "code": f"def check(f):\\n    assert f() == {i}\\n",
                   "entry_point": "f"}} for i in range(N)]
got, lock, done = [], threading.Lock(), threading.Event()
def take(v):
    with lock:
        got.append(v)
        if len(got) == N:
            done.set()
cfg = FleetConfig(min_actors=2, max_actors=2, workers_per_actor=1, max_in_flight_per_actor=4,
                  resource="executor", request_resources=False, dedup=False)
with ExecutorFleet(cfg) as fleet:
    nodes = sorted(i["node_id"] for i in fleet.actor_infos(wait_s=300))
    for j in jobs:
        fleet.submit(j, take)
    while True:  # the event: the actor on the doomed node holds jobs
        held = [i["in_flight"] for i in fleet.actor_infos(wait_s=0) if i["node_id"] == doomed]
        if held and held[0] > 0:
            break
        time.sleep(0.01)
    kill_node(doomed_pid)
    if not done.wait(600):
        raise SystemExit(f"{len(got)} of {N} verdicts")
    m = fleet.metrics()
print(json.dumps({"nodes": nodes, "doomed": doomed, "held": held[0],
                  "verdicts": [[v["id"], v["status"]] for v in got],
                  "retries": m["retries"], "actors_lost": m.get("actors_lost", 0)}))
"""


def test_an_executor_node_lost_with_jobs_in_flight_loses_and_doubles_no_verdict():
    (port,) = free_ports(1)
    env = cluster_env()
    address = f"127.0.0.1:{port}"
    procs = start_nodes([["--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false"],
                         [f"--address={address}", "--num-cpus=1", '--resources={"executor": 1}'],
                         [f"--address={address}", "--num-cpus=1",
                          '--resources={"executor": 1, "doomed": 1}']], env)
    try:
        out = subprocess.run([sys.executable, "-c", FLEET_DRIVER, address, str(procs[2].pid)],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
                             check=False)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
        r = json.loads(out.stdout.strip().splitlines()[-1])
        assert len(set(r["nodes"])) == 2 and r["doomed"] in r["nodes"]  # one actor a node
        ids = [i for i, _ in r["verdicts"]]
        assert sorted(ids) == sorted(f"slow/{i}" for i in range(24))  # each once
        assert {s for _, s in r["verdicts"]} == {"passed"}
        # the doomed actor's jobs were run again elsewhere, each counted
        assert r["actors_lost"] == 1 and r["retries"] >= r["held"]  # (held > 0: the event)
        print(f"killed with {r['held']} jobs held; {r['retries']:.0f} retries; 24 of 24 verdicts")
    finally:
        stop_nodes(procs, port)


def steps_logged(run_dir: Path) -> int:
    """Steps the run has logged: the trajectory store writes one shard as each step is logged
    (evaluations are off here)."""
    return len(list((run_dir / "trajectories").glob("part-*.parquet")))


def test_a_run_survives_lost_executor_and_rollout_nodes_and_a_killed_learner(tmp_path):
    (port,) = free_ports(1)
    env = cluster_env()
    address = f"127.0.0.1:{port}"
    # the head hosts the driver, the learner and one executor actor; one more executor node
    # (the one lost); two rollout nodes, one of them spare (the engine lands on either)
    procs = start_nodes(
        [["--head", f"--port={port}", "--num-cpus=3", "--include-dashboard=false",
          '--resources={"learner": 1, "executor": 1}'],
         *[[f"--address={address}", "--num-cpus=1", f'--resources={{"{kind}": 1, "n{i}": 1}}']
           for i, kind in enumerate(["executor", "rollout", "rollout"], 1)]], env)
    run_dir = tmp_path / "run"
    log = tmp_path / "train.log"
    try:
        with log.open("w") as f:
            train = subprocess.Popen(
                [str(BIN / "rlce"), "train", "cluster=multi_node", f"cluster.address={address}",
                 # (the transformers backend: an engine starts in seconds, and what is
                 # tested, an engine recreated with current weights, is the same for both)
                 "model=tiny", "rollout=transformers", "rollout.num_gpus=0",
                 "learner.num_gpus=0", "rollout.engines=1",
                 "learner.actors=1", "executor.min_actors=2", "executor.max_actors=2",
                 "executor.workers_per_actor=1", "executor.request_resources=false",
                 "algo.steps=6", "algo.groups_per_step=2", "algo.problems_per_draw=0",
                 "algo.n=2", "algo.max_tokens=16", "algo.drop_uniform_groups=false",
                 "rollout.max_model_len=512", "rollout.kv_cache_gb=1", "eval.before=false",
                 "eval.after=false", "checkpoint.every=2", "logging.progress=false",
                 f"hydra.run.dir={run_dir}"],
                cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                start_new_session=True)
        try:
            def after_step(k: int) -> None:
                wait_until(lambda: steps_logged(run_dir) >= k or train.poll() is not None,
                           f"step {k} logged", 900)
                assert train.poll() is None, log.read_text()[-5000:]

            after_step(1)
            kill_node(procs[1].pid)  # the executor node (it holds one of the two actors)
            after_step(2)
            placed = json.loads((run_dir / "placement.json").read_text())
            (engine_node,) = placed["rollout"]
            lost_rollout = 2 if "n2" in placed["nodes"][engine_node] else 3
            kill_node(procs[lost_rollout].pid)  # the engine's node: the other one is spare
            after_step(3)
            learners = actor_pids(procs[0].pid, "Learner")
            assert len(learners) == 1, learners
            os.kill(learners[0], signal.SIGKILL)
            rc = train.wait(timeout=1800)
        finally:
            if train.poll() is None:
                os.killpg(train.pid, signal.SIGKILL)
        out = log.read_text()
        assert rc == 0, out[-6000:]
    finally:
        stop_nodes(procs, port)

    assert "a learner actor was lost" in out and "restart 1 of 2" in out, out[-4000:]
    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 2  # the W&B run continued once, under the same id
    assert len({p.name.rsplit("-", 1)[1] for p in runs}) == 1
    steps = [r for p in runs for r in history(p) if "reward/mean" in r]
    assert [r["_step"] for r in steps] == [1, 2, 3, 4, 5, 6]  # each step once, in order
    # the engine was recreated with the learner's current weights: every sample of every
    # step came from the learner's version at that step (synchronous: staleness 0)
    assert sum(r["rollout/engine_restarts"] for r in steps) == 1
    assert all(r["rollout/staleness_max"] == 0 for r in steps)
    for r in steps:  # every sample judged once, none lost to the executor node
        judged = sum(v for k, v in r.items() if k.startswith("exec/verdict_"))
        assert judged == r["rollout/samples"] > 0 and "exec/verdict_sandbox_error" not in r
    state = json.loads((run_dir / "checkpoint" / "controller.json").read_text())
    assert state["step"] == 6 and state["kind"] == "final"
    # the store holds each step's samples once: the redone step's first samples were dropped
    train_records = [r for r in read_store(run_dir / "trajectories") if r["source"] == "train"]
    assert sorted({r["step"] for r in train_records}) == [1, 2, 3, 4, 5, 6]
    for step in range(1, 7):
        assert sum(r["step"] == step for r in train_records) == 4  # 2 groups x 2 samples
