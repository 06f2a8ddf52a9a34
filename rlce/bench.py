"""Benchmarks that need several parts.

``rlce bench pipeline``: a short training run that prints where the wall time went. The
controller's own overhead is the time of a step spent in none of generate, execute, train,
publish, eval (or, asynchronously, waiting for samples).

``rlce bench publish``: the time to publish a learner's weights to 1, 2 and 4 rollout engines
beside a floor (a plain in-memory copy of the same bytes), in one run."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from rlce.config import TrainConfig

# what the bench changes from the embedded default unless given on the command line
PIPELINE_DEFAULTS = ["algo.steps=3", "eval.before=false", "eval.after=false",
                     "logging.mode=disabled", "logging.progress=false"]

PHASES = [("generate", "time/generate_s"), ("execute (after generation)", "time/execute_s"),
          ("wait for samples (async)", "time/wait_s"), ("train", "time/train_s"),
          ("publish", "time/publish_s"), ("eval", "time/eval_s"),
          ("controller overhead", "time/controller_s")]


def split(history: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per phase over the steps, and the total wall time."""
    out = {name: sum(m.get(key, 0.0) for m in history) for name, key in PHASES}
    out["wall"] = sum(m["time/step_s"] for m in history)
    return out


def pipeline(cfg: TrainConfig, run_dir: Path | None = None) -> dict[str, float]:
    from rlce.train import train

    result = train(cfg, run_dir)
    s = split(result["history"])
    wall = s["wall"]
    print(f"\npipeline: {len(result['history'])} steps of {cfg.algo.groups_per_step} groups x "
          f"{cfg.algo.n} samples, model {cfg.model.name}, staleness {cfg.algo.staleness}")
    print(f"{'phase':30s} {'seconds':>9s} {'share':>7s}")
    for name, _ in PHASES:
        print(f"{name:30s} {s[name]:9.2f} {100 * s[name] / max(wall, 1e-9):6.2f}%")
    print(f"{'wall':30s} {wall:9.2f}")
    share = s["controller overhead"] / max(wall, 1e-9)
    print(f"controller overhead {100 * share:.2f}% of wall time (target < 5%): "
          f"{'met' if share < 0.05 else 'NOT met'}")
    return s


def floor_copy(sd: dict[str, Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        copy = {k: v.clone() for k, v in sd.items()}
        best = min(best, time.perf_counter() - t0)
        del copy
    return best


def publish(argv: list[str]) -> int:
    """``rlce bench publish [--model M] [--engines 1 2 4] [--repeat 3]``."""
    import ray

    from actors.rollout import spawn_rollout_actors
    from learner.learner import Learner
    from rlce.core.cluster import ensure_ray
    from rlce.core.config import AlgoConfig, LearnerConfig, ModelConfig, RolloutConfig

    ap = argparse.ArgumentParser(prog="rlce bench publish")
    ap.add_argument("--model", default=ModelConfig.name)
    ap.add_argument("--engines", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    learner = Learner(LearnerConfig(), AlgoConfig(), args.model, seed=0)
    sd = learner.full_state_dict()
    nbytes = sum(v.numel() * v.element_size() for v in sd.values())
    floor = floor_copy(sd)
    print(f"weights {nbytes / 1e6:.0f} MB; floor (in-memory copy): {floor:.3f}s "
          f"= {nbytes / floor / 1e9:.2f} GB/s")
    ensure_ray()
    rcfg = RolloutConfig(max_model_len=1024, kv_cache_gb=1, num_cpus=0.5)
    engines: list[Any] = []
    results = {}
    try:
        for count in args.engines:
            engines += spawn_rollout_actors(rcfg, args.model, 0, count - len(engines))
            learner.set_version(max(ray.get([e.get_version.remote() for e in engines])))
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                report = learner.publish(engines)
                times.append(time.perf_counter() - t0)
            best = min(times)
            results[count] = best
            engine_s = max(r["seconds"] for r in report["engines"])
            print(f"  publish to {count} engine(s) [{report['transport']}]: {best:.3f}s "
                  f"= {best / floor:.1f}x floor  (last: checks {report['check_s']:.3f}s, "
                  f"staging {report['stage_s']:.3f}s, slowest engine load {engine_s:.3f}s)")
    finally:
        for e in engines:
            ray.kill(e)
    if 2 in results:
        ok = results[2] <= 3 * floor
        print(f"target (publish to 2 engines <= 3x floor): {'met' if ok else 'NOT met'} "
              f"({results[2] / floor:.1f}x)")
    return 0
