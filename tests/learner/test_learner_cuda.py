"""The GPU tier's learner check: one step on CUDA matches the same step on the CPU, in fp32
and with bf16 autocast (the GPU default). Skipped without a CUDA GPU.

The tolerances are generous guesses, not yet measured on a GPU (none where this was written):
fp32 kernels differ only in summation order, bf16 keeps about three significant digits. The
step moves logprobs by about 1.5 nats on average here, so a step that went elsewhere fails."""

from __future__ import annotations

import pytest
import torch

from learner.learner import Learner

from .conftest import fixed_groups

pytestmark = [pytest.mark.gpu, pytest.mark.slow]  # slow: learner.learner imports ray


def all_logprobs(learner: Learner, groups) -> torch.Tensor:
    return torch.cat([torch.tensor(learner.logprobs(list(s.prompt_ids), list(s.completion_ids)))
                      for g in groups for s in g.samples])


# dtype, largest logprob difference before the step, after it, and relative for the grad norm
@pytest.mark.parametrize("dtype, before_tol, after_tol, grad_rel", [
    ("float32", 1e-4, 1e-2, 1e-3),
    ("auto", 0.25, 0.25, 5e-2),  # auto: bf16 autocast on CUDA
])
def test_a_cuda_step_matches_the_cpu_step(make_learner, dtype, before_tol, after_tol,
                                          grad_rel):
    cpu = make_learner(device="cpu")
    cuda = make_learner(device="cuda", dtype=dtype)
    assert next(cuda.model.parameters()).device.type == "cuda"
    groups = fixed_groups(cpu)
    assert (all_logprobs(cuda, groups) - all_logprobs(cpu, groups)).abs().max() < before_tol
    on_cpu, on_cuda = cpu.step(groups), cuda.step(groups)
    assert on_cuda["grad_norm"] == pytest.approx(on_cpu["grad_norm"], rel=grad_rel)
    assert on_cuda["loss"] == pytest.approx(on_cpu["loss"], abs=before_tol)
    after_cpu = all_logprobs(cpu, groups)
    assert (all_logprobs(cuda, groups) - after_cpu).abs().max() < after_tol
    # and the step itself moved the policy by more than the tolerance
    moved = (after_cpu - torch.cat([torch.tensor(s.behaviour_logprobs)
                                    for g in groups for s in g.samples])).abs().max()
    assert moved > after_tol
