"""Advantage estimators and losses against values computed by hand."""

import math

import pytest
import torch

from learner.losses import (
    advantages,
    aggregate,
    drgrpo_advantages,
    entropy_from_logits,
    grpo_advantages,
    kl_estimate,
    ppo_clip_loss,
    reinforce_pp_advantages,
    rloo_advantages,
    truncated_importance_weights,
)

R = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0]])


def test_grpo():
    # group 0: mean .5, sample std sqrt(1/3) = .57735; group 1: mean .75, std .5
    a = grpo_advantages(R, eps=0.0)
    s0 = math.sqrt(1 / 3)
    assert torch.allclose(a[0], torch.tensor([.5 / s0, -.5 / s0, -.5 / s0, .5 / s0]))
    assert torch.allclose(a[1], torch.tensor([.5, .5, .5, -1.5]))


def test_grpo_constant_group_has_zero_advantage():
    assert torch.equal(grpo_advantages(torch.ones(1, 4)), torch.zeros(1, 4))


def test_drgrpo():
    assert torch.allclose(drgrpo_advantages(R), torch.tensor([[.5, -.5, -.5, .5],
                                                              [.25, .25, .25, -.75]]))


def test_rloo():
    # sample 0 of group 1: 1 - mean(1, 1, 0) = 1/3; sample 3: 0 - 1 = -1
    a = rloo_advantages(R)
    assert torch.allclose(a[1], torch.tensor([1 / 3, 1 / 3, 1 / 3, -1.0]))
    assert torch.allclose(a[0], torch.tensor([2 / 3, -2 / 3, -2 / 3, 2 / 3]))
    with pytest.raises(ValueError, match="at least 2"):
        rloo_advantages(torch.ones(2, 1))


def test_reinforce_pp_normalises_over_the_batch():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0])  # mean .625
    std = math.sqrt(sum((x - .625) ** 2 for x in r.tolist()) / 7)
    a = reinforce_pp_advantages(r, eps=0.0)
    assert torch.allclose(a, (r - .625) / std)
    assert torch.allclose(advantages("reinforce_pp", R).flatten(), reinforce_pp_advantages(r))


def test_unknown_estimator():
    with pytest.raises(ValueError, match="unknown advantage estimator 'ppo'"):
        advantages("ppo", R)


def test_aggregations():
    v = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    m = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert aggregate(v, m, "token_mean").item() == pytest.approx(10 / 4)
    assert aggregate(v, m, "seq_mean").item() == pytest.approx((2 + 4) / 2)
    assert aggregate(v, m, "token_sum", norm_tokens=5).item() == pytest.approx(10 / (5 * 2))
    with pytest.raises(ValueError, match="norm_tokens"):
        aggregate(v, m, "token_sum")


def test_kl_estimators():
    logp = torch.tensor([math.log(0.5), math.log(0.2)])
    ref = torch.tensor([math.log(0.25), math.log(0.4)])
    assert torch.allclose(kl_estimate(logp, ref, "k1"), torch.tensor([math.log(2), math.log(.5)]))
    # k3 = r - log r - 1 with r = ref/pi: r = .5 -> .5 + log 2 - 1; r = 2 -> 2 - log 2 - 1
    assert torch.allclose(kl_estimate(logp, ref, "k3"),
                          torch.tensor([.5 + math.log(2) - 1, 1 - math.log(2)]))
    assert (kl_estimate(logp, ref, "k3") >= 0).all()


def test_truncated_importance_weights():
    old = torch.log(torch.tensor([0.5, 0.9]))
    mu = torch.log(torch.tensor([0.25, 0.9]))
    assert torch.allclose(truncated_importance_weights(old, mu, cap=1.5), torch.tensor([1.5, 1.0]))


def test_ppo_clip_higher_by_hand():
    # ratios 1.5 (A=+1), 0.5 (A=-1), 1.1 (A=+1); clip [0.8, 1.28]
    old = torch.zeros(3, 1)
    logp = torch.log(torch.tensor([[1.5], [0.5], [1.1]]))
    adv = torch.tensor([1.0, -1.0, 1.0])
    mask = torch.ones(3, 1)
    loss, m = ppo_clip_loss(logp, old, adv, mask, clip_low=0.2, clip_high=0.28)
    # per token: -min(1.5, 1.28) = -1.28; -min(-.5, -.8) = .8; -min(1.1, 1.1) = -1.1
    assert loss.item() == pytest.approx((-1.28 + 0.8 - 1.1) / 3)
    assert m["clip_frac"] == pytest.approx(2 / 3)
    # symmetric clipping would cut the first ratio at 1.2 instead
    loss_sym, _ = ppo_clip_loss(logp, old, adv, mask, clip_low=0.2, clip_high=0.2)
    assert loss_sym.item() == pytest.approx((-1.2 + 0.8 - 1.1) / 3)


def test_ppo_gradient_raises_logprob_of_positive_advantage():
    logp = torch.zeros(2, 2, requires_grad=True)
    loss, _ = ppo_clip_loss(logp, torch.zeros(2, 2), torch.tensor([1.0, -1.0]), torch.ones(2, 2))
    loss.backward()
    assert (logp.grad[0] < 0).all() and (logp.grad[1] > 0).all()  # descent raises row 0


def test_importance_weights_scale_the_loss():
    w = torch.tensor([[0.5]])
    loss, _ = ppo_clip_loss(torch.zeros(1, 1), torch.zeros(1, 1), torch.tensor([2.0]),
                            torch.ones(1, 1), is_weights_B_T=w)
    assert loss.item() == pytest.approx(-1.0)


def test_entropy():
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0]]])
    assert torch.allclose(entropy_from_logits(logits), torch.tensor([[math.log(4), 0.0]]),
                          atol=1e-6)
