"""The actor-learner loop, synchronous form (staleness 0): generate a batch of groups with
the current policy, send each finished sample's program to the executor fleet as soon as it
arrives, score the groups, drop the ones without signal and draw more problems, step the
learner, publish the new weights. ``rlce train`` (Hydra, W&B, evaluation) builds on this."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlce.data import Problem
from rlce.rewards import extract_program, get_reward
from rlce.types import Prompt, SamplingSettings, ScoredSample, TrainGroup

INSTRUCTION = "Answer with the complete program in one fenced code block."


@dataclass
class LoopConfig:
    steps: int = 20
    groups_per_step: int = 8
    sampling: SamplingSettings = field(default_factory=lambda: SamplingSettings(
        n=4, temperature=1.0, max_tokens=256))
    reward: str = "binary"
    drop_uniform_groups: bool = True
    max_draws_per_step: int = 4  # batches of problems tried per step before giving up
    exec_limits: dict[str, Any] = field(default_factory=lambda: {"timeout_s": 5})


def prompt_for(problem: Problem) -> Prompt:
    return Prompt(problem.id, messages=({"role": "user",
                                         "content": f"{problem.prompt}\n\n{INSTRUCTION}"},))


def generate_and_execute(pool: Any, fleet: Any, problems: list[Problem],
                         settings: SamplingSettings, reward: Callable[[dict, str], float],
                         limits: dict[str, Any]) -> tuple[list[TrainGroup], dict[str, Any]]:
    """Stream samples from the engines; each one's program goes to the fleet as it arrives.
    Returns the scored groups and what happened (verdict mix, times, lengths)."""
    by_id = {p.id: p for p in problems}
    lock = threading.Lock()
    verdicts: dict[str, dict] = {}
    all_done = threading.Event()
    expected = len(problems) * settings.n
    t0 = time.perf_counter()
    samples = []
    exec_done_at = [t0]

    def on_verdict(v: dict) -> None:
        with lock:
            verdicts[v["id"]] = v
            if len(verdicts) == expected:
                exec_done_at[0] = time.perf_counter()
                all_done.set()

    for s in pool.generate([prompt_for(p) for p in problems], settings):
        samples.append(s)
        problem = by_id[s.problem_id]
        program, _ = extract_program(s.text, problem.language)
        fleet.submit(problem.job(program, f"{s.problem_id}#{s.index}", limits), on_verdict)
    gen_s = time.perf_counter() - t0
    if not all_done.wait(timeout=600):
        raise TimeoutError(f"executor fleet returned {len(verdicts)} of {expected} verdicts")
    grouped: dict[str, list] = defaultdict(list)
    mix: Counter = Counter()
    for s in samples:
        v = verdicts[f"{s.problem_id}#{s.index}"]
        mix[v["status"]] += 1
        r = float(reward(v, s.text))
        grouped[s.problem_id].append(ScoredSample(s.prompt_ids, s.completion_ids, s.logprobs,
                                                  r, s.policy_version))
    groups = [TrainGroup(pid, tuple(ss)) for pid, ss in grouped.items()]
    info = {"generate_s": gen_s, "execute_tail_s": max(0.0, exec_done_at[0] - t0 - gen_s),
            "verdicts": dict(mix), "samples": len(samples),
            "completion_tokens": sum(len(s.completion_ids) for s in samples),
            "truncated": sum(s.finish_reason == "length" for s in samples)}
    return groups, info


def run_loop(problems: Iterator[Problem], pool: Any, fleet: Any, learner: Any,
             engines: list[Any], cfg: LoopConfig,
             log: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run ``cfg.steps`` synchronous steps; ``learner`` is a Learner (or anything with
    ``step(groups)`` and ``publish(engines)`` returning dicts). Returns per-step metrics."""
    reward = get_reward(cfg.reward)
    history = []
    for step in range(cfg.steps):
        t_step = time.perf_counter()
        kept: list[TrainGroup] = []
        rewards_all: list[float] = []
        mix: Counter = Counter()
        gen_s = exec_s = 0.0
        dropped = draws = samples = tokens = truncated = 0
        while len(kept) < cfg.groups_per_step and draws < cfg.max_draws_per_step:
            draws += 1
            batch = [next(problems) for _ in range(cfg.groups_per_step - len(kept))]
            groups, info = generate_and_execute(pool, fleet, batch, cfg.sampling, reward,
                                                cfg.exec_limits)
            gen_s += info["generate_s"]
            exec_s += info["execute_tail_s"]
            mix.update(info["verdicts"])
            samples += info["samples"]
            tokens += info["completion_tokens"]
            truncated += info["truncated"]
            for g in groups:
                rs = [s.reward for s in g.samples]
                rewards_all += rs
                if cfg.drop_uniform_groups and max(rs) == min(rs):
                    dropped += 1  # no signal: every sample got the same reward
                else:
                    kept.append(g)
        metrics: dict[str, Any] = {
            "step": step + 1, "rollout/samples": samples, "rollout/completion_tokens": tokens,
            "rollout/truncated": truncated, "reward/mean": float(np.mean(rewards_all)),
            "reward/std": float(np.std(rewards_all)),
            "reward/pass_rate": mix.get("passed", 0) / max(1, samples),
            "data/groups_dropped": dropped, "data/draws": draws,
            **{f"exec/verdict_{k}": v for k, v in mix.items()},
            "time/generate_s": gen_s, "time/execute_tail_s": exec_s}
        if kept:
            t = time.perf_counter()
            lm = learner.step(kept)
            metrics["time/train_s"] = time.perf_counter() - t
            metrics.update({f"learner/{k}": v for k, v in lm.items()})
            t = time.perf_counter()
            pub = learner.publish(engines)
            metrics["time/publish_s"] = time.perf_counter() - t
            metrics["rollout/policy_version"] = pub["version"]
        else:
            metrics["time/train_s"] = metrics["time/publish_s"] = 0.0
        metrics["time/step_s"] = time.perf_counter() - t_step
        metrics["time/controller_s"] = metrics["time/step_s"] - sum(
            metrics[k] for k in ("time/generate_s", "time/execute_tail_s", "time/train_s",
                                 "time/publish_s"))
        history.append(metrics)
        if log:
            log(metrics)
    return history
