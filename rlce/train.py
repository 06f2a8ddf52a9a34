"""``rlce train``: build every part from the config, run the loop, evaluate, log to W&B,
checkpoint, resume. ``rlce eval`` and ``rlce bench pipeline`` reuse the same parts."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from rlce.config import TrainConfig, to_dict

CONTROLLER_STATE = "controller.json"


def problems_from(cfg: TrainConfig):
    """The training problems named by ``cfg.data``: a list (finite set) or an endless
    iterator (the generator)."""
    from rlce.data import generate, load_hf, load_jsonl

    check_data(cfg)
    d = cfg.data
    if d.source == "generator":
        return generate(seed=d.seed)
    if d.source == "shipped":
        from rlce.problems import shipped

        problems = shipped(d.languages, d.difficulties)
        if not problems:
            raise ValueError(f"data.languages={d.languages} data.difficulties={d.difficulties}"
                             " select no shipped problem")
        return problems
    if d.source == "jsonl":  # check_data has left jsonl and hf
        if not Path(d.path).is_file():
            raise ValueError(f"data.path={d.path} is not a file")
        problems, errors = load_jsonl(d.path, d.on_error)
    else:
        problems, errors = load_hf(d.path, d.split, d.on_error)
    for e in errors:
        print(f"skipped problem: {e}")
    if not problems:
        raise ValueError(f"data.path={d.path} holds no usable problem")
    return problems


def check_data(cfg: TrainConfig) -> None:
    """The data options alone, before anything is loaded or started."""
    d = cfg.data
    if d.source not in ("shipped", "generator", "jsonl", "hf"):
        raise ValueError(f"data.source must be shipped, generator, jsonl or hf, "
                         f"got {d.source!r}")
    if d.on_error not in ("skip", "raise"):
        raise ValueError(f"data.on_error must be skip or raise, got {d.on_error!r}")
    if d.source in ("jsonl", "hf") and not d.path:
        raise ValueError(f"data.source={d.source} needs data.path")


def build_parts(cfg: TrainConfig) -> dict[str, Any]:
    """Validate the config by building the part configs (each names its own bad options)."""
    from actors.rollout import RolloutConfig
    from executors.fleet import FleetConfig
    from learner.learner import LearnerConfig
    from rlce.controller import LoopConfig
    from rlce.core.types import SamplingSettings
    from rlce.rewards import get_reward

    a = cfg.algo
    get_reward(cfg.reward.name)
    check_data(cfg)
    if cfg.checkpoint.resume:
        _resume_state(cfg.checkpoint.resume)
    if cfg.logging.mode not in ("auto", "online", "offline", "disabled"):
        raise ValueError(f"logging.mode must be auto, online, offline or disabled, "
                         f"got {cfg.logging.mode!r}")
    if cfg.eval.set not in ("shipped", "humaneval", "jsonl"):
        raise ValueError(f"eval.set must be shipped, humaneval or jsonl, got {cfg.eval.set!r}")
    if any(k < 1 or k > cfg.eval.n for k in cfg.eval.k):
        raise ValueError(f"eval.k={cfg.eval.k} must lie between 1 and eval.n={cfg.eval.n}")
    if not all(cfg.algo.stop):
        raise ValueError(f"algo.stop must hold non-empty strings, got {list(cfg.algo.stop)!r}")
    if cfg.rollout.engines < 1:
        raise ValueError(f"rollout.engines must be >= 1, got {cfg.rollout.engines}")
    if cfg.learner.actors < 0:
        raise ValueError(f"learner.actors must be >= 0, got {cfg.learner.actors}")
    resources = actor_options(cfg.rollout.num_cpus, cfg.rollout.num_gpus, cfg.rollout.resource)
    model = cfg.checkpoint.resume or cfg.model.name
    return {
        "rollout": RolloutConfig(
            model=model, backend=cfg.rollout.backend,
            max_model_len=cfg.rollout.max_model_len, kv_cache_gb=cfg.rollout.kv_cache_gb,
            cpu_threads=cfg.rollout.cpu_threads,
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
            max_draws_per_step=a.max_draws_per_step, problems_per_draw=a.problems_per_draw,
            staleness=a.staleness,
            overlong=a.overlong, overlong_penalty=a.overlong_penalty,
            sampling=SamplingSettings(n=a.n, temperature=a.temperature, top_p=a.top_p,
                                      max_tokens=a.max_tokens, stop=tuple(a.stop),
                                      seed=cfg.seed),
            exec_limits={"timeout_s": cfg.executor.timeout_s}),
    }


def actor_options(num_cpus: float, num_gpus: float, resource: str | None) -> dict[str, Any]:
    """Ray actor options from a part's placement settings."""
    opts: dict[str, Any] = {"num_cpus": num_cpus}
    if num_gpus:
        opts["num_gpus"] = num_gpus
    if resource:
        opts["resources"] = {resource: 1}
    return opts


def _wandb_mode(cfg: TrainConfig) -> str:
    mode = cfg.logging.mode
    if mode == "auto":
        mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
    return mode


def _resume_state(path: str) -> dict[str, Any]:
    f = Path(path) / CONTROLLER_STATE
    if not f.is_file():
        raise ValueError(f"checkpoint.resume={path}: {f.name} is missing, so it is not a "
                         f"checkpoint of rlce train")
    return json.loads(f.read_text())


class Parts:
    """The running parts of a run (engines, fleet, learner), shut down together."""

    def __init__(self, cfg: TrainConfig, parts: dict[str, Any], learner: bool = True) -> None:
        from actors.rollout import spawn_rollout_actors
        from executors.fleet import ExecutorFleet
        from rlce.core.cluster import ensure_ray

        ensure_ray(cfg.cluster.address)
        self.rollout_cfg = parts["rollout"]
        self.learner: Any = None
        if learner and cfg.learner.actors == 0:
            from learner.learner import Learner

            self.learner = Learner(parts["learner"], resume_from=cfg.checkpoint.resume)
        elif learner:
            from learner.group import LearnerGroup

            lc = cfg.learner
            self.learner = LearnerGroup(parts["learner"], lc.actors,
                                        actor_options(lc.num_cpus, lc.num_gpus, lc.resource),
                                        resume_from=cfg.checkpoint.resume)
        self.engines = spawn_rollout_actors(self.rollout_cfg, cfg.rollout.engines)
        self.fleet = ExecutorFleet(parts["fleet"])

    def new_engine(self) -> Any:
        from actors.rollout import spawn_rollout_actors

        return spawn_rollout_actors(self.rollout_cfg, 1)[0]

    def placement(self) -> dict[str, Any]:
        """Which node each actor runs on, with the custom resources that node offers."""
        import ray

        nodes = {n["NodeID"]: sorted(k for k in n["Resources"]
                                     if k not in ("CPU", "GPU", "memory", "object_store_memory")
                                     and not k.startswith(("node:", "accelerator_type")))
                 for n in ray.nodes() if n["Alive"]}
        engines = [i["node_id"] for i in ray.get([e.info.remote() for e in self.engines])]
        executors = [i.get("node_id") for i in self.fleet.actor_infos()]
        learners = (self.learner.node_ids() if hasattr(self.learner, "node_ids")
                    else [ray.get_runtime_context().get_node_id()])
        return {"driver": ray.get_runtime_context().get_node_id(), "rollout": engines,
                "learner": learners, "executor": executors, "nodes": nodes}

    def close(self) -> None:
        import ray

        if hasattr(self.learner, "shutdown"):
            self.learner.shutdown()
        self.fleet.close()
        for e in self.engines:
            ray.kill(e)  # a no-op for an engine that already died


def _evaluator(cfg: TrainConfig, parts: Parts):
    from rlce.evaluate import eval_problems, evaluate

    e = cfg.eval
    problems = eval_problems(e.set, e.path, e.limit, cfg.data.seed, cfg.data.languages,
                             cfg.data.difficulties)

    def run() -> dict[str, Any]:
        return evaluate(parts.engines, parts.fleet, problems, e.n, list(e.k), e.temperature,
                        e.max_tokens or cfg.algo.max_tokens,
                        {"timeout_s": cfg.executor.timeout_s}, seed=cfg.seed,
                        stop=tuple(cfg.algo.stop))
    return run


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run ``cfg`` and return where the run's files are, the per-step metrics and the
    evaluations before and after."""
    import wandb
    from tqdm import tqdm

    from rlce.controller import Controller, ProblemStream
    from rlce.evaluate import paired_difference

    built = build_parts(cfg)
    start_step, drawn = 0, 0
    if cfg.checkpoint.resume:
        state = _resume_state(cfg.checkpoint.resume)
        start_step, drawn = state["step"], state["problems_drawn"]
    stream = ProblemStream(problems_from(cfg), seed=cfg.data.seed)
    stream.skip(drawn)  # a resumed run continues with the same data order
    run_dir = Path(cfg.logging.dir).expanduser().resolve() / time.strftime("%Y%m%d-%H%M%S")
    while run_dir.exists():
        run_dir = run_dir.with_name(run_dir.name + "_")
    run_dir.mkdir(parents=True)
    resolved = OmegaConf.to_yaml(OmegaConf.structured(cfg))
    (run_dir / "config.yaml").write_text(resolved)
    mode = _wandb_mode(cfg)
    run = wandb.init(project=cfg.logging.project, dir=str(run_dir), mode=mode,
                     config=to_dict(cfg), name=run_dir.name)
    parts = Parts(cfg, built)
    learner = parts.learner
    (run_dir / "placement.json").write_text(json.dumps(parts.placement(), indent=2))
    if learner.version > 0:  # resumed: the engines start from the checkpoint's weights
        learner.publish(parts.engines, version=learner.version)
    evaluate = _evaluator(cfg, parts)
    # every path of the config is resolved by now; work from the run folder. (Several Ray
    # nodes on one host share one runtime_resources folder, and a node may delete the job's
    # working_dir copy, the driver's cwd, while the driver still runs.)
    try:
        cwd: str | None = os.getcwd()
    except FileNotFoundError:
        cwd = None
    os.chdir(run_dir)
    evals: dict[str, dict[str, Any]] = {}
    bar = tqdm(total=cfg.algo.steps, initial=start_step, desc="rlce train", unit="step",
               disable=not cfg.logging.progress)
    table_rows: list[list[Any]] = []

    def checkpoint(step: int, final: bool = False) -> str:
        where = run_dir / ("checkpoint" if final else f"checkpoint-step{step}")
        learner.save_checkpoint(where, {"config": resolved})
        (where / CONTROLLER_STATE).write_text(json.dumps(
            {"step": step, "problems_drawn": stream.position, "version": learner.version,
             "run_dir": str(run_dir)}, indent=2))
        (where / "config.yaml").write_text(resolved)
        return str(where)

    def between(step: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if cfg.eval.every and step % cfg.eval.every == 0 and step < cfg.algo.steps:
            out.update(evaluate())
        if cfg.checkpoint.every and step % cfg.checkpoint.every == 0 and step < cfg.algo.steps:
            checkpoint(step)
        return out

    def log(m: dict[str, Any]) -> None:
        records = m.get("_samples", [])
        step = m["step"]
        table_rows.extend([step, r["problem"], r["language"], r["status"], r["reward"],
                           r["version"], r["text"][:2000]] for r in records)
        if cfg.logging.table_every and step % cfg.logging.table_every == 0:
            m["samples"] = wandb.Table(columns=["step", "problem", "language", "status",
                                                "reward", "policy_version", "completion"],
                                       data=table_rows)
            table_rows.clear()
        run.log({k: v for k, v in m.items() if not k.startswith("_")}, step=step)
        m.pop("samples", None)
        bar.update(1)
        bar.set_postfix(reward=f"{m['reward/mean']:.3f}", pass_rate=f"{m['reward/pass_rate']:.2f}",
                        tok_s=f"{m['throughput/tokens_per_s']:.0f}")

    history: list[dict[str, Any]] = []
    ckpt = None
    try:
        if cfg.eval.before:
            evals["before"] = evaluate()
            _save_eval(run_dir / "eval-before.json", evals["before"])
            run.log(_scalars(evals["before"]), step=start_step)
        ctrl = Controller(stream, parts.engines, parts.fleet, learner, built["loop"],
                          make_engine=parts.new_engine, log=log, between_steps=between)
        history = ctrl.run(start_step)
        end = history[-1]["step"] if history else start_step
        if cfg.eval.after:
            evals["after"] = evaluate()
            _save_eval(run_dir / "eval-after.json", evals["after"])
            run.log(_scalars(evals["after"]), step=end)
        ckpt = checkpoint(end, final=True)
        run.summary.update({f"before/{k}": v for k, v in
                            _scalars(evals.get("before", {})).items()})
        run.summary.update({f"after/{k}": v for k, v in
                            _scalars(evals.get("after", {})).items()})
        if "before" in evals and "after" in evals:
            paired = paired_difference(evals["before"]["_per_problem"],
                                       evals["after"]["_per_problem"])
            evals["paired"] = paired
            run.summary.update({f"paired/{k}": v for k, v in paired.items()})
    finally:
        bar.close()
        run.finish()
        parts.close()
        if cwd and os.path.isdir(cwd):
            os.chdir(cwd)
    summary = summarize(cfg, history, evals, ckpt, run_dir, mode)
    print(summary)
    return {"run_dir": str(run_dir), "checkpoint": ckpt, "history": history, "evals": evals}


def _scalars(result: dict[str, Any]) -> dict[str, Any]:
    """An evaluation's metrics, without its per-problem results and sample records."""
    return {k: v for k, v in result.items() if not k.startswith("_")}


def _save_eval(path: Path, result: dict[str, Any]) -> None:
    """An evaluation as JSON: its metrics, per problem [passed, judged] and every sample."""
    path.write_text(json.dumps({**_scalars(result), "per_problem": result["_per_problem"],
                                "records": result["_records"]}, indent=1))


def summarize(cfg: TrainConfig, history: list[dict[str, Any]],
              evals: dict[str, dict[str, Any]], ckpt: str | None, run_dir: Path,
              mode: str) -> str:
    lines = []
    k = min(cfg.eval.k)
    key = f"eval/pass@{k}"
    if "before" in evals and "after" in evals:
        lines.append(f"{cfg.eval.set} pass@{k}: {evals['before'][key]:.3f} before -> "
                     f"{evals['after'][key]:.3f} after "
                     f"({evals['after']['eval/problems']} problems x {cfg.eval.n} samples)")
    if "paired" in evals:
        p = evals["paired"]
        lines.append(f"paired by problem: {p['diff']:+.3f} +- {p['se']:.3f} (z {p['z']:.1f}, "
                     f"one-sided p {p['p_one_sided']:.3f}); {p['better']} problems better, "
                     f"{p['worse']} worse, {p['same']} unchanged")
    if history:
        first, last = history[0], history[-1]
        lines.append(f"training pass rate {first['reward/pass_rate']:.3f} (step "
                     f"{first['step']}) -> {last['reward/pass_rate']:.3f} (step {last['step']})")
        wall = sum(m["time/step_s"] for m in history)
        lines.append(f"{len(history)} steps in {wall:.0f} s")
    lines.append(f"checkpoint: {ckpt}")
    lines.append(f"run folder: {run_dir} (W&B {mode} run in {run_dir / 'wandb'})")
    return "\n".join(lines)


def evaluate_model(cfg: TrainConfig) -> dict[str, Any]:
    """``rlce eval``: pass@k of ``model.name`` (a checkpoint folder, the default model or any
    Hugging Face model) on ``eval.set``; prints the figures and writes them as JSON under
    ``logging.dir``."""
    built = build_parts(cfg)
    parts = Parts(cfg, built, learner=False)
    try:
        result = _evaluator(cfg, parts)()
    finally:
        parts.close()
    result = {"model": cfg.model.name, "set": cfg.eval.set, "n": cfg.eval.n,
              "temperature": cfg.eval.temperature, **result}
    out = Path(cfg.logging.dir).resolve() / f"eval-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    _save_eval(out, result)
    for k, v in _scalars(result).items():
        print(f"{k:28s} {v:.4f}" if isinstance(v, float) else f"{k:28s} {v}")
    print(f"written to {out}")
    return result
