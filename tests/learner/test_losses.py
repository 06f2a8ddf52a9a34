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
    policy_loss,
    reinforce_pp_advantages,
    rloo_advantages,
    sft_loss,
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
    assert torch.allclose(torch.cat(advantages("reinforce_pp", list(R))),
                          reinforce_pp_advantages(r))


def test_advantages_take_groups_of_different_sizes():
    a = advantages("drgrpo", [torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0, 0.0, 0.0])])
    assert [x.tolist() for x in a] == [[0.5, -0.5], [0.5, 0.5, -0.5, -0.5]]
    # over the batch: mean 1/2, sample std sqrt(6 * 1/4 / 5) = sqrt(0.3)
    a = advantages("reinforce_pp", [torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0, 0.0, 0.0])])
    assert [len(x) for x in a] == [2, 4]
    assert torch.allclose(torch.cat(a), torch.tensor([1.0, -1, 1, 1, -1, -1]) * 0.5 / math.sqrt(0.3),
                          atol=1e-5)


def test_unknown_estimator():
    with pytest.raises(ValueError, match="unknown advantage estimator 'ppo'"):
        advantages("ppo", R)


def test_aggregations():
    v = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    m = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert aggregate(v, m, "token_mean", norm_tokens=None).item() == pytest.approx(10 / 4)
    assert aggregate(v, m, "seq_mean", norm_tokens=None).item() == pytest.approx((2 + 4) / 2)
    assert aggregate(v, m, "token_sum", norm_tokens=5).item() == pytest.approx(10 / (5 * 2))
    with pytest.raises(ValueError, match="norm_tokens"):
        aggregate(v, m, "token_sum", norm_tokens=None)


def test_kl_estimators():
    logp = torch.tensor([math.log(0.5), math.log(0.2)])
    ref = torch.tensor([math.log(0.25), math.log(0.4)])
    assert torch.allclose(kl_estimate(logp, ref, "k1"), torch.tensor([math.log(2), math.log(.5)]))
    # k3 = r - log r - 1 with r = ref/pi: r = .5 -> .5 + log 2 - 1; r = 2 -> 2 - log 2 - 1
    assert torch.allclose(kl_estimate(logp, ref, "k3"),
                          torch.tensor([.5 + math.log(2) - 1, 1 - math.log(2)]))
    assert (kl_estimate(logp, ref, "k3") >= 0).all()


# the configured options, spelled out once for the tests below
OPTIONS = {"clip_low": 0.2, "clip_high": 0.28, "tis_cap": 2.0, "aggregation": "token_mean",
           "norm_tokens": None, "kl_coef": 0.0, "kl_kind": "k1"}


def test_policy_loss_by_hand_2x3():
    # ratios pi/pi_old and IS ratios pi_old/mu per token; the third token of row 1 is padding
    # (its extreme values must count nowhere). Clip range [0.8, 1.28], tis_cap 2.
    rho = torch.tensor([[1.5, 1.0, 0.5], [0.5, 1.25, 3.0]])
    is_ratio = torch.tensor([[1.0, 4.0, 0.5], [1.0, 1.0, 10.0]])
    old = torch.zeros(2, 3)
    logp = torch.log(rho).requires_grad_()
    behaviour = -torch.log(is_ratio)
    adv = torch.tensor([1.0, -2.0])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    # KL (k1) = logp - ref: 0.5 on row 0, +1 and -1 on row 1
    ref = logp.detach() - torch.tensor([[0.5, 0.5, 0.5], [1.0, -1.0, 7.0]])
    loss, m = policy_loss(logp, old, behaviour, adv, mask, **{**OPTIONS, "kl_coef": 0.1},
                          ref_logp_B_T=ref)
    # w = min(is_ratio, 2): [1, 2, .5], [1, 1]
    # row 0 (A = 1):  -min(1.5, 1.28) * 1 = -1.28;  -min(1, 1) * 2 = -2;  -min(.5, .8) * .5 = -.25
    # row 1 (A = -2): -min(-1, -1.6) * 1 = 1.6;     -min(-2.5, -2.5) * 1 = 2.5
    # KL: 0.1 * (0.5 + 0.5 + 0.5 + 1 - 1) = 0.15;  token mean over 5 tokens:
    # (-1.28 - 2 - .25 + 1.6 + 2.5 + 0.15) / 5 = 0.72 / 5 = 0.144
    assert loss.item() == pytest.approx(0.144, abs=1e-6)
    assert m == pytest.approx({"tokens": 5, "clipped_tokens": 3, "kl_sum": 1.5,
                               "is_weight_sum": 5.5, "is_truncated_tokens": 1,
                               "is_weight_min": 0.5, "is_ratio_max": 4.0})
    # d/dlogp: -w * A * rho where the unclipped term is the minimum, 0 where the clipped one
    # is (row 0 token 0, row 1 token 0), plus 0.1 from KL; divided by 5 tokens
    loss.backward()
    assert torch.allclose(logp.grad, torch.tensor([[0.1, -1.9, -0.15], [0.1, 2.6, 0.0]]) / 5,
                          atol=1e-6)


def test_policy_loss_aggregations_by_hand():
    # the same per-token losses without KL: row 0 sums to -3.53 over 3 tokens, row 1 to 4.1
    # over 2
    rho = torch.tensor([[1.5, 1.0, 0.5], [0.5, 1.25, 3.0]])
    args = (torch.log(rho), torch.zeros(2, 3), -torch.log(torch.tensor(
        [[1.0, 4.0, 0.5], [1.0, 1.0, 10.0]])), torch.tensor([1.0, -2.0]),
        torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]))
    loss, _ = policy_loss(*args, **OPTIONS)
    assert loss.item() == pytest.approx(0.57 / 5, abs=1e-6)
    loss, _ = policy_loss(*args, **{**OPTIONS, "aggregation": "seq_mean"})
    assert loss.item() == pytest.approx((-3.53 / 3 + 4.1 / 2) / 2, abs=1e-6)
    loss, _ = policy_loss(*args, **{**OPTIONS, "aggregation": "token_sum", "norm_tokens": 4})
    assert loss.item() == pytest.approx(0.57 / (4 * 2), abs=1e-6)
    # the denominators of the whole step replace the micro-batch's own
    loss, _ = policy_loss(*args, **OPTIONS, total_tokens=10)
    assert loss.item() == pytest.approx(0.57 / 10, abs=1e-6)


def test_truncated_importance_weights():
    old = torch.log(torch.tensor([[0.5, 0.9]]))
    mu = torch.log(torch.tensor([[0.25, 0.9]]))
    _, m = policy_loss(old, old, mu, torch.tensor([1.0]), torch.ones(1, 2),
                       **{**OPTIONS, "tis_cap": 1.5})
    # pi_old / mu = 2 and 1; capped at 1.5: weights 1.5 and 1
    assert m["is_weight_sum"] == pytest.approx(2.5) and m["is_weight_min"] == pytest.approx(1.0)
    assert m["is_ratio_max"] == pytest.approx(2.0) and m["is_truncated_tokens"] == 1
    _, m = policy_loss(old, old, mu, torch.tensor([1.0]), torch.ones(1, 2),
                       **{**OPTIONS, "tis_cap": None})
    assert m["is_weight_sum"] == 2 and m["is_truncated_tokens"] == 0
    assert m["is_ratio_max"] == pytest.approx(2.0)


def test_ppo_clip_higher_by_hand():
    # ratios 1.5 (A=+1), 0.5 (A=-1), 1.1 (A=+1); clip [0.8, 1.28]
    old = torch.zeros(3, 1)
    logp = torch.log(torch.tensor([[1.5], [0.5], [1.1]]))
    adv = torch.tensor([1.0, -1.0, 1.0])
    mask = torch.ones(3, 1)
    loss, m = policy_loss(logp, old, old, adv, mask, **OPTIONS)
    # per token: -min(1.5, 1.28) = -1.28; -min(-.5, -.8) = .8; -min(1.1, 1.1) = -1.1
    assert loss.item() == pytest.approx((-1.28 + 0.8 - 1.1) / 3)
    assert m["clipped_tokens"] == 2
    # symmetric clipping would cut the first ratio at 1.2 instead
    loss_sym, _ = policy_loss(logp, old, old, adv, mask, **{**OPTIONS, "clip_high": 0.2})
    assert loss_sym.item() == pytest.approx((-1.2 + 0.8 - 1.1) / 3)


def test_policy_gradient_raises_logprob_of_positive_advantage():
    logp = torch.zeros(2, 2, requires_grad=True)
    loss, _ = policy_loss(logp, torch.zeros(2, 2), torch.zeros(2, 2), torch.tensor([1.0, -1.0]),
                          torch.ones(2, 2), **OPTIONS)
    loss.backward()
    assert (logp.grad[0] < 0).all() and (logp.grad[1] > 0).all()  # descent raises row 0


def test_importance_weights_scale_the_loss():
    # pi_old / mu = 0.5, A = 2, ratio 1: -0.5 * 2
    loss, _ = policy_loss(torch.zeros(1, 1), torch.zeros(1, 1), torch.tensor([[math.log(2)]]),
                          torch.tensor([2.0]), torch.ones(1, 1), **OPTIONS)
    assert loss.item() == pytest.approx(-1.0)


def test_kl_coef_without_a_reference_is_an_error():
    with pytest.raises(ValueError, match="kl_coef=0.1 needs"):
        policy_loss(torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1),
                    torch.ones(1, 1), **{**OPTIONS, "kl_coef": 0.1})


def test_entropy():
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0]]])
    assert torch.allclose(entropy_from_logits(logits), torch.tensor([[math.log(4), 0.0]]),
                          atol=1e-6)


def test_sft_loss_by_hand():
    # logprobs of kept completion tokens; row 1's last token is padding (its -9 counts nowhere)
    logp = torch.tensor([[-1.0, -2.0, -0.5], [-0.25, -0.25, -9.0]]).requires_grad_()
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    loss, m = sft_loss(logp, mask)
    # NLL 1 + 2 + .5 + .25 + .25 = 4 over 5 tokens
    assert loss.item() == pytest.approx(0.8, abs=1e-6)
    assert m == pytest.approx({"tokens": 5, "nll_sum": 4.0})
    loss.backward()
    assert torch.allclose(logp.grad, -mask / 5)
    # over a step's 8 tokens (this micro-batch holds 5 of them): the same sum, a larger count
    loss, _ = sft_loss(logp, mask, total_tokens=8)
    assert loss.item() == pytest.approx(0.5, abs=1e-6)
