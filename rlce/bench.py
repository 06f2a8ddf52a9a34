"""``rlce bench pipeline``: a short training run that prints where the wall time went.
The controller's own overhead is the time of a step spent in none of generate, execute,
train, publish, eval (or, asynchronously, waiting for samples)."""

from __future__ import annotations

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


def pipeline(cfg: TrainConfig) -> dict[str, float]:
    from rlce.train import train

    result = train(cfg)
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
