"""The learner: a transformers causal LM trained with a clipped policy-gradient loss on groups
of scored samples, checkpointed as Hugging Face folders, publishing weights to rollout engines.
``Learner`` is the body; ``LearnerActor`` the Ray actor around it."""

from __future__ import annotations

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

from . import losses


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


@dataclass
class _Row:
    ids: list[int]
    prompt_len: int
    behaviour: list[float]
    advantage: float


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


class SelectedLogits(torch.nn.Module):
    """The causal LM, returning logits only at the given (row, position) pairs: the full
    [batch, length, vocabulary] logits never exist. A module of its own so that FSDP2's root
    hooks run around the whole computation."""

    def __init__(self, lm: torch.nn.Module) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, ids: torch.Tensor, attn: torch.Tensor, rows: torch.Tensor,
                cols: torch.Tensor) -> torch.Tensor:
        hidden = self.lm.get_decoder()(input_ids=ids, attention_mask=attn).last_hidden_state
        return self.lm.get_output_embeddings()(hidden[rows, cols])


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
        self.policy = SelectedLogits(self.model)
        self.ref_model = None
        if algo.kl_coef > 0:
            ref = AutoModelForCausalLM.from_pretrained(
                resolve_model(model), dtype=torch.float32).to(self.device).eval()
            ref.requires_grad_(False)
            self.ref_model = SelectedLogits(ref)
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

    def _rows(self, groups: list[TrainGroup]) -> list[_Row]:
        rewards = [[float(s.reward) for s in g.samples] for g in groups]
        adv: list[list[float]] = []
        if self.algo.estimator == "reinforce_pp":
            flat = torch.tensor([r for rs in rewards for r in rs], dtype=torch.float64)
            a = losses.reinforce_pp_advantages(flat).tolist()
            it = iter(a)
            adv = [[next(it) for _ in rs] for rs in rewards]
        else:
            for g, rs in zip(groups, rewards):
                if g.advantages is not None:
                    adv.append(list(g.advantages))
                else:
                    adv.append(losses.advantages(self.algo.estimator,
                                                 torch.tensor([rs], dtype=torch.float64))[0]
                               .tolist())
        rows = []
        for g, a in zip(groups, adv):
            for s, ai in zip(g.samples, a):
                rows.append(_Row(list(s.prompt_ids) + list(s.completion_ids), len(s.prompt_ids),
                                 list(s.behaviour_logprobs), float(ai)))
        return rows

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

    def _forward(self, model, mb: list[_Row], with_entropy: bool):
        """Per-token logprobs [B, Cmax] of each row's completion (and entropy), a mask."""
        B, L = len(mb), max(len(r.ids) for r in mb)
        C = max(len(r.ids) - r.prompt_len for r in mb)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((B, L), pad, dtype=torch.long)
        attn = torch.zeros((B, L), dtype=torch.long)
        rows_i, cols_i, cpos = [], [], []
        for b, r in enumerate(mb):
            ids[b, : len(r.ids)] = torch.tensor(r.ids)
            attn[b, : len(r.ids)] = 1
            n = len(r.ids) - r.prompt_len
            rows_i += [b] * n
            cols_i += list(range(r.prompt_len - 1, len(r.ids) - 1))
            cpos += list(range(n))
        ids, attn = ids.to(self.device), attn.to(self.device)
        rows_t = torch.tensor(rows_i, device=self.device)
        cols_t = torch.tensor(cols_i, device=self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            logits = model(ids, attn, rows_t, cols_t).float()
        logits = logits / self.algo.temperature
        targets = ids[rows_t, cols_t + 1]
        lp_flat = logits.log_softmax(-1).gather(1, targets.unsqueeze(1)).squeeze(1)
        shape = (B, C)
        cpos_t = torch.tensor(cpos, device=self.device)
        logp = torch.zeros(shape, device=self.device).index_put((rows_t, cpos_t), lp_flat)
        mask = torch.zeros(shape, device=self.device).index_put(
            (rows_t, cpos_t), torch.ones_like(lp_flat))
        ent = None
        if with_entropy:
            with torch.no_grad():
                e = losses.entropy_from_logits(logits.detach())
                ent = torch.zeros(shape, device=self.device).index_put((rows_t, cpos_t), e)
        return logp, mask, ent

    def step(self, groups: list[TrainGroup]) -> dict[str, float]:
        """One optimiser step per mini-batch on a batch of groups; returns metrics."""
        validate(groups)
        t0 = time.perf_counter()
        cfg, algo = self.cfg, self.algo
        rows = self._rows(groups)
        adv_all = torch.tensor([r.advantage for r in rows])
        n_mini = min(cfg.mini_batches, len(rows))
        minis = [rows[i::n_mini] for i in range(n_mini)]
        old: dict[int, torch.Tensor] = {}
        if n_mini > 1:  # the policy before this batch's updates, for the PPO ratio
            with torch.no_grad():
                for mb in self.micro_batches(rows):
                    lp, _, _ = self._forward(self.policy, mb, False)
                    for b, r in enumerate(mb):
                        old[id(r)] = lp[b]
        sums: dict[str, float] = {k: 0.0 for k in (
            "loss", "kl", "entropy", "clipped_tokens", "tokens", "is_sum", "is_truncated",
            "grad_norm")}
        is_min, is_max, processed = float("inf"), 0.0, 0
        for mini in minis:
            total_tokens = float(sum(len(r.ids) - r.prompt_len for r in mini))
            total_seqs = float(len(mini))
            mbs = self.micro_batches(mini)
            weights = [1.0] * len(mbs)
            if self.world_size > 1:
                from .distributed import all_reduce

                total_tokens, total_seqs = all_reduce([total_tokens, total_seqs])
                # every rank must run as many forward/backward passes as the busiest one;
                # the extra passes repeat a micro-batch with weight zero
                (most,) = all_reduce([float(len(mbs))], op="max")
                while len(mbs) < int(most):
                    mbs.append(mbs[0])
                    weights.append(0.0)
            for mb, weight in zip(mbs, weights):
                logp, mask, ent = self._forward(self.policy, mb, True)
                processed += sum(len(r.ids) for r in mb) if weight else 0
                old_lp = (torch.stack([old[id(r)][: logp.shape[1]] for r in mb])
                          if old else logp.detach())
                beh = torch.zeros_like(logp)
                for b, r in enumerate(mb):
                    beh[b, : len(r.behaviour)] = torch.tensor(r.behaviour)
                adv = torch.tensor([r.advantage for r in mb], device=self.device)
                w = None
                if algo.tis_cap:
                    raw = torch.exp(old_lp - beh)
                    w = losses.truncated_importance_weights(old_lp, beh, algo.tis_cap)
                    m = mask.bool()
                    if weight:
                        sums["is_sum"] += float(w[m].sum())
                        sums["is_truncated"] += float((raw[m] > algo.tis_cap).sum())
                        is_min = min(is_min, float(w[m].min()))
                        is_max = max(is_max, float(raw[m].max()))
                loss, m_pg = losses.ppo_clip_loss(
                    logp, old_lp, adv, mask, clip_low=algo.clip_low, clip_high=algo.clip_high,
                    aggregation=algo.aggregation, norm_tokens=algo.norm_tokens,
                    is_weights_B_T=w,
                    total_tokens=total_tokens, total_seqs=int(total_seqs))
                if self.ref_model is not None:
                    with torch.no_grad():
                        ref_lp, _, _ = self._forward(self.ref_model, mb, False)
                    kl = losses.kl_estimate(logp, ref_lp, algo.kl_kind)
                    kl_term = losses.aggregate(kl, mask, algo.aggregation, algo.norm_tokens,
                                               total_tokens, int(total_seqs))
                    loss = loss + algo.kl_coef * kl_term
                    sums["kl"] += float((kl.detach() * mask).sum()) * weight
                # FSDP averages gradients over ranks; the denominators above are global
                (loss * self.world_size * weight).backward()
                if weight == 0.0:
                    continue
                sums["loss"] += float(loss.detach())
                sums["entropy"] += float((ent * mask).sum())
                sums["clipped_tokens"] += m_pg["clipped_tokens"]
                sums["tokens"] += m_pg["tokens"]
            grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(),
                                                       cfg.max_grad_norm)
            grad_norm = float(grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor")
                              else grad_norm)
            if not math.isfinite(grad_norm):
                self.optimizer.zero_grad(set_to_none=True)
                raise BatchError(f"non-finite gradient norm {grad_norm}; step skipped")
            sums["grad_norm"] += grad_norm / len(minis)
            lr = self.optimizer.param_groups[0]["lr"]
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step_count += 1
        wall = time.perf_counter() - t0
        tok = max(sums["tokens"], 1.0)
        return {
            "step": self.step_count, "loss": sums["loss"] / len(minis),
            "clip_frac": sums["clipped_tokens"] / tok, "kl": sums["kl"] / tok,
            "entropy": sums["entropy"] / tok, "grad_norm": sums["grad_norm"], "lr": lr,
            "tokens_per_s": processed / wall, "step_s": wall,
            "samples": float(len(rows)), "completion_tokens": sums["tokens"],
            "advantage_mean": float(adv_all.mean()), "advantage_std": float(adv_all.std())
            if len(rows) > 1 else 0.0,
            "reward_mean": float(np.mean([s.reward for g in groups for s in g.samples])),
            "is_weight_mean": sums["is_sum"] / tok if algo.tis_cap else 1.0,
            "is_weight_min": is_min if algo.tis_cap else 1.0,
            "is_weight_max_raw": is_max if algo.tis_cap else 1.0,
            "is_truncated_frac": sums["is_truncated"] / tok if algo.tis_cap else 0.0,
        }

    # scoring without a step (tests, evaluation of the learner's own policy)

    @torch.no_grad()
    def logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        self.model.eval()
        try:
            lp, _, _ = self._forward(self.policy, [_Row(list(prompt_ids) + list(completion_ids),
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
        return report

    def get_step(self) -> int:
        return self.step_count

    def get_version(self) -> int:
        return self.version

    def set_version(self, version: int) -> None:
        self.version = version

    def node_id(self) -> str | None:
        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None

    def node_ids(self) -> list[str | None]:
        """Where the learner runs (one node; a LearnerGroup lists its ranks')."""
        return [self.node_id()]

    def shutdown(self) -> None:
        """Free the model and optimizer state (a LearnerGroup stops its actors)."""
        self.optimizer.state.clear()
        self.ref_model = None

    def pid(self) -> int:
        return os.getpid()


LearnerActor = ray.remote(Learner)
