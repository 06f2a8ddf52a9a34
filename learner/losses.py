"""Advantage estimators and policy-gradient losses as pure functions over tensors.

Shape suffixes: ``_B`` samples in a batch, ``_G`` groups, ``_N`` samples per group, ``_T``
tokens. Every loss returns ``(loss, metrics)``; metrics are detached floats.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

Aggregation = Literal["token_mean", "seq_mean", "token_sum"]
KLKind = Literal["k1", "k3"]


def grpo_advantages(rewards_G_N: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """GRPO (Shao et al. 2024): A_i = (r_i - mean(r)) / (std(r) + eps) within each group.
    ``std`` is the sample standard deviation (Bessel-corrected), as in the paper's code."""
    mean = rewards_G_N.mean(dim=1, keepdim=True)
    std = rewards_G_N.std(dim=1, keepdim=True) if rewards_G_N.shape[1] > 1 else 0.0
    return (rewards_G_N - mean) / (std + eps)


def drgrpo_advantages(rewards_G_N: torch.Tensor) -> torch.Tensor:
    """Dr. GRPO (Liu et al. 2025): A_i = r_i - mean(r), no division by the group's std
    (use it with ``token_sum`` aggregation, which removes the length bias too)."""
    return rewards_G_N - rewards_G_N.mean(dim=1, keepdim=True)


def rloo_advantages(rewards_G_N: torch.Tensor) -> torch.Tensor:
    """RLOO (Ahmadian et al. 2024): A_i = r_i - mean_{j != i} r_j, the leave-one-out
    baseline; equal to N/(N-1) * (r_i - mean(r))."""
    n = rewards_G_N.shape[1]
    if n < 2:
        raise ValueError("RLOO needs at least 2 samples per group")
    total = rewards_G_N.sum(dim=1, keepdim=True)
    return rewards_G_N - (total - rewards_G_N) / (n - 1)


def reinforce_pp_advantages(rewards_B: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """REINFORCE++ (Hu 2025): the reward normalised over the whole batch,
    A_i = (r_i - mean_batch(r)) / (std_batch(r) + eps); no per-group baseline."""
    return (rewards_B - rewards_B.mean()) / (rewards_B.std() + eps if rewards_B.numel() > 1
                                            else 1.0)


ESTIMATORS = {"grpo": grpo_advantages, "drgrpo": drgrpo_advantages, "rloo": rloo_advantages}
BATCH_ESTIMATORS = {"reinforce_pp": reinforce_pp_advantages}


def advantages(estimator: str, rewards_G: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per-sample advantages for a batch of groups, one tensor of rewards per group (groups may
    differ in size), by estimator name: GRPO, Dr. GRPO and RLOO within each group, REINFORCE++
    over the whole batch."""
    if estimator in BATCH_ESTIMATORS:
        flat = BATCH_ESTIMATORS[estimator](torch.cat(list(rewards_G)))
        return list(flat.split([len(r) for r in rewards_G]))
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown advantage estimator {estimator!r}; valid: "
                         f"{sorted([*ESTIMATORS, *BATCH_ESTIMATORS])}")
    return [ESTIMATORS[estimator](r.unsqueeze(0))[0] for r in rewards_G]


def aggregate(values_B_T: torch.Tensor, mask_B_T: torch.Tensor, how: Aggregation, *,
              norm_tokens: float | None, total_tokens: float | None = None,
              total_seqs: int | None = None) -> torch.Tensor:
    """Reduce per-token values to a scalar.

    token_mean: sum over every token / number of tokens (DAPO's token-level loss);
    seq_mean:   mean over each sequence's tokens, then mean over sequences (GRPO's original);
    token_sum:  sum over every token / a constant (``norm_tokens``, e.g. the generation
                budget), so neither length nor batch composition rescales a token (Dr. GRPO).
    ``total_tokens`` / ``total_seqs`` replace this batch's own counts in the denominators, so
    that micro-batches of one step add up to the loss of the whole step.
    """
    mask = mask_B_T.to(values_B_T.dtype)
    if how == "token_mean":
        return (values_B_T * mask).sum() / (total_tokens or mask.sum().clamp(min=1))
    seqs = total_seqs or values_B_T.shape[0]
    if how == "seq_mean":
        per_seq = (values_B_T * mask).sum(1) / mask.sum(1).clamp(min=1)
        return per_seq.sum() / seqs
    if how == "token_sum":
        if not norm_tokens:
            raise ValueError("token_sum aggregation needs norm_tokens (a constant)")
        return (values_B_T * mask).sum() / (norm_tokens * seqs)
    raise ValueError(f"unknown aggregation {how!r}; valid: token_mean, seq_mean, token_sum")


def kl_estimate(logp_B_T: torch.Tensor, ref_logp_B_T: torch.Tensor, kind: KLKind
                ) -> torch.Tensor:
    """Per-token estimates of KL(pi || pi_ref) from samples of pi (Schulman 2020):
    k1 = log pi - log pi_ref (unbiased, high variance, can be negative);
    k3 = exp(log pi_ref - log pi) - (log pi_ref - log pi) - 1 (unbiased, always >= 0)."""
    if kind == "k1":
        return logp_B_T - ref_logp_B_T
    if kind == "k3":
        d = ref_logp_B_T - logp_B_T
        return torch.exp(d) - d - 1
    raise ValueError(f"unknown KL estimator {kind!r}; valid: k1, k3")


def policy_loss(logp_B_T: torch.Tensor, old_logp_B_T: torch.Tensor,
                behaviour_logp_B_T: torch.Tensor, adv_B: torch.Tensor, mask_B_T: torch.Tensor,
                *, clip_low: float, clip_high: float, tis_cap: float | None,
                aggregation: Aggregation, norm_tokens: float | None, kl_coef: float,
                kl_kind: KLKind, ref_logp_B_T: torch.Tensor | None = None,
                total_tokens: float | None = None, total_seqs: int | None = None
                ) -> tuple[torch.Tensor, dict[str, float]]:
    """The learner's objective for completion tokens y_t sampled by the rollout engine's policy
    mu, with pi the policy being trained, pi_old the same policy before this batch's updates
    and pi_ref a frozen reference:

        L = agg_t( -w_t * min(rho_t * A, clip(rho_t, 1 - clip_low, 1 + clip_high) * A)
                   + kl_coef * KL_t )
        rho_t = pi(y_t) / pi_old(y_t)               PPO's ratio, clipped asymmetrically
                                                    (DAPO's clip-higher)
        w_t   = min(pi_old(y_t) / mu(y_t), tis_cap) truncated importance sampling toward the
                                                    engine's samples; 1 when tis_cap is None
        KL_t  = kl_estimate(log pi, log pi_ref, kl_kind)  only with ``ref_logp_B_T``

    ``agg`` is ``aggregate(..., aggregation, ...)``. With one update per batch, pi_old is pi
    (detached): rho = 1, the clip is inert and the loss is REINFORCE with truncated IS.

    Metrics add up over micro-batches and ranks: sums over the masked tokens (``tokens``,
    ``clipped_tokens``, ``kl_sum``, ``is_weight_sum``, ``is_truncated_tokens``) and extremes
    (``is_weight_min``, ``is_ratio_max``, the latter of pi_old / mu before truncation).
    """
    if kl_coef and ref_logp_B_T is None:
        raise ValueError(f"kl_coef={kl_coef} needs the reference policy's ref_logp_B_T")
    adv = adv_B.unsqueeze(1).to(logp_B_T.dtype)
    ratio = torch.exp(logp_B_T - old_logp_B_T)
    unclipped = ratio * adv
    clipped = ratio.clamp(1 - clip_low, 1 + clip_high) * adv
    per_token = -torch.minimum(unclipped, clipped)
    is_ratio = torch.exp(old_logp_B_T - behaviour_logp_B_T).detach()
    is_weight = is_ratio.clamp(max=tis_cap) if tis_cap is not None else None
    if is_weight is not None:
        per_token = per_token * is_weight
    kl = None
    if ref_logp_B_T is not None:
        kl = kl_estimate(logp_B_T, ref_logp_B_T, kl_kind)
        per_token = per_token + kl_coef * kl
    loss = aggregate(per_token, mask_B_T, aggregation, norm_tokens=norm_tokens,
                     total_tokens=total_tokens, total_seqs=total_seqs)
    with torch.no_grad():
        m = mask_B_T.bool()
        weights = is_weight[m] if is_weight is not None else torch.ones_like(is_ratio[m])
        metrics = {
            "tokens": float(m.sum()),
            "clipped_tokens": float(((clipped != unclipped) & m).sum()),
            "kl_sum": float(kl[m].sum()) if kl is not None else 0.0,
            "is_weight_sum": float(weights.sum()),
            "is_truncated_tokens": float((is_ratio[m] > tis_cap).sum())
            if tis_cap is not None else 0.0,
            "is_weight_min": float(weights.min()),
            "is_ratio_max": float(is_ratio[m].max()),
        }
    return loss, metrics


def sft_loss(logp_B_T: torch.Tensor, mask_B_T: torch.Tensor, *,
             total_tokens: float | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Rejection-sampling fine-tuning: the mean negative log-likelihood of the kept
    completions' tokens under pi (scored at temperature 1),

        L = -sum_t log pi(y_t) / tokens

    over every masked token of the step (``total_tokens``, so that micro-batches add up to
    the step's loss). Metrics: ``tokens`` and ``nll_sum`` (sums over the masked tokens)."""
    mask = mask_B_T.to(logp_B_T.dtype)
    nll = -(logp_B_T * mask).sum()
    loss = nll / (total_tokens or mask.sum().clamp(min=1))
    return loss, {"tokens": float(mask.sum()), "nll_sum": float(nll.detach())}


def entropy_from_logits(logits_B_T_V: torch.Tensor) -> torch.Tensor:
    """Per-token entropy of the softmax over the vocabulary."""
    logp = logits_B_T_V.float().log_softmax(-1)
    return -(logp.exp() * logp).sum(-1)
