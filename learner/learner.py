"""The learner: a transformers causal LM trained with a clipped policy-gradient loss on groups
of scored samples, checkpointed as Hugging Face folders, publishing weights to rollout engines.
``Learner`` is the body; ``LearnerActor`` the Ray actor around it."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch

from rlce.core.config import AlgoConfig, LearnerConfig
from rlce.core.models import resolve_model
from rlce.core.types import TrainGroup
from rlce.core.weights import release_free_heap

from . import losses
from .scoring import TokenScores


class BatchError(ValueError):
    """A training batch is malformed; no step was taken."""


def lr_factor(step: int, cfg: LearnerConfig, total_steps: int) -> float:
    """Linear warm-up, then constant or cosine decay to ``min_lr_ratio`` at ``total_steps``."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    span = max(1, total_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


# How each metric of ``Learner.step`` combines over the ranks of a ``LearnerGroup``:
# "same" (equal on every rank), "sum", "token_mean" / "sample_mean" (weighted by the rank's
# completion tokens / samples), "sample_std" (pooled with the rank's advantage_mean and
# samples), "min", "max", "rate" (tokens per second of the whole group).
STEP_METRICS = {
    "step": "same", "lr": "same", "grad_norm": "same",
    "loss": "sum",  # each rank's loss is its share of the step's, over global denominators
    "samples": "sum", "completion_tokens": "sum",
    "clip_frac": "token_mean", "kl": "token_mean", "entropy": "token_mean",
    "is_weight_mean": "token_mean", "is_truncated_frac": "token_mean",
    "reward_mean": "sample_mean", "advantage_mean": "sample_mean",
    "advantage_std": "sample_std",
    "is_weight_min": "min", "is_weight_max_raw": "max",
    "step_s": "max", "tokens_per_s": "rate",
    "nll": "token_mean",  # algo.loss=sft
}


@dataclass
class _Row:
    ids: list[int]
    prompt_len: int
    behaviour: list[float]
    advantage: float
    old_logp: torch.Tensor | None = None  # under the policy before this batch's updates

    @property
    def completion_len(self) -> int:
        return len(self.ids) - self.prompt_len


def advantages_for(groups: list[TrainGroup], estimator: str) -> list[list[float]]:
    """Each sample's advantage: its group's own when given, else the estimator's over the
    rewards of the groups without (REINFORCE++ normalises over all of those at once)."""
    todo = [g for g in groups if g.advantages is None]
    rewards = [torch.tensor([float(s.reward) for s in g.samples], dtype=torch.float64)
               for g in todo]
    computed = iter(losses.advantages(estimator, rewards) if todo else [])
    return [list(g.advantages) if g.advantages is not None else next(computed).tolist()
            for g in groups]


def validate(groups: list[TrainGroup]) -> None:
    """Raise BatchError naming the first problems found."""
    if not groups:
        raise BatchError("empty batch: no groups")
    problems = []
    for g in groups:
        if not g.samples:
            problems.append(f"group {g.problem_id!r} has no samples")
        if g.advantages is not None and len(g.advantages) != len(g.samples):
            problems.append(f"group {g.problem_id!r}: {len(g.advantages)} advantages for "
                            f"{len(g.samples)} samples")
        if g.advantages is not None and not all(math.isfinite(a) for a in g.advantages):
            problems.append(f"group {g.problem_id!r}: non-finite advantage")
        for i, s in enumerate(g.samples):
            where = f"group {g.problem_id!r} sample {i}"
            if not s.prompt_ids:
                problems.append(f"{where}: empty prompt")
            if not s.completion_ids:
                problems.append(f"{where}: empty completion")
            if len(s.behaviour_logprobs) != len(s.completion_ids):
                problems.append(f"{where}: {len(s.behaviour_logprobs)} logprobs for "
                                f"{len(s.completion_ids)} completion tokens")
            if not (isinstance(s.reward, (int, float)) and math.isfinite(s.reward)):
                problems.append(f"{where}: reward {s.reward!r} is not a finite number")
            if not all(math.isfinite(x) and x <= 0 for x in s.behaviour_logprobs):
                problems.append(f"{where}: behaviour logprobs must be finite and <= 0")
    if problems:
        raise BatchError(f"batch rejected ({len(problems)} problems): " + "; ".join(problems[:8]))


class Learner:
    """One learner process. With ``world_size > 1`` (see ``learner.distributed``) the model
    is sharded with FSDP2 and each rank steps on its share of the groups."""

    def __init__(self, cfg: LearnerConfig, algo: AlgoConfig, model: str, seed: int,
                 resume_from: str | None = None, rank: int = 0, world_size: int = 1,
                 master: str | None = None) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.cfg, self.algo, self.rank, self.world_size = cfg, algo, rank, world_size
        self.device = torch.device(cfg.device if cfg.device != "auto" else
                                   ("cuda" if torch.cuda.is_available() else "cpu"))
        self.autocast = (self.device.type == "cuda" and cfg.dtype in ("auto", "bfloat16"))
        source = resume_from or resolve_model(model)
        self.model_path = source
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed)
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        self.model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
        self.model.to(self.device).train()
        if cfg.gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        self.policy = TokenScores(self.model, temperature=algo.temperature,
                                  chunk_tokens=cfg.logit_chunk_tokens)
        self.ref_model = None
        if algo.kl_coef > 0:
            ref = AutoModelForCausalLM.from_pretrained(
                resolve_model(model), dtype=torch.float32).to(self.device).eval()
            ref.requires_grad_(False)
            self.ref_model = TokenScores(ref, temperature=algo.temperature,
                                         chunk_tokens=cfg.logit_chunk_tokens)
        if world_size > 1:
            from .distributed import init_process_group, shard_model

            if master is None:
                raise ValueError("world_size > 1 needs the master address (host:port)")
            init_process_group(rank, world_size, master)
            shard_model(self.policy)
        self.optimizer = torch.optim.AdamW(self.policy.parameters(), lr=cfg.lr,
                                           betas=(cfg.beta1, cfg.beta2),
                                           weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, cfg, algo.steps))
        self.step_count = 0
        self.version = 0
        if resume_from:
            self._load_state(Path(resume_from))

    # the step

    def step(self, groups: list[TrainGroup]) -> dict[str, float]:
        """One optimiser step per mini-batch on a batch of groups; returns the metrics named
        in ``STEP_METRICS``."""
        validate(groups)
        t0 = time.perf_counter()
        rows = self._rows(groups)
        minis = self._mini_batches(rows)
        sft = self.algo.loss == "sft"
        if len(minis) > 1 and not sft:  # PPO's pi_old, for the ratio that the clip bounds
            for r, lp in zip(rows, self.old_logprobs(rows)):
                r.old_logp = lp
        sums: dict[str, float] = {}
        grad_norms = []
        for mini in minis:
            _combine(sums, self._accumulate_gradients(mini))
            grad_norm, lr = self._optimizer_step()
            grad_norms.append(grad_norm)
        wall = time.perf_counter() - t0
        tok = max(sums["tokens"], 1.0)
        common = {
            "step": self.step_count, "loss": sums["loss"] / len(minis),
            "entropy": sums["entropy_sum"] / tok, "grad_norm": sum(grad_norms) / len(minis),
            "lr": lr, "tokens_per_s": sums["processed"] / wall, "step_s": wall,
            "samples": float(len(rows)), "completion_tokens": sums["tokens"]}
        if sft:
            return {**common, "nll": sums["nll_sum"] / tok}
        adv = torch.tensor([r.advantage for r in rows])
        return {
            **common,
            "clip_frac": sums["clipped_tokens"] / tok, "kl": sums["kl_sum"] / tok,
            "advantage_mean": float(adv.mean()),
            "advantage_std": float(adv.std()) if len(rows) > 1 else 0.0,
            "reward_mean": float(np.mean([s.reward for g in groups for s in g.samples])),
            "is_weight_mean": sums["is_weight_sum"] / tok,
            "is_weight_min": sums["is_weight_min"],
            "is_weight_max_raw": sums["is_ratio_max"],
            "is_truncated_frac": sums["is_truncated_tokens"] / tok,
        }

    def _rows(self, groups: list[TrainGroup]) -> list[_Row]:
        advs = ([[1.0] * len(g.samples) for g in groups] if self.algo.loss == "sft"
                else advantages_for(groups, self.algo.estimator))  # sft: every row counts once
        return [_Row(list(s.prompt_ids) + list(s.completion_ids), len(s.prompt_ids),
                     list(s.behaviour_logprobs), float(a))
                for g, adv in zip(groups, advs) for s, a in zip(g.samples, adv)]

    def _mini_batches(self, rows: list[_Row]) -> list[list[_Row]]:
        """``mini_batches`` interleaved slices of the rows, one optimiser step each (fewer when
        a rank has fewer rows: every rank must take as many steps)."""
        n = min(self.cfg.mini_batches, len(rows))
        if self.world_size > 1:
            from .distributed import all_reduce

            (least,) = all_reduce([float(n)], op="min")
            n = int(least)
        return [rows[i::n] for i in range(n)]

    def micro_batches(self, rows: list[_Row]) -> list[list[_Row]]:
        """Pack rows (longest first) so that padded tokens per micro-batch stay within the
        budget; a row longer than the budget goes alone."""
        order = sorted(rows, key=lambda r: len(r.ids), reverse=True)
        out: list[list[_Row]] = []
        cur: list[_Row] = []
        for r in order:
            width = len(cur[0].ids) if cur else len(r.ids)
            if cur and (len(cur) + 1) * width > self.cfg.micro_batch_tokens:
                out.append(cur)
                cur = []
            cur.append(r)
        if cur:
            out.append(cur)
        return out

    def _passes(self, rows: list[_Row]) -> list[tuple[list[_Row], float]]:
        """The rows' micro-batches, each with the weight of its pass. Under FSDP every rank
        must run as many forward and backward passes as the busiest one; the extra passes
        repeat a micro-batch with weight zero."""
        mbs = self.micro_batches(rows)
        weights = [1.0] * len(mbs)
        if self.world_size > 1:
            from .distributed import all_reduce

            (most,) = all_reduce([float(len(mbs))], op="max")
            extra = int(most) - len(mbs)
            mbs, weights = mbs + [mbs[0]] * extra, weights + [0.0] * extra
        return list(zip(mbs, weights))

    @torch.no_grad()
    def old_logprobs(self, rows: list[_Row]) -> list[torch.Tensor]:
        """Each row's completion logprobs under the current policy, in the rows' order."""
        out: dict[int, torch.Tensor] = {}
        for mb, _ in self._passes(rows):
            logp, _, _ = self._score(self.policy, mb, with_entropy=False)
            for b, r in enumerate(mb):
                out[id(r)] = logp[b, : r.completion_len]
        return [out[id(r)] for r in rows]

    def _accumulate_gradients(self, mini: list[_Row]) -> dict[str, float]:
        """Forward and backward passes over a mini-batch's micro-batches, adding up the
        gradient of the mini-batch's loss; returns the summed metrics of ``policy_loss``."""
        total_tokens = float(sum(r.completion_len for r in mini))
        total_seqs = float(len(mini))
        if self.world_size > 1:
            from .distributed import all_reduce

            total_tokens, total_seqs = all_reduce([total_tokens, total_seqs])
        sums: dict[str, float] = {}
        for mb, weight in self._passes(mini):
            loss, metrics = self._loss(mb, total_tokens, int(total_seqs))
            # FSDP averages gradients over ranks; the denominators above are global
            (loss * self.world_size * weight).backward()
            if weight:
                _combine(sums, {**metrics, "loss": float(loss.detach()),
                                "processed": float(sum(len(r.ids) for r in mb))})
        return sums

    def _loss(self, mb: list[_Row], total_tokens: float, total_seqs: int
              ) -> tuple[torch.Tensor, dict[str, float]]:
        algo = self.algo
        if algo.loss == "sft":  # the model's own distribution, not the sampler's temperature
            logp, entropy, mask = self._score(self.policy, mb, with_entropy=True,
                                              temperature=1.0)
            loss, metrics = losses.sft_loss(logp, mask, total_tokens=total_tokens)
            metrics["entropy_sum"] = float((entropy * mask).sum())
            return loss, metrics
        logp, entropy, mask = self._score(self.policy, mb, with_entropy=True)
        old = logp.detach() if mb[0].old_logp is None else self._padded(
            [r.old_logp for r in mb], logp)
        behaviour = self._padded([torch.tensor(r.behaviour) for r in mb], logp)
        adv = torch.tensor([r.advantage for r in mb], device=self.device)
        ref = None
        if self.ref_model is not None:
            with torch.no_grad():
                ref, _, _ = self._score(self.ref_model, mb, with_entropy=False)
        loss, metrics = losses.policy_loss(
            logp, old, behaviour, adv, mask, clip_low=algo.clip_low, clip_high=algo.clip_high,
            tis_cap=algo.tis_cap, aggregation=algo.aggregation, norm_tokens=algo.norm_tokens,
            kl_coef=algo.kl_coef, kl_kind=algo.kl_kind, ref_logp_B_T=ref,
            total_tokens=total_tokens, total_seqs=total_seqs)
        metrics["entropy_sum"] = float((entropy * mask).sum())
        return loss, metrics

    def _padded(self, rows_T: list[torch.Tensor], like_B_T: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(like_B_T, requires_grad=False)
        for b, v in enumerate(rows_T):
            out[b, : len(v)] = v
        return out

    def _score(self, model: TokenScores, mb: list[_Row], with_entropy: bool,
               temperature: float | None = None
               ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Per-token logprobs [B, Cmax] of each row's completion (at ``temperature``, else the
        sampler's), the entropy there (or None) and the mask of real tokens."""
        B, L = len(mb), max(len(r.ids) for r in mb)
        C = max(r.completion_len for r in mb)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((B, L), pad, dtype=torch.long)
        attn = torch.zeros((B, L), dtype=torch.long)
        rows_i, cols_i, cpos = [], [], []
        for b, r in enumerate(mb):
            ids[b, : len(r.ids)] = torch.tensor(r.ids)
            attn[b, : len(r.ids)] = 1
            rows_i += [b] * r.completion_len
            cols_i += list(range(r.prompt_len - 1, len(r.ids) - 1))
            cpos += list(range(r.completion_len))
        ids, attn = ids.to(self.device), attn.to(self.device)
        at = (torch.tensor(rows_i, device=self.device), torch.tensor(cpos, device=self.device))
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            lp, ent = model(ids, attn, at[0], torch.tensor(cols_i, device=self.device),
                            with_entropy, temperature)
        zeros = torch.zeros((B, C), device=self.device)
        logp = zeros.index_put(at, lp)
        mask = zeros.index_put(at, torch.ones_like(lp))
        return logp, (zeros.index_put(at, ent) if ent is not None else None), mask

    def _optimizer_step(self) -> tuple[float, float]:
        """Clip the accumulated gradient and step the optimiser and the schedule; returns the
        gradient's norm before clipping and the learning rate used."""
        norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.cfg.max_grad_norm)
        if self.world_size > 1:  # the norm of sharded gradients is a DTensor
            norm = norm.full_tensor()
        grad_norm = float(norm)
        if not math.isfinite(grad_norm):
            self.optimizer.zero_grad(set_to_none=True)
            raise BatchError(f"non-finite gradient norm {grad_norm}; step skipped")
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step_count += 1
        return grad_norm, lr

    # scoring without a step (tests, evaluation of the learner's own policy)

    @torch.no_grad()
    def logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        self.model.eval()
        try:
            lp, _, _ = self._score(self.policy, [_Row(list(prompt_ids) + list(completion_ids),
                                                     len(prompt_ids), [], 0.0)], False)
        finally:
            self.model.train()
        return lp[0, : len(completion_ids)].tolist()

    # weights and checkpoints

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """Hugging Face-named full tensors on the CPU, tied copies once (gathered from shards
        under FSDP; every rank must call it, rank 0 gets the tensors)."""
        if self.world_size > 1:
            from .distributed import full_state_dict

            tied = {"lm_head.weight"} if self.model.config.tie_word_embeddings else set()
            return full_state_dict(self.policy, prefix="lm.", drop=tied)
        out, seen = {}, set()
        for k, v in self.model.state_dict().items():
            if v.data_ptr() in seen:  # a tied copy (lm_head = embeddings): send it once
                continue
            seen.add(v.data_ptr())
            out[k] = v.detach().to("cpu")
        return out

    def save_checkpoint(self, path: str | Path, extra: dict[str, Any] | None = None) -> str:
        """A Hugging Face folder (safetensors, config, tokenizer) plus ``trainer_state.pt``
        (optimiser, scheduler, RNG, step, version) and ``rlce_state.json``."""
        path = Path(path)
        sd = self.full_state_dict()
        if self.rank == 0:
            path.mkdir(parents=True, exist_ok=True)
            model = self.model
            model.save_pretrained(path, state_dict=sd, safe_serialization=True)
            self.tokenizer.save_pretrained(path)
            (path / "rlce_state.json").write_text(json.dumps(
                {"step": self.step_count, "version": self.version, "learner": asdict(self.cfg),
                 "algo": asdict(self.algo), **(extra or {})}, indent=2, default=str))
        state = {"optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "step": self.step_count,
                 "version": self.version, "rng": {
                     "torch": torch.get_rng_state(), "python": random.getstate(),
                     "numpy": np.random.get_state(),
                     "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available()
                     else None}}
        if self.world_size > 1:
            torch.distributed.barrier()
        torch.save(state, path / f"trainer_state.rank{self.rank}.pt")
        return str(path)

    def _load_state(self, path: Path) -> None:
        f = path / f"trainer_state.rank{self.rank}.pt"
        if not f.is_file():
            raise FileNotFoundError(f"{f} is missing: {path} is not a learner checkpoint "
                                    f"for rank {self.rank} of {self.world_size}")
        state = torch.load(f, weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step_count, self.version = state["step"], state["version"]
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        if state["rng"]["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])

    def publish(self, actors: list[Any], version: int | None = None,
                transport: str = "auto") -> dict[str, Any]:
        """Send the current weights to every rollout engine as the next policy version
        (every rank calls it under FSDP; rank 0 sends)."""
        from .publish import publish_weights

        version = self.version + 1 if version is None else version
        sd = self.full_state_dict()
        if self.rank != 0:
            return {}
        report = publish_weights(sd, actors, version, transport)
        self.version = version
        del sd
        release_free_heap()  # the step's and the publish's large blocks, freed by now
        return report

    def get_step(self) -> int:
        return self.step_count

    def get_version(self) -> int:
        return self.version

    def set_version(self, version: int) -> None:
        self.version = version

    def set_loss(self, loss: str) -> None:
        """Switch the objective between steps (``pg`` or ``sft``: rounds of both)."""
        self.algo = dataclasses.replace(self.algo, loss=loss)

    def node_id(self) -> str | None:
        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None

    def node_ids(self) -> list[str | None]:
        """Where the learner runs (one node; a LearnerGroup lists its ranks')."""
        return [self.node_id()]

    def shutdown(self) -> None:
        """Free the optimizer state and the reference model (a LearnerGroup stops its
        actors)."""
        self.optimizer.state.clear()
        self.ref_model = None

    def pid(self) -> int:
        return os.getpid()


def _combine(acc: dict[str, float], metrics: dict[str, float]) -> None:
    """Add ``metrics`` into ``acc``: sums add, ``*_min`` and ``*_max`` keep the extreme."""
    for k, v in metrics.items():
        if k not in acc:
            acc[k] = v
        elif k.endswith("_min"):
            acc[k] = min(acc[k], v)
        elif k.endswith("_max"):
            acc[k] = max(acc[k], v)
        else:
            acc[k] += v


LearnerActor = ray.remote(Learner)
