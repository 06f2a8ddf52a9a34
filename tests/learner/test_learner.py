"""The learner's step, validation, micro-batching and exact resume, on a tiny model."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from learner.learner import STEP_METRICS, BatchError, lr_factor
from rlce.core.config import AlgoConfig, LearnerConfig
from rlce.core.types import TrainGroup

from .conftest import fixed_groups

pytestmark = pytest.mark.slow  # learner.learner imports ray; steps of 2-10 s


def test_step_raises_positive_and_lowers_negative_advantage(make_learner):
    learner = make_learner()
    groups = fixed_groups(learner)
    before = [[sum(learner.logprobs(s.prompt_ids, s.completion_ids)) for s in g.samples]
              for g in groups]
    metrics = learner.step(groups)
    after = [[sum(learner.logprobs(s.prompt_ids, s.completion_ids)) for s in g.samples]
             for g in groups]
    for b, a in zip(before, after):
        for i in range(len(b)):
            if i % 2 == 0:
                assert a[i] > b[i], "positive advantage must raise the sample's logprob"
            else:
                assert a[i] < b[i], "negative advantage must lower the sample's logprob"
    for key in ("loss", "clip_frac", "kl", "entropy", "grad_norm", "lr", "tokens_per_s",
                "is_weight_mean", "is_weight_max_raw", "is_truncated_frac"):
        assert math.isfinite(metrics[key]), key
    # each has its rule for merging ranks (nll is algo.loss=sft's)
    assert metrics.keys() == STEP_METRICS.keys() - {"nll"}
    assert metrics["step"] == 1 and metrics["grad_norm"] > 0 and metrics["entropy"] > 0
    assert metrics["is_weight_mean"] == pytest.approx(1.0, abs=1e-4)  # behaviour == learner


def test_sft_step_is_the_cross_entropy_at_temperature_one(make_learner, tiny_model):
    """algo.loss=sft: the step's loss is the kept completions' mean token NLL under the model
    itself (temperature 1, whatever the sampler's), computed here from the model's logits;
    repeated steps lower it."""
    from transformers import AutoModelForCausalLM

    learner = make_learner(loss="sft", temperature=0.7, lr=1e-2)
    groups = fixed_groups(learner, n_groups=2, n=2)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    nll, tokens = 0.0, 0
    with torch.no_grad():
        for s in (s for g in groups for s in g.samples):
            ids = torch.tensor([list(s.prompt_ids) + list(s.completion_ids)])
            logp = model(ids).logits[0, :-1].log_softmax(-1)
            at = torch.arange(len(s.prompt_ids) - 1, ids.shape[1] - 1)
            nll -= float(logp[at, ids[0, at + 1]].sum())
            tokens += len(s.completion_ids)
    first = learner.step(groups)
    assert first.keys() <= STEP_METRICS.keys() and "clip_frac" not in first
    assert first["completion_tokens"] == tokens and first["samples"] == 4
    # float32 sums over ~30 tokens of values near 8.5: a relative 1e-5 is far above rounding
    assert first["nll"] == pytest.approx(nll / tokens, rel=1e-5)
    assert first["loss"] == pytest.approx(nll / tokens, rel=1e-5)
    later = [learner.step(groups)["nll"] for _ in range(3)]
    assert later[-1] < later[0] < first["nll"]


@pytest.mark.parametrize("estimator", ["grpo", "drgrpo", "rloo", "reinforce_pp"])
def test_every_estimator_steps(make_learner, estimator):
    learner = make_learner(estimator=estimator)
    m = learner.step(fixed_groups(learner, n_groups=1))
    assert m["grad_norm"] > 0 and abs(m["advantage_mean"]) < 1e-6


def test_micro_batching_matches_one_big_batch(make_learner):
    small = make_learner(micro_batch_tokens=16)
    big = make_learner(micro_batch_tokens=10_000)
    groups = fixed_groups(big)
    assert len(small.micro_batches(small._rows(groups))) > 1
    assert len(big.micro_batches(big._rows(groups))) == 1
    a, b = small.step(groups), big.step(groups)
    # same loss and the same gradient (Adam's first step is sign-like, so compare before it)
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=1e-7)
    assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-5)
    assert a["entropy"] == pytest.approx(b["entropy"], rel=1e-5)


def test_kl_to_the_frozen_reference(make_learner):
    learner = make_learner(kl_coef=0.1)
    groups = fixed_groups(learner)
    assert learner.step(groups)["kl"] == pytest.approx(0.0, abs=1e-6)  # pi == ref before
    assert learner.step(groups)["kl"] > 1e-6  # and apart after one update


@pytest.mark.parametrize("mini_batches", [1, 2])
def test_the_clip_acts_only_with_several_updates_per_batch(make_learner, mini_batches):
    # the second mini-batch's ratio is against the policy before the first one's update; with
    # one update per batch pi_old is pi and the ratio is exactly 1
    learner = make_learner(mini_batches=mini_batches, lr=5e-3)
    m = learner.step(fixed_groups(learner))
    assert m["step"] == mini_batches
    if mini_batches == 1:
        assert m["clip_frac"] == 0.0
    else:
        assert m["clip_frac"] > 0


def test_stale_samples_are_corrected_by_truncated_importance_weights(make_learner):
    learner = make_learner(tis_cap=2.0)
    groups = fixed_groups(learner, n_groups=1)
    stale = [TrainGroup(g.problem_id, tuple(dataclasses.replace(
        s, behaviour_logprobs=tuple(x - 1.5 for x in s.behaviour_logprobs))
        for s in g.samples)) for g in groups]
    m = learner.step(stale)
    assert m["is_weight_max_raw"] == pytest.approx(math.exp(1.5), rel=1e-3)
    assert m["is_truncated_frac"] == pytest.approx(1.0)
    assert m["is_weight_mean"] == pytest.approx(2.0)


def bad(groups, **change):
    g = groups[0]
    s = dataclasses.replace(g.samples[0], **change)
    return [TrainGroup(g.problem_id, (s,) + g.samples[1:])] + groups[1:]


def test_invalid_batches_are_rejected_with_reasons(make_learner):
    learner = make_learner()
    groups = fixed_groups(learner)
    with pytest.raises(BatchError, match="empty batch"):
        learner.step([])
    with pytest.raises(BatchError, match="reward nan is not a finite number"):
        learner.step(bad(groups, reward=float("nan")))
    with pytest.raises(BatchError, match="5 logprobs for 6 completion tokens"):
        learner.step(bad(groups, behaviour_logprobs=(-1.0,) * 5))
    with pytest.raises(BatchError, match="empty completion"):
        learner.step(bad(groups, completion_ids=(), behaviour_logprobs=()))
    with pytest.raises(BatchError, match="3 advantages for 4 samples"):
        learner.step([TrainGroup("g", groups[0].samples, advantages=(1.0, 0.0, 0.0))])
    with pytest.raises(BatchError, match="has no samples"):
        learner.step([TrainGroup("g", ())])
    assert learner.get_step() == 0  # nothing was stepped


def test_invalid_config_names_the_option():
    with pytest.raises(ValueError, match="algo.estimator must be one of grpo, drgrpo"):
        AlgoConfig(estimator="ppo")
    with pytest.raises(ValueError, match="learner.schedule must be one of constant, cosine"):
        LearnerConfig(schedule="linear")
    assert AlgoConfig(aggregation="token_sum", max_tokens=99).norm_tokens == 99


def test_lr_schedule():
    c = LearnerConfig(warmup_steps=4, schedule="cosine", min_lr_ratio=0.1)
    assert [lr_factor(s, c, 14) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(9, c, 14) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(14, c, 14) == pytest.approx(0.1)


def test_checkpoint_resume_is_exact(make_learner, tmp_path):
    c = dict(warmup_steps=2, schedule="cosine", steps=6)
    straight = make_learner(**c)
    batches = [fixed_groups(straight, n_groups=1, length=4 + k) for k in range(4)]
    for b in batches:
        straight.step(b)
    first = make_learner(**c)
    for b in batches[:2]:
        first.step(b)
    ckpt = first.save_checkpoint(tmp_path / "ckpt")
    resumed = make_learner(resume_from=ckpt, **c)
    assert resumed.get_step() == 2
    for b in batches[2:]:
        resumed.step(b)
    for (n, p), (_, q) in zip(straight.model.named_parameters(),
                              resumed.model.named_parameters()):
        assert torch.equal(p, q), n
    assert (straight.optimizer.param_groups[0]["lr"] == resumed.optimizer.param_groups[0]["lr"])
    from transformers import AutoModelForCausalLM  # the folder loads as it is
    AutoModelForCausalLM.from_pretrained(ckpt)


def test_resume_from_a_folder_without_state_is_a_clear_error(make_learner, tiny_model):
    with pytest.raises(FileNotFoundError, match="not a learner checkpoint"):
        make_learner(resume_from=tiny_model)
