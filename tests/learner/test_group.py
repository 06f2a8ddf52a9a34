"""Merging the step metrics of a LearnerGroup's ranks, against values computed by hand."""

from __future__ import annotations

import math

import pytest

from learner.group import merge_rank_metrics
from learner.learner import STEP_METRICS

pytestmark = pytest.mark.slow  # fast, but learner.group imports ray (not in the fast tier)

# rank 0: 4 samples, 30 completion tokens, 200 tokens processed in 2 s;
# rank 1: 2 samples, 10 completion tokens, 200 tokens processed in 4 s
RANK0 = {"step": 3, "lr": 1e-3, "grad_norm": 0.7, "loss": 0.3, "samples": 4.0,
         "completion_tokens": 30.0, "clip_frac": 0.1, "kl": 0.02, "entropy": 2.0,
         "is_weight_mean": 1.0, "is_truncated_frac": 0.0, "reward_mean": 0.5,
         "advantage_mean": 0.0, "advantage_std": 1.0, "is_weight_min": 0.8,
         "is_weight_max_raw": 1.5, "step_s": 2.0, "tokens_per_s": 100.0}
RANK1 = {"step": 3, "lr": 1e-3, "grad_norm": 0.7, "loss": -0.1, "samples": 2.0,
         "completion_tokens": 10.0, "clip_frac": 0.3, "kl": 0.06, "entropy": 1.0,
         "is_weight_mean": 0.6, "is_truncated_frac": 0.4, "reward_mean": 1.0,
         "advantage_mean": 0.5, "advantage_std": 0.5, "is_weight_min": 0.9,
         "is_weight_max_raw": 2.5, "step_s": 4.0, "tokens_per_s": 50.0}


def test_every_metric_merges_by_hand():
    assert RANK0.keys() == STEP_METRICS.keys() - {"nll"}  # nll: algo.loss=sft's
    m = merge_rank_metrics([RANK0, RANK1])
    assert m == pytest.approx({
        "step": 3, "lr": 1e-3, "grad_norm": 0.7,  # the same on every rank
        "loss": 0.2, "samples": 6.0, "completion_tokens": 40.0,
        # weighted by completion tokens, 30 and 10
        "clip_frac": (0.1 * 30 + 0.3 * 10) / 40,  # 0.15
        "kl": (0.02 * 30 + 0.06 * 10) / 40,  # 0.03
        "entropy": (2.0 * 30 + 1.0 * 10) / 40,  # 1.75
        "is_weight_mean": (30 + 6) / 40,  # 0.9
        "is_truncated_frac": 4 / 40,  # 0.1
        # weighted by samples, 4 and 2
        "reward_mean": (2 + 2) / 6, "advantage_mean": (0 + 1) / 6,
        # pooled: sum of squares per rank (n-1) s^2 + n m^2 = 3 + 0 and 0.25 + 0.5 = 3.75;
        # about the pooled mean 1/6: 3.75 - 6/36 = 43/12; over n - 1 = 5: 43/60
        "advantage_std": math.sqrt(43 / 60),
        "is_weight_min": 0.8, "is_weight_max_raw": 2.5,
        "step_s": 4.0,  # the slowest rank's
        "tokens_per_s": (200 + 200) / 4.0,
    })


def test_sft_steps_merge_their_own_metrics():
    sft = [{"step": 1, "lr": 1e-3, "grad_norm": 0.5, "loss": 0.4, "samples": 2.0,
            "completion_tokens": 30.0, "entropy": 1.0, "step_s": 2.0, "tokens_per_s": 10.0,
            "nll": 0.5},
           {"step": 1, "lr": 1e-3, "grad_norm": 0.5, "loss": 0.1, "samples": 1.0,
            "completion_tokens": 10.0, "entropy": 2.0, "step_s": 1.0, "tokens_per_s": 10.0,
            "nll": 0.9}]
    m = merge_rank_metrics(sft)
    assert m.keys() == sft[0].keys()
    assert m["nll"] == pytest.approx((0.5 * 30 + 0.9 * 10) / 40)  # 0.6
    assert m["loss"] == pytest.approx(0.5) and m["samples"] == 3.0


def test_one_rank_is_unchanged():
    assert merge_rank_metrics([RANK0]) == pytest.approx(RANK0)
