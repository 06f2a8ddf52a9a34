"""``python -m learner bench``: learner tokens/s and peak memory for one step on the default
model, with a batch that fills one micro-batch. (The time to publish its weights to rollout
engines needs both parts: ``rlce bench publish``.)"""

from __future__ import annotations

import dataclasses
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Self

import torch

from rlce.core.config import AlgoConfig, LearnerConfig
from rlce.core.types import ScoredSample, TrainGroup

from .learner import Learner


def synthetic_groups(groups: int, n: int, prompt_len: int, completion_len: int,
                     vocab: int) -> list[TrainGroup]:
    g = torch.Generator().manual_seed(0)
    out = []
    for k in range(groups):
        prompt = tuple(torch.randint(100, vocab, (prompt_len,), generator=g).tolist())
        samples = tuple(ScoredSample(prompt, tuple(torch.randint(100, vocab, (completion_len,),
                                                                 generator=g).tolist()),
                                     tuple([-2.0] * completion_len), reward=float(i % 2))
                        for i in range(n))
        out.append(TrainGroup(f"bench/{k}", samples))
    return out


def resident_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class PeakMemory:
    """Peak memory over a block, in MB: the CUDA allocator's peak on a GPU, else the process's
    resident set sampled every ``every_s`` (the kernel's own high-water mark cannot be reset
    for one block). ``before`` is the level when the block began."""

    def __init__(self, device: torch.device, every_s: float = 0.002) -> None:
        self.device, self.every_s = device, every_s
        self.before = self.peak = 0.0
        self._done = threading.Event()

    def _sample(self) -> None:
        while not self._done.wait(self.every_s):
            self.peak = max(self.peak, resident_mb())

    def __enter__(self) -> Self:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.before = torch.cuda.memory_allocated() / 2**20
        else:
            self.before = self.peak = resident_mb()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() / 2**20
        else:
            self._done.set()
            self._thread.join()
            self.peak = max(self.peak, resident_mb())


def one_step(cfg: LearnerConfig, model: str, groups: int, n: int, prompt_len: int,
             completion_len: int) -> dict[str, Any]:
    """A warm-up step, then the measured one: its metrics, wall time and peak memory."""
    learner = Learner(cfg, AlgoConfig(), model, seed=0)
    batch = synthetic_groups(groups, n, prompt_len, completion_len,
                             learner.model.config.vocab_size)
    learner.step(batch[:1])  # the optimiser's state exists from here on
    with PeakMemory(learner.device) as mem:
        t0, cpu0 = time.perf_counter(), time.process_time()
        m = learner.step(batch)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"tokens_per_s": m["tokens_per_s"], "wall_s": wall, "cpu_s": cpu,
            "peak_mb": mem.peak, "before_mb": mem.before, "device": str(learner.device)}


def main(args: Any) -> int:
    base = LearnerConfig(lr=1e-6, gradient_checkpointing=args.gradient_checkpointing,
                         micro_batch_tokens=args.micro_batch_tokens or
                         LearnerConfig.micro_batch_tokens)
    row = args.prompt_len + args.completion_len
    groups = args.groups or max(1, base.micro_batch_tokens // row // args.n)
    # the configured chunk beside one chunk per micro-batch (its logits all at once)
    chunks = args.logit_chunk_tokens or [base.logit_chunk_tokens, base.micro_batch_tokens]
    print(f"{groups} groups x {args.n} samples x {row} tokens = {groups * args.n * row} "
          f"tokens a step; micro-batches of {base.micro_batch_tokens} tokens"
          + (", gradient checkpointing" if base.gradient_checkpointing else ""))
    for chunk in chunks:
        cfg = dataclasses.replace(base, logit_chunk_tokens=chunk)
        # a process of its own each: memory freed by one run would be reused by the next
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            r = pool.submit(one_step, cfg, args.model, groups, args.n, args.prompt_len,
                            args.completion_len).result()
        # CPU seconds (all threads) change less than wall time on a machine shared with others
        print(f"  logit chunk {chunk:>6} tokens: {r['tokens_per_s']:6.0f} tokens/s "
              f"({r['wall_s']:.1f}s, CPU {r['cpu_s']:.0f}s), peak memory {r['peak_mb']:6.0f} MB, "
              f"{r['peak_mb'] - r['before_mb']:+6.0f} MB over the {r['before_mb']:.0f} MB "
              f"before the step  [{r['device']}]", flush=True)
    return 0
