"""``rlce train``: build every part from the config, run the loop, log to W&B, checkpoint."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from rlce.config import TrainConfig


def problems_from(cfg: TrainConfig):
    from rlce.data import generate, load_jsonl

    if cfg.data.source == "generator":
        return generate(seed=cfg.data.seed)
    if cfg.data.source == "jsonl":
        if not cfg.data.path:
            raise ValueError("data.source=jsonl needs data.path")
        problems, errors = load_jsonl(cfg.data.path)
        for e in errors:
            print(f"skipped problem: {e}")
        if not problems:
            raise ValueError(f"data.path={cfg.data.path} holds no usable problem")
        return itertools.cycle(problems)
    raise ValueError(f"data.source must be generator or jsonl, got {cfg.data.source!r}")


def build_parts(cfg: TrainConfig) -> dict[str, Any]:
    """Validate the config by building the part configs (each names its own bad options)."""
    from actors.rollout import RolloutConfig
    from executors.fleet import FleetConfig
    from learner.learner import LearnerConfig
    from rlce.controller import LoopConfig
    from rlce.rewards import get_reward
    from rlce.types import SamplingSettings

    a = cfg.algo
    get_reward(cfg.reward.name)
    resources: dict[str, Any] = {"num_cpus": cfg.rollout.num_cpus}
    if cfg.rollout.num_gpus:
        resources["num_gpus"] = cfg.rollout.num_gpus
    return {
        "rollout": RolloutConfig(
            model=cfg.model.name, backend=cfg.rollout.backend,
            max_model_len=cfg.rollout.max_model_len, kv_cache_gb=cfg.rollout.kv_cache_gb,
            inflight_update=cfg.rollout.inflight_update,
            tensor_parallel_size=cfg.rollout.tensor_parallel_size, seed=cfg.seed,
            resources=resources),
        "fleet": FleetConfig(min_actors=cfg.executor.min_actors,
                             max_actors=cfg.executor.max_actors,
                             workers_per_actor=cfg.executor.workers_per_actor,
                             resource=cfg.executor.resource),
        "learner": LearnerConfig(
            model=cfg.model.name, lr=cfg.learner.lr, warmup_steps=cfg.learner.warmup_steps,
            schedule=cfg.learner.schedule, total_steps=a.steps,
            max_grad_norm=cfg.learner.max_grad_norm,
            micro_batch_tokens=cfg.learner.micro_batch_tokens,
            gradient_checkpointing=cfg.learner.gradient_checkpointing, estimator=a.estimator,
            clip_low=a.clip_low, clip_high=a.clip_high, aggregation=a.aggregation,
            norm_tokens=a.max_tokens if a.aggregation == "token_sum" else None,
            temperature=a.temperature, kl_coef=a.kl_coef, kl_kind=a.kl_kind,
            tis_cap=a.tis_cap, seed=cfg.seed),
        "loop": LoopConfig(
            steps=a.steps, groups_per_step=a.groups_per_step, reward=cfg.reward.name,
            drop_uniform_groups=a.drop_uniform_groups,
            sampling=SamplingSettings(n=a.n, temperature=a.temperature, top_p=a.top_p,
                                      max_tokens=a.max_tokens, seed=cfg.seed),
            exec_limits={"timeout_s": cfg.executor.timeout_s}),
    }


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run ``cfg`` and return where the run's files are and the final metrics."""
    import ray
    import wandb
    from tqdm import tqdm

    from actors.rollout import RolloutPool, spawn_rollout_actors
    from executors.fleet import ExecutorFleet
    from learner.learner import Learner
    from rlce.cluster import ensure_ray
    from rlce.controller import run_loop

    parts = build_parts(cfg)
    problems = problems_from(cfg)
    run_dir = Path(cfg.logging.dir).resolve() / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    structured = OmegaConf.structured(cfg)
    resolved = OmegaConf.to_yaml(structured)
    (run_dir / "config.yaml").write_text(resolved)
    mode = cfg.logging.mode
    if mode == "auto":
        mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
    run = wandb.init(project=cfg.logging.project, dir=str(run_dir), mode=mode,
                     config=OmegaConf.to_container(structured))
    ensure_ray()
    engines = spawn_rollout_actors(parts["rollout"], cfg.rollout.engines)
    learner = Learner(parts["learner"])
    history: list[dict[str, Any]] = []
    bar = tqdm(total=cfg.algo.steps, desc="rlce train", unit="step")

    def log(m: dict[str, Any]) -> None:
        run.log(m, step=m["step"])
        bar.update(1)
        bar.set_postfix(reward=f"{m['reward/mean']:.3f}", pass_rate=f"{m['reward/pass_rate']:.2f}",
                        tok_s=f"{m['rollout/completion_tokens'] / max(m['time/step_s'], 1e-9):.0f}")

    try:
        with ExecutorFleet(parts["fleet"]) as fleet:
            history = run_loop(problems, RolloutPool(engines), fleet, learner, engines,
                               parts["loop"], log=log)
        ckpt = learner.save_checkpoint(run_dir / "checkpoint", {"config": resolved})
    finally:
        bar.close()
        run.finish()
        for e in engines:
            ray.kill(e)
    first, last = history[0], history[-1]
    print(f"pass rate {first['reward/pass_rate']:.3f} (step 1) -> {last['reward/pass_rate']:.3f} "
          f"(step {last['step']}); checkpoint {ckpt}; W&B {mode} run in {run_dir / 'wandb'}")
    return {"run_dir": str(run_dir), "checkpoint": ckpt, "history": history}
