"""``rlce bench soak``: whether a long run grows. A benchmark, not a test: it prints figures.

Two parts, each in its own local Ray instance:

* **Fleet.** An executor fleet judges ``--jobs`` programs (default 100,000), streamed in; a
  quarter pass, a quarter fail, a quarter raise, a quarter do not compile, each with its own
  source so that nothing is deduplicated. Every verdict is checked against the status its
  program must get.
* **Loop.** ``rlce train`` runs ``--steps`` steps (default 300) of the tiny model with W&B
  offline, the trajectory store on and a checkpoint every 50 steps (two kept); extra
  ``key=value`` arguments change that run (``SOAK_LOOP``).

Every ``--sample-every`` jobs or steps it records the resident memory and open files of the
driver and of each kind of actor (each actor's process with everything it started: a rollout
engine's vLLM core, an executor's sandboxes), and what ``/dev/shm`` holds. The slopes are least
squares fits over the samples after the first tenth (start-up and warm caches), per 10,000 jobs
and per 100 steps. Ray's own processes (raylet, GCS, idle workers) are reported as ``ray``."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil

# the classes behind the actors (a worker's title is ray::<Class>)
ROLES = {"Rollout": "rollout", "ExecutorWorker": "executor", "Learner": "learner",
         "FleetService": "executor"}
FIGURES = ("rss_mb", "fds")

# four programs whose verdicts are known; {i} makes each source distinct (no deduplication)
KINDS = {
    "passed": "def f(x):\n    return x + 1  # {i}\n",
    "failed": "def f(x):\n    return x  # {i}\n",
    "runtime_error": "def f(x):\n    raise ValueError({i})\n",
    "compile_error": "def f(x) # {i}\n    return x\n",
}


def job(i: int) -> tuple[dict[str, Any], str]:
    status = list(KINDS)[i % len(KINDS)]
    return ({"id": f"soak-{i}", "language": "python", "source": KINDS[status].format(i=i),
             "tests": {"format": "check", "code": "def check(f):\n    assert f(1) == 2\n",
                       "entry_point": "f"}}, status)


# a tiny-model run whose steps are short: the tiny model rarely passes, so every group is kept
# (else each step draws again until algo.max_draws_per_step)
SOAK_LOOP = ["model=tiny", "algo.max_tokens=48", "algo.groups_per_step=4", "algo.n=4",
             "algo.drop_uniform_groups=false", "eval.before=false", "eval.after=false",
             "logging.mode=offline", "logging.progress=false", "checkpoint.every=50",
             "checkpoint.keep=2"]


def role_of(p: psutil.Process) -> str | None:
    """The actor kind a Ray worker process hosts (its title is ``ray::<Class>...``)."""
    try:
        title = " ".join(p.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    if not title.startswith("ray::"):
        return None
    name = title[5:].split(".", 1)[0].split(" ", 1)[0]
    return ROLES.get(name)


def usage() -> dict[str, float]:
    """RSS (MB) and open files of this process (the driver) and of each actor kind below it,
    each actor with its own descendants, and /dev/shm's bytes and entries."""
    me = psutil.Process()
    out: dict[str, float] = {}
    seen: set[int] = set()

    def add(role: str, procs: list[psutil.Process]) -> None:
        for p in procs:
            if p.pid in seen:
                continue
            seen.add(p.pid)
            try:
                rss, fds = p.memory_info().rss, p.num_fds()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            out[f"{role}/rss_mb"] = out.get(f"{role}/rss_mb", 0.0) + rss / 2**20
            out[f"{role}/fds"] = out.get(f"{role}/fds", 0.0) + fds

    add("driver", [me])
    rest = me.children(recursive=True)
    for p in rest:
        role = role_of(p)
        if role:
            try:
                add(role, [p, *p.children(recursive=True)])
            except psutil.NoSuchProcess:
                continue
    add("ray", rest)  # what is left: raylet, GCS, agents, idle workers
    shm = shutil.disk_usage("/dev/shm")
    out["shm/used_mb"] = shm.used / 2**20  # the machine's, other processes' files too
    out["shm/entries"] = float(len(os.listdir("/dev/shm")))
    # what RLCE itself leaves there: weight files of a publish
    ours = [f for f in Path("/dev/shm").glob("rlce-*") if f.is_file()]
    out["shm/rlce_files"] = float(len(ours))
    out["shm/rlce_mb"] = sum(f.stat().st_size for f in ours) / 2**20
    return out


def slopes(samples: list[dict[str, float]], x: str, per: float) -> dict[str, float]:
    """Least-squares slope of every figure against ``x``, per ``per`` units of ``x``, over the
    samples after the first tenth."""
    keep = samples[len(samples) // 10:]
    if len(keep) < 3:
        return {}
    xs = np.array([s[x] for s in keep], dtype=float)
    out = {}
    for key in keep[-1]:
        if key == x or not all(key in s for s in keep):
            continue
        ys = np.array([s[key] for s in keep], dtype=float)
        out[key] = float(np.polyfit(xs, ys, 1)[0] * per)
    return out


def table(samples: list[dict[str, float]], x: str, per: float, unit: str) -> str:
    if not samples:
        return "(no samples)"
    first, last = samples[len(samples) // 10], samples[-1]
    fit = slopes(samples, x, per)
    head = (f"{'figure':<22}{'at ' + x + ' ' + str(int(first[x])):>16}"
            f"{'at ' + x + ' ' + str(int(last[x])):>16}{'slope ' + unit:>22}")
    lines = [head]
    for key in sorted(fit):
        lines.append(f"{key:<22}{first[key]:>16.1f}{last[key]:>16.1f}{fit[key]:>+22.3f}")
    return "\n".join(lines)


def soak_fleet(jobs: int, every: int, workers: int | None) -> dict[str, Any]:
    import ray

    from executors.config import FleetConfig
    from executors.fleet import ExecutorFleet
    from rlce.core.cluster import start_local_ray

    start_local_ray()
    expected: dict[str, str] = {}

    def feed():
        for i in range(jobs):
            j, status = job(i)
            expected[j["id"]] = status
            yield j

    samples, wrong, seen = [], 0, 0
    t0 = time.perf_counter()
    fleet = ExecutorFleet(FleetConfig(min_actors=1, max_actors=1, workers_per_actor=workers,
                                      dedup=False))
    try:
        for v in fleet.run(feed()):
            seen += 1
            wrong += v["status"] != expected.pop(v["id"], "a second verdict")
            if seen % every == 0 or seen == jobs:
                samples.append({"jobs": float(seen), **usage()})
                print(f"  {seen:>7} jobs  {time.perf_counter() - t0:>6.0f} s  "
                      f"executor {samples[-1].get('executor/rss_mb', 0):.0f} MB  "
                      f"driver {samples[-1]['driver/rss_mb']:.0f} MB", flush=True)
        metrics = fleet.metrics()
    finally:
        fleet.close()
        ray.shutdown()
    wall = time.perf_counter() - t0
    return {"jobs": seen, "wrong_verdicts": wrong, "unanswered": len(expected), "wall_s": wall,
            "runs_per_s": seen / wall, "retries": metrics.get("retries", 0.0),
            "samples": samples, "slopes_per_10k_jobs": slopes(samples, "jobs", 10_000)}


def soak_loop(cfg: Any, every: int, run_dir: Path) -> dict[str, Any]:
    import ray

    from rlce.train import train

    steps = cfg.algo.steps
    samples: list[dict[str, float]] = []
    t0 = time.perf_counter()

    def on_step(m: dict[str, Any]) -> None:
        if m["step"] % every == 0 or m["step"] == steps:
            samples.append({"steps": float(m["step"]), **usage()})
            print(f"  step {m['step']:>4}  {time.perf_counter() - t0:>6.0f} s  "
                  f"driver {samples[-1]['driver/rss_mb']:.0f} MB  "
                  f"rollout {samples[-1].get('rollout/rss_mb', 0):.0f} MB  "
                  f"/dev/shm {samples[-1]['shm/used_mb']:.0f} MB", flush=True)

    try:
        result = train(cfg, run_dir, on_step=on_step)
    finally:
        ray.shutdown()
    store = run_dir / "trajectories"
    return {"steps": len(result["history"]), "wall_s": time.perf_counter() - t0,
            "trajectory_store_mb": sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
            / 2**20 if store.is_dir() else 0.0,
            "samples": samples, "slopes_per_100_steps": slopes(samples, "steps", 100)}


def main(argv: list[str], load_config: Callable[[list[str]], Any]) -> int:
    """``load_config``: ``rlce.cli``'s, which composes the loop's config from overrides."""
    ap = argparse.ArgumentParser(prog="rlce bench soak", description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=100_000,
                    help="programs through the fleet (0: skip)")
    ap.add_argument("--steps", type=int, default=300, help="training steps (0: skip)")
    ap.add_argument("--sample-every-jobs", type=int, default=2_000)
    ap.add_argument("--sample-every-steps", type=int, default=10)
    ap.add_argument("--workers", type=int, default=None, help="sandbox workers (default: cores)")
    ap.add_argument("--dir", default="runs/soak", help="where the loop's run and soak.json go")
    ap.add_argument("overrides", nargs="*", help="key=value for the loop's rlce train")
    a = ap.parse_args(argv)
    out_dir = Path(a.dir) / time.strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True)
    report: dict[str, Any] = {}
    if a.jobs:
        print(f"fleet: {a.jobs} jobs", flush=True)
        report["fleet"] = f = soak_fleet(a.jobs, a.sample_every_jobs, a.workers)
        print(f"fleet: {f['jobs']} verdicts in {f['wall_s']:.0f} s ({f['runs_per_s']:.1f}/s), "
              f"{f['wrong_verdicts']} wrong, {f['unanswered']} unanswered, "
              f"{f['retries']:.0f} retries")
        print(table(f["samples"], "jobs", 10_000, "per 10k jobs"))
    if a.steps:
        print(f"loop: {a.steps} steps", flush=True)
        cfg = load_config([f"algo.steps={a.steps}", *SOAK_LOOP, *a.overrides])
        report["loop"] = s = soak_loop(cfg, a.sample_every_steps, out_dir / "run")
        print(f"loop: {s['steps']} steps in {s['wall_s']:.0f} s; trajectory store "
              f"{s['trajectory_store_mb']:.1f} MB (grows by design)")
        print(table(s["samples"], "steps", 100, "per 100 steps"))
    (out_dir / "soak.json").write_text(json.dumps(report, indent=1))
    print(f"figures: {out_dir / 'soak.json'}")
    return 0
