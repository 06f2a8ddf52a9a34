"""``rlce synth``: the command. It starts the teacher's rollout engines and the executor
fleet (locally or on the Ray cluster ``rlce train`` would use), streams the teacher's answers
through the pipeline's stages and writes, in the run folder:

- ``problems.jsonl`` (or ``synth.out``): the problems kept, in the problem schema, loadable as
  they are with ``data=jsonl data.path=...``; each carries its ``reference`` and
  ``provenance`` (teacher, seed, mutation score, base pass rate);
- ``proposals.jsonl``: every teacher answer, kept or not, with the reason and figures;
- ``report.json``: the yield (proposed, accepted, rejected per reason), accepted problems per
  hour and per executor-core-hour; also a W&B run with the same figures and a table of
  proposals.

``synth.mode=augment`` instead adds tests to the problems of ``data.*`` that have a Python
reference and ``call`` tests, and writes the whole set (problems it could not augment as
they were); ``synth.recheck`` judges an evaluation's passing programs again on the
augmented tests."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rlce.config import ConfigError, TrainConfig, to_dict
from rlce.data import Problem, parse_problem
from rlce.synth.contamination import (
    Decontaminator,
    Deduper,
    EvalItem,
    example_items,
    humaneval_items,
    normalised,
)
from rlce.synth.pipeline import Pipeline, SynthParams
from rlce.synth.proposal import KINDS, Seed, inputs_prompt, parse_inputs, teacher_messages


def problem_row(p: Problem) -> dict[str, Any]:
    return {"id": p.id, "language": p.language, "prompt": p.prompt, "tests": p.tests,
            "difficulty": p.difficulty, **p.meta}


def seeds_from(cfg: TrainConfig) -> list[Seed]:
    """What the teacher starts from (``synth.seeds``); a ConfigError if that is nothing."""
    s = cfg.synth
    if s.seeds == "topics":
        seeds = [Seed(f"topic/{i}", "topic", t) for i, t in enumerate(s.topics or [])]
    elif s.seeds == "failures":
        seeds = failure_seeds(Path(s.from_run).expanduser(), s.fail_below)
    else:
        if s.seeds == "shipped":
            from rlce.problems import shipped

            problems = [p for p in shipped(["python"]) if p.tests["format"] == "call"]
        else:
            from rlce.train import problems_from

            problems = problems_from(cfg)
            if not isinstance(problems, list):
                problems = [next(problems) for _ in range(s.proposals)]
        seeds = [Seed(p.id, "example", p.prompt) for p in problems]
    if not seeds:
        raise ConfigError(f"synth.seeds={s.seeds} gives no seed")
    return seeds


def failure_seeds(run_dir: Path, fail_below: float) -> list[Seed]:
    """The problems a run of ``rlce train`` fails: those whose training pass rate
    (``problem_pass_rates.json``) is at most ``fail_below``, worst first."""
    from rlce.train import PASS_RATES

    path = run_dir / PASS_RATES
    if not path.is_file():
        raise ConfigError(f"synth.from_run={run_dir} has no {PASS_RATES} (a run of rlce "
                          "train writes it as it trains)")
    rates = json.loads(path.read_text())
    failing = sorted((r["passed"] / r["judged"], pid) for pid, r in rates.items()
                     if r["judged"] and r.get("prompt")
                     and r["passed"] / r["judged"] <= fail_below)
    return [Seed(pid, "failure", rates[pid]["prompt"]) for _, pid in failing]


def eval_items(cfg: TrainConfig) -> list[EvalItem]:
    """Every evaluation problem synthetic ones must not overlap: HumanEval always, and the
    configured ``eval`` set when it is a file of its own."""
    items = humaneval_items()
    if cfg.eval.set == "jsonl":
        from rlce.data import load_jsonl

        for p in load_jsonl(cfg.eval.path)[0]:
            name = p.tests.get("fn_name") or p.tests.get("entry_point")
            items.append(EvalItem(p.id, name, p.prompt, str(p.meta.get("reference", ""))))
    return items


def params(cfg: TrainConfig) -> SynthParams:
    s = cfg.synth
    return SynthParams(min_tests=s.min_tests, max_tests=s.max_tests, mutants=s.mutants,
                       min_mutation_score=s.min_mutation_score, timeout_s=s.timeout_s,
                       extra_inputs=s.extra_inputs, seed=cfg.seed,
                       languages=tuple(s.languages), augment_into=s.augment_into)


def synth(cfg: TrainConfig, run_dir: Path) -> dict[str, Any]:
    """Run ``rlce synth`` as configured; returns the report it writes."""
    import wandb

    from executors.fleet import ExecutorFleet
    from rlce.core.cluster import ensure_ray
    from rlce.core.models import ModelNotFound, resolve_model
    from rlce.train import say

    s, show = cfg.synth, cfg.logging.progress
    run_dir = run_dir.resolve()
    teacher = s.teacher or cfg.model.name
    seeds = seeds_from(cfg) if s.mode == "propose" else []
    rows = augment_rows(cfg) if s.mode == "augment" else []
    uses_teacher = s.mode == "propose" or s.teacher_inputs > 0  # an engine of it is started
    examples = example_items() if s.mode == "propose" and s.shots else []
    decon = Decontaminator(eval_items(cfg) + examples, s.ngram, s.code_ngram)
    dedupe = Deduper()
    for seed in seeds:  # a proposal that copies a seed is a duplicate
        dedupe.statements.setdefault(normalised(seed.text), seed.id)
    if uses_teacher:
        try:
            resolve_model(teacher)
        except ModelNotFound as e:
            raise ConfigError(f"synth.teacher: {e}") from None
    run_dir.mkdir(parents=True, exist_ok=True)
    ensure_ray(cfg.cluster.address)
    run = wandb.init(project=cfg.logging.project, dir=str(run_dir),
                     mode=cfg.logging.wandb_mode(), config=to_dict(cfg), name=run_dir.name,
                     job_type=f"synth-{s.mode}", settings=wandb.Settings(quiet=True))
    fleet = ExecutorFleet(cfg.executor)
    engines: list[Any] = []
    out = Path(s.out).expanduser() if s.out else run_dir / "problems.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    pipe = Pipeline(fleet, params(cfg), decon, dedupe, teacher)
    log_file = (run_dir / "proposals.jsonl").open("w", encoding="utf-8")

    def write_record(rec: dict[str, Any]) -> None:  # as each answer is decided
        log_file.write(json.dumps(rec) + "\n")
        log_file.flush()

    pipe.on_record = write_record
    kept: list[dict[str, Any]] | None = None
    t0 = time.perf_counter()
    try:
        if uses_teacher:
            from actors.rollout import spawn_rollout_actors

            say(f"rlce synth: starting {cfg.rollout.engines} {cfg.rollout.backend} engine(s) "
                f"of the teacher {teacher}", show)
            engines = spawn_rollout_actors(cfg.rollout, teacher, cfg.seed, cfg.rollout.engines)
            t0 = time.perf_counter()
        if s.mode == "propose":
            propose(cfg, engines, pipe, seeds, show)
            if s.policy_samples:
                difficulty_band(cfg, engines if teacher == cfg.model.name else None, fleet,
                                pipe, show)
            kept = pipe.accepted
        else:
            say(f"rlce synth: augmenting the tests of {len(rows)} problems", show)
            teacher_stats = augment(cfg, engines, pipe, rows, show)
            pipe.finish()
            kept = merge_augmented(rows, pipe.accepted)
        wall = time.perf_counter() - t0
        report = yield_report(cfg, pipe, wall, fleet)
        if s.mode == "augment" and s.teacher_inputs:  # and how many became tests
            teacher_stats["kept"] = sum(r["augmented"]["teacher_cases"] for r in pipe.accepted)
            report["teacher_inputs"] = teacher_stats
        if s.mode == "augment" and s.recheck:
            report["recheck"] = recheck(Path(s.recheck).expanduser(), rows, pipe.accepted,
                                        fleet)
    finally:
        import ray

        log_file.close()
        # problems kept before a failure are not lost; an augmented set is written only
        # whole (a part of it would drop problems)
        if kept is None and s.mode == "propose":
            kept = pipe.accepted
        if kept is not None:
            out.write_text("".join(json.dumps(r) + "\n" for r in kept))
        for e in engines:
            ray.kill(e)
        fleet.close()
    report["problems_file"] = str(out)
    (run_dir / "report.json").write_text(json.dumps(report, indent=1))
    log_wandb(run, report, pipe)
    run.finish()
    print(summary(report))
    return report


def propose(cfg: TrainConfig, engines: list[Any], pipe: Pipeline, seeds: list[Seed],
            show: bool) -> None:
    """Ask the teacher ``synth.proposals`` times, ``synth.per_seed`` answers per seed,
    feeding each answer to the pipeline as it finishes."""
    from tqdm import tqdm

    from actors.rollout import RolloutPool
    from rlce.core.types import Prompt, SamplingSettings

    s = cfg.synth
    n_prompts = math.ceil(s.proposals / s.per_seed)
    kinds = KINDS if s.kind == "both" else (s.kind,)
    # both kinds alternate, and a seed seen again gets the other kind
    by_prompt = {f"{seeds[i % len(seeds)].id}@{i}": (
        seeds[i % len(seeds)], kinds[(i + i // len(seeds)) % len(kinds)])
        for i in range(n_prompts)}
    prompts = [Prompt(pid, messages=teacher_messages(seed, s.min_tests, kind, s.shots))
               for pid, (seed, kind) in by_prompt.items()]
    settings = SamplingSettings(n=s.per_seed, temperature=s.temperature,
                                max_tokens=s.max_tokens, seed=cfg.seed)
    with tqdm(total=n_prompts * s.per_seed, desc="teacher answers", unit="answer",
              disable=not show) as bar:
        for sample in RolloutPool(engines).generate(prompts, settings):
            pipe.feed(sample.text, *by_prompt[sample.problem_id])
            bar.update(1)
    pipe.finish()


def augment(cfg: TrainConfig, engines: list[Any], pipe: Pipeline, rows: list[dict[str, Any]],
            show: bool) -> dict[str, int]:
    """Feed each augmentable row to the pipeline: at once with shaped inputs only, or, with
    teacher ``engines``, as the teacher's answer for it arrives, with the calls it wrote.
    Returns the teacher's figures: answers, calls offered, answers with none, prompts too
    long for the teacher (those problems get shaped inputs only)."""
    import ray
    from tqdm import tqdm

    from actors.rollout import RolloutPool
    from rlce.core.types import Prompt, SamplingSettings

    todo = {r["id"]: r for r in rows if not r.get("_not_augmentable")}
    stats = {"answers": 0, "calls": 0, "answers_without_calls": 0, "prompts_too_long": 0}
    if not engines:
        for row in todo.values():
            pipe.augment(row)
        return stats
    s = cfg.synth
    prompts = [Prompt(pid, messages=({"role": "user", "content": inputs_prompt(
        r["prompt"], r["reference"], r["tests"]["fn_name"], s.teacher_inputs,
        r["tests"]["cases"])},))
        for pid, r in todo.items()]
    settings = SamplingSettings(n=1, temperature=s.temperature, max_tokens=s.max_tokens,
                                seed=cfg.seed)
    # a problem whose prompt does not fit the teacher gets shaped inputs only
    too_long = dict(ray.get(engines[0].check_prompts.remote(prompts)))
    stats["prompts_too_long"] = len(too_long)
    for pid in too_long:
        pipe.augment(todo[pid])
    prompts = [q for q in prompts if q.problem_id not in too_long]
    with tqdm(total=len(prompts), desc="teacher inputs", unit="answer",
              disable=not show) as bar:
        for sample in RolloutPool(engines).generate(prompts, settings):
            row = todo[sample.problem_id]
            calls, _ = parse_inputs(sample.text, row["tests"]["fn_name"])
            stats["answers"] += 1
            stats["calls"] += len(calls)
            stats["answers_without_calls"] += not calls
            pipe.augment(row, calls)
            bar.update(1)
    return stats


def difficulty_band(cfg: TrainConfig, engines: list[Any] | None, fleet: Any, pipe: Pipeline,
                    show: bool) -> None:
    """Sample ``synth.policy_samples`` programs of the policy (``model.name``) per kept
    problem and keep the problems whose pass rate lies strictly inside the band."""
    import ray

    from actors.rollout import RolloutPool, spawn_rollout_actors
    from rlce.controller import generate_and_execute, pass_counts
    from rlce.core.types import SamplingSettings
    from rlce.rewards import binary
    from rlce.train import say

    s = cfg.synth
    if not pipe.accepted:
        return
    own = engines is None
    if own:
        say(f"rlce synth: starting the policy {cfg.model.name} for the difficulty band", show)
        engines = spawn_rollout_actors(cfg.rollout, cfg.model.name, cfg.seed, 1)
    try:
        problems = [parse_problem(r) for r in pipe.accepted]
        settings = SamplingSettings(n=s.policy_samples, temperature=1.0,
                                    max_tokens=cfg.algo.max_tokens, stop=tuple(cfg.algo.stop),
                                    seed=cfg.seed)
        batch = generate_and_execute(RolloutPool(engines), fleet, problems, settings, binary)
    finally:
        if own:
            for e in engines:
                ray.kill(e)
    apply_band(pipe, pass_counts(batch.records), s.band_low, s.band_high)


def apply_band(pipe: Pipeline, counts: dict[str, list[int]], low: float, high: float) -> None:
    """Keep the accepted rows whose policy pass rate (``counts``: id -> [passed, judged])
    lies strictly between ``low`` and ``high``. A proposal written in several languages is
    kept in those whose rate is inside; one kept in none counts once under the reason of
    its first row (too_hard, too_easy, or policy_not_judged)."""
    kept, outcome = [], {}
    for row in pipe.accepted:
        passed, judged = counts.get(row["id"], [0, 0])
        rate = passed / judged if judged else None
        row["provenance"]["base_pass_rate"] = rate
        base = row["id"].split("/")[0] + "/" + row["id"].split("/")[1]  # synth/<name>-<hash>
        entry = next(e for e in pipe.log if e["detail"] == base)
        entry.setdefault("base_pass_rate", rate)
        if rate is not None and low < rate < high:
            kept.append(row)
            outcome[base] = "accepted"
        elif outcome.get(base) != "accepted":
            reason = ("policy_not_judged" if rate is None else
                      "too_hard" if rate <= low else "too_easy")
            outcome.setdefault(base, reason)
    for base, reason in outcome.items():
        if reason != "accepted":
            pipe.reasons[reason] += 1
            next(e for e in pipe.log if e["detail"] == base)["outcome"] = reason
    pipe.accepted[:] = kept


def augment_rows(cfg: TrainConfig) -> list[dict[str, Any]]:
    """The problems of ``data.*`` as rows; those without a Python reference and ``call``
    tests are marked ``_not_augmentable`` (they are written back unchanged)."""
    from rlce.train import problems_from

    problems = problems_from(cfg)
    if not isinstance(problems, list):
        raise ConfigError("synth.mode=augment needs a finite problem set, not "
                          "data.source=generator")
    rows = []
    for p in problems:
        row = problem_row(p)
        ok = p.language == "python" and p.tests["format"] == "call" and isinstance(
            row.get("reference"), str)
        rows.append(row if ok else {**row, "_not_augmentable": True})
    return rows


def merge_augmented(rows: list[dict[str, Any]], augmented: list[dict[str, Any]]
                    ) -> list[dict[str, Any]]:
    by_id = {r["id"]: r for r in augmented}
    return [by_id.get(r["id"], {k: v for k, v in r.items() if k != "_not_augmentable"})
            for r in rows]


def recheck(path: Path, rows: list[dict[str, Any]], augmented: list[dict[str, Any]],
            fleet: Any) -> dict[str, Any]:
    """The original tests' false positives: the programs of an evaluation (``eval-*.json``
    of ``rlce train``/``rlce eval``: its ``records``) judged again on the original and on
    the augmented tests; of those passing the original tests, how many fail the augmented."""
    from rlce.prompts import program_for

    data = json.loads(path.read_text())
    originals = {r["id"]: parse_problem({k: v for k, v in r.items()
                                         if k != "_not_augmentable"}) for r in rows}
    new = {r["id"]: parse_problem(r) for r in augmented}
    jobs, pairs = [], []
    for i, rec in enumerate(data.get("records", [])):
        pid = rec["problem"]
        if pid not in new:
            continue
        program = program_for(originals[pid], rec["text"])
        jobs.append(originals[pid].job(program, f"orig/{i}"))
        jobs.append(new[pid].job(program, f"aug/{i}"))
        pairs.append(i)
    verdicts = {v["id"]: v["status"] for v in fleet.run(jobs)}
    passing = [i for i in pairs if verdicts[f"orig/{i}"] == "passed"]
    caught = [i for i in passing if verdicts[f"aug/{i}"] != "passed"]
    examples = [{"problem": data["records"][i]["problem"], "status": verdicts[f"aug/{i}"],
                 "text": data["records"][i]["text"][:1500]} for i in caught[:10]]
    # a timeout on the new inputs is often a slow program, not a wrong one: the new inputs
    # may be larger than the statement promises, so the statuses are reported apart
    return {"programs": len(pairs), "pass_original": len(passing),
            "fail_augmented": len(caught),
            "fail_augmented_by_status": dict(Counter(verdicts[f"aug/{i}"] for i in caught)),
            "false_positive_rate": len(caught) / len(passing) if passing else None,
            "examples": examples}


def yield_report(cfg: TrainConfig, pipe: Pipeline, wall_s: float, fleet: Any
                 ) -> dict[str, Any]:
    report = pipe.report()
    report["accepted"] = len(pipe.accepted)
    hours = wall_s / 3600
    cores = fleet.metrics().get("actors", 1) * (cfg.executor.workers_per_actor or _cores())
    report.update(mode=cfg.synth.mode, teacher=pipe.teacher, wall_s=round(wall_s, 1),
                  executor_cores=cores,
                  accepted_per_hour=round(report["accepted"] / hours, 2) if hours else None,
                  accepted_per_executor_core_hour=round(report["accepted"] / (hours * cores), 2)
                  if hours and cores else None)
    scores = [r["mutation_score"] for r in pipe.log if r.get("mutation_score") is not None
              and r["outcome"] == "accepted"]
    if scores:
        report["mutation_score_mean"] = round(sum(scores) / len(scores), 4)
    before = [r["mutation_score_before"] for r in pipe.log
              if r.get("mutation_score_before") is not None]
    if before:
        report["mutation_score_before_mean"] = round(sum(before) / len(before), 4)
    return report


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def log_wandb(run: Any, report: dict[str, Any], pipe: Pipeline) -> None:
    import wandb

    scalars = {f"synth/{k}": v for k, v in report.items() if isinstance(v, (int, float))}
    scalars.update({f"synth/rejected_{k}": v for k, v in report["rejected"].items()})
    scalars.update({f"synth/teacher_inputs_{k}": v
                    for k, v in report.get("teacher_inputs", {}).items()})
    table = wandb.Table(columns=["seed", "problem", "outcome", "detail", "mutation_score",
                                 "answer"],
                        data=[[r["seed"], r["problem"], r["outcome"], r["detail"][:500],
                               r.get("mutation_score"), r["text"][:2000]] for r in pipe.log])
    run.log({**scalars, "synth/proposals": table})
    run.summary.update(scalars)


def summary(report: dict[str, Any]) -> str:
    lines = [f"rlce synth ({report['mode']}): {report['proposed']} in, {report['accepted']} "
             f"kept in {report['wall_s']:.0f} s ({report['executions']} executions)"]
    for reason, n in report["rejected"].items():
        lines.append(f"  rejected {reason:26s} {n}")
    for key in ("mutation_score_mean", "mutation_score_before_mean", "accepted_per_hour",
                "accepted_per_executor_core_hour"):
        if report.get(key) is not None:
            lines.append(f"  {key:35s} {report[key]}")
    if "teacher_inputs" in report:
        t = report["teacher_inputs"]
        lines.append(f"  teacher: {t['answers']} answers, {t['calls']} calls "
                     f"({t['answers_without_calls']} answers without one), {t['kept']} kept "
                     "as tests")
    if "recheck" in report:
        r = report["recheck"]
        lines.append(f"  recheck: {r['pass_original']} programs pass the original tests, "
                     f"{r['fail_augmented']} of them fail the augmented ones "
                     f"({r['fail_augmented_by_status']})")
    lines.append(f"problems: {report['problems_file']}")
    return "\n".join(lines)
