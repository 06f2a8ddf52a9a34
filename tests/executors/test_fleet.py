"""ExecutorFleet on a real local Ray instance: exactly one verdict per job, chaos, dedup,
backpressure, scaling, and placement on a two-node cluster started with `ray start`."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
import ray

from executors.fleet import ExecutorFleet, FleetConfig
from tests.ray_nodes import start_nodes, stop_nodes

from .conftest import asserts_job, io_job

pytestmark = pytest.mark.slow  # executor actors on Ray, thousands of jobs


def mixed(n: int, tag: str) -> list[dict]:
    jobs = []
    for i in range(n):
        k = i % 4
        if k == 0:
            jobs.append(asserts_job(f"def f(x):\n    return x + {i}\n", [f"assert f(1) == {1 + i}"],
                                    id=f"{tag}/ok/{i}"))
        elif k == 1:
            jobs.append(asserts_job(f"def f(x):\n    return x - {i}\n", [f"assert f(1) == {1 + i}"],
                                    id=f"{tag}/wrong/{i}"))
        elif k == 2:
            jobs.append(io_job(f"print(int(input()) * {i})\n", [("3\n", str(3 * i))],
                               id=f"{tag}/io/{i}"))
        else:
            jobs.append({"id": f"{tag}/bad/{i}", "language": "cobol", "source": "x", "tests": {}})
    return jobs


def expected(job_id: str) -> str:
    return {"ok": "passed", "wrong": "failed", "io": "passed", "bad": "invalid_job"}[
        job_id.split("/")[1]]


def wait_for(condition, what: str, timeout_s: float = 120.0) -> None:
    """Wait for an event (``condition()`` true), with a generous bound: never a guessed
    duration standing in for it."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        time.sleep(0.05)


def check_exactly_once(jobs, verdicts):
    ids = Counter(v["id"] for v in verdicts)
    assert set(ids) == {j["id"] for j in jobs}
    assert max(ids.values()) == 1
    wrong = [v for v in verdicts if v["status"] != expected(v["id"])]
    assert not wrong, wrong[:3]


def test_several_actors_run_mixed_jobs_each_exactly_once(ray_local):
    jobs = mixed(2000, "many")
    with ExecutorFleet(FleetConfig(min_actors=3, max_actors=3, workers_per_actor=1)) as fleet:
        verdicts = list(fleet.run(jobs))
        m = fleet.metrics()
        assert len({i["pid"] for i in fleet.actor_infos()}) == 3
    check_exactly_once(jobs, verdicts)
    assert m["verdicts"] == 2000 and m["latency_p99_s"] >= m["latency_p50_s"] > 0
    print(f"fleet metrics: {json.dumps(m)}")


def test_chaos_actors_killed_while_3000_jobs_run(ray_local):
    """An actor is killed each time another 500 verdicts have arrived: faults by job count,
    never by the clock, so a slow or busy machine gets the same five kills. Jobs are fed at
    most 200 ahead of the next kill, so that each kill leaves jobs to run on the dead actor
    (which is how the fleet finds out), whatever the speed of the sandboxes."""
    every, ahead, kills_wanted = 500, 200, 5
    jobs = mixed(3000, "chaos")
    cfg = FleetConfig(min_actors=3, max_actors=3, workers_per_actor=1, max_retries=5)
    fed_up_to = threading.Condition()
    limit = [every + ahead]

    def gated_jobs():
        for i, job in enumerate(jobs):
            with fed_up_to:
                while i >= limit[0]:
                    fed_up_to.wait()
            yield job

    rng = random.Random(0)
    kills, verdicts = [], []
    with ExecutorFleet(cfg) as fleet:
        for v in fleet.run(gated_jobs()):
            verdicts.append(v)
            if len(verdicts) % every or len(kills) == kills_wanted:
                continue
            # the last victim's loss was seen and its replacement is up: kill a live actor
            wait_for(lambda: fleet.metrics().get("actors_lost", 0) == len(kills)
                     and fleet.metrics()["actors_up"] == 3, "the fleet back to 3 actors")
            victim = rng.choice(fleet.actors())
            ray.kill(victim)
            kills.append(victim)
            with fed_up_to:
                limit[0] += every
                fed_up_to.notify_all()
        wait_for(lambda: fleet.metrics().get("actors_lost", 0) == kills_wanted
                 and fleet.metrics()["actors_up"] == 3, "the last loss seen, 3 actors up")
        m = fleet.metrics()
    assert len(kills) == kills_wanted
    check_exactly_once(jobs, verdicts)
    assert m["actors_lost"] == kills_wanted and m["retries"] >= 1
    assert m["actors"] == 3 and m["actors_up"] == 3  # back to its size


def test_lost_jobs_beyond_retries_are_sandbox_errors_not_passes(ray_local):
    cfg = FleetConfig(min_actors=1, max_actors=1, workers_per_actor=1, max_retries=0)
    slow = [io_job("import time\ntime.sleep(3)\nprint(1)\n", [("", "1")], id=f"slow/{i}")
            for i in range(3)]
    with ExecutorFleet(cfg) as fleet:
        for j in slow:
            fleet.submit(j)
        # the three are one program, run once (deduplicated): the actor is killed while it
        # runs (3 s), once it is in flight, not after a guessed delay
        wait_for(lambda: fleet.metrics()["in_flight"] == 1, "the program in flight")
        for a in fleet.actors():
            ray.kill(a)
        got = [v for _, v in zip(range(3), fleet.verdicts(timeout=30))]
    assert sorted(v["id"] for v in got) == sorted(j["id"] for j in slow)
    assert {v["status"] for v in got} == {"sandbox_error"}
    assert all("executor actor lost" in v["message"] for v in got)


def test_identical_programs_run_once(ray_local):
    same = [asserts_job("def f(x):\n    return 2 * x\n", ["assert f(2) == 4"], id=f"dup/{i}")
            for i in range(40)]
    with ExecutorFleet(FleetConfig(min_actors=1, max_actors=1, workers_per_actor=1)) as fleet:
        verdicts = list(fleet.run(same))
        m = fleet.metrics()
        executed = sum(i["jobs"] for i in fleet.actor_infos())
    assert sorted(v["id"] for v in verdicts) == sorted(j["id"] for j in same)
    assert {v["status"] for v in verdicts} == {"passed"}
    assert executed == 1 and m["deduplicated"] == 39


def test_backpressure_bounds_outstanding_jobs(ray_local):
    cfg = FleetConfig(min_actors=1, max_actors=1, workers_per_actor=1, max_pending=8)
    jobs = [io_job(f"print({i})\n", [("", str(i))], id=f"bp/{i}") for i in range(60)]
    with ExecutorFleet(cfg) as fleet:
        submitted = [0]

        def feed():
            for j in jobs:
                fleet.submit(j)
                submitted[0] += 1

        t = threading.Thread(target=feed)
        t.start()
        # once the first 8 verdicts are done and none taken, the feeder must still be held
        wait_for(lambda: fleet.metrics().get("verdicts", 0) == 8, "8 verdicts")
        wait_for(lambda: submitted[0] >= 8, "8 jobs submitted")
        held_back = submitted[0]
        got = [v for _, v in zip(range(60), fleet.verdicts(timeout=30))]
        t.join()
        peak = fleet.metrics()["outstanding_peak"]
    assert len(got) == 60 and len({v["id"] for v in got}) == 60
    assert held_back == 8  # nothing taken yet: the feeder waits at max_pending
    assert peak <= 8


def test_grows_under_backlog_and_shrinks_when_idle(ray_local):
    cfg = FleetConfig(min_actors=1, max_actors=3, workers_per_actor=1,
                      max_in_flight_per_actor=2, idle_shrink_s=1.0, dedup=False)
    jobs = [io_job(f"import time\ntime.sleep(0.3)\nprint({i})\n", [("", str(i))],
                   id=f"scale/{i}") for i in range(60)]
    with ExecutorFleet(cfg) as fleet:
        peak = 0
        for _ in fleet.run(jobs):
            peak = max(peak, fleet.size())
        assert peak == 3
        deadline = time.monotonic() + 30
        while fleet.size() > 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert fleet.size() == 1
        m = fleet.metrics()
    assert m["scale_ups"] == 2 and m["scale_downs"] == 2


def test_a_fleet_whose_sandboxes_cannot_start_fails_loudly_instead_of_hanging(ray_local):
    # the same path as executor nodes where firejail isolation is not in force: every actor's
    # sandboxes fail to start, the fleet stops retrying and every caller gets the reason
    from executors.fleet import FleetError

    cfg = FleetConfig(min_actors=1, max_actors=1, workers_per_actor=1,
                      sandbox={"python": "/nonexistent/python3", "start_timeout_s": 5.0})
    with ExecutorFleet(cfg) as fleet:
        deadline = time.monotonic() + 120
        with pytest.raises(FleetError, match="keep failing to start"):
            while time.monotonic() < deadline:
                fleet.submit(asserts_job("x = 1\n", ["assert x == 1"]))
                time.sleep(0.5)
        assert fleet.metrics()["actors_failed_to_start"] > 3


def test_config_errors_name_the_option():
    with pytest.raises(ValueError, match="min_actors <= max_actors"):
        FleetConfig(min_actors=3, max_actors=2)
    with pytest.raises(ValueError, match="max_pending"):
        FleetConfig(max_pending=0)


PLACEMENT_DRIVER = """
import json, sys, ray
from executors.fleet import ExecutorFleet, FleetConfig
ray.init(address=sys.argv[1])
worker = sys.argv[2]
cfg = FleetConfig(min_actors=2, max_actors=2, workers_per_actor=1, resource="executor")
with ExecutorFleet(cfg) as fleet:
    job = {"id": "p", "language": "python", "source": "print(1)",
           "tests": {"format": "io", "cases": [{"input": "", "output": "1"}]}}
    v = list(fleet.run([job]))
    nodes = [i["node_id"] for i in fleet.actor_infos()]
print(json.dumps({"nodes": nodes, "status": v[0]["status"]}))
"""


def test_actors_land_only_on_the_node_with_the_executor_resource(tmp_path):
    """Head (no executor resource) + one worker node offering `executor`, on loopback. The
    nodes run under `ray start --block` in their own process groups, ended by pid."""
    port = 26379 + os.getpid() % 1000
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    address = f"127.0.0.1:{port}"
    procs = start_nodes([["--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false"],
                         [f"--address={address}", "--num-cpus=2", '--resources={"executor": 2}']],
                        env)
    try:
        nodes_script = ("import ray,json,sys,time; ray.init(address=sys.argv[1])\n"
                        "for _ in range(120):\n"
                        "    alive=[n for n in ray.nodes() if n['Alive']]\n"
                        "    if len(alive)==2: break\n"
                        "    time.sleep(0.5)\n"
                        "print(json.dumps([[n['NodeID'], n['Resources']] for n in alive]))")
        nodes = json.loads(subprocess.run(
            [sys.executable, "-c", nodes_script, address], check=True, env=env,
            capture_output=True, text=True, timeout=120).stdout.strip().splitlines()[-1])
        executor_nodes = {nid for nid, res in nodes if res.get("executor")}
        assert len(nodes) == 2 and len(executor_nodes) == 1
        out = subprocess.run([sys.executable, "-c", PLACEMENT_DRIVER, address, ""],
                             check=True, env=env, capture_output=True, text=True, timeout=300)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result["status"] == "passed"
        assert len(result["nodes"]) == 2 and set(result["nodes"]) == executor_nodes
    finally:
        stop_nodes(procs, port)


SHARED_DRIVER = """
import json, sys, ray
ray.init(address=sys.argv[1])
from executors.fleet import FleetClient
jobs = [{"id": f"other/{i}", "language": "python", "source": f"print({i} * 2)",
         "tests": {"format": "io", "cases": [{"input": "", "output": str(i * 2)}]}}
        for i in range(30)]
print(json.dumps(sorted((v["id"], v["status"]) for v in FleetClient().run(jobs))))
"""


def test_a_named_detached_fleet_is_shared_by_two_drivers(ray_local):
    from executors.fleet import FleetClient, serve_fleet

    service = serve_fleet(FleetConfig(min_actors=1, max_actors=2, workers_per_actor=1))
    try:
        other = subprocess.Popen(
            [sys.executable, "-c", SHARED_DRIVER, ray.get_runtime_context().gcs_address],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        mine = mixed(200, "mine")
        verdicts = list(FleetClient().run(mine))
        out, _ = other.communicate(timeout=300)
        theirs = json.loads(out.strip().splitlines()[-1])
        check_exactly_once(mine, verdicts)
        assert [s for _, s in theirs] == ["passed"] * 30
        assert sorted(i for i, _ in theirs) == sorted(f"other/{i}" for i in range(30))
        assert FleetClient().metrics()["verdicts"] == 230
    finally:
        ray.get(service.shutdown.remote())
        ray.kill(service)
    with pytest.raises(RuntimeError, match="no executor fleet service named 'nope'"):
        FleetClient("nope")


def test_the_fleet_time_limit_applies_to_jobs_that_set_none(ray_local):
    slow = "import time\ntime.sleep(3)\nprint(1)\n"
    case = {"format": "io", "cases": [{"input": "", "output": "1"}]}
    jobs = [{"id": "default", "language": "python", "source": slow, "tests": case},
            {"id": "own", "language": "python", "source": slow, "tests": case,
             "limits": {"timeout_s": 10}}]
    cfg = FleetConfig(min_actors=1, max_actors=1, workers_per_actor=1, timeout_s=1.0,
                      dedup=False)
    with ExecutorFleet(cfg) as fleet:
        status = {v["id"]: v["status"] for v in fleet.run(jobs)}
    assert status == {"default": "timeout", "own": "passed"}


def test_a_fleet_without_ray_says_so_and_starts_nothing():
    # a fresh process: the fleet never starts or picks a Ray instance on its own
    script = ("from executors.fleet import ExecutorFleet, FleetConfig\n"
              "import ray\n"
              "try:\n"
              "    ExecutorFleet(FleetConfig())\n"
              "except Exception as e:\n"
              "    print(type(e).__name__, e, ray.is_initialized())\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.startswith("FleetError the executor fleet needs Ray: call ray.init")
    assert out.stdout.strip().endswith("False")
